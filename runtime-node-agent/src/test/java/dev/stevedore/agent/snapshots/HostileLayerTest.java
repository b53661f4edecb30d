package dev.stevedore.agent.snapshots;

import static dev.stevedore.agent.snapshots.Outside.unix;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.stevedore.agent.fs.PosixFiles;
import dev.stevedore.agent.snapshots.LayerApplier.Mode;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
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

    private void assertRejected(Mode mode, Function<String, LayerBuilder> layer, String message) {
        String o = outside.dir.toString();
        byte[] tar = layer.apply(o).tar();

        assertThatThrownBy(() -> new LayerApplier(mode).apply(new ByteArrayInputStream(tar), rootfs))
                .isInstanceOf(LayerRejectedException.class)
                .hasMessageStartingWith(message.replace("%s", o));
    }

    private void apply(Mode mode, LayerBuilder layer) throws IOException {
        new LayerApplier(mode).apply(new ByteArrayInputStream(layer.tar()), rootfs);
    }
}
