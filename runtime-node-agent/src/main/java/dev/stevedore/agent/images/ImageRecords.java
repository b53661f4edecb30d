package dev.stevedore.agent.images;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Comparator;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentMap;
import java.util.stream.Stream;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.databind.DeserializationContext;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.deser.std.StdDeserializer;
import com.fasterxml.jackson.databind.module.SimpleModule;
import com.fasterxml.jackson.databind.ser.std.ToStringSerializer;

import dev.stevedore.agent.content.Digest;
import dev.stevedore.agent.fs.AtomicFiles;

/**
 * The image records, one JSON file per name in a directory, read once at start and kept in memory. A file is named
 * by the sha256 of the image name (names hold slashes and colons) and replaced whole: written to a temp file,
 * flushed, renamed over the old one, so a crash leaves either the old record or the new one.
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
    private final ConcurrentMap<String, Image> images = new ConcurrentHashMap<>();

    /** What a file holds; the format number lets a later agent read records an older one wrote. */
    record Stored(int format, Image image) {
    }

    ImageRecords(Path dir) throws IOException {
        this.dir = Files.createDirectories(dir);
        try (Stream<Path> files = Files.list(dir)) {
            for (Path file : files.toList()) {
                String fileName = file.getFileName().toString();
                if (fileName.endsWith(TEMP_SUFFIX)) {
                    Files.deleteIfExists(file); // a write a crash interrupted; the previous record is intact
                } else if (fileName.endsWith(SUFFIX)) {
                    load(file);
                }
            }
        } catch (UncheckedIOException e) {
            throw e.getCause();
        }
    }

    Optional<Image> get(String name) {
        return Optional.ofNullable(images.get(name));
    }

    List<Image> list() {
        return images.values().stream().sorted(Comparator.comparing(Image::name)).toList();
    }

    synchronized void put(Image image) throws IOException {
        AtomicFiles.write(fileOf(image.name()), JSON.writerWithDefaultPrettyPrinter().writeValueAsBytes(new Stored(FORMAT, image)));
        images.put(image.name(), image);
    }

    synchronized void remove(String name) throws IOException {
        Files.deleteIfExists(fileOf(name));
        fsyncDir();
        images.remove(name);
    }

    private void load(Path file) {
        try {
            Stored stored = JSON.readValue(file.toFile(), Stored.class);
            if (stored.format() != FORMAT || stored.image() == null || stored.image().name() == null
                    || !file.equals(fileOf(stored.image().name()))) {
                LOG.warn("ignoring the image record {}: unknown format or misplaced", file.getFileName());
                return;
            }
            images.put(stored.image().name(), stored.image());
        } catch (IOException | RuntimeException e) {
            LOG.warn("ignoring the unreadable image record {}: {}", file.getFileName(), e.getMessage());
        }
    }

    private Path fileOf(String name) {
        return dir.resolve(Digest.sha256Of(name.getBytes(StandardCharsets.UTF_8)).hex() + SUFFIX);
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
