package dev.stevedore.agent.tasks;

import static org.assertj.core.api.Assertions.assertThat;

import dev.stevedore.agent.testing.AgentProcess;
import dev.stevedore.agent.testing.Containers;
import dev.stevedore.agent.testing.LocalRegistry;
import dev.stevedore.agent.testing.Tasks;
import dev.stevedore.agent.testing.TestImages;
import dev.stevedore.api.v1alpha1.Conditions;
import dev.stevedore.api.v1alpha1.Container;
import dev.stevedore.api.v1alpha1.ContainerStatus;
import dev.stevedore.api.v1alpha1.RuntimeNode;
import dev.stevedore.api.v1alpha1.Task;
import dev.stevedore.api.v1alpha1.TaskSpec;
import dev.stevedore.api.v1alpha1.TaskStatus;
import dev.stevedore.operator.StevedoreOperator;
import dev.stevedore.testing.ControlPlane;
import dev.stevedore.testing.Crds;
import dev.stevedore.testing.TestNamespace;
import dev.stevedore.testing.WithControlPlane;
import io.fabric8.kubernetes.api.model.Condition;
import io.javaoperatorsdk.operator.Operator;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A node lost and found with the real components: the agent, its own JVM, is SIGKILLed; the operator (short node
 * grace period) marks the RuntimeNode Ready=Unknown and what is bound there NodeReachable=Unknown, while the task
 * runs on under conmon; the agent started again brings both back, with the same process.
 */
@WithControlPlane
class NodeLossIT {
    private static final Duration TIMEOUT = Duration.ofSeconds(120);
    private static final String NODE = "node-loss-node";
    /** Five of the agent's 2 s heartbeats: long enough that a slow one on a loaded machine is no loss. */
    private static final Duration NODE_GRACE = Duration.ofSeconds(10);

    private static final String NODE_REACHABLE = "NodeReachable";

    @TempDir
    static Path tmp;

    private static ControlPlane controlPlane;
    private static LocalRegistry registry;
    private static String image;
    private static Operator operator;
    private static Path root;
    private static Runtimes runtimes;
    private static AgentProcess agent;

    @BeforeAll
    static void start(ControlPlane cp) throws Exception {
        controlPlane = cp;
        Crds.installStevedore(cp.adminClient());
        registry = LocalRegistry.start();
        image = registry.host() + "/test/busybox:1";
        TestImages.build(tmp.resolve("images")).push(TestImages.BASE, image);
        root = tmp.resolve("root");
        runtimes = Runtimes.prepare(tmp.resolve("test-runtimes"));
        operator = StevedoreOperator.start(cp.adminClient(), new StevedoreOperator.Settings(null, NODE_GRACE));
    }

    @AfterAll
    static void stop() throws Exception {
        try {
            if (agent != null) {
                agent.close();
            }
            operator.stop();
        } finally {
            LeftoverTasks.removeUnder(root, runtimes); // leave nothing behind, whatever happened
            registry.close();
            controlPlane
                    .adminClient()
                    .resources(RuntimeNode.class)
                    .withName(NODE)
                    .delete();
        }
    }

    @Test
    void aKilledAgentsNodeAndTaskBecomeUnknownAndRecoverWithTheSameProcessWhenItIsBack(TestNamespace ns)
            throws Exception {
        agent = startAgent();
        Containers.create(ns, "app", image, NODE, "process: {args: [sleep, '3600']}");
        Tasks.create(ns, "app-1", "app", NODE, "stopGracePeriodSeconds: 1");
        Task running =
                Tasks.await(ns, "app-1", t -> isRunning(t) && nodeReachable(t).equals("True"));
        long pid = running.getStatus().pid();

        agent.kill();

        Condition lost = awaitNodeReady("Unknown");
        assertThat(lost.getReason()).isEqualTo("NodeStatusUnknown");
        Task unreachable = Tasks.await(ns, "app-1", t -> nodeReachable(t).equals("Unknown"));
        assertThat(Conditions.find(unreachable.getStatus().conditions(), NODE_REACHABLE)
                        .orElseThrow()
                        .getMessage())
                .contains("stopped posting heartbeats");
        Containers.awaitCondition(ns, "app", NODE_REACHABLE, "Unknown", agent::log);
        assertThat(ProcessHandle.of(pid))
                .as("the task runs on without its agent")
                .isPresent();

        agent = startAgent();

        awaitNodeReady("True");
        Task back =
                Tasks.await(ns, "app-1", t -> isRunning(t) && nodeReachable(t).equals("True"));
        assertThat(back.getStatus().pid())
                .as("the same process, adopted, not started again")
                .isEqualTo(pid);
        assertThat(back.getStatus().startedAt()).isEqualTo(running.getStatus().startedAt());
        assertThat(ProcessHandle.of(pid)).isPresent();
        Containers.awaitCondition(ns, "app", NODE_REACHABLE, "True", agent::log);

        Tasks.setDesired(ns, "app-1", TaskSpec.DesiredState.Stopped);
        Task stopped = Tasks.awaitPhase(ns, "app-1", TaskStatus.Phase.Deleted);
        assertThat(stopped.getStatus().pid()).isEqualTo(pid);
        String uid = stopped.getMetadata().getUid();
        ns.client().resources(Task.class).withName("app-1").delete();
        ns.client()
                .resources(Task.class)
                .withName("app-1")
                .waitUntilCondition(Objects::isNull, TIMEOUT.toSeconds(), TimeUnit.SECONDS);
        ns.client().resources(Container.class).withName("app").delete();
        Containers.awaitGone(ns, "app");
        LeftoverTasks.assertNoneLeft(root, runtimes, uid);
    }

    private static AgentProcess startAgent() {
        return AgentProcess.start(NODE, root, controlPlane.kubeconfig(), tmp.resolve("agent.log"));
    }

    private static Condition awaitNodeReady(String status) {
        RuntimeNode node = controlPlane
                .adminClient()
                .resources(RuntimeNode.class)
                .withName(NODE)
                .waitUntilCondition(
                        n -> n != null
                                && status.equals(
                                        ready(n).map(Condition::getStatus).orElse(null)),
                        TIMEOUT.toSeconds(),
                        TimeUnit.SECONDS);
        return ready(node).orElseThrow();
    }

    private static Optional<Condition> ready(RuntimeNode node) {
        return node.getStatus() == null
                ? Optional.empty()
                : Conditions.find(node.getStatus().conditions(), ContainerStatus.READY);
    }

    private static boolean isRunning(Task task) {
        return task.getStatus() != null && task.getStatus().phase() == TaskStatus.Phase.Running;
    }

    private static String nodeReachable(Task task) {
        List<Condition> conditions =
                task.getStatus() == null ? null : task.getStatus().conditions();
        return Conditions.find(conditions, NODE_REACHABLE)
                .map(Condition::getStatus)
                .orElse("");
    }
}
