package dev.stevedore.agent.tasks;

import dev.stevedore.api.EventRecorder;
import dev.stevedore.api.v1alpha1.Task;
import dev.stevedore.api.v1alpha1.TaskStatus;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.ObjectReference;
import io.fabric8.kubernetes.api.model.ObjectReferenceBuilder;

/**
 * The Events of a task's life on the node, as kubelet records them for a Pod's containers: {@code Started},
 * {@code Killing} (a stop's signal, and the SIGKILL after its grace period), and at its end {@code Exited} (Normal
 * for exit code 0, Warning otherwise), {@code OOMKilled}, {@code Failed} (it never started) or the reason its exit
 * status was lost. Each is recorded once what it tells has happened: the end once its status has landed.
 */
final class TaskEvents {
    /** The Event a task's final status gives. */
    record Ended(String type, String reason, String message) {}

    private static final String API_VERSION = HasMetadata.getApiVersion(Task.class);
    private static final String KIND = HasMetadata.getKind(Task.class);

    private final EventRecorder events;

    TaskEvents(EventRecorder events) {
        this.events = events;
    }

    /** @param pid the task's process, null where an older agent's record has none */
    void started(TaskRef task, Long pid, String runtime) {
        events.record(
                reference(task),
                EventRecorder.NORMAL,
                "Started",
                "Started the task" + (pid == null ? "" : ": pid " + pid) + " (" + runtime + ")");
    }

    void signalled(TaskRef task, String signal) {
        events.record(
                reference(task),
                EventRecorder.NORMAL,
                "Killing",
                signal.equals(TaskDecisions.SIGKILL)
                        ? "Killing the task (SIGKILL)"
                        : "Stopping the task (" + signal + ")");
    }

    void ended(TaskRef task, TaskStatus status) {
        Ended ended = ended(status);
        events.record(reference(task), ended.type(), ended.reason(), ended.message());
    }

    /** Pure: the Event of a final status (phase Deleted). */
    static Ended ended(TaskStatus status) {
        String message = status.message();
        if ("OOMKilled".equals(status.reason())) {
            return new Ended(EventRecorder.WARNING, "OOMKilled", message);
        }
        if (status.exitCode() != null) {
            return new Ended(status.exitCode() == 0 ? EventRecorder.NORMAL : EventRecorder.WARNING, "Exited", message);
        }
        if ("StartFailed".equals(status.reason())) {
            return new Ended(EventRecorder.WARNING, "Failed", message);
        }
        return new Ended(EventRecorder.WARNING, status.reason(), message);
    }

    private static ObjectReference reference(TaskRef task) {
        return new ObjectReferenceBuilder()
                .withApiVersion(API_VERSION)
                .withKind(KIND)
                .withNamespace(task.namespace())
                .withName(task.name())
                .withUid(task.uid())
                .build();
    }
}
