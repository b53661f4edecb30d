package dev.stevedore.agent.node;

import dev.stevedore.api.NodeAgentFinalizer;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The agent's writes of its {@link NodeAgentFinalizer} on this node's Containers and Tasks: their deletion waits
 * until the agent has stopped and released what it made for them.
 *
 * <p>It is added beside the agent's work, not before it as controllers usually do, so a Task's start does not wait
 * a round trip to the API server for it. That leaves a moment in which the object can go without waiting; the
 * agent's reconcilers see every event, the delete event too, and release from it what the object had, and a
 * restarted agent sweeps what no object wants any more.
 */
public final class AgentFinalizer implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(AgentFinalizer.class);

    private final KubernetesClient client;
    private final Set<String> adding = ConcurrentHashMap.newKeySet();
    private final ExecutorService writer = Executors.newSingleThreadExecutor(r -> {
        Thread t = new Thread(r, "finalizer-writer");
        t.setDaemon(true);
        return t;
    });

    public AgentFinalizer(KubernetesClient client) {
        this.client = client;
    }

    /**
     * Adds it on a thread of its own unless present, being added, or the object is going (the API server would
     * refuse). The reconciler goes on meanwhile: the write is not on the way to a start.
     */
    public <R extends HasMetadata> void addSoon(R resource) {
        String uid = resource.getMetadata().getUid();
        if (resource.isMarkedForDeletion() || resource.hasFinalizer(NodeAgentFinalizer.NAME) || !adding.add(uid)) {
            return;
        }
        writer.execute(() -> {
            try {
                NodeAgentFinalizer.add(client, resource);
            } catch (KubernetesClientException e) {
                // The next event of the object tries again.
                LOG.info(
                        "finalizer of {} {}/{} not added: {}",
                        resource.getKind(),
                        resource.getMetadata().getNamespace(),
                        resource.getMetadata().getName(),
                        e.getMessage());
            } finally {
                adding.remove(uid);
            }
        });
    }

    /** Stops adding; what the agent stops with waits for its next start (its events come again). */
    @Override
    public void close() {
        writer.shutdownNow();
    }

    /** Removes it, now; a vanished object is no error. */
    public <R extends HasMetadata> void remove(R resource) {
        NodeAgentFinalizer.remove(client, resource);
    }
}
