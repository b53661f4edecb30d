package dev.stevedore.agent.tasks;

import com.sun.jna.LastErrorException;
import com.sun.jna.Library;
import com.sun.jna.Memory;
import com.sun.jna.Native;
import com.sun.jna.Pointer;
import com.sun.jna.StringArray;
import dev.stevedore.agent.fs.PosixFiles;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.OptionalInt;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * Starts a program with posix_spawn(3), for what {@link ProcessBuilder} cannot do: hand the child file descriptors
 * beyond 0–2 (conmon takes its sync and start pipes as fds 3 and 4). The child gets exactly the fds the caller
 * names — every other one is closed, as ProcessBuilder does — a clean signal mask and dispositions, the given
 * environment only, and its own working directory. One clone and one exec: no helper process, no shell.
 *
 * <p>The caller owns the child: {@link #exitStatus} or {@link #waitFor} must reap it. Needs glibc 2.34 or later
 * (posix_spawn_file_actions_addclosefrom_np): Debian 12, Ubuntu 22.04, RHEL 9.
 */
final class Spawn {
    private static final int O_RDONLY = 0;
    private static final int O_WRONLY = 1;
    private static final int O_CREAT = 0100;
    private static final int O_APPEND = 02000;
    private static final short POSIX_SPAWN_SETSIGDEF = 0x04;
    private static final short POSIX_SPAWN_SETSIGMASK = 0x08;
    private static final int WNOHANG = 1;
    private static final int EINTR = 4;
    /** Larger than glibc's posix_spawn_file_actions_t (80 bytes), posix_spawnattr_t (336) and sigset_t (128). */
    private static final int OPAQUE_SIZE = 1024;

    private interface Lib extends Library {
        Lib INSTANCE = Native.load("c", Lib.class);

        int posix_spawn(
                int[] pid, byte[] path, Pointer fileActions, Pointer attributes, StringArray argv, StringArray envp);

        int posix_spawn_file_actions_init(Pointer fileActions);

        int posix_spawn_file_actions_destroy(Pointer fileActions);

        int posix_spawn_file_actions_addopen(Pointer fileActions, int fd, byte[] path, int flags, int mode);

        int posix_spawn_file_actions_adddup2(Pointer fileActions, int fd, int newFd);

        int posix_spawn_file_actions_addchdir_np(Pointer fileActions, byte[] path);

        int posix_spawn_file_actions_addclosefrom_np(Pointer fileActions, int from);

        int posix_spawnattr_init(Pointer attributes);

        int posix_spawnattr_destroy(Pointer attributes);

        int posix_spawnattr_setflags(Pointer attributes, short flags);

        int posix_spawnattr_setsigmask(Pointer attributes, Pointer set);

        int posix_spawnattr_setsigdefault(Pointer attributes, Pointer set);

        int sigemptyset(Pointer set);

        int sigfillset(Pointer set);

        int waitpid(int pid, int[] status, int options) throws LastErrorException;

        String strerror(int errno);
    }

    private Spawn() {}

    /** What the child's fds 0 and up are: a file opened for reading, or for writing (appending; created if missing), or the same as a lower fd. */
    sealed interface Fd {
        record Read(Path file) implements Fd {}

        record Write(Path file) implements Fd {}

        record SameAs(int fd) implements Fd {}
    }

    /** Starts {@code argv} with fds 0..n-1 set up as {@code fds} says; returns the child's pid. */
    static int start(List<String> argv, Map<String, String> env, Path workDir, List<Fd> fds) throws IOException {
        Lib lib = Lib.INSTANCE;
        Memory actions = new Memory(OPAQUE_SIZE);
        Memory attributes = new Memory(OPAQUE_SIZE);
        check("posix_spawn_file_actions_init", lib.posix_spawn_file_actions_init(actions));
        try {
            check("posix_spawnattr_init", lib.posix_spawnattr_init(attributes));
            try {
                addFileActions(actions, fds, workDir);
                resetSignals(attributes);
                List<String> envp = new ArrayList<>();
                env.forEach((k, v) -> envp.add(k + "=" + v));
                String charset = PosixFiles.PATH_CHARSET.name();
                int[] pid = new int[1];
                int rc = lib.posix_spawn(
                        pid,
                        PosixFiles.bytes(Path.of(argv.get(0))),
                        actions,
                        attributes,
                        new StringArray(argv.toArray(String[]::new), charset),
                        new StringArray(envp.toArray(String[]::new), charset));
                if (rc != 0) {
                    throw new IOException("cannot run " + argv.get(0) + ": " + strerror(rc));
                }
                return pid[0];
            } finally {
                lib.posix_spawnattr_destroy(attributes);
            }
        } finally {
            lib.posix_spawn_file_actions_destroy(actions);
        }
    }

    private static void addFileActions(Pointer actions, List<Fd> fds, Path workDir) throws IOException {
        Lib lib = Lib.INSTANCE;
        for (int fd = 0; fd < fds.size(); fd++) {
            Fd what = fds.get(fd);
            if (what instanceof Fd.Read r) {
                check(
                        "posix_spawn_file_actions_addopen",
                        lib.posix_spawn_file_actions_addopen(actions, fd, PosixFiles.bytes(r.file()), O_RDONLY, 0));
            } else if (what instanceof Fd.Write w) {
                check(
                        "posix_spawn_file_actions_addopen",
                        lib.posix_spawn_file_actions_addopen(
                                actions, fd, PosixFiles.bytes(w.file()), O_WRONLY | O_CREAT | O_APPEND, 0600));
            } else if (what instanceof Fd.SameAs same) {
                check("posix_spawn_file_actions_adddup2", lib.posix_spawn_file_actions_adddup2(actions, same.fd(), fd));
            }
        }
        check(
                "posix_spawn_file_actions_addclosefrom_np",
                lib.posix_spawn_file_actions_addclosefrom_np(actions, fds.size()));
        check(
                "posix_spawn_file_actions_addchdir_np",
                lib.posix_spawn_file_actions_addchdir_np(actions, PosixFiles.bytes(workDir)));
    }

    /** The calling JVM thread may block signals, and the JVM handles some: the child starts with none of that. */
    private static void resetSignals(Pointer attributes) throws IOException {
        Lib lib = Lib.INSTANCE;
        Memory signals = new Memory(OPAQUE_SIZE);
        lib.sigemptyset(signals);
        check("posix_spawnattr_setsigmask", lib.posix_spawnattr_setsigmask(attributes, signals));
        lib.sigfillset(signals);
        check("posix_spawnattr_setsigdefault", lib.posix_spawnattr_setsigdefault(attributes, signals));
        check("posix_spawnattr_setflags", lib.posix_spawnattr_setflags(attributes, (short)
                (POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK)));
    }

    /** The child's wait status if it has ended (reaping it), empty while it runs. */
    static OptionalInt exitStatus(int pid) throws IOException {
        return waitpid(pid, WNOHANG);
    }

    /** Waits for the child to end and reaps it; returns its wait status. */
    static int waitFor(int pid) throws IOException {
        return waitpid(pid, 0).orElseThrow();
    }

    /** Waits at most {@code timeout} for the child to end and reaps it; kills (and reaps) it when time is up. */
    static int waitFor(int pid, Duration timeout) throws IOException, TimeoutException {
        ProcessHandle child = ProcessHandle.of(pid).orElse(null);
        if (child != null) {
            try {
                child.onExit().get(timeout.toNanos(), TimeUnit.NANOSECONDS); // waits without reaping
            } catch (TimeoutException e) {
                child.destroyForcibly();
                waitFor(pid);
                throw e;
            } catch (ExecutionException e) {
                throw new IOException("waiting for " + pid, e.getCause());
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IOException("interrupted waiting for " + pid, e);
            }
        }
        return waitFor(pid);
    }

    /** The exit code for a normal exit, 128 + the signal for a child killed by one (as a shell reports it). */
    static int exitCode(int waitStatus) {
        int signal = waitStatus & 0x7f;
        return signal == 0 ? (waitStatus >> 8) & 0xff : 128 + signal;
    }

    private static OptionalInt waitpid(int pid, int options) throws IOException {
        int[] status = new int[1];
        while (true) {
            try {
                int got = Lib.INSTANCE.waitpid(pid, status, options);
                return got == 0 ? OptionalInt.empty() : OptionalInt.of(status[0]);
            } catch (LastErrorException e) {
                if (e.getErrorCode() != EINTR) {
                    throw new IOException("waitpid " + pid + ": " + e.getMessage(), e);
                }
            }
        }
    }

    /** posix_spawn and friends return the errno instead of setting it. */
    private static String strerror(int errno) {
        return Lib.INSTANCE.strerror(errno);
    }

    private static void check(String call, int rc) throws IOException {
        if (rc != 0) {
            throw new IOException(call + ": " + strerror(rc));
        }
    }
}
