package dev.stevedore.operator.pullcredentials;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpsConfigurator;
import com.sun.net.httpserver.HttpsServer;
import dev.stevedore.api.PullCredentialsApi;
import dev.stevedore.api.v1alpha1.Container;
import io.fabric8.kubernetes.api.model.Secret;
import io.fabric8.kubernetes.api.model.authentication.TokenReview;
import io.fabric8.kubernetes.api.model.authentication.TokenReviewBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The operator's pull-credentials endpoint ({@link PullCredentialsApi}), over HTTPS. Stateless: every replica
 * serves it, leader or not, and every answer is decided from the API server's current objects: a TokenReview of the
 * caller's token, a GET of the Container, a GET of each Secret it names (no Secret is listed, watched or cached).
 * Credentials and tokens are never logged.
 *
 * <p>The JDK's own HTTPS server: one endpoint, small JSON bodies, a few requests per Container prepared; a web
 * framework would bring more than it serves.
 */
public final class PullCredentialsServer implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(PullCredentialsServer.class);
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final int MAX_REQUEST_BYTES = 16 * 1024;
    private static final String DOCKER_CONFIG_JSON_TYPE = "kubernetes.io/dockerconfigjson";
    private static final String DOCKER_CONFIG_JSON = ".dockerconfigjson";

    /**
     * Where and how it serves.
     *
     * @param namespace the operator's namespace: its serving Secret and CA ConfigMap are there
     * @param agentServiceAccount {@code namespace/name} of the node agents' ServiceAccount
     * @param servingNames DNS names and IP addresses a generated serving certificate is valid for
     */
    public record Settings(
            InetSocketAddress address,
            String namespace,
            String servingSecret,
            String caConfigMap,
            List<String> servingNames,
            String agentServiceAccount) {}

    private final KubernetesClient client;
    private final String agentUser;
    private final HttpsServer server;
    private final ExecutorService executor;

    private PullCredentialsServer(KubernetesClient client, String agentUser, HttpsServer server, ExecutorService ex) {
        this.client = client;
        this.agentUser = agentUser;
        this.server = server;
        this.executor = ex;
    }

    /** Makes sure of its serving certificate (see {@link ServingCertificate}), then serves. */
    public static PullCredentialsServer start(KubernetesClient client, Settings settings)
            throws IOException, GeneralSecurityException {
        String[] agent = settings.agentServiceAccount().split("/", 2);
        if (agent.length != 2 || agent[0].isEmpty() || agent[1].isEmpty()) {
            throw new IllegalArgumentException(
                    "the agent's ServiceAccount must be namespace/name: " + settings.agentServiceAccount());
        }
        HttpsServer server = HttpsServer.create(settings.address(), 0);
        server.setHttpsConfigurator(new HttpsConfigurator(ServingCertificate.ensure(
                client,
                settings.namespace(),
                settings.servingSecret(),
                settings.caConfigMap(),
                settings.servingNames())));
        ExecutorService executor = Executors.newFixedThreadPool(4, r -> {
            Thread thread = new Thread(r, "pull-credentials");
            thread.setDaemon(true);
            return thread;
        });
        server.setExecutor(executor);
        PullCredentialsServer broker = new PullCredentialsServer(
                client, "system:serviceaccount:" + agent[0] + ":" + agent[1], server, executor);
        server.createContext(PullCredentialsApi.PATH, broker::handle);
        server.start();
        LOG.info("serving pull credentials on port {}", server.getAddress().getPort());
        return broker;
    }

    /** The port it listens on (the one asked for, or the one picked for port 0). */
    public int port() {
        return server.getAddress().getPort();
    }

    @Override
    public void close() {
        server.stop(0);
        executor.shutdownNow();
    }

    private void handle(HttpExchange exchange) throws IOException {
        try (exchange) {
            try {
                respond(exchange, 200, JSON.writeValueAsBytes(answer(exchange)), "application/json");
            } catch (Refusal refusal) {
                LOG.info("refused pull credentials: {} {}", refusal.status(), refusal.getMessage());
                respond(
                        exchange,
                        refusal.status(),
                        (refusal.getMessage() + "\n").getBytes(StandardCharsets.UTF_8),
                        "text/plain; charset=utf-8");
            } catch (RuntimeException e) {
                LOG.warn("pull credentials: the request failed: {}", e.toString());
                respond(
                        exchange,
                        500,
                        "internal error\n".getBytes(StandardCharsets.UTF_8),
                        "text/plain; charset=utf-8");
            }
        }
    }

    private PullCredentialsApi.Response answer(HttpExchange exchange) throws Refusal, IOException {
        if (!"POST".equals(exchange.getRequestMethod())
                || !PullCredentialsApi.PATH.equals(exchange.getRequestURI().getPath())) {
            throw new Refusal(Refusal.NOT_FOUND, "only POST " + PullCredentialsApi.PATH + " is served");
        }
        String authorization = exchange.getRequestHeaders().getFirst("Authorization");
        if (authorization == null || !authorization.startsWith("Bearer ") || authorization.length() <= 7) {
            throw new Refusal(Refusal.UNAUTHENTICATED, "no bearer token");
        }
        PullCredentialsApi.Request request = request(exchange.getRequestBody());
        String node = PullCredentialsDecision.callerNode(review(authorization.substring(7)), agentUser);
        Container container = read(() -> client.resources(Container.class)
                .inNamespace(request.namespace())
                .withName(request.container())
                .get());
        List<String> names = PullCredentialsDecision.secretNames(node, request, container);
        List<PullCredentialsApi.PullSecret> secrets = new ArrayList<>();
        for (String name : names) {
            Secret secret = read(() -> client.secrets()
                    .inNamespace(request.namespace())
                    .withName(name)
                    .get());
            // As kubelet: a pull Secret that is missing or of another type is no error until the registry says so.
            if (secret != null
                    && DOCKER_CONFIG_JSON_TYPE.equals(secret.getType())
                    && secret.getData() != null
                    && secret.getData().get(DOCKER_CONFIG_JSON) != null) {
                secrets.add(
                        new PullCredentialsApi.PullSecret(name, secret.getData().get(DOCKER_CONFIG_JSON)));
            }
        }
        LOG.info(
                "gave node {} the pull Secrets {} of Container {}/{}",
                node,
                secrets.stream().map(PullCredentialsApi.PullSecret::name).toList(),
                request.namespace(),
                request.container());
        return new PullCredentialsApi.Response(secrets);
    }

    private static PullCredentialsApi.Request request(InputStream body) throws Refusal, IOException {
        byte[] bytes = body.readNBytes(MAX_REQUEST_BYTES + 1);
        if (bytes.length > MAX_REQUEST_BYTES) {
            throw new Refusal(Refusal.BAD_REQUEST, "the request is larger than " + MAX_REQUEST_BYTES + " bytes");
        }
        PullCredentialsApi.Request request;
        try {
            request = JSON.readValue(bytes, PullCredentialsApi.Request.class);
        } catch (IOException e) {
            throw new Refusal(Refusal.BAD_REQUEST, "the request is not JSON of namespace, container and uid");
        }
        if (request == null || blank(request.namespace()) || blank(request.container()) || blank(request.uid())) {
            throw new Refusal(Refusal.BAD_REQUEST, "the request needs namespace, container and uid");
        }
        return request;
    }

    private TokenReview review(String token) throws Refusal {
        return read(() -> client.authentication()
                .v1()
                .tokenReviews()
                .create(new TokenReviewBuilder()
                        .withNewSpec()
                        .withToken(token)
                        .withAudiences(PullCredentialsApi.AUDIENCE)
                        .endSpec()
                        .build()));
    }

    private interface Read<T> {
        T get();
    }

    /** What the API server answered; when it cannot be asked, a 503 the agent retries. */
    private static <T> T read(Read<T> read) throws Refusal {
        try {
            return read.get();
        } catch (KubernetesClientException e) {
            LOG.warn("pull credentials: the API server did not answer: {} {}", e.getCode(), e.getMessage());
            throw new Refusal(Refusal.UNAVAILABLE, "the operator cannot reach the API server (" + e.getCode() + ")");
        }
    }

    private static void respond(HttpExchange exchange, int status, byte[] body, String type) throws IOException {
        exchange.getResponseHeaders().set("Content-Type", type);
        exchange.getResponseHeaders().set("Cache-Control", "no-store");
        exchange.sendResponseHeaders(status, body.length);
        try (OutputStream out = exchange.getResponseBody()) {
            out.write(body);
        }
    }

    private static boolean blank(String value) {
        return value == null || value.isBlank();
    }
}
