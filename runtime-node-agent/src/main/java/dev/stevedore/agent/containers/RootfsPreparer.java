package dev.stevedore.agent.containers;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.stevedore.agent.content.ContentStore;
import dev.stevedore.agent.content.Digest;
import dev.stevedore.agent.fs.DiskFull;
import dev.stevedore.agent.gc.GarbageCollector;
import dev.stevedore.agent.images.Image;
import dev.stevedore.agent.images.ImageException;
import dev.stevedore.agent.images.ImageService;
import dev.stevedore.agent.images.RegistryAuth;
import dev.stevedore.agent.snapshots.LayerRejectedException;
import dev.stevedore.agent.snapshots.Mount;
import dev.stevedore.agent.snapshots.Snapshotter;
import dev.stevedore.agent.spec.SecurityLevel;
import dev.stevedore.agent.spec.SecurityLevelViolationException;
import dev.stevedore.agent.spec.SpecGenerator;
import dev.stevedore.agent.spec.SpecRejectedException;
import dev.stevedore.api.v1alpha1.Container;
import dev.stevedore.api.v1alpha1.ContainerSpec;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.concurrent.locks.Lock;
import java.util.function.Predicate;

/**
 * Turns a Container into what a Task needs on this node: the image in the content store, its layers unpacked
 * into shared committed snapshots, an active snapshot for the rootfs, and the spec generated from the prepared
 * rootfs (whose /etc/passwd and /etc/group resolve the user, as containerd reads them). Each step but the spec is
 * skipped when its result exists.
 */
public final class RootfsPreparer {
    private final ImageService images;
    private final ContentStore content;
    private final Map<String, Snapshotter> snapshotters;
    private final SpecGenerator specs;
    private final ContainerRecords records;
    private final GarbageCollector gc;
    private final Predicate<String> snapshotInUse;
    private final Path tempMounts;
    private final PrepareMetrics metrics;

    /**
     * @param snapshotInUse whether a running Task uses an active snapshot: a Container's old rootfs outlives a change until then
     * @param tempMounts where root filesystems are mounted read-only while their spec is generated; a crash's
     *        leftovers there are removed now
     */
    public RootfsPreparer(
            ImageService images,
            ContentStore content,
            Map<String, Snapshotter> snapshotters,
            SpecGenerator specs,
            ContainerRecords records,
            GarbageCollector gc,
            Predicate<String> snapshotInUse,
            Path tempMounts,
            PrepareMetrics metrics)
            throws IOException {
        ReadOnlyRootfs.removeLeftovers(tempMounts);
        this.tempMounts = tempMounts;
        this.snapshotInUse = snapshotInUse;
        this.images = images;
        this.content = content;
        this.snapshotters = snapshotters;
        this.specs = specs;
        this.records = records;
        this.gc = gc;
        this.metrics = metrics;
    }

    /** Which step failed, with the reason and message for the Container's conditions. */
    public static final class PrepareException extends Exception {
        private static final long serialVersionUID = 1L;
        private final String condition;
        private final String reason;
        private final boolean transientFailure;

        PrepareException(String condition, String reason, String message, boolean transientFailure, Throwable cause) {
            super(message, cause);
            this.condition = condition;
            this.reason = reason;
            this.transientFailure = transientFailure;
        }

        public String condition() {
            return condition;
        }

        public String reason() {
            return reason;
        }

        public boolean transientFailure() {
            return transientFailure;
        }
    }

    /**
     * @param level the security level of the Container's namespace, which its spec must keep
     * @param pull told of the image's pull, if there is one
     */
    public ContainerRecord prepare(
            Container container, Map<String, RegistryAuth> auths, SecurityLevel level, ImageService.PullListener pull)
            throws PrepareException, IOException {
        ContainerSpec spec = container.getSpec();
        String uid = container.getMetadata().getUid();
        String snapshotterName = spec.snapshotter() == ContainerSpec.Snapshotter.nativeCopy ? "native" : "overlayfs";
        Snapshotter snapshotter = snapshotters.get(snapshotterName);
        if (snapshotter == null) {
            throw new PrepareException(
                    "RootfsReady",
                    "SnapshotterUnavailable",
                    "this node has no " + snapshotterName + " snapshotter",
                    false,
                    null);
        }
        Lock lease = gc.lease();
        lease.lock();
        try {
            Image image;
            PrepareMetrics.Pull measured = metrics.measure(pull);
            try {
                image = images.ensure(spec.image(), auths, measured);
            } catch (ImageException e) {
                measured.failed(e.reason());
                throw new PrepareException("ImageReady", e.reason(), e.getMessage(), e.transientFailure(), e);
            }
            List<String> chain =
                    ChainIds.of(image.layers().stream().map(Image.Layer::diffId).toList());
            String key = "ctr-" + uid + "-" + shortHash(image.manifest() + " " + snapshotterName);
            List<Mount> mounts;
            try {
                unpackLayers(snapshotter, image, chain);
                mounts = snapshotter.mounts(key).orElse(null);
                if (mounts == null) {
                    mounts = snapshotter.prepare(key, chain.isEmpty() ? null : chain.get(chain.size() - 1));
                }
            } catch (IOException e) {
                throw diskFullOr(e, "RootfsReady", "unpacking " + image.name());
            }
            ObjectNode generated;
            try (ReadOnlyRootfs rootfs = ReadOnlyRootfs.mount(mounts, tempMounts)) {
                generated = specs.generate(
                        uid,
                        spec,
                        image.imageConfig(),
                        rootfs.path(),
                        new SecurityLevel.Enforced(container.getMetadata().getNamespace(), level));
            } catch (SecurityLevelViolationException e) {
                throw new PrepareException("Ready", "SecurityLevelViolation", e.getMessage(), false, e);
            } catch (SpecRejectedException e) {
                throw new PrepareException("Ready", "SpecRejected", e.getMessage(), false, e);
            }
            String specDigest = specs.digest(generated);
            try {
                records.putSpec(uid, specDigest, generated);
            } catch (IOException e) {
                throw diskFullOr(e, "Ready", "writing the spec");
            }
            ContainerRecord previous = records.get(uid).orElse(null);
            List<String> retired = new ArrayList<>(previous == null ? List.of() : previous.retiredSnapshotKeys());
            if (previous != null && !previous.snapshotKey().equals(key) && !retired.contains(previous.snapshotKey())) {
                retired.add(previous.snapshotKey());
            }
            for (String old : List.copyOf(retired)) {
                if (!snapshotInUse.test(old)) {
                    snapshotters.get(previous.snapshotter()).remove(old);
                    retired.remove(old);
                }
            }
            records.removeSpecsExcept(uid, specDigest);
            ContainerRecord record = new ContainerRecord(
                    uid,
                    container.getMetadata().getNamespace(),
                    container.getMetadata().getName(),
                    container.getMetadata().getGeneration(),
                    image.name(),
                    image.digest().toString(),
                    snapshotterName,
                    key,
                    specDigest,
                    runtime(spec),
                    retired,
                    spec.network());
            records.put(record);
            return record;
        } finally {
            lease.unlock();
        }
    }

    private void unpackLayers(Snapshotter snapshotter, Image image, List<String> chain)
            throws PrepareException, IOException {
        for (int i = 0; i < chain.size(); i++) {
            if (snapshotter.exists(chain.get(i))) {
                continue;
            }
            Image.Layer layer = image.layers().get(i);
            Digest digest = layer.digest();
            Path blob = content.path(digest)
                    .orElseThrow(() -> new IOException("layer " + digest + " is not in the content store"));
            long started = System.nanoTime();
            try {
                snapshotter.unpack(
                        chain.get(i),
                        i == 0 ? null : chain.get(i - 1),
                        blob,
                        layer.mediaType(),
                        layer.diffId().toString());
                metrics.unpacked(snapshotter.name(), Duration.ofNanos(System.nanoTime() - started));
            } catch (LayerRejectedException e) {
                throw new PrepareException(
                        "RootfsReady", "LayerRejected", "layer " + digest + ": " + e.getMessage(), false, e);
            }
        }
    }

    /**
     * A full disk as the Container's condition, retried (what failed left nothing behind: snapshots are built in a
     * temp directory that a failure removes); any other I/O failure as it is.
     */
    private static IOException diskFullOr(IOException e, String condition, String what) throws PrepareException {
        if (DiskFull.causedBy(e)) {
            throw new PrepareException(condition, ImageException.DISK_FULL, what + ": " + e.getMessage(), true, e);
        }
        return e;
    }

    /** Releases the Container's snapshots and specs; call when no Task uses them any more. */
    public void release(String uid) throws IOException {
        ContainerRecord record = records.get(uid).orElse(null);
        if (record != null) {
            Snapshotter snapshotter = snapshotters.get(record.snapshotter());
            List<String> keys = new ArrayList<>(record.retiredSnapshotKeys());
            keys.add(record.snapshotKey());
            for (String key : keys) {
                snapshotter.remove(key);
            }
        }
        records.delete(uid);
    }

    private static String runtime(ContainerSpec spec) {
        return spec.runtime() == null || spec.runtime().name() == null
                ? ContainerRecord.DEFAULT_RUNTIME
                : spec.runtime().name().name();
    }

    private static String shortHash(String text) {
        try {
            byte[] hash = MessageDigest.getInstance("SHA-256").digest(text.getBytes(StandardCharsets.UTF_8));
            return HexFormat.of().formatHex(hash, 0, 6);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
