package dev.stevedore.bench;

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
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The operator as it runs in a cluster: a JVM of its own, from operator/target/ of this checkout, so that its
 * memory and CPU are its own and not the benchmark's. Stopped on {@link #close()} or when this JVM exits.
 */
final class OperatorProcess implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(OperatorProcess.class);
    private static final String MAIN = "dev.stevedore.operator.StevedoreOperator";
    /** "used 128822K" of a heap or generation line of GC.heap_info; eden and survivor lines say "0% used". */
    private static final Pattern HEAP_USED = Pattern.compile("used (\\d+)([KMG])");

    private final Process process;
    private final Path log;
    private final Path javaHome;
    private final Thread stopOnExit = new Thread(this::stop, "operator-stop");

    private OperatorProcess(Process process, Path log, Path java) {
        this.process = process;
        this.log = log;
        this.javaHome = java.getParent();
        Runtime.getRuntime().addShutdownHook(stopOnExit);
    }

    /**
     * Starts the operator of {@code repositoryRoot} against the cluster of {@code kubeconfig}, with {@code args},
     * writing its output to {@code log}.
     */
    static OperatorProcess start(Path repositoryRoot, Path kubeconfig, List<String> jvmOptions, List<String> args, Path log) {
        Path classes = repositoryRoot.resolve("operator/target/classes");
        Path lib = repositoryRoot.resolve("operator/target/lib");
        if (!Files.isDirectory(classes) || !Files.isDirectory(lib)) {
            throw new IllegalStateException("no operator build in " + classes.getParent()
                    + "; build it with mvn -B -DskipTests install -pl operator -am");
        }
        List<String> command = new ArrayList<>();
        // The JVM running the benchmark, so both use the same Java.
        Path java = Path.of(ProcessHandle.current().info().command().orElse("java"));
        command.add(java.toString());
        command.addAll(jvmOptions);
        command.addAll(List.of("-cp", classes + File.pathSeparator + lib + File.separator + "*", MAIN));
        command.addAll(args);
        try {
            Files.createDirectories(log.getParent());
            ProcessBuilder builder = new ProcessBuilder(command)
                    .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")))
                    .redirectErrorStream(true)
                    .redirectOutput(log.toFile());
            builder.environment().put("KUBECONFIG", kubeconfig.toString()); // fabric8 reads it
            Process process = builder.start();
            LOG.info("operator started (pid {}), logging to {}", process.pid(), log);
            return new OperatorProcess(process, log, java);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot start the operator", e);
        }
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

    /** Fails with the end of the operator's log when it is no longer running. */
    void checkAlive() {
        if (!process.isAlive()) {
            throw new IllegalStateException("the operator exited with code " + process.exitValue() + "; the end of its log:\n"
                    + logTail(40));
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
     * Heap in use after a full collection: what the operator's objects need, whatever heap the JVM was given (its
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
                used += Long.parseLong(match.group(1)) << switch (match.group(2)) {
                    case "K" -> 10;
                    case "M" -> 20;
                    default -> 30;
                };
            }
        }
        return used == 0 ? OptionalLong.empty() : OptionalLong.of(used);
    }

    /**
     * The operator's garbage collector so far, from {@code jstat -gcutil}: "GCT" (seconds spent collecting), "FGC"
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

    /** SIGTERM first, so the operator's shutdown hook closes its watches as in a rolling update; then SIGKILL. */
    private void stop() {
        if (!process.isAlive()) {
            return;
        }
        process.destroy();
        try {
            if (!process.waitFor(10, TimeUnit.SECONDS)) {
                process.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
            }
        } catch (InterruptedException e) {
            process.destroyForcibly();
            Thread.currentThread().interrupt();
        }
    }

    /** Fields of /proc/PID/status. */
    static final class ProcStatus {
        private ProcStatus() {
        }

        static long kibibytes(long pid, String field) {
            try {
                for (String line : Files.readAllLines(Path.of("/proc", Long.toString(pid), "status"))) {
                    if (line.startsWith(field + ":")) {
                        return Long.parseLong(line.substring(field.length() + 1).trim().split("\\s+")[0]);
                    }
                }
                throw new IllegalStateException("no " + field + " in /proc/" + pid + "/status");
            } catch (IOException e) {
                throw new UncheckedIOException("cannot read /proc/" + pid + "/status; has the process exited?", e);
            }
        }
    }
}
