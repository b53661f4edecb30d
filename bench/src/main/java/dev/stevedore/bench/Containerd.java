package dev.stevedore.bench;

import dev.stevedore.testing.ContainerdDaemon;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Debian's containerd as the peer of the node agent ({@link ContainerdDaemon}: a daemon of the benchmark's own,
 * nothing of the host's), driven with {@code ctr} in namespace {@value #NAMESPACE}, with the timings the
 * benchmarks report. {@link #close()} stops it and deletes its directory.
 */
final class Containerd implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(Containerd.class);
    static final String NAMESPACE = "bench";
    /** ctr's last line of a pull: how long unpacking took, as Go prints a duration ("83.046418ms", "1.5s"). */
    private static final Pattern UNPACK_DONE = Pattern.compile("(?m)^done: ([0-9.]+)(ns|us|µs|ms|s)\\s*$");

    private static final Pattern ANSI = Pattern.compile("\u001b\\[[0-9;]*[A-Za-z]");

    private final ContainerdDaemon daemon;

    private Containerd(ContainerdDaemon daemon) {
        this.daemon = daemon;
    }

    /**
     * Starts containerd in {@code dir} (created; deleted on close), writing its log to {@code log} (kept), and returns
     * once it says it has booted.
     */
    static Containerd start(Path dir, Path log) throws IOException, InterruptedException {
        ContainerdDaemon daemon = ContainerdDaemon.start(dir, log);
        LOG.info("containerd started (pid {}), socket {}", daemon.handle().pid(), daemon.socket());
        return new Containerd(daemon);
    }

    ProcessHandle handle() {
        return daemon.handle();
    }

    /** "containerd 1.6.20~ds1", from the binary. */
    static String version() {
        String[] words = Commands.run("containerd", "--version").trim().split("\\s+");
        return words.length >= 3 ? "containerd " + words[2] : String.join(" ", words);
    }

    /**
     * One {@code ctr --debug images pull --plain-http REF}: the wall time of the ctr process (from spawning it to
     * reaping it), the unpack time ctr prints after fetching, and the CPU the ctr process used (fetching happens in
     * ctr: it downloads from the registry and streams each blob into containerd's content store; unpacking happens
     * in containerd).
     *
     * <p>Why {@code --debug}: without it ctr draws progress bars, refreshed every 100 ms, and once the fetch is done
     * it waits for one more refresh before it unpacks (ctr's content.Fetch: "allow ui to update once more"), adding
     * 0-100 ms of waiting to every pull; the refreshes also query containerd (ListStatuses, Info) while it works.
     * With {@code --debug} it draws none and logs about 20 debug lines to stderr instead; "done: ..." is printed
     * all the same.
     */
    record Pull(double wallMs, double unpackMs, double ctrCpuMs) {
        /** Resolving the tag, fetching manifest, config and layers into the content store, and ctr's own start. */
        double fetchMs() {
            return wallMs - unpackMs;
        }
    }

    Pull pull(String reference) {
        checkAlive();
        long cpuBefore = ChildCpu.millis();
        long started = System.nanoTime();
        Commands.Result result = Commands.execute(ctrDebug("images", "pull", "--plain-http", reference));
        double wallMs = (System.nanoTime() - started) / 1e6;
        long ctrCpu = ChildCpu.millis() - cpuBefore;
        String output = ANSI.matcher(result.output()).replaceAll("");
        if (result.exitCode() != 0) {
            throw new IllegalStateException(
                    "ctr images pull " + reference + " failed (" + result.exitCode() + "):\n" + output);
        }
        Matcher done = UNPACK_DONE.matcher(output);
        if (!done.find()) {
            throw new IllegalStateException("no 'done: DURATION' line in the output of ctr images pull:\n" + output);
        }
        return new Pull(wallMs, goDurationMillis(Double.parseDouble(done.group(1)), done.group(2)), ctrCpu);
    }

    /** One {@code ctr run -d}: the wall time of the ctr process, spawn to reap, and its CPU (ms). */
    record Run(double wallMs, long ctrCpuMs) {}

    /**
     * {@code ctr run -d --seccomp --snapshotter overlayfs IMAGE ID CMD...} of an image already pulled: ctr creates
     * the container and its active snapshot, then the task (containerd starts a containerd-shim-runc-v2, which runs
     * runc create), starts it and exits. With containerd's default seccomp profile, as Stevedore runs every task: runc
     * compiles and loads the filter at each start on both sides.
     */
    Run runTask(String image, String id, String... command) {
        return runTask(null, image, id, command);
    }

    /**
     * As {@link #runTask(String, String, String...)}, with {@code --cni} when {@code network} is given: ctr sets the
     * task's network namespace up with the network's plugins (loopback, then the configuration list's ADD) between
     * the task's create and start, as the agent does before its create.
     */
    Run runTask(BenchNetwork network, String image, String id, String... command) {
        checkAlive();
        List<String> args = new ArrayList<>(List.of("run", "-d", "--seccomp", "--snapshotter", "overlayfs"));
        if (network != null) {
            args.add("--cni");
        }
        args.addAll(List.of(image, id));
        args.addAll(List.of(command));
        List<String> ctr = ctr(args.toArray(String[]::new));
        long cpuBefore = ChildCpu.millis();
        long started = System.nanoTime();
        Commands.Result result = Commands.execute(network == null ? ctr : network.enter(ctr));
        double wallMs = (System.nanoTime() - started) / 1e6;
        long ctrCpu = ChildCpu.millis() - cpuBefore;
        if (result.exitCode() != 0) {
            throw new IllegalStateException(
                    "ctr run " + id + " failed (" + result.exitCode() + "):\n" + result.output());
        }
        return new Run(wallMs, ctrCpu);
    }

    /** The run command, as it runs, for the report. */
    String runCommand() {
        return String.join(
                        " ",
                        ctr("run", "-d", "--seccomp", "--snapshotter", "overlayfs", "IMAGE", "ID", "sleep", "3600"))
                .replace(daemon.socket().toString(), "SOCK");
    }

    /** The networked run command, as it runs, for the report. */
    String runCommand(BenchNetwork network) {
        return String.join(
                        " ",
                        network.enter(ctr(
                                "run",
                                "-d",
                                "--seccomp",
                                "--snapshotter",
                                "overlayfs",
                                "--cni",
                                "IMAGE",
                                "ID",
                                "sleep",
                                "3600")))
                .replace(daemon.socket().toString(), "SOCK");
    }

    /** Kills the task with SIGKILL, removes it (-f) and the container with its snapshot. */
    void removeTask(String id) {
        Commands.execute(ctr("task", "kill", "-s", "SIGKILL", id)); // may race with its exit: rm -f makes sure
        Commands.run(ctr("task", "rm", "-f", id));
        Commands.run(ctr("containers", "rm", id));
    }

    /** Containers and tasks in the namespace (0 and 0 after a clean-up). */
    String taskInventory() {
        int containers = lines(Commands.run(ctr("containers", "ls", "-q")));
        int tasks = lines(Commands.run(ctr("tasks", "ls"))) - 1;
        return containers + " containers, " + Math.max(0, tasks) + " tasks";
    }

    /** Where containerd keeps everything: its shims' command lines and its mounts name it. */
    Path dir() {
        return daemon.dir();
    }

    /**
     * The wall time of {@code ctr version} (start the binary, connect, one gRPC call, exit): the fixed cost of a ctr
     * command, part of what {@link Pull#fetchMs()} counts.
     */
    double ctrVersionMs() {
        long started = System.nanoTime();
        Commands.run(ctr("version"));
        return (System.nanoTime() - started) / 1e6;
    }

    /**
     * Removes the image and waits for containerd's garbage collector to delete what only it used (blobs and
     * snapshots), as {@code --sync} asks; returns the wall time in milliseconds.
     */
    double removeImage(String reference) {
        long started = System.nanoTime();
        Commands.run(ctr("images", "rm", "--sync", reference));
        return (System.nanoTime() - started) / 1e6;
    }

    /** What the namespace holds: images, content blobs, snapshots (all 0 when a pull will be cold). */
    String inventory() {
        int images = lines(Commands.run(ctr("images", "ls", "-q")));
        int blobs = lines(Commands.run(ctr("content", "ls", "-q")));
        int snapshots = lines(Commands.run(ctr("snapshots", "ls"))) - 1; // less the header
        return images + " images, " + blobs + " blobs, " + Math.max(0, snapshots) + " snapshots";
    }

    static boolean empty(String inventory) {
        return inventory.equals("0 images, 0 blobs, 0 snapshots");
    }

    private List<String> ctr(String... args) {
        return daemon.ctr(NAMESPACE, args);
    }

    /** ctr with --debug: debug log lines on stderr, no progress bars. */
    private List<String> ctrDebug(String... args) {
        List<String> command = ctr(args);
        command.add(1, "--debug");
        return command;
    }

    /** The pull command, as it runs, for the report; REF stands for the reference. */
    String pullCommand() {
        return String.join(" ", ctrDebug("images", "pull", "--plain-http", "REF"))
                .replace(daemon.socket().toString(), "SOCK");
    }

    void checkAlive() {
        daemon.checkAlive();
    }

    private static int lines(String output) {
        return (int) output.lines().filter(l -> !l.isBlank()).count();
    }

    static double goDurationMillis(double amount, String unit) {
        return switch (unit) {
            case "ns" -> amount / 1e6;
            case "us", "µs" -> amount / 1e3;
            case "ms" -> amount;
            default -> amount * 1e3;
        };
    }

    @Override
    public void close() {
        try {
            daemon.close();
        } catch (UncheckedIOException e) {
            LOG.warn("could not delete {}: {}", daemon.dir(), e.getMessage());
        }
    }

    /**
     * CPU time of this JVM's children that have exited and been reaped (the cutime and cstime of /proc/self/stat):
     * read before and after running one command, the difference is that command's CPU. The long-running children
     * (control plane, registry, agent, containerd) add nothing to it until they exit.
     */
    static final class ChildCpu {
        /** USER_HZ: the unit of /proc's CPU times; 100 on every Linux architecture that matters here. */
        private static final long TICKS_PER_SECOND = 100;

        private ChildCpu() {}

        static long millis() {
            try {
                String stat = Files.readString(Path.of("/proc/self/stat"));
                // Fields after the command name (which may hold spaces), from field 3 (state) on.
                String[] fields = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
                long ticks = Long.parseLong(fields[16 - 3]) + Long.parseLong(fields[17 - 3]);
                return ticks * 1000 / TICKS_PER_SECOND;
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
    }
}
