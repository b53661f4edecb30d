package dev.stevedore.agent.fs;

import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.List;

/**
 * Closes the agent's state directory to other host users, as containerd did after CVE-2021-41103: image layers
 * hold setuid binaries and device nodes, and a task's files are its tenant's, so no host user but root may reach
 * them. The root is 0711 (traversable, not listable, as containerd's root and state directories are) and every
 * entry in it is the owner's only (containerd makes its snapshotter directories 0700; here content, images, specs,
 * task records and bundles are closed too). Root needs none of these bits: the agent, runc and conmon run as root,
 * and overlayfs checks the layers below with the credentials of its mounter, so a task running as any user in its
 * container reads and writes its rootfs as before.
 *
 * <p>Applied at every start to what is there, so an agent upgraded from one that left them open closes them.
 */
public final class StateDirectories {
    static final int ROOT_MODE = 0711;
    static final int ENTRY_MODE = 0700;
    static final int FILE_MODE = 0600;

    /** The directories the agent keeps in its root; made here so that none is ever open, not even at first start. */
    private static final List<String> DIRECTORIES =
            List.of("content", "images", "snapshots", "containers", "tasks", "task-sockets", "tmpmounts", "bin");

    private StateDirectories() {}

    /** Creates {@code root} and its directories, and closes them and whatever else is in it to other users. */
    public static void close(Path root) throws IOException {
        closeOwn(root, DIRECTORIES);
        try (DirectoryStream<Path> entries = Files.newDirectoryStream(root)) {
            for (Path entry : entries) {
                BasicFileAttributes attrs =
                        Files.readAttributes(entry, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
                if (attrs.isDirectory()) {
                    PosixFiles.chmod(entry, ENTRY_MODE);
                } else if (attrs.isRegularFile()) {
                    PosixFiles.chmod(entry, FILE_MODE);
                }
            }
        }
    }

    /**
     * Creates {@code dir} (0711) and {@code directories} in it (0700), and closes just those: for a directory such as
     * the agent's {@code --state-dir} (the OCI runtimes' state, their containers' config.json and init pids), whose
     * other entries, if an administrator named a shared directory, are not the agent's to change.
     */
    public static void closeOwn(Path dir, List<String> directories) throws IOException {
        Files.createDirectories(dir);
        PosixFiles.chmod(dir, ROOT_MODE);
        for (String name : directories) {
            Path own = dir.resolve(name);
            if (!Files.exists(own, LinkOption.NOFOLLOW_LINKS)) {
                Files.createDirectory(own);
            }
            PosixFiles.chmod(own, ENTRY_MODE);
        }
    }
}
