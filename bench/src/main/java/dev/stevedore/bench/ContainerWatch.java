package dev.stevedore.bench;

import dev.stevedore.api.NodeAgentFinalizer;
import dev.stevedore.api.v1alpha1.Container;
import dev.stevedore.api.v1alpha1.ContainerStatus;
import io.fabric8.kubernetes.api.model.Condition;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.Watch;
import io.fabric8.kubernetes.client.Watcher;
import io.fabric8.kubernetes.client.WatcherException;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicReference;

/**
 * One watch on the Containers of a namespace that tells, by {@link System#nanoTime()} on arrival of the event, when
 * each Container the benchmark {@link #track tracks} was first seen with the node agent's finalizer, first seen
 * {@code Ready=True}, and seen deleted: what a client of the API would wait for. A {@code Ready=False} fails the
 * wait at once with the agent's reason and message, so a broken run does not sit out its timeout.
 */
final class ContainerWatch implements AutoCloseable {
    /** What was seen of one Container; complete each future once. */
    static final class Tracked {
        final CompletableFuture<Long> finalized = new CompletableFuture<>();
        final CompletableFuture<Long> ready = new CompletableFuture<>();
        final CompletableFuture<Long> gone = new CompletableFuture<>();
    }

    private final Map<String, Tracked> tracked = new ConcurrentHashMap<>();
    private final AtomicReference<WatcherException> failure = new AtomicReference<>();
    private final Watch watch;

    /** Starts watching now; {@link #track} each Container before creating it, so no event is missed. */
    ContainerWatch(KubernetesClient client, String namespace) {
        this.watch = client.resources(Container.class).inNamespace(namespace).watch(new Watcher<>() {
            @Override
            public void eventReceived(Action action, Container container) {
                observed(action, container, System.nanoTime());
            }

            @Override
            public void onClose(WatcherException cause) {
                // fabric8 resumes a watch whose connection merely dropped; this is one it could not resume.
                failure.set(cause);
                IllegalStateException closed = new IllegalStateException("the watch on Containers closed", cause);
                tracked.values()
                        .forEach(t ->
                                List.of(t.finalized, t.ready, t.gone).forEach(f -> f.completeExceptionally(closed)));
            }
        });
    }

    Tracked track(String name) {
        Tracked fresh = new Tracked();
        if (tracked.putIfAbsent(name, fresh) != null) {
            throw new IllegalArgumentException("already tracking " + name);
        }
        return fresh;
    }

    /** What is tracked of {@code name}. */
    Tracked tracked(String name) {
        Tracked t = tracked.get(name);
        if (t == null) {
            throw new IllegalArgumentException("not tracking " + name);
        }
        return t;
    }

    /** Stops tracking {@code name}, so the name can be used again. */
    void forget(String name) {
        tracked.remove(name);
    }

    private void observed(Watcher.Action action, Container container, long at) {
        Tracked t = tracked.get(container.getMetadata().getName());
        if (t == null) {
            return;
        }
        if (action == Watcher.Action.DELETED) {
            t.gone.complete(at);
            return;
        }
        if (container.hasFinalizer(NodeAgentFinalizer.NAME)) {
            t.finalized.complete(at);
        }
        Condition ready = condition(container, ContainerStatus.READY);
        if (ready != null && "True".equals(ready.getStatus())) {
            t.ready.complete(at);
        } else if (ready != null
                && "False".equals(ready.getStatus())
                && container.getMetadata().getDeletionTimestamp() == null) {
            t.ready.completeExceptionally(new IllegalStateException(
                    "Container " + container.getMetadata().getName() + " is Ready=False: " + ready.getReason() + ": "
                            + ready.getMessage()));
        }
    }

    private static Condition condition(Container container, String type) {
        if (container.getStatus() == null || container.getStatus().conditions() == null) {
            return null;
        }
        return container.getStatus().conditions().stream()
                .filter(c -> type.equals(c.getType()))
                .findFirst()
                .orElse(null);
    }

    /**
     * Waits for {@code event} (one of a {@link Tracked}'s futures) and returns its time, checking {@code healthCheck}
     * (which throws when what should bring it about is gone) every second.
     */
    static long await(CompletableFuture<Long> event, Duration timeout, String what, Runnable healthCheck)
            throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (true) {
            try {
                return event.get(1, TimeUnit.SECONDS);
            } catch (TimeoutException notYet) {
                healthCheck.run();
                if (System.nanoTime() > deadline) {
                    throw new IllegalStateException("after " + timeout + ", still waiting for " + what);
                }
            } catch (ExecutionException e) {
                throw new IllegalStateException(
                        "while waiting for " + what + ": " + e.getCause().getMessage(), e.getCause());
            }
        }
    }

    @Override
    public void close() {
        watch.close();
    }
}
