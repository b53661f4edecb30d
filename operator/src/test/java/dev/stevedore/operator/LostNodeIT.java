package dev.stevedore.operator;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.stevedore.api.NodeAgentFinalizer;
import dev.stevedore.api.v1alpha1.Conditions;
import dev.stevedore.api.v1alpha1.Container;
import dev.stevedore.api.v1alpha1.RuntimeNode;
import dev.stevedore.api.v1alpha1.Task;
import dev.stevedore.api.v1alpha1.TaskStatus;
import dev.stevedore.testing.ControlPlane;
import dev.stevedore.testing.Crds;
import dev.stevedore.testing.Processes;
import dev.stevedore.testing.TestNamespace;
import dev.stevedore.testing.Tools;
import dev.stevedore.testing.WithControlPlane;
import io.fabric8.kubernetes.api.model.Condition;
import io.fabric8.kubernetes.api.model.Event;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.utils.Serialization;
import io.javaoperatorsdk.operator.Operator;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Lost and gone nodes against a real control plane. A "node" here is a RuntimeNode whose agent is absent: the test
 * writes its heartbeats and its Tasks' phases under the agent's field manager, and creates its Tasks and Containers
 * with the agent's finalizer on, as the agent would have put it.
 */
@WithControlPlane
class LostNodeIT {
    private static final Duration TIMEOUT = Duration.ofSeconds(120);
    private static final Duration HEARTBEAT_GRACE = Duration.ofSeconds(3);
    private static final Duration LOST_GRACE = Duration.ofSeconds(2);
    private static final Duration GONE_GRACE = Duration.ofSeconds(10);

    private static Operator operator;
    private static ControlPlane controlPlane;
    private static NodeSide nodeSide;

    @BeforeAll
    static void startOperator(ControlPlane cp) {
        controlPlane = cp;
        Crds.installStevedore(cp.adminClient());
        nodeSide = new NodeSide(cp.adminClient());
        operator = StevedoreOperator.start(
                cp.adminClient(), new StevedoreOperator.Settings(null, HEARTBEAT_GRACE, LOST_GRACE, GONE_GRACE));
    }

    @AfterAll
    static void stopOperator() {
        operator.stop();
    }

    @Test
    void theLiveTasksOfALostNodeAreMarkedAndTheMarkGoesWhenItIsBack(TestNamespace ns) {
        String node = node(ns, "lost");
        create(ns, container("app", node));
        create(ns, task("run", "app"));
        create(ns, container("done", node));
        create(ns, task("ended", "done"));
        awaitBound(ns, "run");
        awaitBound(ns, "ended");
        nodeSide.taskPhase(ns.name(), "run", TaskStatus.Phase.Running, null);
        nodeSide.taskPhase(ns.name(), "ended", TaskStatus.Phase.Deleted, 0);

        // No more heartbeats: Ready turns Unknown, and NodeLost follows the lost grace after.
        Task lost = awaitTask(ns, "run", t -> Conditions.isTrue(conditions(t), TaskReconciler.NODE_LOST));
        Condition mark =
                Conditions.find(conditions(lost), TaskReconciler.NODE_LOST).orElseThrow();
        Condition ready = Nodes.readyCondition(runtimeNode(node)).orElseThrow();
        assertThat(ready.getStatus()).isEqualTo("Unknown");
        assertThat(mark.getReason()).isEqualTo("NodeLost");
        assertThat(mark.getMessage())
                .startsWith("node " + node + " has not been ready since " + ready.getLastTransitionTime())
                .contains("stopped posting heartbeats");
        assertThat(Duration.between(
                        Instant.parse(ready.getLastTransitionTime()), Instant.parse(mark.getLastTransitionTime())))
                .as("marked no sooner than the lost grace after the node stopped being ready")
                .isGreaterThanOrEqualTo(LOST_GRACE);
        assertThat(lost.getStatus().phase())
                .as("the phase stays the agent's last word")
                .isEqualTo(TaskStatus.Phase.Running);
        Condition reconciling =
                Conditions.find(conditions(lost), Conditions.RECONCILING).orElseThrow();
        assertThat(List.of(reconciling.getStatus(), reconciling.getReason()))
                .as("kstatus InProgress, as a Pod of an unreachable Node is not ready")
                .containsExactly("True", "NodeLost");
        assertThat(conditions(getTask(ns, "ended")))
                .as("a Deleted Task is not live: nothing of it is lost")
                .noneMatch(c -> c.getType().equals(TaskReconciler.NODE_LOST));
        awaitEvent(ns, "run", "NodeLost");

        nodeSide.heartbeat(node, Instant.now(), "True");

        Task back = awaitTask(
                ns,
                "run",
                t -> Conditions.find(conditions(t), TaskReconciler.NODE_LOST).isEmpty());
        assertThat(Conditions.find(conditions(back), Conditions.RECONCILING)
                        .orElseThrow()
                        .getReason())
                .isNotEqualTo("NodeLost");
        awaitEvent(ns, "run", "NodeRecovered");
    }

    @Test
    void afterItsRuntimeNodeIsDeletedTheTasksAndContainersOfANodeCanBeDeleted(TestNamespace ns) {
        String node = node(ns, "deleted");
        create(ns, withAgentFinalizer(container("app", node)));
        create(ns, withAgentFinalizer(task("run", "app")));
        awaitBound(ns, "run");
        nodeSide.taskPhase(ns.name(), "run", TaskStatus.Phase.Running, null);
        nodeSide.heartbeat(node, Instant.now(), "True");

        Processes.Result waitingTask = kubectl(ns, "delete", "task", "run", "--timeout=2s");
        assertThat(waitingTask.exitCode())
                .as("a Task of a node that is there waits for its agent: %s", waitingTask.output())
                .isNotZero();
        assertThat(getTask(ns, "run").hasFinalizer(NodeAgentFinalizer.NAME)).isTrue();

        controlPlane.adminClient().resources(RuntimeNode.class).withName(node).delete();

        assertCompletes(kubectl(ns, "wait", "--for=delete", "task/run", "--timeout=60s"));
        assertCompletes(kubectl(ns, "delete", "container", "app", "--timeout=60s"));
        assertThat(awaitEvent(ns, "run", "NodeGone").getMessage())
                .isEqualTo("RuntimeNode " + node + " was deleted: removed the node agent's finalizer "
                        + NodeAgentFinalizer.NAME + ", as no agent will; what the node holds for this object was "
                        + "not cleaned up");
        awaitEvent(ns, "app", "NodeGone");
    }

    @Test
    void aContainerWhoseNodeIsDeletedStaysThereAndSaysSo(TestNamespace ns) {
        String node = node(ns, "vanished");
        create(ns, container("app", node));
        awaitContainer(
                ns,
                "app",
                c -> reachable(c)
                        .map(r -> r.getReason().equals("NodeReady")
                                || r.getReason().equals("NodeNotReady"))
                        .orElse(false));

        controlPlane.adminClient().resources(RuntimeNode.class).withName(node).delete();

        Container marked = awaitContainer(
                ns,
                "app",
                c -> reachable(c)
                        .map(r -> r.getReason().equals(ContainerReconciler.NODE_NOT_FOUND))
                        .orElse(false));
        assertThat(marked.getSpec().nodeName()).isEqualTo(node);
        Condition reachable = reachable(marked).orElseThrow();
        assertThat(reachable.getStatus()).isEqualTo("False");
        assertThat(reachable.getMessage()).contains("RuntimeNode " + node + " does not exist", "delete the Container");
        awaitEvent(ns, "app", ContainerReconciler.NODE_NOT_FOUND);
    }

    @Test
    void theTasksAndContainersOfANodeNotReadyPastTheGoneGraceCanBeDeleted(TestNamespace ns) {
        String node = node(ns, "gone");
        create(ns, withAgentFinalizer(container("app", node)));
        create(ns, withAgentFinalizer(task("run", "app")));
        awaitBound(ns, "run");
        nodeSide.taskPhase(ns.name(), "run", TaskStatus.Phase.Running, null);

        ns.client().resources(Task.class).withName("run").delete();
        ns.client().resources(Container.class).withName("app").delete();

        await().atMost(TIMEOUT).until(() -> getTask(ns, "run") == null);
        Instant taskGone = Instant.now();
        await().atMost(TIMEOUT)
                .until(() ->
                        ns.client().resources(Container.class).withName("app").get() == null);
        Condition ready = Nodes.readyCondition(runtimeNode(node)).orElseThrow();
        assertThat(ready.getStatus()).isEqualTo("Unknown");
        assertThat(Duration.between(Instant.parse(ready.getLastTransitionTime()), taskGone))
                .as("released only once the node had not been ready for the gone grace")
                .isGreaterThanOrEqualTo(GONE_GRACE);
        assertThat(awaitEvent(ns, "run", "NodeGone").getMessage())
                .startsWith("node " + node + " has not been ready since " + ready.getLastTransitionTime());
    }

    @Test
    void aPhaseTheAgentWroteIsNeverUndoneByAnOperatorThatReadTheTaskBefore(TestNamespace ns) {
        String node = node(ns, "racing");
        create(ns, container("raced", node));
        create(ns, task("raced", "raced"));
        awaitBound(ns, "raced");
        Task readBefore = getTask(ns, "raced");
        nodeSide.taskPhase(ns.name(), "raced", TaskStatus.Phase.Running, null);

        boolean written = TaskReconciler.apply(
                ns.client(),
                readBefore,
                TaskReconciler.Phase.pending("ContainerBusy", "from a copy read before the agent started it"),
                null,
                null);

        assertThat(written).isFalse();
        assertThat(getTask(ns, "raced").getStatus().phase()).isEqualTo(TaskStatus.Phase.Running);
    }

    private static String node(TestNamespace ns, String name) {
        String node = ns.name() + "-" + name;
        nodeSide.register(node, Map.of(TestNamespace.TEST_LABEL, ns.name()));
        return node;
    }

    private static Container container(String name, String node) {
        return Serialization.unmarshal("""
                apiVersion: stevedore.dev/v1alpha1
                kind: Container
                metadata: {name: %s}
                spec: {image: 127.0.0.1:5000/stevedore/busybox:latest, nodeName: %s}
                """.formatted(name, node), Container.class);
    }

    private static Task task(String name, String container) {
        return Serialization.unmarshal("""
                apiVersion: stevedore.dev/v1alpha1
                kind: Task
                metadata: {name: %s}
                spec: {container: %s}
                """.formatted(name, container), Task.class);
    }

    /** As the node agent puts it on what it runs. */
    private static <T extends HasMetadata> T withAgentFinalizer(T object) {
        object.getMetadata().setFinalizers(new ArrayList<>(List.of(NodeAgentFinalizer.NAME)));
        return object;
    }

    private static void create(TestNamespace ns, HasMetadata object) {
        ns.client().resource(object).create();
    }

    private static RuntimeNode runtimeNode(String name) {
        return controlPlane
                .adminClient()
                .resources(RuntimeNode.class)
                .withName(name)
                .get();
    }

    private static Task getTask(TestNamespace ns, String name) {
        return ns.client().resources(Task.class).withName(name).get();
    }

    private static Task awaitTask(TestNamespace ns, String name, Predicate<Task> condition) {
        return ns.client()
                .resources(Task.class)
                .withName(name)
                .waitUntilCondition(t -> t != null && condition.test(t), TIMEOUT.toSeconds(), TimeUnit.SECONDS);
    }

    private static Container awaitContainer(TestNamespace ns, String name, Predicate<Container> condition) {
        return ns.client()
                .resources(Container.class)
                .withName(name)
                .waitUntilCondition(c -> c != null && condition.test(c), TIMEOUT.toSeconds(), TimeUnit.SECONDS);
    }

    /**
     * Bound, and the operator's Pending written: what the node agent writes from then on is not overwritten by an
     * operator that has not seen it yet.
     */
    private static void awaitBound(TestNamespace ns, String name) {
        awaitTask(
                ns,
                name,
                t -> t.getStatus() != null && "Bound".equals(t.getStatus().reason()));
    }

    private static List<Condition> conditions(Task task) {
        return task.getStatus() == null
                ? List.of()
                : Optional.ofNullable(task.getStatus().conditions()).orElse(List.of());
    }

    private static Optional<Condition> reachable(Container container) {
        return container.getStatus() == null
                ? Optional.empty()
                : Conditions.find(container.getStatus().conditions(), ContainerReconciler.NODE_REACHABLE);
    }

    private static Event awaitEvent(TestNamespace ns, String object, String reason) {
        KubernetesClient client = ns.client();
        return await().atMost(TIMEOUT)
                .until(
                        () -> client.v1().events().list().getItems().stream()
                                .filter(e ->
                                        e.getInvolvedObject().getName().equals(object) && reason.equals(e.getReason()))
                                .findFirst(),
                        Optional::isPresent)
                .orElseThrow();
    }

    private static void assertCompletes(Processes.Result result) {
        assertThat(result.exitCode()).as(result.output()).isZero();
    }

    private static Processes.Result kubectl(TestNamespace ns, String... args) {
        List<String> command = new ArrayList<>(List.of(
                Tools.binDir().resolve("kubectl").toString(),
                "--kubeconfig",
                controlPlane.kubeconfig().toString(),
                "-n",
                ns.name()));
        command.addAll(List.of(args));
        return Processes.run(new ProcessBuilder(command), Duration.ofSeconds(90));
    }
}
