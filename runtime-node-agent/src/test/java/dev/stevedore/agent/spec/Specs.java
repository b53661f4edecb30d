package dev.stevedore.agent.spec;

import java.util.List;
import java.util.Map;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.stevedore.agent.images.ImageConfig;
import dev.stevedore.api.v1alpha1.ContainerSpec;

/** Containers, images and JSON for the spec tests, with only the fields a test cares about. */
final class Specs {
    static final ObjectMapper MAPPER = new ObjectMapper();
    static final ImageConfig SH_IMAGE = new ImageConfig(null, List.of("sh"), null, null, null);

    private Specs() {
    }

    static ContainerSpec container() {
        return container(null, null, null, null);
    }

    static ContainerSpec container(ContainerSpec.Process process) {
        return container(process, null, null, null);
    }

    static ContainerSpec container(ContainerSpec.Process process, ContainerSpec.Resources resources,
            List<ContainerSpec.Mount> mounts, Map<String, Object> ociSpec) {
        return new ContainerSpec("docker.io/library/busybox:1.36", null, null, null, null, null, process, resources,
                mounts, ociSpec);
    }

    static ContainerSpec withMounts(ContainerSpec.Mount... mounts) {
        return container(null, null, List.of(mounts), null);
    }

    static ContainerSpec withOciSpec(String json) {
        return container(null, null, null, map(json));
    }

    static Map<String, Object> map(String json) {
        try {
            return MAPPER.readValue(json, new TypeReference<Map<String, Object>>() { });
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
        return MAPPER.convertValue(array, new TypeReference<List<String>>() { });
    }
}
