package dev.stevedore.agent;

import static org.assertj.core.api.Assertions.assertThat;

import dev.stevedore.agent.testing.Containers;
import dev.stevedore.agent.testing.LocalRegistry;
import dev.stevedore.agent.testing.TestImages;
import dev.stevedore.api.v1alpha1.Conditions;
import dev.stevedore.api.v1alpha1.Container;
import dev.stevedore.api.v1alpha1.ContainerStatus;
import dev.stevedore.api.v1alpha1.RuntimeNode;
import dev.stevedore.api.v1alpha1.Task;
import dev.stevedore.api.v1alpha1.TaskStatus;
import dev.stevedore.operator.StevedoreOperator;
import dev.stevedore.testing.ControlPlane;
import dev.stevedore.testing.Crds;
import dev.stevedore.testing.TestNamespace;
import dev.stevedore.testing.WithControlPlane;
import io.fabric8.kubernetes.client.dsl.base.PatchContext;
import io.fabric8.kubernetes.client.dsl.base.PatchType;
import io.fabric8.kubernetes.client.utils.Serialization;
import io.javaoperatorsdk.operator.Operator;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A Task whose Container the node cannot make ready says why, with the operator and the agent both running: it
 * waits, Pending with reason ContainerNotReady, while the node retries; it ends, Deleted with reason StartFailed,
 * once the node has given up on the Container as it is (Stalled); and a fixed Container runs the next Task.
 */
@WithControlPlane
class ContainerNotReadyIT {
    private static final String NODE = "not-ready-it-node";
    private static final Map<String, String> LABELS = Map.of("stevedore.dev/test", "container-not-ready");

    @TempDir
    static Path tmp;

    private static ControlPlane controlPlane;
    private static LocalRegistry registry;
    private static NodeAgent.Running agent;
    private static Operator operator;
    private static String image;

    @BeforeAll
    static void start(ControlPlane cp) throws Exception {
        controlPlane = cp;
        Crds.installStevedore(cp.adminClient());
        registry = LocalRegistry.start();
        image = registry.host() + "/test/busybox:1";
        TestImages.build(tmp.resolve("images")).push(TestImages.BASE, image);
        agent = NodeAgent.start(
                cp.adminClient(),
                NodeAgent.Settings.of(NODE, tmp.resolve("root"))
                        .withLabels(LABELS)
                        .withHeartbeatInterval(Duration.ofSeconds(5)));
        operator =
                StevedoreOperator.start(cp.adminClient(), new StevedoreOperator.Settings(null, Duration.ofSeconds(40)));
    }

    @AfterAll
    static void stop() {
        operator.stop();
        agent.close();
        registry.close();
        controlPlane.adminClient().resources(RuntimeNode.class).withName(NODE).delete();
    }

    @Test
    void aTaskWaitsSayingWhyWhileTheNodeRetriesItsContainer(TestNamespace ns) {
        // Nothing listens on port 1: the pull fails as a registry that does not answer, which the node retries.
        container(ns, "unreachable", "127.0.0.1:1/test/busybox:1", "");
        task(ns, "unreachable-1", "unreachable");

        Task waiting = awaitTask(ns, "unreachable-1", t -> "ContainerNotReady".equals(reason(t)));
        assertThat(waiting.getStatus().phase()).isEqualTo(TaskStatus.Phase.Pending);
        assertThat(waiting.getStatus().message())
                .startsWith("Container unreachable is not ready on node " + NODE + ": ")
                .contains("127.0.0.1:1");
        Container container =
                ns.client().resources(Container.class).withName("unreachable").get();
        assertThat(Conditions.find(container.getStatus().conditions(), Conditions.STALLED))
                .as("a failure the node retries does not stall the Container")
                .isEmpty();
    }

    @Test
    void aTaskOfAContainerTheNodeGaveUpOnEndsStartFailedAndAFixedContainerRunsTheNext(TestNamespace ns) {
        // A bind mount of a host path the node does not allow: the spec is rejected until the Container changes.
        container(ns, "rejected", image, """
                process: {args: [sh, -c, 'echo fixed']}
                mounts: [{source: /etc, destination: /host-etc}]
                """);
        task(ns, "rejected-1", "rejected");

        Task failed = awaitTask(ns, "rejected-1", t -> t.getStatus().phase() == TaskStatus.Phase.Deleted);
        assertThat(failed.getStatus().reason()).isEqualTo("StartFailed");
        assertThat(failed.getStatus().message())
                .startsWith("Container rejected cannot run on node " + NODE + ": SpecRejected: ")
                .contains("/etc");
        Container stalled = Containers.awaitCondition(ns, "rejected", Conditions.STALLED, "True");
        assertThat(Conditions.find(stalled.getStatus().conditions(), Conditions.STALLED)
                        .orElseThrow()
                        .getReason())
                .isEqualTo("SpecRejected");

        ns.client()
                .resources(Container.class)
                .withName("rejected")
                .patch(PatchContext.of(PatchType.JSON_MERGE), "{\"spec\": {\"mounts\": null}}");
        Container fixed = Containers.await(
                ns,
                "rejected",
                c -> Conditions.isTrue(c.getStatus().conditions(), ContainerStatus.READY),
                "Ready=True",
                () -> "");
        assertThat(Conditions.find(fixed.getStatus().conditions(), Conditions.STALLED))
                .as("the apply of a Ready status removes the agent's Stalled condition")
                .isEmpty();
        task(ns, "rejected-2", "rejected");
        Task done = awaitTask(ns, "rejected-2", t -> t.getStatus().phase() == TaskStatus.Phase.Deleted);
        assertThat(done.getStatus().reason()).isEqualTo("Completed");
        assertThat(done.getStatus().exitCode()).isZero();
    }

    private static void container(TestNamespace ns, String name, String image, String moreSpec) {
        String yaml = """
                apiVersion: stevedore.dev/v1alpha1
                kind: Container
                metadata: {name: %s}
                spec:
                  image: %s
                  nodeSelector: {stevedore.dev/test: container-not-ready}
                """.formatted(name, image) + moreSpec.indent(2);
        ns.client().resource(Serialization.unmarshal(yaml, Container.class)).create();
    }

    private static void task(TestNamespace ns, String name, String container) {
        ns.client()
                .resource(Serialization.unmarshal("""
                        apiVersion: stevedore.dev/v1alpha1
                        kind: Task
                        metadata: {name: %s}
                        spec: {container: %s}
                        """.formatted(name, container), Task.class))
                .create();
    }

    private static Task awaitTask(TestNamespace ns, String name, Predicate<Task> condition) {
        return ns.client()
                .resources(Task.class)
                .withName(name)
                .waitUntilCondition(
                        t -> t != null && t.getStatus() != null && condition.test(t),
                        Containers.TIMEOUT.toSeconds(),
                        TimeUnit.SECONDS);
    }

    private static String reason(Task task) {
        return task.getStatus().reason();
    }
}
