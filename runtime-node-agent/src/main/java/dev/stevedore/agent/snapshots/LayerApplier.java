package dev.stevedore.agent.snapshots;

import dev.stevedore.agent.fs.LibC;
import dev.stevedore.agent.fs.PosixFiles;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.FileTime;
import java.util.HashSet;
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
 * <p>On {@link LayerRejectedException} (or any failure) the directory is left half-written: the caller deletes it.
 */
public final class LayerApplier {
    public enum Mode { OVERLAY, NATIVE }

    private static final String WHITEOUT = ".wh.";
    private static final String WHITEOUT_META = ".wh..wh.";
    private static final String OPAQUE = ".wh..wh..opq";
    /** overlayfs' own metadata: a layer must not fake it (redirects, origins, opaque without the marker). */
    private static final String OVERLAY_XATTRS = "trusted.overlay.";

    private final Mode mode;

    public LayerApplier(Mode mode) {
        this.mode = mode;
    }

    /** Applies a layer blob; the compression is detected, {@code mediaType} (or null) must be a layer type. */
    public void apply(Path blob, String mediaType, Path target) throws IOException {
        try (InputStream tar = LayerStreams.open(blob, mediaType)) {
            apply(tar, target);
        }
    }

    /** Applies an uncompressed tar stream to the existing directory {@code target}. */
    public void apply(InputStream tar, Path target) throws IOException {
        new Application(new RootResolver(target)).run(new TarReader(tar));
    }

    /** The state of one application of one layer. */
    private final class Application {
        private final RootResolver resolver;
        /** Paths this layer wrote, and their ancestors: what a native opaque directory keeps. */
        private final Set<Path> unpacked = new HashSet<>();
        /** Directory mtimes, set last, since creating children changes them. */
        private final Map<List<String>, FileTime> directoryTimes = new LinkedHashMap<>();

        Application(RootResolver resolver) {
            this.resolver = resolver;
        }

        void run(TarReader reader) throws IOException {
            for (TarEntry entry = reader.next(); entry != null; entry = reader.next()) {
                apply(entry, reader);
            }
            for (Map.Entry<List<String>, FileTime> time : directoryTimes.entrySet()) {
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
            Path path = parent.resolve(base);
            Path linkTarget = entry.type() == TarEntry.Type.HARDLINK
                    ? resolver.hardlinkTarget(entry.name(), entry.linkName()) : null;
            if (path.equals(linkTarget)) {
                return; // a hardlink to itself: nothing to do
            }
            BasicFileAttributes existing = RootResolver.lstat(path);
            boolean mergeDirectory = entry.type() == TarEntry.Type.DIRECTORY && existing != null
                    && existing.isDirectory();
            if (!mergeDirectory) {
                if (existing != null) {
                    SafeDelete.deleteTree(path); // replaced, never written through (it may be a symlink)
                }
                create(entry, path, linkTarget, reader);
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
                    try (OutputStream out = Files.newOutputStream(path, StandardOpenOption.CREATE_NEW,
                            StandardOpenOption.WRITE, LinkOption.NOFOLLOW_LINKS)) {
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
                case CHAR_DEVICE -> PosixFiles.mknod(path, LibC.S_IFCHR, entry.mode(),
                        PosixFiles.makedev(entry.devMajor(), entry.devMinor()));
                case BLOCK_DEVICE -> PosixFiles.mknod(path, LibC.S_IFBLK, entry.mode(),
                        PosixFiles.makedev(entry.devMajor(), entry.devMinor()));
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
                    if (!PosixFiles.setXattr(dir, "trusted.overlay.opaque", "y".getBytes(StandardCharsets.US_ASCII))) {
                        throw new IOException("file system has no trusted xattrs for overlay opaque dirs: " + dir);
                    }
                    markUnpacked(dir);
                } else {
                    deleteLowerContents(dir);
                }
                return;
            }
            Path hidden = dir.resolve(name);
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
            PosixFiles.setMetadata(path, entry.type() == TarEntry.Type.SYMLINK, entry.uid(), entry.gid(),
                    entry.mode(), xattrs, directory ? null : entry.mtime());
            if (directory) {
                List<String> key = resolver.componentsOf(path);
                directoryTimes.remove(key); // re-insert: a later entry for the same directory wins
                directoryTimes.put(key, entry.mtime());
            }
        }

        private void markUnpacked(Path path) {
            for (Path p = path; p != null && !p.equals(resolver.root()) && unpacked.add(p); p = p.getParent()) {
                // each ancestor once
            }
        }
    }
}
