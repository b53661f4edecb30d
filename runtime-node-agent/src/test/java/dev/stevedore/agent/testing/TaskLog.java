package dev.stevedore.agent.testing;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.time.OffsetDateTime;
import java.util.List;
import java.util.Optional;

/**
 * A task's log as conmon writes it ({@code k8s-file}: {@code <RFC 3339 time, nanoseconds> <stream> <F|P> <text>}),
 * line by line: conmon stamps each line when it reads it, so the times tell when the process wrote them.
 */
public record TaskLog(List<Line> lines) {
    public record Line(Instant time, String stream, String text) {}

    public static TaskLog read(Path file) {
        try {
            return new TaskLog(
                    Files.readAllLines(file).stream().map(TaskLog::parse).toList());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** The first stdout line that is exactly {@code text}. */
    public Optional<Line> first(String text) {
        return stdout(text).findFirst();
    }

    /** The last stdout line that is exactly {@code text}. */
    public Optional<Line> last(String text) {
        return stdout(text).reduce((earlier, later) -> later);
    }

    private java.util.stream.Stream<Line> stdout(String text) {
        return lines.stream()
                .filter(l -> l.stream().equals("stdout") && l.text().equals(text));
    }

    private static Line parse(String line) {
        String[] parts = line.split(" ", 4);
        if (parts.length < 3) {
            throw new IllegalArgumentException("not a k8s-file log line: " + line);
        }
        return new Line(OffsetDateTime.parse(parts[0]).toInstant(), parts[1], parts.length == 4 ? parts[3] : "");
    }
}
