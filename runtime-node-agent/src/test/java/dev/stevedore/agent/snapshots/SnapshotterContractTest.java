package dev.stevedore.agent.snapshots;

import static dev.stevedore.agent.snapshots.Outside.unix;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.stevedore.agent.fs.PosixFiles;
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
import org.junit.jupiter.api.AfterEach;
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
    Path mountedView;

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
        assertThat(snapshotter.list())
                .containsExactly(new SnapshotInfo(L1, Kind.COMMITTED, null), new SnapshotInfo(L2, Kind.COMMITTED, L1));
    }

    @Test
    void unpackingAnExistingChainIdIsANoOp() throws IOException {
        unpackTwoLayers();
        List<String> before = snapshotDirs();

        unpack(L1, null, new LayerBuilder().file("different", "content"));

        assertThat(snapshotDirs()).isEqualTo(before);
        assertThat(snapshotter.list()).hasSize(2);
    }

    @Test
    void unpackNeedsACommittedParent() throws IOException {
        LayerBuilder layer = new LayerBuilder().file("a", "a");

        assertThatThrownBy(() -> unpack(L2, L1, layer))
                .isInstanceOf(NoSuchFileException.class)
                .hasMessageContaining(L1);
        assertThat(snapshotter.exists(L2)).isFalse();
        assertNothingLeft();
    }

    @Test
    void acceptsOnlySha256ChainIds() throws IOException {
        LayerBuilder layer = new LayerBuilder().file("a", "a");
        Path blob = layer(layer);
        String hex = L1.substring("sha256:".length());
        for (String bad : new String[] {
            "../../etc",
            hex,
            "sha256:" + hex.toUpperCase(),
            "sha512:" + hex + hex,
            "sha256:" + hex + "/../x",
            "sha256:../" + hex.substring(3)
        }) {
            assertThatThrownBy(() -> snapshotter.unpack(bad, null, blob, LayerBuilder.OCI_GZIP, layer.diffId()))
                    .as(bad)
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("not a chain ID");
            assertThatThrownBy(() -> snapshotter.unpack(L1, bad, blob, LayerBuilder.OCI_GZIP, layer.diffId()))
                    .as(bad)
                    .isInstanceOf(IllegalArgumentException.class);
            assertThatThrownBy(() -> snapshotter.unpack(L1, null, blob, LayerBuilder.OCI_GZIP, bad))
                    .as(bad)
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("not a diff ID");
        }
        assertNothingLeft();
    }

    @Test
    void aHostileLayerIsRejectedAndNothingOfItKept() throws IOException {
        Outside outside = new Outside(base);
        unpackTwoLayers();
        // etc/ is a real directory of the layers below; this one swaps it for a symlink, then writes through it.
        LayerBuilder hostile = new LayerBuilder().file("fine", "fine").file("../outside/sentinel", "x");

        assertThatThrownBy(() -> unpack(chainId("hostile"), L2, hostile))
                .isInstanceOf(LayerRejectedException.class)
                .hasMessage("entry escapes rootfs: ../outside/sentinel");

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

        assertThatThrownBy(() -> snapshotter.unpack(L1, null, truncated, LayerBuilder.OCI_TAR, big.diffId()))
                .isInstanceOf(LayerRejectedException.class)
                .hasMessageContaining("truncated");

        assertThat(snapshotter.exists(L1)).isFalse();
        assertNothingLeft();
    }

    @Test
    void startupRemovesWhatACrashLeftAndKeepsWhatWasCommitted() throws IOException {
        unpackTwoLayers();
        List<Mount> mounts = snapshotter.prepare("ctr", L2);
        Files.createDirectories(home.resolve("tmp/98/fs/usr")); // an unpack the crash interrupted
        Files.createDirectories(home.resolve("99/fs/etc")); // renamed, but metadata never written

        Snapshotter reopened = open(root);

        assertThat(reopened.list()).isEqualTo(snapshotter.list());
        assertThat(reopened.mounts("ctr")).contains(mounts);
        assertThat(home.resolve("tmp")).isEmptyDirectory();
        assertThat(home.resolve("99")).doesNotExist();
        LayerBuilder next = new LayerBuilder().file("n", "n");
        reopened.unpack(chainId("next"), L2, layer(next), LayerBuilder.OCI_GZIP, next.diffId());
        assertThat(reopened.exists(chainId("next"))).isTrue();
    }

    @Test
    void preparesActiveSnapshots() throws IOException {
        unpackTwoLayers();

        List<Mount> mounts = snapshotter.prepare("ctr", L2);

        assertThat(mounts).isNotEmpty();
        assertThat(snapshotter.mounts("ctr")).contains(mounts);
        assertThat(snapshotter.mounts("unknown")).isEmpty();
        assertThat(snapshotter.mounts(L2))
                .as("committed snapshots are not mounted")
                .isEmpty();
        assertThat(snapshotter.list()).contains(new SnapshotInfo("ctr", Kind.ACTIVE, L2));
        assertThat(snapshotter.exists(L2)).isTrue();
        assertThatThrownBy(() -> snapshotter.prepare("ctr", L2)).isInstanceOf(FileAlreadyExistsException.class);
        assertThatThrownBy(() -> snapshotter.prepare(L1, L2)).isInstanceOf(FileAlreadyExistsException.class);
        assertThatThrownBy(() -> snapshotter.prepare("x", chainId("missing"))).isInstanceOf(NoSuchFileException.class);
        assertThat(snapshotter.prepare("empty", null)).hasSize(1);
    }

    @Test
    void removesTopDownOnly() throws IOException {
        unpackTwoLayers();
        snapshotter.prepare("ctr", L1);

        assertThatThrownBy(() -> snapshotter.remove(L1))
                .isInstanceOf(SnapshotInUseException.class)
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

    /**
     * A layer that adds {@code tmp/x} without listing {@code tmp/} must not change what the layers below made of
     * {@code /tmp}: containerd creates a missing parent (0755) only when the merged view lacks it.
     */
    @Test
    void directoriesALayerOnlyImpliesKeepWhatTheLowerLayersGaveThem() throws Exception {
        unpack(
                L1,
                null,
                new LayerBuilder()
                        .dir("tmp/", 01777, 0, 0)
                        .xattr("user.origin", "lower")
                        .dir("srv/", 0750, 1000, 1001)
                        .file("srv/old", "o"));
        unpack(
                L2,
                L1,
                new LayerBuilder().file("tmp/x", "x").file("srv/new", "n").file("fresh/f", "f"));

        Path view = mergedView(L2);

        assertThat(unix(view.resolve("tmp")))
                .containsEntry("mode", 041777)
                .containsEntry("uid", 0)
                .containsEntry("lastModifiedTime", LayerBuilder.MTIME);
        assertThat(unix(view.resolve("srv")))
                .containsEntry("mode", 040750)
                .containsEntry("uid", 1000)
                .containsEntry("gid", 1001)
                .containsEntry("lastModifiedTime", LayerBuilder.MTIME);
        assertThat(PosixFiles.xattrs(view.resolve("srv"))).containsEntry("user.origin", bytes("lower"));
        assertThat(SnapshotMountIT.names(view.resolve("srv"))).containsExactly("new", "old");
        assertThat(unix(view.resolve("fresh"))).as("a parent no layer has").containsEntry("mode", 040755);
    }

    /**
     * Merged /usr: {@code bin} links to {@code /usr/bin} in a lower layer. An upper layer's {@code bin/foo} is
     * resolved inside the root, as containerd's fs.RootPath does (and as the container sees it), and lands in
     * {@code usr/bin}; {@code ..} above the root stays at the root.
     */
    @Test
    void symlinksInParentsResolveInsideTheRootAcrossLayers() throws Exception {
        unpack(
                L1,
                null,
                new LayerBuilder()
                        .dir("usr/bin/")
                        .dir("usr/lib/")
                        .symlink("bin", "/usr/bin")
                        .symlink("lib", "usr/lib")
                        .symlink("usr/lib64", "../../../usr/lib")
                        .symlink("sbin", "/usr/sbin"));
        unpack(
                L2,
                L1,
                new LayerBuilder()
                        .file("bin/foo", "foo")
                        .file("lib/libx.so", "x")
                        .file("usr/lib64/liby.so", "y")
                        .file("sbin/init", "i"));

        Path view = mergedView(L2);

        assertThat(Files.readString(view.resolve("usr/bin/foo"))).isEqualTo("foo");
        assertThat(Files.readString(view.resolve("usr/lib/libx.so"))).isEqualTo("x");
        assertThat(Files.readString(view.resolve("usr/lib/liby.so"))).isEqualTo("y");
        assertThat(Files.readString(view.resolve("usr/sbin/init"))).isEqualTo("i");
        assertThat(Files.readSymbolicLink(view.resolve("bin"))).hasToString("/usr/bin");
        assertThat(Files.readSymbolicLink(view.resolve("lib"))).hasToString("usr/lib");
        assertThat(Files.readSymbolicLink(view.resolve("sbin"))).hasToString("/usr/sbin");
    }

    @Test
    void aLayerThatDoesNotHashToItsDiffIdIsRejectedAndNothingOfItKept() throws IOException {
        LayerBuilder layer = new LayerBuilder().file("a", "a");

        assertThatThrownBy(() ->
                        snapshotter.unpack(L1, null, layer(layer), LayerBuilder.OCI_GZIP, chainId("another layer")))
                .isInstanceOf(LayerRejectedException.class)
                .hasMessage("the layer uncompresses to " + layer.diffId() + ", not to its diff ID "
                        + chainId("another layer"));

        assertThat(snapshotter.exists(L1)).isFalse();
        assertNothingLeft();
    }

    /** The diff ID is the hash of all of the uncompressed stream: what follows the end-of-archive blocks too. */
    @Test
    void theDiffIdCoversTheWholeUncompressedStream() throws IOException {
        byte[] tar = new LayerBuilder().file("a", "a".repeat(700)).dir("d/").tar();
        byte[] padded = Arrays.copyOf(tar, tar.length + 4096); // more zero blocks, as some tar writers add
        Path blob = LayerBuilder.write(padded, base.resolve("padded.tar.gz"), Compression.GZIP);

        assertThatThrownBy(() -> snapshotter.unpack(L1, null, blob, LayerBuilder.OCI_GZIP, LayerBuilder.diffIdOf(tar)))
                .isInstanceOf(LayerRejectedException.class);
        snapshotter.unpack(L1, null, blob, LayerBuilder.OCI_GZIP, LayerBuilder.diffIdOf(padded));

        assertThat(snapshotter.exists(L1)).isTrue();
    }

    void unpackTwoLayers() throws IOException {
        unpack(L1, null, new LayerBuilder().file("etc/passwd", "root"));
        unpack(L2, L1, new LayerBuilder().file("etc/group", "root"));
    }

    /** Unpacks the layer, gzipped, under its true diff ID. */
    void unpack(String chainId, String parentChainId, LayerBuilder layer) throws IOException {
        snapshotter.unpack(chainId, parentChainId, layer(layer), LayerBuilder.OCI_GZIP, layer.diffId());
    }

    /** The root filesystem a container on {@code chainId} gets, mounted until the test ends. */
    Path mergedView(String chainId) throws Exception {
        Path view = Files.createDirectory(base.resolve("view"));
        SnapshotMountIT.mount(snapshotter.prepare("view", chainId), view);
        mountedView = view;
        return view;
    }

    @AfterEach
    void unmountView() throws Exception {
        if (mountedView != null) {
            SnapshotMountIT.run("umount", mountedView.toString());
        }
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
            return list.map(p -> p.getFileName().toString())
                    .filter(n -> !n.equals("tmp"))
                    .sorted()
                    .toList();
        }
    }

    static byte[] bytes(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
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
