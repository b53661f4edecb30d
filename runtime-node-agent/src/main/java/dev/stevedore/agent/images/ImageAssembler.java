package dev.stevedore.agent.images;

import static dev.stevedore.agent.images.ImageException.DIGEST_MISMATCH;
import static dev.stevedore.agent.images.ImageException.INVALID_IMAGE;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.exc.ValueInstantiationException;
import dev.stevedore.agent.content.ContentStore;
import dev.stevedore.agent.content.Digest;
import dev.stevedore.agent.content.DigestMismatchException;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * Walks from the digest a name resolved to (a manifest, or an index whose entry for this node's platform is taken)
 * to the config and layers, storing each blob in the content store, which verifies it, and reading the JSON ones
 * back from there: nothing unverified is ever parsed. Pulls and imports differ only in where blobs come from.
 */
final class ImageAssembler {
    private final ContentStore content;
    private final Platform platform;

    /** Where the blobs of one image come from: a registry repository or an OCI image layout. */
    interface Blobs {
        /** A manifest or index, which registries serve from their manifests endpoint. */
        InputStream manifest(Digest digest) throws IOException;

        InputStream blob(Digest digest) throws IOException;

        /** The layers are fetched next: {@code bytes} of them that the content store does not hold yet. */
        default void fetchingLayers(long bytes) {}
    }

    ImageAssembler(ContentStore content, Platform platform) {
        this.content = content;
        this.platform = platform;
    }

    /**
     * @param digest what the name resolved to
     * @param mediaType as the registry or the layout's index described it; null if unknown
     * @param size its size in bytes, or -1 if unknown
     */
    Image assemble(String name, Digest digest, String mediaType, long size, Blobs blobs) throws ImageException {
        try {
            byte[] top = readJson(digest, size, () -> blobs.manifest(digest));
            String topType = Oci.mediaTypeOf(top, mediaType);
            Digest manifestDigest = digest;
            byte[] manifestJson = top;
            String manifestType = topType;
            if (Oci.isOneOf(Oci.INDEX_TYPES, topType)) {
                Oci.Descriptor chosen = choosePlatform(Oci.parse(top, Oci.Index.class), digest);
                manifestDigest = chosen.parsedDigest();
                Digest child = manifestDigest;
                manifestJson = readJson(child, chosen.size(), () -> blobs.manifest(child));
                manifestType = Oci.mediaTypeOf(manifestJson, chosen.mediaType());
            }
            if (!Oci.isOneOf(Oci.MANIFEST_TYPES, manifestType)) {
                throw invalid(digest + " has the unsupported media type " + manifestType);
            }
            return fromManifest(name, digest, manifestDigest, manifestJson, blobs);
        } catch (DigestMismatchException e) {
            throw new ImageException(DIGEST_MISMATCH, name + ": " + e.getMessage(), false, e);
        } catch (FetchException e) {
            throw e.toImageException();
        } catch (ValueInstantiationException e) {
            // A record's constructor refused a value (Descriptor's size): its message says which.
            String why = e.getCause() != null ? e.getCause().getMessage() : e.getOriginalMessage();
            throw new ImageException(INVALID_IMAGE, name + ": malformed image: " + why, false, e);
        } catch (JsonProcessingException | IllegalArgumentException e) {
            throw new ImageException(INVALID_IMAGE, name + ": malformed image: " + e.getMessage(), false, e);
        } catch (IOException e) {
            // Not the registry's fault (that would be a FetchException): the node's disk.
            throw ImageException.storage(name + ": " + e.getMessage(), e);
        }
    }

    private Image fromManifest(String name, Digest digest, Digest manifestDigest, byte[] manifestJson, Blobs blobs)
            throws IOException, ImageException {
        Oci.Manifest manifest = Oci.parse(manifestJson, Oci.Manifest.class);
        if (manifest.config() == null) {
            throw invalid(manifestDigest + " has no config");
        }
        if (!Oci.isOneOf(Oci.CONFIG_TYPES, manifest.config().mediaType())) {
            throw invalid("unsupported config media type " + manifest.config().mediaType());
        }
        List<Oci.Descriptor> layers = manifest.layers() == null ? List.of() : manifest.layers();
        for (Oci.Descriptor layer : layers) {
            if (layer == null) {
                throw invalid(manifestDigest + " lists a null layer");
            }
            if (!Oci.isOneOf(Oci.LAYER_TYPES, layer.mediaType())) {
                throw invalid("unsupported layer media type " + layer.mediaType());
            }
        }
        Digest configDigest = manifest.config().parsedDigest();
        byte[] configJson = readJson(configDigest, manifest.config().size(), () -> blobs.blob(configDigest));
        Oci.Config config = Oci.parse(configJson, Oci.Config.class);
        if (config.os() != null && !platform.matches(config.os(), config.architecture())) {
            throw invalid(
                    "the image is for " + config.os() + "/" + config.architecture() + ", this node is " + platform);
        }
        List<String> diffIds = config.rootfs() == null || config.rootfs().diffIds() == null
                ? List.of()
                : config.rootfs().diffIds();
        if (diffIds.size() != layers.size()) {
            throw invalid(layers.size() + " layers but " + diffIds.size() + " diff_ids in the config");
        }
        long size = imageSize(manifestJson.length + manifest.config().size(), layers);
        blobs.fetchingLayers(layers.stream()
                .filter(layer -> content.path(layer.parsedDigest()).isEmpty())
                .mapToLong(Oci.Descriptor::size)
                .sum());
        List<Image.Layer> imageLayers = new ArrayList<>();
        for (int i = 0; i < layers.size(); i++) {
            Oci.Descriptor layer = layers.get(i);
            Digest layerDigest = layer.parsedDigest();
            content.ingest(layerDigest, layer.size(), () -> blobs.blob(layerDigest));
            // The uncompressed layer is checked against its diff ID when it is unpacked (Snapshotter.unpack),
            // which decompresses it anyway, as containerd does.
            Digest diffId = Oci.digest(diffIds.get(i));
            imageLayers.add(new Image.Layer(layerDigest, layer.mediaType(), layer.size(), diffId));
        }
        return new Image(
                name, digest, manifestDigest, configDigest, List.copyOf(imageLayers), imageConfig(config), size);
    }

    /**
     * The bytes the image's descriptors add up to, refused before any layer is fetched when no node could hold them:
     * descriptors that say so are lies (or the node is far too small), and the download would only fill the disk.
     */
    private long imageSize(long jsonSize, List<Oci.Descriptor> layers) throws IOException, ImageException {
        long size = jsonSize;
        try {
            for (Oci.Descriptor layer : layers) {
                size = Math.addExact(size, layer.size());
            }
        } catch (ArithmeticException overflow) {
            throw invalid("the layer sizes of the image add up to more than 2^63 bytes");
        }
        long capacity = content.capacity();
        if (size > capacity) {
            throw invalid("the image's descriptors say " + size + " bytes, more than this node's content store can"
                    + " ever hold (" + capacity + " bytes)");
        }
        return size;
    }

    private Oci.Descriptor choosePlatform(Oci.Index index, Digest digest) throws ImageException {
        for (Oci.Descriptor entry : index.manifests() == null ? List.<Oci.Descriptor>of() : index.manifests()) {
            if (entry != null
                    && entry.platform() != null
                    && Oci.isOneOf(Oci.MANIFEST_TYPES, entry.mediaType())
                    && platform.matches(entry.platform().os(), entry.platform().architecture())) {
                return entry;
            }
        }
        throw invalid("the index " + digest + " has no manifest for " + platform);
    }

    private byte[] readJson(Digest digest, long size, ContentStore.BlobSource source)
            throws IOException, ImageException {
        if (size > Oci.MAX_JSON_SIZE) {
            throw invalid(digest + " is " + size + " bytes, more than a manifest or config may be");
        }
        Path path = content.ingest(digest, size, source);
        if (Files.size(path) > Oci.MAX_JSON_SIZE) {
            throw invalid(digest + " is larger than a manifest or config may be");
        }
        return Files.readAllBytes(path);
    }

    private static ImageConfig imageConfig(Oci.Config config) {
        Oci.ContainerConfig c = config.config();
        if (c == null) {
            return new ImageConfig(List.of(), List.of(), List.of(), "", "");
        }
        return new ImageConfig(
                strings(c.entrypoint()),
                strings(c.cmd()),
                strings(c.env()),
                c.workingDir() == null ? "" : c.workingDir(),
                c.user() == null ? "" : c.user());
    }

    /** JSON arrays may hold nulls, which List.copyOf refuses; they carry nothing, so they go. */
    private static List<String> strings(List<String> list) {
        return list == null ? List.of() : list.stream().filter(Objects::nonNull).toList();
    }

    private static ImageException invalid(String message) {
        return new ImageException(INVALID_IMAGE, message, false, null);
    }
}
