package dev.stevedore.agent.tasks;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.stevedore.agent.containers.ContainerRecords;
import dev.stevedore.agent.logs.LogLimits;
import dev.stevedore.agent.network.NetworkSettings;
import dev.stevedore.api.EventRecorder;
import dev.stevedore.api.v1alpha1.Task;
import dev.stevedore.api.v1alpha1.TaskStatus;
import dev.stevedore.api.v1alpha1.TaskStatus.Phase;
import io.fabric8.kubernetes.client.utils.Serialization;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Faults through the task manager with a fake OCI runtime and a local stand-in for the API server: status writes that
 * do not land (the retries need no event of the Task, only the node's record), and a start whose record write failed
 * (a full disk) after the runtime's create or start.
 */
class TaskManagerFaultsTest {
    private static final String UID = "0a1b2c3d-0000-4000-8000-000000000001";

    @TempDir
    Path root;

    private final FakeRuntime runc = new FakeRuntime("runc");
    private TaskRecords records;
    private FakeTaskStatusApi api;
    private TaskManager tasks;

    @BeforeEach
    void setUp() throws IOException {
        records = new TaskRecords(root, root.resolve("exits"));
        api = new FakeTaskStatusApi();
        tasks = new TaskManager(
                api.client(),
                "node-1",
                records,
                new ContainerRecords(root),
                Map.of(),
                LogLimits.DEFAULTS,
                new Runtimes(runc, new FakeRuntime("crun")),
                new BindSources(List.of()),
                new NetworkSettings(root.resolve("cni"), List.of(), null).taskNetworks(root.resolve("netns")),
                EventRecorder.discarding(),
                new TaskMetrics(new SimpleMeterRegistry(), root.resolve("cgroup")));
        records.put(TaskRecord.creating(UID, "ns", "t", "c-uid", "overlayfs", "snap-1", "runc", "/b", 1L, null)
                .created(new ProcessId(4242L, null), null)
                .started(Instant.parse("2026-12-01T10:00:00Z")));
        runc.has(UID, "running");
    }

    @AfterEach
    void tearDown() {
        tasks.close();
        api.close();
    }

    @Test
    void anExitSeenWhileTheApiServerFailsIsReportedSoonAfterItAnswersAgain() throws IOException {
        api.respondWith = 503;
        Files.writeString(records.exitDir().resolve(UID), "7");
        tasks.exited(UID);
        assertThat(records.get(UID).orElseThrow())
                .extracting(TaskRecord::exitCode, TaskRecord::released, TaskRecord::reported)
                .containsExactly(7, true, false);

        // Tried again and again while it fails, with no event of the Task...
        await().atMost(Duration.ofSeconds(10)).until(() -> api.requests.get() >= 4);
        assertThat(api.applied).isEmpty();
        // ...and within the backoff's cap of its answering again, the exit lands and the record says so.
        api.respondWith = 200;
        await().atMost(Backoff.STATUS_WRITES.cap().plusSeconds(1))
                .until(() -> records.get(UID).orElseThrow().reported());
        assertThat(api.statuses())
                .singleElement()
                .extracting(TaskStatus::phase, TaskStatus::exitCode, TaskStatus::reason)
                .containsExactly(Phase.Deleted, 7, "Error");
        // Landed: nothing more is written.
        int requests = api.requests.get();
        await().during(Duration.ofSeconds(1)).until(() -> api.requests.get() == requests);
    }

    /**
     * The exit watcher fired once and its handling failed (the record write, on a full disk): the exit file stays
     * (it is on the state directory's tmpfs), and the next monitor check, finding conmon gone, records the exit
     * from it, not a lost monitor.
     */
    @Test
    void anExitWhoseHandlingFailedIsRecordedFromItsExitFileAtTheNextMonitorCheck() throws IOException {
        Files.writeString(records.exitDir().resolve(UID), "7");

        tasks.checkMonitors();

        assertThat(records.get(UID).orElseThrow())
                .extracting(TaskRecord::exitCode, TaskRecord::reason, TaskRecord::released, TaskRecord::reported)
                .containsExactly(7, "Error", true, true);
        assertThat(api.statuses())
                .singleElement()
                .extracting(TaskStatus::phase, TaskStatus::exitCode, TaskStatus::reason)
                .containsExactly(Phase.Deleted, 7, "Error");
    }

    @Test
    void aTaskThatWentWhileItsExitWasOwedStopsTheRetriesAndItsRecordGoes() throws IOException {
        api.respondWith = 503;
        Files.writeString(records.exitDir().resolve(UID), "0");
        tasks.exited(UID);
        await().atMost(Duration.ofSeconds(10)).until(() -> api.requests.get() >= 2);
        api.respondWith = 404;
        await().atMost(Backoff.STATUS_WRITES.cap().plusSeconds(1))
                .until(() -> records.get(UID).isEmpty());
        int requests = api.requests.get();
        await().during(Duration.ofSeconds(1)).until(() -> api.requests.get() == requests);
        assertThat(records.taskDir(UID)).doesNotExist();
    }

    @Test
    void whatATaskWithoutARecordIsOwedIsDecidedAgainFromTheTaskAfterTheBackoff() throws IOException {
        // It ran here once (Running), and the node has no record of it: Lost, decided from the Task alone.
        Task lost = Serialization.unmarshal("""
                apiVersion: stevedore.dev/v1alpha1
                kind: Task
                metadata: {name: lost, namespace: ns, uid: 0a1b2c3d-0000-4000-8000-000000000009, generation: 1}
                spec: {container: box, nodeName: node-1}
                status: {phase: Running, nodeName: node-1}
                """, Task.class);
        api.respondWith = 503;
        assertThat(tasks.reconcile(lost, Optional.empty()))
                .isPositive()
                .isLessThanOrEqualTo(Backoff.STATUS_WRITES.initial());
        // Waiting longer after each failure: the second wait is at least the first's longest.
        assertThat(tasks.reconcile(lost, Optional.empty())).isGreaterThanOrEqualTo(Backoff.STATUS_WRITES.initial());
        api.respondWith = 200;
        assertThat(tasks.reconcile(lost, Optional.empty())).isNull();
        assertThat(api.statuses())
                .singleElement()
                .extracting(TaskStatus::phase, TaskStatus::reason)
                .containsExactly(Phase.Deleted, "Lost");
    }

    @Test
    void aStartedTaskWhoseRecordStillSaysCreatingIsFollowedAtTheNextReconcile() throws IOException {
        Process conmon = createCutShort("running");
        try {
            tasks.reconcile(task(), Optional.empty());
        } finally {
            conmon.destroyForcibly();
        }

        assertThat(records.get(UID).orElseThrow())
                .extracting(TaskRecord::state, TaskRecord::pid)
                .containsExactly(TaskRecord.State.RUNNING, 4343L);
        assertThat(runc.calls).noneMatch(call -> call.startsWith("start") || call.startsWith("create"));
        assertThat(api.statuses()).extracting(TaskStatus::phase).containsExactly(Phase.Running);
    }

    @Test
    void aCreatedTaskWhoseStartWasCutShortIsStartedOnce() throws IOException {
        Process conmon = createCutShort("created");
        try {
            tasks.reconcile(task(), Optional.empty());
            tasks.reconcile(task(), Optional.empty());
        } finally {
            conmon.destroyForcibly();
        }

        assertThat(runc.calls).containsExactly("start " + UID);
        assertThat(records.get(UID).orElseThrow().state()).isEqualTo(TaskRecord.State.RUNNING);
    }

    /**
     * The record write after the runtime's start failed (a full disk), so the record still says CREATING; the task
     * ran and exited, and the exit's handling failed on the same full disk. The reconcile that follows the failed
     * start finds the exit file and leaves it to the exit watcher, which has fired already: the monitor check
     * records the exit from the file.
     */
    @Test
    void anExitOfATaskWhoseRecordStillSaysCreatingIsRecordedAtTheNextMonitorCheck() throws IOException {
        records.put(TaskRecord.creating(UID, "ns", "t", "c-uid", "overlayfs", "snap-1", "runc", "/b", 1L, null));
        runc.has(UID, "stopped");
        Files.writeString(records.exitDir().resolve(UID), "31");
        assertThat(tasks.reconcile(task(), Optional.empty())).isNull();

        tasks.checkMonitors();

        assertThat(records.get(UID).orElseThrow())
                .extracting(TaskRecord::exitCode, TaskRecord::reason, TaskRecord::released, TaskRecord::reported)
                .containsExactly(31, "Error", true, true);
        assertThat(api.statuses())
                .singleElement()
                .extracting(TaskStatus::phase, TaskStatus::exitCode)
                .containsExactly(Phase.Deleted, 31);
    }

    /**
     * The record still says CREATING (its next write failed) while the runtime shows {@code runtimeState} and the
     * task's conmon runs on: a stand-in named conmon with the task's id among its arguments, as the real one.
     */
    private Process createCutShort(String runtimeState) throws IOException {
        records.put(TaskRecord.creating(UID, "ns", "t", "c-uid", "overlayfs", "snap-1", "runc", "/b", 1L, null));
        Files.writeString(records.taskDir(UID).resolve("ctr.pid"), "4343");
        runc.has(UID, runtimeState);
        Path binary = Files.copy(Path.of("/bin/sh"), root.resolve("conmon"));
        Process conmon = new ProcessBuilder(binary.toString(), "-c", "sleep 60; true", UID).start();
        Files.writeString(records.taskDir(UID).resolve("conmon.pid"), Long.toString(conmon.pid()));
        return conmon;
    }

    private static Task task() {
        return Serialization.unmarshal("""
                apiVersion: stevedore.dev/v1alpha1
                kind: Task
                metadata: {name: t, namespace: ns, uid: %s, generation: 1}
                spec: {container: box, nodeName: node-1}
                """.formatted(UID), Task.class);
    }
}
