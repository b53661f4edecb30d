package dev.stevedore.e2e;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.stevedore.testing.Processes;
import dev.stevedore.testing.Tools;
import io.fabric8.kubernetes.api.model.NodeCondition;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.PodBuilder;
import io.fabric8.kubernetes.client.Config;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientBuilder;
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
                "STEVEDORE_AGENT_HEALTH_PORT", freePort(),
                // The Stevedore parts (images, chart, example) join when the images and chart values exist.
                "STEVEDORE_NODE_ONLY", "1"));
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

    // Order 3 to 99: the Stevedore parts, once the images and the chart's values exist.

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

    private static Pod podPlain() {
        return client.pods().inNamespace("default").withName("plain").get();
    }

    private static boolean ready(Pod pod) {
        return pod.getStatus().getConditions().stream()
                .anyMatch(c -> c.getType().equals("Ready") && c.getStatus().equals("True"));
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
