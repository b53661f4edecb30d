package dev.stevedore.agent.node;

import dev.stevedore.agent.gc.DiskUsage;
import dev.stevedore.agent.gc.ImageGcPolicy;
import dev.stevedore.agent.images.ImageService;
import dev.stevedore.api.FieldManager;
import dev.stevedore.api.v1alpha1.RuntimeNode;
import dev.stevedore.api.v1alpha1.RuntimeNodeSpec;
import dev.stevedore.api.v1alpha1.RuntimeNodeStatus;
import io.fabric8.kubernetes.api.model.Condition;
import io.fabric8.kubernetes.api.model.ConditionBuilder;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileStore;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.IntSupplier;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Registers this node's RuntimeNode and heartbeats its status, as kubelet does for its Node: runtimes and
 * versions, snapshotters, disk, cached images, running tasks, Ready=True, and DiskPressure from the disk's free space.
 *
 * <p>The disk figures are the file system's own counters (statvfs), read in constant time: a heartbeat must not walk
 * the snapshots, whose upper directories containers fill with as many and as deeply nested files as they like, so a
 * walk's cost, and whether it ends, would be theirs to choose. They include what else shares that file system,
 * which is what matters to a node running out of disk.
 */
public final class RuntimeNodeReporter implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(RuntimeNodeReporter.class);

    private final KubernetesClient client;
    private final String nodeName;
    private final Map<String, String> labels;
    private final Path root;
    private final ImageService images;
    private final IntSupplier runningTasks;
    private final Supplier<List<RuntimeNodeStatus.NetworkInfo>> networks;
    private final List<RuntimeNodeStatus.RuntimeInfo> runtimes;
    /** Where the agent's endpoint serves and its certificate; null when it serves none. */
    private final RuntimeNodeStatus.AgentEndpoint agentEndpoint;

    private final List<String> snapshotters;
    private final ImageGcPolicy policy;
    /** Heartbeats failed in a row. */
    private final AtomicInteger failedHeartbeats = new AtomicInteger();
    /** The DiskPressure status last reported and since when; guarded by this. */
    private String diskPressureStatus;

    private String diskPressureSince;
    private final ScheduledExecutorService timer = Executors.newSingleThreadScheduledExecutor(r -> {
        Thread thread = new Thread(r, "runtimenode-heartbeat");
        thread.setDaemon(true);
        return thread;
    });

    public RuntimeNodeReporter(
            KubernetesClient client,
            String nodeName,
            Map<String, String> labels,
            Path root,
            ImageService images,
            IntSupplier runningTasks,
            Supplier<List<RuntimeNodeStatus.NetworkInfo>> networks,
            List<String> snapshotters,
            ImageGcPolicy policy,
            RuntimeNodeStatus.AgentEndpoint agentEndpoint) {
        this.client = client;
        this.nodeName = nodeName;
        this.labels = labels;
        this.root = root;
        this.images = images;
        this.runningTasks = runningTasks;
        this.networks = networks;
        this.snapshotters = snapshotters;
        this.policy = policy;
        this.agentEndpoint = agentEndpoint;
        this.runtimes = detectRuntimes();
    }

    /** Registers the node now, then heartbeats every {@code interval}. */
    public void start(Duration interval) {
        register();
        heartbeat();
        timer.scheduleWithFixedDelay(this::heartbeat, interval.toMillis(), interval.toMillis(), TimeUnit.MILLISECONDS);
    }

    private void register() {
        RuntimeNode node = new RuntimeNode();
        node.setMetadata(
                new ObjectMetaBuilder().withName(nodeName).withLabels(labels).build());
        node.setSpec(new RuntimeNodeSpec(null));
        FieldManager.AGENT.apply(client, node);
    }

    /** One status write; a failed one is logged and the next one tries again. */
    public void heartbeat() {
        try {
            RuntimeNode apply = new RuntimeNode();
            apply.setMetadata(new ObjectMetaBuilder().withName(nodeName).build());
            FileStore disk = Files.getFileStore(root);
            String now = Instant.now().truncatedTo(ChronoUnit.SECONDS).toString();
            Condition diskPressure = diskPressure(DiskUsage.of(root), now);
            apply.setStatus(new RuntimeNodeStatus(
                    runtimes,
                    snapshotters,
                    networks.get(),
                    disk.getUsableSpace(),
                    disk.getTotalSpace() - disk.getUnallocatedSpace(),
                    images.list().stream()
                            .map(i -> new RuntimeNodeStatus.ImageInfo(
                                    i.name(), i.digest().toString(), i.size()))
                            .toList(),
                    runningTasks.getAsInt(),
                    agentEndpoint,
                    now,
                    List.of(
                            new ConditionBuilder()
                                    .withType("Ready")
                                    .withStatus("True")
                                    .withReason("AgentReady")
                                    .withMessage("the node agent is running")
                                    .withLastTransitionTime(now)
                                    .build(),
                            diskPressure)));
            applyStatusRegisteringIfDeleted(apply);
            int failed = failedHeartbeats.getAndSet(0);
            if (failed > 0) {
                LOG.info("heartbeat of RuntimeNode {} written again after {} failed", nodeName, failed);
            }
        } catch (KubernetesClientException | IOException | java.io.UncheckedIOException e) {
            // (an exception escaping would end the scheduled heartbeats for good) Logged once per outage, not at
            // every beat of it: the API server being away for minutes is one event.
            if (failedHeartbeats.getAndIncrement() == 0) {
                LOG.warn("heartbeat of RuntimeNode {} failed: {}; trying at each beat", nodeName, e.getMessage());
            } else {
                LOG.debug("heartbeat of RuntimeNode {} failed: {}", nodeName, e.getMessage());
            }
        }
    }

    /** A RuntimeNode deleted under a live agent (kubectl delete) is back within one heartbeat, not at its restart. */
    private void applyStatusRegisteringIfDeleted(RuntimeNode apply) {
        try {
            FieldManager.AGENT.applyStatus(client, apply);
        } catch (KubernetesClientException e) {
            if (e.getCode() != 404) {
                throw e;
            }
            LOG.info("RuntimeNode {} was deleted; registering it again", nodeName);
            register();
            FieldManager.AGENT.applyStatus(client, apply);
        }
    }

    /** DiskPressure as kubelet reports it on a Node; its transition time moves only when its status does. */
    private synchronized Condition diskPressure(DiskUsage usage, String now) {
        boolean pressure = policy.diskPressure(usage);
        String status = pressure ? "True" : "False";
        if (!status.equals(diskPressureStatus)) {
            diskPressureStatus = status;
            diskPressureSince = now;
        }
        return new ConditionBuilder()
                .withType(RuntimeNodeStatus.DISK_PRESSURE)
                .withStatus(status)
                .withReason(pressure ? "DiskPressure" : "NoDiskPressure")
                .withMessage(String.format(
                        "%.2f%% of the agent's root file system is free (%d of %d bytes); the threshold is %d%%",
                        usage.freePercent(), usage.available(), usage.capacity(), policy.minFreePercent()))
                .withLastTransitionTime(diskPressureSince)
                .build();
    }

    /** runc and crun, with the version each prints; a runtime that is not installed is left out. */
    private static List<RuntimeNodeStatus.RuntimeInfo> detectRuntimes() {
        List<RuntimeNodeStatus.RuntimeInfo> found = new ArrayList<>();
        for (String runtime : List.of("runc", "crun")) {
            try {
                Process process = new ProcessBuilder(runtime, "--version")
                        .redirectErrorStream(true)
                        .start();
                String first = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8)
                        .lines()
                        .findFirst()
                        .orElse("");
                if (process.waitFor() == 0) {
                    found.add(new RuntimeNodeStatus.RuntimeInfo(
                            runtime, first.replaceAll("^.*version\\s*", "").trim()));
                }
            } catch (IOException notInstalled) {
                LOG.debug("{} is not installed", runtime);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        return found;
    }

    @Override
    public void close() {
        timer.shutdownNow();
    }
}
