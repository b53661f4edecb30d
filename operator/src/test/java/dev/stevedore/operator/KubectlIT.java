package dev.stevedore.operator;

import static org.assertj.core.api.Assertions.assertThat;

import dev.stevedore.testing.ControlPlane;
import dev.stevedore.testing.Crds;
import dev.stevedore.testing.Processes;
import dev.stevedore.testing.TestNamespace;
import dev.stevedore.testing.Tools;
import dev.stevedore.testing.WithControlPlane;
import io.javaoperatorsdk.operator.Operator;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** What users see through kubectl: printer columns, explain, and waiting on conditions. */
@WithControlPlane
class KubectlIT {
    /** Generous: a kubectl call (or a wait with its own shorter timeout) on two busy cores. */
    private static final Duration PROCESS_TIMEOUT = Duration.ofSeconds(150);
    /** No test here is about a lost node: the only heartbeat is at registration, and the node must stay Ready. */
    private static final Duration NO_NODE_LOSS = Duration.ofHours(1);

    private static Operator operator;
    private static ControlPlane controlPlane;

    @BeforeAll
    static void start(ControlPlane cp) {
        controlPlane = cp;
        Crds.installStevedore(cp.adminClient());
        operator = StevedoreOperator.start(cp.adminClient(), new StevedoreOperator.Settings(null, NO_NODE_LOSS));
    }

    @AfterAll
    static void stop() {
        operator.stop();
    }

    @Test
    void getShowsTheColumnsOfEachKind(TestNamespace ns) {
        String node = ns.name() + "-node";
        new NodeSide(ns.client()).register(node, Map.of(TestNamespace.TEST_LABEL, ns.name()));
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
        kubectl(ns, "wait", "--for=jsonpath={.spec.nodeName}=" + node, "tk/web-1", "--timeout=120s");

        assertThat(header(kubectl(ns, "get", "ctr"))).containsExactly("NAME", "NODE", "IMAGE", "READY", "AGE");
        assertThat(header(kubectl(ns, "get", "tk")))
                .containsExactly("NAME", "CONTAINER", "NODE", "PHASE", "EXIT", "AGE");
        assertThat(header(kubectl(ns, "get", "rn", node))).containsExactly("NAME", "READY", "RUNTIMES", "TASKS", "AGE");
        assertThat(kubectl(ns, "get", "tk", "web-1", "--no-headers")).contains("web", node, "Pending");
        assertThat(kubectl(ns, "get", "rn", node, "--no-headers")).contains("True", "runc");
        assertThat(kubectl(ns, "get", "stevedore", "-o", "name"))
                .contains("container.stevedore.dev/web", "task.stevedore.dev/web-1");
    }

    @Test
    void explainTeachesTheApi(TestNamespace ns) {
        String explained = kubectl(ns, "explain", "container.spec.process");
        assertThat(explained)
                .contains("Overrides on the image config's Entrypoint, Cmd, Env, WorkingDir and User")
                .contains("args", "env", "workingDir", "user");
        assertThat(kubectl(ns, "explain", "task.spec.desiredState")).contains("Running (start or resume)");
    }

    @Test
    void waitForReadyReturnsOnceTheNodeReportsTheContainerReady(TestNamespace ns) {
        apply(ns, """
                apiVersion: stevedore.dev/v1alpha1
                kind: Container
                metadata: {name: app}
                spec: {image: 127.0.0.1:5000/stevedore/busybox:latest, nodeName: somewhere}
                """);
        // Nothing reports Ready yet (no agent serves "somewhere"): a wait ends with its own timeout, not met.
        Processes.Result early = run(ns, "wait", "--for=condition=Ready", "ctr/app", "--timeout=3s");
        assertThat(early.exitCode()).as(early.output()).isNotZero();
        assertThat(early.output()).contains("timed out waiting for the condition");

        Processes.Running waiting = start(ns, "wait", "--for=condition=Ready", "ctr/app", "--timeout=120s");
        new NodeSide(ns.client()).containerReady(ns.name(), "app");

        Processes.Result met = waiting.await(PROCESS_TIMEOUT);
        assertThat(met.exitCode()).as(met.output()).isZero();
        assertThat(met.output()).contains("condition met");
    }

    private static List<String> header(String table) {
        return List.of(table.lines().findFirst().orElseThrow().trim().split("\\s+"));
    }

    private static void apply(TestNamespace ns, String yaml) {
        Processes.Result result = Processes.run(command(ns, "apply", "-f", "-"), yaml, PROCESS_TIMEOUT);
        assertThat(result.exitCode()).as(result.output()).isZero();
    }

    private static String kubectl(TestNamespace ns, String... args) {
        Processes.Result result = run(ns, args);
        assertThat(result.exitCode()).as(result.output()).isZero();
        return result.output();
    }

    private static Processes.Result run(TestNamespace ns, String... args) {
        return Processes.run(command(ns, args), PROCESS_TIMEOUT);
    }

    private static Processes.Running start(TestNamespace ns, String... args) {
        return Processes.start(command(ns, args), null);
    }

    private static ProcessBuilder command(TestNamespace ns, String... args) {
        List<String> command = new ArrayList<>(List.of(
                Tools.binDir().resolve("kubectl").toString(),
                "--kubeconfig",
                controlPlane.kubeconfig().toString(),
                "-n",
                ns.name()));
        command.addAll(List.of(args));
        return new ProcessBuilder(command);
    }
}
