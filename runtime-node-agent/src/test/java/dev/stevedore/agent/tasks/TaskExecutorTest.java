package dev.stevedore.agent.tasks;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.stevedore.agent.containers.ContainerRecord;
import dev.stevedore.agent.containers.ContainerRecords;
import dev.stevedore.agent.network.NetworkSettings;
import dev.stevedore.agent.network.TaskNetworks;
import dev.stevedore.agent.snapshots.Mount;
import dev.stevedore.agent.snapshots.Snapshotter;
import dev.stevedore.api.EventRecorder;
import dev.stevedore.api.v1alpha1.Task;
import dev.stevedore.api.v1alpha1.TaskSpec;
import dev.stevedore.api.v1alpha1.TaskStatus;
import dev.stevedore.api.v1alpha1.TaskStatus.Phase;
import io.fabric8.kubernetes.client.utils.Serialization;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The decisions carried out by the executor against a fake OCI runtime, real task records in a temporary directory
 * and a local stand-in for the API server: no root, no runc, no control plane.
 */
class TaskExecutorTest {
    private static final String UID = "0a1b2c3d-0000-4000-8000-000000000001";
    private static final String CONTAINER_UID = "c0ffee00-0000-4000-8000-000000000002";
    private static final Instant NOW = Instant.parse("2026-12-01T10:00:00Z");
    private static final ContainerRecord PREPARED = new ContainerRecord(
            CONTAINER_UID,
            "ns",
            "box",
            1L,
            "img",
            "sha256:i",
            "overlayfs",
            "snap-1",
            "sha256:abc",
            "runc",
            List.of(),
            null);
    private static final TaskRef REF = new TaskRef("ns", "t", UID);

    @TempDir
    Path root;

    private TaskRecords records;
    private final FakeRuntime runc = new FakeRuntime("runc");
    private final Runtimes runtimes = new Runtimes(runc, new FakeRuntime("crun"));
    private final TaskDecisions decisions = new TaskDecisions("node-1");
    private final AtomicInteger gracesOver = new AtomicInteger();
    private final CountDownLatch graceOver = new CountDownLatch(1);
    private final SimpleMeterRegistry metrics = new SimpleMeterRegistry();
    private FakeTaskStatusApi api;
    private TaskExecutor executor;
    private TaskNetworks networks;

    @BeforeEach
    void setUp() throws IOException {
        networks = new NetworkSettings(root.resolve("cni"), List.of(), null).taskNetworks(root.resolve("netns"));
        records = new TaskRecords(root, root.resolve("exits"));
        ContainerRecords containers = new ContainerRecords(root);
        Files.createDirectories(
                containers.specFile(CONTAINER_UID, PREPARED.specDigest()).getParent());
        containers.putSpec(CONTAINER_UID, PREPARED.specDigest(), new ObjectMapper().createObjectNode());
        api = new FakeTaskStatusApi();
        Map<String, Snapshotter> snapshotters = Map.of("overlayfs", new RootfsOnly("snap-1"));
        executor = new TaskExecutor(
                records,
                containers,
                snapshotters,
                runtimes,
                new TaskResources(records, runtimes, networks),
                networks,
                new TaskStatusWriter(api.client()),
                new TaskEvents(EventRecorder.discarding()),
                new TaskMetrics(metrics, root.resolve("cgroup")),
                decisions,
                0,
                new BindSources(List.of()),
                Clock.fixed(NOW, ZoneOffset.UTC),
                uid -> {
                    gracesOver.incrementAndGet();
                    graceOver.countDown();
                });
    }

    @AfterEach
    void tearDown() {
        executor.close();
        api.close();
    }

    private TaskRecord recorded() {
        return records.get(UID).orElse(null);
    }

    private TaskRecord running() throws IOException {
        TaskRecord rec = TaskRecord.creating(
                        UID,
                        "ns",
                        "t",
                        CONTAINER_UID,
                        "overlayfs",
                        "snap-1",
                        "runc",
                        records.bundle(UID).toString(),
                        1L,
                        null)
                .created(new ProcessId(4242L, null), null)
                .started(NOW.minusSeconds(60));
        records.put(rec);
        runc.has(UID, "running");
        return rec;
    }

    private static Task task(TaskSpec.DesiredState desired, TaskStatus status) {
        Task t = Serialization.unmarshal("""
                apiVersion: stevedore.dev/v1alpha1
                kind: Task
                metadata: {name: t, namespace: ns, uid: %s, generation: 1}
                """.formatted(UID), Task.class);
        t.setSpec(new TaskSpec("box", "node-1", desired, "SIGTERM", 3L, null));
        t.setStatus(status);
        return t;
    }

    private TaskExecutor.Outcome start() throws IOException {
        return executor.execute(REF, null, List.of(new TaskAction.Start("runc", PREPARED, 1L)));
    }

    // --- start ------------------------------------------------------------------------------------------------

    @Test
    void aStartCreatesStartsRecordsAndReportsRunningAsTheAgent() throws IOException {
        assertThat(start()).isEqualTo(new TaskExecutor.Outcome(null, false, TaskExecutor.StatusWrite.LANDED));

        assertThat(runc.calls).containsExactly("create " + UID, "start " + UID);
        TaskRecord rec = recorded();
        assertThat(rec.state()).isEqualTo(TaskRecord.State.RUNNING);
        assertThat(rec.pid()).isEqualTo(4242L);
        assertThat(rec.startedAt()).isEqualTo(NOW);
        assertThat(records.bundle(UID).resolve("config.json")).exists();
        assertThat(api.applied).singleElement().satisfies(a -> {
            assertThat(a.path()).isEqualTo("/apis/stevedore.dev/v1alpha1/namespaces/ns/tasks/t/status");
            assertThat(a.query()).contains("fieldManager=stevedore-agent").contains("force=true");
            assertThat(a.status()).isEqualTo(decisions.statusOf(rec));
        });
        assertThat(metrics.get("stevedore.task.start.duration").timer().count()).isEqualTo(1);
    }

    @Test
    void aCreateTheRuntimeRefusesIsStartFailedAndLeavesNothing() throws IOException {
        runc.failNext("create", "exec: \"/no/such/binary\": no such file");
        assertThat(start()).isEqualTo(new TaskExecutor.Outcome(null, false, TaskExecutor.StatusWrite.LANDED));

        assertThat(runc.calls).containsExactly("create " + UID, "delete " + UID);
        TaskRecord rec = recorded();
        assertThat(rec.state()).isEqualTo(TaskRecord.State.EXITED);
        assertThat(rec.released()).isTrue();
        assertThat(rec.reported()).isTrue();
        assertThat(api.statuses())
                .singleElement()
                .extracting(TaskStatus::phase, TaskStatus::reason, TaskStatus::message)
                .containsExactly(Phase.Deleted, "StartFailed", "runc create: exec: \"/no/such/binary\": no such file");
        assertThat(records.bundle(UID)).doesNotExist();
        assertThat(ended("Failed")).isEqualTo(1);
        assertThat(metrics.get("stevedore.task.start.duration").timer().count()).isZero();
        assertThat(metrics.get("stevedore.task.exit.to.deleted").timer().count())
                .as("a task that never ran has no exit to measure from")
                .isZero();
    }

    @Test
    void aStartTheRuntimeRefusesIsStartFailedWithThePidOfTheCreatedProcess() throws IOException {
        runc.failNext("start", "container init was OOM-killed");
        start();
        assertThat(runc.calls).containsExactly("create " + UID, "start " + UID, "delete " + UID);
        assertThat(recorded())
                .extracting(TaskRecord::state, TaskRecord::pid, TaskRecord::reason)
                .containsExactly(TaskRecord.State.EXITED, 4242L, "StartFailed");
    }

    @Test
    void aMissingRootfsSnapshotIsStartFailedBeforeTheRuntimeIsAsked() throws IOException {
        ContainerRecord elsewhere = new ContainerRecord(
                CONTAINER_UID,
                "ns",
                "box",
                1L,
                "img",
                "sha256:i",
                "overlayfs",
                "snap-gone",
                "sha256:abc",
                "runc",
                List.of(),
                null);
        executor.execute(REF, null, List.of(new TaskAction.Start("runc", elsewhere, 1L)));
        assertThat(runc.calls).containsExactly("delete " + UID);
        assertThat(recorded().message()).isEqualTo("the Container's rootfs snapshot snap-gone is missing");
    }

    // --- runtime errors ------------------------------------------------------------------------------------------

    @Test
    void aPauseTheRuntimeRefusesChangesNothingAndIsTriedAgainShortly() throws IOException {
        TaskRecord rec = running();
        runc.failNext("pause", "container not running");
        List<TaskAction> plan = decisions.reconcile(
                task(TaskSpec.DesiredState.Paused, decisions.statusOf(rec)),
                rec,
                Optional.empty(),
                Optional.empty(),
                Optional.empty(),
                NOW);

        assertThat(executor.execute(REF, rec, plan))
                .isEqualTo(new TaskExecutor.Outcome(Duration.ofSeconds(2), false, TaskExecutor.StatusWrite.NONE));
        assertThat(recorded()).isEqualTo(rec);
        assertThat(api.applied).isEmpty();
    }

    @Test
    void aResumeTheRuntimeRefusesChangesNothingAndIsTriedAgainShortly() throws IOException {
        TaskRecord paused = running().paused();
        records.put(paused);
        runc.failNext("resume", "container not paused");
        List<TaskAction> plan = decisions.reconcile(
                task(TaskSpec.DesiredState.Running, decisions.statusOf(paused)),
                paused,
                Optional.empty(),
                Optional.empty(),
                Optional.empty(),
                NOW);

        assertThat(executor.execute(REF, paused, plan).lookAgain()).isEqualTo(Duration.ofSeconds(2));
        assertThat(recorded()).isEqualTo(paused);
        assertThat(api.applied).isEmpty();
    }

    @Test
    void aStopWhoseResumeFailsKeepsTheStopRecordedAndSendsNoSignalYet() throws IOException {
        TaskRecord paused = running().paused();
        records.put(paused);
        runc.failNext("resume", "container not paused");
        List<TaskAction> plan = decisions.reconcile(
                task(TaskSpec.DesiredState.Stopped, decisions.statusOf(paused)),
                paused,
                Optional.empty(),
                Optional.empty(),
                Optional.empty(),
                NOW);

        assertThat(executor.execute(REF, paused, plan).lookAgain()).isEqualTo(Duration.ofSeconds(2));
        assertThat(recorded()).isEqualTo(paused.stopping(NOW, "SIGTERM", 3));
        assertThat(runc.calls).containsExactly("resume " + UID);
    }

    // --- stop and the kill after the grace period --------------------------------------------------------------

    @Test
    void aStopSignalsOnceAndTheGracePeriodEndsOnce() throws Exception {
        TaskRecord rec = running();
        Task stop = task(TaskSpec.DesiredState.Stopped, decisions.statusOf(rec));
        TaskRecord stopping = rec.stopping(NOW.minusSeconds(2), "SIGTERM", 3); // its grace period ends in a second
        executor.execute(
                REF,
                rec,
                List.of(
                        new TaskAction.Save(stopping),
                        new TaskAction.Signal("SIGTERM"),
                        new TaskAction.KillAt(stopping.killAt())));
        executor.execute(
                REF,
                stopping,
                decisions.reconcile(stop, stopping, Optional.empty(), Optional.empty(), Optional.empty(), NOW));

        assertThat(graceOver.await(5, TimeUnit.SECONDS)).isTrue();
        // Once, and no second timer fires after it.
        await().during(Duration.ofMillis(200)).atMost(Duration.ofSeconds(5)).until(() -> gracesOver.get() == 1);
        assertThat(runc.calls).containsExactly("kill " + UID + " 15");
        executor.execute(REF, stopping, decisions.graceOver(stopping));
        assertThat(runc.calls).containsExactly("kill " + UID + " 15", "kill " + UID + " 9");
    }

    // --- the final status -----------------------------------------------------------------------------------------

    @Test
    void aFinalStatusThatDoesNotLandIsOwedAndRecordedOnceItDoes() throws IOException {
        TaskRecord rec = running();
        api.respondWith = 500;
        List<TaskAction> plan = decisions.exited(rec, new TaskDecisions.ExitFile(0, NOW, false), true);
        assertThat(executor.execute(REF, rec, plan))
                .isEqualTo(new TaskExecutor.Outcome(null, false, TaskExecutor.StatusWrite.OWED));
        assertThat(recorded())
                .extracting(TaskRecord::released, TaskRecord::reported)
                .containsExactly(true, false);
        assertThat(metrics.find("stevedore.tasks.ended").counter())
                .as("not ended until it landed")
                .isNull();

        api.respondWith = 200;
        TaskRecord released = recorded();
        assertThat(executor.execute(
                        REF,
                        released,
                        decisions.reconcile(
                                task(TaskSpec.DesiredState.Running, null),
                                released,
                                Optional.empty(),
                                Optional.empty(),
                                Optional.empty(),
                                NOW)))
                .isEqualTo(new TaskExecutor.Outcome(null, false, TaskExecutor.StatusWrite.LANDED));
        assertThat(recorded().reported()).isTrue();
        assertThat(api.statuses())
                .singleElement()
                .extracting(TaskStatus::phase, TaskStatus::exitCode)
                .containsExactly(Phase.Deleted, 0);
        assertThat(ended("Exited")).isEqualTo(1);
        assertThat(metrics.get("stevedore.task.exit.to.deleted").timer().count())
                .isEqualTo(1);
    }

    private double ended(String reason) {
        return metrics.get("stevedore.tasks.ended")
                .tag("reason", reason)
                .counter()
                .count();
    }

    @Test
    void aFinalStatusForATaskObjectThatIsGoneTakesTheRecordWithIt() throws IOException {
        TaskRecord rec = running();
        api.respondWith = 404;
        TaskExecutor.Outcome outcome =
                executor.execute(REF, rec, decisions.exited(rec, new TaskDecisions.ExitFile(1, NOW, false), true));
        assertThat(outcome.forgotten()).isTrue();
        assertThat(records.taskDir(UID)).doesNotExist();
    }

    // --- adoption ----------------------------------------------------------------------------------------------------

    @Test
    void aContainerCreatedBeforeTheAgentDiedIsStartedOnceAcrossAdoptions() throws IOException {
        TaskRecord creating = TaskRecord.creating(
                UID,
                "ns",
                "t",
                CONTAINER_UID,
                "overlayfs",
                "snap-1",
                "runc",
                records.bundle(UID).toString(),
                1L,
                null);
        records.put(creating);
        Files.writeString(records.taskDir(UID).resolve("ctr.pid"), "4343");
        runc.has(UID, "created");
        // Its conmon runs on: a stand-in named conmon with the task's id among its arguments, as the real one.
        Path conmon = Files.copy(Path.of("/bin/sh"), root.resolve("conmon"));
        Process monitor = new ProcessBuilder(conmon.toString(), "-c", "sleep 60; true", UID).start();
        Files.writeString(records.taskDir(UID).resolve("conmon.pid"), Long.toString(monitor.pid()));
        TaskAdoption adoption = new TaskAdoption(
                records,
                runtimes,
                new TaskResources(records, runtimes, networks),
                decisions,
                executor,
                Clock.fixed(NOW, ZoneOffset.UTC));

        try {
            adoption.adopt(UID);
            adoption.adopt(UID); // a second restart
        } finally {
            monitor.destroyForcibly();
        }

        assertThat(runc.calls).containsExactly("start " + UID);
        assertThat(recorded())
                .extracting(TaskRecord::state, TaskRecord::pid, TaskRecord::startedAt)
                .containsExactly(TaskRecord.State.RUNNING, 4343L, NOW);
        assertThat(api.statuses())
                .extracting(TaskStatus::phase, TaskStatus::pid)
                .containsOnly(org.assertj.core.groups.Tuple.tuple(Phase.Running, 4343L));
    }

    /** A snapshotter that has one active snapshot, needing no mount (so no root) to be the rootfs. */
    private record RootfsOnly(String key) implements Snapshotter {
        @Override
        public String name() {
            return "overlayfs";
        }

        @Override
        public Optional<List<Mount>> mounts(String k) {
            return k.equals(key) ? Optional.of(List.of()) : Optional.empty();
        }

        @Override
        public boolean exists(String chainId) {
            throw new UnsupportedOperationException();
        }

        @Override
        public void unpack(String chainId, String parentChainId, Path layer, String mediaType, String diffId) {
            throw new UnsupportedOperationException();
        }

        @Override
        public List<Mount> prepare(String k, String parentChainId) {
            throw new UnsupportedOperationException();
        }

        @Override
        public void remove(String keyOrChainId) {
            throw new UnsupportedOperationException();
        }

        @Override
        public List<SnapshotInfo> list() {
            throw new UnsupportedOperationException();
        }
    }
}
