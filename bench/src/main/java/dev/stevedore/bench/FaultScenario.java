package dev.stevedore.bench;

import dev.stevedore.api.v1alpha1.Container;
import dev.stevedore.api.v1alpha1.Task;
import dev.stevedore.api.v1alpha1.TaskStatus;
import dev.stevedore.testing.ControlPlane;
import dev.stevedore.testing.Crds;
import dev.stevedore.testing.Tools;
import io.fabric8.kubernetes.api.model.NamespaceBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.fabric8.kubernetes.client.utils.Serialization;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.ServerSocket;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Predicate;
import java.util.function.Supplier;
import java.util.stream.Collectors;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * faults: Container + Task lifecycles on a real control plane, a real operator and a real node agent (each a process
 * of its own) while, at points drawn from a seed, the agent and the operator are SIGKILLed and started again, the
 * API server is killed and held down a few seconds, and the agent's root file system is filled to the last byte.
 * Then it counts what containerd promises never happens:
 *
 * <ul>
 *   <li>lost exit codes: a Task whose command ran (it wrote its line, below) that did not end in phase Deleted with
 *       the exit code its command exits with ({@code exit <i mod 200>}), or a Task that never ended;
 *   <li>double starts: a command that ran twice. Each Container's command appends its Task's name to a file on a
 *       host bind mount before anything else; two lines for one name are two starts;
 *   <li>leaked processes, mounts, cgroups, records and snapshots: what is left on the node once every object is
 *       deleted and the agent has settled ({@link NodeLeaks}).
 * </ul>
 *
 * Containers and Tasks name no node: the operator schedules the Containers and binds the Tasks, so its kills count.
 * {@value #IN_FLIGHT} lifecycles are in flight at once; each is: create the Container and its Task (command: write
 * the line, sleep 0 to 2 s, exit), wait for phase Deleted, delete the Task, delete the Container. Every API call is
 * retried through the outages. A fault is due once a drawn number of lifecycles has ended, so faults spread over the
 * run however fast it goes. The agent's root is a tmpfs of the run's own, so filling it fills nothing else.
 */
final class FaultScenario implements Scenario {
    private static final Logger LOG = LoggerFactory.getLogger(FaultScenario.class);
    static final String NAMESPACE = "faults";
    static final int IN_FLIGHT = 4;
    private static final String OPERATOR_NAMESPACE = "stevedore-system";
    /** Room for busybox, its snapshots, and the logs and records of the tasks in flight, several times over. */
    private static final String DISK_SIZE = "64m";
    /** How long one step of a lifecycle may take, outages included, before the lifecycle is given up as stuck. */
    private static final Duration EACH_AT_MOST = Duration.ofMinutes(2);
    /** How long the node may take, once everything is deleted, to release what it holds before it is counted. */
    private static final Duration SETTLE_AT_MOST = Duration.ofMinutes(1);

    private static final Duration POLL = Duration.ofMillis(200);
    private static final String[] SLEEPS = {"0", "0.2", "0.5", "1", "2"};

    enum Fault {
        AGENT_KILL,
        OPERATOR_KILL,
        API_SERVER_RESTART,
        DISK_FILL
    }

    /** A fault and the number of ended lifecycles it waits for. */
    record Planned(int afterLifecycles, Fault fault) {}

    /** How one lifecycle ended: the Task's last status seen before it was deleted, or where it got stuck. */
    record Outcome(String name, String uid, int exitCode, TaskStatus last, String stuck) {
        boolean exitRecorded() {
            return stuck == null
                    && last != null
                    && last.phase() == TaskStatus.Phase.Deleted
                    && last.exitCode() != null
                    && last.exitCode() == exitCode;
        }
    }

    /** The counts of a run. */
    record Counts(
            int lifecycles,
            Map<Fault, Integer> injected,
            int lostExitCodes,
            int doubleStarts,
            int failedStarts,
            int agentCrashes,
            NodeLeaks leaks,
            int objectsLeft) {}

    @Override
    public String name() {
        return "faults";
    }

    @Override
    public String description() {
        return "--lifecycles Container + Task lifecycles (default 500) while the agent, the operator and the API "
                + "server are killed and the agent's disk filled; counts lost exits, double starts and leaks";
    }

    @Override
    public List<Measurement> run(Settings settings) throws Exception {
        Counts counts = runCounted(settings);
        return measurements(settings.faults(), counts);
    }

    /** Runs the plan of {@code settings} and counts; the IT asserts on these. */
    static Counts runCounted(Settings settings) throws Exception {
        FaultPlan plan = settings.faults();
        LOG.info(
                "faults: seed {} (--seed {} repeats this plan): {} lifecycles, {} agent kills, {} operator kills, "
                        + "{} API-server restarts, {} disk fills",
                plan.seed(),
                plan.seed(),
                plan.lifecycles(),
                plan.agentKills(),
                plan.operatorKills(),
                plan.apiServerRestarts(),
                plan.diskFills());
        Path root = Tools.repositoryRoot();
        Path work = Files.createTempDirectory("stevedore-bench-faults-");
        Path disk = work.resolve("disk");
        Files.createDirectories(disk);
        Commands.run("mount", "-t", "tmpfs", "-o", "size=" + DISK_SIZE + ",mode=0711", "tmpfs", disk.toString());
        try (ControlPlane controlPlane = ControlPlane.startEphemeral(Tools.binDir());
                BenchRegistry registry = BenchRegistry.start(work.resolve("registry"))) {
            KubernetesClient client = controlPlane.adminClient();
            Crds.installStevedore(client);
            BenchImages images = BenchImages.build(work.resolve("images"), 0);
            String image = registry.host() + "/bench/busybox:1";
            images.push(BenchImages.BASE, image);
            // privileged: the Containers bind-mount the host directory of the starts file.
            client.namespaces()
                    .resource(new NamespaceBuilder()
                            .withNewMetadata()
                            .withName(NAMESPACE)
                            .addToLabels("security.stevedore.dev/enforce", "privileged")
                            .endMetadata()
                            .build())
                    .create();
            // The operator's own namespace: it keeps the Secret of its pull-credentials endpoint there.
            client.namespaces()
                    .resource(new NamespaceBuilder()
                            .withNewMetadata()
                            .withName(OPERATOR_NAMESPACE)
                            .endMetadata()
                            .build())
                    .create();
            Path starts = work.resolve("starts");
            Files.createDirectories(starts);
            Run run = new Run(settings, plan, root, controlPlane, client, image, disk, work.resolve("state"), starts);
            try {
                return run.execute();
            } finally {
                run.close();
            }
        } finally {
            Commands.execute(List.of("umount", "-l", disk.toString()));
            Commands.deleteTree(work);
        }
    }

    private static List<Measurement> measurements(FaultPlan plan, Counts counts) {
        List<Measurement> results = new ArrayList<>();
        results.add(count("lifecycles", counts.lifecycles())
                .with("seed", plan.seed())
                .with("in_flight", IN_FLIGHT)
                .with("failed_starts", counts.failedStarts())
                .with("agent_crashes", counts.agentCrashes())
                .with("objects_left", counts.objectsLeft()));
        results.add(count("agent_kills", counts.injected().get(Fault.AGENT_KILL)));
        results.add(count("operator_kills", counts.injected().get(Fault.OPERATOR_KILL)));
        results.add(count("apiserver_restarts", counts.injected().get(Fault.API_SERVER_RESTART)));
        results.add(count("disk_fills", counts.injected().get(Fault.DISK_FILL)));
        results.add(count("lost_exit_codes", counts.lostExitCodes()));
        results.add(count("double_starts", counts.doubleStarts()));
        NodeLeaks leaks = counts.leaks();
        results.add(count("leaked_processes", leaks.processes().size()).with("which", leaks.processes()));
        results.add(count("leaked_mounts", leaks.mounts().size()).with("which", leaks.mounts()));
        results.add(count("leaked_cgroups", leaks.cgroups().size()).with("which", leaks.cgroups()));
        results.add(count("leaked_records", leaks.records().size()).with("which", leaks.records()));
        results.add(count("leaked_snapshots", leaks.snapshots().size()).with("which", leaks.snapshots()));
        return results;
    }

    private static Measurement count(String name, int value) {
        return Measurement.single(name, "count", value);
    }

    /** The plan's faults, each due after a drawn number of ended lifecycles, in the order they are due. */
    static List<Planned> schedule(FaultPlan plan, Random random) {
        List<Planned> planned = new ArrayList<>();
        // Early enough that the last ones still meet lifecycles in flight.
        int span = Math.max(1, plan.lifecycles() - IN_FLIGHT);
        Map<Fault, Integer> counts = Map.of(
                Fault.AGENT_KILL, plan.agentKills(),
                Fault.OPERATOR_KILL, plan.operatorKills(),
                Fault.API_SERVER_RESTART, plan.apiServerRestarts(),
                Fault.DISK_FILL, plan.diskFills());
        for (Fault fault : Fault.values()) {
            for (int i = 0; i < counts.get(fault); i++) {
                planned.add(new Planned(random.nextInt(span), fault));
            }
        }
        planned.sort((a, b) -> a.afterLifecycles() != b.afterLifecycles()
                ? Integer.compare(a.afterLifecycles(), b.afterLifecycles())
                : a.fault().compareTo(b.fault()));
        return planned;
    }

    /** One run: its components, its lifecycles and its faults. */
    private static final class Run implements AutoCloseable {
        private final FaultPlan plan;
        private final ControlPlane controlPlane;
        private final KubernetesClient client;
        private final String image;
        private final Path disk;
        private final Path agentRoot;
        private final Path stateDir;
        private final Path starts;
        private final Restartable agent;
        private final Restartable operator;
        private final AtomicInteger ended = new AtomicInteger();
        private final ConcurrentLinkedQueue<String> uids = new ConcurrentLinkedQueue<>();
        private final Map<Fault, Integer> injected = Collections.synchronizedMap(new TreeMap<>());
        private volatile boolean lifecyclesDone;

        Run(
                Settings settings,
                FaultPlan plan,
                Path repositoryRoot,
                ControlPlane controlPlane,
                KubernetesClient client,
                String image,
                Path disk,
                Path stateDir,
                Path starts) {
            this.plan = plan;
            this.controlPlane = controlPlane;
            this.client = client;
            this.image = image;
            this.disk = disk;
            this.agentRoot = disk.resolve("root");
            this.stateDir = stateDir;
            this.starts = starts;
            for (Fault fault : Fault.values()) {
                injected.put(fault, 0);
            }
            // A directory per run (named as its work directory), so runs side by side keep their logs apart.
            Path logs = repositoryRoot
                    .resolve("bench/target/logs")
                    .resolve(disk.getParent().getFileName());
            // Image GC at 1% and 0%: an image goes as soon as no Container uses it, so the garbage collector runs
            // while Containers come and go, and whatever snapshot is left at the end is a leak, not a cache.
            List<String> agentArgs = List.of(
                    "--root", agentRoot.toString(),
                    "--state-dir", stateDir.toString(),
                    "--allow-host-path", starts.toString(),
                    "--image-gc-high-threshold", "1",
                    "--image-gc-low-threshold", "0");
            this.agent = new Restartable(
                    "agent",
                    n -> AgentNode.launch(
                            repositoryRoot,
                            controlPlane,
                            settings.agentJvmOptions(),
                            agentArgs,
                            logs.resolve("agent-" + n + ".log")));
            List<String> operatorArgs = List.of("--no-leader-elect", "--pull-credentials-port=" + freePort());
            this.operator = new Restartable(
                    "operator",
                    n -> JvmProcess.operator(
                            repositoryRoot,
                            controlPlane.kubeconfig(),
                            settings.operatorJvmOptions(),
                            operatorArgs,
                            logs.resolve("operator-" + n + ".log")));
        }

        Counts execute() throws Exception {
            AgentNode.awaitReady(agent.start(), client);
            operator.start();
            Random random = new Random(plan.seed());
            List<Planned> planned = schedule(plan, random);
            LOG.info("faults planned (after so many lifecycles ended): {}", planned);
            ExecutorService workers = Executors.newFixedThreadPool(IN_FLIGHT + 1);
            try {
                AtomicInteger next = new AtomicInteger();
                List<Future<List<Outcome>>> lanes = new ArrayList<>();
                for (int w = 0; w < IN_FLIGHT; w++) {
                    lanes.add(workers.submit(() -> {
                        List<Outcome> outcomes = new ArrayList<>();
                        for (int i = next.getAndIncrement(); i < plan.lifecycles(); i = next.getAndIncrement()) {
                            outcomes.add(lifecycle(i));
                            int done = ended.incrementAndGet();
                            if (done % 25 == 0) {
                                LOG.info(
                                        "{} of {} lifecycles ended; faults so far {}",
                                        done,
                                        plan.lifecycles(),
                                        injected);
                            }
                        }
                        return outcomes;
                    }));
                }
                Future<?> faults = workers.submit(() -> {
                    injectFaults(planned, new Random(random.nextLong()));
                    return null;
                });
                List<Outcome> outcomes = new ArrayList<>();
                for (Future<List<Outcome>> lane : lanes) {
                    outcomes.addAll(lane.get());
                }
                lifecyclesDone = true;
                faults.get();
                return count(outcomes);
            } finally {
                lifecyclesDone = true;
                workers.shutdownNow();
            }
        }

        private Counts count(List<Outcome> outcomes) throws IOException, InterruptedException {
            agent.restartIfExited();
            operator.restartIfExited();
            int objectsLeft = deleteEverythingLeft();
            NodeLeaks leaks = NodeLeaks.find(agentRoot, stateDir, List.copyOf(uids));
            long deadline = System.nanoTime() + SETTLE_AT_MOST.toNanos();
            while (!leaks.none() && System.nanoTime() < deadline) {
                Thread.sleep(1000);
                leaks = NodeLeaks.find(agentRoot, stateDir, List.copyOf(uids));
            }
            Map<String, Long> lines = startLines();
            int lost = 0;
            int failedStarts = 0;
            for (Outcome o : outcomes) {
                boolean ran = lines.containsKey(o.name());
                if (!ran && o.stuck() == null && o.last() != null && o.last().phase() == TaskStatus.Phase.Deleted) {
                    failedStarts++;
                    LOG.info(
                            "{} did not start: {}: {}",
                            o.name(),
                            o.last().reason(),
                            o.last().message());
                } else if (!o.exitRecorded()) {
                    lost++;
                    LOG.warn(
                            "lost exit code: {} (uid {}) exits {}, ran {}; {}",
                            o.name(),
                            o.uid(),
                            o.exitCode(),
                            ran,
                            o.stuck() != null ? "stuck: " + o.stuck() : "last status " + o.last());
                }
            }
            List<String> doubles = lines.entrySet().stream()
                    .filter(e -> e.getValue() > 1)
                    .map(Map.Entry::getKey)
                    .toList();
            doubles.forEach(name -> LOG.warn("double start: {} wrote its line {} times", name, lines.get(name)));
            LOG.info("left on the node: {}", leaks);
            return new Counts(
                    outcomes.size(),
                    Map.copyOf(injected),
                    lost,
                    doubles.size(),
                    failedStarts,
                    agent.unexpectedExits(),
                    leaks,
                    objectsLeft);
        }

        /** The lines of the starts file, counted by Task name. */
        private Map<String, Long> startLines() throws IOException {
            Path file = starts.resolve("starts");
            if (!Files.exists(file)) {
                return Map.of();
            }
            return Files.readAllLines(file).stream()
                    .map(String::strip)
                    .filter(l -> !l.isEmpty())
                    .collect(Collectors.groupingBy(l -> l, Collectors.counting()));
        }

        /** Deletes the Tasks and Containers stuck lifecycles left; returns how many are still there after a while. */
        private int deleteEverythingLeft() throws InterruptedException {
            retrying(
                    "deleting the Tasks left",
                    () -> client.resources(Task.class).inNamespace(NAMESPACE).delete());
            retrying(
                    "deleting the Containers left",
                    () -> client.resources(Container.class)
                            .inNamespace(NAMESPACE)
                            .delete());
            long deadline = System.nanoTime() + EACH_AT_MOST.toNanos();
            int left;
            do {
                left = retrying(
                        "listing what is left",
                        () -> client.resources(Task.class)
                                        .inNamespace(NAMESPACE)
                                        .list()
                                        .getItems()
                                        .size()
                                + client.resources(Container.class)
                                        .inNamespace(NAMESPACE)
                                        .list()
                                        .getItems()
                                        .size());
                if (left > 0) {
                    Thread.sleep(POLL.toMillis());
                }
            } while (left > 0 && System.nanoTime() < deadline);
            if (left > 0) {
                LOG.warn("{} Tasks and Containers still there {} after they were deleted", left, EACH_AT_MOST);
            }
            return left;
        }

        private Outcome lifecycle(int i) throws InterruptedException {
            String name = String.format("f-%04d", i);
            int exitCode = i % 200;
            String sleep = SLEEPS[new Random(plan.seed() + i).nextInt(SLEEPS.length)];
            String yaml = """
                    apiVersion: stevedore.dev/v1alpha1
                    kind: Container
                    metadata: {name: %s, namespace: %s}
                    spec:
                      image: %s
                      process: {args: [sh, -c, 'echo %s >> /faults/starts; sleep %s; exit %d']}
                      mounts: [{type: bind, source: %s, destination: /faults, options: [rbind, rw]}]
                    """.formatted(name, NAMESPACE, image, name, sleep, exitCode, starts);
            Container container = Serialization.unmarshal(yaml, Container.class);
            Task task = Serialization.unmarshal("""
                    apiVersion: stevedore.dev/v1alpha1
                    kind: Task
                    metadata: {name: %s, namespace: %s}
                    spec: {container: %s, stopGracePeriodSeconds: 0}
                    """.formatted(name, NAMESPACE, name), Task.class);
            Task[] last = {null};
            try {
                createIfAbsent(() -> client.resource(container).create());
                createIfAbsent(() -> client.resource(task).create());
                await("Task " + name + " Deleted", () -> taskNamed(name), t -> {
                    if (last[0] == null) {
                        uids.add(t.getMetadata().getUid());
                    }
                    last[0] = t;
                    return t.getStatus() != null && t.getStatus().phase() == TaskStatus.Phase.Deleted;
                });
                if (last[0] == null) {
                    throw new Stuck("Task " + name + " gone before it was seen");
                }
                TaskStatus ended = last[0].getStatus();
                retrying(
                        "deleting Task " + name,
                        () -> client.resources(Task.class)
                                .inNamespace(NAMESPACE)
                                .withName(name)
                                .delete());
                await("Task " + name + " gone", () -> taskNamed(name), t -> false);
                retrying(
                        "deleting Container " + name,
                        () -> client.resources(Container.class)
                                .inNamespace(NAMESPACE)
                                .withName(name)
                                .delete());
                await(
                        "Container " + name + " gone",
                        () -> client.resources(Container.class)
                                .inNamespace(NAMESPACE)
                                .withName(name)
                                .get(),
                        c -> false);
                return new Outcome(name, uid(last[0]), exitCode, ended, null);
            } catch (Stuck e) {
                LOG.warn("lifecycle {} stuck: {}", name, e.getMessage());
                return new Outcome(
                        name, uid(last[0]), exitCode, last[0] == null ? null : last[0].getStatus(), e.getMessage());
            }
        }

        private static String uid(Task task) {
            return task == null ? null : task.getMetadata().getUid();
        }

        private Task taskNamed(String name) {
            return client.resources(Task.class)
                    .inNamespace(NAMESPACE)
                    .withName(name)
                    .get();
        }

        /** Waits until {@code read} gives null (gone) or an object {@code done} accepts; through outages. */
        private <T> void await(String what, Supplier<T> read, Predicate<T> done) throws InterruptedException {
            long deadline = System.nanoTime() + EACH_AT_MOST.toNanos();
            while (true) {
                T current = retrying(what, read);
                if (current == null || done.test(current)) {
                    return;
                }
                if (System.nanoTime() > deadline) {
                    throw new Stuck("after " + EACH_AT_MOST + ", still waiting for " + what);
                }
                Thread.sleep(POLL.toMillis());
            }
        }

        private void createIfAbsent(Supplier<?> create) throws InterruptedException {
            retrying("creating", () -> {
                try {
                    return create.get();
                } catch (KubernetesClientException e) {
                    if (e.getCode() == 409) {
                        return null; // an earlier attempt landed, though its answer was lost in an outage
                    }
                    throw e;
                }
            });
        }

        /** Calls the API until it answers: through API-server outages, and while the CRDs' endpoints come back. */
        private <T> T retrying(String what, Supplier<T> call) throws InterruptedException {
            long deadline = System.nanoTime() + EACH_AT_MOST.toNanos();
            while (true) {
                try {
                    return call.get();
                } catch (KubernetesClientException e) {
                    if (e.getCode() >= 400 && e.getCode() < 500 && e.getCode() != 404 && e.getCode() != 429) {
                        throw e;
                    }
                    if (System.nanoTime() > deadline) {
                        throw new Stuck(what + ": the API server did not answer for " + EACH_AT_MOST + ": " + e);
                    }
                    Thread.sleep(POLL.toMillis());
                }
            }
        }

        private void injectFaults(List<Planned> planned, Random random) throws Exception {
            int index = 0;
            while (!lifecyclesDone) {
                agent.restartIfExited();
                operator.restartIfExited();
                if (index < planned.size() && ended.get() >= planned.get(index).afterLifecycles()) {
                    Thread.sleep(random.nextInt(1000)); // anywhere in the lifecycles in flight
                    inject(planned.get(index++).fault(), random);
                } else {
                    Thread.sleep(50);
                }
            }
            if (index < planned.size()) {
                LOG.warn(
                        "{} of {} faults were still due when the lifecycles ended",
                        planned.size() - index,
                        planned.size());
            }
        }

        private void inject(Fault fault, Random random) throws Exception {
            LOG.info("fault: {} after {} lifecycles ended", fault, ended.get());
            switch (fault) {
                case AGENT_KILL -> {
                    agent.kill();
                    Thread.sleep(random.nextInt(2000));
                    agent.start();
                }
                case OPERATOR_KILL -> {
                    operator.kill();
                    Thread.sleep(random.nextInt(2000));
                    operator.start();
                }
                case API_SERVER_RESTART -> {
                    controlPlane.stopApiServer();
                    Thread.sleep(2000 + random.nextInt(4000));
                    controlPlane.startApiServer();
                }
                case DISK_FILL -> fillDisk(2000 + random.nextInt(4000));
            }
            injected.merge(fault, 1, Integer::sum);
        }

        /** Fills the agent's tmpfs to the last byte with a file of its own, holds it full, and deletes the file. */
        private void fillDisk(long holdMillis) throws IOException, InterruptedException {
            Path filler = disk.resolve("filler");
            long written = 0;
            ByteBuffer mebibyte = ByteBuffer.allocate(1 << 20);
            try (FileChannel out = FileChannel.open(filler, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
                while (true) {
                    mebibyte.clear();
                    written += out.write(mebibyte);
                }
            } catch (IOException full) {
                if (!String.valueOf(full.getMessage()).contains("No space left")) {
                    Files.deleteIfExists(filler);
                    throw full;
                }
            }
            try {
                LOG.info("disk full: {} MiB written to {}; holding it {} ms", written >> 20, filler, holdMillis);
                Thread.sleep(holdMillis);
            } finally {
                Files.delete(filler);
            }
        }

        @Override
        public void close() {
            agent.close();
            operator.close();
            NodeLeaks.cleanUp(agentRoot, stateDir, List.copyOf(uids));
        }
    }

    /** A lifecycle step that did not happen in time. */
    static final class Stuck extends RuntimeException {
        Stuck(String message) {
            super(message);
        }
    }

    private static int freePort() {
        try (ServerSocket socket = new ServerSocket(0)) {
            return socket.getLocalPort();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
