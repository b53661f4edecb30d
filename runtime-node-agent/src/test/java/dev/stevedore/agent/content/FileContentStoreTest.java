package dev.stevedore.agent.content;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.InterruptedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class FileContentStoreTest {
    private static final byte[] BLOB = "hello, stevedore\n".getBytes(StandardCharsets.UTF_8);
    private static final Digest DIGEST = Digest.sha256Of(BLOB);

    @TempDir
    Path root;

    private FileContentStore store;
    private ExecutorService executor;

    @BeforeEach
    void setUp() throws IOException {
        store = new FileContentStore(root);
        executor = Executors.newCachedThreadPool();
    }

    @AfterEach
    void tearDown() throws InterruptedException {
        executor.shutdownNow();
        assertThat(executor.awaitTermination(10, TimeUnit.SECONDS)).isTrue();
    }

    @Test
    void storesAVerifiedBlobUnderItsDigest() throws IOException {
        Path path = store.ingest(DIGEST, BLOB.length, () -> new ByteArrayInputStream(BLOB));

        assertThat(path).isEqualTo(root.resolve("content/blobs/sha256").resolve(DIGEST.hex()));
        assertThat(path).hasBinaryContent(BLOB);
        assertThat(store.path(DIGEST)).contains(path);
        assertThat(store.list()).containsExactly(DIGEST);
        assertThat(ingestDir()).isEmptyDirectory();
    }

    @Test
    void doesNotOpenTheSourceOfABlobItHas() throws IOException {
        store.ingest(DIGEST, BLOB.length, () -> new ByteArrayInputStream(BLOB));

        Path again = store.ingest(DIGEST, BLOB.length, () -> {
            throw new AssertionError("the source of a stored blob was opened");
        });

        assertThat(again).hasBinaryContent(BLOB);
    }

    @Test
    void concurrentIngestsOfOneDigestDownloadOnce() throws Exception {
        AtomicInteger opened = new AtomicInteger();
        CountDownLatch release = new CountDownLatch(1);
        ContentStore.BlobSource slowSource = () -> {
            opened.incrementAndGet();
            return new GatedStream(BLOB, release);
        };
        int callers = 8;
        List<Thread> threads = new ArrayList<>();
        List<Future<Path>> results = new ArrayList<>();
        for (int i = 0; i < callers; i++) {
            results.add(executor.submit(() -> {
                synchronized (threads) {
                    threads.add(Thread.currentThread());
                }
                return store.ingest(DIGEST, BLOB.length, slowSource);
            }));
        }
        // All callers are parked: the first inside the source, the others waiting for its result.
        await().atMost(Duration.ofSeconds(10)).until(() -> {
            synchronized (threads) {
                return threads.size() == callers
                        && threads.stream().allMatch(t -> t.getState() == Thread.State.WAITING);
            }
        });
        release.countDown();

        for (Future<Path> result : results) {
            assertThat(result.get(10, TimeUnit.SECONDS)).hasBinaryContent(BLOB);
        }
        assertThat(opened).hasValue(1);
        assertThat(ingestDir()).isEmptyDirectory();
    }

    @Test
    void callersWaitingForAFailedDownloadShareItsFailure() throws Exception {
        CountDownLatch release = new CountDownLatch(1);
        byte[] wrong = "not the blob".getBytes(StandardCharsets.UTF_8);
        Future<Path> first = executor.submit(() -> store.ingest(DIGEST, -1, () -> new GatedStream(wrong, release)));
        await().atMost(Duration.ofSeconds(10)).until(() -> fileCount(ingestDir()) == 1);
        AtomicInteger secondOpened = new AtomicInteger();
        AtomicReference<Thread> secondThread = new AtomicReference<>();
        Future<Path> second = executor.submit(() -> {
            secondThread.set(Thread.currentThread());
            return store.ingest(DIGEST, -1, () -> {
                secondOpened.incrementAndGet();
                return new ByteArrayInputStream(BLOB);
            });
        });
        await().atMost(Duration.ofSeconds(10))
                .until(() -> secondThread.get() != null && secondThread.get().getState() == Thread.State.WAITING);
        release.countDown();

        assertThatThrownBy(() -> first.get(10, TimeUnit.SECONDS)).hasCauseInstanceOf(DigestMismatchException.class);
        assertThatThrownBy(() -> second.get(10, TimeUnit.SECONDS)).hasCauseInstanceOf(DigestMismatchException.class);
        assertThat(secondOpened).hasValue(0);
        assertThat(store.path(DIGEST)).isEmpty();
        // nothing stays in flight: the next ingest downloads afresh
        assertThat(store.ingest(DIGEST, -1, () -> new ByteArrayInputStream(BLOB)))
                .hasBinaryContent(BLOB);
    }

    @Test
    void aDigestMismatchLeavesNothing() throws IOException {
        byte[] tampered = "hello, stevedorE\n".getBytes(StandardCharsets.UTF_8);

        assertThatThrownBy(() -> store.ingest(DIGEST, tampered.length, () -> new ByteArrayInputStream(tampered)))
                .isInstanceOf(DigestMismatchException.class)
                .hasMessageContaining(DIGEST.toString());

        assertThat(store.path(DIGEST)).isEmpty();
        assertThat(store.list()).isEmpty();
        assertThat(ingestDir()).isEmptyDirectory();
    }

    @Test
    void aSizeMismatchLeavesNothingAndStopsOneBytePastTheSize() throws IOException {
        AtomicInteger read = new AtomicInteger();
        InputStream endless = new InputStream() {
            @Override
            public int read() {
                read.incrementAndGet();
                return 'x';
            }
        };

        assertThatThrownBy(() -> store.ingest(DIGEST, BLOB.length, () -> endless))
                .isInstanceOf(DigestMismatchException.class);
        assertThatThrownBy(() -> store.ingest(DIGEST, BLOB.length + 1, () -> new ByteArrayInputStream(BLOB)))
                .isInstanceOf(DigestMismatchException.class)
                .hasMessageContaining("size");

        assertThat(read.get()).as("bytes read of an endless source").isEqualTo(BLOB.length + 1);
        assertThat(store.path(DIGEST)).isEmpty();
        assertThat(ingestDir()).isEmptyDirectory();
    }

    @Test
    void anIngestInterruptedByAFailingSourceLeavesNothingVisible() throws IOException {
        InputStream breaksHalfway = new InputStream() {
            private int left = BLOB.length / 2;

            @Override
            public int read() throws IOException {
                if (left-- <= 0) {
                    throw new IOException("connection reset");
                }
                return BLOB[0];
            }
        };

        assertThatThrownBy(() -> store.ingest(DIGEST, BLOB.length, () -> breaksHalfway))
                .isInstanceOf(IOException.class)
                .hasMessage("connection reset");

        assertThat(store.path(DIGEST)).isEmpty();
        assertThat(store.list()).isEmpty();
        assertThat(ingestDir()).isEmptyDirectory();
        // and a later ingest of the same digest is not blocked by the failed one
        assertThat(store.ingest(DIGEST, BLOB.length, () -> new ByteArrayInputStream(BLOB)))
                .hasBinaryContent(BLOB);
    }

    @Test
    void aCrashDuringIngestLeavesATempFileThatTheNextStoreRemoves() throws IOException {
        // What a process killed mid-download leaves: a partial file in ingest/, nothing in blobs/.
        Path partial = ingestDir().resolve("sha256-" + DIGEST.hex() + "-123.partial");
        Files.write(partial, new byte[] {1, 2, 3});

        FileContentStore restarted = new FileContentStore(root);

        assertThat(partial).doesNotExist();
        assertThat(restarted.path(DIGEST)).isEmpty();
        assertThat(restarted.list()).isEmpty();
    }

    @Test
    void deletesBlobs() throws IOException {
        store.ingest(DIGEST, BLOB.length, () -> new ByteArrayInputStream(BLOB));

        store.delete(DIGEST);

        assertThat(store.path(DIGEST)).isEmpty();
        assertThat(store.list()).isEmpty();
    }

    @Test
    void listsOnlyFilesNamedByValidDigests() throws IOException {
        store.ingest(DIGEST, BLOB.length, () -> new ByteArrayInputStream(BLOB));
        Files.writeString(root.resolve("content/blobs/sha256/not-a-digest"), "junk");

        try (Stream<Digest> digests = store.list()) {
            assertThat(digests).containsExactly(DIGEST);
        }
    }

    @Test
    void hostileDigestsNeverBecomePaths() {
        assertThatThrownBy(() -> Digest.parse("sha256:../../../etc/passwd"))
                .isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> Digest.parse("../sha256:" + DIGEST.hex()))
                .isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> Digest.parse("sha256:" + DIGEST.hex().toUpperCase()))
                .isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> Digest.parse("md5:" + DIGEST.hex())).isInstanceOf(IllegalArgumentException.class);
    }

    private static long fileCount(Path dir) throws IOException {
        try (Stream<Path> files = Files.list(dir)) {
            return files.count();
        }
    }

    private Path ingestDir() {
        return root.resolve("content/ingest");
    }

    /** Yields its bytes only once released, so a test can hold an ingest in flight. */
    private static final class GatedStream extends InputStream {
        private final InputStream bytes;
        private final CountDownLatch release;

        GatedStream(byte[] bytes, CountDownLatch release) {
            this.bytes = new ByteArrayInputStream(bytes);
            this.release = release;
        }

        @Override
        public int read() throws IOException {
            awaitRelease();
            return bytes.read();
        }

        @Override
        public int read(byte[] b, int off, int len) throws IOException {
            awaitRelease();
            return bytes.read(b, off, len);
        }

        private void awaitRelease() throws IOException {
            try {
                release.await();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new InterruptedIOException();
            }
        }
    }
}
