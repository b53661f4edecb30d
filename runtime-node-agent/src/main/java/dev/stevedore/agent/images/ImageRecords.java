package dev.stevedore.agent.images;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.databind.DeserializationContext;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.deser.std.StdDeserializer;
import com.fasterxml.jackson.databind.module.SimpleModule;
import com.fasterxml.jackson.databind.ser.std.ToStringSerializer;
import dev.stevedore.agent.content.Digest;
import dev.stevedore.agent.fs.AtomicFiles;
import java.io.FileNotFoundException;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Optional;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The image records, one JSON file per name in a directory. A file is named by the sha256 of the image name (names
 * hold slashes and colons) and replaced whole: written to a temp file, flushed, renamed over the old one, so a crash
 * leaves either the old record or the new one. The files are the truth and are read on every lookup (they are few and
 * small): another process writes them too ({@code stevedore-agent import} while the agent runs), and a record kept in
 * memory would hide its images from the agent and let garbage collection take their blobs.
 */
final class ImageRecords {
    private static final Logger LOG = LoggerFactory.getLogger(ImageRecords.class);
    private static final int FORMAT = 1;
    private static final String SUFFIX = ".json";
    private static final String TEMP_SUFFIX = ".tmp";
    private static final ObjectMapper JSON = new ObjectMapper()
            .configure(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES, false)
            .registerModule(new SimpleModule()
                    .addSerializer(Digest.class, ToStringSerializer.instance)
                    .addDeserializer(Digest.class, new DigestDeserializer()));

    private final Path dir;

    /**
     * What a file holds; the format number lets a later agent read records an older one wrote. A pinned image is
     * kept by garbage collection though no Container uses it (an imported one: no registry may have it). {@code
     * access} says who may use a pulled image without asking the registry; null for imported images and in records
     * written before it existed.
     */
    record Stored(int format, Image image, boolean pinned, PullAccess access) {}

    /**
     * Who pulled an image, as kubelet's image pull records (KEP-2535) say it: anyone may use an image the registry
     * served without credentials; otherwise the holders of the credentials whose keyed hashes are listed, each
     * added once the registry let them pull it. The credentials themselves are never written.
     */
    record PullAccess(boolean anonymous, List<String> credentials) {
        static final PullAccess PUBLIC = new PullAccess(true, List.of());

        PullAccess {
            credentials = credentials == null ? List.of() : List.copyOf(credentials);
        }

        static PullAccess of(String credential) {
            return new PullAccess(false, List.of(credential));
        }

        PullAccess with(String credential) {
            if (anonymous || credentials.contains(credential)) {
                return this;
            }
            List<String> more = new ArrayList<>(credentials);
            more.add(credential);
            return new PullAccess(false, more);
        }
    }

    /** Removes the temp files of interrupted writes: only for the directory's owner, the agent. */
    ImageRecords(Path dir) throws IOException {
        this(dir, true);
    }

    /**
     * @param removeLeftovers whether temp files found are leftovers of a crash; not when another process (the
     *        running agent) may be writing them
     */
    ImageRecords(Path dir, boolean removeLeftovers) throws IOException {
        this.dir = Files.createDirectories(dir);
        if (!removeLeftovers) {
            return;
        }
        try (Stream<Path> files = Files.list(dir)) {
            for (Path file : files.toList()) {
                if (file.getFileName().toString().endsWith(TEMP_SUFFIX)) {
                    Files.deleteIfExists(file); // a write a crash interrupted; the previous record is intact
                }
            }
        } catch (UncheckedIOException e) {
            throw e.getCause();
        }
    }

    Optional<Image> get(String name) {
        return read(fileOf(name)).map(Stored::image);
    }

    boolean pinned(String name) {
        return read(fileOf(name)).map(Stored::pinned).orElse(false);
    }

    Optional<Stored> stored(String name) {
        return read(fileOf(name));
    }

    List<Image> list() {
        List<Image> images = new ArrayList<>();
        try (Stream<Path> files = Files.list(dir)) {
            for (Path file : files.filter(f -> f.getFileName().toString().endsWith(SUFFIX))
                    .toList()) {
                read(file).ifPresent(stored -> images.add(stored.image()));
            }
        } catch (IOException | UncheckedIOException e) {
            throw new UncheckedIOException(
                    "cannot list the image records in " + dir,
                    e instanceof UncheckedIOException u ? u.getCause() : (IOException) e);
        }
        images.sort(Comparator.comparing(Image::name));
        return images;
    }

    void put(Image image) throws IOException {
        put(image, false);
    }

    void put(Image image, boolean pinned) throws IOException {
        write(new Stored(FORMAT, image, pinned, null));
    }

    void put(Image image, PullAccess access) throws IOException {
        write(new Stored(FORMAT, image, false, access));
    }

    /**
     * Records that the holders of {@code credential} may use the image {@code name}, or anyone when it is null (the
     * registry served it without credentials), if the record still is of the image {@code digest}: one replaced
     * meanwhile by another pull of the name keeps its own access.
     */
    synchronized void allow(String name, Digest digest, String credential) throws IOException {
        Stored stored = read(fileOf(name)).orElse(null);
        if (stored == null || !stored.image().digest().equals(digest)) {
            return;
        }
        PullAccess access = credential == null
                ? PullAccess.PUBLIC
                : stored.access() == null
                        ? PullAccess.of(credential)
                        : stored.access().with(credential);
        write(new Stored(FORMAT, stored.image(), stored.pinned(), access));
    }

    private synchronized void write(Stored stored) throws IOException {
        AtomicFiles.write(
                fileOf(stored.image().name()),
                JSON.writerWithDefaultPrettyPrinter().writeValueAsBytes(stored));
    }

    synchronized void remove(String name) throws IOException {
        Files.deleteIfExists(fileOf(name));
        fsyncDir();
    }

    private Optional<Stored> read(Path file) {
        try {
            Stored stored = JSON.readValue(file.toFile(), Stored.class);
            if (stored.format() != FORMAT
                    || stored.image() == null
                    || stored.image().name() == null
                    || !file.equals(fileOf(stored.image().name()))) {
                LOG.warn("ignoring the image record {}: unknown format or misplaced", file.getFileName());
                return Optional.empty();
            }
            return Optional.of(stored);
        } catch (FileNotFoundException | NoSuchFileException notThere) {
            return Optional.empty(); // none, or removed since the directory was listed
        } catch (IOException | RuntimeException e) {
            LOG.warn("ignoring the unreadable image record {}: {}", file.getFileName(), e.getMessage());
            return Optional.empty();
        }
    }

    private Path fileOf(String name) {
        return dir.resolve(
                Digest.sha256Of(name.getBytes(StandardCharsets.UTF_8)).hex() + SUFFIX);
    }

    private void fsyncDir() throws IOException {
        try (FileChannel channel = FileChannel.open(dir, StandardOpenOption.READ)) {
            channel.force(true);
        }
    }

    private static final class DigestDeserializer extends StdDeserializer<Digest> {
        private static final long serialVersionUID = 1L;

        DigestDeserializer() {
            super(Digest.class);
        }

        @Override
        public Digest deserialize(JsonParser parser, DeserializationContext context) throws IOException {
            return Digest.parse(parser.getValueAsString());
        }
    }
}
