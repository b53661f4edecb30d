package dev.stevedore.agent.network;

import com.sun.jna.LastErrorException;
import com.sun.jna.Library;
import com.sun.jna.Native;
import dev.stevedore.agent.fs.MountTable;
import dev.stevedore.agent.fs.PosixFiles;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.atomic.AtomicReference;

/**
 * Network namespaces that outlive their first process, as {@code ip netns add} makes them: a thread of its own
 * unshares its network namespace and bind-mounts it onto a file, then ends; the mount keeps the namespace until
 * {@link #remove}. Only that thread ever enters the new namespace (unshare(2) of CLONE_NEWNET changes the calling
 * thread alone), and it is never reused: nothing else of the agent runs in a task's network.
 */
final class NetworkNamespaces {
    private static final int CLONE_NEWNET = 0x40000000;

    private interface Lib extends Library {
        Lib INSTANCE = Native.load("c", Lib.class);

        int unshare(int flags) throws LastErrorException;

        int gettid();
    }

    private NetworkNamespaces() {}

    /** A new network namespace (loopback only, down) bound at {@code file}, which must not exist. */
    static void create(Path file) throws IOException {
        Files.createDirectories(file.getParent());
        Files.createFile(file);
        AtomicReference<IOException> failure = new AtomicReference<>();
        Thread thread = new Thread(
                () -> {
                    try {
                        Lib.INSTANCE.unshare(CLONE_NEWNET);
                        String own = "/proc/self/task/" + Lib.INSTANCE.gettid() + "/ns/net";
                        PosixFiles.mount(own, file, "bind", List.of());
                    } catch (LastErrorException e) {
                        failure.set(new IOException("unshare(CLONE_NEWNET): errno " + e.getErrorCode(), e));
                    } catch (IOException e) {
                        failure.set(e);
                    }
                },
                "netns-" + file.getFileName());
        thread.start();
        try {
            thread.join();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted creating the network namespace " + file, e);
        }
        if (failure.get() != null) {
            Files.deleteIfExists(file);
            throw failure.get();
        }
    }

    /** Whether {@code file} holds a namespace (a file left by a crash before its mount does not). */
    static boolean exists(Path file) throws IOException {
        return Files.exists(file) && MountTable.isMountPoint(file);
    }

    /** Unmounts and removes {@code file}; the namespace goes with its last process. Idempotent. */
    static void remove(Path file) throws IOException {
        if (exists(file)) {
            PosixFiles.unmount(file, true);
        }
        Files.deleteIfExists(file);
    }
}
