package dev.stevedore.agent.fs;

import static org.assertj.core.api.Assertions.assertThat;

import com.sun.jna.LastErrorException;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.FileSystemException;
import org.junit.jupiter.api.Test;

/** Both ways a full disk reaches the agent, anywhere in the cause chain; and what is not a full disk. */
class DiskFullTest {
    @Test
    void theJdksAndJnasFormsOfEnospcAndEdquotAreAFullDisk() {
        assertThat(DiskFull.causedBy(new IOException("No space left on device")))
                .isTrue();
        assertThat(DiskFull.causedBy(new FileSystemException("/x", null, "Disk quota exceeded")))
                .isTrue();
        assertThat(DiskFull.causedBy(new IOException("mknod /x: failed", new LastErrorException(28))))
                .isTrue();
        assertThat(DiskFull.causedBy(new UncheckedIOException(new IOException("write: No space left on device"))))
                .isTrue();
    }

    @Test
    void otherFailuresAreNot() {
        assertThat(DiskFull.causedBy(new IOException("Read-only file system"))).isFalse();
        assertThat(DiskFull.causedBy(new IOException("lsetxattr", new LastErrorException(30))))
                .isFalse();
        assertThat(DiskFull.causedBy(new IOException((String) null))).isFalse();
    }
}
