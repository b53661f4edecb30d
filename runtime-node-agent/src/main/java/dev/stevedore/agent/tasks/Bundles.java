package dev.stevedore.agent.tasks;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.stevedore.agent.fs.MountTable;
import dev.stevedore.agent.fs.PosixFiles;
import dev.stevedore.agent.fs.SafeDelete;
import dev.stevedore.agent.snapshots.Mount;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * A task's OCI bundle: config.json copied from its Container's generated spec, with a cgroup of its own
 * ({@code /stevedore/<task-uid>}), no terminal and its bind mount sources pinned ({@link BindSources}), and rootfs/
 * mounted from the Container's snapshot mounts; and what the task's network adds.
 */
public final class Bundles {
    private static final ObjectMapper JSON = new ObjectMapper();

    private Bundles() {}

    public static String cgroupsPath(String taskUid) {
        return "/stevedore/" + taskUid;
    }

    /** A change to a task's spec that its bundle's own files go with (its network's /etc files). */
    @FunctionalInterface
    public interface SpecEdit {
        void apply(ObjectNode spec, Path bundle) throws IOException;
    }

    public static void create(
            Path bundle, Path containerSpec, String taskUid, List<Mount> rootfsMounts, BindSources binds, SpecEdit edit)
            throws IOException {
        Path rootfs = bundle.resolve("rootfs");
        Files.createDirectories(rootfs);
        ObjectNode spec = (ObjectNode) JSON.readTree(containerSpec.toFile());
        spec.withObjectProperty("linux").put("cgroupsPath", cgroupsPath(taskUid));
        spec.withObjectProperty("process").put("terminal", false);
        spec.withObjectProperty("root").put("path", "rootfs");
        binds.stage(spec, bundle);
        edit.apply(spec, bundle);
        // Not fsynced: after a crash before the runtime's create the task is failed and its bundle removed anyway.
        Files.write(bundle.resolve("config.json"), JSON.writeValueAsBytes(spec));
        if (!MountTable.isMountPoint(rootfs)) {
            for (Mount mount : rootfsMounts) {
                PosixFiles.mount(mount.source(), rootfs, mount.type(), mount.options());
            }
        }
    }

    /** Unmounts the rootfs and the staged bind mounts (lazily if busy) and removes the bundle. Idempotent. */
    public static void release(Path bundle) throws IOException {
        for (int i = 0; i < 8 && !MountTable.under(bundle).isEmpty(); i++) {
            List<String> mounted = new ArrayList<>(MountTable.under(bundle));
            Collections.reverse(mounted); // the last mounted first
            for (String mountPoint : mounted) {
                try {
                    PosixFiles.unmount(Path.of(mountPoint), false);
                } catch (IOException busy) {
                    try {
                        PosixFiles.unmount(Path.of(mountPoint), true);
                    } catch (IOException stillMounted) {
                        // retried; what stays mounted is named in the exception below
                    }
                }
            }
        }
        if (!MountTable.under(bundle).isEmpty()) {
            throw new IOException("still mounted under " + bundle + ": " + MountTable.under(bundle));
        }
        SafeDelete.deleteTree(bundle);
    }
}
