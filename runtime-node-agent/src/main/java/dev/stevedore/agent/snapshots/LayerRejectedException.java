package dev.stevedore.agent.snapshots;

import java.io.IOException;

/** A layer that must not be unpacked: an entry escapes the snapshot, an unknown entry type, a malformed archive. */
public class LayerRejectedException extends IOException {
    private static final long serialVersionUID = 1L;

    public LayerRejectedException(String message) {
        super(message);
    }
}
