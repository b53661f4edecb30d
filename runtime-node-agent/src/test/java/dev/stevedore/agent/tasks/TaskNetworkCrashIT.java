package dev.stevedore.agent.tasks;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.stevedore.agent.testing.AgentProcess;
import dev.stevedore.agent.testing.Containers;
import dev.stevedore.agent.testing.LocalRegistry;
import dev.stevedore.agent.testing.Tasks;
import dev.stevedore.agent.testing.TestImages;
import dev.stevedore.agent.testing.TestNetwork;
import dev.stevedore.api.v1alpha1.ContainerStatus;
import dev.stevedore.api.v1alpha1.RuntimeNode;
import dev.stevedore.api.v1alpha1.Task;
import dev.stevedore.api.v1alpha1.TaskSpec;
import dev.stevedore.api.v1alpha1.TaskStatus;
import dev.stevedore.testing.CniBridgeNetwork;
import dev.stevedore.testing.ControlPlane;
import dev.stevedore.testing.Crds;
import dev.stevedore.testing.TestNamespace;
import dev.stevedore.testing.WithControlPlane;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Tasks on a CNI network (Debian's plugins, {@link TestNetwork}) while the agent, a JVM of its own, is SIGKILLed:
 * half-way through a CNI ADD, half-way through a DEL, and at random moments of 200 start/stop cycles. Every task ends
 * Deleted — with its exit code if it ran — and no address, veth, network namespace or iptables rule is left.
 *
 * <p>The plugin path starts with a directory whose {@code portmap} passes every call on to Debian's but holds an ADD
 * or a DEL while the test asks it to: the agent is then stuck with the bridge's half of the work done, and the test
 * kills it there.
 */
@WithControlPlane
class TaskNetworkCrashIT {
    private static final String NODE = "task-network-crash-it-node";
    private static final Path NETNS = Runtimes.DEFAULT_STATE_DIR.resolve("netns");
    private static final int ROUNDS = 20;
    private static final int TASKS_PER_ROUND = 10;
    private static final String HOLDING_PORTMAP = """
            #!/bin/sh
            # TaskNetworkCrashIT's portmap: Debian's, but an ADD or a DEL waits (for the test's kill) while the file
            # hold-ADD or hold-DEL exists.
            if [ -e %1$s/hold-"$CNI_COMMAND" ]; then
              echo $$ > %1$s/held.tmp && mv %1$s/held.tmp %1$s/held
              exec sleep 3600
            fi
            exec %2$s/portmap
            """;

    @TempDir
    static Path tmp;

    private static LocalRegistry registry;
    private static ControlPlane controlPlane;
    private static Path root;
    private static Path holds;
    private static String image;
    private static Runtimes runtimes;
    private static CniBridgeNetwork network;
    private static AgentProcess agent;
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
        network = TestNetwork.create(tmp);
        holds = Files.createDirectories(tmp.resolve("plugins"));
        Path portmap = holds.resolve("portmap");
        Files.writeString(portmap, HOLDING_PORTMAP.formatted(holds, CniBridgeNetwork.DEBIAN_PLUGINS));
        Files.setPosixFilePermissions(portmap, PosixFilePermissions.fromString("rwx------"));
        agent = startAgent();
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
            network.close();
        }
    }

    @Test
    void anAgentKilledHalfWayThroughAnAddDetachesTheTaskAtItsNextStart(TestNamespace ns) throws Exception {
        container(
                ns,
                "held",
                "process: {args: [sh, -c, 'exit 3']}\nnetwork: {ports: [{containerPort: 80, hostPort: 18081}]}");
        Files.writeString(holds.resolve("hold-ADD"), "");
        String uid = Tasks.create(ns, "held-1", "held", NODE, "").getMetadata().getUid();
        killWhileHeld();
        Files.delete(holds.resolve("hold-ADD"));
        assertThat(Files.list(NETNS).map(p -> p.getFileName().toString())).contains(uid);

        agent = startAgent();
        Task failed = Tasks.awaitPhase(ns, "held-1", TaskStatus.Phase.Deleted);

        // Nothing ran: the start failed (there is no exit code to report), and its network is gone.
        assertThat(failed.getStatus().reason()).isEqualTo("StartFailed");
        assertThat(failed.getStatus().exitCode()).isNull();
        assertNothingLeft(uid);
    }

    @Test
    void anAgentKilledHalfWayThroughADelFinishesItAndReportsTheExitCode(TestNamespace ns) throws Exception {
        container(
                ns,
                "leaving",
                "process: {args: [sh, -c, 'exit 4']}\nnetwork: {ports: [{containerPort: 80, hostPort: 18082}]}");
        Files.writeString(holds.resolve("hold-DEL"), "");
        String uid =
                Tasks.create(ns, "leaving-1", "leaving", NODE, "").getMetadata().getUid();
        killWhileHeld();
        Files.delete(holds.resolve("hold-DEL"));
        assertThat(TestNetwork.iptables()).as("the port forward is still there").contains(uid);

        agent = startAgent();
        Task done = Tasks.awaitPhase(ns, "leaving-1", TaskStatus.Phase.Deleted);

        assertThat(done.getStatus().exitCode()).isEqualTo(4);
        assertNothingLeft(uid);
    }

    @Test
    void twoHundredStartStopCyclesWithTheAgentKilledAtRandomLeaveNothingAndLoseNoExitCode(TestNamespace ns)
            throws Exception {
        // Even tasks exit by themselves after up to a second; odd ones run until they are stopped (SIGTERM, which a
        // trap turns into their exit). Each exits with its own code: 10 + its place in the round.
        for (int i = 0; i < TASKS_PER_ROUND; i++) {
            String args = i % 2 == 0
                    ? "[sh, -c, 'sleep 0.$((RANDOM % 10)); exit " + (10 + i) + "']"
                    : "[sh, -c, 'trap \"exit " + (10 + i) + "\" TERM; touch /tmp/trapped; sleep 3600 & wait']";
            container(ns, "c" + i, "process: {args: " + args + "}");
        }
        Random random = new Random(14);
        List<String> uids = new ArrayList<>();
        for (int round = 0; round < ROUNDS; round++) {
            for (int i = 0; i < TASKS_PER_ROUND; i++) {
                uids.add(Tasks.create(ns, name(round, i), "c" + i, NODE, "stopGracePeriodSeconds: 30")
                        .getMetadata()
                        .getUid());
            }
            for (int i = 0; i < TASKS_PER_ROUND; i++) {
                Tasks.await(
                        ns,
                        name(round, i),
                        t -> t.getStatus() != null && t.getStatus().startedAt() != null);
            }
            for (int i = 1; i < TASKS_PER_ROUND; i += 2) {
                // Stopped once its trap is set: a SIGTERM before would be ignored (the process is its PID 1).
                Path trapped = root.resolve("tasks")
                        .resolve(uids.get(uids.size() - TASKS_PER_ROUND + i))
                        .resolve("bundle/rootfs/tmp/trapped");
                await("the trap of " + name(round, i))
                        .atMost(Containers.TIMEOUT)
                        .until(() -> Files.exists(trapped));
                Tasks.setDesired(ns, name(round, i), TaskSpec.DesiredState.Stopped);
            }
            // The kill lands anywhere in the tasks' exits, releases (CNI DEL) and reports.
            Thread.sleep(random.nextInt(1500));
            agent.kill();
            agent = startAgent();
            for (int i = 0; i < TASKS_PER_ROUND; i++) {
                Task done = Tasks.awaitPhase(ns, name(round, i), TaskStatus.Phase.Deleted);
                assertThat(done.getStatus().exitCode())
                        .as("%s: %s", name(round, i), done.getStatus().message())
                        .isEqualTo(10 + i);
            }
        }
        for (String uid : uids) {
            assertNothingLeft(uid);
        }
        TestNetwork.assertEmpty(network);
    }

    private static void killWhileHeld() throws Exception {
        Path held = holds.resolve("held");
        await("the held plugin").atMost(Containers.TIMEOUT).until(() -> Files.exists(held));
        agent.kill();
        long pid = Long.parseLong(Files.readString(held).strip());
        ProcessHandle.of(pid).ifPresent(ProcessHandle::destroyForcibly);
        Files.delete(held);
    }

    private static void assertNothingLeft(String uid) throws IOException {
        LeftoverTasks.assertNoneLeft(root, runtimes, uid);
        TestNetwork.assertNothingLeftOf(network, uid, NETNS);
    }

    private static String name(int round, int i) {
        return "r" + round + "-" + i;
    }

    private static void container(TestNamespace ns, String name, String spec) {
        Containers.create(ns, name, image, NODE, spec);
        Containers.awaitCondition(ns, name, ContainerStatus.READY, "True");
    }

    private static AgentProcess startAgent() {
        List<String> flags = new ArrayList<>(network.agentFlags(holds)); // the holding portmap first
        flags.addAll(List.of("--resolv-conf", ""));
        return AgentProcess.start(
                NODE, root, controlPlane.kubeconfig(), tmp.resolve("agent-" + (++agentStarts) + ".log"), flags);
    }
}
