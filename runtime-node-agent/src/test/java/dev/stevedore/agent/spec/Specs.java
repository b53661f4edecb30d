package dev.stevedore.agent.spec;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.stevedore.agent.images.ImageConfig;
import dev.stevedore.agent.testing.RuntimeSpecSchema;
import dev.stevedore.api.v1alpha1.ContainerSpec;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/** Containers, images and JSON for the spec tests, with only the fields a test cares about. */
final class Specs {
    static final ObjectMapper MAPPER = new ObjectMapper();
    static final ImageConfig SH_IMAGE = new ImageConfig(null, List.of("sh"), null, null, null);
    /** A root filesystem without /etc/passwd or /etc/group, as a one-binary image has. */
    static final Path EMPTY_ROOTFS = emptyDirectory();

    private Specs() {}

    private static Path emptyDirectory() {
        try {
            Path dir = Files.createTempDirectory("empty-rootfs");
            dir.toFile().deleteOnExit();
            return dir;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** {@link SpecGenerator#generate}, and the result checked against the runtime-spec schema. */
    static ObjectNode generate(
            SpecGenerator generator, String containerId, ContainerSpec container, ImageConfig image, Path rootfs)
            throws SpecRejectedException {
        ObjectNode spec = generator.generate(
                containerId, container, image, rootfs, new SecurityLevel.Enforced("test", SecurityLevel.privileged));
        RuntimeSpecSchema.assertValid(spec);
        return spec;
    }

    static ContainerSpec container() {
        return container(null, null, null, null);
    }

    static ContainerSpec container(ContainerSpec.Process process) {
        return container(process, null, null, null);
    }

    static ContainerSpec container(
            ContainerSpec.Process process,
            ContainerSpec.Resources resources,
            List<ContainerSpec.Mount> mounts,
            Map<String, Object> ociSpec) {
        return new ContainerSpec(
                "docker.io/library/busybox:1.36",
                null,
                null,
                null,
                null,
                null,
                process,
                resources,
                mounts,
                null,
                ociSpec);
    }

    static ContainerSpec withMounts(ContainerSpec.Mount... mounts) {
        return container(null, null, List.of(mounts), null);
    }

    static ContainerSpec withOciSpec(String json) {
        return container(null, null, null, map(json));
    }

    static Map<String, Object> map(String json) {
        try {
            return MAPPER.readValue(json, new TypeReference<Map<String, Object>>() {});
        } catch (JsonProcessingException e) {
            throw new IllegalArgumentException(json, e);
        }
    }

    static ObjectNode json(String json) {
        try {
            return (ObjectNode) MAPPER.readTree(json);
        } catch (JsonProcessingException e) {
            throw new IllegalArgumentException(json, e);
        }
    }

    static List<String> strings(JsonNode array) {
        return MAPPER.convertValue(array, new TypeReference<List<String>>() {});
    }
}
