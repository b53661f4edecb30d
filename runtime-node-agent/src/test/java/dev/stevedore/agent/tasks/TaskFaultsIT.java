package dev.stevedore.agent.tasks;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.stevedore.agent.NodeAgent;
import dev.stevedore.agent.testing.Containers;
import dev.stevedore.agent.testing.LocalRegistry;
import dev.stevedore.agent.testing.Tasks;
import dev.stevedore.agent.testing.TestImages;
import dev.stevedore.api.v1alpha1.ContainerStatus;
import dev.stevedore.api.v1alpha1.RuntimeNode;
import dev.stevedore.api.v1alpha1.Task;
import dev.stevedore.api.v1alpha1.TaskSpec;
import dev.stevedore.api.v1alpha1.TaskStatus;
import dev.stevedore.testing.ControlPlane;
import dev.stevedore.testing.Crds;
import dev.stevedore.testing.TestNamespace;
import dev.stevedore.testing.WithControlPlane;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Optional;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Faults around a running task, with the real control plane, runc and conmon: the API server going away for half a
 * minute, and the task's conmon killed under it.
 */
@WithControlPlane
class TaskFaultsIT {
    private static final String NODE = "task-faults-it-node";
    private static final Duration OUTAGE = Duration.ofSeconds(30);
    /** From the API server's return to the exit's status on the Task: "within seconds". */
    private static final Duration CATCH_UP = Duration.ofSeconds(20);

    @TempDir
    static Path tmp;

    private static LocalRegistry registry;
    private static ControlPlane controlPlane;
    private static Path root;
    private static String image;
    private static Runtimes runtimes;
    private static NodeAgent.Running agent;

    @BeforeAll
    static void start(ControlPlane cp) throws Exception {
        controlPlane = cp;
        Crds.installStevedore(cp.adminClient());
        registry = LocalRegistry.start();
        TestImages images = TestImages.build(tmp.resolve("images"));
        image = registry.host() + "/test/busybox:1";
        images.push(TestImages.BASE, image);
        root = tmp.resolve("root");
        runtimes = Runtimes.prepare(tmp.resolve("test-runtimes"));
        agent = NodeAgent.start(
                cp.adminClient(), NodeAgent.Settings.of(NODE, root).withHeartbeatInterval(Duration.ofSeconds(5)));
    }

    @AfterAll
    static void stop() throws Exception {
        try {
            if (agent != null) {
                agent.close();
            }
        } finally {
            LeftoverTasks.removeUnder(root, runtimes);
            registry.close();
            controlPlane
                    .adminClient()
                    .resources(RuntimeNode.class)
                    .withName(NODE)
                    .delete();
        }
    }

    /**
     * The API server goes away (SIGKILL, then back on the same port with the same etcd): a task that exits meanwhile
     * is recorded on the node, its Deleted status with the exit code lands within seconds of the API server's return,
     * and a task that keeps running is neither stopped nor restarted by the outage or by the informers' relist after.
     */
    @Test
    void anExitDuringAnOutageLandsWithinSecondsOfTheReturnAndARunningTaskRunsOn(TestNamespace ns) throws Exception {
        // Exits with 7 once the test drops /go into its rootfs: the exit comes exactly when the test wants it.
        container(ns, "waiter", "process: {args: [sh, -c, 'while [ ! -e /go ]; do sleep 0.1; done; exit 7']}");
        container(ns, "sleeper", "process: {args: [sh, -c, 'trap \"exit 3\" TERM; while true; do sleep 0.1; done']}");
        String waiter =
                Tasks.create(ns, "waiter-1", "waiter", NODE, "").getMetadata().getUid();
        String sleeper =
                Tasks.create(ns, "sleeper-1", "sleeper", NODE, "").getMetadata().getUid();
        Tasks.awaitPhase(ns, "waiter-1", TaskStatus.Phase.Running);
        long sleeperPid = Tasks.awaitPhase(ns, "sleeper-1", TaskStatus.Phase.Running)
                .getStatus()
                .pid();
        TaskRecords records = new TaskRecords(root, TaskRecords.exitDir(Runtimes.DEFAULT_STATE_DIR, NODE));

        controlPlane.stopApiServer();
        Files.writeString(root.resolve("tasks").resolve(waiter).resolve("bundle/rootfs/go"), "");
        await("the exit recorded on the node")
                .atMost(Duration.ofSeconds(30))
                .until(() -> records.get(waiter).filter(r -> !r.live()).isPresent());
        assertThat(records.get(waiter).orElseThrow().exitCode()).isEqualTo(7);
        // The outage goes on; all the while the other task runs, as recorded, with the same process.
        await("the sleeper running through the outage")
                .during(OUTAGE)
                .atMost(OUTAGE.plusSeconds(10))
                .until(() -> running(records, sleeper, sleeperPid));
        controlPlane.startApiServer();

        Task done = await("the exit's status after the API server's return")
                .atMost(CATCH_UP)
                .until(() -> task(ns, "waiter-1"), t -> t.getStatus().phase() == TaskStatus.Phase.Deleted);
        assertThat(done.getStatus().exitCode()).isEqualTo(7);
        assertThat(done.getStatus().reason()).isEqualTo("Error");
        LeftoverTasks.assertNoneLeft(root, runtimes, waiter);
        // The informers' relist changed nothing about the running task: same process, still reported Running.
        assertThat(running(records, sleeper, sleeperPid)).isTrue();
        assertThat(task(ns, "sleeper-1").getStatus().phase()).isEqualTo(TaskStatus.Phase.Running);
        // And the agent follows the Task again: a stop is carried out.
        Tasks.setDesired(ns, "sleeper-1", TaskSpec.DesiredState.Stopped);
        Task stopped = Tasks.awaitPhase(ns, "sleeper-1", TaskStatus.Phase.Deleted);
        assertThat(stopped.getStatus().exitCode()).isEqualTo(3);
        LeftoverTasks.assertNoneLeft(root, runtimes, sleeper);
    }

    /**
     * conmon, recorded by PID and start time, is SIGKILLed under a running task: nothing would write the task's exit
     * or log any more, so the agent kills the task, as containerd does when a task's shim dies, and reports it.
     */
    @Test
    void aTaskWhoseConmonIsKilledIsKilledTooAndEndsMonitorLost(TestNamespace ns) throws Exception {
        container(ns, "unwatched", "process: {args: [sh, -c, 'while true; do sleep 0.1; done']}");
        String uid = Tasks.create(ns, "unwatched-1", "unwatched", NODE, "")
                .getMetadata()
                .getUid();
        long pid = Tasks.awaitPhase(ns, "unwatched-1", TaskStatus.Phase.Running)
                .getStatus()
                .pid();
        TaskRecord rec = new TaskRecords(root, TaskRecords.exitDir(Runtimes.DEFAULT_STATE_DIR, NODE))
                .get(uid)
                .orElseThrow();
        assertThat(rec.process())
                .isEqualTo(new ProcessId(pid, ProcessStart.of(pid).orElseThrow()));
        ProcessId conmon = rec.conmon();
        assertThat(conmon.startTime()).isEqualTo(ProcessStart.of(conmon.pid()).orElseThrow());

        ProcessHandle.of(conmon.pid()).orElseThrow().destroyForcibly();
        Task done = await("the task ended after its conmon")
                .atMost(Duration.ofSeconds(20))
                .until(() -> task(ns, "unwatched-1"), t -> t.getStatus().phase() == TaskStatus.Phase.Deleted);
        assertThat(done.getStatus().exitCode()).isEqualTo(137);
        assertThat(done.getStatus().reason()).isEqualTo("MonitorLost");
        assertThat(runs(pid)).as("the task's process").isFalse();
        LeftoverTasks.assertNoneLeft(root, runtimes, uid);
    }

    /** Alive and not a zombie (whoever inherits a process from a killed conmon reaps it in its own time). */
    private static boolean runs(long pid) throws IOException {
        Path stat = Path.of("/proc", Long.toString(pid), "stat");
        try {
            String line = Files.readString(stat);
            return !line.substring(line.lastIndexOf(')') + 1).strip().startsWith("Z");
        } catch (java.nio.file.NoSuchFileException e) {
            return false;
        }
    }

    private static boolean running(TaskRecords records, String uid, long pid) throws IOException {
        Optional<TaskRecord> rec = records.get(uid);
        return rec.isPresent()
                && rec.get().state() == TaskRecord.State.RUNNING
                && rec.get().pid() == pid
                && runtimes.named("runc").state(uid).equals(Optional.of("running"))
                && ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false);
    }

    private static Task task(TestNamespace ns, String name) {
        return ns.client().resources(Task.class).withName(name).get();
    }

    private static void container(TestNamespace ns, String name, String moreSpec) {
        Containers.create(ns, name, image, NODE, moreSpec);
        Containers.awaitCondition(ns, name, ContainerStatus.READY, "True");
    }
}
