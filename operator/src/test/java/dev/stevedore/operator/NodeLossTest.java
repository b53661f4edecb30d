package dev.stevedore.operator;

import static org.assertj.core.api.Assertions.assertThat;

import dev.stevedore.api.v1alpha1.RuntimeNode;
import dev.stevedore.api.v1alpha1.RuntimeNodeStatus;
import io.fabric8.kubernetes.api.model.Condition;
import io.fabric8.kubernetes.api.model.ConditionBuilder;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;

/** A node's standing for what is bound to it, by how long it has not been Ready, and the NodeLost it gives a Task. */
class NodeLossTest {
    private static final NodeLoss LOSS = new NodeLoss(Duration.ofSeconds(40), Duration.ofMinutes(5));
    private static final Instant SINCE = Instant.parse("2026-01-01T10:00:00Z");
    private static final String SILENT = "the node agent stopped posting heartbeats; last one at 2026-01-01T09:59:20Z";

    @Test
    void aReadyNodeOrOneThatHasNotReportedYetIsNotJudged() {
        assertThat(LOSS.standing(Optional.of(node("True")), "n1", SINCE.plus(Duration.ofDays(1))))
                .isEqualTo(new NodeLoss.Standing(NodeLoss.State.READY, "n1", null, null, Optional.empty()));
        assertThat(LOSS.standing(Optional.of(node(null)), "n1", SINCE.plus(Duration.ofDays(1)))
                        .state())
                .isEqualTo(NodeLoss.State.READY);
    }

    @Test
    void aNodeNotReadyIsLostAfterTheLostGraceAndGoneAfterTheGoneGrace() {
        RuntimeNode unknown = node("Unknown");
        NodeLoss.Standing early = LOSS.standing(Optional.of(unknown), "n1", SINCE.plusSeconds(10));
        assertThat(early.state()).isEqualTo(NodeLoss.State.NOT_READY);
        assertThat(early.changesIn()).contains(Duration.ofSeconds(30));

        NodeLoss.Standing lost = LOSS.standing(Optional.of(unknown), "n1", SINCE.plusSeconds(40));
        assertThat(lost.state()).isEqualTo(NodeLoss.State.LOST);
        assertThat(lost.changesIn()).contains(Duration.ofSeconds(260));
        assertThat(lost.describe()).isEqualTo("node n1 has not been ready since " + SINCE + ": " + SILENT);

        NodeLoss.Standing gone = LOSS.standing(Optional.of(unknown), "n1", SINCE.plus(Duration.ofMinutes(5)));
        assertThat(gone.state()).isEqualTo(NodeLoss.State.GONE);
        assertThat(gone.changesIn()).isEmpty();
        assertThat(gone.since()).isEqualTo(SINCE);
    }

    @Test
    void aNodeTheAgentSaysIsNotReadyIsJudgedTheSameWay() {
        NodeLoss.Standing lost = LOSS.standing(Optional.of(node("False")), "n1", SINCE.plusSeconds(41));
        assertThat(lost.state()).isEqualTo(NodeLoss.State.LOST);
    }

    @Test
    void aDeletedNodeIsGoneAtOnce() {
        NodeLoss.Standing gone = LOSS.standing(Optional.empty(), "n1", SINCE);
        assertThat(gone.state()).isEqualTo(NodeLoss.State.GONE);
        assertThat(gone.describe()).isEqualTo("RuntimeNode n1 was deleted");
        assertThat(Nodes.releasedBecause(gone))
                .isEqualTo("RuntimeNode n1 was deleted: removed the node agent's finalizer stevedore.dev/node-agent, "
                        + "as no agent will; what the node holds for this object was not cleaned up");
    }

    @Test
    void aTaskIsNodeLostOnlyOnceItsNodeIsLostOrGone() {
        assertThat(TaskReconciler.nodeLost(null, LOSS.standing(Optional.of(node("True")), "n1", SINCE), 1L))
                .isNull();
        assertThat(TaskReconciler.nodeLost(
                        null, LOSS.standing(Optional.of(node("Unknown")), "n1", SINCE.plusSeconds(39)), 1L))
                .isNull();
        Condition lost = TaskReconciler.nodeLost(
                null, LOSS.standing(Optional.of(node("Unknown")), "n1", SINCE.plusSeconds(40)), 3L);
        assertThat(List.of(lost.getType(), lost.getStatus(), lost.getReason()))
                .containsExactly("NodeLost", "True", "NodeLost");
        assertThat(lost.getMessage())
                .isEqualTo("node n1 has not been ready since " + SINCE + ": " + SILENT
                        + "; the task's state is unknown until its node agent reports again");
        assertThat(lost.getObservedGeneration()).isEqualTo(3L);
        assertThat(TaskReconciler.nodeLost(null, LOSS.standing(Optional.empty(), "n1", SINCE), 1L)
                        .getMessage())
                .startsWith("RuntimeNode n1 was deleted");
    }

    @Test
    void aTaskStillLostKeepsTheTimeItWasFirstMarked() {
        NodeLoss.Standing lost = LOSS.standing(Optional.of(node("Unknown")), "n1", SINCE.plusSeconds(60));
        Condition first = TaskReconciler.nodeLost(null, lost, 1L);
        first.setLastTransitionTime("2026-01-01T10:00:40Z");
        assertThat(TaskReconciler.nodeLost(List.of(first), lost, 1L).getLastTransitionTime())
                .isEqualTo("2026-01-01T10:00:40Z");
    }

    /** @param ready its Ready condition's status, none when null; not True since {@link #SINCE} */
    private static RuntimeNode node(String ready) {
        RuntimeNode node = new RuntimeNode();
        node.setMetadata(new ObjectMetaBuilder().withName("n1").build());
        List<Condition> conditions = ready == null
                ? null
                : List.of(new ConditionBuilder()
                        .withType("Ready")
                        .withStatus(ready)
                        .withReason("True".equals(ready) ? "AgentReady" : "NodeStatusUnknown")
                        .withMessage("True".equals(ready) ? "the node agent is running" : SILENT)
                        .withLastTransitionTime(SINCE.toString())
                        .build());
        node.setStatus(new RuntimeNodeStatus(null, null, null, null, null, null, null, null, null, conditions));
        return node;
    }
}
