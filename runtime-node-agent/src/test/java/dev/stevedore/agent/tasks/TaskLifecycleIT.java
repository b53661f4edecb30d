package dev.stevedore.agent.tasks;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.tuple;

import dev.stevedore.agent.NodeAgent;
import dev.stevedore.agent.testing.Containers;
import dev.stevedore.agent.testing.LocalRegistry;
import dev.stevedore.agent.testing.ObjectEvents;
import dev.stevedore.agent.testing.TaskLog;
import dev.stevedore.agent.testing.Tasks;
import dev.stevedore.agent.testing.TestImages;
import dev.stevedore.api.NodeAgentFinalizer;
import dev.stevedore.api.v1alpha1.Container;
import dev.stevedore.api.v1alpha1.ContainerStatus;
import dev.stevedore.api.v1alpha1.RuntimeNode;
import dev.stevedore.api.v1alpha1.Task;
import dev.stevedore.api.v1alpha1.TaskSpec;
import dev.stevedore.api.v1alpha1.TaskStatus;
import dev.stevedore.testing.ControlPlane;
import dev.stevedore.testing.Crds;
import dev.stevedore.testing.TestNamespace;
import dev.stevedore.testing.WithControlPlane;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.client.dsl.Resource;
import io.fabric8.kubernetes.client.dsl.base.PatchContext;
import io.fabric8.kubernetes.client.dsl.base.PatchType;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import org.awaitility.Awaitility;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.io.TempDir;

/**
 * Tasks on a real control plane with the real runc, crun and conmon: the agent in this JVM (the operator is not
 * running, so the test binds Tasks itself by setting spec.nodeName).
 */
@WithControlPlane
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class TaskLifecycleIT {
    private static final Duration TIMEOUT = Duration.ofSeconds(120);
    private static final String NODE = "task-it-node";
    private static final int GRACE_SECONDS = 5;

    @TempDir
    static Path tmp;

    private static LocalRegistry registry;
    private static Path root;
    private static NodeAgent.Running agent;
    private static ControlPlane controlPlane;
    private static String image;
    /** The agent's runtimes as the test's own copy (the crun wrapper, where the host needs it, in the test's dir). */
    private static Runtimes runtimes;

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
        agent = startAgent();
    }

    private static NodeAgent.Running startAgent() throws IOException {
        return NodeAgent.start(
                controlPlane.adminClient(),
                NodeAgent.Settings.of(NODE, root).withHeartbeatInterval(Duration.ofSeconds(5)));
    }

    @AfterAll
    static void stop() throws Exception {
        try {
            if (agent != null) {
                agent.close();
            }
        } finally {
            LeftoverTasks.removeUnder(root, runtimes); // leave nothing behind, whatever happened
            registry.close();
            controlPlane
                    .adminClient()
                    .resources(RuntimeNode.class)
                    .withName(NODE)
                    .delete();
        }
    }

    @Test
    @Order(1)
    void aTaskThatExits42IsDeletedWithErrorAndItsOutputIsInTheLog(TestNamespace ns) throws Exception {
        container(ns, "exit42", "process: {args: [sh, -c, 'echo hi; exit 42']}");
        Task task = task(ns, "exit42-1", "exit42", "");
        Task done = awaitDeleted(ns, "exit42-1");

        assertThat(done.getStatus().exitCode()).isEqualTo(42);
        assertThat(done.getStatus().reason()).isEqualTo("Error");
        assertThat(done.getStatus().exitedAt()).isNotBlank();
        assertThat(done.getStatus().startedAt()).isNotBlank();
        assertThat(done.getStatus().pid()).isPositive();
        Path log = root.resolve("tasks").resolve(task.getMetadata().getUid()).resolve("task.log");
        assertThat(Files.readString(log)).containsPattern("stdout F hi");
        assertNothingLeft(task.getMetadata().getUid());
        // As kubelet records them for a Pod: the pull on the Container (the agent's first), the life on the Task.
        assertThat(ObjectEvents.awaitRecorded(
                        ns, "Container", "exit42", "Normal Pulling: Pulling image \"" + image, "Normal Pulled: "))
                .anySatisfy(
                        e -> assertThat(e).contains("Successfully pulled image").contains("sha256:"));
        assertThat(ObjectEvents.awaitRecorded(
                        ns, "Task", "exit42-1", "Normal Started: Started the task: pid ", "Warning Exited: "))
                .contains("Warning Exited: " + done.getStatus().message());

        // The log is kept until the Task object goes; then the record and log go with the finalizer.
        ns.client().resources(Task.class).withName("exit42-1").delete();
        ns.client()
                .resources(Task.class)
                .withName("exit42-1")
                .waitUntilCondition(java.util.Objects::isNull, TIMEOUT.toSeconds(), TimeUnit.SECONDS);
        assertThat(log).doesNotExist();
    }

    @Test
    @Order(2)
    void aMissingExecutableIsStartFailedAndLeavesNothing(TestNamespace ns) throws Exception {
        container(ns, "missing", "process: {args: [/no/such/binary]}");
        Task task = task(ns, "missing-1", "missing", "");
        Task done = awaitDeleted(ns, "missing-1");
        assertThat(done.getStatus().reason()).isEqualTo("StartFailed");
        assertThat(done.getStatus().message()).contains("/no/such/binary");
        assertNothingLeft(task.getMetadata().getUid());
        assertThat(ObjectEvents.awaitRecorded(ns, "Task", "missing-1", "Warning Failed: "))
                .noneMatch(e -> e.contains("Started"))
                .anySatisfy(e -> assertThat(e).contains("/no/such/binary"));
    }

    @Test
    @Order(2)
    void aMissingWorkingDirectoryIsCreatedAndTheProcessRunsInIt(TestNamespace ns) throws Exception {
        // runc and crun create a missing cwd inside the rootfs, as `ctr run` does for the same image
        // (ContainerdParityIT): the process runs there, it is no start failure.
        for (String runtime : List.of("runc", "crun")) {
            String name = "badcwd-" + runtime;
            container(ns, name, """
                    process: {args: [sh, -c, pwd], workingDir: /no/such/dir}
                    runtime: {name: %s}
                    """.formatted(runtime));
            Task task = task(ns, name + "-1", name, "");
            Task done = awaitDeleted(ns, name + "-1");
            assertThat(done.getStatus().reason()).as(done.getStatus().message()).isEqualTo("Completed");
            assertThat(done.getStatus().exitCode()).isZero();
            assertThat(TaskLog.read(log(task)).lines())
                    .extracting(TaskLog.Line::stream, TaskLog.Line::text)
                    .containsExactly(tuple("stdout", "/no/such/dir"));
            assertNothingLeft(task.getMetadata().getUid());
        }
    }

    @Test
    @Order(3)
    void aTaskPausesResumesAndIsKilledAfterTheGracePeriod(TestNamespace ns) throws Exception {
        // It takes SIGTERM and carries on, saying it is still alive five times a second until the SIGKILL.
        container(ns, "sleeper", """
                process:
                  args: [sh, -c, 'trap "echo term; t=1" TERM; echo ready; while true; do sleep 0.2; test -n "$t" && echo alive; done']
                """);
        Task task = task(ns, "sleeper-1", "sleeper", "stopGracePeriodSeconds: " + GRACE_SECONDS);
        String uid = task.getMetadata().getUid();
        awaitPhase(ns, "sleeper-1", TaskStatus.Phase.Running);
        Path log = log(task);
        // SIGTERM before the trap would be ignored (PID 1 without a handler), and the test would say nothing.
        Awaitility.await("the trap set")
                .atMost(TIMEOUT)
                .ignoreExceptions() // a line conmon is still writing
                .until(() -> TaskLog.read(log).first("ready").isPresent());
        Path freezer = Path.of("/sys/fs/cgroup/freezer/stevedore", uid, "freezer.state");
        assertUsageInMetrics(ns, "sleeper-1", uid);

        setDesired(ns, "sleeper-1", "Paused");
        awaitPhase(ns, "sleeper-1", TaskStatus.Phase.Paused);
        assertThat(Files.readString(freezer).strip()).isEqualTo("FROZEN");

        setDesired(ns, "sleeper-1", "Running");
        awaitPhase(ns, "sleeper-1", TaskStatus.Phase.Running);
        assertThat(Files.readString(freezer).strip()).isEqualTo("THAWED");

        setDesired(ns, "sleeper-1", "Stopped");
        Task done = awaitDeleted(ns, "sleeper-1");
        assertThat(done.getStatus().reason()).isEqualTo("Signaled");
        assertThat(done.getStatus().exitCode()).isEqualTo(137);
        assertThat(done.getStatus().message()).contains("SIGKILL");
        assertKilledOnlyAfterTheGracePeriod(
                TaskLog.read(log), Instant.parse(done.getStatus().exitedAt()));
        assertNothingLeft(uid);
        ObjectEvents.awaitRecorded(
                ns,
                "Task",
                "sleeper-1",
                "Normal Killing: Stopping the task (SIGTERM)",
                "Normal Killing: Killing the task (SIGKILL)",
                "Warning Exited: ");
        assertThat(agent.scrape()).as("an ended task's usage series go with it").doesNotContain(uid);
    }

    /**
     * The running task's usage is in the agent's metrics, read from its cgroup and labelled with what a user knows it
     * by: some CPU time, memory, its processes.
     */
    private static void assertUsageInMetrics(TestNamespace ns, String task, String uid) {
        String series = "{namespace=\"" + ns.name() + "\",task=\"" + task + "\",uid=\"" + uid + "\"}";
        Awaitility.await("the task's usage in the agent's metrics")
                .atMost(TIMEOUT)
                .untilAsserted(() -> assertThat(sample("stevedore_task_cpu_usage_seconds_total" + series))
                        .hasValueSatisfying(cpu -> assertThat(cpu).isPositive()));
        assertThat(sample("stevedore_task_memory_usage_bytes" + series))
                .hasValueSatisfying(bytes -> assertThat(bytes).isGreaterThan(100_000));
        assertThat(sample("stevedore_task_memory_working_set_bytes" + series))
                .hasValueSatisfying(bytes -> assertThat(bytes).isPositive());
        assertThat(sample("stevedore_task_pids" + series))
                .hasValueSatisfying(pids -> assertThat(pids).isBetween(1.0, 10.0));
    }

    /** The value of one series in the agent's metrics now, as {@code name{labels}}. */
    private static Optional<Double> sample(String series) {
        return agent.scrape()
                .lines()
                .filter(line -> line.startsWith(series + " "))
                .map(line -> Double.parseDouble(line.substring(series.length() + 1)))
                .findFirst();
    }

    /**
     * By the process's own lines, as conmon stamped them: SIGTERM came first, the process lived on through the grace
     * period (its last "alive" a grace period after the SIGTERM, less the loop's 0.2 s steps and a loaded machine's
     * delays), and its exit, a SIGKILL, came after that.
     */
    private static void assertKilledOnlyAfterTheGracePeriod(TaskLog log, Instant exitedAt) {
        Instant term = log.first("term")
                .orElseThrow(() -> new AssertionError("no SIGTERM seen: " + log))
                .time();
        Instant lastAlive = log.last("alive")
                .orElseThrow(() -> new AssertionError("killed at once after SIGTERM: " + log))
                .time();
        assertThat(Duration.between(term, lastAlive))
                .as("how long the process lived on after SIGTERM")
                .isGreaterThanOrEqualTo(Duration.ofSeconds(GRACE_SECONDS - 2));
        // exitedAt is in whole seconds, as Kubernetes writes times.
        assertThat(exitedAt).isAfterOrEqualTo(lastAlive.truncatedTo(ChronoUnit.SECONDS));
    }

    @Test
    @Order(4)
    void aMemoryHogIsOomKilled(TestNamespace ns) throws Exception {
        container(ns, "hog", """
                process: {args: [sh, -c, 'a=xxxxxxxxxxxxxxxx; while true; do a=$a$a; done']}
                resources: {memory: 32Mi}
                """);
        Task task = task(ns, "hog-1", "hog", "");
        Task done = awaitDeleted(ns, "hog-1");
        assertThat(done.getStatus().reason()).isEqualTo("OOMKilled");
        assertThat(done.getStatus().exitCode()).isEqualTo(137);
        assertNothingLeft(task.getMetadata().getUid());
        ObjectEvents.awaitRecorded(
                ns, "Task", "hog-1", "Warning OOMKilled: " + done.getStatus().message());
        assertThat(sample("stevedore_tasks_ended_total{reason=\"OOMKilled\"}"))
                .hasValueSatisfying(n -> assertThat(n).isGreaterThanOrEqualTo(1));
    }

    @Test
    @Order(5)
    void crunRunsTasksLikeRunc(TestNamespace ns) throws Exception {
        container(ns, "crun42", """
                process: {args: [sh, -c, 'echo hi; exit 42']}
                runtime: {name: crun}
                """);
        Task task = task(ns, "crun42-1", "crun42", "");
        Task done = awaitDeleted(ns, "crun42-1");
        assertThat(done.getStatus().reason()).as(done.getStatus().message()).isEqualTo("Error");
        assertThat(done.getStatus().exitCode()).isEqualTo(42);
        assertThat(done.getStatus().pid()).isPositive();
        assertThat(Files.readString(root.resolve("tasks")
                        .resolve(task.getMetadata().getUid())
                        .resolve("task.log")))
                .contains("stdout F hi");
        assertNothingLeft(task.getMetadata().getUid());

        // pause, resume and kill go through the same runtime: the freezer is the host's v1 one.
        container(ns, "crunsleeper", """
                process: {args: [sleep, '3600']}
                runtime: {name: crun}
                """);
        Task sleeper = task(ns, "crunsleeper-1", "crunsleeper", "stopGracePeriodSeconds: 1");
        String uid = sleeper.getMetadata().getUid();
        long pid = awaitPhase(ns, "crunsleeper-1", TaskStatus.Phase.Running)
                .getStatus()
                .pid();
        assertThat(ProcessHandle.of(pid)).isPresent();
        assertThat(runtimes.named("crun").state(uid)).contains("running");
        assertThat(Files.readString(Path.of("/sys/fs/cgroup/memory/stevedore", uid, "cgroup.procs")))
                .contains(Long.toString(pid));
        Path freezer = Path.of("/sys/fs/cgroup/freezer/stevedore", uid, "freezer.state");
        assertUsageInMetrics(ns, "crunsleeper-1", uid);
        setDesired(ns, "crunsleeper-1", "Paused");
        awaitPhase(ns, "crunsleeper-1", TaskStatus.Phase.Paused);
        assertThat(Files.readString(freezer).strip()).isEqualTo("FROZEN");
        setDesired(ns, "crunsleeper-1", "Running");
        awaitPhase(ns, "crunsleeper-1", TaskStatus.Phase.Running);
        assertThat(Files.readString(freezer).strip()).isEqualTo("THAWED");
        setDesired(ns, "crunsleeper-1", "Stopped");
        Task stopped = awaitDeleted(ns, "crunsleeper-1");
        assertThat(stopped.getStatus().reason()).isEqualTo("Signaled");
        assertThat(stopped.getStatus().exitCode()).isEqualTo(137);
        assertNothingLeft(uid);
        // The host keeps its cgroup2 mount: only crun's own short-lived namespaces go without it.
        if (Runtimes.hybridWithV2Controllers(Path.of("/sys/fs/cgroup"))) {
            assertThat(Files.readString(Path.of("/proc/self/mounts"))).contains(" /sys/fs/cgroup/unified cgroup2 ");
        }
    }

    @Test
    @Order(6)
    void tasksKeepRunningAcrossAnAgentRestartAndExitsWhileItIsDownAreRecorded(TestNamespace ns) throws Exception {
        List<String> uids = new ArrayList<>();
        for (int i = 0; i < 5; i++) {
            // Tasks 0 and 1 exit while the agent is down (they wait for a file the test creates then).
            String args = i < 2
                    ? "[sh, -c, 'while [ ! -e /tmp/go ]; do sleep 0.1; done; exit " + (10 + i) + "']"
                    : "[sleep, '3600']";
            container(ns, "r" + i, "process: {args: " + args + "}");
            uids.add(task(ns, "r" + i + "-1", "r" + i, "stopGracePeriodSeconds: 1")
                    .getMetadata()
                    .getUid());
        }
        List<Long> pids = new ArrayList<>();
        for (int i = 0; i < 5; i++) {
            pids.add(awaitPhase(ns, "r" + i + "-1", TaskStatus.Phase.Running)
                    .getStatus()
                    .pid());
        }
        agent.close();
        agent = null;
        for (int i = 0; i < 2; i++) {
            Path rootfs = root.resolve("tasks").resolve(uids.get(i)).resolve("bundle/rootfs");
            Files.writeString(rootfs.resolve("tmp/go"), "");
        }
        for (int i = 0; i < 2; i++) {
            Path exitFile =
                    TaskRecords.exitDir(Runtimes.DEFAULT_STATE_DIR, NODE).resolve(uids.get(i));
            Awaitility.await("the exit file of " + uids.get(i)).atMost(TIMEOUT).until(() -> Files.exists(exitFile));
        }
        agent = startAgent();

        for (int i = 0; i < 2; i++) {
            Task done = awaitDeleted(ns, "r" + i + "-1");
            assertThat(done.getStatus().exitCode()).isEqualTo(10 + i);
            assertThat(done.getStatus().reason()).isEqualTo("Error");
            assertNothingLeft(uids.get(i));
        }
        for (int i = 2; i < 5; i++) {
            Task running = awaitPhase(ns, "r" + i + "-1", TaskStatus.Phase.Running);
            assertThat(running.getStatus().pid()).isEqualTo(pids.get(i)); // the same process: not started twice
            assertThat(ProcessHandle.of(pids.get(i))).isPresent();
        }
        for (int i = 2; i < 5; i++) {
            setDesired(ns, "r" + i + "-1", "Stopped");
        }
        for (int i = 2; i < 5; i++) {
            Task done = awaitDeleted(ns, "r" + i + "-1");
            assertThat(done.getStatus().reason()).isEqualTo("Signaled");
            assertNothingLeft(uids.get(i));
        }
    }

    @Test
    @Order(7)
    void manyShortTasksRunOneAfterAnotherAndLeakNothing(TestNamespace ns) throws Exception {
        // Three Containers exiting 0, 1 and 2: the Tasks take turns on them, so each one's exit is known beforehand.
        for (int code = 0; code < 3; code++) {
            container(ns, "exits" + code, "process: {args: [sh, -c, 'exit " + code + "']}");
        }
        int n = Integer.getInteger("stevedore.it.shortTasks", 50);
        List<String> uids = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            int code = i % 3;
            Task task = task(ns, "short-" + i, "exits" + code, "");
            uids.add(task.getMetadata().getUid());
            Task done = awaitDeleted(ns, "short-" + i);
            assertThat(done.getStatus().exitCode()).isEqualTo(code);
            assertThat(done.getStatus().reason()).isEqualTo(code == 0 ? "Completed" : "Error");
        }
        for (String uid : uids) {
            assertNothingLeft(uid);
        }
        assertThat(conmons()).isEmpty();
    }

    @Test
    @Order(7)
    void aSecondTaskBoundByHandBesideALiveOneEndsAlreadyExistsAndMountsNothing(TestNamespace ns) throws Exception {
        // No operator and no admission policy here: both Tasks are bound by hand, as a user could without them.
        container(ns, "busy", "process: {args: [sh, -c, 'echo ready; sleep 300']}");
        task(ns, "busy-1", "busy", "stopGracePeriodSeconds: 0");
        awaitPhase(ns, "busy-1", TaskStatus.Phase.Running);
        Task second = task(ns, "busy-2", "busy", "");

        Task refused = awaitDeleted(ns, "busy-2");
        assertThat(refused.getStatus().reason()).isEqualTo("AlreadyExists");
        assertThat(refused.getStatus().message())
                .isEqualTo("Container busy already has task busy-1 on node " + NODE + "; a Container runs one task at"
                        + " a time, and only the operator binds Tasks to nodes (leave spec.nodeName empty)");
        assertThat(refused.getStatus().startedAt()).isNull();
        assertNothingLeft(second.getMetadata().getUid());
        assertThat(conmons()).hasSize(1);
        assertThat(ns.client()
                        .resources(Task.class)
                        .withName("busy-1")
                        .get()
                        .getStatus()
                        .phase())
                .isEqualTo(TaskStatus.Phase.Running);

        // Once the first has gone, the Container is free: a Task bound now runs.
        setDesired(ns, "busy-1", "Stopped");
        awaitDeleted(ns, "busy-1");
        task(ns, "busy-3", "busy", "stopGracePeriodSeconds: 0");
        awaitPhase(ns, "busy-3", TaskStatus.Phase.Running);
        setDesired(ns, "busy-3", "Stopped");
        awaitDeleted(ns, "busy-3");
    }

    @Test
    @Order(8)
    void aTaskCreatedBeforeItsContainerStartsWhenTheContainerBecomesReady(TestNamespace ns) throws Exception {
        // The agent does not poll: only the Container's event (Ready) can bring this Task to start.
        Task task = task(ns, "late-1", "late", "");
        container(ns, "late", "process: {args: [sh, -c, 'exit 7']}");
        Task done = awaitDeleted(ns, "late-1");
        assertThat(done.getStatus().exitCode()).isEqualTo(7);
        assertThat(done.getStatus().reason()).isEqualTo("Error");
        assertNothingLeft(task.getMetadata().getUid());
    }

    @Test
    @Order(9)
    void aTaskCreatedRightAfterItsContainerChangedRunsTheNewSpec(TestNamespace ns) {
        container(ns, "changing", "process: {args: [sh, -c, 'exit 1']}");
        task(ns, "changing-1", "changing", "");
        assertThat(awaitDeleted(ns, "changing-1").getStatus().exitCode()).isEqualTo(1);

        // The node still has what generation 1 needed; a Task must wait for generation 2's spec, not start on that.
        ns.client()
                .resources(Container.class)
                .withName("changing")
                .patch(
                        PatchContext.of(PatchType.JSON_MERGE),
                        "{\"spec\": {\"process\": {\"args\": [\"sh\", \"-c\", \"exit 2\"]}}}");
        task(ns, "changing-2", "changing", "");
        assertThat(awaitDeleted(ns, "changing-2").getStatus().exitCode()).isEqualTo(2);
    }

    @Test
    @Order(10)
    void objectsGoneWithoutTheAgentsFinalizerAreStillStoppedAndReleased(TestNamespace ns) throws Exception {
        // The agent adds its finalizer beside its work, not before it, so an object can go without waiting for it:
        // deleted at once after its creation, or with the finalizer removed by hand, as here. What it had must go
        // all the same.
        container(ns, "vanishing", "process: {args: [sleep, '3600']}");
        Task task = task(ns, "vanishing-1", "vanishing", "stopGracePeriodSeconds: 1");
        String uid = task.getMetadata().getUid();
        long pid = await(
                        ns,
                        "vanishing-1",
                        t -> t.getStatus() != null
                                && t.getStatus().phase() == TaskStatus.Phase.Running
                                && t.hasFinalizer(NodeAgentFinalizer.NAME))
                .getStatus()
                .pid();
        String containerUid = ns.client()
                .resources(Container.class)
                .withName("vanishing")
                .get()
                .getMetadata()
                .getUid();
        Containers.await(
                ns, "vanishing", c -> c.hasFinalizer(NodeAgentFinalizer.NAME), "the agent's finalizer", () -> "");

        dropFinalizerAndDelete(ns.client().resources(Task.class).withName("vanishing-1"));
        // Its rootfs is still mounted for the task: the Container's release waits for the task's.
        dropFinalizerAndDelete(ns.client().resources(Container.class).withName("vanishing"));

        Awaitility.await()
                .atMost(TIMEOUT)
                .until(() -> ProcessHandle.of(pid).isEmpty()
                        && !Files.exists(root.resolve("tasks").resolve(uid))
                        && !Files.exists(root.resolve("containers").resolve(containerUid)));
        assertNothingLeft(uid);
    }

    @Test
    @Order(11)
    void aContainerThatWentWhileTheAgentWasDownIsReleasedWhenItStarts(TestNamespace ns) throws Exception {
        container(ns, "left", "process: {args: [sh, -c, 'exit 0']}");
        Containers.await(ns, "left", c -> c.hasFinalizer(NodeAgentFinalizer.NAME), "the agent's finalizer", () -> "");
        String uid = ns.client()
                .resources(Container.class)
                .withName("left")
                .get()
                .getMetadata()
                .getUid();
        agent.close();
        agent = null;
        dropFinalizerAndDelete(ns.client().resources(Container.class).withName("left"));
        assertThat(root.resolve("containers").resolve(uid)).exists();

        agent = startAgent();
        assertThat(root.resolve("containers").resolve(uid)).doesNotExist();
    }

    @Test
    @Order(12)
    void aTaskThatWentWhileTheAgentWasDownIsStoppedAndReleasedWhenItStarts(TestNamespace ns) throws Exception {
        container(ns, "gone", "process: {args: [sleep, '3600']}");
        Task task = task(ns, "gone-1", "gone", "stopGracePeriodSeconds: 1");
        String uid = task.getMetadata().getUid();
        long pid = await(
                        ns,
                        "gone-1",
                        t -> t.getStatus() != null
                                && t.getStatus().phase() == TaskStatus.Phase.Running
                                && t.hasFinalizer(NodeAgentFinalizer.NAME))
                .getStatus()
                .pid();
        agent.close();
        agent = null;
        dropFinalizerAndDelete(ns.client().resources(Task.class).withName("gone-1"));
        assertThat(ProcessHandle.of(pid))
                .as("the task runs on while the agent is down")
                .isPresent();

        agent = startAgent();
        assertThat(root.resolve("tasks").resolve(uid)).doesNotExist();
        Awaitility.await().atMost(TIMEOUT).until(() -> ProcessHandle.of(pid).isEmpty());
        assertNothingLeft(uid);
    }

    // --- helpers -------------------------------------------------------------------------------------------

    private static <R extends HasMetadata> void dropFinalizerAndDelete(Resource<R> resource) {
        resource.edit(r -> {
            r.removeFinalizer(NodeAgentFinalizer.NAME);
            return r;
        });
        resource.delete();
        resource.waitUntilCondition(java.util.Objects::isNull, TIMEOUT.toSeconds(), TimeUnit.SECONDS);
    }

    private static Path log(Task task) {
        return root.resolve("tasks").resolve(task.getMetadata().getUid()).resolve("task.log");
    }

    private static void assertNothingLeft(String uid) throws IOException {
        LeftoverTasks.assertNoneLeft(root, runtimes, uid);
    }

    private static List<String> conmons() {
        return ProcessHandle.allProcesses()
                .filter(p -> p.info().command().map(c -> c.endsWith("/conmon")).orElse(false))
                .map(p -> String.join(" ", p.info().arguments().orElse(new String[0])))
                .filter(args -> args.contains(root.toString()))
                .toList();
    }

    private static void container(TestNamespace ns, String name, String moreSpec) {
        Containers.create(ns, name, image, NODE, moreSpec);
        Containers.awaitCondition(ns, name, ContainerStatus.READY, "True");
    }

    private static Task task(TestNamespace ns, String name, String container, String moreSpec) {
        return Tasks.create(ns, name, container, NODE, moreSpec);
    }

    private static void setDesired(TestNamespace ns, String name, String state) {
        Tasks.setDesired(ns, name, TaskSpec.DesiredState.valueOf(state));
    }

    private static Task awaitDeleted(TestNamespace ns, String name) {
        return Tasks.awaitPhase(ns, name, TaskStatus.Phase.Deleted);
    }

    private static Task awaitPhase(TestNamespace ns, String name, TaskStatus.Phase phase) {
        return Tasks.awaitPhase(ns, name, phase);
    }

    private static Task await(TestNamespace ns, String name, Predicate<Task> condition) {
        return Tasks.await(ns, name, condition);
    }
}
