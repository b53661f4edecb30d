package dev.stevedore.agent.fs;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** mount(2) and umount2(2) as the agent mounts a task's rootfs: options read as mount(8) reads them. */
class PosixFilesMountIT {
    @TempDir
    Path dir;

    @AfterEach
    void unmountLeftovers() throws IOException {
        while (mountLine(dir.resolve("target")).isPresent()) {
            PosixFiles.unmount(dir.resolve("target"), true);
        }
    }

    @Test
    void flagOptionsBecomeFlagsAndTheRestTheFileSystemsData() throws IOException {
        Path target = Files.createDirectories(dir.resolve("target"));
        PosixFiles.mount(
                "stevedore-test", target, "tmpfs", List.of("rw", "nosuid", "nodev", "noexec", "size=1m", "mode=0700"));

        String[] fields = mountLine(target).orElseThrow().split(" ");
        assertThat(fields[0]).isEqualTo("stevedore-test");
        assertThat(fields[2]).isEqualTo("tmpfs");
        assertThat(fields[3].split(",")).contains("rw", "nosuid", "nodev", "noexec", "size=1024k", "mode=700");

        PosixFiles.unmount(target, false);
        assertThat(mountLine(target)).isEmpty();
    }

    @Test
    void rbindShowsTheSourceTreeAtTheTarget() throws IOException {
        Path source = Files.createDirectories(dir.resolve("source/sub"));
        Files.writeString(source.resolve("file"), "content");
        Path target = Files.createDirectories(dir.resolve("target"));

        PosixFiles.mount(dir.resolve("source").toString(), target, "bind", List.of("rbind", "rw"));
        assertThat(target.resolve("sub/file")).hasContent("content");
        PosixFiles.unmount(target, false);
        assertThat(target.resolve("sub")).doesNotExist();

        // Type "bind" alone is a bind mount too, as for mount(8).
        PosixFiles.mount(dir.resolve("source").toString(), target, "bind", List.of());
        assertThat(target.resolve("sub/file")).hasContent("content");
    }

    @Test
    void whatCannotBeMountedSaysWhatAndWhere() throws IOException {
        Path target = Files.createDirectories(dir.resolve("target"));
        assertThatThrownBy(() -> PosixFiles.mount("none", target, "no-such-fs", List.of()))
                .isInstanceOf(IOException.class)
                .hasMessageContaining("mount no-such-fs none on " + target);
        assertThatThrownBy(() -> PosixFiles.mount(dir.toString(), target, "bind", List.of("bind", "ro")))
                .isInstanceOf(IOException.class)
                .hasMessageContaining("read-only bind");
        assertThatThrownBy(() -> PosixFiles.unmount(target, false))
                .isInstanceOf(IOException.class)
                .hasMessageContaining("umount " + target);
        assertThat(mountLine(target)).isEmpty();
    }

    private static Optional<String> mountLine(Path target) throws IOException {
        return Files.readAllLines(Path.of("/proc/self/mounts")).stream()
                .filter(line -> line.split(" ")[1].equals(target.toString()))
                .findFirst();
    }
}
