package dev.stevedore.operator;

import dev.stevedore.api.v1alpha1.Conditions;
import dev.stevedore.api.v1alpha1.Container;
import dev.stevedore.api.v1alpha1.ContainerSpec;
import dev.stevedore.api.v1alpha1.ContainerStatus;
import dev.stevedore.api.v1alpha1.RuntimeNode;
import dev.stevedore.api.v1alpha1.RuntimeNodeStatus;
import java.util.Collection;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.ToIntFunction;

/**
 * Picks a node for a Container, as kube-scheduler does for a Pod: filter (Ready, schedulable, without disk pressure
 * — kubelet's node.kubernetes.io/disk-pressure taint keeps new Pods off a node too —, matching the nodeSelector,
 * offering the CNI network the Container asks for), then score (fewest Containers), ties broken by name so the
 * choice is stable.
 */
final class Scheduler {
    static final String UNSCHEDULABLE = "Unschedulable";

    record Decision(Optional<String> nodeName, String message) {}

    private Scheduler() {}

    static Decision schedule(Container container, Collection<RuntimeNode> nodes, ToIntFunction<String> load) {
        Map<String, String> selector = container.getSpec().nodeSelector() == null
                ? Map.of()
                : container.getSpec().nodeSelector();
        int notReady = 0;
        int cordoned = 0;
        int diskPressure = 0;
        int mismatched = 0;
        int withoutNetwork = 0;
        RuntimeNode best = null;
        int bestLoad = Integer.MAX_VALUE;
        for (RuntimeNode node : nodes.stream()
                .sorted(Comparator.comparing(n -> n.getMetadata().getName()))
                .toList()) {
            if (!ready(node)) {
                notReady++;
            } else if (node.getSpec() != null
                    && Boolean.TRUE.equals(node.getSpec().unschedulable())) {
                cordoned++;
            } else if (Conditions.isTrue(node.getStatus().conditions(), RuntimeNodeStatus.DISK_PRESSURE)) {
                diskPressure++;
            } else if (!matches(node, selector)) {
                mismatched++;
            } else if (!offersNetwork(node, container.getSpec().network())) {
                withoutNetwork++;
            } else {
                int nodeLoad = load.applyAsInt(node.getMetadata().getName());
                if (nodeLoad < bestLoad) {
                    best = node;
                    bestLoad = nodeLoad;
                }
            }
        }
        if (best != null) {
            return new Decision(
                    Optional.of(best.getMetadata().getName()),
                    "scheduled to " + best.getMetadata().getName());
        }
        StringBuilder message =
                new StringBuilder().append("0/").append(nodes.size()).append(" nodes are available");
        appendCount(message, notReady, "not ready");
        appendCount(message, cordoned, "unschedulable");
        appendCount(message, diskPressure, "with disk pressure");
        appendCount(message, mismatched, "not matching the nodeSelector");
        appendCount(message, withoutNetwork, "without the CNI network asked for");
        return new Decision(Optional.empty(), message.append('.').toString());
    }

    static boolean ready(RuntimeNode node) {
        return node.getStatus() != null && Conditions.isTrue(node.getStatus().conditions(), ContainerStatus.READY);
    }

    /**
     * Whether the node offers the network a Container asks for: the one it names, or any for mode cni or ports (which
     * only a CNI network forwards). A Container that asks nothing runs without a network where there is none.
     */
    static boolean offersNetwork(RuntimeNode node, ContainerSpec.Network network) {
        if (network == null
                || network.mode() == ContainerSpec.NetworkMode.host
                || network.mode() == ContainerSpec.NetworkMode.none) {
            return true;
        }
        List<RuntimeNodeStatus.NetworkInfo> offered = node.getStatus().networks() == null
                ? List.of()
                : node.getStatus().networks();
        if (network.name() != null && !network.name().isEmpty()) {
            return offered.stream().anyMatch(n -> network.name().equals(n.name()));
        }
        boolean needsOne = network.mode() == ContainerSpec.NetworkMode.cni
                || (network.ports() != null && !network.ports().isEmpty());
        return !needsOne || !offered.isEmpty();
    }

    private static boolean matches(RuntimeNode node, Map<String, String> selector) {
        Map<String, String> labels = node.getMetadata().getLabels() == null
                ? Map.of()
                : node.getMetadata().getLabels();
        return selector.entrySet().stream().allMatch(e -> e.getValue().equals(labels.get(e.getKey())));
    }

    private static void appendCount(StringBuilder message, int count, String what) {
        if (count > 0) {
            message.append(message.indexOf(":") < 0 ? ": " : ", ")
                    .append(count)
                    .append(count == 1 ? " node " : " nodes ")
                    .append(what);
        }
    }
}
