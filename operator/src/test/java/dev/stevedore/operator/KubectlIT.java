package dev.stevedore.operator;

import static org.assertj.core.api.Assertions.assertThat;

import dev.stevedore.testing.ControlPlane;
import dev.stevedore.testing.Crds;
import dev.stevedore.testing.TestNamespace;
import dev.stevedore.testing.Tools;
import dev.stevedore.testing.WithControlPlane;
import io.javaoperatorsdk.operator.Operator;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** What users see through kubectl: printer columns, explain, and waiting on conditions. */
@WithControlPlane
class KubectlIT {
    private static Operator operator;
    private static ControlPlane controlPlane;

    @BeforeAll
    static void start(ControlPlane cp) {
        controlPlane = cp;
        Crds.installStevedore(cp.adminClient());
        operator =
                StevedoreOperator.start(cp.adminClient(), new StevedoreOperator.Settings(null, Duration.ofSeconds(40)));
    }

    @AfterAll
    static void stop() {
        operator.stop();
    }

    @Test
    void getShowsTheColumnsOfEachKind(TestNamespace ns) throws Exception {
        String node = ns.name() + "-node";
        new NodeSide(ns.client()).register(node, Map.of("stevedore.dev/test", ns.name()));
        try {
            apply(ns, """
                    apiVersion: stevedore.dev/v1alpha1
                    kind: Container
                    metadata: {name: web}
                    spec: {image: 127.0.0.1:5000/stevedore/busybox:latest, nodeName: %s}
                    ---
                    apiVersion: stevedore.dev/v1alpha1
                    kind: Task
                    metadata: {name: web-1}
                    spec: {container: web}
                    """.formatted(node));
            kubectl(ns, "wait", "--for=jsonpath={.spec.nodeName}=" + node, "tk/web-1", "--timeout=30s");

            assertThat(header(kubectl(ns, "get", "ctr"))).containsExactly("NAME", "NODE", "IMAGE", "READY", "AGE");
            assertThat(header(kubectl(ns, "get", "tk")))
                    .containsExactly("NAME", "CONTAINER", "NODE", "PHASE", "EXIT", "AGE");
            assertThat(header(kubectl(ns, "get", "rn", node)))
                    .containsExactly("NAME", "READY", "RUNTIMES", "TASKS", "AGE");
            assertThat(kubectl(ns, "get", "tk", "web-1", "--no-headers")).contains("web", node, "Pending");
            assertThat(kubectl(ns, "get", "rn", node, "--no-headers")).contains("True", "runc");
            assertThat(kubectl(ns, "get", "stevedore", "-o", "name"))
                    .contains("container.stevedore.dev/web", "task.stevedore.dev/web-1");
        } finally {
            ns.client()
                    .resources(dev.stevedore.api.v1alpha1.RuntimeNode.class)
                    .withName(node)
                    .delete();
        }
    }

    @Test
    void explainTeachesTheApi(TestNamespace ns) throws Exception {
        String explained = kubectl(ns, "explain", "container.spec.process");
        assertThat(explained)
                .contains("Overrides on the image config's Entrypoint, Cmd, Env, WorkingDir and User")
                .contains("args", "env", "workingDir", "user");
        assertThat(kubectl(ns, "explain", "task.spec.desiredState")).contains("Running (start or resume)");
    }

    @Test
    void waitForReadyReturnsOnceTheNodeReportsTheContainerReady(TestNamespace ns) throws Exception {
        apply(ns, """
                apiVersion: stevedore.dev/v1alpha1
                kind: Container
                metadata: {name: app}
                spec: {image: 127.0.0.1:5000/stevedore/busybox:latest, nodeName: somewhere}
                """);
        Process waiting = start(ns, "wait", "--for=condition=Ready", "ctr/app", "--timeout=60s");
        assertThat(waiting.waitFor(2, TimeUnit.SECONDS))
                .as("kubectl wait returned before the node reported")
                .isFalse();

        new NodeSide(ns.client()).containerReady(ns.name(), "app");

        assertThat(waiting.waitFor(30, TimeUnit.SECONDS)).isTrue();
        assertThat(waiting.exitValue()).isZero();
        assertThat(new String(waiting.getInputStream().readAllBytes(), StandardCharsets.UTF_8))
                .contains("condition met");
    }

    private static List<String> header(String table) {
        return List.of(table.lines().findFirst().orElseThrow().trim().split("\\s+"));
    }

    private static void apply(TestNamespace ns, String yaml) throws Exception {
        Process process = start(ns, "apply", "-f", "-");
        process.getOutputStream().write(yaml.getBytes(StandardCharsets.UTF_8));
        process.getOutputStream().close();
        String out = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(process.waitFor()).as(out).isZero();
    }

    private static String kubectl(TestNamespace ns, String... args) throws Exception {
        Process process = start(ns, args);
        process.getOutputStream().close();
        String out = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(process.waitFor()).as(out).isZero();
        return out;
    }

    private static Process start(TestNamespace ns, String... args) throws Exception {
        List<String> command = new ArrayList<>(List.of(
                Tools.binDir().resolve("kubectl").toString(),
                "--kubeconfig",
                controlPlane.kubeconfig().toString(),
                "-n",
                ns.name()));
        command.addAll(List.of(args));
        return new ProcessBuilder(command).redirectErrorStream(true).start();
    }
}
