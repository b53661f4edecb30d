package dev.stevedore.agent.logs;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A task's log files as conmon writes them (CRI format), read as kubectl logs asks. */
class TaskLogReaderTest {
    @TempDir
    Path dir;

    private TaskLogFiles files() {
        return new TaskLogFiles(dir.resolve("task.log"), new LogLimits(1024, 3));
    }

    @Test
    void bothStreamsInOrderAcrossRotatedFilesOrOneOfThem() throws Exception {
        append("task.log.20261202-000000.000", line(1, "stdout", "F", "one"), line(2, "stderr", "F", "two"));
        append("task.log", line(3, "stdout", "P", "thr"), line(4, "stdout", "F", "ee"), line(5, "stderr", "F", ""));

        assertThat(read(LogOptions.ALL)).isEqualTo("one\ntwo\nthree\n\n");
        assertThat(read(new LogOptions(LogOptions.Stream.STDERR, null, null, false, false)))
                .isEqualTo("two\n\n");
        assertThat(read(new LogOptions(LogOptions.Stream.STDOUT, null, null, true, false)))
                .isEqualTo("2026-12-02T10:00:01.000000000Z one\n"
                        + "2026-12-02T10:00:03.000000000Z thr2026-12-02T10:00:04.000000000Z ee\n");
    }

    @Test
    void tailAndSinceCountOnlyTheLinesOfTheChosenStream() throws Exception {
        append("task.log.20261202-000000.000", line(1, "stdout", "F", "a"), line(2, "stdout", "F", "b"));
        append("task.log", line(3, "stderr", "F", "err"), line(4, "stdout", "F", "c"), line(5, "stdout", "F", "d"));

        assertThat(read(new LogOptions(LogOptions.Stream.STDOUT, 3L, null, false, false)))
                .isEqualTo("b\nc\nd\n");
        assertThat(read(new LogOptions(LogOptions.Stream.ALL, 0L, null, false, false)))
                .isEmpty();
        assertThat(read(new LogOptions(LogOptions.Stream.ALL, null, at(3), false, false)))
                .isEqualTo("err\nc\nd\n");
        assertThat(read(new LogOptions(LogOptions.Stream.ALL, 1L, at(1), false, false)))
                .isEqualTo("d\n");
    }

    @Test
    void linesConmonDidNotWriteAreSkippedAndAFinalLineWithoutNewlineIsGiven() throws Exception {
        Files.writeString(
                dir.resolve("task.log"),
                "garbage\n" + line(1, "stdout", "X", "bad tag") + "\n" + line(2, "stdout", "F", "ok") + "\n"
                        + line(3, "stdout", "F", "cut"));

        assertThat(read(LogOptions.ALL)).isEqualTo("ok\ncut\n");
    }

    @Test
    void followGivesWhatComesAcrossARotationAndEndsOnceTheTaskHasExited() throws Exception {
        append("task.log", line(1, "stdout", "F", "before"));
        AtomicBoolean live = new AtomicBoolean(true);
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        CompletableFuture<Void> following = CompletableFuture.runAsync(() -> {
            try {
                TaskLogReader.read(
                        files(), new LogOptions(LogOptions.Stream.ALL, null, null, false, true), out, live::get);
            } catch (IOException | InterruptedException e) {
                throw new IllegalStateException(e);
            }
        });
        await().atMost(Duration.ofSeconds(10))
                .until(() -> out.toString(StandardCharsets.UTF_8).equals("before\n"));

        append("task.log", line(2, "stdout", "F", "during"));
        await().atMost(Duration.ofSeconds(10))
                .until(() -> out.toString(StandardCharsets.UTF_8).equals("before\nduring\n"));
        // conmon still writes the renamed file until it reopens; then the new one.
        Files.writeString(dir.resolve("task.log"), "x".repeat(2000) + "\n", StandardOpenOption.APPEND);
        assertThat(files().rotateIfFull(dir.resolve("no-conmon-ctl"), Clock.fixed(at(3), ZoneOffset.UTC)))
                .isTrue();
        append("task.log.20261202-100003.000", line(3, "stderr", "F", "late in the old file"));
        append("task.log", line(4, "stdout", "F", "in the new file"));
        live.set(false);
        following.get(10, TimeUnit.SECONDS);

        assertThat(out.toString(StandardCharsets.UTF_8))
                .isEqualTo("before\nduring\nlate in the old file\nin the new file\n");
    }

    @Test
    void aReaderThatGoesAwayEndsTheFollow() throws Exception {
        append("task.log", line(1, "stdout", "F", "hello"));
        OutputStream gone = new OutputStream() {
            @Override
            public void write(int b) throws IOException {
                throw new IOException("broken pipe");
            }
        };

        assertThatThrownBy(() -> TaskLogReader.read(
                        files(), new LogOptions(LogOptions.Stream.ALL, null, null, false, true), gone, () -> true))
                .isInstanceOf(IOException.class)
                .hasMessage("broken pipe");
    }

    @Test
    void rotationKeepsTheNewestFilesAndAsksConmonToReopen() throws Exception {
        Path ctl = dir.resolve("ctl");
        new ProcessBuilder("mkfifo", ctl.toString()).start().waitFor();
        CompletableFuture<String> conmon = CompletableFuture.supplyAsync(() -> {
            try {
                return Files.readString(ctl);
            } catch (IOException e) {
                throw new IllegalStateException(e);
            }
        });
        await().atMost(Duration.ofSeconds(10)).until(() -> {
            Files.writeString(dir.resolve("task.log"), "x".repeat(1024));
            return files().rotateIfFull(ctl, Clock.fixed(at(1), ZoneOffset.UTC));
        });
        assertThat(conmon.get(10, TimeUnit.SECONDS)).isEqualTo("2 0 0\n");

        Files.writeString(dir.resolve("task.log"), "small");
        assertThat(files().rotateIfFull(ctl, Clock.fixed(at(2), ZoneOffset.UTC)))
                .isFalse();
        for (int second = 3; second <= 5; second++) {
            Files.writeString(dir.resolve("task.log"), "y".repeat(1500));
            // No conmon reads the FIFO any more: the rotation is done all the same, without blocking.
            assertThat(files().rotateIfFull(ctl, Clock.fixed(at(second), ZoneOffset.UTC)))
                    .isTrue();
        }
        assertThat(files().files())
                .extracting(p -> p.getFileName().toString())
                .containsExactly("task.log.20261202-100004.000", "task.log.20261202-100005.000");
    }

    private String read(LogOptions options) throws Exception {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        TaskLogReader.read(files(), options, out, () -> false);
        return out.toString(StandardCharsets.UTF_8);
    }

    private void append(String file, String... lines) throws IOException {
        Files.writeString(
                dir.resolve(file),
                String.join("\n", lines) + "\n",
                StandardOpenOption.CREATE,
                StandardOpenOption.APPEND);
    }

    private static Instant at(int second) {
        return Instant.parse("2026-12-02T10:00:00Z").plusSeconds(second);
    }

    /** As conmon stamps lines: local offset, nanoseconds. */
    private static String line(int second, String stream, String tag, String content) {
        String time = at(second).atOffset(ZoneOffset.ofHours(1)).toString().replace("+01:00", ".000000000+01:00");
        return time + " " + stream + " " + tag + (content.isEmpty() ? "" : " " + content);
    }
}
