package dev.stevedore.agent.logs;

/**
 * How much of each task's log the node keeps, as kubelet's {@code containerLogMaxSize} and
 * {@code containerLogMaxFiles}: the file conmon writes is rotated at {@code maxSize}, and {@code maxFiles} files are
 * kept, the one being written included.
 */
public record LogLimits(long maxSize, int maxFiles) {
    public static final String MAX_SIZE_FLAG = "--task-log-max-size";
    public static final String MAX_FILES_FLAG = "--task-log-max-files";
    /** kubelet's defaults: 10 MiB, 5 files. */
    public static final LogLimits DEFAULTS = new LogLimits(10L * 1024 * 1024, 5);

    public LogLimits {
        if (maxSize < 1024) {
            throw new IllegalArgumentException(MAX_SIZE_FLAG + " must be at least 1024 bytes: " + maxSize);
        }
        if (maxFiles < 2) {
            throw new IllegalArgumentException(MAX_FILES_FLAG + " must be at least 2: " + maxFiles);
        }
    }

    /**
     * What conmon may write to one file before it truncates it itself ({@code --log-size-max}): everything the node
     * keeps of the task's log, so it happens only where rotation fell far behind a task logging very fast.
     */
    public long conmonBackstop() {
        return Math.multiplyExact(maxSize, (long) maxFiles);
    }
}
