package dev.stevedore.agent.containers;

import dev.stevedore.agent.images.RegistryAuth;
import dev.stevedore.api.v1alpha1.Container;
import io.fabric8.kubernetes.api.model.LocalObjectReference;
import java.util.List;
import java.util.Map;

/** Where a Container's pull credentials come from: the agent itself may not read Secrets. */
public interface PullCredentials {
    String CONDITION = "ImageReady";
    String UNAVAILABLE = "PullCredentialsUnavailable";

    /**
     * The registry credentials of the Secrets the Container's imagePullSecrets name, by registry host; empty without
     * imagePullSecrets. A failure is retried, as a pull error is: what it names is fixed outside the Container.
     */
    Map<String, RegistryAuth> of(Container container) throws RootfsPreparer.PrepareException;

    /** An agent started without a pull-credentials endpoint: Containers that name pull Secrets wait for one. */
    PullCredentials NONE = container -> {
        List<LocalObjectReference> refs = container.getSpec().imagePullSecrets();
        if (refs == null || refs.isEmpty()) {
            return Map.of();
        }
        throw new RootfsPreparer.PrepareException(
                CONDITION,
                UNAVAILABLE,
                "this node's agent has no pull-credentials endpoint (--pull-credentials-url), so it cannot use "
                        + "imagePullSecrets",
                true,
                null);
    };
}
