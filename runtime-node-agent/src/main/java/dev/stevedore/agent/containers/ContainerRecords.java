package dev.stevedore.agent.containers;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.stevedore.agent.fs.AtomicFiles;
import dev.stevedore.agent.fs.SafeDelete;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * The node's Container records and generated specs, under {@code <root>/containers/<uid>/}: record.json and
 * specs/<sha256-hex>.json. Written crash-safely; a directory without record.json is a leftover to remove.
 */
public final class ContainerRecords {
    private static final Pattern UID = Pattern.compile("[a-f0-9-]{1,64}");
    private static final ObjectMapper JSON = new ObjectMapper();

    private final Path dir;

    public ContainerRecords(Path root) throws IOException {
        this.dir = root.resolve("containers");
        Files.createDirectories(dir);
    }

    public Optional<ContainerRecord> get(String uid) {
        Path file = recordFile(uid);
        try {
            return Files.exists(file)
                    ? Optional.of(JSON.readValue(file.toFile(), ContainerRecord.class))
                    : Optional.empty();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    public List<ContainerRecord> list() throws IOException {
        List<ContainerRecord> records = new ArrayList<>();
        try (Stream<Path> dirs = Files.list(dir)) {
            for (Path d : dirs.toList()) {
                get(d.getFileName().toString()).ifPresent(records::add);
            }
        }
        return records;
    }

    public void put(ContainerRecord record) throws IOException {
        AtomicFiles.write(recordFile(record.uid()), JSON.writeValueAsBytes(record));
    }

    /** Writes a generated spec under its digest ("sha256:hex"); returns its path. */
    public Path putSpec(String uid, String digest, ObjectNode spec) throws IOException {
        Path file = specFile(uid, digest);
        if (!Files.exists(file)) {
            AtomicFiles.write(file, JSON.writerWithDefaultPrettyPrinter().writeValueAsBytes(spec));
        }
        return file;
    }

    /** Specs of earlier generations: a Task copies its spec into its bundle, so only the current one is needed. */
    public void removeSpecsExcept(String uid, String digest) throws IOException {
        Path keep = specFile(uid, digest);
        try (Stream<Path> files = Files.list(keep.getParent())) {
            for (Path file : files.filter(f -> !f.equals(keep)).toList()) {
                Files.deleteIfExists(file);
            }
        }
    }

    public Path specFile(String uid, String digest) {
        return containerDir(uid).resolve("specs").resolve(digest.substring(digest.indexOf(':') + 1) + ".json");
    }

    /** Removes what the node keeps of a Container: its record (first, so a crash leaves a leftover, not a record) and specs. */
    public void delete(String uid) throws IOException {
        Files.deleteIfExists(recordFile(uid));
        SafeDelete.deleteTree(containerDir(uid));
    }

    /** Directories a crash left without a record. */
    public void removeLeftovers() throws IOException {
        try (Stream<Path> dirs = Files.list(dir)) {
            for (Path d : dirs.toList()) {
                if (!Files.exists(d.resolve("record.json"))) {
                    SafeDelete.deleteTree(d);
                }
            }
        }
    }

    private Path recordFile(String uid) {
        return containerDir(uid).resolve("record.json");
    }

    private Path containerDir(String uid) {
        if (!UID.matcher(uid).matches()) {
            throw new IllegalArgumentException("not a UID: " + uid);
        }
        return dir.resolve(uid);
    }
}
