package dev.stevedore.agent.tasks;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.stevedore.agent.NodeAgent;
import dev.stevedore.agent.network.NetworkSettings;
import dev.stevedore.agent.testing.Containers;
import dev.stevedore.agent.testing.LocalRegistry;
import dev.stevedore.agent.testing.PullCredentialsEndpoint;
import dev.stevedore.agent.testing.TaskLog;
import dev.stevedore.agent.testing.Tasks;
import dev.stevedore.agent.testing.TestImages;
import dev.stevedore.agent.testing.TestImages.Format;
import dev.stevedore.agent.testing.TestNetwork;
import dev.stevedore.api.v1alpha1.Conditions;
import dev.stevedore.api.v1alpha1.Container;
import dev.stevedore.api.v1alpha1.ContainerStatus;
import dev.stevedore.api.v1alpha1.RuntimeNode;
import dev.stevedore.api.v1alpha1.Task;
import dev.stevedore.api.v1alpha1.TaskStatus;
import dev.stevedore.operator.StevedoreOperator;
import dev.stevedore.testing.Chart;
import dev.stevedore.testing.CniBridgeNetwork;
import dev.stevedore.testing.ControlPlane;
import dev.stevedore.testing.Crds;
import dev.stevedore.testing.Processes;
import dev.stevedore.testing.TestNamespace;
import dev.stevedore.testing.Tools;
import dev.stevedore.testing.WithControlPlane;
import io.fabric8.kubernetes.api.model.Condition;
import io.javaoperatorsdk.operator.Operator;
import java.io.IOException;
import java.io.UncheckedIOException;
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
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Every file of manifests/examples, applied with kubectl as shipped (only local-up's registry 127.0.0.1:5000 is
 * replaced by the test's, as hack/local-up.sh does with sed) to a real control plane with the operator and a node
 * agent running, does what its comments say; the commands they tell the user to run are run as written.
 */
@WithControlPlane
class ExamplesIT {
    private static final Path EXAMPLES = Tools.repositoryRoot().resolve("manifests/examples");
    private static final String SHIPPED_REGISTRY = "127.0.0.1:5000";
    private static final String NODE = "examples-it-node";
    private static final String USER = "examples";
    private static final String PASSWORD = "examples-s3cret";
    private static final int PULL_CREDENTIALS_PORT = PullCredentialsEndpoint.freePort();
    private static final Path CGROUP_V1 = Path.of("/sys/fs/cgroup");

    @TempDir
    static Path tmp;

    private static ControlPlane controlPlane;
    private static LocalRegistry registry;
    private static LocalRegistry privateRegistry;
    private static NodeAgent.Running agent;
    private static Operator operator;
    private static Path root;
    private static CniBridgeNetwork network;
    private static Path kubectl;

    @BeforeAll
    static void start(ControlPlane cp) throws Exception {
        controlPlane = cp;
        kubectl = Tools.binDir().resolve("kubectl");
        Crds.installStevedore(cp.adminClient());
        registry = LocalRegistry.start();
        privateRegistry = LocalRegistry.withBasicAuth(USER, PASSWORD);
        TestImages images = TestImages.build(tmp.resolve("images"));
        images.push(TestImages.BASE, registry.host() + "/stevedore/busybox:latest");
        images.push(
                TestImages.BASE,
                privateRegistry.host() + "/stevedore/busybox:latest",
                Format.OCI,
                USER + ":" + PASSWORD);
        root = tmp.resolve("root");
        network = TestNetwork.create(tmp); // as local-up's: every example's tasks are on it
        agent = NodeAgent.start(
                cp.adminClient(),
                NodeAgent.Settings.of(NODE, root) // no labels: node-selector.yaml's is added as its comment says
                        .withHeartbeatInterval(Duration.ofSeconds(5))
                        .withTaskRuntime(NodeAgent.TaskRuntime.DEFAULTS.withNetwork(
                                new NetworkSettings(network.confDir(), List.of(CniBridgeNetwork.DEBIAN_PLUGINS), null)))
                        .withPullCredentials(
                                PullCredentialsEndpoint.client(PULL_CREDENTIALS_PORT, tmp.resolve("credentials"))));
        operator =
                StevedoreOperator.start(cp.adminClient(), new StevedoreOperator.Settings(null, Duration.ofSeconds(40)));
    }

    @AfterAll
    static void stop() throws Exception {
        try {
            operator.stop();
            agent.close();
        } finally {
            // A failed test can leave a running task: its mounts would keep @TempDir from being deleted.
            LeftoverTasks.removeUnder(root, Runtimes.prepare(tmp.resolve("cleanup-runtimes")));
            registry.close();
            privateRegistry.close();
            network.close();
            controlPlane
                    .adminClient()
                    .resources(RuntimeNode.class)
                    .withName(NODE)
                    .delete();
        }
    }

    /** A new example needs a test here: the list of tested files is the directory's. */
    @Test
    void everyExampleIsAppliedByATestHere() throws IOException {
        try (Stream<Path> files = Files.list(EXAMPLES)) {
            assertThat(files.map(f -> f.getFileName().toString()).filter(f -> f.endsWith(".yaml")))
                    .containsExactlyInAnyOrder(
                            "hello-world.yaml",
                            "service-with-limits.yaml",
                            "pause-and-resume.yaml",
                            "stop-with-grace.yaml",
                            "private-registry.yaml",
                            "crun.yaml",
                            "node-selector.yaml",
                            "ttl-after-deleted.yaml",
                            "web-server.yaml");
        }
    }

    @Test
    void helloWorldSaysHelloAndExitsZero(TestNamespace ns) {
        apply(ns, "hello-world.yaml", registry.host());
        Task done = Tasks.awaitPhase(ns, "hello-world", TaskStatus.Phase.Deleted);
        assertCompleted(done);
        assertThat(log(done)).contains("stdout F Hello from Stevedore");
    }

    @Test
    void theWebServerAnswersOnItsAddressAndThroughItsHostPort(TestNamespace ns) throws Exception {
        apply(ns, "web-server.yaml", registry.host());
        Task running = Tasks.await(
                ns, "web-server", t -> t.getStatus() != null && t.getStatus().ips() != null);
        String ip = running.getStatus().ips().get(0);

        // The example's two curls; the node's address on the bridge is the test network's, not local-up's.
        HttpClient http =
                HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2)).build();
        for (String url : List.of("http://" + ip + ":8080/", "http://" + TestNetwork.GATEWAY + ":18080/")) {
            await(url)
                    .atMost(Duration.ofSeconds(30))
                    .untilAsserted(() -> assertThat(http.send(
                                            HttpRequest.newBuilder(URI.create(url))
                                                    .timeout(Duration.ofSeconds(2))
                                                    .build(),
                                            HttpResponse.BodyHandlers.ofString())
                                    .body())
                            .isEqualTo("Hello from web-server\n"));
        }

        kubectl(ns, "patch", "tk", "web-server", "--type=merge", "-p", stopped());
        assertCompleted(Tasks.awaitPhase(ns, "web-server", TaskStatus.Phase.Deleted));
    }

    @Test
    void theServiceRunsWithItsLimitsInItsCgroupUntilStopped(TestNamespace ns) throws Exception {
        apply(ns, "service-with-limits.yaml", registry.host());
        Task running = Tasks.awaitPhase(ns, "service-with-limits", TaskStatus.Phase.Running);
        String uid = running.getMetadata().getUid();

        assertThat(cgroupFile("memory", uid, "cgroup.procs"))
                .contains(running.getStatus().pid().toString());
        assertThat(cgroupFile("memory", uid, "memory.limit_in_bytes")).isEqualTo(Long.toString(64L << 20));
        assertThat(cgroupFile("cpu", uid, "cpu.cfs_quota_us"))
                .as("250m of the 100 ms period")
                .isEqualTo("25000");
        assertThat(cgroupFile("cpu", uid, "cpu.cfs_period_us")).isEqualTo("100000");
        assertThat(cgroupFile("pids", uid, "pids.max")).isEqualTo("64");

        kubectl(ns, "patch", "tk", "service-with-limits", "--type=merge", "-p", stopped());
        Task done = Tasks.awaitPhase(ns, "service-with-limits", TaskStatus.Phase.Deleted);
        assertCompleted(done);
        assertThat(log(done)).contains("stdout F service started", "stdout F stopping");
    }

    @Test
    void theTaskPausesAndResumesWhereItStopped(TestNamespace ns) throws Exception {
        apply(ns, "pause-and-resume.yaml", registry.host());
        Task running = Tasks.awaitPhase(ns, "pause-and-resume", TaskStatus.Phase.Running);
        Path freezer = CGROUP_V1
                .resolve("freezer/stevedore")
                .resolve(running.getMetadata().getUid());
        awaitLogLine(running, "tick 1");

        kubectl(ns, "patch", "tk", "pause-and-resume", "--type=merge", "-p", desired("Paused"));
        Tasks.awaitPhase(ns, "pause-and-resume", TaskStatus.Phase.Paused);
        assertThat(Files.readString(freezer.resolve("freezer.state")).strip()).isEqualTo("FROZEN");
        int ticksWhenPaused = ticks(running);
        await("no tick while paused") // it ticks every 5 s when it runs
                .during(Duration.ofSeconds(6))
                .atMost(Duration.ofSeconds(10))
                .until(() -> ticks(running) == ticksWhenPaused);

        kubectl(ns, "patch", "tk", "pause-and-resume", "--type=merge", "-p", desired("Running"));
        Tasks.awaitPhase(ns, "pause-and-resume", TaskStatus.Phase.Running);
        assertThat(Files.readString(freezer.resolve("freezer.state")).strip()).isEqualTo("THAWED");
        // It counts on from where it was frozen: the next tick is the one after the last before the pause.
        awaitLogLine(running, "tick " + (ticksWhenPaused + 1));

        kubectl(ns, "patch", "tk", "pause-and-resume", "--type=merge", "-p", stopped());
        assertCompleted(Tasks.awaitPhase(ns, "pause-and-resume", TaskStatus.Phase.Deleted));
    }

    @Test
    void stoppedItGetsSigintAndFinishesItsCleanUpWithinTheGracePeriod(TestNamespace ns) {
        apply(ns, "stop-with-grace.yaml", registry.host());
        Task running = Tasks.awaitPhase(ns, "stop-with-grace", TaskStatus.Phase.Running);
        assertThat(running.getSpec().stopSignal()).isEqualTo("SIGINT");
        long grace = running.getSpec().stopGracePeriodSeconds();
        awaitLogLine(running, "working"); // its trap is set: a signal before would find PID 1 without a handler

        Instant stopAsked = Instant.now();
        kubectl(ns, "patch", "tk", "stop-with-grace", "--type=merge", "-p", stopped());
        Task done = Tasks.awaitPhase(ns, "stop-with-grace", TaskStatus.Phase.Deleted);

        assertCompleted(done); // exit 0 from its handler, not Signaled by the SIGKILL after the grace period
        TaskLog lines = TaskLog.read(logFile(done));
        Instant sigint = lines.first("got SIGINT, cleaning up")
                .orElseThrow(() -> new AssertionError("no SIGINT handled: " + lines))
                .time();
        Instant cleanedUp = lines.first("done")
                .orElseThrow(() -> new AssertionError("clean-up cut short: " + lines))
                .time();
        assertThat(Duration.between(sigint, cleanedUp))
                .as("its 2 s clean-up ran whole")
                .isGreaterThanOrEqualTo(Duration.ofMillis(1900));
        // exitedAt is in whole seconds.
        assertThat(Instant.parse(done.getStatus().exitedAt()))
                .as("exited within the %d s grace period", grace)
                .isBefore(stopAsked.plusSeconds(grace));
    }

    /** As shipped, its placeholders are refused; with the registry's real credentials, as its comment says, it runs. */
    @Test
    void thePrivateImageIsPulledWithTheSecretsCredentials(TestNamespace ns) throws Exception {
        Chart.installRbac(ns);
        try (PullCredentialsEndpoint endpoint =
                PullCredentialsEndpoint.start(ns, NODE, PULL_CREDENTIALS_PORT, tmp.resolve("credentials"))) {
            String placeholders = shipped("private-registry.yaml", privateRegistry.host());
            kubectlApply(ns, placeholders);
            Container refused = Containers.awaitCondition(ns, "private-registry", Conditions.STALLED, "True");
            Condition imageReady = Containers.condition(refused, ContainerStatus.IMAGE_READY);
            assertThat(imageReady.getStatus()).isEqualTo("False");
            assertThat(imageReady.getReason()).isEqualTo("Unauthorized");

            assertThat(placeholders).contains("REPLACE-WITH-USERNAME", "REPLACE-WITH-PASSWORD");
            String fixed =
                    placeholders.replace("REPLACE-WITH-USERNAME", USER).replace("REPLACE-WITH-PASSWORD", PASSWORD);
            kubectlWithInput(ns, fixed, "delete", "-f", "-");
            kubectlApply(ns, fixed);

            Container ready = Containers.awaitCondition(ns, "private-registry", ContainerStatus.READY, "True");
            assertThat(ready.getSpec().image()).startsWith(privateRegistry.host() + "/");
            Task done = Tasks.awaitPhase(ns, "private-registry", TaskStatus.Phase.Deleted);
            assertCompleted(done);
            assertThat(log(done)).contains("stdout F pulled with credentials");
        }
    }

    @Test
    void crunRunsTheTask(TestNamespace ns) throws Exception {
        apply(ns, "crun.yaml", registry.host());
        Task running = Tasks.awaitPhase(ns, "crun", TaskStatus.Phase.Running);
        String uid = running.getMetadata().getUid();
        Runtimes runtimes = Runtimes.prepare(tmp.resolve("crun-test-runtimes"));
        assertThat(runtimes.named("crun").state(uid)).contains("running");
        assertThat(runtimes.named("runc").state(uid))
                .as("runc does not know it")
                .isEmpty();
        awaitLogLine(running, "Hello from crun");

        kubectl(ns, "patch", "tk", "crun", "--type=merge", "-p", stopped());
        assertCompleted(Tasks.awaitPhase(ns, "crun", TaskStatus.Phase.Deleted));
    }

    @Test
    void itWaitsForALabelledNodeAndRunsThere(TestNamespace ns) {
        apply(ns, "node-selector.yaml", registry.host());
        Container waiting = Containers.awaitCondition(ns, "node-selector", ContainerStatus.SCHEDULED, "False");
        Condition scheduled = Containers.condition(waiting, ContainerStatus.SCHEDULED);
        assertThat(scheduled.getReason()).isEqualTo("Unschedulable");
        assertThat(scheduled.getMessage()).contains("not matching the nodeSelector");
        assertThat(waiting.getSpec().nodeName()).isNull();
        assertThat(ns.client().resources(Task.class).withName("node-selector").get())
                .extracting(t -> t.getStatus() == null ? null : t.getStatus().phase())
                .isIn(null, TaskStatus.Phase.Pending);

        kubectl(ns, "label", "runtimenode", NODE, "disktype=ssd");
        try {
            Task done = Tasks.awaitPhase(ns, "node-selector", TaskStatus.Phase.Deleted);
            assertCompleted(done);
            assertThat(done.getSpec().nodeName()).isEqualTo(NODE);
            assertThat(log(done)).contains("stdout F running on a node with disktype=ssd");
        } finally {
            kubectl(ns, "label", "runtimenode", NODE, "disktype-");
        }
    }

    @Test
    void theFinishedTaskIsDeletedItsTtlAfterItExited(TestNamespace ns) {
        apply(ns, "ttl-after-deleted.yaml", registry.host());
        Task done = Tasks.awaitPhase(ns, "ttl-after-deleted", TaskStatus.Phase.Deleted);
        assertCompleted(done);
        long ttl = done.getSpec().ttlSecondsAfterDeleted();
        Instant exitedAt = Instant.parse(done.getStatus().exitedAt());

        await().atMost(Containers.TIMEOUT.plusSeconds(ttl))
                .pollInterval(Duration.ofMillis(200))
                .until(() -> ns.client()
                                .resources(Task.class)
                                .withName("ttl-after-deleted")
                                .get()
                        == null);
        Instant goneAt = Instant.now();
        assertThat(goneAt)
                .as("gone %d s after the exit at %s", ttl, exitedAt)
                .isAfterOrEqualTo(exitedAt.plusSeconds(ttl));
        assertThat(ns.client()
                        .resources(Container.class)
                        .withName("ttl-after-deleted")
                        .get())
                .as("the Container stays")
                .isNotNull();
    }

    /** The example as shipped, its images and credentials for local-up's registry moved to {@code registryHost}. */
    private static String shipped(String example, String registryHost) {
        try {
            return Files.readString(EXAMPLES.resolve(example)).replace(SHIPPED_REGISTRY, registryHost);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static void apply(TestNamespace ns, String example, String registryHost) {
        kubectlApply(ns, shipped(example, registryHost));
    }

    private static void kubectlApply(TestNamespace ns, String manifest) {
        kubectlWithInput(ns, manifest, "apply", "-f", "-");
    }

    private static void kubectl(TestNamespace ns, String... args) {
        kubectlWithInput(ns, null, args);
    }

    private static void kubectlWithInput(TestNamespace ns, String input, String... args) {
        List<String> command = new ArrayList<>(List.of(
                kubectl.toString(),
                "--kubeconfig",
                controlPlane.kubeconfig().toString(),
                "--cache-dir",
                tmp.resolve("kube-cache").toString(),
                "--namespace",
                ns.name()));
        command.addAll(List.of(args));
        Processes.Result result = Processes.run(new ProcessBuilder(command), input, Duration.ofMinutes(1));
        assertThat(result.exitCode())
                .as("kubectl %s: %s", String.join(" ", args), result.output())
                .isZero();
    }

    private static String desired(String state) {
        return "{\"spec\":{\"desiredState\":\"" + state + "\"}}";
    }

    private static String stopped() {
        return desired("Stopped");
    }

    private static void assertCompleted(Task task) {
        assertThat(task.getStatus().reason()).as(task.getStatus().message()).isEqualTo("Completed");
        assertThat(task.getStatus().exitCode()).isZero();
    }

    private static String cgroupFile(String controller, String taskUid, String file) throws IOException {
        return Files.readString(CGROUP_V1
                        .resolve(controller)
                        .resolve("stevedore")
                        .resolve(taskUid)
                        .resolve(file))
                .strip();
    }

    private static Path logFile(Task task) {
        return root.resolve("tasks").resolve(task.getMetadata().getUid()).resolve("task.log");
    }

    private static String log(Task task) {
        try {
            return Files.readString(logFile(task));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static void awaitLogLine(Task task, String line) {
        await("'" + line + "' in the task's log")
                .atMost(Containers.TIMEOUT)
                .ignoreExceptions() // no log yet, or a line conmon is still writing
                .until(() -> TaskLog.read(logFile(task)).first(line).isPresent());
    }

    /** How many "tick N" lines the task wrote so far. */
    private static int ticks(Task task) {
        return (int) TaskLog.read(logFile(task)).lines().stream()
                .map(TaskLog.Line::text)
                .filter(text -> text.startsWith("tick "))
                .count();
    }
}
