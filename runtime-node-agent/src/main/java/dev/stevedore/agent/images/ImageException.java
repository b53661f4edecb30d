package dev.stevedore.agent.images;

import dev.stevedore.agent.fs.DiskFull;
import java.io.IOException;

/**
 * Why an image could not be pulled or imported, with the reason a Container's ImageReady condition shows:
 * ManifestUnknown, Unauthorized, DigestMismatch, LayerRejected, InvalidImage, RegistryUnavailable, DiskFull,
 * StorageFailure (the constants below). Only {@link #transientFailure()} ones are retried.
 */
public class ImageException extends Exception {
    private static final long serialVersionUID = 1L;

    /** The reference names no manifest in the registry (404, MANIFEST_UNKNOWN, NAME_UNKNOWN). */
    public static final String MANIFEST_UNKNOWN = "ManifestUnknown";
    /** The registry refused the credentials, or there were none (401, 403). */
    public static final String UNAUTHORIZED = "Unauthorized";
    /** Bytes did not hash to the digest that names them, or their size differed from the descriptor's. */
    public static final String DIGEST_MISMATCH = "DigestMismatch";

    public static final String LAYER_REJECTED = "LayerRejected";
    /** Not parseable, an unsupported media type, or no manifest for this node's platform. */
    public static final String INVALID_IMAGE = "InvalidImage";
    /** Connection refused, timeouts, 5xx, 429: worth retrying. */
    public static final String REGISTRY_UNAVAILABLE = "RegistryUnavailable";
    /** The node's disk ran out of space (ENOSPC, EDQUOT): worth retrying once unused images or others freed some. */
    public static final String DISK_FULL = "DiskFull";
    /** The node's own disk failed us otherwise (read-only, I/O error): worth retrying. */
    public static final String STORAGE_FAILURE = "StorageFailure";

    private final String reason;
    private final boolean transientFailure;

    public ImageException(String reason, String message, boolean transientFailure, Throwable cause) {
        super(message, cause);
        this.reason = reason;
        this.transientFailure = transientFailure;
    }

    /** A failure of the node's disk: {@link #DISK_FULL} when it is out of space, else {@link #STORAGE_FAILURE}. */
    public static ImageException storage(String message, IOException cause) {
        return new ImageException(DiskFull.causedBy(cause) ? DISK_FULL : STORAGE_FAILURE, message, true, cause);
    }

    public String reason() {
        return reason;
    }

    public boolean transientFailure() {
        return transientFailure;
    }
}
