package dev.stevedore.agent.images;

import dev.stevedore.agent.content.Digest;
import java.nio.charset.StandardCharsets;

/**
 * The blobs of a one-layer image for this node's platform, and manifests whose descriptors say what a test wants
 * them to say. The layer is not unpacked by a pull, so any bytes do; its diff ID is its digest.
 */
record ImageBlobs(byte[] layer, Digest layerDigest, byte[] config, Digest configDigest) {
    static final String LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip";
    static final String CONFIG_TYPE = "application/vnd.oci.image.config.v1+json";

    static ImageBlobs of(byte[] layer) {
        Digest layerDigest = Digest.sha256Of(layer);
        Platform node = Platform.current();
        byte[] config = ("{\"os\":\"" + node.os() + "\",\"architecture\":\"" + node.architecture()
                        + "\",\"config\":{\"Cmd\":[\"sh\"]},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\""
                        + layerDigest + "\"]}}")
                .getBytes(StandardCharsets.UTF_8);
        return new ImageBlobs(layer, layerDigest, config, Digest.sha256Of(config));
    }

    static ImageBlobs small() {
        return of("layer bytes ".repeat(100).getBytes(StandardCharsets.UTF_8));
    }

    byte[] manifest() {
        return manifest(config.length, layer.length);
    }

    byte[] manifest(long configSize, long layerSize) {
        return ("{\"schemaVersion\":2,\"mediaType\":\"" + Oci.OCI_MANIFEST + "\",\"config\":{\"mediaType\":\""
                        + CONFIG_TYPE + "\",\"digest\":\"" + configDigest + "\",\"size\":" + configSize
                        + "},\"layers\":[{\"mediaType\":\"" + LAYER_TYPE + "\",\"digest\":\"" + layerDigest
                        + "\",\"size\":" + layerSize + "}]}")
                .getBytes(StandardCharsets.UTF_8);
    }

    /** An index with one entry for this node's platform, of the given size. */
    static byte[] index(Digest manifest, long size) {
        Platform node = Platform.current();
        return ("{\"schemaVersion\":2,\"mediaType\":\"" + Oci.OCI_INDEX + "\",\"manifests\":[{\"mediaType\":\""
                        + Oci.OCI_MANIFEST + "\",\"digest\":\"" + manifest + "\",\"size\":" + size
                        + ",\"platform\":{\"os\":\"" + node.os() + "\",\"architecture\":\"" + node.architecture()
                        + "\"}}]}")
                .getBytes(StandardCharsets.UTF_8);
    }

    /** Serves this image as {@code tag} with {@code manifest}, and its config and layer blobs as they are. */
    void serve(ScriptedRegistry registry, String tag, byte[] manifest) {
        registry.manifest(tag, manifest, Oci.OCI_MANIFEST);
        registry.blob(configDigest, config);
        registry.blob(layerDigest, layer);
    }

    void serve(ScriptedRegistry registry, String tag) {
        serve(registry, tag, manifest());
    }
}
