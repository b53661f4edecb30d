package dev.stevedore.agent.snapshots;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;

/**
 * containerd's snapshotter model. Each image layer is unpacked once into a committed snapshot keyed by its chain
 * ID and shared by everything above it; a container's root filesystem is an active (writable) snapshot on top
 * of the image's top chain ID. Implementations: overlayfs and native (full copies).
 */
public interface Snapshotter {

    /** "overlayfs" or "native", as in the Container's spec.snapshotter. */
    String name();

    /** Whether a committed snapshot with this chain ID exists. */
    boolean exists(String chainId) throws IOException;

    /**
     * Unpacks one layer blob (tar, gzip or zstd, by {@code mediaType}) as the committed snapshot {@code chainId}
     * on top of {@code parentChainId} (null for the bottom layer). Nothing is visible under the chain ID until
     * the unpack is complete.
     *
     * @throws LayerRejectedException for a hostile or malformed layer: nothing of it is kept
     */
    void unpack(String chainId, String parentChainId, Path layer, String mediaType) throws IOException;

    /** Creates the active snapshot {@code key} on {@code parentChainId}; constant time for overlayfs. */
    List<Mount> prepare(String key, String parentChainId) throws IOException;

    /** The mounts of an active snapshot that give the root filesystem. */
    Optional<List<Mount>> mounts(String key) throws IOException;

    /** Removes an active or committed snapshot; idempotent. */
    void remove(String keyOrChainId) throws IOException;

    /** Every snapshot, committed and active, with its parent: what garbage collection walks. */
    List<SnapshotInfo> list() throws IOException;

    /** Bytes on disk of all snapshots. */
    long usage() throws IOException;

    record SnapshotInfo(String key, Kind kind, String parent) {
    }

    enum Kind { COMMITTED, ACTIVE }
}
