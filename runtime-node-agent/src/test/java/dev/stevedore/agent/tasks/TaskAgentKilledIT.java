package dev.stevedore.agent.tasks;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

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
import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The agent as a separate JVM, killed with SIGKILL (no shutdown hook, nothing flushed): its tasks run on under
 * conmon, exits during the downtime are recorded with their real status, and a restarted agent re-adopts the
 * running ones without starting anything twice — also when it died between the runtime's create and start.
 *
 * <p>The agent runs runc through {@link #RUNC_WRAPPER} ({@code --runtime-binary}), which passes every call on to
 * runc but holds a {@code start} while the test asks it to: the agent is then stuck right after the create, with
 * nothing written about it but the CREATING record, and the test kills it there.
 */
@WithControlPlane
class TaskAgentKilledIT {
    private static final Duration TIMEOUT = Duration.ofSeconds(120);
    private static final String NODE = "task-kill-it-node";

    @TempDir
    static Path tmp;

    private static LocalRegistry registry;
    private static ControlPlane controlPlane;
    private static Path root;
    private static String image;
    private static Runtimes runtimes;
    private static Process agent;
    private static int agentStarts;
    /** While this file exists the wrapper holds every runc start; it writes its pid to {@link #held} and waits. */
    private static Path holdStarts;

    private static Path held;
    private static Path runcWrapper;
    private static final String RUNC_WRAPPER = """
            #!/bin/sh
            # TaskAgentKilledIT's runc: every call goes to runc, but a start waits (for the test's kill) while %1$s exists.
            # The command follows the global options (--root DIR).
            if [ "$3" = start ] && [ -e %1$s ]; then
              echo $$ > %2$s.tmp && mv %2$s.tmp %2$s
              exec sleep 3600
            fi
            exec %3$s "$@"
            """;

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
        holdStarts = tmp.resolve("hold-starts");
        held = tmp.resolve("held-start");
        runcWrapper = tmp.resolve("runc-wrapper");
        Files.writeString(runcWrapper, RUNC_WRAPPER.formatted(holdStarts, held, Runtimes.RUNC));
        assertThat(runcWrapper.toFile().setExecutable(true)).isTrue();
        assertThat(Path.of("target/classes/dev/stevedore/agent/NodeAgent.class"))
                .as("the module is built")
                .exists();
        assertThat(Path.of("target/lib"))
                .as("mvn package copies the agent's dependencies to target/lib")
                .isDirectory();
    }

    @AfterAll
    static void stop() throws Exception {
        try {
            if (agent != null && agent.isAlive()) {
                agent.destroyForcibly().waitFor(30, TimeUnit.SECONDS);
            }
            heldStart().ifPresent(ProcessHandle::destroyForcibly);
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
    void aSigkilledAgentReadoptsItsTasksAndStartsNoneTwice(TestNamespace ns) throws Exception {
        agent = startAgent();
        List<String> uids = new ArrayList<>();
        for (int i = 0; i < 5; i++) {
            // Tasks 0 and 1 exit while the agent is dead: they wait for a file the test creates then.
            String args = i < 2
                    ? "[sh, -c, 'while [ ! -e /tmp/go ]; do sleep 0.1; done; exit " + (10 + i) + "']"
                    : "[sleep, '3600']";
            container(ns, "k" + i, "process: {args: " + args + "}");
            uids.add(task(ns, "k" + i + "-1", "k" + i).getMetadata().getUid());
        }
        List<TaskStatus> before = new ArrayList<>();
        List<Optional<Instant>> processStarts = new ArrayList<>();
        for (int i = 0; i < 5; i++) {
            TaskStatus s = Tasks.awaitPhase(ns, "k" + i + "-1", TaskStatus.Phase.Running)
                    .getStatus();
            before.add(s);
            processStarts.add(ProcessHandle.of(s.pid()).orElseThrow().info().startInstant());
        }

        kill9(agent);
        for (int i = 0; i < 2; i++) {
            Path exitFile =
                    TaskRecords.exitDir(Runtimes.DEFAULT_STATE_DIR, NODE).resolve(uids.get(i));
            assertThat(exitFile)
                    .as("task %d must still run when the agent dies", i)
                    .doesNotExist();
            Files.writeString(root.resolve("tasks").resolve(uids.get(i)).resolve("bundle/rootfs/tmp/go"), "");
        }
        for (int i = 0; i < 2; i++) {
            Path exitFile =
                    TaskRecords.exitDir(Runtimes.DEFAULT_STATE_DIR, NODE).resolve(uids.get(i));
            await().atMost(Duration.ofSeconds(30)).until(() -> Files.exists(exitFile));
        }
        for (int i = 0; i < 5; i++) {
            assertThat(ns.client()
                            .resources(Task.class)
                            .withName("k" + i + "-1")
                            .get()
                            .getStatus()
                            .phase())
                    .as("nobody wrote task %d's status while the agent was dead", i)
                    .isEqualTo(TaskStatus.Phase.Running);
        }

        agent = startAgent();
        for (int i = 0; i < 2; i++) {
            Task done = Tasks.awaitPhase(ns, "k" + i + "-1", TaskStatus.Phase.Deleted);
            assertThat(done.getStatus().exitCode()).isEqualTo(10 + i);
            assertThat(done.getStatus().reason()).isEqualTo("Error");
            assertThat(done.getStatus().startedAt()).isEqualTo(before.get(i).startedAt());
            assertNothingLeft(uids.get(i));
        }
        for (int i = 2; i < 5; i++) {
            // The agent re-adopts every record before it handles any exit, so by now it has seen these three.
            TaskStatus after = Tasks.awaitPhase(ns, "k" + i + "-1", TaskStatus.Phase.Running)
                    .getStatus();
            // The same process, never started twice.
            assertThat(after.pid()).isEqualTo(before.get(i).pid());
            assertThat(after.startedAt()).isEqualTo(before.get(i).startedAt());
            assertThat(ProcessHandle.of(after.pid()).orElseThrow().info().startInstant())
                    .isEqualTo(processStarts.get(i));
            assertThat(runtimes.named("runc").state(uids.get(i))).contains("running");
        }
        for (int i = 2; i < 5; i++) {
            Tasks.setDesired(ns, "k" + i + "-1", TaskSpec.DesiredState.Stopped);
        }
        for (int i = 2; i < 5; i++) {
            Task done = Tasks.awaitPhase(ns, "k" + i + "-1", TaskStatus.Phase.Deleted);
            assertThat(done.getStatus().reason()).isEqualTo("Signaled");
            assertThat(done.getStatus().exitCode()).isEqualTo(137);
            assertNothingLeft(uids.get(i));
        }

        // A crash between the runtime's create and start: the wrapper holds the start, and the agent is killed there.
        Files.writeString(holdStarts, "");
        container(ns, "halt", "process: {args: [sh, -c, 'echo x >> /starts; exec sleep 3600']}");
        String uid = task(ns, "halt-1", "halt").getMetadata().getUid();
        await().atMost(TIMEOUT).until(() -> Files.exists(held));
        assertThat(new TaskRecords(root, TaskRecords.exitDir(Runtimes.DEFAULT_STATE_DIR, NODE)).get(uid))
                .map(TaskRecord::state)
                .contains(TaskRecord.State.CREATING);
        kill9(agent);
        ProcessHandle start = heldStart().orElseThrow();
        start.destroyForcibly();
        start.onExit().get(30, TimeUnit.SECONDS);
        Files.delete(holdStarts);
        assertThat(runtimes.named("runc").state(uid)).contains("created");
        long createdPid = Long.parseLong(
                Files.readString(root.resolve("tasks").resolve(uid).resolve("ctr.pid"))
                        .strip());
        Task unreported = ns.client().resources(Task.class).withName("halt-1").get();
        assertThat(
                        unreported.getStatus() == null
                                ? null
                                : unreported.getStatus().phase())
                .isIn(null, TaskStatus.Phase.Pending);

        agent = startAgent();
        TaskStatus running =
                Tasks.awaitPhase(ns, "halt-1", TaskStatus.Phase.Running).getStatus();
        assertThat(running.pid()).isEqualTo(createdPid);
        Path starts = root.resolve("tasks").resolve(uid).resolve("bundle/rootfs/starts");
        await().atMost(Duration.ofSeconds(30)).until(() -> Files.exists(starts));
        assertThat(Files.readAllLines(starts)).as("the task's process ran once").containsExactly("x");
        Tasks.setDesired(ns, "halt-1", TaskSpec.DesiredState.Stopped);
        Task done = Tasks.awaitPhase(ns, "halt-1", TaskStatus.Phase.Deleted);
        assertThat(done.getStatus().reason()).isEqualTo("Signaled");
        assertThat(done.getStatus().pid()).isEqualTo(createdPid);
        assertNothingLeft(uid);

        agent.destroy();
        assertThat(agent.waitFor(60, TimeUnit.SECONDS)).isTrue();
    }

    // --- helpers -------------------------------------------------------------------------------------------

    private static Process startAgent() throws IOException {
        List<String> command = List.of(
                Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-cp",
                Path.of("target/classes").toAbsolutePath() + File.pathSeparator
                        + Path.of("target/lib").toAbsolutePath() + "/*",
                "dev.stevedore.agent.NodeAgent",
                "--node-name",
                NODE,
                "--root",
                root.toString(),
                "--heartbeat-interval",
                "2s",
                "--runtime-binary",
                "runc=" + runcWrapper);
        ProcessBuilder builder = new ProcessBuilder(command)
                .redirectErrorStream(true)
                .redirectInput(new File("/dev/null"))
                .redirectOutput(tmp.resolve("agent-" + (++agentStarts) + ".log").toFile());
        builder.environment().put("KUBECONFIG", controlPlane.kubeconfig().toString());
        return builder.start();
    }

    /** The runc start the wrapper holds, if it holds one. */
    private static Optional<ProcessHandle> heldStart() throws IOException {
        return Files.exists(held)
                ? ProcessHandle.of(Long.parseLong(Files.readString(held).strip()))
                : Optional.empty();
    }

    private static void kill9(Process process) throws Exception {
        assertThat(process.isAlive()).as("the agent runs").isTrue();
        assertThat(new ProcessBuilder("kill", "-9", Long.toString(process.pid()))
                        .start()
                        .waitFor())
                .isZero();
        assertThat(process.waitFor(30, TimeUnit.SECONDS)).isTrue();
        assertThat(process.exitValue()).isEqualTo(128 + 9);
    }

    private static void assertNothingLeft(String uid) throws IOException {
        LeftoverTasks.assertNoneLeft(root, runtimes, uid);
    }

    private static void container(TestNamespace ns, String name, String moreSpec) {
        Containers.create(ns, name, image, NODE, moreSpec);
        Containers.awaitCondition(ns, name, ContainerStatus.READY, "True");
    }

    private static Task task(TestNamespace ns, String name, String container) {
        return Tasks.create(ns, name, container, NODE, "stopGracePeriodSeconds: 1");
    }
}
