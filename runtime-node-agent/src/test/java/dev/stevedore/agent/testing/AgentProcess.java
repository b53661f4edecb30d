package dev.stevedore.agent.testing;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * The node agent as its own JVM, as it runs on a node: {@code java -cp target/classes:target/lib/*
 * dev.stevedore.agent.NodeAgent}, which {@code mvn package} prepares. It can be killed with SIGKILL mid-work and
 * started again on the same root. Its output goes to a log file, which failure messages include.
 */
public final class AgentProcess implements AutoCloseable {
    private static final String MAIN = "dev.stevedore.agent.NodeAgent";

    private final Process process;
    private final Path log;

    private AgentProcess(Process process, Path log) {
        this.process = process;
        this.log = log;
    }

    /**
     * Starts {@code stevedore-agent --node-name node --root root --heartbeat-interval 2s} with KUBECONFIG set and the
     * JVM options it ships with.
     */
    public static AgentProcess start(String node, Path root, Path kubeconfig, Path log) {
        return start(node, root, kubeconfig, log, List.of());
    }

    /** As {@link #start(String, Path, Path, Path)}, with more of the agent's flags. */
    public static AgentProcess start(String node, Path root, Path kubeconfig, Path log, List<String> flags) {
        String shipped = "@" + Path.of("jvm.options").toAbsolutePath();
        List<String> args = new ArrayList<>(
                List.of(MAIN, "--node-name", node, "--root", root.toString(), "--heartbeat-interval", "2s"));
        args.addAll(flags);
        ProcessBuilder builder = new ProcessBuilder(java(List.of(shipped), args.toArray(String[]::new)))
                .redirectErrorStream(true)
                .redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile()));
        builder.environment().put("KUBECONFIG", kubeconfig.toString());
        try {
            return new AgentProcess(builder.start(), log);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** What {@code stevedore-agent import --root root archives...} printed, and its exit code. */
    public record Result(int exitCode, String stdout, String stderr) {}

    public static Result runImport(Path root, Path... archives) {
        List<String> args = new ArrayList<>(List.of(MAIN, "import", "--root", root.toString()));
        for (Path archive : archives) {
            args.add(archive.toString());
        }
        try {
            Path out = Files.createTempFile("agent-import", ".out");
            Path err = Files.createTempFile("agent-import", ".err");
            try {
                Process process = new ProcessBuilder(
                                java(List.of("-Xmx256m", "-XX:+UseSerialGC"), args.toArray(String[]::new)))
                        .redirectOutput(out.toFile())
                        .redirectError(err.toFile())
                        .start();
                if (!process.waitFor(120, TimeUnit.SECONDS)) {
                    process.destroyForcibly().waitFor();
                    throw new IllegalStateException("stevedore-agent import did not finish in 120s");
                }
                return new Result(process.exitValue(), Files.readString(out), Files.readString(err));
            } finally {
                Files.deleteIfExists(out);
                Files.deleteIfExists(err);
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    public boolean isAlive() {
        return process.isAlive();
    }

    /** SIGKILL, as the OOM killer or a power cut would: no shutdown hook runs. Waits until the process is gone. */
    public void kill() {
        process.destroyForcibly();
        awaitExit();
    }

    /** SIGTERM, then SIGKILL if it has not exited within 30s. */
    @Override
    public void close() {
        process.destroy();
        try {
            if (!process.waitFor(30, TimeUnit.SECONDS)) {
                kill();
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            kill();
        }
    }

    public String log() {
        try {
            return Files.readString(log, StandardCharsets.UTF_8);
        } catch (IOException e) {
            return "(no log: " + e.getMessage() + ")";
        }
    }

    private void awaitExit() {
        try {
            process.waitFor();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    /** The runtime class path of this module, as maven-dependency-plugin copies it at package. */
    private static List<String> java(List<String> jvmOptions, String... args) {
        Path module = Path.of("").toAbsolutePath();
        Path classes = module.resolve("target/classes");
        Path lib = module.resolve("target/lib");
        if (!Files.isDirectory(classes) || !Files.isDirectory(lib)) {
            throw new IllegalStateException(classes + " or " + lib + " is missing: run mvn package first");
        }
        List<String> command = new ArrayList<>(
                List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString()));
        command.addAll(jvmOptions);
        command.addAll(List.of("-cp", classes + ":" + lib + "/*"));
        command.addAll(List.of(args));
        return command;
    }
}
