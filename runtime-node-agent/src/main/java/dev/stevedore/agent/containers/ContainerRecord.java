package dev.stevedore.agent.containers;

import java.util.List;

/**
 * What the node made of one Container (by UID): the image, the rootfs snapshot and the spec the next Task will
 * use, the Container generation they were prepared for, and older snapshots and specs kept while a Task still uses
 * them. Garbage collection's roots.
 */
public record ContainerRecord(String uid, String namespace, String name, Long generation, String image,
        String imageDigest, String snapshotter, String snapshotKey, String specDigest, List<String> retiredSnapshotKeys) {

    public ContainerRecord {
        retiredSnapshotKeys = retiredSnapshotKeys == null ? List.of() : List.copyOf(retiredSnapshotKeys);
    }

    /** Whether this is what the Container's {@code generation} asks for (a record of a newer one is too). */
    public boolean prepares(Long containerGeneration) {
        return generation != null && containerGeneration != null && generation >= containerGeneration;
    }
}
