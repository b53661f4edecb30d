package dev.stevedore.bench;

import dev.stevedore.api.NodeAgentFinalizer;
import dev.stevedore.api.v1alpha1.Task;
import dev.stevedore.api.v1alpha1.TaskStatus;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.Watch;
import io.fabric8.kubernetes.client.Watcher;
import io.fabric8.kubernetes.client.WatcherException;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;

/**
 * One watch on the Tasks of a namespace that tells when each tracked Task was first seen with the node agent's
 * finalizer, in phase Running, first seen Deleted, and seen gone: by {@link System#nanoTime()} and by the wall clock
 * ({@link Instant#now()}, microseconds on Linux) on arrival of the event.
 */
final class TaskWatch implements AutoCloseable {
    /** An event's arrival. */
    record Seen(long nanos, Instant wall, Task task) {}

    static final class Tracked {
        final CompletableFuture<Seen> finalized = new CompletableFuture<>();
        final CompletableFuture<Seen> running = new CompletableFuture<>();
        final CompletableFuture<Seen> deleted = new CompletableFuture<>();
        final CompletableFuture<Seen> gone = new CompletableFuture<>();
    }

    private final Map<String, Tracked> tracked = new ConcurrentHashMap<>();
    private final Watch watch;

    TaskWatch(KubernetesClient client, String namespace) {
        this.watch = client.resources(Task.class).inNamespace(namespace).watch(new Watcher<>() {
            @Override
            public void eventReceived(Action action, Task task) {
                observed(action, task, new Seen(System.nanoTime(), Instant.now(), task));
            }

            @Override
            public void onClose(WatcherException cause) {
                IllegalStateException closed = new IllegalStateException("the watch on Tasks closed", cause);
                tracked.values()
                        .forEach(t -> List.of(t.finalized, t.running, t.deleted, t.gone)
                                .forEach(f -> f.completeExceptionally(closed)));
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

    Tracked tracked(String name) {
        return tracked.get(name);
    }

    void forget(String name) {
        tracked.remove(name);
    }

    private void observed(Watcher.Action action, Task task, Seen seen) {
        Tracked t = tracked.get(task.getMetadata().getName());
        if (t == null) {
            return;
        }
        if (action == Watcher.Action.DELETED) {
            t.gone.complete(seen);
            t.running.completeExceptionally(
                    new IllegalStateException("Task " + task.getMetadata().getName() + " deleted before Running"));
            t.deleted.completeExceptionally(
                    new IllegalStateException("Task " + task.getMetadata().getName() + " gone before Deleted"));
            return;
        }
        if (task.hasFinalizer(NodeAgentFinalizer.NAME)) {
            t.finalized.complete(seen);
        }
        TaskStatus status = task.getStatus();
        if (status == null || status.phase() == null) {
            return;
        }
        if (status.phase() == TaskStatus.Phase.Running) {
            t.running.complete(seen);
        } else if (status.phase() == TaskStatus.Phase.Deleted) {
            t.deleted.complete(seen);
            t.running.completeExceptionally(
                    new IllegalStateException("Task " + task.getMetadata().getName() + " Deleted before Running seen: "
                            + status.reason() + ": " + status.message()));
        }
    }

    @Override
    public void close() {
        watch.close();
    }
}
