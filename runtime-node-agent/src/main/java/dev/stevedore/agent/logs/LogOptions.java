package dev.stevedore.agent.logs;

import java.time.Instant;

/**
 * What part of a task's log to give, as {@code kubectl logs} asks for it (PodLogOptions).
 *
 * @param stream which of the task's streams: both, stdout or stderr
 * @param tailLines only the last lines (of the chosen stream), null for all
 * @param since only lines logged at or after this time, null for all
 * @param timestamps each line prefixed with the time it was logged (RFC 3339, nanoseconds, UTC)
 * @param follow after what is there, what the task logs until it has exited
 */
public record LogOptions(Stream stream, Long tailLines, Instant since, boolean timestamps, boolean follow) {
    public enum Stream {
        ALL,
        STDOUT,
        STDERR;

        boolean includes(String name) {
            return this == ALL || name().equalsIgnoreCase(name);
        }
    }

    public static final LogOptions ALL = new LogOptions(Stream.ALL, null, null, false, false);

    public LogOptions {
        if (tailLines != null && tailLines < 0) {
            throw new IllegalArgumentException("tailLines must not be negative: " + tailLines);
        }
    }
}
