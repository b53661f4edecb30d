package dev.stevedore.agent.snapshots;

import static org.assertj.core.api.Assertions.assertThat;

import dev.stevedore.agent.snapshots.LayerBuilder.Compression;
import dev.stevedore.agent.snapshots.Snapshotter.Kind;
import dev.stevedore.agent.snapshots.Snapshotter.SnapshotInfo;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.BrokenBarrierException;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Two Containers of images sharing a layer unpack its chain ID at the same time. What both snapshotters share decides
 * the outcome ({@link DirectorySnapshotter}: the check for an existing snapshot, the build in tmp/, the commit); here
 * the native snapshotter's unpack is held in its population until the other unpack is in its own, so both are past
 * that check before either commits.
 */
class ConcurrentUnpackTest {
    private static final String CHAIN_ID = SnapshotterContractTest.L1;

    @TempDir
    Path base;

    @Test
    void twoUnpacksOfOneChainIdAtOnceBothSucceedAndCommitOneSnapshot() throws Exception {
        Path root = base.resolve("state");
        GatedNativeSnapshotter snapshotter = new GatedNativeSnapshotter(root, base.resolve("delegate"));
        LayerBuilder layer = new LayerBuilder().file("etc/passwd", "root");
        Path blob = layer.write(base.resolve("layer.tar.gz"), Compression.GZIP);

        ExecutorService unpacks = Executors.newFixedThreadPool(2);
        try {
            List<Future<?>> results = new ArrayList<>();
            for (int i = 0; i < 2; i++) {
                results.add(unpacks.submit(() -> {
                    snapshotter.unpack(CHAIN_ID, null, blob, LayerBuilder.OCI_GZIP, layer.diffId());
                    return null;
                }));
            }
            for (Future<?> result : results) {
                result.get(120, TimeUnit.SECONDS);
            }
        } finally {
            unpacks.shutdownNow();
        }

        Path home = root.resolve("snapshots/native");
        assertThat(snapshotter.list()).containsExactly(new SnapshotInfo(CHAIN_ID, Kind.COMMITTED, null));
        assertThat(names(home)).as("snapshot directories").hasSize(2).contains("tmp");
        assertThat(home.resolve("tmp")).as("the losing unpack's tree").isEmptyDirectory();
        NativeSnapshotter reopened = new NativeSnapshotter(root);
        assertThat(reopened.list()).containsExactly(new SnapshotInfo(CHAIN_ID, Kind.COMMITTED, null));
    }

    private static List<String> names(Path dir) throws IOException {
        try (Stream<Path> list = Files.list(dir)) {
            return list.map(p -> p.getFileName().toString()).sorted().toList();
        }
    }

    /** The native snapshotter, whose population of a committed snapshot waits until two are being populated. */
    private static final class GatedNativeSnapshotter extends DirectorySnapshotter {
        private final CyclicBarrier bothPopulating = new CyclicBarrier(2);
        /** Populates the trees: only its package-private steps are used, its own root stays empty. */
        private final NativeSnapshotter populator;

        GatedNativeSnapshotter(Path root, Path populatorRoot) throws IOException {
            super(root, "native");
            this.populator = new NativeSnapshotter(populatorRoot);
        }

        @Override
        public String name() {
            return "native";
        }

        @Override
        void populateCommitted(Path fs, List<Path> lowers, Path layer, String mediaType, String diffId)
                throws IOException {
            try {
                bothPopulating.await(120, TimeUnit.SECONDS);
            } catch (InterruptedException | BrokenBarrierException | TimeoutException e) {
                throw (IOException) new InterruptedIOException("the other unpack never began populating").initCause(e);
            }
            populator.populateCommitted(fs, lowers, layer, mediaType, diffId);
        }

        @Override
        void populateActive(Path dir, Path parentFs) throws IOException {
            populator.populateActive(dir, parentFs);
        }

        @Override
        List<Mount> activeMounts(Path dir, List<Path> lowers) {
            return populator.activeMounts(dir, lowers);
        }
    }
}
