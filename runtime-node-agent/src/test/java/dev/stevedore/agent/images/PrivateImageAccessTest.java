package dev.stevedore.agent.images;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.stevedore.agent.content.FileContentStore;
import dev.stevedore.agent.images.ImageRecords.PullAccess;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Stream;
import okhttp3.Credentials;
import okhttp3.mockwebserver.MockResponse;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * KEP-2535 for Stevedore: an image on the node serves a Container only if the Container's own credentials may pull
 * it. Who pulled it is recorded as keyed hashes; other credentials, or none, are checked with the registry by a HEAD
 * of the recorded manifest digest.
 */
class PrivateImageAccessTest {
    private static final RegistryAuth ALICE = new RegistryAuth("alice", "alice-s3cret");
    private static final RegistryAuth CAROL = new RegistryAuth("carol", "carol-s3cret");
    private static final RegistryAuth MALLORY = new RegistryAuth("alice", "guessed");

    @TempDir
    Path root;

    private ScriptedRegistry registry;
    private RegistryImageService service;
    private final ImageBlobs image = ImageBlobs.small();
    private String reference;
    private String digestPath;

    @BeforeEach
    void start() throws IOException {
        registry = new ScriptedRegistry("127.0.0.1");
        service = newService();
        image.serve(registry, "1");
        reference = registry.reference("1");
        digestPath = ScriptedRegistry.manifestPath(sha256(image.manifest()));
        registry.manifest(sha256(image.manifest()), image.manifest(), Oci.OCI_MANIFEST);
    }

    @AfterEach
    void stop() throws IOException {
        registry.close();
    }

    @Test
    void anImagePulledWithoutCredentialsServesEveryone() throws Exception {
        service.pull(reference, Map.of());
        int requests = registry.requestCount();

        service.ensure(reference, Map.of());
        service.ensure(reference, Map.of(registry.host(), CAROL));

        assertThat(registry.requestCount())
                .as("no registry check for a public image")
                .isEqualTo(requests);
    }

    @Test
    void aPrivateImageServesItsPullersAndThoseTheRegistryLetsPullIt() throws Exception {
        requireBasic(ALICE, CAROL);
        service.pull(reference, Map.of(registry.host(), ALICE));
        int afterPull = registry.requestCount();

        service.ensure(reference, Map.of(registry.host(), ALICE));
        assertThat(registry.requestCount())
                .as("the puller's credentials are recorded")
                .isEqualTo(afterPull);

        service.ensure(reference, Map.of(registry.host(), CAROL));
        assertThat(registry.requestCount()).as("other credentials are checked").isGreaterThan(afterPull);
        assertThat(methodsOf(registry)).endsWith("HEAD");
        int afterCheck = registry.requestCount();

        service.ensure(reference, Map.of(registry.host(), CAROL));
        assertThat(registry.requestCount())
                .as("credentials the registry accepted are recorded")
                .isEqualTo(afterCheck);
    }

    @Test
    void aPrivateImageIsRefusedWithoutOrWithWrongCredentials() throws Exception {
        requireBasic(ALICE);
        service.pull(reference, Map.of(registry.host(), ALICE));

        assertRefused(Map.of(), "without credentials");
        assertRefused(Map.of(registry.host(), MALLORY), "with the credentials of its imagePullSecrets");
        assertRefused(Map.of("another-registry:5000", ALICE), "without credentials");
        // A refusal is not recorded: the next try asks again.
        int before = registry.requestCount();
        assertRefused(Map.of(), "without credentials");
        assertThat(registry.requestCount()).isGreaterThan(before);
    }

    @Test
    void aRegistryThatCannotAnswerTheCheckIsRetriedNeitherRefusedNorPassed() throws Exception {
        requireBasic(ALICE);
        service.pull(reference, Map.of(registry.host(), ALICE));
        registry.on(digestPath, () -> new MockResponse().setResponseCode(503));

        assertThatThrownBy(() -> service.ensure(reference, Map.of(registry.host(), CAROL)))
                .isInstanceOfSatisfying(ImageException.class, e -> {
                    assertThat(e.reason()).isEqualTo("RegistryUnavailable");
                    assertThat(e.transientFailure()).isTrue();
                    assertThat(e.getMessage()).contains("did not answer").contains("HTTP 503");
                });
        registry.close();
        assertThatThrownBy(() -> service.ensure(reference, Map.of()))
                .isInstanceOfSatisfying(ImageException.class, e -> {
                    assertThat(e.reason()).isEqualTo("RegistryUnavailable");
                    assertThat(e.transientFailure()).isTrue();
                });
    }

    @Test
    void credentialsARegistryNeverAskedForMakeAPublicImage() throws Exception {
        service.pull(reference, Map.of(registry.host(), ALICE));
        int requests = registry.requestCount();

        service.ensure(reference, Map.of());

        assertThat(registry.requestCount()).isEqualTo(requests);
    }

    @Test
    void importedImagesAndRecordsFromBeforeAccessWasRecorded() throws Exception {
        requireBasic(ALICE);
        Image pulled = service.pull(reference, Map.of(registry.host(), ALICE));
        ImageRecords records = new ImageRecords(root.resolve("images"), false);

        records.put(pulled, false); // as an older agent wrote it: no access
        assertRefused(Map.of(), "without credentials");
        service.ensure(reference, Map.of(registry.host(), ALICE)); // checked with the registry, then recorded
        assertThat(records.stored(pulled.name()).orElseThrow().access().credentials())
                .hasSize(1);

        records.put(pulled, true); // imported by the node's administrator: no registry may have it
        int requests = registry.requestCount();
        service.ensure(reference, Map.of());
        assertThat(registry.requestCount()).isEqualTo(requests);
    }

    @Test
    void recordsHoldKeyedHashesNeverTheCredentials() throws Exception {
        requireBasic(ALICE);
        service.pull(reference, Map.of(registry.host(), ALICE));

        String record;
        try (Stream<Path> files = Files.list(root.resolve("images"))) {
            record = Files.readString(files.filter(f -> f.toString().endsWith(".json"))
                    .findFirst()
                    .orElseThrow());
        }
        assertThat(record)
                .doesNotContain("alice-s3cret")
                .doesNotContain(
                        Base64.getEncoder().encodeToString("alice:alice-s3cret".getBytes(StandardCharsets.UTF_8)));
        Path key = root.resolve("images/pull-credentials.key");
        assertThat(Files.getPosixFilePermissions(key)).isEqualTo(PosixFilePermissions.fromString("rw-------"));

        // The same credentials hash differently on another node (another key): a hash is no password check.
        Path other = root.resolve("other-node");
        RegistryImageService otherNode = new RegistryImageService(
                new FileContentStore(other),
                other.resolve("images"),
                Platform.current(),
                Set.of(),
                true,
                Duration.ofSeconds(5),
                RegistryClient.StallLimit.DEFAULT);
        otherNode.pull(reference, Map.of(registry.host(), ALICE));
        PullAccess here = new ImageRecords(root.resolve("images"), false)
                .stored(reference)
                .orElseThrow()
                .access();
        PullAccess there = new ImageRecords(other.resolve("images"), false)
                .stored(reference)
                .orElseThrow()
                .access();
        assertThat(here.credentials()).hasSize(1).doesNotContainAnyElementsOf(there.credentials());
    }

    @Test
    void theDecision() {
        assertThat(RegistryImageService.needsRegistryCheck(null, "h")).isTrue();
        assertThat(RegistryImageService.needsRegistryCheck(null, null)).isTrue();
        assertThat(RegistryImageService.needsRegistryCheck(PullAccess.PUBLIC, null))
                .isFalse();
        assertThat(RegistryImageService.needsRegistryCheck(PullAccess.of("h"), "h"))
                .isFalse();
        assertThat(RegistryImageService.needsRegistryCheck(PullAccess.of("h"), "other"))
                .isTrue();
        assertThat(RegistryImageService.needsRegistryCheck(PullAccess.of("h"), null))
                .isTrue();
        assertThat(RegistryImageService.needsRegistryCheck(PullAccess.of("h").with("i"), "i"))
                .isFalse();
    }

    private void assertRefused(Map<String, RegistryAuth> auths, String whose) {
        assertThatThrownBy(() -> service.ensure(reference, auths)).isInstanceOfSatisfying(ImageException.class, e -> {
            assertThat(e.reason()).isEqualTo("Unauthorized");
            assertThat(e.transientFailure()).isFalse();
            assertThat(e.getMessage())
                    .startsWith(reference + " is on this node, pulled with other credentials, and " + registry.host()
                            + " refuses it to this Container " + whose)
                    .endsWith("give the Container imagePullSecrets that can pull it");
        });
    }

    /** Every path of the image answers 401 unless one of {@code allowed} is given by Basic auth. */
    private void requireBasic(RegistryAuth... allowed) {
        List<String> good = Stream.of(allowed)
                .map(a -> Credentials.basic(a.username(), a.password()))
                .toList();
        for (String path : List.of(
                ScriptedRegistry.manifestPath("1"),
                digestPath,
                ScriptedRegistry.blobPath(image.configDigest()),
                ScriptedRegistry.blobPath(image.layerDigest()))) {
            var answer = registry.route(path);
            registry.onRequest(
                    path,
                    request -> good.contains(request.getHeader("Authorization"))
                            ? answer.apply(request)
                            : new MockResponse()
                                    .setResponseCode(401)
                                    .setHeader("WWW-Authenticate", "Basic realm=\"r\""));
        }
    }

    private static List<String> methodsOf(ScriptedRegistry server) throws InterruptedException {
        List<String> methods = new java.util.ArrayList<>();
        for (int i = server.requestCount(); i > 0; i--) {
            methods.add(server.take().getMethod());
        }
        return methods;
    }

    private RegistryImageService newService() throws IOException {
        return new RegistryImageService(
                new FileContentStore(root),
                root.resolve("images"),
                Platform.current(),
                Set.of(),
                true,
                Duration.ofSeconds(5),
                RegistryClient.StallLimit.DEFAULT);
    }

    private static String sha256(byte[] bytes) {
        return dev.stevedore.agent.content.Digest.sha256Of(bytes).toString();
    }
}
