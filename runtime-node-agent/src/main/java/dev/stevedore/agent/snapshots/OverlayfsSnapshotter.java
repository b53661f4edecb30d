package dev.stevedore.agent.snapshots;

import dev.stevedore.agent.fs.PosixFiles;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Collectors;

/**
 * overlayfs snapshots: each committed snapshot holds only its own layer, with whiteouts as overlayfs reads them,
 * in {@code <id>/fs}; an active snapshot is an empty {@code upper} and {@code work} pair over the parent chain,
 * so preparing costs the same for any image size. Directories are short numeric ids because mount(2) takes at
 * most one page of options, and every layer's path is in it.
 */
public final class OverlayfsSnapshotter extends DirectorySnapshotter {
    static final int MOUNT_OPTIONS_LIMIT = 4096;

    private final LayerApplier applier;
    /** As containerd: index=off, where the kernel knows it, lets the same lower layers sit under many uppers. */
    private final boolean indexOff = Files.exists(Path.of("/sys/module/overlay/parameters/index"));

    public OverlayfsSnapshotter(Path root) throws IOException {
        this(root, LayerLimits.DEFAULTS);
    }

    public OverlayfsSnapshotter(Path root, LayerLimits limits) throws IOException {
        super(requireMountablePath(root), "overlayfs");
        applier = new LayerApplier(LayerApplier.Mode.OVERLAY, limits);
    }

    @Override
    public String name() {
        return "overlayfs";
    }

    @Override
    void populateCommitted(Path fs, List<Path> lowers, Path layer, String mediaType, String diffId) throws IOException {
        Files.createDirectory(fs);
        PosixFiles.chmod(fs, 0755);
        applier.apply(layer, mediaType, diffId, fs, lowers); // the lowers are read, not copied: the mount stacks them
    }

    @Override
    void populateActive(Path dir, Path parentFs) throws IOException {
        Files.createDirectory(dir.resolve("upper"));
        PosixFiles.chmod(dir.resolve("upper"), 0755);
        Files.createDirectory(dir.resolve("work"));
    }

    @Override
    List<Mount> activeMounts(Path dir, List<Path> lowers) throws IOException {
        Path upper = dir.resolve("upper");
        if (lowers.isEmpty()) {
            return List.of(new Mount("bind", upper.toString(), List.of("rbind", "rw"))); // overlay needs a lower
        }
        List<String> options = new ArrayList<>();
        if (indexOff) {
            options.add("index=off");
        }
        options.add("lowerdir=" + lowers.stream().map(Path::toString).collect(Collectors.joining(":")));
        options.add("upperdir=" + upper);
        options.add("workdir=" + dir.resolve("work"));
        int length = String.join(",", options).length() + 1;
        if (length > MOUNT_OPTIONS_LIMIT) {
            throw new IOException("overlay mount options for " + lowers.size() + " layers are " + length
                    + " bytes, over the kernel's limit of " + MOUNT_OPTIONS_LIMIT + "; use a shorter snapshot root");
        }
        return List.of(new Mount("overlay", "overlay", options));
    }

    /** ':' separates lowerdirs and ',' options; neither can be escaped in the mount data. */
    private static Path requireMountablePath(Path root) {
        String path = root.toAbsolutePath().normalize().toString();
        if (path.contains(":") || path.contains(",")) {
            throw new IllegalArgumentException("overlay snapshot root must not contain ':' or ',': " + path);
        }
        return root;
    }
}
