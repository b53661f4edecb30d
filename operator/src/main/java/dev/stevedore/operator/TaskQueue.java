package dev.stevedore.operator;

import dev.stevedore.api.v1alpha1.Task;
import dev.stevedore.api.v1alpha1.TaskSpec;
import dev.stevedore.api.v1alpha1.TaskStatus;
import java.util.Collection;
import java.util.Comparator;
import java.util.Optional;

/**
 * The Tasks of one Container, as containerd sees them: at most one live (bound, not Deleted) Task holds the
 * Container; the others wait their turn, oldest first.
 */
record TaskQueue(Collection<Task> tasks) {
    private static final Comparator<Task> OLDEST_FIRST = Comparator.comparing(
                    (Task t) -> t.getMetadata().getCreationTimestamp())
            .thenComparing(t -> t.getMetadata().getName());

    /** The live Task bound to the Container's node, if any; being deleted, it holds until its node lets it go. */
    Optional<Task> holder() {
        return tasks.stream().filter(t -> bound(t) && !deleted(t)).min(OLDEST_FIRST);
    }

    /** The Task to bind next when nothing holds the Container. */
    Optional<Task> next() {
        return tasks.stream().filter(TaskQueue::waiting).min(OLDEST_FIRST);
    }

    /** Unbound, not finished, not being deleted, and wanted running. */
    static boolean waiting(Task task) {
        return !bound(task)
                && !deleted(task)
                && !terminating(task)
                && task.getSpec().desiredState() != TaskSpec.DesiredState.Stopped;
    }

    static boolean bound(Task task) {
        return task.getSpec().nodeName() != null;
    }

    static boolean deleted(Task task) {
        return task.getStatus() != null && task.getStatus().phase() == TaskStatus.Phase.Deleted;
    }

    private static boolean terminating(Task task) {
        return task.getMetadata().getDeletionTimestamp() != null;
    }
}
