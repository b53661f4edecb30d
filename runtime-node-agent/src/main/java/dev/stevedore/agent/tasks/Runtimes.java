package dev.stevedore.agent.tasks;

import dev.stevedore.agent.fs.StateDirectories;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.Map;

/**
 * The OCI runtimes this agent drives, by the name a Container asks for (runc, the default, or crun), each with the
 * exact executable that every call goes through: the one conmon gets as {@code -r} for {@code create}, and the one
 * the agent runs for start, kill, pause, resume, delete, state and list.
 *
 * <p><b>crun on a hybrid cgroup host.</b> crun 1.8 refuses a host whose cgroup v1 hierarchies sit beside a cgroup2
 * mount ({@code /sys/fs/cgroup/unified}) that has any controller ("cgroups in hybrid mode not supported, drop all
 * controllers from cgroupv2"); a controller cannot be taken off a cgroup2 hierarchy while v1 holds it elsewhere, so
 * the host cannot be fixed from here. In a private mount namespace without that one mount, crun sees a plain
 * cgroup v1 host and works like runc: it creates, freezes and removes the task's cgroups in the v1 hierarchies,
 * which are the host's (the namespace shares every other mount, /run/crun included). So on such a host the agent
 * writes {@code <root>/bin/crun}, a wrapper that does exactly that and execs the real crun, and uses it for every
 * crun call; the unmount is private to that short-lived namespace and never touches the host's mounts. The task's
 * own process runs in a mount namespace made from that one, as it would from the host's with runc.
 *
 * <p><b>State.</b> Each runtime keeps its containers' state under {@code --root <state-dir>/<name>} (runc's own
 * default is /run/runc), given to every call: the agent's and, through conmon's {@code --runtime-arg}, the
 * {@code create} conmon runs. In a Pod the state directory is a host path, so an agent Pod started after another
 * finds the containers the first one created.
 */
public final class Runtimes {
    public static final Path RUNC = Path.of("/usr/sbin/runc");
    public static final Path CRUN = Path.of("/usr/bin/crun");
    /** The agent's {@code --state-dir} default: run-time state that lives as long as the host is up. */
    public static final Path DEFAULT_STATE_DIR = Path.of("/run/stevedore");

    static final Path CGROUP_ROOT = Path.of("/sys/fs/cgroup");
    static final Path UNIFIED = CGROUP_ROOT.resolve("unified");

    private final OciRuntime runc;
    private final OciRuntime crun;

    Runtimes(OciRuntime runc, OciRuntime crun) {
        this.runc = runc;
        this.crun = crun;
    }

    /**
     * The runtimes as the host needs them, with their state in {@link #DEFAULT_STATE_DIR} and conmon in the agent's
     * cgroup; writes the crun wrapper under {@code <root>/bin} when the host needs it.
     */
    public static Runtimes prepare(Path root) throws IOException {
        return prepare(root, Map.of(), DEFAULT_STATE_DIR, ConmonCgroup.NONE);
    }

    /**
     * As {@link #prepare(Path)}, with the executables of {@code binaries} (by runtime name) instead of the
     * installed ones, as containerd's runtime BinaryName: used exactly as given, without the crun wrapper; each
     * runtime's state under {@code stateDir}, made and closed to other users here; and each conmon moved into
     * {@code conmonCgroup} before it runs anything.
     */
    public static Runtimes prepare(Path root, Map<String, Path> binaries, Path stateDir, ConmonCgroup conmonCgroup)
            throws IOException {
        for (String name : binaries.keySet()) {
            if (!name.equals("runc") && !name.equals("crun")) {
                throw new IllegalArgumentException("no runtime named " + name + ": runc or crun");
            }
        }
        Path wrapper = root.resolve("bin").resolve("crun");
        Path crun = CRUN;
        if (!binaries.containsKey("crun") && Files.isExecutable(CRUN) && hybridWithV2Controllers(CGROUP_ROOT)) {
            writeWrapper(wrapper);
            crun = wrapper;
        } else {
            Files.deleteIfExists(wrapper);
        }
        StateDirectories.closeOwn(stateDir, List.of("runc", "crun"));
        return new Runtimes(
                new ConmonRuntime("runc", binaries.getOrDefault("runc", RUNC), stateDir.resolve("runc"), conmonCgroup),
                new ConmonRuntime("crun", binaries.getOrDefault("crun", crun), stateDir.resolve("crun"), conmonCgroup));
    }

    /** runc (the default) or crun, by the Container's spec.runtime.name. */
    public OciRuntime named(String name) {
        return "crun".equals(name) ? crun : runc;
    }

    public List<OciRuntime> all() {
        return List.of(runc, crun);
    }

    /**
     * True on a hybrid host: {@code cgroupRoot} is not itself cgroup2 (it holds v1 hierarchies such as memory) and
     * the cgroup2 mount at {@code unified} lists at least one controller.
     */
    static boolean hybridWithV2Controllers(Path cgroupRoot) throws IOException {
        Path controllers = cgroupRoot.resolve("unified").resolve("cgroup.controllers");
        return !Files.exists(cgroupRoot.resolve("cgroup.controllers"))
                && Files.isDirectory(cgroupRoot.resolve("memory"))
                && Files.exists(controllers)
                && !Files.readString(controllers).isBlank();
    }

    static String wrapperScript(Path realCrun) {
        return """
                #!/bin/sh
                # Written by the Stevedore node agent (see dev.stevedore.agent.tasks.Runtimes): crun 1.8 refuses this
                # hybrid cgroup host while its cgroup2 mount has controllers, so crun runs in a private mount namespace
                # without /sys/fs/cgroup/unified, where it sees (and uses) the host's cgroup v1 hierarchies only.
                exec /usr/bin/unshare --mount --propagation private /bin/sh -c 'umount %s 2>/dev/null; exec %s "$@"' crun "$@"
                """.formatted(UNIFIED, realCrun);
    }

    /** Written only when it differs: an agent (re)started on a full disk must not fail here. */
    static void writeWrapper(Path wrapper) throws IOException {
        Files.createDirectories(wrapper.getParent());
        if (Files.isRegularFile(wrapper, LinkOption.NOFOLLOW_LINKS)
                && Files.readString(wrapper).equals(wrapperScript(CRUN))
                && Files.isExecutable(wrapper)) {
            return;
        }
        Path tmp = wrapper.resolveSibling(".crun.tmp");
        Files.writeString(tmp, wrapperScript(CRUN));
        Files.setPosixFilePermissions(tmp, PosixFilePermissions.fromString("rwxr-xr-x"));
        Files.move(tmp, wrapper, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    }
}
