package dev.stevedore.agent.content;

import java.io.IOException;
import java.io.InputStream;
import java.io.InterruptedIOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentMap;
import java.util.concurrent.ExecutionException;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A {@link ContentStore} in a directory, laid out as containerd's: {@code <root>/content/blobs/<algorithm>/<hex>},
 * partial downloads in {@code <root>/content/ingest/}. A blob is only ever renamed into {@code blobs/} after its size
 * and digest were checked and its bytes flushed to disk, so anything found there is trusted without re-hashing.
 * One store owns its root: temp files found at construction belong to an ingest that a crash interrupted. Other
 * stores on the same root (an import beside the running agent) are constructed without removing them.
 */
public final class FileContentStore implements ContentStore {
    private static final Logger LOG = LoggerFactory.getLogger(FileContentStore.class);
    private static final int BUFFER_SIZE = 64 * 1024;

    private final Path blobs;
    private final Path ingest;
    /** Ingests in progress; later callers for the same digest wait on the first one's result. */
    private final ConcurrentMap<Digest, CompletableFuture<Path>> inFlight = new ConcurrentHashMap<>();

    public FileContentStore(Path root) throws IOException {
        this(root, true);
    }

    /**
     * @param removeLeftovers whether temp files in the ingest directory are leftovers of a crash: true for the agent,
     *        which owns the root; false for another process beside it ({@code stevedore-agent import}), which must
     *        not delete the agent's downloads in progress
     */
    public FileContentStore(Path root, boolean removeLeftovers) throws IOException {
        Path content = root.resolve("content");
        this.blobs = Files.createDirectories(content.resolve("blobs"));
        this.ingest = Files.createDirectories(content.resolve("ingest"));
        if (removeLeftovers) {
            removeLeftoverTempFiles();
        }
    }

    @Override
    public Optional<Path> path(Digest digest) {
        Path path = blobPath(digest);
        return Files.isRegularFile(path) ? Optional.of(path) : Optional.empty();
    }

    @Override
    public Path ingest(Digest digest, long expectedSize, BlobSource source) throws IOException {
        Optional<Path> existing = path(digest);
        if (existing.isPresent()) {
            return existing.get();
        }
        CompletableFuture<Path> mine = new CompletableFuture<>();
        CompletableFuture<Path> running = inFlight.putIfAbsent(digest, mine);
        if (running != null) {
            return await(running);
        }
        try {
            Path path = path(digest).orElse(null); // it may have landed between the first check and putIfAbsent
            if (path == null) {
                path = write(digest, expectedSize, source);
            }
            mine.complete(path);
            return path;
        } catch (IOException | RuntimeException | Error e) {
            mine.completeExceptionally(e);
            throw e;
        } finally {
            inFlight.remove(digest, mine);
        }
    }

    @Override
    public Stream<Digest> list() throws IOException {
        List<Digest> digests = new ArrayList<>();
        try (DirectoryStream<Path> algorithms = Files.newDirectoryStream(blobs, Files::isDirectory)) {
            for (Path algorithm : algorithms) {
                try (DirectoryStream<Path> files = Files.newDirectoryStream(algorithm, Files::isRegularFile)) {
                    for (Path file : files) {
                        parse(algorithm.getFileName() + ":" + file.getFileName())
                                .ifPresent(digests::add);
                    }
                }
            }
        }
        return digests.stream();
    }

    @Override
    public long capacity() throws IOException {
        return Files.getFileStore(blobs).getTotalSpace();
    }

    @Override
    public void delete(Digest digest) throws IOException {
        Files.deleteIfExists(blobPath(digest));
    }

    /** The record validated the algorithm and hex, so this path cannot leave {@code blobs/}. */
    private Path blobPath(Digest digest) {
        return blobs.resolve(digest.algorithm()).resolve(digest.hex());
    }

    private Path write(Digest digest, long expectedSize, BlobSource source) throws IOException {
        Path temp = Files.createTempFile(ingest, digest.algorithm() + "-" + digest.hex() + "-", ".partial");
        try {
            MessageDigest hash = newHash(digest.algorithm());
            long size = copy(source, temp, hash, expectedSize);
            if (expectedSize >= 0 && size != expectedSize) {
                throw new DigestMismatchException(
                        "size of " + digest + ": expected " + expectedSize + " bytes, got " + size);
            }
            Digest actual = new Digest(digest.algorithm(), HexFormat.of().formatHex(hash.digest()));
            if (!actual.equals(digest)) {
                throw new DigestMismatchException(digest, actual);
            }
            Path target = blobPath(digest);
            Files.createDirectories(target.getParent());
            Files.move(temp, target, StandardCopyOption.ATOMIC_MOVE);
            fsyncDirectory(target.getParent());
            LOG.debug("stored {} ({} bytes)", digest, size);
            return target;
        } finally {
            Files.deleteIfExists(temp);
        }
    }

    /** Streams into {@code temp} while hashing; stops early when the source yields more than expected. */
    private static long copy(BlobSource source, Path temp, MessageDigest hash, long expectedSize) throws IOException {
        long size = 0;
        byte[] buffer = new byte[BUFFER_SIZE];
        try (InputStream in = source.open();
                FileChannel out =
                        FileChannel.open(temp, StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING)) {
            // With a size to meet, never ask for more than one byte past it: an endless body costs that much.
            for (int n; (n = in.read(buffer, 0, readLength(expectedSize, size))) != -1; ) {
                if (Thread.currentThread().isInterrupted()) {
                    throw new InterruptedIOException("ingest interrupted");
                }
                size += n;
                if (expectedSize >= 0 && size > expectedSize) {
                    throw new DigestMismatchException("blob is larger than the expected " + expectedSize + " bytes");
                }
                hash.update(buffer, 0, n);
                ByteBuffer chunk = ByteBuffer.wrap(buffer, 0, n);
                while (chunk.hasRemaining()) {
                    out.write(chunk);
                }
            }
            out.force(true); // the bytes are on disk before the rename makes them visible
        }
        return size;
    }

    private static int readLength(long expectedSize, long sizeSoFar) {
        return expectedSize < 0 ? BUFFER_SIZE : (int) Math.min(BUFFER_SIZE, expectedSize + 1 - sizeSoFar);
    }

    private static Path await(CompletableFuture<Path> running) throws IOException {
        try {
            return running.get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new InterruptedIOException("interrupted while waiting for a concurrent ingest");
        } catch (ExecutionException e) {
            Throwable cause = e.getCause();
            if (cause instanceof IOException io) {
                throw io;
            }
            if (cause instanceof RuntimeException runtime) {
                throw runtime;
            }
            throw (Error) cause;
        }
    }

    private void removeLeftoverTempFiles() throws IOException {
        try (Stream<Path> leftovers = Files.list(ingest)) {
            for (Path leftover : leftovers.toList()) {
                LOG.info("removing {}, left by an interrupted ingest", leftover.getFileName());
                Files.deleteIfExists(leftover);
            }
        } catch (UncheckedIOException e) {
            throw e.getCause();
        }
    }

    private static void fsyncDirectory(Path dir) throws IOException {
        try (FileChannel channel = FileChannel.open(dir, StandardOpenOption.READ)) {
            channel.force(true);
        }
    }

    private static MessageDigest newHash(String algorithm) {
        try {
            return MessageDigest.getInstance(
                    switch (algorithm) {
                        case "sha256" -> "SHA-256";
                        case "sha512" -> "SHA-512";
                        default -> throw new IllegalArgumentException("unsupported digest algorithm " + algorithm);
                    });
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    private static Optional<Digest> parse(String digest) {
        try {
            return Optional.of(Digest.parse(digest));
        } catch (IllegalArgumentException notABlob) {
            return Optional.empty();
        }
    }
}
