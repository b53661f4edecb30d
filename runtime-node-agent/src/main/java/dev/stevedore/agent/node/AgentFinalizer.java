package dev.stevedore.agent.node;

import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.fabric8.kubernetes.client.dsl.Resource;
import io.fabric8.kubernetes.client.dsl.base.PatchContext;
import io.fabric8.kubernetes.client.dsl.base.PatchType;
import io.fabric8.kubernetes.client.utils.Serialization;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The agent's finalizer on this node's Containers and Tasks: their deletion waits until the agent has stopped and
 * released what it made for them.
 *
 * <p>It is added beside the agent's work, not before it as controllers usually do, so a Task's start does not wait
 * a round trip to the API server for it. That leaves a moment in which the object can go without waiting; the
 * agent's reconcilers see every event, the delete event too, and release from it what the object had, and a
 * restarted agent sweeps what no object wants any more.
 *
 * <p>Both writes are JSON patches that test the object's UID and the finalizer list they change (a missing list
 * tests as null), so neither overwrites another writer's finalizer nor needs the object's resourceVersion, which
 * the agent's own status writes keep changing.
 */
public final class AgentFinalizer implements AutoCloseable {
    public static final String NAME = "stevedore.dev/node-agent";
    private static final Logger LOG = LoggerFactory.getLogger(AgentFinalizer.class);
    private static final int ATTEMPTS = 5;

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
        if (resource.isMarkedForDeletion() || resource.hasFinalizer(NAME) || !adding.add(uid)) {
            return;
        }
        writer.execute(() -> {
            try {
                patch(resource, true);
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
        if (resource.hasFinalizer(NAME)) {
            patch(resource, false);
        }
    }

    private <R extends HasMetadata> void patch(R resource, boolean add) {
        Resource<R> handle = client.resource(resource);
        R current = resource;
        for (int attempt = 1; ; attempt++) {
            boolean done = current == null
                    || (add
                            ? current.hasFinalizer(NAME) || current.isMarkedForDeletion()
                            : !current.hasFinalizer(NAME));
            if (done) {
                return;
            }
            try {
                handle.patch(PatchContext.of(PatchType.JSON), Serialization.asJson(operations(current, add)));
                return;
            } catch (KubernetesClientException e) {
                if (e.getCode() == 404) {
                    return;
                }
                // 422: a test failed (the list or the UID changed) or the object is being deleted: read it again.
                if (e.getCode() != 422 || attempt == ATTEMPTS) {
                    throw e;
                }
            }
            current = handle.get();
            if (current != null
                    && !current.getMetadata()
                            .getUid()
                            .equals(resource.getMetadata().getUid())) {
                return;
            }
        }
    }

    private static List<Map<String, Object>> operations(HasMetadata resource, boolean add) {
        List<String> finalizers = resource.getMetadata().getFinalizers();
        List<Map<String, Object>> ops = new ArrayList<>();
        ops.add(Map.of(
                "op",
                "test",
                "path",
                "/metadata/uid",
                "value",
                resource.getMetadata().getUid()));
        Map<String, Object> testList = new HashMap<>(); // Map.of takes no null
        testList.put("op", "test");
        testList.put("path", "/metadata/finalizers");
        testList.put("value", finalizers == null || finalizers.isEmpty() ? null : finalizers);
        ops.add(testList);
        List<String> changed = new ArrayList<>(finalizers == null ? List.of() : finalizers);
        if (add) {
            changed.add(NAME);
        } else {
            changed.remove(NAME);
        }
        ops.add(Map.of("op", "add", "path", "/metadata/finalizers", "value", changed));
        return ops;
    }
}
