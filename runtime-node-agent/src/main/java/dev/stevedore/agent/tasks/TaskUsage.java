package dev.stevedore.agent.tasks;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;
import java.util.OptionalLong;

/**
 * What a running task uses now, read from its cgroup as cAdvisor and containerd's cgroups metrics read it: CPU time,
 * memory (usage and working set: usage less inactive page cache, what kubelet evicts and the OOM killer looks at)
 * and process count. Unified hierarchy (cgroup v2) where the node has it, else the v1 controllers'.
 *
 * @param cpuSeconds CPU time, user and system, since the task started
 */
public record TaskUsage(double cpuSeconds, long memoryBytes, long workingSetBytes, long pids) {
    /** The task's usage, empty once its cgroup is gone (or where it cannot be read). */
    public static Optional<TaskUsage> of(Path cgroupRoot, String taskUid) {
        String cgroup = Bundles.cgroupsPath(taskUid).substring(1);
        try {
            return Files.exists(cgroupRoot.resolve("cgroup.controllers"))
                    ? v2(cgroupRoot.resolve(cgroup))
                    : v1(cgroupRoot, cgroup);
        } catch (IOException | NumberFormatException e) {
            return Optional.empty(); // the task ended while it was read
        }
    }

    private static Optional<TaskUsage> v2(Path dir) throws IOException {
        if (!Files.isDirectory(dir)) {
            return Optional.empty();
        }
        long memory = number(dir.resolve("memory.current"));
        long inactiveFile = stat(dir.resolve("memory.stat"), "inactive_file").orElse(0);
        return Optional.of(new TaskUsage(
                stat(dir.resolve("cpu.stat"), "usage_usec").orElse(0) / 1e6,
                memory,
                Math.max(0, memory - inactiveFile),
                number(dir.resolve("pids.current"))));
    }

    private static Optional<TaskUsage> v1(Path root, String cgroup) throws IOException {
        Path memoryDir = root.resolve("memory").resolve(cgroup);
        if (!Files.isDirectory(memoryDir)) {
            return Optional.empty();
        }
        long memory = number(memoryDir.resolve("memory.usage_in_bytes"));
        long inactiveFile =
                stat(memoryDir.resolve("memory.stat"), "total_inactive_file").orElse(0);
        return Optional.of(new TaskUsage(
                number(root.resolve("cpuacct").resolve(cgroup).resolve("cpuacct.usage")) / 1e9,
                memory,
                Math.max(0, memory - inactiveFile),
                number(root.resolve("pids").resolve(cgroup).resolve("pids.current"))));
    }

    private static long number(Path file) throws IOException {
        return Long.parseLong(Files.readString(file).strip());
    }

    /** The value of {@code key} in a flat-keyed file such as memory.stat ("key value" lines). */
    static OptionalLong stat(Path file, String key) throws IOException {
        for (String line : Files.readAllLines(file)) {
            int space = line.indexOf(' ');
            if (space > 0 && line.substring(0, space).equals(key)) {
                return OptionalLong.of(Long.parseLong(line.substring(space + 1).strip()));
            }
        }
        return OptionalLong.empty();
    }
}
