package dev.stevedore.agent.snapshots;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.stevedore.agent.fs.PosixFiles;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

class OverlayfsSnapshotterTest extends SnapshotterContractTest {
    @Override
    Snapshotter open(Path root) throws IOException {
        return new OverlayfsSnapshotter(root);
    }

    @Test
    void prepareIsConstantTimeWhateverTheImageSize() throws IOException {
        LayerBuilder big = new LayerBuilder();
        for (int i = 0; i < 2000; i++) {
            big.file("usr/share/f" + i, "content " + i);
        }
        unpack(L1, null, big);
        unpack(L2, L1, new LayerBuilder().file("etc/hostname", "h"));
        long usage = bytesOnDisk(root);

        List<Mount> mounts = snapshotter.prepare("ctr", L2);

        Mount overlay = mounts.get(0);
        assertThat(mounts).hasSize(1);
        assertThat(overlay.type()).isEqualTo("overlay");
        Path upper = option(overlay, "upperdir=");
        Path work = option(overlay, "workdir=");
        assertThat(upper).isEmptyDirectory();
        assertThat(work).isEmptyDirectory();
        List<Path> lowers = lowers(overlay);
        assertThat(lowers).hasSize(2);
        assertThat(lowers.get(0).resolve("etc/hostname")).as("top layer first").exists();
        assertThat(lowers.get(1).resolve("usr/share/f1999")).exists();
        assertThat(bytesOnDisk(root) - usage).as("nothing copied").isLessThan(64 * 1024);
    }

    /** Allocated bytes under {@code dir}, as du counts them. */
    private static long bytesOnDisk(Path dir) throws IOException {
        try (Stream<Path> paths = Files.walk(dir)) {
            long total = 0;
            for (Path path : paths.toList()) {
                total += PosixFiles.lstat(path).bytesOnDisk();
            }
            return total;
        }
    }

    @Test
    void pathsInTheMountOptionsAreShortIds() throws IOException {
        unpackTwoLayers();

        Mount overlay = snapshotter.prepare("ctr", L2).get(0);

        String lowerdir = overlay.options().stream()
                .filter(o -> o.startsWith("lowerdir="))
                .findFirst()
                .orElseThrow();
        assertThat(lowerdir).doesNotContain("sha256").matches("lowerdir=" + home + "/\\d+/fs:" + home + "/\\d+/fs");
    }

    @Test
    void refusesMountOptionsLongerThanThePageLimit() throws IOException {
        Path deep = base;
        for (int i = 0; i < 4; i++) {
            deep = deep.resolve("d".repeat(250));
        }
        Snapshotter longRoot = open(deep);
        String parent = null;
        for (int i = 0; i < 4; i++) {
            String chainId = chainId("deep " + i);
            LayerBuilder layer = new LayerBuilder().file("f" + i, "x");
            longRoot.unpack(chainId, parent, layer(layer), LayerBuilder.OCI_GZIP, layer.diffId());
            parent = chainId;
        }
        String top = parent;

        assertThatThrownBy(() -> longRoot.prepare("ctr", top)).hasMessageContaining("over the kernel's limit of 4096");
    }

    @Test
    void aSnapshotWithoutParentIsABindMountOfItsUpperDir() throws IOException {
        Mount mount = snapshotter.prepare("scratch", null).get(0);

        assertThat(mount.type()).isEqualTo("bind");
        assertThat(Path.of(mount.source())).isEmptyDirectory().endsWith(Path.of("upper"));
    }

    @Test
    void refusesARootThatCannotAppearInMountOptions() {
        assertThatThrownBy(() -> open(base.resolve("a:b"))).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> open(base.resolve("a,b"))).isInstanceOf(IllegalArgumentException.class);
    }

    static Path option(Mount mount, String prefix) {
        return Path.of(mount.options().stream()
                .filter(o -> o.startsWith(prefix))
                .findFirst()
                .orElseThrow()
                .substring(prefix.length()));
    }

    static List<Path> lowers(Mount mount) {
        String lowerdir = option(mount, "lowerdir=").toString();
        return java.util.Arrays.stream(lowerdir.split(":")).map(Path::of).toList();
    }

    static boolean isEmpty(Path dir) throws IOException {
        try (var list = Files.list(dir)) {
            return list.findAny().isEmpty();
        }
    }
}
