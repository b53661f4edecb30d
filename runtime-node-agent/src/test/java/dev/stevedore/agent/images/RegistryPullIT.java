package dev.stevedore.agent.images;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import dev.stevedore.agent.content.Digest;
import dev.stevedore.agent.content.FileContentStore;
import dev.stevedore.agent.testing.LocalRegistry;
import dev.stevedore.agent.testing.StallingProxy;
import dev.stevedore.agent.testing.TestImages;
import dev.stevedore.agent.testing.TestImages.Format;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveInputStream;
import org.apache.commons.compress.compressors.gzip.GzipCompressorInputStream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Pulls from a real distribution registry on loopback, with images umoci built and skopeo pushed. */
class RegistryPullIT {
    @TempDir
    static Path buildDir;

    private static TestImages images;
    private static LocalRegistry registry;

    @TempDir
    Path root;

    private FileContentStore content;
    private RegistryImageService service;

    @BeforeAll
    static void buildAndPush() {
        images = TestImages.build(buildDir);
        registry = LocalRegistry.start();
        images.push(TestImages.BASE, ref("test/busybox:oci"));
        images.push(TestImages.BASE, ref("test/busybox:v2"), Format.DOCKER_V2S2, null);
        images.push(TestImages.LAYERED, ref("test/layered:1"));
        images.push(TestImages.MULTI, ref("test/multi:1"));
        images.push(TestImages.FOREIGN, ref("test/foreign:1"));
    }

    @AfterAll
    static void stopRegistry() {
        if (registry != null) {
            registry.close();
        }
    }

    @BeforeEach
    void newNode() throws IOException {
        content = new FileContentStore(root);
        service = new RegistryImageService(content, root.resolve("images"), Platform.current(), Set.of());
    }

    @Test
    void pullsAnOciImage() throws Exception {
        Image image = service.pull(ref("test/busybox:oci"), Map.of());

        JsonNode manifest = images.manifest(TestImages.BASE);
        String configDigest = manifest.path("config").path("digest").asText();
        assertThat(image.name()).isEqualTo(ref("test/busybox:oci"));
        assertThat(image.digest()).hasToString(images.digest(TestImages.BASE));
        assertThat(image.manifest()).isEqualTo(image.digest());
        assertThat(image.config()).hasToString(configDigest);
        assertThat(image.layers())
                .extracting(l -> l.digest().toString())
                .containsExactlyElementsOf(images.layerDigests(TestImages.BASE));
        assertThat(image.layers())
                .extracting(Image.Layer::mediaType)
                .containsOnly("application/vnd.oci.image.layer.v1.tar+gzip");
        assertThat(image.layers())
                .extracting(l -> l.diffId().toString())
                .containsExactlyElementsOf(diffIds(configDigest));
        assertThat(image.imageConfig().cmd()).containsExactly("sh");
        assertThat(image.imageConfig().env()).contains("PATH=/bin");
        assertThat(image.size())
                .isEqualTo(Files.size(images.blobPath(image.manifest().toString()))
                        + Files.size(images.blobPath(configDigest))
                        + image.layers().stream().mapToLong(Image.Layer::size).sum());
        assertEveryBlobStoredAndIntact(image);
        assertThat(service.get(image.name())).contains(image);
    }

    @Test
    void pullsADockerSchema2Image() throws Exception {
        Image image = service.pull(ref("test/busybox:v2"), Map.of());

        byte[] served = manifestAsServed("test/busybox", "v2", Oci.DOCKER_MANIFEST);
        assertThat(Oci.JSON.readTree(served).path("mediaType").asText()).isEqualTo(Oci.DOCKER_MANIFEST);
        assertThat(image.digest()).isEqualTo(Digest.sha256Of(served)).isEqualTo(image.manifest());
        assertThat(image.digest()).doesNotHaveToString(images.digest(TestImages.BASE));
        assertThat(image.layers())
                .extracting(l -> l.digest().toString())
                .containsExactlyElementsOf(images.layerDigests(TestImages.BASE));
        assertThat(image.layers())
                .extracting(Image.Layer::mediaType)
                .containsOnly("application/vnd.docker.image.rootfs.diff.tar.gzip");
        assertThat(image.imageConfig().cmd()).containsExactly("sh");
        assertEveryBlobStoredAndIntact(image);
    }

    @Test
    void pullsEveryLayerOfALayeredImageBottomFirst() throws Exception {
        Image image = service.pull(ref("test/layered:1"), Map.of());

        assertThat(image.layers()).hasSize(4); // base, a file added, a file deleted, a directory made opaque
        assertThat(image.layers())
                .extracting(l -> l.digest().toString())
                .containsExactlyElementsOf(images.layerDigests(TestImages.LAYERED));
        assertThat(image.layers().get(0).digest())
                .hasToString(images.layerDigests(TestImages.BASE).get(0));
        assertThat(tarEntries(image.layers().get(1).digest())).contains(TestImages.ADDED_FILE);
        assertThat(tarEntries(image.layers().get(2).digest())).contains("etc/.wh.group");
        assertEveryBlobStoredAndIntact(image);
    }

    @Test
    void takesThisNodesManifestFromAMultiPlatformIndex() throws Exception {
        Image image = service.pull(ref("test/multi:1"), Map.of());

        assertThat(image.digest()).hasToString(images.digest(TestImages.MULTI));
        assertThat(image.manifest()).hasToString(images.digest(TestImages.BASE));
        assertThat(image.layers())
                .extracting(l -> l.digest().toString())
                .containsExactlyElementsOf(images.layerDigests(TestImages.BASE));
        Digest foreignLayer =
                Digest.parse(images.layerDigests(TestImages.FOREIGN).get(0));
        assertThat(content.path(foreignLayer)).as("the other platform's layer").isEmpty();
        assertEveryBlobStoredAndIntact(image);
    }

    @Test
    void resolvesATagToTheDigestItNamesAtPullTime() throws Exception {
        String moving = ref("test/moving:stable");
        images.push(TestImages.BASE, moving);
        Image first = service.pull(moving, Map.of());

        images.push(TestImages.LAYERED, moving);
        Image second = service.pull(moving, Map.of());

        assertThat(first.digest()).hasToString(images.digest(TestImages.BASE));
        assertThat(second.digest()).hasToString(images.digest(TestImages.LAYERED));
        assertThat(service.get(moving)).contains(second);
        Image byDigest = service.pull(ref("test/moving@" + first.digest()), Map.of());
        assertThat(byDigest.digest()).isEqualTo(first.digest());
        assertThat(byDigest.name()).isEqualTo(ref("test/moving@" + first.digest()));
        assertThat(service.list()).extracting(Image::name).containsExactlyInAnyOrder(moving, byDigest.name());
    }

    @Test
    void anUnknownTagOrRepositoryIsManifestUnknown() {
        assertThatThrownBy(() -> service.pull(ref("test/busybox:nope"), Map.of()))
                .isInstanceOfSatisfying(ImageException.class, e -> {
                    assertThat(e.reason()).isEqualTo("ManifestUnknown");
                    assertThat(e.transientFailure()).isFalse();
                });
        assertThatThrownBy(() -> service.pull(ref("test/nothing-here:1"), Map.of()))
                .isInstanceOfSatisfying(
                        ImageException.class, e -> assertThat(e.reason()).isEqualTo("ManifestUnknown"));
        assertThatThrownBy(() -> service.pull(ref("test/busybox@sha256:" + "0".repeat(64)), Map.of()))
                .isInstanceOfSatisfying(
                        ImageException.class, e -> assertThat(e.reason()).isEqualTo("ManifestUnknown"));
        assertThat(service.list()).isEmpty();
    }

    @Test
    void anImageForAnotherPlatformIsInvalid() {
        assertThatThrownBy(() -> service.pull(ref("test/foreign:1"), Map.of()))
                .isInstanceOfSatisfying(ImageException.class, e -> {
                    assertThat(e.reason()).isEqualTo("InvalidImage");
                    assertThat(e).hasMessageContaining(TestImages.foreignArchitecture());
                });
        assertThat(service.list()).isEmpty();
    }

    @Test
    void anUnreachableRegistryIsATransientFailure() throws IOException {
        int closedPort;
        try (ServerSocket socket = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            closedPort = socket.getLocalPort();
        }

        assertThatThrownBy(() -> service.pull("127.0.0.1:" + closedPort + "/test/busybox:1", Map.of()))
                .isInstanceOfSatisfying(ImageException.class, e -> {
                    assertThat(e.reason()).isEqualTo("RegistryUnavailable");
                    assertThat(e.transientFailure()).isTrue();
                });
    }

    @Test
    void anUnparseableReferenceIsInvalid() {
        assertThatThrownBy(() -> service.pull("Not/A:Valid:Reference", Map.of()))
                .isInstanceOfSatisfying(
                        ImageException.class, e -> assertThat(e.reason()).isEqualTo("InvalidImage"));
    }

    @Test
    void aNewServiceOnTheSameRootSeesTheRecordsAndPullsAgain() throws Exception {
        Image pulled = service.pull(ref("test/layered:1"), Map.of());

        RegistryImageService restarted = new RegistryImageService(
                new FileContentStore(root), root.resolve("images"), Platform.current(), Set.of());

        assertThat(restarted.get(pulled.name())).contains(pulled);
        assertThat(restarted.list()).containsExactly(pulled);
        assertThat(restarted.pull(ref("test/layered:1"), Map.of())).isEqualTo(pulled);
        restarted.remove(pulled.name());
        assertThat(new RegistryImageService(
                                new FileContentStore(root), root.resolve("images"), Platform.current(), Set.of())
                        .get(pulled.name()))
                .isEmpty();
    }

    @Test
    void aCorruptedLayerInTheRegistryIsADigestMismatchAndLeavesNoImage() throws Exception {
        try (LocalRegistry own = LocalRegistry.start()) {
            String reference = own.host() + "/test/corrupt:1";
            images.push(TestImages.LAYERED, reference);
            String layer = images.layerDigests(TestImages.LAYERED).get(1);
            flipLastByte(own.blobData(layer));

            assertThatThrownBy(() -> service.pull(reference, Map.of()))
                    .isInstanceOfSatisfying(ImageException.class, e -> {
                        assertThat(e.reason()).isEqualTo("DigestMismatch");
                        assertThat(e.transientFailure()).isFalse();
                        assertThat(e).hasMessageContaining(layer);
                    });

            assertThat(content.path(Digest.parse(layer))).isEmpty();
            assertThat(service.list()).isEmpty();
            assertThat(service.get(reference)).isEmpty();
            assertThat(root.resolve("content/ingest")).isEmptyDirectory();
            assertThat(new RegistryImageService(content, root.resolve("images"), Platform.current(), Set.of()).list())
                    .isEmpty();
        }
    }

    @Test
    void aManifestThatIsNotWhatTheRegistrySaysIsADigestMismatch() throws Exception {
        try (LocalRegistry own = LocalRegistry.start()) {
            String reference = own.host() + "/test/tampered:1";
            images.push(TestImages.BASE, reference);
            String manifestDigest = images.digest(TestImages.BASE);
            // Still valid JSON, so the registry serves it, under the digest it was pushed as.
            Path stored = own.blobData(manifestDigest);
            Files.writeString(stored, Files.readString(stored).replace("\"schemaVersion\":2", "\"schemaVersion\" :2"));

            for (String pulled : List.of(reference, own.host() + "/test/tampered@" + manifestDigest)) {
                assertThatThrownBy(() -> service.pull(pulled, Map.of()))
                        .isInstanceOfSatisfying(
                                ImageException.class,
                                e -> assertThat(e.reason()).isEqualTo("DigestMismatch"));
            }
            assertThat(content.path(Digest.parse(manifestDigest))).isEmpty();
            assertThat(service.list()).isEmpty();
        }
    }

    /**
     * Two images sharing their bottom layer, pulled at once (two Containers of them on one node): the shared blob is
     * downloaded once, and so is every other. The first download of it is held back by a proxy until the other pull
     * has reached that layer too, i.e. waits for the first download or has sent its own request.
     */
    @Test
    void twoPullsAtOnceDownloadASharedLayerOnce() throws Exception {
        String sharedLayer = images.layerDigests(TestImages.BASE).get(0);
        assertThat(images.layerDigests(TestImages.LAYERED).get(0)).isEqualTo(sharedLayer);
        long stallAfter = 64 * 1024;
        assertThat(Files.size(images.blobPath(sharedLayer)))
                .as("the shared layer outgrows what the proxy lets through")
                .isGreaterThan(2 * stallAfter);
        try (StallingProxy proxy = new StallingProxy(registry.host(), stallAfter)) {
            List<Pull> pulls =
                    List.of(new Pull(proxy.host() + "/test/busybox:oci"), new Pull(proxy.host() + "/test/layered:1"));
            pulls.forEach(Pull::start);
            await().atMost(Duration.ofSeconds(120))
                    .until(() ->
                            pulls.stream().anyMatch(Pull::waitsForAnotherDownload) || blobGets(proxy, sharedLayer) > 1);
            proxy.release();
            List<Image> pulled = new ArrayList<>();
            for (Pull pull : pulls) {
                pulled.add(pull.image.get(120, TimeUnit.SECONDS));
            }
            for (Image image : pulled) {
                assertEveryBlobStoredAndIntact(image);
            }

            Map<String, Long> getsByBlob = proxy.requests().stream()
                    .map(BLOB_GET::matcher)
                    .filter(Matcher::matches)
                    .collect(Collectors.groupingBy(m -> m.group(1), Collectors.counting()));
            assertThat(getsByBlob).containsEntry(sharedLayer, 1L);
            assertThat(getsByBlob.values())
                    .as("GETs of each blob: %s", getsByBlob)
                    .containsOnly(1L);
        }
    }

    private static final Pattern BLOB_GET = Pattern.compile("GET /v2/.+/blobs/(sha256:[a-f0-9]{64}) HTTP/1\\.1");

    private static long blobGets(StallingProxy proxy, String digest) {
        return proxy.requests().stream()
                .filter(r -> r.startsWith("GET ") && r.contains("/blobs/" + digest + " "))
                .count();
    }

    /** A pull on a thread of its own, whose stack shows whether it waits for a download another pull started. */
    private final class Pull {
        final CompletableFuture<Image> image = new CompletableFuture<>();
        final Thread thread;

        Pull(String reference) {
            thread = new Thread(
                    () -> {
                        try {
                            image.complete(service.pull(reference, Map.of()));
                        } catch (Throwable e) {
                            image.completeExceptionally(e);
                        }
                    },
                    "pull " + reference);
            thread.setDaemon(true);
        }

        void start() {
            thread.start();
        }

        boolean waitsForAnotherDownload() {
            return Stream.of(thread.getStackTrace())
                    .anyMatch(f -> f.getClassName().equals(FileContentStore.class.getName())
                            && f.getMethodName().equals("await"));
        }
    }

    private void assertEveryBlobStoredAndIntact(Image image) throws IOException {
        List<Digest> digests = new ArrayList<>(List.of(image.digest(), image.manifest(), image.config()));
        image.layers().forEach(layer -> digests.add(layer.digest()));
        for (Digest digest : digests) {
            Path blob = content.path(digest).orElseThrow(() -> new AssertionError(digest + " is not stored"));
            assertThat(Digest.sha256Of(Files.readAllBytes(blob))).isEqualTo(digest);
        }
        assertThat(root.resolve("content/ingest")).isEmptyDirectory();
    }

    private List<String> diffIds(String configDigest) {
        List<String> diffIds = new ArrayList<>();
        images.blobJson(configDigest).path("rootfs").path("diff_ids").forEach(d -> diffIds.add(d.asText()));
        return diffIds;
    }

    private List<String> tarEntries(Digest layer) throws IOException {
        List<String> names = new ArrayList<>();
        try (InputStream in = Files.newInputStream(content.path(layer).orElseThrow());
                TarArchiveInputStream tar = new TarArchiveInputStream(new GzipCompressorInputStream(in))) {
            for (TarArchiveEntry entry; (entry = tar.getNextEntry()) != null; ) {
                names.add(entry.getName().replaceFirst("^\\./", ""));
            }
        }
        return names;
    }

    private static byte[] manifestAsServed(String repository, String tag, String accept) throws Exception {
        HttpResponse<byte[]> response = HttpClient.newHttpClient()
                .send(
                        HttpRequest.newBuilder(URI.create(
                                        "http://" + registry.host() + "/v2/" + repository + "/manifests/" + tag))
                                .header("Accept", accept)
                                .build(),
                        HttpResponse.BodyHandlers.ofByteArray());
        assertThat(response.statusCode()).isEqualTo(200);
        return response.body();
    }

    private static void flipLastByte(Path file) throws IOException {
        byte[] bytes = Files.readAllBytes(file);
        bytes[bytes.length - 1] ^= 0x01;
        Files.write(file, bytes);
    }

    private static String ref(String repositoryAndTag) {
        return registry.host() + "/" + repositoryAndTag;
    }
}
