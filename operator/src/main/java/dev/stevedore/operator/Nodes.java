package dev.stevedore.operator;

import dev.stevedore.api.NodeAgentFinalizer;
import dev.stevedore.api.v1alpha1.Conditions;
import dev.stevedore.api.v1alpha1.ContainerStatus;
import dev.stevedore.api.v1alpha1.RuntimeNode;
import dev.stevedore.api.v1alpha1.RuntimeNodeStatus;
import io.fabric8.kubernetes.api.model.Condition;
import java.util.List;
import java.util.Objects;
import java.util.Optional;

/** What Containers and Tasks need to know of their RuntimeNode. */
final class Nodes {
    private Nodes() {}

    /** The NodeReachable condition of an object bound to {@code nodeName}. */
    static Condition reachable(List<Condition> current, Optional<RuntimeNode> node, String nodeName, Long generation) {
        if (node.isEmpty()) {
            return Conditions.of(
                    current,
                    ContainerReconciler.NODE_REACHABLE,
                    "False",
                    ContainerReconciler.NODE_NOT_FOUND,
                    "RuntimeNode " + nodeName + " does not exist; nothing runs here until it is registered again "
                            + "(delete the Container and create it again to run it on another node)",
                    generation);
        }
        Optional<Condition> ready = readyCondition(node.get());
        if (ready.isPresent() && "True".equals(ready.get().getStatus())) {
            return Conditions.of(
                    current,
                    ContainerReconciler.NODE_REACHABLE,
                    "True",
                    "NodeReady",
                    "node " + nodeName + " is ready",
                    generation);
        }
        String why =
                ready.map(Condition::getMessage).filter(m -> !m.isBlank()).orElse("its agent has not reported yet");
        // Not ready is False; a node whose agent went silent (or never spoke) is Unknown: it may still run tasks.
        String status = ready.map(Condition::getStatus).filter("False"::equals).orElse("Unknown");
        return Conditions.of(
                current,
                ContainerReconciler.NODE_REACHABLE,
                status,
                "NodeNotReady",
                "node " + nodeName + " is not ready: " + why,
                generation);
    }

    /**
     * Readiness, disk pressure, labels or cordoning changed: heartbeats alone do not concern Containers and Tasks.
     */
    static boolean schedulingRelevantChange(RuntimeNode now, RuntimeNode before) {
        return !Objects.equals(
                        readyCondition(now).map(Condition::getStatus),
                        readyCondition(before).map(Condition::getStatus))
                || !Objects.equals(diskPressure(now), diskPressure(before))
                || !Objects.equals(
                        now.getMetadata().getLabels(), before.getMetadata().getLabels())
                || !Objects.equals(now.getSpec(), before.getSpec());
    }

    /** The Event message when the node agent's finalizer is removed from an object of a gone node. */
    static String releasedBecause(NodeLoss.Standing gone) {
        return gone.describe() + ": removed the node agent's finalizer " + NodeAgentFinalizer.NAME
                + ", as no agent will; what the node holds for this object was not cleaned up";
    }

    private static Optional<String> diskPressure(RuntimeNode node) {
        return node.getStatus() == null
                ? Optional.empty()
                : Conditions.find(node.getStatus().conditions(), RuntimeNodeStatus.DISK_PRESSURE)
                        .map(Condition::getStatus);
    }

    static Optional<Condition> readyCondition(RuntimeNode node) {
        return node.getStatus() == null
                ? Optional.empty()
                : Conditions.find(node.getStatus().conditions(), ContainerStatus.READY);
    }
}
