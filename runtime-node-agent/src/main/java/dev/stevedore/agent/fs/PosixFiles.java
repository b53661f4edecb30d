package dev.stevedore.agent.fs;

import com.sun.jna.LastErrorException;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.Charset;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * File operations that need libc: device nodes and FIFOs, numeric lchown, mode bits incl. setuid/setgid/sticky,
 * symlink times, any xattr namespace (trusted.*), fsync of directories, mount and unmount without running mount(8).
 * None of them follows a symlink in the last component except {@link #chmod}, which callers never use on a symlink
 * (and mount, whose target is a directory the agent made).
 */
public final class PosixFiles {
    private static final Logger LOG = LoggerFactory.getLogger(PosixFiles.class);
    /** The charset the JDK encodes paths with, so both sides name the same bytes. */
    public static final Charset PATH_CHARSET = pathCharset();

    private PosixFiles() {}

    public static void mknod(Path path, int typeBits, int permissions, long rdev) throws IOException {
        try {
            LibC.INSTANCE.mknod(bytes(path), typeBits | (permissions & 07777), rdev);
        } catch (LastErrorException e) {
            throw failure("mknod", path, e);
        }
    }

    /** glibc's makedev(3). */
    public static long makedev(long major, long minor) {
        return ((major & 0xfffff000L) << 32)
                | ((major & 0xfffL) << 8)
                | ((minor & 0xffffff00L) << 12)
                | (minor & 0xffL);
    }

    /**
     * Creates a symlink whose target is exactly {@code target}, unnormalized (Path would drop a trailing /), in
     * UTF-8 as layers spell it, whatever the locale.
     */
    public static void symlink(String target, Path link) throws IOException {
        try {
            LibC.INSTANCE.symlink(cString(target), bytes(link));
        } catch (LastErrorException e) {
            throw failure("symlink", link, e);
        }
    }

    /**
     * Sets owner, then mode (chown clears setuid/setgid), then xattrs (chown clears security.capability), then
     * times ({@code mtime} null: left alone, e.g. for a directory whose children are still to come).
     */
    public static void setMetadata(
            Path path, boolean symlink, int uid, int gid, int mode, Map<String, byte[]> xattrs, FileTime mtime)
            throws IOException {
        lchown(path, uid, gid);
        if (!symlink) {
            chmod(path, mode);
        }
        for (Map.Entry<String, byte[]> xattr : xattrs.entrySet()) {
            if (!setXattr(path, xattr.getKey(), xattr.getValue())) {
                LOG.warn(
                        "xattr {} refused by the file system or for this file type, not set on {}",
                        xattr.getKey(),
                        path);
            }
        }
        if (mtime != null) {
            setTimes(path, mtime);
        }
    }

    public static void lchown(Path path, int uid, int gid) throws IOException {
        try {
            LibC.INSTANCE.lchown(bytes(path), uid, gid);
        } catch (LastErrorException e) {
            throw failure("lchown", path, e);
        }
    }

    /** Sets all 12 mode bits; Java's PosixFilePermission has no setuid, setgid or sticky. Never call on a symlink. */
    public static void chmod(Path path, int mode) throws IOException {
        try {
            LibC.INSTANCE.chmod(bytes(path), mode & 07777);
        } catch (LastErrorException e) {
            throw failure("chmod", path, e);
        }
    }

    /** Sets atime and mtime of the path itself, also of a symlink. */
    public static void setTimes(Path path, FileTime mtime) throws IOException {
        long nanos = mtime.to(TimeUnit.NANOSECONDS);
        long sec = Math.floorDiv(nanos, 1_000_000_000L);
        long nsec = Math.floorMod(nanos, 1_000_000_000L);
        try {
            LibC.INSTANCE.utimensat(
                    LibC.AT_FDCWD, bytes(path), new long[] {sec, nsec, sec, nsec}, LibC.AT_SYMLINK_NOFOLLOW);
        } catch (LastErrorException e) {
            throw failure("utimensat", path, e);
        }
    }

    /**
     * Returns false when the file system does not support the xattr (ENOTSUP) or the kernel refuses it for this
     * file type (EPERM: user.* on a symlink or device), which other runtimes tolerate too.
     */
    public static boolean setXattr(Path path, String name, byte[] value) throws IOException {
        try {
            LibC.INSTANCE.lsetxattr(bytes(path), cString(name), value, value.length, 0);
            return true;
        } catch (LastErrorException e) {
            if (e.getErrorCode() == LibC.ENOTSUP || e.getErrorCode() == LibC.EPERM) {
                return false;
            }
            throw failure("lsetxattr " + name, path, e);
        }
    }

    /** The value of one xattr of the path itself, or null if it has none of that name. */
    public static byte[] xattr(Path path, String name) throws IOException {
        byte[] p = bytes(path);
        byte[] n = cString(name);
        try {
            byte[] value = new byte[256];
            long len = LibC.INSTANCE.lgetxattr(p, n, value, value.length);
            return Arrays.copyOf(value, (int) len);
        } catch (LastErrorException e) {
            if (e.getErrorCode() == LibC.ENODATA || e.getErrorCode() == LibC.ENOTSUP) {
                return null;
            }
            if (e.getErrorCode() == LibC.ERANGE) {
                return xattrs(path).get(name); // over 256 bytes: rare enough to ask twice
            }
            throw failure("lgetxattr " + name, path, e);
        }
    }

    public static Map<String, byte[]> xattrs(Path path) throws IOException {
        byte[] p = bytes(path);
        try {
            long size = LibC.INSTANCE.llistxattr(p, null, 0);
            Map<String, byte[]> xattrs = new LinkedHashMap<>();
            if (size <= 0) {
                return xattrs;
            }
            byte[] list = new byte[(int) size];
            size = LibC.INSTANCE.llistxattr(p, list, list.length);
            int start = 0;
            for (int i = 0; i < size; i++) {
                if (list[i] == 0) {
                    String name = new String(list, start, i - start, StandardCharsets.UTF_8);
                    byte[] n = Arrays.copyOfRange(list, start, i + 1);
                    long len = LibC.INSTANCE.lgetxattr(p, n, null, 0);
                    byte[] value = new byte[(int) len];
                    len = LibC.INSTANCE.lgetxattr(p, n, value, value.length);
                    xattrs.put(name, Arrays.copyOf(value, (int) len));
                    start = i + 1;
                }
            }
            return xattrs;
        } catch (LastErrorException e) {
            if (e.getErrorCode() == LibC.ENOTSUP) {
                return Map.of();
            }
            throw failure("listing xattrs of", path, e);
        }
    }

    /** The identity and allocated size of a file, not following a symlink. */
    public record Stat(long dev, long ino, long bytesOnDisk) {}

    /**
     * lstat(2). st_dev, st_ino and st_blocks sit at offsets 0, 8 and 64 of struct stat on both x86_64 and
     * aarch64 (checked against glibc's headers); other architectures are not supported by the agent.
     */
    public static Stat lstat(Path path) throws IOException {
        byte[] buf = new byte[256];
        try {
            LibC.INSTANCE.lstat(bytes(path), buf);
        } catch (LastErrorException e) {
            throw failure("lstat", path, e);
        }
        ByteBuffer b = ByteBuffer.wrap(buf).order(ByteOrder.nativeOrder());
        return new Stat(b.getLong(0), b.getLong(8), b.getLong(64) * 512);
    }

    /**
     * An O_PATH descriptor of {@code relative} beneath the directory {@code dir}, resolved by openat2(2) with
     * RESOLVE_BENEATH and RESOLVE_NO_SYMLINKS: no component of {@code relative} may be a symlink or lead out of
     * {@code dir}, whatever was swapped in since it was last checked. {@code dir} itself is resolved as usual. An
     * empty {@code relative} opens {@code dir}. The caller closes the descriptor ({@link #close}).
     *
     * @throws SymlinkInPathException if a component is a symlink or the path leads out of {@code dir}
     */
    public static int openBeneath(Path dir, Path relative) throws IOException {
        int dirFd;
        try {
            dirFd = LibC.INSTANCE.open(bytes(dir), LibC.O_PATH | LibC.O_DIRECTORY | LibC.O_CLOEXEC);
        } catch (LastErrorException e) {
            throw failure("open", dir, e);
        }
        if (relative.toString().isEmpty()) {
            return dirFd;
        }
        try {
            long[] how = {
                LibC.O_PATH | LibC.O_CLOEXEC,
                0,
                LibC.RESOLVE_BENEATH | LibC.RESOLVE_NO_SYMLINKS | LibC.RESOLVE_NO_MAGICLINKS
            };
            return (int) LibC.INSTANCE.syscall(LibC.SYS_OPENAT2, dirFd, bytes(relative), how, 3L * Long.BYTES);
        } catch (LastErrorException e) {
            if (e.getErrorCode() == LibC.ELOOP) {
                throw new SymlinkInPathException(dir.resolve(relative) + " has a symbolic link in it");
            }
            if (e.getErrorCode() == LibC.EXDEV) {
                throw new SymlinkInPathException(dir.resolve(relative) + " leads out of " + dir);
            }
            throw failure("openat2 beneath " + dir + ":", relative, e);
        } finally {
            LibC.INSTANCE.close(dirFd);
        }
    }

    /** A path with a symlink in it where none may be, or one that leads out of where it must stay. */
    public static final class SymlinkInPathException extends IOException {
        private static final long serialVersionUID = 1L;

        SymlinkInPathException(String message) {
            super(message);
        }
    }

    public static void close(int fd) {
        LibC.INSTANCE.close(fd);
    }

    /** fsync(2) of a regular file or directory, without following a symlink. */
    public static void fsync(Path path) throws IOException {
        withFd(path, "fsync", fd -> LibC.INSTANCE.fsync(fd));
    }

    public static void mkfifo(Path path, int permissions) throws IOException {
        mknod(path, LibC.S_IFIFO, permissions, 0);
    }

    /**
     * mount(2), reading type and {@code options} as mount(8) does: type "bind" is a bind mount, the flags it knows (ro,
     * rw, nosuid, nodev, noexec, bind, rbind) become flags, the rest the file system's data, comma-separated. A read-only bind mount would take a
     * second, remounting call that no rootfs here needs, so it is refused.
     */
    public static void mount(String source, Path target, String type, List<String> options) throws IOException {
        long flags = "bind".equals(type) ? LibC.MS_BIND : 0;
        List<String> data = new ArrayList<>();
        for (String option : options) {
            switch (option) {
                case "rw" -> {}
                case "ro" -> flags |= LibC.MS_RDONLY;
                case "nosuid" -> flags |= LibC.MS_NOSUID;
                case "nodev" -> flags |= LibC.MS_NODEV;
                case "noexec" -> flags |= LibC.MS_NOEXEC;
                case "bind" -> flags |= LibC.MS_BIND;
                case "rbind" -> flags |= LibC.MS_BIND | LibC.MS_REC;
                default -> data.add(option);
            }
        }
        if ((flags & LibC.MS_BIND) != 0 && (flags & LibC.MS_RDONLY) != 0) {
            throw new IOException("read-only bind mounts need a remount; not supported: " + options);
        }
        try {
            LibC.INSTANCE.mount(
                    cString(source),
                    bytes(target),
                    cString(type),
                    flags,
                    data.isEmpty() ? null : cString(String.join(",", data)));
        } catch (LastErrorException e) {
            throw failure("mount " + type + " " + source + " on", target, e);
        }
    }

    /** umount2(2); {@code detach} is a lazy unmount (MNT_DETACH). */
    public static void unmount(Path target, boolean detach) throws IOException {
        try {
            LibC.INSTANCE.umount2(bytes(target), detach ? LibC.MNT_DETACH : 0);
        } catch (LastErrorException e) {
            throw failure("umount", target, e);
        }
    }

    /** syncfs(2): one call makes a whole unpacked tree durable, instead of one fsync per file. */
    public static void syncfs(Path path) throws IOException {
        withFd(path, "syncfs", fd -> LibC.INSTANCE.syncfs(fd));
    }

    private interface FdCall {
        int call(int fd);
    }

    private static void withFd(Path path, String op, FdCall call) throws IOException {
        int fd;
        try {
            fd = LibC.INSTANCE.open(bytes(path), LibC.O_RDONLY | LibC.O_NOFOLLOW | LibC.O_CLOEXEC);
        } catch (LastErrorException e) {
            throw failure("open for " + op, path, e);
        }
        try {
            call.call(fd);
        } catch (LastErrorException e) {
            throw failure(op, path, e);
        } finally {
            LibC.INSTANCE.close(fd);
        }
    }

    /**
     * The path's bytes as the JDK holds them, NUL-terminated. toString() decodes them with the locale's charset,
     * which loses bytes it cannot decode (any non-ASCII byte under LANG=C); the file URI spells each byte, so it
     * is the exact way when the string shows more than ASCII.
     */
    public static byte[] bytes(Path path) {
        String s = path.toString();
        if (s.chars().allMatch(c -> c < 0x80)) {
            return terminated(s.getBytes(StandardCharsets.US_ASCII)); // ASCII decodes from ASCII bytes only
        }
        String raw = path.toAbsolutePath().toUri().getRawPath();
        if (raw.length() > 1 && raw.endsWith("/")) {
            raw = raw.substring(0, raw.length() - 1); // toUri adds it for a directory
        }
        ByteArrayOutputStream bytes = new ByteArrayOutputStream(raw.length() + 1);
        for (int i = 0; i < raw.length(); i++) {
            char c = raw.charAt(i);
            if (c == '%') {
                bytes.write(Integer.parseInt(raw, i + 1, i + 3, 16));
                i += 2;
            } else {
                bytes.write(c);
            }
        }
        bytes.write(0);
        return bytes.toByteArray();
    }

    private static byte[] cString(String s) {
        return terminated(s.getBytes(StandardCharsets.UTF_8));
    }

    private static byte[] terminated(byte[] b) {
        return Arrays.copyOf(b, b.length + 1);
    }

    private static IOException failure(String op, Path path, LastErrorException e) {
        return new IOException(op + " " + path + ": " + e.getMessage(), e);
    }

    private static Charset pathCharset() {
        String name = System.getProperty("sun.jnu.encoding");
        try {
            return name == null ? Charset.defaultCharset() : Charset.forName(name);
        } catch (IllegalArgumentException e) {
            return Charset.defaultCharset();
        }
    }

    /**
     * Writes {@code message} to the FIFO {@code fifo} if a process has it open for reading; false if none has (or
     * it is not there). Never blocks on a FIFO without a reader, as a plain open for writing would.
     */
    public static boolean writeToFifo(Path fifo, byte[] message) throws IOException {
        int fd;
        try {
            fd = LibC.INSTANCE.open(bytes(fifo), LibC.O_WRONLY | LibC.O_NONBLOCK | LibC.O_CLOEXEC);
        } catch (LastErrorException e) {
            if (e.getErrorCode() == LibC.ENXIO || e.getErrorCode() == LibC.ENOENT) {
                return false;
            }
            throw new IOException("opening " + fifo + ": errno " + e.getErrorCode(), e);
        }
        try {
            LibC.INSTANCE.write(fd, message, message.length);
            return true;
        } catch (LastErrorException e) {
            throw new IOException("writing to " + fifo + ": errno " + e.getErrorCode(), e);
        } finally {
            LibC.INSTANCE.close(fd);
        }
    }
}
