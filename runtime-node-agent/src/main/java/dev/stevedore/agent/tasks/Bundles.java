package dev.stevedore.agent.tasks;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.stevedore.agent.fs.PosixFiles;
import dev.stevedore.agent.snapshots.Mount;

/**
 * A task's OCI bundle: config.json copied from its Container's generated spec, with a cgroup of its own
 * ({@code /stevedore/<task-uid>}) and no terminal, and rootfs/ mounted from the Container's snapshot mounts.
 */
public final class Bundles {
    private static final ObjectMapper JSON = new ObjectMapper();

    private Bundles() {
    }

    public static String cgroupsPath(String taskUid) {
        return "/stevedore/" + taskUid;
    }

    public static void create(Path bundle, Path containerSpec, String taskUid, List<Mount> rootfsMounts) throws IOException {
        Path rootfs = bundle.resolve("rootfs");
        Files.createDirectories(rootfs);
        ObjectNode spec = (ObjectNode) JSON.readTree(containerSpec.toFile());
        spec.withObjectProperty("linux").put("cgroupsPath", cgroupsPath(taskUid));
        spec.withObjectProperty("process").put("terminal", false);
        spec.withObjectProperty("root").put("path", "rootfs");
        // Not fsynced: after a crash before the runtime's create the task is failed and its bundle removed anyway.
        Files.write(bundle.resolve("config.json"), JSON.writeValueAsBytes(spec));
        if (!isMountPoint(rootfs)) {
            for (Mount mount : rootfsMounts) {
                PosixFiles.mount(mount.source(), rootfs, mount.type(), mount.options());
            }
        }
    }

    /** Unmounts the rootfs (lazily if busy) and removes the bundle. Idempotent. */
    public static void release(Path bundle) throws IOException {
        Path rootfs = bundle.resolve("rootfs");
        for (int i = 0; i < 8 && isMountPoint(rootfs); i++) {
            try {
                PosixFiles.unmount(rootfs, false);
            } catch (IOException busy) {
                try {
                    PosixFiles.unmount(rootfs, true);
                } catch (IOException stillMounted) {
                    // retried; what stays mounted is named in the exception below
                }
            }
        }
        if (!mountsUnder(bundle).isEmpty()) {
            throw new IOException("still mounted under " + bundle + ": " + mountsUnder(bundle));
        }
        TaskRecords.deleteTree(bundle);
    }

    public static boolean isMountPoint(Path path) throws IOException {
        String p = path.toAbsolutePath().normalize().toString();
        return mountPoints().contains(p);
    }

    public static List<String> mountsUnder(Path dir) throws IOException {
        String prefix = dir.toAbsolutePath().normalize().toString();
        return mountPoints().stream().filter(m -> m.equals(prefix) || m.startsWith(prefix + "/")).toList();
    }

    static List<String> mountPoints() throws IOException {
        List<String> points = new ArrayList<>();
        for (String line : Files.readAllLines(Path.of("/proc/self/mounts"))) {
            String[] fields = line.split(" ");
            if (fields.length > 1) {
                points.add(unescape(fields[1]));
            }
        }
        return points;
    }

    private static String unescape(String s) {
        StringBuilder out = new StringBuilder();
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '\\' && i + 3 < s.length()) {
                out.append((char) Integer.parseInt(s.substring(i + 1, i + 4), 8));
                i += 3;
            } else {
                out.append(c);
            }
        }
        return out.toString();
    }
}
