package dev.stevedore.agent.tasks;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.ReentrantLock;
import java.util.regex.Pattern;

import dev.stevedore.agent.containers.ContainerRecord;
import dev.stevedore.agent.containers.ContainerRecords;
import dev.stevedore.agent.node.RuntimeNodeReporter;
import dev.stevedore.agent.snapshots.Mount;
import dev.stevedore.agent.snapshots.Snapshotter;
import dev.stevedore.api.v1alpha1.Container;
import dev.stevedore.api.v1alpha1.Task;
import dev.stevedore.api.v1alpha1.TaskSpec;
import dev.stevedore.api.v1alpha1.TaskStatus;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.fabric8.kubernetes.client.dsl.base.PatchContext;
import io.fabric8.kubernetes.client.dsl.base.PatchType;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Runs this node's tasks: start under conmon, pause, resume, stop, and on exit (seen at once through the exit
 * directory) release everything and write Deleted with the exit status in one status write. Every step is
 * recorded first in {@link TaskRecords}, so a restarted agent re-adopts what runs and never starts a task twice.
 */
public final class TaskManager implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(TaskManager.class);
    private static final Pattern UID = Pattern.compile("[a-f0-9-]{1,64}");
    private static final PatchContext APPLY = new PatchContext.Builder().withPatchType(PatchType.SERVER_SIDE_APPLY)
            .withFieldManager(RuntimeNodeReporter.FIELD_MANAGER).withForce(true).build();
    public static final long DEFAULT_LOG_SIZE_MAX = 10L * 1024 * 1024;
    static final Duration NOT_READY_RETRY = Duration.ofSeconds(2);
    /**
     * Tests only: {@code -Dstevedore.test.haltAfterCreate=<namespace>/<task>} makes the agent halt (no shutdown hooks,
     * as a SIGKILL would) right after that task's runtime create, before anything about it is written.
     */
    static final String HALT_AFTER_CREATE_PROPERTY = "stevedore.test.haltAfterCreate";
    private static final String HALT_AFTER_CREATE = System.getProperty(HALT_AFTER_CREATE_PROPERTY);

    private final KubernetesClient client;
    private final String nodeName;
    private final TaskRecords records;
    private final ContainerRecords containers;
    private final Map<String, Snapshotter> snapshotters;
    private final long logSizeMax;
    private final Runtimes runtimes;
    private final TaskResources resources;
    private final Map<String, ReentrantLock> locks = new ConcurrentHashMap<>();
    private final Set<String> killTimers = ConcurrentHashMap.newKeySet();
    private final ExecutorService exits = Executors.newFixedThreadPool(2, daemon("task-exit"));
    private final ScheduledExecutorService timers = Executors.newSingleThreadScheduledExecutor(daemon("task-stop-timer"));
    private ExitWatcher watcher;

    public TaskManager(KubernetesClient client, String nodeName, TaskRecords records, ContainerRecords containers,
            Map<String, Snapshotter> snapshotters, long logSizeMax, Runtimes runtimes) {
        this.client = client;
        this.nodeName = nodeName;
        this.records = records;
        this.containers = containers;
        this.snapshotters = snapshotters;
        this.logSizeMax = logSizeMax;
        this.runtimes = runtimes;
        this.resources = new TaskResources(records, runtimes);
    }

    /** Re-adopts the recorded tasks, cleans up what no Task object wants any more, then watches for exits. */
    public void start() throws IOException {
        records.removeLeftovers();
        watcher = new ExitWatcher(records.exitDir(), id -> exits.submit(() -> exited(id)));
        for (TaskRecord r : records.list()) {
            withLock(r.uid(), () -> adopt(r.uid()));
        }
        removeOrphans();
        watcher.start();
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
        timers.shutdownNow();
        exits.shutdown();
        try {
            exits.awaitTermination(30, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    // --- queries -------------------------------------------------------------------------------------------

    public int runningTasks() {
        return (int) records.list().stream().filter(r -> r.state() != TaskRecord.State.EXITED).count();
    }

    /** Whether a task holds this active snapshot (its rootfs may be mounted). */
    public boolean snapshotInUse(String key) {
        return records.list().stream().anyMatch(r -> r.holdsRootfs() && key.equals(r.snapshotKey()));
    }

    public boolean containerInUse(String containerUid) {
        return records.list().stream().anyMatch(r -> r.holdsRootfs() && containerUid.equals(r.containerUid()));
    }

    public Path logFile(String taskUid) {
        return records.log(taskUid);
    }

    // --- reconcile -----------------------------------------------------------------------------------------

    /**
     * Moves the task toward its spec; returns when to look again (null: on the next event).
     *
     * @param container the Task's Container as this node's informer has it, if it has it
     */
    public Duration reconcile(Task task, Optional<Container> container) throws IOException {
        String uid = task.getMetadata().getUid();
        return withLock(uid, () -> reconcileLocked(task, container));
    }

    private Duration reconcileLocked(Task task, Optional<Container> container) throws IOException {
        String uid = task.getMetadata().getUid();
        TaskRecord rec = records.get(uid).orElse(null);
        TaskSpec spec = task.getSpec();
        TaskStatus status = task.getStatus();
        TaskStatus.Phase phase = status == null ? null : status.phase();
        if (rec == null) {
            if (phase == TaskStatus.Phase.Deleted) {
                return null;
            }
            if (phase != null && phase != TaskStatus.Phase.Pending) {
                writeStatus(task, new TaskStatus(TaskStatus.Phase.Deleted, nodeName, null, null, null, now(), "Lost",
                        "the node has no record of this task", task.getMetadata().getGeneration(), null));
                return null;
            }
            if (spec.desiredState() == TaskSpec.DesiredState.Stopped) {
                writeStatus(task, new TaskStatus(TaskStatus.Phase.Deleted, nodeName, null, null, null, now(), "Cancelled",
                        "stopped before it was started", task.getMetadata().getGeneration(), null));
                return null;
            }
            return startTask(task, container);
        }
        if (!java.util.Objects.equals(rec.generation(), task.getMetadata().getGeneration())) {
            rec = rec.withGeneration(task.getMetadata().getGeneration());
            records.put(rec);
        }
        if (rec.state() == TaskRecord.State.EXITED) {
            rec = finishExited(rec);
            return rec.reported() ? null : NOT_READY_RETRY;
        }
        if (rec.state() == TaskRecord.State.CREATING) {
            return NOT_READY_RETRY;
        }
        ConmonRuntime runtime = runtimes.named(rec.runtime());
        try {
            if (spec.desiredState() == TaskSpec.DesiredState.Stopped) {
                rec = stop(rec, spec.stopSignal(), spec.stopGracePeriodSeconds());
            } else if (rec.stopRequestedAt() == null && spec.desiredState() == TaskSpec.DesiredState.Paused
                    && rec.state() == TaskRecord.State.RUNNING) {
                runtime.pause(rec.runtimeId());
                rec = rec.withState(TaskRecord.State.PAUSED);
                records.put(rec);
            } else if (rec.stopRequestedAt() == null && spec.desiredState() == TaskSpec.DesiredState.Running
                    && rec.state() == TaskRecord.State.PAUSED) {
                runtime.resume(rec.runtimeId());
                rec = rec.withState(TaskRecord.State.RUNNING);
                records.put(rec);
            }
        } catch (ConmonRuntime.RuntimeException e) {
            // The process may just have exited: its exit event settles it.
            LOG.info("task {}/{}: {}", rec.namespace(), rec.name(), e.getMessage());
            return NOT_READY_RETRY;
        }
        if (status == null || phase != phaseOf(rec) || !java.util.Objects.equals(status.reason(), statusOf(rec).reason())
                || !java.util.Objects.equals(status.observedGeneration(), rec.generation())) {
            report(rec);
        }
        return null;
    }

    private Duration startTask(Task task, Optional<Container> cached) throws IOException {
        String uid = task.getMetadata().getUid();
        String ns = task.getMetadata().getNamespace();
        // Not prepared yet, or going away: no polling, the Container's preparation (or its next event) brings the
        // Task back here. The local record, not the Container's Ready condition, says what is prepared: it is written
        // before that condition and never lags behind it.
        Container container = cached.orElse(null);
        if (container == null || container.getMetadata().getDeletionTimestamp() != null) {
            return null;
        }
        ContainerRecord crec = containers.get(container.getMetadata().getUid()).orElse(null);
        if (crec == null || !crec.prepares(container.getMetadata().getGeneration())) {
            return null;
        }
        String runtimeName = container.getSpec().runtime() == null || container.getSpec().runtime().name() == null
                ? "runc" : container.getSpec().runtime().name().name();
        TaskRecord rec = new TaskRecord(uid, ns, task.getMetadata().getName(), crec.uid(), crec.snapshotter(),
                crec.snapshotKey(), runtimeName, uid, records.bundle(uid).toString(), TaskRecord.State.CREATING, null, null,
                null, null, null, null, null, null, null, task.getMetadata().getGeneration(), false, false);
        records.put(rec);
        Snapshotter snapshotter = snapshotters.get(crec.snapshotter());
        Optional<List<Mount>> mounts = snapshotter == null ? Optional.empty() : snapshotter.mounts(crec.snapshotKey());
        if (mounts.isEmpty()) {
            return failStart(rec, "the Container's rootfs snapshot " + crec.snapshotKey() + " is missing");
        }
        try {
            Bundles.create(records.bundle(uid), containers.specFile(crec.uid(), crec.specDigest()), uid, mounts.get());
        } catch (IOException e) {
            return failStart(rec, "preparing the bundle: " + e.getMessage());
        }
        ConmonRuntime runtime = runtimes.named(runtimeName);
        long pid;
        try {
            pid = runtime.create(uid, records.bundle(uid), records.taskDir(uid), records.exitDir(), records.socketDir(),
                    records.persistDir(uid), records.log(uid), logSizeMax);
        } catch (ConmonRuntime.RuntimeException | IOException e) {
            return failStart(rec, e.getMessage());
        }
        if ((ns + "/" + rec.name()).equals(HALT_AFTER_CREATE)) {
            // Tests only: a crash at the worst moment, created but neither recorded as such nor started.
            LOG.warn("task {}/{} created as pid {}: halting ({})", ns, rec.name(), pid, HALT_AFTER_CREATE_PROPERTY);
            Runtime.getRuntime().halt(137);
        }
        // Neither recorded nor reported: should the agent die before the start, adoption finds the runtime's
        // "created" and starts it; the status goes out once, as Running, a round trip sooner.
        rec = rec.withPid(pid).withState(TaskRecord.State.CREATED);
        try {
            runtime.start(uid);
        } catch (ConmonRuntime.RuntimeException e) {
            return failStart(rec, e.getMessage());
        }
        rec = rec.started(now());
        records.put(rec);
        report(rec);
        LOG.info("task {}/{} started: pid {} ({})", ns, rec.name(), pid, runtimeName);
        return null;
    }

    private Duration failStart(TaskRecord rec, String message) throws IOException {
        LOG.info("task {}/{} failed to start: {}", rec.namespace(), rec.name(), message);
        rec = rec.exited(null, now(), "StartFailed", message);
        records.put(rec);
        rec = finishExited(rec);
        return rec.reported() ? null : NOT_READY_RETRY;
    }

    /** Sends the stop signal once (resuming a paused task first) and arms the SIGKILL after the grace period. */
    private TaskRecord stop(TaskRecord rec, String signal, Long grace) throws IOException, ConmonRuntime.RuntimeException {
        if (rec.stopRequestedAt() != null) {
            armKill(rec);
            return rec;
        }
        ConmonRuntime runtime = runtimes.named(rec.runtime());
        long seconds = grace == null ? 10 : grace;
        // No grace: one SIGKILL now rather than the stop signal followed at once by SIGKILL.
        String sig = seconds == 0 ? "SIGKILL" : signal == null ? "SIGTERM" : signal;
        rec = rec.stopping(Instant.now().toString(), sig, seconds);
        records.put(rec);
        if (rec.state() == TaskRecord.State.PAUSED) {
            runtime.resume(rec.runtimeId());
            rec = rec.withState(TaskRecord.State.RUNNING);
            records.put(rec);
        }
        runtime.kill(rec.runtimeId(), Signals.number(sig));
        armKill(rec);
        return rec;
    }

    private void armKill(TaskRecord rec) {
        if ("SIGKILL".equals(rec.stopSignal()) || !killTimers.add(rec.uid())) {
            return;
        }
        Instant at = Instant.parse(rec.stopRequestedAt()).plusSeconds(rec.stopGracePeriodSeconds() == null ? 10 : rec.stopGracePeriodSeconds());
        long delay = Math.max(0, Duration.between(Instant.now(), at).toMillis());
        timers.schedule(() -> {
            try {
                withLock(rec.uid(), () -> {
                    TaskRecord current = records.get(rec.uid()).orElse(null);
                    if (current != null && current.live()) {
                        LOG.info("task {}/{}: grace period over, SIGKILL", current.namespace(), current.name());
                        try {
                            runtimes.named(current.runtime()).kill(current.runtimeId(), 9);
                        } catch (ConmonRuntime.RuntimeException e) {
                            LOG.info("SIGKILL {}: {}", current.uid(), e.getMessage());
                        }
                    }
                    return null;
                });
            } catch (IOException e) {
                LOG.warn("SIGKILL {}: {}", rec.uid(), e.toString());
            } finally {
                killTimers.remove(rec.uid());
            }
        }, delay, TimeUnit.MILLISECONDS);
    }

    /**
     * For a Task being deleted: stops it if live; once it has exited and is released, removes the record and log.
     * Returns true when the finalizer may go.
     */
    public boolean remove(Task task) throws IOException {
        String uid = task.getMetadata().getUid();
        return withLock(uid, () -> {
            TaskRecord rec = records.get(uid).orElse(null);
            if (rec == null) {
                return true;
            }
            if (rec.state() == TaskRecord.State.CREATING) {
                return false;
            }
            if (rec.live()) {
                try {
                    stop(rec, task.getSpec().stopSignal(), task.getSpec().stopGracePeriodSeconds());
                } catch (ConmonRuntime.RuntimeException e) {
                    LOG.info("stopping {}: {}", uid, e.getMessage());
                }
                return false;
            }
            rec = finishExited(rec);
            if (!rec.released()) {
                return false;
            }
            forget(rec);
            return true;
        });
    }

    // --- exits ---------------------------------------------------------------------------------------------

    /** An exit file appeared (or was there at start). */
    void exited(String id) {
        if (!UID.matcher(id).matches()) {
            return; // conmon's temporary file before the rename
        }
        try {
            withLock(id, () -> {
                TaskRecord rec = records.get(id).orElse(null);
                Path exitFile = records.exitDir().resolve(id);
                if (rec == null) {
                    if (!Files.exists(records.taskDir(id))) {
                        Files.deleteIfExists(exitFile);
                    }
                    return null;
                }
                if (rec.state() == TaskRecord.State.EXITED) {
                    if (rec.released()) {
                        Files.deleteIfExists(exitFile);
                    }
                    return null;
                }
                Optional<Integer> code = TaskResources.exitCode(exitFile);
                if (code.isEmpty()) {
                    return null; // not complete yet: the next event has it
                }
                String exitedAt = Files.getLastModifiedTime(exitFile).toInstant().truncatedTo(java.time.temporal.ChronoUnit.SECONDS).toString();
                rec = recordExit(rec, code.get(), exitedAt);
                finishExited(rec);
                return null;
            });
        } catch (IOException | java.lang.RuntimeException e) {
            LOG.warn("handling the exit of {}: {}", id, e.toString());
        }
    }

    private TaskRecord recordExit(TaskRecord rec, int code, String exitedAt) throws IOException {
        String reason;
        String message;
        boolean oom = code != 0 && resources.oomKilled(rec);
        if (code == 0) {
            reason = "Completed";
            message = "exited with code 0";
        } else if (oom) {
            reason = "OOMKilled";
            message = "killed by the memory cgroup's OOM killer (exit code " + code + ")";
        } else if (code > 128 && Signals.name(code - 128) != null) {
            reason = "Signaled";
            message = "killed by " + Signals.name(code - 128);
        } else {
            reason = "Error";
            message = "exited with code " + code;
        }
        rec = rec.exited(code, exitedAt, reason, message);
        records.put(rec);
        LOG.info("task {}/{} exited: {} ({})", rec.namespace(), rec.name(), code, reason);
        return rec;
    }

    /**
     * Releases the runtime resources (once) and writes Deleted (until it lands). When the Task object has gone
     * meanwhile (deleted before the agent's finalizer was on it), nobody is left to tell: the record goes too.
     */
    private TaskRecord finishExited(TaskRecord rec) throws IOException {
        if (!rec.released()) {
            resources.release(rec);
            rec = rec.withReleased(true);
            records.put(rec);
        }
        if (!rec.reported()) {
            switch (report(rec)) {
                case WRITTEN -> {
                    rec = rec.withReported(true);
                    records.put(rec);
                }
                case TASK_GONE -> {
                    LOG.info("task {}/{} ({}) has no Task object any more: its record goes", rec.namespace(), rec.name(), rec.uid());
                    forget(rec);
                    rec = rec.withReported(true);
                }
                case NOT_WRITTEN -> { }
            }
        }
        return rec;
    }

    private void forget(TaskRecord rec) throws IOException {
        records.delete(rec.uid());
        Files.deleteIfExists(records.exitDir().resolve(rec.runtimeId()));
        locks.remove(rec.uid());
    }

    // --- adoption ------------------------------------------------------------------------------------------

    private Void adopt(String uid) throws IOException {
        TaskRecord rec = records.get(uid).orElse(null);
        if (rec == null) {
            return null;
        }
        if (rec.state() == TaskRecord.State.EXITED) {
            finishExited(rec);
            return null;
        }
        if (Files.exists(records.exitDir().resolve(rec.runtimeId()))) {
            return null; // exited while we were away: the watcher's first scan reports it
        }
        ConmonRuntime runtime = runtimes.named(rec.runtime());
        Optional<String> state = runtime.state(rec.runtimeId());
        LOG.info("adopting task {}/{}: recorded {}, runtime says {}", rec.namespace(), rec.name(), rec.state(), state.orElse("nothing"));
        try {
            switch (state.orElse("")) {
                case "created" -> {
                    if (rec.pid() == null) {
                        rec = rec.withPid(resources.containerPid(uid));
                    }
                    rec = rec.withState(TaskRecord.State.CREATED);
                    records.put(rec);
                    if (rec.stopRequestedAt() == null) {
                        // Created, never started (runc start runs at most once): start it now.
                        runtime.start(rec.runtimeId());
                        rec = rec.started(now());
                        records.put(rec);
                    }
                    report(rec);
                }
                case "running", "paused" -> {
                    TaskRecord.State s = state.get().equals("running") ? TaskRecord.State.RUNNING : TaskRecord.State.PAUSED;
                    if (rec.pid() == null) {
                        rec = rec.withPid(resources.containerPid(uid));
                    }
                    rec = rec.startedAt() == null ? rec.started(now()).withState(s) : rec.withState(s);
                    records.put(rec);
                    report(rec);
                }
                case "stopped" -> {
                    if (!resources.conmonAlive(uid)) {
                        rec = rec.exited(null, now(), "Error", "the process exited while the agent was down and its exit status was lost");
                        records.put(rec);
                        finishExited(rec);
                        return null;
                    }
                }
                default -> {
                    if (resources.conmonAlive(uid) && rec.state() == TaskRecord.State.CREATING) {
                        resources.awaitConmonExit(uid);
                    }
                    boolean neverStarted = rec.state() == TaskRecord.State.CREATING;
                    rec = rec.exited(null, now(), neverStarted ? "StartFailed" : "Error",
                            neverStarted ? "the agent restarted while creating the task; it was not started"
                                    : "the runtime has no state of this task and its exit status was lost");
                    records.put(rec);
                    finishExited(rec);
                    return null;
                }
            }
        } catch (ConmonRuntime.RuntimeException e) {
            LOG.warn("adopting {}: {}", uid, e.getMessage());
        }
        if (rec.stopRequestedAt() != null) {
            armKill(rec);
        }
        return null;
    }

    /** Records whose Task object is gone, and runtime state in our bundles without a record: cleaned up. */
    private void removeOrphans() {
        Set<String> wanted = new HashSet<>();
        try {
            client.resources(Task.class).inAnyNamespace().withField("spec.nodeName", nodeName).list().getItems()
                    .forEach(t -> wanted.add(t.getMetadata().getUid()));
        } catch (KubernetesClientException e) {
            LOG.warn("listing this node's Tasks, orphans are left for later: {}", e.getMessage());
            return;
        }
        for (TaskRecord rec : records.list()) {
            if (!wanted.contains(rec.uid())) {
                try {
                    withLock(rec.uid(), () -> {
                        LOG.info("task {}/{} ({}) has no Task object: cleaning up", rec.namespace(), rec.name(), rec.uid());
                        resources.release(rec);
                        records.delete(rec.uid());
                        return null;
                    });
                } catch (IOException e) {
                    LOG.warn("cleaning up {}: {}", rec.uid(), e.toString());
                }
            }
        }
        String ours = records.tasksDir().toAbsolutePath().normalize() + "/";
        for (ConmonRuntime runtime : runtimes.all()) {
            String name = runtime.name();
            try {
                for (Map.Entry<String, String> c : runtime.list().entrySet()) {
                    if (c.getValue().startsWith(ours) && UID.matcher(c.getKey()).matches() && records.get(c.getKey()).isEmpty()) {
                        LOG.info("{} container {} has no record: deleting", name, c.getKey());
                        runtime.delete(c.getKey(), true);
                        Bundles.release(Path.of(c.getValue()));
                        TaskResources.removeCgroups(c.getKey());
                    }
                }
            } catch (IOException | ConmonRuntime.RuntimeException e) {
                LOG.warn("listing {} containers: {}", name, e.toString());
            }
        }
    }

    // --- status --------------------------------------------------------------------------------------------

    static TaskStatus.Phase phaseOf(TaskRecord rec) {
        return switch (rec.state()) {
            case CREATING -> TaskStatus.Phase.Pending;
            case CREATED -> rec.stopRequestedAt() != null ? TaskStatus.Phase.Stopped : TaskStatus.Phase.Created;
            case RUNNING -> rec.stopRequestedAt() != null ? TaskStatus.Phase.Stopped : TaskStatus.Phase.Running;
            case PAUSED -> TaskStatus.Phase.Paused;
            case EXITED -> rec.released() ? TaskStatus.Phase.Deleted : TaskStatus.Phase.Stopped;
        };
    }

    TaskStatus statusOf(TaskRecord rec) {
        TaskStatus.Phase phase = phaseOf(rec);
        String reason;
        String message;
        switch (phase) {
            case Created -> { reason = "Created"; message = "created by " + rec.runtime() + " under conmon"; }
            case Running -> { reason = "Started"; message = "running as pid " + rec.pid(); }
            case Paused -> { reason = "Paused"; message = "frozen"; }
            case Stopped -> {
                reason = "Stopping";
                message = rec.stopSignal() == null ? "exiting" : "sent " + rec.stopSignal() + "; SIGKILL after "
                        + rec.stopGracePeriodSeconds() + "s";
            }
            default -> { reason = rec.reason(); message = rec.message(); }
        }
        return new TaskStatus(phase, nodeName, rec.pid(), rec.startedAt(), rec.exitCode(),
                phase == TaskStatus.Phase.Deleted ? rec.exitedAt() : null, reason, message, rec.generation(), null);
    }

    private enum Report { WRITTEN, NOT_WRITTEN, TASK_GONE }

    /** Writes the record's status to the Task object with the record's UID. */
    private Report report(TaskRecord rec) {
        Task apply = new Task();
        apply.setMetadata(new ObjectMetaBuilder().withName(rec.name()).withNamespace(rec.namespace()).withUid(rec.uid()).build());
        apply.setStatus(statusOf(rec));
        try {
            client.resource(apply).subresource("status").patch(APPLY);
            return Report.WRITTEN;
        } catch (KubernetesClientException e) {
            // 404: no object of that name; 409: one with another UID (the UID is the apply's precondition).
            if (e.getCode() == 404 || e.getCode() == 409) {
                return Report.TASK_GONE;
            }
            LOG.info("status of task {}/{} not written: {}", rec.namespace(), rec.name(), e.getMessage());
            return Report.NOT_WRITTEN;
        }
    }

    private void writeStatus(Task task, TaskStatus status) {
        Task apply = new Task();
        apply.setMetadata(new ObjectMetaBuilder().withName(task.getMetadata().getName())
                .withNamespace(task.getMetadata().getNamespace()).withUid(task.getMetadata().getUid()).build());
        apply.setStatus(status);
        client.resource(apply).subresource("status").patch(APPLY);
    }

    // --- helpers -------------------------------------------------------------------------------------------

    @FunctionalInterface
    private interface Locked<T> {
        T run() throws IOException;
    }

    private <T> T withLock(String uid, Locked<T> body) throws IOException {
        ReentrantLock lock = locks.computeIfAbsent(uid, k -> new ReentrantLock());
        lock.lock();
        try {
            return body.run();
        } finally {
            lock.unlock();
        }
    }

    private static String now() {
        return Instant.now().truncatedTo(java.time.temporal.ChronoUnit.SECONDS).toString();
    }

    private static java.util.concurrent.ThreadFactory daemon(String name) {
        return r -> {
            Thread t = new Thread(r, name);
            t.setDaemon(true);
            return t;
        };
    }
}
