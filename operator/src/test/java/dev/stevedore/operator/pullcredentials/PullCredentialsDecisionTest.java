package dev.stevedore.operator.pullcredentials;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.stevedore.api.PullCredentialsApi;
import dev.stevedore.api.v1alpha1.Container;
import io.fabric8.kubernetes.api.model.authentication.TokenReview;
import io.fabric8.kubernetes.api.model.authentication.TokenReviewBuilder;
import io.fabric8.kubernetes.client.utils.Serialization;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class PullCredentialsDecisionTest {
    private static final String AGENT = "system:serviceaccount:stevedore-system:stevedore-agent";
    private static final Map<String, List<String>> ON_NODE_A = Map.of(
            PullCredentialsApi.POD_NAME_EXTRA, List.of("agent-x"), PullCredentialsApi.NODE_NAME_EXTRA, List.of("a"));

    @Test
    void theNodeOfAnAgentsPodBoundTokenOfTheAudience() throws Refusal {
        assertThat(PullCredentialsDecision.callerNode(
                        review(true, PullCredentialsApi.AUDIENCE, AGENT, ON_NODE_A), AGENT))
                .isEqualTo("a");
    }

    @Test
    void tokensThatAreNotAnAgentsOnANodeAreRefused() {
        assertRefused(review(false, PullCredentialsApi.AUDIENCE, AGENT, ON_NODE_A), 401, "not valid for the audience");
        assertRefused(review(true, "https://kubernetes.default.svc", AGENT, ON_NODE_A), 401, "audience");
        assertRefused(
                review(true, PullCredentialsApi.AUDIENCE, "system:serviceaccount:stevedore-system:other", ON_NODE_A),
                403,
                "is not the node agent's ServiceAccount");
        assertRefused(review(true, PullCredentialsApi.AUDIENCE, AGENT, Map.of()), 403, "not bound to a Pod on a node");
        assertRefused(
                review(
                        true,
                        PullCredentialsApi.AUDIENCE,
                        AGENT,
                        Map.of(PullCredentialsApi.POD_NAME_EXTRA, List.of("agent-x"))),
                403,
                "not bound to a Pod on a node");
    }

    @Test
    void onlyAContainerBoundToTheCallersNodeGivesItsPullSecretNames() throws Refusal {
        Container onA = container("a");
        assertThat(PullCredentialsDecision.secretNames("a", request("uid-1"), onA))
                .containsExactly("regcred", "other");
        assertRefusedFor("b", request("uid-1"), onA, 403, "is not bound to node b");
        assertRefusedFor("a", request("uid-1"), container(null), 403, "is not bound to node a");
        assertRefusedFor("a", request("uid-2"), onA, 409, "replaced");
        assertRefusedFor("a", request("uid-1"), null, 404, "does not exist");
    }

    private static void assertRefused(TokenReview review, int status, String reason) {
        assertThatThrownBy(() -> PullCredentialsDecision.callerNode(review, AGENT))
                .isInstanceOfSatisfying(
                        Refusal.class, r -> assertThat(r.status()).isEqualTo(status))
                .hasMessageContaining(reason);
    }

    private static void assertRefusedFor(
            String node, PullCredentialsApi.Request request, Container container, int status, String reason) {
        assertThatThrownBy(() -> PullCredentialsDecision.secretNames(node, request, container))
                .isInstanceOfSatisfying(
                        Refusal.class, r -> assertThat(r.status()).isEqualTo(status))
                .hasMessageContaining(reason);
    }

    private static TokenReview review(
            boolean authenticated, String audience, String user, Map<String, List<String>> extra) {
        return new TokenReviewBuilder()
                .withNewStatus()
                .withAuthenticated(authenticated)
                .withAudiences(audience)
                .withNewUser()
                .withUsername(user)
                .withExtra(extra)
                .endUser()
                .endStatus()
                .build();
    }

    private static PullCredentialsApi.Request request(String uid) {
        return new PullCredentialsApi.Request("team", "app", uid);
    }

    private static Container container(String node) {
        return Serialization.unmarshal("""
                apiVersion: stevedore.dev/v1alpha1
                kind: Container
                metadata: {name: app, namespace: team, uid: uid-1}
                spec:
                  image: registry.example/app:1
                  imagePullSecrets: [{name: regcred}, {name: other}, {name: regcred}]
                """ + (node == null ? "" : "  nodeName: " + node + "\n"), Container.class);
    }
}
