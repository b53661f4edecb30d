package dev.stevedore.agent.tasks;

import dev.stevedore.agent.containers.ContainerRecord;
import dev.stevedore.agent.containers.ContainerRecords;
import dev.stevedore.agent.network.TaskNetwork;
import dev.stevedore.agent.network.TaskNetworks;
import dev.stevedore.agent.snapshots.Mount;
import dev.stevedore.agent.snapshots.Snapshotter;
import java.io.IOException;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Carries out the plans of {@link TaskDecisions} against the OCI runtime, the task records, the node's resources
 * and the API server, in order, one task at a time (the caller holds the task's lock). A runtime command that fails
 * ends the plan: the task is looked at again shortly, and an exit in between settles it.
 */
final class TaskExecutor implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(TaskExecutor.class);

    /**
     * When to look at the task again (null: on its next event), whether its record went, and how the plan's status
     * write went.
     */
    record Outcome(Duration lookAgain, boolean forgotten, StatusWrite status) {}

    enum StatusWrite {
        /** The plan wrote no status. */
        NONE,
        LANDED,
        /** A status write did not land: the record says what is still owed, and it is tried again. */
        OWED
    }

    private final TaskRecords records;
    private final ContainerRecords containers;
    private final Map<String, Snapshotter> snapshotters;
    private final Runtimes runtimes;
    private final TaskResources resources;
    private final TaskNetworks networks;
    private final TaskStatusWriter statuses;
    private final TaskEvents events;
    private final TaskMetrics metrics;
    private final TaskDecisions decisions;
    private final long logSizeMax;
    private final BindSources bindSources;
    private final Clock clock;
    private final Consumer<String> graceOver;
    private final Set<String> killTimers = ConcurrentHashMap.newKeySet();
    private final ScheduledExecutorService timers = Executors.newSingleThreadScheduledExecutor(r -> {
        Thread t = new Thread(r, "task-stop-timer");
        t.setDaemon(true);
        return t;
    });

    /** @param graceOver called with a task's UID when the grace period of its stop is over */
    TaskExecutor(
            TaskRecords records,
            ContainerRecords containers,
            Map<String, Snapshotter> snapshotters,
            Runtimes runtimes,
            TaskResources resources,
            TaskNetworks networks,
            TaskStatusWriter statuses,
            TaskEvents events,
            TaskMetrics metrics,
            TaskDecisions decisions,
            long logSizeMax,
            BindSources bindSources,
            Clock clock,
            Consumer<String> graceOver) {
        this.records = records;
        this.containers = containers;
        this.snapshotters = snapshotters;
        this.runtimes = runtimes;
        this.resources = resources;
        this.networks = networks;
        this.statuses = statuses;
        this.events = events;
        this.metrics = metrics;
        this.decisions = decisions;
        this.logSizeMax = logSizeMax;
        this.bindSources = bindSources;
        this.clock = clock;
        this.graceOver = graceOver;
    }

    /** Runs {@code plan} for {@code task}, whose record was {@code rec} (null: none) when the plan was made. */
    Outcome execute(TaskRef task, TaskRecord rec, List<TaskAction> plan) throws IOException {
        TaskRecord current = rec;
        Duration again = null;
        StatusWrite status = StatusWrite.NONE;
        for (TaskAction action : plan) {
            try {
                if (action instanceof TaskAction.Start start) {
                    return start(task, start);
                } else if (action instanceof TaskAction.Save save) {
                    current = save.record();
                    records.put(current);
                } else if (action instanceof TaskAction.StartCreated) {
                    runtime(current).start(current.runtimeId());
                    events.started(
                            task,
                            current.process() == null ? null : current.process().pid(),
                            current.runtime());
                } else if (action instanceof TaskAction.Pause) {
                    runtime(current).pause(current.runtimeId());
                } else if (action instanceof TaskAction.Resume) {
                    runtime(current).resume(current.runtimeId());
                } else if (action instanceof TaskAction.Signal signal) {
                    runtime(current).kill(current.runtimeId(), Signals.number(signal.signal()));
                    events.signalled(task, signal.signal());
                } else if (action instanceof TaskAction.KillAt kill) {
                    armKill(current.uid(), kill.at());
                } else if (action instanceof TaskAction.AwaitMonitorExit) {
                    resources.awaitConmonExit(current);
                } else if (action instanceof TaskAction.Release) {
                    resources.release(current);
                } else if (action instanceof TaskAction.WriteStatus write) {
                    status = statuses.write(task, write.status()) == TaskStatusWriter.Result.NOT_WRITTEN
                            ? StatusWrite.OWED
                            : StatusWrite.LANDED;
                } else if (action instanceof TaskAction.ReportFinal report) {
                    switch (statuses.write(task, report.status())) {
                        case WRITTEN -> {
                            current = current.reportedNow();
                            records.put(current);
                            status = StatusWrite.LANDED;
                            events.ended(task, report.status());
                            metrics.ended(
                                    report.status(),
                                    report.status().exitCode() == null || current.exitedAt() == null
                                            ? null
                                            : Duration.between(current.exitedAt(), clock.instant()));
                        }
                        case TASK_GONE -> {
                            LOG.info(
                                    "task {}/{} ({}) has no Task object any more: its record goes",
                                    task.namespace(),
                                    task.name(),
                                    task.uid());
                            forget(current);
                            return new Outcome(again, true, StatusWrite.LANDED);
                        }
                        case NOT_WRITTEN -> status = StatusWrite.OWED;
                    }
                } else if (action instanceof TaskAction.Forget) {
                    forget(current);
                    return new Outcome(again, true, status);
                } else if (action instanceof TaskAction.DeleteExitFile) {
                    records.deleteExitFile(task.uid());
                } else if (action instanceof TaskAction.LookAgain look) {
                    again = look.after();
                }
            } catch (RuntimeCommandException e) {
                // The process may just have exited: its exit event settles it.
                LOG.info("task {}/{}: {}", task.namespace(), task.name(), e.getMessage());
                return new Outcome(TaskDecisions.NOT_READY_RETRY, false, status);
            }
        }
        return new Outcome(again, false, status);
    }

    /**
     * The start path, which the benchmarks measure: two record writes (CREATING before anything, with the network
     * attachment it is about to make; RUNNING after the start, with its result), the network's attachment, the
     * runtime's create and start, and one status write.
     */
    private Outcome start(TaskRef task, TaskAction.Start start) throws IOException {
        long began = System.nanoTime();
        String uid = task.uid();
        ContainerRecord container = start.container();
        TaskNetworks.Plan network;
        try {
            network = networks.plan(uid, container.network());
        } catch (TaskNetworks.NetworkUnavailableException e) {
            TaskRecord rec = creating(task, start, null);
            records.put(rec);
            return startFailed(task, rec, e.getMessage());
        }
        // Recorded before anything is made: whatever happens next, the release knows what to detach.
        TaskRecord rec = creating(task, start, network.attachment());
        records.put(rec);
        Snapshotter snapshotter = snapshotters.get(container.snapshotter());
        Optional<List<Mount>> mounts =
                snapshotter == null ? Optional.empty() : snapshotter.mounts(container.snapshotKey());
        if (mounts.isEmpty()) {
            return startFailed(task, rec, "the Container's rootfs snapshot " + container.snapshotKey() + " is missing");
        }
        TaskNetwork attached = null;
        if (network.attachment() != null) {
            try {
                attached = networks.attach(uid, network.attachment());
            } catch (IOException e) {
                return startFailed(
                        task,
                        rec,
                        "attaching to network " + network.attachment().network() + ": " + e.getMessage());
            }
        }
        try {
            TaskNetwork inBundle = attached;
            Bundles.create(
                    records.bundle(uid),
                    containers.specFile(container.uid(), container.specDigest()),
                    uid,
                    mounts.get(),
                    bindSources,
                    (spec, bundle) -> networks.configure(spec, bundle, network, inBundle));
        } catch (IOException e) {
            return startFailed(task, rec, "preparing the bundle: " + e.getMessage());
        }
        OciRuntime runtime = runtimes.named(start.runtime());
        long pid;
        try {
            pid = runtime.create(
                    uid,
                    records.bundle(uid),
                    records.taskDir(uid),
                    records.exitDir(),
                    records.socketDir(),
                    records.conmonDir(uid),
                    records.log(uid),
                    logSizeMax);
        } catch (RuntimeCommandException | IOException e) {
            return startFailed(task, rec, e.getMessage());
        }
        // Neither recorded nor reported: should the agent die before the start, adoption finds the runtime's
        // "created" and starts it; the status goes out once, as Running, a round trip sooner.
        rec = rec.created(TaskResources.identify(pid), resources.newConmon(uid));
        try {
            runtime.start(uid);
        } catch (RuntimeCommandException e) {
            return startFailed(task, rec, e.getMessage());
        }
        rec = rec.started(clock.instant());
        if (attached != null) {
            rec = rec.attached(attached);
        }
        records.put(rec);
        LOG.info("task {}/{} started: pid {} ({})", task.namespace(), task.name(), pid, start.runtime());
        events.started(task, pid, start.runtime());
        boolean written = statuses.write(task, decisions.statusOf(rec)) != TaskStatusWriter.Result.NOT_WRITTEN;
        metrics.started(Duration.ofNanos(System.nanoTime() - began));
        return new Outcome(null, false, written ? StatusWrite.LANDED : StatusWrite.OWED);
    }

    private TaskRecord creating(TaskRef task, TaskAction.Start start, TaskNetwork attachment) {
        ContainerRecord container = start.container();
        return TaskRecord.creating(
                task.uid(),
                task.namespace(),
                task.name(),
                container.uid(),
                container.snapshotter(),
                container.snapshotKey(),
                start.runtime(),
                records.bundle(task.uid()).toString(),
                start.generation(),
                attachment);
    }

    private Outcome startFailed(TaskRef task, TaskRecord rec, String message) throws IOException {
        LOG.info("task {}/{} failed to start: {}", task.namespace(), task.name(), message);
        return execute(task, rec, decisions.startFailed(rec, message, clock.instant()));
    }

    /** Once per task: a second stop, or an adoption, while the timer is armed does not arm another. */
    private void armKill(String uid, Instant at) {
        if (!killTimers.add(uid)) {
            return;
        }
        long delay = Math.max(0, Duration.between(clock.instant(), at).toMillis());
        timers.schedule(
                () -> {
                    try {
                        graceOver.accept(uid);
                    } finally {
                        killTimers.remove(uid);
                    }
                },
                delay,
                TimeUnit.MILLISECONDS);
    }

    private void forget(TaskRecord rec) throws IOException {
        records.delete(rec.uid());
        records.deleteExitFile(rec.runtimeId());
    }

    private OciRuntime runtime(TaskRecord rec) {
        return runtimes.named(rec.runtime());
    }

    @Override
    public void close() {
        timers.shutdownNow();
    }
}
