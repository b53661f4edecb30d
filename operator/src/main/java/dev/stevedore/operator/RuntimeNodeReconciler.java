package dev.stevedore.operator;

import dev.stevedore.api.EventRecorder;
import dev.stevedore.api.FieldManager;
import dev.stevedore.api.v1alpha1.Conditions;
import dev.stevedore.api.v1alpha1.ContainerStatus;
import dev.stevedore.api.v1alpha1.RuntimeNode;
import dev.stevedore.api.v1alpha1.RuntimeNodeStatus;
import io.fabric8.kubernetes.api.model.Condition;
import io.javaoperatorsdk.operator.api.config.informer.Informer;
import io.javaoperatorsdk.operator.api.reconciler.Context;
import io.javaoperatorsdk.operator.api.reconciler.ControllerConfiguration;
import io.javaoperatorsdk.operator.api.reconciler.Reconciler;
import io.javaoperatorsdk.operator.api.reconciler.UpdateControl;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Optional;

/**
 * Node lifecycle, as kube-controller-manager's does for Nodes: a RuntimeNode whose agent stops heartbeating for
 * longer than the grace period gets Ready=Unknown. The agent sets Ready=True again when it comes back.
 */
@ControllerConfiguration(
        name = "runtimenode",
        generationAwareEventProcessing = false,
        informer = @Informer(itemStore = LeanItemStore.class))
public class RuntimeNodeReconciler implements Reconciler<RuntimeNode> {
    private final EventRecorder events;
    private final Duration gracePeriod;

    public RuntimeNodeReconciler(EventRecorder events, Duration gracePeriod) {
        this.events = events;
        this.gracePeriod = gracePeriod;
    }

    @Override
    public UpdateControl<RuntimeNode> reconcile(RuntimeNode node, Context<RuntimeNode> context) {
        RuntimeNodeStatus status = node.getStatus();
        Instant lastSeen = Optional.ofNullable(status)
                .map(RuntimeNodeStatus::lastHeartbeatTime)
                .map(Instant::parse)
                .orElse(Instant.parse(node.getMetadata().getCreationTimestamp()));
        Duration silence = Duration.between(lastSeen, Instant.now());
        if (silence.compareTo(gracePeriod) < 0) {
            return UpdateControl.<RuntimeNode>noUpdate()
                    .rescheduleAfter(gracePeriod.minus(silence).plusMillis(100));
        }
        List<Condition> current = status == null ? null : status.conditions();
        Condition unknown = Conditions.of(
                current,
                ContainerStatus.READY,
                "Unknown",
                "NodeStatusUnknown",
                "the node agent stopped posting heartbeats; last one at " + lastSeen,
                node.getMetadata().getGeneration());
        if (!"Unknown"
                .equals(Conditions.find(current, ContainerStatus.READY)
                        .map(Condition::getStatus)
                        .orElse(null))) {
            RuntimeNode apply = new RuntimeNode();
            apply.setMetadata(FieldManager.identity(node));
            apply.setStatus(
                    new RuntimeNodeStatus(null, null, null, null, null, null, null, null, null, List.of(unknown)));
            FieldManager.OPERATOR.applyStatus(context.getClient(), apply);
            events.record(node, EventRecorder.WARNING, "NodeNotReady", unknown.getMessage());
        }
        return UpdateControl.noUpdate();
    }
}
