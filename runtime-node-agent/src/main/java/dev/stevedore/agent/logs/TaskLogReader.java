package dev.stevedore.agent.logs;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.Arrays;
import java.util.Deque;
import java.util.List;
import java.util.Objects;
import java.util.function.BooleanSupplier;
import java.util.function.Consumer;

/**
 * Reads a task's log as kubelet's log reader does for {@code kubectl logs}: the rotated files and the current one in
 * order, the lines of the chosen stream since a time, the last N of them, and with {@code follow} what the task logs
 * after that — across rotations — until it has exited and everything it logged has been given.
 */
public final class TaskLogReader {
    /** How often a followed log is looked at for more: kubelet's reader wakes on inotify, this one polls. */
    static final Duration FOLLOW_POLL = Duration.ofMillis(100);
    /** A "line" longer than this without a newline is not conmon's: it is dropped, not held in memory. */
    private static final int MAX_LINE = 1024 * 1024;

    private final TaskLogFiles files;
    private final LogOptions options;
    private final OutputStream out;

    private TaskLogReader(TaskLogFiles files, LogOptions options, OutputStream out) {
        this.files = files;
        this.options = options;
        this.out = out;
    }

    /**
     * Writes the task's log to {@code out} as {@code options} say. With {@code follow}, returns once {@code live}
     * is false (asked after reaching the end) and what was logged before has been written; an {@link IOException}
     * from {@code out} (the reader went away) ends it too.
     */
    public static void read(TaskLogFiles files, LogOptions options, OutputStream out, BooleanSupplier live)
            throws IOException, InterruptedException {
        try {
            new TaskLogReader(files, options, out).read(live);
        } catch (ReaderGone e) {
            throw (IOException) e.getCause();
        }
    }

    private void read(BooleanSupplier live) throws IOException, InterruptedException {
        List<Path> all = files.files();
        Deque<LogLine> tail = options.tailLines() == null ? null : new ArrayDeque<>();
        Consumer<LogLine> sink = tail == null ? this::write : line -> keepLast(tail, line);
        Source current = null;
        for (Path file : all) {
            Source source = Source.open(file);
            if (source == null) {
                continue; // rotated away between the listing and now: its lines are in the next file
            }
            boolean last = file.equals(all.get(all.size() - 1));
            source.drain(sink, !(last && options.follow()));
            if (last && options.follow()) {
                current = source;
            } else {
                source.close();
            }
        }
        if (tail != null) {
            for (LogLine line : tail) {
                write(line);
            }
        }
        out.flush();
        if (options.follow()) {
            follow(current, live);
        }
    }

    /** Until the task has exited: more of the current file, and the file conmon writes next after a rotation. */
    private void follow(Source source, BooleanSupplier live) throws IOException, InterruptedException {
        try {
            while (true) {
                boolean wasLive = live.getAsBoolean();
                if (source != null) {
                    source.drain(this::write, false);
                }
                Object key = fileKey(files.log());
                if (key != null && (source == null || !key.equals(source.key))) {
                    // Rotated (or created): the old file's last lines were read above, its successor from the start.
                    if (source != null) {
                        source.drain(this::write, true);
                        source.close();
                    }
                    source = Source.open(files.log());
                    continue;
                }
                out.flush();
                if (!wasLive) {
                    if (source != null) {
                        source.drain(this::write, true);
                    }
                    out.flush();
                    return;
                }
                Thread.sleep(FOLLOW_POLL.toMillis());
            }
        } finally {
            if (source != null) {
                source.close();
            }
        }
    }

    private void keepLast(Deque<LogLine> tail, LogLine line) {
        if (!wanted(line)) {
            return;
        }
        tail.addLast(line);
        if (tail.size() > options.tailLines()) {
            tail.removeFirst();
        }
    }

    private void write(LogLine line) {
        if (wanted(line)) {
            try {
                out.write(line.render(options.timestamps()));
            } catch (IOException e) {
                throw new ReaderGone(e);
            }
        }
    }

    private boolean wanted(LogLine line) {
        return options.stream().includes(line.stream())
                && (options.since() == null || !line.time().isBefore(options.since()));
    }

    private static Object fileKey(Path file) throws IOException {
        try {
            return Files.readAttributes(file, BasicFileAttributes.class).fileKey();
        } catch (NoSuchFileException e) {
            return null;
        }
    }

    /** The output failed: the reader is gone. Unchecked only to pass through the line consumers. */
    static final class ReaderGone extends RuntimeException {
        private static final long serialVersionUID = 1L;

        ReaderGone(IOException cause) {
            super(cause);
        }
    }

    /** An open log file, read in whole lines; an incomplete last line is kept until its newline comes. */
    private static final class Source implements AutoCloseable {
        private final FileChannel channel;
        private final Object key;
        private final ByteBuffer buffer = ByteBuffer.allocate(64 * 1024);
        private byte[] carry = new byte[0];

        private Source(FileChannel channel, Object key) {
            this.channel = channel;
            this.key = key;
        }

        static Source open(Path file) throws IOException {
            try {
                FileChannel channel = FileChannel.open(file, StandardOpenOption.READ);
                return new Source(channel, Objects.requireNonNull(fileKey(file), "file key"));
            } catch (NoSuchFileException e) {
                return null;
            }
        }

        /** The whole lines there are now; with {@code toEnd}, an incomplete last line too. */
        void drain(Consumer<LogLine> sink, boolean toEnd) throws IOException {
            while (true) {
                buffer.clear();
                int n = channel.read(buffer);
                if (n <= 0) {
                    break;
                }
                byte[] bytes = Arrays.copyOf(carry, carry.length + n);
                System.arraycopy(buffer.array(), 0, bytes, carry.length, n);
                int start = 0;
                for (int i = 0; i < bytes.length; i++) {
                    if (bytes[i] == '\n') {
                        LogLine.parse(bytes, start, i).ifPresent(sink);
                        start = i + 1;
                    }
                }
                carry = bytes.length - start > MAX_LINE ? new byte[0] : Arrays.copyOfRange(bytes, start, bytes.length);
            }
            if (toEnd && carry.length > 0) {
                LogLine.parse(carry, 0, carry.length).ifPresent(sink);
                carry = new byte[0];
            }
        }

        @Override
        public void close() throws IOException {
            channel.close();
        }
    }
}
