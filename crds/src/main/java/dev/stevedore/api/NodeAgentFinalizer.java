package dev.stevedore.api;

import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.fabric8.kubernetes.client.dsl.Resource;
import io.fabric8.kubernetes.client.dsl.base.PatchContext;
import io.fabric8.kubernetes.client.dsl.base.PatchType;
import io.fabric8.kubernetes.client.utils.Serialization;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The node agent's finalizer on its node's Containers and Tasks: their deletion waits until the agent has stopped
 * and released what it made for them. The agent adds and removes it; the operator removes it where no agent ever
 * will, on the objects of a node that is gone, as pod garbage collection does for the Pods of a deleted Node.
 *
 * <p>Both writes are JSON patches that test the object's UID and the finalizer list they change (a missing list
 * tests as null), so neither overwrites another writer's finalizer nor needs the object's resourceVersion, which
 * status writes keep changing.
 */
public final class NodeAgentFinalizer {
    public static final String NAME = "stevedore.dev/node-agent";
    private static final int ATTEMPTS = 5;

    private NodeAgentFinalizer() {}

    /** Adds it unless present or the object is going (the API server would refuse); a vanished object is no error. */
    public static <R extends HasMetadata> void add(KubernetesClient client, R resource) {
        patch(client, resource, true);
    }

    /** Removes it if present; a vanished object is no error. */
    public static <R extends HasMetadata> void remove(KubernetesClient client, R resource) {
        patch(client, resource, false);
    }

    private static <R extends HasMetadata> void patch(KubernetesClient client, R resource, boolean add) {
        Resource<R> handle = client.resource(resource);
        R current = resource;
        for (int attempt = 1; ; attempt++) {
            boolean done = current == null
                    || (add
                            ? current.hasFinalizer(NAME) || current.isMarkedForDeletion()
                            : !current.hasFinalizer(NAME));
            if (done) {
                return;
            }
            try {
                handle.patch(PatchContext.of(PatchType.JSON), Serialization.asJson(operations(current, add)));
                return;
            } catch (KubernetesClientException e) {
                if (e.getCode() == 404) {
                    return;
                }
                // 422: a test failed (the list or the UID changed) or the object is being deleted: read it again.
                if (e.getCode() != 422 || attempt == ATTEMPTS) {
                    throw e;
                }
            }
            current = handle.get();
            if (current != null
                    && !current.getMetadata()
                            .getUid()
                            .equals(resource.getMetadata().getUid())) {
                return;
            }
        }
    }

    private static List<Map<String, Object>> operations(HasMetadata resource, boolean add) {
        List<String> finalizers = resource.getMetadata().getFinalizers();
        List<Map<String, Object>> ops = new ArrayList<>();
        ops.add(Map.of(
                "op",
                "test",
                "path",
                "/metadata/uid",
                "value",
                resource.getMetadata().getUid()));
        Map<String, Object> testList = new HashMap<>(); // Map.of takes no null
        testList.put("op", "test");
        testList.put("path", "/metadata/finalizers");
        testList.put("value", finalizers == null || finalizers.isEmpty() ? null : finalizers);
        ops.add(testList);
        List<String> changed = new ArrayList<>(finalizers == null ? List.of() : finalizers);
        if (add) {
            changed.add(NAME);
        } else {
            changed.remove(NAME);
        }
        ops.add(Map.of("op", "add", "path", "/metadata/finalizers", "value", changed));
        return ops;
    }
}
