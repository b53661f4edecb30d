package dev.stevedore.operator;

import static org.assertj.core.api.Assertions.assertThat;

import dev.stevedore.api.v1alpha1.Container;
import dev.stevedore.api.v1alpha1.ContainerSpec;
import dev.stevedore.api.v1alpha1.ContainerStatus;
import dev.stevedore.api.v1alpha1.RuntimeNode;
import dev.stevedore.api.v1alpha1.RuntimeNodeSpec;
import dev.stevedore.api.v1alpha1.RuntimeNodeStatus;
import io.fabric8.kubernetes.api.model.Condition;
import io.fabric8.kubernetes.api.model.ConditionBuilder;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.ToIntFunction;
import org.junit.jupiter.api.Test;

class SchedulerTest {
    private static final ToIntFunction<String> EMPTY = node -> 0;

    @Test
    void onlyAReadyNodeIsChosen() {
        List<RuntimeNode> nodes = List.of(
                node("a-false").ready("False"),
                node("b-unknown").ready("Unknown"),
                node("c-silent").build(),
                node("d-ready").ready("True"));

        assertThat(chosen(container(Map.of()), nodes, EMPTY)).isEqualTo("d-ready");
    }

    @Test
    void aCordonedNodeIsSkippedAndAnExplicitlySchedulableOneIsNot() {
        List<RuntimeNode> nodes = List.of(
                node("a").unschedulable(true).ready("True"),
                node("b").unschedulable(false).ready("True"));

        assertThat(chosen(container(Map.of()), nodes, EMPTY)).isEqualTo("b");
    }

    @Test
    void aNodeWithDiskPressureGetsNothingNewAndOneWithoutItDoes() {
        List<RuntimeNode> nodes = List.of(
                node("a-full").diskPressure("True").ready("True"),
                node("b-unknown-pressure").diskPressure("Unknown").ready("True"),
                node("c-idle-full").diskPressure("True").ready("True"));
        Map<String, Integer> load = Map.of("a-full", 0, "b-unknown-pressure", 5, "c-idle-full", 0);

        assertThat(chosen(container(Map.of()), nodes, load::get)).isEqualTo("b-unknown-pressure");
    }

    @Test
    void whenEveryNodeHasDiskPressureNothingIsScheduledAndTheMessageSaysWhy() {
        List<RuntimeNode> nodes = List.of(
                node("a").diskPressure("True").ready("True"),
                node("b").diskPressure("True").ready("True"),
                node("c").diskPressure("False").label("team", "y").ready("True"));

        Scheduler.Decision decision = Scheduler.schedule(container(Map.of("team", "x")), nodes, EMPTY);

        assertThat(decision.nodeName()).isEmpty();
        assertThat(decision.message())
                .isEqualTo(
                        "0/3 nodes are available: 2 nodes with disk pressure, 1 node not matching the nodeSelector.");
    }

    @Test
    void everyEntryOfTheNodeSelectorMustMatchALabel() {
        List<RuntimeNode> nodes = List.of(
                node("a-wrong-value").label("zone", "b").label("disk", "ssd").ready("True"),
                node("b-missing-label").label("zone", "a").ready("True"),
                node("c-match-and-more")
                        .label("zone", "a")
                        .label("disk", "ssd")
                        .label("extra", "x")
                        .ready("True"));

        assertThat(chosen(container(Map.of("zone", "a", "disk", "ssd")), nodes, EMPTY))
                .isEqualTo("c-match-and-more");
    }

    @Test
    void aContainerThatAsksForANetworkGoesOnlyToANodeThatOffersIt() {
        List<RuntimeNode> nodes = List.of(
                node("a-none").ready("True"),
                node("b-other").network("other").ready("True"),
                node("c-web").network("other").network("web").ready("True"));

        assertThat(chosen(withNetwork(new ContainerSpec.Network(null, "web", null, null, null)), nodes, n -> 0))
                .isEqualTo("c-web");
        assertThat(chosen(
                        withNetwork(new ContainerSpec.Network(ContainerSpec.NetworkMode.cni, null, null, null, null)),
                        nodes,
                        n -> 0))
                .isEqualTo("b-other");
        assertThat(chosen(withNetwork(new ContainerSpec.Network(null, null, null, null, "h")), nodes, n -> 0))
                .as("nothing asked of a network: any node")
                .isEqualTo("a-none");
        Scheduler.Decision none =
                Scheduler.schedule(withNetwork(new ContainerSpec.Network(null, "db", null, null, null)), nodes, n -> 0);
        assertThat(none.nodeName()).isEmpty();
        assertThat(none.message()).isEqualTo("0/3 nodes are available: 3 nodes without the CNI network asked for.");
    }

    @Test
    void theNodeWithFewestContainersWins() {
        List<RuntimeNode> nodes = List.of(
                node("a").ready("True"), node("b").ready("True"), node("c").ready("True"));
        Map<String, Integer> load = Map.of("a", 3, "b", 1, "c", 2);

        assertThat(chosen(container(Map.of()), nodes, load::get)).isEqualTo("b");
    }

    @Test
    void aTieGoesToTheFirstNameWhateverTheOrderNodesCameIn() {
        List<RuntimeNode> nodes = List.of(
                node("zeta").ready("True"),
                node("alpha").ready("True"),
                node("mid").ready("True"),
                node("aaa-busy").ready("True"));
        Map<String, Integer> load = Map.of("zeta", 1, "alpha", 1, "mid", 1, "aaa-busy", 2);

        assertThat(chosen(container(Map.of()), nodes, load::get)).isEqualTo("alpha");
    }

    @Test
    void aLoadedNodeThatPassesBeatsAnIdleOneThatDoesNot() {
        List<RuntimeNode> nodes = List.of(
                node("idle-cordoned").unschedulable(true).ready("True"),
                node("idle-not-ready").ready("False"),
                node("busy").ready("True"));
        Map<String, Integer> load = Map.of("idle-cordoned", 0, "idle-not-ready", 0, "busy", 50);

        assertThat(chosen(container(Map.of()), nodes, load::get)).isEqualTo("busy");
    }

    @Test
    void whenNoNodeFitsTheMessageCountsWhyEachFailedByItsFirstFailingFilter() {
        List<RuntimeNode> nodes = List.of(
                node("not-ready-and-cordoned").unschedulable(true).ready("False"),
                node("cordoned-1").unschedulable(true).ready("True"),
                node("cordoned-2").unschedulable(true).label("team", "x").ready("True"),
                node("other-team").label("team", "y").ready("True"));

        Scheduler.Decision decision = Scheduler.schedule(container(Map.of("team", "x")), nodes, EMPTY);

        assertThat(decision.nodeName()).isEmpty();
        assertThat(decision.message())
                .isEqualTo(
                        "0/4 nodes are available: 1 node not ready, 2 nodes unschedulable, 1 node not matching the nodeSelector.");
    }

    @Test
    void withoutNodesNothingIsScheduled() {
        Scheduler.Decision decision = Scheduler.schedule(container(Map.of()), List.of(), EMPTY);

        assertThat(decision.nodeName()).isEmpty();
        assertThat(decision.message()).isEqualTo("0/0 nodes are available.");
    }

    @Test
    void aDecisionNamesItsNode() {
        Scheduler.Decision decision =
                Scheduler.schedule(container(null), List.of(node("only").ready("True")), EMPTY);

        assertThat(decision.nodeName()).contains("only");
        assertThat(decision.message()).isEqualTo("scheduled to only");
    }

    private static String chosen(Container container, List<RuntimeNode> nodes, ToIntFunction<String> load) {
        return Scheduler.schedule(container, nodes, load).nodeName().orElseThrow();
    }

    private static Container container(Map<String, String> nodeSelector) {
        Container container = new Container();
        container.setMetadata(
                new ObjectMetaBuilder().withName("app").withNamespace("ns").build());
        container.setSpec(
                new ContainerSpec("busybox", null, null, null, null, nodeSelector, null, null, null, null, null));
        return container;
    }

    private static Container withNetwork(ContainerSpec.Network network) {
        Container container = container(null);
        container.setSpec(new ContainerSpec("busybox", null, null, null, null, null, null, null, null, network, null));
        return container;
    }

    private static NodeBuilder node(String name) {
        return new NodeBuilder(name);
    }

    private static final class NodeBuilder {
        private final String name;
        private final Map<String, String> labels = new HashMap<>();
        private Boolean unschedulable;
        private String diskPressure;
        private final List<RuntimeNodeStatus.NetworkInfo> networks = new ArrayList<>();

        NodeBuilder(String name) {
            this.name = name;
        }

        NodeBuilder label(String key, String value) {
            labels.put(key, value);
            return this;
        }

        NodeBuilder network(String name) {
            networks.add(new RuntimeNodeStatus.NetworkInfo(name, List.of("bridge")));
            return this;
        }

        NodeBuilder diskPressure(String status) {
            diskPressure = status;
            return this;
        }

        NodeBuilder unschedulable(boolean value) {
            unschedulable = value;
            return this;
        }

        /** A node whose agent never reported: no status at all. */
        RuntimeNode build() {
            RuntimeNode node = new RuntimeNode();
            node.setMetadata(
                    new ObjectMetaBuilder().withName(name).withLabels(labels).build());
            node.setSpec(new RuntimeNodeSpec(unschedulable));
            return node;
        }

        RuntimeNode ready(String status) {
            RuntimeNode node = build();
            List<Condition> conditions = new ArrayList<>(List.of(condition(ContainerStatus.READY, status)));
            if (diskPressure != null) {
                conditions.add(condition(RuntimeNodeStatus.DISK_PRESSURE, diskPressure));
            }
            node.setStatus(new RuntimeNodeStatus(null, null, networks, null, null, null, null, null, null, conditions));
            return node;
        }

        private static Condition condition(String type, String status) {
            return new ConditionBuilder()
                    .withType(type)
                    .withStatus(status)
                    .withReason("Test")
                    .withMessage("test")
                    .build();
        }
    }
}
