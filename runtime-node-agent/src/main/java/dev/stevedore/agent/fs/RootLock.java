package dev.stevedore.agent.fs;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Set;

/**
 * A lock between processes on one agent root, an fcntl lock on {@code <root>/gc.lock}: {@code stevedore-agent import}
 * holds it shared while it writes blobs and image records; the agent takes it exclusively to collect garbage and to
 * remove a crash's leftovers, so neither sweeps what an import is writing. The agent only ever tries, never waits: a
 * collection that finds an import running is skipped, and the next one does the work.
 *
 * <p>fcntl locks belong to the process: within one JVM a second lock on the file fails instead of waiting, so the
 * agent takes it only under its own garbage-collection write lock.
 */
public final class RootLock implements AutoCloseable {
    static final String FILE = "gc.lock";

    private final FileChannel channel;
    private final FileLock lock;

    private RootLock(FileChannel channel, FileLock lock) {
        this.channel = channel;
        this.lock = lock;
    }

    /** Waits for the shared lock: what an import holds while it writes. */
    public static RootLock shared(Path root) throws IOException {
        FileChannel channel = open(root);
        try {
            return new RootLock(channel, channel.lock(0, Long.MAX_VALUE, true));
        } catch (IOException | RuntimeException e) {
            channel.close();
            throw e;
        }
    }

    /** The exclusive lock if no other process holds the lock now, else null. */
    public static RootLock tryExclusive(Path root) throws IOException {
        FileChannel channel = open(root);
        try {
            FileLock lock;
            try {
                lock = channel.tryLock(0, Long.MAX_VALUE, false);
            } catch (OverlappingFileLockException heldInThisJvm) {
                lock = null;
            }
            if (lock == null) {
                channel.close();
                return null;
            }
            return new RootLock(channel, lock);
        } catch (IOException | RuntimeException e) {
            channel.close();
            throw e;
        }
    }

    @Override
    public void close() throws IOException {
        try {
            lock.release();
        } finally {
            channel.close();
        }
    }

    /** The owner's only: any user who could open it could hold a shared lock and so keep garbage collection off. */
    private static FileChannel open(Path root) throws IOException {
        Files.createDirectories(root);
        return FileChannel.open(
                root.resolve(FILE),
                Set.of(StandardOpenOption.CREATE, StandardOpenOption.READ, StandardOpenOption.WRITE),
                PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
    }
}
