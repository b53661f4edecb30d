package dev.stevedore.agent.snapshots;

import java.io.IOException;

/** A committed snapshot that other snapshots are built on cannot be removed; garbage collection goes top-down. */
public class SnapshotInUseException extends IOException {
    private static final long serialVersionUID = 1L;

    public SnapshotInUseException(String message) {
        super(message);
    }
}
