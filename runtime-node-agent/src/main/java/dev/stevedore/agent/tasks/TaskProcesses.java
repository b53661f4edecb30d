package dev.stevedore.agent.tasks;

import dev.stevedore.api.AgentApi;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * The processes of a running task, as {@code ctr tasks ps} and {@code kubectl stevedore ps} list them: the PIDs in
 * its cgroup (node PIDs), each with its parent, state, resident memory and command line from /proc.
 */
public final class TaskProcesses {
    private TaskProcesses() {}

    /** The task's processes, empty once its cgroup is gone. */
    public static Optional<List<AgentApi.Process>> of(Path cgroupRoot, Path proc, String taskUid) {
        String cgroup = Bundles.cgroupsPath(taskUid).substring(1);
        Path procs = Files.exists(cgroupRoot.resolve("cgroup.controllers"))
                ? cgroupRoot.resolve(cgroup).resolve("cgroup.procs")
                : cgroupRoot.resolve("pids").resolve(cgroup).resolve("cgroup.procs");
        List<String> pids;
        try {
            pids = Files.readAllLines(procs);
        } catch (IOException e) {
            return Optional.empty();
        }
        List<AgentApi.Process> processes = new ArrayList<>();
        for (String pid : pids) {
            if (!pid.isBlank()) {
                process(proc.resolve(pid.strip())).ifPresent(processes::add);
            }
        }
        return Optional.of(processes);
    }

    /** One process from its /proc directory; empty when it exited meanwhile. */
    static Optional<AgentApi.Process> process(Path dir) {
        try {
            String stat = Files.readString(dir.resolve("stat"));
            // The command name (2nd field) is in parentheses and may hold spaces and parentheses itself.
            int close = stat.lastIndexOf(')');
            String name = stat.substring(stat.indexOf('(') + 1, close);
            String[] after = stat.substring(close + 2).split(" ");
            byte[] cmdline = Files.readAllBytes(dir.resolve("cmdline"));
            String command = cmdline.length == 0
                    ? "[" + name + "]"
                    : new String(cmdline, StandardCharsets.UTF_8)
                            .replace('\0', ' ')
                            .strip();
            return Optional.of(new AgentApi.Process(
                    Long.parseLong(dir.getFileName().toString()),
                    Long.parseLong(after[1]),
                    after[0],
                    rssBytes(dir),
                    command));
        } catch (IOException | RuntimeException e) {
            return Optional.empty();
        }
    }

    private static long rssBytes(Path dir) throws IOException {
        for (String line : Files.readAllLines(dir.resolve("status"))) {
            if (line.startsWith("VmRSS:")) {
                return Long.parseLong(line.replaceAll("\\D", "")) * 1024;
            }
        }
        return 0; // a kernel thread or a zombie
    }
}
