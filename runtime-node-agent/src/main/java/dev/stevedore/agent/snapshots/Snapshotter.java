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
     * on top of {@code parentChainId} (null for the bottom layer). The blob is decompressed once, and its
     * uncompressed stream must hash to {@code diffId}, since snapshots are shared by chain IDs made of diff IDs.
     * Nothing is visible under the chain ID until the unpack is complete, and it is durable once visible. A no-op
     * if {@code chainId} exists already.
     *
     * @throws LayerRejectedException for a hostile or malformed layer, or one that is not its diff ID: nothing
     *     of it is kept
     * @throws java.nio.file.NoSuchFileException if the parent is not a committed snapshot
     * @throws IllegalArgumentException if a chain ID or the diff ID is not {@code sha256:<64 lowercase hex>}
     */
    void unpack(String chainId, String parentChainId, Path layer, String mediaType, String diffId) throws IOException;

    /**
     * Creates the active snapshot {@code key} on {@code parentChainId} (null: empty) and returns its mounts;
     * constant time for overlayfs, a full copy for native.
     *
     * @throws java.nio.file.FileAlreadyExistsException if a snapshot (active or committed) has this name
     */
    List<Mount> prepare(String key, String parentChainId) throws IOException;

    /** The mounts of an active snapshot that give the root filesystem; empty for unknown or committed names. */
    Optional<List<Mount>> mounts(String key) throws IOException;

    /**
     * Removes an active or committed snapshot; idempotent. An active snapshot must be unmounted first.
     *
     * @throws SnapshotInUseException if other snapshots have it as their parent (remove top-down)
     */
    void remove(String keyOrChainId) throws IOException;

    /** Every snapshot, committed and active, with its parent: what garbage collection walks. */
    List<SnapshotInfo> list() throws IOException;

    record SnapshotInfo(String key, Kind kind, String parent) {}

    enum Kind {
        COMMITTED,
        ACTIVE
    }
}
