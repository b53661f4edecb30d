package dev.stevedore.agent.images;

import dev.stevedore.agent.content.Digest;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Function;
import java.util.function.Supplier;
import okhttp3.mockwebserver.Dispatcher;
import okhttp3.mockwebserver.MockResponse;
import okhttp3.mockwebserver.MockWebServer;
import okhttp3.mockwebserver.RecordedRequest;

/**
 * A registry that answers what a test scripts, per path, over okhttp's MockWebServer: the malicious registry a real
 * one cannot be made into. Routes are by path, queries aside; paths without one answer 404 MANIFEST_UNKNOWN.
 */
final class ScriptedRegistry implements AutoCloseable {
    static final String REPOSITORY = "evil/image";

    private final MockWebServer server = new MockWebServer();
    private final Map<String, Function<RecordedRequest, MockResponse>> routes = new ConcurrentHashMap<>();
    private final String host;

    /** @param hostName how references name it: 127.0.0.1 or localhost, two hosts of one machine */
    ScriptedRegistry(String hostName) {
        server.setDispatcher(new Dispatcher() {
            @Override
            public MockResponse dispatch(RecordedRequest request) {
                Function<RecordedRequest, MockResponse> route =
                        routes.get(request.getRequestUrl().encodedPath());
                return route != null
                        ? route.apply(request)
                        : new MockResponse()
                                .setResponseCode(404)
                                .setBody("{\"errors\":[{\"code\":\"MANIFEST_UNKNOWN\"}]}");
            }
        });
        try {
            server.start(InetAddress.getByName("127.0.0.1"), 0);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        this.host = hostName + ":" + server.getPort();
    }

    /** {@code host:port}, as references and pull secrets name it. */
    String host() {
        return host;
    }

    String reference(String tag) {
        return host + "/" + REPOSITORY + ":" + tag;
    }

    /** The absolute URL of {@code path} on this server, as a redirect or a realm names it. */
    String url(String path) {
        return "http://" + host + path;
    }

    void on(String path, Supplier<MockResponse> response) {
        routes.put(path, request -> response.get());
    }

    /** The answer scripted for {@code path}, to wrap. */
    Function<RecordedRequest, MockResponse> route(String path) {
        return routes.get(path);
    }

    void onRequest(String path, Function<RecordedRequest, MockResponse> response) {
        routes.put(path, response);
    }

    void manifest(String reference, byte[] json, String mediaType) {
        on(manifestPath(reference), () -> json(json).setHeader("Content-Type", mediaType));
    }

    void blob(Digest digest, Supplier<MockResponse> response) {
        on(blobPath(digest), response);
    }

    void blob(Digest digest, byte[] bytes) {
        blob(digest, () -> new MockResponse().setBody(new okio.Buffer().write(bytes)));
    }

    static String manifestPath(String reference) {
        return "/v2/" + REPOSITORY + "/manifests/" + reference;
    }

    static String blobPath(Digest digest) {
        return "/v2/" + REPOSITORY + "/blobs/" + digest;
    }

    static MockResponse json(byte[] json) {
        return new MockResponse().setBody(new okio.Buffer().write(json));
    }

    static MockResponse json(String json) {
        return json(json.getBytes(StandardCharsets.UTF_8));
    }

    /** The requests received so far, in order; each is taken from the server's queue. */
    RecordedRequest take() throws InterruptedException {
        return server.takeRequest(5, java.util.concurrent.TimeUnit.SECONDS);
    }

    int requestCount() {
        return server.getRequestCount();
    }

    @Override
    public void close() throws IOException {
        server.shutdown();
    }
}
