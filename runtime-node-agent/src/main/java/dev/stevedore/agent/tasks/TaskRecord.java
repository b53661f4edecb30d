package dev.stevedore.agent.tasks;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import com.fasterxml.jackson.annotation.JsonInclude;
import dev.stevedore.agent.network.TaskNetwork;
import java.time.Instant;

/**
 * What the node keeps of a task it started, written before each step so a restarted agent knows where it was:
 * identity (Task UID, namespace, name), the Container and snapshot it uses, the runtime and its id, the lifecycle
 * state, a requested stop and once exited the exit status. {@code released} says the runtime resources are gone;
 * {@code reported} that the final status reached the API server.
 *
 * <p>The task's process and its conmon are each recorded as PID and start time ({@link ProcessStart}): a PID alone
 * may be another process's by the time a restarted agent reads it. Records of older agents have no start times;
 * null there means unknown.
 *
 * <p>A task on a CNI network has its attachment ({@link TaskNetwork}) in the first record already, before the
 * namespace is made: whatever happens next, the release knows what to detach.
 *
 * <p>The JSON is the one agents before the Instant timestamps wrote (RFC 3339 strings, see {@link TaskRecords}), so
 * the records of tasks running across an agent upgrade are read as they are. Changes go through the transitions
 * below, which say what happened rather than which field changed.
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
        Long pidStartTime,
        Long conmonPid,
        Long conmonStartTime,
        Instant startedAt,
        Instant stopRequestedAt,
        String stopSignal,
        Long stopGracePeriodSeconds,
        Integer exitCode,
        Instant exitedAt,
        String reason,
        String message,
        Long generation,
        TaskNetwork network,
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

    /** A new task about to be created: the first record, written before anything else. */
    public static TaskRecord creating(
            String uid,
            String namespace,
            String name,
            String containerUid,
            String snapshotter,
            String snapshotKey,
            String runtime,
            String bundle,
            Long generation,
            TaskNetwork network) {
        return new TaskRecord(
                uid,
                namespace,
                name,
                containerUid,
                snapshotter,
                snapshotKey,
                runtime,
                uid,
                bundle,
                State.CREATING,
                null,
                null,
                null,
                null,
                null,
                null,
                null,
                null,
                null,
                null,
                null,
                null,
                generation,
                network,
                false,
                false);
    }

    public boolean live() {
        return state != State.EXITED;
    }

    /** Whether the task still holds the Container's rootfs (mounted or about to be). */
    public boolean holdsRootfs() {
        return !released;
    }

    public boolean stopRequested() {
        return stopRequestedAt != null;
    }

    /** When the grace period of a requested stop ends. */
    public Instant killAt() {
        long grace = stopGracePeriodSeconds == null ? TaskDecisions.DEFAULT_GRACE_SECONDS : stopGracePeriodSeconds;
        return stopRequestedAt.plusSeconds(grace);
    }

    /** The runtime created the container; its init process ({@code task}) waits for start, under {@code conmon}. */
    public TaskRecord created(ProcessId task, ProcessId conmon) {
        return edit(b -> {
            b.state = State.CREATED;
            b.identify(task, conmon);
        });
    }

    /** The task's init process as recorded, null before the create. */
    public ProcessId process() {
        return pid == null ? null : new ProcessId(pid, pidStartTime);
    }

    /** The task's conmon as recorded; null in the records of older agents, which kept it in conmon's pid file only. */
    public ProcessId conmon() {
        return conmonPid == null ? null : new ProcessId(conmonPid, conmonStartTime);
    }

    /** The task's network was attached: {@code attached} has the plugins' result. */
    public TaskRecord attached(TaskNetwork attached) {
        return edit(b -> b.network = attached);
    }

    public TaskRecord started(Instant at) {
        return edit(b -> {
            b.state = State.RUNNING;
            b.startedAt = at;
        });
    }

    /**
     * The runtime says the task is running or paused (adoption): the record follows, keeping an earlier start time
     * and what it knew of the processes, learning what it did not.
     */
    public TaskRecord found(State s, ProcessId task, ProcessId conmon, Instant now) {
        return edit(b -> {
            b.state = s;
            b.identify(task, conmon);
            b.startedAt = startedAt != null ? startedAt : now;
        });
    }

    public TaskRecord paused() {
        return edit(b -> b.state = State.PAUSED);
    }

    public TaskRecord resumed() {
        return edit(b -> b.state = State.RUNNING);
    }

    public TaskRecord stopping(Instant at, String signal, long gracePeriodSeconds) {
        return edit(b -> {
            b.stopRequestedAt = at;
            b.stopSignal = signal;
            b.stopGracePeriodSeconds = gracePeriodSeconds;
        });
    }

    public TaskRecord exited(Integer code, Instant at, String why, String text) {
        return edit(b -> {
            b.state = State.EXITED;
            b.exitCode = code;
            b.exitedAt = at;
            b.reason = why;
            b.message = text;
        });
    }

    public TaskRecord withGeneration(Long g) {
        return edit(b -> b.generation = g);
    }

    public TaskRecord releasedNow() {
        return edit(b -> b.released = true);
    }

    public TaskRecord reportedNow() {
        return edit(b -> b.reported = true);
    }

    private TaskRecord edit(java.util.function.Consumer<Changes> change) {
        Changes b = new Changes(this);
        change.accept(b);
        return new TaskRecord(
                uid,
                namespace,
                name,
                containerUid,
                snapshotter,
                snapshotKey,
                runtime,
                runtimeId,
                bundle,
                b.state,
                b.pid,
                b.pidStartTime,
                b.conmonPid,
                b.conmonStartTime,
                b.startedAt,
                b.stopRequestedAt,
                b.stopSignal,
                b.stopGracePeriodSeconds,
                b.exitCode,
                b.exitedAt,
                b.reason,
                b.message,
                b.generation,
                b.network,
                b.released,
                b.reported);
    }

    /** The lifecycle part of a record, which transitions change; the identity part never changes. */
    private static final class Changes {
        State state;
        Long pid;
        Long pidStartTime;
        Long conmonPid;
        Long conmonStartTime;
        Instant startedAt;
        Instant stopRequestedAt;
        String stopSignal;
        Long stopGracePeriodSeconds;
        Integer exitCode;
        Instant exitedAt;
        String reason;
        String message;
        Long generation;
        TaskNetwork network;
        boolean released;
        boolean reported;

        Changes(TaskRecord r) {
            state = r.state;
            pid = r.pid;
            pidStartTime = r.pidStartTime;
            conmonPid = r.conmonPid;
            conmonStartTime = r.conmonStartTime;
            startedAt = r.startedAt;
            stopRequestedAt = r.stopRequestedAt;
            stopSignal = r.stopSignal;
            stopGracePeriodSeconds = r.stopGracePeriodSeconds;
            exitCode = r.exitCode;
            exitedAt = r.exitedAt;
            reason = r.reason;
            message = r.message;
            generation = r.generation;
            network = r.network;
            released = r.released;
            reported = r.reported;
        }

        /** What is recorded of a process stays; what was not is learnt (a start time only with its own PID). */
        void identify(ProcessId task, ProcessId conmon) {
            if (task != null && (pid == null || pid == task.pid())) {
                pid = task.pid();
                pidStartTime = pidStartTime != null ? pidStartTime : task.startTime();
            }
            if (conmon != null && (conmonPid == null || conmonPid == conmon.pid())) {
                conmonPid = conmon.pid();
                conmonStartTime = conmonStartTime != null ? conmonStartTime : conmon.startTime();
            }
        }
    }
}
