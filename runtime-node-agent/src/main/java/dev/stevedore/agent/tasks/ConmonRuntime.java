package dev.stevedore.agent.tasks;

import java.io.File;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.stevedore.agent.fs.PosixFiles;

/**
 * An OCI runtime (runc or crun, see {@link Runtimes}) driven the way CRI-O does: conmon runs {@code <runtime> create} and stays as the
 * task's monitor (log, exit file), the agent runs start, pause, resume, kill, delete and state itself.
 *
 * <p>conmon takes its sync and start pipes as inherited fds 3 and 4, which Java cannot pass to a child. So the
 * agent makes two FIFOs, opens both read-write itself (never blocks, and keeps them alive), puts the start byte
 * into the start FIFO, and runs conmon through {@code sh -c 'exec 3>SYNC 4<START; exec conmon ...'}; it then reads
 * {@code {"data": PID}} (or {@code {"data": -1, "message": ...}}) from the sync FIFO, with a timeout.
 */
public final class ConmonRuntime {
    public static final Path CONMON = Path.of("/usr/bin/conmon");
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Pattern RUNC_MSG = Pattern.compile("msg=\"((?:[^\"\\\\]|\\\\.)*)\"");
    private static final ExecutorService READERS = Executors.newCachedThreadPool(r -> {
        Thread t = new Thread(r, "conmon-sync-reader");
        t.setDaemon(true);
        return t;
    });

    private final String name;
    private final Path binary;

    public ConmonRuntime(String name, Path binary) {
        this.name = name;
        this.binary = binary;
    }

    public String name() {
        return name;
    }

    /** The executable every call runs (and conmon's {@code -r}): the runtime itself or its wrapper. */
    public Path binary() {
        return binary;
    }

    /** The runtime refused or failed; the message is the runtime's own. */
    public static final class RuntimeException extends Exception {
        private static final long serialVersionUID = 1L;

        public RuntimeException(String message) {
            super(message);
        }
    }

    /**
     * Runs conmon, which runs {@code create}; returns the container's pid once it is created (not started).
     * conmon's own pid is in {@code conmonPidFile}.
     */
    public long create(String id, Path bundle, Path workDir, Path exitDir, Path socketDir, Path persistDir, Path log,
            long logSizeMax) throws RuntimeException, IOException {
        Files.createDirectories(workDir);
        Files.createDirectories(persistDir);
        Path sync = workDir.resolve("sync.fifo");
        Path start = workDir.resolve("start.fifo");
        mkfifo(sync);
        mkfifo(start);
        List<String> command = new ArrayList<>(List.of("sh", "-c", "exec 3>\"$1\" 4<\"$2\"; shift 2; exec \"$@\"", "conmon-wrapper",
                sync.toString(), start.toString(), CONMON.toString(), "--api-version", "1", "-c", id, "-u", id, "-n", id,
                "-r", binary.toString(), "-b", bundle.toString(), "-p", workDir.resolve("ctr.pid").toString(),
                "-P", workDir.resolve("conmon.pid").toString(), "-l", "k8s-file:" + log, "--exit-dir", exitDir.toString(),
                "--socket-dir-path", socketDir.toString(), "-0", persistDir.toString(), "--log-level", "error"));
        if (logSizeMax > 0) {
            command.addAll(List.of("--log-size-max", Long.toString(logSizeMax)));
        }
        try (RandomAccessFile syncFifo = new RandomAccessFile(sync.toFile(), "rw");
             RandomAccessFile startFifo = new RandomAccessFile(start.toFile(), "rw")) {
            startFifo.write('s');
            // conmon writes its "oom" marker into its working directory: the task's persist directory.
            ProcessBuilder builder = new ProcessBuilder(command).directory(persistDir.toFile())
                    .redirectInput(new File("/dev/null"))
                    .redirectOutput(ProcessBuilder.Redirect.appendTo(workDir.resolve("conmon.out").toFile()))
                    .redirectErrorStream(true);
            builder.environment().putAll(Map.of("_OCI_SYNCPIPE", "3", "_OCI_STARTPIPE", "4"));
            Process process = builder.start();
            Future<String> reply = READERS.submit(() -> readLine(syncFifo));
            String line;
            try {
                line = awaitReply(process, reply, syncFifo);
            } finally {
                process.waitFor(10, TimeUnit.SECONDS);
            }
            JsonNode json = JSON.readTree(line);
            long pid = json.path("data").asLong(-1);
            if (pid <= 0) {
                throw new RuntimeException(runtimeMessage(json.path("message").asText("conmon failed to create the container")));
            }
            return pid;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted while creating " + id, e);
        } finally {
            Files.deleteIfExists(sync);
            Files.deleteIfExists(start);
        }
    }

    private static String awaitReply(Process process, Future<String> reply, RandomAccessFile syncFifo)
            throws InterruptedException, IOException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (true) {
            try {
                return reply.get(200, TimeUnit.MILLISECONDS);
            } catch (TimeoutException e) {
                boolean wrapperFailed = !process.isAlive() && process.exitValue() != 0;
                if (wrapperFailed || System.nanoTime() > deadline) {
                    // Wake the reader: nobody else will write (we hold a write end, so it never sees EOF).
                    String why = wrapperFailed ? "conmon exited with status " + process.exitValue() : "timed out waiting for conmon";
                    syncFifo.write(("{\"data\": -2, \"message\": " + JSON.writeValueAsString(why) + "}\n").getBytes(StandardCharsets.UTF_8));
                }
            } catch (ExecutionException e) {
                throw new IOException("reading conmon's sync pipe", e.getCause());
            }
        }
    }

    private static String readLine(RandomAccessFile fifo) throws IOException {
        StringBuilder line = new StringBuilder();
        byte[] buf = new byte[1];
        java.io.ByteArrayOutputStream bytes = new java.io.ByteArrayOutputStream();
        while (fifo.read(buf) == 1) {
            if (buf[0] == '\n' && bytes.size() > 0) {
                break;
            }
            bytes.write(buf[0]);
        }
        line.append(bytes.toString(StandardCharsets.UTF_8));
        return line.toString();
    }

    /** runc logs as {@code time=... level=error msg="..."}: keep the msg. */
    static String runtimeMessage(String raw) {
        Matcher m = RUNC_MSG.matcher(raw);
        String last = null;
        while (m.find()) {
            last = m.group(1).replace("\\\"", "\"").replace("\\\\", "\\");
        }
        return (last != null ? last : raw).strip();
    }

    public void start(String id) throws RuntimeException, IOException {
        run("start", id);
    }

    public void pause(String id) throws RuntimeException, IOException {
        run("pause", id);
    }

    public void resume(String id) throws RuntimeException, IOException {
        run("resume", id);
    }

    /** Sends a signal by number to the task's init process. */
    public void kill(String id, int signal) throws RuntimeException, IOException {
        run("kill", id, Integer.toString(signal));
    }

    /** Removes the runtime's state and cgroup; {@code force} kills a live container first. Idempotent. */
    public void delete(String id, boolean force) throws RuntimeException, IOException {
        try {
            if (force) {
                run("delete", "--force", id);
            } else {
                run("delete", id);
            }
        } catch (RuntimeException e) {
            // Asking first would cost every delete a second exec of the runtime; only a failure needs the answer.
            if (state(id).isPresent()) {
                throw e;
            }
        }
    }

    /** The runtime's status of the container (created, running, paused, stopped), empty when it has none. */
    public Optional<String> state(String id) throws IOException {
        Result r = exec(List.of(binary.toString(), "state", id));
        if (r.code != 0) {
            return Optional.empty();
        }
        return Optional.of(JSON.readTree(r.out).path("status").asText());
    }

    /** IDs of every container this runtime knows, with their bundles. */
    public Map<String, String> list() throws IOException {
        Result r = exec(List.of(binary.toString(), "list", "--format", "json"));
        Map<String, String> ids = new java.util.LinkedHashMap<>();
        if (r.code == 0 && !r.out.isBlank() && !r.out.strip().equals("null")) {
            for (JsonNode c : JSON.readTree(r.out)) {
                ids.put(c.path("id").asText(), c.path("bundle").asText());
            }
        }
        return ids;
    }

    private void run(String... args) throws RuntimeException, IOException {
        List<String> command = new ArrayList<>(List.of(binary.toString()));
        command.addAll(List.of(args));
        Result r = exec(command);
        if (r.code != 0) {
            throw new RuntimeException(name + " " + args[0] + ": " + runtimeMessage(r.err.isBlank() ? r.out : r.err));
        }
    }

    record Result(int code, String out, String err) {
    }

    static Result exec(List<String> command) throws IOException {
        Path err = Files.createTempFile("stevedore-runtime", ".err");
        try {
            Process p = new ProcessBuilder(command).redirectInput(new File("/dev/null"))
                    .redirectError(err.toFile()).start();
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            if (!p.waitFor(60, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                throw new IOException("timed out: " + command);
            }
            return new Result(p.exitValue(), out, Files.readString(err));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted: " + command, e);
        } finally {
            Files.deleteIfExists(err);
        }
    }

    private static void mkfifo(Path path) throws IOException {
        Files.deleteIfExists(path);
        PosixFiles.mkfifo(path, 0600);
    }
}
