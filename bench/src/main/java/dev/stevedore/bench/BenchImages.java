package dev.stevedore.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.stevedore.testing.Tools;
import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * The benchmarks' images, in an OCI image layout, built with no network as the agent's TestImages are, and pushed to
 * a {@link BenchRegistry} with skopeo:
 * <ul>
 * <li>{@value #BASE}: Debian's busybox-static, one gzip layer of about 1 MB ({@code hack/build-busybox-image.sh});</li>
 * <li>{@value #BIG}: base plus a second layer of {@code --layer-mib} files of 1 MiB of pseudo-random bytes under
 * /data (umoci, gzip): random so that it does not compress, and the layer's size is what moves over the wire.</li>
 * </ul>
 */
final class BenchImages {
    static final String BASE = "base";
    static final String BIG = "big";
    private static final int MIB = 1 << 20;
    /** A fixed seed: every run pulls the same bytes. */
    private static final long SEED = 20240917L;

    private static final ObjectMapper JSON = new ObjectMapper();

    private final Path layout;

    private BenchImages(Path layout) {
        this.layout = layout;
    }

    /** Builds {@value #BASE} into {@code dir/layout}, and {@value #BIG} too when {@code layerMiB} is positive. */
    static BenchImages build(Path dir, int layerMiB) {
        Path layout = dir.resolve("layout");
        Commands.run(
                Tools.repositoryRoot().resolve("hack/build-busybox-image.sh").toString(), layout.toString(), BASE);
        BenchImages images = new BenchImages(layout);
        if (layerMiB > 0) {
            images.buildBig(dir.resolve("bundle-big"), layerMiB);
        }
        return images;
    }

    private void buildBig(Path bundle, int layerMiB) {
        String image = layout + ":" + BIG;
        Commands.run("umoci", "tag", "--image", layout + ":" + BASE, BIG);
        Commands.run("umoci", "unpack", "--image", image, bundle.toString());
        Path data = bundle.resolve("rootfs/data");
        SplittableRandom random = new SplittableRandom(SEED);
        byte[] chunk = new byte[MIB];
        try {
            Files.createDirectories(data);
            for (int i = 0; i < layerMiB; i++) {
                for (int j = 0; j < chunk.length; j += 8) {
                    long bits = random.nextLong();
                    for (int k = 0; k < 8; k++) {
                        chunk[j + k] = (byte) (bits >>> (8 * k));
                    }
                }
                try (OutputStream out = Files.newOutputStream(data.resolve(String.format("random-%03d.bin", i)))) {
                    out.write(chunk);
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        Commands.run("umoci", "repack", "--image", image, bundle.toString());
        Commands.deleteTree(bundle);
        Commands.run("umoci", "gc", "--layout", layout.toString());
    }

    /** Pushes {@code tag} to {@code destination} ({@code host:port/repository:tag}) over plain HTTP, as OCI. */
    void push(String tag, String destination) {
        Commands.run(
                "skopeo",
                "copy",
                "--quiet",
                "--dest-tls-verify=false",
                "oci:" + layout + ":" + tag,
                "docker://" + destination);
    }

    /** Bytes a pull of {@code tag} downloads: manifest, config and (compressed) layers. */
    long pullBytes(String tag) {
        try {
            JsonNode entry = indexEntry(tag);
            JsonNode manifest =
                    JSON.readTree(blob(entry.path("digest").asText()).toFile());
            long total = entry.path("size").asLong()
                    + manifest.path("config").path("size").asLong();
            for (JsonNode layer : manifest.path("layers")) {
                total += layer.path("size").asLong();
            }
            return total;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** The compressed sizes of {@code tag}'s layers, bottom first. */
    List<Long> layerSizes(String tag) {
        try {
            JsonNode manifest =
                    JSON.readTree(blob(indexEntry(tag).path("digest").asText()).toFile());
            List<Long> sizes = new ArrayList<>();
            manifest.path("layers")
                    .forEach(layer -> sizes.add(layer.path("size").asLong()));
            return sizes;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private JsonNode indexEntry(String tag) throws IOException {
        for (JsonNode entry :
                JSON.readTree(layout.resolve("index.json").toFile()).path("manifests")) {
            if (tag.equals(entry.path("annotations")
                    .path("org.opencontainers.image.ref.name")
                    .asText())) {
                return entry;
            }
        }
        throw new IllegalArgumentException("no tag " + tag + " in " + layout);
    }

    private Path blob(String digest) {
        return layout.resolve("blobs/sha256").resolve(digest.substring("sha256:".length()));
    }
}
