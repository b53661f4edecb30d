package dev.stevedore.agent.tasks;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.stevedore.agent.fs.PosixFiles;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * An OCI runtime (runc or crun, see {@link Runtimes}) driven the way CRI-O does: conmon runs {@code <runtime> create} and stays as the
 * task's monitor (log, exit file), the agent runs start, pause, resume, kill, delete and state itself.
 *
 * <p>conmon takes its sync and start pipes as inherited fds 3 and 4, which ProcessBuilder cannot hand a child, so
 * conmon is started with {@link Spawn}. The agent makes two FIFOs and opens both read-write itself (never blocks, and
 * keeps them alive), and conmon gets them as fds 3 and 4. conmon waits for a byte on its start pipe before it does
 * anything, so the agent first moves it into its own cgroup ({@link ConmonCgroup}, out of the agent Pod's, as
 * CRI-O does with conmon_cgroup), then writes that byte, then reads {@code {"data": PID}} (or
 * {@code {"data": -1, "message": ...}}) from the sync FIFO, with a timeout.
 *
 * <p>conmon and the runtime get an environment of their own, PATH and the locale: nothing of the agent's
 * (credentials, proxies) reaches them or, through them, a task.
 */
public final class ConmonRuntime implements OciRuntime {
    public static final Path CONMON = Path.of("/usr/bin/conmon");
    /** util-linux's script: a pseudo-terminal for an exec with a terminal. */
    private static final String SCRIPT = "/usr/bin/script";
    /** coreutils' stty, by its full path: commands are spawned without a PATH search. */
    private static final String STTY = "/bin/stty";

    private static final Path DEV_NULL = Path.of("/dev/null");
    private static final Path ROOT = Path.of("/");
    private static final Duration TIMEOUT = Duration.ofSeconds(60);
    /**
     * The whole environment conmon and the runtime get. The locale is UTF-8 because in the plain C locale each
     * conmon is 450 KiB larger (2552 vs 2092 KiB RSS; glib's charset conversion).
     */
    private static final Map<String, String> ENV =
            Map.of("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG", "C.UTF-8");
    /** conmon's: the runtime's, and where its sync and start pipes are. */
    private static final Map<String, String> CONMON_ENV =
            Map.of("PATH", ENV.get("PATH"), "LANG", ENV.get("LANG"), "_OCI_SYNCPIPE", "3", "_OCI_STARTPIPE", "4");

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Pattern RUNC_MSG = Pattern.compile("msg=\"((?:[^\"\\\\]|\\\\.)*)\"");
    private static final ExecutorService READERS = Executors.newCachedThreadPool(r -> {
        Thread t = new Thread(r, "conmon-sync-reader");
        t.setDaemon(true);
        return t;
    });

    private final String name;
    private final Path binary;
    private final Path stateDir;
    private final ConmonCgroup conmonCgroup;

    /**
     * @param stateDir the runtime's {@code --root}, on every call
     * @param conmonCgroup where each conmon goes before it creates its container
     */
    public ConmonRuntime(String name, Path binary, Path stateDir, ConmonCgroup conmonCgroup) {
        this.name = name;
        this.binary = binary;
        this.stateDir = stateDir;
        this.conmonCgroup = conmonCgroup;
    }

    @Override
    public String name() {
        return name;
    }

    /** The executable every call runs (and conmon's {@code -r}): the runtime itself or its wrapper. */
    public Path binary() {
        return binary;
    }

    /**
     * Runs conmon, which runs {@code create}; returns the container's pid once it is created (not started).
     * conmon writes its own pid to {@code <workDir>/conmon.pid} and the container's to {@code <workDir>/ctr.pid}.
     */
    @Override
    public long create(
            String id,
            Path bundle,
            Path workDir,
            Path exitDir,
            Path socketDir,
            Path conmonDir,
            Path log,
            long logSizeMax)
            throws RuntimeCommandException, IOException {
        Files.createDirectories(workDir);
        Files.createDirectories(conmonDir);
        Path sync = workDir.resolve("sync.fifo");
        Path start = workDir.resolve("start.fifo");
        mkfifo(sync);
        mkfifo(start);
        List<String> command = new ArrayList<>(List.of(
                CONMON.toString(),
                "--api-version",
                "1",
                "-c",
                id,
                "-u",
                id,
                "-n",
                id,
                "-r",
                binary.toString(),
                "--runtime-arg=--root=" + stateDir,
                "-b",
                bundle.toString(),
                "-p",
                workDir.resolve("ctr.pid").toString(),
                "-P",
                workDir.resolve("conmon.pid").toString(),
                "-l",
                "k8s-file:" + log,
                "--exit-dir",
                exitDir.toString(),
                "--socket-dir-path",
                socketDir.toString(),
                "--log-level",
                "error"));
        if (logSizeMax > 0) {
            command.addAll(List.of("--log-size-max", Long.toString(logSizeMax)));
        }
        try (RandomAccessFile syncFifo = new RandomAccessFile(sync.toFile(), "rw");
                RandomAccessFile startFifo = new RandomAccessFile(start.toFile(), "rw")) {
            Path out = workDir.resolve("conmon.out");
            // conmon writes its "oom" marker into its working directory. No --persist-dir (-0): conmon writes the
            // exit code there first and, should that fail (a full disk), exits without writing the exit file.
            int conmon = Spawn.start(
                    command,
                    CONMON_ENV,
                    conmonDir,
                    List.of(
                            new Spawn.Fd.Read(DEV_NULL),
                            new Spawn.Fd.Write(out),
                            new Spawn.Fd.SameAs(1),
                            new Spawn.Fd.Write(sync),
                            new Spawn.Fd.Read(start)));
            // conmon reads the start byte before it forks anything, "so the parent can put us in the right cgroup":
            // what it forks (its monitor, the runtime's create) starts there.
            joinCgroupOrKill(conmon);
            startFifo.write('s');
            JsonNode json = JSON.readTree(awaitReply(conmon, syncFifo));
            long pid = json.path("data").asLong(-1);
            if (pid <= 0) {
                throw new RuntimeCommandException(
                        runtimeMessage(json.path("message").asText("conmon failed to create the container")));
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

    private void joinCgroupOrKill(int conmon) throws IOException {
        try {
            conmonCgroup.join(conmon);
        } catch (IOException e) {
            ProcessHandle.of(conmon).ifPresent(ProcessHandle::destroyForcibly);
            Spawn.waitFor(conmon);
            throw e;
        }
    }

    /**
     * conmon's reply from the sync FIFO. conmon's first process forks the monitor and exits at once (reaped here);
     * if it fails instead, or nothing comes in time, the reader is woken with a reply that says so.
     */
    private static String awaitReply(int conmon, RandomAccessFile syncFifo) throws InterruptedException, IOException {
        Future<String> reply = READERS.submit(() -> readLine(syncFifo));
        long deadline = System.nanoTime() + TIMEOUT.toNanos();
        OptionalInt exited = OptionalInt.empty();
        try {
            while (true) {
                try {
                    return reply.get(200, TimeUnit.MILLISECONDS);
                } catch (TimeoutException e) {
                    exited = exited.isPresent() ? exited : Spawn.exitStatus(conmon);
                    boolean failed = exited.isPresent() && exited.getAsInt() != 0;
                    boolean late = System.nanoTime() > deadline;
                    if (failed || late) {
                        if (late) {
                            ProcessHandle.of(conmon).ifPresent(ProcessHandle::destroyForcibly);
                        }
                        // Wake the reader: nobody else will write (we hold a write end, so it never sees EOF).
                        String why = failed
                                ? "conmon exited with status " + Spawn.exitCode(exited.getAsInt())
                                : "timed out waiting for conmon";
                        syncFifo.write(("{\"data\": -2, \"message\": " + JSON.writeValueAsString(why) + "}\n")
                                .getBytes(StandardCharsets.UTF_8));
                    }
                } catch (ExecutionException e) {
                    throw new IOException("reading conmon's sync pipe", e.getCause());
                }
            }
        } finally {
            if (exited.isEmpty()) {
                Spawn.waitFor(conmon);
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

    @Override
    public void start(String id) throws RuntimeCommandException, IOException {
        run("start", id);
    }

    @Override
    public void pause(String id) throws RuntimeCommandException, IOException {
        run("pause", id);
    }

    @Override
    public void resume(String id) throws RuntimeCommandException, IOException {
        run("resume", id);
    }

    @Override
    public void kill(String id, int signal) throws RuntimeCommandException, IOException {
        run("kill", id, Integer.toString(signal));
    }

    @Override
    public void delete(String id, boolean force) throws RuntimeCommandException, IOException {
        try {
            if (force) {
                run("delete", "--force", id);
            } else {
                run("delete", id);
            }
        } catch (RuntimeCommandException e) {
            // Asking first would cost every delete a second exec of the runtime; only a failure needs the answer.
            if (state(id).isPresent()) {
                throw e;
            }
        }
    }

    @Override
    public Optional<String> state(String id) throws IOException {
        Result r = exec(runtimeCommand("state", id));
        if (r.code != 0) {
            return Optional.empty();
        }
        return Optional.of(JSON.readTree(r.out).path("status").asText());
    }

    @Override
    public Map<String, String> list() throws IOException {
        Result r = exec(runtimeCommand("list", "--format", "json"));
        Map<String, String> ids = new LinkedHashMap<>();
        if (r.code == 0 && !r.out.isBlank() && !r.out.strip().equals("null")) {
            for (JsonNode c : JSON.readTree(r.out)) {
                ids.put(c.path("id").asText(), c.path("bundle").asText());
            }
        }
        return ids;
    }

    /**
     * {@code <runtime> exec --process P --pid-file F ID} in the foreground. With a terminal, under util-linux's
     * {@code script}: the runtime takes the terminal of its own stdin as the one it copies the container's console
     * to, and {@code script} gives it a pseudo-terminal for pipes, whose size {@link #resizeTerminal} sets.
     */
    @Override
    public Process exec(String id, Path process, Path pidFile, boolean terminal) throws IOException {
        List<String> command =
                runtimeCommand("exec", "--process", process.toString(), "--pid-file", pidFile.toString(), id);
        if (terminal) {
            // Paths and a UID-shaped id only: the user's command is in the process spec, never on this line.
            command = List.of(
                    SCRIPT,
                    "--quiet",
                    "--flush",
                    "--echo",
                    "never",
                    "--return",
                    "--command",
                    String.join(" ", command),
                    "/dev/null");
        }
        ProcessBuilder builder = new ProcessBuilder(command).directory(ROOT.toFile());
        builder.environment().clear();
        builder.environment().putAll(ENV);
        builder.environment().put("SHELL", "/bin/sh");
        return builder.start();
    }

    /**
     * {@code stty -F <pty> rows R cols C} on the pseudo-terminal {@code script} made: the terminal's size changes,
     * the runtime in its foreground gets SIGWINCH and passes the size on to the container's console.
     */
    @Override
    public void resizeTerminal(Process exec, int columns, int rows) throws IOException {
        // The first size comes as the exec starts: script may not have forked the runtime onto its terminal yet.
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
        Optional<Path> pty = terminalOf(exec);
        while (pty.isEmpty() && exec.isAlive() && System.nanoTime() < deadline) {
            try {
                Thread.sleep(20);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
            pty = terminalOf(exec);
        }
        if (pty.isPresent()) {
            Result r = exec(List.of(
                    STTY,
                    "-F",
                    pty.get().toString(),
                    "rows",
                    Integer.toString(rows),
                    "cols",
                    Integer.toString(columns)));
            if (r.code != 0) {
                throw new IOException("resizing " + pty.get() + ": " + r.err.strip());
            }
        }
    }

    /** The pseudo-terminal script made: the stdin of the processes it started. */
    private static Optional<Path> terminalOf(Process exec) {
        return exec.descendants()
                .map(p -> Path.of("/proc", Long.toString(p.pid()), "fd", "0"))
                .flatMap(fd -> {
                    try {
                        return java.util.stream.Stream.of(Files.readSymbolicLink(fd));
                    } catch (IOException e) {
                        return java.util.stream.Stream.empty();
                    }
                })
                .filter(p -> p.startsWith("/dev/pts/"))
                .findFirst();
    }

    private void run(String... args) throws RuntimeCommandException, IOException {
        Result r = exec(runtimeCommand(args));
        if (r.code != 0) {
            throw new RuntimeCommandException(
                    name + " " + args[0] + ": " + runtimeMessage(r.err.isBlank() ? r.out : r.err));
        }
    }

    /** {@code <binary> --root <state-dir> args...}: the runtime's global options go before its command. */
    List<String> runtimeCommand(String... args) {
        List<String> command = new ArrayList<>(List.of(binary.toString(), "--root", stateDir.toString()));
        command.addAll(List.of(args));
        return command;
    }

    record Result(int code, String out, String err) {}

    static Result exec(List<String> command) throws IOException {
        Path out = Files.createTempFile("stevedore-runtime", ".out");
        Path err = Files.createTempFile("stevedore-runtime", ".err");
        try {
            int pid = Spawn.start(
                    command,
                    ENV,
                    ROOT,
                    List.of(new Spawn.Fd.Read(DEV_NULL), new Spawn.Fd.Write(out), new Spawn.Fd.Write(err)));
            int status = Spawn.waitFor(pid, TIMEOUT);
            return new Result(Spawn.exitCode(status), Files.readString(out), Files.readString(err));
        } catch (TimeoutException e) {
            throw new IOException("timed out: " + command, e);
        } finally {
            Files.deleteIfExists(out);
            Files.deleteIfExists(err);
        }
    }

    private static void mkfifo(Path path) throws IOException {
        Files.deleteIfExists(path);
        PosixFiles.mkfifo(path, 0600);
    }
}
