package dev.stevedore.agent.tasks;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import java.util.UUID;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A process started in a running task, as {@code ctr tasks exec} and kubelet's exec start one: the task's own
 * process spec (user, capabilities, environment, working directory, security profiles, its namespaces and cgroup)
 * with other arguments, and a terminal if asked for. Ended when its caller goes: the process (by the pid the runtime
 * wrote) is killed, not left running in the task.
 */
public final class TaskExec implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(TaskExec.class);
    private static final ObjectMapper JSON = new ObjectMapper();

    private final OciRuntime runtime;
    private final Process process;
    private final Path processSpec;
    private final Path pidFile;

    private TaskExec(OciRuntime runtime, Process process, Path processSpec, Path pidFile) {
        this.runtime = runtime;
        this.process = process;
        this.processSpec = processSpec;
        this.pidFile = pidFile;
    }

    /** Starts {@code command} in the task of {@code rec}, which must be running. */
    static TaskExec start(TaskRecords records, OciRuntime runtime, TaskRecord rec, List<String> command, boolean tty)
            throws IOException {
        if (command.isEmpty()) {
            throw new IllegalArgumentException("no command to run");
        }
        Path dir = records.taskDir(rec.uid());
        String name = "exec-" + UUID.randomUUID();
        Path spec = dir.resolve(name + ".json");
        Path pidFile = dir.resolve(name + ".pid");
        ObjectNode process = (ObjectNode)
                JSON.readTree(records.bundle(rec.uid()).resolve("config.json").toFile())
                        .path("process")
                        .deepCopy();
        ArrayNode args = process.putArray("args");
        command.forEach(args::add);
        process.put("terminal", tty);
        if (tty) {
            ArrayNode env = process.withArray("env");
            boolean hasTerm = false;
            for (var e : env) {
                hasTerm |= e.asText().startsWith("TERM=");
            }
            if (!hasTerm) {
                env.add("TERM=xterm"); // as CRI-O gives an exec with a terminal
            }
        }
        Files.write(spec, JSON.writeValueAsBytes(process));
        try {
            return new TaskExec(runtime, runtime.exec(rec.runtimeId(), spec, pidFile, tty), spec, pidFile);
        } catch (IOException | RuntimeException e) {
            Files.deleteIfExists(spec);
            throw e;
        }
    }

    /** The runtime's exec in the foreground: its stdin, stdout and stderr are the process's. */
    public Process process() {
        return process;
    }

    public void resize(int columns, int rows) throws IOException {
        runtime.resizeTerminal(process, columns, rows);
    }

    /**
     * Kills the process in the task if it still runs (its caller went away), and the runtime's exec with it;
     * removes the process spec. Idempotent.
     */
    @Override
    public void close() {
        if (process.isAlive()) {
            pid().flatMap(ProcessHandle::of).ifPresent(ProcessHandle::destroyForcibly);
            process.descendants().forEach(ProcessHandle::destroyForcibly);
            process.destroyForcibly();
        }
        try {
            Files.deleteIfExists(processSpec);
            Files.deleteIfExists(pidFile);
        } catch (IOException e) {
            LOG.debug("removing {}: {}", processSpec, e.toString());
        }
    }

    private Optional<Long> pid() {
        try {
            return Optional.of(Long.parseLong(Files.readString(pidFile).strip()));
        } catch (IOException | NumberFormatException e) {
            return Optional.empty();
        }
    }
}
