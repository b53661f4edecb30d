package dev.stevedore.agent.logs;

import dev.stevedore.agent.fs.PosixFiles;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.time.Clock;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A task's log on the node, rotated by size as kubelet rotates a container's ({@code containerLogMaxSize},
 * {@code containerLogMaxFiles}): conmon writes {@code task.log}; once it has reached the maximum size it is renamed
 * to {@code task.log.<UTC time>} and conmon is asked to reopen its log (its control FIFO, as CRI-O's
 * ReopenContainerLog does), and the oldest rotated files beyond the limit go. Unlike kubelet, rotated files are not
 * compressed: a reader can follow them as they are.
 *
 * @param log the file conmon writes
 */
public record TaskLogFiles(Path log, LogLimits limits) {
    private static final Logger LOG = LoggerFactory.getLogger(TaskLogFiles.class);
    private static final DateTimeFormatter SUFFIX =
            DateTimeFormatter.ofPattern("uuuuMMdd-HHmmss.SSS").withZone(ZoneOffset.UTC);
    /** conmon's control message that makes it reopen its log files (REOPEN_LOGS_EVENT, no window size). */
    private static final byte[] REOPEN_LOGS = "2 0 0\n".getBytes(StandardCharsets.US_ASCII);

    /** The rotated files, oldest first, then the one conmon writes (if there is one yet). */
    public List<Path> files() throws IOException {
        List<Path> files = new ArrayList<>(rotated());
        if (Files.exists(log)) {
            files.add(log);
        }
        return files;
    }

    /**
     * Rotates the log if it has reached the maximum size, asking the task's conmon through {@code controlFifo} to
     * reopen it. Returns whether it did. A conmon that is gone (the task exited) writes nothing more: its log is left
     * as it is.
     */
    public boolean rotateIfFull(Path controlFifo, Clock clock) throws IOException {
        long size;
        try {
            size = Files.size(log);
        } catch (NoSuchFileException e) {
            return false;
        }
        if (size < limits.maxSize()) {
            return false;
        }
        Path rotated = log.resolveSibling(log.getFileName() + "." + SUFFIX.format(clock.instant()));
        if (Files.exists(rotated)) {
            return false; // rotated this very millisecond: the next look does it
        }
        Files.move(log, rotated);
        if (!PosixFiles.writeToFifo(controlFifo, REOPEN_LOGS)) {
            // Its conmon ended between the size and the move: the task's last lines are in the rotated file.
            LOG.debug("no conmon reads {}; {} rotated without a reopen", controlFifo, log);
        }
        List<Path> old = rotated();
        for (Path gone : old.subList(0, Math.max(0, old.size() - (limits.maxFiles() - 1)))) {
            Files.deleteIfExists(gone);
        }
        return true;
    }

    /** Rotated files sort by name as by time: the suffix is a fixed-width UTC time. */
    private List<Path> rotated() throws IOException {
        String prefix = log.getFileName() + ".";
        try (Stream<Path> siblings = Files.list(log.getParent())) {
            return siblings.filter(p -> p.getFileName().toString().startsWith(prefix))
                    .sorted()
                    .toList();
        } catch (NoSuchFileException e) {
            return List.of();
        }
    }
}
