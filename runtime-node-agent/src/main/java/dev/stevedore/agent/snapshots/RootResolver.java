package dev.stevedore.agent.snapshots;

import dev.stevedore.agent.fs.PosixFiles;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;

/**
 * Maps layer entry names to paths under a root so that no entry can create or change anything outside it.
 *
 * <p>Names are cleaned lexically first (absolute names and {@code ..} above the root are rejected). Directories
 * are then walked one component at a time with {@code lstat}, never letting the kernel follow a symlink: a
 * symlink met on the way is expanded by hand, and only if its target is relative and stays under the root
 * (which is how the container will see it); an absolute target, or one that climbs out, rejects the layer. The
 * last component is never resolved: callers replace whatever is there, so a symlink there is replaced, not
 * followed. Nothing else writes into the tree while a layer is applied, so a checked path stays valid.
 */
final class RootResolver {
    /** Missing intermediate directories: created (entries), or the walk ends with null (whiteouts). */
    enum Missing { CREATE, SKIP }

    private static final int MAX_SYMLINKS = 40; // the kernel's own limit (ELOOP)

    private final Path root;

    RootResolver(Path root) {
        this.root = root;
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
     * The real directory that {@code components} (already {@link #clean}ed) lead to, with no symlink in it.
     *
     * @param entry the entry name, for messages
     * @return null only with {@link Missing#SKIP} when a directory does not exist
     */
    Path directory(String entry, List<String> components, Missing missing) throws IOException {
        Deque<String> todo = new ArrayDeque<>(components);
        List<String> done = new ArrayList<>();
        String viaLink = null;
        int links = 0;
        while (!todo.isEmpty()) {
            String c = todo.pollFirst();
            if (c.isEmpty() || c.equals(".")) {
                continue;
            }
            if (c.equals("..")) {
                if (done.isEmpty()) {
                    throw escapes(entry, viaLink);
                }
                done.remove(done.size() - 1);
                continue;
            }
            Path path = pathOf(done).resolve(c);
            BasicFileAttributes attrs = lstat(path);
            if (attrs == null) {
                if (missing == Missing.SKIP) {
                    return null;
                }
                Files.createDirectory(path);
                PosixFiles.chmod(path, 0755); // as tar does for parents a layer leaves out; umask aside
                done.add(c);
            } else if (attrs.isDirectory()) {
                done.add(c);
            } else if (attrs.isSymbolicLink()) {
                String target = Files.readSymbolicLink(path).toString();
                viaLink = "through symlink " + relative(path) + " -> " + target;
                if (++links > MAX_SYMLINKS) {
                    throw new LayerRejectedException("too many levels of symbolic links: " + entry);
                }
                if (target.startsWith("/")) {
                    // The host kernel would follow it out of the rootfs; layers from a diff never need this.
                    throw escapes(entry, viaLink);
                }
                String[] parts = target.split("/");
                for (int i = parts.length - 1; i >= 0; i--) {
                    todo.addFirst(parts[i]);
                }
            } else {
                throw new LayerRejectedException("entry " + entry + ": " + relative(path) + " is not a directory");
            }
        }
        return pathOf(done);
    }

    /** The existing non-directory a hardlink entry names, checked like any other path. */
    Path hardlinkTarget(String entry, String linkName) throws IOException {
        List<String> components = clean(linkName);
        if (components.isEmpty()) {
            throw new LayerRejectedException("hardlink " + entry + " -> " + linkName + ": target is a directory");
        }
        Path dir = directory(entry, components.subList(0, components.size() - 1), Missing.SKIP);
        Path target = dir == null ? null : dir.resolve(components.get(components.size() - 1));
        BasicFileAttributes attrs = target == null ? null : lstat(target);
        if (attrs == null) {
            throw new LayerRejectedException("hardlink " + entry + " -> " + linkName + ": target not found");
        }
        if (attrs.isDirectory()) {
            throw new LayerRejectedException("hardlink " + entry + " -> " + linkName + ": target is a directory");
        }
        return target;
    }

    /** The path of {@code realComponents} if each is an existing directory that is not a symlink, else null. */
    Path existingDirectory(List<String> realComponents) throws IOException {
        Path path = root;
        for (String c : realComponents) {
            path = path.resolve(c);
            BasicFileAttributes attrs = lstat(path);
            if (attrs == null || !attrs.isDirectory()) {
                return null;
            }
        }
        return path;
    }

    /** The components of a real path under the root, to find it again with {@link #existingDirectory}. */
    List<String> componentsOf(Path path) {
        List<String> components = new ArrayList<>();
        root.relativize(path).forEach(p -> components.add(p.toString()));
        components.removeIf(String::isEmpty);
        return components;
    }

    static BasicFileAttributes lstat(Path path) throws IOException {
        try {
            return Files.readAttributes(path, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
        } catch (NoSuchFileException e) {
            return null;
        }
    }

    private Path pathOf(List<String> components) {
        Path path = root;
        for (String c : components) {
            path = path.resolve(c);
        }
        return path;
    }

    private String relative(Path path) {
        return root.relativize(path).toString();
    }

    private static LayerRejectedException escapes(String entry, String how) {
        return new LayerRejectedException("entry escapes rootfs: " + entry + (how == null ? "" : " (" + how + ")"));
    }
}
