package dev.stevedore.bench;

import dev.stevedore.testing.Processes;
import java.io.File;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.HttpURLConnection;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A real OCI distribution registry (Debian's {@code docker-registry}, the CNCF distribution 2.8) on a free 127.0.0.1
 * port, plain HTTP, open, with its storage in {@code dir}: what the agent's tests use (their LocalRegistry), cut to
 * what the benchmarks need. {@link #close()} stops it; the caller deletes {@code dir}.
 */
final class BenchRegistry implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(BenchRegistry.class);
    private static final Path BINARY = Path.of("/usr/bin/docker-registry");
    private static final Duration START_TIMEOUT = Duration.ofSeconds(30);
    private static final int START_ATTEMPTS = 3;

    private final int port;
    private final Process process;

    private BenchRegistry(int port, Process process) {
        this.port = port;
        this.process = process;
    }

    static BenchRegistry start(Path dir) throws IOException, InterruptedException {
        if (!Files.isExecutable(BINARY)) {
            throw new IllegalStateException(BINARY + " is missing: run hack/install-prereqs.sh");
        }
        Files.createDirectories(dir);
        IllegalStateException failure = null;
        // The port is free when picked but may be taken before the registry binds it: try another then.
        for (int attempt = 0; attempt < START_ATTEMPTS; attempt++) {
            int port = freePort();
            Path config = dir.resolve("config.yml");
            Files.writeString(config, """
                    version: 0.1
                    log:
                      level: warn
                      accesslog:
                        disabled: true
                    storage:
                      filesystem:
                        rootdirectory: %s
                      delete:
                        enabled: true
                    http:
                      addr: 127.0.0.1:%d
                      secret: stevedore-bench-secret
                    """.formatted(dir.resolve("storage"), port));
            Process process = new ProcessBuilder(BINARY.toString(), "serve", config.toString())
                    .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")))
                    .redirectErrorStream(true)
                    .redirectOutput(dir.resolve("registry.log").toFile())
                    .start();
            try {
                awaitReady(process, port);
                LOG.info("registry at 127.0.0.1:{} (pid {})", port, process.pid());
                return new BenchRegistry(port, process);
            } catch (IllegalStateException e) {
                process.destroy();
                process.waitFor(10, TimeUnit.SECONDS);
                failure = new IllegalStateException(
                        e.getMessage() + "; its log:\n" + Files.readString(dir.resolve("registry.log")), e);
            }
        }
        throw failure;
    }

    /** {@code host:port}, as image references name it. */
    String host() {
        return "127.0.0.1:" + port;
    }

    ProcessHandle handle() {
        return process.toHandle();
    }

    @Override
    public void close() {
        Processes.stop(process);
    }

    /**
     * Ready when /v2/ answers. Nothing announces that a server has bound its port, so this polls, briefly: the
     * registry starts in well under a second.
     */
    private static void awaitReady(Process process, int port) throws InterruptedException {
        long deadline = System.nanoTime() + START_TIMEOUT.toNanos();
        while (status("http://127.0.0.1:" + port + "/v2/") != 200) {
            if (!process.isAlive()) {
                throw new IllegalStateException("the registry exited with " + process.exitValue());
            }
            if (System.nanoTime() > deadline) {
                throw new IllegalStateException("the registry did not answer within " + START_TIMEOUT);
            }
            Thread.sleep(50);
        }
    }

    private static int status(String url) {
        try {
            HttpURLConnection connection =
                    (HttpURLConnection) URI.create(url).toURL().openConnection();
            connection.setConnectTimeout(500);
            connection.setReadTimeout(2000);
            try {
                return connection.getResponseCode();
            } finally {
                connection.disconnect();
            }
        } catch (IOException notYet) {
            return -1;
        }
    }

    private static int freePort() {
        try (ServerSocket socket = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            return socket.getLocalPort();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
