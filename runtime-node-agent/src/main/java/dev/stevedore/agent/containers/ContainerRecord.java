package dev.stevedore.agent.containers;

import java.util.List;

/**
 * What the node made of one Container (by UID): the image, the rootfs snapshot and the spec the next Task will
 * use, and older snapshots and specs kept while a Task still uses them. Garbage collection's roots.
 */
public record ContainerRecord(String uid, String namespace, String name, String image, String imageDigest,
        String snapshotter, String snapshotKey, String specDigest, List<String> retiredSnapshotKeys) {

    public ContainerRecord {
        retiredSnapshotKeys = retiredSnapshotKeys == null ? List.of() : List.copyOf(retiredSnapshotKeys);
    }
}
