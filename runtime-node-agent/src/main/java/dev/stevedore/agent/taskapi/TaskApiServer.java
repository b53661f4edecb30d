package dev.stevedore.agent.taskapi;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.stevedore.agent.logs.LogOptions;
import dev.stevedore.agent.logs.TaskLogReader;
import dev.stevedore.agent.tasks.TaskExec;
import dev.stevedore.agent.tasks.TaskManager;
import dev.stevedore.agent.tasks.TaskProcesses;
import dev.stevedore.agent.tasks.TaskRecord;
import dev.stevedore.agent.tasks.TaskUsage;
import dev.stevedore.api.AgentApi;
import dev.stevedore.api.v1alpha1.RuntimeNodeStatus;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.netty.handler.codec.http.QueryStringDecoder;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.VertxOptions;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.file.FileSystemOptions;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerOptions;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.http.ServerWebSocket;
import io.vertx.core.net.PemKeyCertOptions;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.format.DateTimeParseException;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.SynchronousQueue;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The agent's HTTPS endpoint ({@link AgentApi}): a task's log, processes and usage, for the operator alone. Served by
 * Vert.x on one event loop; each request's work (its authentication included, which may ask the API server) runs on
 * a thread of its own, as a followed log may last as long as its task.
 */
public final class TaskApiServer implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(TaskApiServer.class);
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Pattern PATH = Pattern.compile("/v1/tasks/([a-f0-9-]{1,64})/(log|processes|usage)");
    private static final Pattern EXEC_PATH = Pattern.compile("/v1/tasks/([a-f0-9-]{1,64})/exec");
    private static final int MAX_REQUESTS = 128;
    /** The window {@code top} measures CPU over. */
    private static final Duration USAGE_WINDOW = Duration.ofSeconds(1);

    private final Vertx vertx;
    private final HttpServer server;
    private final ExecutorService requests;
    /** Set once it listens. */
    private volatile RuntimeNodeStatus.AgentEndpoint endpoint;

    private final TaskManager tasks;
    private final OperatorAuthenticator authenticator;
    private final Path cgroupRoot;

    /**
     * Where the endpoint serves and whom it lets in.
     *
     * @param address the node's address the operator reaches (not the wildcard one) and a port (0: any)
     * @param operatorServiceAccount {@code namespace/name}: the only caller let in
     */
    public record Settings(InetSocketAddress address, String operatorServiceAccount) {}

    private TaskApiServer(
            Vertx vertx,
            HttpServer server,
            ExecutorService requests,
            TaskManager tasks,
            OperatorAuthenticator authenticator,
            Path cgroupRoot) {
        this.vertx = vertx;
        this.server = server;
        this.requests = requests;
        this.tasks = tasks;
        this.authenticator = authenticator;
        this.cgroupRoot = cgroupRoot;
    }

    /**
     * Serves as {@code settings} say; where, and the certificate made now, are to be published as the RuntimeNode's
     * {@code status.agentEndpoint} ({@link #endpoint}).
     */
    public static TaskApiServer start(
            KubernetesClient client, TaskManager tasks, Settings settings, String nodeName, Path cgroupRoot)
            throws IOException, GeneralSecurityException {
        InetSocketAddress address = settings.address();
        String operatorServiceAccount = settings.operatorServiceAccount();
        if (address.getAddress() == null || address.getAddress().isAnyLocalAddress()) {
            throw new IllegalArgumentException(
                    "the agent endpoint's address must be the node's own, which the operator reaches, not " + address);
        }
        OperatorAuthenticator authenticator =
                new OperatorAuthenticator(client, operatorServiceAccount, Clock.systemUTC());
        SelfSignedCertificate certificate = SelfSignedCertificate.forAddress(address.getAddress(), nodeName);
        Vertx vertx = Vertx.vertx(new VertxOptions()
                .setEventLoopPoolSize(1)
                .setWorkerPoolSize(1)
                // No file cache: it serves no files, and the container's root file system is read-only.
                .setFileSystemOptions(
                        new FileSystemOptions().setFileCachingEnabled(false).setClassPathResolvingEnabled(false)));
        // Bounded: a request holds its thread while it authenticates, and a followed log as long as its task runs.
        ExecutorService requests =
                new ThreadPoolExecutor(0, MAX_REQUESTS, 60, TimeUnit.SECONDS, new SynchronousQueue<>(), r -> {
                    Thread t = new Thread(r, "agent-endpoint");
                    t.setDaemon(true);
                    return t;
                });
        HttpServer server = vertx.createHttpServer(new HttpServerOptions()
                .setSsl(true)
                .setKeyCertOptions(new PemKeyCertOptions()
                        .addCertValue(Buffer.buffer(certificate.certificatePem()))
                        .addKeyValue(Buffer.buffer(certificate.privateKeyPem())))
                .setWebSocketSubProtocols(List.of(AgentApi.EXEC_PROTOCOL))
                .setIdleTimeout(0));
        TaskApiServer api = new TaskApiServer(vertx, server, requests, tasks, authenticator, cgroupRoot);
        server.requestHandler(api::handle);
        server.webSocketHandler(api::exec);
        try {
            server.listen(address.getPort(), address.getAddress().getHostAddress())
                    .toCompletionStage()
                    .toCompletableFuture()
                    .get(30, TimeUnit.SECONDS);
        } catch (InterruptedException | ExecutionException | java.util.concurrent.TimeoutException e) {
            api.close();
            throw new IOException("serving the agent endpoint on " + address + ": " + e.getMessage(), e);
        }
        api.endpoint = new RuntimeNodeStatus.AgentEndpoint(
                address.getAddress().getHostAddress(), server.actualPort(), certificate.certificatePem());
        LOG.info("agent endpoint on {}:{}", api.endpoint.address(), api.endpoint.port());
        return api;
    }

    /** Where it serves and its certificate, for the RuntimeNode's status. */
    public RuntimeNodeStatus.AgentEndpoint endpoint() {
        return endpoint;
    }

    private void handle(HttpServerRequest request) {
        Matcher path = PATH.matcher(request.path());
        if (!path.matches()) {
            respond(request, 404, "not found");
            return;
        }
        if (request.method() != io.vertx.core.http.HttpMethod.GET) {
            respond(request, 405, "GET");
            return;
        }
        String authorization = request.getHeader("Authorization");
        try {
            requests.execute(() -> authenticateAndServe(request, path, authorization));
        } catch (RejectedExecutionException e) {
            respond(request, 503, "the agent serves " + MAX_REQUESTS + " requests at once; try again");
        }
    }

    /**
     * An exec ({@link AgentApi#execPath}): the WebSocket is accepted only once the caller is the operator and the
     * process runs; else the handshake answers 401, 403, 400 (no command) or 409 (the task is not running).
     */
    private void exec(ServerWebSocket socket) {
        Promise<Integer> handshake = Promise.promise();
        socket.setHandshake(handshake.future());
        socket.pause();
        Matcher path = EXEC_PATH.matcher(socket.path());
        if (!path.matches()) {
            handshake.complete(404);
            return;
        }
        String authorization = socket.headers().get("Authorization");
        // A ';' is part of a value (a shell command's), not a separator, as Go's URL parser reads a query.
        Map<String, List<String>> query =
                new QueryStringDecoder(socket.uri(), StandardCharsets.UTF_8, true, 1024, true).parameters();
        try {
            requests.execute(() -> startExec(socket, handshake, path.group(1), authorization, query));
        } catch (RejectedExecutionException e) {
            handshake.complete(503);
        }
    }

    private void startExec(
            ServerWebSocket socket,
            Promise<Integer> handshake,
            String uid,
            String authorization,
            Map<String, List<String>> query) {
        try {
            switch (authenticator.authenticate(authorization)) {
                case UNAUTHENTICATED -> handshake.complete(401);
                case FORBIDDEN -> handshake.complete(403);
                case OPERATOR -> {
                    List<String> command = query.getOrDefault("command", List.of());
                    boolean stdin = flag(query, "stdin");
                    boolean tty = flag(query, "tty");
                    if (command.isEmpty()) {
                        handshake.complete(400);
                        return;
                    }
                    TaskExec exec;
                    try {
                        exec = tasks.exec(uid, command, tty);
                    } catch (IllegalStateException e) {
                        handshake.complete(409);
                        return;
                    }
                    handshake.complete(101);
                    ExecSession.run(socket, exec, stdin, tty, requests);
                }
            }
        } catch (KubernetesClientException e) {
            LOG.warn("agent endpoint: the API server did not review a token: {}", e.getMessage());
            handshake.tryComplete(503);
        } catch (IOException | RuntimeException e) {
            LOG.warn("agent endpoint: exec in {}: {}", uid, e.toString());
            handshake.tryComplete(500);
        }
    }

    private static boolean flag(Map<String, List<String>> query, String name) {
        List<String> values = query.getOrDefault(name, List.of());
        return !values.isEmpty()
                && (values.get(0).equals("true") || values.get(0).equals("1"));
    }

    /** Authenticates the caller, then serves the request. On a thread of its own: both may block. */
    private void authenticateAndServe(HttpServerRequest request, Matcher path, String authorization) {
        try {
            switch (authenticator.authenticate(authorization)) {
                case UNAUTHENTICATED -> respond(request, 401, "a token of the operator is needed");
                case FORBIDDEN -> respond(request, 403, "only the operator may call the agent");
                case OPERATOR -> serve(request, path.group(1), path.group(2));
            }
        } catch (KubernetesClientException e) {
            LOG.warn("agent endpoint: the API server did not review a token: {}", e.getMessage());
            respond(request, 503, "the agent cannot reach the API server to review the token");
        } catch (BadRequest e) {
            respond(request, 400, e.getMessage());
        } catch (IOException e) {
            LOG.debug("agent endpoint: {} {}: {}", request.method(), request.path(), e.toString());
            request.response().reset();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            request.response().reset();
        } catch (RuntimeException e) {
            LOG.warn("agent endpoint: {} {}", request.method(), request.path(), e);
            respond(request, 500, "internal error");
        }
    }

    private void serve(HttpServerRequest request, String uid, String what)
            throws IOException, InterruptedException, BadRequest {
        Optional<TaskRecord> record = tasks.record(uid);
        if (record.isEmpty()) {
            respond(request, 404, "no task " + uid + " on this node");
            return;
        }
        switch (what) {
            case "log" -> log(request, uid);
            case "processes" ->
                json(
                        request,
                        TaskProcesses.of(cgroupRoot, Path.of("/proc"), uid)
                                .map(AgentApi.Processes::new)
                                .orElse(null));
            default -> json(request, usage(uid).orElse(null));
        }
    }

    private void log(HttpServerRequest request, String uid) throws IOException, InterruptedException, BadRequest {
        LogOptions options = logOptions(request);
        request.response().setChunked(true).putHeader("Content-Type", "text/plain; charset=utf-8");
        ResponseStream out = new ResponseStream(request.response());
        TaskLogReader.read(
                tasks.logFiles(uid),
                options,
                out,
                () -> !out.isClosed() && tasks.record(uid).map(TaskRecord::live).orElse(false));
        out.close();
    }

    static LogOptions logOptions(HttpServerRequest request) throws BadRequest {
        try {
            String stream = request.getParam("stream", "");
            String tail = request.getParam("tailLines");
            String since = request.getParam("sinceTime");
            return new LogOptions(
                    stream.isEmpty() ? LogOptions.Stream.ALL : LogOptions.Stream.valueOf(stream.toUpperCase()),
                    tail == null ? null : Long.parseLong(tail),
                    since == null ? null : Instant.parse(since),
                    Boolean.parseBoolean(request.getParam("timestamps", "false")),
                    Boolean.parseBoolean(request.getParam("follow", "false")));
        } catch (IllegalArgumentException | DateTimeParseException e) {
            throw new BadRequest("invalid log options: " + e.getMessage());
        }
    }

    /** CPU over {@link #USAGE_WINDOW}; empty once the task's cgroup is gone. */
    private Optional<AgentApi.Usage> usage(String uid) throws InterruptedException {
        Optional<TaskUsage> first = TaskUsage.of(cgroupRoot, uid);
        if (first.isEmpty()) {
            return Optional.empty();
        }
        long started = System.nanoTime();
        Thread.sleep(USAGE_WINDOW.toMillis());
        Optional<TaskUsage> second = TaskUsage.of(cgroupRoot, uid);
        double seconds = (System.nanoTime() - started) / 1e9;
        return second.map(now -> new AgentApi.Usage(
                Math.max(0, now.cpuSeconds() - first.get().cpuSeconds()) / seconds,
                now.cpuSeconds(),
                now.workingSetBytes(),
                now.memoryBytes(),
                now.pids()));
    }

    private static void json(HttpServerRequest request, Object body) throws JsonProcessingException {
        if (body == null) {
            respond(request, 409, "the task is not running");
            return;
        }
        request.response()
                .setStatusCode(200)
                .putHeader("Content-Type", "application/json")
                .end(Buffer.buffer(JSON.writeValueAsBytes(body)));
    }

    private static void respond(HttpServerRequest request, int status, String message) {
        request.response()
                .setStatusCode(status)
                .putHeader("Content-Type", "text/plain; charset=utf-8")
                .end(message + "\n");
    }

    /** A query the endpoint cannot take: 400 with why. */
    static final class BadRequest extends Exception {
        private static final long serialVersionUID = 1L;

        BadRequest(String message) {
            super(message);
        }
    }

    @Override
    public void close() {
        server.close();
        requests.shutdownNow();
        vertx.close();
    }
}
