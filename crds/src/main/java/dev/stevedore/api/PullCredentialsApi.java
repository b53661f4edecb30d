package dev.stevedore.api;

import java.util.List;

/**
 * The operator's pull-credentials endpoint, the one way a node agent gets the contents of pull Secrets: the agent
 * names one of its node's Containers and presents a ServiceAccount token bound to its Pod; the operator answers
 * with the {@code .dockerconfigjson} of the Secrets that Container names, and only if the Container is bound to the
 * node the token says the caller runs on. As the API server's Node authorizer does for kubelets, which it cannot do
 * for custom resources.
 */
public final class PullCredentialsApi {
    /** {@code POST} with a {@link Request}; answers a {@link Response}, or an error status with a plain-text reason. */
    public static final String PATH = "/v1/pull-credentials";

    /**
     * The audience of the agent's token: the API server does not take a token of this audience, so a token the
     * endpoint sees cannot be replayed against the API, and an API token is not taken here.
     */
    public static final String AUDIENCE = "stevedore.dev/pull-credentials";

    /** The extra a token bound to a Pod carries: the node the Pod is bound to (Kubernetes 1.30 and later). */
    public static final String NODE_NAME_EXTRA = "authentication.kubernetes.io/node-name";

    /** The extra that says a token is bound to a Pod. */
    public static final String POD_NAME_EXTRA = "authentication.kubernetes.io/pod-name";

    private PullCredentialsApi() {}

    /** The Container whose pull Secrets the agent needs; the uid guards against a Container replaced meanwhile. */
    public record Request(String namespace, String container, String uid) {}

    /** The pull Secrets the Container names that exist, in its order. */
    public record Response(List<PullSecret> secrets) {}

    /** One Secret's name and its {@code .dockerconfigjson}, base64-encoded as in the Secret. */
    public record PullSecret(String name, String dockerConfigJson) {
        @Override
        public String toString() {
            return "PullSecret[" + name + ", ****]";
        }
    }
}
