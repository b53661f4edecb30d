package dev.stevedore.agent.snapshots;

import dev.stevedore.agent.fs.LibC;
import dev.stevedore.agent.fs.PosixFiles;
import java.io.IOException;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.FileTime;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.BiConsumer;

/**
 * Maps layer entry names to paths under a root so that no entry can create or change anything outside it.
 *
 * <p>Names are cleaned lexically first (absolute names and {@code ..} above the root are rejected). Directories
 * are then walked one component at a time with {@code lstat}, never letting the kernel follow a symlink: a
 * symlink met on the way is expanded by hand with the root as {@code /}, as containerd's {@code fs.RootPath}
 * does and as the container will see it: an absolute target starts again at the root, and {@code ..} at the root
 * stays there. The last component is never resolved: callers replace whatever is there, so a symlink there is
 * replaced, not followed. Nothing else writes into the tree while a layer is applied, so a checked path stays
 * valid.
 *
 * <p>For an overlay layer the walk sees the merged view of this layer over the committed layers below, as
 * overlayfs merges them (whiteouts hide, opaque directories stop the layers below): a symlink may sit in a lower
 * layer, and a directory that only a lower layer has is created in this one with the lower one's owner, mode,
 * xattrs and mtime, as overlayfs' copy-up would, since overlayfs shows the upper directory's attributes.
 *
 * <p>Names are UTF-8, as in layers, whatever the JVM's locale: see {@link #fileName}.
 */
final class RootResolver {
    /** Missing intermediate directories: created (entries), or the walk ends with null (whiteouts). */
    enum Missing {
        CREATE,
        SKIP
    }

    private static final int MAX_SYMLINKS = 40; // the kernel's own limit (ELOOP)
    private static final String OVERLAY_XATTRS = "trusted.overlay.";
    private static final String OPAQUE = "trusted.overlay.opaque";
    private static final int S_IFMT = 0170000;
    private static final char[] HEX = "0123456789ABCDEF".toCharArray();

    private final Path root;
    /** The trees of the layers below, top first, for an overlay layer; empty for a full tree. */
    private final List<Path> lowers;

    private final boolean overlay;
    /**
     * Told, for each directory the walk enters, the mtime it had before this layer wrote into it (a copied-up
     * one: the lower one's), for the caller to set again at the end: creating children changes it.
     */
    private final BiConsumer<Path, FileTime> entered;

    RootResolver(Path root, boolean overlay, List<Path> lowers, BiConsumer<Path, FileTime> entered) {
        this.root = root;
        this.overlay = overlay;
        this.lowers = List.copyOf(lowers);
        this.entered = entered;
    }

    Path root() {
        return root;
    }

    /** The components of a tar entry name, without {@code .} and {@code ..}; empty for the root itself. */
    static List<String> clean(String name) throws LayerRejectedException {
        if (name.indexOf('\0') >= 0) {
            throw new LayerRejectedException("invalid entry name: " + name.replace('\0', '?'));
        }
        if (name.startsWith("/")) {
            throw escapes(name, "absolute path");
        }
        List<String> components = new ArrayList<>();
        for (String c : name.split("/")) {
            if (c.isEmpty() || c.equals(".")) {
                continue;
            }
            if (c.equals("..")) {
                if (components.isEmpty()) {
                    throw escapes(name, null);
                }
                components.remove(components.size() - 1);
            } else {
                components.add(c);
            }
        }
        return components;
    }

    /**
     * A file name as a one-component relative path of its UTF-8 bytes. The JDK encodes a String path with the
     * locale's charset (sun.jnu.encoding), which under LANG=C is ASCII and cannot hold "é"; a file URI carries
     * the bytes themselves, percent-encoded, and becomes a path byte for byte under any locale.
     */
    static Path fileName(String name) {
        if (name.chars().allMatch(c -> c < 0x80)) {
            return Path.of(name); // every charset Linux uses encodes ASCII as ASCII
        }
        StringBuilder uri = new StringBuilder("file:///");
        for (byte b : name.getBytes(StandardCharsets.UTF_8)) {
            uri.append('%').append(HEX[(b >> 4) & 0xf]).append(HEX[b & 0xf]);
        }
        return Path.of(URI.create(uri.toString())).getFileName();
    }

    /**
     * The real directory that {@code components} (already {@link #clean}ed) lead to, with no symlink in it.
     *
     * @param entry the entry name, for messages
     * @return null only with {@link Missing#SKIP} when a directory does not exist in this layer's tree
     */
    Path directory(String entry, List<String> components, Missing missing) throws IOException {
        Deque<Path> todo = new ArrayDeque<>();
        for (String c : components) {
            todo.add(fileName(c));
        }
        Deque<Level> walked = new ArrayDeque<>(); // the directories the walk went through; where it is on top
        walked.push(new Level(root, lowers));
        int links = 0;
        while (!todo.isEmpty()) {
            Path name = todo.pollFirst();
            String n = name.toString(); // only compared with ASCII: a lossy decoding cannot make "." or ".."
            if (n.isEmpty() || n.equals(".")) {
                continue;
            }
            if (n.equals("..")) {
                if (walked.size() > 1) {
                    walked.pop(); // at the root, .. is the root
                }
                continue;
            }
            Level here = walked.peek();
            Merged found = lookup(here, name);
            switch (found.kind()) {
                case DIRECTORY -> {
                    entered.accept(found.path(), found.attrs().lastModifiedTime());
                    walked.push(found.level());
                }
                case SYMLINK -> {
                    if (++links > MAX_SYMLINKS) {
                        throw new LayerRejectedException("too many levels of symbolic links: " + entry);
                    }
                    Path target = Files.readSymbolicLink(found.path());
                    if (target.isAbsolute()) {
                        while (walked.size() > 1) {
                            walked.pop();
                        }
                    }
                    for (int i = target.getNameCount() - 1; i >= 0; i--) {
                        todo.addFirst(target.getName(i));
                    }
                }
                case OTHER ->
                    throw new LayerRejectedException(
                            "entry " + entry + ": " + root.relativize(found.path()) + " is not a directory");
                case LOWER_DIRECTORY, ABSENT, WHITED_OUT -> {
                    if (missing == Missing.SKIP) {
                        return null;
                    }
                    walked.push(create(here.path().resolve(name), found));
                }
            }
        }
        return walked.peek().path();
    }

    /** The existing non-directory a hardlink entry names, in this layer's tree, checked like any other path. */
    Path hardlinkTarget(String entry, String linkName) throws IOException {
        List<String> components = clean(linkName);
        if (components.isEmpty()) {
            throw new LayerRejectedException("hardlink " + entry + " -> " + linkName + ": target is a directory");
        }
        Path dir = directory(entry, components.subList(0, components.size() - 1), Missing.SKIP);
        Path target = dir == null ? null : dir.resolve(fileName(components.get(components.size() - 1)));
        BasicFileAttributes attrs = target == null ? null : lstat(target);
        if (attrs == null) {
            throw new LayerRejectedException("hardlink " + entry + " -> " + linkName + ": target not found");
        }
        if (attrs.isDirectory()) {
            throw new LayerRejectedException("hardlink " + entry + " -> " + linkName + ": target is a directory");
        }
        return target;
    }

    /** {@code path} if it and each directory above it up to the root is a directory, not a symlink; else null. */
    Path existingDirectory(Path path) throws IOException {
        Path walked = root;
        for (Path name : root.relativize(path)) {
            if (name.toString().isEmpty()) {
                continue;
            }
            walked = walked.resolve(name);
            BasicFileAttributes attrs = lstat(walked);
            if (attrs == null || !attrs.isDirectory()) {
                return null;
            }
        }
        return walked;
    }

    static BasicFileAttributes lstat(Path path) throws IOException {
        try {
            return Files.readAttributes(path, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
        } catch (NoSuchFileException e) {
            return null;
        }
    }

    /** overlayfs' whiteout: a character device 0/0. Only a whiteout in an overlay layer. */
    boolean isWhiteout(Path path, BasicFileAttributes attrs) throws IOException {
        if (!overlay || !attrs.isOther()) {
            return false;
        }
        Map<String, Object> unix = Files.readAttributes(path, "unix:mode,rdev", LinkOption.NOFOLLOW_LINKS);
        return ((int) unix.get("mode") & S_IFMT) == LibC.S_IFCHR && (long) unix.get("rdev") == 0;
    }

    /** A directory of the merged view: its path in this layer's tree, and the lower directories merged into it. */
    private record Level(Path path, List<Path> lowers) {}

    private enum Kind {
        DIRECTORY,
        LOWER_DIRECTORY,
        SYMLINK,
        OTHER,
        ABSENT,
        WHITED_OUT
    }

    /** What the merged view has for a name: where the topmost entry is, its attributes, for a directory its level. */
    private record Merged(Kind kind, Path path, BasicFileAttributes attrs, Level level) {}

    /**
     * Looks a name up in the merged view as overlayfs does: the topmost layer that has it decides, a whiteout
     * hides it, and a directory merges with the directories below it down to a non-directory, a whiteout or an
     * opaque directory.
     */
    private Merged lookup(Level here, Path name) throws IOException {
        Path upper = here.path().resolve(name);
        BasicFileAttributes attrs = lstat(upper);
        if (attrs != null && isWhiteout(upper, attrs)) {
            return new Merged(Kind.WHITED_OUT, upper, attrs, null);
        }
        if (attrs != null && !attrs.isDirectory()) {
            return new Merged(attrs.isSymbolicLink() ? Kind.SYMLINK : Kind.OTHER, upper, attrs, null);
        }
        boolean upperIsDirectory = attrs != null;
        List<Path> merged = new ArrayList<>();
        if (!(upperIsDirectory && isOpaque(upper, here.lowers()))) {
            for (Path lowerDir : here.lowers()) {
                Path lower = lowerDir.resolve(name);
                BasicFileAttributes lowerAttrs = lstat(lower);
                if (lowerAttrs == null) {
                    continue;
                }
                if (lowerAttrs.isDirectory()) {
                    merged.add(lower);
                    if (isOpaque(lower, here.lowers())) {
                        break;
                    }
                    continue;
                }
                if (merged.isEmpty() && !upperIsDirectory && !isWhiteout(lower, lowerAttrs)) {
                    return new Merged(lowerAttrs.isSymbolicLink() ? Kind.SYMLINK : Kind.OTHER, lower, lowerAttrs, null);
                }
                break; // a whiteout or non-directory hides what is below
            }
        }
        if (upperIsDirectory) {
            return new Merged(Kind.DIRECTORY, upper, attrs, new Level(upper, merged));
        }
        if (merged.isEmpty()) {
            return new Merged(Kind.ABSENT, upper, null, null);
        }
        return new Merged(Kind.LOWER_DIRECTORY, merged.get(0), lstat(merged.get(0)), new Level(upper, merged));
    }

    /** Only an overlay layer with more layers below asks: the marker hides nothing otherwise. */
    private boolean isOpaque(Path dir, List<Path> below) throws IOException {
        if (!overlay || below.isEmpty()) {
            return false;
        }
        byte[] value = PosixFiles.xattr(dir, OPAQUE);
        return value != null && value.length == 1 && value[0] == 'y';
    }

    /** Creates a directory the entry implies but the layer leaves out, as containerd and overlayfs would. */
    private Level create(Path dir, Merged found) throws IOException {
        switch (found.kind()) {
            case LOWER_DIRECTORY -> {
                Files.createDirectory(dir);
                copyUp(found.path(), dir);
                return found.level();
            }
            case WHITED_OUT -> {
                // A whiteout of this layer hides the lower one; a directory made in its place must hide it too.
                Files.delete(dir);
                Files.createDirectory(dir);
                PosixFiles.chmod(dir, 0755);
                setOpaque(dir);
                return new Level(dir, List.of());
            }
            default -> {
                Files.createDirectory(dir);
                PosixFiles.chmod(dir, 0755); // as containerd does for parents no layer has; umask aside
                return new Level(dir, List.of());
            }
        }
    }

    /** Marks an overlay directory opaque: the layers below show nothing through it. */
    static void setOpaque(Path dir) throws IOException {
        if (!PosixFiles.setXattr(dir, OPAQUE, new byte[] {'y'})) {
            throw new IOException("file system has no trusted xattrs for overlay opaque dirs: " + dir);
        }
    }

    private void copyUp(Path lower, Path dir) throws IOException {
        Map<String, Object> attrs =
                Files.readAttributes(lower, "unix:mode,uid,gid,lastModifiedTime", LinkOption.NOFOLLOW_LINKS);
        Map<String, byte[]> xattrs = new LinkedHashMap<>(PosixFiles.xattrs(lower));
        xattrs.keySet().removeIf(name -> name.startsWith(OVERLAY_XATTRS)); // overlayfs' own, of the lower layer
        PosixFiles.setMetadata(
                dir, false, (int) attrs.get("uid"), (int) attrs.get("gid"), (int) attrs.get("mode"), xattrs, null);
        entered.accept(dir, (FileTime) attrs.get("lastModifiedTime"));
    }

    private static LayerRejectedException escapes(String entry, String how) {
        return new LayerRejectedException("entry escapes rootfs: " + entry + (how == null ? "" : " (" + how + ")"));
    }
}
