package dev.stevedore.agent;

import dev.stevedore.agent.containers.ContainerRecords;
import dev.stevedore.agent.containers.NodeContainerReconciler;
import dev.stevedore.agent.containers.PrepareMetrics;
import dev.stevedore.agent.containers.PullCredentials;
import dev.stevedore.agent.containers.PullCredentialsClient;
import dev.stevedore.agent.containers.RootfsPreparer;
import dev.stevedore.agent.content.FileContentStore;
import dev.stevedore.agent.fs.RootLock;
import dev.stevedore.agent.fs.StateDirectories;
import dev.stevedore.agent.gc.GarbageCollector;
import dev.stevedore.agent.gc.ImageGarbageCollector;
import dev.stevedore.agent.gc.ImageGcPolicy;
import dev.stevedore.agent.images.Image;
import dev.stevedore.agent.images.ImageException;
import dev.stevedore.agent.images.Platform;
import dev.stevedore.agent.images.RegistryImageService;
import dev.stevedore.agent.logs.LogLimits;
import dev.stevedore.agent.network.NetworkSettings;
import dev.stevedore.agent.network.TaskNetworks;
import dev.stevedore.agent.node.AgentFinalizer;
import dev.stevedore.agent.node.RuntimeNodeReporter;
import dev.stevedore.agent.snapshots.LayerLimits;
import dev.stevedore.agent.snapshots.NativeSnapshotter;
import dev.stevedore.agent.snapshots.OverlayfsSnapshotter;
import dev.stevedore.agent.snapshots.Snapshotter;
import dev.stevedore.agent.spec.SpecGenerator;
import dev.stevedore.agent.taskapi.TaskApiServer;
import dev.stevedore.agent.tasks.BindSources;
import dev.stevedore.agent.tasks.ConmonCgroup;
import dev.stevedore.agent.tasks.NodeTaskReconciler;
import dev.stevedore.agent.tasks.Runtimes;
import dev.stevedore.agent.tasks.TaskManager;
import dev.stevedore.agent.tasks.TaskMetrics;
import dev.stevedore.agent.tasks.TaskRecords;
import dev.stevedore.api.Durations;
import dev.stevedore.api.EventRecorder;
import dev.stevedore.api.MonitoringServer;
import dev.stevedore.api.ProcessMetrics;
import dev.stevedore.api.PullCredentialsApi;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientBuilder;
import io.javaoperatorsdk.operator.Operator;
import io.javaoperatorsdk.operator.RuntimeInfo;
import io.javaoperatorsdk.operator.monitoring.micrometer.MicrometerMetrics;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import java.io.IOException;
import java.net.InetAddress;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicReference;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** The node agent: makes the Containers (and Tasks) bound to this node real. */
@Command(
        name = "stevedore-agent",
        mixinStandardHelpOptions = true,
        subcommands = NodeAgent.Import.class,
        description = "Pulls images, prepares root filesystems and OCI specs, and runs tasks for this node's objects.")
public final class NodeAgent implements Callable<Integer> {
    private static final Logger LOG = LoggerFactory.getLogger(NodeAgent.class);
    /** kubelet's eviction manager looks every 10 s; a prepare that adds an image asks for a run at once. */
    private static final Duration IMAGE_GC_INTERVAL = Duration.ofSeconds(10);

    @Option(
            names = "--node-name",
            defaultValue = "${env:NODE_NAME}",
            description = "This node's name (default: $NODE_NAME, else the host name).")
    String nodeName;

    @Option(
            names = "--root",
            defaultValue = "/var/lib/stevedore",
            description = "State directory (default: ${DEFAULT-VALUE}).")
    Path root;

    @Option(
            names = "--state-dir",
            defaultValue = "/run/stevedore",
            description = "Run-time state that must outlive the agent but not the host: the OCI runtimes' --root "
                    + "directories (<state-dir>/runc, <state-dir>/crun) and the tasks' exit files "
                    + "(<state-dir>/exits/<node>), on a tmpfs so that a full disk cannot lose an exit. In a Pod, a "
                    + "host path (default: "
                    + "${DEFAULT-VALUE}).")
    Path stateDir;

    @Option(
            names = "--conmon-cgroup",
            defaultValue = "",
            paramLabel = "PATH",
            description = "The cgroup each task's conmon runs in, in every hierarchy, e.g. /stevedore/conmon: "
                    + "outside the agent's own, so stopping the agent (or its Pod) stops no task. Empty: conmon "
                    + "stays in the agent's cgroup (default).")
    String conmonCgroup;

    @Option(
            names = "--health-address",
            defaultValue = "",
            paramLabel = "HOST:PORT",
            description = "Where to serve /healthz and /readyz over plain HTTP, e.g. 127.0.0.1:9440 (default: off).")
    String healthAddress;

    @Option(
            names = "--metrics-address",
            defaultValue = "",
            paramLabel = "HOST:PORT",
            description = "Where to serve /metrics (Prometheus text) over plain HTTP, e.g. :9441 (default: off). The "
                    + "series name the node's Tasks and their namespaces.")
    String metricsAddress;

    @Option(
            names = "--endpoint-address",
            defaultValue = "",
            paramLabel = "HOST:PORT",
            description = "Where to serve Tasks' logs, processes and usage to the operator over HTTPS: the node's "
                    + "address the operator reaches, published in the RuntimeNode (default: off).")
    String endpointAddress;

    @Option(
            names = "--operator-service-account",
            defaultValue = "stevedore-system/stevedore-operator",
            paramLabel = "NAMESPACE/NAME",
            description = "The operator's ServiceAccount: the only caller of the agent's endpoint "
                    + "(default: ${DEFAULT-VALUE}).")
    String operatorServiceAccount;

    @Option(
            names = "--heartbeat-interval",
            defaultValue = "10s",
            paramLabel = "DURATION",
            description = "How often the RuntimeNode's status is renewed, as a Go duration such as 10s or 1m30s "
                    + "(default: ${DEFAULT-VALUE}).")
    Duration heartbeatInterval;

    @Option(
            names = "--allow-host-path",
            description = "A host path Containers may bind-mount (repeatable; none by default).")
    List<Path> allowedHostPaths = new ArrayList<>();

    @Option(
            names = "--insecure-registry",
            description = "host[:port] of a registry spoken to over plain HTTP (repeatable); loopback ones always are.")
    Set<String> insecureRegistries = Set.of();

    @Option(names = "--node-label", description = "key=value label of the RuntimeNode, for nodeSelectors (repeatable).")
    Map<String, String> labels = new LinkedHashMap<>();

    @Option(
            names = "--runtime-binary",
            paramLabel = "NAME=PATH",
            description = "The executable of the OCI runtime runc or crun, e.g. runc=/opt/bin/runc "
                    + "(repeatable; default: /usr/sbin/runc and /usr/bin/crun).")
    Map<String, Path> runtimeBinaries = new LinkedHashMap<>();

    @Option(
            names = "--pull-credentials-url",
            paramLabel = "URL",
            description =
                    "The operator's HTTPS endpoint that gives this node the pull Secrets of its Containers "
                            + "(the agent may not read Secrets). Without it, Containers with imagePullSecrets are not prepared.")
    URI pullCredentialsUrl;

    @Option(
            names = "--pull-credentials-ca",
            defaultValue = "/var/run/secrets/stevedore.dev/pull-credentials/ca.crt",
            description = "PEM CA certificates of the endpoint's certificate (default: ${DEFAULT-VALUE}).")
    Path pullCredentialsCa;

    @Option(
            names = "--pull-credentials-token",
            defaultValue = "/var/run/secrets/stevedore.dev/pull-credentials/token",
            description = "A ServiceAccount token bound to this agent's Pod, of audience " + PullCredentialsApi.AUDIENCE
                    + ", re-read at each use (default: ${DEFAULT-VALUE}).")
    Path pullCredentialsToken;

    @Option(
            names = LayerLimits.MAX_BYTES_FLAG,
            paramLabel = "BYTES",
            description = "Bytes an image layer may uncompress to (default: 32 GiB).")
    long maxLayerBytes = LayerLimits.DEFAULTS.maxBytes();

    @Option(
            names = LayerLimits.MAX_ENTRIES_FLAG,
            paramLabel = "N",
            description = "Files, directories and links an image layer may hold (default: ${DEFAULT-VALUE}).")
    long maxLayerEntries = LayerLimits.DEFAULTS.maxEntries();

    @Option(
            names = LayerLimits.MAX_PAX_SIZE_FLAG,
            paramLabel = "BYTES",
            description = "Bytes of extended (PAX, GNU long name) tar headers before one entry of a layer "
                    + "(default: ${DEFAULT-VALUE}, 1 MiB, as Go's archive/tar).")
    long maxLayerPaxSize = LayerLimits.DEFAULTS.maxPaxSize();

    @Option(
            names = LayerLimits.MAX_PAX_RECORDS_FLAG,
            paramLabel = "N",
            description = "PAX records (such as xattrs) before one entry of a layer (default: ${DEFAULT-VALUE}).")
    long maxLayerPaxRecords = LayerLimits.DEFAULTS.maxPaxRecords();

    @Option(
            names = LayerLimits.MAX_PATH_BYTES_FLAG,
            paramLabel = "BYTES",
            description = "Bytes of paths the agent keeps while it unpacks one layer: its directories, and with the "
                    + "native snapshotter all its entries (default: ${DEFAULT-VALUE}, 16 MiB; counts against the "
                    + "agent's heap).")
    long maxLayerPathBytes = LayerLimits.DEFAULTS.maxPathBytes();

    @Option(
            names = ImageGcPolicy.HIGH_THRESHOLD_FLAG,
            paramLabel = "PERCENT",
            description = "Percent of the root's file system used above which unused images are removed, least "
                    + "recently used first (default: ${DEFAULT-VALUE}, as kubelet's).")
    int imageGcHighThreshold = ImageGcPolicy.DEFAULTS.highThresholdPercent();

    @Option(
            names = ImageGcPolicy.LOW_THRESHOLD_FLAG,
            paramLabel = "PERCENT",
            description = "Percent used that image garbage collection brings the file system down to "
                    + "(default: ${DEFAULT-VALUE}, as kubelet's).")
    int imageGcLowThreshold = ImageGcPolicy.DEFAULTS.lowThresholdPercent();

    @Option(
            names = ImageGcPolicy.MIN_FREE_FLAG,
            paramLabel = "PERCENT",
            description = "Percent of the root's file system that must be free; under it the RuntimeNode reports "
                    + "DiskPressure=True and gets no new Containers (default: ${DEFAULT-VALUE}).")
    int diskPressureThreshold = ImageGcPolicy.DEFAULTS.minFreePercent();

    @Option(
            names = LogLimits.MAX_SIZE_FLAG,
            paramLabel = "BYTES",
            description = "Size at which a task's log is rotated, as kubelet's containerLogMaxSize (default: 10 MiB).")
    long taskLogMaxSize = LogLimits.DEFAULTS.maxSize();

    @Option(
            names = LogLimits.MAX_FILES_FLAG,
            paramLabel = "N",
            description = "Log files kept per task, the one being written included, as kubelet's "
                    + "containerLogMaxFiles (default: ${DEFAULT-VALUE}).")
    int taskLogMaxFiles = LogLimits.DEFAULTS.maxFiles();

    @Option(
            names = "--cni-conf-dir",
            paramLabel = "DIR",
            description = "The node's CNI network configurations (.conflist, .conf, .json); the first by name is "
                    + "the default network (default: ${DEFAULT-VALUE}).")
    Path cniConfDir = NetworkSettings.DEFAULTS.cniConfDir();

    @Option(
            names = "--cni-bin-dir",
            paramLabel = "DIR",
            split = ",",
            description = "Directories of CNI plugins, searched in order (default: /opt/cni/bin,/usr/lib/cni).")
    List<Path> cniBinDirs = NetworkSettings.DEFAULTS.cniBinDirs();

    @Option(
            names = "--resolv-conf",
            paramLabel = "FILE",
            description = "The resolv.conf tasks' are made from, as kubelet's; empty: none, tasks get only their "
                    + "dnsConfig (default: ${DEFAULT-VALUE}).")
    String resolvConf = NetworkSettings.DEFAULTS.resolvConf().toString();

    @CommandLine.Spec
    CommandLine.Model.CommandSpec commandSpec;

    /**
     * How the agent runs tasks: the OCI runtimes' executables, their state directory, conmon's cgroup, how much of
     * each task's log is kept, and the node's networks.
     */
    public record TaskRuntime(
            Map<String, Path> binaries,
            Path stateDir,
            String conmonCgroup,
            LogLimits logLimits,
            NetworkSettings network) {
        /**
         * The installed runtimes; state in /run/stevedore; conmon in the agent's cgroup; kubelet's log limits; the
         * standard CNI directories.
         */
        public static final TaskRuntime DEFAULTS =
                new TaskRuntime(Map.of(), Runtimes.DEFAULT_STATE_DIR, "", LogLimits.DEFAULTS, NetworkSettings.DEFAULTS);

        public TaskRuntime withLogLimits(LogLimits l) {
            return new TaskRuntime(binaries, stateDir, conmonCgroup, l, network);
        }

        public TaskRuntime withNetwork(NetworkSettings n) {
            return new TaskRuntime(binaries, stateDir, conmonCgroup, logLimits, n);
        }

        /** The tasks' networks, their namespaces in the runtimes' state directory (gone at a reboot as they are). */
        TaskNetworks networks() {
            return network.taskNetworks(stateDir.resolve("netns"));
        }

        Runtimes prepare(Path root) throws IOException {
            ConmonCgroup cgroup = conmonCgroup.isEmpty()
                    ? ConmonCgroup.NONE
                    : ConmonCgroup.prepare(ConmonCgroup.CGROUP_ROOT, conmonCgroup);
            return Runtimes.prepare(root, binaries, stateDir, cgroup);
        }
    }

    /** A running agent; {@link #close()} stops its controllers and heartbeat (tasks, under conmon, keep running). */
    public record Running(
            Operator operator,
            RuntimeNodeReporter reporter,
            NodeContainerReconciler containers,
            AgentFinalizer finalizer,
            TaskManager tasks,
            ImageGarbageCollector imageGc,
            EventRecorder events,
            PrometheusMeterRegistry metrics,
            TaskApiServer endpoint)
            implements AutoCloseable {
        /**
         * Why the agent is not ready, empty when it is: its RuntimeNode is registered and its controllers started
         * once it runs at all, so what is left is whether its informers (this node's Containers and Tasks) are
         * synced and watching.
         */
        public Optional<String> notReady() {
            RuntimeInfo info = operator.getRuntimeInfo();
            if (!info.allEventSourcesAreHealthy()) {
                return Optional.of("informers not watching: " + info.unhealthyEventSources());
            }
            return Optional.empty();
        }

        /** The agent's metrics in Prometheus' text format, the running tasks' usage read now. */
        public String scrape() {
            tasks.refreshMetrics();
            return metrics.scrape();
        }

        @Override
        public void close() {
            if (endpoint != null) {
                endpoint.close();
            }
            reporter.close();
            imageGc.close();
            operator.stop();
            containers.close();
            finalizer.close();
            tasks.close();
            events.close(); // the last of them written, as far as the API server lets it
        }
    }

    /**
     * What an agent runs with, the agent command's flags: the node's name, labels and root directory, the host
     * paths tasks may mount, the registries reached over plain HTTP, how often the RuntimeNode is renewed, how tasks
     * run, where pull credentials come from, what one layer may hold, when images are collected, and where the agent
     * serves the operator (null: nowhere).
     */
    public record Settings(
            String nodeName,
            Path root,
            Map<String, String> labels,
            List<Path> allowedHostPaths,
            Set<String> insecureRegistries,
            Duration heartbeatInterval,
            TaskRuntime taskRuntime,
            PullCredentials pullCredentials,
            LayerLimits layerLimits,
            ImageGcPolicy imageGc,
            TaskApiServer.Settings endpoint) {
        /** The agent command's defaults for node {@code nodeName} with its state under {@code root}. */
        public static Settings of(String nodeName, Path root) {
            return new Settings(
                    nodeName,
                    root,
                    Map.of(),
                    List.of(),
                    Set.of(),
                    Duration.ofSeconds(10),
                    TaskRuntime.DEFAULTS,
                    PullCredentials.NONE,
                    LayerLimits.DEFAULTS,
                    ImageGcPolicy.DEFAULTS,
                    null);
        }

        public Settings withLabels(Map<String, String> l) {
            return new Settings(
                    nodeName,
                    root,
                    l,
                    allowedHostPaths,
                    insecureRegistries,
                    heartbeatInterval,
                    taskRuntime,
                    pullCredentials,
                    layerLimits,
                    imageGc,
                    endpoint);
        }

        public Settings withAllowedHostPaths(List<Path> a) {
            return new Settings(
                    nodeName,
                    root,
                    labels,
                    a,
                    insecureRegistries,
                    heartbeatInterval,
                    taskRuntime,
                    pullCredentials,
                    layerLimits,
                    imageGc,
                    endpoint);
        }

        public Settings withHeartbeatInterval(Duration h) {
            return new Settings(
                    nodeName,
                    root,
                    labels,
                    allowedHostPaths,
                    insecureRegistries,
                    h,
                    taskRuntime,
                    pullCredentials,
                    layerLimits,
                    imageGc,
                    endpoint);
        }

        public Settings withTaskRuntime(TaskRuntime t) {
            return new Settings(
                    nodeName,
                    root,
                    labels,
                    allowedHostPaths,
                    insecureRegistries,
                    heartbeatInterval,
                    t,
                    pullCredentials,
                    layerLimits,
                    imageGc,
                    endpoint);
        }

        public Settings withPullCredentials(PullCredentials p) {
            return new Settings(
                    nodeName,
                    root,
                    labels,
                    allowedHostPaths,
                    insecureRegistries,
                    heartbeatInterval,
                    taskRuntime,
                    p,
                    layerLimits,
                    imageGc,
                    endpoint);
        }

        public Settings withEndpoint(TaskApiServer.Settings e) {
            return new Settings(
                    nodeName,
                    root,
                    labels,
                    allowedHostPaths,
                    insecureRegistries,
                    heartbeatInterval,
                    taskRuntime,
                    pullCredentials,
                    layerLimits,
                    imageGc,
                    e);
        }
    }

    /** Starts the agent's services and controllers on {@code client}. */
    public static Running start(KubernetesClient client, Settings settings) throws IOException {
        String nodeName = settings.nodeName();
        Path root = settings.root();
        TaskRuntime taskRuntime = settings.taskRuntime();
        LayerLimits layerLimits = settings.layerLimits();
        List<Path> allowedHostPaths = settings.allowedHostPaths();
        StateDirectories.close(root);
        PrometheusMeterRegistry metrics = ProcessMetrics.registry();
        FileContentStore content;
        RegistryImageService images;
        // Temp files in content/ingest and images/ are a crash's leftovers unless an import is writing them now.
        try (RootLock imports = RootLock.tryExclusive(root)) {
            boolean removeLeftovers = imports != null;
            if (!removeLeftovers) {
                LOG.info("an image import is running in {}; its temp files are left alone", root);
            }
            content = new FileContentStore(root, removeLeftovers);
            images = new RegistryImageService(
                    content,
                    root.resolve("images"),
                    Platform.current(),
                    settings.insecureRegistries(),
                    removeLeftovers);
        }
        Map<String, Snapshotter> snapshotters = new LinkedHashMap<>();
        if (overlayAvailable()) {
            snapshotters.put("overlayfs", new OverlayfsSnapshotter(root, layerLimits));
        }
        snapshotters.put("native", new NativeSnapshotter(root, layerLimits));
        ContainerRecords records = new ContainerRecords(root);
        records.removeLeftovers();
        GarbageCollector gc = new GarbageCollector(records, images, content, snapshotters.values(), root, metrics);
        gc.collect();
        ImageGarbageCollector imageGarbageCollector =
                new ImageGarbageCollector(gc, images, root, settings.imageGc(), Clock.systemUTC());
        // Tasks' and Containers' Events, from this node, as kubelet's come from its node.
        EventRecorder events = new EventRecorder(client, "stevedore-agent", nodeName);
        TaskNetworks networks = taskRuntime.networks();
        TaskManager tasks = new TaskManager(
                client,
                nodeName,
                new TaskRecords(root, TaskRecords.exitDir(taskRuntime.stateDir(), nodeName)),
                records,
                snapshotters,
                taskRuntime.logLimits(),
                taskRuntime.prepare(root),
                new BindSources(allowedHostPaths),
                networks,
                events,
                new TaskMetrics(metrics, ConmonCgroup.CGROUP_ROOT));
        RootfsPreparer preparer = new RootfsPreparer(
                images,
                content,
                snapshotters,
                new SpecGenerator(allowedHostPaths),
                records,
                gc,
                tasks::snapshotInUse,
                root.resolve("tmpmounts"),
                new PrepareMetrics(metrics));
        tasks.start();
        TaskApiServer taskApi;
        try {
            taskApi = settings.endpoint() == null
                    ? null
                    : TaskApiServer.start(client, tasks, settings.endpoint(), nodeName, ConmonCgroup.CGROUP_ROOT);
        } catch (GeneralSecurityException e) {
            throw new IOException("the agent endpoint's certificate: " + e.getMessage(), e);
        }

        Operator operator = new Operator(o -> o.withKubernetesClient(client)
                .withCloseClientOnStop(false)
                .withMetrics(MicrometerMetrics.withoutPerResourceMetrics(metrics)));
        AgentFinalizer finalizer = new AgentFinalizer(client);
        NodeTaskReconciler taskReconciler = new NodeTaskReconciler(tasks, nodeName, finalizer);
        NodeContainerReconciler containerReconciler = new NodeContainerReconciler(
                preparer,
                gc,
                imageGarbageCollector,
                tasks::containerInUse,
                taskReconciler::containerPrepared,
                finalizer,
                settings.pullCredentials(),
                events);
        containerReconciler.releaseGone(client, nodeName, records);
        NodeScope.register(operator, containerReconciler, nodeName);
        NodeScope.register(operator, taskReconciler, nodeName);
        RuntimeNodeReporter reporter = new RuntimeNodeReporter(
                client,
                nodeName,
                settings.labels(),
                root,
                images,
                tasks::runningTasks,
                networks::offered,
                List.copyOf(snapshotters.keySet()),
                settings.imageGc(),
                taskApi == null ? null : taskApi.endpoint());
        reporter.start(settings.heartbeatInterval());
        imageGarbageCollector.start(IMAGE_GC_INTERVAL);
        operator.start();
        return new Running(
                operator,
                reporter,
                containerReconciler,
                finalizer,
                tasks,
                imageGarbageCollector,
                events,
                metrics,
                taskApi);
    }

    @Override
    public Integer call() throws Exception {
        String node = nodeName == null || nodeName.isBlank()
                ? InetAddress.getLocalHost().getHostName()
                : nodeName;
        KubernetesClient client = new KubernetesClientBuilder().build();
        PullCredentials pullCredentials = pullCredentialsUrl == null
                ? PullCredentials.NONE
                : new PullCredentialsClient(pullCredentialsUrl, pullCredentialsCa, pullCredentialsToken);
        LayerLimits layerLimits =
                new LayerLimits(maxLayerBytes, maxLayerEntries, maxLayerPaxSize, maxLayerPaxRecords, maxLayerPathBytes);
        ImageGcPolicy imageGc;
        LogLimits logLimits;
        try {
            imageGc = new ImageGcPolicy(imageGcHighThreshold, imageGcLowThreshold, diskPressureThreshold);
            logLimits = new LogLimits(taskLogMaxSize, taskLogMaxFiles);
        } catch (IllegalArgumentException e) {
            throw new CommandLine.ParameterException(commandSpec.commandLine(), e.getMessage(), e);
        }
        // Served from the first moment, so a liveness probe does not kill an agent still adopting its tasks.
        AtomicReference<Running> running = new AtomicReference<>();
        MonitoringServer health = healthAddress.isEmpty()
                ? null
                : MonitoringServer.start(
                        MonitoringServer.parseAddress(healthAddress),
                        () -> running.get() == null
                                ? Optional.of("starting: RuntimeNode not registered yet")
                                : running.get().notReady());
        MonitoringServer metricsServer = metricsAddress.isEmpty()
                ? null
                : MonitoringServer.start(
                        MonitoringServer.parseAddress(metricsAddress),
                        () -> running.get() == null
                                ? Optional.of("starting: RuntimeNode not registered yet")
                                : running.get().notReady(),
                        () -> Optional.ofNullable(running.get()).map(Running::scrape));
        Running agent = start(
                client,
                new Settings(
                        node,
                        root,
                        labels,
                        allowedHostPaths,
                        insecureRegistries,
                        heartbeatInterval,
                        new TaskRuntime(
                                runtimeBinaries,
                                stateDir,
                                conmonCgroup,
                                logLimits,
                                new NetworkSettings(
                                        cniConfDir, cniBinDirs, resolvConf.isEmpty() ? null : Path.of(resolvConf))),
                        pullCredentials,
                        layerLimits,
                        imageGc,
                        endpointAddress.isEmpty()
                                ? null
                                : new TaskApiServer.Settings(
                                        MonitoringServer.parseAddress(endpointAddress), operatorServiceAccount)));
        running.set(agent);
        CountDownLatch stopped = new CountDownLatch(1);
        // SIGTERM (kubelet stopping the Pod) stops the agent's own work only: tasks run on under their conmons.
        Runtime.getRuntime()
                .addShutdownHook(new Thread(
                        () -> {
                            if (health != null) {
                                health.close();
                            }
                            if (metricsServer != null) {
                                metricsServer.close();
                            }
                            agent.close();
                            client.close();
                            stopped.countDown();
                        },
                        "agent-shutdown"));
        stopped.await();
        return 0;
    }

    /**
     * {@code stevedore-agent import}: OCI image layouts (tar, tar.gz or directory) into the node's content store and
     * image records, as {@code ctr images import}, for nodes without a registry. Safe beside the running agent: blobs
     * and records are written crash-safely and under the shared {@link RootLock}, which keeps garbage collection
     * away, and the agent reads records from disk. Imported images are pinned: garbage collection keeps them.
     */
    @Command(
            name = "import",
            mixinStandardHelpOptions = true,
            description =
                    "Imports OCI image layouts (tar, tar.gz or directory) into the node's images; prints name and digest of each.")
    static final class Import implements Callable<Integer> {
        @Option(
                names = "--root",
                defaultValue = "/var/lib/stevedore",
                description = "The agent's state directory (default: ${DEFAULT-VALUE}).")
        Path root;

        @CommandLine.Parameters(
                arity = "1..*",
                paramLabel = "ARCHIVE",
                description = "OCI image layouts: tar archives or directories.")
        List<Path> archives;

        @CommandLine.Spec
        CommandLine.Model.CommandSpec spec;

        @Override
        public Integer call() throws IOException {
            var out = spec.commandLine().getOut();
            var err = spec.commandLine().getErr();
            logToStderr(); // stdout is for the names and digests imported
            StateDirectories.close(root);
            try (RootLock held = RootLock.shared(root)) {
                // The agent may be running: its temp files are downloads in progress, not leftovers.
                FileContentStore content = new FileContentStore(root, false);
                RegistryImageService images =
                        new RegistryImageService(content, root.resolve("images"), Platform.current(), Set.of(), false);
                for (Path archive : archives) {
                    try {
                        for (Image image : images.importArchive(archive)) {
                            out.println(image.name() + " " + image.digest());
                        }
                    } catch (ImageException e) {
                        err.println("stevedore-agent import: " + archive + ": " + e.reason() + ": " + e.getMessage());
                        return 1;
                    }
                }
            }
            out.flush();
            return 0;
        }
    }

    /** Moves the console log (logback.xml's "json" appender) from stdout to stderr. */
    private static void logToStderr() {
        if (LoggerFactory.getLogger(Logger.ROOT_LOGGER_NAME) instanceof ch.qos.logback.classic.Logger rootLogger
                && rootLogger.getAppender("json") instanceof ch.qos.logback.core.ConsoleAppender<?> console) {
            console.stop();
            console.setTarget("System.err");
            console.start();
        }
    }

    public static void main(String[] args) {
        int exit = new CommandLine(new NodeAgent())
                .registerConverter(Duration.class, Durations::parsePositive)
                .execute(args);
        if (exit != 0) {
            System.exit(exit);
        }
    }

    private static boolean overlayAvailable() {
        try {
            return Files.readString(Path.of("/proc/filesystems")).contains("\toverlay");
        } catch (IOException e) {
            return false;
        }
    }
}
