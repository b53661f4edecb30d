package dev.stevedore.agent.snapshots;

/**
 * What is stored of a snapshot, as {@code info.json} inside its directory. The directory is named by {@code id}
 * (short and numeric, so overlay's lowerdir list stays short; never a name from outside), and {@code name} is
 * the chain ID of a committed snapshot or the key of an active one.
 */
record SnapshotRecord(long id, String name, Snapshotter.Kind kind, String parent) {}
