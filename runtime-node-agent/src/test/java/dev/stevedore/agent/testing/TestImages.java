package dev.stevedore.agent.testing;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.stevedore.testing.Tools;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;

/**
 * Test images in an OCI image layout, built with umoci from Debian's busybox-static (no network), and pushed to a
 * {@link LocalRegistry} with skopeo:
 * <ul>
 * <li>{@value #BASE}: busybox, one layer, for this machine's platform;</li>
 * <li>{@value #LAYERED}: base plus a layer adding {@value #ADDED_FILE} and one deleting {@value #DELETED_FILE} by a
 * whiteout;</li>
 * <li>{@value #FOREIGN}: one dummy layer, for another architecture ({@link #foreignArchitecture()});</li>
 * <li>{@value #MULTI}: an index of foreign (listed first) and base, each with its platform.</li>
 * </ul>
 */
public final class TestImages {
    public static final String BASE = "base";
    public static final String LAYERED = "layered";
    public static final String FOREIGN = "foreign";
    public static final String MULTI = "multi";
    public static final String ADDED_FILE = "etc/stevedore-release";
    public static final String DELETED_FILE = "etc/group";
    /** A directory of the layered image's second layer that its last layer makes opaque. */
    public static final String OPAQUE_DIR = "opt/data";

    public static final String HIDDEN_FILE = OPAQUE_DIR + "/lower-file";
    public static final String OPAQUE_KEPT_FILE = OPAQUE_DIR + "/upper-file";

    private static final ObjectMapper JSON = new ObjectMapper();

    /** How skopeo writes a single manifest to a registry. */
    public enum Format {
        OCI,
        DOCKER_V2S2
    }

    private final Path layout;

    private TestImages(Path layout) {
        this.layout = layout;
    }

    /** Builds all images into {@code dir/layout}; {@code dir} also holds scratch bundles. */
    public static TestImages build(Path dir) {
        Path layout = dir.resolve("layout");
        run(Tools.repositoryRoot().resolve("hack/build-busybox-image.sh").toString(), layout.toString(), BASE);
        TestImages images = new TestImages(layout);
        images.buildLayered(dir);
        images.buildForeign(dir);
        images.writeIndex(MULTI, List.of(FOREIGN, BASE));
        return images;
    }

    public Path layout() {
        return layout;
    }

    /** The architecture that is not this machine's: arm64 on amd64, amd64 elsewhere. */
    public static String foreignArchitecture() {
        String arch = System.getProperty("os.arch");
        return arch.equals("amd64") || arch.equals("x86_64") ? "arm64" : "amd64";
    }

    /** The digest of the manifest or index the tag names in the layout. */
    public String digest(String tag) {
        for (JsonNode entry : readJson(layout.resolve("index.json")).path("manifests")) {
            if (tag.equals(entry.path("annotations")
                    .path("org.opencontainers.image.ref.name")
                    .asText())) {
                return entry.path("digest").asText();
            }
        }
        throw new IllegalArgumentException("no tag " + tag + " in " + layout);
    }

    /** The manifest the tag names, as JSON (for an index, use {@link #digest} of its members). */
    public JsonNode manifest(String tag) {
        return blobJson(digest(tag));
    }

    public JsonNode blobJson(String digest) {
        return readJson(blobPath(digest));
    }

    public Path blobPath(String digest) {
        return layout.resolve("blobs/sha256").resolve(digest.substring("sha256:".length()));
    }

    /** The layer digests of a tag's manifest, bottom first. */
    public List<String> layerDigests(String tag) {
        List<String> digests = new ArrayList<>();
        manifest(tag)
                .path("layers")
                .forEach(layer -> digests.add(layer.path("digest").asText()));
        return digests;
    }

    /** The config's rootfs.diff_ids of a tag's manifest, bottom first. */
    public List<String> diffIds(String tag) {
        List<String> diffIds = new ArrayList<>();
        blobJson(manifest(tag).path("config").path("digest").asText())
                .path("rootfs")
                .path("diff_ids")
                .forEach(d -> diffIds.add(d.asText()));
        return diffIds;
    }

    /**
     * Tags {@code newTag} as {@code fromTag} plus one more layer, the tar {@code layer} as it is (umoci gzips it and
     * never looks inside: hostile layers stay hostile). Returns the new manifest's digest.
     */
    public String withLayer(String fromTag, String newTag, Path layer) {
        run("umoci", "tag", "--image", layout + ":" + fromTag, newTag);
        run("umoci", "raw", "add-layer", "--image", layout + ":" + newTag, layer.toString());
        return digest(newTag);
    }

    /**
     * Tags {@code newTag} as {@code tag} with a config whose rootfs.diff_ids are {@code diffIds}: an image that lies
     * about what its layers hold. Returns the new manifest's digest.
     */
    public String withDiffIds(String tag, String newTag, List<String> diffIds) {
        try {
            ObjectNode manifest = (ObjectNode) manifest(tag).deepCopy();
            ObjectNode config = (ObjectNode)
                    blobJson(manifest.path("config").path("digest").asText()).deepCopy();
            ArrayNode ids = ((ObjectNode) config.path("rootfs")).putArray("diff_ids");
            diffIds.forEach(ids::add);
            byte[] configBytes = JSON.writeValueAsBytes(config);
            ((ObjectNode) manifest.path("config"))
                    .put("digest", writeBlob(configBytes))
                    .put("size", configBytes.length);
            byte[] manifestBytes = JSON.writeValueAsBytes(manifest);
            String digest = writeBlob(manifestBytes);
            ObjectNode layoutIndex = (ObjectNode) readJson(layout.resolve("index.json"));
            ((ArrayNode) layoutIndex.path("manifests"))
                    .addObject()
                    .put("mediaType", "application/vnd.oci.image.manifest.v1+json")
                    .put("digest", digest)
                    .put("size", manifestBytes.length)
                    .set("annotations", JSON.valueToTree(Map.of("org.opencontainers.image.ref.name", newTag)));
            Files.write(layout.resolve("index.json"), JSON.writeValueAsBytes(layoutIndex));
            return digest;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private String writeBlob(byte[] bytes) throws IOException {
        try {
            String digest = "sha256:"
                    + HexFormat.of()
                            .formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
            Files.write(blobPath(digest), bytes);
            return digest;
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    /**
     * Pushes a tag to {@code destination} ({@code host:port/repo:tag}) over plain HTTP; an index with all its
     * manifests. {@code credentials} is {@code user:password} or null.
     */
    public void push(String tag, String destination, Format format, String credentials) {
        List<String> command = new ArrayList<>(List.of("skopeo", "copy", "--quiet", "--dest-tls-verify=false"));
        if (format == Format.DOCKER_V2S2) {
            command.addAll(List.of("--format", "v2s2"));
        }
        if (tag.equals(MULTI)) {
            command.add("--all");
        }
        if (credentials != null) {
            command.addAll(List.of("--dest-creds", credentials));
        }
        command.addAll(List.of("oci:" + layout + ":" + tag, "docker://" + destination));
        run(command.toArray(String[]::new));
    }

    public void push(String tag, String destination) {
        push(tag, destination, Format.OCI, null);
    }

    /** An OCI archive (a tar of a layout, as {@code ctr images export} writes) holding {@code tag} as {@code name}. */
    public Path ociArchive(String tag, String name, Path file) {
        List<String> command = new ArrayList<>(List.of("skopeo", "copy", "--quiet"));
        if (tag.equals(MULTI)) {
            command.add("--all");
        }
        command.addAll(List.of("oci:" + layout + ":" + tag, "oci-archive:" + file + ":" + name));
        run(command.toArray(String[]::new));
        return file;
    }

    private void buildLayered(Path dir) {
        String image = layout + ":" + LAYERED;
        run("umoci", "tag", "--image", layout + ":" + BASE, LAYERED);
        Path added = dir.resolve("bundle-added");
        run("umoci", "unpack", "--image", image, added.toString());
        write(added.resolve("rootfs").resolve(ADDED_FILE), "stevedore test image\n");
        write(added.resolve("rootfs").resolve(HIDDEN_FILE), "hidden by the opaque layer\n");
        run("umoci", "repack", "--image", image, added.toString());
        Path deleted = dir.resolve("bundle-deleted");
        run("umoci", "unpack", "--image", image, deleted.toString());
        delete(deleted.resolve("rootfs").resolve(DELETED_FILE));
        run("umoci", "repack", "--image", image, deleted.toString());
        run("umoci", "raw", "add-layer", "--image", image, opaqueLayer(dir).toString());
    }

    /** umoci never writes the opaque marker, so this layer is written by hand: OPAQUE_DIR opaque, one new file. */
    private static Path opaqueLayer(Path dir) {
        Path tar = dir.resolve("opaque-layer.tar");
        try (var out =
                new org.apache.commons.compress.archivers.tar.TarArchiveOutputStream(Files.newOutputStream(tar))) {
            for (String name : List.of("opt/", OPAQUE_DIR + "/")) {
                var entry = new org.apache.commons.compress.archivers.tar.TarArchiveEntry(name);
                entry.setMode(040755);
                out.putArchiveEntry(entry);
                out.closeArchiveEntry();
            }
            writeEntry(out, OPAQUE_DIR + "/.wh..wh..opq", new byte[0]);
            writeEntry(
                    out, OPAQUE_KEPT_FILE, "from the opaque layer\n".getBytes(java.nio.charset.StandardCharsets.UTF_8));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return tar;
    }

    private static void writeEntry(
            org.apache.commons.compress.archivers.tar.TarArchiveOutputStream out, String name, byte[] content)
            throws IOException {
        var entry = new org.apache.commons.compress.archivers.tar.TarArchiveEntry(name);
        entry.setMode(0100644);
        entry.setSize(content.length);
        out.putArchiveEntry(entry);
        out.write(content);
        out.closeArchiveEntry();
    }

    private void buildForeign(Path dir) {
        String image = layout + ":" + FOREIGN;
        run("umoci", "new", "--image", image);
        run("umoci", "config", "--image", image, "--os", "linux", "--architecture", foreignArchitecture());
        Path bundle = dir.resolve("bundle-foreign");
        run("umoci", "unpack", "--image", image, bundle.toString());
        write(bundle.resolve("rootfs/dummy"), "not for this machine\n");
        run("umoci", "repack", "--image", image, bundle.toString());
    }

    /** umoci writes no indexes of indexes, so the multi-platform one is written here, as buildx would. */
    private void writeIndex(String tag, List<String> members) {
        ArrayNode manifests = JSON.createArrayNode();
        for (String member : members) {
            String digest = digest(member);
            JsonNode config =
                    blobJson(manifest(member).path("config").path("digest").asText());
            ObjectNode entry = manifests
                    .addObject()
                    .put("mediaType", "application/vnd.oci.image.manifest.v1+json")
                    .put("digest", digest)
                    .put("size", size(blobPath(digest)));
            entry.putObject("platform")
                    .put("architecture", config.path("architecture").asText())
                    .put("os", config.path("os").asText());
        }
        ObjectNode index = JSON.createObjectNode()
                .put("schemaVersion", 2)
                .put("mediaType", "application/vnd.oci.image.index.v1+json");
        index.set("manifests", manifests);
        try {
            byte[] bytes = JSON.writeValueAsBytes(index);
            String digest = "sha256:"
                    + HexFormat.of()
                            .formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
            Files.write(blobPath(digest), bytes);
            ObjectNode layoutIndex = (ObjectNode) readJson(layout.resolve("index.json"));
            ((ArrayNode) layoutIndex.path("manifests"))
                    .addObject()
                    .put("mediaType", "application/vnd.oci.image.index.v1+json")
                    .put("digest", digest)
                    .put("size", bytes.length)
                    .set("annotations", JSON.valueToTree(Map.of("org.opencontainers.image.ref.name", tag)));
            Files.write(layout.resolve("index.json"), JSON.writeValueAsBytes(layoutIndex));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    static void run(String... command) {
        try {
            Process process =
                    new ProcessBuilder(command).redirectErrorStream(true).start();
            String output = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            if (process.waitFor() != 0) {
                throw new IllegalStateException(String.join(" ", command) + " failed (" + process.exitValue()
                        + "); is hack/install-prereqs.sh run?\n" + output);
            }
        } catch (IOException e) {
            throw new UncheckedIOException(String.join(" ", command) + ": is hack/install-prereqs.sh run?", e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted: " + String.join(" ", command), e);
        }
    }

    private static JsonNode readJson(Path file) {
        try {
            return JSON.readTree(file.toFile());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static long size(Path file) {
        try {
            return Files.size(file);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static void write(Path file, String content) {
        try {
            Files.createDirectories(file.getParent());
            Files.writeString(file, content);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static void delete(Path file) {
        try {
            Files.delete(file);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
