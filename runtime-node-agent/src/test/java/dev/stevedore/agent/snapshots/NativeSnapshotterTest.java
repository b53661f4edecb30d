package dev.stevedore.agent.snapshots;

import static dev.stevedore.agent.snapshots.Outside.unix;
import static org.assertj.core.api.Assertions.assertThat;

import dev.stevedore.agent.fs.PosixFiles;
import dev.stevedore.agent.snapshots.LayerBuilder.Compression;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.apache.commons.compress.archivers.tar.TarConstants;
import org.junit.jupiter.api.Test;

class NativeSnapshotterTest extends SnapshotterContractTest {
    @Override
    Snapshotter open(Path root) throws IOException {
        return new NativeSnapshotter(root);
    }

    @Test
    void prepareCopiesTheParentKeepingEverything() throws IOException {
        unpack(
                L1,
                null,
                new LayerBuilder()
                        .xattr("trusted.t", "1")
                        .xattr("user.u", "2")
                        .file("bin/busybox", "elf", 04755, 0, 0)
                        .hardlink("bin/sh", "bin/busybox")
                        .symlink("bin/ls", "busybox", 7, 8)
                        .dir("tmp/", 01777, 0, 0)
                        .device("dev/null", TarConstants.LF_CHR, 1, 3)
                        .fifo("run/fifo")
                        .file("home/u/f", "f", 0600, 1000, 1000));

        List<Mount> mounts = snapshotter.prepare("ctr", L1);

        assertThat(mounts).singleElement().satisfies(m -> {
            assertThat(m.type()).isEqualTo("bind");
            assertThat(m.options()).containsExactly("rbind", "rw");
        });
        Path fs = Path.of(mounts.get(0).source());
        Path parent = committedFs(L1);
        for (String p : new String[] {"bin", "bin/busybox", "bin/ls", "tmp", "dev/null", "run/fifo", "home/u/f"}) {
            var copy = unix(fs.resolve(p));
            var original = unix(parent.resolve(p));
            for (String attr : new String[] {"mode", "uid", "gid", "rdev", "lastModifiedTime"}) {
                assertThat(copy.get(attr)).as(p + " " + attr).isEqualTo(original.get(attr));
            }
            assertThat(copy.get("ino")).as(p + " is a copy").isNotEqualTo(original.get("ino"));
        }
        assertThat(unix(fs.resolve("bin/sh")).get("ino"))
                .isEqualTo(unix(fs.resolve("bin/busybox")).get("ino"));
        assertThat(PosixFiles.xattrs(fs.resolve("bin/busybox")))
                .containsEntry("trusted.t", "1".getBytes(StandardCharsets.UTF_8))
                .containsEntry("user.u", "2".getBytes(StandardCharsets.UTF_8));
        assertThat(Files.readSymbolicLink(fs.resolve("bin/ls"))).hasToString("busybox");

        Files.writeString(fs.resolve("home/u/f"), "changed in the container");
        assertThat(Files.readString(parent.resolve("home/u/f"))).isEqualTo("f");
    }

    @Test
    void committedSnapshotsAreWholeTreesWithWhiteoutsApplied() throws IOException {
        unpack(
                L1,
                null,
                new LayerBuilder().file("etc/gone", "g").file("etc/keep", "k").file("opq/lower", "l"));
        LayerBuilder upper = new LayerBuilder()
                .whiteout("etc/gone")
                .dir("opq/")
                .opaque("opq")
                .file("opq/upper", "u");
        snapshotter.unpack(
                L2,
                L1,
                upper.write(base.resolve("upper.tar.zst"), Compression.ZSTD),
                LayerBuilder.OCI_ZSTD,
                upper.diffId());

        Path fs = committedFs(L2);
        assertThat(fs.resolve("etc/keep")).exists();
        assertThat(fs.resolve("etc/gone")).doesNotExist();
        assertThat(fs.resolve("opq/upper")).exists();
        assertThat(fs.resolve("opq/lower")).doesNotExist();
        assertThat(committedFs(L1).resolve("etc/gone"))
                .as("the parent is untouched")
                .exists();
        assertThat(committedFs(L1).resolve("opq/lower")).exists();
    }

    /** The committed tree, found through its info.json the way the snapshotter stores it. */
    Path committedFs(String chainId) throws IOException {
        for (String dir : snapshotDirs()) {
            String info = Files.readString(home.resolve(dir).resolve("info.json"));
            if (info.contains("\"" + chainId + "\"") && info.contains("COMMITTED")) {
                return home.resolve(dir).resolve("fs");
            }
        }
        throw new AssertionError("no committed snapshot " + chainId);
    }
}
