package dev.stevedore.agent.tasks;

import static org.assertj.core.api.Assertions.assertThat;

import dev.stevedore.agent.NodeAgent;
import dev.stevedore.agent.taskapi.TaskApiServer;
import dev.stevedore.agent.testing.AggregatedApi;
import dev.stevedore.agent.testing.Containers;
import dev.stevedore.agent.testing.Exec;
import dev.stevedore.agent.testing.Https;
import dev.stevedore.agent.testing.LocalRegistry;
import dev.stevedore.agent.testing.Tasks;
import dev.stevedore.agent.testing.TestImages;
import dev.stevedore.api.AgentApi;
import dev.stevedore.api.v1alpha1.ContainerStatus;
import dev.stevedore.api.v1alpha1.RuntimeNode;
import dev.stevedore.api.v1alpha1.RuntimeNodeStatus;
import dev.stevedore.api.v1alpha1.Task;
import dev.stevedore.api.v1alpha1.TaskStatus;
import dev.stevedore.operator.subresources.SubresourcesServer;
import dev.stevedore.testing.ControlPlane;
import dev.stevedore.testing.Crds;
import dev.stevedore.testing.TestNamespace;
import dev.stevedore.testing.WithControlPlane;
import io.fabric8.kubernetes.api.model.ServiceAccountBuilder;
import io.fabric8.kubernetes.api.model.rbac.RoleBindingBuilder;
import io.fabric8.kubernetes.api.model.rbac.RoleBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.utils.Serialization;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Tasks' logs, processes and usage through the API server, as a user reaches them: the real API server's
 * aggregation layer, the operator's aggregated API (in this JVM, registered by APIService and Endpoints) and the
 * node agent's endpoint (in this JVM, with real runc and conmon). Authentication and authorization at each hop.
 */
@WithControlPlane
class SubresourcesIT {
    private static final String NODE = "subresources-it-node";
    private static final String API = "/apis/subresources.stevedore.dev/v1alpha1";

    @TempDir
    static Path tmp;

    private static ControlPlane controlPlane;
    private static LocalRegistry registry;
    private static String image;
    private static Path root;
    private static NodeAgent.Running agent;
    private static SubresourcesServer subresources;
    private static String operatorToken;
    private static Https apiServer;

    @BeforeAll
    static void start(ControlPlane cp) throws Exception {
        controlPlane = cp;
        KubernetesClient admin = cp.adminClient();
        Crds.installStevedore(admin);
        registry = LocalRegistry.start();
        TestImages images = TestImages.build(tmp.resolve("images"));
        image = registry.host() + "/test/busybox:1";
        images.push(TestImages.BASE, image);
        root = tmp.resolve("root");
        AggregatedApi.prepare(admin);
        operatorToken =
                cp.token(AggregatedApi.NAMESPACE, AggregatedApi.OPERATOR_SERVICE_ACCOUNT, null, AgentApi.AUDIENCE);
        Path tokenFile = Files.writeString(tmp.resolve("operator-token"), operatorToken);
        agent = NodeAgent.start(
                admin,
                NodeAgent.Settings.of(NODE, root)
                        .withHeartbeatInterval(Duration.ofSeconds(5))
                        .withEndpoint(new TaskApiServer.Settings(
                                new InetSocketAddress("127.0.0.1", 0),
                                AggregatedApi.NAMESPACE + "/" + AggregatedApi.OPERATOR_SERVICE_ACCOUNT)));
        int port;
        try (ServerSocket free = new ServerSocket(0)) {
            port = free.getLocalPort();
        }
        AggregatedApi.register(admin, port);
        subresources = SubresourcesServer.start(
                admin,
                new SubresourcesServer.Settings(
                        port,
                        AggregatedApi.NAMESPACE,
                        "stevedore-operator-serving",
                        "stevedore-pull-credentials-ca",
                        List.of(AggregatedApi.SERVING_NAME, "127.0.0.1"),
                        tokenFile));
        AggregatedApi.awaitAvailable(admin);
        apiServer = Https.trustingBase64(cp.adminConfig().getCaCertData());
    }

    @AfterAll
    static void stop() throws Exception {
        try {
            // First: an APIService without its server stalls every namespace's deletion (discovery fails).
            AggregatedApi.unregister(controlPlane.adminClient());
            if (subresources != null) {
                subresources.close();
            }
            if (agent != null) {
                agent.close();
            }
        } finally {
            LeftoverTasks.removeUnder(root, Runtimes.prepare(tmp.resolve("test-runtimes")));
            registry.close();
            controlPlane
                    .adminClient()
                    .resources(RuntimeNode.class)
                    .withName(NODE)
                    .delete();
        }
    }

    @Test
    void aUserWithRbacOnTasksLogReadsBothStreamsOthersAreRefused(TestNamespace ns) throws Exception {
        Task task = runToTheEnd(ns, "talker", "echo out; echo err >&2; echo more; exit 3");
        String log = url(ns, "talker-1", "log");
        String reader = userWith(ns, "reader", "tasks/log");
        String nobody = userWith(ns, "nobody", null);

        // conmon reads the two pipes apart: the streams' lines keep their own order, not each other's.
        Https.Response both = apiServer.get(log, reader);
        assertThat(both.status()).isEqualTo(200);
        assertThat(both.body().lines()).containsExactlyInAnyOrder("out", "err", "more");
        assertThat(apiServer.get(log + "?stream=stdout", reader).body()).isEqualTo("out\nmore\n");
        assertThat(apiServer.get(log + "?stream=stderr", reader).body()).isEqualTo("err\n");
        assertThat(apiServer.get(log + "?stream=stdout&tailLines=1", reader).body())
                .isEqualTo("more\n");
        assertThat(apiServer
                        .get(log + "?stream=stdout&timestamps=true&tailLines=1", reader)
                        .body())
                .matches("\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{9}Z more\\n");
        assertThat(apiServer.get(log + "?sinceSeconds=3600", reader).body().lines())
                .hasSize(3);
        assertThat(apiServer
                        .get(log + "?sinceTime=2999-01-01T00:00:00Z", reader)
                        .body())
                .isEmpty();

        Https.Response forbidden = apiServer.get(log, nobody);
        assertThat(forbidden.status()).isEqualTo(403);
        assertThat(forbidden.body())
                .contains("cannot get resource \\\"tasks/log\\\" in API group \\\"subresources.stevedore.dev\\\"")
                .doesNotContain("out", task.getMetadata().getUid());
        Https.Response wrongSubresource = apiServer.get(url(ns, "talker-1", "processes"), reader);
        assertThat(wrongSubresource.status())
                .as("tasks/log does not grant tasks/processes")
                .isEqualTo(403);
        assertThat(apiServer.get(log, null).status()).as("no credentials").isEqualTo(401);
        assertThat(apiServer.get(log, "not-a-token").status())
                .as("a token nobody issued")
                .isEqualTo(401);
        assertThat(apiServer.get(url(ns, "no-such-task", "log"), reader).status())
                .isEqualTo(404);
    }

    @Test
    void followStreamsARunningTaskAndEndsWhenItExits(TestNamespace ns) throws Exception {
        create(ns, "ticker", "i=0; while [ $i -lt 15 ]; do echo tick $i; i=$((i+1)); sleep 0.2; done");
        Tasks.awaitPhase(ns, "ticker-1", TaskStatus.Phase.Running);
        String reader = userWith(ns, "reader", "tasks/log");

        HttpResponse<InputStream> followed = apiServer.stream(url(ns, "ticker-1", "log") + "?follow=true", reader);
        assertThat(followed.statusCode()).isEqualTo(200);
        String all;
        try (InputStream body = followed.body()) {
            // Returns only once the agent ended the response: after the task's exit.
            all = new String(body.readAllBytes(), StandardCharsets.UTF_8);
        }
        assertThat(Tasks.awaitPhase(ns, "ticker-1", TaskStatus.Phase.Deleted)
                        .getStatus()
                        .exitCode())
                .isZero();
        assertThat(all.lines().toList())
                .containsExactly(
                        "tick 0", "tick 1", "tick 2", "tick 3", "tick 4", "tick 5", "tick 6", "tick 7", "tick 8",
                        "tick 9", "tick 10", "tick 11", "tick 12", "tick 13", "tick 14");
    }

    @Test
    void aRunningTasksProcessesAndUsage(TestNamespace ns) throws Exception {
        create(ns, "sleeper", "sleep 600");
        long pid = Tasks.awaitPhase(ns, "sleeper-1", TaskStatus.Phase.Running)
                .getStatus()
                .pid();
        String viewer = userWith(ns, "viewer", "tasks/processes", "tasks/usage");

        Https.Response processes = apiServer.get(url(ns, "sleeper-1", "processes"), viewer);
        assertThat(processes.status()).as(processes.body()).isEqualTo(200);
        assertThat(Serialization.unmarshal(processes.body(), AgentApi.Processes.class)
                        .processes())
                .singleElement()
                .satisfies(p -> {
                    assertThat(p.pid()).isEqualTo(pid);
                    assertThat(p.command()).isEqualTo("sleep 600");
                    assertThat(p.rssBytes()).isPositive();
                });
        Https.Response usage = apiServer.get(url(ns, "sleeper-1", "usage"), viewer);
        assertThat(usage.status()).as(usage.body()).isEqualTo(200);
        AgentApi.Usage now = Serialization.unmarshal(usage.body(), AgentApi.Usage.class);
        assertThat(now.cpuCores()).isBetween(0.0, 0.5);
        assertThat(now.memoryWorkingSetBytes()).isPositive();
        assertThat(now.pids()).isEqualTo(1);
        Tasks.setDesired(ns, "sleeper-1", dev.stevedore.api.v1alpha1.TaskSpec.DesiredState.Stopped);
        Tasks.awaitPhase(ns, "sleeper-1", TaskStatus.Phase.Deleted);
    }

    /**
     * The agent's endpoint takes the operator's token only: not a user's token for the API server, not a token of
     * the agent endpoint's audience that another ServiceAccount got. And the operator's endpoint believes users
     * only from the API server's front proxy.
     */
    @Test
    void theEndpointsTakeOnlyTheirOneCaller(TestNamespace ns) throws Exception {
        Task task = runToTheEnd(ns, "quiet", "echo secret");
        RuntimeNodeStatus.AgentEndpoint endpoint = controlPlane
                .adminClient()
                .resources(RuntimeNode.class)
                .withName(NODE)
                .get()
                .getStatus()
                .agentEndpoint();
        Https agentHttps = Https.trusting(endpoint.certificate());
        String agentLog = "https://" + endpoint.address() + ":" + endpoint.port()
                + AgentApi.logPath(task.getMetadata().getUid());
        String reader = userWith(ns, "reader", "tasks/log");
        ns.client()
                .resource(new ServiceAccountBuilder()
                        .withNewMetadata()
                        .withName("impostor")
                        .endMetadata()
                        .build())
                .create();
        String impostor = controlPlane.token(ns.name(), "impostor", null, AgentApi.AUDIENCE);

        assertThat(agentHttps.get(agentLog, null).status()).isEqualTo(401);
        assertThat(agentHttps.get(agentLog, reader).status()).as("an API token").isEqualTo(401);
        assertThat(agentHttps.get(agentLog, impostor).status())
                .as("not the operator")
                .isEqualTo(403);
        assertThat(agentHttps.get(agentLog, operatorToken)).isEqualTo(new Https.Response(200, "secret\n"));

        Https operatorHttps = Https.trusting(controlPlane
                .adminClient()
                .configMaps()
                .inNamespace(AggregatedApi.NAMESPACE)
                .withName("stevedore-pull-credentials-ca")
                .get()
                .getData()
                .get("ca.crt"));
        String direct =
                "https://127.0.0.1:" + subresources.port() + API + "/namespaces/" + ns.name() + "/tasks/quiet-1/log";
        Https.Response unproxied = operatorHttps.get(direct, reader);
        assertThat(unproxied.status()).as("no front-proxy certificate").isEqualTo(401);
        assertThat(unproxied.body()).doesNotContain("secret");
    }

    private static Task runToTheEnd(TestNamespace ns, String name, String script) {
        Task task = create(ns, name, script);
        Tasks.awaitPhase(ns, name + "-1", TaskStatus.Phase.Deleted);
        return task;
    }

    private static Task create(TestNamespace ns, String name, String script) {
        Containers.create(ns, name, image, NODE, "process: {args: [sh, -c, '" + script + "']}");
        Containers.awaitCondition(ns, name, ContainerStatus.READY, "True");
        return Tasks.create(ns, name + "-1", name, NODE, "");
    }

    private static String url(TestNamespace ns, String task, String subresource) {
        return controlPlane.url() + API + "/namespaces/" + ns.name() + "/tasks/" + task + "/" + subresource;
    }

    /**
     * An exec through the API server is a WebSocket the operator accepts only for a user who may also create
     * tasks/exec (get alone lets the API server pass it on); it runs in the task's rootfs and ends with the exit code.
     */
    @Test
    void execNeedsCreateOnTasksExecAndEndsWithTheExitCode(TestNamespace ns) throws Exception {
        create(ns, "shell", "echo in-the-rootfs > /tmp/marker; exec sleep 600");
        Tasks.awaitPhase(ns, "shell-1", TaskStatus.Phase.Running);
        String onlyGet = userWith(ns, "only-get", "tasks/exec");
        String execer = userWithVerbs(ns, "execer", List.of("get", "create"), List.of("tasks/exec"));
        String exec = url(ns, "shell-1", "exec").replaceFirst("^https", "wss")
                + "?command=sh&command=-c&command=cat%20/tmp/marker%3B%20exit%203&stdout=true&stderr=true";

        assertThat(Exec.run(controlPlane, exec, onlyGet).handshakeStatus()).isEqualTo(403);
        Exec.Result allowed = Exec.run(controlPlane, exec, execer);
        assertThat(allowed.stdout()).isEqualTo("in-the-rootfs\n");
        assertThat(allowed.status()).contains("\"reason\":\"NonZeroExitCode\"").contains("\"message\":\"3\"");
        Tasks.setDesired(ns, "shell-1", dev.stevedore.api.v1alpha1.TaskSpec.DesiredState.Stopped);
        Tasks.awaitPhase(ns, "shell-1", TaskStatus.Phase.Deleted);
    }

    /** A ServiceAccount's API token, with get on these subresources of tasks in its namespace (none if null). */
    private static String userWith(TestNamespace ns, String name, String... subresources) {
        return userWithVerbs(ns, name, List.of("get"), subresources == null ? List.of() : List.of(subresources));
    }

    /** A ServiceAccount's API token, with {@code verbs} on these subresources of tasks in its namespace; made once. */
    private static String userWithVerbs(TestNamespace ns, String name, List<String> verbs, List<String> subresources) {
        KubernetesClient client = ns.client();
        if (client.serviceAccounts().withName(name).get() == null) {
            client.resource(new ServiceAccountBuilder()
                            .withNewMetadata()
                            .withName(name)
                            .endMetadata()
                            .build())
                    .create();
            if (!subresources.isEmpty()) {
                client.resource(new RoleBuilder()
                                .withNewMetadata()
                                .withName(name)
                                .endMetadata()
                                .addNewRule()
                                .withApiGroups("subresources.stevedore.dev")
                                .withResources(subresources)
                                .withVerbs(verbs)
                                .endRule()
                                .build())
                        .create();
                client.resource(new RoleBindingBuilder()
                                .withNewMetadata()
                                .withName(name)
                                .endMetadata()
                                .withNewRoleRef("rbac.authorization.k8s.io", "Role", name)
                                .addNewSubject()
                                .withKind("ServiceAccount")
                                .withName(name)
                                .withNamespace(ns.name())
                                .endSubject()
                                .build())
                        .create();
            }
        }
        return controlPlane.token(ns.name(), name, null, ControlPlane.ISSUER);
    }
}
