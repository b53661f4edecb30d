package dev.stevedore.agent.images;

import static org.assertj.core.api.Assertions.assertThat;

import dev.stevedore.agent.content.Digest;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ImageRecordsTest {
    @TempDir
    Path dir;

    @Test
    void recordsSurviveARestart() throws IOException {
        Image image = image("127.0.0.1:5000/test/busybox:1");
        new ImageRecords(dir).put(image);

        ImageRecords restarted = new ImageRecords(dir);

        assertThat(restarted.get(image.name())).contains(image);
        assertThat(restarted.list()).containsExactly(image);
    }

    @Test
    void aRecordIsReplacedWhole() throws IOException {
        ImageRecords records = new ImageRecords(dir);
        records.put(image("busybox"));
        Image newer = new Image(
                "busybox",
                digest('9'),
                digest('9'),
                digest('8'),
                List.of(),
                new ImageConfig(List.of(), List.of("sh"), List.of(), "/", ""),
                1);

        records.put(newer);

        assertThat(new ImageRecords(dir).list()).containsExactly(newer);
        assertThat(jsonFiles()).hasSize(1);
    }

    @Test
    void aWriteInterruptedByACrashLeavesThePreviousRecord() throws IOException {
        Image image = image("busybox");
        new ImageRecords(dir).put(image);
        // What a crash between writing the temp file and renaming it leaves behind.
        Path temp = Files.writeString(dir.resolve(jsonFiles().get(0).getFileName() + "12345.tmp"), "{\"format\":1,");

        ImageRecords restarted = new ImageRecords(dir);

        assertThat(restarted.list()).containsExactly(image);
        assertThat(temp).doesNotExist();
    }

    @Test
    void unreadableRecordsAreSkipped() throws IOException {
        Files.writeString(dir.resolve("0".repeat(64) + ".json"), "not json");

        assertThat(new ImageRecords(dir).list()).isEmpty();
    }

    @Test
    void removedRecordsStayRemoved() throws IOException {
        ImageRecords records = new ImageRecords(dir);
        records.put(image("a"));
        records.put(image("b"));

        records.remove("a");

        assertThat(new ImageRecords(dir).list()).extracting(Image::name).containsExactly("b");
    }

    @Test
    void recordsWrittenByAnotherProcessAreSeenAtOnce() throws IOException {
        ImageRecords agent = new ImageRecords(dir);
        assertThat(agent.get("imported")).isEmpty();

        // stevedore-agent import, beside the running agent, on the same directory
        new ImageRecords(dir, false).put(image("imported"), true);

        assertThat(agent.get("imported")).contains(image("imported"));
        assertThat(agent.list()).containsExactly(image("imported"));
        assertThat(agent.pinned("imported")).isTrue();
    }

    @Test
    void onlyImportedImagesArePinnedAndOlderRecordsAreNot() throws IOException {
        ImageRecords records = new ImageRecords(dir);
        records.put(image("pulled"));
        records.put(image("imported"), true);
        Path old = dir.resolve(Digest.sha256Of("pulled".getBytes(java.nio.charset.StandardCharsets.UTF_8))
                        .hex() + ".json");
        assertThat(old).exists();
        String withoutPin = Files.readString(old).replaceAll(",\\s*\"pinned\"\\s*:\\s*(true|false)", "");
        Files.writeString(old, withoutPin); // as an agent before pins wrote it

        assertThat(records.pinned("pulled")).isFalse();
        assertThat(records.pinned("imported")).isTrue();
        assertThat(records.pinned("unknown")).isFalse();
        assertThat(new ImageRecords(dir).list()).extracting(Image::name).containsExactly("imported", "pulled");
    }

    @Test
    void anotherProcessLeavesTempFilesAlone() throws IOException {
        new ImageRecords(dir).put(image("busybox"));
        Path inProgress =
                Files.writeString(dir.resolve(jsonFiles().get(0).getFileName() + "777.tmp"), "{\"format\":1,");

        new ImageRecords(dir, false);

        assertThat(inProgress).exists();
    }

    private List<Path> jsonFiles() throws IOException {
        try (Stream<Path> files = Files.list(dir)) {
            return files.filter(f -> f.toString().endsWith(".json")).toList();
        }
    }

    private static Image image(String name) {
        return new Image(
                name,
                digest('1'),
                digest('2'),
                digest('3'),
                List.of(new Image.Layer(digest('4'), "application/vnd.oci.image.layer.v1.tar+gzip", 42, digest('5'))),
                new ImageConfig(List.of("/bin/sh"), List.of("-c", "true"), List.of("PATH=/bin"), "/", "0:0"),
                100);
    }

    private static Digest digest(char c) {
        return new Digest("sha256", String.valueOf(c).repeat(64));
    }
}
