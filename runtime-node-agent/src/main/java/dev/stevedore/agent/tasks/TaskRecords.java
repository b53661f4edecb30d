package dev.stevedore.agent.tasks;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.datatype.jsr310.JavaTimeModule;
import dev.stevedore.agent.fs.AtomicFiles;
import dev.stevedore.agent.fs.SafeDelete;
import dev.stevedore.agent.fs.StateDirectories;
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
 * files and the task's log, which stays until the Task object is removed.
 *
 * <p>conmon writes a task's exit file to {@code <state-dir>/exits/<node>}, not to the root: the state directory is a
 * tmpfs ({@code /run}), as CRI-O keeps its exits, so an exit is recorded even while the root's disk is full, which
 * would otherwise lose it for good. The node's name keeps apart agents that share a state directory (several on one
 * host, as in tests), since an agent deletes exit files it has no task for. Agents before this wrote them to
 * {@code <root>/task-exits}; that directory, where it exists, is read too, for the tasks such an agent started.
 */
public final class TaskRecords {
    private static final Pattern UID = Pattern.compile("[a-f0-9-]{1,64}");
    /** Instants as RFC 3339 strings, as records always had them: a record survives an agent upgrade either way. */
    private static final ObjectMapper JSON = new ObjectMapper()
            .registerModule(new JavaTimeModule())
            .disable(SerializationFeature.WRITE_DATES_AS_TIMESTAMPS);

    private final Path dir;
    private final Path exitDir;
    private final Path legacyExitDir;
    private final Path socketDir;

    /** The records in {@code root}, with exit files in {@code exitDir} (see {@link #exitDir(Path, String)}). */
    public TaskRecords(Path root, Path exitDir) throws IOException {
        this.dir = root.resolve("tasks");
        this.exitDir = exitDir;
        this.legacyExitDir = root.resolve("task-exits");
        this.socketDir = root.resolve("task-sockets");
        Files.createDirectories(dir);
        Files.createDirectories(socketDir);
        StateDirectories.closeOwn(
                exitDir.getParent(), List.of(exitDir.getFileName().toString()));
    }

    /** Where the tasks of the agent of {@code nodeName} leave their exit files. */
    public static Path exitDir(Path stateDir, String nodeName) {
        return stateDir.resolve("exits").resolve(nodeName);
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

    public Path conmonDir(String uid) {
        return taskDir(uid).resolve("conmon");
    }

    /** The directory conmon writes new tasks' exit files to. */
    public Path exitDir() {
        return exitDir;
    }

    /** The directories exit files appear in: {@link #exitDir()}, and the legacy one while it exists. */
    public List<Path> exitDirs() {
        return Files.isDirectory(legacyExitDir) ? List.of(exitDir, legacyExitDir) : List.of(exitDir);
    }

    /** The exit file of {@code runtimeId}: the one there is, in either directory, else where conmon will write it. */
    public Path exitFile(String runtimeId) {
        Path legacy = legacyExitDir.resolve(runtimeId);
        return Files.exists(legacy) ? legacy : exitDir.resolve(runtimeId);
    }

    public void deleteExitFile(String runtimeId) throws IOException {
        Files.deleteIfExists(exitDir.resolve(runtimeId));
        Files.deleteIfExists(legacyExitDir.resolve(runtimeId));
    }

    public Path socketDir() {
        return socketDir;
    }

    public Path tasksDir() {
        return dir;
    }
}
