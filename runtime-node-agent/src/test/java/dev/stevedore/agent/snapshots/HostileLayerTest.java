package dev.stevedore.agent.snapshots;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

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
 * with a message naming the entry, and nothing outside the rootfs is created or changed.
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
                escape("dot-dot traversal", o -> new LayerBuilder().file("../outside/pwned", "x"),
                        "entry escapes rootfs: ../outside/pwned"),
                escape("dot-dot after a directory", o -> new LayerBuilder().file("a/../../outside/sentinel", "x"),
                        "entry escapes rootfs: a/../../outside/sentinel"),
                escape("absolute path", o -> new LayerBuilder().file(o + "/pwned", "x"),
                        "entry escapes rootfs: " + "%s/pwned (absolute path)"),
                escape("write through an absolute symlink", o -> new LayerBuilder().symlink("link", o)
                        .file("link/pwned", "x"), "entry escapes rootfs: link/pwned (through symlink link -> %s)"),
                escape("write through a relative symlink", o -> new LayerBuilder().symlink("link", "../outside")
                        .file("link/sentinel", "x"),
                        "entry escapes rootfs: link/sentinel (through symlink link -> ../outside)"),
                escape("relative symlink deeper down", o -> new LayerBuilder().dir("a/b/")
                        .symlink("a/b/up", "../../..").file("a/b/up/outside/pwned", "x"),
                        "entry escapes rootfs: a/b/up/outside/pwned (through symlink a/b/up -> ../../..)"),
                escape("chain of symlinks", o -> new LayerBuilder().symlink("one", "two")
                        .symlink("two", "../outside").file("one/pwned", "x"),
                        "entry escapes rootfs: one/pwned (through symlink two -> ../outside)"),
                escape("symlink loop", o -> new LayerBuilder().symlink("loop", "loop").file("loop/x", "x"),
                        "too many levels of symbolic links: loop/x"),
                escape("directory replaced by a symlink", o -> new LayerBuilder().dir("etc/").file("etc/ok", "ok")
                        .symlink("etc", o).file("etc/pwned", "x"),
                        "entry escapes rootfs: etc/pwned (through symlink etc -> %s)"),
                escape("directory replaced by a relative symlink", o -> new LayerBuilder().dir("etc/")
                        .symlink("etc", "../outside").file("etc/sentinel", "x", 0777, 1000, 1000),
                        "entry escapes rootfs: etc/sentinel (through symlink etc -> ../outside)"),
                escape("hardlink to a file outside", o -> new LayerBuilder().hardlink("h", "../outside/sentinel"),
                        "entry escapes rootfs: ../outside/sentinel"),
                escape("hardlink to an absolute path", o -> new LayerBuilder().hardlink("h", o + "/sentinel"),
                        "entry escapes rootfs: %s/sentinel (absolute path)"),
                escape("hardlink through a symlink", o -> new LayerBuilder().symlink("link", o)
                        .hardlink("h", "link/sentinel"), "entry escapes rootfs: h (through symlink link -> %s)"),
                escape("hardlink through a relative symlink", o -> new LayerBuilder().symlink("link", "../outside")
                        .hardlink("h", "link/sentinel"),
                        "entry escapes rootfs: h (through symlink link -> ../outside)"),
                escape("whiteout through a symlink", o -> new LayerBuilder().symlink("link", o)
                        .whiteout("link/sentinel"), "entry escapes rootfs: link/.wh.sentinel (through symlink"),
                escape("opaque marker through a symlink", o -> new LayerBuilder().symlink("link", "../outside")
                        .opaque("link"), "entry escapes rootfs: link/.wh..wh..opq (through symlink"),
                escape("whiteout of the parent", o -> new LayerBuilder().file("a/.wh...", ""),
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

    /** Replacing a symlink is fine; following it to write the replacement is not. */
    @ParameterizedTest
    @EnumSource(Mode.class)
    void replacesSymlinksInsteadOfWritingThroughThem(Mode mode) throws IOException {
        String o = outside.dir.toString();
        apply(mode, new LayerBuilder()
                .symlink("file", o + "/sentinel").file("file", "mine", 04755, 1000, 1000)
                .symlink("dir", o).dir("dir/", 0700, 1000, 1000)
                .symlink("dev", o + "/sentinel").device("dev", org.apache.commons.compress.archivers.tar
                        .TarConstants.LF_CHR, 1, 3)
                .symlink("target", o + "/sentinel").hardlink("alias", "target")
                .symlink("gone", o).whiteout("gone")
                .xattr("user.x", "y").symlink("meta", o + "/sentinel", 1000, 1000));

        assertThat(Files.readString(rootfs.resolve("file"))).isEqualTo("mine");
        assertThat(Files.isDirectory(rootfs.resolve("dir"), java.nio.file.LinkOption.NOFOLLOW_LINKS)).isTrue();
        assertThat(Files.isSymbolicLink(rootfs.resolve("alias"))).as("a hardlink to a symlink is a symlink").isTrue();
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
