package dev.stevedore.agent.tasks;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

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
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The agent as a separate JVM, killed with SIGKILL (no shutdown hook, nothing flushed): its tasks run on under
 * conmon, exits during the downtime are recorded with their real status, and a restarted agent re-adopts the
 * running ones without starting anything twice — also when it died between the runtime's create and the record.
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
        assertThat(Path.of("target/classes/dev/stevedore/agent/NodeAgent.class")).as("the module is built").exists();
        assertThat(Path.of("target/lib")).as("mvn package copies the agent's dependencies to target/lib").isDirectory();
    }

    @AfterAll
    static void stop() throws Exception {
        try {
            if (agent != null && agent.isAlive()) {
                agent.destroyForcibly().waitFor(30, TimeUnit.SECONDS);
            }
        } finally {
            LeftoverTasks.removeUnder(root, runtimes); // leave nothing behind, whatever happened
            registry.close();
            controlPlane.adminClient().resources(RuntimeNode.class).withName(NODE).delete();
        }
    }

    @Test
    void aSigkilledAgentReadoptsItsTasksAndStartsNoneTwice(TestNamespace ns) throws Exception {
        agent = startAgent(null);
        List<String> uids = new ArrayList<>();
        for (int i = 0; i < 5; i++) {
            // Tasks 0 and 1 exit while the agent is dead: they wait for a file the test creates then.
            String args = i < 2 ? "[sh, -c, 'while [ ! -e /tmp/go ]; do sleep 0.1; done; exit " + (10 + i) + "']" : "[sleep, '3600']";
            container(ns, "k" + i, "process: {args: " + args + "}");
            uids.add(task(ns, "k" + i + "-1", "k" + i).getMetadata().getUid());
        }
        List<TaskStatus> before = new ArrayList<>();
        List<Optional<Instant>> processStarts = new ArrayList<>();
        for (int i = 0; i < 5; i++) {
            TaskStatus s = Tasks.awaitPhase(ns, "k" + i + "-1", TaskStatus.Phase.Running).getStatus();
            before.add(s);
            processStarts.add(ProcessHandle.of(s.pid()).orElseThrow().info().startInstant());
        }

        kill9(agent);
        for (int i = 0; i < 2; i++) {
            Path exitFile = root.resolve("task-exits").resolve(uids.get(i));
            assertThat(exitFile).as("task %d must still run when the agent dies", i).doesNotExist();
            Files.writeString(root.resolve("tasks").resolve(uids.get(i)).resolve("bundle/rootfs/tmp/go"), "");
        }
        for (int i = 0; i < 2; i++) {
            Path exitFile = root.resolve("task-exits").resolve(uids.get(i));
            await().atMost(Duration.ofSeconds(30)).until(() -> Files.exists(exitFile));
        }
        for (int i = 0; i < 5; i++) {
            assertThat(ns.client().resources(Task.class).withName("k" + i + "-1").get().getStatus().phase())
                    .as("nobody wrote task %d's status while the agent was dead", i).isEqualTo(TaskStatus.Phase.Running);
        }

        // Restarted with a crash planned for the next task's create (see below).
        agent = startAgent(ns.name() + "/halt-1");
        for (int i = 0; i < 2; i++) {
            Task done = Tasks.awaitPhase(ns, "k" + i + "-1", TaskStatus.Phase.Deleted);
            assertThat(done.getStatus().exitCode()).isEqualTo(10 + i);
            assertThat(done.getStatus().reason()).isEqualTo("Error");
            assertThat(done.getStatus().startedAt()).isEqualTo(before.get(i).startedAt());
            assertNothingLeft(uids.get(i));
        }
        for (int i = 2; i < 5; i++) {
            // The agent re-adopts every record before it handles any exit, so by now it has seen these three.
            TaskStatus after = Tasks.awaitPhase(ns, "k" + i + "-1", TaskStatus.Phase.Running).getStatus();
            // The same process, never started twice.
            assertThat(after.pid()).isEqualTo(before.get(i).pid());
            assertThat(after.startedAt()).isEqualTo(before.get(i).startedAt());
            assertThat(ProcessHandle.of(after.pid()).orElseThrow().info().startInstant()).isEqualTo(processStarts.get(i));
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

        // A crash between the runtime's create and anything written about it: the agent halts right there.
        container(ns, "halt", "process: {args: [sh, -c, 'echo x >> /starts; exec sleep 3600']}");
        String uid = task(ns, "halt-1", "halt").getMetadata().getUid();
        assertThat(agent.waitFor(TIMEOUT.toSeconds(), TimeUnit.SECONDS)).as("the agent halts after create").isTrue();
        assertThat(agent.exitValue()).isEqualTo(137);
        assertThat(Files.readString(tmp.resolve("agent-" + agentStarts + ".log"))).contains("halting");
        assertThat(runtimes.named("runc").state(uid)).contains("created");
        long createdPid = Long.parseLong(Files.readString(root.resolve("tasks").resolve(uid).resolve("ctr.pid")).strip());
        Task unreported = ns.client().resources(Task.class).withName("halt-1").get();
        assertThat(unreported.getStatus() == null ? null : unreported.getStatus().phase()).isIn(null, TaskStatus.Phase.Pending);

        agent = startAgent(null);
        TaskStatus running = Tasks.awaitPhase(ns, "halt-1", TaskStatus.Phase.Running).getStatus();
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

    private static Process startAgent(String haltAfterCreate) throws IOException {
        List<String> command = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString()));
        if (haltAfterCreate != null) {
            command.add("-D" + TaskManager.HALT_AFTER_CREATE_PROPERTY + "=" + haltAfterCreate);
        }
        command.addAll(List.of("-cp", Path.of("target/classes").toAbsolutePath() + File.pathSeparator
                        + Path.of("target/lib").toAbsolutePath() + "/*",
                "dev.stevedore.agent.NodeAgent", "--node-name", NODE, "--root", root.toString(), "--heartbeat-interval", "2s"));
        ProcessBuilder builder = new ProcessBuilder(command).redirectErrorStream(true)
                .redirectInput(new File("/dev/null"))
                .redirectOutput(tmp.resolve("agent-" + (++agentStarts) + ".log").toFile());
        builder.environment().put("KUBECONFIG", controlPlane.kubeconfig().toString());
        return builder.start();
    }

    private static void kill9(Process process) throws Exception {
        assertThat(process.isAlive()).as("the agent runs").isTrue();
        assertThat(new ProcessBuilder("kill", "-9", Long.toString(process.pid())).start().waitFor()).isZero();
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
