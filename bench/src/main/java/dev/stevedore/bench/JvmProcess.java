package dev.stevedore.bench;

import dev.stevedore.testing.Processes;
import java.io.File;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalLong;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A Stevedore component as it runs in a cluster: a JVM of its own, from {@code <module>/target/} of this checkout,
 * so that its memory and CPU are its own and not the benchmark's: the operator, or a node agent. Stopped on
 * {@link #close()} or when this JVM exits.
 */
final class JvmProcess implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(JvmProcess.class);
    /** "used 128822K" of a heap or generation line of GC.heap_info; eden and survivor lines say "0% used". */
    private static final Pattern HEAP_USED = Pattern.compile("used (\\d+)([KMG])");

    private final String role;
    private final Process process;
    private final Path log;
    private final Path javaHome;
    private final Thread stopOnExit;

    private JvmProcess(String role, Process process, Path log, Path java) {
        this.role = role;
        this.stopOnExit = new Thread(this::stop, role + "-stop");
        this.process = process;
        this.log = log;
        this.javaHome = java.getParent();
        Runtime.getRuntime().addShutdownHook(stopOnExit);
    }

    /**
     * Starts the operator of {@code repositoryRoot} against the cluster of {@code kubeconfig}, with {@code args},
     * writing its output to {@code log}.
     */
    static JvmProcess operator(
            Path repositoryRoot, Path kubeconfig, List<String> jvmOptions, List<String> args, Path log) {
        return start(
                "operator",
                repositoryRoot.resolve("operator"),
                "dev.stevedore.operator.StevedoreOperator",
                kubeconfig,
                jvmOptions,
                args,
                log);
    }

    /**
     * Starts the node agent of {@code repositoryRoot} (runtime-node-agent) against the cluster of {@code kubeconfig},
     * with {@code args} (--node-name, --root, ...), writing its output (JSON lines) to {@code log}.
     */
    static JvmProcess agent(
            Path repositoryRoot, Path kubeconfig, List<String> jvmOptions, List<String> args, Path log) {
        return start(
                "agent",
                repositoryRoot.resolve("runtime-node-agent"),
                "dev.stevedore.agent.NodeAgent",
                kubeconfig,
                jvmOptions,
                args,
                log);
    }

    private static JvmProcess start(
            String role,
            Path module,
            String main,
            Path kubeconfig,
            List<String> jvmOptions,
            List<String> args,
            Path log) {
        Path classes = module.resolve("target/classes");
        Path lib = module.resolve("target/lib");
        if (!Files.isDirectory(classes) || !Files.isDirectory(lib)) {
            throw new IllegalStateException("no " + role + " build in " + classes.getParent()
                    + "; build it with mvn -B -DskipTests install -pl " + module.getFileName() + " -am");
        }
        List<String> command = new ArrayList<>();
        // The JVM running the benchmark, so both use the same Java.
        Path java = Path.of(ProcessHandle.current().info().command().orElse("java"));
        command.add(java.toString());
        command.addAll(jvmOptions);
        command.addAll(List.of("-cp", classes + File.pathSeparator + lib + File.separator + "*", main));
        command.addAll(args);
        try {
            Files.createDirectories(log.getParent());
            ProcessBuilder builder = new ProcessBuilder(command)
                    .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")))
                    .redirectErrorStream(true)
                    .redirectOutput(log.toFile());
            builder.environment().put("KUBECONFIG", kubeconfig.toString()); // fabric8 reads it
            Process process = builder.start();
            LOG.info("{} started (pid {}), logging to {}", role, process.pid(), log);
            return new JvmProcess(role, process, log, java);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot start the " + role, e);
        }
    }

    String role() {
        return role;
    }

    Path log() {
        return log;
    }

    long pid() {
        return process.pid();
    }

    ProcessHandle handle() {
        return process.toHandle();
    }

    boolean isAlive() {
        return process.isAlive();
    }

    /** Fails with the end of its log when the process is no longer running. */
    void checkAlive() {
        if (!process.isAlive()) {
            throw new IllegalStateException("the " + role + " exited with code " + process.exitValue()
                    + "; the end of its log:\n" + logTail(40));
        }
    }

    /** Resident set size now, from /proc. */
    long rssBytes() {
        return ProcStatus.kibibytes(process.pid(), "VmRSS") * 1024;
    }

    /** The highest resident set size since the process started (the kernel's high-water mark). */
    long peakRssBytes() {
        return ProcStatus.kibibytes(process.pid(), "VmHWM") * 1024;
    }

    /**
     * Heap in use after a full collection: what the process's objects need, whatever heap the JVM was given (its
     * RSS mostly follows the latter). Forces a full GC, so call it after the measured window. Empty when the JDK's
     * jcmd is not beside the java that runs the benchmark.
     */
    OptionalLong liveHeapBytes() {
        String pid = Long.toString(process.pid());
        Optional<String> info = jdkTool("jcmd", pid, "GC.run").flatMap(ran -> jdkTool("jcmd", pid, "GC.heap_info"));
        if (info.isEmpty()) {
            return OptionalLong.empty();
        }
        // One line for G1's or ZGC's heap, one per generation for Serial and Parallel; metaspace is not heap.
        long used = 0;
        for (String line : info.get().split("\n")) {
            String trimmed = line.trim();
            if (trimmed.startsWith("Metaspace") || trimmed.startsWith("class space")) {
                continue;
            }
            Matcher match = HEAP_USED.matcher(trimmed);
            if (match.find()) {
                used += Long.parseLong(match.group(1))
                        << switch (match.group(2)) {
                            case "K" -> 10;
                            case "M" -> 20;
                            default -> 30;
                        };
            }
        }
        return used == 0 ? OptionalLong.empty() : OptionalLong.of(used);
    }

    /**
     * The process's garbage collector so far, from {@code jstat -gcutil}: "GCT" (seconds spent collecting), "FGC"
     * (full collections) and the rest of its columns. Empty when jstat is not at hand.
     */
    Map<String, Double> gcUtil() {
        Map<String, Double> columns = new HashMap<>();
        jdkTool("jstat", "-gcutil", Long.toString(process.pid())).ifPresent(out -> {
            String[] lines = out.strip().split("\n");
            if (lines.length >= 2) {
                String[] names = lines[0].trim().split("\\s+");
                String[] values = lines[1].trim().split("\\s+");
                for (int i = 0; i < Math.min(names.length, values.length); i++) {
                    try {
                        columns.put(names[i], Double.parseDouble(values[i]));
                    } catch (NumberFormatException dash) {
                        // "-": a column this collector does not have
                    }
                }
            }
        });
        return columns;
    }

    /** Runs a JDK tool beside our java, returning its output, or empty when it is missing or fails. */
    private Optional<String> jdkTool(String tool, String... args) {
        Path binary = javaHome.resolve(tool);
        if (!Files.isExecutable(binary)) {
            return Optional.empty();
        }
        List<String> command = new ArrayList<>(List.of(binary.toString()));
        command.addAll(List.of(args));
        try {
            Process run = new ProcessBuilder(command).redirectErrorStream(true).start();
            String out = new String(run.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            return run.waitFor() == 0 ? Optional.of(out) : Optional.empty();
        } catch (IOException e) {
            LOG.warn("cannot run {}: {}", binary, e.toString());
            return Optional.empty();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return Optional.empty();
        }
    }

    String logTail(int lines) {
        try {
            List<String> all = Files.readAllLines(log, StandardCharsets.UTF_8);
            return String.join("\n", all.subList(Math.max(0, all.size() - lines), all.size()));
        } catch (IOException e) {
            return "(cannot read " + log + ": " + e + ")";
        }
    }

    @Override
    public void close() {
        stop();
        try {
            Runtime.getRuntime().removeShutdownHook(stopOnExit);
        } catch (IllegalStateException alreadyShuttingDown) {
            // the hook is running or has run; it did the same work
        }
    }

    /** SIGTERM first, so its shutdown hook closes its watches as in a rolling update; then SIGKILL. */
    private void stop() {
        if (!process.isAlive()) {
            return;
        }
        Processes.stop(process);
    }

    /** Fields of /proc/PID/status. */
    static final class ProcStatus {
        private ProcStatus() {}

        static long kibibytes(long pid, String field) {
            try {
                for (String line : Files.readAllLines(Path.of("/proc", Long.toString(pid), "status"))) {
                    if (line.startsWith(field + ":")) {
                        return Long.parseLong(
                                line.substring(field.length() + 1).trim().split("\\s+")[0]);
                    }
                }
                throw new IllegalStateException("no " + field + " in /proc/" + pid + "/status");
            } catch (IOException e) {
                throw new UncheckedIOException("cannot read /proc/" + pid + "/status; has the process exited?", e);
            }
        }
    }
}
