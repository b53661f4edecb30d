package dev.stevedore.agent.fs;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** openat2 beneath a directory: what a bind source resolves to at a task's start. */
class OpenBeneathTest {
    @TempDir
    Path base;

    Path allowed;

    @BeforeEach
    void allowedDirectory() throws IOException {
        allowed =
                Files.createDirectories(base.resolve("allowed/a/b")).getParent().getParent();
        Files.writeString(allowed.resolve("a/b/file"), "inside");
    }

    @Test
    void opensWhatIsBeneathWithoutLinks() throws IOException {
        int fd = PosixFiles.openBeneath(allowed, Path.of("a/b/file"));
        try {
            assertThat(Files.readString(Path.of("/proc/self/fd/" + fd))).isEqualTo("inside");
        } finally {
            PosixFiles.close(fd);
        }
    }

    @Test
    void anEmptyPathOpensTheDirectoryItself() throws IOException {
        int fd = PosixFiles.openBeneath(allowed, Path.of(""));
        try {
            assertThat(Path.of("/proc/self/fd/" + fd).toRealPath()).isEqualTo(allowed.toRealPath());
        } finally {
            PosixFiles.close(fd);
        }
    }

    @Test
    void aSymlinkAnywhereOnTheWayIsRefused() throws IOException {
        Files.move(allowed.resolve("a"), allowed.resolve("a-moved"));
        Files.createSymbolicLink(allowed.resolve("a"), allowed.resolve("a-moved")); // even one that stays inside
        Files.createSymbolicLink(allowed.resolve("a-moved/b/root"), Path.of("/"));

        assertThatThrownBy(() -> PosixFiles.openBeneath(allowed, Path.of("a/b/file")))
                .isInstanceOf(PosixFiles.SymlinkInPathException.class)
                .hasMessage(allowed.resolve("a/b/file") + " has a symbolic link in it");
        assertThatThrownBy(() -> PosixFiles.openBeneath(allowed, Path.of("a-moved/b/root")))
                .isInstanceOf(PosixFiles.SymlinkInPathException.class);
    }

    @Test
    void dotDotOutOfTheDirectoryIsRefused() {
        assertThatThrownBy(() -> PosixFiles.openBeneath(allowed, Path.of("a/../../allowed/a/b/file")))
                .isInstanceOf(PosixFiles.SymlinkInPathException.class)
                .hasMessage(allowed.resolve("a/../../allowed/a/b/file") + " leads out of " + allowed);
    }

    /** The directory itself is the administrator's: it may be a link. */
    @Test
    void theDirectoryItselfMayBeALink() throws IOException {
        Path link = Files.createSymbolicLink(base.resolve("link"), allowed);

        int fd = PosixFiles.openBeneath(link, Path.of("a/b/file"));
        PosixFiles.close(fd);
    }
}
