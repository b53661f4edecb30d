package dev.stevedore.agent.tasks;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Exits are noticed when the exit file appears, by its file-system event: the watcher lists the directory only at
 * start (and after an event overflow) and has no periodic rescan, so a file written after start is reported by its
 * event or not at all.
 */
class ExitWatcherTest {
    private static final Duration TIMEOUT = Duration.ofSeconds(120);

    @TempDir
    Path exits;

    /** Runtime ids in the order reported; a file may be reported more than once (created, then written). */
    private final List<String> reported = new CopyOnWriteArrayList<>();

    @Test
    void anExitFileWrittenWhileWatchingIsReportedByItsEvent() throws Exception {
        try (ExitWatcher watcher = new ExitWatcher(List.of(exits), reported::add)) {
            watcher.start();
            assertThat(reported).as("found by the start-up listing").isEmpty();

            Files.writeString(exits.resolve("task-a"), "0");

            await().atMost(TIMEOUT).until(() -> reported.contains("task-a"));
        }
    }

    @Test
    void anExitFileRenamedIntoPlaceIsReportedAndTheHiddenTempFileNot() throws Exception {
        try (ExitWatcher watcher = new ExitWatcher(List.of(exits), reported::add)) {
            watcher.start();

            Path temp = Files.writeString(exits.resolve(".task-b.tmp"), "0");
            Files.move(temp, exits.resolve("task-b"), StandardCopyOption.ATOMIC_MOVE);

            await().atMost(TIMEOUT).until(() -> reported.contains("task-b"));
            // The temp file's events came before the rename's, in the same queue: had they been reported, they were.
            assertThat(reported).containsOnly("task-b");
        }
    }

    @Test
    void exitFilesWrittenWhileTheAgentWasDownAreReportedAtStart() throws Exception {
        Files.writeString(exits.resolve("exited-while-down"), "137");
        Files.writeString(exits.resolve(".exited-while-down.tmp"), "1");
        try (ExitWatcher watcher = new ExitWatcher(List.of(exits), reported::add)) {
            watcher.start();

            assertThat(reported).containsExactly("exited-while-down");
        }
    }

    @Test
    void aCallbackThatFailsDoesNotStopTheWatcher() throws Exception {
        try (ExitWatcher watcher = new ExitWatcher(List.of(exits), id -> {
            reported.add(id);
            throw new IllegalStateException("the task's lock is gone");
        })) {
            watcher.start();
            Files.writeString(exits.resolve("first"), "0");
            await().atMost(TIMEOUT).until(() -> reported.contains("first"));

            Files.writeString(exits.resolve("second"), "0");
            await().atMost(TIMEOUT).until(() -> reported.contains("second"));
        }
    }

    @Test
    void exitFilesOfEveryWatchedDirectoryAreReportedAtStartAndByTheirEvents(@TempDir Path legacy) throws Exception {
        Files.writeString(legacy.resolve("exited-while-down"), "0");
        try (ExitWatcher watcher = new ExitWatcher(List.of(exits, legacy), reported::add)) {
            watcher.start();
            assertThat(reported).containsExactly("exited-while-down");

            Files.writeString(legacy.resolve("started-by-an-older-agent"), "3");
            Files.writeString(exits.resolve("started-by-this-agent"), "4");

            await().atMost(TIMEOUT)
                    .until(() -> reported.containsAll(List.of("started-by-an-older-agent", "started-by-this-agent")));
        }
    }
}
