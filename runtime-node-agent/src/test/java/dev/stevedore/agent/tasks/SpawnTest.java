package dev.stevedore.agent.tasks;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import dev.stevedore.agent.fs.PosixFiles;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeoutException;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SpawnTest {
    @TempDir
    Path dir;

    @Test
    void theChildHasExactlyTheNamedFdsTheGivenEnvironmentAndWorkingDirectory() throws Exception {
        Path fifo = dir.resolve("stdin.fifo");
        PosixFiles.mkfifo(fifo, 0600);
        Path out = dir.resolve("out");
        Path three = dir.resolve("three");
        Path four = Files.writeString(dir.resolve("four"), "for fd 4");
        Path work = Files.createDirectory(dir.resolve("work"));
        try (RandomAccessFile stdin = new RandomAccessFile(fifo.toFile(), "rw")) {
            // cat blocks reading the FIFO (this end keeps it open) while its fds are looked at.
            int pid = Spawn.start(
                    List.of("/bin/cat"),
                    Map.of("ONLY", "this"),
                    work,
                    List.of(
                            new Spawn.Fd.Read(fifo),
                            new Spawn.Fd.Write(out),
                            new Spawn.Fd.SameAs(1),
                            new Spawn.Fd.Write(three),
                            new Spawn.Fd.Read(four)));
            boolean fed = false;
            int status;
            try {
                Path proc = Path.of("/proc", Integer.toString(pid));
                await().atMost(Duration.ofSeconds(10))
                        .untilAsserted(() -> assertThat(fds(proc)).containsExactly("0", "1", "2", "3", "4"));
                assertThat(Files.readSymbolicLink(proc.resolve("fd/2"))).isEqualTo(out);
                assertThat(Files.readSymbolicLink(proc.resolve("fd/3"))).isEqualTo(three);
                assertThat(Files.readSymbolicLink(proc.resolve("fd/4"))).isEqualTo(four);
                assertThat(Files.readString(proc.resolve("environ"))).isEqualTo("ONLY=this\0");
                assertThat(Files.readSymbolicLink(proc.resolve("cwd"))).isEqualTo(work);
                // No signal blocked, none of 1..31 ignored (glibc's posix_spawn ignores its own two internal ones, 32
                // and 33).
                assertThat(signalMask(proc, "SigBlk")).isZero();
                assertThat(signalMask(proc, "SigIgn") & 0x7fff_ffffL).isZero();
                assertThat(Spawn.exitStatus(pid)).isEmpty();
                stdin.write("hello\n".getBytes(StandardCharsets.UTF_8));
                fed = true;
            } finally {
                stdin.close();
                if (!fed) {
                    ProcessHandle.of(pid).ifPresent(ProcessHandle::destroyForcibly);
                }
                status = Spawn.waitFor(pid);
            }
            assertThat(Spawn.exitCode(status)).isZero();
        }
        assertThat(out).hasContent("hello");
    }

    @Test
    void exitCodesAreTheShells() throws IOException {
        assertThat(Spawn.exitCode(Spawn.waitFor(sh("exit 7")))).isEqualTo(7);
        assertThat(Spawn.exitCode(Spawn.waitFor(sh("kill -9 $$")))).isEqualTo(137);
    }

    @Test
    void aChildThatOutlivesTheTimeoutIsKilledAndReaped() throws IOException {
        int pid = sh("sleep 60");
        assertThatThrownBy(() -> Spawn.waitFor(pid, Duration.ofMillis(200))).isInstanceOf(TimeoutException.class);
        assertThat(Path.of("/proc", Integer.toString(pid))).doesNotExist();
    }

    @Test
    void aMissingProgramIsAnError() {
        assertThatThrownBy(() -> Spawn.start(
                        List.of(dir.resolve("missing").toString()),
                        Map.of(),
                        dir,
                        List.of(new Spawn.Fd.Read(Path.of("/dev/null")))))
                .isInstanceOf(IOException.class)
                .hasMessageContaining("missing")
                .hasMessageContaining("No such file or directory");
    }

    private int sh(String script) throws IOException {
        Path devNull = Path.of("/dev/null");
        return Spawn.start(
                List.of("/bin/sh", "-c", script),
                Map.of(),
                dir,
                List.of(new Spawn.Fd.Read(devNull), new Spawn.Fd.Write(devNull), new Spawn.Fd.SameAs(1)));
    }

    private static long signalMask(Path proc, String field) throws IOException {
        return Files.readAllLines(proc.resolve("status")).stream()
                .filter(l -> l.startsWith(field + ":"))
                .map(l -> Long.parseUnsignedLong(l.substring(field.length() + 1).strip(), 16))
                .findFirst()
                .orElseThrow();
    }

    private static List<String> fds(Path proc) throws IOException {
        try (Stream<Path> fds = Files.list(proc.resolve("fd"))) {
            return fds.map(p -> p.getFileName().toString()).sorted().toList();
        }
    }
}
