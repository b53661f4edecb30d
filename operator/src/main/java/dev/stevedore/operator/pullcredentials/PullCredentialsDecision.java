package dev.stevedore.operator.pullcredentials;

import dev.stevedore.api.PullCredentialsApi;
import dev.stevedore.api.v1alpha1.Container;
import io.fabric8.kubernetes.api.model.LocalObjectReference;
import io.fabric8.kubernetes.api.model.authentication.TokenReview;
import io.fabric8.kubernetes.api.model.authentication.TokenReviewStatus;
import io.fabric8.kubernetes.api.model.authentication.UserInfo;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * Who may have which pull Secrets, decided from what the API server said: pure functions, as the Node authorizer
 * decides for kubelets. The caller is a node agent only with a token of the agent's ServiceAccount, of this
 * endpoint's audience, bound to a Pod on a node; it gets the Secrets of a Container only when that Container is
 * bound to the same node.
 */
final class PullCredentialsDecision {
    private PullCredentialsDecision() {}

    /**
     * The node of the agent that presented the token {@code review} reviewed.
     *
     * @param agentUser the agent's ServiceAccount as a user name, {@code system:serviceaccount:<namespace>:<name>}
     */
    static String callerNode(TokenReview review, String agentUser) throws Refusal {
        TokenReviewStatus status = review.getStatus();
        if (status == null || !Boolean.TRUE.equals(status.getAuthenticated())) {
            String error = status == null || status.getError() == null ? "" : ": " + status.getError();
            throw new Refusal(
                    Refusal.UNAUTHENTICATED,
                    "the token is not valid for the audience " + PullCredentialsApi.AUDIENCE + error);
        }
        if (status.getAudiences() == null || !status.getAudiences().contains(PullCredentialsApi.AUDIENCE)) {
            throw new Refusal(
                    Refusal.UNAUTHENTICATED, "the token is not valid for the audience " + PullCredentialsApi.AUDIENCE);
        }
        UserInfo user = status.getUser();
        String name = user == null ? null : user.getUsername();
        if (!agentUser.equals(name)) {
            throw new Refusal(Refusal.FORBIDDEN, name + " is not the node agent's ServiceAccount " + agentUser);
        }
        String pod = single(user.getExtra(), PullCredentialsApi.POD_NAME_EXTRA);
        String node = single(user.getExtra(), PullCredentialsApi.NODE_NAME_EXTRA);
        if (pod == null || node == null) {
            throw new Refusal(
                    Refusal.FORBIDDEN,
                    "the token of " + name + " is not bound to a Pod on a node: mount a projected "
                            + "serviceAccountToken with the audience " + PullCredentialsApi.AUDIENCE);
        }
        return node;
    }

    /** The names of the pull Secrets {@code callerNode} may have for the Container {@code container} names. */
    static List<String> secretNames(String callerNode, PullCredentialsApi.Request request, Container container)
            throws Refusal {
        String what = "Container " + request.namespace() + "/" + request.container();
        if (container == null) {
            throw new Refusal(Refusal.NOT_FOUND, what + " does not exist");
        }
        if (!Objects.equals(request.uid(), container.getMetadata().getUid())) {
            throw new Refusal(Refusal.CONFLICT, what + " has been replaced: its uid is no longer " + request.uid());
        }
        String bound = container.getSpec() == null ? null : container.getSpec().nodeName();
        if (!callerNode.equals(bound)) {
            throw new Refusal(Refusal.FORBIDDEN, what + " is not bound to node " + callerNode);
        }
        List<LocalObjectReference> refs = container.getSpec().imagePullSecrets();
        return refs == null
                ? List.of()
                : refs.stream()
                        .map(LocalObjectReference::getName)
                        .filter(Objects::nonNull)
                        .distinct()
                        .toList();
    }

    private static String single(Map<String, List<String>> extra, String key) {
        List<String> values = extra == null ? null : extra.get(key);
        return values == null || values.size() != 1 || values.get(0).isEmpty() ? null : values.get(0);
    }
}
