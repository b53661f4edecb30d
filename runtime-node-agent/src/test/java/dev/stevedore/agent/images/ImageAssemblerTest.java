package dev.stevedore.agent.images;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.stevedore.agent.content.Digest;
import dev.stevedore.agent.content.FileContentStore;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** What a registry or an archive may send that is not an image; the happy paths run against a real registry. */
class ImageAssemblerTest {
    private static final Platform NODE = new Platform("linux", "amd64");
    private static final String LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip";

    @TempDir
    Path root;

    private FileContentStore content;
    private ImageAssembler assembler;
    private final Map<Digest, byte[]> blobs = new HashMap<>();

    @BeforeEach
    void setUp() throws IOException {
        content = new FileContentStore(root);
        assembler = new ImageAssembler(content, NODE);
    }

    @Test
    void assemblesAWellFormedImage() throws Exception {
        Digest layer = blob("layer bytes"); // uncompressed: its diff ID is its digest
        Digest config = blob(config("amd64", "\"" + layer + "\""));
        Digest manifest = blob(manifest(Oci.OCI_MANIFEST, config, layer, LAYER_TYPE));

        Image image = assemble(manifest, Oci.OCI_MANIFEST);

        assertThat(image.manifest()).isEqualTo(manifest);
        assertThat(image.layers()).singleElement().satisfies(l -> {
            assertThat(l.digest()).isEqualTo(layer);
            assertThat(l.diffId()).isEqualTo(layer);
        });
        assertThat(image.imageConfig().cmd()).containsExactly("sh");
    }

    /** A layer is decompressed once, when it is unpacked, which checks its diff ID (Snapshotter.unpack). */
    @Test
    void diffIdsAreRecordedAsTheConfigSaysAndLeftForTheUnpackToCheck() throws Exception {
        Digest layer = blob("layer bytes");
        Digest claimed = Digest.sha256Of("other content".getBytes());
        Digest config = blob(config("amd64", "\"" + claimed + "\""));
        Digest manifest = blob(manifest(Oci.OCI_MANIFEST, config, layer, LAYER_TYPE));

        Image image = assemble(manifest, Oci.OCI_MANIFEST);

        assertThat(image.layers())
                .singleElement()
                .satisfies(l -> assertThat(l.diffId()).isEqualTo(claimed));
    }

    @Test
    void aDocumentServedAsOneTypeButDeclaringAnotherIsRejected() throws Exception {
        Digest layer = blob("layer bytes");
        Digest config = blob(config("amd64", "\"" + Digest.sha256Of("diff".getBytes()) + "\""));
        Digest manifest = blob(manifest(Oci.OCI_MANIFEST, config, layer, LAYER_TYPE));

        assertInvalid(manifest, Oci.OCI_INDEX, "declares");
    }

    @Test
    void schema1AndUnknownMediaTypesAreRejected() throws Exception {
        Digest schema1 = blob("{\"schemaVersion\":1,\"name\":\"x\",\"tag\":\"1\",\"fsLayers\":[]}");
        assertInvalid(schema1, "application/vnd.docker.distribution.manifest.v1+prettyjws", "unsupported");

        Digest config = blob(config("amd64", "\"" + Digest.sha256Of("diff".getBytes()) + "\""));
        Digest layer = blob("layer bytes");
        Digest foreignLayer = blob(
                manifest(Oci.OCI_MANIFEST, config, layer, "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"));
        assertInvalid(foreignLayer, Oci.OCI_MANIFEST, "layer media type");
    }

    @Test
    void malformedManifestsAreInvalidImages() throws Exception {
        assertInvalid(blob("not json"), Oci.OCI_MANIFEST, "");
        assertInvalid(blob("[1,2]"), Oci.OCI_MANIFEST, "");
        assertInvalid(
                blob("{\"schemaVersion\":2,\"mediaType\":\"" + Oci.OCI_MANIFEST + "\",\"layers\":[]}"),
                Oci.OCI_MANIFEST,
                "no config");
        assertInvalid(
                blob("{\"schemaVersion\":2,\"mediaType\":\"" + Oci.OCI_MANIFEST
                        + "\",\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"size\":2},"
                        + "\"layers\":[]}"),
                Oci.OCI_MANIFEST,
                "digest");
        assertInvalid(
                blob("{\"schemaVersion\":2,\"mediaType\":\"" + Oci.OCI_MANIFEST
                        + "\",\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"size\":2,"
                        + "\"digest\":\"sha256:../../etc/passwd\"},\"layers\":[]}"),
                Oci.OCI_MANIFEST,
                "digest");
    }

    @Test
    void diffIdsMustMatchTheLayers() throws Exception {
        Digest layer = blob("layer bytes");
        Digest config = blob(config("amd64", ""));
        Digest manifest = blob(manifest(Oci.OCI_MANIFEST, config, layer, LAYER_TYPE));

        assertInvalid(manifest, Oci.OCI_MANIFEST, "diff_ids");
    }

    @Test
    void anIndexWithoutThisPlatformIsInvalid() throws Exception {
        Digest layer = blob("layer bytes");
        Digest config = blob(config("arm64", "\"" + Digest.sha256Of("diff".getBytes()) + "\""));
        Digest manifest = blob(manifest(Oci.OCI_MANIFEST, config, layer, LAYER_TYPE));
        Digest index = blob("{\"schemaVersion\":2,\"mediaType\":\"" + Oci.OCI_INDEX + "\",\"manifests\":[{"
                + "\"mediaType\":\"" + Oci.OCI_MANIFEST + "\",\"digest\":\"" + manifest + "\",\"size\":"
                + blobs.get(manifest).length + ",\"platform\":{\"os\":\"linux\",\"architecture\":\"arm64\"}}]}");

        assertInvalid(index, Oci.OCI_INDEX, "no manifest for linux/amd64");
    }

    @Test
    void aManifestLargerThanAnyManifestIsRefusedBeforeDownload() {
        Digest huge = new Digest("sha256", "a".repeat(64));

        assertThatThrownBy(() -> assembler.assemble("x", huge, Oci.OCI_MANIFEST, 1L << 40, source()))
                .isInstanceOfSatisfying(
                        ImageException.class, e -> assertThat(e.reason()).isEqualTo("InvalidImage"));
    }

    @Test
    void bytesThatAreNotTheDigestAreADigestMismatch() throws Exception {
        Digest claimed = Digest.sha256Of("something else".getBytes(StandardCharsets.UTF_8));
        blobs.put(claimed, "{\"schemaVersion\":2}".getBytes(StandardCharsets.UTF_8));

        assertThatThrownBy(() -> assemble(claimed, Oci.OCI_MANIFEST))
                .isInstanceOfSatisfying(
                        ImageException.class, e -> assertThat(e.reason()).isEqualTo("DigestMismatch"));
        assertThat(content.path(claimed)).isEmpty();
    }

    private Image assemble(Digest digest, String mediaType) throws ImageException {
        return assembler.assemble("test", digest, mediaType, blobs.get(digest).length, source());
    }

    private void assertInvalid(Digest digest, String mediaType, String message) {
        assertThatThrownBy(() -> assemble(digest, mediaType)).isInstanceOfSatisfying(ImageException.class, e -> {
            assertThat(e.reason()).isEqualTo("InvalidImage");
            assertThat(e.transientFailure()).isFalse();
            assertThat(e).hasMessageContaining(message);
        });
    }

    private ImageAssembler.Blobs source() {
        return new ImageAssembler.Blobs() {
            @Override
            public InputStream manifest(Digest digest) throws IOException {
                return blob(digest);
            }

            @Override
            public InputStream blob(Digest digest) throws IOException {
                byte[] bytes = blobs.get(digest);
                if (bytes == null) {
                    throw new NoSuchFileException(digest.toString());
                }
                return new ByteArrayInputStream(bytes);
            }
        };
    }

    private Digest blob(String content) {
        byte[] bytes = content.getBytes(StandardCharsets.UTF_8);
        Digest digest = Digest.sha256Of(bytes);
        blobs.put(digest, bytes);
        return digest;
    }

    private String manifest(String mediaType, Digest config, Digest layer, String layerType) {
        return "{\"schemaVersion\":2,\"mediaType\":\"" + mediaType + "\",\"config\":{\"mediaType\":"
                + "\"application/vnd.oci.image.config.v1+json\",\"digest\":\"" + config + "\",\"size\":"
                + blobs.get(config).length + "},\"layers\":[{\"mediaType\":\"" + layerType + "\",\"digest\":\"" + layer
                + "\",\"size\":" + blobs.get(layer).length + "}]}";
    }

    private static String config(String architecture, String diffIds) {
        return "{\"os\":\"linux\",\"architecture\":\"" + architecture + "\",\"config\":{\"Cmd\":[\"sh\"],"
                + "\"Env\":[\"PATH=/bin\",null]},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[" + diffIds + "]}}";
    }
}
