package dev.stevedore.agent.tasks;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
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
        TaskRecords records = new TaskRecords(root);
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
        TaskRecords records = new TaskRecords(root);
        TaskRecord rec = TaskRecord.creating(UID, "ns", "t", "c0ffee00", "overlayfs", "k", "crun", "/b", 2L)
                .created(7L)
                .started(Instant.parse("2026-12-01T10:00:00.5Z"))
                .exited(137, Instant.parse("2026-12-01T10:01:00Z"), "Signaled", "killed by SIGKILL")
                .releasedNow();
        records.put(rec);
        assertThat(records.get(UID)).contains(rec);
        assertThat(records.list()).containsExactly(rec);
        records.delete(UID);
        assertThat(records.get(UID)).isEmpty();
    }
}
