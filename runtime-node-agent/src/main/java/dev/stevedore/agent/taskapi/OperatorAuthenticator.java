package dev.stevedore.agent.taskapi;

import dev.stevedore.api.AgentApi;
import io.fabric8.kubernetes.api.model.authentication.TokenReview;
import io.fabric8.kubernetes.api.model.authentication.TokenReviewBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Who calls the agent's endpoint: the bearer token reviewed by the API server (TokenReview, audience
 * {@link AgentApi#AUDIENCE}), accepted only for the operator's ServiceAccount. Reviews are kept for a minute by the
 * token's hash, as kubelet's webhook authenticator caches them, so a log follow or a {@code top} loop does not
 * cost the API server a review per request.
 */
final class OperatorAuthenticator {
    private static final Duration CACHED = Duration.ofMinutes(1);
    private static final int MAX_CACHED = 256;

    /** What a request's credentials come to. */
    enum Verdict {
        OPERATOR,
        /** No token, or one the API server does not accept for this audience: 401. */
        UNAUTHENTICATED,
        /** A valid token of someone else: 403. */
        FORBIDDEN
    }

    private record Review(Verdict verdict, Instant until) {}

    private final KubernetesClient client;
    private final String operatorUser;
    private final Clock clock;
    private final Map<String, Review> cache = new LinkedHashMap<>(16, 0.75f, true) {
        @Override
        protected boolean removeEldestEntry(Map.Entry<String, Review> eldest) {
            return size() > MAX_CACHED;
        }
    };

    /** @param operatorServiceAccount {@code namespace/name} */
    OperatorAuthenticator(KubernetesClient client, String operatorServiceAccount, Clock clock) {
        String[] parts = operatorServiceAccount.split("/", 2);
        if (parts.length != 2 || parts[0].isEmpty() || parts[1].isEmpty()) {
            throw new IllegalArgumentException(
                    "the operator's ServiceAccount must be namespace/name: " + operatorServiceAccount);
        }
        this.client = client;
        this.operatorUser = "system:serviceaccount:" + parts[0] + ":" + parts[1];
        this.clock = clock;
    }

    /**
     * The verdict on an {@code Authorization} header. Throws {@link KubernetesClientException} when the API server
     * cannot be asked (the caller answers 503).
     */
    Verdict authenticate(String authorization) {
        if (authorization == null || !authorization.startsWith("Bearer ") || authorization.length() <= 7) {
            return Verdict.UNAUTHENTICATED;
        }
        String token = authorization.substring(7).strip();
        String key = sha256(token);
        Instant now = clock.instant();
        synchronized (cache) {
            Review cached = cache.get(key);
            if (cached != null && now.isBefore(cached.until())) {
                return cached.verdict();
            }
        }
        Verdict verdict = review(token);
        synchronized (cache) {
            cache.put(key, new Review(verdict, now.plus(CACHED)));
        }
        return verdict;
    }

    private Verdict review(String token) {
        TokenReview review = client.authentication()
                .v1()
                .tokenReviews()
                .create(new TokenReviewBuilder()
                        .withNewSpec()
                        .withToken(token)
                        .withAudiences(AgentApi.AUDIENCE)
                        .endSpec()
                        .build());
        if (review.getStatus() == null
                || !Boolean.TRUE.equals(review.getStatus().getAuthenticated())) {
            return Verdict.UNAUTHENTICATED;
        }
        return operatorUser.equals(review.getStatus().getUser().getUsername()) ? Verdict.OPERATOR : Verdict.FORBIDDEN;
    }

    private static String sha256(String token) {
        try {
            return HexFormat.of()
                    .formatHex(MessageDigest.getInstance("SHA-256").digest(token.getBytes(StandardCharsets.UTF_8)));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
