package dev.stevedore.agent.gc;

import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

/**
 * kubelet's image garbage collection policy and disk pressure signal, as pure decisions: above
 * {@code highThresholdPercent} of the disk used, unused images go, least recently used first, until the estimate says
 * usage is down to {@code lowThresholdPercent}; the node is under disk pressure while less than
 * {@code minFreePercent} is free.
 */
public record ImageGcPolicy(int highThresholdPercent, int lowThresholdPercent, int minFreePercent) {
    public static final String HIGH_THRESHOLD_FLAG = "--image-gc-high-threshold";
    public static final String LOW_THRESHOLD_FLAG = "--image-gc-low-threshold";
    public static final String MIN_FREE_FLAG = "--disk-pressure-threshold";
    /** kubelet's defaults for the first two; its nodefs.available eviction signal is 10% too. */
    public static final ImageGcPolicy DEFAULTS = new ImageGcPolicy(85, 80, 10);

    public ImageGcPolicy {
        requirePercent(HIGH_THRESHOLD_FLAG, highThresholdPercent);
        requirePercent(LOW_THRESHOLD_FLAG, lowThresholdPercent);
        requirePercent(MIN_FREE_FLAG, minFreePercent);
        if (lowThresholdPercent >= highThresholdPercent) {
            throw new IllegalArgumentException(LOW_THRESHOLD_FLAG + " (" + lowThresholdPercent + ") must be less than "
                    + HIGH_THRESHOLD_FLAG + " (" + highThresholdPercent + ")");
        }
    }

    /** An image no Container uses: its name, the bytes its blobs take, and when a Container last used it. */
    public record Candidate(String image, long size, Instant lastUsed) {}

    public boolean diskPressure(DiskUsage usage) {
        return usage.freePercent() < minFreePercent;
    }

    /**
     * The images to delete now: none at or under the high threshold; above it, the least recently used (ties: the
     * larger first, then by name) until their sizes add up to what brings usage down to the low threshold, or all of
     * them if they do not.
     */
    public List<Candidate> toDelete(DiskUsage usage, List<Candidate> candidates) {
        if (usage.usedPercent() <= highThresholdPercent) {
            return List.of();
        }
        long target = (long) Math.floor(usage.capacity() * (lowThresholdPercent / 100.0));
        long toFree = usage.used() - target;
        List<Candidate> chosen = new ArrayList<>();
        long freed = 0;
        for (Candidate candidate : candidates.stream()
                .sorted(Comparator.comparing(Candidate::lastUsed)
                        .thenComparing(Comparator.comparingLong(Candidate::size).reversed())
                        .thenComparing(Candidate::image))
                .toList()) {
            if (freed >= toFree) {
                break;
            }
            chosen.add(candidate);
            freed += candidate.size();
        }
        return chosen;
    }

    private static void requirePercent(String flag, int value) {
        if (value < 0 || value > 100) {
            throw new IllegalArgumentException(flag + " must be a percentage from 0 to 100, not " + value);
        }
    }
}
