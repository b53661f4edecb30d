package dev.stevedore.operator.subresources;

import dev.stevedore.api.v1alpha1.RuntimeNodeStatus;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.net.PemTrustOptions;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * HTTPS clients of the node agents' endpoints, one per endpoint as published: each trusts exactly the certificate
 * its agent published in its RuntimeNode (so a restarted agent, with a new certificate, gets a new client), checks
 * it names the address, and presents the operator's token, read from its file at each request (kubelet renews it).
 */
final class AgentClients implements AutoCloseable {
    private static final int MAX_CLIENTS = 512;
    /** A node that does not answer: the user hears so in seconds, not at the API server's proxy timeout. */
    private static final Duration CONNECT_TIMEOUT = Duration.ofSeconds(10);

    private final Vertx vertx;
    private final Path tokenFile;
    private final Map<RuntimeNodeStatus.AgentEndpoint, HttpClient> clients = new LinkedHashMap<>(16, 0.75f, true);

    AgentClients(Vertx vertx, Path tokenFile) {
        this.vertx = vertx;
        this.tokenFile = tokenFile;
    }

    synchronized HttpClient client(RuntimeNodeStatus.AgentEndpoint endpoint) {
        HttpClient client = clients.get(endpoint);
        if (client == null) {
            client = vertx.createHttpClient(new HttpClientOptions()
                    .setSsl(true)
                    .setVerifyHost(true)
                    .setTrustOptions(new PemTrustOptions().addCertValue(Buffer.buffer(endpoint.certificate())))
                    .setDefaultHost(endpoint.address())
                    .setDefaultPort(endpoint.port())
                    .setConnectTimeout((int) CONNECT_TIMEOUT.toMillis())
                    .setIdleTimeout(0));
            clients.put(endpoint, client);
            if (clients.size() > MAX_CLIENTS) {
                var eldest = clients.entrySet().iterator().next();
                eldest.getValue().close();
                clients.remove(eldest.getKey());
            }
        }
        return client;
    }

    /** The {@code Authorization} header the agents take. */
    String authorization() throws IOException {
        return "Bearer " + Files.readString(tokenFile).strip();
    }

    @Override
    public synchronized void close() {
        clients.values().forEach(HttpClient::close);
        clients.clear();
    }
}
