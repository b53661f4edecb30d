package dev.stevedore.agent.snapshots;

/**
 * What one layer may make the agent read, hold and write while it is unpacked: a layer is hostile input, and the
 * agent unpacks it as root within a small heap. Each limit is an agent flag; a layer over one is rejected with a
 * message naming the limit and its flag, and nothing of it is kept.
 *
 * @param maxBytes bytes of the uncompressed tar stream (a small gzip of zeros inflates a thousandfold)
 * @param maxEntries entries of the tar stream, extended headers not counted
 * @param maxPaxSize bytes of the extended headers (PAX, GNU long names) before one entry; Go's archive/tar, which
 *     containerd and the image tools use, refuses a PAX header over 1 MiB
 * @param maxPaxRecords PAX records before one entry: each may be an xattr, set with a system call of its own
 * @param maxPathBytes bytes of the paths the unpack keeps until the layer ends: every directory (its mtime is set
 *     last) and, for the native snapshotter, every entry (what an opaque whiteout keeps)
 */
public record LayerLimits(long maxBytes, long maxEntries, long maxPaxSize, long maxPaxRecords, long maxPathBytes) {
    public static final LayerLimits DEFAULTS = new LayerLimits(32L << 30, 1_000_000, 1 << 20, 10_000, 16 << 20);

    public static final String MAX_BYTES_FLAG = "--max-layer-bytes";
    public static final String MAX_ENTRIES_FLAG = "--max-layer-entries";
    public static final String MAX_PAX_SIZE_FLAG = "--max-layer-pax-size";
    public static final String MAX_PAX_RECORDS_FLAG = "--max-layer-pax-records";
    public static final String MAX_PATH_BYTES_FLAG = "--max-layer-path-bytes";

    public LayerLimits {
        if (maxBytes <= 0 || maxEntries <= 0 || maxPaxSize <= 0 || maxPaxRecords <= 0 || maxPathBytes <= 0) {
            throw new IllegalArgumentException("layer limits must be positive");
        }
    }

    static LayerRejectedException exceeded(String what, long limit, String flag) {
        return new LayerRejectedException(
                "the layer exceeds the limit of " + limit + " " + what + " (the agent's " + flag + " raises it)");
    }
}
