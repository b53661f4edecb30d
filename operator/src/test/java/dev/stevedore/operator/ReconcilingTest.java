package dev.stevedore.operator;

import static org.assertj.core.api.Assertions.assertThat;

import dev.stevedore.api.v1alpha1.Conditions;
import dev.stevedore.api.v1alpha1.Container;
import dev.stevedore.api.v1alpha1.ContainerStatus;
import dev.stevedore.api.v1alpha1.TaskStatus;
import dev.stevedore.api.v1alpha1.TaskStatus.Phase;
import io.fabric8.kubernetes.api.model.Condition;
import io.fabric8.kubernetes.client.utils.Serialization;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The Reconciling condition (kstatus InProgress while True) for each state a Container or Task can be in. */
class ReconcilingTest {
    private static final Condition SCHEDULED = condition(ContainerStatus.SCHEDULED, "True", "Scheduled", "on n1", 2);

    @Test
    void aContainerWithoutANodeIsReconcilingWithTheSchedulersReason() {
        Condition unschedulable = condition(ContainerStatus.SCHEDULED, "False", "Unschedulable", "no node fits", 1);
        assertThat(summary(Reconciling.ofContainer(container(1, null), unschedulable, null)))
                .isEqualTo("True Unschedulable no node fits");
    }

    @Test
    void aContainerIsReconcilingUntilItsNodeReportsOnThisGeneration() {
        assertThat(summary(Reconciling.ofContainer(container(2, "n1"), SCHEDULED, null)))
                .isEqualTo("True Preparing node n1 is pulling the image and preparing the rootfs and spec");
        List<Condition> readyBefore = List.of(condition(ContainerStatus.READY, "True", "Ready", "", 1));
        assertThat(summary(Reconciling.ofContainer(container(2, "n1"), SCHEDULED, readyBefore)))
                .as("Ready for the generation before says nothing of this one")
                .startsWith("True Preparing");
    }

    @Test
    void aContainerTheNodeRetriesIsReconcilingWithTheNodesReason() {
        List<Condition> retrying = List.of(condition(
                ContainerStatus.READY, "False", "RegistryUnavailable", "connection refused; retrying in 4s", 2));
        assertThat(summary(Reconciling.ofContainer(container(2, "n1"), SCHEDULED, retrying)))
                .isEqualTo("True RegistryUnavailable connection refused; retrying in 4s");
    }

    @Test
    void aReadyContainerIsNotReconciling() {
        List<Condition> ready = List.of(condition(ContainerStatus.READY, "True", "Ready", "", 2));
        assertThat(summary(Reconciling.ofContainer(container(2, "n1"), SCHEDULED, ready)))
                .isEqualTo("False Ready ready on node n1");
    }

    @Test
    void aContainerTheNodeGaveUpOnIsNotReconcilingUntilItChanges() {
        List<Condition> stalled = List.of(
                condition(ContainerStatus.READY, "False", "ManifestUnknown", "no such image", 2),
                condition(Conditions.STALLED, "True", "ManifestUnknown", "no such image", 2));
        assertThat(summary(Reconciling.ofContainer(container(2, "n1"), SCHEDULED, stalled)))
                .isEqualTo("False Stalled node n1 gave up: ManifestUnknown");
        assertThat(summary(Reconciling.ofContainer(container(3, "n1"), SCHEDULED, stalled)))
                .as("a changed Container is tried again")
                .startsWith("True Preparing");
    }

    @Test
    void aTaskIsReconcilingWhilePendingStartingOrStopping() {
        assertThat(summary(Reconciling.ofTask(1L, null, null))).isEqualTo("True Pending ");
        assertThat(summary(Reconciling.ofTask(1L, task(Phase.Pending, "ContainerBusy", "wait", 1L), null)))
                .isEqualTo("True ContainerBusy wait");
        assertThat(summary(Reconciling.ofTask(1L, task(Phase.Created, "Created", "by runc", 1L), null)))
                .isEqualTo("True Created by runc");
        assertThat(summary(Reconciling.ofTask(2L, task(Phase.Stopped, "Stopping", "sent SIGTERM", 2L), null)))
                .isEqualTo("True Stopping sent SIGTERM");
    }

    @Test
    void aRunningPausedOrFinishedTaskIsNotReconciling() {
        assertThat(summary(Reconciling.ofTask(1L, task(Phase.Running, "Started", "pid 7", 1L), null)))
                .isEqualTo("False Started pid 7");
        assertThat(summary(Reconciling.ofTask(2L, task(Phase.Paused, "Paused", "frozen", 2L), null)))
                .isEqualTo("False Paused frozen");
        assertThat(summary(Reconciling.ofTask(1L, task(Phase.Deleted, "Error", "exited with code 3", 1L), null)))
                .isEqualTo("False Error exited with code 3");
    }

    @Test
    void aRunningTaskIsReconcilingUntilItsNodeActsOnANewDesiredState() {
        assertThat(summary(Reconciling.ofTask(2L, task(Phase.Running, "Started", "pid 7", 1L), null)))
                .isEqualTo("True Updating node n1 has not acted on generation 2 yet");
    }

    @Test
    void aTaskOfALostNodeIsReconcilingWithTheNodeLostReasonWhateverItsPhase() {
        Condition lost = condition("NodeLost", "True", "NodeLost", "node n1 has not been ready since then", 1);
        assertThat(summary(Reconciling.ofLostTask(lost, null, 1L)))
                .isEqualTo("True NodeLost node n1 has not been ready since then");
    }

    @Test
    void theTransitionTimeMovesOnlyWhenTheStatusDoes() {
        Condition before = condition(Conditions.RECONCILING, "True", "Pending", "", 1);
        before.setLastTransitionTime("2026-12-01T09:00:00Z");
        assertThat(Reconciling.ofTask(1L, task(Phase.Created, "Created", "", 1L), List.of(before))
                        .getLastTransitionTime())
                .isEqualTo("2026-12-01T09:00:00Z");
        assertThat(Reconciling.ofTask(1L, task(Phase.Running, "Started", "", 1L), List.of(before))
                        .getLastTransitionTime())
                .isNotEqualTo("2026-12-01T09:00:00Z");
    }

    private static String summary(Condition c) {
        assertThat(c.getType()).isEqualTo(Conditions.RECONCILING);
        return c.getStatus() + " " + c.getReason() + " " + c.getMessage();
    }

    private static Container container(long generation, String node) {
        return Serialization.unmarshal(
                """
                apiVersion: stevedore.dev/v1alpha1
                kind: Container
                metadata: {name: box, namespace: ns, generation: %d}
                spec: {image: img%s}
                """.formatted(generation, node == null ? "" : ", nodeName: " + node), Container.class);
    }

    private static TaskStatus task(Phase phase, String reason, String message, Long observedGeneration) {
        return new TaskStatus(phase, "n1", null, null, null, null, reason, message, observedGeneration, null);
    }

    private static Condition condition(String type, String status, String reason, String message, long generation) {
        return Conditions.of(null, type, status, reason, message, generation);
    }
}
