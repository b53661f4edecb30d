package dev.stevedore.bench;

import dev.stevedore.api.v1alpha1.Container;
import dev.stevedore.api.v1alpha1.ContainerSpec;
import dev.stevedore.testing.ControlPlane;
import dev.stevedore.testing.Crds;
import dev.stevedore.testing.Tools;
import io.fabric8.kubernetes.api.model.NamespaceBuilder;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.fabric8.kubernetes.client.Config;
import io.fabric8.kubernetes.client.ConfigBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientBuilder;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.OptionalLong;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The operator scheduling N Containers onto M Ready RuntimeNodes on a real control plane: how long until all are
 * Scheduled, how long each waits, the operator's memory, the API requests it makes per Container, and the CPU
 * each process spends meanwhile.
 *
 * <p>The operator runs as its own JVM and is warm (its informers synced, one Container scheduled) before the
 * measured window opens. The window opens just before the first create and closes when the last Container is
 * seen Scheduled; the Containers are created concurrently so that creating them is not what is measured.
 */
final class SchedulingScenario implements Scenario {
    private static final Logger LOG = LoggerFactory.getLogger(SchedulingScenario.class);
    private static final String NAMESPACE = "bench";
    private static final String WARMUP_NAMESPACE = "bench-warmup";
    private static final String IMAGE = "127.0.0.1:5000/stevedore/busybox:latest";
    /** Long enough that no node goes NotReady during a run: the stand-in agents heartbeat only once. */
    private static final String NODE_GRACE_PERIOD = "1h";

    private static final Duration RSS_SAMPLE_EVERY = Duration.ofMillis(500);
    /** How long the request counters must stand still before the operator's trailing writes are deemed done. */
    private static final Duration QUIET = Duration.ofSeconds(3);

    private static final Duration SETTLE_AT_MOST = Duration.ofMinutes(2);

    @Override
    public String name() {
        return "scheduling";
    }

    @Override
    public String description() {
        return "the operator schedules --containers Containers onto --nodes RuntimeNodes (default 10000 onto 10)";
    }

    @Override
    public List<Measurement> run(Settings settings) throws Exception {
        int count = settings.containers();
        String prefix = name() + "_" + Settings.sizeLabel(count) + "_";
        Path root = Tools.repositoryRoot();
        try (ControlPlane controlPlane = ControlPlane.startEphemeral(Tools.binDir())) {
            KubernetesClient admin = controlPlane.adminClient();
            Crds.installStevedore(admin);
            RequestCounter ownRequests = new RequestCounter();
            try (KubernetesClient client = benchClient(controlPlane, settings.createThreads(), ownRequests)) {
                for (String namespace : List.of(NAMESPACE, WARMUP_NAMESPACE)) {
                    client.namespaces()
                            .resource(new NamespaceBuilder()
                                    .withNewMetadata()
                                    .withName(namespace)
                                    .endMetadata()
                                    .build())
                            .create();
                }
                NodeAgentStandIn agents = new NodeAgentStandIn(client);
                for (int i = 0; i < settings.nodes(); i++) {
                    agents.register(String.format("node-%03d", i));
                }
                Path log = root.resolve("bench/target/logs/" + name() + "-operator.log");
                try (JvmProcess operator = JvmProcess.operator(
                        root,
                        controlPlane.kubeconfig(),
                        settings.operatorJvmOptions(),
                        List.of("--no-leader-elect", "--node-grace-period=" + NODE_GRACE_PERIOD),
                        log)) {
                    warmUp(client, operator);
                    return measure(settings, prefix, admin, client, ownRequests, operator);
                }
            }
        }
    }

    /**
     * The benchmark's own client: its HTTP dispatcher lets every create thread (and the watch) have a request in
     * flight, where fabric8's default of 5 per host would make the benchmark, not the operator, the bottleneck.
     */
    private static KubernetesClient benchClient(ControlPlane controlPlane, int createThreads, RequestCounter counter) {
        Config config = new ConfigBuilder(controlPlane.adminConfig())
                .withMaxConcurrentRequests(2 * createThreads + 8)
                .withMaxConcurrentRequestsPerHost(2 * createThreads + 8)
                .build();
        return new KubernetesClientBuilder()
                .withConfig(config)
                .withHttpClientBuilderConsumer(http -> http.addOrReplaceInterceptor(RequestCounter.NAME, counter))
                .build();
    }

    /** One Container scheduled before the window opens: the operator is up, its informers synced and its code loaded. */
    private static void warmUp(KubernetesClient client, JvmProcess operator) {
        long started = System.nanoTime();
        client.resource(container(WARMUP_NAMESPACE, "canary")).create();
        try {
            client.resources(Container.class)
                    .inNamespace(WARMUP_NAMESPACE)
                    .withName("canary")
                    .waitUntilCondition(SchedulingWatch::scheduled, 3, TimeUnit.MINUTES);
        } catch (RuntimeException e) {
            operator.checkAlive();
            throw new IllegalStateException(
                    "the operator did not schedule the warm-up Container; its log:\n" + operator.logTail(40), e);
        }
        LOG.info(
                "operator ready: warm-up Container scheduled {} ms after it was created",
                (System.nanoTime() - started) / 1_000_000);
    }

    /** When the benchmark created the Containers, by {@link System#nanoTime()}. */
    private record Creation(long[] startedAt, long allDone) {}

    private List<Measurement> measure(
            Settings settings,
            String prefix,
            KubernetesClient admin,
            KubernetesClient client,
            RequestCounter ownRequests,
            JvmProcess operator)
            throws Exception {
        int count = settings.containers();
        CpuUsage cpu = new CpuUsage(operator.handle());
        try (SchedulingWatch watch = new SchedulingWatch(client, NAMESPACE, count, SchedulingScenario::index);
                RssSampler rss = new RssSampler(operator::rssBytes, RSS_SAMPLE_EVERY)) {
            Map<String, Long> requestsBefore = ApiRequests.scrape(admin);
            long ownBefore = ownRequests.count();
            Map<String, Duration> cpuBefore = cpu.snapshot();
            Map<String, Double> gcBefore = operator.gcUtil();

            // The window: from the first create until the watch has seen the last Container scheduled.
            long start = System.nanoTime();
            Creation creation = createAll(client, settings);
            watch.awaitAll(settings.timeout(), operator::checkAlive);
            Map<String, Duration> cpuUsed = CpuUsage.delta(cpuBefore, cpu.snapshot());
            Map<String, Double> gcAfter = operator.gcUtil();
            double[] latencies = new double[count];
            long end = start;
            for (int i = 0; i < count; i++) {
                latencies[i] = (watch.scheduledAt(i) - creation.startedAt()[i]) / 1e6;
                end = Math.max(end, watch.scheduledAt(i));
            }
            double windowMs = (end - start) / 1e6;
            LOG.info("all {} Containers scheduled {} ms after the first create", count, Math.round(windowMs));

            Map<String, Long> requests = ApiRequests.delta(requestsBefore, settle(admin, operator));
            long ownInWindow = ownRequests.count() - ownBefore;
            long peakRss = operator.peakRssBytes();
            rss.stop(); // the samples describe the run, not the full GC below
            OptionalLong liveHeap = operator.liveHeapBytes(); // last: it forces a full GC

            List<Measurement> results = new ArrayList<>();
            results.add(Measurement.single(prefix + "all_scheduled", "ms", windowMs)
                    .with("containers", count)
                    .with("nodes", settings.nodes())
                    .with("containers_per_s", Report.round(count / (windowMs / 1000)))
                    .with("create_all_ms", Report.round((creation.allDone() - start) / 1e6))
                    .with("create_threads", settings.createThreads()));
            results.add(Measurement.of(prefix + "container_create_to_scheduled", "ms", latencies));

            results.add(Measurement.single(prefix + "operator_peak_rss", "MiB", mebibytes(peakRss))
                    .with("source", "VmHWM")
                    .with("operator_jvm_options", String.join(" ", settings.operatorJvmOptions())));
            results.add(Measurement.of(
                            prefix + "operator_rss",
                            "MiB",
                            Arrays.stream(rss.samples())
                                    .mapToDouble(SchedulingScenario::mebibytes)
                                    .toArray())
                    .with("sampled_every_ms", rss.every().toMillis()));
            liveHeap.ifPresent(
                    bytes -> results.add(Measurement.single(prefix + "operator_live_heap", "MiB", mebibytes(bytes))
                            .with("source", "heap used after a full GC at the end")));

            long total = ApiRequests.total(requests);
            results.add(Measurement.single(
                            prefix + "api_requests_per_container", "requests", (double) (total - ownInWindow) / count)
                    .with("requests", total - ownInWindow)
                    .with("bench_requests", ownInWindow)
                    .with("by_request_all_clients", requests));

            for (Map.Entry<String, Duration> used : cpuUsed.entrySet()) {
                Measurement m = Measurement.single(
                                prefix + "cpu_" + used.getKey().replace('-', '_'),
                                "s",
                                used.getValue().toMillis() / 1000.0)
                        .with("cores", Report.round(used.getValue().toMillis() / windowMs));
                if (used.getKey().equals("operator") && gcAfter.containsKey("GCT") && gcBefore.containsKey("GCT")) {
                    // Seconds the collector ran (pauses and concurrent work), part of the operator's CPU.
                    m = m.with("gc_s", Report.round(gcAfter.get("GCT") - gcBefore.get("GCT")))
                            .with(
                                    "full_gcs",
                                    Math.round(gcAfter.getOrDefault("FGC", 0.0) - gcBefore.getOrDefault("FGC", 0.0)));
                }
                results.add(m);
            }
            return results;
        }
    }

    /** Creates the Containers from a bounded pool, recording when each create was sent. */
    private static Creation createAll(KubernetesClient client, Settings settings)
            throws InterruptedException, ExecutionException {
        int count = settings.containers();
        LOG.info("creating {} Containers with {} threads", count, settings.createThreads());
        long[] startedAt = new long[count]; // each slot written by one thread, read after all are joined
        ExecutorService creators = Executors.newFixedThreadPool(settings.createThreads());
        try {
            List<Future<?>> creates = new ArrayList<>(count);
            for (int i = 0; i < count; i++) {
                int index = i;
                creates.add(creators.submit(() -> {
                    startedAt[index] = System.nanoTime();
                    client.resource(container(NAMESPACE, name(index))).create();
                }));
            }
            for (Future<?> create : creates) {
                create.get(); // a failed create fails the run: the figures would be of fewer Containers than claimed
            }
        } finally {
            creators.shutdownNow();
        }
        long allDone = System.nanoTime();
        LOG.info("{} Containers created in {} ms", count, (allDone - startedAt[0]) / 1_000_000);
        return new Creation(startedAt, allDone);
    }

    /**
     * The request counters once the operator has gone quiet. Its last writes (a second status apply, Events) can
     * follow the Scheduled condition the watch saw, and no event announces that it is done, so this polls the
     * counters until they stand still.
     */
    private static Map<String, Long> settle(KubernetesClient admin, JvmProcess operator) throws InterruptedException {
        long deadline = System.nanoTime() + SETTLE_AT_MOST.toNanos();
        Map<String, Long> last = ApiRequests.scrape(admin);
        long stillSince = System.nanoTime();
        while (System.nanoTime() - stillSince < QUIET.toNanos()) {
            if (System.nanoTime() > deadline) {
                LOG.warn("the operator's requests did not stop within {}; counting those made so far", SETTLE_AT_MOST);
                break;
            }
            Thread.sleep(500);
            operator.checkAlive();
            Map<String, Long> now = ApiRequests.scrape(admin);
            if (!now.equals(last)) {
                last = now;
                stillSince = System.nanoTime();
            }
        }
        return last;
    }

    private static Container container(String namespace, String name) {
        Container container = new Container();
        container.setMetadata(
                new ObjectMetaBuilder().withName(name).withNamespace(namespace).build());
        container.setSpec(new ContainerSpec(IMAGE, null, null, null, null, null, null, null, null, null, null));
        return container;
    }

    private static String name(int index) {
        return String.format("c-%05d", index);
    }

    private static int index(String name) {
        try {
            return name.startsWith("c-") ? Integer.parseInt(name.substring(2)) : -1;
        } catch (NumberFormatException e) {
            return -1;
        }
    }

    private static double mebibytes(long bytes) {
        return Report.round(bytes / (1024.0 * 1024.0));
    }
}
