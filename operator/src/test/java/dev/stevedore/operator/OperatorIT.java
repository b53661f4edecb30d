package dev.stevedore.operator;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.stevedore.api.v1alpha1.Conditions;
import dev.stevedore.api.v1alpha1.Container;
import dev.stevedore.api.v1alpha1.ContainerStatus;
import dev.stevedore.api.v1alpha1.RuntimeNode;
import dev.stevedore.api.v1alpha1.RuntimeNodeSpec;
import dev.stevedore.api.v1alpha1.Task;
import dev.stevedore.api.v1alpha1.TaskStatus;
import dev.stevedore.testing.ControlPlane;
import dev.stevedore.testing.Crds;
import dev.stevedore.testing.TestNamespace;
import dev.stevedore.testing.WithControlPlane;
import io.fabric8.kubernetes.api.model.Condition;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.utils.Serialization;
import io.javaoperatorsdk.operator.Operator;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.Predicate;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The operator against a real control plane, with the node side (RuntimeNode heartbeats, Task phases) written by
 * the test under the agent's field manager.
 */
@WithControlPlane
class OperatorIT {
    private static final Duration TIMEOUT = Duration.ofSeconds(120);
    private static final Duration GRACE = Duration.ofSeconds(20);
    private static Operator operator;
    private static KubernetesClient admin;
    private static NodeSide nodeSide;

    @BeforeAll
    static void startOperator(ControlPlane controlPlane) {
        admin = controlPlane.adminClient();
        Crds.installStevedore(admin);
        nodeSide = new NodeSide(admin);
        operator = StevedoreOperator.start(admin, new StevedoreOperator.Settings(null, GRACE));
    }

    @AfterAll
    static void stopOperator() {
        operator.stop();
    }

    @AfterEach
    void removeNodes() {
        admin.resources(RuntimeNode.class).withLabel("stevedore.dev/test").delete();
    }

    @Test
    void schedulesAContainerOntoAReadyNodeMatchingItsSelector(TestNamespace ns) {
        node(ns, "a", Map.of("zone", "x"));
        node(ns, "b", Map.of("zone", "y"));
        nodeSide.heartbeat(node(ns, "c", Map.of("zone", "x")).getMetadata().getName(), Instant.now(), "False");

        container(ns, "web", "nodeSelector: {zone: x}");

        Container scheduled =
                awaitObject(ns, Container.class, "web", c -> c.getSpec().nodeName() != null);
        assertThat(scheduled.getSpec().nodeName()).isEqualTo(ns.name() + "-a");
        Container withStatus = awaitObject(
                ns,
                Container.class,
                "web",
                c -> isTrue(c.getStatus() == null ? null : c.getStatus().conditions(), ContainerStatus.SCHEDULED));
        assertThat(withStatus.getStatus().nodeName()).isEqualTo(ns.name() + "-a");
        await().atMost(TIMEOUT)
                .until(() -> ns.client().v1().events().list().getItems().stream()
                        .anyMatch(e -> "Scheduled".equals(e.getReason())
                                && "web".equals(e.getInvolvedObject().getName())));
    }

    @Test
    void aContainerNoNodeFitsIsUnschedulableUntilOneDoes(TestNamespace ns) {
        RuntimeNode node = node(ns, "only", Map.of("zone", "y"));
        container(ns, "picky", "nodeSelector: {zone: z, team: " + ns.name() + "}");

        Container waiting = awaitObject(
                ns,
                Container.class,
                "picky",
                c -> condition(c, ContainerStatus.SCHEDULED).isPresent());
        Condition scheduled = condition(waiting, ContainerStatus.SCHEDULED).orElseThrow();
        assertThat(scheduled.getStatus()).isEqualTo("False");
        assertThat(scheduled.getReason()).isEqualTo("Unschedulable");
        assertThat(scheduled.getMessage()).contains("nodes are available").contains("not matching the nodeSelector");
        assertThat(waiting.getSpec().nodeName()).isNull();

        admin.resources(RuntimeNode.class)
                .withName(node.getMetadata().getName())
                .edit(n -> {
                    n.getMetadata().getLabels().putAll(Map.of("zone", "z", "team", ns.name()));
                    return n;
                });

        assertThat(awaitObject(ns, Container.class, "picky", c -> c.getSpec().nodeName() != null)
                        .getSpec()
                        .nodeName())
                .isEqualTo(node.getMetadata().getName());
    }

    @Test
    void aCordonedNodeGetsNoNewContainersUntilItIsUncordoned(TestNamespace ns) {
        String team = "team: " + ns.name();
        RuntimeNode cordoned = nodeSide.register(
                ns.name() + "-cordoned", Map.of("stevedore.dev/test", ns.name(), "team", ns.name(), "role", "x"), true);
        node(ns, "open", Map.of("team", ns.name()));
        // Only the cordoned node matches: the operator saying why this one waits shows it sees the cordon.
        container(ns, "pinned", "nodeSelector: {" + team + ", role: x}");
        // Its node may be seen before its heartbeat: "not ready" first, then the cordon.
        Container pinned = awaitObject(
                ns,
                Container.class,
                "pinned",
                c -> c.getSpec().nodeName() != null
                        || condition(c, ContainerStatus.SCHEDULED)
                                .filter(s -> s.getMessage().contains("unschedulable"))
                                .isPresent());
        assertThat(pinned.getSpec().nodeName())
                .as("the only node that fits is cordoned")
                .isNull();
        Condition waiting = condition(pinned, ContainerStatus.SCHEDULED).orElseThrow();
        assertThat(waiting.getReason()).isEqualTo("Unschedulable");
        assertThat(waiting.getMessage()).contains("1 node unschedulable");

        // Idle and first by name, the cordoned node would take the first of these at least, were it schedulable.
        for (int i = 0; i < 3; i++) {
            container(ns, "c" + i, "nodeSelector: {" + team + "}");
        }
        for (int i = 0; i < 3; i++) {
            assertThat(awaitObject(
                                    ns,
                                    Container.class,
                                    "c" + i,
                                    c -> c.getSpec().nodeName() != null)
                            .getSpec()
                            .nodeName())
                    .as("c%d's node", i)
                    .isEqualTo(ns.name() + "-open");
        }

        admin.resources(RuntimeNode.class)
                .withName(cordoned.getMetadata().getName())
                .edit(n -> {
                    n.setSpec(new RuntimeNodeSpec(false));
                    return n;
                });
        assertThat(awaitObject(ns, Container.class, "pinned", c -> c.getSpec().nodeName() != null)
                        .getSpec()
                        .nodeName())
                .isEqualTo(cordoned.getMetadata().getName());
    }

    @Test
    void aTaskOfAContainerThatCannotBeScheduledIsPendingWithTheSchedulersReason(TestNamespace ns) {
        RuntimeNode node = node(ns, "elsewhere", Map.of("zone", "y"));
        container(ns, "unplaced", "nodeSelector: {zone: z, team: " + ns.name() + "}");
        task(ns, "waits", "unplaced");

        Task pending = awaitObject(
                ns,
                Task.class,
                "waits",
                // Its node may be seen before its heartbeat: "not ready" first, then the selector.
                t -> t.getStatus() != null
                        && t.getStatus().message() != null
                        && t.getStatus().message().contains("not matching"));
        assertThat(pending.getStatus().reason()).isEqualTo("ContainerNotScheduled");
        assertThat(pending.getStatus().phase()).isEqualTo(TaskStatus.Phase.Pending);
        // The scheduler's own words, as the Container's Scheduled condition has them (their count of nodes may
        // move while other tests' nodes go).
        assertThat(pending.getStatus().message())
                .matches("Container unplaced has no node: 0/\\d+ nodes are available: .*"
                        + " not matching the nodeSelector\\.");
        assertThat(pending.getSpec().nodeName()).isNull();

        admin.resources(RuntimeNode.class)
                .withName(node.getMetadata().getName())
                .edit(n -> {
                    n.getMetadata().getLabels().putAll(Map.of("zone", "z", "team", ns.name()));
                    return n;
                });

        assertThat(awaitObject(ns, Task.class, "waits", t -> t.getSpec().nodeName() != null)
                        .getSpec()
                        .nodeName())
                .isEqualTo(node.getMetadata().getName());
    }

    @Test
    void spreadsContainersOverNodesByLoad(TestNamespace ns) {
        node(ns, "one", Map.of("team", ns.name()));
        node(ns, "two", Map.of("team", ns.name()));
        for (int i = 0; i < 6; i++) {
            container(ns, "c" + i, "nodeSelector: {team: " + ns.name() + "}");
        }
        await().atMost(TIMEOUT)
                .until(() -> ns.client().resources(Container.class).list().getItems().stream()
                        .allMatch(c -> c.getSpec().nodeName() != null));
        Map<String, Long> perNode = ns.client().resources(Container.class).list().getItems().stream()
                .collect(Collectors.groupingBy(c -> c.getSpec().nodeName(), Collectors.counting()));
        assertThat(perNode).containsOnly(Map.entry(ns.name() + "-one", 3L), Map.entry(ns.name() + "-two", 3L));
    }

    @Test
    void tasksOfAContainerAreBoundOneAtATimeOldestFirst(TestNamespace ns) {
        RuntimeNode node = node(ns, "n", Map.of());
        container(ns, "app", "nodeName: " + node.getMetadata().getName());
        task(ns, "first", "app");
        Task first = awaitObject(ns, Task.class, "first", t -> t.getSpec().nodeName() != null);
        task(ns, "second", "app");

        assertThat(first.getSpec().nodeName()).isEqualTo(node.getMetadata().getName());
        assertThat(first.getMetadata().getOwnerReferences()).singleElement().satisfies(ref -> {
            assertThat(ref.getKind()).isEqualTo("Container");
            assertThat(ref.getName()).isEqualTo("app");
            assertThat(ref.getController()).isTrue();
        });
        Task second = awaitObject(
                ns,
                Task.class,
                "second",
                t -> t.getStatus() != null
                        && "ContainerBusy".equals(t.getStatus().reason()));
        assertThat(second.getStatus().phase()).isEqualTo(TaskStatus.Phase.Pending);
        assertThat(second.getSpec().nodeName()).isNull();

        nodeSide.taskPhase(ns.name(), "first", TaskStatus.Phase.Running, null);
        nodeSide.taskPhase(ns.name(), "first", TaskStatus.Phase.Deleted, 0);

        assertThat(awaitObject(ns, Task.class, "second", t -> t.getSpec().nodeName() != null)
                        .getSpec()
                        .nodeName())
                .isEqualTo(node.getMetadata().getName());
    }

    @Test
    void aTaskWhoseContainerIsMissingIsPendingUntilItExists(TestNamespace ns) {
        RuntimeNode node = node(ns, "n", Map.of());
        task(ns, "early", "later");
        Task pending = awaitObject(
                ns,
                Task.class,
                "early",
                t -> t.getStatus() != null && t.getStatus().reason() != null);
        assertThat(pending.getStatus().reason()).isEqualTo("ContainerNotFound");
        assertThat(pending.getStatus().message()).contains("Container later does not exist");

        container(ns, "later", "nodeName: " + node.getMetadata().getName());

        assertThat(awaitObject(ns, Task.class, "early", t -> t.getSpec().nodeName() != null)
                        .getMetadata()
                        .getOwnerReferences())
                .extracting(ref -> ref.getName())
                .containsExactly("later");
    }

    @Test
    void deletingAContainerDeletesItsTasks(TestNamespace ns) {
        RuntimeNode node = node(ns, "n", Map.of());
        container(ns, "doomed", "nodeName: " + node.getMetadata().getName());
        task(ns, "t1", "doomed");
        task(ns, "t2", "doomed");
        await().atMost(TIMEOUT)
                .until(() -> ns.client().resources(Task.class).list().getItems().stream()
                        .allMatch(t -> !t.getMetadata().getOwnerReferences().isEmpty()));

        ns.client().resources(Container.class).withName("doomed").delete();

        // The garbage collector notices new custom resource types by rediscovery, every 30 s at most.
        await().atMost(Duration.ofSeconds(90))
                .until(() -> ns.client().resources(Task.class).list().getItems().isEmpty());
    }

    @Test
    void aNodeThatStopsHeartbeatingMarksItsContainersAndTasksAndTheyRecover(TestNamespace ns) {
        RuntimeNode node = node(ns, "flaky", Map.of());
        String nodeName = node.getMetadata().getName();
        container(ns, "app", "nodeName: " + nodeName);
        task(ns, "run", "app");
        awaitObject(
                ns,
                Task.class,
                "run",
                t -> isTrue(
                        t.getStatus() == null ? null : t.getStatus().conditions(), ContainerReconciler.NODE_REACHABLE));

        nodeSide.heartbeat(nodeName, Instant.now().minus(GRACE).minusSeconds(5), "True");

        await().atMost(TIMEOUT)
                .until(() -> Nodes.readyCondition(admin.resources(RuntimeNode.class)
                                .withName(nodeName)
                                .get())
                        .map(Condition::getStatus)
                        .orElse("")
                        .equals("Unknown"));
        Condition lost = condition(
                        awaitObject(
                                ns,
                                Container.class,
                                "app",
                                c -> condition(c, ContainerReconciler.NODE_REACHABLE)
                                        .filter(r -> !"True".equals(r.getStatus()))
                                        .isPresent()),
                        ContainerReconciler.NODE_REACHABLE)
                .orElseThrow();
        assertThat(lost.getReason()).isEqualTo("NodeNotReady");
        assertThat(lost.getMessage()).contains("stopped posting heartbeats");
        awaitObject(
                ns,
                Task.class,
                "run",
                t -> t.getStatus().conditions().stream()
                        .anyMatch(c -> c.getType().equals(ContainerReconciler.NODE_REACHABLE)
                                && c.getStatus().equals("Unknown")));

        nodeSide.heartbeat(nodeName, Instant.now(), "True");

        awaitObject(
                ns,
                Container.class,
                "app",
                c -> isTrue(c.getStatus().conditions(), ContainerReconciler.NODE_REACHABLE));
        awaitObject(ns, Task.class, "run", t -> isTrue(t.getStatus().conditions(), ContainerReconciler.NODE_REACHABLE));
    }

    @Test
    void aTaskStoppedBeforeItStartedIsCancelledAndRemovedAfterItsTtl(TestNamespace ns) {
        RuntimeNode node = node(ns, "n", Map.of());
        container(ns, "app", "nodeName: " + node.getMetadata().getName());
        task(ns, "holder", "app");
        awaitObject(ns, Task.class, "holder", t -> t.getSpec().nodeName() != null);
        ns.client().resource(Serialization.unmarshal("""
                apiVersion: stevedore.dev/v1alpha1
                kind: Task
                metadata: {name: never}
                spec: {container: app, desiredState: Stopped, ttlSecondsAfterDeleted: 2}
                """, Task.class)).create();

        Task cancelled = awaitObject(
                ns,
                Task.class,
                "never",
                t -> t.getStatus() != null && t.getStatus().phase() == TaskStatus.Phase.Deleted);
        assertThat(cancelled.getStatus().reason()).isEqualTo("Cancelled");
        assertThat(cancelled.getSpec().nodeName()).isNull();
        await().atMost(TIMEOUT)
                .until(() -> ns.client().resources(Task.class).withName("never").get() == null);
    }

    @Test
    void tasksAreSelectableByNodeOnTheServerSide(TestNamespace ns) {
        RuntimeNode node = node(ns, "sel", Map.of());
        container(ns, "app", "nodeName: " + node.getMetadata().getName());
        container(ns, "other", "nodeName: elsewhere");
        task(ns, "mine", "app");
        task(ns, "theirs", "other");
        awaitObject(ns, Task.class, "mine", t -> t.getSpec().nodeName() != null);
        awaitObject(ns, Task.class, "theirs", t -> t.getSpec().nodeName() != null);

        // The field's name as users type it, not SelectableFields.NODE_NAME: renaming that must fail here.
        assertThat(ns.client()
                        .resources(Task.class)
                        .withField("spec.nodeName", node.getMetadata().getName())
                        .list()
                        .getItems())
                .extracting(t -> t.getMetadata().getName())
                .containsExactly("mine");
        assertThat(ns.client()
                        .resources(Container.class)
                        .withField("spec.nodeName", "elsewhere")
                        .list()
                        .getItems())
                .extracting(c -> c.getMetadata().getName())
                .containsExactly("other");
    }

    private RuntimeNode node(TestNamespace ns, String name, Map<String, String> labels) {
        Map<String, String> all = new java.util.HashMap<>(labels);
        all.put("stevedore.dev/test", ns.name());
        return nodeSide.register(ns.name() + "-" + name, all);
    }

    private static void container(TestNamespace ns, String name, String specLine) {
        ns.client()
                .resource(Serialization.unmarshal("""
                apiVersion: stevedore.dev/v1alpha1
                kind: Container
                metadata: {name: %s}
                spec:
                  image: 127.0.0.1:5000/stevedore/busybox:latest
                  %s
                """.formatted(name, specLine), Container.class))
                .create();
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

    private static <T extends io.fabric8.kubernetes.api.model.HasMetadata> T awaitObject(
            TestNamespace ns, Class<T> type, String name, Predicate<T> condition) {
        return ns.client()
                .resources(type)
                .withName(name)
                .waitUntilCondition(
                        o -> o != null && condition.test(o),
                        TIMEOUT.toSeconds(),
                        java.util.concurrent.TimeUnit.SECONDS);
    }

    private static Optional<Condition> condition(Container container, String type) {
        return container.getStatus() == null
                ? Optional.empty()
                : Conditions.find(container.getStatus().conditions(), type);
    }

    private static boolean isTrue(List<Condition> conditions, String type) {
        return Conditions.isTrue(conditions, type);
    }
}
