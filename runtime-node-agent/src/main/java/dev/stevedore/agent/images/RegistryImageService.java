package dev.stevedore.agent.images;

import static dev.stevedore.agent.images.ImageException.DIGEST_MISMATCH;
import static dev.stevedore.agent.images.ImageException.INVALID_IMAGE;
import static dev.stevedore.agent.images.ImageException.STORAGE_FAILURE;

import dev.stevedore.agent.content.ContentStore;
import dev.stevedore.agent.content.Digest;
import dev.stevedore.agent.images.ImageRecords.PullAccess;
import java.io.ByteArrayInputStream;
import java.io.FilterInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.atomic.AtomicLong;
import okhttp3.OkHttpClient;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * {@link ImageService} over OCI distribution registries and OCI image layouts. A record is written only once every
 * blob of the image is verified in the content store, so a failed pull or import leaves no image behind (only
 * verified blobs, which garbage collection reclaims if nothing uses them).
 */
public final class RegistryImageService implements ImageService {
    private static final Logger LOG = LoggerFactory.getLogger(RegistryImageService.class);
    private static final Duration CONNECT_TIMEOUT = Duration.ofSeconds(15);
    /** Between two reads of a response: a stalled layer download fails instead of hanging the pull. */
    private static final Duration READ_TIMEOUT = Duration.ofSeconds(60);
    /** The key of the credential hashes in image records; it stays on this node. */
    private static final String CREDENTIAL_KEY = "pull-credentials.key";

    private final ImageRecords records;
    private final ImageAssembler assembler;
    private final OciLayoutImporter importer;
    private final Set<String> insecureRegistries;
    private final OkHttpClient http;
    private final RegistryClient.StallLimit stallLimit;
    private final CredentialHashes credentialHashes;

    /**
     * @param content where blobs go
     * @param recordsDir where image records are kept, across restarts
     * @param platform the node's; an index contributes its manifest for it, other images must be for it
     * @param insecureRegistries {@code host[:port]} of registries spoken to over plain HTTP; loopback ones always are
     */
    public RegistryImageService(
            ContentStore content, Path recordsDir, Platform platform, Set<String> insecureRegistries)
            throws IOException {
        this(content, recordsDir, platform, insecureRegistries, true);
    }

    /**
     * @param removeLeftovers whether temp files in {@code recordsDir} are a crash's leftovers: true for the agent,
     *        false for another process beside it ({@code stevedore-agent import}), which must not touch its writes
     */
    public RegistryImageService(
            ContentStore content,
            Path recordsDir,
            Platform platform,
            Set<String> insecureRegistries,
            boolean removeLeftovers)
            throws IOException {
        this(
                content,
                recordsDir,
                platform,
                insecureRegistries,
                removeLeftovers,
                READ_TIMEOUT,
                RegistryClient.StallLimit.DEFAULT);
    }

    /** With the limits that end a registry which stops sending or drips, shorter in tests. */
    RegistryImageService(
            ContentStore content,
            Path recordsDir,
            Platform platform,
            Set<String> insecureRegistries,
            boolean removeLeftovers,
            Duration readTimeout,
            RegistryClient.StallLimit stallLimit)
            throws IOException {
        this.records = new ImageRecords(recordsDir, removeLeftovers);
        this.credentialHashes = new CredentialHashes(recordsDir.resolve(CREDENTIAL_KEY));
        this.assembler = new ImageAssembler(content, platform);
        this.importer = new OciLayoutImporter(content, assembler);
        this.insecureRegistries = Set.copyOf(insecureRegistries);
        this.stallLimit = stallLimit;
        // No call timeout: a large layer may take long; the read timeout catches a registry that stopped sending,
        // the stall limit one that drips. No redirects across schemes: blob redirects to storage must not downgrade
        // HTTPS to plain HTTP.
        this.http = new OkHttpClient.Builder()
                .connectTimeout(CONNECT_TIMEOUT)
                .readTimeout(readTimeout)
                .followSslRedirects(false)
                .build();
    }

    @Override
    public Image pull(String reference, Map<String, RegistryAuth> auths) throws ImageException {
        return pull(reference, auths, PullListener.NONE);
    }

    private Image pull(String reference, Map<String, RegistryAuth> auths, PullListener listener) throws ImageException {
        ImageReference ref = parse(reference);
        RegistryAuth auth = authFor(ref, auths);
        RegistryClient client = client(ref, auth);
        RegistryClient.FetchedManifest top;
        try {
            top = client.manifest(ref.manifestReference());
        } catch (FetchException e) {
            throw e.toImageException();
        }
        Digest digest = resolvedDigest(ref, top);
        Image image = assembler.assemble(
                ref.toString(),
                digest,
                top.mediaType(),
                top.bytes().length,
                new RegistryBlobs(client, top, digest, listener));
        // Served without credentials, it is public; else it is for the holders of these.
        PullAccess access = client.credentialsSent() ? PullAccess.of(hash(ref, auth)) : PullAccess.PUBLIC;
        try {
            records.put(image, access);
        } catch (IOException e) {
            throw storageFailure(e);
        }
        LOG.info("pulled {} as {}", image.name(), digest);
        return image;
    }

    /**
     * KEP-2535's rule for images on the node: an imported one, or one pulled without credentials, serves anyone; one
     * pulled with credentials serves the holders of credentials the registry let pull it, and other credentials (or
     * none) are checked with the registry first, by a HEAD of the recorded manifest digest in its repository.
     */
    @Override
    public Image ensure(String reference, Map<String, RegistryAuth> auths, PullListener listener)
            throws ImageException {
        Optional<ImageRecords.Stored> stored = stored(reference);
        if (stored.isEmpty()) {
            listener.pulling(reference);
            long started = System.nanoTime();
            Image pulled = pull(reference, auths, listener);
            listener.pulled(pulled, Duration.ofNanos(System.nanoTime() - started));
            return pulled;
        }
        Image image = stored.get().image();
        if (stored.get().pinned()) {
            return image;
        }
        ImageReference ref = parse(image.name());
        RegistryAuth auth = authFor(ref, auths);
        String credential = auth == null ? null : hash(ref, auth);
        if (!needsRegistryCheck(stored.get().access(), credential)) {
            return image;
        }
        RegistryClient client = client(ref, auth);
        try {
            client.checkPull(image.digest());
        } catch (FetchException e) {
            throw refusedOrRetried(image, ref, auth, e.toImageException());
        }
        try {
            records.allow(image.name(), image.digest(), client.credentialsSent() ? credential : null);
        } catch (IOException e) {
            throw storageFailure(e);
        }
        LOG.info("{}: the registry lets {} pull {}", image.name(), auth == null ? "anyone" : auth, image.digest());
        return image;
    }

    /** The decision of {@link #ensure}: whether these credentials (null: none) must be checked with the registry. */
    static boolean needsRegistryCheck(PullAccess access, String credential) {
        if (access == null) {
            return true; // a record from before access was recorded: nothing says who pulled it
        }
        return !access.anonymous()
                && (credential == null || !access.credentials().contains(credential));
    }

    private static ImageException refusedOrRetried(
            Image image, ImageReference ref, RegistryAuth auth, ImageException e) {
        String whose = auth == null ? "without credentials" : "with the credentials of its imagePullSecrets";
        if (e.transientFailure()) {
            return new ImageException(
                    e.reason(),
                    image.name() + " is on this node, pulled with other credentials; whether this Container may"
                            + " use it " + whose + " is for " + ref.registry() + " to say, which did not answer: "
                            + e.getMessage(),
                    true,
                    e);
        }
        return new ImageException(
                ImageException.UNAUTHORIZED,
                image.name() + " is on this node, pulled with other credentials, and " + ref.registry()
                        + " refuses it to this Container " + whose + " (" + e.getMessage() + "): give the Container"
                        + " imagePullSecrets that can pull it",
                false,
                e);
    }

    @Override
    public List<Image> importArchive(Path archive) throws ImageException {
        List<Image> images = importer.read(archive);
        save(images, true);
        LOG.info("imported {} from {}", images.stream().map(Image::name).toList(), archive);
        return images;
    }

    @Override
    public Optional<Image> get(String name) {
        return stored(name).map(ImageRecords.Stored::image);
    }

    private Optional<ImageRecords.Stored> stored(String name) {
        return records.stored(name).or(() -> normalized(name).flatMap(records::stored));
    }

    @Override
    public List<Image> list() {
        return records.list();
    }

    @Override
    public boolean pinned(String name) {
        return records.pinned(name) || normalized(name).map(records::pinned).orElse(false);
    }

    @Override
    public void remove(String name) {
        String recorded =
                records.get(name).isPresent() ? name : normalized(name).orElse(name);
        try {
            records.remove(recorded);
        } catch (IOException e) {
            throw new UncheckedIOException("could not remove the image record of " + name, e);
        }
    }

    /**
     * What a tag resolved to is the hash of the bytes the registry sent; a Docker-Content-Digest header that says
     * otherwise means the registry or something on the way is lying. For a digest reference the content store checks
     * the bytes against the digest asked for.
     */
    private static Digest resolvedDigest(ImageReference ref, RegistryClient.FetchedManifest top) throws ImageException {
        if (ref.digest() != null) {
            return ref.digest();
        }
        Digest computed = Digest.sha256Of(top.bytes());
        if (top.digestHeader() != null
                && top.digestHeader().startsWith("sha256:")
                && !top.digestHeader().equals(computed.toString())) {
            throw new ImageException(
                    DIGEST_MISMATCH,
                    ref + ": the registry says " + top.digestHeader() + " but sent bytes of " + computed,
                    false,
                    null);
        }
        return computed;
    }

    private void save(List<Image> images, boolean pinned) throws ImageException {
        try {
            for (Image image : images) {
                records.put(image, pinned);
            }
        } catch (IOException e) {
            throw storageFailure(e);
        }
    }

    private static ImageException storageFailure(IOException e) {
        return ImageException.storage("could not write the image record: " + e.getMessage(), e);
    }

    private static ImageReference parse(String reference) throws ImageException {
        try {
            return ImageReference.parse(reference);
        } catch (IllegalArgumentException e) {
            throw new ImageException(INVALID_IMAGE, e.getMessage(), false, e);
        }
    }

    private RegistryClient client(ImageReference ref, RegistryAuth auth) {
        return new RegistryClient(http, ref.apiHost(), ref.repository(), auth, insecureRegistries, stallLimit);
    }

    private String hash(ImageReference ref, RegistryAuth auth) throws ImageException {
        try {
            return credentialHashes.of(ref.apiHost(), auth);
        } catch (IOException e) {
            throw new ImageException(
                    STORAGE_FAILURE, "could not read or write the credential hash key: " + e.getMessage(), true, e);
        }
    }

    /** Credentials by the name the reference uses, by the API host, and by Docker Hub's legacy keys. */
    private static RegistryAuth authFor(ImageReference ref, Map<String, RegistryAuth> auths) {
        if (auths == null) {
            return null;
        }
        List<String> keys = ref.registry().equals(ImageReference.DOCKER_HUB)
                ? List.of(ref.registry(), ref.apiHost(), "index.docker.io", "https://index.docker.io/v1/")
                : List.of(ref.registry());
        return keys.stream().map(auths::get).filter(a -> a != null).findFirst().orElse(null);
    }

    private static Optional<String> normalized(String name) {
        try {
            return Optional.of(ImageReference.parse(name).toString());
        } catch (IllegalArgumentException notAReference) {
            return Optional.empty();
        }
    }

    /** An image's blobs from its registry repository, the layers' bytes counted for {@link PullListener#progress}. */
    private static final class RegistryBlobs implements ImageAssembler.Blobs {
        private final RegistryClient client;
        private final RegistryClient.FetchedManifest top;
        private final Digest digest;
        private final PullListener listener;
        private final AtomicLong done = new AtomicLong();
        private volatile long total;

        RegistryBlobs(RegistryClient client, RegistryClient.FetchedManifest top, Digest digest, PullListener listener) {
            this.client = client;
            this.top = top;
            this.digest = digest;
            this.listener = listener;
        }

        @Override
        public InputStream manifest(Digest manifest) throws IOException {
            byte[] bytes = manifest.equals(digest)
                    ? top.bytes()
                    : client.manifest(manifest.toString()).bytes();
            return new ByteArrayInputStream(bytes);
        }

        @Override
        public InputStream blob(Digest blob) throws IOException {
            return new FilterInputStream(client.blob(blob)) {
                @Override
                public int read() throws IOException {
                    int b = super.read();
                    downloaded(b < 0 ? 0 : 1);
                    return b;
                }

                @Override
                public int read(byte[] buffer, int offset, int length) throws IOException {
                    int n = super.read(buffer, offset, length);
                    downloaded(Math.max(n, 0));
                    return n;
                }
            };
        }

        @Override
        public void fetchingLayers(long bytes) {
            done.set(0); // what came before (the config) is no layer
            total = bytes;
            listener.progress(0, bytes);
        }

        private void downloaded(int bytes) {
            if (bytes > 0) {
                listener.progress(done.addAndGet(bytes), total);
            }
        }
    }
}
