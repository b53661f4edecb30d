package dev.stevedore.agent.images;

import static dev.stevedore.agent.images.ImageException.INVALID_IMAGE;
import static dev.stevedore.agent.images.ImageException.STORAGE_FAILURE;

import dev.stevedore.agent.content.ContentStore;
import dev.stevedore.agent.content.Digest;
import dev.stevedore.agent.content.DigestMismatchException;
import java.io.BufferedInputStream;
import java.io.FilterInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveInputStream;
import org.apache.commons.compress.archivers.tar.TarConstants;
import org.apache.commons.compress.compressors.gzip.GzipCompressorInputStream;

/**
 * Reads an OCI image layout, as a directory or a tar (optionally gzipped) like {@code ctr images import} takes, and
 * assembles one image per entry of its index.json. A tar is never extracted: its blobs stream straight into the
 * content store, which verifies them against the digests their paths name; index.json and oci-layout are read into
 * memory. Entries that try to leave the layout ({@code ..}, absolute paths, links) reject the whole archive.
 */
final class OciLayoutImporter {
    private static final String INDEX = "index.json";
    private static final String LAYOUT = "oci-layout";

    private final ContentStore content;
    private final ImageAssembler assembler;

    OciLayoutImporter(ContentStore content, ImageAssembler assembler) {
        this.content = content;
        this.assembler = assembler;
    }

    List<Image> read(Path archive) throws ImageException {
        try {
            return Files.isDirectory(archive) ? fromDirectory(archive) : fromTar(archive);
        } catch (DigestMismatchException e) {
            throw new ImageException(ImageException.DIGEST_MISMATCH, archive + ": " + e.getMessage(), false, e);
        } catch (FetchException e) {
            throw e.toImageException();
        } catch (NoSuchFileException e) {
            throw invalid(archive + ": " + e.getMessage() + " not found");
        } catch (IOException e) {
            throw new ImageException(STORAGE_FAILURE, archive + ": " + e.getMessage(), true, e);
        }
    }

    private List<Image> fromDirectory(Path dir) throws IOException, ImageException {
        if (!Files.isRegularFile(dir.resolve(LAYOUT))) {
            throw invalid(dir + " is not an OCI image layout: no " + LAYOUT);
        }
        if (Files.size(dir.resolve(INDEX)) > Oci.MAX_JSON_SIZE) {
            throw invalid(dir + ": " + INDEX + " is too large");
        }
        byte[] index = Files.readAllBytes(dir.resolve(INDEX));
        return assembleAll(index, new ImageAssembler.Blobs() {
            @Override
            public InputStream manifest(Digest digest) throws IOException {
                return blob(digest);
            }

            @Override
            public InputStream blob(Digest digest) throws IOException {
                // The Digest record admits only [a-f0-9] hex, so this path stays inside blobs/.
                Path file = dir.resolve("blobs").resolve(digest.algorithm()).resolve(digest.hex());
                try {
                    return Files.newInputStream(file);
                } catch (NoSuchFileException e) {
                    throw missing(digest);
                }
            }
        });
    }

    private List<Image> fromTar(Path file) throws IOException, ImageException {
        byte[] index = null;
        boolean layout = false;
        try (InputStream raw = new BufferedInputStream(Files.newInputStream(file));
                TarArchiveInputStream tar = new TarArchiveInputStream(maybeGunzip(raw))) {
            for (TarArchiveEntry entry; (entry = tar.getNextEntry()) != null; ) {
                String name = safeName(entry);
                if (entry.isDirectory()) {
                    continue;
                }
                if (name.equals(INDEX)) {
                    if (entry.getSize() > Oci.MAX_JSON_SIZE) {
                        throw invalid(file + ": " + INDEX + " is too large");
                    }
                    index = tar.readAllBytes();
                } else if (name.equals(LAYOUT)) {
                    layout = true;
                } else if (name.startsWith("blobs/")) {
                    Digest digest = blobDigest(name);
                    content.ingest(digest, entry.getSize(), () -> new FilterInputStream(tar) {
                        @Override
                        public void close() {
                            // the next entry is read from the same stream
                        }
                    });
                }
            }
        }
        if (index == null || !layout) {
            throw invalid(file + " is not an OCI image layout: no " + (index == null ? INDEX : LAYOUT));
        }
        return assembleAll(index, new ImageAssembler.Blobs() {
            @Override
            public InputStream manifest(Digest digest) throws IOException {
                return blob(digest);
            }

            @Override
            public InputStream blob(Digest digest) throws IOException {
                return Files.newInputStream(content.path(digest).orElseThrow(() -> missing(digest)));
            }
        });
    }

    /** One image per entry of index.json, all assembled before any is recorded. */
    private List<Image> assembleAll(byte[] indexJson, ImageAssembler.Blobs blobs) throws ImageException {
        Oci.Index index;
        try {
            index = Oci.parse(indexJson, Oci.Index.class);
        } catch (IOException e) {
            throw invalid("unreadable " + INDEX + ": " + e.getMessage());
        }
        if (index.manifests() == null || index.manifests().isEmpty()) {
            throw invalid(INDEX + " lists no images");
        }
        List<Image> images = new ArrayList<>();
        for (Oci.Descriptor entry : index.manifests()) {
            if (entry == null) {
                throw invalid(INDEX + " has a null entry");
            }
            Digest digest;
            try {
                digest = entry.parsedDigest();
            } catch (IllegalArgumentException e) {
                throw invalid(INDEX + " has an entry with the digest " + entry.digest());
            }
            images.add(assembler.assemble(nameOf(entry, digest), digest, entry.mediaType(), entry.size(), blobs));
        }
        return images;
    }

    /** containerd's own annotation first (ctr export writes it), then the OCI one, else a name from the digest. */
    private static String nameOf(Oci.Descriptor entry, Digest digest) {
        for (String key : List.of(Oci.CONTAINERD_NAME, Oci.REF_NAME)) {
            String name = entry.annotation(key);
            if (name != null && !name.isBlank()) {
                return name;
            }
        }
        return "import/" + digest;
    }

    private static String safeName(TarArchiveEntry entry) throws ImageException {
        String name = entry.getName();
        while (name.startsWith("./")) {
            name = name.substring(2);
        }
        if (name.startsWith("/") || name.contains("\\") || name.contains("\0")) {
            throw invalid("the archive entry " + entry.getName() + " is not a relative path");
        }
        for (String part : name.split("/")) {
            if (part.equals("..")) {
                throw invalid("the archive entry " + entry.getName() + " leaves the layout");
            }
        }
        // Not isFile(): commons-compress calls anything not a directory a file, symlinks included.
        byte type = entry.getLinkFlag();
        boolean regular =
                type == TarConstants.LF_NORMAL || type == TarConstants.LF_OLDNORM || type == TarConstants.LF_CONTIG;
        if (!entry.isDirectory() && !regular) {
            throw invalid("the archive entry " + entry.getName() + " is a link or device; a layout has none");
        }
        return name.endsWith("/") ? name.substring(0, name.length() - 1) : name;
    }

    private static Digest blobDigest(String name) throws ImageException {
        String[] parts = name.split("/");
        if (parts.length != 3) {
            throw invalid("unexpected archive entry " + name);
        }
        try {
            return new Digest(parts[1], parts[2]);
        } catch (IllegalArgumentException e) {
            throw invalid("the archive entry " + name + " does not name a blob by its digest");
        }
    }

    private static InputStream maybeGunzip(InputStream in) throws IOException {
        in.mark(2);
        int first = in.read();
        int second = in.read();
        in.reset();
        return first == 0x1f && second == 0x8b ? new GzipCompressorInputStream(in) : in;
    }

    private static FetchException missing(Digest digest) {
        return new FetchException(INVALID_IMAGE, "the layout lacks the blob " + digest, false, null);
    }

    private static ImageException invalid(String message) {
        return new ImageException(INVALID_IMAGE, message, false, null);
    }
}
