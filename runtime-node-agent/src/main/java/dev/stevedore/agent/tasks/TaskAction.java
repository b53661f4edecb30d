package dev.stevedore.agent.tasks;

import dev.stevedore.agent.containers.ContainerRecord;
import dev.stevedore.api.v1alpha1.TaskStatus;
import java.time.Duration;
import java.time.Instant;

/**
 * One step {@link TaskDecisions} asks for and {@link TaskExecutor} carries out, in order. A runtime command that
 * fails ends the plan there (the exit event or the next look settles it); everything else that fails throws.
 */
sealed interface TaskAction {

    /**
     * Writes the first record (CREATING), builds the bundle on the Container's rootfs snapshot, creates the
     * container under its monitor and starts it, then records and reports Running. Whatever fails on the way makes
     * the task StartFailed.
     */
    record Start(String runtime, ContainerRecord container, Long generation) implements TaskAction {}

    /** Writes the record crash-safely: what follows builds on it, and a restarted agent resumes from it. */
    record Save(TaskRecord record) implements TaskAction {}

    /** Starts a container the runtime created but nobody started (the agent died in between). */
    record StartCreated() implements TaskAction {}

    record Pause() implements TaskAction {}

    record Resume() implements TaskAction {}

    /** Sends a signal (e.g. SIGTERM) to the task's process. */
    record Signal(String signal) implements TaskAction {}

    /** Sends SIGKILL at {@code at} unless the task has exited by then; once per task however often asked. */
    record KillAt(Instant at) implements TaskAction {}

    /** Waits (a few seconds at most) for a monitor that may still be creating the container to give up. */
    record AwaitMonitorExit() implements TaskAction {}

    /** Deletes the runtime's container, unmounts and removes the bundle, cgroups and monitor files. Idempotent. */
    record Release() implements TaskAction {}

    /** Writes this status; a write that does not land is tried again, from the record, until it does. */
    record WriteStatus(TaskStatus status) implements TaskAction {}

    /**
     * Writes the final status and records that it landed. When the Task object has gone meanwhile nobody is left
     * to tell, and the record goes; when the write fails, it is tried again until it lands.
     */
    record ReportFinal(TaskStatus status) implements TaskAction {}

    /** Removes the record, the task's directory with its log, and its exit file. */
    record Forget() implements TaskAction {}

    /** Removes an exit file nobody needs any more. */
    record DeleteExitFile() implements TaskAction {}

    /** Look at the task again after this long, even without an event. */
    record LookAgain(Duration after) implements TaskAction {}
}
