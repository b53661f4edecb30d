package dev.stevedore.agent.testing;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A TCP forwarder on a free 127.0.0.1 port in front of a real registry, to catch a client in the middle of a
 * download: requests pass as they are; once a connection has carried {@code stallAfterBytes} of responses, the rest
 * waits until {@link #release()}. Only large blobs get that far, so manifests and small layers go through.
 * Image references name {@link #host()} instead of the registry's; being loopback, it is spoken to over plain HTTP.
 */
public final class StallingProxy implements AutoCloseable {
    private final ServerSocket server;
    private final String targetHost;
    private final int targetPort;
    private final long stallAfterBytes;
    private final CountDownLatch released = new CountDownLatch(1);
    private final AtomicInteger stalled = new AtomicInteger();
    private final Set<Socket> sockets = ConcurrentHashMap.newKeySet();

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
                    try (InputStream in = from.getInputStream();
                            OutputStream out = to.getOutputStream()) {
                        for (int n; (n = in.read(buffer)) != -1; ) {
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

    private static void closeQuietly(Socket socket) {
        try {
            socket.close();
        } catch (IOException ignored) {
            // already closed
        }
    }
}
