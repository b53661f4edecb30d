package dev.stevedore.agent.tasks;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.stevedore.agent.testing.Containers;
import dev.stevedore.agent.testing.LocalRegistry;
import dev.stevedore.agent.testing.Tasks;
import dev.stevedore.agent.testing.TestImages;
import dev.stevedore.api.v1alpha1.ContainerStatus;
import dev.stevedore.api.v1alpha1.RuntimeNode;
import dev.stevedore.api.v1alpha1.TaskSpec;
import dev.stevedore.api.v1alpha1.TaskStatus;
import dev.stevedore.testing.ControlPlane;
import dev.stevedore.testing.Crds;
import dev.stevedore.testing.TestNamespace;
import dev.stevedore.testing.WithControlPlane;
import java.io.File;
import java.io.IOException;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * What kubelet does to an agent Pod, done to an agent process: the agent runs in a cgroup of its own (as in its
 * Pod's container), with {@code --conmon-cgroup}, {@code --state-dir} and {@code --health-address} as the chart
 * sets them. Each task's conmon lands in the conmon cgroup in every hierarchy; killing every process of the agent's
 * cgroup (what the runtime does when kubelet stops a host-PID container) leaves conmon and the task running; a new
 * agent on the same root and state directory re-adopts the task; SIGTERM stops the agent and no task; and the exit
 * is recorded when the task finally stops.
 */
@WithControlPlane
class ConmonCgroupIT {
    private static final Duration TIMEOUT = Duration.ofSeconds(120);
    private static final String NODE = "conmon-cgroup-it-node";
    private static final String RUN = UUID.randomUUID().toString().substring(0, 8);
    /** Where the test's "agent Pod" runs, and where the agent is told to put conmon: both removed at the end. */
    private static final String AGENT_CGROUP = "/stevedore-it-" + RUN + "-agent";

    private static final String CONMON_CGROUP = "/stevedore-it-" + RUN + "/conmon";

    @TempDir
    static Path tmp;

    private static LocalRegistry registry;
    private static ControlPlane controlPlane;
    private static Path root;
    private static Path stateDir;
    private static String image;
    private static Runtimes runtimes;
    private static ConmonCgroup agentCgroup;
    private static int healthPort;
    private static final List<Process> agents = new ArrayList<>();

    @BeforeAll
    static void start(ControlPlane cp) throws Exception {
        controlPlane = cp;
        Crds.installStevedore(cp.adminClient());
        registry = LocalRegistry.start();
        TestImages images = TestImages.build(tmp.resolve("images"));
        image = registry.host() + "/test/busybox:1";
        images.push(TestImages.BASE, image);
        root = tmp.resolve("root");
        stateDir = tmp.resolve("state");
        runtimes = Runtimes.prepare(tmp.resolve("test-runtimes"), java.util.Map.of(), stateDir, ConmonCgroup.NONE);
        agentCgroup = ConmonCgroup.prepare(ConmonCgroup.CGROUP_ROOT, AGENT_CGROUP);
        try (ServerSocket socket = new ServerSocket(0)) {
            healthPort = socket.getLocalPort();
        }
        assertThat(Path.of("target/lib"))
                .as("mvn package copies the agent's dependencies to target/lib")
                .isDirectory();
    }

    @AfterAll
    static void stop() throws Exception {
        try {
            for (Process agent : agents) {
                agent.destroyForcibly().waitFor(30, TimeUnit.SECONDS);
            }
            LeftoverTasks.removeUnder(root, runtimes);
            for (String cgroup : List.of(CONMON_CGROUP, AGENT_CGROUP, "/stevedore-it-" + RUN)) {
                for (Path hierarchy : ConmonCgroup.hierarchies(ConmonCgroup.CGROUP_ROOT)) {
                    Files.deleteIfExists(hierarchy.resolve(cgroup.substring(1))); // rmdir, once conmon has gone
                }
            }
        } finally {
            registry.close();
            controlPlane
                    .adminClient()
                    .resources(RuntimeNode.class)
                    .withName(NODE)
                    .delete();
        }
    }

    @Test
    void tasksOutliveTheAgentsCgroupAndItsShutdown(TestNamespace ns) throws Exception {
        Process first = startAgent(1);
        agentCgroup.join(first.pid()); // the agent "Pod": what it starts from now on is in there too
        awaitReady();
        Containers.create(ns, "sleeper", image, NODE, "process: {args: [sleep, '3600']}");
        Containers.awaitCondition(ns, "sleeper", ContainerStatus.READY, "True");
        String uid = Tasks.create(ns, "sleeper-1", "sleeper", NODE, "stopGracePeriodSeconds: 1")
                .getMetadata()
                .getUid();
        TaskStatus running =
                Tasks.awaitPhase(ns, "sleeper-1", TaskStatus.Phase.Running).getStatus();
        ProcessHandle task = ProcessHandle.of(running.pid()).orElseThrow();
        Instant taskStarted = task.info().startInstant().orElseThrow();
        long conmonPid = Long.parseLong(
                Files.readString(root.resolve("tasks").resolve(uid).resolve("conmon.pid"))
                        .strip());

        assertThat(cgroupPaths(conmonPid))
                .as("conmon's cgroup in every hierarchy (/proc/%d/cgroup)", conmonPid)
                .containsOnly(CONMON_CGROUP);
        assertThat(cgroupPaths(first.pid())).containsOnly(AGENT_CGROUP);
        assertThat(runtimeState(uid)).isEqualTo("running");

        killEveryProcessOf(AGENT_CGROUP);
        assertThat(first.waitFor(30, TimeUnit.SECONDS)).isTrue();
        assertThat(running(conmonPid)).as("conmon outlives the agent's cgroup").isTrue();
        assertThat(running(task.pid()))
                .as("the task outlives the agent's cgroup")
                .isTrue();

        Process second = startAgent(2);
        awaitReady();
        Tasks.await(
                ns,
                "sleeper-1",
                t -> t.getStatus().phase() == TaskStatus.Phase.Running
                        && running.pid().equals(t.getStatus().pid()));
        assertThat(task.info().startInstant())
                .as("the same process, re-adopted")
                .contains(taskStarted);

        second.destroy(); // SIGTERM, as kubelet stops the agent's container first
        assertThat(second.waitFor(60, TimeUnit.SECONDS)).isTrue();
        assertThat(running(task.pid())).as("the agent's shutdown stops no task").isTrue();
        assertThat(running(conmonPid)).isTrue();

        startAgent(3);
        awaitReady();
        Tasks.setDesired(ns, "sleeper-1", TaskSpec.DesiredState.Stopped);
        TaskStatus deleted =
                Tasks.awaitPhase(ns, "sleeper-1", TaskStatus.Phase.Deleted).getStatus();
        // sleep, its PID namespace's init, ignores SIGTERM: the grace period ends in SIGKILL, recorded as such.
        assertThat(deleted.exitCode()).isEqualTo(128 + 9);
        assertThat(deleted.reason()).isEqualTo("Signaled");
        await().atMost(TIMEOUT).until(() -> !running(conmonPid));
    }

    // --- helpers -------------------------------------------------------------------------------------------

    private static Process startAgent(int n) throws IOException {
        List<String> command = List.of(
                Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "@" + Path.of("jvm.options").toAbsolutePath(),
                "-cp",
                Path.of("target/classes").toAbsolutePath() + File.pathSeparator
                        + Path.of("target/lib").toAbsolutePath() + "/*",
                "dev.stevedore.agent.NodeAgent",
                "--node-name",
                NODE,
                "--root",
                root.toString(),
                "--state-dir",
                stateDir.toString(),
                "--conmon-cgroup",
                CONMON_CGROUP,
                "--health-address",
                "127.0.0.1:" + healthPort,
                "--heartbeat-interval",
                "2s");
        ProcessBuilder builder = new ProcessBuilder(command)
                .redirectErrorStream(true)
                .redirectInput(new File("/dev/null"))
                .redirectOutput(tmp.resolve("agent-" + n + ".log").toFile());
        builder.environment().put("KUBECONFIG", controlPlane.kubeconfig().toString());
        Process agent = builder.start();
        agents.add(agent);
        return agent;
    }

    /** /readyz answers 200 once the agent's RuntimeNode is registered and its informers are synced. */
    private static void awaitReady() {
        HttpClient http = HttpClient.newHttpClient();
        HttpRequest ready = HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + healthPort + "/readyz"))
                .build();
        await().atMost(TIMEOUT)
                .ignoreExceptions()
                .until(() ->
                        http.send(ready, HttpResponse.BodyHandlers.ofString()).statusCode() == 200);
    }

    /**
     * Whether the process runs: not gone, and not a zombie its parent has yet to reap (a killed conmon's parent is
     * whoever adopted it), which ProcessHandle counts as alive.
     */
    private static boolean running(long pid) {
        try {
            String stat = Files.readString(Path.of("/proc/" + pid + "/stat"));
            char state = stat.charAt(stat.lastIndexOf(')') + 2);
            return state != 'Z' && state != 'X';
        } catch (IOException e) {
            return false;
        }
    }

    /** The cgroup path of {@code pid} in each hierarchy it is in. */
    private static Set<String> cgroupPaths(long pid) throws IOException {
        Set<String> paths = new TreeSet<>();
        for (String line : Files.readAllLines(Path.of("/proc/" + pid + "/cgroup"))) {
            paths.add(line.substring(line.indexOf(':', line.indexOf(':') + 1) + 1));
        }
        return paths;
    }

    /** SIGKILL to every process in the cgroup, in any hierarchy, until none is left: runc's kill --all. */
    private static void killEveryProcessOf(String cgroup) throws IOException {
        await().atMost(TIMEOUT).until(() -> {
            Set<Long> pids = new TreeSet<>();
            for (Path hierarchy : ConmonCgroup.hierarchies(ConmonCgroup.CGROUP_ROOT)) {
                Files.readAllLines(hierarchy.resolve(cgroup.substring(1)).resolve("cgroup.procs")).stream()
                        .filter(line -> !line.isBlank())
                        .forEach(line -> pids.add(Long.parseLong(line.strip())));
            }
            pids.forEach(pid -> ProcessHandle.of(pid).ifPresent(ProcessHandle::destroyForcibly));
            return pids.isEmpty();
        });
    }

    private static String runtimeState(String uid) throws IOException {
        return runtimes.named("runc").state(uid).orElse("none");
    }
}
