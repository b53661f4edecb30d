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
import java.util.ArrayList;
import java.util.List;

/**
 * The agent's one recursive delete, and one that cannot be turned into deleting host files. What it deletes may
 * hold what a container or an image wrote, and a container may still be writing into it (swapping a directory for
 * a symlink mid-walk, which {@code Files.walk} would then descend through); so every step is relative to an open
 * directory descriptor (openat/unlinkat through {@link SecureDirectoryStream}) and opens with O_NOFOLLOW. A symlink
 * is deleted, never followed.
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
            deleteEntry(secure(stream, parent), name);
        } catch (NoSuchFileException e) {
            // already gone: deleting is idempotent
        }
    }

    /** Deletes everything inside a directory, keeping the directory. */
    public static void deleteContents(Path dir) throws IOException {
        try (DirectoryStream<Path> stream = Files.newDirectoryStream(dir)) {
            deleteChildren(secure(stream, dir));
        }
    }

    private static void deleteEntry(SecureDirectoryStream<Path> dir, Path name) throws IOException {
        BasicFileAttributes attrs;
        try {
            attrs = dir.getFileAttributeView(name, BasicFileAttributeView.class, LinkOption.NOFOLLOW_LINKS)
                    .readAttributes();
        } catch (NoSuchFileException e) {
            return;
        }
        if (attrs.isDirectory()) {
            try (SecureDirectoryStream<Path> child = dir.newDirectoryStream(name, LinkOption.NOFOLLOW_LINKS)) {
                deleteChildren(child);
            }
            dir.deleteDirectory(name);
        } else {
            dir.deleteFile(name);
        }
    }

    private static void deleteChildren(SecureDirectoryStream<Path> dir) throws IOException {
        List<Path> names = new ArrayList<>();
        for (Path child : dir) {
            names.add(child.getFileName());
        }
        for (Path name : names) {
            deleteEntry(dir, name);
        }
    }

    private static SecureDirectoryStream<Path> secure(DirectoryStream<Path> stream, Path dir) throws IOException {
        if (stream instanceof SecureDirectoryStream<Path> secure) {
            return secure;
        }
        throw new IOException("no secure directory stream (openat) for " + dir);
    }
}
