package dev.stevedore.agent.snapshots;

import dev.stevedore.agent.fs.LibC;
import dev.stevedore.agent.fs.PosixFiles;
import dev.stevedore.agent.fs.SafeDelete;
import java.io.FilterInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.FileTime;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HashSet;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Stream;

/**
 * Applies an OCI/Docker layer tar to a directory, as root, treating the layer as hostile: every path goes through
 * {@link RootResolver}, so no entry, symlink or hardlink creates or changes anything outside the directory.
 * Owners (numeric), all mode bits, mtimes, symlinks, hardlinks, devices, fifos and xattrs are kept.
 *
 * <p>Whiteouts ({@code .wh.NAME}, and {@code .wh..wh..opq} for an opaque directory) depend on the mode:
 * {@link Mode#OVERLAY} writes them the way overlayfs reads them (a 0/0 char device; {@code
 * trusted.overlay.opaque=y}) into a directory that holds only this layer; {@link Mode#NATIVE} applies them to a
 * full copy of the parent by deleting.
 *
 * <p>An overlay layer is applied over the committed layers below it, which it reads and never writes: a symlink
 * in a parent path may be theirs, and directories the layer only implies keep their attributes (see {@link
 * RootResolver}).
 *
 * <p>On {@link LayerRejectedException} (or any failure) the directory is left half-written: the caller deletes it.
 */
public final class LayerApplier {
    public enum Mode {
        OVERLAY,
        NATIVE
    }

    private static final String WHITEOUT = ".wh.";
    private static final String WHITEOUT_META = ".wh..wh.";
    private static final String OPAQUE = ".wh..wh..opq";
    /** overlayfs' own metadata: a layer must not fake it (redirects, origins, opaque without the marker). */
    private static final String OVERLAY_XATTRS = "trusted.overlay.";

    private final Mode mode;
    private final LayerLimits limits;

    public LayerApplier(Mode mode, LayerLimits limits) {
        this.mode = mode;
        this.limits = limits;
    }

    /**
     * Applies a layer blob, decompressing it once: its diff ID, the sha256 of all of the uncompressed stream, is
     * checked on the way, as containerd's diff apply does, and a mismatch rejects the layer (after writing it: the
     * caller's commit comes later). The compression is detected; {@code mediaType} (or null) must be a layer type.
     *
     * @param lowers the committed trees below, top first, for {@link Mode#OVERLAY}; empty for {@link Mode#NATIVE}
     */
    public void apply(Path blob, String mediaType, String diffId, Path target, List<Path> lowers) throws IOException {
        Sha256InputStream tar = new Sha256InputStream(new BoundedInputStream(LayerStreams.open(blob, mediaType)));
        try (tar) {
            apply(tar, target, lowers);
            tar.transferTo(OutputStream.nullOutputStream()); // the end-of-archive blocks and any padding after
        }
        String actual = tar.digest();
        if (!actual.equals(diffId)) {
            throw new LayerRejectedException("the layer uncompresses to " + actual + ", not to its diff ID " + diffId);
        }
    }

    /** Applies an uncompressed tar stream to the existing directory {@code target}, with no layers below. */
    public void apply(InputStream tar, Path target) throws IOException {
        apply(new BoundedInputStream(tar), target, List.of());
    }

    private void apply(InputStream tar, Path target, List<Path> lowers) throws IOException {
        if (mode == Mode.NATIVE && !lowers.isEmpty()) {
            throw new IllegalArgumentException("a native layer is applied to a copy of the layers below");
        }
        new Application(target, lowers).run(new TarReader(tar, limits));
    }

    /** The uncompressed stream, every byte of it counted (skipped ones too) against the limit. */
    private final class BoundedInputStream extends FilterInputStream {
        private long read;

        BoundedInputStream(InputStream in) {
            super(in);
        }

        @Override
        public int read() throws IOException {
            int b = in.read();
            count(b < 0 ? 0 : 1);
            return b;
        }

        @Override
        public int read(byte[] b, int off, int len) throws IOException {
            int n = in.read(b, off, len);
            count(Math.max(n, 0));
            return n;
        }

        @Override
        public long skip(long n) throws IOException {
            long skipped = in.skip(n);
            count(skipped);
            return skipped;
        }

        @Override
        public boolean markSupported() {
            return false;
        }

        private void count(long n) throws LayerRejectedException {
            read += n;
            if (read > limits.maxBytes()) {
                throw LayerLimits.exceeded("bytes uncompressed", limits.maxBytes(), LayerLimits.MAX_BYTES_FLAG);
            }
        }
    }

    /**
     * Hashes every byte read through it, skipped ones too: {@link java.security.DigestInputStream} lets skip()
     * pass by, and the tar reader skips padding.
     */
    private static final class Sha256InputStream extends FilterInputStream {
        private final MessageDigest sha256;

        Sha256InputStream(InputStream in) {
            super(in);
            try {
                sha256 = MessageDigest.getInstance("SHA-256");
            } catch (NoSuchAlgorithmException e) {
                throw new IllegalStateException("every JDK has SHA-256", e);
            }
        }

        @Override
        public int read() throws IOException {
            int b = in.read();
            if (b >= 0) {
                sha256.update((byte) b);
            }
            return b;
        }

        @Override
        public int read(byte[] b, int off, int len) throws IOException {
            int n = in.read(b, off, len);
            if (n > 0) {
                sha256.update(b, off, n);
            }
            return n;
        }

        @Override
        public long skip(long n) throws IOException {
            byte[] buffer = new byte[(int) Math.min(n, 8192)];
            int read = read(buffer, 0, (int) Math.min(n, buffer.length));
            return Math.max(read, 0);
        }

        @Override
        public boolean markSupported() {
            return false;
        }

        String digest() {
            return "sha256:" + HexFormat.of().formatHex(sha256.digest());
        }
    }

    /**
     * The state of one application of one layer. What it keeps per path is counted against {@link
     * LayerLimits#maxPathBytes}: entries are bounded in number, but a path may be as long as an extended header.
     */
    private final class Application {
        /** What a kept path costs besides its bytes and its string: the objects and a set or map node, roughly. */
        private static final int PATH_OVERHEAD = 96;

        private final RootResolver resolver;
        /** Paths this layer wrote, and their ancestors: what a native opaque directory keeps; overlay needs none. */
        private final Set<Path> unpacked = new HashSet<>();
        /**
         * Directory mtimes, set last, since creating children changes them: an entry's, else the one the
         * directory had before this layer (so a directory the layer only implies stays as the layers below made it).
         */
        private final Map<Path, FileTime> directoryTimes = new LinkedHashMap<>();

        private long pathBytes;

        Application(Path target, List<Path> lowers) {
            this.resolver = new RootResolver(target, mode == Mode.OVERLAY, lowers, this::entered);
        }

        private void entered(Path dir, FileTime before) {
            if (directoryTimes.putIfAbsent(dir, before) == null) {
                kept(dir);
            }
        }

        /** Counts a path newly kept; unchecked, since RootResolver's callback cannot throw a checked exception. */
        private void kept(Path path) {
            pathBytes += 2L * path.toString().length() + PATH_OVERHEAD; // a path caches its string
        }

        private void checkKept() throws LayerRejectedException {
            if (pathBytes > limits.maxPathBytes()) {
                throw LayerLimits.exceeded(
                        "bytes of paths kept while it unpacks", limits.maxPathBytes(), LayerLimits.MAX_PATH_BYTES_FLAG);
            }
        }

        void run(TarReader reader) throws IOException {
            for (TarEntry entry = reader.next(); entry != null; entry = reader.next()) {
                apply(entry, reader);
                checkKept();
            }
            for (Map.Entry<Path, FileTime> time : directoryTimes.entrySet()) {
                // Looked up again without following symlinks: a later entry may have replaced a parent.
                Path dir = resolver.existingDirectory(time.getKey());
                if (dir != null) {
                    PosixFiles.setTimes(dir, time.getValue());
                }
            }
        }

        private void apply(TarEntry entry, TarReader reader) throws IOException {
            List<String> components = RootResolver.clean(entry.name());
            if (components.isEmpty()) {
                if (entry.type() != TarEntry.Type.DIRECTORY) {
                    throw new LayerRejectedException("entry " + entry.name() + " would replace the root directory");
                }
                setMetadata(resolver.root(), entry);
                return;
            }
            String base = components.get(components.size() - 1);
            List<String> parentComponents = components.subList(0, components.size() - 1);
            if (base.startsWith(WHITEOUT)) {
                whiteout(entry, parentComponents, base);
                return;
            }
            Path parent = resolver.directory(entry.name(), parentComponents, RootResolver.Missing.CREATE);
            Path path = parent.resolve(RootResolver.fileName(base));
            Path linkTarget = entry.type() == TarEntry.Type.HARDLINK
                    ? resolver.hardlinkTarget(entry.name(), entry.linkName())
                    : null;
            if (path.equals(linkTarget)) {
                return; // a hardlink to itself: nothing to do
            }
            BasicFileAttributes existing = RootResolver.lstat(path);
            boolean mergeDirectory =
                    entry.type() == TarEntry.Type.DIRECTORY && existing != null && existing.isDirectory();
            if (!mergeDirectory) {
                boolean whitedOut = existing != null && resolver.isWhiteout(path, existing);
                if (existing != null) {
                    SafeDelete.deleteTree(path); // replaced, never written through (it may be a symlink)
                }
                create(entry, path, linkTarget, reader);
                if (whitedOut && entry.type() == TarEntry.Type.DIRECTORY) {
                    RootResolver.setOpaque(path); // as overlayfs makes a directory created where one was deleted
                }
            }
            if (entry.type() != TarEntry.Type.HARDLINK) {
                setMetadata(path, entry);
            }
            markUnpacked(path);
        }

        private void create(TarEntry entry, Path path, Path linkTarget, TarReader reader) throws IOException {
            switch (entry.type()) {
                case DIRECTORY -> Files.createDirectory(path);
                case FILE -> {
                    // CREATE_NEW is O_CREAT|O_EXCL: fails on anything there, a dangling symlink included.
                    try (OutputStream out = Files.newOutputStream(
                            path, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE, LinkOption.NOFOLLOW_LINKS)) {
                        reader.content().transferTo(out);
                    }
                }
                case SYMLINK -> {
                    if (entry.linkName().isEmpty()) {
                        throw new LayerRejectedException("symlink with an empty target: " + entry.name());
                    }
                    PosixFiles.symlink(entry.linkName(), path); // any target: a symlink is only data to us
                }
                case HARDLINK -> Files.createLink(path, linkTarget); // link(2) never follows a symlink target
                case CHAR_DEVICE ->
                    PosixFiles.mknod(
                            path, LibC.S_IFCHR, entry.mode(), PosixFiles.makedev(entry.devMajor(), entry.devMinor()));
                case BLOCK_DEVICE ->
                    PosixFiles.mknod(
                            path, LibC.S_IFBLK, entry.mode(), PosixFiles.makedev(entry.devMajor(), entry.devMinor()));
                case FIFO -> PosixFiles.mknod(path, LibC.S_IFIFO, entry.mode(), 0);
            }
        }

        private void whiteout(TarEntry entry, List<String> dirComponents, String base) throws IOException {
            RootResolver.Missing missing = mode == Mode.OVERLAY
                    ? RootResolver.Missing.CREATE // the marker must exist in this layer's own directory
                    : RootResolver.Missing.SKIP; // nothing below to delete
            if (base.startsWith(WHITEOUT_META) && !base.equals(OPAQUE)) {
                return; // other AUFS metadata (.wh..wh.plnk, ...): ignored, as Docker and containerd do
            }
            String name = base.substring(WHITEOUT.length());
            if (!base.equals(OPAQUE) && (name.isEmpty() || name.equals(".") || name.equals(".."))) {
                throw new LayerRejectedException("invalid whiteout: " + entry.name());
            }
            Path dir = resolver.directory(entry.name(), dirComponents, missing);
            if (dir == null) {
                return;
            }
            if (base.equals(OPAQUE)) {
                if (mode == Mode.OVERLAY) {
                    RootResolver.setOpaque(dir);
                    markUnpacked(dir);
                } else {
                    deleteLowerContents(dir);
                }
                return;
            }
            Path hidden = dir.resolve(RootResolver.fileName(name));
            SafeDelete.deleteTree(hidden);
            if (mode == Mode.OVERLAY) {
                PosixFiles.mknod(hidden, LibC.S_IFCHR, 0, PosixFiles.makedev(0, 0));
                PosixFiles.lchown(hidden, entry.uid(), entry.gid());
                markUnpacked(hidden);
            }
        }

        /** Native opaque directory: everything under it that this layer did not write goes. */
        private void deleteLowerContents(Path dir) throws IOException {
            List<Path> children;
            try (Stream<Path> list = Files.list(dir)) {
                children = list.toList();
            }
            for (Path child : children) {
                if (!unpacked.contains(child)) {
                    SafeDelete.deleteTree(child);
                } else if (Files.isDirectory(child, LinkOption.NOFOLLOW_LINKS)) {
                    deleteLowerContents(child);
                }
            }
        }

        private void setMetadata(Path path, TarEntry entry) throws IOException {
            Map<String, byte[]> xattrs = new LinkedHashMap<>(entry.xattrs());
            xattrs.keySet().removeIf(name -> name.startsWith(OVERLAY_XATTRS));
            boolean directory = entry.type() == TarEntry.Type.DIRECTORY;
            PosixFiles.setMetadata(
                    path,
                    entry.type() == TarEntry.Type.SYMLINK,
                    entry.uid(),
                    entry.gid(),
                    entry.mode(),
                    xattrs,
                    directory ? null : entry.mtime());
            if (directory) {
                // re-inserted: a later entry for the same directory wins
                if (directoryTimes.remove(path) == null) {
                    kept(path);
                }
                directoryTimes.put(path, entry.mtime());
            }
        }

        private void markUnpacked(Path path) {
            if (mode == Mode.OVERLAY) {
                return;
            }
            for (Path p = path; p != null && !p.equals(resolver.root()) && unpacked.add(p); p = p.getParent()) {
                kept(p); // each ancestor once
            }
        }
    }
}
