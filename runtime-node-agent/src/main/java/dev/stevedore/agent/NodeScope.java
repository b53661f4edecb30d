package dev.stevedore.agent;

import dev.stevedore.api.v1alpha1.SelectableFields;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.javaoperatorsdk.operator.Operator;
import io.javaoperatorsdk.operator.api.config.ControllerConfiguration;
import io.javaoperatorsdk.operator.api.config.ResolvedControllerConfiguration;
import io.javaoperatorsdk.operator.api.config.informer.FieldSelector;
import io.javaoperatorsdk.operator.api.config.informer.InformerConfiguration;
import io.javaoperatorsdk.operator.api.reconciler.Reconciler;
import java.util.Map;

/**
 * Registers a controller that sees only this node's objects: its informer lists and watches with the field
 * selector {@code spec.nodeName=<node>}, so the API server filters (the CRDs declare the field selectable) and the
 * agent never holds the rest of the cluster, as kubelet does with Pods.
 */
final class NodeScope {
    private NodeScope() {}

    static <P extends HasMetadata> void register(Operator operator, Reconciler<P> reconciler, String nodeName) {
        ControllerConfiguration<P> base = operator.getConfigurationService().getConfigurationFor(reconciler);
        InformerConfiguration<P> informer = InformerConfiguration.builder(base.getInformerConfig())
                .withFieldSelector(new FieldSelector(new FieldSelector.Field(SelectableFields.NODE_NAME, nodeName)))
                .buildForController();
        operator.register(
                reconciler,
                new ResolvedControllerConfiguration<>(
                        base.getName(),
                        base.isGenerationAware(),
                        base.getAssociatedReconcilerClassName(),
                        base.getRetry(),
                        base.getRateLimiter(),
                        base.maxReconciliationInterval().orElse(null),
                        base.getFinalizerName(),
                        Map.of(),
                        base.fieldManager(),
                        base.getConfigurationService(),
                        informer,
                        base.triggerReconcilerOnAllEvents(),
                        base.getWorkflowSpec().orElse(null)));
    }
}
