package dev.stevedore.agent.spec;

/**
 * Where a container's cgroup goes: the spec's {@code linux.cgroupsPath}. Its syntax belongs to the runtime's
 * cgroup manager, so the node picks the form that matches how it runs runc and crun (cgroupfs or systemd).
 */
@FunctionalInterface
public interface CgroupsPath {

    String forContainer(String containerId);

    /** The default: {@code stevedore/<containerId>}, for the cgroupfs manager. */
    static CgroupsPath stevedore() {
        return cgroupfs("stevedore");
    }

    /**
     * For the cgroupfs manager (runc's and crun's default): {@code <parent>/<containerId>}. A relative parent is
     * placed by the runtime below a cgroup of its choosing (runc: its own); an absolute one below the root.
     */
    static CgroupsPath cgroupfs(String parent) {
        if (!parent.matches("/?[A-Za-z0-9_+-][A-Za-z0-9_.+-]*(/[A-Za-z0-9_+-][A-Za-z0-9_.+-]*)*")) {
            throw new IllegalArgumentException("not a cgroup parent (names without . or .. components): " + parent);
        }
        return containerId -> parent + "/" + containerId;
    }

    /** For {@code --systemd-cgroup}: {@code <slice>:<prefix>:<containerId>}, the scope {@code <prefix>-<id>.scope}. */
    static CgroupsPath systemd(String slice, String prefix) {
        if (!slice.matches("[A-Za-z0-9_.-]+\\.slice") || !prefix.matches("[A-Za-z0-9_.-]+")) {
            throw new IllegalArgumentException("not a systemd slice and prefix: " + slice + ", " + prefix);
        }
        return containerId -> slice + ":" + prefix + ":" + containerId;
    }
}
