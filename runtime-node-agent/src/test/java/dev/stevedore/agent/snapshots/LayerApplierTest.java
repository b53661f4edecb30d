package dev.stevedore.agent.snapshots;

import static dev.stevedore.agent.snapshots.Outside.unix;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.stevedore.agent.fs.PosixFiles;
import dev.stevedore.agent.snapshots.LayerApplier.Mode;
import dev.stevedore.agent.snapshots.LayerBuilder.Compression;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.UserDefinedFileAttributeView;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveOutputStream;
import org.apache.commons.compress.archivers.tar.TarConstants;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.MethodSource;

/** What a layer becomes on disk, in both modes. Runs as root: owners, devices and trusted.* need it. */
class LayerApplierTest {
    @TempDir
    Path base;

    Path rootfs;

    @BeforeEach
    void rootfs() throws IOException {
        rootfs = Files.createDirectory(base.resolve("rootfs"));
    }

    @ParameterizedTest
    @EnumSource(Mode.class)
    void keepsFilesDirectoriesModesOwnersAndTimes(Mode mode) throws IOException {
        apply(
                mode,
                new LayerBuilder()
                        .dir("usr/", 0755, 0, 0)
                        .dir("usr/bin/", 0711, 0, 0)
                        .file("usr/bin/su", "#!su", 04755, 0, 0)
                        .file("usr/bin/wall", "#!wall", 02755, 0, 5)
                        .dir("tmp/", 01777, 0, 0)
                        .dir("shared/", 02770, 1000, 1001)
                        .file("home/user/.profile", "PS1=$", 0600, 1000, 1001)
                        .file("big-ids", "x", 0644, 3_000_000_000L, 4_000_000_000L));

        assertThat(Files.readString(rootfs.resolve("usr/bin/su"))).isEqualTo("#!su");
        assertThat(unix(rootfs.resolve("usr/bin/su")))
                .containsEntry("mode", 0104755)
                .containsEntry("uid", 0);
        assertThat(unix(rootfs.resolve("usr/bin/wall")))
                .containsEntry("mode", 0102755)
                .containsEntry("gid", 5);
        assertThat(unix(rootfs.resolve("usr/bin"))).containsEntry("mode", 040711);
        assertThat(unix(rootfs.resolve("tmp"))).containsEntry("mode", 041777);
        assertThat(unix(rootfs.resolve("shared")))
                .containsEntry("mode", 042770)
                .containsEntry("uid", 1000)
                .containsEntry("gid", 1001);
        assertThat(unix(rootfs.resolve("home/user/.profile")))
                .containsEntry("mode", 0100600)
                .containsEntry("uid", 1000)
                .containsEntry("gid", 1001);
        assertThat(unix(rootfs.resolve("home")))
                .as("a parent the layer left out")
                .containsEntry("mode", 040755);
        assertThat(unix(rootfs.resolve("big-ids")))
                .containsEntry("uid", (int) 3_000_000_000L)
                .containsEntry("gid", (int) 4_000_000_000L);
        for (String p : new String[] {"usr", "usr/bin", "usr/bin/su", "tmp", "shared", "home/user/.profile"}) {
            assertThat(Files.getLastModifiedTime(rootfs.resolve(p))).as(p).isEqualTo(LayerBuilder.MTIME);
        }
    }

    static Stream<Arguments> encodings() {
        return Stream.of(
                Arguments.of(Compression.NONE, LayerBuilder.OCI_TAR),
                Arguments.of(Compression.GZIP, LayerBuilder.OCI_GZIP),
                Arguments.of(Compression.ZSTD, LayerBuilder.OCI_ZSTD),
                Arguments.of(Compression.GZIP, LayerBuilder.DOCKER_GZIP),
                Arguments.of(Compression.ZSTD, LayerBuilder.OCI_GZIP), // mislabelled: the magic bytes win
                Arguments.of(Compression.GZIP, null));
    }

    @ParameterizedTest
    @MethodSource("encodings")
    void readsEveryCompressionAndMediaType(Compression compression, String mediaType) throws IOException {
        LayerBuilder layer = new LayerBuilder().file("etc/hostname", "box");
        Path blob = layer.write(base.resolve("layer"), compression);

        new LayerApplier(Mode.NATIVE, LayerLimits.DEFAULTS).apply(blob, mediaType, layer.diffId(), rootfs, List.of());

        assertThat(Files.readString(rootfs.resolve("etc/hostname"))).isEqualTo("box");
    }

    @Test
    void rejectsAnUnknownMediaType() throws IOException {
        LayerBuilder layer = new LayerBuilder().file("a", "a");
        Path blob = layer.write(base.resolve("layer"));

        assertThatThrownBy(() -> new LayerApplier(Mode.NATIVE, LayerLimits.DEFAULTS)
                        .apply(blob, "application/vnd.oci.image.config.v1+json", layer.diffId(), rootfs, List.of()))
                .isInstanceOf(LayerRejectedException.class)
                .hasMessageContaining("unsupported layer media type");
    }

    @ParameterizedTest
    @EnumSource(Mode.class)
    void keepsSymlinksAndHardlinks(Mode mode) throws IOException {
        apply(
                mode,
                new LayerBuilder()
                        .file("bin/busybox", "elf", 0755, 0, 0)
                        .hardlink("bin/sh", "bin/busybox")
                        .hardlink("./bin/ls", "./bin/busybox")
                        .symlink("bin/ash", "busybox", 1000, 1000)
                        .symlink("abs", "/etc/passwd")
                        .symlink("dangling", "../../nowhere/"));

        Object inode = unix(rootfs.resolve("bin/busybox")).get("ino");
        assertThat(unix(rootfs.resolve("bin/sh"))).containsEntry("ino", inode).containsEntry("nlink", 3);
        assertThat(unix(rootfs.resolve("bin/ls"))).containsEntry("ino", inode);
        assertThat(Files.readSymbolicLink(rootfs.resolve("bin/ash"))).hasToString("busybox");
        assertThat(unix(rootfs.resolve("bin/ash"))).containsEntry("uid", 1000).containsEntry("gid", 1000);
        assertThat(Files.getLastModifiedTime(rootfs.resolve("bin/ash"), LinkOption.NOFOLLOW_LINKS))
                .isEqualTo(LayerBuilder.MTIME);
        assertThat(Files.readSymbolicLink(rootfs.resolve("abs"))).hasToString("/etc/passwd");
        assertThat(Files.readSymbolicLink(rootfs.resolve("dangling"))).hasToString("../../nowhere/");
    }

    @ParameterizedTest
    @EnumSource(Mode.class)
    void createsDevicesAndFifos(Mode mode) throws IOException {
        apply(
                mode,
                new LayerBuilder()
                        .device("dev/null", TarConstants.LF_CHR, 1, 3)
                        .device("dev/tty4096", TarConstants.LF_CHR, 4, 4096)
                        .device("dev/sda", TarConstants.LF_BLK, 8, 0)
                        .fifo("run/initctl"));

        assertThat(unix(rootfs.resolve("dev/null")))
                .containsEntry("mode", 020660)
                .containsEntry("gid", 6)
                .containsEntry("rdev", PosixFiles.makedev(1, 3));
        assertThat(unix(rootfs.resolve("dev/tty4096"))).containsEntry("rdev", PosixFiles.makedev(4, 4096));
        assertThat(unix(rootfs.resolve("dev/sda")))
                .containsEntry("mode", 060660)
                .containsEntry("rdev", PosixFiles.makedev(8, 0));
        assertThat(unix(rootfs.resolve("run/initctl"))).containsEntry("mode", 010640);
    }

    @ParameterizedTest
    @EnumSource(Mode.class)
    void keepsXattrsButNotOverlayOnes(Mode mode) throws IOException {
        apply(
                mode,
                new LayerBuilder()
                        .xattr("user.mime_type", "text/plain")
                        .xattr("trusted.note", "kept")
                        .file("file", "x")
                        .xattr("user.dir", "yes")
                        .dir("dir/")
                        .xattr("trusted.overlay.redirect", "/etc")
                        .xattr("trusted.overlay.opaque", "y")
                        .dir("fake/"));

        assertThat(PosixFiles.xattrs(rootfs.resolve("file")))
                .containsEntry("user.mime_type", bytes("text/plain"))
                .containsEntry("trusted.note", bytes("kept"));
        assertThat(PosixFiles.xattrs(rootfs.resolve("dir"))).containsEntry("user.dir", bytes("yes"));
        assertThat(PosixFiles.xattrs(rootfs.resolve("fake"))).isEmpty();
    }

    /** GNU tar writes xattr values as raw bytes, which must survive byte for byte (security.capability is binary). */
    @Test
    void keepsBinaryXattrValuesWrittenByGnuTar() throws Exception {
        Path source = Files.createDirectory(base.resolve("source"));
        Path file = Files.writeString(source.resolve("ping"), "elf");
        byte[] binary = new byte[256];
        for (int i = 0; i < binary.length; i++) {
            binary[i] = (byte) i; // NUL and invalid UTF-8 included
        }
        Files.getFileAttributeView(file, UserDefinedFileAttributeView.class)
                .write("bin", java.nio.ByteBuffer.wrap(binary));
        Path blob = base.resolve("layer.tar");
        run(
                "tar",
                "--format=posix",
                "--xattrs",
                "--xattrs-include=user.*",
                "-C",
                source.toString(),
                "-cf",
                blob.toString(),
                ".");

        new LayerApplier(Mode.NATIVE, LayerLimits.DEFAULTS)
                .apply(blob, LayerBuilder.OCI_TAR, LayerBuilder.diffIdOf(Files.readAllBytes(blob)), rootfs, List.of());

        assertThat(PosixFiles.xattrs(rootfs.resolve("ping")).get("user.bin")).isEqualTo(binary);
    }

    @Test
    void readsLongNamesAndBigNumbersInGnuEncodingToo() throws IOException {
        String longName = "d/" + "n".repeat(150) + "/" + "f".repeat(120);
        String longTarget = "t".repeat(200);
        byte[] tar = new LayerBuilder(TarArchiveOutputStream.LONGFILE_GNU, TarArchiveOutputStream.BIGNUMBER_STAR)
                .file(longName, "long", 0644, 3_000_000_000L, 7)
                .symlink("link", longTarget)
                .tar();

        new LayerApplier(Mode.NATIVE, LayerLimits.DEFAULTS).apply(new ByteArrayInputStream(tar), rootfs);

        assertThat(Files.readString(rootfs.resolve(longName))).isEqualTo("long");
        assertThat(unix(rootfs.resolve(longName))).containsEntry("uid", (int) 3_000_000_000L);
        assertThat(Files.readSymbolicLink(rootfs.resolve("link"))).hasToString(longTarget);
    }

    @Test
    void setsDirectoryTimesAfterTheirChildren() throws IOException {
        apply(Mode.OVERLAY, new LayerBuilder().dir("etc/").file("etc/a", "a").whiteout("etc/gone"));

        assertThat(Files.getLastModifiedTime(rootfs.resolve("etc"))).isEqualTo(LayerBuilder.MTIME);
    }

    @Test
    void nativeWhiteoutDeletesTheLowerFileOrTree() throws IOException {
        apply(
                Mode.NATIVE,
                new LayerBuilder().file("etc/keep", "k").file("etc/gone", "g").file("var/cache/x", "x"));

        apply(
                Mode.NATIVE,
                new LayerBuilder().whiteout("etc/gone").whiteout("var/cache").whiteout("never/existed"));

        assertThat(rootfs.resolve("etc/keep")).exists();
        assertThat(rootfs.resolve("etc/gone")).doesNotExist();
        assertThat(rootfs.resolve("var")).isEmptyDirectory();
        assertThat(rootfs.resolve("never")).doesNotExist();
    }

    @Test
    void nativeOpaqueDirectoryKeepsOnlyThisLayersEntries() throws IOException {
        apply(
                Mode.NATIVE,
                new LayerBuilder()
                        .file("opq/lower", "l")
                        .file("opq/sub/lower", "l")
                        .file("opq/sub2/lower", "l")
                        .file("other/lower", "l"));

        apply(
                Mode.NATIVE,
                new LayerBuilder()
                        .dir("opq/")
                        .file("opq/early", "e")
                        .dir("opq/sub2/")
                        .opaque("opq")
                        .file("opq/late", "l"));

        try (Stream<Path> list = Files.list(rootfs.resolve("opq"))) {
            assertThat(list.map(p -> p.getFileName().toString())).containsExactlyInAnyOrder("early", "late", "sub2");
        }
        assertThat(rootfs.resolve("opq/sub2")).isEmptyDirectory();
        assertThat(rootfs.resolve("other/lower")).exists();
    }

    @Test
    void overlayWhiteoutIsACharDevice00AndOpaqueAnXattr() throws IOException {
        apply(
                Mode.OVERLAY,
                new LayerBuilder()
                        .dir("etc/")
                        .whiteout("etc/gone")
                        .dir("opq/")
                        .opaque("opq")
                        .file("opq/new", "n")
                        .whiteout("deep/er/gone"));

        assertThat(unix(rootfs.resolve("etc/gone")))
                .containsEntry("mode", 020000)
                .containsEntry("rdev", 0L);
        assertThat(unix(rootfs.resolve("deep/er/gone"))).containsEntry("mode", 020000);
        assertThat(PosixFiles.xattrs(rootfs.resolve("opq"))).containsEntry("trusted.overlay.opaque", bytes("y"));
        assertThat(rootfs.resolve("opq/.wh..wh..opq")).doesNotExist();
        assertThat(rootfs.resolve("opq/new")).exists();
    }

    @ParameterizedTest
    @EnumSource(Mode.class)
    void followsSymlinksThatStayInside(Mode mode) throws IOException {
        apply(
                mode,
                new LayerBuilder()
                        .dir("usr/lib/")
                        .symlink("lib", "usr/lib")
                        .symlink("usr/lib64", "../lib")
                        .file("lib/libc.so", "c")
                        .file("usr/lib64/libm.so", "m"));

        assertThat(Files.readString(rootfs.resolve("usr/lib/libc.so"))).isEqualTo("c");
        assertThat(Files.readString(rootfs.resolve("usr/lib/libm.so"))).isEqualTo("m");
    }

    @Test
    void rejectsACorruptOrTruncatedArchive() throws IOException {
        byte[] tar =
                new LayerBuilder().file("a", "x".repeat(2000)).file("b", "b").tar();
        byte[] corrupt = tar.clone();
        corrupt[10] ^= 1; // inside the first header: its checksum no longer matches

        assertThatThrownBy(() -> new LayerApplier(Mode.NATIVE, LayerLimits.DEFAULTS)
                        .apply(new ByteArrayInputStream(corrupt), rootfs))
                .isInstanceOf(LayerRejectedException.class)
                .hasMessageContaining("checksum");
        assertThatThrownBy(() -> new LayerApplier(Mode.NATIVE, LayerLimits.DEFAULTS)
                        .apply(new ByteArrayInputStream(Arrays.copyOf(tar, 1200)), rootfs))
                .isInstanceOf(LayerRejectedException.class)
                .hasMessageContaining("truncated");
    }

    /**
     * Go's archive/tar, which image scanners and builders use, reads no data for links, symlinks, devices,
     * directories and fifos whatever their size field says; the next header follows right away. A layer must not
     * unpack into something other than what they see.
     */
    @ParameterizedTest
    @EnumSource(Mode.class)
    void headerOnlyEntriesHaveNoDataWhateverTheirSizeSays(Mode mode) throws IOException {
        byte[] tar = concat(
                header("claims-data/", TarConstants.LF_DIR, 512),
                header("link", TarConstants.LF_SYMLINK, 1024),
                new LayerBuilder().file("after", "what Go reads").tar());

        apply(mode, tar);

        assertThat(Files.isDirectory(rootfs.resolve("claims-data"), LinkOption.NOFOLLOW_LINKS))
                .isTrue();
        assertThat(Files.readSymbolicLink(rootfs.resolve("link"))).hasToString("after");
        assertThat(rootfs.resolve("after")).hasContent("what Go reads");
    }

    /**
     * The agent may run under LANG=C, where the JDK encodes file names as ASCII and a {@link Path} cannot hold
     * "é": names (ustar fields and PAX path records alike, UTF-8 in layers) must unpack byte for byte anyway.
     */
    @ParameterizedTest
    @EnumSource(Mode.class)
    void unpacksUtf8NamesUnderTheCLocale(Mode mode) throws Exception {
        Path layer = new LayerBuilder()
                .file("café", "ustar name")
                .symlink("lien", "café")
                .hardlink("dur", "café")
                .nonAsciiNamesInPax()
                .file("naïve/über.txt", "PAX path")
                .write(base.resolve("layer.tar"));

        List<String> output = runJava(
                Map.of("LANG", "C", "LC_ALL", "C"),
                ApplyLayerMain.class.getName(),
                mode.name(),
                layer.toString(),
                rootfs.toString());

        assertThat(output).as("the child JVM's file name encoding").first().isEqualTo("ANSI_X3.4-1968");
        assertThat(rawNames(rootfs)).containsExactlyInAnyOrder("caf%C3%A9", "lien", "dur", "na%C3%AFve");
        Path cafe = child(rootfs, "caf%C3%A9");
        assertThat(cafe).hasContent("ustar name");
        assertThat(unix(child(rootfs, "dur")).get("ino")).isEqualTo(unix(cafe).get("ino"));
        assertThat(rawPath(Files.readSymbolicLink(child(rootfs, "lien")))).endsWith("/caf%C3%A9");
        Path naive = child(rootfs, "na%C3%AFve");
        assertThat(rawNames(naive)).containsExactly("%C3%BCber.txt");
        assertThat(child(naive, "%C3%BCber.txt")).hasContent("PAX path");
    }

    /** The names in a directory as the JDK's file URIs spell their bytes, whatever the locale. */
    private static List<String> rawNames(Path dir) throws IOException {
        try (Stream<Path> list = Files.list(dir)) {
            return list.map(p -> rawPath(p).substring(rawPath(dir).length() + 1))
                    .toList();
        }
    }

    private static Path child(Path dir, String rawName) throws IOException {
        try (Stream<Path> list = Files.list(dir)) {
            return list.filter(p -> rawPath(p).endsWith("/" + rawName))
                    .findFirst()
                    .orElseThrow();
        }
    }

    private static String rawPath(Path path) {
        String raw = path.toAbsolutePath().toUri().getRawPath();
        return raw.endsWith("/") ? raw.substring(0, raw.length() - 1) : raw;
    }

    /** Runs a main class of this classpath in a new JVM with extra environment; returns its output lines. */
    private static List<String> runJava(Map<String, String> environment, String mainClass, String... args)
            throws IOException, InterruptedException {
        List<String> command = new ArrayList<>(List.of(
                Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-cp",
                System.getProperty("java.class.path"),
                mainClass));
        command.addAll(List.of(args));
        ProcessBuilder builder = new ProcessBuilder(command).redirectErrorStream(true);
        builder.environment()
                .keySet()
                .removeIf(k -> k.startsWith("LC_") || k.equals("LANG") || k.startsWith("JAVA_TOOL"));
        builder.environment().putAll(environment);
        return finish(builder, mainClass).lines().toList();
    }

    /** A ustar header as commons-compress writes it, with a size field that says what we want it to say. */
    private static byte[] header(String name, byte type, long size) {
        TarArchiveEntry entry = new TarArchiveEntry(name, type);
        entry.setMode(type == TarConstants.LF_DIR ? 0755 : 0777);
        entry.setModTime(LayerBuilder.MTIME.toMillis());
        if (type == TarConstants.LF_SYMLINK) {
            entry.setLinkName("after");
        }
        entry.setSize(size);
        byte[] header = new byte[512];
        entry.writeEntryHeader(header);
        return header;
    }

    private static byte[] concat(byte[]... parts) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (byte[] part : parts) {
            out.writeBytes(part);
        }
        return out.toByteArray();
    }

    private void apply(Mode mode, byte[] tar) throws IOException {
        new LayerApplier(mode, LayerLimits.DEFAULTS).apply(new ByteArrayInputStream(tar), rootfs);
    }

    private void apply(Mode mode, LayerBuilder layer) throws IOException {
        new LayerApplier(mode, LayerLimits.DEFAULTS).apply(new ByteArrayInputStream(layer.tar()), rootfs);
    }

    private static byte[] bytes(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    static void run(String... command) throws IOException, InterruptedException {
        finish(new ProcessBuilder(command).redirectErrorStream(true), String.join(" ", command));
    }

    /**
     * Runs the process to a zero exit within two minutes and returns its output, which goes to a file read after the
     * wait: a pipe read to its end first would make the timeout dead.
     */
    private static String finish(ProcessBuilder builder, String what) throws IOException, InterruptedException {
        Path output = Files.createTempFile("process", ".out");
        try {
            Process p = builder.redirectOutput(output.toFile()).start();
            if (!p.waitFor(120, TimeUnit.SECONDS)) {
                p.destroyForcibly().waitFor();
                throw new AssertionError(what + " did not finish in 120s: " + Files.readString(output));
            }
            String out = Files.readString(output);
            assertThat(p.exitValue()).as(what + ": " + out).isZero();
            return out;
        } finally {
            Files.deleteIfExists(output);
        }
    }
}
