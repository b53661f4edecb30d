package dev.stevedore.bench;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * What a node agent left on its node once every Container and Task of it is deleted: none of these should exist.
 *
 * @param processes conmon processes of its root, runc or crun processes of its state directory, and every process in
 *     a task's cgroup ("PID command")
 * @param mounts mount points under its root or its state directory
 * @param cgroups task cgroups ({@code /stevedore/<task-uid>}) of the run's Tasks still in some hierarchy, once each
 * @param records task records, bundles and sockets, Container records, the runtimes' state entries and exit files
 * @param snapshots snapshot directories, of either snapshotter (with no Container left, the garbage collector of an
 *     agent whose image GC thresholds are 1% and 0% leaves no image and so no snapshot)
 */
record NodeLeaks(
        List<String> processes,
        List<String> mounts,
        List<String> cgroups,
        List<String> records,
        List<String> snapshots) {
    private static final Logger LOG = LoggerFactory.getLogger(NodeLeaks.class);
    private static final Path CGROUP_ROOT = Path.of("/sys/fs/cgroup");
    /** Directories of the agent's root whose every entry belongs to a task or a Container. */
    private static final List<String> RECORD_DIRS = List.of("tasks", "task-sockets", "containers", "tmpmounts");

    boolean none() {
        return processes.isEmpty() && mounts.isEmpty() && cgroups.isEmpty() && records.isEmpty() && snapshots.isEmpty();
    }

    static NodeLeaks find(Path agentRoot, Path stateDir, Collection<String> taskUids) {
        List<Path> cgroupDirs = taskCgroups(taskUids);
        return new NodeLeaks(
                processes(agentRoot, stateDir, cgroupDirs),
                mounts(agentRoot, stateDir),
                cgroupDirs.stream()
                        .map(dir -> "/stevedore/" + dir.getFileName())
                        .distinct()
                        .toList(),
                records(agentRoot, stateDir),
                snapshots(agentRoot));
    }

    /**
     * Removes what {@link #find} finds that would outlive the run: kills the processes, unmounts the mounts (lazily)
     * and removes the cgroups. Files go with the run's directory.
     */
    static void cleanUp(Path agentRoot, Path stateDir, Collection<String> taskUids) {
        NodeLeaks leaks = find(agentRoot, stateDir, taskUids);
        if (leaks.none()) {
            return;
        }
        LOG.info("cleaning up after the run: {}", leaks);
        for (String process : leaks.processes()) {
            ProcessHandle.of(Long.parseLong(process.split(" ")[0])).ifPresent(ProcessHandle::destroyForcibly);
        }
        List<String> mounts = new ArrayList<>(leaks.mounts());
        Collections.reverse(mounts); // the last mounted first
        for (String mount : mounts) {
            Commands.execute(List.of("umount", "-l", mount));
        }
        for (Path cgroup : taskCgroups(taskUids)) {
            for (int attempt = 0; attempt < 50 && Files.exists(cgroup); attempt++) {
                try {
                    Files.delete(cgroup); // rmdir: a cgroup without processes goes
                } catch (IOException busy) {
                    sleep();
                }
            }
        }
    }

    private static List<String> processes(Path agentRoot, Path stateDir, List<Path> cgroupDirs) {
        Set<String> found = new TreeSet<>();
        ProcessHandle.allProcesses().forEach(p -> {
            String command = p.info().command().orElse("");
            String args = String.join(" ", p.info().arguments().orElse(new String[0]));
            boolean conmon = command.endsWith("/conmon") && args.contains(agentRoot.toString());
            boolean runtime =
                    (command.endsWith("/runc") || command.endsWith("/crun")) && args.contains(stateDir.toString());
            if (conmon || runtime) {
                found.add(p.pid() + " " + command);
            }
        });
        for (Path cgroup : cgroupDirs) {
            try {
                for (String pid : Files.readAllLines(cgroup.resolve("cgroup.procs"))) {
                    if (!pid.isBlank()) {
                        found.add(pid.strip() + " "
                                + ProcessHandle.of(Long.parseLong(pid.strip()))
                                        .flatMap(h -> h.info().command())
                                        .orElse("(in " + cgroup + ")"));
                    }
                }
            } catch (IOException gone) {
                // removed since it was listed
            }
        }
        return List.copyOf(found);
    }

    private static List<String> mounts(Path agentRoot, Path stateDir) {
        try {
            return Files.readAllLines(Path.of("/proc/self/mounts")).stream()
                    .map(line -> line.split(" ")[1].replace("\\040", " "))
                    .filter(point -> point.startsWith(agentRoot + "/") || point.startsWith(stateDir + "/"))
                    .toList();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** The run's task cgroups still there, in every hierarchy (each v1 controller, the v2 tree). */
    private static List<Path> taskCgroups(Collection<String> taskUids) {
        Set<Path> hierarchies = new LinkedHashSet<>();
        if (Files.exists(CGROUP_ROOT.resolve("cgroup.controllers"))) {
            hierarchies.add(CGROUP_ROOT);
        } else {
            for (Path entry : entries(CGROUP_ROOT)) {
                try {
                    hierarchies.add(entry.toRealPath()); // cpu and cpuacct are links to cpu,cpuacct
                } catch (IOException gone) {
                    // not a hierarchy
                }
            }
        }
        List<Path> found = new ArrayList<>();
        for (Path hierarchy : hierarchies) {
            for (String uid : taskUids) {
                Path dir = hierarchy.resolve("stevedore").resolve(uid); // the agent's cgroupsPath, /stevedore/<uid>
                if (Files.isDirectory(dir)) {
                    found.add(dir);
                }
            }
        }
        return found;
    }

    private static List<String> records(Path agentRoot, Path stateDir) {
        List<String> found = new ArrayList<>();
        for (String dir : RECORD_DIRS) {
            entries(agentRoot.resolve(dir)).forEach(p -> found.add(p.toString()));
        }
        for (String runtime : List.of("runc", "crun")) {
            entries(stateDir.resolve(runtime)).forEach(p -> found.add(p.toString()));
        }
        for (Path node : entries(stateDir.resolve("exits"))) {
            entries(node).forEach(p -> found.add(p.toString()));
        }
        return found;
    }

    private static List<String> snapshots(Path agentRoot) {
        List<String> found = new ArrayList<>();
        for (Path snapshotter : entries(agentRoot.resolve("snapshots"))) {
            for (Path snapshot : entries(snapshotter)) {
                if (Files.isDirectory(snapshot)
                        && !snapshot.getFileName().toString().equals("tmp")) {
                    found.add(snapshot.toString());
                }
            }
        }
        return found;
    }

    private static List<Path> entries(Path dir) {
        if (!Files.isDirectory(dir)) {
            return List.of();
        }
        List<Path> entries = new ArrayList<>();
        try (DirectoryStream<Path> stream = Files.newDirectoryStream(dir)) {
            stream.forEach(entries::add);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot list " + dir, e);
        }
        entries.sort(null);
        return entries;
    }

    private static void sleep() {
        try {
            Thread.sleep(100);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
