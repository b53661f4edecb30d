package dev.stevedore.operator;

import dev.stevedore.api.AgentApi;
import dev.stevedore.api.Durations;
import dev.stevedore.api.EventRecorder;
import dev.stevedore.api.MonitoringServer;
import dev.stevedore.api.ProcessMetrics;
import dev.stevedore.operator.pullcredentials.PullCredentialsServer;
import dev.stevedore.operator.subresources.SubresourcesServer;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientBuilder;
import io.javaoperatorsdk.operator.Operator;
import io.javaoperatorsdk.operator.RuntimeInfo;
import io.javaoperatorsdk.operator.api.config.LeaderElectionConfiguration;
import io.javaoperatorsdk.operator.monitoring.micrometer.MicrometerMetrics;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicReference;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** The Stevedore operator: the cluster side of Containers, Tasks and RuntimeNodes. */
@Command(
        name = "stevedore-operator",
        mixinStandardHelpOptions = true,
        description = "Schedules Containers onto RuntimeNodes and binds their Tasks, one live Task per Container.")
public final class StevedoreOperator implements Callable<Integer> {
    static final String LEASE_NAME = "stevedore-operator";

    @Option(
            names = "--leader-elect",
            negatable = true,
            fallbackValue = "true",
            description = "Run only while holding the Lease, so several replicas can run (default: true).")
    boolean leaderElect = true;

    @Option(
            names = "--lease-namespace",
            defaultValue = "${env:POD_NAMESPACE:-stevedore-system}",
            description = "The operator's namespace: its leader-election Lease, serving Secret and CA ConfigMap "
                    + "(default: ${DEFAULT-VALUE}).")
    String leaseNamespace;

    @Option(
            names = "--node-grace-period",
            defaultValue = "40s",
            paramLabel = "DURATION",
            description = "How long a RuntimeNode may go without a heartbeat before it is not Ready, as a Go duration "
                    + "such as 40s or 1m30s (default: ${DEFAULT-VALUE}).")
    Duration nodeGracePeriod;

    @Option(
            names = "--node-lost-grace",
            defaultValue = "40s",
            paramLabel = "DURATION",
            description = "How long a RuntimeNode may be not Ready before its live Tasks are marked NodeLost "
                    + "(default: ${DEFAULT-VALUE}).")
    Duration nodeLostGrace;

    @Option(
            names = "--node-gone-grace",
            defaultValue = "5m",
            paramLabel = "DURATION",
            description = "How long a RuntimeNode may be not Ready before it counts as gone, as a deleted one does: "
                    + "its Tasks and Containers being deleted no longer wait for its node agent's finalizer "
                    + "(default: ${DEFAULT-VALUE}).")
    Duration nodeGoneGrace;

    @Option(
            names = "--pull-credentials-port",
            defaultValue = "8443",
            description = "Port of the HTTPS endpoint that gives node agents the pull Secrets of their nodes' "
                    + "Containers; every replica serves it (default: ${DEFAULT-VALUE}).")
    int pullCredentialsPort;

    @Option(
            names = "--health-port",
            defaultValue = "0",
            description = "Port of /healthz and /readyz over plain HTTP, on every address (default: 0, off).")
    int healthPort;

    @Option(
            names = "--metrics-address",
            defaultValue = "",
            paramLabel = "HOST:PORT",
            description = "Where to serve /metrics (Prometheus text) over plain HTTP, e.g. :8080 (default: off).")
    String metricsAddress;

    @Option(
            names = "--subresources-port",
            defaultValue = "0",
            description = "Port of the aggregated API " + SubresourcesServer.API_SERVICE + " (Tasks' logs, processes "
                    + "and usage through the API server), over HTTPS with the serving certificate; every replica "
                    + "serves it (default: 0, off).")
    int subresourcesPort;

    @Option(
            names = "--agent-endpoint-token",
            defaultValue = "/var/run/secrets/stevedore.dev/agent-endpoint/token",
            description = "A ServiceAccount token of the operator, of audience " + AgentApi.AUDIENCE
                    + ", which the node agents' endpoints take; re-read at each use (default: ${DEFAULT-VALUE}).")
    Path agentEndpointToken;

    @Option(
            names = "--agent-service-account",
            defaultValue = "stevedore-system/stevedore-agent",
            paramLabel = "NAMESPACE/NAME",
            description = "The node agents' ServiceAccount: the only one given pull credentials "
                    + "(default: ${DEFAULT-VALUE}).")
    String agentServiceAccount;

    @Option(
            names = "--serving-secret",
            defaultValue = "stevedore-operator-serving",
            description = "Secret (kubernetes.io/tls, in the --lease-namespace) with the endpoint's certificate; "
                    + "generated when missing (default: ${DEFAULT-VALUE}).")
    String servingSecret;

    @Option(
            names = "--serving-ca-configmap",
            defaultValue = "stevedore-pull-credentials-ca",
            description = "ConfigMap (in the --lease-namespace) the CA of the endpoint's certificate is published in, "
                    + "key ca.crt, for the agents (default: ${DEFAULT-VALUE}).")
    String servingCaConfigMap;

    @Option(
            names = "--serving-name",
            split = ",",
            defaultValue = "stevedore-operator.stevedore-system.svc",
            description = "DNS names and IP addresses a generated certificate is valid for: those agents reach the "
                    + "endpoint by (default: ${DEFAULT-VALUE}).")
    List<String> servingNames;

    /**
     * What a running operator needs; tests build one directly. No leader election when {@code leaderElection} is null.
     *
     * @param nodeGracePeriod how long a node may go without a heartbeat before it is not Ready
     * @param nodeLostGrace how long a node may be not Ready before its live Tasks are marked NodeLost
     * @param nodeGoneGrace how long a node may be not Ready before the agent's finalizer of its objects being deleted
     *     is removed
     */
    public record Settings(
            LeaderElection leaderElection, Duration nodeGracePeriod, Duration nodeLostGrace, Duration nodeGoneGrace) {
        /** The default graces of a lost and a gone node. */
        public Settings(LeaderElection leaderElection, Duration nodeGracePeriod) {
            this(leaderElection, nodeGracePeriod, NodeLoss.DEFAULT.lostAfter(), NodeLoss.DEFAULT.goneAfter());
        }
    }

    /**
     * The Lease that makes one replica the leader. A process that loses it should exit (and be restarted), as
     * controller-runtime's do, rather than run on beside a new leader.
     */
    public record LeaderElection(String namespace, String identity, boolean exitWhenLost) {}

    /** Starts the operator's controllers on {@code client}; stop it with {@link Operator#stop()}. */
    public static Operator start(KubernetesClient client, Settings settings) {
        return start(client, settings, new SimpleMeterRegistry());
    }

    /**
     * Starts the operator's controllers on {@code client}, their reconciles measured into {@code metrics}; stop it
     * with {@link Operator#stop()}.
     */
    public static Operator start(KubernetesClient client, Settings settings, MeterRegistry metrics) {
        Operator operator = new Operator(o -> {
            o.withKubernetesClient(client).withCloseClientOnStop(false);
            // Not per resource: a series per Task would grow without bound on a busy cluster.
            o.withMetrics(MicrometerMetrics.withoutPerResourceMetrics(metrics));
            LeaderElection election = settings.leaderElection();
            if (election != null) {
                o.withLeaderElectionConfiguration(new LeaderElectionConfiguration(
                        LEASE_NAME,
                        election.namespace(),
                        LeaderElectionConfiguration.LEASE_DURATION_DEFAULT_VALUE,
                        LeaderElectionConfiguration.RENEW_DEADLINE_DEFAULT_VALUE,
                        LeaderElectionConfiguration.RETRY_PERIOD_DEFAULT_VALUE,
                        election.identity(),
                        null,
                        election.exitWhenLost()));
            }
        });
        EventRecorder events = new EventRecorder(client, "stevedore-operator", null);
        NodeLoss nodeLoss = new NodeLoss(settings.nodeLostGrace(), settings.nodeGoneGrace());
        operator.register(new ContainerReconciler(events, nodeLoss));
        operator.register(new TaskReconciler(events, nodeLoss));
        operator.register(new RuntimeNodeReconciler(events, settings.nodeGracePeriod()));
        operator.start();
        return operator;
    }

    /**
     * Why the operator is not ready, empty when it is: {@code operator} has started (null until then), and every
     * informer is synced and watching. A replica
     * that does not lead is ready too: its informers run (only reconciling waits for the Lease), and it serves the
     * pull-credentials endpoint like the leader.
     */
    static Optional<String> notReady(Operator operator) {
        if (operator == null) {
            return Optional.of("starting");
        }
        // Also how a stopped operator shows: its informers are stopped.
        RuntimeInfo info = operator.getRuntimeInfo();
        if (!info.allEventSourcesAreHealthy()) {
            return Optional.of("informers not watching: " + info.unhealthyEventSources());
        }
        return Optional.empty();
    }

    @Override
    public Integer call() throws InterruptedException, IOException, GeneralSecurityException {
        KubernetesClient client = new KubernetesClientBuilder().build();
        AtomicReference<Operator> started = new AtomicReference<>();
        MonitoringServer health = healthPort == 0
                ? null
                : MonitoringServer.start(new InetSocketAddress(healthPort), () -> notReady(started.get()));
        PrometheusMeterRegistry metrics = ProcessMetrics.registry();
        MonitoringServer metricsServer = metricsAddress.isEmpty()
                ? null
                : MonitoringServer.start(
                        MonitoringServer.parseAddress(metricsAddress),
                        () -> notReady(started.get()),
                        () -> Optional.of(metrics.scrape()));
        // Unique per process, as client-go does: two replicas on one host must not both think they hold the Lease.
        String identity =
                System.getenv().getOrDefault("POD_NAME", System.getenv().getOrDefault("HOSTNAME", "operator")) + "_"
                        + java.util.UUID.randomUUID();
        // Not under the Lease: the endpoint keeps no state, so every replica answers.
        PullCredentialsServer pullCredentials = PullCredentialsServer.start(
                client,
                new PullCredentialsServer.Settings(
                        new InetSocketAddress(pullCredentialsPort),
                        leaseNamespace,
                        servingSecret,
                        servingCaConfigMap,
                        servingNames,
                        agentServiceAccount));
        SubresourcesServer subresources = subresourcesPort == 0
                ? null
                : SubresourcesServer.start(
                        client,
                        new SubresourcesServer.Settings(
                                subresourcesPort,
                                leaseNamespace,
                                servingSecret,
                                servingCaConfigMap,
                                servingNames,
                                agentEndpointToken));
        Operator operator = start(
                client,
                new Settings(
                        leaderElect ? new LeaderElection(leaseNamespace, identity, true) : null,
                        nodeGracePeriod,
                        nodeLostGrace,
                        nodeGoneGrace),
                metrics);
        started.set(operator);
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime()
                .addShutdownHook(new Thread(
                        () -> {
                            if (health != null) {
                                health.close();
                            }
                            if (metricsServer != null) {
                                metricsServer.close();
                            }
                            pullCredentials.close();
                            if (subresources != null) {
                                subresources.close();
                            }
                            operator.stop();
                            client.close();
                            stopped.countDown();
                        },
                        "operator-shutdown"));
        stopped.await();
        return 0;
    }

    public static void main(String[] args) {
        int exit = new CommandLine(new StevedoreOperator())
                .registerConverter(Duration.class, Durations::parsePositive)
                .execute(args);
        if (exit != 0) {
            System.exit(exit);
        }
    }
}
