package dev.stevedore.agent.testing;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.UUID;
import java.util.stream.Stream;

/**
 * Reads an agent's state directory as a node operator would, from outside and without opening its stores (a
 * snapshotter or content store would clean up on construction and so hide what a crash left). The layout is the
 * agent's: {@code content/{blobs,ingest}}, {@code images/<sha256 of name>.json}, {@code snapshots/<name>/<id>/info.json}
 * and {@code snapshots/<name>/tmp/}, {@code containers/<uid>/record.json}.
 */
public final class AgentRoot {
    private static final ObjectMapper JSON = new ObjectMapper();
    public static final List<String> SNAPSHOTTERS = List.of("overlayfs", "native");

    private final Path root;

    public AgentRoot(Path root) {
        this.root = root.toAbsolutePath().normalize();
    }

    public Path path() {
        return root;
    }

    /** A snapshot's info.json: its chain ID or key, kind and parent. */
    public record Snapshot(String snapshotter, long id, String name, String kind, String parent) {}

    public List<Snapshot> snapshots() {
        List<Snapshot> snapshots = new ArrayList<>();
        for (String snapshotter : SNAPSHOTTERS) {
            for (Path dir : list(root.resolve("snapshots").resolve(snapshotter))) {
                Path info = dir.resolve("info.json");
                JsonNode json = readJsonIfThere(info);
                if (json != null) {
                    snapshots.add(new Snapshot(
                            snapshotter,
                            json.path("id").asLong(),
                            json.path("name").asText(),
                            json.path("kind").asText(),
                            json.path("parent").isNull()
                                    ? null
                                    : json.path("parent").asText()));
                }
            }
        }
        return snapshots;
    }

    public List<Snapshot> committed(String chainId) {
        return snapshots().stream()
                .filter(s -> s.kind().equals("COMMITTED") && s.name().equals(chainId))
                .toList();
    }

    /** Unpacks, prepares and removals in progress (or a crash's leftovers): {@code snapshots/<name>/tmp/*}. */
    public List<Path> snapshotTemps() {
        List<Path> temps = new ArrayList<>();
        for (String snapshotter : SNAPSHOTTERS) {
            temps.addAll(list(root.resolve("snapshots").resolve(snapshotter).resolve("tmp")));
        }
        return temps;
    }

    /**
     * Unpacks and prepares in progress (or a crash's leftovers): {@code snapshots/<name>/tmp/<id>}. Not removals,
     * which are renamed to {@code tmp/<id>.removed} first and may be a garbage collection's of any earlier work.
     */
    public List<Path> snapshotsBeingBuilt() {
        return snapshotTemps().stream()
                .filter(p -> !p.getFileName().toString().endsWith(".removed"))
                .toList();
    }

    /** Chain IDs as the agent computes them from diff IDs: the first diff ID, then sha256 of "parent diff-id". */
    public static List<String> chainIds(List<String> diffIds) {
        List<String> chain = new ArrayList<>();
        for (String diffId : diffIds) {
            chain.add(chain.isEmpty() ? diffId : "sha256:" + sha256Hex(chain.get(chain.size() - 1) + " " + diffId));
        }
        return chain;
    }

    /** Downloads in progress (or a crash's leftovers). */
    public List<Path> ingestTemps() {
        return list(root.resolve("content/ingest"));
    }

    public Path blob(String digest) {
        return root.resolve("content/blobs").resolve(digest.replace(':', '/'));
    }

    public boolean hasBlob(String digest) {
        return Files.isRegularFile(blob(digest));
    }

    /**
     * Stores a blob no image references, as a finished download would (renamed into place): only a garbage
     * collection removes it, so its going shows that one ran after this call. Returns its digest.
     */
    public String putStrayBlob() {
        byte[] bytes = ("stray blob " + UUID.randomUUID()).getBytes(StandardCharsets.UTF_8);
        String digest = "sha256:" + sha256Hex(bytes);
        try {
            Path temp = Files.createTempFile(root, "stray", ".blob");
            Files.write(temp, bytes);
            Files.createDirectories(blob(digest).getParent());
            Files.move(temp, blob(digest), StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return digest;
    }

    /** The record file of an image name, as ImageRecords names it. */
    public Path imageRecord(String name) {
        return root.resolve("images").resolve(sha256Hex(name) + ".json");
    }

    /** The names in all image records. */
    public List<String> imageNames() {
        return list(root.resolve("images")).stream()
                .filter(f -> f.toString().endsWith(".json"))
                .map(f -> readJson(f).path("image").path("name").asText())
                .sorted()
                .toList();
    }

    /** Container directories a crash left without their record.json. */
    public List<Path> containerDirsWithoutRecord() {
        return list(root.resolve("containers")).stream()
                .filter(d -> !Files.exists(d.resolve("record.json")))
                .toList();
    }

    /** Mount points at or under the root, from /proc/self/mountinfo. */
    public List<String> mounts() {
        try {
            List<String> mounts = new ArrayList<>();
            for (String line : Files.readAllLines(Path.of("/proc/self/mountinfo"))) {
                String mountPoint = line.split(" ")[4].replace("\\040", " ");
                if (mountPoint.equals(root.toString()) || mountPoint.startsWith(root + "/")) {
                    mounts.add(mountPoint);
                }
            }
            return mounts;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Every path under the root (relative, directories with a trailing slash) except what lies under {@code snapshots/}. */
    public Set<String> filesOutsideSnapshots() {
        Set<String> files = new TreeSet<>();
        try (Stream<Path> walk = Files.walk(root)) {
            walk.filter(p -> !p.equals(root) && !p.startsWith(root.resolve("snapshots")))
                    .forEach(p -> files.add(root.relativize(p)
                            + (Files.isDirectory(p, java.nio.file.LinkOption.NOFOLLOW_LINKS) ? "/" : "")));
        } catch (IOException | UncheckedIOException e) {
            // a file removed while walked (garbage collection): walk again
            return filesOutsideSnapshots();
        }
        return files;
    }

    /** The leftovers a crash may leave and a started agent must clear, described; empty when there are none. */
    public List<String> leftovers() {
        List<String> leftovers = new ArrayList<>();
        ingestTemps().forEach(p -> leftovers.add("ingest temp file " + p));
        snapshotTemps().forEach(p -> leftovers.add("snapshot temp " + p));
        containerDirsWithoutRecord().forEach(p -> leftovers.add("container dir without record " + p));
        list(root.resolve("images")).stream()
                .filter(p -> p.toString().endsWith(".tmp"))
                .forEach(p -> leftovers.add("image record temp " + p));
        mounts().forEach(m -> leftovers.add("mount " + m));
        return leftovers;
    }

    private static List<Path> list(Path dir) {
        if (!Files.isDirectory(dir)) {
            return List.of();
        }
        try (Stream<Path> children = Files.list(dir)) {
            return children.sorted().toList();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Null when the file is not there: a snapshot being removed is renamed away at any moment. */
    private static JsonNode readJsonIfThere(Path file) {
        try {
            return JSON.readTree(file.toFile());
        } catch (java.io.FileNotFoundException | java.nio.file.NoSuchFileException gone) {
            return null;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static JsonNode readJson(Path file) {
        try {
            return JSON.readTree(file.toFile());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static String sha256Hex(String text) {
        return sha256Hex(text.getBytes(StandardCharsets.UTF_8));
    }

    private static String sha256Hex(byte[] bytes) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
