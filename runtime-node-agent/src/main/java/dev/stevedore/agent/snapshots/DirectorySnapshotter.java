package dev.stevedore.agent.snapshots;

import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.stevedore.agent.fs.AtomicFiles;
import dev.stevedore.agent.fs.PosixFiles;
import dev.stevedore.agent.fs.SafeDelete;
import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.regex.Pattern;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * What both snapshotters share: one directory per snapshot under {@code <root>/snapshots/<name>/<id>/}, holding
 * {@code info.json} and the snapshot's trees. A snapshot is built in {@code tmp/<id>} and renamed into place
 * with its metadata inside, so the rename is the single commit point: a crash leaves only {@code tmp/}, which
 * startup empties. Removal renames into {@code tmp/} first for the same reason.
 */
abstract class DirectorySnapshotter implements Snapshotter {
    private static final Logger LOG = LoggerFactory.getLogger(DirectorySnapshotter.class);
    private static final Pattern CHAIN_ID = Pattern.compile("sha256:[a-f0-9]{64}");
    private static final Pattern ID = Pattern.compile("[1-9][0-9]{0,17}");
    private static final String INFO = "info.json";
    private static final ObjectMapper JSON =
            new ObjectMapper().disable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES);

    private final Path home;
    private final Path tmp;
    /** By chain ID or key; guarded by this. The disk is the truth, this is its index. */
    private final Map<String, SnapshotRecord> snapshots = new HashMap<>();

    private long nextId = 1;

    DirectorySnapshotter(Path root, String name) throws IOException {
        home = root.toAbsolutePath().normalize().resolve("snapshots").resolve(name);
        tmp = home.resolve("tmp");
        Files.createDirectories(tmp);
        SafeDelete.deleteContents(tmp); // what a crash interrupted: unpacks, prepares, removals
        load();
    }

    /**
     * Fills {@code fs}, which does not exist yet, with the layer over the committed trees below ({@code lowers},
     * top first; empty for the bottom layer), checking that the layer is its diff ID.
     */
    abstract void populateCommitted(Path fs, List<Path> lowers, Path layer, String mediaType, String diffId)
            throws IOException;

    /** Creates the directories of an active snapshot inside {@code dir}. */
    abstract void populateActive(Path dir, Path parentFs) throws IOException;

    /** The mounts of the active snapshot in {@code dir}; {@code lowers} are the committed trees below, top first. */
    abstract List<Mount> activeMounts(Path dir, List<Path> lowers) throws IOException;

    /** The tree of a committed snapshot. */
    static Path fsOf(Path snapshotDir) {
        return snapshotDir.resolve("fs");
    }

    @Override
    public synchronized boolean exists(String chainId) {
        requireChainId(chainId);
        SnapshotRecord record = snapshots.get(chainId);
        return record != null && record.kind() == Kind.COMMITTED;
    }

    @Override
    public void unpack(String chainId, String parentChainId, Path layer, String mediaType, String diffId)
            throws IOException {
        requireChainId(chainId);
        if (diffId == null || !CHAIN_ID.matcher(diffId).matches()) {
            throw new IllegalArgumentException("not a diff ID (sha256:<64 hex>): " + diffId);
        }
        List<Path> lowers;
        long id;
        synchronized (this) {
            if (exists(chainId)) {
                return; // the same chain ID is the same content
            }
            requireFree(chainId);
            lowers = committedTrees(parentChainId);
            id = nextId++;
        }
        Path work = tmp.resolve(Long.toString(id));
        boolean done = false;
        try {
            Files.createDirectory(work);
            populateCommitted(fsOf(work), lowers, layer, mediaType, diffId);
            PosixFiles.syncfs(work); // the files are durable before the snapshot becomes visible
            commit(work, new SnapshotRecord(id, chainId, Kind.COMMITTED, parentChainId));
            done = true;
        } finally {
            if (!done) {
                SafeDelete.deleteTree(work); // a rejected or failed unpack leaves nothing behind
            }
        }
    }

    @Override
    public List<Mount> prepare(String key, String parentChainId) throws IOException {
        if (key == null || key.isBlank()) {
            throw new IllegalArgumentException("an active snapshot needs a key");
        }
        Path parentDir;
        long id;
        synchronized (this) {
            requireFree(key);
            parentDir = parentChainId == null ? null : dirOf(committed(parentChainId));
            id = nextId++;
        }
        Path work = tmp.resolve(Long.toString(id));
        boolean done = false;
        try {
            Files.createDirectory(work);
            populateActive(work, parentDir == null ? null : fsOf(parentDir));
            commit(work, new SnapshotRecord(id, key, Kind.ACTIVE, parentChainId));
            done = true;
        } finally {
            if (!done) {
                SafeDelete.deleteTree(work);
            }
        }
        return mounts(key).orElseThrow(() -> new NoSuchFileException(key, null, "removed while being prepared"));
    }

    @Override
    public Optional<List<Mount>> mounts(String key) throws IOException {
        Path dir;
        List<Path> lowers;
        synchronized (this) {
            SnapshotRecord record = snapshots.get(key);
            if (record == null || record.kind() != Kind.ACTIVE) {
                return Optional.empty();
            }
            dir = dirOf(record);
            lowers = committedTrees(record.parent());
        }
        return Optional.of(activeMounts(dir, lowers));
    }

    @Override
    public void remove(String keyOrChainId) throws IOException {
        Path doomed;
        synchronized (this) {
            SnapshotRecord record = snapshots.get(keyOrChainId);
            if (record == null) {
                return;
            }
            List<String> children = snapshots.values().stream()
                    .filter(s -> keyOrChainId.equals(s.parent()))
                    .map(SnapshotRecord::name)
                    .sorted()
                    .toList();
            if (!children.isEmpty()) {
                throw new SnapshotInUseException(
                        "snapshot " + keyOrChainId + " is the parent of " + children + "; remove those first");
            }
            doomed = tmp.resolve(record.id() + ".removed");
            Files.move(dirOf(record), doomed, StandardCopyOption.ATOMIC_MOVE);
            PosixFiles.fsync(home);
            snapshots.remove(keyOrChainId);
        }
        SafeDelete.deleteTree(doomed); // if this fails or crashes, startup finishes it
    }

    @Override
    public synchronized List<SnapshotInfo> list() {
        return snapshots.values().stream()
                .sorted(Comparator.comparingLong(SnapshotRecord::id))
                .map(r -> new SnapshotInfo(r.name(), r.kind(), r.parent()))
                .toList();
    }

    /** Renames a finished {@code tmp/<id>} into place; returns quietly if a concurrent unpack got there first. */
    private void commit(Path work, SnapshotRecord record) throws IOException {
        synchronized (this) {
            if (!(record.kind() == Kind.COMMITTED && exists(record.name()))) {
                requireFree(record.name());
                if (record.parent() != null) {
                    committed(record.parent()); // it may have been removed meanwhile
                }
                AtomicFiles.write(work.resolve(INFO), JSON.writeValueAsBytes(record));
                Files.move(work, dirOf(record), StandardCopyOption.ATOMIC_MOVE);
                PosixFiles.fsync(home);
                snapshots.put(record.name(), record);
                return;
            }
        }
        SafeDelete.deleteTree(work);
    }

    private void load() throws IOException {
        try (DirectoryStream<Path> entries = Files.newDirectoryStream(home)) {
            for (Path dir : entries) {
                String name = dir.getFileName().toString();
                if (!ID.matcher(name).matches()) {
                    if (!dir.equals(tmp)) {
                        LOG.warn("ignoring unexpected {}", dir);
                    }
                    continue;
                }
                SnapshotRecord record = read(dir.resolve(INFO));
                if (record == null || record.id() != Long.parseLong(name)) {
                    LOG.warn("removing {}: no valid {}", dir, INFO);
                    SafeDelete.deleteTree(dir);
                    continue;
                }
                snapshots.put(record.name(), record);
                nextId = Math.max(nextId, record.id() + 1);
            }
        }
    }

    private static SnapshotRecord read(Path info) {
        try {
            SnapshotRecord record = JSON.readValue(info.toFile(), SnapshotRecord.class);
            return record.name() == null || record.kind() == null ? null : record;
        } catch (IOException e) {
            return null;
        }
    }

    private Path dirOf(SnapshotRecord record) {
        return home.resolve(Long.toString(record.id()));
    }

    private SnapshotRecord committed(String chainId) throws NoSuchFileException {
        requireChainId(chainId);
        SnapshotRecord record = snapshots.get(chainId);
        if (record == null || record.kind() != Kind.COMMITTED) {
            throw new NoSuchFileException(chainId, null, "no committed snapshot");
        }
        return record;
    }

    /** The trees of {@code chainId} (null: none) and the committed snapshots below it, top first. */
    private List<Path> committedTrees(String chainId) throws NoSuchFileException {
        List<Path> trees = new ArrayList<>();
        for (String c = chainId; c != null; ) {
            SnapshotRecord record = committed(c); // below the first, cannot be missing: parents are removed last
            trees.add(fsOf(dirOf(record)));
            c = record.parent();
        }
        return trees;
    }

    private void requireFree(String name) throws FileAlreadyExistsException {
        if (snapshots.containsKey(name)) {
            throw new FileAlreadyExistsException(name, null, "a snapshot with this name exists");
        }
    }

    /** Chain IDs come from image configs, i.e. from outside: only the one form is accepted. */
    private static void requireChainId(String chainId) {
        if (chainId == null || !CHAIN_ID.matcher(chainId).matches()) {
            throw new IllegalArgumentException("not a chain ID (sha256:<64 hex>): " + chainId);
        }
    }
}
