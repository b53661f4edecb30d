package dev.stevedore.agent.gc;

import java.io.IOException;
import java.nio.file.FileStore;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The file system's own counters for the agent's root (statvfs), as kubelet's eviction and image GC read them:
 * {@code available} is what an unprivileged writer may still use, so "used" includes the blocks reserved for root.
 */
public record DiskUsage(long capacity, long available) {

    public static DiskUsage of(Path path) throws IOException {
        FileStore store = Files.getFileStore(path);
        return new DiskUsage(store.getTotalSpace(), store.getUsableSpace());
    }

    public long used() {
        return capacity - available;
    }

    /** Percent of the capacity used, 0 to 100; 100 for a file system of no capacity. */
    public double usedPercent() {
        return capacity <= 0 ? 100 : 100.0 * used() / capacity;
    }

    public double freePercent() {
        return 100 - usedPercent();
    }

    @Override
    public String toString() {
        return String.format("%d of %d bytes available (%.1f%% used)", available, capacity, usedPercent());
    }
}
