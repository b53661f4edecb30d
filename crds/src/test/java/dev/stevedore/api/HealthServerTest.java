package dev.stevedore.api;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

class HealthServerTest {
    private final HttpClient http = HttpClient.newHttpClient();

    @Test
    void livenessIsOkWhileReadinessSaysWhyNotUntilReady() throws Exception {
        AtomicReference<Optional<String>> problem = new AtomicReference<>(Optional.of("informers not synced"));
        try (HealthServer server = HealthServer.start(HealthServer.parseAddress("127.0.0.1:0"), problem::get)) {
            assertThat(get(server, "GET", "/healthz")).isEqualTo("200 ok\n");
            assertThat(get(server, "GET", "/readyz")).isEqualTo("503 informers not synced\n");
            problem.set(Optional.empty());
            assertThat(get(server, "GET", "/readyz")).isEqualTo("200 ok\n");
            assertThat(get(server, "HEAD", "/readyz")).isEqualTo("200 ");
            assertThat(get(server, "GET", "/metrics")).startsWith("404 ");
            assertThat(get(server, "GET", "/healthz/x")).startsWith("404 ");
            assertThat(get(server, "POST", "/healthz")).startsWith("405 ");
        }
    }

    @Test
    void addressesAreHostPortPairs() {
        assertThat(HealthServer.parseAddress("127.0.0.1:9440")).isEqualTo(new InetSocketAddress("127.0.0.1", 9440));
        assertThat(HealthServer.parseAddress("[::1]:9440")).isEqualTo(new InetSocketAddress("::1", 9440));
        assertThat(HealthServer.parseAddress(":9440")).isEqualTo(new InetSocketAddress(9440));
        assertThatThrownBy(() -> HealthServer.parseAddress("9440")).hasMessageContaining("not host:port");
        assertThatThrownBy(() -> HealthServer.parseAddress("localhost:http")).hasMessageContaining("no number");
        assertThatThrownBy(() -> HealthServer.parseAddress("localhost:70000")).hasMessageContaining("out of range");
    }

    private String get(HealthServer server, String method, String path) throws Exception {
        URI uri = URI.create("http://127.0.0.1:" + server.address().getPort() + path);
        HttpResponse<String> response = http.send(
                HttpRequest.newBuilder(uri)
                        .method(method, HttpRequest.BodyPublishers.noBody())
                        .build(),
                HttpResponse.BodyHandlers.ofString());
        return response.statusCode() + " " + response.body();
    }
}
