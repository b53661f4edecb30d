package dev.stevedore.agent.snapshots;

import static org.assertj.core.api.Assertions.assertThat;

import dev.stevedore.agent.fs.PosixFiles;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.util.Map;
import java.util.stream.Stream;

/** A directory beside the rootfs that hostile layers aim at, with a sentinel file to prove they missed. */
final class Outside {
    final Path dir;
    final Path sentinel;
    private final FileTime sentinelMtime;
    private final FileTime dirMtime;

    Outside(Path base) throws IOException {
        dir = Files.createDirectory(base.resolve("outside"));
        PosixFiles.chmod(dir, 0755);
        sentinel = Files.writeString(dir.resolve("sentinel"), "original");
        PosixFiles.chmod(sentinel, 0644);
        sentinelMtime = Files.getLastModifiedTime(sentinel);
        dirMtime = Files.getLastModifiedTime(dir);
    }

    void assertUntouched() throws IOException {
        try (Stream<Path> children = Files.list(dir)) {
            assertThat(children).containsExactly(sentinel);
        }
        assertThat(Files.readString(sentinel)).isEqualTo("original");
        assertThat(unix(sentinel))
                .containsEntry("mode", 0100644)
                .containsEntry("uid", 0)
                .containsEntry("nlink", 1)
                .containsEntry("lastModifiedTime", sentinelMtime);
        assertThat(unix(dir))
                .containsEntry("mode", 040755)
                .containsEntry("uid", 0)
                .containsEntry("lastModifiedTime", dirMtime);
        assertThat(PosixFiles.xattrs(dir)).isEmpty();
        assertThat(PosixFiles.xattrs(sentinel)).isEmpty();
    }

    static Map<String, Object> unix(Path path) throws IOException {
        return Files.readAttributes(path, "unix:*", LinkOption.NOFOLLOW_LINKS);
    }
}
