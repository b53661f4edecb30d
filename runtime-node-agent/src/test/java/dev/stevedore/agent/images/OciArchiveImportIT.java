package dev.stevedore.agent.images;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.stevedore.agent.content.Digest;
import dev.stevedore.agent.content.FileContentStore;
import dev.stevedore.agent.testing.TestImages;
import dev.stevedore.testing.Processes;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.function.UnaryOperator;
import java.util.stream.Stream;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveOutputStream;
import org.apache.commons.compress.compressors.gzip.GzipCompressorOutputStream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Imports OCI image layouts, as directories and as tar archives (what {@code ctr images import} takes). */
class OciArchiveImportIT {
    private static final String NAME = "registry.example.com/imported/busybox:1";
    /** Generous: a copy of a few small layers on two busy cores. */
    private static final Duration SKOPEO_TIMEOUT = Duration.ofSeconds(120);

    @TempDir
    static Path buildDir;

    private static TestImages images;

    @TempDir
    Path root;

    @TempDir
    Path work;

    private FileContentStore content;
    private RegistryImageService service;

    @BeforeAll
    static void buildImages() {
        images = TestImages.build(buildDir);
    }

    @BeforeEach
    void newNode() throws IOException {
        content = new FileContentStore(root);
        service = new RegistryImageService(content, root.resolve("images"), Platform.current(), Set.of());
    }

    @Test
    void importsAnOciArchiveUnderItsRefName() throws Exception {
        Path archive = images.ociArchive(TestImages.LAYERED, NAME, work.resolve("layered.tar"));

        List<Image> imported = service.importArchive(archive);

        assertThat(imported).hasSize(1);
        Image image = imported.get(0);
        assertThat(image.name()).isEqualTo(NAME);
        assertThat(image.digest())
                .hasToString(images.digest(TestImages.LAYERED))
                .isEqualTo(image.manifest());
        assertThat(image.layers())
                .extracting(l -> l.digest().toString())
                .containsExactlyElementsOf(images.layerDigests(TestImages.LAYERED));
        assertThat(image.imageConfig().cmd()).containsExactly("sh");
        for (Image.Layer layer : image.layers()) {
            assertThat(content.path(layer.digest())).isPresent();
        }
        assertThat(service.get(NAME)).contains(image);
        assertThat(new RegistryImageService(
                                new FileContentStore(root), root.resolve("images"), Platform.current(), Set.of())
                        .get(NAME))
                .as("after a restart")
                .contains(image);
    }

    @Test
    void importsAMultiPlatformArchiveForThisNode() throws Exception {
        Path archive = images.ociArchive(TestImages.MULTI, NAME, work.resolve("multi.tar"));

        Image image = service.importArchive(archive).get(0);

        assertThat(image.digest()).hasToString(images.digest(TestImages.MULTI));
        assertThat(image.manifest()).hasToString(images.digest(TestImages.BASE));
    }

    @Test
    void importsEveryImageOfALayoutDirectory() throws Exception {
        Path layout = work.resolve("layout");
        copyTag(TestImages.LAYERED, layout, "layered");
        copyTag(TestImages.MULTI, layout, "multi");

        List<Image> imported = service.importArchive(layout);

        assertThat(imported).extracting(Image::name).containsExactlyInAnyOrder("layered", "multi");
        assertThat(service.list())
                .extracting(Image::digest)
                .extracting(Digest::toString)
                .containsExactlyInAnyOrder(images.digest(TestImages.LAYERED), images.digest(TestImages.MULTI));
    }

    @Test
    void namesAnImageWithoutRefNameByItsDigest() throws Exception {
        Path archive = tarOfLayout(
                copyTag(TestImages.BASE, work.resolve("layout"), "base"),
                work.resolve("a.tar.gz"),
                true,
                index -> index.replaceAll(",\"annotations\":\\{[^}]*\\}", ""));

        Image image = service.importArchive(archive).get(0);

        assertThat(image.name()).isEqualTo("import/" + images.digest(TestImages.BASE));
    }

    @Test
    void rejectsPathTraversalInTheArchive() throws Exception {
        Path layout = copyTag(TestImages.BASE, work.resolve("layout"), "base");
        for (String evil : List.of("../escaped", "blobs/../../escaped", "/etc/escaped")) {
            Path archive = work.resolve("evil.tar");
            try (TarArchiveOutputStream tar = tarStream(archive, false)) {
                addFile(tar, evil, "gotcha".getBytes(StandardCharsets.UTF_8));
                addLayout(tar, layout, s -> s);
            }

            assertThatThrownBy(() -> service.importArchive(archive)).isInstanceOfSatisfying(ImageException.class, e -> {
                assertThat(e.reason()).isEqualTo("InvalidImage");
                assertThat(e).hasMessageContaining(evil);
            });
        }
        assertThat(work.getParent().resolve("escaped")).doesNotExist();
        assertThat(root.getParent().resolve("escaped")).doesNotExist();
        assertThat(service.list()).isEmpty();
    }

    @Test
    void rejectsLinksInTheArchive() throws Exception {
        Path layout = copyTag(TestImages.BASE, work.resolve("layout"), "base");
        Path archive = work.resolve("link.tar");
        try (TarArchiveOutputStream tar = tarStream(archive, false)) {
            TarArchiveEntry link = new TarArchiveEntry("blobs/sha256/" + "0".repeat(64), TarArchiveEntry.LF_SYMLINK);
            link.setLinkName("/etc/shadow");
            tar.putArchiveEntry(link);
            tar.closeArchiveEntry();
            addLayout(tar, layout, s -> s);
        }

        assertThatThrownBy(() -> service.importArchive(archive))
                .isInstanceOfSatisfying(
                        ImageException.class, e -> assertThat(e.reason()).isEqualTo("InvalidImage"));
        assertThat(service.list()).isEmpty();
    }

    @Test
    void aCorruptedBlobInTheArchiveIsADigestMismatchAndLeavesNoImage() throws Exception {
        Path layout = copyTag(TestImages.LAYERED, work.resolve("layout"), "layered");
        Path layer = layout.resolve("blobs/sha256")
                .resolve(images.layerDigests(TestImages.LAYERED).get(2).substring("sha256:".length()));
        byte[] bytes = Files.readAllBytes(layer);
        bytes[bytes.length / 2] ^= 0x01;
        Files.write(layer, bytes);

        for (Path archive : List.of(layout, tarOfLayout(layout, work.resolve("corrupt.tar"), false, s -> s))) {
            assertThatThrownBy(() -> service.importArchive(archive))
                    .isInstanceOfSatisfying(
                            ImageException.class, e -> assertThat(e.reason()).isEqualTo("DigestMismatch"));
        }
        assertThat(service.list()).isEmpty();
        assertThat(root.resolve("content/ingest")).isEmptyDirectory();
    }

    @Test
    void anArchiveForAnotherPlatformIsInvalid() throws Exception {
        Path archive = images.ociArchive(TestImages.FOREIGN, NAME, work.resolve("foreign.tar"));

        assertThatThrownBy(() -> service.importArchive(archive))
                .isInstanceOfSatisfying(
                        ImageException.class, e -> assertThat(e.reason()).isEqualTo("InvalidImage"));
        assertThat(service.list()).isEmpty();
    }

    @Test
    void whatIsNotALayoutIsInvalid() throws Exception {
        Path notATar = Files.writeString(work.resolve("x.tar"), "hello");
        Path emptyDir = Files.createDirectories(work.resolve("empty"));

        for (Path archive : List.of(notATar, emptyDir, work.resolve("missing"))) {
            assertThatThrownBy(() -> service.importArchive(archive)).isInstanceOf(ImageException.class);
        }
        assertThat(service.list()).isEmpty();
    }

    /** A layout holding only {@code tag} (with its blobs), as {@code name}. */
    private static Path copyTag(String tag, Path layout, String name) {
        List<String> command = new ArrayList<>(List.of("skopeo", "copy", "--quiet"));
        if (tag.equals(TestImages.MULTI)) {
            command.add("--all");
        }
        command.addAll(List.of("oci:" + images.layout() + ":" + tag, "oci:" + layout + ":" + name));
        Processes.Result copied = Processes.run(new ProcessBuilder(command), SKOPEO_TIMEOUT);
        assertThat(copied.exitCode()).as(copied.output()).isZero();
        return layout;
    }

    private static Path tarOfLayout(Path layout, Path archive, boolean gzip, UnaryOperator<String> editIndex)
            throws IOException {
        try (TarArchiveOutputStream tar = tarStream(archive, gzip)) {
            addLayout(tar, layout, editIndex);
        }
        return archive;
    }

    private static TarArchiveOutputStream tarStream(Path archive, boolean gzip) throws IOException {
        OutputStream out = Files.newOutputStream(archive);
        TarArchiveOutputStream tar = new TarArchiveOutputStream(gzip ? new GzipCompressorOutputStream(out) : out);
        tar.setLongFileMode(TarArchiveOutputStream.LONGFILE_POSIX);
        return tar;
    }

    private static void addLayout(TarArchiveOutputStream tar, Path layout, UnaryOperator<String> editIndex)
            throws IOException {
        addFile(tar, "oci-layout", Files.readAllBytes(layout.resolve("oci-layout")));
        addFile(
                tar,
                "index.json",
                editIndex.apply(Files.readString(layout.resolve("index.json"))).getBytes(StandardCharsets.UTF_8));
        try (Stream<Path> blobs = Files.list(layout.resolve("blobs/sha256"))) {
            for (Path blob : blobs.toList()) {
                addFile(tar, "blobs/sha256/" + blob.getFileName(), Files.readAllBytes(blob));
            }
        }
    }

    private static void addFile(TarArchiveOutputStream tar, String name, byte[] bytes) throws IOException {
        TarArchiveEntry entry = new TarArchiveEntry(name, true);
        entry.setSize(bytes.length);
        tar.putArchiveEntry(entry);
        tar.write(bytes);
        tar.closeArchiveEntry();
    }
}
