package dev.stevedore.agent.testing;

import static org.awaitility.Awaitility.await;

import dev.stevedore.agent.fs.SafeDelete;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.HttpURLConnection;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.Map;
import org.bouncycastle.crypto.generators.OpenBSDBCrypt;

/**
 * A real OCI distribution registry (Debian's {@code docker-registry}, the CNCF distribution 2.8) on a free
 * 127.0.0.1 port with its storage in a temp dir: open, behind htpasswd Basic auth, or behind a {@link TokenServer}.
 * Plain HTTP, as a loopback registry is spoken to. {@link #close()} stops it and deletes its storage.
 */
public final class LocalRegistry implements AutoCloseable {
    private static final Path BINARY = Path.of("/usr/bin/docker-registry");
    private static final int START_ATTEMPTS = 3;

    private final Path dir;
    private final int port;
    private final Process process;

    private LocalRegistry(Path dir, int port, Process process) {
        this.dir = dir;
        this.port = port;
        this.process = process;
    }

    public static LocalRegistry start() {
        return start("");
    }

    /** Requires {@code user}/{@code password} by Basic auth, as an htpasswd file with a bcrypt entry. */
    public static LocalRegistry withBasicAuth(String user, String password) {
        return withBasicAuth(Map.of(user, password));
    }

    /** Requires one of {@code passwords} (by user) by Basic auth, as an htpasswd file with bcrypt entries. */
    public static LocalRegistry withBasicAuth(Map<String, String> passwords) {
        StringBuilder htpasswd = new StringBuilder();
        passwords.forEach((user, password) -> {
            byte[] salt = new byte[16];
            new SecureRandom().nextBytes(salt);
            // Bouncy Castle's bcrypt (already on the test class path) spares installing apache2-utils for htpasswd.
            htpasswd.append(user)
                    .append(':')
                    .append(OpenBSDBCrypt.generate("2y", password.toCharArray(), salt, 5))
                    .append('\n');
        });
        return start("""
                auth:
                  htpasswd:
                    realm: stevedore-test
                    path: %s
                """, "htpasswd", htpasswd.toString());
    }

    /** Requires bearer tokens that {@code tokens} issues, as Docker Hub does. */
    public static LocalRegistry withTokenAuth(TokenServer tokens) {
        return start(
                """
                auth:
                  token:
                    realm: %s
                    service: %s
                    issuer: %s
                    rootcertbundle: %%s
                """.formatted(tokens.realm(), TokenServer.SERVICE, TokenServer.ISSUER),
                "token.crt",
                tokens.certificatePem());
    }

    /** {@code host:port}, as image references name it. */
    public String host() {
        return "127.0.0.1:" + port;
    }

    /** The file the registry serves a blob from, to corrupt it in tests. */
    public Path blobData(String digest) {
        String hex = digest.substring(digest.indexOf(':') + 1);
        return dir.resolve("storage/docker/registry/v2/blobs/sha256")
                .resolve(hex.substring(0, 2))
                .resolve(hex)
                .resolve("data");
    }

    @Override
    public void close() {
        process.destroy();
        try {
            process.waitFor();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        try {
            SafeDelete.deleteTree(dir);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static LocalRegistry start(String authSection) {
        return start(authSection, null, null);
    }

    /** {@code authSection} may hold one {@code %s}: the path of a file written with {@code fileContent}. */
    private static LocalRegistry start(String authSection, String fileName, String fileContent) {
        if (!Files.isExecutable(BINARY)) {
            throw new IllegalStateException(BINARY + " is missing: run hack/install-prereqs.sh");
        }
        try {
            Path dir = Files.createTempDirectory("stevedore-registry-");
            String auth = authSection;
            if (fileName != null) {
                Path file = dir.resolve(fileName);
                Files.writeString(file, fileContent);
                auth = authSection.formatted(file);
            }
            IllegalStateException failure = null;
            // The port is free when picked but may be taken before the registry binds it: try another then.
            for (int attempt = 0; attempt < START_ATTEMPTS; attempt++) {
                int port = freePort();
                Process process = launch(dir, port, auth);
                try {
                    awaitReady(process, port, dir);
                    return new LocalRegistry(dir, port, process);
                } catch (IllegalStateException e) {
                    process.destroy();
                    process.waitFor();
                    failure = e;
                }
            }
            SafeDelete.deleteTree(dir);
            throw failure;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while starting the registry", e);
        }
    }

    private static Process launch(Path dir, int port, String auth) throws IOException {
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
                  secret: stevedore-test-secret
                %s""".formatted(dir.resolve("storage"), port, auth));
        return new ProcessBuilder(BINARY.toString(), "serve", config.toString())
                .redirectErrorStream(true)
                .redirectOutput(dir.resolve("registry.log").toFile())
                .start();
    }

    /** Ready when /v2/ answers at all: 200 when open, 401 behind auth. */
    private static void awaitReady(Process process, int port, Path dir) {
        try {
            await().atMost(Duration.ofSeconds(30))
                    .pollInterval(Duration.ofMillis(50))
                    .until(() -> {
                        if (!process.isAlive()) {
                            throw new IllegalStateException("the registry exited with " + process.exitValue());
                        }
                        return status("http://127.0.0.1:" + port + "/v2/") > 0;
                    });
        } catch (RuntimeException e) {
            throw new IllegalStateException("the registry did not start: " + e.getMessage() + "\n" + log(dir), e);
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

    private static int freePort() throws IOException {
        try (ServerSocket socket = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            return socket.getLocalPort();
        }
    }

    private static String log(Path dir) {
        try {
            return Files.readString(dir.resolve("registry.log"), StandardCharsets.UTF_8);
        } catch (IOException e) {
            return "(no log)";
        }
    }
}
