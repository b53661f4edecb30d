package dev.stevedore.agent.spec;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.Map;

/**
 * JSON Merge Patch (RFC 7386), the semantics of a Container's ociSpec: objects merge key by key, recursively; any
 * other value (array, string, number, boolean) replaces what was there; a null deletes the key. Arrays are never
 * merged element by element, so to change one mount the patch gives the whole {@code mounts} list.
 */
final class JsonMerge {

    private JsonMerge() {}

    /**
     * Applies {@code patch} to {@code target} in place and returns it.
     */
    static ObjectNode apply(ObjectNode target, ObjectNode patch) {
        for (Map.Entry<String, JsonNode> field : patch.properties()) {
            String key = field.getKey();
            JsonNode value = field.getValue();
            if (value == null || value.isNull()) {
                target.remove(key);
            } else if (value.isObject()) {
                JsonNode existing = target.get(key);
                // RFC 7386: an object patch over a non-object starts from an empty object, so nulls inside it are
                // dropped rather than written.
                ObjectNode base =
                        existing instanceof ObjectNode object ? object : JsonNodeFactory.instance.objectNode();
                target.set(key, apply(base, (ObjectNode) value));
            } else {
                target.set(key, value.deepCopy());
            }
        }
        return target;
    }
}
