package dev.stevedore.agent.images;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpHandler;
import com.sun.net.httpserver.HttpServer;
import dev.stevedore.agent.content.Digest;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.stream.Stream;
import okhttp3.OkHttpClient;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** The scheme choice, and how registry answers map to ImageException reasons, against a scripted HTTP server. */
class RegistryClientTest {
    private static final Digest BLOB = new Digest("sha256", "b".repeat(64));
    /**
     * Long enough that no scripted answer outlasts it on a loaded machine; the stalled body of
     * {@link #aRegistryThatStopsSendingTimesOutAsTransient} never ends, so it still meets this timeout.
     */
    private static final Duration READ_TIMEOUT = Duration.ofSeconds(5);

    private final CountDownLatch stopStalling = new CountDownLatch(1);
    private HttpServer server;

    @AfterEach
    void stop() {
        stopStalling.countDown();
        if (server != null) {
            server.stop(0);
        }
    }

    @ParameterizedTest
    @CsvSource({
        "127.0.0.1:5000,       http",
        "127.1.2.3,            http",
        "localhost:5000,       http",
        "[::1]:5000,           http",
        "registry.local:5000,  http",
        "registry.local:5001,  https",
        "quay.io,              https",
        "127.0.0.1.nip.io,     https",
        "10.0.0.1:5000,        https",
    })
    void speaksPlainHttpOnlyToLoopbackAndInsecureRegistries(String registry, String scheme) {
        RegistryClient client = new RegistryClient(
                new OkHttpClient(),
                registry,
                "test/busybox",
                null,
                Set.of("registry.local:5000"),
                RegistryClient.StallLimit.DEFAULT);

        assertThat(client.scheme()).isEqualTo(scheme);
    }

    @Test
    void serverErrorsAndThrottlingAreTransient() throws IOException {
        for (int status : new int[] {500, 502, 503, 429}) {
            RegistryClient client = clientOf(exchange -> respond(exchange, status, "{}"));

            assertFailure(() -> client.manifest("1"), "RegistryUnavailable", true);
            assertFailure(() -> client.blob(BLOB), "RegistryUnavailable", true);
            server.stop(0);
        }
    }

    @Test
    void anUnknownManifestIsManifestUnknownAndAnUnknownBlobAnInvalidImage() throws IOException {
        RegistryClient client = clientOf(exchange -> respond(
                exchange, 404, "{\"errors\":[{\"code\":\"MANIFEST_UNKNOWN\",\"message\":\"manifest unknown\"}]}"));

        assertFailure(() -> client.manifest("1"), "ManifestUnknown", false);
        assertFailure(() -> client.blob(BLOB), "InvalidImage", false);
    }

    @Test
    void aRefusalWithoutChallengeOrAForbiddenIsUnauthorized() throws IOException {
        RegistryClient noChallenge = clientOf(exchange -> respond(exchange, 401, "{}"));
        assertFailure(() -> noChallenge.manifest("1"), "Unauthorized", false);
        server.stop(0);

        RegistryClient forbidden = clientOf(exchange -> respond(exchange, 403, "{}"));
        assertFailure(() -> forbidden.manifest("1"), "Unauthorized", false);
    }

    @Test
    void aRegistryThatStopsSendingTimesOutAsTransient() throws IOException {
        RegistryClient client = clientOf(exchange -> {
            exchange.sendResponseHeaders(200, 1000);
            exchange.getResponseBody().write(new byte[10]);
            exchange.getResponseBody().flush();
            try {
                stopStalling.await();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        });

        assertThatThrownBy(() -> {
                    try (InputStream in = client.blob(BLOB)) {
                        in.readAllBytes();
                    }
                })
                .isInstanceOfSatisfying(FetchException.class, e -> {
                    ImageException failure = e.toImageException();
                    assertThat(failure.reason()).isEqualTo("RegistryUnavailable");
                    assertThat(failure.transientFailure()).isTrue();
                    // The read timeout ended it: the body never comes, so nothing else could.
                    assertThat(Stream.iterate((Throwable) e, Objects::nonNull, Throwable::getCause)
                                    .toList())
                            .hasAtLeastOneElementOfType(SocketTimeoutException.class);
                });
    }

    @Test
    void anOversizedManifestIsRefused() throws IOException {
        RegistryClient client = clientOf(exchange -> {
            exchange.sendResponseHeaders(200, 0); // chunked: no Content-Length to refuse up front
            byte[] chunk = new byte[64 * 1024];
            for (long sent = 0; sent <= Oci.MAX_JSON_SIZE; sent += chunk.length) {
                exchange.getResponseBody().write(chunk);
            }
            exchange.close();
        });

        assertFailure(() -> client.manifest("1"), "InvalidImage", false);
    }

    private RegistryClient clientOf(HttpHandler handler) throws IOException {
        server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
        server.createContext("/", exchange -> {
            try (exchange) {
                handler.handle(exchange);
            }
        });
        server.start();
        OkHttpClient http = new OkHttpClient.Builder().readTimeout(READ_TIMEOUT).build();
        return new RegistryClient(
                http,
                "127.0.0.1:" + server.getAddress().getPort(),
                "test/busybox",
                null,
                Set.of(),
                RegistryClient.StallLimit.DEFAULT);
    }

    private static void respond(HttpExchange exchange, int status, String body) throws IOException {
        byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
        exchange.getResponseHeaders().set("Content-Type", "application/json");
        exchange.sendResponseHeaders(status, bytes.length);
        exchange.getResponseBody().write(bytes);
    }

    private static void assertFailure(
            org.assertj.core.api.ThrowableAssert.ThrowingCallable call, String reason, boolean transientFailure) {
        assertThatThrownBy(call).isInstanceOfSatisfying(FetchException.class, e -> {
            ImageException failure = e.toImageException();
            assertThat(failure.reason()).isEqualTo(reason);
            assertThat(failure.transientFailure()).isEqualTo(transientFailure);
        });
    }
}
