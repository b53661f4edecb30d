package dev.stevedore.testing;

import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.authentication.TokenRequestBuilder;
import io.fabric8.kubernetes.api.model.authentication.TokenRequestSpecBuilder;
import io.fabric8.kubernetes.client.Config;
import io.fabric8.kubernetes.client.ConfigBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientBuilder;
import io.fabric8.kubernetes.client.utils.Serialization;
import java.io.File;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.Callable;
import java.util.stream.Stream;
import org.awaitility.Awaitility;
import org.awaitility.core.ConditionTimeoutException;
import org.awaitility.core.TerminalFailureException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A real Kubernetes control plane on loopback: etcd, kube-apiserver and kube-controller-manager, with generated
 * certificates, RBAC, the default admission chain plus NodeRestriction, and service-account token signing.
 *
 * <p>Two lifetimes: {@link #startEphemeral} for tests (owned by this JVM; stopped and removed on {@link #close()}
 * or JVM exit, and reaped by the next run if this JVM is killed) and {@link #startDetached} for
 * {@code hack/local-up.sh} (processes in sessions of their own, recorded in PID files, outliving this JVM).
 */
public final class ControlPlane implements AutoCloseable {
    static final String SERVICE_IP = "10.0.0.1";
    static final String SERVICE_CIDR = "10.0.0.0/24";
    /** Issuer and audience of service-account tokens, as in a kubeadm cluster. */
    public static final String ISSUER = "https://kubernetes.default.svc.cluster.local";

    private static final Logger LOG = LoggerFactory.getLogger(ControlPlane.class);
    private static final String EPHEMERAL_PREFIX = "stevedore-control-plane-";
    private static final Duration READY_TIMEOUT = Duration.ofSeconds(90);
    private static final Duration STOP_GRACE = Duration.ofSeconds(10);
    /** In start order; stopped in the reverse. */
    private static final List<String> COMPONENTS = List.of("etcd", "kube-apiserver", "kube-controller-manager");

    private static final List<String> STOP_ORDER = List.of("kube-controller-manager", "kube-apiserver", "etcd");

    /** Loopback ports the control plane listens on. */
    public record Ports(int etcdClient, int etcdPeer, int apiServer) {
        public static Ports free() {
            return new Ports(freePort(), freePort(), freePort());
        }
    }

    private final Path binDir;
    private final Path dir;
    private final Ports ports;
    private final boolean ephemeral;
    private final Pki pki;
    private final List<ProcessHandle> processes = new ArrayList<>();
    private volatile KubernetesClient adminClient;
    private final Thread shutdownHook = new Thread(this::stopQuietly, "control-plane-shutdown");

    private ControlPlane(Path binDir, Path dir, Ports ports, boolean ephemeral) {
        this.binDir = binDir;
        this.dir = dir;
        this.ports = ports;
        this.ephemeral = ephemeral;
        this.pki = Pki.createOrReuse(dir.resolve("pki"));
    }

    /** Starts a control plane for this JVM's tests in a new temporary directory; etcd does not fsync. */
    public static ControlPlane startEphemeral(Path binDir) {
        Path tmp = Path.of(System.getProperty("java.io.tmpdir"));
        reapOrphans(tmp);
        try {
            Path dir = Files.createTempDirectory(tmp, EPHEMERAL_PREFIX);
            Files.writeString(
                    dir.resolve("owner.pid"),
                    Long.toString(ProcessHandle.current().pid()));
            ControlPlane controlPlane = new ControlPlane(binDir, dir, Ports.free(), true);
            Runtime.getRuntime().addShutdownHook(controlPlane.shutdownHook);
            return controlPlane.start();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /**
     * Starts a control plane in {@code dir} whose processes outlive this JVM, or reuses the one already running
     * there. Its etcd data, certificates and kubeconfig persist across restarts.
     */
    public static ControlPlane startDetached(Path binDir, Path dir, Ports ports) {
        ControlPlane controlPlane = new ControlPlane(binDir, dir, ports, false);
        if (controlPlane.recordedProcessesAlive() && controlPlane.ready()) {
            LOG.info("control plane already running at {}", controlPlane.url());
            return controlPlane;
        }
        stopRecorded(dir);
        return controlPlane.start();
    }

    public String url() {
        return "https://127.0.0.1:" + ports.apiServer();
    }

    /** The admin kubeconfig (user in {@code system:masters}). */
    public Path kubeconfig() {
        return dir.resolve("kubeconfig");
    }

    public Path logFile(String component) {
        return dir.resolve("logs").resolve(component + ".log");
    }

    /** A shared cluster-admin client; do not close it. */
    public KubernetesClient adminClient() {
        KubernetesClient client = adminClient;
        if (client == null) {
            synchronized (this) {
                if (adminClient == null) {
                    adminClient = new KubernetesClientBuilder()
                            .withConfig(adminConfig())
                            .build();
                }
                client = adminClient;
            }
        }
        return client;
    }

    public Config adminConfig() {
        try {
            return Config.fromKubeconfig(
                    null, Files.readString(kubeconfig()), kubeconfig().toString());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /**
     * A client that authenticates as {@code namespace/serviceAccount} with a token from the TokenRequest API, as a
     * Pod would. The ServiceAccount must exist. The caller closes the client.
     */
    public KubernetesClient clientAs(String namespace, String serviceAccount) {
        return clientWithToken(namespace, token(namespace, serviceAccount, null, ISSUER));
    }

    /**
     * A token of {@code namespace/serviceAccount} for {@code audience} ({@link #ISSUER}: the API server) from the
     * TokenRequest API, for an hour; bound to {@code pod} if given, as kubelet binds the tokens it mounts: it is
     * valid while the Pod exists, and names the Pod's node.
     */
    public String token(String namespace, String serviceAccount, Pod pod, String audience) {
        TokenRequestSpecBuilder spec =
                new TokenRequestSpecBuilder().withAudiences(audience).withExpirationSeconds(3600L);
        if (pod != null) {
            spec.withNewBoundObjectRef()
                    .withApiVersion("v1")
                    .withKind("Pod")
                    .withName(pod.getMetadata().getName())
                    .withUid(pod.getMetadata().getUid())
                    .endBoundObjectRef();
        }
        return adminClient()
                .serviceAccounts()
                .inNamespace(namespace)
                .withName(serviceAccount)
                .tokenRequest(new TokenRequestBuilder().withSpec(spec.build()).build())
                .getStatus()
                .getToken();
    }

    /** A client that presents {@code token}. The caller closes it. */
    public KubernetesClient clientWithToken(String namespace, String token) {
        Config config = new ConfigBuilder(Config.empty())
                .withMasterUrl(url())
                .withCaCertData(base64(pki.caCert()))
                .withOauthToken(token)
                .withNamespace(namespace)
                .build();
        return new KubernetesClientBuilder().withConfig(config).build();
    }

    /** Writes a kubeconfig (mode 0600) that presents {@code token}, for a process of its own. */
    public void writeTokenKubeconfig(Path file, String token) {
        try {
            writeKubeconfig(file, "token", Map.of("token", token));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /**
     * An API-server outage: kills kube-apiserver (SIGKILL, no drain) and leaves etcd and the controller manager
     * running; {@link #startApiServer} brings it back on the same port with the same data.
     */
    public synchronized void stopApiServer() {
        ProcessHandle apiServer = readPid(pidFile(dir, "kube-apiserver"))
                .flatMap(ProcessHandle::of)
                .filter(p -> isComponent(p, "kube-apiserver"))
                .orElseThrow(() -> new IllegalStateException("kube-apiserver is not running"));
        processes.remove(apiServer);
        apiServer.destroyForcibly();
        apiServer.onExit().join();
    }

    /** Starts kube-apiserver again after {@link #stopApiServer} and returns once it is ready. */
    public synchronized void startApiServer() {
        launch("kube-apiserver", apiServerArgs());
        awaitCondition("kube-apiserver /readyz", this::ready);
    }

    @Override
    public void close() {
        stopQuietly();
        if (ephemeral) {
            try {
                Runtime.getRuntime().removeShutdownHook(shutdownHook);
            } catch (IllegalStateException alreadyShuttingDown) {
                // the hook is running or has run; it did the same work
            }
        }
    }

    private ControlPlane start() {
        long started = System.nanoTime();
        try {
            Files.createDirectories(dir.resolve("logs"));
            Files.createDirectories(dir.resolve("run"));
            writeKubeconfig(kubeconfig(), Pki.ADMIN);
            writeKubeconfig(dir.resolve("kube-controller-manager.kubeconfig"), Pki.CONTROLLER_MANAGER);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        launch("etcd", etcdArgs());
        launch("kube-apiserver", apiServerArgs());
        awaitCondition("kube-apiserver /readyz", this::ready);
        launch("kube-controller-manager", controllerManagerArgs());
        // The service-account controller creating default/default is the sign that controllers run.
        awaitCondition(
                "kube-controller-manager",
                () -> adminClient()
                                .serviceAccounts()
                                .inNamespace("default")
                                .withName("default")
                                .get()
                        != null);
        LOG.info("control plane ready at {} in {} ms", url(), (System.nanoTime() - started) / 1_000_000);
        return this;
    }

    private List<String> etcdArgs() {
        String client = "http://127.0.0.1:" + ports.etcdClient();
        String peer = "http://127.0.0.1:" + ports.etcdPeer();
        List<String> args = new ArrayList<>(List.of(
                "--name=stevedore",
                "--data-dir=" + dir.resolve("etcd"),
                "--listen-client-urls=" + client,
                "--advertise-client-urls=" + client,
                "--listen-peer-urls=" + peer,
                "--initial-advertise-peer-urls=" + peer,
                "--initial-cluster=stevedore=" + peer,
                "--log-level=warn"));
        if (ephemeral) {
            args.add("--unsafe-no-fsync"); // test data is thrown away; fsync only costs time
        }
        return args;
    }

    /**
     * Anonymous requests only for the health endpoints, as the structured authentication configuration lets a
     * hardened cluster have it: a request without credentials anywhere else is refused as unauthenticated (401), not
     * authorized as system:anonymous.
     */
    private Path authenticationConfig() {
        Path file = dir.resolve("authentication-config.yaml");
        try {
            Files.writeString(file, """
                    apiVersion: apiserver.config.k8s.io/v1beta1
                    kind: AuthenticationConfiguration
                    anonymous:
                      enabled: true
                      conditions:
                        - path: /livez
                        - path: /readyz
                        - path: /healthz
                    """);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return file;
    }

    private List<String> apiServerArgs() {
        return List.of(
                "--authentication-config=" + authenticationConfig(),
                "--etcd-servers=http://127.0.0.1:" + ports.etcdClient(),
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                "--secure-port=" + ports.apiServer(),
                "--cert-dir=" + dir.resolve("apiserver-certs"),
                "--tls-cert-file=" + pki.serverCert(),
                "--tls-private-key-file=" + pki.serverKey(),
                "--client-ca-file=" + pki.caCert(),
                // kubectl logs and exec on the kubelet of hack/node-up.sh: the admin's certificate, which the
                // kubelet's webhook authorizer allows.
                "--kubelet-client-certificate=" + pki.clientCert(Pki.ADMIN),
                "--kubelet-client-key=" + pki.clientKey(Pki.ADMIN),
                // A node's name resolves nowhere here: its InternalIP is the address the kubelet was given.
                "--kubelet-preferred-address-types=InternalIP",
                "--service-account-issuer=" + ISSUER,
                "--api-audiences=" + ISSUER,
                "--service-account-key-file=" + pki.saPublicKey(),
                "--service-account-signing-key-file=" + pki.saPrivateKey(),
                "--service-cluster-ip-range=" + SERVICE_CIDR,
                // The aggregation layer, as kubeadm sets it up: the API server authenticates users, then proxies
                // to an aggregated API (Stevedore's subresources) with the front-proxy client's certificate and
                // the user in headers; routed to the Service's endpoints, as there is no kube-proxy here.
                "--requestheader-client-ca-file=" + pki.frontProxyCaCert(),
                "--requestheader-allowed-names=" + Pki.FRONT_PROXY_CLIENT,
                "--requestheader-username-headers=X-Remote-User",
                "--requestheader-group-headers=X-Remote-Group",
                "--requestheader-extra-headers-prefix=X-Remote-Extra-",
                "--proxy-client-cert-file=" + pki.clientCert(Pki.FRONT_PROXY_CLIENT),
                "--proxy-client-key-file=" + pki.clientKey(Pki.FRONT_PROXY_CLIENT),
                "--enable-aggregator-routing=true",
                "--authorization-mode=Node,RBAC",
                "--enable-admission-plugins=NodeRestriction",
                "--allow-privileged=true",
                // The kubernetes Service cannot point at a loopback address; nothing in-cluster needs it here.
                "--endpoint-reconciler-type=none",
                "--profiling=false");
    }

    private List<String> controllerManagerArgs() {
        return List.of(
                "--kubeconfig=" + dir.resolve("kube-controller-manager.kubeconfig"),
                "--secure-port=0",
                "--leader-elect=false",
                "--controllers=*",
                "--use-service-account-credentials=true",
                "--service-account-private-key-file=" + pki.saPrivateKey(),
                "--root-ca-file=" + pki.caCert(),
                "--cluster-signing-cert-file=" + pki.caCert(),
                "--cluster-signing-key-file=" + pki.caKey(),
                "--profiling=false");
    }

    private void launch(String component, List<String> args) {
        List<String> command = new ArrayList<>();
        if (!ephemeral) {
            command.add("setsid"); // its own session: a terminal's hang-up or Ctrl-C does not reach it
        }
        command.add(binDir.resolve(component).toString());
        command.addAll(args);
        try {
            Process process = new ProcessBuilder(command)
                    .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")))
                    .redirectErrorStream(true)
                    .redirectOutput(
                            ProcessBuilder.Redirect.appendTo(logFile(component).toFile()))
                    .start();
            processes.add(process.toHandle());
            Files.writeString(pidFile(dir, component), Long.toString(process.pid()));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot start " + component, e);
        }
    }

    private boolean ready() {
        try {
            return "ok".equals(adminClient().raw("/readyz"));
        } catch (RuntimeException notYet) {
            return false;
        }
    }

    /**
     * Polls a remote condition (there is no event to wait for until the server answers), and gives up at once when a
     * component exits.
     */
    private void awaitCondition(String what, Callable<Boolean> condition) {
        try {
            Awaitility.await(what)
                    .atMost(READY_TIMEOUT)
                    .pollDelay(Duration.ZERO)
                    .pollInterval(Duration.ofMillis(100))
                    .ignoreExceptions() // not yet
                    .failFast(this::anyExited)
                    .until(condition);
        } catch (TerminalFailureException exited) {
            String dead = processes.stream()
                    .filter(process -> !process.isAlive())
                    .map(this::component)
                    .findFirst()
                    .orElse("a control-plane process");
            String logs = tails();
            stopQuietly();
            throw new IllegalStateException(dead + " exited while waiting for " + what + logs, exited);
        } catch (ConditionTimeoutException e) {
            String logs = tails();
            stopQuietly();
            throw new IllegalStateException("timed out after " + READY_TIMEOUT + " waiting for " + what + logs, e);
        }
    }

    private boolean anyExited() {
        return processes.stream().anyMatch(process -> !process.isAlive());
    }

    private String component(ProcessHandle process) {
        for (String component : COMPONENTS) {
            if (readPid(pidFile(dir, component))
                    .filter(pid -> pid == process.pid())
                    .isPresent()) {
                return component;
            }
        }
        return "a control-plane process";
    }

    private synchronized void stopQuietly() {
        if (adminClient != null) {
            adminClient.close();
            adminClient = null;
        }
        if (ephemeral) {
            stopRecorded(dir);
            deleteRecursively(dir);
        }
        processes.clear();
    }

    private boolean recordedProcessesAlive() {
        return COMPONENTS.stream()
                .allMatch(component -> readPid(pidFile(dir, component))
                        .flatMap(ProcessHandle::of)
                        .filter(p -> isComponent(p, component))
                        .isPresent());
    }

    /** Stops the processes whose PID files are in {@code dir}: SIGTERM, then SIGKILL after a grace period. */
    public static void stopRecorded(Path dir) {
        List<ProcessHandle> running = new ArrayList<>();
        for (String component : STOP_ORDER) {
            readPid(pidFile(dir, component))
                    .flatMap(ProcessHandle::of)
                    .filter(p -> isComponent(p, component))
                    .ifPresent(p -> {
                        p.destroy();
                        running.add(p);
                    });
        }
        for (ProcessHandle process : running) {
            try {
                process.onExit().get(STOP_GRACE.toMillis(), java.util.concurrent.TimeUnit.MILLISECONDS);
            } catch (Exception stillRunning) {
                process.destroyForcibly();
            }
        }
        for (String component : COMPONENTS) {
            pidFile(dir, component).toFile().delete();
        }
    }

    /** Removes the control planes of test JVMs that were killed before they could clean up. */
    private static void reapOrphans(Path tmp) {
        try (Stream<Path> dirs = Files.list(tmp)) {
            dirs.filter(d -> d.getFileName().toString().startsWith(EPHEMERAL_PREFIX))
                    .filter(d -> readPid(d.resolve("owner.pid"))
                            .flatMap(ProcessHandle::of)
                            .isEmpty())
                    .forEach(orphan -> {
                        LOG.info("removing the control plane left by a killed test run in {}", orphan);
                        stopRecorded(orphan);
                        deleteRecursively(orphan);
                    });
        } catch (IOException e) {
            LOG.warn("cannot look for orphaned control planes in {}: {}", tmp, e.toString());
        }
    }

    /** Guards against a PID that was reused by an unrelated process. */
    private static boolean isComponent(ProcessHandle process, String component) {
        return process.info().command().map(c -> c.endsWith("/" + component)).orElse(false);
    }

    private static Path pidFile(Path dir, String component) {
        return dir.resolve("run").resolve(component + ".pid");
    }

    private static Optional<Long> readPid(Path file) {
        try {
            return Optional.of(Long.parseLong(Files.readString(file).trim()));
        } catch (IOException | NumberFormatException e) {
            return Optional.empty();
        }
    }

    private void writeKubeconfig(Path file, String user) throws IOException {
        writeKubeconfig(
                file,
                user,
                Map.of(
                        "client-certificate-data", base64(pki.clientCert(user)),
                        "client-key-data", base64(pki.clientKey(user))));
    }

    private void writeKubeconfig(Path file, String user, Map<String, String> credentials) throws IOException {
        Map<String, Object> kubeconfig = Map.of(
                "apiVersion",
                "v1",
                "kind",
                "Config",
                "clusters",
                List.of(Map.of(
                        "name",
                        "stevedore",
                        "cluster",
                        Map.of(
                                "server", url(),
                                "certificate-authority-data", base64(pki.caCert())))),
                "users",
                List.of(Map.of("name", user, "user", credentials)),
                "contexts",
                List.of(Map.of("name", "stevedore", "context", Map.of("cluster", "stevedore", "user", user))),
                "current-context",
                "stevedore");
        Files.writeString(file, Serialization.asYaml(kubeconfig));
        Files.setPosixFilePermissions(file, java.nio.file.attribute.PosixFilePermissions.fromString("rw-------"));
    }

    private static String base64(Path file) {
        try {
            return Base64.getEncoder().encodeToString(Files.readAllBytes(file));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** The last lines of each component's log, for an error message: an ephemeral directory is gone after it. */
    private String tails() {
        StringBuilder out = new StringBuilder();
        for (String component : COMPONENTS) {
            try {
                List<String> lines = Files.readAllLines(logFile(component), StandardCharsets.UTF_8);
                out.append("\n--- last lines of ")
                        .append(component)
                        .append(" ---\n")
                        .append(String.join("\n", lines.subList(Math.max(0, lines.size() - 20), lines.size())));
            } catch (IOException notStarted) {
                // no log: never started
            }
        }
        return out.toString();
    }

    private static void deleteRecursively(Path root) {
        try (Stream<Path> paths = Files.walk(root)) {
            paths.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        } catch (IOException e) {
            LOG.warn("cannot remove {}: {}", root, e.toString());
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
