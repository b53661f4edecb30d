package dev.stevedore.agent.snapshots;

import com.github.luben.zstd.ZstdInputStream;
import java.io.BufferedInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Set;
import java.util.zip.GZIPInputStream;

/**
 * Opens a layer blob as an uncompressed tar stream. The media type must be a known layer type; the compression
 * is taken from the blob's magic bytes, as Docker and containerd do, so a mislabelled blob still unpacks.
 */
public final class LayerStreams {
    private static final Set<String> LAYER_MEDIA_TYPES = Set.of(
            "application/vnd.oci.image.layer.v1.tar",
            "application/vnd.oci.image.layer.v1.tar+gzip",
            "application/vnd.oci.image.layer.v1.tar+zstd",
            "application/vnd.oci.image.layer.nondistributable.v1.tar",
            "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
            "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
            "application/vnd.docker.image.rootfs.diff.tar",
            "application/vnd.docker.image.rootfs.diff.tar.gzip",
            "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip");
    private static final byte[] GZIP_MAGIC = {0x1f, (byte) 0x8b};
    private static final byte[] ZSTD_MAGIC = {0x28, (byte) 0xb5, 0x2f, (byte) 0xfd};

    private LayerStreams() {}

    /** @param mediaType the descriptor's media type, or null to go by magic bytes alone */
    public static InputStream open(Path blob, String mediaType) throws IOException {
        if (mediaType != null && !LAYER_MEDIA_TYPES.contains(mediaType)) {
            throw new LayerRejectedException("unsupported layer media type: " + mediaType);
        }
        InputStream in = new BufferedInputStream(Files.newInputStream(blob), 1 << 16);
        try {
            in.mark(ZSTD_MAGIC.length);
            byte[] head = in.readNBytes(ZSTD_MAGIC.length);
            in.reset();
            if (startsWith(head, GZIP_MAGIC)) {
                return new BufferedInputStream(new GZIPInputStream(in, 1 << 16), 1 << 16);
            }
            if (startsWith(head, ZSTD_MAGIC)) {
                return new BufferedInputStream(new ZstdInputStream(in), 1 << 16);
            }
            return in;
        } catch (IOException | RuntimeException e) {
            in.close();
            throw e;
        }
    }

    private static boolean startsWith(byte[] data, byte[] prefix) {
        if (data.length < prefix.length) {
            return false;
        }
        for (int i = 0; i < prefix.length; i++) {
            if (data[i] != prefix[i]) {
                return false;
            }
        }
        return true;
    }
}
