package dev.stevedore.agent.tasks;

import dev.stevedore.agent.containers.ContainerRecord;
import dev.stevedore.agent.containers.ContainerRecords;
import dev.stevedore.agent.logs.LogLimits;
import dev.stevedore.agent.logs.TaskLogFiles;
import dev.stevedore.agent.network.TaskNetworks;
import dev.stevedore.agent.snapshots.Snapshotter;
import dev.stevedore.api.EventRecorder;
import dev.stevedore.api.v1alpha1.Container;
import dev.stevedore.api.v1alpha1.Task;
import io.fabric8.kubernetes.client.KubernetesClient;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Runs this node's tasks. Each event — the Task object changed or is being deleted, an exit file appeared (seen at
 * once through {@link ExitWatcher}), a stop's grace period ended — is handled under the task's lock in three steps:
 * read what the node has (the task's record, the exit file), let {@link TaskDecisions} say what to do, and let
 * {@link TaskExecutor} do it. At start, {@link TaskAdoption} takes the recorded tasks back and {@link OrphanSweep}
 * removes what no Task object wants any more.
 *
 * <p>A status write that does not land, whichever event led to it, is tried again ({@link StatusRetries}) from the
 * task's record until it lands or the Task is gone: an exit seen while the API server is away is reported within
 * seconds of its return, with no event of the Task needed. The API server's absence changes nothing on the node.
 */
public final class TaskManager implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(TaskManager.class);
    private static final Pattern UID = Pattern.compile("[a-f0-9-]{1,64}");
    /** How often each live task's conmon is looked at, as kubelet relists its containers every second or so. */
    static final Duration MONITOR_CHECK = Duration.ofSeconds(2);
    /** How often live tasks' logs are looked at for rotation: kubelet's containerLogMonitorInterval. */
    static final Duration LOG_ROTATION_CHECK = Duration.ofSeconds(10);

    private final KubernetesClient client;
    private final TaskRecords records;
    private final ContainerRecords containers;
    private final TaskResources resources;
    private final TaskDecisions decisions;
    private final TaskExecutor executor;
    private final Runtimes runtimes;
    private final TaskMetrics metrics;
    private final LogLimits logLimits;
    private final TaskAdoption adoption;
    private final OrphanSweep sweep;
    private final TaskLocks locks = new TaskLocks();
    private final StatusRetries retries;
    private final Clock clock = Clock.systemUTC();
    private final ExecutorService exits = Executors.newFixedThreadPool(2, r -> {
        Thread t = new Thread(r, "task-exit");
        t.setDaemon(true);
        return t;
    });
    private final ScheduledExecutorService monitorChecks = Executors.newSingleThreadScheduledExecutor(r -> {
        Thread t = new Thread(r, "task-monitor-check");
        t.setDaemon(true);
        return t;
    });
    private ExitWatcher watcher;

    public TaskManager(
            KubernetesClient client,
            String nodeName,
            TaskRecords records,
            ContainerRecords containers,
            Map<String, Snapshotter> snapshotters,
            LogLimits logLimits,
            Runtimes runtimes,
            BindSources bindSources,
            TaskNetworks networks,
            EventRecorder events,
            TaskMetrics metrics) {
        this.client = client;
        this.records = records;
        this.containers = containers;
        this.resources = new TaskResources(records, runtimes, networks);
        this.runtimes = runtimes;
        this.metrics = metrics;
        this.logLimits = logLimits;
        this.decisions = new TaskDecisions(nodeName);
        this.executor = new TaskExecutor(
                records,
                containers,
                snapshotters,
                runtimes,
                resources,
                networks,
                new TaskStatusWriter(client),
                new TaskEvents(events),
                metrics,
                decisions,
                logLimits.conmonBackstop(),
                bindSources,
                clock,
                this::graceOver);
        this.adoption = new TaskAdoption(records, runtimes, resources, decisions, executor, clock);
        this.retries = new StatusRetries(Backoff.STATUS_WRITES, uid -> exits.submit(() -> retryStatus(uid)));
        this.sweep = new OrphanSweep(client, nodeName, records, runtimes, decisions, executor, locks);
    }

    /** Re-adopts the recorded tasks, cleans up what no Task object wants any more, then watches for exits. */
    public void start() throws IOException {
        records.removeLeftovers();
        watcher = new ExitWatcher(records.exitDirs(), id -> exits.submit(() -> exited(id)));
        for (TaskRecord r : records.list()) {
            try {
                locks.with(r.uid(), () -> settle(r.uid(), adoption.adopt(r.uid())));
            } catch (IOException e) {
                // A full disk must not keep the agent from starting: the exit watcher's first scan, the conmon
                // checks and the Task's next reconcile (which adopts a CREATING record) settle it then.
                LOG.warn("adopting task {}/{}: {}", r.namespace(), r.name(), e.toString());
            }
        }
        sweep.run();
        watcher.start();
        monitorChecks.scheduleWithFixedDelay(
                this::checkMonitors, MONITOR_CHECK.toMillis(), MONITOR_CHECK.toMillis(), TimeUnit.MILLISECONDS);
        monitorChecks.scheduleWithFixedDelay(
                this::rotateLogs, LOG_ROTATION_CHECK.toMillis(), LOG_ROTATION_CHECK.toMillis(), TimeUnit.MILLISECONDS);
    }

    @Override
    public void close() {
        try {
            if (watcher != null) {
                watcher.close();
            }
        } catch (IOException e) {
            LOG.debug("closing the exit watcher", e);
        }
        monitorChecks.shutdownNow();
        executor.close();
        retries.close();
        exits.shutdown();
        try {
            exits.awaitTermination(30, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    // --- queries -------------------------------------------------------------------------------------------

    public int runningTasks() {
        return (int) records.list().stream().filter(TaskRecord::live).count();
    }

    /** Reads the live tasks' usage into their metrics, for a scrape. */
    public void refreshMetrics() {
        metrics.refresh(records.list().stream().filter(TaskRecord::live).toList());
    }

    /** Whether a task holds this active snapshot (its rootfs may be mounted). */
    public boolean snapshotInUse(String key) {
        return records.list().stream().anyMatch(r -> r.holdsRootfs() && key.equals(r.snapshotKey()));
    }

    public boolean containerInUse(String containerUid) {
        return holderOf(containerUid, null).isPresent();
    }

    /** The task's log on this node, kept until its Task object goes. */
    public TaskLogFiles logFiles(String taskUid) {
        return new TaskLogFiles(records.log(taskUid), logLimits);
    }

    /** Starts {@code command} in the running task {@code taskUid}; the caller closes it. */
    public TaskExec exec(String taskUid, List<String> command, boolean tty) throws IOException {
        TaskRecord rec = record(taskUid)
                .filter(r -> r.state() == TaskRecord.State.RUNNING)
                .orElseThrow(() -> new IllegalStateException("the task is not running"));
        return TaskExec.start(records, runtimes.named(rec.runtime()), rec, command, tty);
    }

    /** The record of the task with this UID on this node, live or ended (until its Task object goes). */
    public Optional<TaskRecord> record(String taskUid) {
        return UID.matcher(taskUid).matches() ? records.get(taskUid) : Optional.empty();
    }

    // --- events --------------------------------------------------------------------------------------------

    /**
     * Moves the task toward its spec; returns when to look again (null: on the next event).
     *
     * @param container the Task's Container as this node's informer has it, if it has it
     */
    public Duration reconcile(Task task, Optional<Container> container) throws IOException {
        String uid = task.getMetadata().getUid();
        return locks.with(uid, () -> {
            TaskRecord rec = records.get(uid).orElse(null);
            if (rec != null && rec.state() == TaskRecord.State.CREATING) {
                // Under the task's lock no create is under way: this one was cut short by a record write that failed
                // (a full disk) after the runtime's create or start. What the runtime shows decides, as after a
                // restart; waiting would leave it CREATING until the agent restarts.
                TaskExecutor.Outcome outcome = adoption.adopt(uid);
                settle(uid, outcome);
                return outcome.lookAgain();
            }
            if (rec != null || container.isEmpty()) {
                return decideAndExecute(task, rec, container, Optional.empty(), Optional.empty());
            }
            Optional<Container> current = current(task);
            if (current.isEmpty()) {
                return decideAndExecute(task, null, current, Optional.empty(), Optional.empty());
            }
            // Only a task without a record can start, and only then are the Container's record and holder needed;
            // deciding and writing the first record under the Container's start lock, no two of its tasks start.
            String containerUid = current.get().getMetadata().getUid();
            return locks.withStartOf(containerUid, () -> {
                Optional<ContainerRecord> prepared = containers.get(containerUid);
                // Only a prepared Container can start a task: only then is it worth reading the other records.
                Optional<TaskRecord> holder = prepared.isPresent() ? holderOf(containerUid, uid) : Optional.empty();
                return decideAndExecute(task, null, current, prepared, holder);
            });
        });
    }

    private Duration decideAndExecute(
            Task task,
            TaskRecord rec,
            Optional<Container> container,
            Optional<ContainerRecord> prepared,
            Optional<TaskRecord> holder)
            throws IOException {
        String uid = task.getMetadata().getUid();
        List<TaskAction> plan = decisions.reconcile(task, rec, container, prepared, holder, clock.instant());
        TaskExecutor.Outcome outcome = executor.execute(TaskRef.of(task), rec, plan);
        Duration retry = settle(uid, outcome);
        // What a task without a record owes its Task (Cancelled, Lost, StartFailed...) is decided from the Task
        // alone, not from a record: the reconciler decides it again after the same wait.
        if (retry != null && records.get(uid).isEmpty()) {
            return retry;
        }
        return outcome.lookAgain();
    }

    /** A task of the Container, other than {@code taskUid} (if given), that holds its rootfs here. */
    private Optional<TaskRecord> holderOf(String containerUid, String taskUid) {
        return records.list().stream()
                .filter(r -> r.holdsRootfs()
                        && containerUid.equals(r.containerUid())
                        && !r.uid().equals(taskUid))
                .findFirst();
    }

    /**
     * The Task's Container as the API server has it now. Tasks and Containers reach this node through two watches
     * with no order between them: a Task created right after its author changed the Container can arrive before
     * that change, and the cached Container would start it on the previous generation's spec. So a start is decided
     * on a fresh read: one GET, for a Task that has no record yet.
     */
    private Optional<Container> current(Task task) {
        return Optional.ofNullable(client.resources(Container.class)
                .inNamespace(task.getMetadata().getNamespace())
                .withName(task.getSpec().container())
                .get());
    }

    /**
     * For a Task being deleted: stops it if live; once it has exited and is released, removes the record and log.
     * Returns true when the finalizer may go.
     */
    public boolean remove(Task task) throws IOException {
        String uid = task.getMetadata().getUid();
        return locks.with(uid, () -> {
            TaskRecord rec = records.get(uid).orElse(null);
            if (rec == null) {
                return true;
            }
            TaskExecutor.Outcome outcome =
                    executor.execute(TaskRef.of(task), rec, decisions.remove(task, rec, clock.instant()));
            settle(uid, outcome);
            return outcome.forgotten();
        });
    }

    /** An exit file appeared (or was there at start). */
    void exited(String id) {
        if (!UID.matcher(id).matches()) {
            return; // conmon's temporary file before the rename
        }
        try {
            locks.with(id, () -> {
                TaskRecord rec = records.get(id).orElse(null);
                TaskDecisions.ExitFile exit = rec != null && rec.live() ? readExit(rec) : null;
                boolean taskDirExists = rec == null && Files.exists(records.taskDir(id));
                TaskRef ref = rec != null ? TaskRef.of(rec) : new TaskRef(null, null, id);
                return settle(id, executor.execute(ref, rec, decisions.exited(rec, exit, taskDirExists)));
            });
        } catch (IOException | RuntimeException e) {
            LOG.warn("handling the exit of {}: {}", id, e.toString());
        }
    }

    private TaskDecisions.ExitFile readExit(TaskRecord rec) throws IOException {
        Path file = records.exitFile(rec.runtimeId());
        Optional<Integer> code = TaskResources.exitCode(file);
        if (code.isEmpty()) {
            return new TaskDecisions.ExitFile(null, null, false);
        }
        // The cgroup is read only for a failure: a clean exit was no OOM kill.
        boolean oomKilled = code.get() != 0 && resources.oomKilled(rec);
        return new TaskDecisions.ExitFile(
                code.get(), Files.getLastModifiedTime(file).toInstant(), oomKilled);
    }

    /**
     * Each live task's conmon still runs, or it left an exit file: the conmon recorded, checked by its start time.
     * One that died without an exit file leaves its task unwatched; {@link TaskDecisions#monitorChecked} ends it. An
     * exit file of a task still recorded live is an exit whose handling failed (its record write, on a full disk) or
     * is queued: handled (again; a second handling finds the record exited), as the watcher fires only once. That
     * holds for a task whose record still says CREATING too: its start was cut short by a failed record write after
     * the runtime started it, and it has exited since; nothing else would look at it again.
     */
    void checkMonitors() {
        try {
            for (TaskRecord r : records.list()) {
                if (!r.live()
                        || resources.conmon(r).filter(ProcessHandle::isAlive).isPresent()) {
                    continue;
                }
                if (Files.exists(records.exitFile(r.runtimeId()))) {
                    exited(r.runtimeId());
                } else if (r.state() != TaskRecord.State.CREATING) {
                    locks.with(r.uid(), () -> monitorGone(r.uid()));
                }
            }
        } catch (IOException | RuntimeException e) {
            // Thrown out of a scheduled run, it would end the checks for good.
            LOG.warn("checking the tasks' conmons: {}", e.toString());
        }
    }

    /** Rotates each live task's log that has reached its maximum size, as kubelet's container log manager does. */
    void rotateLogs() {
        for (TaskRecord r : records.list()) {
            if (r.live() && r.state() != TaskRecord.State.CREATING) {
                try {
                    logFiles(r.uid()).rotateIfFull(records.bundle(r.uid()).resolve("ctl"), clock);
                } catch (IOException | RuntimeException e) {
                    LOG.warn("rotating the log of task {}/{}: {}", r.namespace(), r.name(), e.toString());
                }
            }
        }
    }

    private Duration monitorGone(String uid) throws IOException {
        TaskRecord rec = records.get(uid).orElse(null);
        if (rec == null || !rec.live()) {
            return null;
        }
        List<TaskAction> plan = decisions.monitorChecked(rec, adoption.look(rec), clock.instant());
        if (!plan.isEmpty()) {
            LOG.info("task {}/{}: its conmon died without writing an exit file", rec.namespace(), rec.name());
        }
        return settle(uid, executor.execute(TaskRef.of(rec), rec, plan));
    }

    /** A stop's grace period ended: SIGKILL unless the task has exited meanwhile. */
    private void graceOver(String uid) {
        try {
            locks.with(uid, () -> {
                TaskRecord rec = records.get(uid).orElse(null);
                List<TaskAction> plan = decisions.graceOver(rec);
                if (!plan.isEmpty()) {
                    LOG.info("task {}/{}: grace period over, SIGKILL", rec.namespace(), rec.name());
                }
                return settle(
                        uid, executor.execute(rec == null ? new TaskRef(null, null, uid) : TaskRef.of(rec), rec, plan));
            });
        } catch (IOException | RuntimeException e) {
            LOG.warn("SIGKILL {}: {}", uid, e.toString());
        }
    }

    /**
     * A status write of the task did not land (or the retry before this one failed on the node): what its record
     * says now is written.
     */
    private void retryStatus(String uid) {
        try {
            locks.with(uid, () -> {
                TaskRecord rec = records.get(uid).orElse(null);
                if (rec == null) {
                    // Gone with its record (its failures were cleared then), or a Task that never had one: what
                    // it is owed is decided again from the Task (see decideAndExecute).
                    locks.forget(uid);
                    return null;
                }
                return settle(uid, executor.execute(TaskRef.of(rec), rec, decisions.unreported(rec)));
            });
        } catch (IOException | RuntimeException e) {
            LOG.warn("retrying the status of {}: {}", uid, e.toString());
            retries.failed(uid);
        }
    }

    /**
     * What follows an outcome whatever event led to it: a task whose record went has no lock either, and a status
     * write that did not land is tried again. Returns how long until then, null when nothing is owed.
     */
    private Duration settle(String uid, TaskExecutor.Outcome outcome) {
        if (outcome.forgotten()) {
            locks.forget(uid);
            retries.landed(uid);
            return null;
        }
        return switch (outcome.status()) {
            case OWED -> retries.failed(uid);
            case LANDED -> {
                retries.landed(uid);
                yield null;
            }
            case NONE -> null;
        };
    }
}
