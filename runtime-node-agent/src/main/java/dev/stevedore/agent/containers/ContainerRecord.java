package dev.stevedore.agent.containers;

import dev.stevedore.api.v1alpha1.ContainerSpec;
import java.util.List;

/**
 * What the node made of one Container (by UID): the image, the rootfs snapshot, the spec, the OCI runtime and the
 * network the next Task will use, the Container generation they were prepared for, and older snapshots and specs
 * kept while a Task still uses them. Garbage collection's roots. The next Task takes everything from here, never from
 * the live object, so that what it runs is what was prepared and reported.
 */
public record ContainerRecord(
        String uid,
        String namespace,
        String name,
        Long generation,
        String image,
        String imageDigest,
        String snapshotter,
        String snapshotKey,
        String specDigest,
        String runtime,
        List<String> retiredSnapshotKeys,
        ContainerSpec.Network network) {
    /** The runtime of records written before the runtime was recorded, and of Containers that name none. */
    public static final String DEFAULT_RUNTIME = "runc";

    public ContainerRecord {
        retiredSnapshotKeys = retiredSnapshotKeys == null ? List.of() : List.copyOf(retiredSnapshotKeys);
        runtime = runtime == null ? DEFAULT_RUNTIME : runtime;
    }

    /** Whether this is what the Container's {@code generation} asks for (a record of a newer one is too). */
    public boolean prepares(Long containerGeneration) {
        return generation != null && containerGeneration != null && generation >= containerGeneration;
    }
}
