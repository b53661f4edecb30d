package dev.stevedore.agent.snapshots;

import com.github.luben.zstd.ZstdOutputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Instant;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.zip.GZIPOutputStream;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveOutputStream;
import org.apache.commons.compress.archivers.tar.TarConstants;

/** Builds layer tars in tests, with commons-compress as an independent writer. */
final class LayerBuilder {
    static final String OCI_TAR = "application/vnd.oci.image.layer.v1.tar";
    static final String OCI_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip";
    static final String OCI_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd";
    static final String DOCKER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip";
    static final FileTime MTIME = FileTime.from(Instant.parse("2020-01-02T03:04:05Z"));

    enum Compression {
        NONE,
        GZIP,
        ZSTD
    }

    private final ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    /** UTF-8 whatever the test JVM's locale, as image tools write names. */
    private final TarArchiveOutputStream tar = new TarArchiveOutputStream(bytes, "UTF-8");

    private boolean finished;
    private final Map<String, String> nextXattrs = new LinkedHashMap<>();

    LayerBuilder() {
        this(TarArchiveOutputStream.LONGFILE_POSIX, TarArchiveOutputStream.BIGNUMBER_POSIX);
    }

    LayerBuilder(int longFileMode, int bigNumberMode) {
        tar.setLongFileMode(longFileMode);
        tar.setBigNumberMode(bigNumberMode);
    }

    LayerBuilder dir(String name) {
        return dir(name, 0755, 0, 0);
    }

    LayerBuilder dir(String name, int mode, long uid, long gid) {
        return add(entry(name, TarConstants.LF_DIR, mode, uid, gid), null);
    }

    LayerBuilder file(String name, String content) {
        return file(name, content, 0644, 0, 0);
    }

    LayerBuilder file(String name, String content, int mode, long uid, long gid) {
        return add(entry(name, TarConstants.LF_NORMAL, mode, uid, gid), content.getBytes(StandardCharsets.UTF_8));
    }

    LayerBuilder symlink(String name, String target) {
        TarArchiveEntry e = entry(name, TarConstants.LF_SYMLINK, 0777, 0, 0);
        e.setLinkName(target);
        return add(e, null);
    }

    LayerBuilder symlink(String name, String target, long uid, long gid) {
        TarArchiveEntry e = entry(name, TarConstants.LF_SYMLINK, 0777, uid, gid);
        e.setLinkName(target);
        return add(e, null);
    }

    LayerBuilder hardlink(String name, String target) {
        TarArchiveEntry e = entry(name, TarConstants.LF_LINK, 0644, 0, 0);
        e.setLinkName(target);
        return add(e, null);
    }

    LayerBuilder device(String name, byte type, int major, int minor) {
        TarArchiveEntry e = entry(name, type, 0660, 0, 6);
        e.setDevMajor(major);
        e.setDevMinor(minor);
        return add(e, null);
    }

    LayerBuilder fifo(String name) {
        return add(entry(name, TarConstants.LF_FIFO, 0640, 0, 0), null);
    }

    /** The OCI whiteout that deletes {@code path} of a lower layer. */
    LayerBuilder whiteout(String path) {
        int slash = path.lastIndexOf('/');
        return file(path.substring(0, slash + 1) + ".wh." + path.substring(slash + 1), "");
    }

    /** The OCI marker that makes {@code dir} opaque. */
    LayerBuilder opaque(String dir) {
        return file(dir + "/.wh..wh..opq", "");
    }

    /** An xattr (PAX SCHILY.xattr) of the next entry. */
    LayerBuilder xattr(String name, String value) {
        nextXattrs.put(name, value);
        return this;
    }

    /** Names that are not ASCII go into PAX {@code path} records from here on (besides the ustar field). */
    LayerBuilder nonAsciiNamesInPax() {
        tar.setAddPaxHeadersForNonAsciiNames(true);
        return this;
    }

    /** The uncompressed layer, ending in the end-of-archive blocks and commons-compress' record padding. */
    byte[] tar() {
        try {
            if (!finished) {
                tar.finish();
                finished = true;
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return bytes.toByteArray();
    }

    /** sha256 of {@link #tar()}: the layer's diff ID. */
    String diffId() {
        return diffIdOf(tar());
    }

    static String diffIdOf(byte[] tar) {
        try {
            return "sha256:"
                    + HexFormat.of()
                            .formatHex(MessageDigest.getInstance("SHA-256").digest(tar));
        } catch (NoSuchAlgorithmException e) {
            throw new AssertionError(e);
        }
    }

    Path write(Path file) throws IOException {
        return write(file, Compression.NONE);
    }

    Path write(Path file, Compression compression) throws IOException {
        return write(tar(), file, compression);
    }

    static Path write(byte[] tar, Path file, Compression compression) throws IOException {
        try (OutputStream out = compress(Files.newOutputStream(file), compression)) {
            out.write(tar);
        }
        return file;
    }

    private static OutputStream compress(OutputStream out, Compression compression) throws IOException {
        return switch (compression) {
            case NONE -> out;
            case GZIP -> new GZIPOutputStream(out);
            case ZSTD -> new ZstdOutputStream(out);
        };
    }

    private static TarArchiveEntry entry(String name, byte type, int mode, long uid, long gid) {
        TarArchiveEntry e = new TarArchiveEntry(name, type, true); // true: keep a leading '/' as it is
        e.setMode(mode);
        e.setUserId(uid);
        e.setGroupId(gid);
        e.setLastModifiedTime(MTIME);
        return e;
    }

    private LayerBuilder add(TarArchiveEntry e, byte[] content) {
        nextXattrs.forEach((k, v) -> e.addPaxHeader("SCHILY.xattr." + k, v));
        nextXattrs.clear();
        e.setSize(content == null ? 0 : content.length);
        try {
            tar.putArchiveEntry(e);
            if (content != null) {
                tar.write(content);
            }
            tar.closeArchiveEntry();
        } catch (IOException ex) {
            throw new UncheckedIOException(ex);
        }
        return this;
    }
}
