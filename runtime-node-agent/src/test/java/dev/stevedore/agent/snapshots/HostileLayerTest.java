package dev.stevedore.agent.snapshots;

import static dev.stevedore.agent.snapshots.Outside.unix;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.stevedore.agent.fs.PosixFiles;
import dev.stevedore.agent.snapshots.LayerApplier.Mode;
import dev.stevedore.agent.testing.RawTar;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.function.Consumer;
import java.util.function.Function;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Layers written to escape the rootfs, applied as root beside a directory with a sentinel file: each is rejected
 * with a message naming the entry, or its symlinks are resolved inside the rootfs; nothing outside the rootfs is
 * created or changed.
 */
class HostileLayerTest {
    @TempDir
    Path base;

    Path rootfs;
    Outside outside;

    @BeforeEach
    void setUp() throws IOException {
        rootfs = Files.createDirectory(base.resolve("rootfs"));
        outside = new Outside(base);
    }

    @AfterEach
    void nothingChangedOutside() throws IOException {
        outside.assertUntouched();
        try (Stream<Path> children = Files.list(base)) {
            assertThat(children).containsExactlyInAnyOrder(rootfs, outside.dir);
        }
    }

    /** Each case: a layer built against the absolute path of the outside directory, and the expected message. */
    static Stream<Arguments> escapes() {
        return Stream.of(
                escape(
                        "dot-dot traversal",
                        o -> new LayerBuilder().file("../outside/pwned", "x"),
                        "entry escapes rootfs: ../outside/pwned"),
                escape(
                        "dot-dot after a directory",
                        o -> new LayerBuilder().file("a/../../outside/sentinel", "x"),
                        "entry escapes rootfs: a/../../outside/sentinel"),
                escape(
                        "absolute path",
                        o -> new LayerBuilder().file(o + "/pwned", "x"),
                        "entry escapes rootfs: " + "%s/pwned (absolute path)"),
                escape(
                        "symlink loop",
                        o -> new LayerBuilder().symlink("loop", "loop").file("loop/x", "x"),
                        "too many levels of symbolic links: loop/x"),
                escape(
                        "hardlink to a file outside",
                        o -> new LayerBuilder().hardlink("h", "../outside/sentinel"),
                        "entry escapes rootfs: ../outside/sentinel"),
                escape(
                        "hardlink to an absolute path",
                        o -> new LayerBuilder().hardlink("h", o + "/sentinel"),
                        "entry escapes rootfs: %s/sentinel (absolute path)"),
                escape(
                        "hardlink through a symlink",
                        o -> new LayerBuilder().symlink("link", o).hardlink("h", "link/sentinel"),
                        "hardlink h -> link/sentinel: target not found"),
                escape(
                        "hardlink through a relative symlink",
                        o -> new LayerBuilder().symlink("link", "../outside").hardlink("h", "link/sentinel"),
                        "hardlink h -> link/sentinel: target not found"),
                escape(
                        "whiteout of the parent",
                        o -> new LayerBuilder().file("a/.wh...", ""),
                        "invalid whiteout: a/.wh..."));
    }

    private static Arguments escape(String name, Function<String, LayerBuilder> layer, String message) {
        return Arguments.of(name, layer, message);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("escapes")
    void isRejectedInNativeMode(String name, Function<String, LayerBuilder> layer, String message) {
        assertRejected(Mode.NATIVE, layer, message);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("escapes")
    void isRejectedInOverlayMode(String name, Function<String, LayerBuilder> layer, String message) {
        assertRejected(Mode.OVERLAY, layer, message);
    }

    /**
     * Each case: a layer writing through a symlink that points out of the rootfs, and where the write lands. As
     * containerd's fs.RootPath does, and as the container sees it, the symlink is resolved with the rootfs as
     * {@code /}: an absolute target starts at the rootfs, {@code ..} stops there.
     */
    static Stream<Arguments> symlinksPointingOut() {
        Stream<Arguments> cases = Stream.of(
                landing(
                        "absolute symlink",
                        o -> new LayerBuilder().symlink("link", o).file("link/pwned", "x"),
                        "%s/pwned"),
                landing(
                        "relative symlink",
                        o -> new LayerBuilder().symlink("link", "../outside").file("link/sentinel", "x"),
                        "outside/sentinel"),
                landing(
                        "relative symlink deeper down",
                        o -> new LayerBuilder()
                                .dir("a/b/")
                                .symlink("a/b/up", "../../..")
                                .file("a/b/up/outside/pwned", "x"),
                        "outside/pwned"),
                landing(
                        "chain of symlinks",
                        o -> new LayerBuilder()
                                .symlink("one", "two")
                                .symlink("two", "../outside")
                                .file("one/pwned", "x"),
                        "outside/pwned"),
                landing(
                        "directory replaced by a symlink",
                        o -> new LayerBuilder()
                                .dir("etc/")
                                .file("etc/ok", "ok")
                                .symlink("etc", o)
                                .file("etc/pwned", "x"),
                        "%s/pwned"),
                landing(
                        "directory replaced by a relative symlink",
                        o -> new LayerBuilder()
                                .dir("etc/")
                                .symlink("etc", "../outside")
                                .file("etc/sentinel", "x", 0777, 1000, 1000),
                        "outside/sentinel"));
        return cases.flatMap(
                c -> Stream.of(Mode.values()).map(m -> Arguments.of(c.get()[0], c.get()[1], c.get()[2], m)));
    }

    private static Arguments landing(String name, Function<String, LayerBuilder> layer, String landsAt) {
        return Arguments.of(name, layer, landsAt);
    }

    @ParameterizedTest(name = "{0}, {3}")
    @MethodSource("symlinksPointingOut")
    void symlinksPointingOutAreResolvedInsideTheRootfs(
            String name, Function<String, LayerBuilder> layer, String landsAt, Mode mode) throws IOException {
        String o = outside.dir.toString();

        apply(mode, layer.apply(o));

        assertThat(rootfs.resolve(landsAt.replace("%s", o.substring(1)))).hasContent("x");
    }

    @ParameterizedTest
    @EnumSource(Mode.class)
    void whiteoutsThroughSymlinksPointingOutStayInside(Mode mode) throws IOException {
        String o = outside.dir.toString();

        apply(
                mode,
                new LayerBuilder()
                        .symlink("link", o)
                        .whiteout("link/sentinel")
                        .symlink("up", "../outside")
                        .opaque("up"));

        if (mode == Mode.OVERLAY) {
            assertThat(unix(rootfs.resolve(o.substring(1) + "/sentinel")))
                    .containsEntry("mode", 020000)
                    .containsEntry("rdev", 0L);
            assertThat(PosixFiles.xattrs(rootfs.resolve("outside"))).containsKey("trusted.overlay.opaque");
        }
    }

    /** Replacing a symlink is fine; following it to write the replacement is not. */
    @ParameterizedTest
    @EnumSource(Mode.class)
    void replacesSymlinksInsteadOfWritingThroughThem(Mode mode) throws IOException {
        String o = outside.dir.toString();
        apply(
                mode,
                new LayerBuilder()
                        .symlink("file", o + "/sentinel")
                        .file("file", "mine", 04755, 1000, 1000)
                        .symlink("dir", o)
                        .dir("dir/", 0700, 1000, 1000)
                        .symlink("dev", o + "/sentinel")
                        .device("dev", org.apache.commons.compress.archivers.tar.TarConstants.LF_CHR, 1, 3)
                        .symlink("target", o + "/sentinel")
                        .hardlink("alias", "target")
                        .symlink("gone", o)
                        .whiteout("gone")
                        .xattr("user.x", "y")
                        .symlink("meta", o + "/sentinel", 1000, 1000));

        assertThat(Files.readString(rootfs.resolve("file"))).isEqualTo("mine");
        assertThat(Files.isDirectory(rootfs.resolve("dir"), java.nio.file.LinkOption.NOFOLLOW_LINKS))
                .isTrue();
        assertThat(Files.isSymbolicLink(rootfs.resolve("alias")))
                .as("a hardlink to a symlink is a symlink")
                .isTrue();
        assertThat(Files.isSymbolicLink(rootfs.resolve("meta"))).isTrue();
    }

    /** Small limits, so that each case is over exactly one of them. */
    private static final LayerLimits SMALL = new LayerLimits(64 * 1024, 20, 4096, 8, 8 * 1024);

    static Stream<Arguments> overALimit() {
        return Stream.of(
                overLimit(
                        "more entries than allowed",
                        t -> {
                            for (int i = 0; i < 21; i++) {
                                t.file("f" + i, new byte[0]);
                            }
                        },
                        "the layer exceeds the limit of 20 entries (the agent's --max-layer-entries raises it)"),
                overLimit(
                        "more bytes than allowed",
                        t -> t.file("big", new byte[64 * 1024]),
                        "the layer exceeds the limit of 65536 bytes uncompressed (the agent's --max-layer-bytes"),
                overLimit(
                        "extended headers piling up before one entry",
                        t -> {
                            for (int i = 0; i < 5; i++) {
                                t.pax("k" + i + "=" + "v".repeat(600));
                            }
                            t.file("f", new byte[0]);
                        },
                        "the layer exceeds the limit of 4096 bytes of extended (PAX) headers for one entry "
                                + "(the agent's --max-layer-pax-size raises it)"),
                overLimit(
                        "empty extended headers without end",
                        t -> {
                            for (int i = 0; i < 100; i++) {
                                t.pax();
                            }
                        },
                        "the layer exceeds the limit of 4096 bytes of extended (PAX) headers for one entry"),
                overLimit(
                        "more PAX records than allowed",
                        t -> {
                            String[] records = new String[9];
                            for (int i = 0; i < records.length; i++) {
                                records[i] = "SCHILY.xattr.user.x" + i + "=v";
                            }
                            t.pax(records).file("f", new byte[0]);
                        },
                        "the layer exceeds the limit of 8 PAX records for one entry "
                                + "(the agent's --max-layer-pax-records raises it)"),
                overLimit(
                        "directories with long paths, reached through symlinks",
                        t -> {
                            // Each symlink adds 91 bytes to the path the next entry lands in; entries stay short.
                            String parent = "";
                            for (int level = 0; level < 4; level++) {
                                String dir = parent + (char) ('a' + level) + "x".repeat(89);
                                t.dir(dir).symlink("l" + level, dir);
                                parent = "l" + level + "/";
                            }
                            for (int i = 0; i < 10; i++) {
                                t.dir(parent + i);
                            }
                        },
                        "the layer exceeds the limit of 8192 bytes of paths kept while it unpacks "
                                + "(the agent's --max-layer-path-bytes raises it)"));
    }

    private static Arguments overLimit(String name, Consumer<RawTar> layer, String message) {
        return Arguments.of(name, layer, message);
    }

    @ParameterizedTest(name = "{0} ({3})")
    @MethodSource("overALimitInBothModes")
    void aLayerOverALimitIsRejectedNamingTheLimitAndItsFlag(
            String name, Consumer<RawTar> layer, String message, Mode mode) {
        ByteArrayOutputStream tar = new ByteArrayOutputStream();
        layer.accept(new RawTar(tar));

        assertThatThrownBy(
                        () -> new LayerApplier(mode, SMALL).apply(new ByteArrayInputStream(tar.toByteArray()), rootfs))
                .isInstanceOf(LayerRejectedException.class)
                .hasMessageStartingWith(message);
    }

    static Stream<Arguments> overALimitInBothModes() {
        return overALimit()
                .flatMap(a -> Stream.of(Mode.values()).map(m -> Arguments.of(a.get()[0], a.get()[1], a.get()[2], m)));
    }

    /** A gzip of zeros inflates a thousandfold: what follows the end of the archive is read (hashed) and counted. */
    @ParameterizedTest
    @EnumSource(Mode.class)
    void endlessZerosAfterTheEndOfTheArchiveAreCounted(Mode mode) throws IOException {
        ByteArrayOutputStream tar = new ByteArrayOutputStream();
        new RawTar(tar).file("small", new byte[1]).end().zeros(128 * 1024);
        Path blob = LayerBuilder.write(tar.toByteArray(), base.resolve("zeros.tar.gz"), LayerBuilder.Compression.GZIP);
        String diffId = LayerBuilder.diffIdOf(tar.toByteArray());

        assertThatThrownBy(() ->
                        new LayerApplier(mode, SMALL).apply(blob, LayerBuilder.OCI_GZIP, diffId, rootfs, List.of()))
                .isInstanceOf(LayerRejectedException.class)
                .hasMessage("the layer exceeds the limit of 65536 bytes uncompressed (the agent's --max-layer-bytes "
                        + "raises it)");
        Files.delete(blob);
    }

    /** Just under each limit: what a layer may do, it does. */
    @ParameterizedTest
    @EnumSource(Mode.class)
    void aLayerAtTheLimitsUnpacks(Mode mode) throws IOException {
        ByteArrayOutputStream tar = new ByteArrayOutputStream();
        RawTar layer = new RawTar(tar);
        layer.pax("SCHILY.xattr.user.a=1", "SCHILY.xattr.user.b=2", "SCHILY.xattr.user.c=3")
                .pax("SCHILY.xattr.user.d=4", "SCHILY.xattr.user.e=5", "SCHILY.xattr.user.f=6")
                .pax("SCHILY.xattr.user.g=7", "SCHILY.xattr.user.h=8")
                .file("xattrs", new byte[0]);
        for (int i = 1; i < 20; i++) {
            layer.file("f" + i, new byte[1000]);
        }
        layer.end();

        new LayerApplier(mode, SMALL).apply(new ByteArrayInputStream(tar.toByteArray()), rootfs);

        assertThat(rootfs.resolve("f19")).hasSize(1000);
        assertThat(PosixFiles.xattr(rootfs.resolve("xattrs"), "user.h")).containsExactly('8');
    }

    private void assertRejected(Mode mode, Function<String, LayerBuilder> layer, String message) {
        String o = outside.dir.toString();
        byte[] tar = layer.apply(o).tar();

        assertThatThrownBy(
                        () -> new LayerApplier(mode, LayerLimits.DEFAULTS).apply(new ByteArrayInputStream(tar), rootfs))
                .isInstanceOf(LayerRejectedException.class)
                .hasMessageStartingWith(message.replace("%s", o));
    }

    private void apply(Mode mode, LayerBuilder layer) throws IOException {
        new LayerApplier(mode, LayerLimits.DEFAULTS).apply(new ByteArrayInputStream(layer.tar()), rootfs);
    }
}
