package dev.stevedore.agent.logs;

import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.time.format.DateTimeParseException;
import java.util.Arrays;
import java.util.Optional;

/**
 * One line of a task's log as conmon writes it in the CRI format kubelet reads ({@code k8s-file}): {@code <time
 * RFC 3339 with nanoseconds> <stdout|stderr> <F|P> <content>}, where P marks part of a line longer than conmon's
 * buffer, its content continued by the next. The content is kept as bytes: a task may write anything.
 */
record LogLine(Instant time, String stream, boolean partial, byte[] content) {
    private static final DateTimeFormatter UTC_NANOS =
            DateTimeFormatter.ofPattern("uuuu-MM-dd'T'HH:mm:ss.SSSSSSSSS'Z'").withZone(ZoneOffset.UTC);

    /** The line of {@code bytes[from, to)} (no newline), empty when it is not one conmon wrote. */
    static Optional<LogLine> parse(byte[] bytes, int from, int to) {
        int timeEnd = indexOf(bytes, from, to, (byte) ' ');
        int streamEnd = timeEnd < 0 ? -1 : indexOf(bytes, timeEnd + 1, to, (byte) ' ');
        if (streamEnd < 0 || streamEnd + 2 > to) {
            return Optional.empty();
        }
        byte tag = bytes[streamEnd + 1];
        boolean hasContent = streamEnd + 2 < to;
        if ((tag != 'F' && tag != 'P') || (hasContent && bytes[streamEnd + 2] != ' ')) {
            return Optional.empty();
        }
        try {
            Instant time = OffsetDateTime.parse(new String(bytes, from, timeEnd - from, StandardCharsets.US_ASCII))
                    .toInstant();
            String stream = new String(bytes, timeEnd + 1, streamEnd - timeEnd - 1, StandardCharsets.US_ASCII);
            byte[] content = hasContent ? Arrays.copyOfRange(bytes, streamEnd + 3, to) : new byte[0];
            return Optional.of(new LogLine(time, stream, tag == 'P', content));
        } catch (DateTimeParseException e) {
            return Optional.empty();
        }
    }

    /** The line as the reader gets it: its content, ended by a newline unless partial, after its time if asked. */
    byte[] render(boolean timestamps) {
        byte[] prefix = timestamps ? (UTC_NANOS.format(time) + " ").getBytes(StandardCharsets.US_ASCII) : new byte[0];
        byte[] out = new byte[prefix.length + content.length + (partial ? 0 : 1)];
        System.arraycopy(prefix, 0, out, 0, prefix.length);
        System.arraycopy(content, 0, out, prefix.length, content.length);
        if (!partial) {
            out[out.length - 1] = '\n';
        }
        return out;
    }

    private static int indexOf(byte[] bytes, int from, int to, byte b) {
        for (int i = from; i < to; i++) {
            if (bytes[i] == b) {
                return i;
            }
        }
        return -1;
    }
}
