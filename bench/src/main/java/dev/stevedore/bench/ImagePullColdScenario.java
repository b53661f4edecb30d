package dev.stevedore.bench;

import dev.stevedore.api.v1alpha1.Container;
import dev.stevedore.testing.ControlPlane;
import dev.stevedore.testing.Crds;
import dev.stevedore.testing.Tools;
import io.fabric8.kubernetes.api.model.NamespaceBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A cold pull and unpack of one image from a loopback registry: Stevedore's node agent against Debian's containerd
 * with {@code ctr}, in the same run, alternating, from the same registry, into the same file system.
 *
 * <p>The image: busybox (one gzip layer of about 1 MB, some 400 entries) plus a layer of {@code --layer-mib} files
 * of 1 MiB of pseudo-random bytes (gzip cannot shrink them, so the compressed layer is as large), built with umoci and
 * pushed with skopeo to a Debian docker-registry on 127.0.0.1. Both sides pull the same tag, over plain HTTP.
 *
 * <p>Stevedore, one sample: the time from just before the benchmark sends the create of a Container of that image
 * pinned to the agent's node, to its watch delivering the Container with {@code Ready=True}. The agent (a JVM of its
 * own, running since before the first sample) resolves the tag, downloads manifest, config and layers into its
 * content store (hashing and fsyncing each blob), records the image, unpacks both layers into overlayfs snapshots
 * (gunzip, tar, one syncfs per layer), prepares the Container's active snapshot, writes the OCI spec and record, and
 * applies the status. That splits at the agent's log line "pulled NAME as DIGEST", written when every blob is stored
 * and before any layer is unpacked: {@code fetch} is create sent to that line (it includes the create, the watch
 * event and the finalizer patch, some 10-20 ms: see container_ready), {@code unpack} is that line to Ready seen
 * (unpack, prepare, spec, status apply, watch event). Then the Container is deleted; once the watch reports it gone,
 * the agent has run its garbage collector (before removing its finalizer), and the benchmark checks on disk that the
 * agent's root holds no image, blob or snapshot: the next pull is cold. (The agent keeps unused images as a cache
 * until its disk passes {@code --image-gc-high-threshold}; here the thresholds are 1% and 0%, so that its image
 * garbage collection, which runs as a Container is released, removes every unused image, as ctr images rm does.)
 *
 * <p>containerd, one sample: the wall time of {@code ctr --debug images pull --plain-http REF} against a containerd
 * the benchmark started (its own config, root, state and socket in a temp directory; no CRI plugin), from spawning
 * ctr to reaping it, so it includes starting the ctr binary (peer_ctr_version_p50 tells what a ctr command costs by
 * itself). {@code --debug} only turns ctr's progress bars into log lines: drawn, they hold every pull up by 0-100 ms
 * (see {@link Containerd#pull}). ctr resolves the tag and fetches every blob itself (the layers concurrently), streaming it
 * into containerd's content store over gRPC, then asks containerd to unpack the layers into its overlayfs
 * snapshotter, and prints how long that took ("done: ..."): that is {@code unpack}; the rest is {@code fetch}. Then
 * {@code ctr images rm --sync}, which waits for containerd's garbage collector to remove the blobs and snapshots, and
 * the benchmark checks with ctr that the namespace holds no image, blob or snapshot.
 *
 * <p>One unmeasured pull on each side first (JIT warm-up of the agent, registry files in the page cache for both).
 * Then {@code --pulls} samples on each side, alternating which side goes first, so that whatever else the machine
 * does falls on both. The page cache keeps the registry's blobs in memory for both sides alike; nothing drops it.
 * Neither side has pigz here: both gunzip on one core (Java's zlib-backed GZIPInputStream, Go's compress/gzip).
 *
 * <p>Where the time goes: the two phases above on each side, and the CPU per pull of the agent versus containerd plus
 * ctr (ctr's from this JVM's reaped-children times), with the registry's and the control plane's beside them. The
 * two do not do quite the same work, and the figures include the differences:
 * <ul>
 * <li>Durability: the agent fsyncs each blob and its directory, the image record, each snapshot's metadata, the spec
 * and the Container record, and calls syncfs(2) once per unpacked layer, which flushes the whole file system its
 * root is on (here the one containerd's root and everything else on the machine write to as well). containerd 1.6
 * fsyncs each committed blob and its bolt database (fdatasync) and does not sync unpacked layers. Counted once by
 * hand with strace -f -c over whole pull-and-remove cycles of this image (not part of the benchmark): the agent
 * about 27 fsync and 2 syncfs calls per cycle, containerd about 5 fsync and 66 fdatasync.</li>
 * <li>Verification: both check every blob's digest while storing it, and hash each layer's uncompressed tar while
 * unpacking it, to check the config's diff ID.</li>
 * <li>Path of the bytes: the agent downloads straight into its content store; ctr downloads and streams the bytes
 * to containerd over gRPC, so they cross one more process boundary.</li>
 * <li>Fixed costs: Stevedore's include the API round trips (create, finalizer, status apply, watch events: about
 * container_ready's create_to_ready); containerd's include starting ctr (peer_ctr_version_p50).</li>
 * </ul>
 */
final class ImagePullColdScenario implements Scenario {
    private static final Logger LOG = LoggerFactory.getLogger(ImagePullColdScenario.class);
    private static final String NAMESPACE = "bench";
    private static final Duration EACH_AT_MOST = Duration.ofMinutes(10);
    private static final String PULLED = "pulled ";
    /** Any disk is over 1% used: the agent's image garbage collection removes each image once it is unused. */
    private static final List<String> KEEP_NO_UNUSED_IMAGE =
            List.of("--image-gc-high-threshold", "1", "--image-gc-low-threshold", "0");

    @Override
    public String name() {
        return "image_pull_cold";
    }

    @Override
    public String description() {
        return "cold pull + unpack of busybox plus a --layer-mib random layer (default 50), --pulls times (default 10), "
                + "Stevedore's agent vs containerd's ctr images pull";
    }

    /** One Stevedore sample, in ms, with the CPU per process it took. */
    private record StevedorePull(
            double totalMs, double fetchMs, double unpackMs, double removeMs, Map<String, Duration> cpu) {}

    /** One containerd sample. */
    private record ContainerdPull(
            Containerd.Pull pull, double removeMs, double ctrVersionMs, Map<String, Duration> cpu) {}

    @Override
    public List<Measurement> run(Settings settings) throws Exception {
        String prefix = name() + "_" + settings.layerMiB() + "mib_";
        Path root = Tools.repositoryRoot();
        Path work = Files.createTempDirectory("stevedore-bench-" + name() + "-");
        try (ControlPlane controlPlane = ControlPlane.startEphemeral(Tools.binDir());
                BenchRegistry registry = BenchRegistry.start(work.resolve("registry"))) {
            KubernetesClient client = controlPlane.adminClient();
            Crds.installStevedore(client);
            LOG.info("building the image: busybox plus {} MiB of random data", settings.layerMiB());
            BenchImages images = BenchImages.build(work.resolve("images"), settings.layerMiB());
            String image = registry.host() + "/bench/big:1";
            images.push(BenchImages.BIG, image);
            client.namespaces()
                    .resource(new NamespaceBuilder()
                            .withNewMetadata()
                            .withName(NAMESPACE)
                            .endMetadata()
                            .build())
                    .create();
            Path agentRoot = work.resolve("agent");
            try (Containerd containerd = Containerd.start(
                            work.resolve("containerd"),
                            root.resolve("bench/target/logs/" + name() + "-containerd.log"));
                    JvmProcess agent = AgentNode.start(
                            root,
                            controlPlane,
                            client,
                            settings.agentJvmOptions(),
                            agentRoot,
                            name(),
                            KEEP_NO_UNUSED_IMAGE);
                    ContainerWatch watch = new ContainerWatch(client, NAMESPACE)) {
                Map<String, ProcessHandle> processes = new LinkedHashMap<>();
                processes.put("agent", agent.handle());
                processes.put("containerd", containerd.handle());
                processes.put("registry", registry.handle());
                Sides sides = new Sides(
                        client,
                        watch,
                        agent,
                        new AgentLog(agent.log()),
                        agentRoot,
                        containerd,
                        new CpuUsage(processes),
                        image);
                return measure(settings, prefix, images, image, sides);
            }
        } finally {
            Commands.deleteTree(work);
        }
    }

    /** What one pull on either side needs. */
    private record Sides(
            KubernetesClient client,
            ContainerWatch watch,
            JvmProcess agent,
            AgentLog agentLog,
            Path agentRoot,
            Containerd containerd,
            CpuUsage cpu,
            String image) {}

    private List<Measurement> measure(Settings settings, String prefix, BenchImages images, String image, Sides sides)
            throws Exception {
        int count = settings.pulls();
        StevedorePull warmS = stevedore(sides, "warm-up");
        ContainerdPull warmC = containerd(sides);
        LOG.info(
                "warm-up: Stevedore {} ms, containerd {} ms",
                Math.round(warmS.totalMs()),
                Math.round(warmC.pull().wallMs()));

        List<StevedorePull> stevedore = new ArrayList<>();
        List<ContainerdPull> containerd = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            // Alternating which side goes first, so that neither always follows the other's garbage collection.
            if (i % 2 == 0) {
                stevedore.add(stevedore(sides, String.format("pull-%03d", i)));
                containerd.add(containerd(sides));
            } else {
                containerd.add(containerd(sides));
                stevedore.add(stevedore(sides, String.format("pull-%03d", i)));
            }
            LOG.info(
                    "pull {} of {}: Stevedore {} ms (fetch {}, unpack {}), containerd {} ms (fetch {}, unpack {})",
                    i + 1,
                    count,
                    Math.round(stevedore.get(i).totalMs()),
                    Math.round(stevedore.get(i).fetchMs()),
                    Math.round(stevedore.get(i).unpackMs()),
                    Math.round(containerd.get(i).pull().wallMs()),
                    Math.round(containerd.get(i).pull().fetchMs()),
                    Math.round(containerd.get(i).pull().unpackMs()));
        }

        String peer = "containerd";
        String version = Containerd.version();
        long bytes = images.pullBytes(BenchImages.BIG);
        double[] sTotal = stevedore.stream().mapToDouble(StevedorePull::totalMs).toArray();
        double[] cTotal =
                containerd.stream().mapToDouble(c -> c.pull().wallMs()).toArray();
        List<Measurement> results = new ArrayList<>();
        Measurement total = Measurement.compared(prefix + "create_to_ready", "ms", sTotal, peer, cTotal);
        results.add(total.with(
                        "what",
                        "Stevedore: Container create sent to Ready=True seen; containerd: ctr images pull, spawn to exit")
                .with("peer_version", version)
                .with("peer_command", sides.containerd().pullCommand())
                .with(
                        "image",
                        "busybox + " + settings.layerMiB() + " MiB random layer, "
                                + images.layerSizes(BenchImages.BIG).size() + " gzip layers")
                .with("image_bytes", bytes)
                .with("mib_per_s", Report.round(bytes / 1048576.0 / (total.p50() / 1000)))
                .with(
                        "peer_mib_per_s",
                        Report.round(bytes / 1048576.0 / (total.peer().p50() / 1000)))
                .with("reference", image)
                .with("warm_up", 1)
                .with("order", "alternating")
                .with("agent_jvm_options", String.join(" ", settings.agentJvmOptions())));
        results.add(Measurement.compared(
                        prefix + "fetch",
                        "ms",
                        stevedore.stream().mapToDouble(StevedorePull::fetchMs).toArray(),
                        peer,
                        containerd.stream().mapToDouble(c -> c.pull().fetchMs()).toArray())
                .with(
                        "what",
                        "Stevedore: create sent to the agent's 'pulled' log line (ms clock); containerd: ctr's wall time less its unpack")
                .with(
                        "peer_ctr_version_p50",
                        Report.round(percentile50(containerd.stream()
                                .mapToDouble(ContainerdPull::ctrVersionMs)
                                .toArray()))));
        results.add(
                Measurement.compared(
                                prefix + "unpack",
                                "ms",
                                stevedore.stream()
                                        .mapToDouble(StevedorePull::unpackMs)
                                        .toArray(),
                                peer,
                                containerd.stream()
                                        .mapToDouble(c -> c.pull().unpackMs())
                                        .toArray())
                        .with(
                                "what",
                                "Stevedore: 'pulled' log line to Ready seen (unpack, prepare, spec, status); containerd: ctr's 'done:' (unpack)"));
        results.add(
                Measurement.compared(
                                prefix + "remove",
                                "ms",
                                stevedore.stream()
                                        .mapToDouble(StevedorePull::removeMs)
                                        .toArray(),
                                peer,
                                containerd.stream()
                                        .mapToDouble(ContainerdPull::removeMs)
                                        .toArray())
                        .with(
                                "what",
                                "Stevedore: Container delete sent to gone (release, GC of image, blobs, snapshots); containerd: ctr images rm --sync"));

        double[] sCpu =
                stevedore.stream().mapToDouble(s -> millis(s.cpu(), "agent")).toArray();
        double[] cCpu = containerd.stream()
                .mapToDouble(c -> millis(c.cpu(), "containerd") + c.pull().ctrCpuMs())
                .toArray();
        Measurement cpu = Measurement.compared(prefix + "cpu_runtime", "ms", sCpu, peer, cCpu)
                .with("what", "CPU per pull: the agent process vs containerd plus the ctr process");
        cpu = cpu.with(
                        "peer_ctr_p50",
                        Report.round(percentile50(containerd.stream()
                                .mapToDouble(c -> c.pull().ctrCpuMs())
                                .toArray())))
                .with(
                        "peer_containerd_p50",
                        Report.round(percentile50(containerd.stream()
                                .mapToDouble(c -> millis(c.cpu(), "containerd"))
                                .toArray())));
        for (String other : List.of("registry", "kube-apiserver", "etcd", "bench")) {
            String key = other.replace('-', '_');
            cpu = cpu.with(
                    key + "_p50",
                    Report.round(percentile50(stevedore.stream()
                            .mapToDouble(s -> millis(s.cpu(), other))
                            .toArray())));
            if (!other.equals("kube-apiserver") && !other.equals("etcd")) {
                cpu = cpu.with(
                        "peer_" + key + "_p50",
                        Report.round(percentile50(containerd.stream()
                                .mapToDouble(c -> millis(c.cpu(), other))
                                .toArray())));
            }
        }
        results.add(cpu);
        return results;
    }

    /** Creates a Container of the image pinned to the node, waits for Ready, then deletes it and waits until it is gone. */
    private StevedorePull stevedore(Sides sides, String name) throws InterruptedException {
        String before = AgentNode.inventory(sides.agentRoot());
        if (!AgentNode.empty(before)) {
            throw new IllegalStateException("the agent's root is not empty before a cold pull: " + before);
        }
        sides.agentLog().skipToEnd();
        ContainerWatch.Tracked tracked = sides.watch().track(name);
        Map<String, Duration> cpuBefore = sides.cpu().snapshot();
        long wallCreated = System.currentTimeMillis();
        long created = System.nanoTime();
        sides.client()
                .resource(AgentNode.container(NAMESPACE, name, sides.image()))
                .create();
        long ready = ContainerWatch.await(
                tracked.ready, EACH_AT_MOST, "Container " + name + " Ready", sides.agent()::checkAlive);
        Map<String, Duration> cpu = CpuUsage.delta(cpuBefore, sides.cpu().snapshot());
        OptionalLong pulled = sides.agentLog().lastSince(PULLED);
        if (pulled.isEmpty()) {
            throw new IllegalStateException(
                    "Container " + name + " is Ready but the agent logged no 'pulled' line: was the image not cold?");
        }
        double totalMs = (ready - created) / 1e6;
        double fetchMs = pulled.getAsLong() - wallCreated;

        long deleted = System.nanoTime();
        sides.client()
                .resources(Container.class)
                .inNamespace(NAMESPACE)
                .withName(name)
                .delete();
        long gone = ContainerWatch.await(
                tracked.gone, EACH_AT_MOST, "Container " + name + " gone", sides.agent()::checkAlive);
        sides.watch().forget(name);
        return new StevedorePull(totalMs, fetchMs, totalMs - fetchMs, (gone - deleted) / 1e6, cpu);
    }

    /** One ctr images pull, then ctr images rm --sync. */
    private ContainerdPull containerd(Sides sides) {
        String before = sides.containerd().inventory();
        if (!Containerd.empty(before)) {
            throw new IllegalStateException("containerd's namespace is not empty before a cold pull: " + before);
        }
        double ctrVersionMs = sides.containerd().ctrVersionMs();
        Map<String, Duration> cpuBefore = sides.cpu().snapshot();
        Containerd.Pull pull = sides.containerd().pull(sides.image());
        Map<String, Duration> cpu = CpuUsage.delta(cpuBefore, sides.cpu().snapshot());
        double removeMs = sides.containerd().removeImage(sides.image());
        return new ContainerdPull(pull, removeMs, ctrVersionMs, cpu);
    }

    private static double millis(Map<String, Duration> cpu, String process) {
        return cpu.getOrDefault(process, Duration.ZERO).toNanos() / 1e6;
    }

    private static double percentile50(double[] samples) {
        return Measurement.of("p50", "ms", samples).p50();
    }
}
