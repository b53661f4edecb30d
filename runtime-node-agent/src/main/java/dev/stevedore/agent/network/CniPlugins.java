package dev.stevedore.agent.network;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;

/**
 * Runs CNI plugins by the CNI specification's exec protocol, as libcni does: the command, container id, network
 * namespace, interface name and plugin path in the environment, the plugin's configuration on stdin (with the
 * network's name and cniVersion, the previous plugin's result as {@code prevResult}, and the {@code runtimeConfig}
 * of the capabilities the plugin declares), the result or an error object on stdout.
 *
 * <p>Written here rather than taken from a library: the JVM has no maintained CNI library, and the protocol is a
 * handful of variables and one JSON document each way.
 */
public final class CniPlugins {
    private static final ObjectMapper JSON = new ObjectMapper();
    /** Plugins that find helpers (iptables, for portmap and bridge's ipMasq) on the PATH. */
    private static final String PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

    private static final long TIMEOUT_SECONDS = 60;

    /**
     * Threads that drain the plugins' stdout and stderr while the caller waits for the exit with its timeout. Not the
     * common pool: a read blocks for as long as the plugin runs, and that pool has one thread on a two-core node, so
     * concurrent starts (and a plugin's stderr behind its own stdout) would wait on each other.
     */
    private static final ExecutorService PIPES = Executors.newCachedThreadPool(r -> {
        Thread t = new Thread(r, "cni-plugin-pipe");
        t.setDaemon(true);
        return t;
    });

    private final List<Path> binDirs;

    /** @param binDirs where plugins are looked for, in order (CNI_PATH) */
    public CniPlugins(List<Path> binDirs) {
        this.binDirs = List.copyOf(binDirs);
    }

    /** What a plugin is run for: the runtime's container id, the namespace path, the interface and capability args. */
    public record Attachment(String containerId, String netns, String ifName, ObjectNode capabilityArgs) {}

    /** ADD for each plugin in order, each given the result before; the last result. */
    public ObjectNode add(CniNetwork network, Attachment attachment) throws CniException {
        ObjectNode result = null;
        for (ObjectNode plugin : network.plugins()) {
            result = run("ADD", pluginConfig(network, plugin, result, attachment), plugin, attachment);
        }
        return result;
    }

    /**
     * DEL for each plugin in reverse order, with {@code result} of the ADD (null if it never completed) as
     * prevResult. Every plugin's DEL is tried even when one fails; the first failure is thrown after.
     */
    public void del(CniNetwork network, Attachment attachment, ObjectNode result) throws CniException {
        List<ObjectNode> plugins = new ArrayList<>(network.plugins());
        Collections.reverse(plugins);
        CniException first = null;
        for (ObjectNode plugin : plugins) {
            try {
                run("DEL", pluginConfig(network, plugin, result, attachment), plugin, attachment);
            } catch (CniException e) {
                first = first == null ? e : first;
            }
        }
        if (first != null) {
            throw first;
        }
    }

    /** libcni's buildOneConfig: the plugin's object with the network's name and version, prevResult, runtimeConfig. */
    static ObjectNode pluginConfig(CniNetwork network, ObjectNode plugin, ObjectNode prevResult, Attachment a) {
        ObjectNode config = plugin.deepCopy();
        config.put("name", network.name());
        config.put("cniVersion", network.cniVersion());
        if (prevResult != null) {
            config.set("prevResult", prevResult);
        }
        ObjectNode runtimeConfig = JSON.createObjectNode();
        for (Iterator<Map.Entry<String, JsonNode>> it =
                        plugin.path("capabilities").fields();
                it.hasNext(); ) {
            Map.Entry<String, JsonNode> capability = it.next();
            if (capability.getValue().asBoolean()
                    && a.capabilityArgs() != null
                    && a.capabilityArgs().has(capability.getKey())) {
                runtimeConfig.set(capability.getKey(), a.capabilityArgs().get(capability.getKey()));
            }
        }
        if (!runtimeConfig.isEmpty()) {
            config.set("runtimeConfig", runtimeConfig);
        }
        return config;
    }

    private ObjectNode run(String command, ObjectNode config, ObjectNode plugin, Attachment a) throws CniException {
        String type = plugin.path("type").asText();
        Path binary = find(type);
        ProcessBuilder builder = new ProcessBuilder(binary.toString());
        Map<String, String> env = builder.environment();
        env.clear();
        env.put("CNI_COMMAND", command);
        env.put("CNI_CONTAINERID", a.containerId());
        env.put("CNI_NETNS", a.netns() == null ? "" : a.netns());
        env.put("CNI_IFNAME", a.ifName());
        env.put("CNI_PATH", binDirs.stream().map(Path::toString).collect(Collectors.joining(":")));
        env.put("PATH", PATH);
        try {
            Process process = builder.start();
            CompletableFuture<byte[]> stdout =
                    CompletableFuture.supplyAsync(() -> readAll(process.getInputStream()), PIPES);
            // Apart from stdout, which must hold the result alone: a plugin that fails without the specification's
            // error object says why on stderr.
            CompletableFuture<byte[]> stderr =
                    CompletableFuture.supplyAsync(() -> readAll(process.getErrorStream()), PIPES);
            try (OutputStream stdin = process.getOutputStream()) {
                stdin.write(JSON.writeValueAsBytes(config));
            } catch (IOException brokenPipe) {
                // A plugin that exits without reading its configuration; its exit status says how it went.
            }
            if (!process.waitFor(TIMEOUT_SECONDS, TimeUnit.SECONDS)) {
                process.destroyForcibly();
                throw new CniException(type + " " + command + " did not finish in " + TIMEOUT_SECONDS + " s");
            }
            byte[] out = stdout.join();
            if (process.exitValue() != 0) {
                throw new CniException(type + " " + command + ": " + errorOf(out, stderr.join(), process.exitValue()));
            }
            if (!"ADD".equals(command)) {
                return null;
            }
            JsonNode result = JSON.readTree(out);
            if (!(result instanceof ObjectNode object)) {
                throw new CniException(type + " ADD printed no result");
            }
            return object;
        } catch (CniException e) {
            throw e;
        } catch (IOException e) {
            throw new CniException(type + " " + command + ": " + e.getMessage(), e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new CniException(type + " " + command + ": interrupted", e);
        }
    }

    private Path find(String type) throws CniException {
        for (Path dir : binDirs) {
            Path candidate = dir.resolve(type);
            if (Files.isRegularFile(candidate) && Files.isExecutable(candidate)) {
                return candidate;
            }
        }
        throw new CniException("no CNI plugin " + type + " in " + binDirs);
    }

    /** The specification's error object: code, msg, details; whatever else a broken plugin printed, cut short. */
    private static String errorOf(byte[] out, byte[] err, int exit) {
        try {
            JsonNode error = JSON.readTree(out);
            if (error != null && error.has("msg")) {
                String details = error.path("details").asText("");
                return error.path("msg").asText() + (details.isEmpty() ? "" : " (" + details + ")");
            }
        } catch (IOException notJson) {
            // below
        }
        String text = (new String(out, StandardCharsets.UTF_8) + new String(err, StandardCharsets.UTF_8)).strip();
        return "exit status " + exit + (text.isEmpty() ? "" : ": " + text.substring(0, Math.min(text.length(), 512)));
    }

    private static byte[] readAll(InputStream in) {
        try (in) {
            return in.readAllBytes();
        } catch (IOException e) {
            return new byte[0];
        }
    }

    /** A plugin failed: its message, as the specification's error object gives it. */
    public static final class CniException extends IOException {
        CniException(String message) {
            super(message);
        }

        CniException(String message, Throwable cause) {
            super(message, cause);
        }
    }
}
