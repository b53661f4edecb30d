package dev.stevedore.operator.subresources;

import dev.stevedore.api.AgentApi;
import dev.stevedore.api.v1alpha1.RuntimeNode;
import dev.stevedore.api.v1alpha1.RuntimeNodeStatus;
import dev.stevedore.api.v1alpha1.Task;
import dev.stevedore.operator.pullcredentials.ServingCertificate;
import io.fabric8.kubernetes.api.model.APIGroup;
import io.fabric8.kubernetes.api.model.APIGroupBuilder;
import io.fabric8.kubernetes.api.model.APIGroupListBuilder;
import io.fabric8.kubernetes.api.model.APIResourceBuilder;
import io.fabric8.kubernetes.api.model.APIResourceListBuilder;
import io.fabric8.kubernetes.api.model.GroupVersionForDiscovery;
import io.fabric8.kubernetes.api.model.Status;
import io.fabric8.kubernetes.api.model.StatusBuilder;
import io.fabric8.kubernetes.api.model.authorization.v1.SubjectAccessReview;
import io.fabric8.kubernetes.api.model.authorization.v1.SubjectAccessReviewBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.fabric8.kubernetes.client.dsl.base.PatchContext;
import io.fabric8.kubernetes.client.dsl.base.PatchType;
import io.fabric8.kubernetes.client.utils.Serialization;
import io.netty.handler.codec.http.QueryStringDecoder;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.VertxOptions;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.file.FileSystemOptions;
import io.vertx.core.http.ClientAuth;
import io.vertx.core.http.HttpClientResponse;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerOptions;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.http.RequestOptions;
import io.vertx.core.http.ServerWebSocket;
import io.vertx.core.http.UpgradeRejectedException;
import io.vertx.core.http.WebSocket;
import io.vertx.core.http.WebSocketConnectOptions;
import io.vertx.core.net.PemKeyCertOptions;
import io.vertx.core.net.PemTrustOptions;
import java.io.IOException;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The aggregated API {@code subresources.stevedore.dev/v1alpha1}, as metrics-server and KubeVirt's virt-api serve
 * theirs: the API server authenticates and authorizes a user for {@code tasks/log}, {@code tasks/processes} or
 * {@code tasks/usage} and proxies the request here through its front proxy; this server believes the user only from
 * the front proxy ({@link FrontProxy}), asks the API server again whether that user may (a SubjectAccessReview, as
 * every extension API server does), finds the Task's node and proxies to that node's agent ({@link AgentApi}).
 * Every replica serves it: it keeps no state.
 */
public final class SubresourcesServer implements AutoCloseable {
    public static final String GROUP = "subresources.stevedore.dev";
    public static final String VERSION = "v1alpha1";
    /** The APIService the chart registers; its caBundle is set to the CA of the serving certificate. */
    public static final String API_SERVICE = VERSION + "." + GROUP;

    private static final Logger LOG = LoggerFactory.getLogger(SubresourcesServer.class);
    private static final Duration CA_BUNDLE_CHECK = Duration.ofSeconds(30);
    private static final String PREFIX = "/apis/" + GROUP + "/" + VERSION;
    private static final Pattern TASK_PATH = Pattern.compile(
            Pattern.quote(PREFIX)
                    + "/namespaces/([a-z0-9]([-a-z0-9]*[a-z0-9])?)/tasks/([a-z0-9]([-.a-z0-9]*[a-z0-9])?)/(log|processes|usage)");
    private static final Pattern EXEC_PATH = Pattern.compile(Pattern.quote(PREFIX)
            + "/namespaces/([a-z0-9]([-a-z0-9]*[a-z0-9])?)/tasks/([a-z0-9]([-.a-z0-9]*[a-z0-9])?)/exec");
    private static final List<String> LOG_PARAMETERS =
            List.of("follow", "tailLines", "timestamps", "stream", "sinceTime");

    /**
     * Where and how it serves.
     *
     * @param port its port, on every address
     * @param namespace the operator's namespace: its serving Secret and CA ConfigMap are there
     * @param servingNames DNS names and IP addresses a generated serving certificate is valid for
     * @param agentToken the operator's token of audience {@link AgentApi#AUDIENCE}, re-read at each request
     */
    public record Settings(
            int port,
            String namespace,
            String servingSecret,
            String caConfigMap,
            List<String> servingNames,
            Path agentToken) {}

    private final KubernetesClient client;
    private final Vertx vertx;
    private final HttpServer server;
    private final FrontProxy frontProxy;
    private final AgentClients agents;
    private final Clock clock = Clock.systemUTC();

    private SubresourcesServer(
            KubernetesClient client, Vertx vertx, HttpServer server, FrontProxy frontProxy, AgentClients agents) {
        this.client = client;
        this.vertx = vertx;
        this.server = server;
        this.frontProxy = frontProxy;
        this.agents = agents;
    }

    /** Reads the front proxy's configuration, makes sure of the serving certificate and its APIService, serves. */
    public static SubresourcesServer start(KubernetesClient client, Settings settings)
            throws IOException, GeneralSecurityException {
        FrontProxy frontProxy = FrontProxy.read(client);
        ServingCertificate.Pems serving = ServingCertificate.ensurePems(
                client,
                settings.namespace(),
                settings.servingSecret(),
                settings.caConfigMap(),
                settings.servingNames());
        Vertx vertx = Vertx.vertx(new VertxOptions()
                .setEventLoopPoolSize(2)
                .setWorkerPoolSize(8)
                // No file cache: it serves no files, and the container's root file system is read-only.
                .setFileSystemOptions(
                        new FileSystemOptions().setFileCachingEnabled(false).setClassPathResolvingEnabled(false)));
        HttpServer server = vertx.createHttpServer(new HttpServerOptions()
                .setSsl(true)
                .setKeyCertOptions(new PemKeyCertOptions()
                        .addCertValue(Buffer.buffer(serving.certificate()))
                        .addKeyValue(Buffer.buffer(serving.privateKey())))
                // Asked, not required: discovery and health are for anyone; everything else needs the front proxy.
                .setClientAuth(ClientAuth.REQUEST)
                .setTrustOptions(new PemTrustOptions().addCertValue(Buffer.buffer(frontProxy.caPem())))
                .setWebSocketSubProtocols(List.of(AgentApi.EXEC_PROTOCOL))
                .setIdleTimeout(0));
        SubresourcesServer api = new SubresourcesServer(
                client, vertx, server, frontProxy, new AgentClients(vertx, settings.agentToken()));
        server.requestHandler(api::handle);
        server.webSocketHandler(api::exec);
        try {
            server.listen(settings.port())
                    .toCompletionStage()
                    .toCompletableFuture()
                    .get(30, TimeUnit.SECONDS);
        } catch (InterruptedException | ExecutionException | TimeoutException e) {
            api.close();
            throw new IOException("serving " + GROUP + " on port " + settings.port() + ": " + e.getMessage(), e);
        }
        LOG.info("serving {} on port {}", API_SERVICE, server.actualPort());
        // Now and then again: the APIService may be created after the operator starts (one Helm release, any order).
        String caBundle = Base64.getEncoder().encodeToString(serving.ca().getBytes(StandardCharsets.US_ASCII));
        publishCaBundle(client, caBundle);
        vertx.setPeriodic(
                CA_BUNDLE_CHECK.toMillis(),
                id -> vertx.executeBlocking(() -> {
                    publishCaBundle(client, caBundle);
                    return null;
                }));
        return api;
    }

    /** The port it listens on (the one asked for, or the one picked for port 0). */
    public int port() {
        return server.actualPort();
    }

    /**
     * The APIService's caBundle, as cert-manager's CA injector sets it: the chart cannot know the CA (see
     * {@link ServingCertificate}). Patched only when it differs; an APIService not installed is left for later.
     */
    private static void publishCaBundle(KubernetesClient client, String caBundle) {
        try {
            var apiService = client.genericKubernetesResources("apiregistration.k8s.io/v1", "APIService")
                    .withName(API_SERVICE);
            var current = apiService.get();
            if (current == null) {
                LOG.debug("no APIService {} yet", API_SERVICE);
            } else if (!caBundle.equals(current.get("spec", "caBundle"))) {
                apiService.patch(
                        PatchContext.of(PatchType.JSON_MERGE), "{\"spec\":{\"caBundle\":\"" + caBundle + "\"}}");
                LOG.info("set the caBundle of the APIService {}", API_SERVICE);
            }
        } catch (KubernetesClientException e) {
            LOG.warn("the APIService {}'s caBundle was not set ({}): {}", API_SERVICE, e.getCode(), e.getMessage());
        }
    }

    private void handle(HttpServerRequest request) {
        String path = request.path();
        if (request.method() != HttpMethod.GET) {
            status(request, 405, "MethodNotAllowed", request.method() + " is not supported here");
            return;
        }
        switch (path) {
            case "/healthz", "/livez", "/readyz" -> {
                request.response().putHeader("Content-Type", "text/plain").end("ok");
                return;
            }
            case "/apis" -> {
                json(request, new APIGroupListBuilder().withGroups(group()).build());
                return;
            }
            case "/apis/" + GROUP -> {
                json(request, group());
                return;
            }
            case PREFIX -> {
                json(request, resources());
                return;
            }
            default -> {}
        }
        Matcher task = TASK_PATH.matcher(path);
        if (!task.matches()) {
            status(request, 404, "NotFound", "the server could not find the requested resource");
            return;
        }
        Optional<FrontProxy.User> user = frontProxy.user(request);
        if (user.isEmpty()) {
            status(request, 401, "Unauthorized", "Unauthorized");
            return;
        }
        String namespace = task.group(1);
        String name = task.group(3);
        String subresource = task.group(5);
        vertx.<TaskEndpoint>executeBlocking(() -> endpointFor(user.get(), namespace, name, subresource, "get"), false)
                .onSuccess(endpoint -> proxy(request, endpoint, subresource))
                .onFailure(e -> {
                    if (e instanceof Refusal refusal) {
                        status(request, refusal.code, refusal.reason, refusal.getMessage());
                    } else {
                        LOG.warn("{} {}", request.method(), path, e);
                        status(request, 503, "ServiceUnavailable", "the operator cannot serve it now: " + e);
                    }
                });
    }

    /** Authorizes the user, then finds the Task, its node and that node's agent endpoint. Blocking. */
    private TaskEndpoint endpointFor(
            FrontProxy.User user, String namespace, String name, String subresource, String verb) throws Refusal {
        if (!allowed(user, namespace, name, subresource, verb)) {
            throw new Refusal(
                    403,
                    "Forbidden",
                    "tasks." + GROUP + " \"" + name + "\" is forbidden: User \"" + user.name() + "\" cannot " + verb
                            + " resource \"tasks/" + subresource + "\" in API group \"" + GROUP
                            + "\" in the namespace \"" + namespace + "\"");
        }
        Task found = read(() -> client.resources(Task.class)
                .inNamespace(namespace)
                .withName(name)
                .get());
        if (found == null) {
            throw new Refusal(404, "NotFound", "tasks.stevedore.dev \"" + name + "\" not found");
        }
        String node = found.getSpec().nodeName();
        if (node == null || node.isEmpty()) {
            throw new Refusal(400, "BadRequest", "task \"" + name + "\" is not bound to a node yet");
        }
        RuntimeNode runtimeNode =
                read(() -> client.resources(RuntimeNode.class).withName(node).get());
        RuntimeNodeStatus.AgentEndpoint endpoint = runtimeNode == null || runtimeNode.getStatus() == null
                ? null
                : runtimeNode.getStatus().agentEndpoint();
        if (endpoint == null || endpoint.certificate() == null) {
            throw new Refusal(
                    503,
                    "ServiceUnavailable",
                    "the agent of node " + node + " publishes no endpoint (--endpoint-address)");
        }
        return new TaskEndpoint(endpoint, node, found.getMetadata().getUid());
    }

    private record TaskEndpoint(RuntimeNodeStatus.AgentEndpoint endpoint, String node, String uid) {}

    private boolean allowed(FrontProxy.User user, String namespace, String name, String subresource, String verb)
            throws Refusal {
        SubjectAccessReview review = read(() -> client.authorization()
                .v1()
                .subjectAccessReview()
                .create(new SubjectAccessReviewBuilder()
                        .withNewSpec()
                        .withUser(user.name())
                        .withGroups(user.groups())
                        .withExtra(Map.copyOf(user.extra()))
                        .withNewResourceAttributes()
                        .withGroup(GROUP)
                        .withVersion(VERSION)
                        .withResource("tasks")
                        .withSubresource(subresource)
                        .withVerb(verb)
                        .withNamespace(namespace)
                        .withName(name)
                        .endResourceAttributes()
                        .endSpec()
                        .build()));
        return review.getStatus() != null
                && Boolean.TRUE.equals(review.getStatus().getAllowed());
    }

    private void proxy(HttpServerRequest request, TaskEndpoint task, String subresource) {
        String uri = switch (subresource) {
            case "log" -> AgentApi.logPath(task.uid()) + logQuery(request);
            case "processes" -> AgentApi.processesPath(task.uid());
            default -> AgentApi.usagePath(task.uid());
        };
        String authorization;
        try {
            authorization = agents.authorization();
        } catch (IOException e) {
            status(request, 503, "ServiceUnavailable", "the operator has no token for the agents: " + e.getMessage());
            return;
        }
        agents.client(task.endpoint())
                .request(new RequestOptions()
                        .setMethod(HttpMethod.GET)
                        .setURI(uri)
                        .putHeader("Authorization", authorization))
                .compose(toAgent -> {
                    request.response().closeHandler(v -> toAgent.reset());
                    return toAgent.send();
                })
                .onSuccess(fromAgent -> relay(request, fromAgent, task.node()))
                .onFailure(e -> status(
                        request,
                        503,
                        "ServiceUnavailable",
                        "the agent of node " + task.node() + " did not answer: " + e.getMessage()));
    }

    private void relay(HttpServerRequest request, HttpClientResponse fromAgent, String node) {
        int code = fromAgent.statusCode();
        if (code != 200) {
            fromAgent.body().onComplete(body -> {
                String said = body.succeeded() ? body.result().toString().strip() : "";
                if (code == 401 || code == 403) {
                    // The agent refused the operator, not the user: a misconfiguration the user cannot fix.
                    status(
                            request,
                            502,
                            "InternalError",
                            "the agent of node " + node + " refused the operator (" + code + "): " + said);
                } else {
                    status(request, code, reason(code), said);
                }
            });
            return;
        }
        request.response().setStatusCode(code).setChunked(true);
        String type = fromAgent.getHeader("Content-Type");
        if (type != null) {
            request.response().putHeader("Content-Type", type);
        }
        fromAgent.pipeTo(request.response());
    }

    /** The Status reason the API server gives with a code. */
    private static String reason(int code) {
        return switch (code) {
            case 400 -> "BadRequest";
            case 404 -> "NotFound";
            case 409 -> "Conflict";
            case 503 -> "ServiceUnavailable";
            default -> "InternalError";
        };
    }

    /** kubectl logs' parameters as the agent takes them: sinceSeconds becomes a sinceTime. */
    private String logQuery(HttpServerRequest request) {
        List<String> query = new ArrayList<>();
        for (String parameter : LOG_PARAMETERS) {
            String value = request.getParam(parameter);
            if (value != null) {
                query.add(parameter + "=" + URLEncoder.encode(value, StandardCharsets.UTF_8));
            }
        }
        String sinceSeconds = request.getParam("sinceSeconds");
        if (sinceSeconds != null && request.getParam("sinceTime") == null) {
            try {
                Instant since = clock.instant().minusSeconds(Long.parseLong(sinceSeconds));
                query.add("sinceTime=" + URLEncoder.encode(since.toString(), StandardCharsets.UTF_8));
            } catch (NumberFormatException e) {
                query.add("sinceTime=invalid-sinceSeconds");
            }
        }
        return query.isEmpty() ? "" : "?" + String.join("&", query);
    }

    private static APIGroup group() {
        GroupVersionForDiscovery version = new GroupVersionForDiscovery(GROUP + "/" + VERSION, VERSION);
        return new APIGroupBuilder()
                .withName(GROUP)
                .withVersions(version)
                .withPreferredVersion(version)
                .build();
    }

    private static Object resources() {
        return new APIResourceListBuilder()
                .withGroupVersion(GROUP + "/" + VERSION)
                .withResources(Stream.concat(
                                Stream.of("log", "processes", "usage").map(sub -> subresource(sub, "get")),
                                Stream.of(subresource("exec", "get", "create")))
                        .toList())
                .build();
    }

    private static io.fabric8.kubernetes.api.model.APIResource subresource(String name, String... verbs) {
        return new APIResourceBuilder()
                .withName("tasks/" + name)
                .withSingularName("")
                .withNamespaced(true)
                .withKind("Task")
                .withVerbs(verbs)
                .build();
    }

    /**
     * An exec: a WebSocket the API server upgraded and proxies here. Accepted once the user may {@code create}
     * {@code tasks/exec} (as Kubernetes asks of a WebSocket exec into a Pod, beside the {@code get} the API server
     * checked) and the agent accepted its own WebSocket; then every message is relayed both ways as it is.
     */
    private void exec(ServerWebSocket socket) {
        Promise<Integer> handshake = Promise.promise();
        socket.setHandshake(handshake.future());
        socket.pause();
        Matcher task = EXEC_PATH.matcher(socket.path());
        if (!task.matches()) {
            handshake.complete(404);
            return;
        }
        Optional<FrontProxy.User> user = frontProxy.user(socket);
        if (user.isEmpty()) {
            handshake.complete(401);
            return;
        }
        String namespace = task.group(1);
        String name = task.group(3);
        // A ';' is part of a value (a shell command's), not a separator, as Go's URL parser reads a query.
        Map<String, List<String>> query =
                new QueryStringDecoder(socket.uri(), StandardCharsets.UTF_8, true, 1024, true).parameters();
        vertx.<TaskEndpoint>executeBlocking(() -> endpointFor(user.get(), namespace, name, "exec", "create"), false)
                // Paused as it connects: the agent starts the process at once, and its first output must wait for
                // the bridge to the user.
                .compose(found -> connectToAgent(found, query).map(agent -> agent.pause()))
                .onSuccess(agent -> {
                    handshake.complete(101);
                    bridge(socket, agent);
                })
                .onFailure(e -> {
                    int code = e instanceof Refusal refusal
                            ? refusal.code
                            : e instanceof UpgradeRejectedException rejected ? agentRefusal(rejected.getStatus()) : 503;
                    LOG.debug("exec in {}/{} refused ({}): {}", namespace, name, code, e.getMessage());
                    handshake.complete(code);
                });
    }

    private Future<WebSocket> connectToAgent(TaskEndpoint task, Map<String, List<String>> query) {
        StringBuilder uri = new StringBuilder(AgentApi.execPath(task.uid()))
                .append("?stdin=")
                .append(flag(query, "stdin"))
                .append("&tty=")
                .append(flag(query, "tty"));
        for (String argument : query.getOrDefault("command", List.of())) {
            uri.append("&command=").append(URLEncoder.encode(argument, StandardCharsets.UTF_8));
        }
        try {
            return agents.client(task.endpoint())
                    .webSocket(new WebSocketConnectOptions()
                            .setURI(uri.toString())
                            .addHeader("Authorization", agents.authorization())
                            .setSubProtocols(List.of(AgentApi.EXEC_PROTOCOL)));
        } catch (IOException e) {
            return Future.failedFuture(e);
        }
    }

    /** The agent refused the operator (401, 403): not the user's fault, a 502; its other answers as they are. */
    private static int agentRefusal(int code) {
        return code == 401 || code == 403 ? 502 : code;
    }

    private static boolean flag(Map<String, List<String>> query, String name) {
        List<String> values = query.getOrDefault(name, List.of());
        return !values.isEmpty()
                && (values.get(0).equals("true") || values.get(0).equals("1"));
    }

    private static void bridge(ServerWebSocket user, WebSocket agent) {
        user.binaryMessageHandler(agent::writeBinaryMessage);
        agent.binaryMessageHandler(user::writeBinaryMessage);
        user.closeHandler(v -> agent.close());
        agent.closeHandler(v -> user.close(agent.closeStatusCode() == null ? (short) 1000 : agent.closeStatusCode()));
        user.resume();
        agent.resume();
    }

    private static void json(HttpServerRequest request, Object body) {
        request.response().putHeader("Content-Type", "application/json").end(Serialization.asJson(body));
    }

    /** A refusal as the API server words one: a Status object kubectl and client libraries show as it is. */
    private static void status(HttpServerRequest request, int code, String reason, String message) {
        Status status = new StatusBuilder()
                .withApiVersion("v1")
                .withKind("Status")
                .withStatus("Failure")
                .withCode(code)
                .withReason(reason)
                .withMessage(message)
                .build();
        request.response()
                .setStatusCode(code)
                .putHeader("Content-Type", "application/json")
                .end(Serialization.asJson(status));
    }

    private interface Read<T> {
        T get();
    }

    private static <T> T read(Read<T> read) throws Refusal {
        try {
            return read.get();
        } catch (KubernetesClientException e) {
            throw new Refusal(
                    503, "ServiceUnavailable", "the operator cannot reach the API server (" + e.getCode() + ")");
        }
    }

    /** An answer other than the agent's: its status code and Status reason. */
    private static final class Refusal extends Exception {
        private static final long serialVersionUID = 1L;
        private final int code;
        private final String reason;

        Refusal(int code, String reason, String message) {
            super(message);
            this.code = code;
            this.reason = reason;
        }
    }

    @Override
    public void close() {
        agents.close();
        server.close();
        vertx.close();
    }
}
