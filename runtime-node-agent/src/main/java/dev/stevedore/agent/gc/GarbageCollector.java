package dev.stevedore.agent.gc;

import dev.stevedore.agent.containers.ChainIds;
import dev.stevedore.agent.containers.ContainerRecord;
import dev.stevedore.agent.containers.ContainerRecords;
import dev.stevedore.agent.content.ContentStore;
import dev.stevedore.agent.content.Digest;
import dev.stevedore.agent.fs.RootLock;
import dev.stevedore.agent.images.Image;
import dev.stevedore.agent.images.ImageService;
import dev.stevedore.agent.snapshots.Snapshotter;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.locks.Lock;
import java.util.concurrent.locks.ReentrantReadWriteLock;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Mark and sweep, as containerd's garbage collector: the node's Container records and image records are the roots;
 * a Container keeps its image and its rootfs snapshots (and every parent below), an image its blobs and the
 * committed snapshots of its layers. Everything else goes: blobs of a pull that failed, snapshots of released
 * Containers. Images themselves are a cache, as kubelet keeps them: they go only when {@link #removeImages} is
 * asked to remove them (the {@link ImageGarbageCollector} does, under disk pressure), and never while a Container
 * uses one or it is pinned (imported).
 * Work that creates content (a pull, an unpack, a prepare) holds a {@link #lease()}, which a collection waits for,
 * so nothing is swept between being written and being recorded.
 */
public final class GarbageCollector {
    private static final Logger LOG = LoggerFactory.getLogger(GarbageCollector.class);

    private final ContainerRecords records;
    private final ImageService images;
    private final ContentStore content;
    private final Collection<Snapshotter> snapshotters;
    private final ReentrantReadWriteLock lock = new ReentrantReadWriteLock();
    /** The agent's root, for the lock that keeps collections and imports by other processes apart; or null. */
    private final Path root;

    private final Timer duration;
    private final Counter removedImages;
    private final Counter removedSnapshots;
    private final Counter removedBlobs;

    public GarbageCollector(
            ContainerRecords records, ImageService images, ContentStore content, Collection<Snapshotter> snapshotters) {
        this(records, images, content, snapshotters, null, new SimpleMeterRegistry());
    }

    /**
     * @param root the agent's root: a collection is skipped while {@code stevedore-agent import} writes there
     * @param metrics where collections are counted and timed
     */
    public GarbageCollector(
            ContainerRecords records,
            ImageService images,
            ContentStore content,
            Collection<Snapshotter> snapshotters,
            Path root,
            MeterRegistry metrics) {
        this.duration = Timer.builder("stevedore.gc.duration")
                .description("Time garbage collections took, the sweep of unused snapshots and blobs included")
                .register(metrics);
        this.removedImages = removed(metrics, "image");
        this.removedSnapshots = removed(metrics, "snapshot");
        this.removedBlobs = removed(metrics, "blob");
        this.records = records;
        this.images = images;
        this.content = content;
        this.snapshotters = snapshotters;
        this.root = root;
    }

    /** Held while creating content that a record will reference; many may be held at once. */
    public Lock lease() {
        return lock.readLock();
    }

    /** What one collection removed. */
    public record Result(int images, int snapshots, int blobs) {}

    /** Sweeps what no Container and no image keeps; removes no image. */
    public Result collect() throws IOException {
        return removeImages(List.of());
    }

    /** The images no Container uses and no pin keeps: what {@link #removeImages} would remove. */
    public List<Image> unusedImages() throws IOException {
        Set<String> used = imagesInUse(records.list());
        return images.list().stream()
                .filter(image -> !used.contains(image.name()) && !images.pinned(image.name()))
                .toList();
    }

    /**
     * Removes those of {@code names} that no Container uses and no pin keeps (a Container prepared since they were
     * chosen keeps its image), then sweeps.
     */
    public Result removeImages(Collection<String> names) throws IOException {
        Timer.Sample sample = Timer.start();
        Result result = removeImagesUnderLock(names);
        sample.stop(duration);
        removedImages.increment(result.images());
        removedSnapshots.increment(result.snapshots());
        removedBlobs.increment(result.blobs());
        return result;
    }

    private static Counter removed(MeterRegistry metrics, String kind) {
        return Counter.builder("stevedore.gc.removed")
                .description("Images, snapshots and content blobs garbage collection removed")
                .tag("kind", kind)
                .register(metrics);
    }

    private Result removeImagesUnderLock(Collection<String> names) throws IOException {
        lock.writeLock().lock();
        try (RootLock imports = root == null ? null : RootLock.tryExclusive(root)) {
            if (root != null && imports == null) {
                // Its blobs are not recorded yet: sweeping now would take them. The next collection catches up.
                LOG.info("an image import is running; garbage collection skipped");
                return new Result(0, 0, 0);
            }
            List<ContainerRecord> roots = records.list();
            int removedImages = removeUnused(names, imagesInUse(roots));
            Set<String> usedSnapshots = new HashSet<>();
            for (Image image : images.list()) {
                usedSnapshots.addAll(ChainIds.of(
                        image.layers().stream().map(Image.Layer::diffId).toList()));
            }
            Map<String, Set<String>> usedBySnapshotter = new HashMap<>();
            for (ContainerRecord record : roots) {
                Set<String> keys = usedBySnapshotter.computeIfAbsent(record.snapshotter(), s -> new HashSet<>());
                keys.add(record.snapshotKey());
                keys.addAll(record.retiredSnapshotKeys());
            }
            int removedSnapshots = 0;
            for (Snapshotter snapshotter : snapshotters) {
                Set<String> used = new HashSet<>(usedSnapshots);
                used.addAll(usedBySnapshotter.getOrDefault(snapshotter.name(), Set.of()));
                removedSnapshots += sweepSnapshots(snapshotter, used);
            }
            int removedBlobs = sweepBlobs();
            Result result = new Result(removedImages, removedSnapshots, removedBlobs);
            if (removedImages + removedSnapshots + removedBlobs > 0) {
                LOG.info(
                        "garbage collected {} images, {} snapshots, {} blobs",
                        removedImages,
                        removedSnapshots,
                        removedBlobs);
            }
            return result;
        } finally {
            lock.writeLock().unlock();
        }
    }

    private static Set<String> imagesInUse(List<ContainerRecord> roots) {
        Set<String> used = new HashSet<>();
        roots.forEach(record -> used.add(record.image()));
        return used;
    }

    private int removeUnused(Collection<String> names, Set<String> used) {
        int removed = 0;
        for (String name : names) {
            if (!used.contains(name) && !images.pinned(name) && images.get(name).isPresent()) {
                images.remove(name);
                removed++;
            }
        }
        return removed;
    }

    /** Marks the used snapshots and their ancestors, then removes the rest, children before parents. */
    private static int sweepSnapshots(Snapshotter snapshotter, Set<String> used) throws IOException {
        Map<String, Snapshotter.SnapshotInfo> all = new HashMap<>();
        snapshotter.list().forEach(info -> all.put(info.key(), info));
        Set<String> marked = new HashSet<>();
        for (String key : used) {
            for (String k = key;
                    k != null && all.containsKey(k) && marked.add(k);
                    k = all.get(k).parent()) {
                // walk down to the bottom layer
            }
        }
        List<String> unmarked = new ArrayList<>(all.keySet());
        unmarked.removeAll(marked);
        int removed = 0;
        while (!unmarked.isEmpty()) {
            Set<String> parents = new HashSet<>();
            unmarked.forEach(k -> parents.add(all.get(k).parent()));
            List<String> leaves =
                    unmarked.stream().filter(k -> !parents.contains(k)).toList();
            for (String leaf : leaves) {
                snapshotter.remove(leaf);
                removed++;
            }
            unmarked.removeAll(leaves);
        }
        return removed;
    }

    private int sweepBlobs() throws IOException {
        Set<Digest> marked = new HashSet<>();
        for (Image image : images.list()) {
            marked.add(image.digest());
            marked.add(image.manifest());
            marked.add(image.config());
            image.layers().forEach(layer -> marked.add(layer.digest()));
        }
        int removed = 0;
        for (Digest digest : content.list().toList()) {
            if (!marked.contains(digest)) {
                content.delete(digest);
                removed++;
            }
        }
        return removed;
    }
}
