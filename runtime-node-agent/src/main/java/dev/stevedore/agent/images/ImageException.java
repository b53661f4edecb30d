package dev.stevedore.agent.images;

/**
 * Why an image could not be pulled or imported, with the reason a Container's ImageReady condition shows:
 * ManifestUnknown, Unauthorized, DigestMismatch, LayerRejected, InvalidImage, RegistryUnavailable. Only
 * {@link #transientFailure()} ones are retried.
 */
public class ImageException extends Exception {
    private static final long serialVersionUID = 1L;
    private final String reason;
    private final boolean transientFailure;

    public ImageException(String reason, String message, boolean transientFailure, Throwable cause) {
        super(message, cause);
        this.reason = reason;
        this.transientFailure = transientFailure;
    }

    public String reason() {
        return reason;
    }

    public boolean transientFailure() {
        return transientFailure;
    }
}
