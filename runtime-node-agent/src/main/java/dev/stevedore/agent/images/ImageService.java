package dev.stevedore.agent.images;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * Images on this node, containerd's images service: pulls from OCI distribution registries into the content
 * store (manifests, config and layers, every blob verified), imports OCI image-layout archives, and keeps a
 * record per image name.
 */
public interface ImageService {

    /**
     * Pulls {@code reference} for this node's platform. {@code auths} maps registry hosts ("host[:port]") to
     * credentials. Registries on loopback addresses are spoken to over plain HTTP, others over HTTPS unless the
     * agent's configuration lists them as insecure.
     */
    Image pull(String reference, Map<String, RegistryAuth> auths) throws ImageException;

    /**
     * The image a Container with {@code auths} may use, as kubelet decides since KEP-2535: the one on the node if it
     * was imported, pulled without credentials, or these credentials are known (or checked with the registry) to pull
     * it; else pulled with them. A refusal is {@link ImageException#UNAUTHORIZED}; a registry that cannot be asked, a
     * transient failure.
     */
    default Image ensure(String reference, Map<String, RegistryAuth> auths) throws ImageException {
        return ensure(reference, auths, PullListener.NONE);
    }

    /** As {@link #ensure(String, Map)}, telling {@code listener} of the pull when there is one. */
    Image ensure(String reference, Map<String, RegistryAuth> auths, PullListener listener) throws ImageException;

    /** What a pull tells as it goes: for the Events and the status of the Container it is for. */
    interface PullListener {
        PullListener NONE = new PullListener() {};

        /** The image is not on the node (or not for these credentials): it is pulled now. */
        default void pulling(String reference) {}

        /**
         * Bytes of the image's layers downloaded so far, of {@code total} to download (the layers not on the node
         * already); called from the downloading thread at every read, so it must only note them.
         */
        default void progress(long done, long total) {}

        default void pulled(Image image, Duration took) {}
    }

    /**
     * Imports every image of an OCI image-layout (directory or tar archive), as {@code ctr images import}: one image
     * per entry of its index.json, named by its {@code org.opencontainers.image.ref.name} annotation (containerd's
     * {@code io.containerd.image.name} first), else {@code import/<digest>}. None is recorded unless all could be
     * assembled. Imported images are {@link #pinned}: a node without a registry could not get them back.
     */
    List<Image> importArchive(Path archive) throws ImageException;

    /** Whether garbage collection keeps the image though no Container uses it: true for imported images. */
    boolean pinned(String name);

    /**
     * By the name as recorded, or else by its normalized form: {@code busybox} finds
     * {@code docker.io/library/busybox:latest}.
     */
    Optional<Image> get(String name);

    List<Image> list();

    /** Forgets the image record; blobs go with garbage collection. */
    void remove(String name);
}
