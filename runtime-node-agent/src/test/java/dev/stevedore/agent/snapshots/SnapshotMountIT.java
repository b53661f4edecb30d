package dev.stevedore.agent.snapshots;

import static dev.stevedore.agent.snapshots.Outside.unix;
import static dev.stevedore.agent.snapshots.SnapshotterContractTest.chainId;
import static org.assertj.core.api.Assertions.assertThat;

import dev.stevedore.agent.fs.PosixFiles;
import dev.stevedore.agent.snapshots.LayerBuilder.Compression;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.apache.commons.compress.archivers.tar.TarConstants;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** Mounts what prepare returns, as the runtime will, and looks at the root filesystem a container gets. */
class SnapshotMountIT {
    static final String L1 = chainId("mount 1");
    static final String L2 = chainId("mount 2");
    static final String L3 = chainId("mount 3");

    @TempDir
    Path base;

    @ParameterizedTest
    @ValueSource(strings = {"overlayfs", "native"})
    void theMountedRootfsIsTheImageWithWhiteoutsApplied(String kind) throws Exception {
        Snapshotter snapshotter = kind.equals("native")
                ? new NativeSnapshotter(base.resolve("state"))
                : new OverlayfsSnapshotter(base.resolve("state"));
        unpack(
                snapshotter,
                L1,
                null,
                "1",
                Compression.GZIP,
                new LayerBuilder()
                        .dir("etc/")
                        .file("etc/passwd", "root")
                        .file("etc/deleteme", "x")
                        .dir("opq/")
                        .file("opq/lower", "l")
                        .file("opq/sub/lower", "l")
                        .file("var/cache/apt", "a")
                        .file("var/log", "l")
                        .xattr("user.cap", "ping")
                        .file("bin/busybox", "elf", 04755, 0, 0)
                        .hardlink("bin/sh", "bin/busybox")
                        .symlink("bin/ls", "busybox")
                        .device("dev/null", TarConstants.LF_CHR, 1, 3)
                        .fifo("run/fifo")
                        .dir("home/user/", 0700, 1000, 1000)
                        .file("home/user/.profile", "p", 0600, 1000, 1000));
        unpack(
                snapshotter,
                L2,
                L1,
                "2",
                Compression.ZSTD,
                new LayerBuilder()
                        .whiteout("etc/deleteme")
                        .file("etc/passwd", "root2")
                        .dir("opq/")
                        .opaque("opq")
                        .file("opq/upper2", "u")
                        .whiteout("var/cache"));
        unpack(snapshotter, L3, L2, "3", Compression.NONE, new LayerBuilder().file("opq/upper3", "u"));

        Path rootfs = Files.createDirectory(base.resolve("rootfs"));
        mount(snapshotter.prepare("ctr", L3), rootfs);
        try {
            assertThat(Files.readAllLines(Path.of("/proc/self/mounts")))
                    .as("really mounted")
                    .anySatisfy(line -> assertThat(line)
                            .contains(" " + rootfs + " ")
                            .contains(kind.equals("native") ? "" : " overlay "));
            assertThat(names(rootfs.resolve("etc"))).containsExactly("passwd");
            assertThat(Files.readString(rootfs.resolve("etc/passwd"))).isEqualTo("root2");
            assertThat(names(rootfs.resolve("opq"))).containsExactly("upper2", "upper3");
            assertThat(names(rootfs.resolve("var"))).containsExactly("log");
            assertThat(unix(rootfs.resolve("bin/busybox"))).containsEntry("mode", 0104755);
            assertThat(unix(rootfs.resolve("bin/sh")).get("ino"))
                    .isEqualTo(unix(rootfs.resolve("bin/busybox")).get("ino"));
            assertThat(PosixFiles.xattrs(rootfs.resolve("bin/busybox")))
                    .containsEntry("user.cap", "ping".getBytes(StandardCharsets.UTF_8));
            assertThat(Files.readSymbolicLink(rootfs.resolve("bin/ls"))).hasToString("busybox");
            assertThat(unix(rootfs.resolve("dev/null")))
                    .containsEntry("mode", 020660)
                    .containsEntry("rdev", PosixFiles.makedev(1, 3));
            assertThat(unix(rootfs.resolve("run/fifo"))).containsEntry("mode", 010640);
            assertThat(unix(rootfs.resolve("home/user")))
                    .containsEntry("mode", 040700)
                    .containsEntry("uid", 1000);
            assertThat(Files.readString(rootfs.resolve("home/user/.profile"))).isEqualTo("p");

            Files.writeString(rootfs.resolve("etc/written-by-container"), "w");
            Files.delete(rootfs.resolve("etc/passwd"));
        } finally {
            run("umount", rootfs.toString());
        }

        mount(snapshotter.prepare("another", L3), rootfs);
        try {
            assertThat(names(rootfs.resolve("etc")))
                    .as("one container's writes stay in its snapshot")
                    .containsExactly("passwd");
        } finally {
            run("umount", rootfs.toString());
        }
    }

    /** Unpacks the layer, compressed as given (the media type says so too), under its true diff ID. */
    private void unpack(
            Snapshotter snapshotter,
            String chainId,
            String parent,
            String name,
            Compression compression,
            LayerBuilder layer)
            throws IOException {
        String mediaType = switch (compression) {
            case NONE -> LayerBuilder.OCI_TAR;
            case GZIP -> LayerBuilder.OCI_GZIP;
            case ZSTD -> LayerBuilder.OCI_ZSTD;
        };
        snapshotter.unpack(
                chainId, parent, layer.write(base.resolve("layer" + name), compression), mediaType, layer.diffId());
    }

    static void mount(List<Mount> mounts, Path target) throws Exception {
        for (Mount m : mounts) {
            List<String> command = new ArrayList<>(List.of("mount"));
            if (!m.type().equals("bind")) {
                command.addAll(List.of("-t", m.type()));
            }
            command.addAll(List.of("-o", String.join(",", m.options()), m.source(), target.toString()));
            run(command.toArray(String[]::new));
        }
    }

    static List<String> names(Path dir) throws IOException {
        assertThat(Files.isDirectory(dir, LinkOption.NOFOLLOW_LINKS))
                .as(dir + " is a directory")
                .isTrue();
        try (Stream<Path> list = Files.list(dir)) {
            return list.map(p -> p.getFileName().toString()).sorted().toList();
        }
    }

    static void run(String... command) throws Exception {
        LayerApplierTest.run(command);
    }
}
