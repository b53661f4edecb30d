package dev.stevedore.agent.images;

import dev.stevedore.agent.content.Digest;
import java.util.List;

/**
 * An image on the node: the reference it was pulled or imported as, the digest that reference resolved to (an
 * index for multi-platform images), the manifest chosen for this node's platform, and its layers bottom first.
 */
public record Image(
        String name,
        Digest digest,
        Digest manifest,
        Digest config,
        List<Layer> layers,
        ImageConfig imageConfig,
        long size) {

    /** A layer blob and the digest of its uncompressed tar (the config's rootfs.diff_ids), which chain IDs use. */
    public record Layer(Digest digest, String mediaType, long size, Digest diffId) {}
}
