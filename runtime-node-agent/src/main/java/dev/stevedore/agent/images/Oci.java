package dev.stevedore.agent.images;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import com.fasterxml.jackson.annotation.JsonProperty;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.stevedore.agent.content.Digest;
import java.io.IOException;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The parts of OCI and Docker schema2 manifests, indexes and configs that images need, and their media types.
 * Unknown fields are ignored; a field of the wrong type fails parsing, which callers report as InvalidImage.
 */
final class Oci {
    static final String OCI_INDEX = "application/vnd.oci.image.index.v1+json";
    static final String OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
    static final String DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json";
    static final String DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json";
    /** Everything a registry may answer with that we can read; the distribution registry needs the OCI ones listed. */
    static final String MANIFEST_ACCEPT = String.join(", ", OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST);

    static final Set<String> INDEX_TYPES = Set.of(OCI_INDEX, DOCKER_LIST);
    static final Set<String> MANIFEST_TYPES = Set.of(OCI_MANIFEST, DOCKER_MANIFEST);
    static final Set<String> CONFIG_TYPES =
            Set.of("application/vnd.oci.image.config.v1+json", "application/vnd.docker.container.image.v1+json");
    static final Set<String> LAYER_TYPES = Set.of(
            "application/vnd.oci.image.layer.v1.tar",
            "application/vnd.oci.image.layer.v1.tar+gzip",
            "application/vnd.oci.image.layer.v1.tar+zstd",
            "application/vnd.docker.image.rootfs.diff.tar.gzip");

    static final String REF_NAME = "org.opencontainers.image.ref.name";
    static final String CONTAINERD_NAME = "io.containerd.image.name";

    /** Manifests, configs and indexes are small; a bigger one is hostile or broken, and is read into memory. */
    static final long MAX_JSON_SIZE = 4L * 1024 * 1024;

    static final ObjectMapper JSON =
            new ObjectMapper().configure(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES, false);

    private Oci() {}

    @JsonIgnoreProperties(ignoreUnknown = true)
    record Descriptor(
            String mediaType, String digest, long size, PlatformSpec platform, Map<String, String> annotations) {

        /** Refused while parsing: a negative size would read as "unknown" and turn the size checks off. */
        Descriptor {
            if (size < 0) {
                throw new IllegalArgumentException("the descriptor of " + digest + " has the negative size " + size);
            }
        }

        Digest parsedDigest() {
            return Oci.digest(digest);
        }

        String annotation(String key) {
            return annotations == null ? null : annotations.get(key);
        }
    }

    @JsonIgnoreProperties(ignoreUnknown = true)
    record PlatformSpec(String os, String architecture, String variant) {}

    @JsonIgnoreProperties(ignoreUnknown = true)
    record Index(int schemaVersion, String mediaType, List<Descriptor> manifests) {}

    @JsonIgnoreProperties(ignoreUnknown = true)
    record Manifest(int schemaVersion, String mediaType, Descriptor config, List<Descriptor> layers) {}

    @JsonIgnoreProperties(ignoreUnknown = true)
    record Config(String os, String architecture, ContainerConfig config, RootFs rootfs) {}

    @JsonIgnoreProperties(ignoreUnknown = true)
    record ContainerConfig(
            @JsonProperty("Entrypoint") List<String> entrypoint,
            @JsonProperty("Cmd") List<String> cmd,
            @JsonProperty("Env") List<String> env,
            @JsonProperty("WorkingDir") String workingDir,
            @JsonProperty("User") String user) {}

    @JsonIgnoreProperties(ignoreUnknown = true)
    record RootFs(String type, @JsonProperty("diff_ids") List<String> diffIds) {}

    /** Null-safe: the immutable sets above throw on {@code contains(null)}. */
    static boolean isOneOf(Set<String> mediaTypes, String mediaType) {
        return mediaType != null && mediaTypes.contains(mediaType);
    }

    /** A digest from JSON, which may lack it: IllegalArgumentException, which callers report as InvalidImage. */
    static Digest digest(String digest) {
        if (digest == null) {
            throw new IllegalArgumentException("a descriptor without a digest");
        }
        return Digest.parse(digest);
    }

    static <T> T parse(byte[] json, Class<T> type) throws IOException {
        return JSON.readValue(json, type);
    }

    /**
     * The media type of a manifest or index: the one its JSON declares, which must agree with the one it was served
     * or described as (a document that reads as both an index and a manifest is an attack); when neither says, the
     * shape of the JSON decides.
     */
    static String mediaTypeOf(byte[] json, String declared) throws IOException, ImageException {
        JsonNode tree = JSON.readTree(json);
        if (tree == null || !tree.isObject()) {
            throw invalid("a manifest that is not a JSON object");
        }
        String inner =
                tree.path("mediaType").isTextual() ? tree.get("mediaType").asText() : null;
        boolean declaredUseful = declared != null && !declared.isBlank() && !declared.startsWith("application/json");
        if (inner != null && declaredUseful && !inner.equals(declared)) {
            throw invalid("a manifest served or described as " + declared + " declares " + inner);
        }
        if (inner != null) {
            return inner;
        }
        if (declaredUseful) {
            return declared;
        }
        if (tree.has("manifests") && !tree.has("layers")) {
            return OCI_INDEX;
        }
        if (tree.has("config") && tree.has("layers") && !tree.has("manifests")) {
            return OCI_MANIFEST;
        }
        throw invalid("a document that is neither a manifest nor an index");
    }

    private static ImageException invalid(String message) {
        return new ImageException(ImageException.INVALID_IMAGE, message, false, null);
    }
}
