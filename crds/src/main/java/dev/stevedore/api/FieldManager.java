package dev.stevedore.api;

import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.ObjectMeta;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.dsl.base.PatchContext;
import io.fabric8.kubernetes.client.dsl.base.PatchType;

/**
 * A writer of Stevedore objects by server-side apply. The operator and the node agent each own their own fields of
 * the same objects (the operator Scheduled, NodeReachable and Reconciling, the agent Ready, Stalled and the rest;
 * of a Task's phase, the operator Pending and the agent every later one); applying under their
 * own manager name keeps each from removing the other's fields. So the names must never change: the API server
 * remembers them in managedFields. An apply configuration carries only the fields its manager owns.
 */
public final class FieldManager {
    public static final FieldManager OPERATOR = new FieldManager("stevedore-operator");
    public static final FieldManager AGENT = new FieldManager("stevedore-agent");

    private final String name;
    /**
     * Forced: each field has one writer, so a conflict only means someone else (say kubectl) set the field by
     * hand, and its writer takes it back rather than failing every write from then on.
     */
    private final PatchContext apply;

    private FieldManager(String name) {
        this.name = name;
        this.apply = new PatchContext.Builder()
                .withPatchType(PatchType.SERVER_SIDE_APPLY)
                .withFieldManager(name)
                .withForce(true)
                .build();
    }

    /** The name the API server records in managedFields. */
    public String name() {
        return name;
    }

    /** Metadata naming {@code of}, and nothing else: the start of an apply configuration. */
    public static ObjectMeta identity(HasMetadata of) {
        return new ObjectMetaBuilder()
                .withName(of.getMetadata().getName())
                .withNamespace(of.getMetadata().getNamespace())
                .build();
    }

    /** Applies the status in {@code applyConfiguration} to the object it names, through the status subresource. */
    public <T extends HasMetadata> T applyStatus(KubernetesClient client, T applyConfiguration) {
        return client.resource(applyConfiguration).subresource("status").patch(apply);
    }

    /** Applies {@code applyConfiguration} (metadata and spec) to the object it names, creating it if absent. */
    public <T extends HasMetadata> T apply(KubernetesClient client, T applyConfiguration) {
        return client.resource(applyConfiguration).patch(apply);
    }

    @Override
    public String toString() {
        return name;
    }
}
