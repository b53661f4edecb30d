package dev.stevedore.agent.containers;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.stevedore.agent.fs.MountTable;
import dev.stevedore.agent.snapshots.Mount;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The read-only mount of a container's overlay rootfs the spec generator reads /etc/passwd from, mounted for real. */
class ReadOnlyRootfsIT {
    @TempDir
    Path base;

    private Path tempMounts;
    private List<Mount> overlay;

    @BeforeEach
    void layers() throws IOException {
        Path lower = Files.createDirectories(base.resolve("lower/etc"));
        Files.writeString(lower.resolve("passwd"), "root:x:0:0::/root:/bin/sh\n");
        Files.writeString(lower.resolve("group"), "root:x:0:\n");
        Path upper = Files.createDirectories(base.resolve("upper/etc"));
        Files.writeString(upper.resolve("passwd"), "app:x:1000:1000::/home/app:/bin/sh\n");
        Files.createDirectories(base.resolve("work"));
        tempMounts = base.resolve("tmpmounts");
        overlay = List.of(new Mount(
                "overlay",
                "overlay",
                List.of(
                        "index=off",
                        "workdir=" + base.resolve("work"),
                        "upperdir=" + base.resolve("upper"),
                        "lowerdir=" + base.resolve("lower"))));
    }

    @Test
    void theContainersFilesAreReadThroughAReadOnlyMountThatGoesOnClose() throws IOException {
        Path mountPoint;
        try (ReadOnlyRootfs rootfs = ReadOnlyRootfs.mount(overlay, tempMounts)) {
            mountPoint = rootfs.path();
            assertThat(rootfs.path().resolve("etc/passwd")).hasContent("app:x:1000:1000::/home/app:/bin/sh");
            assertThat(rootfs.path().resolve("etc/group")).hasContent("root:x:0:");
            assertThatThrownBy(() -> Files.writeString(rootfs.path().resolve("etc/new"), "x"))
                    .isInstanceOf(IOException.class);
        }
        assertThat(MountTable.under(tempMounts)).isEmpty();
        assertThat(mountPoint).doesNotExist();
        assertThat(base.resolve("upper/etc/new")).doesNotExist();
    }

    /**
     * A mount in use when it is closed (here a file open in it; in the agent, a runtime creating a container in that
     * moment, whose new mount namespace holds a copy of it) is detached lazily: nothing is left mounted or behind.
     */
    @Test
    void aMountStillInUseWhenClosedIsDetachedNotLeft() throws IOException {
        Path mountPoint;
        ReadOnlyRootfs rootfs = ReadOnlyRootfs.mount(overlay, tempMounts);
        mountPoint = rootfs.path();
        try (InputStream held = Files.newInputStream(rootfs.path().resolve("etc/passwd"))) {
            rootfs.close();
            assertThat(held.read()).isEqualTo('a');
        }
        assertThat(MountTable.under(tempMounts)).isEmpty();
        assertThat(mountPoint).doesNotExist();
    }
}
