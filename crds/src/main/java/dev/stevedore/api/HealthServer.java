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
 * The health endpoints of the operator and the node agent, for kubelet's probes: {@code GET /healthz} answers 200
 * "ok" while the process serves at all (liveness), {@code GET /readyz} 200 "ok" once the component does its work,
 * else 503 with the reason (readiness). Plain HTTP on a port of its own, served by the JDK's HTTP server on one
 * daemon thread: a probe needs no framework, and nothing here is secret.
 */
public final class HealthServer implements AutoCloseable {
    private final HttpServer server;
    private final ExecutorService thread;

    private HealthServer(HttpServer server, ExecutorService thread) {
        this.server = server;
        this.thread = thread;
    }

    /**
     * Serves on {@code address} until closed.
     *
     * @param notReady why the component is not ready, empty when it is; asked at each {@code /readyz}
     */
    public static HealthServer start(InetSocketAddress address, Supplier<Optional<String>> notReady)
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
        server.createContext("/", exchange -> respond(exchange, 404, "not found: /healthz or /readyz"));
        server.start();
        return new HealthServer(server, thread);
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

    private static void respond(HttpExchange exchange, int status, String body) throws IOException {
        byte[] bytes = (body + "\n").getBytes(StandardCharsets.UTF_8);
        exchange.getResponseHeaders().set("Content-Type", "text/plain; charset=utf-8");
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
