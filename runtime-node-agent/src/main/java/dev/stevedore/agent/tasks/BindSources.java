package dev.stevedore.agent.tasks;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.stevedore.agent.fs.MountTable;
import dev.stevedore.agent.fs.PosixFiles;
import dev.stevedore.agent.spec.NodePolicy;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Pins a task's bind mount sources at its start. The node checked each source when the Container was prepared, but
 * runc resolves the path again when it mounts, maybe days later; a container that can write under an allowed host
 * path could by then have swapped a directory on the way for a symlink to {@code /}. So at each start the source is
 * opened again beneath its allowed host path with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS), refusing any
 * symlink, and the open file itself is bind-mounted through {@code /proc/self/fd/N} onto a staging point in the
 * bundle ({@code binds/<n>}, closed to everyone but root), which is what the spec then gives runc: a path that
 * nothing the container can write is on. The allowed host path itself is resolved as the node's administrator set it
 * (it may be a link, to /mnt/data say). The staging mounts go with the bundle ({@link Bundles#release}), also after
 * a crash.
 */
public final class BindSources {
    private final List<Path> allowedHostPaths;

    public BindSources(List<Path> allowedHostPaths) {
        List<Path> normalized = new ArrayList<>();
        for (Path path : allowedHostPaths) {
            normalized.add(path.toAbsolutePath().normalize());
        }
        this.allowedHostPaths = List.copyOf(normalized);
    }

    /** Rewrites the bind mounts of {@code spec} to staging mounts under {@code bundle}, pinned now. */
    void stage(ObjectNode spec, Path bundle) throws IOException {
        int n = 0;
        for (JsonNode node : spec.path("mounts")) {
            if (node instanceof ObjectNode mount
                    && NodePolicy.isBind(mount.path("type").asText(""), mount.path("options"))) {
                Path staging = bundle.toAbsolutePath().resolve("binds").resolve(Integer.toString(n++));
                pin(Path.of(mount.path("source").asText()), staging, recursive(mount.path("options")));
                mount.put("source", staging.toString());
            }
        }
    }

    private void pin(Path source, Path staging, boolean recursive) throws IOException {
        Path allowed = allowedAbove(source);
        int fd;
        try {
            fd = PosixFiles.openBeneath(allowed, allowed.relativize(source));
        } catch (PosixFiles.SymlinkInPathException e) {
            throw new IOException("bind mount source " + source + " changed since the Container was prepared: "
                    + e.getMessage() + "; not mounted");
        }
        try {
            Path pinned = Path.of("/proc/self/fd/" + fd); // the kernel follows it to the open file itself
            Files.createDirectories(staging.getParent());
            PosixFiles.chmod(staging.getParent(), 0700);
            if (MountTable.isMountPoint(staging)) {
                PosixFiles.unmount(staging, true); // from an earlier attempt: pinned again, now
            }
            if (!Files.exists(staging, LinkOption.NOFOLLOW_LINKS)) {
                if (Files.isDirectory(pinned)) {
                    Files.createDirectory(staging);
                } else {
                    Files.createFile(staging);
                }
            }
            PosixFiles.mount(pinned.toString(), staging, "bind", List.of(recursive ? "rbind" : "bind"));
        } finally {
            PosixFiles.close(fd);
        }
    }

    /** The allowed host path, resolved, that {@code source} (resolved when the Container was prepared) is under. */
    private Path allowedAbove(Path source) throws IOException {
        for (Path allowed : allowedHostPaths) {
            Path real;
            try {
                real = allowed.toRealPath();
            } catch (IOException gone) {
                continue;
            }
            if (source.startsWith(real)) {
                return real;
            }
        }
        throw new IOException("bind mount source " + source + " is not under a host path this node allows any more");
    }

    private static boolean recursive(JsonNode options) {
        for (JsonNode option : options) {
            if (option.asText().equals("rbind")) {
                return true;
            }
        }
        return false;
    }
}
