package dev.stevedore.testing;

import java.io.BufferedReader;
import java.io.File;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.stream.Stream;

/**
 * Debian's containerd as Stevedore's peer, for the benchmarks and the parity tests: a daemon of its own
 * ({@code containerd --config}), with its root, state, socket and everything else under one directory, nothing of
 * the host's, and the CRI plugin off (this containerd serves {@code ctr}, not a kubelet). {@link #close()} stops it
 * and deletes the directory. Needs the Debian package containerd ({@code hack/install-prereqs.sh containerd}).
 */
public final class ContainerdDaemon implements AutoCloseable {
    private static final Duration START_TIMEOUT = Duration.ofSeconds(60);
    private static final String BOOTED = "containerd successfully booted";

    private final Path dir;
    private final Path log;
    private final Path socket;
    private final Process process;
    private final Thread stopOnExit;

    private ContainerdDaemon(Path dir, Path log, Path socket, Process process) {
        this.dir = dir;
        this.log = log;
        this.socket = socket;
        this.process = process;
        this.stopOnExit = new Thread(this::stop, "containerd-stop");
        Runtime.getRuntime().addShutdownHook(stopOnExit);
    }

    /**
     * Starts containerd in {@code dir} (created; deleted on close), writing its log to {@code log} (kept), and returns
     * once it says it has booted.
     */
    public static ContainerdDaemon start(Path dir, Path log) throws IOException, InterruptedException {
        Files.createDirectories(dir);
        Files.createDirectories(log.toAbsolutePath().getParent());
        Path socket = dir.resolve("containerd.sock");
        Path config = dir.resolve("config.toml");
        // Snapshotters that cannot work here (no btrfs, zfs, devmapper pool, aufs) are left out rather than logged
        // as failing; overlayfs, native and the content store are what a pull uses.
        Files.writeString(config, """
                version = 2
                root = "%1$s/root"
                state = "%1$s/state"
                disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.aufs", \
                "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", \
                "io.containerd.snapshotter.v1.zfs", "io.containerd.tracing.processor.v1.otlp", \
                "io.containerd.internal.v1.tracing"]
                [grpc]
                  address = "%2$s"
                [ttrpc]
                  address = "%2$s.ttrpc"
                [debug]
                  level = "info"
                [plugins."io.containerd.internal.v1.opt"]
                  path = "%1$s/opt"
                """.formatted(dir, socket));
        Process process = new ProcessBuilder("containerd", "--config", config.toString())
                .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")))
                .redirectErrorStream(true)
                .start();
        ContainerdDaemon containerd = new ContainerdDaemon(dir, log, socket, process);
        CompletableFuture<Void> booted = new CompletableFuture<>();
        Thread logger = new Thread(() -> copyLog(process, log, booted), "containerd-log");
        logger.setDaemon(true);
        logger.start();
        try {
            booted.get(START_TIMEOUT.toSeconds(), TimeUnit.SECONDS);
        } catch (TimeoutException | ExecutionException e) {
            containerd.close();
            throw new IllegalStateException("containerd did not boot within " + START_TIMEOUT, e);
        }
        return containerd;
    }

    /** Copies containerd's log to a file, completing {@code booted} at the line that says it is serving. */
    private static void copyLog(Process process, Path log, CompletableFuture<Void> booted) {
        try (BufferedReader in =
                        new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8));
                PrintWriter out = new PrintWriter(Files.newBufferedWriter(log), true)) {
            for (String line; (line = in.readLine()) != null; ) {
                out.println(line);
                if (line.contains(BOOTED)) {
                    booted.complete(null);
                }
            }
        } catch (IOException e) {
            booted.completeExceptionally(e);
        }
        booted.completeExceptionally(new IllegalStateException("containerd exited; see " + log));
    }

    /** The command line of {@code ctr ARGS} against this daemon, in {@code namespace}. */
    public List<String> ctr(String namespace, String... args) {
        List<String> command =
                new ArrayList<>(List.of("ctr", "--address", socket.toString(), "--namespace", namespace));
        command.addAll(List.of(args));
        return command;
    }

    /** Where containerd keeps everything: its shims' command lines and its mounts name it. */
    public Path dir() {
        return dir;
    }

    public Path socket() {
        return socket;
    }

    public ProcessHandle handle() {
        return process.toHandle();
    }

    public void checkAlive() {
        if (!process.isAlive()) {
            throw new IllegalStateException("containerd exited with code " + process.exitValue() + "; see " + log);
        }
    }

    @Override
    public void close() {
        stop();
        try {
            Runtime.getRuntime().removeShutdownHook(stopOnExit);
        } catch (IllegalStateException alreadyShuttingDown) {
            // the hook is running or has run
        }
        deleteTree(dir);
    }

    /** containerd handles SIGTERM by shutting down cleanly. */
    private void stop() {
        Processes.stop(process);
    }

    private static void deleteTree(Path dir) {
        if (!Files.exists(dir, LinkOption.NOFOLLOW_LINKS)) {
            return;
        }
        try (Stream<Path> paths = Files.walk(dir)) {
            for (Path path : paths.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(path);
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot delete " + dir, e);
        }
    }
}
