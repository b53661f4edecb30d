package dev.stevedore.agent.images;

import java.io.IOException;

/**
 * A registry failure while bytes are read, as an IOException so it can travel through
 * {@link dev.stevedore.agent.content.ContentStore#ingest}; it tells a registry's fault from a local disk's.
 */
final class FetchException extends IOException {
    private static final long serialVersionUID = 1L;
    private final String reason;
    private final boolean transientFailure;

    FetchException(String reason, String message, boolean transientFailure, Throwable cause) {
        super(message, cause);
        this.reason = reason;
        this.transientFailure = transientFailure;
    }

    ImageException toImageException() {
        return new ImageException(reason, getMessage(), transientFailure, this);
    }
}
