package dev.stevedore.agent.images;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.stevedore.agent.content.FileContentStore;
import dev.stevedore.agent.testing.LocalRegistry;
import dev.stevedore.agent.testing.TestImages;
import dev.stevedore.agent.testing.TestImages.Format;
import dev.stevedore.agent.testing.TokenServer;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Pulls from registries that want credentials: htpasswd Basic auth, and the bearer-token flow. */
class AuthenticatedPullIT {
    private static final String USER = "alice";
    private static final String PASSWORD = "s3cret: with spaces";
    private static final RegistryAuth GOOD = new RegistryAuth(USER, PASSWORD);
    private static final RegistryAuth BAD = new RegistryAuth(USER, "wrong");

    @TempDir
    static Path buildDir;

    private static TestImages images;
    private static LocalRegistry basic;
    private static TokenServer tokens;
    private static LocalRegistry bearer;

    @TempDir
    Path root;

    private RegistryImageService service;

    @BeforeAll
    static void startRegistries() {
        images = TestImages.build(buildDir);
        basic = LocalRegistry.withBasicAuth(USER, PASSWORD);
        images.push(TestImages.BASE, basic.host() + "/private/busybox:1", Format.OCI, USER + ":" + PASSWORD);
        tokens = new TokenServer(USER, PASSWORD);
        bearer = LocalRegistry.withTokenAuth(tokens);
        images.push(TestImages.MULTI, bearer.host() + "/private/multi:1", Format.OCI, USER + ":" + PASSWORD);
    }

    @AfterAll
    static void stopRegistries() {
        for (AutoCloseable closeable : new AutoCloseable[] {basic, bearer, tokens}) {
            try {
                if (closeable != null) {
                    closeable.close();
                }
            } catch (Exception e) {
                throw new IllegalStateException(e);
            }
        }
    }

    @BeforeEach
    void newNode() throws IOException {
        service = new RegistryImageService(
                new FileContentStore(root), root.resolve("images"), Platform.current(), Set.of());
    }

    @Test
    void basicAuthWithCredentialsPulls() throws Exception {
        Image image = service.pull(basic.host() + "/private/busybox:1", Map.of(basic.host(), GOOD));

        assertThat(image.digest()).hasToString(images.digest(TestImages.BASE));
        assertThat(image.layers()).hasSize(1);
    }

    @Test
    void basicAuthWithoutOrWithWrongCredentialsIsUnauthorized() {
        String reference = basic.host() + "/private/busybox:1";

        assertUnauthorized(reference, Map.of());
        assertUnauthorized(reference, Map.of(basic.host(), BAD));
        assertUnauthorized(reference, Map.of("some-other-registry:5000", GOOD));
        assertThat(service.list()).isEmpty();
    }

    @Test
    void bearerTokenFlowWithCredentialsPulls() throws Exception {
        int issuedBefore = tokens.issued();

        Image image = service.pull(bearer.host() + "/private/multi:1", Map.of(bearer.host(), GOOD));

        assertThat(image.digest()).hasToString(images.digest(TestImages.MULTI));
        assertThat(image.manifest()).hasToString(images.digest(TestImages.BASE));
        assertThat(tokens.issued()).isGreaterThan(issuedBefore);
    }

    @Test
    void bearerTokenFlowWithoutOrWithWrongCredentialsIsUnauthorized() {
        String reference = bearer.host() + "/private/multi:1";

        assertUnauthorized(reference, Map.of());
        assertUnauthorized(reference, Map.of(bearer.host(), BAD));
        assertThat(service.list()).isEmpty();
    }

    private void assertUnauthorized(String reference, Map<String, RegistryAuth> auths) {
        assertThatThrownBy(() -> service.pull(reference, auths)).isInstanceOfSatisfying(ImageException.class, e -> {
            assertThat(e.reason()).isEqualTo("Unauthorized");
            assertThat(e.transientFailure()).isFalse();
        });
    }
}
