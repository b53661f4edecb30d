package dev.stevedore.agent.spec;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.InvalidPathException;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * What the node refuses in a finished spec: every way a spec names something on the host. It checks the spec
 * after the ociSpec merge, because ociSpec can replace {@code mounts} as a whole; a check of spec.mounts alone
 * would be one ociSpec away from a bind mount of /.
 * <ul>
 * <li>Bind mounts: the source must be an existing host path under one of the allowed host paths, compared by
 * path components after normalizing (so {@code /data2} is not under {@code /data}, and {@code /data/../etc} is
 * /etc) and again after resolving symbolic links (so a link under /data to /etc does not count as /data). The
 * spec gets the resolved path; each task's start opens it again without following symlinks and mounts what it
 * opened ({@link dev.stevedore.agent.tasks.BindSources}), since the path may have changed since this check.</li>
 * <li>Other mounts, unless they are exactly one of the defaults: tmpfs and mqueue only. The rest either take a
 * host device or directory as source (ext4, overlay's lowerdir) or would show the kernel's interfaces without the
 * default masks (a second proc or a writable sysfs).</li>
 * <li>Destinations: absolute and not the root.</li>
 * <li>No hooks: they run host programs as root on the host.</li>
 * <li>No namespace {@code path}s: joining an existing namespace (the host's network, say) is not a container's
 * choice.</li>
 * <li>{@code root.path} stays {@code rootfs}, the root filesystem the agent prepared in the bundle.</li>
 * </ul>
 * The node does not limit here what is not a host path (capabilities, device cgroup rules, masked paths): the
 * namespace's security level does, in {@link SecurityRules}, and bind mounts of host paths at all.
 */
public final class NodePolicy {
    private static final Set<String> MOUNT_TYPES = Set.of("tmpfs", "mqueue");

    private final List<Path> allowedHostPaths;
    private final List<JsonNode> defaultMounts;

    NodePolicy(List<Path> allowedHostPaths) {
        List<Path> normalized = new ArrayList<>();
        for (Path path : allowedHostPaths) {
            if (!path.isAbsolute()) {
                throw new IllegalArgumentException("an allowed host path must be absolute: " + path);
            }
            normalized.add(path.normalize());
        }
        this.allowedHostPaths = List.copyOf(normalized);
        List<JsonNode> defaults = new ArrayList<>();
        DefaultSpec.mounts().forEach(defaults::add);
        this.defaultMounts = List.copyOf(defaults);
    }

    /** Checks the finished spec; rewrites bind mount sources to the host paths they resolve to. */
    void check(ObjectNode spec) throws SpecRejectedException {
        JsonNode mounts = spec.path("mounts");
        if (!mounts.isMissingNode() && !mounts.isArray()) {
            throw new SpecRejectedException("mounts must be a list");
        }
        for (JsonNode mount : mounts) {
            if (!defaultMounts.contains(mount)) {
                checkMount(mount);
            }
        }
        if (spec.has("hooks")) {
            throw new SpecRejectedException("hooks are not allowed on this node: they run host programs as root");
        }
        for (JsonNode namespace : spec.path("linux").path("namespaces")) {
            if (namespace.has("path")) {
                throw new SpecRejectedException(
                        "joining the " + namespace.path("type").asText() + " namespace at "
                                + namespace.path("path").asText() + " is not allowed on this node");
            }
        }
        if (!"rootfs".equals(spec.path("root").path("path").asText(null))) {
            throw new SpecRejectedException("root.path must stay rootfs, the root filesystem the node prepares");
        }
    }

    public static boolean isBind(String type, JsonNode options) {
        return "bind".equals(type) || hasBindOption(options);
    }

    static boolean hasBindOption(JsonNode options) {
        for (JsonNode option : options) {
            if (option.asText().equals("bind") || option.asText().equals("rbind")) {
                return true;
            }
        }
        return false;
    }

    private void checkMount(JsonNode node) throws SpecRejectedException {
        if (!(node instanceof ObjectNode mount)) {
            throw new SpecRejectedException("a mount must be an object: " + node);
        }
        String destination = mount.path("destination").asText("");
        if (!destination.startsWith("/")) {
            throw new SpecRejectedException("mount destination \"" + destination + "\" must be an absolute path");
        }
        if (path(destination, "mount destination").normalize().getNameCount() == 0) {
            throw new SpecRejectedException("mount destination " + destination + " is the container's root");
        }
        String type = mount.path("type").asText("");
        if (isBind(type, mount.path("options"))) {
            mount.put("source", allowedSource(mount.path("source").asText("")).toString());
        } else if (!MOUNT_TYPES.contains(type)) {
            throw new SpecRejectedException("mount type \"" + type + "\" at " + destination
                    + " is not allowed on this node; allowed are bind (of allowed host paths), tmpfs and mqueue");
        }
    }

    /** The host path a bind mount's source resolves to, when the node allows it. */
    private Path allowedSource(String source) throws SpecRejectedException {
        if (!source.startsWith("/")) {
            throw new SpecRejectedException("bind mount source \"" + source + "\" must be an absolute host path");
        }
        Path normalized = path(source, "bind mount source").normalize();
        if (!underAllowed(normalized, false)) {
            throw new SpecRejectedException("bind mount of host path " + normalized + " is not allowed on this node");
        }
        Path real;
        try {
            real = normalized.toRealPath();
        } catch (NoSuchFileException e) {
            throw new SpecRejectedException("bind mount source " + normalized + " does not exist on this node");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        if (!underAllowed(real, true)) {
            throw new SpecRejectedException(
                    "bind mount of host path " + normalized + " (a link to " + real + ") is not allowed on this node");
        }
        return real;
    }

    /** A path from the Container, where a NUL byte would otherwise end in an unchecked InvalidPathException. */
    static Path path(String path, String what) throws SpecRejectedException {
        try {
            return Path.of(path);
        } catch (InvalidPathException e) {
            throw new SpecRejectedException(what + " \"" + path.replace("\0", "\\0") + "\" is not a valid path");
        }
    }

    private boolean underAllowed(Path path, boolean resolveAllowed) {
        for (Path allowed : allowedHostPaths) {
            // Path.startsWith compares whole components: /data2 does not start with /data.
            if (path.startsWith(allowed) || (resolveAllowed && path.startsWith(realOrSelf(allowed)))) {
                return true;
            }
        }
        return false;
    }

    /** An allowed path that is itself a link (/data to /mnt/data) allows its target. */
    private static Path realOrSelf(Path path) {
        try {
            return path.toRealPath();
        } catch (IOException e) {
            return path;
        }
    }
}
