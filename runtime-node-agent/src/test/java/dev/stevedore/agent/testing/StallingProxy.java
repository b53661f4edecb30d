package dev.stevedore.agent.testing;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.regex.Pattern;

/**
 * A TCP forwarder on a free 127.0.0.1 port in front of a real registry, to catch a client in the middle of a
 * download: requests pass as they are; once a connection has carried {@code stallAfterBytes} of responses, the rest
 * waits until {@link #release()}. Only large blobs get that far, so manifests and small layers go through.
 * Image references name {@link #host()} instead of the registry's; being loopback, it is spoken to over plain HTTP.
 * The request lines that pass ({@code GET /v2/... HTTP/1.1}) are recorded, to count what a client asked for.
 */
public final class StallingProxy implements AutoCloseable {
    private static final Pattern REQUEST_LINE = Pattern.compile("[A-Z]+ \\S+ HTTP/1\\.[01]");

    private final ServerSocket server;
    private final String targetHost;
    private final int targetPort;
    private final long stallAfterBytes;
    private final CountDownLatch released = new CountDownLatch(1);
    private final AtomicInteger stalled = new AtomicInteger();
    private final Set<Socket> sockets = ConcurrentHashMap.newKeySet();
    private final List<String> requests = new CopyOnWriteArrayList<>();

    /** @param registry {@code host:port} of the registry behind */
    public StallingProxy(String registry, long stallAfterBytes) {
        this.targetHost = registry.substring(0, registry.lastIndexOf(':'));
        this.targetPort = Integer.parseInt(registry.substring(registry.lastIndexOf(':') + 1));
        this.stallAfterBytes = stallAfterBytes;
        try {
            this.server = new ServerSocket(0, 50, InetAddress.getLoopbackAddress());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        Thread acceptor = new Thread(this::accept, "stalling-proxy-" + server.getLocalPort());
        acceptor.setDaemon(true);
        acceptor.start();
    }

    public String host() {
        return "127.0.0.1:" + server.getLocalPort();
    }

    /** How many responses are held back right now. */
    public int stalled() {
        return stalled.get();
    }

    /** The request lines sent through so far, in order, e.g. {@code GET /v2/test/x/blobs/sha256:... HTTP/1.1}. */
    public List<String> requests() {
        return List.copyOf(requests);
    }

    /** Lets held responses go on, and no longer holds any. */
    public void release() {
        released.countDown();
    }

    @Override
    public void close() {
        release();
        try {
            server.close();
        } catch (IOException ignored) {
            // closing anyway
        }
        sockets.forEach(StallingProxy::closeQuietly);
    }

    private void accept() {
        while (!server.isClosed()) {
            Socket client;
            try {
                client = server.accept();
            } catch (IOException closed) {
                return;
            }
            try {
                Socket upstream = new Socket(targetHost, targetPort);
                sockets.add(client);
                sockets.add(upstream);
                pump(client, upstream, false);
                pump(upstream, client, true);
            } catch (IOException registryDown) {
                closeQuietly(client); // as a refused connection: the client sees it fail
            }
        }
    }

    private void pump(Socket from, Socket to, boolean response) {
        Thread thread = new Thread(
                () -> {
                    long total = 0;
                    byte[] buffer = new byte[16 * 1024];
                    RequestLines lines = new RequestLines();
                    try (InputStream in = from.getInputStream();
                            OutputStream out = to.getOutputStream()) {
                        for (int n; (n = in.read(buffer)) != -1; ) {
                            if (!response) {
                                lines.feed(buffer, n); // before forwarding: once answered, the request is counted
                            }
                            out.write(buffer, 0, n);
                            out.flush();
                            total += n;
                            if (response && total >= stallAfterBytes && released.getCount() > 0) {
                                stalled.incrementAndGet();
                                try {
                                    released.await();
                                } finally {
                                    stalled.decrementAndGet();
                                }
                            }
                        }
                    } catch (IOException | InterruptedException closed) {
                        // one side went away: the other goes too
                    } finally {
                        closeQuietly(from);
                        closeQuietly(to);
                        sockets.remove(from);
                        sockets.remove(to);
                    }
                },
                "stalling-proxy-pump");
        thread.setDaemon(true);
        thread.start();
    }

    /**
     * Splits what a client sends into lines and records the request lines. The clients here send no bodies (GET and
     * HEAD), so every line is a request line or a header; headers never end in {@code HTTP/1.x}.
     */
    private final class RequestLines {
        private final StringBuilder line = new StringBuilder();

        void feed(byte[] bytes, int length) {
            for (int i = 0; i < length; i++) {
                char c = (char) (bytes[i] & 0xff);
                if (c == '\n') {
                    String text = line.toString().strip();
                    if (REQUEST_LINE.matcher(text).matches()) {
                        requests.add(text);
                    }
                    line.setLength(0);
                } else if (line.length() < 8192) {
                    line.append(c);
                }
            }
        }
    }

    private static void closeQuietly(Socket socket) {
        try {
            socket.close();
        } catch (IOException ignored) {
            // already closed
        }
    }
}
