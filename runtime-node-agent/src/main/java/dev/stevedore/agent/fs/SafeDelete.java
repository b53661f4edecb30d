package dev.stevedore.agent.fs;

import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.SecureDirectoryStream;
import java.nio.file.attribute.BasicFileAttributeView;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;
import java.util.Objects;

/**
 * The agent's one recursive delete, and one that cannot be turned into deleting host files. What it deletes may
 * hold what a container or an image wrote, and a container may still be writing into it (swapping a directory for
 * a symlink mid-walk, which {@code Files.walk} would then descend through); so every step is relative to an open
 * directory descriptor (openat/unlinkat through {@link SecureDirectoryStream}) and opens with O_NOFOLLOW. A symlink
 * is deleted, never followed.
 *
 * <p>The walk is iterative and holds two descriptors at most, whatever the depth: a container can nest directories
 * deeper than any thread stack or descriptor limit, and a delete that fails on its upper directory would fail at
 * every start of the agent. It goes down by name and back up by {@code ..}, checking that {@code ..} is the directory
 * it came from (a directory moved away mid-walk ends the delete with an error instead of deleting elsewhere).
 */
public final class SafeDelete {
    private SafeDelete() {}

    /** Deletes a file, symlink (not its target) or directory tree; no-op if absent. */
    public static void deleteTree(Path path) throws IOException {
        Path parent = path.toAbsolutePath().getParent();
        Path name = path.getFileName();
        if (parent == null || name == null) {
            throw new IOException("refusing to delete " + path);
        }
        try (DirectoryStream<Path> stream = Files.newDirectoryStream(parent)) {
            SecureDirectoryStream<Path> dir = secure(stream, parent);
            BasicFileAttributes attrs = lstat(dir, name);
            if (attrs == null) {
                return;
            }
            if (!attrs.isDirectory()) {
                deleteFile(dir, name);
                return;
            }
            SecureDirectoryStream<Path> top;
            try {
                top = dir.newDirectoryStream(name, LinkOption.NOFOLLOW_LINKS);
            } catch (NoSuchFileException e) {
                return;
            }
            emptyDirectory(top, path);
            try {
                dir.deleteDirectory(name);
            } catch (NoSuchFileException e) {
                // deleted meanwhile
            }
        } catch (NoSuchFileException e) {
            // already gone: deleting is idempotent
        }
    }

    /** Deletes everything inside a directory, keeping the directory. */
    public static void deleteContents(Path dir) throws IOException {
        DirectoryStream<Path> stream = Files.newDirectoryStream(dir);
        try {
            emptyDirectory(secure(stream, dir), dir);
        } catch (IOException | RuntimeException e) {
            stream.close();
            throw e;
        }
    }

    /** A directory being emptied: its identity, to check {@code ..} against, and its subdirectories still to empty. */
    private record Level(Object key, Path name, Deque<Path> subdirectories) {}

    /** Empties the directory {@code top} is open on, and closes {@code top} (or the directory the walk ends in). */
    private static void emptyDirectory(SecureDirectoryStream<Path> top, Path where) throws IOException {
        SecureDirectoryStream<Path> current = top;
        try {
            Deque<Level> levels = new ArrayDeque<>();
            levels.push(new Level(key(current), null, listAndDeleteFiles(current)));
            while (true) {
                Level level = levels.peek();
                Path next = level.subdirectories().poll();
                if (next != null) {
                    SecureDirectoryStream<Path> child;
                    try {
                        child = current.newDirectoryStream(next, LinkOption.NOFOLLOW_LINKS);
                    } catch (NoSuchFileException gone) {
                        continue;
                    }
                    current.close();
                    current = child;
                    levels.push(new Level(key(current), next, listAndDeleteFiles(current)));
                    continue;
                }
                if (levels.size() == 1) {
                    return;
                }
                levels.pop();
                SecureDirectoryStream<Path> parent =
                        current.newDirectoryStream(Path.of(".."), LinkOption.NOFOLLOW_LINKS);
                current.close();
                current = parent;
                if (!Objects.equals(key(current), levels.peek().key())) {
                    throw new IOException("a directory under " + where + " was moved while it was being deleted");
                }
                try {
                    current.deleteDirectory(level.name());
                } catch (NoSuchFileException e) {
                    // deleted meanwhile
                }
            }
        } finally {
            current.close();
        }
    }

    /** Deletes the directory's non-directories; returns the names of its subdirectories. */
    private static Deque<Path> listAndDeleteFiles(SecureDirectoryStream<Path> dir) throws IOException {
        List<Path> names = new ArrayList<>();
        for (Path child : dir) {
            names.add(child.getFileName());
        }
        Deque<Path> subdirectories = new ArrayDeque<>();
        for (Path name : names) {
            BasicFileAttributes attrs = lstat(dir, name);
            if (attrs == null) {
                continue;
            }
            if (attrs.isDirectory()) {
                subdirectories.add(name);
            } else {
                deleteFile(dir, name);
            }
        }
        return subdirectories;
    }

    private static BasicFileAttributes lstat(SecureDirectoryStream<Path> dir, Path name) throws IOException {
        try {
            return dir.getFileAttributeView(name, BasicFileAttributeView.class, LinkOption.NOFOLLOW_LINKS)
                    .readAttributes();
        } catch (NoSuchFileException e) {
            return null;
        }
    }

    private static void deleteFile(SecureDirectoryStream<Path> dir, Path name) throws IOException {
        try {
            dir.deleteFile(name);
        } catch (NoSuchFileException e) {
            // deleted meanwhile
        }
    }

    /** The device and inode of the directory a stream is open on. */
    private static Object key(SecureDirectoryStream<Path> dir) throws IOException {
        return dir.getFileAttributeView(BasicFileAttributeView.class)
                .readAttributes()
                .fileKey();
    }

    private static SecureDirectoryStream<Path> secure(DirectoryStream<Path> stream, Path dir) throws IOException {
        if (stream instanceof SecureDirectoryStream<Path> secure) {
            return secure;
        }
        throw new IOException("no secure directory stream (openat) for " + dir);
    }
}
