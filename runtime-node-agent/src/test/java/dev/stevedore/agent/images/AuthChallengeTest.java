package dev.stevedore.agent.images;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.List;
import org.junit.jupiter.api.Test;

class AuthChallengeTest {

    @Test
    void readsABearerChallenge() {
        AuthChallenge challenge = AuthChallenge.parse("Bearer realm=\"https://auth.docker.io/token\","
                + "service=\"registry.docker.io\",scope=\"repository:library/busybox:pull\"");

        assertThat(challenge.isBearer()).isTrue();
        assertThat(challenge.parameter("realm")).isEqualTo("https://auth.docker.io/token");
        assertThat(challenge.parameter("service")).isEqualTo("registry.docker.io");
        assertThat(challenge.parameter("scope")).isEqualTo("repository:library/busybox:pull");
    }

    @Test
    void readsUnquotedValuesEscapesAndSpaces() {
        AuthChallenge challenge = AuthChallenge.parse("bearer realm=http://x/token, service=\"a \\\"b\\\" c\"");

        assertThat(challenge.isBearer()).isTrue();
        assertThat(challenge.parameter("realm")).isEqualTo("http://x/token");
        assertThat(challenge.parameter("service")).isEqualTo("a \"b\" c");
    }

    @Test
    void prefersBearerOverBasic() {
        assertThat(AuthChallenge.choose(List.of("Basic realm=\"r\"", "Bearer realm=\"https://t\"")))
                .get()
                .extracting(AuthChallenge::scheme)
                .isEqualTo("bearer");
        assertThat(AuthChallenge.choose(List.of("Basic realm=\"r\"")))
                .get()
                .extracting(AuthChallenge::isBasic)
                .isEqualTo(true);
        assertThat(AuthChallenge.choose(List.of())).isEmpty();
    }
}
