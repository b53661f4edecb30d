package dev.stevedore.api;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.Optional;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.function.Supplier;

/**
 * The health and metrics endpoints of the operator and the node agent. For kubelet's probes, {@code GET /healthz}
 * answers 200 "ok" while the process serves at all (liveness), {@code GET /readyz} 200 "ok" once the component does
 * its work, else 503 with the reason (readiness). For Prometheus, {@code GET /metrics} answers the text exposition
 * format where the component has metrics. Plain HTTP on a port of its own, served by the JDK's HTTP server on one
 * daemon thread: a probe and a scrape need no framework.
 */
public final class MonitoringServer implements AutoCloseable {
    /** Prometheus' text exposition format, as its scrapers ask for it. */
    static final String PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8";

    private final HttpServer server;
    private final ExecutorService thread;

    private MonitoringServer(HttpServer server, ExecutorService thread) {
        this.server = server;
        this.thread = thread;
    }

    /**
     * Serves on {@code address} until closed.
     *
     * @param notReady why the component is not ready, empty when it is; asked at each {@code /readyz}
     */
    public static MonitoringServer start(InetSocketAddress address, Supplier<Optional<String>> notReady)
            throws IOException {
        return start(address, notReady, null);
    }

    /**
     * Serves on {@code address} until closed.
     *
     * @param notReady why the component is not ready, empty when it is; asked at each {@code /readyz}
     * @param metrics the metrics in Prometheus' text format, asked at each {@code /metrics}; empty while the
     *     component has none yet (503); null: no {@code /metrics} (404)
     */
    public static MonitoringServer start(
            InetSocketAddress address, Supplier<Optional<String>> notReady, Supplier<Optional<String>> metrics)
            throws IOException {
        HttpServer server = HttpServer.create(address, 0);
        ExecutorService thread = Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, "health");
            t.setDaemon(true);
            return t;
        });
        server.setExecutor(thread);
        server.createContext("/healthz", exchange -> answer(exchange, Optional.empty()));
        server.createContext("/readyz", exchange -> answer(exchange, notReady.get()));
        if (metrics != null) {
            server.createContext("/metrics", exchange -> scrape(exchange, metrics));
        }
        server.createContext("/", exchange -> respond(exchange, 404, "not found: /healthz or /readyz"));
        server.start();
        return new MonitoringServer(server, thread);
    }

    /** {@code host:port}, {@code [ipv6]:port} or {@code :port} (every address), as a flag gives it. */
    public static InetSocketAddress parseAddress(String hostPort) {
        int colon = hostPort.lastIndexOf(':');
        if (colon < 0) {
            throw new IllegalArgumentException("not host:port: " + hostPort);
        }
        String host = hostPort.substring(0, colon).replaceAll("^\\[(.*)]$", "$1");
        int port;
        try {
            port = Integer.parseInt(hostPort.substring(colon + 1));
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("not host:port (the port is no number): " + hostPort, e);
        }
        if (port < 0 || port > 65535) {
            throw new IllegalArgumentException("port out of range: " + hostPort);
        }
        return host.isEmpty() ? new InetSocketAddress(port) : new InetSocketAddress(host, port);
    }

    /** Where it listens, with the port the system chose for port 0. */
    public InetSocketAddress address() {
        return server.getAddress();
    }

    private static void answer(HttpExchange exchange, Optional<String> problem) throws IOException {
        String path = exchange.getRequestURI().getPath();
        if (!path.equals("/healthz") && !path.equals("/readyz")) {
            respond(exchange, 404, "not found: /healthz or /readyz");
        } else if (!exchange.getRequestMethod().equals("GET")
                && !exchange.getRequestMethod().equals("HEAD")) {
            respond(exchange, 405, "GET or HEAD");
        } else {
            respond(exchange, problem.isEmpty() ? 200 : 503, problem.orElse("ok"));
        }
    }

    private static void scrape(HttpExchange exchange, Supplier<Optional<String>> metrics) throws IOException {
        if (!exchange.getRequestURI().getPath().equals("/metrics")) {
            respond(exchange, 404, "not found: /metrics");
        } else if (!exchange.getRequestMethod().equals("GET")) {
            respond(exchange, 405, "GET");
        } else {
            Optional<String> text = metrics.get();
            if (text.isEmpty()) {
                respond(exchange, 503, "starting: no metrics yet");
            } else {
                send(exchange, 200, PROMETHEUS_TEXT, text.get().getBytes(StandardCharsets.UTF_8));
            }
        }
    }

    private static void respond(HttpExchange exchange, int status, String body) throws IOException {
        send(exchange, status, "text/plain; charset=utf-8", (body + "\n").getBytes(StandardCharsets.UTF_8));
    }

    private static void send(HttpExchange exchange, int status, String contentType, byte[] bytes) throws IOException {
        exchange.getResponseHeaders().set("Content-Type", contentType);
        boolean head = exchange.getRequestMethod().equals("HEAD");
        exchange.sendResponseHeaders(status, head ? -1 : bytes.length);
        try (OutputStream out = exchange.getResponseBody()) {
            if (!head) {
                out.write(bytes);
            }
        }
    }

    @Override
    public void close() {
        server.stop(0);
        thread.shutdown();
    }
}
