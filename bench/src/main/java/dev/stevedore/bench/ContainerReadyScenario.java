package dev.stevedore.bench;

import dev.stevedore.api.v1alpha1.Container;
import dev.stevedore.testing.ControlPlane;
import dev.stevedore.testing.Crds;
import dev.stevedore.testing.Tools;
import io.fabric8.kubernetes.api.model.NamespaceBuilder;
import io.fabric8.kubernetes.client.Config;
import io.fabric8.kubernetes.client.ConfigBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientBuilder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.ToLongFunction;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * How long a Container takes to become Ready on its node when its image is already there: the node agent's latency
 * for the common case (a new Container of an image the node has).
 *
 * <p>Set-up: a real control plane (etcd, kube-apiserver, kube-controller-manager) with Stevedore's CRDs; a loopback
 * registry holding the busybox image; the node agent as a JVM of its own with a fresh {@code --root}, registered as
 * RuntimeNode {@value AgentNode#NODE}. No operator runs: the Containers name their node ({@code spec.nodeName}), and
 * Ready is the agent's condition alone. A first Container ("keep") pulls and unpacks the image and stays for the
 * whole run, so the image and its layer snapshots stay on the node (the agent's garbage collector keeps what a
 * Container uses). Then {@value #WARM_UP} unmeasured Containers warm up the agent's JVM.
 *
 * <p>Measured, {@code --ready-containers} times, one Container at a time (latency, not throughput): the time from
 * just before the benchmark sends the create of a Container pinned to the node, to the moment its watch on the
 * namespace delivers that Container with {@code Ready=True}. In between: the create round trip, the agent's watch
 * event, the agent adding its finalizer (a PATCH; the watch delivers that too, so that instant is reported, splitting
 * the time in two), the reconcile (the image and its layers are found on disk, so no pull and no unpack: an active
 * overlayfs snapshot is prepared, the OCI spec generated and written, the Container's record written, each with an
 * fsync), the status server-side apply, and the watch event back to the benchmark. Then the Container is deleted
 * and the benchmark waits for the watch to report it gone (the agent releases the snapshot, garbage-collects and
 * removes its finalizer), which is reported as delete_to_gone, before the next is created.
 *
 * <p>Where the time goes: the CPU each process spent per Container (the agent, the benchmark, etcd, kube-apiserver,
 * kube-controller-manager), in the create-to-Ready window and, separately, the delete-to-gone one; and the API
 * requests per Container (create and delete included), by verb and resource, all clients but the benchmark.
 */
final class ContainerReadyScenario implements Scenario {
    private static final Logger LOG = LoggerFactory.getLogger(ContainerReadyScenario.class);
    private static final String NAMESPACE = "bench";
    private static final int WARM_UP = 20;
    /** Per Container; a healthy agent needs a fraction of a second. */
    private static final Duration EACH_AT_MOST = Duration.ofMinutes(2);

    @Override
    public String name() {
        return "container_ready";
    }

    @Override
    public String description() {
        return "create to Ready of --ready-containers Containers (default 100), one at a time, image cached on the node";
    }

    /** The instants (System.nanoTime) of one Container's life as the benchmark saw it. */
    private record Cycle(String name, long created, long finalized, long ready, long deleted, long gone) {}

    @Override
    public List<Measurement> run(Settings settings) throws Exception {
        int count = settings.readyContainers();
        String prefix = name() + "_" + Settings.sizeLabel(count) + "_";
        Path root = Tools.repositoryRoot();
        Path work = Files.createTempDirectory("stevedore-bench-" + name() + "-");
        try (ControlPlane controlPlane = ControlPlane.startEphemeral(Tools.binDir());
                BenchRegistry registry = BenchRegistry.start(work.resolve("registry"))) {
            KubernetesClient admin = controlPlane.adminClient();
            Crds.installStevedore(admin);
            BenchImages images = BenchImages.build(work.resolve("images"), 0);
            String image = registry.host() + "/bench/busybox:1";
            images.push(BenchImages.BASE, image);
            RequestCounter ownRequests = new RequestCounter();
            try (KubernetesClient client = benchClient(controlPlane, ownRequests)) {
                client.namespaces()
                        .resource(new NamespaceBuilder()
                                .withNewMetadata()
                                .withName(NAMESPACE)
                                .endMetadata()
                                .build())
                        .create();
                Path agentRoot = work.resolve("agent");
                try (JvmProcess agent = AgentNode.start(
                                root, controlPlane, client, settings.agentJvmOptions(), agentRoot, name());
                        ContainerWatch watch = new ContainerWatch(client, NAMESPACE)) {
                    return measure(
                            settings, prefix, image, images, admin, client, ownRequests, agent, watch, agentRoot);
                }
            }
        } finally {
            Commands.deleteTree(work);
        }
    }

    private List<Measurement> measure(
            Settings settings,
            String prefix,
            String image,
            BenchImages images,
            KubernetesClient admin,
            KubernetesClient client,
            RequestCounter ownRequests,
            JvmProcess agent,
            ContainerWatch watch,
            Path agentRoot)
            throws Exception {
        int count = settings.readyContainers();
        Cycle keep = create(client, watch, agent, "keep", image);
        LOG.info(
                "image pulled and unpacked: Container keep Ready {} ms after its create; the node holds {}",
                (keep.ready() - keep.created()) / 1_000_000,
                AgentNode.inventory(agentRoot));
        for (int i = 0; i < WARM_UP; i++) {
            delete(client, watch, agent, create(client, watch, agent, String.format("warm-%02d", i), image));
        }

        CpuUsage cpu = new CpuUsage(Map.of("agent", agent.handle()));
        Map<String, Duration> cpuToReady = new LinkedHashMap<>();
        Map<String, Duration> cpuToGone = new LinkedHashMap<>();
        Map<String, Long> requestsBefore = ApiRequests.scrape(admin);
        long ownBefore = ownRequests.count();
        List<Cycle> cycles = new ArrayList<>(count);
        LOG.info("measuring {} Containers, one at a time", count);
        for (int i = 0; i < count; i++) {
            Map<String, Duration> before = cpu.snapshot();
            Cycle created = create(client, watch, agent, String.format("c-%05d", i), image);
            Map<String, Duration> ready = cpu.snapshot();
            Cycle cycle = delete(client, watch, agent, created);
            CpuUsage.accumulate(cpuToReady, CpuUsage.delta(before, ready));
            CpuUsage.accumulate(cpuToGone, CpuUsage.delta(ready, cpu.snapshot()));
            cycles.add(cycle);
            if ((i + 1) % 25 == 0) {
                LOG.info("{} of {} Containers measured", i + 1, count);
            }
        }
        Map<String, Long> requests = ApiRequests.delta(requestsBefore, ApiRequests.scrape(admin));
        long ownInRun = ownRequests.count() - ownBefore;
        String left = AgentNode.inventory(agentRoot);
        LOG.info("done; the node holds {} (the keep Container's)", left);

        double[] toReady = millis(cycles, c -> c.ready() - c.created());
        double[] toFinalizer = millis(cycles, c -> c.finalized() - c.created());
        double[] toGone = millis(cycles, c -> c.gone() - c.deleted());
        List<Measurement> results = new ArrayList<>();
        results.add(Measurement.of(prefix + "create_to_ready", "ms", toReady)
                .with("image", "busybox, " + images.layerSizes(BenchImages.BASE).size() + " layer, cached on the node")
                .with("sequential", true)
                .with("warm_up", WARM_UP)
                .with("agent_jvm_options", String.join(" ", settings.agentJvmOptions())));
        results.add(
                Measurement.of(prefix + "create_to_finalizer", "ms", toFinalizer)
                        .with(
                                "what",
                                "create sent until the watch shows the agent's finalizer (added beside preparing, not before)"));
        results.add(Measurement.of(prefix + "delete_to_gone", "ms", toGone)
                .with("what", "delete sent until the watch reports it deleted: release, GC, finalizer removed"));

        long total = ApiRequests.total(requests);
        results.add(Measurement.single(
                        prefix + "api_requests_per_container", "requests", (double) (total - ownInRun) / count)
                .with("requests", total - ownInRun)
                .with("bench_requests", ownInRun)
                .with("covers", "create to Ready and delete to gone")
                .with("by_request_all_clients", requests));
        for (Map.Entry<String, Duration> used : cpuToReady.entrySet()) {
            double readyMs = used.getValue().toNanos() / 1e6 / count;
            double goneMs = cpuToGone.getOrDefault(used.getKey(), Duration.ZERO).toNanos() / 1e6 / count;
            results.add(Measurement.single(
                            prefix + "cpu_" + used.getKey().replace('-', '_') + "_per_container",
                            "ms",
                            Report.round(readyMs))
                    .with("window", "create to Ready")
                    .with("delete_to_gone_ms", Report.round(goneMs)));
        }
        return results;
    }

    /** Creates a Container of {@code image} pinned to the node and waits until the watch shows it Ready. */
    private static Cycle create(
            KubernetesClient client, ContainerWatch watch, JvmProcess agent, String name, String image)
            throws InterruptedException {
        ContainerWatch.Tracked tracked = watch.track(name);
        long created = System.nanoTime();
        client.resource(AgentNode.container(NAMESPACE, name, image)).create();
        long ready =
                ContainerWatch.await(tracked.ready, EACH_AT_MOST, "Container " + name + " Ready", agent::checkAlive);
        // The agent adds its finalizer beside preparing, not before; waiting for it keeps the delete on the usual path.
        long finalized = ContainerWatch.await(
                tracked.finalized, EACH_AT_MOST, "Container " + name + " finalizer", agent::checkAlive);
        return new Cycle(name, created, finalized, ready, 0, 0);
    }

    /** Deletes the Container and waits until the watch reports it gone (the agent has removed its finalizer). */
    private static Cycle delete(KubernetesClient client, ContainerWatch watch, JvmProcess agent, Cycle cycle)
            throws InterruptedException {
        ContainerWatch.Tracked tracked = watch.tracked(cycle.name());
        long deleted = System.nanoTime();
        client.resources(Container.class)
                .inNamespace(NAMESPACE)
                .withName(cycle.name())
                .delete();
        long gone = ContainerWatch.await(
                tracked.gone, EACH_AT_MOST, "Container " + cycle.name() + " gone", agent::checkAlive);
        watch.forget(cycle.name());
        return new Cycle(cycle.name(), cycle.created(), cycle.finalized(), cycle.ready(), deleted, gone);
    }

    private static double[] millis(List<Cycle> cycles, ToLongFunction<Cycle> nanos) {
        return cycles.stream().mapToLong(nanos).mapToDouble(n -> n / 1e6).toArray();
    }

    /** The benchmark's own client, counting its requests so they can be taken out of the server's totals. */
    private static KubernetesClient benchClient(ControlPlane controlPlane, RequestCounter counter) {
        Config config = new ConfigBuilder(controlPlane.adminConfig()).build();
        return new KubernetesClientBuilder()
                .withConfig(config)
                .withHttpClientBuilderConsumer(http -> http.addOrReplaceInterceptor(RequestCounter.NAME, counter))
                .build();
    }
}
