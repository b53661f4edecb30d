package dev.stevedore.agent.tasks;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.sun.net.httpserver.HttpServer;
import dev.stevedore.agent.NodeAgent;
import dev.stevedore.agent.logs.LogOptions;
import dev.stevedore.agent.logs.TaskLogReader;
import dev.stevedore.agent.network.NetworkSettings;
import dev.stevedore.agent.testing.Containers;
import dev.stevedore.agent.testing.LocalRegistry;
import dev.stevedore.agent.testing.Tasks;
import dev.stevedore.agent.testing.TestImages;
import dev.stevedore.agent.testing.TestNetwork;
import dev.stevedore.api.v1alpha1.ContainerStatus;
import dev.stevedore.api.v1alpha1.RuntimeNode;
import dev.stevedore.api.v1alpha1.RuntimeNodeStatus;
import dev.stevedore.api.v1alpha1.Task;
import dev.stevedore.api.v1alpha1.TaskSpec;
import dev.stevedore.api.v1alpha1.TaskStatus;
import dev.stevedore.testing.CniBridgeNetwork;
import dev.stevedore.testing.ControlPlane;
import dev.stevedore.testing.Crds;
import dev.stevedore.testing.TestNamespace;
import dev.stevedore.testing.WithControlPlane;
import java.io.ByteArrayOutputStream;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Tasks on a CNI network with Debian's real plugins (bridge, host-local, portmap, loopback) and real runc: they
 * reach each other and the host by address, a hostPort forwards to one, their /etc files say what was asked, and
 * nothing of a task's network outlives it. The bridge and its subnet are this test's own (no route leads beyond
 * it, and no traffic goes anywhere but to its addresses).
 */
@WithControlPlane
class TaskNetworkIT {
    private static final String NODE = "task-network-it-node";
    private static final String GATEWAY = TestNetwork.GATEWAY;
    private static final int HOST_PORT = 18080;

    private static final Path NETNS = Runtimes.DEFAULT_STATE_DIR.resolve("netns");

    @TempDir
    static Path tmp;

    private static LocalRegistry registry;
    private static ControlPlane controlPlane;
    private static Path root;
    private static CniBridgeNetwork network;
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
        network = TestNetwork.create(tmp);
        Path resolvConf = Files.writeString(
                tmp.resolve("resolv.conf"), "nameserver 10.213.32.10\nsearch node.example\noptions ndots:5\n");
        agent = NodeAgent.start(
                cp.adminClient(),
                NodeAgent.Settings.of(NODE, root)
                        .withHeartbeatInterval(Duration.ofSeconds(1))
                        .withTaskRuntime(NodeAgent.TaskRuntime.DEFAULTS.withNetwork(new NetworkSettings(
                                network.confDir(), List.of(CniBridgeNetwork.DEBIAN_PLUGINS), resolvConf))));
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
    void tasksReachEachOtherAndTheHostByAddressAndAHostPortForwardsToOne(TestNamespace ns) throws Exception {
        Containers.create(ns, "web", image, NODE, """
                process:
                  args: [sh, -c, 'hostname; cat /etc/resolv.conf /etc/hosts; mkdir -p /tmp/www;
                    echo hello-from-web > /tmp/www/index.html; trap "exit 0" TERM; httpd -f -p 8080 -h /tmp/www & wait']
                network:
                  hostname: web-server
                  ports: [{containerPort: 8080, hostPort: %d}]
                  dnsConfig:
                    nameservers: [10.213.32.53]
                    searches: [svc.example]
                    options: [{name: ndots, value: "2"}]
                """.formatted(HOST_PORT));
        Containers.awaitCondition(ns, "web", ContainerStatus.READY, "True");
        Task web = Tasks.create(ns, "web-1", "web", NODE, "");
        web = Tasks.await(
                ns, "web-1", t -> t.getStatus() != null && t.getStatus().ips() != null);
        String webIp = web.getStatus().ips().get(0);
        assertThat(webIp).startsWith("10.213.32.");
        assertThat(web.getStatus().phase()).isEqualTo(TaskStatus.Phase.Running);

        // A hostPort: the node's address on the bridge, port 18080, reaches the task's 8080.
        HttpClient http =
                HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2)).build();
        await("the hostPort")
                .atMost(Duration.ofSeconds(30))
                .untilAsserted(() -> assertThat(http.send(
                                        HttpRequest.newBuilder(URI.create("http://" + GATEWAY + ":" + HOST_PORT + "/"))
                                                .timeout(Duration.ofSeconds(2))
                                                .build(),
                                        HttpResponse.BodyHandlers.ofString())
                                .body())
                        .isEqualTo("hello-from-web\n"));

        // Another task reaches it by its address, and a server on the host by the host's.
        List<String> callers = new CopyOnWriteArrayList<>();
        HttpServer host = HttpServer.create(new InetSocketAddress(GATEWAY, 0), 0);
        host.createContext("/", exchange -> {
            callers.add(exchange.getRemoteAddress().getAddress().getHostAddress());
            byte[] body = "hello-from-host\n".getBytes(StandardCharsets.UTF_8);
            exchange.sendResponseHeaders(200, body.length);
            exchange.getResponseBody().write(body);
            exchange.close();
        });
        host.start();
        Task client;
        try {
            Containers.create(ns, "client", image, NODE, """
                    process:
                      args: [sh, -c, 'test "$(wget -q -O - http://%s:8080/)" = hello-from-web
                        && test "$(wget -q -O - http://%s:%d/)" = hello-from-host']
                    """.formatted(
                            webIp, GATEWAY, host.getAddress().getPort()));
            Containers.awaitCondition(ns, "client", ContainerStatus.READY, "True");
            Tasks.create(ns, "client-1", "client", NODE, "");
            client = Tasks.awaitPhase(ns, "client-1", TaskStatus.Phase.Deleted);
            assertThat(client.getStatus().exitCode())
                    .as(client.getStatus().message())
                    .isZero();
            assertThat(client.getStatus().ips())
                    .as("addresses go with the network")
                    .isNull();
            assertThat(callers).hasSize(1).allMatch(a -> a.startsWith("10.213.32.") && !a.equals(webIp));
        } finally {
            host.stop(0);
        }

        // What the task printed: the hostname asked for, the node's resolv.conf with the dnsConfig, its hosts.
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        TaskLogReader.read(
                agent.tasks().logFiles(web.getMetadata().getUid()),
                new LogOptions(LogOptions.Stream.STDOUT, null, null, false, false),
                out,
                () -> false);
        assertThat(out.toString(StandardCharsets.UTF_8)).startsWith("""
                        web-server
                        search node.example svc.example
                        nameserver 10.213.32.10
                        nameserver 10.213.32.53
                        options ndots:2
                        # Managed by Stevedore.
                        127.0.0.1\tlocalhost
                        """).contains(webIp + "\tweb-server\n");

        RuntimeNode node = controlPlane
                .adminClient()
                .resources(RuntimeNode.class)
                .withName(NODE)
                .get();
        assertThat(node.getStatus().networks())
                .containsExactly(new RuntimeNodeStatus.NetworkInfo("itnet", List.of("bridge", "portmap")));

        Tasks.setDesired(ns, "web-1", TaskSpec.DesiredState.Stopped);
        Task stopped = Tasks.awaitPhase(ns, "web-1", TaskStatus.Phase.Deleted);
        assertThat(stopped.getStatus().exitCode()).isZero();
        TestNetwork.assertNothingLeftOf(network, web.getMetadata().getUid(), NETNS);
        TestNetwork.assertNothingLeftOf(network, client.getMetadata().getUid(), NETNS);
        TestNetwork.assertEmpty(network);
    }

    @Test
    void aNetworkTheNodeDoesNotOfferFailsTheStartNamingIt(TestNamespace ns) {
        Containers.create(ns, "elsewhere", image, NODE, """
                process: {args: ['true']}
                network: {name: other}
                """);
        Containers.awaitCondition(ns, "elsewhere", ContainerStatus.READY, "True");
        Tasks.create(ns, "elsewhere-1", "elsewhere", NODE, "");

        Task failed = Tasks.awaitPhase(ns, "elsewhere-1", TaskStatus.Phase.Deleted);

        assertThat(failed.getStatus().reason()).isEqualTo("StartFailed");
        assertThat(failed.getStatus().message())
                .isEqualTo("the node has no CNI network named other in " + network.confDir());
    }
}
