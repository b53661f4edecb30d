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

class MonitoringServerTest {
    private final HttpClient http = HttpClient.newHttpClient();

    @Test
    void livenessIsOkWhileReadinessSaysWhyNotUntilReady() throws Exception {
        AtomicReference<Optional<String>> problem = new AtomicReference<>(Optional.of("informers not synced"));
        try (MonitoringServer server =
                MonitoringServer.start(MonitoringServer.parseAddress("127.0.0.1:0"), problem::get)) {
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
    void metricsAreServedInPrometheusTextOnceThereAreAny() throws Exception {
        AtomicReference<Optional<String>> metrics = new AtomicReference<>(Optional.empty());
        try (MonitoringServer server =
                MonitoringServer.start(MonitoringServer.parseAddress("127.0.0.1:0"), Optional::empty, metrics::get)) {
            assertThat(get(server, "GET", "/metrics")).isEqualTo("503 starting: no metrics yet\n");
            metrics.set(Optional.of("# TYPE up gauge\nup 1\n"));
            HttpResponse<String> scraped = send(server, "GET", "/metrics");
            assertThat(scraped.statusCode()).isEqualTo(200);
            assertThat(scraped.body()).isEqualTo("# TYPE up gauge\nup 1\n");
            assertThat(scraped.headers().firstValue("Content-Type")).contains(MonitoringServer.PROMETHEUS_TEXT);
            assertThat(get(server, "POST", "/metrics")).startsWith("405 ");
            assertThat(get(server, "GET", "/metrics/x")).startsWith("404 ");
            assertThat(get(server, "GET", "/healthz")).isEqualTo("200 ok\n");
        }
    }

    @Test
    void addressesAreHostPortPairs() {
        assertThat(MonitoringServer.parseAddress("127.0.0.1:9440")).isEqualTo(new InetSocketAddress("127.0.0.1", 9440));
        assertThat(MonitoringServer.parseAddress("[::1]:9440")).isEqualTo(new InetSocketAddress("::1", 9440));
        assertThat(MonitoringServer.parseAddress(":9440")).isEqualTo(new InetSocketAddress(9440));
        assertThatThrownBy(() -> MonitoringServer.parseAddress("9440")).hasMessageContaining("not host:port");
        assertThatThrownBy(() -> MonitoringServer.parseAddress("localhost:http"))
                .hasMessageContaining("no number");
        assertThatThrownBy(() -> MonitoringServer.parseAddress("localhost:70000"))
                .hasMessageContaining("out of range");
    }

    private String get(MonitoringServer server, String method, String path) throws Exception {
        HttpResponse<String> response = send(server, method, path);
        return response.statusCode() + " " + response.body();
    }

    private HttpResponse<String> send(MonitoringServer server, String method, String path) throws Exception {
        URI uri = URI.create("http://127.0.0.1:" + server.address().getPort() + path);
        return http.send(
                HttpRequest.newBuilder(uri)
                        .method(method, HttpRequest.BodyPublishers.noBody())
                        .build(),
                HttpResponse.BodyHandlers.ofString());
    }
}
