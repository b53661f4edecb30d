package dev.stevedore.agent.tasks;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.datatype.jsr310.JavaTimeModule;
import dev.stevedore.agent.fs.AtomicFiles;
import dev.stevedore.agent.fs.SafeDelete;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.function.Predicate;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * The node's task records, under {@code <root>/tasks/<task-uid>/}: record.json (crash-safe), the bundle, conmon's
 * files and the task's log, which stays until the Task object is removed. Exit files go to {@code <root>/task-exits}.
 */
public final class TaskRecords {
    private static final Pattern UID = Pattern.compile("[a-f0-9-]{1,64}");
    /** Instants as RFC 3339 strings, as records always had them: a record survives an agent upgrade either way. */
    private static final ObjectMapper JSON = new ObjectMapper()
            .registerModule(new JavaTimeModule())
            .disable(SerializationFeature.WRITE_DATES_AS_TIMESTAMPS);

    private final Path dir;
    private final Path exitDir;
    private final Path socketDir;

    public TaskRecords(Path root) throws IOException {
        this.dir = root.resolve("tasks");
        this.exitDir = root.resolve("task-exits");
        this.socketDir = root.resolve("task-sockets");
        Files.createDirectories(dir);
        Files.createDirectories(exitDir);
        Files.createDirectories(socketDir);
    }

    public Optional<TaskRecord> get(String uid) {
        Path file = taskDir(uid).resolve("record.json");
        try {
            return Files.exists(file) ? Optional.of(JSON.readValue(file.toFile(), TaskRecord.class)) : Optional.empty();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    public List<TaskRecord> list() {
        List<TaskRecord> records = new ArrayList<>();
        try (Stream<Path> dirs = Files.list(dir)) {
            for (Path d : dirs.toList()) {
                String name = d.getFileName().toString();
                if (UID.matcher(name).matches()) {
                    get(name).ifPresent(records::add);
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return records;
    }

    public void put(TaskRecord record) throws IOException {
        Files.createDirectories(taskDir(record.uid()));
        AtomicFiles.write(taskDir(record.uid()).resolve("record.json"), JSON.writeValueAsBytes(record));
    }

    /**
     * Removes the record first (a crash leaves a leftover, never a half record), then the directory with the log,
     * then conmon's link to it.
     */
    public void delete(String uid) throws IOException {
        Files.deleteIfExists(taskDir(uid).resolve("record.json"));
        SafeDelete.deleteTree(taskDir(uid));
        deleteSocketLinks(link -> uid.startsWith(link.getFileName().toString()));
    }

    /** Directories without a record (a crash before the first write, or during delete), and conmon links to none. */
    public void removeLeftovers() throws IOException {
        try (Stream<Path> dirs = Files.list(dir)) {
            for (Path d : dirs.toList()) {
                if (!Files.exists(d.resolve("record.json")) && !Files.exists(d.resolve("bundle/rootfs"))) {
                    SafeDelete.deleteTree(d);
                }
            }
        }
        deleteSocketLinks(link -> !Files.exists(link));
    }

    /**
     * conmon links {@code <socket dir>/<container id>} to the task's bundle, so that the attach socket's path fits a
     * socket address (cutting the id short where it would not), and leaves the link behind: one per task, forever.
     */
    private void deleteSocketLinks(Predicate<Path> which) throws IOException {
        try (Stream<Path> links = Files.list(socketDir)) {
            for (Path link : links.toList()) {
                if (Files.isSymbolicLink(link) && which.test(link)) {
                    Files.deleteIfExists(link);
                }
            }
        }
    }

    public Path taskDir(String uid) {
        if (!UID.matcher(uid).matches()) {
            throw new IllegalArgumentException("not a UID: " + uid);
        }
        return dir.resolve(uid);
    }

    public Path bundle(String uid) {
        return taskDir(uid).resolve("bundle");
    }

    public Path log(String uid) {
        return taskDir(uid).resolve("task.log");
    }

    public Path persistDir(String uid) {
        return taskDir(uid).resolve("conmon");
    }

    public Path exitDir() {
        return exitDir;
    }

    public Path socketDir() {
        return socketDir;
    }

    public Path tasksDir() {
        return dir;
    }
}
