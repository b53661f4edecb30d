package dev.stevedore.agent.spec;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.List;

/**
 * The spec every container starts from: containerd's {@code oci.WithDefaultSpec} for Linux plus
 * {@code oci.WithDefaultUnixDevices}, as {@code ctr run} and {@code ctr containers create} write it (checked against
 * Debian's containerd by SpecParityIT). Where it differs from containerd's, docs/spec-parity.md says why.
 */
final class DefaultSpec {
    static final String OCI_VERSION = "1.0.2";
    static final String DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

    /** containerd's defaultUnixCaps: what Docker grants too; no CAP_SYS_ADMIN, CAP_NET_ADMIN, CAP_SYS_PTRACE. */
    static final List<String> CAPABILITIES = List.of(
            "CAP_CHOWN",
            "CAP_DAC_OVERRIDE",
            "CAP_FSETID",
            "CAP_FOWNER",
            "CAP_MKNOD",
            "CAP_NET_RAW",
            "CAP_SETGID",
            "CAP_SETUID",
            "CAP_SETFCAP",
            "CAP_SETPCAP",
            "CAP_NET_BIND_SERVICE",
            "CAP_SYS_CHROOT",
            "CAP_KILL",
            "CAP_AUDIT_WRITE");

    /** A new namespace of each kind: the network namespace is empty (loopback only), as with ctr run without --net-host. */
    static final List<String> NAMESPACES = List.of("pid", "ipc", "uts", "mount", "network");

    /** Kernel interfaces that leak host information or allow host-wide effects: hidden (masked) or read-only. */
    static final List<String> MASKED_PATHS = List.of(
            "/proc/acpi",
            "/proc/asound",
            "/proc/kcore",
            "/proc/keys",
            "/proc/latency_stats",
            "/proc/timer_list",
            "/proc/timer_stats",
            "/proc/sched_debug",
            "/sys/firmware",
            "/proc/scsi");

    static final List<String> READONLY_PATHS =
            List.of("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger");

    private static final JsonNodeFactory JSON = JsonNodeFactory.instance;

    private DefaultSpec() {}

    static ObjectNode create(String hostname) {
        ObjectNode spec = JSON.objectNode();
        spec.put("ociVersion", OCI_VERSION);
        spec.set("process", process());
        // Writable (no readonly key) like containerd's default: the rootfs is a per-container snapshot.
        spec.putObject("root").put("path", "rootfs");
        spec.put("hostname", hostname);
        spec.set("mounts", mounts());
        spec.set("linux", linux());
        return spec;
    }

    /** The default mounts, in order: a Container's own mounts go after them, so they can shadow them. */
    static ArrayNode mounts() {
        ArrayNode mounts = JSON.arrayNode();
        mounts.add(mount("/proc", "proc", "proc", "nosuid", "noexec", "nodev"));
        mounts.add(mount("/dev", "tmpfs", "tmpfs", "nosuid", "strictatime", "mode=755", "size=65536k"));
        mounts.add(mount(
                "/dev/pts",
                "devpts",
                "devpts",
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5"));
        mounts.add(mount("/dev/shm", "tmpfs", "shm", "nosuid", "noexec", "nodev", "mode=1777", "size=65536k"));
        mounts.add(mount("/dev/mqueue", "mqueue", "mqueue", "nosuid", "noexec", "nodev"));
        mounts.add(mount("/sys", "sysfs", "sysfs", "nosuid", "noexec", "nodev", "ro"));
        mounts.add(mount("/run", "tmpfs", "tmpfs", "nosuid", "strictatime", "mode=755", "size=65536k"));
        return mounts;
    }

    static ObjectNode mount(String destination, String type, String source, String... options) {
        ObjectNode mount = JSON.objectNode();
        mount.put("destination", destination);
        mount.put("type", type);
        mount.put("source", source);
        ArrayNode list = mount.putArray("options");
        for (String option : options) {
            list.add(option);
        }
        return mount;
    }

    private static ObjectNode process() {
        ObjectNode process = JSON.objectNode();
        // No terminal key: false, as containerd writes it (Go leaves false out), and as a task runs under conmon.
        ObjectNode user = process.putObject("user");
        user.put("uid", 0);
        user.put("gid", 0);
        process.putArray("env").add(DEFAULT_PATH);
        process.put("cwd", "/");
        ObjectNode capabilities = process.putObject("capabilities");
        for (String set : List.of("bounding", "effective", "permitted")) {
            ArrayNode caps = capabilities.putArray(set);
            CAPABILITIES.forEach(caps::add);
        }
        ObjectNode nofile = process.putArray("rlimits").addObject();
        nofile.put("type", "RLIMIT_NOFILE");
        nofile.put("hard", 1024);
        nofile.put("soft", 1024);
        process.put("noNewPrivileges", true);
        return process;
    }

    /** No cgroupsPath: the cgroup belongs to the task, and the task's bundle sets it. */
    private static ObjectNode linux() {
        ObjectNode linux = JSON.objectNode();
        ArrayNode namespaces = linux.putArray("namespaces");
        NAMESPACES.forEach(type -> namespaces.addObject().put("type", type));
        ArrayNode masked = linux.putArray("maskedPaths");
        MASKED_PATHS.forEach(masked::add);
        ArrayNode readonly = linux.putArray("readonlyPaths");
        READONLY_PATHS.forEach(readonly::add);
        linux.putObject("resources").set("devices", devices());
        return linux;
    }

    /**
     * containerd's {@code WithDefaultUnixDevices}: deny every device, then allow the harmless character devices and
     * ptys. runc appends its own defaults to these (mknod of any device, /dev/net/tun); crun does not: the same as
     * with containerd, which writes exactly these rules for either runtime.
     */
    private static ArrayNode devices() {
        ArrayNode devices = JSON.arrayNode();
        devices.addObject().put("allow", false).put("access", "rwm");
        devices.add(device("c", 1, 3, "rwm")); // /dev/null
        devices.add(device("c", 1, 8, "rwm")); // /dev/random
        devices.add(device("c", 1, 7, "rwm")); // /dev/full
        devices.add(device("c", 5, 0, "rwm")); // /dev/tty
        devices.add(device("c", 1, 5, "rwm")); // /dev/zero
        devices.add(device("c", 1, 9, "rwm")); // /dev/urandom
        devices.add(device("c", 5, 1, "rwm")); // /dev/console
        devices.add(device("c", 136, null, "rwm")); // /dev/pts/*
        devices.add(device("c", 5, 2, "rwm")); // /dev/ptmx
        return devices;
    }

    /** A device cgroup rule; a null major or minor is the wildcard, which the spec expresses by leaving it out. */
    private static ObjectNode device(String type, Integer major, Integer minor, String access) {
        ObjectNode device = JSON.objectNode();
        device.put("allow", true);
        device.put("type", type);
        if (major != null) {
            device.put("major", major);
        }
        if (minor != null) {
            device.put("minor", minor);
        }
        device.put("access", access);
        return device;
    }
}
