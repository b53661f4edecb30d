package dev.stevedore.agent.snapshots;

import dev.stevedore.agent.fs.PosixFiles;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * Native snapshots, for file systems overlayfs cannot use: every snapshot is a full tree in {@code <id>/fs}, a
 * committed one the parent's copy with the layer applied (whiteouts delete), an active one a copy of its parent
 * that is bind-mounted.
 */
public final class NativeSnapshotter extends DirectorySnapshotter {
    private final LayerApplier applier;

    public NativeSnapshotter(Path root) throws IOException {
        this(root, LayerLimits.DEFAULTS);
    }

    public NativeSnapshotter(Path root, LayerLimits limits) throws IOException {
        super(root, "native");
        applier = new LayerApplier(LayerApplier.Mode.NATIVE, limits);
    }

    @Override
    public String name() {
        return "native";
    }

    @Override
    void populateCommitted(Path fs, List<Path> lowers, Path layer, String mediaType, String diffId) throws IOException {
        copyOrCreate(lowers.isEmpty() ? null : lowers.get(0), fs); // the parent's tree holds those below it
        applier.apply(layer, mediaType, diffId, fs, List.of());
    }

    @Override
    void populateActive(Path dir, Path parentFs) throws IOException {
        copyOrCreate(parentFs, fsOf(dir));
        PosixFiles.syncfs(dir); // a container restarted after a crash must find a whole copy
    }

    @Override
    List<Mount> activeMounts(Path dir, List<Path> lowers) {
        return List.of(new Mount("bind", fsOf(dir).toString(), List.of("rbind", "rw")));
    }

    private static void copyOrCreate(Path parentFs, Path fs) throws IOException {
        if (parentFs == null) {
            Files.createDirectory(fs);
            PosixFiles.chmod(fs, 0755);
        } else {
            TreeCopier.copy(parentFs, fs);
        }
    }
}
