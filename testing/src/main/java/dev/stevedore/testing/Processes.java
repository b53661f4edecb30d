package dev.stevedore.testing;

import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.TimeUnit;

/**
 * Child processes of the tests and benchmarks. Commands whose timeout applies: their output (stdout, and stderr
 * unless the caller redirects it) goes to a file, so waiting for the exit never sits behind a blocking read of a pipe
 * the child keeps open. Daemons they start and must not leave behind: {@link #stop}.
 */
public final class Processes {
    private Processes() {}

    /** SIGTERM, so the process can shut down cleanly; SIGKILL if it has not within 10 s. */
    public static void stop(Process process) {
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

    /** How a process ended: its exit code and everything it printed. */
    public record Result(int exitCode, String output) {}

    /** Runs {@code builder}'s command with no input and returns once it exits, or fails after {@code timeout}. */
    public static Result run(ProcessBuilder builder, Duration timeout) {
        return start(builder, null).await(timeout);
    }

    /** As {@link #run(ProcessBuilder, Duration)}, with {@code input} on the process's stdin. */
    public static Result run(ProcessBuilder builder, String input, Duration timeout) {
        return start(builder, input).await(timeout);
    }

    /** Starts the command with {@code input} (null: none) on its stdin; {@link Running#await} collects the end. */
    public static Running start(ProcessBuilder builder, String input) {
        try {
            Path output = Files.createTempFile("stevedore-process-", ".out");
            if (builder.redirectError() == ProcessBuilder.Redirect.PIPE) {
                builder.redirectErrorStream(true); // unless the caller sent stderr elsewhere
            }
            Process process = builder.redirectOutput(output.toFile()).start();
            try (OutputStream stdin = process.getOutputStream()) {
                if (input != null) {
                    stdin.write(input.getBytes(StandardCharsets.UTF_8));
                }
            }
            return new Running(String.join(" ", builder.command()), process, output);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot start " + builder.command(), e);
        }
    }

    /** A started process and the file its output goes to. */
    public static final class Running {
        private final String command;
        private final Process process;
        private final Path output;

        private Running(String command, Process process, Path output) {
            this.command = command;
            this.process = process;
            this.output = output;
        }

        public Process process() {
            return process;
        }

        /** Waits for the exit; a process still running after {@code timeout} is killed and the caller fails. */
        public Result await(Duration timeout) {
            try {
                boolean exited = process.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS);
                if (!exited) {
                    process.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
                    throw new AssertionError(
                            "`" + command + "` did not exit within " + timeout + "; its output:\n" + readOutput());
                }
                return new Result(process.exitValue(), readOutput());
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                process.destroyForcibly();
                throw new IllegalStateException("interrupted while waiting for `" + command + "`", e);
            } finally {
                if (!process.isAlive()) {
                    output.toFile().delete();
                }
            }
        }

        private String readOutput() {
            try {
                return new String(Files.readAllBytes(output), StandardCharsets.UTF_8);
            } catch (IOException e) {
                return "(output unreadable: " + e + ")";
            }
        }
    }
}
