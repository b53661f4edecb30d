package dev.stevedore.agent.content;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Path;
import java.util.Optional;
import java.util.stream.Stream;

/**
 * Blobs addressed by digest, as containerd's content store: written to a temporary file, every byte verified
 * against the digest, then renamed into place; a reader never sees a partial blob.
 */
public interface ContentStore {

    /** Where the verified blob lies, if it is in the store. */
    Optional<Path> path(Digest digest);

    /**
     * Stores the blob {@code source} yields, unless it is there already. Concurrent calls for one digest share one
     * download. {@code expectedSize} is checked when not negative.
     *
     * @throws DigestMismatchException when the bytes do not hash to {@code digest} (nothing is kept)
     */
    Path ingest(Digest digest, long expectedSize, BlobSource source) throws IOException;

    Stream<Digest> list() throws IOException;

    /** Bytes the store's file system holds when empty: a blob larger than this can never be stored. */
    long capacity() throws IOException;

    void delete(Digest digest) throws IOException;

    /** Opens the bytes of a blob, perhaps from a registry; called at most once per {@link #ingest}. */
    @FunctionalInterface
    interface BlobSource {
        InputStream open() throws IOException;
    }
}
