package dev.stevedore.agent.tasks;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.channels.ClosedByInterruptException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TaskRecordsTest {
    private static final String UID = "0a1b2c3d-0000-4000-8000-000000000001";

    @TempDir
    Path root;

    /** A record as agents with string timestamps wrote it, as it lies on a node being upgraded. */
    private static final String EARLIER_AGENTS_RECORD = """
            {"uid":"%1$s","namespace":"ns","name":"t","containerUid":"c0ffee00","snapshotter":"overlayfs",\
            "snapshotKey":"k","runtime":"runc","runtimeId":"%1$s","bundle":"/b","state":"RUNNING","pid":4242,\
            "startedAt":"2026-01-01T00:00:00Z","stopRequestedAt":"2026-01-01T00:00:05.123456789Z","stopSignal":"SIGTERM",\
            "stopGracePeriodSeconds":10,"generation":1,"released":false,"reported":false}
            """.formatted(UID);

    @Test
    void recordsOfEarlierAgentsAreReadAndWrittenBackInTheSameForm() throws IOException {
        TaskRecords records = new TaskRecords(root, root.resolve("exits"));
        Path file = records.taskDir(UID).resolve("record.json");
        Files.createDirectories(file.getParent());
        Files.writeString(file, EARLIER_AGENTS_RECORD);

        TaskRecord rec = records.get(UID).orElseThrow();
        assertThat(rec.state()).isEqualTo(TaskRecord.State.RUNNING);
        assertThat(rec.startedAt()).isEqualTo(Instant.parse("2026-01-01T00:00:00Z"));
        assertThat(rec.stopRequestedAt()).isEqualTo(Instant.parse("2026-01-01T00:00:05.123456789Z"));
        assertThat(rec.killAt()).isEqualTo(Instant.parse("2026-01-01T00:00:15.123456789Z"));

        records.put(rec);
        ObjectMapper json = new ObjectMapper();
        JsonNode written = json.readTree(file.toFile());
        assertThat(written).isEqualTo(json.readTree(EARLIER_AGENTS_RECORD));
        assertThat(records.get(UID)).contains(rec);
    }

    @Test
    void aRecordSurvivesItsWriteAndRead() throws IOException {
        TaskRecords records = new TaskRecords(root, root.resolve("exits"));
        TaskRecord rec = TaskRecord.creating(UID, "ns", "t", "c0ffee00", "overlayfs", "k", "crun", "/b", 2L, null)
                .created(new ProcessId(7L, 123_456L), new ProcessId(5L, 123_400L))
                .started(Instant.parse("2026-12-01T10:00:00.5Z"))
                .exited(137, Instant.parse("2026-12-01T10:01:00Z"), "Signaled", "killed by SIGKILL")
                .releasedNow();
        records.put(rec);
        assertThat(records.get(UID)).contains(rec);
        assertThat(records.list()).containsExactly(rec);
        records.delete(UID);
        assertThat(records.get(UID)).isEmpty();
    }

    /**
     * conmon links {@code task-sockets/<id>} to the task's bundle (the id cut short when the socket path would be too
     * long) and never removes the link; deleting the task's records removes it, and only its.
     */
    @Test
    void deletingATaskRemovesConmonsLinkToItsBundle() throws IOException {
        TaskRecords records = new TaskRecords(root, root.resolve("exits"));
        String other = "0a1b2c3d-0000-4000-8000-000000000002";
        records.put(record());
        Files.createDirectories(records.bundle(UID));
        Files.createDirectories(records.bundle(other));
        Path link = Files.createSymbolicLink(records.socketDir().resolve(UID), records.bundle(UID));
        Path cutShort =
                Files.createSymbolicLink(records.socketDir().resolve(UID.substring(0, 30)), records.bundle(UID));
        Path notAPrefix =
                Files.createSymbolicLink(records.socketDir().resolve(UID.substring(0, 30) + "x"), records.bundle(UID));
        Path others = Files.createSymbolicLink(records.socketDir().resolve(other), records.bundle(other));

        records.delete(UID);

        assertThat(Files.isSymbolicLink(link)).isFalse();
        assertThat(Files.isSymbolicLink(cutShort)).isFalse();
        assertThat(Files.isSymbolicLink(others)).isTrue();
        assertThat(Files.isSymbolicLink(notAPrefix)).as("no prefix of the uid").isTrue();
    }

    @Test
    void leftoverConmonLinksToNoBundleAreRemovedAtStart() throws IOException {
        TaskRecords records = new TaskRecords(root, root.resolve("exits"));
        records.put(record());
        Files.createDirectories(records.bundle(UID));
        Path live = Files.createSymbolicLink(records.socketDir().resolve(UID), records.bundle(UID));
        Path dangling = Files.createSymbolicLink(
                records.socketDir().resolve("0a1b2c3d-0000-4000-8000-00000000000"),
                records.taskDir("0a1b2c3d-0000-4000-8000-000000000009").resolve("bundle"));

        records.removeLeftovers();

        assertThat(Files.isSymbolicLink(live)).isTrue();
        assertThat(Files.isSymbolicLink(dangling)).isFalse();
    }

    /**
     * Exit files live in the given directory (the state directory's, a tmpfs); an older agent's tasks write theirs
     * to {@code <root>/task-exits}, which is watched and read while it exists, and deleting an exit file deletes it
     * in both.
     */
    @Test
    void exitFilesOfTasksAnOlderAgentStartedAreFoundInItsDirectory() throws IOException {
        Path exits = root.resolve("state/exits/node-a");
        TaskRecords records = new TaskRecords(root, exits);
        assertThat(records.exitDir()).isEqualTo(exits).isDirectory();
        assertThat(records.exitDirs()).containsExactly(exits);
        assertThat(records.exitFile(UID)).isEqualTo(exits.resolve(UID));

        Path legacy = Files.createDirectories(root.resolve("task-exits"));
        Files.writeString(legacy.resolve(UID), "3");
        assertThat(records.exitDirs()).containsExactly(exits, legacy);
        assertThat(records.exitFile(UID)).isEqualTo(legacy.resolve(UID));
        Files.writeString(exits.resolve(UID), "3");

        records.deleteExitFile(UID);

        assertThat(exits.resolve(UID)).doesNotExist();
        assertThat(legacy.resolve(UID)).doesNotExist();
        assertThat(TaskRecords.exitDir(Path.of("/run/stevedore"), "node-a"))
                .isEqualTo(Path.of("/run/stevedore/exits/node-a"));
    }

    /**
     * A record an agent before process start times wrote: read as it is, the start times unknown, conmon's PID not
     * in it (that agent kept it in conmon's pid file only).
     */
    @Test
    void aRecordOfAnOlderAgentReadsWithItsProcessesUnknown() throws IOException {
        TaskRecords records = new TaskRecords(root, root.resolve("exits"));
        Files.createDirectories(records.taskDir(UID));
        Files.writeString(records.taskDir(UID).resolve("record.json"), """
                {"uid":"%s","namespace":"ns","name":"t","containerUid":"c0ffee00","snapshotter":"overlayfs",
                 "snapshotKey":"k","runtime":"runc","runtimeId":"%s","bundle":"/b","state":"RUNNING","pid":7,
                 "startedAt":"2026-12-01T10:00:00.5Z","generation":1,"released":false,"reported":false}
                """.formatted(UID, UID));

        TaskRecord rec = records.get(UID).orElseThrow();
        assertThat(rec.process()).isEqualTo(new ProcessId(7L, null));
        assertThat(rec.conmon()).isNull();
        // Adoption learns what it finds, keeping what was recorded: the start time only for the recorded PID.
        TaskRecord adopted =
                rec.found(TaskRecord.State.RUNNING, new ProcessId(7L, 900L), new ProcessId(5L, 880L), Instant.EPOCH);
        assertThat(adopted.process()).isEqualTo(new ProcessId(7L, 900L));
        assertThat(adopted.conmon()).isEqualTo(new ProcessId(5L, 880L));
        assertThat(adopted.startedAt()).isEqualTo(Instant.parse("2026-12-01T10:00:00.5Z"));
        // What is recorded is never overwritten by what a PID shows later.
        assertThat(adopted.found(TaskRecord.State.RUNNING, new ProcessId(7L, 1L), new ProcessId(5L, 1L), Instant.EPOCH))
                .isEqualTo(adopted);
        assertThat(rec.found(TaskRecord.State.RUNNING, new ProcessId(8L, 900L), null, Instant.EPOCH)
                        .process())
                .isEqualTo(new ProcessId(7L, null));
    }

    /**
     * A write that stops half-way (here: the thread is interrupted, which closes the channel at its first write; a
     * crash or a full disk stop it likewise) leaves the previous record as it was, and no temp file.
     */
    @Test
    void aWriteThatStopsHalfWayLeavesThePreviousRecord() throws IOException {
        TaskRecords records = new TaskRecords(root, root.resolve("exits"));
        TaskRecord created = record();
        records.put(created);

        Thread.currentThread().interrupt();
        try {
            assertThatThrownBy(() -> records.put(created.started(Instant.parse("2026-12-01T10:00:01Z"))))
                    .isInstanceOf(ClosedByInterruptException.class);
        } finally {
            Thread.interrupted();
        }

        assertThat(records.get(UID)).contains(created);
        assertThat(records.list()).containsExactly(created);
        assertThat(filesIn(records.taskDir(UID))).containsExactly("record.json");
    }

    /** A crash between writing the temp file and renaming it: the temp file is never read, the record is the old one. */
    @Test
    void theTempFileOfATornWriteIsIgnoredAndTheRecordIsThePreviousOne() throws IOException {
        TaskRecords records = new TaskRecords(root, root.resolve("exits"));
        TaskRecord created = record();
        records.put(created);
        byte[] next = new ObjectMapper()
                .findAndRegisterModules()
                .writeValueAsBytes(created.started(Instant.parse("2026-12-01T10:00:01Z")));
        Files.write(records.taskDir(UID).resolve(".record.json.4242.tmp"), Arrays.copyOf(next, next.length / 2));

        records.removeLeftovers(); // as at start-up
        assertThat(records.get(UID)).contains(created);
        assertThat(records.list()).containsExactly(created);

        TaskRecord started = created.started(Instant.parse("2026-12-01T10:00:02Z"));
        records.put(started);
        assertThat(records.get(UID)).contains(started);
    }

    /**
     * A crash before the first record was renamed into place leaves a directory with only a partial temp file: no
     * record, and start-up removes the directory, unless it holds a rootfs (which may still be mounted).
     */
    @Test
    void aDirectoryWhoseFirstWriteWasTornIsNoRecordAndStartupRemovesIt() throws IOException {
        TaskRecords records = new TaskRecords(root, root.resolve("exits"));
        String mounted = "0a1b2c3d-0000-4000-8000-000000000002";
        Files.createDirectories(records.taskDir(UID));
        Files.writeString(records.taskDir(UID).resolve(".record.json.17.tmp"), "{\"uid\":\"" + UID + "\",\"na");
        Files.createDirectories(records.bundle(mounted).resolve("rootfs"));

        assertThat(records.get(UID)).isEmpty();
        assertThat(records.list()).isEmpty();
        records.removeLeftovers();

        assertThat(records.taskDir(UID)).doesNotExist();
        assertThat(records.bundle(mounted).resolve("rootfs")).isDirectory();
    }

    private static TaskRecord record() {
        return TaskRecord.creating(UID, "ns", "t", "c0ffee00", "overlayfs", "k", "runc", "/b", 1L, null)
                .created(new ProcessId(7L, 123_456L), new ProcessId(5L, 123_400L));
    }

    private static List<String> filesIn(Path dir) throws IOException {
        try (Stream<Path> files = Files.list(dir)) {
            return files.map(f -> f.getFileName().toString()).sorted().toList();
        }
    }
}
