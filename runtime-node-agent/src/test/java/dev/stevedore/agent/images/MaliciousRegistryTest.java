package dev.stevedore.agent.images;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;

import dev.stevedore.agent.content.Digest;
import dev.stevedore.agent.content.FileContentStore;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.stream.Stream;
import okhttp3.mockwebserver.MockResponse;
import okhttp3.mockwebserver.SocketPolicy;
import okio.Buffer;
import org.assertj.core.api.ThrowingConsumer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * A registry that lies about sizes, sends too much, too little, too slowly, or malformed JSON: each pull fails with
 * the reason and message a Container's ImageReady condition shows, and leaves no partial download, no image record
 * and no unverified blob behind. (Blobs verified before the failure stay for garbage collection, which reclaims them
 * when no image names them: deleting them here could take a blob from a concurrent pull.) Memory stays bounded under
 * the agent's own heap limit: {@link SmallHeapPullTest}.
 */
class MaliciousRegistryTest {
    private static final Duration READ_TIMEOUT = Duration.ofSeconds(3);
    /** 1 KiB per second: the drips below send 128 bytes per second. */
    private static final RegistryClient.StallLimit STALL = new RegistryClient.StallLimit(Duration.ofSeconds(1), 1024);

    private static final int MIB = 1024 * 1024;

    @TempDir
    Path root;

    private ScriptedRegistry registry;
    private FileContentStore content;
    private RegistryImageService service;

    @BeforeEach
    void start() throws IOException {
        registry = new ScriptedRegistry("127.0.0.1");
        content = new FileContentStore(root);
        service = new RegistryImageService(
                content, root.resolve("images"), Platform.current(), Set.of(), true, READ_TIMEOUT, STALL);
    }

    @AfterEach
    void stop() throws IOException {
        registry.close();
    }

    @Test
    void aWellBehavedRegistryIsPulledFrom() throws Exception {
        ImageBlobs image = ImageBlobs.small();
        image.serve(registry, "1");

        Image pulled = service.pull(registry.reference("1"), Map.of());

        assertThat(pulled.layers())
                .singleElement()
                .satisfies(l -> assertThat(l.digest()).isEqualTo(image.layerDigest()));
        assertThat(content.path(image.layerDigest())).isPresent();
    }

    @Test
    void aLayerLongerThanItsDescriptorIsRefused() throws Exception {
        ImageBlobs image = ImageBlobs.small();
        image.serve(registry, "1", image.manifest(image.config().length, image.layer().length - 10));

        assertPullFails(
                "DigestMismatch",
                e -> assertThat(e.getMessage())
                        .contains("larger than the expected " + (image.layer().length - 10) + " bytes"));
        assertNothingLeft(image.layerDigest());
    }

    @Test
    void aLayerShorterThanItsDescriptorIsRefused() throws Exception {
        ImageBlobs image = ImageBlobs.small();
        image.serve(registry, "1", image.manifest(image.config().length, image.layer().length + 10));

        assertPullFails(
                "DigestMismatch",
                e -> assertThat(e.getMessage())
                        .contains("expected " + (image.layer().length + 10) + " bytes, got " + image.layer().length));
        assertNothingLeft(image.layerDigest());
    }

    /** A negative size read as "unknown" would turn the size checks off: refused when the manifest is parsed. */
    @ParameterizedTest
    @ValueSource(strings = {"layer", "config"})
    void aNegativeDescriptorSizeIsRefusedAtParse(String which) throws Exception {
        ImageBlobs image = ImageBlobs.small();
        image.serve(
                registry,
                "1",
                which.equals("layer")
                        ? image.manifest(image.config().length, -1)
                        : image.manifest(-5, image.layer().length));

        assertPullFails(
                "InvalidImage",
                e -> assertThat(e.getMessage())
                        .contains("malformed image")
                        .contains("has the negative size " + (which.equals("layer") ? -1 : -5)));
        assertThat(registry.requestCount())
                .as("nothing but the manifest was fetched")
                .isEqualTo(1);
        assertNothingLeft(image.layerDigest(), image.configDigest());
    }

    @Test
    void aNegativeSizeInAnIndexIsRefusedAtParse() throws Exception {
        ImageBlobs image = ImageBlobs.small();
        Digest manifest = Digest.sha256Of(image.manifest());
        registry.manifest("1", ImageBlobs.index(manifest, -1), Oci.OCI_INDEX);

        assertPullFails("InvalidImage", e -> assertThat(e.getMessage()).contains("has the negative size -1"));
        assertNothingLeft(manifest);
    }

    @Test
    void layerSizesNoDiskCouldHoldAreRefusedBeforeAnyLayerIsFetched() throws Exception {
        ImageBlobs image = ImageBlobs.small();
        AtomicBoolean layerFetched = new AtomicBoolean();
        image.serve(registry, "1", image.manifest(image.config().length, Long.MAX_VALUE / 2));
        registry.blob(image.layerDigest(), () -> {
            layerFetched.set(true);
            return new MockResponse().setBody(new Buffer().write(image.layer()));
        });

        assertPullFails(
                "InvalidImage",
                e -> assertThat(e.getMessage()).contains("more than this node's content store can ever hold"));
        assertThat(layerFetched).isFalse();
        assertNothingLeft(image.layerDigest());
    }

    /** 32 MiB where the descriptor says 1 KiB: the content store reads one byte past it and stops. */
    @Test
    void anEndlessLayerEndsOneBytePastItsDescriptor() throws Exception {
        ImageBlobs image = ImageBlobs.small();
        image.serve(registry, "1", image.manifest(image.config().length, 1024));
        registry.blob(image.layerDigest(), () -> new MockResponse().setBody(zeros(32 * MIB)));

        assertPullFails(
                "DigestMismatch", e -> assertThat(e.getMessage()).contains("larger than the expected 1024 bytes"));
        assertNothingLeft(image.layerDigest());
    }

    /** 128 bytes a second never trips the read timeout; the stall limit ends it, and frees the thread. */
    @Test
    void aDrippingLayerEndsTheTransferAsAStall() throws Exception {
        ImageBlobs image = ImageBlobs.of(new byte[64 * 1024]);
        image.serve(registry, "1");
        registry.blob(
                image.layerDigest(),
                () -> new MockResponse()
                        .setBody(new Buffer().write(image.layer()))
                        .throttleBody(64, 500, TimeUnit.MILLISECONDS));

        assertTimeoutPreemptively(
                Duration.ofSeconds(30),
                () -> assertPullFails("RegistryUnavailable", e -> {
                    assertThat(e.transientFailure()).isTrue();
                    assertThat(e.getMessage())
                            .contains("blob " + image.layerDigest())
                            .contains("stalled");
                }));
        assertNothingLeft(image.layerDigest());
    }

    /** 16 KiB of manifest at 128 bytes a second would take two minutes. */
    @Test
    void aDrippingManifestEndsAsAStall() throws IOException {
        byte[] padded = (new String(ImageBlobs.small().manifest(), StandardCharsets.UTF_8) + " ".repeat(16 * 1024))
                .getBytes(StandardCharsets.UTF_8);
        registry.on(
                ScriptedRegistry.manifestPath("1"),
                () -> ScriptedRegistry.json(padded)
                        .setHeader("Content-Type", Oci.OCI_MANIFEST)
                        .throttleBody(64, 500, TimeUnit.MILLISECONDS));

        assertTimeoutPreemptively(
                Duration.ofSeconds(30),
                () -> assertPullFails(
                        "RegistryUnavailable",
                        e -> assertThat(e.getMessage()).contains("manifest 1").contains("stalled")));
        assertNothingLeft();
    }

    @ParameterizedTest
    @ValueSource(booleans = {true, false})
    void aHugeManifestIsRefusedWithOrWithoutAContentLength(boolean contentLength) throws Exception {
        registry.on(
                ScriptedRegistry.manifestPath("1"),
                () -> hugeBody(8 * MIB, contentLength).setHeader("Content-Type", Oci.OCI_MANIFEST));

        assertPullFails(
                "InvalidImage",
                e -> assertThat(e.getMessage()).contains("manifest 1 is larger than " + Oci.MAX_JSON_SIZE + " bytes"));
        assertNothingLeft();
    }

    @Test
    void aConfigOrManifestDescribedAsHugeIsNotFetched() throws Exception {
        ImageBlobs image = ImageBlobs.small();
        image.serve(registry, "1", image.manifest(8L * MIB, image.layer().length));
        Digest child = Digest.sha256Of(image.manifest());
        registry.manifest("2", ImageBlobs.index(child, 8L * MIB), Oci.OCI_INDEX);

        assertPullFails(
                "InvalidImage",
                e -> assertThat(e.getMessage())
                        .contains(image.configDigest() + " is " + 8 * MIB
                                + " bytes, more than a manifest or config may be"));
        assertThatThrownBy(() -> service.pull(registry.reference("2"), Map.of()))
                .isInstanceOfSatisfying(
                        ImageException.class,
                        e -> assertThat(e.getMessage())
                                .contains(child + " is " + 8 * MIB + " bytes, more than a manifest or config may be"));
        assertThat(registry.requestCount())
                .as("only the two manifests were fetched")
                .isEqualTo(2);
        assertNothingLeft(image.configDigest(), child);
    }

    @Test
    void aHugeConfigBodyBehindASmallDescriptorIsRefused() throws Exception {
        ImageBlobs image = ImageBlobs.small();
        image.serve(registry, "1");
        registry.blob(image.configDigest(), () -> hugeBody(8 * MIB, false));

        assertPullFails(
                "DigestMismatch",
                e -> assertThat(e.getMessage())
                        .contains("larger than the expected " + image.config().length + " bytes"));
        assertNothingLeft(image.configDigest());
    }

    @Test
    void aHugeTokenOrErrorBodyIsNotReadPastTheLimit() throws Exception {
        ScriptedRegistry realm = new ScriptedRegistry("127.0.0.1");
        try (realm) {
            registry.on(
                    ScriptedRegistry.manifestPath("1"),
                    () -> new MockResponse()
                            .setResponseCode(401)
                            .setHeader("WWW-Authenticate", "Bearer realm=\"" + realm.url("/token") + "\""));
            realm.on("/token", () -> hugeBody(8 * MIB, false));

            assertPullFails(
                    "InvalidImage",
                    e -> assertThat(e.getMessage()).contains("token is larger than " + Oci.MAX_JSON_SIZE + " bytes"));
        }
        registry.on(
                ScriptedRegistry.manifestPath("2"),
                () -> hugeBody(8 * MIB, false).setResponseCode(404));
        assertThatThrownBy(() -> service.pull(registry.reference("2"), Map.of()))
                .isInstanceOfSatisfying(
                        ImageException.class, e -> assertThat(e.reason()).isEqualTo("ManifestUnknown"));
        assertNothingLeft();
    }

    @Test
    void malformedJsonIsAnInvalidImage() throws Exception {
        ImageBlobs image = ImageBlobs.small();
        image.serve(registry, "1", "{\"schemaVersion\":2,\"config\":".getBytes(StandardCharsets.UTF_8));
        byte[] badConfig = "{\"rootfs\": [1, 2".getBytes(StandardCharsets.UTF_8);
        Digest badConfigDigest = Digest.sha256Of(badConfig);
        ImageBlobs other = new ImageBlobs(image.layer(), image.layerDigest(), badConfig, badConfigDigest);
        other.serve(registry, "2");

        assertPullFails("InvalidImage", e -> assertThat(e.getMessage()).contains("malformed image"));
        assertThatThrownBy(() -> service.pull(registry.reference("2"), Map.of()))
                .isInstanceOfSatisfying(ImageException.class, e -> {
                    assertThat(e.reason()).isEqualTo("InvalidImage");
                    assertThat(e.getMessage()).contains("malformed image");
                });
        assertNothingLeft(image.layerDigest());
    }

    @Test
    void bytesThatDoNotHashToTheirDigestAreRefused() throws Exception {
        ImageBlobs image = ImageBlobs.small();
        image.serve(registry, "1");
        byte[] tampered = image.layer().clone();
        tampered[0] ^= 1;
        registry.blob(image.layerDigest(), tampered);

        assertPullFails(
                "DigestMismatch",
                e -> assertThat(e.getMessage()).contains(image.layerDigest().toString()));
        assertNothingLeft(image.layerDigest());
    }

    @Test
    void aDigestHeaderThatDisagreesWithTheBytesIsRefused() throws Exception {
        ImageBlobs image = ImageBlobs.small();
        image.serve(registry, "1");
        Digest other = Digest.sha256Of("something else".getBytes(StandardCharsets.UTF_8));
        registry.on(
                ScriptedRegistry.manifestPath("1"),
                () -> ScriptedRegistry.json(image.manifest())
                        .setHeader("Content-Type", Oci.OCI_MANIFEST)
                        .setHeader("Docker-Content-Digest", other.toString()));

        assertPullFails("DigestMismatch", e -> assertThat(e.getMessage()).contains("the registry says " + other));
        assertNothingLeft(image.layerDigest(), image.configDigest());
    }

    private void assertPullFails(String reason, ThrowingConsumer<ImageException> more) {
        assertThatThrownBy(() -> service.pull(registry.reference("1"), Map.of()))
                .isInstanceOfSatisfying(ImageException.class, e -> {
                    assertThat(e.reason()).as(e.getMessage()).isEqualTo(reason);
                    more.accept(e);
                });
    }

    /**
     * No partial download in the ingest directory, no image record, none of {@code refused} in the store, and every
     * blob that is there hashes to its name.
     */
    private void assertNothingLeft(Digest... refused) throws IOException {
        assertThat(files(root.resolve("content/ingest")))
                .as("partial downloads")
                .isEmpty();
        assertThat(files(root.resolve("images")).stream()
                        .filter(f -> f.getFileName().toString().endsWith(".json")))
                .as("image records")
                .isEmpty();
        assertThat(service.list()).isEmpty();
        for (Digest digest : refused) {
            assertThat(content.path(digest)).as("the refused blob " + digest).isEmpty();
        }
        for (Digest digest : content.list().toList()) {
            assertThat(Digest.sha256Of(Files.readAllBytes(content.path(digest).orElseThrow())))
                    .isEqualTo(digest);
        }
    }

    private static List<Path> files(Path dir) throws IOException {
        if (!Files.isDirectory(dir)) {
            return List.of();
        }
        try (Stream<Path> list = Files.list(dir)) {
            return list.toList();
        }
    }

    private static Buffer zeros(int size) {
        Buffer buffer = new Buffer();
        byte[] chunk = new byte[64 * 1024];
        for (int written = 0; written < size; written += chunk.length) {
            buffer.write(chunk, 0, Math.min(chunk.length, size - written));
        }
        return buffer;
    }

    /** Without a Content-Length the body ends when the server closes the connection. */
    static MockResponse hugeBody(int size, boolean contentLength) {
        MockResponse response = new MockResponse().setBody(zeros(size));
        if (!contentLength) {
            response.removeHeader("Content-Length").setSocketPolicy(SocketPolicy.DISCONNECT_AT_END);
        }
        return response;
    }
}
