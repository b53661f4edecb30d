package dev.stevedore.agent.snapshots;

import java.nio.file.attribute.FileTime;
import java.util.Map;

/**
 * One member of a layer tar, after PAX and GNU long-name headers are merged into it.
 *
 * @param mode permission bits incl. setuid, setgid and sticky (07777)
 * @param xattrs from PAX {@code SCHILY.xattr.NAME} records, values byte-exact (e.g. security.capability)
 */
record TarEntry(
        String name,
        Type type,
        long size,
        int mode,
        int uid,
        int gid,
        FileTime mtime,
        String linkName,
        long devMajor,
        long devMinor,
        Map<String, byte[]> xattrs) {

    enum Type {
        FILE,
        DIRECTORY,
        SYMLINK,
        HARDLINK,
        CHAR_DEVICE,
        BLOCK_DEVICE,
        FIFO
    }
}
