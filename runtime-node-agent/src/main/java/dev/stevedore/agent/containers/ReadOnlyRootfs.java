package dev.stevedore.agent.containers;

import dev.stevedore.agent.fs.MountTable;
import dev.stevedore.agent.fs.PosixFiles;
import dev.stevedore.agent.snapshots.Mount;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;

/**
 * A container's root filesystem, mounted read-only for the agent to read its /etc/passwd and /etc/group while the
 * spec is generated: containerd's {@code mount.WithTempMount} with {@code tryReadonlyMounts}. An overlay becomes
 * a read-only overlay of its upper directory over its lower ones (no work directory); a bind mount of one
 * directory is read where it is. Mount points live under one directory, so a crash's leftovers are found and
 * removed at the next start.
 */
final class ReadOnlyRootfs implements AutoCloseable {
    private final Path path;
    private final Path mountPoint;

    private ReadOnlyRootfs(Path path, Path mountPoint) {
        this.path = path;
        this.mountPoint = mountPoint;
    }

    /** The root filesystem to read. */
    Path path() {
        return path;
    }

    static ReadOnlyRootfs mount(List<Mount> mounts, Path tempMounts) throws IOException {
        if (mounts.size() == 1 && "bind".equals(mounts.get(0).type())) {
            return new ReadOnlyRootfs(Path.of(mounts.get(0).source()), null);
        }
        if (mounts.size() != 1 || !"overlay".equals(mounts.get(0).type())) {
            throw new IOException("cannot mount a root filesystem of " + mounts + " read-only");
        }
        Files.createDirectories(tempMounts);
        Path mountPoint =
                Files.createDirectory(tempMounts.resolve(UUID.randomUUID().toString()));
        try {
            PosixFiles.mount(
                    "overlay",
                    mountPoint,
                    "overlay",
                    readOnlyOverlay(mounts.get(0).options()));
        } catch (IOException e) {
            Files.delete(mountPoint);
            throw e;
        }
        return new ReadOnlyRootfs(mountPoint, mountPoint);
    }

    /** The upper directory becomes the topmost lower one: nothing is written, and no work directory is needed. */
    static List<String> readOnlyOverlay(List<String> options) {
        String upper = null;
        String lower = null;
        List<String> result = new ArrayList<>();
        for (String option : options) {
            if (option.startsWith("upperdir=")) {
                upper = option.substring("upperdir=".length());
            } else if (option.startsWith("lowerdir=")) {
                lower = option.substring("lowerdir=".length());
            } else if (!option.startsWith("workdir=") && !option.equals("rw")) {
                result.add(option);
            }
        }
        result.add("lowerdir=" + (upper == null ? lower : upper + ":" + lower));
        result.add("ro");
        return result;
    }

    @Override
    public void close() throws IOException {
        if (mountPoint != null) {
            try {
                PosixFiles.unmount(mountPoint, false);
            } catch (IOException busy) {
                // A runtime creating a container in this moment holds a copy of the host's mounts in its new mount
                // namespace (EBUSY): nothing reads this mount any more, so it goes lazily, as a task's bundle does.
                PosixFiles.unmount(mountPoint, true);
            }
            Files.delete(mountPoint);
        }
    }

    /** Unmounts and removes what a crash left under {@code tempMounts}. */
    static void removeLeftovers(Path tempMounts) throws IOException {
        if (!Files.isDirectory(tempMounts)) {
            return;
        }
        List<String> mounted = new ArrayList<>(MountTable.under(tempMounts));
        for (int i = mounted.size() - 1; i >= 0; i--) {
            PosixFiles.unmount(Path.of(mounted.get(i)), true);
        }
        try (var leftovers = Files.list(tempMounts)) {
            for (Path dir : leftovers.toList()) {
                Files.delete(dir); // empty mount points only: a directory with content was never one of these
            }
        }
    }
}
