package dev.stevedore.agent.fs;

import com.sun.jna.LastErrorException;
import com.sun.jna.Library;
import com.sun.jna.Native;

/**
 * The few libc calls plain Java lacks. Paths and names are passed as NUL-terminated bytes, exactly the bytes the
 * JDK holds for a {@link java.nio.file.Path} ({@link PosixFiles#bytes}), whatever the locale, so a JNA call always
 * names the same file the Java checks looked at.
 */
public interface LibC extends Library {
    LibC INSTANCE = Native.load("c", LibC.class);

    int AT_FDCWD = -100;
    int AT_SYMLINK_NOFOLLOW = 0x100;
    int O_RDONLY = 0;
    int O_WRONLY = 1;
    int O_NONBLOCK = 04000;
    int O_DIRECTORY = 0200000;
    int O_NOFOLLOW = 0400000;
    int O_CLOEXEC = 02000000;
    int O_PATH = 010000000;
    int ELOOP = 40;
    int EXDEV = 18;
    /** openat2(2)'s number, the same on every architecture (new system calls share one table). */
    long SYS_OPENAT2 = 437;

    long RESOLVE_NO_MAGICLINKS = 0x02;
    long RESOLVE_NO_SYMLINKS = 0x04;
    long RESOLVE_BENEATH = 0x08;
    int S_IFIFO = 0010000;
    int S_IFCHR = 0020000;
    int S_IFBLK = 0060000;
    int EPERM = 1;
    int ENOENT = 2;
    int ENXIO = 6;
    int ERANGE = 34;
    int ENODATA = 61;
    int ENOTSUP = 95;
    long MS_RDONLY = 1;
    long MS_NOSUID = 2;
    long MS_NODEV = 4;
    long MS_NOEXEC = 8;
    long MS_BIND = 4096;
    long MS_REC = 16384;
    int MNT_DETACH = 2;

    int mknod(byte[] path, int mode, long dev) throws LastErrorException;

    int symlink(byte[] target, byte[] linkPath) throws LastErrorException;

    int lchown(byte[] path, int uid, int gid) throws LastErrorException;

    int chmod(byte[] path, int mode) throws LastErrorException;

    /** {@code times} is {atime sec, atime nsec, mtime sec, mtime nsec}: two struct timespec on LP64. */
    int utimensat(int dirfd, byte[] path, long[] times, int flags) throws LastErrorException;

    int lsetxattr(byte[] path, byte[] name, byte[] value, long size, int flags) throws LastErrorException;

    long lgetxattr(byte[] path, byte[] name, byte[] value, long size) throws LastErrorException;

    long llistxattr(byte[] path, byte[] list, long size) throws LastErrorException;

    /** {@code buf} receives a struct stat; see {@link PosixFiles#lstat}. */
    int lstat(byte[] path, byte[] buf) throws LastErrorException;

    int open(byte[] path, int flags) throws LastErrorException;

    /**
     * openat2(2) through syscall(2): glibc has no wrapper. {@code how} is struct open_how: flags, mode, resolve.
     */
    long syscall(long number, int dirfd, byte[] path, long[] how, long size) throws LastErrorException;

    int fsync(int fd) throws LastErrorException;

    int syncfs(int fd) throws LastErrorException;

    int close(int fd) throws LastErrorException;

    long write(int fd, byte[] buf, long count) throws LastErrorException;

    int mount(byte[] source, byte[] target, byte[] type, long flags, byte[] data) throws LastErrorException;

    int umount2(byte[] target, int flags) throws LastErrorException;
}
