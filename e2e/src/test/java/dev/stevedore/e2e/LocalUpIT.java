package dev.stevedore.e2e;

import static org.assertj.core.api.Assertions.assertThat;

import dev.stevedore.testing.Processes;
import dev.stevedore.testing.Tools;
import java.io.IOException;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.awaitility.Awaitility;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.io.TempDir;

/**
 * The README's first command: hack/local-up.sh brings up a working control plane with the API installed, is safe
 * to run again, and hack/local-down.sh leaves no process and no mount behind, and IP forwarding as it found it.
 * Runs on its own ports and state directory, so a developer's own local-up is not disturbed.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class LocalUpIT {
    /** A cold local-up builds nothing here (the reactor did) but starts a control plane, an operator and an agent. */
    private static final Duration TIMEOUT = Duration.ofMinutes(5);

    @TempDir
    static Path state;

    private static final Path REPO = Tools.repositoryRoot();
    private static final Path IP_FORWARD = Path.of("/proc/sys/net/ipv4/ip_forward");
    private static Map<String, String> env;
    private static String ipForwardBefore;

    @BeforeAll
    static void ports() throws IOException {
        ipForwardBefore = Files.readString(IP_FORWARD);
        env = Map.ofEntries(
                Map.entry("STEVEDORE_LOCAL_DIR", state.toString()),
                Map.entry("STEVEDORE_SKIP_BUILD", "1"), // the reactor built everything before this module's tests
                Map.entry("STEVEDORE_APISERVER_PORT", freePort()),
                Map.entry("STEVEDORE_ETCD_PORT", freePort()),
                Map.entry("STEVEDORE_ETCD_PEER_PORT", freePort()),
                Map.entry("STEVEDORE_REGISTRY_PORT", freePort()),
                Map.entry("STEVEDORE_PULL_CREDENTIALS_PORT", freePort()),
                Map.entry("STEVEDORE_OPERATOR_METRICS_PORT", freePort()),
                Map.entry("STEVEDORE_AGENT_METRICS_PORT", freePort()),
                Map.entry("STEVEDORE_SUBRESOURCES_PORT", freePort()),
                Map.entry("STEVEDORE_AGENT_ENDPOINT_PORT", freePort()));
    }

    @AfterAll
    static void down() throws Exception {
        run("hack/local-down.sh");
    }

    @Test
    @Order(1)
    void localUpStartsAServingControlPlaneWithTheApiInstalled() throws Exception {
        Result up = run("hack/local-up.sh");
        assertThat(up.exitCode()).as(up.output()).isZero();
        assertThat(up.output()).contains("export KUBECONFIG=" + state.resolve("kubeconfig"));

        assertThat(kubectl("get", "--raw", "/readyz").output()).isEqualTo("ok");
        assertThat(kubectl("api-resources", "--api-group=stevedore.dev", "-o", "name")
                        .output()
                        .lines())
                .containsExactlyInAnyOrder(
                        "containers.stevedore.dev", "runtimenodes.stevedore.dev", "tasks.stevedore.dev");
        assertThat(kubectl("get", "containers", "hello-world", "-o", "jsonpath={.spec.image}")
                        .output())
                .isEqualTo("127.0.0.1:" + env.get("STEVEDORE_REGISTRY_PORT") + "/stevedore/busybox:latest");
        assertThat(state.resolve("bin/kubectl")).isExecutable();
        // The operator scheduled the example onto the local node agent's RuntimeNode, and the agent prepared it.
        assertThat(kubectl(
                                "get",
                                "ctr",
                                "hello-world",
                                "-o",
                                "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}")
                        .output())
                .isEqualTo("True");
        // The node agent ran the example's Task under conmon and runc: it exited 0 and said hello.
        assertThat(kubectl(
                                "get",
                                "tk",
                                "hello-world",
                                "-o",
                                "jsonpath={.status.phase} {.status.exitCode} {.status.reason}")
                        .output())
                .isEqualTo("Deleted 0 Completed");
        assertThat(up.output()).contains("Hello from Stevedore");
    }

    /**
     * kubectl finds the plugin local-up installs and runs it with the user's kubeconfig; the log comes through the API
     * server's aggregation layer, the operator and the agent. A Task that has ended has no processes to list.
     */
    @Test
    @Order(2)
    void kubectlStevedorePrintsATasksLogThroughTheApiServer() throws Exception {
        Result logs = plugin("logs", "hello-world");
        assertThat(logs.exitCode()).as(logs.output()).isZero();
        assertThat(logs.output()).contains("Hello from Stevedore");
        assertThat(plugin("logs", "hello-world", "--tail", "1", "--timestamps").output())
                .matches("\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{9}Z .*");
        Result ps = plugin("ps", "hello-world");
        assertThat(ps.exitCode()).isEqualTo(1);
        assertThat(ps.output()).contains("Error from server (Conflict)").contains("not running");
        Result missing = plugin("logs", "no-such-task");
        assertThat(missing.exitCode()).isEqualTo(1);
        assertThat(missing.output()).contains("Error from server (NotFound)");
    }

    /**
     * {@code kubectl stevedore exec} into a running Task: a file of its rootfs, its exit code, stdin, and under
     * {@code script} an interactive terminal sized as the user's; the process goes when the caller does.
     */
    @Test
    @Order(2)
    void kubectlStevedoreExecRunsCommandsInARunningTask() throws Exception {
        Path manifest = state.resolve("exec-box.yaml");
        Files.writeString(manifest, """
                apiVersion: stevedore.dev/v1alpha1
                kind: Container
                metadata: {name: exec-box}
                spec:
                  image: 127.0.0.1:%s/stevedore/busybox:latest
                  process: {args: [sh, -c, 'echo stevedore-rootfs-file > /tmp/f; exec sleep 3600']}
                ---
                apiVersion: stevedore.dev/v1alpha1
                kind: Task
                metadata: {name: exec-box-1}
                spec: {container: exec-box}
                """.formatted(env.get("STEVEDORE_REGISTRY_PORT")));
        kubectl("apply", "-f", manifest.toString());
        kubectl("wait", "--for=jsonpath={.status.phase}=Running", "--timeout=120s", "tk/exec-box-1");

        Result cat = plugin("exec", "exec-box-1", "--", "cat", "/tmp/f");
        assertThat(cat.exitCode()).as(cat.output()).isZero();
        assertThat(cat.output()).isEqualTo("stevedore-rootfs-file");
        assertThat(plugin("exec", "exec-box-1", "--", "sh", "-c", "exit 7").exitCode())
                .isEqualTo(7);
        Path piped = state.resolve("piped.sh");
        Files.writeString(piped, "echo piped-input | kubectl stevedore exec -i exec-box-1 -- cat\n");
        assertThat(shell(piped).output()).isEqualTo("piped-input");

        // A terminal: script gives the plugin one (33 rows, 111 columns); the command waits until its own
        // terminal has that size (the resize went through), then names it and exits 5.
        Path interactive = state.resolve("interactive.sh");
        Files.writeString(interactive, """
                stty rows 33 cols 111
                kubectl stevedore exec -it exec-box-1 -- sh -c 'until [ "$(stty size)" = "33 111" ]; do sleep 0.1; done; echo sized; tty; exit 5'
                """);
        Path underScript = Files.writeString(
                state.resolve("under-script.sh"), "exec script -qec 'sh " + interactive + "' /dev/null\n");
        Result tty = shell(underScript);
        assertThat(tty.exitCode()).as(tty.output()).isEqualTo(5);
        assertThat(tty.output()).contains("sized").contains("/dev/pts/");

        // The caller goes away: its process in the task goes too.
        List<String> command = List.of(
                state.resolve("bin/kubectl").toString(), "stevedore", "exec", "exec-box-1", "--", "sleep", "4242");
        ProcessBuilder builder = new ProcessBuilder(command).directory(REPO.toFile());
        builder.environment().put("KUBECONFIG", state.resolve("kubeconfig").toString());
        builder.environment().put("PATH", state.resolve("bin") + ":" + System.getenv("PATH"));
        Process caller = builder.start();
        Awaitility.await("the exec's process in the task")
                .atMost(Duration.ofSeconds(60))
                .until(() -> plugin("ps", "exec-box-1").output().contains("sleep 4242"));
        caller.descendants().forEach(ProcessHandle::destroyForcibly);
        caller.destroyForcibly();
        Awaitility.await("the exec's process gone with its caller")
                .atMost(Duration.ofSeconds(60))
                .until(() -> !plugin("ps", "exec-box-1").output().contains("sleep 4242"));
        kubectl("delete", "-f", manifest.toString(), "--wait");
    }

    /**
     * The walk-through's web server on local-up's CNI bridge network: the commands the README and the example give,
     * run as written, reach it on its address and through its hostPort on the host's address on the bridge.
     */
    @Test
    @Order(3)
    void theWalkThroughsWebServerIsReachableFromTheHost() throws Exception {
        Path manifest = state.resolve("web-server.yaml");
        Files.writeString(
                manifest,
                Files.readString(REPO.resolve("manifests/examples/web-server.yaml"))
                        .replace("127.0.0.1:5000/", "127.0.0.1:" + env.get("STEVEDORE_REGISTRY_PORT") + "/"));
        kubectl("apply", "-f", manifest.toString());
        kubectl("wait", "--for=jsonpath={.status.phase}=Running", "--timeout=120s", "tk/web-server");

        Path curls = Files.writeString(state.resolve("curls.sh"), """
                curl -sf http://$(kubectl get tk web-server -o jsonpath='{.status.ips[0]}'):8080/
                curl -sf http://10.213.16.1:18080/
                """);
        Awaitility.await("the web server's answers")
                .atMost(Duration.ofSeconds(60))
                .untilAsserted(() ->
                        assertThat(shell(curls).output()).isEqualTo("Hello from web-server\nHello from web-server"));
        kubectl("delete", "-f", manifest.toString(), "--wait");
    }

    /** A shell script run as a user would: KUBECONFIG set, local-up's bin directory on the PATH. */
    private static Result shell(Path script) {
        ProcessBuilder builder = new ProcessBuilder("sh", script.toString()).directory(REPO.toFile());
        builder.environment().putAll(env);
        builder.environment().put("KUBECONFIG", state.resolve("kubeconfig").toString());
        builder.environment().put("PATH", state.resolve("bin") + ":" + System.getenv("PATH"));
        Processes.Result result = Processes.run(builder, TIMEOUT);
        return new Result(result.exitCode(), result.output().trim());
    }

    /** {@code kubectl stevedore ARGS} as a user runs it: KUBECONFIG set, local-up's bin directory on the PATH. */
    private static Result plugin(String... args) {
        List<String> command =
                new java.util.ArrayList<>(List.of(state.resolve("bin/kubectl").toString(), "stevedore"));
        command.addAll(List.of(args));
        ProcessBuilder builder = new ProcessBuilder(command).directory(REPO.toFile());
        builder.environment().putAll(env);
        builder.environment().put("KUBECONFIG", state.resolve("kubeconfig").toString());
        builder.environment().put("PATH", state.resolve("bin") + ":" + System.getenv("PATH"));
        Processes.Result result = Processes.run(builder, TIMEOUT);
        return new Result(result.exitCode(), result.output().trim());
    }

    /**
     * Both processes serve Prometheus' text format: the operator its reconciles (java-operator-sdk's series) and
     * JVM, the agent what the example cost it — a pull, its bytes and unpacked layers, a task started and ended.
     */
    @Test
    @Order(2)
    void theOperatorAndTheAgentServeTheirMetrics() throws Exception {
        String operator = scrape("STEVEDORE_OPERATOR_METRICS_PORT");
        assertThat(operator)
                .containsPattern("(?m)^operator_sdk_reconciliations_started_total\\{.*} [1-9]")
                .containsPattern("(?m)^operator_sdk_controllers_execution_reconcile_seconds_count\\{.*} [1-9]")
                .containsPattern("(?m)^jvm_memory_used_bytes\\{");
        String agent = scrape("STEVEDORE_AGENT_METRICS_PORT");
        assertThat(agent)
                .containsPattern("(?m)^stevedore_image_pulls_total\\{result=\"success\"} [1-9]")
                .containsPattern("(?m)^stevedore_image_pull_bytes_total [1-9]")
                .containsPattern(
                        "(?m)^stevedore_layer_unpack_duration_seconds_count\\{snapshotter=\"overlayfs\"} [1-9]")
                .containsPattern("(?m)^stevedore_task_start_duration_seconds_count [1-9]")
                .containsPattern("(?m)^stevedore_task_exit_to_deleted_seconds_bucket\\{le=\"\\+Inf\"} [1-9]")
                .containsPattern("(?m)^stevedore_tasks_ended_total\\{reason=\"Exited\"} [1-9]")
                .containsPattern("(?m)^operator_sdk_reconciliations_started_total\\{.*} [1-9]");
    }

    private static String scrape(String portVariable) throws IOException, InterruptedException {
        HttpResponse<String> response = HttpClient.newHttpClient()
                .send(
                        HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + env.get(portVariable) + "/metrics"))
                                .build(),
                        HttpResponse.BodyHandlers.ofString());
        assertThat(response.statusCode()).as(response.body()).isEqualTo(200);
        assertThat(response.headers().firstValue("Content-Type"))
                .hasValueSatisfying(t -> assertThat(t).startsWith("text/plain; version=0.0.4"));
        return response.body();
    }

    /**
     * The node agent runs as the stevedore-agent command local-up installs in .local/bin, the one the agent's image
     * has as its entrypoint; its import subcommand puts an OCI image layout into the running agent's images.
     */
    @Test
    @Order(2)
    void theAgentIsTheStevedoreAgentCommandWhichAlsoImportsImages() throws Exception {
        Path command = state.resolve("bin/stevedore-agent");
        assertThat(command).isExecutable();
        String agentCommandLine = Files.readString(Path.of(
                        "/proc",
                        Files.readString(state.resolve("run/agent.pid")).trim(),
                        "cmdline"))
                .replace('\0', ' ');
        assertThat(agentCommandLine)
                .contains("@" + state.resolve("bin/../lib/stevedore-agent/jvm.options"))
                .contains("dev.stevedore.agent.NodeAgent --node-name");

        Path busybox = state.resolve("images/busybox");
        Matcher manifest =
                Pattern.compile("sha256:[0-9a-f]{64}").matcher(Files.readString(busybox.resolve("index.json")));
        assertThat(manifest.find()).isTrue();
        Result imported = exec(List.of(
                command.toString(), "import", "--root", state.resolve("agent").toString(), busybox.toString()));
        assertThat(imported.exitCode()).as(imported.output()).isZero();
        assertThat(imported.output().lines()).contains("latest " + manifest.group());
        assertThat(exec(List.of(
                                command.toString(),
                                "import",
                                "--root",
                                state.resolve("agent").toString(),
                                state.resolve("no-such-image.tar").toString()))
                        .exitCode())
                .isNotZero();
    }

    /**
     * The local agent gets pull Secrets as in a cluster, from the operator's pull-credentials endpoint: without
     * them it would not prepare the Container (the local registry takes any credentials).
     */
    @Test
    @Order(3)
    void aContainerWithAPullSecretGetsItFromTheOperatorsEndpoint() throws Exception {
        String registry = "127.0.0.1:" + env.get("STEVEDORE_REGISTRY_PORT");
        String dockerConfig = Base64.getEncoder()
                .encodeToString(("{\"auths\":{\"" + registry + "\":{\"username\":\"any\",\"password\":\"any\"}}}")
                        .getBytes(StandardCharsets.UTF_8));
        Path manifest = state.resolve("with-pull-secret.yaml");
        Files.writeString(manifest, """
                apiVersion: v1
                kind: Secret
                metadata: {name: regcred, namespace: default}
                type: kubernetes.io/dockerconfigjson
                data: {.dockerconfigjson: %s}
                ---
                apiVersion: stevedore.dev/v1alpha1
                kind: Container
                metadata: {name: with-pull-secret, namespace: default}
                spec:
                  image: %s/stevedore/busybox:latest
                  imagePullSecrets: [{name: regcred}]
                """.formatted(dockerConfig, registry));
        kubectl("apply", "-f", manifest.toString());
        kubectl("wait", "--for=condition=Ready", "--timeout=120s", "ctr/with-pull-secret");
        assertThat(Files.readString(state.resolve("logs/operator.log")))
                .contains("the pull Secrets [regcred] of Container default"); // JSON escapes the slash
    }

    @Test
    @Order(4)
    void runningItAgainWhileUpReusesWhatRuns() throws Exception {
        String apiServerPid = Files.readString(state.resolve("control-plane/run/kube-apiserver.pid"));
        Result again = run("hack/local-up.sh");
        assertThat(again.exitCode()).as(again.output()).isZero();
        assertThat(again.output()).contains("control plane already running");
        assertThat(Files.readString(state.resolve("control-plane/run/kube-apiserver.pid")))
                .isEqualTo(apiServerPid);
        assertThat(kubectl("get", "--raw", "/readyz").output()).isEqualTo("ok");
    }

    @Test
    @Order(5)
    void localDownLeavesNoProcessAndNoMount() throws Exception {
        assertThat(processesUsing(state)).isNotEmpty();
        Result down = run("hack/local-down.sh");
        assertThat(down.exitCode()).as(down.output()).isZero();
        assertThat(processesUsing(state)).isEmpty();
        assertThat(Files.readAllLines(Path.of("/proc/mounts"))).noneMatch(line -> line.contains(state.toString()));
        assertThat(Files.readString(IP_FORWARD))
                .as("IP forwarding as before local-up (the tasks' bridge turned it on)")
                .isEqualTo(ipForwardBefore);
    }

    private record Result(int exitCode, String output) {}

    private static Result kubectl(String... args) throws Exception {
        List<String> command = new java.util.ArrayList<>(List.of(
                state.resolve("bin/kubectl").toString(),
                "--kubeconfig",
                state.resolve("kubeconfig").toString()));
        command.addAll(List.of(args));
        Result result = exec(command);
        assertThat(result.exitCode()).as(result.output()).isZero();
        return result;
    }

    private static Result run(String script) throws Exception {
        return exec(List.of(REPO.resolve(script).toString()));
    }

    /** Output to a file, so the timeout applies even if a process local-up starts keeps the pipe open. */
    private static Result exec(List<String> command) {
        ProcessBuilder builder = new ProcessBuilder(command).directory(REPO.toFile());
        builder.environment().putAll(env);
        Processes.Result result = Processes.run(builder, TIMEOUT);
        return new Result(result.exitCode(), result.output().trim());
    }

    /** PIDs whose command line mentions the state directory: what local-up started. */
    private static List<Long> processesUsing(Path dir) throws IOException {
        try (Stream<Path> procs = Files.list(Path.of("/proc"))) {
            return procs.filter(p -> p.getFileName().toString().matches("\\d+"))
                    .filter(p -> {
                        try {
                            return new String(Files.readAllBytes(p.resolve("cmdline")), StandardCharsets.UTF_8)
                                    .contains(dir.toString());
                        } catch (IOException gone) {
                            return false;
                        }
                    })
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
