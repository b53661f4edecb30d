package dev.stevedore.agent.tasks;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;

/**
 * The cgroup every task's conmon runs in ({@code --conmon-cgroup}), apart from the agent's own, as a containerd shim
 * lives apart from containerd and CRI-O puts conmon in its conmon_cgroup. In a Pod, the agent's cgroup is its
 * container's: when kubelet stops the agent Pod, the runtime kills every process of that cgroup (the agent shares
 * the host's PID namespace, so its init's exit takes nothing with it; the cgroup is how they are found). conmon
 * starts as the agent's child, in the agent's cgroup, and blocks on its start pipe; {@link ConmonRuntime} moves it
 * here before it forks anything. The task itself runs in its own cgroup ({@code /stevedore/<task-uid>}, see
 * {@link Bundles}). Without a path ({@link #NONE}) conmon stays where the agent is, as on a host where the agent
 * runs as a plain process.
 *
 * <p>The path is joined in every hierarchy, as runc joins a container's cgroup: on cgroup v1 each mounted controller
 * (and the named systemd hierarchy, and the cgroup2 mount of a hybrid host) is one, and a process left in any of
 * them would still be the agent Pod's there; on a cgroup2-only host the one hierarchy is the cgroup root.
 */
public final class ConmonCgroup {
    /** conmon stays in the agent's cgroup. */
    public static final ConmonCgroup NONE = new ConmonCgroup(List.of());

    public static final Path CGROUP_ROOT = Path.of("/sys/fs/cgroup");
    private static final String PROCS = "cgroup.procs";

    private final List<Path> dirs;

    private ConmonCgroup(List<Path> dirs) {
        this.dirs = dirs;
    }

    /**
     * Creates {@code path} (such as {@code /stevedore/conmon}) in every hierarchy under {@code cgroupRoot}; fails
     * at once, naming the flag, when it is no cgroup path or cannot be made, so a misconfigured agent does not start
     * instead of starting tasks that die with it.
     */
    public static ConmonCgroup prepare(Path cgroupRoot, String path) throws IOException {
        String relative = relativePath(path);
        List<Path> hierarchies = hierarchies(cgroupRoot);
        if (hierarchies.isEmpty()) {
            throw new IOException("--conmon-cgroup " + path + ": no cgroup hierarchy is mounted under " + cgroupRoot);
        }
        List<Path> dirs = new ArrayList<>();
        for (Path hierarchy : hierarchies) {
            Path dir = hierarchy.resolve(relative);
            try {
                Files.createDirectories(dir);
                inheritCpuset(hierarchy, dir);
            } catch (IOException e) {
                throw new IOException("--conmon-cgroup " + path + ": cannot make " + dir + ": " + e, e);
            }
            dirs.add(dir);
        }
        return new ConmonCgroup(List.copyOf(dirs));
    }

    /** The cgroup directories conmon joins, one per hierarchy; none for {@link #NONE}. */
    List<Path> dirs() {
        return dirs;
    }

    /** Moves process {@code pid}, every thread of it, into the cgroup in each hierarchy. */
    void join(long pid) throws IOException {
        byte[] line = Long.toString(pid).getBytes(StandardCharsets.US_ASCII);
        for (Path dir : dirs) {
            try {
                Files.write(dir.resolve(PROCS), line, StandardOpenOption.WRITE);
            } catch (IOException e) {
                throw new IOException("moving conmon (pid " + pid + ") into cgroup " + dir + ": " + e, e);
            }
        }
    }

    /**
     * {@code path} without its leading slash, checked: absolute, no {@code .} or {@code ..}, not the root itself
     * (conmon in a hierarchy's root cgroup would be in the host's, which cgroup2 refuses beside child cgroups).
     */
    static String relativePath(String path) {
        if (path == null || !path.startsWith("/")) {
            throw new IllegalArgumentException(
                    "--conmon-cgroup " + path + ": not an absolute cgroup path such as " + "/stevedore/conmon");
        }
        String relative = path.substring(1).replaceAll("/+$", "");
        if (relative.isEmpty()) {
            throw new IllegalArgumentException("--conmon-cgroup " + path + ": the root cgroup is the host's; name one "
                    + "below it such as /stevedore/conmon");
        }
        for (String part : relative.split("/")) {
            if (part.isEmpty() || part.equals(".") || part.equals("..")) {
                throw new IllegalArgumentException(
                        "--conmon-cgroup " + path + ": empty, . or .. components are not allowed");
            }
        }
        return relative;
    }

    /**
     * The hierarchies mounted under {@code cgroupRoot}: the root itself on a cgroup2-only host (its own
     * cgroup.procs), else each directory below it that is a hierarchy's root (v1 controllers, named hierarchies,
     * a hybrid host's cgroup2 mount), skipping the symbolic links (cpu and cpuacct to cpu,cpuacct) that name one
     * twice.
     */
    static List<Path> hierarchies(Path cgroupRoot) throws IOException {
        if (Files.exists(cgroupRoot.resolve(PROCS))) {
            return List.of(cgroupRoot);
        }
        List<Path> found = new ArrayList<>();
        try (DirectoryStream<Path> entries = Files.newDirectoryStream(cgroupRoot)) {
            for (Path entry : entries) {
                if (Files.isDirectory(entry, LinkOption.NOFOLLOW_LINKS) && Files.exists(entry.resolve(PROCS))) {
                    found.add(entry);
                }
            }
        }
        found.sort(null);
        return found;
    }

    /**
     * A new cgroup v1 cpuset has no CPUs and no memory nodes, and takes no process until it has both: they come
     * from its parent, each level from the one above (what runc does for a container's cpuset).
     */
    private static void inheritCpuset(Path hierarchy, Path dir) throws IOException {
        if (!Files.exists(dir.resolve("cpuset.cpus"))) {
            return;
        }
        List<Path> levels = new ArrayList<>();
        for (Path d = dir; !d.equals(hierarchy); d = d.getParent()) {
            levels.add(0, d);
        }
        for (Path level : levels) {
            for (String file : List.of("cpuset.cpus", "cpuset.mems")) {
                Path own = level.resolve(file);
                if (Files.readString(own).isBlank()) {
                    Files.write(own, Files.readAllBytes(level.getParent().resolve(file)), StandardOpenOption.WRITE);
                }
            }
        }
    }
}
