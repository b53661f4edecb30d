package dev.stevedore.agent.images;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.stevedore.agent.content.FileContentStore;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import okhttp3.Credentials;
import okhttp3.mockwebserver.MockResponse;
import okhttp3.mockwebserver.RecordedRequest;
import okio.Buffer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Credentials scoped by host, as containerd scopes them: the registry's credentials answer the registry's challenges
 * only (its token realm included, wherever it is); a host a redirect leads to gets neither them nor the registry's
 * token, and its own Basic challenge is refused, its Bearer challenge answered with an anonymous token. The registry
 * is 127.0.0.1, blob storage and token realms are localhost: other hosts of the same machine.
 */
class RegistryCredentialScopeTest {
    private static final RegistryAuth ALICE = new RegistryAuth("alice", "s3cret");
    private static final String ALICE_BASIC = Credentials.basic("alice", "s3cret");

    @TempDir
    Path root;

    private final List<ScriptedRegistry> servers = new ArrayList<>();
    private ScriptedRegistry registry;
    private ScriptedRegistry storage;
    private ScriptedRegistry realm;
    private RegistryImageService service;
    private final ImageBlobs image = ImageBlobs.small();

    @BeforeEach
    void start() throws IOException {
        registry = server("127.0.0.1");
        storage = server("localhost");
        realm = server("localhost");
        service = new RegistryImageService(
                new FileContentStore(root),
                root.resolve("images"),
                Platform.current(),
                Set.of(),
                true,
                Duration.ofSeconds(5),
                RegistryClient.StallLimit.DEFAULT);
        image.serve(registry, "1");
        // The layer lives in blob storage, on another host.
        registry.blob(
                image.layerDigest(),
                () -> new MockResponse()
                        .setResponseCode(307)
                        .setHeader("Location", storage.url(ScriptedRegistry.blobPath(image.layerDigest()))));
    }

    @AfterEach
    void stop() throws IOException {
        for (ScriptedRegistry server : servers) {
            server.close();
        }
    }

    @Test
    void aBasicChallengeFromARedirectTargetIsRefusedAndGetsNoCredentials() throws Exception {
        requireBasic(registry);
        storage.onRequest(
                ScriptedRegistry.blobPath(image.layerDigest()),
                request -> ALICE_BASIC.equals(request.getHeader("Authorization"))
                        ? blob()
                        : new MockResponse()
                                .setResponseCode(401)
                                .setHeader("WWW-Authenticate", "Basic realm=\"storage\""));

        assertThatThrownBy(() -> service.pull(registry.reference("1"), Map.of(registry.host(), ALICE)))
                .isInstanceOfSatisfying(ImageException.class, e -> {
                    assertThat(e.reason()).isEqualTo("Unauthorized");
                    assertThat(e.getMessage())
                            .contains("localhost:" + storage.host().split(":")[1] + ", reached by a redirect from "
                                    + registry.host())
                            .contains("those for the registry go to no other host");
                });
        assertThat(authorizations(registry)).contains(ALICE_BASIC);
        assertThat(authorizations(storage)).containsOnlyNulls();
    }

    @Test
    void theRegistrysCredentialsGoToItsRealmOnAnotherHostAndItsTokenStaysWithIt() throws Exception {
        requireBearer(registry, "registry-token");
        realm.onRequest(
                "/token",
                request -> ALICE_BASIC.equals(request.getHeader("Authorization"))
                        ? ScriptedRegistry.json("{\"token\":\"registry-token\"}")
                        : new MockResponse().setResponseCode(401));
        storage.blob(image.layerDigest(), image.layer());

        Image pulled = service.pull(registry.reference("1"), Map.of(registry.host(), ALICE));

        assertThat(pulled.layers()).hasSize(1);
        assertThat(authorizations(realm))
                .as("the token realm the registry names")
                .containsOnly(ALICE_BASIC);
        assertThat(authorizations(registry)).contains("Bearer registry-token");
        assertThat(authorizations(storage)).as("blob storage a redirect led to").containsOnlyNulls();
    }

    /** The case: a redirect target's Bearer challenge must not bring the registry's credentials to its realm. */
    @Test
    void aBearerChallengeFromARedirectTargetGetsAnAnonymousToken() throws Exception {
        requireBasic(registry);
        storage.onRequest(
                ScriptedRegistry.blobPath(image.layerDigest()),
                request -> "Bearer storage-token".equals(request.getHeader("Authorization"))
                        ? blob()
                        : new MockResponse()
                                .setResponseCode(401)
                                .setHeader("WWW-Authenticate", "Bearer realm=\"" + realm.url("/storage-token") + "\""));
        realm.on("/storage-token", () -> ScriptedRegistry.json("{\"token\":\"storage-token\"}"));

        Image pulled = service.pull(registry.reference("1"), Map.of(registry.host(), ALICE));

        assertThat(pulled.layers()).hasSize(1);
        assertThat(authorizations(realm)).as("the storage's realm").containsOnlyNulls();
        assertThat(authorizations(storage)).doesNotContain(ALICE_BASIC).contains("Bearer storage-token");
        assertThat(authorizations(registry)).doesNotContain("Bearer storage-token");
    }

    private void requireBasic(ScriptedRegistry server) {
        for (String path : List.of(
                ScriptedRegistry.manifestPath("1"),
                ScriptedRegistry.blobPath(image.configDigest()),
                ScriptedRegistry.blobPath(image.layerDigest()))) {
            guard(server, path, ALICE_BASIC, "Basic realm=\"registry\"");
        }
    }

    private void requireBearer(ScriptedRegistry server, String token) {
        for (String path : List.of(
                ScriptedRegistry.manifestPath("1"),
                ScriptedRegistry.blobPath(image.configDigest()),
                ScriptedRegistry.blobPath(image.layerDigest()))) {
            guard(server, path, "Bearer " + token, "Bearer realm=\"" + realm.url("/token") + "\",service=\"r\"");
        }
    }

    /** Wraps the path's current answer: without {@code authorization}, a 401 with {@code challenge}. */
    private static void guard(ScriptedRegistry server, String path, String authorization, String challenge) {
        var answer = server.route(path);
        server.onRequest(
                path,
                request -> authorization.equals(request.getHeader("Authorization"))
                        ? answer.apply(request)
                        : new MockResponse().setResponseCode(401).setHeader("WWW-Authenticate", challenge));
    }

    private MockResponse blob() {
        return new MockResponse().setBody(new Buffer().write(image.layer()));
    }

    /** The Authorization header of every request the server received, null where there was none. */
    private static List<String> authorizations(ScriptedRegistry server) throws InterruptedException {
        List<String> headers = new ArrayList<>();
        for (int i = server.requestCount(); i > 0; i--) {
            RecordedRequest request = server.take();
            headers.add(request.getHeader("Authorization"));
        }
        return headers;
    }

    private ScriptedRegistry server(String host) {
        ScriptedRegistry server = new ScriptedRegistry(host);
        servers.add(server);
        return server;
    }
}
