package dev.stevedore.agent.gc;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.stevedore.agent.containers.ChainIds;
import dev.stevedore.agent.containers.ContainerRecord;
import dev.stevedore.agent.containers.ContainerRecords;
import dev.stevedore.agent.content.Digest;
import dev.stevedore.agent.content.FileContentStore;
import dev.stevedore.agent.images.Image;
import dev.stevedore.agent.images.ImageService;
import dev.stevedore.agent.images.RegistryAuth;
import dev.stevedore.agent.snapshots.NativeSnapshotter;
import dev.stevedore.agent.snapshots.Snapshotter;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.Lock;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The collector's rules on a real content store, real snapshots and real Container records: Container records are the
 * roots, pinned images are kept, the parents of a kept snapshot are kept, and a lease holds a collection off.
 */
class GarbageCollectorTest {
    /** A tar with no entries (two zero blocks): every snapshot here is one, chain IDs are only names to the collector. */
    private static final byte[] EMPTY_TAR = new byte[1024];

    private static final String EMPTY_TAR_TYPE = "application/vnd.oci.image.layer.v1.tar";

    @TempDir
    Path root;

    private FileContentStore content;
    private Images images;
    private ContainerRecords records;
    private Snapshotter snapshots;
    private GarbageCollector gc;
    private Path emptyLayer;

    @BeforeEach
    void newNode() throws IOException {
        content = new FileContentStore(root);
        images = new Images();
        records = new ContainerRecords(root);
        snapshots = new NativeSnapshotter(root);
        gc = new GarbageCollector(records, images, content, List.of(snapshots));
        emptyLayer = Files.write(root.resolve("empty.tar"), EMPTY_TAR);
    }

    @Test
    void aContainerRecordKeepsItsSnapshotsAnImageItsBlobsAndLayersAndEverythingElseGoes() throws IOException {
        Image used = image("registry.test/used:1", "used layer 1", "shared layer");
        Image cached = image("registry.test/unused:1", "unused layer", "shared layer");
        Digest stray = blob("a blob of no image");
        String usedLayer = unpack("used chain 1", null);
        String usedTop = unpack("used chain 2", usedLayer);
        snapshots.prepare("rootfs-of-one", usedTop);
        snapshots.prepare("retired-rootfs-of-one", usedTop);
        List<String> cachedLayers = unpackLayersOf(cached);
        String strayLayer = unpack("stray chain 1", null);
        snapshots.prepare("rootfs-of-a-released-container", strayLayer);
        records.put(record("0000-0001", used, "rootfs-of-one", List.of("retired-rootfs-of-one")));

        GarbageCollector.Result result = gc.collect();

        assertThat(images.list()).as("images are a cache").containsExactlyInAnyOrder(used, cached);
        assertThat(blobs()).containsExactlyInAnyOrderElementsOf(union(blobsOf(used), blobsOf(cached)));
        assertThat(content.path(stray)).isEmpty();
        assertThat(snapshotKeys())
                .containsExactlyInAnyOrder(
                        usedLayer,
                        usedTop,
                        "rootfs-of-one",
                        "retired-rootfs-of-one",
                        cachedLayers.get(0),
                        cachedLayers.get(1));
        assertThat(result).isEqualTo(new GarbageCollector.Result(0, 2, 1));
    }

    @Test
    void removingImagesTakesTheirBlobsAndLayersButNeverAUsedOrPinnedImageNorASharedBlob() throws IOException {
        Image used = image("registry.test/used:1", "used layer", "shared layer");
        Image unused = image("registry.test/unused:1", "unused layer", "shared layer");
        Image imported = image("airgap.example/app:1", "imported layer");
        images.pin(imported.name());
        List<String> unusedLayers = unpackLayersOf(unused);
        records.put(record("0000-0001", used, "rootfs-of-one", List.of()));

        assertThat(gc.unusedImages()).containsExactly(unused);
        GarbageCollector.Result result =
                gc.removeImages(List.of(used.name(), unused.name(), imported.name(), "registry.test/gone:1"));

        assertThat(images.list()).containsExactlyInAnyOrder(used, imported);
        assertThat(blobs()).containsExactlyInAnyOrderElementsOf(union(blobsOf(used), blobsOf(imported)));
        assertThat(snapshotKeys()).doesNotContainAnyElementsOf(unusedLayers);
        assertThat(result)
                .isEqualTo(new GarbageCollector.Result(
                        1, 2, 3)); // the unused image, its two layers, its manifest, config and own layer
    }

    @Test
    void theParentsOfAKeptSnapshotAreKeptAndAnUnusedChainGoesTopDown() throws IOException {
        Image image = image("registry.test/deep:1", "deep layer");
        String bottom = unpack("deep 1", null);
        String middle = unpack("deep 2", bottom);
        String top = unpack("deep 3", middle);
        String sibling = unpack("sibling of deep 3", middle);
        snapshots.prepare("rootfs", top);
        String unusedBottom = unpack("unused 1", null);
        String unusedMiddle = unpack("unused 2", unusedBottom);
        snapshots.prepare("unused rootfs", unpack("unused 3", unusedMiddle));
        records.put(record("0000-0002", image, "rootfs", List.of()));

        gc.collect();

        assertThat(snapshotKeys()).containsExactlyInAnyOrder(bottom, middle, top, "rootfs");
        assertThat(snapshotKeys()).doesNotContain(sibling, unusedBottom, unusedMiddle, "unused rootfs");
    }

    /**
     * A Container's preparation writes blobs before it records the image and the Container: a collection between the
     * two would take them. Under a lease the collection waits (its thread parks on the lock) and runs after the records
     * are written, which then keep them.
     */
    @Test
    void aCollectionWaitsForTheLeasesHeldAndThenSeesWhatTheyRecorded() throws Exception {
        Lock lease = gc.lease();
        lease.lock();
        Thread collector;
        CompletableFuture<GarbageCollector.Result> collected = new CompletableFuture<>();
        Image pulled;
        try {
            Digest manifest = blob("manifest being pulled");
            Digest config = blob("config being pulled");
            Digest layer = blob("layer being pulled");
            collector = new Thread(() -> {
                try {
                    collected.complete(gc.collect());
                } catch (Throwable e) {
                    collected.completeExceptionally(e);
                }
            });
            collector.start();
            await().atMost(Duration.ofSeconds(120))
                    .until(() -> collector.getState() == Thread.State.WAITING
                            || collector.getState() == Thread.State.TERMINATED);
            assertThat(collector.getState())
                    .as("the collection, while a lease is held (stack: %s)", List.of(collector.getStackTrace()))
                    .isEqualTo(Thread.State.WAITING);
            assertThat(collected).isNotDone();
            pulled = new Image(
                    "registry.test/being-pulled:1", manifest, manifest, config, List.of(layer(layer)), null, 3);
            images.put(pulled);
            records.put(record("0000-0003", pulled, "rootfs-being-prepared", List.of()));
        } finally {
            lease.unlock();
        }

        assertThat(collected.get(120, TimeUnit.SECONDS)).isEqualTo(new GarbageCollector.Result(0, 0, 0));
        assertThat(blobs()).containsExactlyInAnyOrderElementsOf(blobsOf(pulled));
    }

    // --- the node's state ------------------------------------------------------------------------------------------

    /** An image of its own manifest and config and of the layers named, with every blob stored. */
    private Image image(String name, String... layers) throws IOException {
        Digest manifest = blob("manifest of " + name);
        Digest config = blob("config of " + name);
        List<Image.Layer> imageLayers = new ArrayList<>();
        for (String layer : layers) {
            imageLayers.add(layer(blob(layer)));
        }
        Image image = new Image(name, manifest, manifest, config, imageLayers, null, 0);
        images.put(image);
        return image;
    }

    private static Image.Layer layer(Digest digest) {
        return new Image.Layer(digest, EMPTY_TAR_TYPE, 1, digest);
    }

    private Digest blob(String text) throws IOException {
        byte[] bytes = text.getBytes(StandardCharsets.UTF_8);
        Digest digest = Digest.sha256Of(bytes);
        content.ingest(digest, bytes.length, () -> new ByteArrayInputStream(bytes));
        return digest;
    }

    private static Digest digestOf(String text) {
        return Digest.sha256Of(text.getBytes(StandardCharsets.UTF_8));
    }

    /** The image's layers as committed snapshots named by their chain IDs, bottom first; returns the chain IDs. */
    private List<String> unpackLayersOf(Image image) throws IOException {
        List<String> chain =
                ChainIds.of(image.layers().stream().map(Image.Layer::diffId).toList());
        for (int i = 0; i < chain.size(); i++) {
            snapshots.unpack(
                    chain.get(i),
                    i == 0 ? null : chain.get(i - 1),
                    emptyLayer,
                    EMPTY_TAR_TYPE,
                    Digest.sha256Of(EMPTY_TAR).toString());
        }
        return chain;
    }

    private static Set<Digest> union(Set<Digest> a, Set<Digest> b) {
        Set<Digest> all = new HashSet<>(a);
        all.addAll(b);
        return all;
    }

    /** A committed snapshot named by the chain ID of {@code seed}, on {@code parent}; returns the chain ID. */
    private String unpack(String seed, String parent) throws IOException {
        String chainId = digestOf(seed).toString();
        snapshots.unpack(
                chainId,
                parent,
                emptyLayer,
                EMPTY_TAR_TYPE,
                Digest.sha256Of(EMPTY_TAR).toString());
        return chainId;
    }

    private static ContainerRecord record(String uid, Image image, String snapshotKey, List<String> retired) {
        return new ContainerRecord(
                uid,
                "ns",
                uid,
                1L,
                image.name(),
                image.digest().toString(),
                "native",
                snapshotKey,
                "sha256:" + "0".repeat(64),
                "runc",
                retired,
                null);
    }

    private List<Digest> blobs() throws IOException {
        return content.list().toList();
    }

    private static Set<Digest> blobsOf(Image image) {
        Set<Digest> digests = new HashSet<>(List.of(image.digest(), image.manifest(), image.config()));
        image.layers().forEach(l -> digests.add(l.digest()));
        return digests;
    }

    private List<String> snapshotKeys() throws IOException {
        return snapshots.list().stream().map(Snapshotter.SnapshotInfo::key).toList();
    }

    /** The image records as a map, with pins: what the collector asks of the image service. */
    private static final class Images implements ImageService {
        private final Map<String, Image> byName = new TreeMap<>();
        private final Set<String> pinned = new HashSet<>();

        synchronized void put(Image image) {
            byName.put(image.name(), image);
        }

        synchronized void pin(String name) {
            pinned.add(name);
        }

        @Override
        public Image pull(String reference, Map<String, RegistryAuth> auths) {
            throw new UnsupportedOperationException("no registry here");
        }

        @Override
        public Image ensure(String reference, Map<String, RegistryAuth> auths, PullListener listener) {
            throw new UnsupportedOperationException("no registry here");
        }

        @Override
        public List<Image> importArchive(Path archive) {
            throw new UnsupportedOperationException("no archives here");
        }

        @Override
        public synchronized boolean pinned(String name) {
            return pinned.contains(name);
        }

        @Override
        public synchronized Optional<Image> get(String name) {
            return Optional.ofNullable(byName.get(name));
        }

        @Override
        public synchronized List<Image> list() {
            return List.copyOf(byName.values());
        }

        @Override
        public synchronized void remove(String name) {
            byName.remove(name);
        }
    }
}
