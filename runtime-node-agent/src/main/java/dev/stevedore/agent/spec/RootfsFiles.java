package dev.stevedore.agent.spec;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;
import java.util.Optional;

/**
 * Reads small files of a container's root filesystem from the host, as the container would see them: a symbolic
 * link is resolved against the root filesystem (an absolute target starts at its root, {@code ..} stops at its
 * root), the way chroot or securejoin would, so an image whose /etc/passwd links to /etc/shadow or ../../host
 * reads its own files, never the host's.
 *
 * <p>Directories are checked on the way, not held open: whoever can change the root filesystem between the check
 * and the read could still swap one for a link. The agent reads it before the container's task starts, when only
 * the agent writes there; openat2(RESOLVE_IN_ROOT) would close the gap if that ever changes.
 */
final class RootfsFiles {
    /** Linux's limit on symbolic links in one lookup: a link cycle ends here. */
    private static final int MAX_LINKS = 40;

    private RootfsFiles() {}

    /**
     * The content of an absolute path inside {@code rootfs}, or empty when it does not exist.
     *
     * @throws SpecRejectedException when it is not a regular file or larger than {@code maxBytes}
     */
    static Optional<String> read(Path rootfs, String path, int maxBytes) throws SpecRejectedException {
        Optional<Path> resolved = resolve(rootfs, path);
        if (resolved.isEmpty()) {
            return Optional.empty();
        }
        Path file = resolved.get();
        try {
            BasicFileAttributes attributes =
                    Files.readAttributes(file, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
            // Refuse a FIFO or device before opening it: opening a FIFO would block the agent.
            if (!attributes.isRegularFile()) {
                throw new SpecRejectedException("the image's " + path + " is not a regular file");
            }
            // NOFOLLOW_LINKS (O_NOFOLLOW): a link swapped in since resolve() fails rather than leads outside.
            try (InputStream in = Files.newInputStream(file, StandardOpenOption.READ, LinkOption.NOFOLLOW_LINKS)) {
                byte[] content = in.readNBytes(maxBytes + 1);
                if (content.length > maxBytes) {
                    throw new SpecRejectedException("the image's " + path + " is larger than " + maxBytes + " bytes");
                }
                return Optional.of(new String(content, StandardCharsets.UTF_8));
            }
        } catch (NoSuchFileException e) {
            return Optional.empty();
        } catch (IOException e) {
            throw new UncheckedIOException("reading " + path + " of the root filesystem " + rootfs, e);
        }
    }

    /**
     * The host path of an absolute path inside {@code rootfs}, with every symbolic link resolved inside it; empty
     * when a component does not exist. The last component is not a symbolic link (the loop resolves it too).
     */
    static Optional<Path> resolve(Path rootfs, String path) {
        Deque<String> remaining = new ArrayDeque<>(components(path));
        List<String> resolved = new ArrayList<>(); // components below rootfs, never a link, never ..
        int links = 0;
        while (!remaining.isEmpty()) {
            String name = remaining.removeFirst();
            if (name.isEmpty() || name.equals(".")) {
                continue;
            }
            if (name.equals("..")) {
                if (!resolved.isEmpty()) {
                    resolved.remove(resolved.size() - 1);
                }
                continue;
            }
            Path candidate = at(rootfs, resolved).resolve(name);
            BasicFileAttributes attributes;
            try {
                attributes = Files.readAttributes(candidate, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
            } catch (NoSuchFileException e) {
                return Optional.empty();
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
            if (attributes.isSymbolicLink()) {
                if (++links > MAX_LINKS) {
                    return Optional.empty();
                }
                String target;
                try {
                    target = Files.readSymbolicLink(candidate).toString();
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
                if (target.startsWith("/")) {
                    resolved.clear();
                }
                List<String> targetComponents = components(target);
                for (int i = targetComponents.size() - 1; i >= 0; i--) {
                    remaining.addFirst(targetComponents.get(i));
                }
                continue;
            }
            if (!attributes.isDirectory() && !remaining.isEmpty()) {
                return Optional.empty(); // a file used as a directory: ENOTDIR in the container, missing here
            }
            resolved.add(name);
        }
        return Optional.of(at(rootfs, resolved));
    }

    private static Path at(Path rootfs, List<String> components) {
        Path path = rootfs;
        for (String component : components) {
            path = path.resolve(component);
        }
        return path;
    }

    private static List<String> components(String path) {
        return List.of(path.split("/"));
    }
}
