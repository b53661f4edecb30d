package dev.stevedore.operator;

import dev.stevedore.api.v1alpha1.Conditions;
import dev.stevedore.api.v1alpha1.Container;
import dev.stevedore.api.v1alpha1.ContainerStatus;
import dev.stevedore.api.v1alpha1.TaskStatus;
import io.fabric8.kubernetes.api.model.Condition;
import java.util.List;
import java.util.Objects;
import java.util.Optional;

/**
 * The Reconciling condition of Containers and Tasks, as a pure function of the whole status: True (kstatus
 * InProgress) while the object is on its way to what its spec asks, False once it got there or the node agent gave
 * up on it (its Stalled condition, kstatus Failed). The operator owns it and the agent owns Stalled, so the two
 * field managers never write the same condition; the operator reconciles on every status change and so follows
 * the agent's progress. Until it does, a stale True keeps the object InProgress: late, never wrongly done.
 */
final class Reconciling {
    private Reconciling() {}

    /** @param scheduled the Scheduled condition the operator is writing with this one */
    static Condition ofContainer(Container container, Condition scheduled, List<Condition> current) {
        Long generation = container.getMetadata().getGeneration();
        String node = container.getSpec().nodeName();
        if (!"True".equals(scheduled.getStatus()) || node == null) {
            return inProgress(current, scheduled.getReason(), scheduled.getMessage(), generation);
        }
        Optional<Condition> stalled =
                ofGeneration(current, Conditions.STALLED, generation).filter(c -> "True".equals(c.getStatus()));
        if (stalled.isPresent()) {
            return done(
                    current,
                    "Stalled",
                    "node " + node + " gave up: " + stalled.get().getReason(),
                    generation);
        }
        Optional<Condition> ready = ofGeneration(current, ContainerStatus.READY, generation);
        if (ready.isEmpty()) {
            return inProgress(
                    current,
                    "Preparing",
                    "node " + node + " is pulling the image and preparing the rootfs and spec",
                    generation);
        }
        if ("True".equals(ready.get().getStatus())) {
            return done(current, "Ready", "ready on node " + node, generation);
        }
        return inProgress(current, ready.get().getReason(), ready.get().getMessage(), generation);
    }

    /** @param status the status the Task has, or is about to have with this condition */
    static Condition ofTask(Long generation, TaskStatus status, List<Condition> current) {
        TaskStatus.Phase phase = status == null || status.phase() == null ? TaskStatus.Phase.Pending : status.phase();
        String reason = status == null || status.reason() == null ? phase.name() : status.reason();
        String message = status == null || status.message() == null ? "" : status.message();
        return switch (phase) {
            case Pending, Created, Stopped -> inProgress(current, reason, message, generation);
            case Deleted -> done(current, reason, message, generation);
            case Running, Paused ->
                Objects.equals(status.observedGeneration(), generation)
                        ? done(current, reason, message, generation)
                        : inProgress(
                                current,
                                "Updating",
                                "node " + status.nodeName() + " has not acted on generation " + generation + " yet",
                                generation);
        };
    }

    /**
     * A live Task of a lost node is InProgress whatever its last phase, as a Pod of an unreachable Node is not ready:
     * where it is going is unknown until its node agent reports again.
     */
    static Condition ofLostTask(Condition nodeLost, List<Condition> current, Long generation) {
        return inProgress(current, nodeLost.getReason(), nodeLost.getMessage(), generation);
    }

    private static Optional<Condition> ofGeneration(List<Condition> current, String type, Long generation) {
        return Conditions.find(current, type).filter(c -> Objects.equals(c.getObservedGeneration(), generation));
    }

    private static Condition inProgress(List<Condition> current, String reason, String message, Long generation) {
        return Conditions.of(current, Conditions.RECONCILING, "True", reason, message, generation);
    }

    private static Condition done(List<Condition> current, String reason, String message, Long generation) {
        return Conditions.of(current, Conditions.RECONCILING, "False", reason, message, generation);
    }
}
