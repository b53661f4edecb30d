package dev.stevedore.agent.tasks;

import com.sun.net.httpserver.HttpServer;
import dev.stevedore.api.v1alpha1.Task;
import dev.stevedore.api.v1alpha1.TaskStatus;
import io.fabric8.kubernetes.client.Config;
import io.fabric8.kubernetes.client.ConfigBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientBuilder;
import io.fabric8.kubernetes.client.utils.Serialization;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The one API request the executor makes, a Task status apply, answered by a local HTTP server: it keeps what was
 * applied, with the field manager, and answers with {@link #respondWith} (200 unless told otherwise).
 */
final class FakeTaskStatusApi implements AutoCloseable {
    record Applied(String path, String query, TaskStatus status) {}

    private final HttpServer server;
    private final KubernetesClient client;
    final List<Applied> applied = new CopyOnWriteArrayList<>();
    volatile int respondWith = 200;
    /** Every request, answered with 200 or not. */
    final AtomicInteger requests = new AtomicInteger();

    FakeTaskStatusApi() throws IOException {
        server = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
        server.createContext("/", exchange -> {
            requests.incrementAndGet();
            byte[] body = exchange.getRequestBody().readAllBytes();
            int code = respondWith;
            byte[] reply;
            if ("PATCH".equals(exchange.getRequestMethod()) && code == 200) {
                Task task = Serialization.unmarshal(new String(body, StandardCharsets.UTF_8), Task.class);
                applied.add(new Applied(
                        exchange.getRequestURI().getPath(),
                        exchange.getRequestURI().getQuery(),
                        task.getStatus()));
                reply = body;
            } else {
                reply = ("{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\",\"code\":" + code + "}")
                        .getBytes(StandardCharsets.UTF_8);
            }
            exchange.getResponseHeaders().add("Content-Type", "application/json");
            exchange.sendResponseHeaders(code, reply.length);
            exchange.getResponseBody().write(reply);
            exchange.close();
        });
        server.start();
        client = new KubernetesClientBuilder()
                .withConfig(new ConfigBuilder(Config.empty())
                        .withMasterUrl(url())
                        .withRequestRetryBackoffLimit(0)
                        .build())
                .build();
    }

    KubernetesClient client() {
        return client;
    }

    String url() {
        return "http://127.0.0.1:" + server.getAddress().getPort();
    }

    List<TaskStatus> statuses() {
        return applied.stream().map(Applied::status).toList();
    }

    @Override
    public void close() {
        client.close();
        server.stop(0);
    }
}
