package dev.stevedore.agent.tasks;

import dev.stevedore.agent.containers.ContainerRecord;
import dev.stevedore.api.v1alpha1.Conditions;
import dev.stevedore.api.v1alpha1.Container;
import dev.stevedore.api.v1alpha1.Task;
import dev.stevedore.api.v1alpha1.TaskSpec;
import dev.stevedore.api.v1alpha1.TaskStatus;
import io.fabric8.kubernetes.api.model.Condition;
import io.fabric8.kubernetes.api.model.ConditionBuilder;
import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;

/**
 * What to do about a task, from what the node recorded of it ({@link TaskRecord}), what its Task object asks for,
 * and what was seen of it (an exit file, the runtime's state): a plan of {@link TaskAction}s. Pure: no I/O, no clock
 * (the caller passes {@code now}), so every lifecycle transition is decided here and tested without a node.
 *
 * <p>Rules that span several decisions: a record is saved before the step it enables, so a crash leaves a record
 * that says what may have happened; a task is started only from a Task with no record (or, on adoption, from a
 * container the runtime reports created, which runc and crun start at most once), so it never starts twice.
 */
final class TaskDecisions {
    /** When a step cannot be taken yet (a create under way, a runtime command that failed): look again after this. */
    static final Duration NOT_READY_RETRY = Duration.ofSeconds(2);

    static final long DEFAULT_GRACE_SECONDS = 10;
    static final String SIGKILL = "SIGKILL";
    private static final String MONITOR_LOST = "MonitorLost";
    /** Runtime states of a container whose process exists (created: waiting for start). */
    private static final Set<String> LIVE_RUNTIME_STATES = Set.of("created", "running", "paused");

    private final String nodeName;

    TaskDecisions(String nodeName) {
        this.nodeName = nodeName;
    }

    /** An exit file of the task's runtime id: its code (null while conmon is still writing it) and when it appeared. */
    record ExitFile(Integer code, Instant at, boolean oomKilled) {}

    /**
     * What a restarted agent finds of a recorded task outside its record: {@code monitorAlive} says the recorded
     * conmon still runs (the same process, see {@link ProcessStart}); {@code container} and {@code conmon} are the
     * processes under the PIDs conmon wrote, learnt by records that have none.
     */
    record Found(
            Optional<String> runtimeState,
            boolean exitFilePresent,
            boolean monitorAlive,
            ProcessId container,
            ProcessId conmon) {}

    // --- reconcile: the Task object changed (or asked to be looked at again) ---------------------------------

    /**
     * Moves the task toward what its Task object asks: start, pause, resume or stop it, and report what it is.
     *
     * @param rec the node's record of the task, null if it has none
     * @param container the Task's Container as this node's informer has it, if it has it
     * @param containerRecord what this node prepared for that Container, if anything
     * @param containerHolder another task of that Container that holds its rootfs on this node, if any
     */
    List<TaskAction> reconcile(
            Task task,
            TaskRecord rec,
            Optional<Container> container,
            Optional<ContainerRecord> containerRecord,
            Optional<TaskRecord> containerHolder,
            Instant now) {
        if (rec == null) {
            return unrecorded(task, container, containerRecord, containerHolder, now);
        }
        List<TaskAction> plan = new ArrayList<>();
        Long generation = task.getMetadata().getGeneration();
        if (!Objects.equals(rec.generation(), generation)) {
            rec = save(plan, rec.withGeneration(generation));
        }
        if (rec.state() == TaskRecord.State.EXITED) {
            plan.addAll(finish(rec));
            return plan;
        }
        if (rec.state() == TaskRecord.State.CREATING) {
            // TaskManager adopts a CREATING record (a create cut short) instead of asking here; this only waits.
            plan.add(new TaskAction.LookAgain(NOT_READY_RETRY));
            return plan;
        }
        TaskSpec spec = task.getSpec();
        if (spec.desiredState() == TaskSpec.DesiredState.Stopped) {
            rec = stop(plan, rec, spec, now);
        } else if (!rec.stopRequested()
                && spec.desiredState() == TaskSpec.DesiredState.Paused
                && rec.state() == TaskRecord.State.RUNNING) {
            plan.add(new TaskAction.Pause());
            rec = save(plan, rec.paused());
        } else if (!rec.stopRequested()
                && spec.desiredState() == TaskSpec.DesiredState.Running
                && rec.state() == TaskRecord.State.PAUSED) {
            plan.add(new TaskAction.Resume());
            rec = save(plan, rec.resumed());
        }
        TaskStatus want = statusOf(rec);
        TaskStatus have = task.getStatus();
        if (have == null
                || have.phase() != want.phase()
                || !Objects.equals(have.reason(), want.reason())
                || !Objects.equals(have.observedGeneration(), want.observedGeneration())) {
            plan.add(new TaskAction.WriteStatus(want));
        }
        return plan;
    }

    /**
     * A Task this node has no record of: start it once its Container is prepared here, unless it is too late or
     * the Container has a task here already.
     */
    private List<TaskAction> unrecorded(
            Task task,
            Optional<Container> container,
            Optional<ContainerRecord> containerRecord,
            Optional<TaskRecord> containerHolder,
            Instant now) {
        TaskStatus.Phase phase =
                task.getStatus() == null ? null : task.getStatus().phase();
        Long generation = task.getMetadata().getGeneration();
        if (phase == TaskStatus.Phase.Deleted) {
            return List.of();
        }
        if (phase != null && phase != TaskStatus.Phase.Pending) {
            // It ran here once (a node wiped, a record lost): it cannot be found, and must not run again.
            return List.of(new TaskAction.WriteStatus(
                    deleted(now, "Lost", "the node has no record of this task", generation)));
        }
        if (task.getSpec().desiredState() == TaskSpec.DesiredState.Stopped) {
            return List.of(
                    new TaskAction.WriteStatus(deleted(now, "Cancelled", "stopped before it was started", generation)));
        }
        // Not prepared yet, or going away: no polling, the Container's preparation (or its next event) brings the
        // Task back here. The local record, not the Container's Ready condition, says what is prepared: it is
        // written before that condition and never lags behind it.
        Container c = container.orElse(null);
        if (c == null || c.getMetadata().getDeletionTimestamp() != null) {
            return List.of();
        }
        ContainerRecord prepared = containerRecord.orElse(null);
        if (prepared == null || !prepared.prepares(c.getMetadata().getGeneration())) {
            return stalled(c)
                    .map(why -> List.<TaskAction>of(new TaskAction.WriteStatus(deleted(
                            now,
                            "StartFailed",
                            "Container " + c.getMetadata().getName() + " cannot run on node " + nodeName + ": " + why,
                            generation))))
                    .orElse(List.of());
        }
        // One task per Container, as containerd has it (AlreadyExists): a second one would mount the Container's
        // upper directory twice. The operator binds a Container's Tasks one at a time; a Task bound past it (its
        // spec.nodeName set by hand where no admission policy stops that) ends here rather than waiting, as
        // containerd refuses rather than queues.
        if (containerHolder.isPresent()) {
            TaskRecord holder = containerHolder.get();
            return List.of(new TaskAction.WriteStatus(deleted(
                    now,
                    "AlreadyExists",
                    "Container " + c.getMetadata().getName() + " already has task " + holder.name() + " on node "
                            + nodeName + "; a Container runs one task at a time, and only the operator binds Tasks"
                            + " to nodes (leave spec.nodeName empty)",
                    generation)));
        }
        // The runtime recorded when the Container was prepared: what was reported Ready is what runs.
        return List.of(new TaskAction.Start(prepared.runtime(), prepared, generation));
    }

    /**
     * Why the node gave up on the Container as it is now (Stalled for its current generation), if it did: a Task
     * waiting for it would wait forever. A Stalled condition of an earlier generation says nothing of this one.
     */
    private static Optional<String> stalled(Container c) {
        return Optional.ofNullable(c.getStatus())
                .flatMap(s -> Conditions.find(s.conditions(), Conditions.STALLED))
                .filter(stalled -> "True".equals(stalled.getStatus())
                        && Objects.equals(
                                stalled.getObservedGeneration(), c.getMetadata().getGeneration()))
                .map(stalled -> stalled.getReason() + ": " + stalled.getMessage());
    }

    private TaskStatus deleted(Instant now, String reason, String message, Long generation) {
        return new TaskStatus(
                TaskStatus.Phase.Deleted,
                nodeName,
                null,
                null,
                null,
                rfc3339(now),
                reason,
                message,
                generation,
                stalledIfFailed(reason, message, false, now, generation));
    }

    /**
     * Stalled (kstatus Failed) for a task that ended without doing what was asked; none for one that completed,
     * was cancelled, or was killed by the stop signal it was asked to take. Only final statuses carry it, and the
     * Deleted status is final: the agent never has to take it back.
     */
    static List<Condition> stalledIfFailed(
            String reason, String message, boolean stopRequested, Instant exitedAt, Long generation) {
        boolean asked = "Completed".equals(reason)
                || "Cancelled".equals(reason)
                || (stopRequested && "Signaled".equals(reason));
        if (asked) {
            return null;
        }
        return List.of(new ConditionBuilder()
                .withType(Conditions.STALLED)
                .withStatus("True")
                .withReason(reason)
                .withMessage(message)
                .withObservedGeneration(generation)
                .withLastTransitionTime(rfc3339(exitedAt))
                .build());
    }

    // --- stop and delete --------------------------------------------------------------------------------------

    /**
     * Sends the stop signal once (resuming a paused task first, or it could not act on it) and arms the SIGKILL
     * for the end of the grace period; asked again, only re-arms the SIGKILL (a restarted agent lost its timer).
     */
    private TaskRecord stop(List<TaskAction> plan, TaskRecord rec, TaskSpec spec, Instant now) {
        if (!rec.stopRequested()) {
            long grace = spec.stopGracePeriodSeconds() == null ? DEFAULT_GRACE_SECONDS : spec.stopGracePeriodSeconds();
            // No grace: one SIGKILL now rather than the stop signal followed at once by SIGKILL.
            String signal = grace == 0 ? SIGKILL : spec.stopSignal() == null ? "SIGTERM" : spec.stopSignal();
            rec = save(plan, rec.stopping(now, signal, grace));
            if (rec.state() == TaskRecord.State.PAUSED) {
                plan.add(new TaskAction.Resume());
                rec = save(plan, rec.resumed());
            }
            plan.add(new TaskAction.Signal(signal));
        }
        armKill(plan, rec);
        return rec;
    }

    /**
     * A stop is recorded before its signal is sent, so an agent that died in between never sent it: the signal goes
     * again (a paused task resumed first), as kubelet kills a Pod again with what is left of its grace after a
     * restart. The task gets its stop signal at least once, never only the SIGKILL at the end of the grace period.
     */
    private TaskRecord signalStopAgain(List<TaskAction> plan, TaskRecord rec) {
        if (!rec.stopRequested() || SIGKILL.equals(rec.stopSignal())) {
            return rec;
        }
        if (rec.state() == TaskRecord.State.PAUSED) {
            plan.add(new TaskAction.Resume());
            rec = save(plan, rec.resumed());
        }
        plan.add(new TaskAction.Signal(rec.stopSignal()));
        return rec;
    }

    private static void armKill(List<TaskAction> plan, TaskRecord rec) {
        if (rec.stopRequested() && !SIGKILL.equals(rec.stopSignal())) {
            plan.add(new TaskAction.KillAt(rec.killAt()));
        }
    }

    /** The stop's grace period is over. */
    List<TaskAction> graceOver(TaskRecord rec) {
        return rec != null && rec.live() ? List.of(new TaskAction.Signal(SIGKILL)) : List.of();
    }

    /**
     * The Task object is being deleted: a live task is stopped; an exited one is released and its record goes,
     * which lets the object go. A task being created is waited for (its adoption or failure decides).
     */
    List<TaskAction> remove(Task task, TaskRecord rec, Instant now) {
        if (rec == null || rec.state() == TaskRecord.State.CREATING) {
            return List.of();
        }
        List<TaskAction> plan = new ArrayList<>();
        if (rec.live()) {
            stop(plan, rec, task.getSpec(), now);
            return plan;
        }
        plan.addAll(finish(rec));
        plan.add(new TaskAction.Forget());
        return plan;
    }

    /** A record whose Task object went while the agent was down: whatever it holds goes, and so does the record. */
    List<TaskAction> orphaned() {
        return List.of(new TaskAction.Release(), new TaskAction.Forget());
    }

    // --- exits ----------------------------------------------------------------------------------------------

    /**
     * An exit file appeared for {@code rec} (null: the node has no record of that id).
     *
     * @param taskDirExists whether the task's directory exists (a record may be about to be written)
     */
    List<TaskAction> exited(TaskRecord rec, ExitFile exit, boolean taskDirExists) {
        if (rec == null) {
            return taskDirExists ? List.of() : List.of(new TaskAction.DeleteExitFile());
        }
        if (rec.state() == TaskRecord.State.EXITED) {
            return rec.released() ? List.of(new TaskAction.DeleteExitFile()) : List.of();
        }
        if (exit.code() == null) {
            return List.of(); // not complete yet: the next event has it
        }
        Classified c = classify(exit.code(), exit.oomKilled());
        List<TaskAction> plan = new ArrayList<>();
        rec = save(plan, rec.exited(exit.code(), exit.at(), c.reason(), c.message()));
        plan.addAll(finish(rec));
        return plan;
    }

    record Classified(String reason, String message) {}

    /** Why a process ended, from its exit code (128+N: signal N) and whether the memory cgroup's OOM killer acted. */
    static Classified classify(int code, boolean oomKilled) {
        if (code == 0) {
            return new Classified("Completed", "exited with code 0");
        }
        if (oomKilled) {
            return new Classified("OOMKilled", "killed by the memory cgroup's OOM killer (exit code " + code + ")");
        }
        if (code > 128 && Signals.name(code - 128) != null) {
            return new Classified("Signaled", "killed by " + Signals.name(code - 128));
        }
        return new Classified("Error", "exited with code " + code);
    }

    /** Creating or starting it failed: the task ends StartFailed, and what it holds is released. */
    List<TaskAction> startFailed(TaskRecord rec, String message, Instant now) {
        List<TaskAction> plan = new ArrayList<>();
        rec = save(plan, rec.exited(null, now, "StartFailed", message));
        plan.addAll(finish(rec));
        return plan;
    }

    /** An exited task: its resources are released (once), then Deleted is written (until it lands). */
    private List<TaskAction> finish(TaskRecord rec) {
        List<TaskAction> plan = new ArrayList<>();
        if (!rec.released()) {
            plan.add(new TaskAction.Release());
            rec = save(plan, rec.releasedNow());
        }
        if (!rec.reported()) {
            plan.add(new TaskAction.ReportFinal(statusOf(rec)));
        }
        return plan;
    }

    /**
     * A status write did not land: the record is the truth until one does, so what it says now is written — the
     * final status of an exited task (released first, should that not have happened), the current one of a live
     * task. A task still being created has its status written when the create ends.
     */
    List<TaskAction> unreported(TaskRecord rec) {
        return switch (rec.state()) {
            case EXITED -> finish(rec);
            case CREATING -> List.of();
            default -> List.of(new TaskAction.WriteStatus(statusOf(rec)));
        };
    }

    // --- adoption: a restarted agent and a task it recorded ---------------------------------------------------

    /**
     * The record meets what the runtime reports. A container the runtime holds as created was never started (the
     * agent died between create and start): it is started now, once. One the runtime does not know was never
     * created, or ended with its exit status lost.
     *
     * @param found what the node shows of a live task (null for an exited one: there is nothing to look at)
     */
    List<TaskAction> adopt(TaskRecord rec, Found found, Instant now) {
        if (rec.state() == TaskRecord.State.EXITED) {
            return finish(rec);
        }
        if (found.exitFilePresent()) {
            return List.of(); // exited while the agent was away: the exit watcher's first scan has it
        }
        List<TaskAction> plan = new ArrayList<>();
        String state = found.runtimeState().orElse("");
        if (!found.monitorAlive() && LIVE_RUNTIME_STATES.contains(state)) {
            return monitorLost(rec, found.runtimeState(), now); // never started, or followed, without its monitor
        }
        switch (state) {
            case "created" -> {
                armKill(plan, rec);
                rec = save(plan, rec.created(found.container(), found.conmon()));
                if (!rec.stopRequested()) {
                    plan.add(new TaskAction.StartCreated());
                    rec = save(plan, rec.started(now));
                }
                plan.add(new TaskAction.WriteStatus(statusOf(rec)));
            }
            case "running", "paused" -> {
                armKill(plan, rec);
                TaskRecord.State s = state.equals("running") ? TaskRecord.State.RUNNING : TaskRecord.State.PAUSED;
                rec = save(plan, rec.found(s, found.container(), found.conmon(), now));
                rec = signalStopAgain(plan, rec);
                plan.add(new TaskAction.WriteStatus(statusOf(rec)));
            }
            case "stopped" -> {
                if (found.monitorAlive()) {
                    armKill(plan, rec); // conmon is about to write the exit file
                } else {
                    rec = save(
                            plan,
                            rec.exited(
                                    null,
                                    now,
                                    "Error",
                                    "the process exited while the agent was down and its exit status was lost"));
                    plan.addAll(finish(rec));
                }
            }
            default -> {
                boolean neverStarted = rec.state() == TaskRecord.State.CREATING;
                if (neverStarted && found.monitorAlive()) {
                    plan.add(new TaskAction.AwaitMonitorExit());
                }
                rec = save(
                        plan,
                        rec.exited(
                                null,
                                now,
                                neverStarted ? "StartFailed" : "Error",
                                neverStarted
                                        ? "the agent restarted while creating the task; it was not started"
                                        : "the runtime has no state of this task and its exit status was lost"));
                plan.addAll(finish(rec));
            }
        }
        return plan;
    }

    // --- a monitor that died ---------------------------------------------------------------------------------

    /**
     * The periodic look at a live task's monitor ({@link TaskManager} every {@code MONITOR_CHECK}): nothing to do
     * while its conmon runs, or once its exit file is there (the exit watcher has it), or while it is being created
     * (the create decides).
     */
    List<TaskAction> monitorChecked(TaskRecord rec, Found found, Instant now) {
        if (rec == null
                || !rec.live()
                || rec.state() == TaskRecord.State.CREATING
                || found.monitorAlive()
                || found.exitFilePresent()) {
            return List.of();
        }
        return monitorLost(rec, found.runtimeState(), now);
    }

    /**
     * The task's conmon died without writing an exit file: nothing follows the task any more (its log, its exit).
     * As containerd does when a task's shim dies, a task still there is killed (SIGKILL, by the runtime's forced
     * delete in the release: exit 137), and one already gone ends with its exit status lost. One the runtime still
     * holds as created never ran its command (the agent died during its create, and conmon with it): it is removed
     * the same way and ends as the start failure it was, not as a killed process.
     */
    private List<TaskAction> monitorLost(TaskRecord rec, Optional<String> runtimeState, Instant now) {
        String state = runtimeState.orElse("");
        TaskRecord ended;
        if (state.equals("created")) {
            ended = rec.exited(
                    null,
                    now,
                    "StartFailed",
                    "conmon, the task's monitor, died before the task was started (the agent restarted while"
                            + " creating it); it was not started");
        } else if (LIVE_RUNTIME_STATES.contains(state)) {
            ended = rec.exited(
                    137,
                    now,
                    MONITOR_LOST,
                    "conmon, the task's monitor, died; the task was killed (SIGKILL), as containerd kills a task"
                            + " whose shim died");
        } else {
            ended = rec.exited(
                    null,
                    now,
                    MONITOR_LOST,
                    "conmon, the task's monitor, died; the task had exited and its exit status was lost");
        }
        List<TaskAction> plan = new ArrayList<>();
        rec = save(plan, ended);
        plan.addAll(finish(rec));
        return plan;
    }

    // --- status ---------------------------------------------------------------------------------------------

    static TaskStatus.Phase phaseOf(TaskRecord rec) {
        return switch (rec.state()) {
            case CREATING -> TaskStatus.Phase.Pending;
            case CREATED -> rec.stopRequested() ? TaskStatus.Phase.Stopped : TaskStatus.Phase.Created;
            case RUNNING -> rec.stopRequested() ? TaskStatus.Phase.Stopped : TaskStatus.Phase.Running;
            case PAUSED -> TaskStatus.Phase.Paused;
            case EXITED -> rec.released() ? TaskStatus.Phase.Deleted : TaskStatus.Phase.Stopped;
        };
    }

    /** The Task status a record stands for. */
    TaskStatus statusOf(TaskRecord rec) {
        TaskStatus.Phase phase = phaseOf(rec);
        String reason;
        String message;
        switch (phase) {
            case Created -> {
                reason = "Created";
                message = "created by " + rec.runtime() + " under conmon";
            }
            case Running -> {
                reason = "Started";
                message = "running as pid " + rec.pid();
            }
            case Paused -> {
                reason = "Paused";
                message = "frozen";
            }
            case Stopped -> {
                reason = "Stopping";
                message = rec.stopSignal() == null
                        ? "exiting"
                        : "sent " + rec.stopSignal() + "; SIGKILL after " + rec.stopGracePeriodSeconds() + "s";
            }
            default -> {
                reason = rec.reason();
                message = rec.message();
            }
        }
        return new TaskStatus(
                phase,
                nodeName,
                rec.pid(),
                rfc3339(rec.startedAt()),
                rec.exitCode(),
                phase == TaskStatus.Phase.Deleted ? rfc3339(rec.exitedAt()) : null,
                reason,
                message,
                phase == TaskStatus.Phase.Deleted || rec.network() == null
                        ? null
                        : rec.network().ips(),
                rec.generation(),
                phase == TaskStatus.Phase.Deleted
                        ? stalledIfFailed(reason, message, rec.stopRequested(), rec.exitedAt(), rec.generation())
                        : null);
    }

    /** Status times are whole seconds, as Kubernetes writes its own. */
    private static String rfc3339(Instant at) {
        return at == null ? null : at.truncatedTo(ChronoUnit.SECONDS).toString();
    }

    private static TaskRecord save(List<TaskAction> plan, TaskRecord rec) {
        plan.add(new TaskAction.Save(rec));
        return rec;
    }
}
