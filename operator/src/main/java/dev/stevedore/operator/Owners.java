package dev.stevedore.operator;

import java.util.ArrayList;
import java.util.List;

import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.OwnerReference;
import io.fabric8.kubernetes.api.model.OwnerReferenceBuilder;

/** The ownerReference that lets Kubernetes' garbage collector delete a Container's Tasks with it. */
final class Owners {
    private Owners() {
    }

    static boolean ownedBy(HasMetadata object, HasMetadata owner) {
        return object.getMetadata().getOwnerReferences().stream()
                .anyMatch(ref -> owner.getMetadata().getUid().equals(ref.getUid()));
    }

    /** The object's ownerReferences with {@code owner} as controller added, if it is not there yet. */
    static List<OwnerReference> withController(HasMetadata object, HasMetadata owner) {
        List<OwnerReference> refs = new ArrayList<>(object.getMetadata().getOwnerReferences());
        if (!ownedBy(object, owner)) {
            refs.add(new OwnerReferenceBuilder().withApiVersion(owner.getApiVersion()).withKind(owner.getKind())
                    .withName(owner.getMetadata().getName()).withUid(owner.getMetadata().getUid())
                    .withController(true).withBlockOwnerDeletion(true).build());
        }
        return refs;
    }
}
