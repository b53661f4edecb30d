package dev.stevedore.operator;

import dev.stevedore.api.FieldManager;
import dev.stevedore.api.v1alpha1.Container;
import dev.stevedore.api.v1alpha1.Task;
import io.fabric8.kubernetes.api.model.OwnerReference;
import io.fabric8.kubernetes.api.model.OwnerReferenceBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.dsl.base.PatchContext;
import io.fabric8.kubernetes.client.dsl.base.PatchType;
import java.util.ArrayList;
import java.util.List;

/**
 * The ownerReference that lets Kubernetes' garbage collector delete a Container's Tasks with it. {@link #adopt} is
 * the one writer of Tasks' ownerReferences; the Container's reconciler calls it, as a ReplicaSet's controller adopts
 * its Pods, so a Task is never written by two reconcilers racing to own it.
 */
final class Owners {
    private Owners() {}

    /** Nobody's: no controller yet, and not on its way out. A Task with another controller goes with that one. */
    static boolean orphan(Task task) {
        return task.getMetadata().getDeletionTimestamp() == null
                && task.getMetadata().getOwnerReferences().stream()
                        .noneMatch(ref -> Boolean.TRUE.equals(ref.getController()));
    }

    /**
     * Makes {@code container} the controller of an orphan {@code task}: an optimistic write (a Task changed since
     * it was read fails with 409, and the reconcile is retried) that keeps the Task's other ownerReferences.
     */
    static Task adopt(KubernetesClient client, Task task, Container container) {
        List<OwnerReference> refs = new ArrayList<>(task.getMetadata().getOwnerReferences());
        refs.add(new OwnerReferenceBuilder()
                .withApiVersion(container.getApiVersion())
                .withKind(container.getKind())
                .withName(container.getMetadata().getName())
                .withUid(container.getMetadata().getUid())
                .withController(true)
                .withBlockOwnerDeletion(true)
                .build());
        Task patch = new Task();
        patch.setMetadata(FieldManager.identity(task));
        patch.getMetadata().setResourceVersion(task.getMetadata().getResourceVersion());
        patch.getMetadata().setOwnerReferences(refs);
        return client.resource(patch).patch(PatchContext.of(PatchType.JSON_MERGE));
    }
}
