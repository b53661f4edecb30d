package dev.stevedore.agent.fs;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class StateDirectoriesTest {
    @TempDir
    Path base;

    @Test
    void aNewRootIsMadeClosed() throws IOException {
        Path root = base.resolve("a/root");

        StateDirectories.close(root);

        assertThat(mode(root)).isEqualTo(0711);
        try (Stream<Path> entries = Files.list(root)) {
            assertThat(entries.toList())
                    .contains(root.resolve("snapshots"), root.resolve("tasks"), root.resolve("content"))
                    .allSatisfy(entry ->
                            assertThat(mode(entry)).as(entry.toString()).isEqualTo(0700));
        }
    }

    /** An agent upgraded from one that left its state 0755 and its files 0644. */
    @Test
    void whatAnOlderAgentLeftOpenIsClosed() throws IOException {
        Path root = Files.createDirectories(base.resolve("root"));
        Path snapshots = Files.createDirectories(root.resolve("snapshots/overlayfs"));
        Path unknown = Files.createDirectory(root.resolve("something-newer"));
        Path lock = Files.writeString(root.resolve("gc.lock"), "");
        Path link = Files.createSymbolicLink(root.resolve("link"), base);
        PosixFiles.chmod(base, 0755);
        PosixFiles.chmod(root, 0755);
        PosixFiles.chmod(root.resolve("snapshots"), 0755);
        PosixFiles.chmod(unknown, 0777);
        PosixFiles.chmod(lock, 0644);

        StateDirectories.close(root);

        assertThat(mode(root)).isEqualTo(0711);
        assertThat(mode(root.resolve("snapshots"))).isEqualTo(0700);
        assertThat(mode(unknown)).isEqualTo(0700);
        assertThat(mode(lock)).isEqualTo(0600);
        assertThat(mode(base)).as("a symlink's target is left alone").isEqualTo(0755);
        assertThat(snapshots).isDirectory();
        assertThat(Files.isSymbolicLink(link)).isTrue();
    }

    /** The runtimes' state directory: its own entries closed, anything else in it (a shared directory) left alone. */
    @Test
    void aStateDirectoryClosesOnlyWhatIsTheAgents() throws IOException {
        Path shared = Files.createDirectories(base.resolve("run"));
        Path other = Files.createDirectory(shared.resolve("someone-elses"));
        PosixFiles.chmod(other, 0755);
        Files.createDirectory(shared.resolve("runc"));
        PosixFiles.chmod(shared.resolve("runc"), 0755);

        StateDirectories.closeOwn(shared, java.util.List.of("runc", "crun"));

        assertThat(mode(shared)).isEqualTo(0711);
        assertThat(mode(shared.resolve("runc"))).isEqualTo(0700);
        assertThat(mode(shared.resolve("crun"))).isEqualTo(0700);
        assertThat(mode(other)).isEqualTo(0755);
    }

    private static int mode(Path path) {
        try {
            return (int) Files.getAttribute(path, "unix:mode", LinkOption.NOFOLLOW_LINKS) & 07777;
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }
}
