package dev.stevedore.operator;

import dev.stevedore.api.v1alpha1.RuntimeNode;
import io.fabric8.kubernetes.api.model.Condition;
import java.time.Duration;
import java.time.Instant;
import java.util.Optional;

/**
 * How long a node may be not Ready before what is bound to it is given up, as kube-controller-manager judges a
 * Node: its Pods are marked not ready once the Node is, evicted after a toleration, and pod garbage collection lets
 * the Pods of a deleted Node go. Counted from the moment the RuntimeNode's Ready condition left True (the agent's
 * False, or the operator's Unknown when heartbeats stop).
 *
 * @param lostAfter not Ready this long, the node is lost: its live Tasks get NodeLost=True
 * @param goneAfter not Ready this long, or deleted, the node is gone: the node agent's finalizer on its Tasks and
 *     Containers being deleted is removed, as no agent will
 */
record NodeLoss(Duration lostAfter, Duration goneAfter) {
    static final NodeLoss DEFAULT = new NodeLoss(Duration.ofSeconds(40), Duration.ofMinutes(5));

    enum State {
        READY,
        NOT_READY,
        LOST,
        GONE
    }

    /**
     * A node's state for what is bound to it.
     *
     * @param since when its Ready condition left True; null when the node is Ready or deleted
     * @param changesIn when the state moves on by time alone, if it does
     */
    record Standing(State state, String nodeName, Instant since, String why, Optional<Duration> changesIn) {
        /** What a user reads in a condition or Event: the node, since when, and why. */
        String describe() {
            if (state == State.READY) {
                return "node " + nodeName + " is ready";
            }
            return since == null
                    ? "RuntimeNode " + nodeName + " was deleted"
                    : "node " + nodeName + " has not been ready since " + since + ": " + why;
        }
    }

    Standing standing(Optional<RuntimeNode> node, String nodeName, Instant now) {
        if (node.isEmpty()) {
            return new Standing(State.GONE, nodeName, null, "its RuntimeNode was deleted", Optional.empty());
        }
        Optional<Condition> ready = Nodes.readyCondition(node.get());
        // A node whose agent has not reported yet is not judged: the operator marks it Unknown after the grace period.
        if (ready.isEmpty() || "True".equals(ready.get().getStatus())) {
            return new Standing(State.READY, nodeName, null, null, Optional.empty());
        }
        Instant since = Instant.parse(ready.get().getLastTransitionTime());
        String why = ready.get().getMessage() == null
                        || ready.get().getMessage().isBlank()
                ? "Ready is " + ready.get().getStatus() + " (" + ready.get().getReason() + ")"
                : ready.get().getMessage();
        Duration notReadyFor = Duration.between(since, now);
        if (notReadyFor.compareTo(goneAfter) >= 0) {
            return new Standing(State.GONE, nodeName, since, why, Optional.empty());
        }
        if (notReadyFor.compareTo(lostAfter) >= 0) {
            return new Standing(State.LOST, nodeName, since, why, Optional.of(goneAfter.minus(notReadyFor)));
        }
        return new Standing(State.NOT_READY, nodeName, since, why, Optional.of(lostAfter.minus(notReadyFor)));
    }
}
