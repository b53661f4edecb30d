package dev.stevedore.e2e;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.stevedore.api.v1alpha1.Container;
import dev.stevedore.api.v1alpha1.ContainerSpec;
import dev.stevedore.api.v1alpha1.RuntimeNode;
import dev.stevedore.api.v1alpha1.RuntimeNodeStatus;
import dev.stevedore.api.v1alpha1.Task;
import dev.stevedore.api.v1alpha1.TaskSpec;
import dev.stevedore.api.v1alpha1.TaskStatus;
import dev.stevedore.testing.Processes;
import dev.stevedore.testing.Tools;
import io.fabric8.kubernetes.api.model.NodeCondition;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.PodBuilder;
import io.fabric8.kubernetes.client.Config;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientBuilder;
import io.fabric8.kubernetes.client.dsl.base.PatchContext;
import io.fabric8.kubernetes.client.dsl.base.PatchType;
import io.fabric8.kubernetes.client.utils.Serialization;
import java.io.IOException;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ThreadLocalRandom;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.io.TempDir;

/**
 * hack/node-up.sh adds a real kubelet node (Debian's containerd, a busybox sandbox, a CNI bridge) to the local
 * control plane, Pods run on it, and hack/node-down.sh leaves no process, mount, cgroup, interface or network
 * namespace behind. Runs on its own ports, addresses, interfaces and state directory, beside a developer's node.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class NodeIT {
    /** A cold node-up starts a control plane, a registry, containerd and the kubelet; builds nothing here. */
    private static final Duration TIMEOUT = Duration.ofMinutes(5);

    private static final Path REPO = Tools.repositoryRoot();

    @TempDir
    static Path state;

    private static Map<String, String> env;
    private static String node;
    private static KubernetesClient client;
    /** Processes in the node's Pod cgroups while a Pod runs: node-down must end them. */
    private static Set<Long> podProcesses = Set.of();

    private static Set<String> netnsBefore;

    @BeforeAll
    static void settings() throws IOException {
        String suffix =
                HexFormat.of().toHexDigits((short) ThreadLocalRandom.current().nextInt());
        int subnet = ThreadLocalRandom.current().nextInt(1, 255);
        node = "node-it-" + suffix;
        env = new HashMap<>(Map.of(
                "STEVEDORE_LOCAL_DIR",
                state.toString(),
                "STEVEDORE_SKIP_BUILD",
                "1", // the reactor built everything before this module's tests
                "STEVEDORE_APISERVER_PORT",
                freePort(),
                "STEVEDORE_ETCD_PORT",
                freePort(),
                "STEVEDORE_ETCD_PEER_PORT",
                freePort(),
                "STEVEDORE_REGISTRY_PORT",
                freePort(),
                "STEVEDORE_NODE_NAME",
                node,
                "STEVEDORE_NODE_INTERFACE",
                "stvit" + suffix + "n",
                "STEVEDORE_NODE_BRIDGE",
                "stvit" + suffix + "b",
                "STEVEDORE_NODE_IP",
                "10.214." + subnet + ".1"));
        env.putAll(Map.of(
                "STEVEDORE_POD_CIDR", "10.215." + subnet + ".0/24",
                "STEVEDORE_KUBELET_PORT", freePort(),
                "STEVEDORE_PULL_CREDENTIALS_PORT", freePort(),
                "STEVEDORE_OPERATOR_HEALTH_PORT", freePort(),
                "STEVEDORE_AGENT_HEALTH_PORT", freePort()));
        netnsBefore = netns();
    }

    @AfterAll
    static void down() {
        if (client != null) {
            client.close();
        }
        run("hack/node-down.sh");
        run("hack/local-down.sh");
    }

    @Test
    @Order(1)
    void nodeUpAddsAReadyNodeWithItsOwnAddress() throws Exception {
        Result up = timed("hack/node-up.sh");
        assertThat(up.exitCode()).as(up.output()).isZero();
        client = new KubernetesClientBuilder()
                .withConfig(Config.fromKubeconfig(state.resolve("kubeconfig").toFile()))
                .build();

        io.fabric8.kubernetes.api.model.Node created =
                client.nodes().withName(node).get();
        assertThat(created.getStatus().getConditions())
                .filteredOn(c -> c.getType().equals("Ready"))
                .extracting(NodeCondition::getStatus)
                .containsExactly("True");
        assertThat(created.getStatus().getAddresses())
                .anyMatch(
                        a -> a.getType().equals("InternalIP") && a.getAddress().equals(env.get("STEVEDORE_NODE_IP")));
        assertThat(created.getStatus().getNodeInfo().getContainerRuntimeVersion())
                .startsWith("containerd://");
        assertThat(Path.of("/sys/class/net", env.get("STEVEDORE_NODE_INTERFACE")))
                .exists();
    }

    /**
     * A Pod the scheduler places on the node: the busybox sandbox, an init container that says hello, a container
     * that keeps running.
     */
    @Test
    @Order(2)
    void aPodRunsOnTheNodeInItsNetworkAndCgroups() {
        String image = "127.0.0.1:" + env.get("STEVEDORE_REGISTRY_PORT") + "/stevedore/busybox:latest";
        client.pods()
                .inNamespace("default")
                .resource(new PodBuilder()
                        .withNewMetadata()
                        .withName("plain")
                        .endMetadata()
                        .withNewSpec()
                        .withTerminationGracePeriodSeconds(1L)
                        .addNewInitContainer()
                        .withName("hello")
                        .withImage(image)
                        .withCommand("sh", "-c", "echo hello from $(hostname) | tee /dev/termination-log")
                        .endInitContainer()
                        .addNewContainer()
                        .withName("sleep")
                        .withImage(image)
                        .withCommand("sleep", "3600")
                        .withNewResources()
                        .addToLimits("memory", new io.fabric8.kubernetes.api.model.Quantity("32Mi"))
                        .endResources()
                        .endContainer()
                        .endSpec()
                        .build())
                .create();

        await("Pod plain Ready").atMost(Duration.ofMinutes(2)).until(() -> ready(podPlain()));
        Pod running = podPlain();
        assertThat(running.getStatus()
                        .getInitContainerStatuses()
                        .get(0)
                        .getState()
                        .getTerminated())
                .satisfies(hello -> {
                    assertThat(hello.getExitCode()).isZero();
                    assertThat(hello.getMessage()).isEqualTo("hello from plain\n");
                });
        // Through the API server to the kubelet, as kubectl logs goes.
        assertThat(client.pods()
                        .inNamespace("default")
                        .withName("plain")
                        .inContainer("hello")
                        .getLog())
                .isEqualTo("hello from plain\n");
        String prefix = env.get("STEVEDORE_POD_CIDR").replace("0/24", "");
        assertThat(running.getStatus().getPodIP()).startsWith(prefix).isNotEqualTo(prefix + "1");
        assertThat(running.getSpec().getNodeName()).isEqualTo(node);
        assertThat(running.getStatus().getHostIP()).isEqualTo(env.get("STEVEDORE_NODE_IP"));

        podProcesses = podCgroupProcesses();
        assertThat(podProcesses).as("processes in the node's Pod cgroups").isNotEmpty();
        assertThat(podProcesses.stream().map(NodeIT::commandLine)).contains("sleep 3600");
    }

    /** node-up installed the chart from the images built here: both Pods Ready, the example ran on the node. */
    @Test
    @Order(3)
    void theChartsPodsAreReadyAndHelloWorldRanOnTheNode() throws IOException {
        assertThat(client.pods().inNamespace(RELEASE_NAMESPACE).list().getItems())
                .extracting(pod -> pod.getMetadata().getLabels().get("app.kubernetes.io/component"))
                .containsExactlyInAnyOrder("operator", "agent");
        assertThat(client.pods().inNamespace(RELEASE_NAMESPACE).list().getItems())
                .allMatch(NodeIT::ready)
                .allMatch(pod -> pod.getSpec().getNodeName().equals(node));

        Task hello = task("hello-world");
        assertThat(hello.getStatus().phase()).isEqualTo(TaskStatus.Phase.Deleted);
        assertThat(hello.getStatus().exitCode()).isZero();
        assertThat(hello.getStatus().reason()).isEqualTo("Completed");
        assertThat(hello.getStatus().nodeName()).isEqualTo(node);
        assertThat(client.resources(RuntimeNode.class)
                        .withName(node)
                        .get()
                        .getStatus()
                        .networks())
                .as("the agent offers the node's CNI network, the Pods' own")
                .extracting(RuntimeNodeStatus.NetworkInfo::name)
                .containsExactly("stevedore-" + node);
        assertThat(Files.readString(agentRoot()
                        .resolve("tasks")
                        .resolve(hello.getMetadata().getUid())
                        .resolve("task.log")))
                .contains("Hello from Stevedore");
    }

    /**
     * The promise of a node runtime: kubelet deleting the agent's Pod (and everything in its cgroup) stops no task.
     * The new Pod's agent re-adopts the same process, still Running, and records its exit when it comes.
     */
    @Test
    @Order(4)
    void aTaskOutlivesItsAgentPodAndTheNextPodRecordsItsExit() {
        applySleeper();
        Task running = startTask("sleeper-1");
        long pid = running.getStatus().pid();
        Pod agentBefore = agentPod();

        client.pods().inNamespace(RELEASE_NAMESPACE).resource(agentBefore).delete();
        await("a new agent Pod Ready").atMost(Duration.ofMinutes(2)).until(() -> {
            Pod now = agentPod();
            return now != null
                    && !now.getMetadata()
                            .getUid()
                            .equals(agentBefore.getMetadata().getUid())
                    && ready(now);
        });
        await("the new agent's RuntimeNode heartbeat")
                .atMost(Duration.ofMinutes(1))
                .until(() -> client
                        .resources(dev.stevedore.api.v1alpha1.RuntimeNode.class)
                        .withName(node)
                        .get()
                        .getStatus()
                        .conditions()
                        .stream()
                        .anyMatch(c ->
                                c.getType().equals("Ready") && c.getStatus().equals("True")));
        assertThat(task("sleeper-1").getStatus().phase()).isEqualTo(TaskStatus.Phase.Running);
        assertThat(task("sleeper-1").getStatus().pid()).isEqualTo(pid);
        assertThat(commandLine(pid)).isEqualTo("sleep 3600");

        // The exit comes while the new agent watches: it is recorded, with the signal.
        ProcessHandle.of(pid).orElseThrow().destroyForcibly();
        await("sleeper-1 Deleted")
                .atMost(Duration.ofMinutes(1))
                .until(() -> task("sleeper-1").getStatus().phase() == TaskStatus.Phase.Deleted);
        assertThat(task("sleeper-1").getStatus().exitCode()).isEqualTo(137);
        assertThat(task("sleeper-1").getStatus().reason()).isEqualTo("Signaled");
    }

    /** An upgrade that changes the agent's Pod template rolls the agent; the task it ran keeps running. */
    @Test
    @Order(5)
    void helmUpgradeWithAChangedValueKeepsTasksRunning() {
        Task running = startTask("sleeper-2");
        long pid = running.getStatus().pid();
        Pod agentBefore = agentPod();

        Processes.Result upgrade = Processes.run(
                new ProcessBuilder(
                                state.resolve("bin/helm").toString(),
                                "--kubeconfig",
                                state.resolve("kubeconfig").toString(),
                                "upgrade",
                                "stevedore",
                                REPO.resolve("charts/stevedore").toString(),
                                "--namespace",
                                RELEASE_NAMESPACE,
                                "--reuse-values",
                                "--set",
                                "agent.logLevel=DEBUG",
                                "--wait",
                                "--timeout",
                                "3m")
                        .directory(REPO.toFile()),
                TIMEOUT);
        assertThat(upgrade.exitCode()).as(upgrade.output()).isZero();
        await("the upgraded agent Pod Ready").atMost(Duration.ofMinutes(2)).until(() -> {
            Pod now = agentPod();
            return now != null
                    && !now.getMetadata()
                            .getUid()
                            .equals(agentBefore.getMetadata().getUid())
                    && ready(now)
                    && now.getSpec().getContainers().get(0).getEnv().stream()
                            .anyMatch(e -> e.getName().equals("STEVEDORE_LOG_LEVEL") && "DEBUG".equals(e.getValue()));
        });
        assertThat(task("sleeper-2").getStatus().phase()).isEqualTo(TaskStatus.Phase.Running);
        assertThat(task("sleeper-2").getStatus().pid()).isEqualTo(pid);
        assertThat(commandLine(pid)).isEqualTo("sleep 3600");
        // The upgraded agent drives it: a stop is carried out and recorded.
        client.resources(Task.class)
                .inNamespace("default")
                .withName("sleeper-2")
                .patch(PatchContext.of(PatchType.JSON_MERGE), "{\"spec\": {\"desiredState\": \"Stopped\"}}");
        await("sleeper-2 Deleted")
                .atMost(Duration.ofMinutes(1))
                .until(() -> task("sleeper-2").getStatus().phase() == TaskStatus.Phase.Deleted);
        assertThat(ProcessHandle.of(pid)).isEmpty();
    }

    @Test
    @Order(100)
    void nodeDownLeavesNoProcessMountCgroupInterfaceOrNetworkNamespace() throws Exception {
        assertThat(processesUsing(state.resolve("node"))).isNotEmpty();
        Result down = timed("hack/node-down.sh");
        assertThat(down.exitCode()).as(down.output()).isZero();

        assertThat(processesUsing(state.resolve("node"))).isEmpty();
        assertThat(podProcesses).noneMatch(pid -> ProcessHandle.of(pid).isPresent());
        assertThat(Files.readAllLines(Path.of("/proc/mounts"))).noneMatch(line -> line.contains(state.toString()));
        try (Stream<Path> hierarchies = Files.list(Path.of("/sys/fs/cgroup"))) {
            assertThat(hierarchies.map(h -> h.resolve(cgroupRoot()))).noneMatch(Files::exists);
        }
        assertThat(Path.of("/sys/class/net", env.get("STEVEDORE_NODE_INTERFACE")))
                .doesNotExist();
        assertThat(Path.of("/sys/class/net", env.get("STEVEDORE_NODE_BRIDGE"))).doesNotExist();
        assertThat(netnsBefore).containsAll(netns());
        assertThat(client.nodes().withName(node).get()).isNull();
    }

    private static final String RELEASE_NAMESPACE = "stevedore-system";

    private static Path agentRoot() {
        return state.resolve("node/stevedore");
    }

    private static Pod agentPod() {
        return client
                .pods()
                .inNamespace(RELEASE_NAMESPACE)
                .withLabel("app.kubernetes.io/component", "agent")
                .list()
                .getItems()
                .stream()
                .filter(pod -> pod.getMetadata().getDeletionTimestamp() == null)
                .findFirst()
                .orElse(null);
    }

    private static Task task(String name) {
        return client.resources(Task.class)
                .inNamespace("default")
                .withName(name)
                .get();
    }

    private static void applySleeper() {
        String image = "127.0.0.1:" + env.get("STEVEDORE_REGISTRY_PORT") + "/stevedore/busybox:latest";
        Container sleeper = new Container();
        sleeper.getMetadata().setName("sleeper");
        sleeper.getMetadata().setNamespace("default");
        sleeper.setSpec(Serialization.unmarshal(
                "{\"image\": \"" + image + "\", \"process\": {\"args\": [\"sleep\", \"3600\"]}}", ContainerSpec.class));
        client.resource(sleeper).serverSideApply();
    }

    /** Creates a Task of the sleeper Container and waits until it runs. */
    private static Task startTask(String name) {
        Task task = new Task();
        task.getMetadata().setName(name);
        task.getMetadata().setNamespace("default");
        task.setSpec(Serialization.unmarshal("{\"container\": \"sleeper\"}", TaskSpec.class));
        client.resource(task).create();
        await(name + " Running").atMost(Duration.ofMinutes(2)).until(() -> {
            Task now = task(name);
            return now.getStatus() != null && now.getStatus().phase() == TaskStatus.Phase.Running;
        });
        return task(name);
    }

    private static Pod podPlain() {
        return client.pods().inNamespace("default").withName("plain").get();
    }

    /** A Pod not yet scheduled has a status without conditions. */
    private static boolean ready(Pod pod) {
        return pod.getStatus() != null
                && pod.getStatus().getConditions() != null
                && pod.getStatus().getConditions().stream()
                        .anyMatch(c ->
                                c.getType().equals("Ready") && c.getStatus().equals("True"));
    }

    private static String cgroupRoot() {
        return "stevedore-node-" + node;
    }

    /** PIDs in the node's Pod cgroups (the pids hierarchy holds every process). */
    private static Set<Long> podCgroupProcesses() {
        try (Stream<Path> files = Files.walk(Path.of("/sys/fs/cgroup/pids", cgroupRoot()))) {
            return files.filter(f -> f.getFileName().toString().equals("cgroup.procs"))
                    .flatMap(f -> {
                        try {
                            return Files.readAllLines(f).stream();
                        } catch (IOException gone) {
                            return Stream.empty();
                        }
                    })
                    .map(Long::parseLong)
                    .collect(Collectors.toSet());
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    private static Set<String> netns() throws IOException {
        Path dir = Path.of("/run/netns");
        if (!Files.isDirectory(dir)) {
            return Set.of();
        }
        try (Stream<Path> files = Files.list(dir)) {
            return files.map(f -> f.getFileName().toString()).collect(Collectors.toSet());
        }
    }

    private record Result(int exitCode, String output) {}

    /** Runs a script and prints how long it took, for the record of what a node costs. */
    private static Result timed(String script) {
        long started = System.nanoTime();
        Result result = run(script);
        System.out.printf("%s took %d s%n", script, (System.nanoTime() - started) / 1_000_000_000L);
        return result;
    }

    /** Output to a file, so the timeout applies even if a process the script starts keeps the pipe open. */
    private static Result run(String script) {
        ProcessBuilder builder = new ProcessBuilder(REPO.resolve(script).toString()).directory(REPO.toFile());
        builder.environment().putAll(env);
        Processes.Result result = Processes.run(builder, TIMEOUT);
        return new Result(result.exitCode(), result.output().trim());
    }

    private static String commandLine(long pid) {
        try {
            return new String(
                            Files.readAllBytes(Path.of("/proc", Long.toString(pid), "cmdline")), StandardCharsets.UTF_8)
                    .replace('\0', ' ')
                    .trim();
        } catch (IOException gone) {
            return "";
        }
    }

    /** PIDs whose command line mentions the directory: what node-up started there. */
    private static List<Long> processesUsing(Path dir) throws IOException {
        try (Stream<Path> procs = Files.list(Path.of("/proc"))) {
            return procs.filter(p -> p.getFileName().toString().matches("\\d+"))
                    .filter(p -> commandLine(Long.parseLong(p.getFileName().toString()))
                            .contains(dir.toString()))
                    .map(p -> Long.parseLong(p.getFileName().toString()))
                    .toList();
        }
    }

    private static String freePort() throws IOException {
        try (ServerSocket socket = new ServerSocket(0)) {
            return Integer.toString(socket.getLocalPort());
        }
    }
}
