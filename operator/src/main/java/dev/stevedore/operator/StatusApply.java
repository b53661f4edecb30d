package dev.stevedore.operator;

import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.ObjectMeta;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.dsl.base.PatchContext;
import io.fabric8.kubernetes.client.dsl.base.PatchType;

/**
 * Server-side apply of the status fields the operator owns. The applied object carries only those fields, so the
 * node agent's fields (its own field manager) are never touched; conditions are a list-map keyed by type.
 */
final class StatusApply {
    static final String FIELD_MANAGER = "stevedore-operator";
    private static final PatchContext APPLY = new PatchContext.Builder().withPatchType(PatchType.SERVER_SIDE_APPLY)
            .withFieldManager(FIELD_MANAGER).withForce(true).build();

    private StatusApply() {
    }

    /** Metadata naming {@code of}, and nothing else: the start of an apply configuration. */
    static ObjectMeta identity(HasMetadata of) {
        return new ObjectMetaBuilder().withName(of.getMetadata().getName())
                .withNamespace(of.getMetadata().getNamespace()).build();
    }

    static <T extends HasMetadata> T status(KubernetesClient client, T applyConfiguration) {
        return client.resource(applyConfiguration).subresource("status").patch(APPLY);
    }
}
