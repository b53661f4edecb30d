package dev.stevedore.agent.snapshots;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.stevedore.agent.snapshots.LayerBuilder.Compression;
import dev.stevedore.agent.snapshots.Snapshotter.Kind;
import dev.stevedore.agent.snapshots.Snapshotter.SnapshotInfo;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.Optional;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The {@link Snapshotter} contract, run against each implementation by a subclass. */
abstract class SnapshotterContractTest {
    static final String L1 = chainId("layer 1");
    static final String L2 = chainId("layer 2");

    @TempDir
    Path base;
    Path root;
    Path home;
    Snapshotter snapshotter;

    abstract Snapshotter open(Path root) throws IOException;

    @BeforeEach
    void setUp() throws IOException {
        root = base.resolve("state");
        snapshotter = open(root);
        home = root.resolve("snapshots").resolve(snapshotter.name());
    }

    @Test
    void unpacksCommittedSnapshotsWithTheirParents() throws IOException {
        unpackTwoLayers();

        assertThat(snapshotter.exists(L1)).isTrue();
        assertThat(snapshotter.exists(L2)).isTrue();
        assertThat(snapshotter.exists(chainId("other"))).isFalse();
        assertThat(snapshotter.list()).containsExactly(
                new SnapshotInfo(L1, Kind.COMMITTED, null), new SnapshotInfo(L2, Kind.COMMITTED, L1));
    }

    @Test
    void unpackingAnExistingChainIdIsANoOp() throws IOException {
        unpackTwoLayers();
        List<String> before = snapshotDirs();

        snapshotter.unpack(L1, null, layer(new LayerBuilder().file("different", "content")), LayerBuilder.OCI_GZIP);

        assertThat(snapshotDirs()).isEqualTo(before);
        assertThat(snapshotter.list()).hasSize(2);
    }

    @Test
    void unpackNeedsACommittedParent() throws IOException {
        Path layer = layer(new LayerBuilder().file("a", "a"));

        assertThatThrownBy(() -> snapshotter.unpack(L2, L1, layer, LayerBuilder.OCI_GZIP))
                .isInstanceOf(NoSuchFileException.class).hasMessageContaining(L1);
        assertThat(snapshotter.exists(L2)).isFalse();
        assertNothingLeft();
    }

    @Test
    void acceptsOnlySha256ChainIds() throws IOException {
        Path layer = layer(new LayerBuilder().file("a", "a"));
        String hex = L1.substring("sha256:".length());
        for (String bad : new String[] {"../../etc", hex, "sha256:" + hex.toUpperCase(), "sha512:" + hex + hex,
                "sha256:" + hex + "/../x", "sha256:../" + hex.substring(3)}) {
            assertThatThrownBy(() -> snapshotter.unpack(bad, null, layer, LayerBuilder.OCI_GZIP)).as(bad)
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("not a chain ID");
            assertThatThrownBy(() -> snapshotter.unpack(L1, bad, layer, LayerBuilder.OCI_GZIP)).as(bad)
                    .isInstanceOf(IllegalArgumentException.class);
        }
        assertNothingLeft();
    }

    @Test
    void aHostileLayerIsRejectedAndNothingOfItKept() throws IOException {
        Outside outside = new Outside(base);
        unpackTwoLayers();
        // etc/ is a real directory of the layers below; this one swaps it for a symlink, then writes through it.
        Path hostile = layer(new LayerBuilder().file("fine", "fine").symlink("etc", outside.dir.toString())
                .file("etc/sentinel", "x"));

        assertThatThrownBy(() -> snapshotter.unpack(chainId("hostile"), L2, hostile, LayerBuilder.OCI_GZIP))
                .isInstanceOf(LayerRejectedException.class)
                .hasMessage("entry escapes rootfs: etc/sentinel (through symlink etc -> " + outside.dir + ")");

        outside.assertUntouched();
        assertThat(snapshotter.exists(chainId("hostile"))).isFalse();
        assertThat(snapshotter.list()).hasSize(2);
        assertThat(home.resolve("tmp")).isEmptyDirectory();
    }

    @Test
    void aFailureHalfwayLeavesNoSnapshot() throws IOException {
        LayerBuilder big = new LayerBuilder();
        for (int i = 0; i < 50; i++) {
            big.file("file" + i, "x".repeat(10_000));
        }
        byte[] tar = big.tar();
        Path truncated = Files.write(base.resolve("truncated.tar"), Arrays.copyOf(tar, tar.length / 2));

        assertThatThrownBy(() -> snapshotter.unpack(L1, null, truncated, LayerBuilder.OCI_TAR))
                .isInstanceOf(LayerRejectedException.class).hasMessageContaining("truncated");

        assertThat(snapshotter.exists(L1)).isFalse();
        assertNothingLeft();
    }

    @Test
    void startupRemovesWhatACrashLeftAndKeepsWhatWasCommitted() throws IOException {
        unpackTwoLayers();
        List<Mount> mounts = snapshotter.prepare("ctr", L2);
        Files.createDirectories(home.resolve("tmp/98/fs/usr"));     // an unpack the crash interrupted
        Files.createDirectories(home.resolve("99/fs/etc"));         // renamed, but metadata never written

        Snapshotter reopened = open(root);

        assertThat(reopened.list()).isEqualTo(snapshotter.list());
        assertThat(reopened.mounts("ctr")).contains(mounts);
        assertThat(home.resolve("tmp")).isEmptyDirectory();
        assertThat(home.resolve("99")).doesNotExist();
        reopened.unpack(chainId("next"), L2, layer(new LayerBuilder().file("n", "n")), LayerBuilder.OCI_GZIP);
        assertThat(reopened.exists(chainId("next"))).isTrue();
    }

    @Test
    void preparesActiveSnapshots() throws IOException {
        unpackTwoLayers();

        List<Mount> mounts = snapshotter.prepare("ctr", L2);

        assertThat(mounts).isNotEmpty();
        assertThat(snapshotter.mounts("ctr")).contains(mounts);
        assertThat(snapshotter.mounts("unknown")).isEmpty();
        assertThat(snapshotter.mounts(L2)).as("committed snapshots are not mounted").isEmpty();
        assertThat(snapshotter.list()).contains(new SnapshotInfo("ctr", Kind.ACTIVE, L2));
        assertThat(snapshotter.exists(L2)).isTrue();
        assertThatThrownBy(() -> snapshotter.prepare("ctr", L2)).isInstanceOf(FileAlreadyExistsException.class);
        assertThatThrownBy(() -> snapshotter.prepare(L1, L2)).isInstanceOf(FileAlreadyExistsException.class);
        assertThatThrownBy(() -> snapshotter.prepare("x", chainId("missing")))
                .isInstanceOf(NoSuchFileException.class);
        assertThat(snapshotter.prepare("empty", null)).hasSize(1);
    }

    @Test
    void removesTopDownOnly() throws IOException {
        unpackTwoLayers();
        snapshotter.prepare("ctr", L1);

        assertThatThrownBy(() -> snapshotter.remove(L1)).isInstanceOf(SnapshotInUseException.class)
                .hasMessage("snapshot " + L1 + " is the parent of [ctr, " + L2 + "]; remove those first");
        assertThat(snapshotter.exists(L1)).isTrue();

        snapshotter.remove("ctr");
        snapshotter.remove(L2);
        snapshotter.remove(L1);
        snapshotter.remove(L1); // idempotent

        assertThat(snapshotter.list()).isEmpty();
        assertNothingLeft();
        assertThat(snapshotter.mounts("ctr")).isEmpty();
    }

    @Test
    void usageCountsBytesOnDiskOnce() throws IOException {
        long empty = snapshotter.usage();
        String mib = "x".repeat(1 << 20);
        snapshotter.unpack(L1, null, layer(new LayerBuilder().file("big", mib).hardlink("same", "big")),
                LayerBuilder.OCI_GZIP);

        long one = snapshotter.usage();
        assertThat(one - empty).isBetween(1L << 20, (1L << 20) + (1 << 16));

        snapshotter.remove(L1);
        assertThat(snapshotter.usage()).isEqualTo(empty);
    }

    void unpackTwoLayers() throws IOException {
        snapshotter.unpack(L1, null, layer(new LayerBuilder().file("etc/passwd", "root")), LayerBuilder.OCI_GZIP);
        snapshotter.unpack(L2, L1, layer(new LayerBuilder().file("etc/group", "root")), LayerBuilder.OCI_GZIP);
    }

    Path layer(LayerBuilder layer) throws IOException {
        return layer.write(Files.createTempFile(base, "layer", ".tar.gz"), Compression.GZIP);
    }

    void assertNothingLeft() throws IOException {
        assertThat(snapshotDirs()).isEmpty();
        assertThat(home.resolve("tmp")).isEmptyDirectory();
    }

    /** The snapshot directories on disk, besides tmp. */
    List<String> snapshotDirs() throws IOException {
        try (Stream<Path> list = Files.list(home)) {
            return list.map(p -> p.getFileName().toString()).filter(n -> !n.equals("tmp")).sorted().toList();
        }
    }

    static String chainId(String seed) {
        try {
            byte[] hash = MessageDigest.getInstance("SHA-256").digest(seed.getBytes(StandardCharsets.UTF_8));
            return "sha256:" + HexFormat.of().formatHex(hash);
        } catch (NoSuchAlgorithmException e) {
            throw new AssertionError(e);
        }
    }

    static Optional<Mount> only(List<Mount> mounts) {
        return mounts.size() == 1 ? Optional.of(mounts.get(0)) : Optional.empty();
    }
}
