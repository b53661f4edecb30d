package dev.stevedore.agent;

import static org.assertj.core.api.Assertions.assertThat;

import dev.stevedore.agent.testing.Containers;
import dev.stevedore.agent.testing.LocalRegistry;
import dev.stevedore.agent.testing.Tasks;
import dev.stevedore.agent.testing.TestImages;
import dev.stevedore.api.v1alpha1.Container;
import dev.stevedore.api.v1alpha1.ContainerStatus;
import dev.stevedore.api.v1alpha1.RuntimeNode;
import dev.stevedore.api.v1alpha1.Task;
import dev.stevedore.api.v1alpha1.TaskStatus;
import dev.stevedore.testing.Chart;
import dev.stevedore.testing.ControlPlane;
import dev.stevedore.testing.Crds;
import dev.stevedore.testing.TestNamespace;
import dev.stevedore.testing.WithControlPlane;
import io.fabric8.kubernetes.client.KubernetesClient;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The node agent with exactly the credentials the Helm chart gives it: a token of the chart's agent ServiceAccount,
 * bound to the chart's agent ClusterRole. The agent logs a refused write and goes on, so the test checks that each
 * write it needs happened: its RuntimeNode, a Container's status, a Task's phases, and both finalizers released.
 */
@WithControlPlane
class AgentUnderChartRbacIT {
    @TempDir
    static Path tmp;

    private static LocalRegistry registry;
    private static String image;

    @BeforeAll
    static void start(ControlPlane controlPlane) {
        Crds.installStevedore(controlPlane.adminClient());
        registry = LocalRegistry.start();
        image = registry.host() + "/test/base:1";
        TestImages.build(tmp.resolve("images")).push(TestImages.BASE, image);
    }

    @AfterAll
    static void stop() {
        if (registry != null) {
            registry.close();
        }
    }

    @Test
    void aContainerBecomesReadyAndATaskRunsToDeletedUnderTheChartsRbac(TestNamespace ns) throws Exception {
        Chart.installRbac(ns);
        KubernetesClient asAgent = ns.clientAs(Chart.agentServiceAccount(ns));
        String node = ns.name() + "-node";
        // Labelled with the test's namespace, the RuntimeNode goes with it.
        NodeAgent.Running agent = NodeAgent.start(
                asAgent,
                NodeAgent.Settings.of(node, tmp.resolve(ns.name()))
                        .withLabels(Map.of(TestNamespace.TEST_LABEL, ns.name()))
                        .withHeartbeatInterval(Duration.ofSeconds(2)));
        try {
            RuntimeNode registered = ns.client()
                    .resources(RuntimeNode.class)
                    .withName(node)
                    .waitUntilCondition(
                            n -> n != null
                                    && n.getStatus() != null
                                    && n.getStatus().lastHeartbeatTime() != null,
                            Containers.TIMEOUT.toSeconds(),
                            TimeUnit.SECONDS);
            assertThat(registered.getStatus().conditions())
                    .anyMatch(c -> "Ready".equals(c.getType()) && "True".equals(c.getStatus()));

            Containers.create(ns, "app", image, node, "process: {args: [sh, -c, 'echo hi; exit 0']}");
            Containers.awaitCondition(ns, "app", ContainerStatus.READY, "True");
            Tasks.create(ns, "app-1", "app", node, "");
            Task done = Tasks.awaitPhase(ns, "app-1", TaskStatus.Phase.Deleted);
            assertThat(done.getStatus().exitCode()).isZero();
            assertThat(done.getStatus().reason()).isEqualTo("Completed");

            // Deleting them waits on the agent's finalizers: removing those is a write of its own.
            ns.client().resources(Task.class).withName("app-1").delete();
            ns.client()
                    .resources(Task.class)
                    .withName("app-1")
                    .waitUntilCondition(Objects::isNull, Containers.TIMEOUT.toSeconds(), TimeUnit.SECONDS);
            ns.client().resources(Container.class).withName("app").delete();
            Containers.awaitGone(ns, "app");
        } finally {
            agent.close();
        }
    }
}
