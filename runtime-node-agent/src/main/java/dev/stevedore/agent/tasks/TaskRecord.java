package dev.stevedore.agent.tasks;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import com.fasterxml.jackson.annotation.JsonInclude;

/**
 * What the node keeps of a task it started, written before each step so a restarted agent knows where it was:
 * identity (Task UID, namespace, name), the Container and snapshot it uses, the runtime and its id, the lifecycle
 * state, and once exited the exit status. {@code released} says the runtime resources are gone; {@code reported}
 * that the final status reached the API server.
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
@JsonIgnoreProperties(ignoreUnknown = true)
public record TaskRecord(
        String uid,
        String namespace,
        String name,
        String containerUid,
        String snapshotter,
        String snapshotKey,
        String runtime,
        String runtimeId,
        String bundle,
        State state,
        Long pid,
        String startedAt,
        String stopRequestedAt,
        String stopSignal,
        Long stopGracePeriodSeconds,
        Integer exitCode,
        String exitedAt,
        String reason,
        String message,
        Long generation,
        boolean released,
        boolean reported) {

    public enum State {
        /** conmon may be running runc create; the process never ran. */
        CREATING,
        /** runc create done (pid known); runc start not known to have run. */
        CREATED,
        RUNNING,
        PAUSED,
        /** The process exited (or never started): exit status recorded. */
        EXITED
    }

    public boolean live() {
        return state != State.EXITED;
    }

    /** Whether the task still holds the Container's rootfs (mounted or about to be). */
    public boolean holdsRootfs() {
        return !released;
    }

    public TaskRecord withState(State s) {
        return new TaskRecord(uid, namespace, name, containerUid, snapshotter, snapshotKey, runtime, runtimeId, bundle, s,
                pid, startedAt, stopRequestedAt, stopSignal, stopGracePeriodSeconds, exitCode, exitedAt, reason, message,
                generation, released, reported);
    }

    public TaskRecord withPid(Long p) {
        return new TaskRecord(uid, namespace, name, containerUid, snapshotter, snapshotKey, runtime, runtimeId, bundle, state,
                p, startedAt, stopRequestedAt, stopSignal, stopGracePeriodSeconds, exitCode, exitedAt, reason, message,
                generation, released, reported);
    }

    public TaskRecord started(String at) {
        return new TaskRecord(uid, namespace, name, containerUid, snapshotter, snapshotKey, runtime, runtimeId, bundle,
                State.RUNNING, pid, at, stopRequestedAt, stopSignal, stopGracePeriodSeconds, exitCode, exitedAt, reason,
                message, generation, released, reported);
    }

    public TaskRecord stopping(String at, String signal, Long grace) {
        return new TaskRecord(uid, namespace, name, containerUid, snapshotter, snapshotKey, runtime, runtimeId, bundle, state,
                pid, startedAt, at, signal, grace, exitCode, exitedAt, reason, message, generation, released, reported);
    }

    public TaskRecord exited(Integer code, String at, String why, String text) {
        return new TaskRecord(uid, namespace, name, containerUid, snapshotter, snapshotKey, runtime, runtimeId, bundle,
                State.EXITED, pid, startedAt, stopRequestedAt, stopSignal, stopGracePeriodSeconds, code, at, why, text,
                generation, released, reported);
    }

    public TaskRecord withGeneration(Long g) {
        return new TaskRecord(uid, namespace, name, containerUid, snapshotter, snapshotKey, runtime, runtimeId, bundle, state,
                pid, startedAt, stopRequestedAt, stopSignal, stopGracePeriodSeconds, exitCode, exitedAt, reason, message,
                g, released, reported);
    }

    public TaskRecord withReleased(boolean r) {
        return new TaskRecord(uid, namespace, name, containerUid, snapshotter, snapshotKey, runtime, runtimeId, bundle, state,
                pid, startedAt, stopRequestedAt, stopSignal, stopGracePeriodSeconds, exitCode, exitedAt, reason, message,
                generation, r, reported);
    }

    public TaskRecord withReported(boolean r) {
        return new TaskRecord(uid, namespace, name, containerUid, snapshotter, snapshotKey, runtime, runtimeId, bundle, state,
                pid, startedAt, stopRequestedAt, stopSignal, stopGracePeriodSeconds, exitCode, exitedAt, reason, message,
                generation, released, r);
    }
}
