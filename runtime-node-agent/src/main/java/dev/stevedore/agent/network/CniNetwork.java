package dev.stevedore.agent.network;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Pattern;

/**
 * One CNI network configuration as the CNI specification defines it: a list of plugins run in order, each given the
 * network's name and cniVersion and the result of the one before. A file with a single plugin ({@code .conf}) is a
 * list of one, as libcni reads it. Kept as the JSON it was, so that what a task was attached with can be recorded
 * and detached with later, whatever the file says by then.
 */
public record CniNetwork(String name, String cniVersion, ObjectNode config) {
    private static final ObjectMapper JSON = new ObjectMapper();
    /** The plugin types a configuration may name: a file name in the plugin directories, never a path. */
    private static final Pattern PLUGIN_TYPE = Pattern.compile("[A-Za-z0-9][A-Za-z0-9_.-]*");

    private static final Pattern NETWORK_NAME = Pattern.compile("[A-Za-z0-9][A-Za-z0-9_.-]*");

    /** Reads a .conflist (a plugin list) or a .conf/.json (one plugin). */
    static CniNetwork parse(byte[] json, boolean list) throws IOException {
        JsonNode node = JSON.readTree(json);
        if (!(node instanceof ObjectNode object)) {
            throw new IOException("not a JSON object");
        }
        ObjectNode config;
        if (list) {
            config = object;
        } else {
            config = JSON.createObjectNode();
            config.set("cniVersion", object.get("cniVersion"));
            config.set("name", object.get("name"));
            config.putArray("plugins").add(object.deepCopy());
        }
        return of(config);
    }

    /** A network from a recorded configuration list, checked as a file's is. */
    static CniNetwork of(ObjectNode config) throws IOException {
        String name = config.path("name").asText("");
        if (!NETWORK_NAME.matcher(name).matches()) {
            throw new IOException("name \"" + name + "\" is missing or not a network name");
        }
        String version = config.path("cniVersion").asText("");
        if (version.isEmpty()) {
            throw new IOException("network " + name + " has no cniVersion");
        }
        if (!(config.get("plugins") instanceof ArrayNode plugins) || plugins.isEmpty()) {
            throw new IOException("network " + name + " has no plugins");
        }
        for (JsonNode plugin : plugins) {
            String type = plugin.path("type").asText("");
            if (!plugin.isObject() || !PLUGIN_TYPE.matcher(type).matches()) {
                throw new IOException("network " + name + " has a plugin whose type \"" + type + "\" is not a name");
            }
        }
        return new CniNetwork(name, version, config);
    }

    public List<String> pluginTypes() {
        List<String> types = new ArrayList<>();
        config.path("plugins").forEach(p -> types.add(p.path("type").asText()));
        return types;
    }

    List<ObjectNode> plugins() {
        List<ObjectNode> plugins = new ArrayList<>();
        config.path("plugins").forEach(p -> plugins.add((ObjectNode) p));
        return plugins;
    }
}
