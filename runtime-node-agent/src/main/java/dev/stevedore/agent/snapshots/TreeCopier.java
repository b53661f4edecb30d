package dev.stevedore.agent.snapshots;

import dev.stevedore.agent.fs.LibC;
import dev.stevedore.agent.fs.PosixFiles;
import java.io.IOException;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.FileTime;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Copies a snapshot's tree for the native snapshotter, keeping what a root filesystem needs: numeric owners,
 * all mode bits, mtimes, symlinks as symlinks, hardlinks as hardlinks, devices and fifos, and xattrs (incl.
 * trusted.* and security.capability). The source is a committed snapshot, which nothing writes to.
 */
final class TreeCopier {
    private static final int S_IFMT = 0170000;

    private TreeCopier() {}

    /** Copies {@code source} to {@code target}, which must not exist. */
    static void copy(Path source, Path target) throws IOException {
        Map<List<Long>, Path> copiedInodes = new HashMap<>();
        Files.walkFileTree(source, new SimpleFileVisitor<>() {
            @Override
            public FileVisitResult preVisitDirectory(Path dir, BasicFileAttributes attrs) throws IOException {
                Files.createDirectory(target.resolve(source.relativize(dir)));
                return FileVisitResult.CONTINUE;
            }

            @Override
            public FileVisitResult visitFile(Path file, BasicFileAttributes attrs) throws IOException {
                copyNonDirectory(file, target.resolve(source.relativize(file)), copiedInodes);
                return FileVisitResult.CONTINUE;
            }

            @Override
            public FileVisitResult postVisitDirectory(Path dir, IOException failure) throws IOException {
                if (failure != null) {
                    throw failure;
                }
                // After the children: creating them changed the directory's mtime.
                copyMetadata(dir, target.resolve(source.relativize(dir)), unixAttributes(dir));
                return FileVisitResult.CONTINUE;
            }
        });
    }

    private static void copyNonDirectory(Path from, Path to, Map<List<Long>, Path> copiedInodes) throws IOException {
        Map<String, Object> attrs = unixAttributes(from);
        if ((int) attrs.get("nlink") > 1) {
            Path first = copiedInodes.putIfAbsent(List.of((long) attrs.get("dev"), (long) attrs.get("ino")), to);
            if (first != null) {
                Files.createLink(to, first);
                return;
            }
        }
        int mode = (int) attrs.get("mode");
        switch (mode & S_IFMT) {
            case 0100000 -> Files.copy(from, to, LinkOption.NOFOLLOW_LINKS);
            case 0120000 -> Files.createSymbolicLink(to, Files.readSymbolicLink(from));
            case LibC.S_IFCHR, LibC.S_IFBLK, LibC.S_IFIFO ->
                PosixFiles.mknod(to, mode & S_IFMT, mode, (long) attrs.get("rdev"));
            default -> {
                return; // sockets: a live endpoint of some process, not part of an image
            }
        }
        copyMetadata(from, to, attrs);
    }

    private static void copyMetadata(Path from, Path to, Map<String, Object> attrs) throws IOException {
        int mode = (int) attrs.get("mode");
        PosixFiles.setMetadata(
                to,
                (mode & S_IFMT) == 0120000,
                (int) attrs.get("uid"),
                (int) attrs.get("gid"),
                mode,
                PosixFiles.xattrs(from),
                (FileTime) attrs.get("lastModifiedTime"));
    }

    private static Map<String, Object> unixAttributes(Path path) throws IOException {
        return Files.readAttributes(
                path, "unix:mode,uid,gid,ino,dev,rdev,nlink,lastModifiedTime", LinkOption.NOFOLLOW_LINKS);
    }
}
