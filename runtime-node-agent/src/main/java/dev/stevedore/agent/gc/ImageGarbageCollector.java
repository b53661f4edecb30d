package dev.stevedore.agent.gc;

import dev.stevedore.agent.images.Image;
import dev.stevedore.agent.images.ImageService;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * kubelet's image garbage collection for the agent's root: decides with {@link ImageGcPolicy} from the disk's
 * counters and the unused images' last use, removes the images chosen through the {@link GarbageCollector} (which
 * keeps any a Container uses) and measures again, until usage is under the low threshold or no unused image is left.
 * Last use is tracked as kubelet tracks it, in memory: an image is used at every look while a Container has it, and
 * one first seen unused (after a restart) counts as used then.
 */
public final class ImageGarbageCollector implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(ImageGarbageCollector.class);

    private final GarbageCollector gc;
    private final ImageService images;
    private final Path root;
    private final ImageGcPolicy policy;
    private final Clock clock;
    private final Map<String, Instant> lastUsed = new HashMap<>();
    private final ScheduledExecutorService timer = Executors.newSingleThreadScheduledExecutor(r -> {
        Thread thread = new Thread(r, "image-gc");
        thread.setDaemon(true);
        return thread;
    });

    public ImageGarbageCollector(
            GarbageCollector gc, ImageService images, Path root, ImageGcPolicy policy, Clock clock) {
        this.gc = gc;
        this.images = images;
        this.root = root;
        this.policy = policy;
        this.clock = clock;
    }

    /** What one run removed, and the disk after it. */
    public record Freed(int images, DiskUsage after) {}

    /** Runs now and every {@code interval}. */
    public void start(Duration interval) {
        timer.scheduleWithFixedDelay(this::runLogged, 0, interval.toMillis(), TimeUnit.MILLISECONDS);
    }

    /** A run on the collector's thread, for whoever just added to the disk and must not wait for it. */
    public void runSoon() {
        try {
            timer.execute(this::runLogged);
        } catch (RejectedExecutionException closed) {
            LOG.debug("image garbage collection is stopped");
        }
    }

    /** Removes least recently used unused images while usage is above the high threshold, down to the low one. */
    public synchronized Freed run() throws IOException {
        DiskUsage usage = DiskUsage.of(root);
        int removed = 0;
        List<ImageGcPolicy.Candidate> chosen;
        while (!(chosen = policy.toDelete(usage, candidates())).isEmpty()) {
            LOG.info(
                    "disk {} is above the image GC high threshold of {}%: removing {} unused images, least recently"
                            + " used first",
                    usage, policy.highThresholdPercent(), chosen.size());
            int removedNow = 0;
            // One at a time, measuring after each: sizes are the blobs', a removal frees the unpacked layers too.
            for (ImageGcPolicy.Candidate candidate : chosen) {
                removedNow += remove(List.of(candidate.image()));
                usage = DiskUsage.of(root);
                if (usage.usedPercent() <= policy.lowThresholdPercent()) {
                    break;
                }
            }
            removed += removedNow;
            if (removedNow == 0) {
                break; // all chosen are in use since: the next run decides again
            }
        }
        return new Freed(removed, usage);
    }

    /** Removes every unused image, whatever the thresholds: the disk ran full under a pull or an unpack. */
    public synchronized Freed reclaimAll() throws IOException {
        List<ImageGcPolicy.Candidate> all = candidates();
        int removed = remove(all.stream().map(ImageGcPolicy.Candidate::image).toList());
        DiskUsage usage = DiskUsage.of(root);
        if (removed > 0) {
            LOG.info("the disk ran full: removed all {} unused images; now {}", removed, usage);
        }
        return new Freed(removed, usage);
    }

    private int remove(List<String> names) throws IOException {
        int removed = gc.removeImages(names).images();
        names.forEach(lastUsed::remove);
        return removed;
    }

    /** The unused images with their last use; refreshes the last use of the used ones. */
    private List<ImageGcPolicy.Candidate> candidates() throws IOException {
        Instant now = clock.instant();
        List<Image> unused = gc.unusedImages();
        Set<String> unusedNames = new HashSet<>();
        unused.forEach(image -> unusedNames.add(image.name()));
        Set<String> present = new HashSet<>();
        for (Image image : images.list()) {
            present.add(image.name());
            if (!unusedNames.contains(image.name())) {
                lastUsed.put(image.name(), now);
            }
        }
        lastUsed.keySet().retainAll(present);
        return unused.stream()
                .map(image -> new ImageGcPolicy.Candidate(
                        image.name(), image.size(), lastUsed.computeIfAbsent(image.name(), name -> now)))
                .toList();
    }

    private void runLogged() {
        try {
            run();
        } catch (IOException | RuntimeException e) {
            // (an exception escaping would end the scheduled runs for good)
            LOG.warn("image garbage collection failed: {}", e.toString());
        }
    }

    @Override
    public void close() {
        timer.shutdownNow();
    }
}
