package dev.stevedore.agent.tasks;

import dev.stevedore.agent.fs.SafeDelete;
import dev.stevedore.agent.network.TaskNetworks;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.OptionalLong;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * What a task holds on the node besides its record — the runtime's container, its conmon, the mounted bundle, its
 * cgroups, conmon's files — and what conmon leaves behind about it: pids, the exit code, the OOM marker.
 */
final class TaskResources {
    private static final Logger LOG = LoggerFactory.getLogger(TaskResources.class);
    private static final Path CGROUP_ROOT = Path.of("/sys/fs/cgroup");

    private final TaskRecords records;
    private final Runtimes runtimes;
    private final TaskNetworks networks;

    TaskResources(TaskRecords records, Runtimes runtimes, TaskNetworks networks) {
        this.records = records;
        this.runtimes = runtimes;
        this.networks = networks;
    }

    /**
     * runc delete, conmon gone, network detached, rootfs unmounted, cgroup and bundle removed. Idempotent; a
     * network whose detach fails throws before anything of the task's is forgotten, to be tried again.
     */
    void release(TaskRecord rec) throws IOException {
        OciRuntime runtime = runtimes.named(rec.runtime());
        try {
            runtime.delete(rec.runtimeId(), true);
        } catch (RuntimeCommandException e) {
            LOG.warn("deleting {}: {}", rec.runtimeId(), e.getMessage());
        }
        awaitConmonExit(rec);
        if (rec.network() != null) {
            networks.detach(rec.uid(), rec.network());
        }
        Bundles.release(records.bundle(rec.uid()));
        removeCgroups(rec.uid());
        SafeDelete.deleteTree(records.conmonDir(rec.uid()));
        Files.deleteIfExists(records.socketDir().resolve(rec.runtimeId()));
        records.deleteExitFile(rec.runtimeId());
    }

    /**
     * Waits up to 5 s for the task's conmon to exit (it does once the runtime's container is gone), then kills it:
     * the conmon recorded, never another process that has its PID now.
     */
    void awaitConmonExit(TaskRecord rec) {
        Optional<ProcessHandle> conmon = conmon(rec);
        if (conmon.isEmpty()) {
            return;
        }
        try {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
            // Not ProcessHandle.isAlive: a conmon that exited stays a zombie until the host's init reaps it.
            while (conmon(rec).isPresent() && System.nanoTime() < deadline) {
                Thread.sleep(20);
            }
            // The JDK's handle signals only the process it was taken of (it checks the start time too).
            conmon.get().destroyForcibly();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /**
     * The task's conmon, if the process under its recorded PID is still it: the same start time, or, for a record
     * of an older agent without one, a conmon whose arguments name this task.
     */
    Optional<ProcessHandle> conmon(TaskRecord rec) {
        Long pidFromFile = rec.conmon() != null ? null : pidIn(conmonPidFile(rec.uid()));
        ProcessId recorded =
                rec.conmon() != null ? rec.conmon() : pidFromFile == null ? null : new ProcessId(pidFromFile, null);
        if (recorded == null) {
            return Optional.empty();
        }
        // Taken before the check: a handle of a process that started later than the recorded one cannot pass it.
        Optional<ProcessHandle> handle = ProcessHandle.of(recorded.pid());
        boolean ours = switch (ProcessStart.match(recorded.startTime(), ProcessStart.of(recorded.pid()))) {
            case SAME -> true;
            case OTHER, GONE -> false;
            case UNKNOWN -> handle.map(h -> isConmonOf(h, rec.uid())).orElse(false);
        };
        if (!ours && handle.isPresent()) {
            LOG.debug("pid {} recorded for the conmon of {} is not it any more", recorded.pid(), rec.uid());
        }
        return ours ? handle : Optional.empty();
    }

    private static boolean isConmonOf(ProcessHandle h, String uid) {
        return h.info().command().map(c -> c.endsWith("/conmon")).orElse(false)
                && List.of(h.info().arguments().orElse(new String[0])).contains(uid);
    }

    /**
     * The container's init process under the PID conmon wrote, with its start time now; null before conmon wrote
     * it. Only for a container the runtime reports live (the runtime checks its own record of the process).
     */
    ProcessId containerProcess(String uid) {
        Long pid = pidIn(records.taskDir(uid).resolve("ctr.pid"));
        return pid == null ? null : identify(pid);
    }

    /** The conmon just started for the task, from the pid file it wrote, with its start time; null before it did. */
    ProcessId newConmon(String uid) {
        Long pid = pidIn(conmonPidFile(uid));
        return pid == null ? null : identify(pid);
    }

    /** The process with {@code pid} now: its start time, null when it is gone already. */
    static ProcessId identify(long pid) {
        OptionalLong start = ProcessStart.of(pid);
        return new ProcessId(pid, start.isPresent() ? start.getAsLong() : null);
    }

    /** cgroup v1 memory.oom_control oom_kill (or v2 memory.events oom_kill), or conmon's oom file. */
    boolean oomKilled(TaskRecord rec) {
        if (Files.exists(records.conmonDir(rec.uid()).resolve("oom"))) {
            return true;
        }
        String cg = Bundles.cgroupsPath(rec.uid()).substring(1);
        for (Path file : List.of(
                CGROUP_ROOT.resolve("memory").resolve(cg).resolve("memory.oom_control"),
                CGROUP_ROOT.resolve(cg).resolve("memory.events"))) {
            try {
                if (Files.exists(file)) {
                    for (String line : Files.readAllLines(file)) {
                        String[] kv = line.trim().split("\\s+");
                        if (kv.length == 2 && kv[0].equals("oom_kill") && Long.parseLong(kv[1]) > 0) {
                            return true;
                        }
                    }
                }
            } catch (IOException | NumberFormatException e) {
                LOG.debug("reading {}: {}", file, e.toString());
            }
        }
        return false;
    }

    /** The exit code conmon wrote, empty while the file is not complete. */
    static Optional<Integer> exitCode(Path exitFile) {
        try {
            String text = Files.readString(exitFile).strip();
            return text.isEmpty() ? Optional.empty() : Optional.of(Integer.parseInt(text));
        } catch (IOException | NumberFormatException e) {
            return Optional.empty();
        }
    }

    /** The task's cgroup in every hierarchy (v1) or the unified one (v2); retried while the kernel still empties it. */
    static void removeCgroups(String uid) {
        List<Path> candidates =
                new ArrayList<>(List.of(CGROUP_ROOT.resolve("stevedore").resolve(uid)));
        try (Stream<Path> hierarchies = Files.list(CGROUP_ROOT)) {
            hierarchies.forEach(h -> candidates.add(h.resolve("stevedore").resolve(uid)));
        } catch (IOException e) {
            LOG.debug("listing cgroups", e);
        }
        for (Path dir : candidates) {
            for (int attempt = 0; attempt < 50 && Files.isDirectory(dir); attempt++) {
                try {
                    Files.delete(dir); // rmdir: a cgroup directory's files are virtual
                } catch (IOException e) {
                    try {
                        Thread.sleep(20);
                    } catch (InterruptedException ie) {
                        Thread.currentThread().interrupt();
                        return;
                    }
                }
            }
        }
    }

    private Path conmonPidFile(String uid) {
        return records.taskDir(uid).resolve("conmon.pid");
    }

    private static Long pidIn(Path file) {
        try {
            return Files.exists(file) ? Long.parseLong(Files.readString(file).strip()) : null;
        } catch (IOException | NumberFormatException e) {
            LOG.debug("pid file {}: {}", file, e.toString());
            return null;
        }
    }
}
