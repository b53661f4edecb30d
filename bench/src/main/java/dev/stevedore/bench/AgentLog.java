package dev.stevedore.bench;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.OptionalLong;

/**
 * Reads the node agent's log (JSON lines, as logback's JsonEncoder writes them: "timestamp" in epoch milliseconds,
 * "formattedMessage") from where the last read stopped, for the times of what the agent logs: "pulled NAME as
 * DIGEST", written once every blob is verified in the content store and the image record is on disk, before any
 * layer is unpacked. Both JVMs read the same system clock, so its timestamps compare with the benchmark's
 * {@link System#currentTimeMillis()}, to the millisecond.
 */
final class AgentLog {
    private static final ObjectMapper JSON = new ObjectMapper();

    private final Path file;
    private long offset;

    AgentLog(Path file) {
        this.file = file;
    }

    /** Skips what the log holds so far. */
    void skipToEnd() {
        try (RandomAccessFile in = new RandomAccessFile(file.toFile(), "r")) {
            offset = in.length();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** The time (epoch ms) of the last line since the previous read whose message starts with {@code prefix}. */
    OptionalLong lastSince(String prefix) {
        OptionalLong found = OptionalLong.empty();
        try (RandomAccessFile in = new RandomAccessFile(file.toFile(), "r")) {
            long length = in.length();
            if (length <= offset) {
                return found;
            }
            byte[] bytes = new byte[(int) (length - offset)];
            in.seek(offset);
            in.readFully(bytes);
            int end = lastNewline(bytes);
            if (end < 0) {
                return found; // no complete line yet
            }
            offset += end + 1;
            for (String line : new String(bytes, 0, end, StandardCharsets.UTF_8).split("\n")) {
                JsonNode entry = parse(line);
                if (entry != null
                        && entry.path("formattedMessage").asText("").startsWith(prefix)
                        && entry.has("timestamp")) {
                    found = OptionalLong.of(entry.path("timestamp").asLong());
                }
            }
            return found;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static int lastNewline(byte[] bytes) {
        for (int i = bytes.length - 1; i >= 0; i--) {
            if (bytes[i] == '\n') {
                return i;
            }
        }
        return -1;
    }

    private static JsonNode parse(String line) {
        if (!line.startsWith("{")) {
            return null; // a JVM warning or a stack trace line
        }
        try {
            return JSON.readTree(line);
        } catch (JsonProcessingException e) {
            return null;
        }
    }
}
