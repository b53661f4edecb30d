package dev.stevedore.bench;

import dev.stevedore.api.v1alpha1.Container;
import dev.stevedore.api.v1alpha1.Task;
import dev.stevedore.testing.CniBridgeNetwork;
import dev.stevedore.testing.ControlPlane;
import dev.stevedore.testing.Crds;
import dev.stevedore.testing.Tools;
import io.fabric8.kubernetes.api.model.NamespaceBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.utils.Serialization;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.time.OffsetDateTime;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The Task scenarios. Common set-up: a real control plane with Stevedore's CRDs, a loopback registry with the busybox
 * image, the node agent as a JVM of its own (RuntimeNode {@value AgentNode#NODE}, no operator: Containers and Tasks
 * name the node), and, where there is a peer, Debian's containerd of the benchmark's own (own root, state, socket),
 * driven with ctr. A Container "keep" pulls the image into the agent first and stays, and containerd pulls it too,
 * so the image is cached on both sides before anything is measured.
 */
final class TaskScenarios {
    private static final Logger LOG = LoggerFactory.getLogger(TaskScenarios.class);
    static final String NAMESPACE = "bench";
    private static final Duration EACH_AT_MOST = Duration.ofMinutes(2);

    private TaskScenarios() {}

    /** What a Task scenario runs against. */
    record Node(
            KubernetesClient client,
            JvmProcess agent,
            Path agentRoot,
            TaskWatch tasks,
            ContainerWatch containers,
            Containerd containerd,
            String image,
            BenchNetwork network) {

        /** A Container on the node's default network: none, unless the scenario gave the agent one. */
        void createContainer(String name, String argsYaml) {
            createContainer(name, argsYaml, null);
        }

        /** @param networkMode its network.mode (cni, none), null for none given */
        void createContainer(String name, String argsYaml, String networkMode) {
            String yaml = """
                    apiVersion: stevedore.dev/v1alpha1
                    kind: Container
                    metadata: {name: %s, namespace: %s}
                    spec:
                      image: %s
                      nodeName: %s
                      process: {args: %s}
                    """.formatted(name, NAMESPACE, image, AgentNode.NODE, argsYaml)
                    + (networkMode == null ? "" : "  network: {mode: " + networkMode + "}\n");
            client.resource(Serialization.unmarshal(yaml, Container.class)).create();
        }

        Task createTask(String name, String container) {
            String yaml = """
                    apiVersion: stevedore.dev/v1alpha1
                    kind: Task
                    metadata: {name: %s, namespace: %s}
                    spec:
                      container: %s
                      nodeName: %s
                      stopGracePeriodSeconds: 0
                    """.formatted(name, NAMESPACE, container, AgentNode.NODE);
            return client.resource(Serialization.unmarshal(yaml, Task.class)).create();
        }

        /** Deletes the Task (stopGracePeriodSeconds 0: SIGKILL at once) and waits until the watch reports it gone. */
        void deleteTask(String name) throws InterruptedException {
            TaskWatch.Tracked t = tasks.tracked(name);
            client.resources(Task.class).inNamespace(NAMESPACE).withName(name).delete();
            awaitSeen(t.gone, "Task " + name + " gone");
            tasks.forget(name);
        }

        void deleteContainer(String name) throws InterruptedException {
            ContainerWatch.Tracked t = containers.tracked(name);
            client.resources(Container.class)
                    .inNamespace(NAMESPACE)
                    .withName(name)
                    .delete();
            ContainerWatch.await(t.gone, EACH_AT_MOST, "Container " + name + " gone", agent::checkAlive);
            containers.forget(name);
        }

        TaskWatch.Seen awaitSeen(java.util.concurrent.CompletableFuture<TaskWatch.Seen> event, String what)
                throws InterruptedException {
            java.util.concurrent.CompletableFuture<Long> nanos = event.thenApply(TaskWatch.Seen::nanos);
            ContainerWatch.await(nanos, EACH_AT_MOST, what, agent::checkAlive);
            return event.join();
        }

        /** conmon processes of this agent (their command lines name its root). */
        List<ProcessHandle> conmons() {
            return processes(c -> c.endsWith("/conmon"), agentRoot.toString());
        }

        List<ProcessHandle> shims() {
            return processes(
                    c -> c.endsWith("/containerd-shim-runc-v2"),
                    containerd.dir().toString());
        }

        String leftovers() {
            String agentSide = conmons().size() + " conmon, " + mountsUnder(agentRoot) + " agent mounts, agent holds "
                    + AgentNode.inventory(agentRoot) + " (the keep Container's)";
            return containerd == null
                    ? agentSide
                    : agentSide + "; " + shims().size() + " shims, " + mountsUnder(containerd.dir())
                            + " containerd mounts, containerd holds " + containerd.taskInventory();
        }
    }

    static List<ProcessHandle> processes(java.util.function.Predicate<String> command, String argContains) {
        return ProcessHandle.allProcesses()
                .filter(p -> p.info().command().map(command::test).orElse(false))
                .filter(p -> String.join(" ", p.info().arguments().orElse(new String[0]))
                        .contains(argContains))
                .toList();
    }

    static long mountsUnder(Path dir) {
        try {
            return Files.readAllLines(Path.of("/proc/self/mounts")).stream()
                    .filter(l -> l.split(" ")[1].startsWith(dir.toString()))
                    .count();
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    /** VmRSS of a process in bytes (0 when it has gone). */
    static long rss(long pid) {
        try {
            return JvmProcess.ProcStatus.kibibytes(pid, "VmRSS") * 1024;
        } catch (RuntimeException gone) {
            return 0;
        }
    }

    /** Pss of a process in bytes, from smaps_rollup (shared pages divided among their users; 0 when gone). */
    static long pss(long pid) {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/" + pid + "/smaps_rollup"))) {
                if (line.startsWith("Pss:")) {
                    return Long.parseLong(line.replaceAll("[^0-9]", "")) * 1024;
                }
            }
            return 0;
        } catch (IOException gone) {
            return 0;
        }
    }

    interface Body {
        List<Measurement> run(Node node) throws Exception;
    }

    /** Sets everything up, runs {@code body}, tears everything down. */
    static List<Measurement> withNode(Settings settings, String scenario, boolean withContainerd, Body body)
            throws Exception {
        return withNode(settings, scenario, withContainerd, false, body);
    }

    /** @param withNetwork whether the agent (and ctr, with --cni) get a {@link BenchNetwork} */
    static List<Measurement> withNode(
            Settings settings, String scenario, boolean withContainerd, boolean withNetwork, Body body)
            throws Exception {
        Path root = Tools.repositoryRoot();
        Path work = Files.createTempDirectory("stevedore-bench-" + scenario + "-");
        try (ControlPlane controlPlane = ControlPlane.startEphemeral(Tools.binDir());
                BenchRegistry registry = BenchRegistry.start(work.resolve("registry"))) {
            KubernetesClient client = controlPlane.adminClient();
            Crds.installStevedore(client);
            BenchImages images = BenchImages.build(work.resolve("images"), 0);
            String image = registry.host() + "/bench/busybox:1";
            images.push(BenchImages.BASE, image);
            client.namespaces()
                    .resource(new NamespaceBuilder()
                            .withNewMetadata()
                            .withName(NAMESPACE)
                            .endMetadata()
                            .build())
                    .create();
            Path agentRoot = work.resolve("agent");
            try (BenchNetwork network = withNetwork ? BenchNetwork.create(work.resolve("cni")) : null;
                    Containerd containerd = withContainerd
                            ? Containerd.start(
                                    work.resolve("containerd"),
                                    root.resolve("bench/target/logs/" + scenario + "-containerd.log"))
                            : null;
                    JvmProcess agent = AgentNode.start(
                            root,
                            controlPlane,
                            client,
                            settings.agentJvmOptions(),
                            agentRoot,
                            scenario,
                            network == null ? List.of() : network.agentFlags());
                    TaskWatch tasks = new TaskWatch(client, NAMESPACE);
                    ContainerWatch containers = new ContainerWatch(client, NAMESPACE)) {
                Node node = new Node(client, agent, agentRoot, tasks, containers, containerd, image, network);
                ContainerWatch.Tracked keep = containers.track("keep");
                node.createContainer("keep", "[sleep, '3600']");
                ContainerWatch.await(keep.ready, EACH_AT_MOST, "Container keep Ready", agent::checkAlive);
                if (containerd != null) {
                    containerd.pull(image);
                }
                LOG.info("image cached: agent holds {}", AgentNode.inventory(agentRoot));
                return body.run(node);
            }
        } finally {
            Commands.deleteTree(work);
        }
    }

    static double[] millis(List<Double> samples) {
        return samples.stream().mapToDouble(Double::doubleValue).toArray();
    }

    /**
     * task_start: a Container and its Task (sleep 3600) created together, image cached on the node, to phase Running
     * seen by a watch on Tasks; then the Task is deleted (stopGracePeriodSeconds 0: SIGKILL) and, once gone, the
     * Container, before the next. Peer, alternating in the same run: {@code ctr run -d --seccomp --snapshotter overlayfs IMAGE
     * ID sleep 3600} (the container with its snapshot, then the task: a containerd-shim-runc-v2 and runc create/start),
     * spawn to exit of ctr; then ctr task kill -s SIGKILL, ctr task rm -f, ctr c rm. Beside the total, the median time
     * from create to each stage the watches saw on the way (stages_p50_ms): the agent's finalizer on the Container and
     * on the Task, the Container Ready, the Task Running.
     */
    static final class Start implements Scenario {
        /**
         * Unmeasured cycles on each side first: a node sees the long-running agent after its JIT compiler has done
         * most of its work (on 2 cores its compilations still take 15-20 ms of CPU per cycle after 200 cycles).
         */
        private static final int WARM_UP = 100;

        @Override
        public String name() {
            return "task_start";
        }

        @Override
        public String description() {
            return "Container + Task (sleep 3600) created together to Running seen, --tasks times (default 100), vs ctr run -d;"
                    + " and the same on a CNI bridge network vs ctr run -d --cni";
        }

        @Override
        public List<Measurement> run(Settings settings) throws Exception {
            return withNode(settings, name(), true, true, node -> measure(settings, node));
        }

        private List<Measurement> measure(Settings settings, Node node) throws Exception {
            int count = settings.tasks();
            CpuUsage cpu = new CpuUsage(Map.of(
                    "agent",
                    node.agent().handle(),
                    "containerd",
                    node.containerd().handle()));
            for (int i = 0; i < WARM_UP; i++) {
                stevedore(node, String.format("warm-%02d", i), new LinkedHashMap<>(), false);
                containerd(node, String.format("warm-%02d", i), false);
                stevedore(node, String.format("warm-n-%02d", i), new LinkedHashMap<>(), true);
                containerd(node, String.format("warm-n-%02d", i), true);
            }
            List<Double> sn = new ArrayList<>();
            List<Double> cn = new ArrayList<>();
            Map<String, List<Double>> networkedStages = new LinkedHashMap<>();
            List<Double> s = new ArrayList<>();
            List<Double> c = new ArrayList<>();
            Map<String, Duration> sCpu = new LinkedHashMap<>();
            Map<String, Duration> cCpu = new LinkedHashMap<>();
            Map<String, List<Double>> stages = new LinkedHashMap<>();
            long ctrCpu = 0;
            for (int i = 0; i < count; i++) {
                String name = String.format("t-%05d", i);
                double one;
                Containerd.Run run;
                Map<String, Duration> before;
                String networked = String.format("n-%05d", i);
                if (i % 2 == 0) {
                    before = cpu.snapshot();
                    one = stevedore(node, name, stages, false);
                    CpuUsage.accumulate(sCpu, CpuUsage.delta(before, cpu.snapshot()));
                    before = cpu.snapshot();
                    run = containerd(node, name, false);
                    CpuUsage.accumulate(cCpu, CpuUsage.delta(before, cpu.snapshot()));
                    sn.add(stevedore(node, networked, networkedStages, true));
                    cn.add(containerd(node, networked, true).wallMs());
                } else {
                    before = cpu.snapshot();
                    run = containerd(node, name, false);
                    CpuUsage.accumulate(cCpu, CpuUsage.delta(before, cpu.snapshot()));
                    before = cpu.snapshot();
                    one = stevedore(node, name, stages, false);
                    CpuUsage.accumulate(sCpu, CpuUsage.delta(before, cpu.snapshot()));
                    cn.add(containerd(node, networked, true).wallMs());
                    sn.add(stevedore(node, networked, networkedStages, true));
                }
                s.add(one);
                c.add(run.wallMs());
                ctrCpu += run.ctrCpuMs();
                if ((i + 1) % 25 == 0) {
                    LOG.info(
                            "{} of {}: Stevedore {} ms, containerd {} ms",
                            i + 1,
                            count,
                            Math.round(one),
                            Math.round(run.wallMs()));
                }
            }
            String left = node.leftovers();
            LOG.info("done; left: {}", left);
            String prefix = name() + "_" + Settings.sizeLabel(count) + "_";
            List<Measurement> results = new ArrayList<>();
            results.add(Measurement.compared(prefix + "create_to_running", "ms", millis(s), "containerd", millis(c))
                    .with(
                            "what",
                            "Stevedore: Container+Task create sent to Task phase Running seen by a watch; "
                                    + "containerd: ctr run -d, spawn to exit")
                    .with("peer_version", Containerd.version())
                    .with("peer_command", node.containerd().runCommand())
                    .with("image", "busybox, cached on both")
                    .with("sequential", true)
                    .with("warm_up", WARM_UP)
                    .with("order", "alternating")
                    .with("left_after", left)
                    .with("stages_p50_ms", medians(stages))
                    .with("agent_jvm_options", String.join(" ", settings.agentJvmOptions())));
            results.add(Measurement.compared(
                            prefix + "networked_create_to_running", "ms", millis(sn), "containerd", millis(cn))
                    .with(
                            "what",
                            "as create_to_running, both on one CNI configuration list (bridge with host-local, portmap; "
                                    + "loopback first): Stevedore network.mode cni (a network namespace, CNI ADD, then "
                                    + "the runtime's create), containerd ctr run -d --cni (ADD between the task's create "
                                    + "and start), interleaved with the unnetworked cycles")
                    .with("peer_version", Containerd.version())
                    .with("peer_command", node.containerd().runCommand(node.network()))
                    .with("peer_enter_ms_p50", Report.round(node.network().enterCost(50)))
                    .with(
                            "unnetworked_p50_ms",
                            Report.round(Measurement.of("s", "ms", millis(s)).p50()))
                    .with("cni_plugins", "Debian containernetworking-plugins in " + CniBridgeNetwork.DEBIAN_PLUGINS)
                    .with("stages_p50_ms", medians(networkedStages)));
            Map<String, Object> sPer = new LinkedHashMap<>();
            sCpu.forEach((k, v) -> sPer.put(k.replace('-', '_'), Report.round(v.toNanos() / 1e6 / count)));
            Map<String, Object> cPer = new LinkedHashMap<>();
            cCpu.forEach((k, v) -> cPer.put(k.replace('-', '_'), Report.round(v.toNanos() / 1e6 / count)));
            cPer.put("ctr", Report.round((double) ctrCpu / count));
            double agentMs = sCpu.getOrDefault("agent", Duration.ZERO).toNanos() / 1e6 / count;
            double peerMs =
                    cCpu.getOrDefault("containerd", Duration.ZERO).toNanos() / 1e6 / count + (double) ctrCpu / count;
            results.add(Measurement.single(prefix + "cpu_runtime_per_task", "ms", Report.round(agentMs))
                    .withPeer("containerd", Report.round(peerMs))
                    .with(
                            "what",
                            "CPU per start and teardown cycle: the agent JVM vs containerd plus ctr (shims and "
                                    + "runc/conmon not counted on either side)")
                    .with("stevedore_cycle_by_process", sPer)
                    .with("containerd_cycle_by_process", cPer));
            return results;
        }

        /**
         * Returns create to Running in ms and adds, per stage seen on the way (the watches' arrival times), create to
         * that stage to {@code stages}; tears down after.
         */
        private static double stevedore(Node node, String name, Map<String, List<Double>> stages, boolean networked)
                throws InterruptedException {
            TaskWatch.Tracked t = node.tasks().track(name);
            ContainerWatch.Tracked c = node.containers().track(name);
            long created = System.nanoTime();
            node.createContainer(name, "[sleep, '3600']", networked ? "cni" : "none");
            node.createTask(name, name);
            TaskWatch.Seen running = node.awaitSeen(t.running, "Task " + name + " Running");
            // The agent adds its finalizers beside its work; waiting for them keeps the teardown on the usual path,
            // and over before the next cycle.
            node.awaitSeen(t.finalized, "Task " + name + " finalizer");
            ContainerWatch.await(
                    c.finalized, EACH_AT_MOST, "Container " + name + " finalizer", node.agent()::checkAlive);
            Map<String, CompletableFuture<Long>> seen = new LinkedHashMap<>();
            seen.put("container_finalizer", c.finalized);
            seen.put("task_finalizer", t.finalized.thenApply(TaskWatch.Seen::nanos));
            seen.put("container_ready", c.ready);
            seen.put("task_running", t.running.thenApply(TaskWatch.Seen::nanos));
            seen.forEach((stage, at) -> {
                if (at.isDone() && !at.isCompletedExceptionally()) {
                    stages.computeIfAbsent(stage, k -> new ArrayList<>()).add((at.join() - created) / 1e6);
                }
            });
            node.deleteTask(name);
            node.deleteContainer(name);
            return (running.nanos() - created) / 1e6;
        }

        /** The median of each stage's samples, in the order the stages were first added. */
        private static Map<String, Object> medians(Map<String, List<Double>> stages) {
            Map<String, Object> medians = new LinkedHashMap<>();
            stages.forEach((stage, samples) -> medians.put(
                    stage,
                    Report.round(Measurement.of(stage, "ms", millis(samples)).p50())));
            return medians;
        }

        private static Containerd.Run containerd(Node node, String name, boolean networked) {
            Containerd.Run run =
                    node.containerd().runTask(networked ? node.network() : null, node.image(), name, "sleep", "3600");
            node.containerd().removeTask(name);
            return run;
        }
    }

    /**
     * task_exit_to_deleted: from the Task's process exiting to phase Deleted (exitCode, exitedAt, reason in the same
     * status write) seen by a watch on Tasks. The process is {@code sh -c 'sleep 0.3; echo exiting'}: its last act
     * before exiting is writing that line, and conmon stamps each log line (RFC 3339, nanoseconds, CLOCK_REALTIME)
     * as it reads it from the pipe; that stamp, read from {@code <agent root>/tasks/<uid>/task.log} afterwards, is
     * the exit instant (busybox's date has no %N, and the agent's exitedAt is truncated to seconds). It is early by
     * the time sh takes to exit after its echo and conmon to read (microseconds). The watch event's arrival is stamped
     * with {@link Instant#now()} in the benchmark (the same clock, microseconds). One Container, one Task at a time;
     * each Task deleted once Deleted is seen.
     */
    static final class ExitToDeleted implements Scenario {
        private static final int WARM_UP = 30;

        @Override
        public String name() {
            return "task_exit_to_deleted";
        }

        @Override
        public String description() {
            return "process exit (conmon's log stamp of its last line) to Task phase Deleted seen, --tasks times (default 100)";
        }

        @Override
        public List<Measurement> run(Settings settings) throws Exception {
            return withNode(settings, name(), false, node -> measure(settings, node));
        }

        private List<Measurement> measure(Settings settings, Node node) throws Exception {
            int count = settings.tasks();
            ContainerWatch.Tracked c = node.containers().track("exiter");
            node.createContainer("exiter", "[sh, -c, 'sleep 0.3; echo exiting']");
            ContainerWatch.await(c.ready, EACH_AT_MOST, "Container exiter Ready", node.agent()::checkAlive);
            for (int i = 0; i < WARM_UP; i++) {
                one(node, String.format("warm-%02d", i));
            }
            CpuUsage cpu = new CpuUsage(Map.of("agent", node.agent().handle()));
            Map<String, Duration> before = cpu.snapshot();
            List<Double> samples = new ArrayList<>();
            for (int i = 0; i < count; i++) {
                samples.add(one(node, String.format("x-%05d", i)));
                if ((i + 1) % 25 == 0) {
                    LOG.info("{} of {}: {} ms", i + 1, count, Math.round(samples.get(i)));
                }
            }
            Map<String, Object> per = new LinkedHashMap<>();
            CpuUsage.delta(before, cpu.snapshot())
                    .forEach((k, v) -> per.put(k.replace('-', '_'), Report.round(v.toNanos() / 1e6 / count)));
            node.deleteContainer("exiter");
            String left = node.leftovers();
            LOG.info("done; left: {}", left);
            return List.of(
                    Measurement.of(name() + "_" + Settings.sizeLabel(count) + "_exit_to_deleted", "ms", millis(samples))
                            .with(
                                    "what",
                                    "conmon's log timestamp of the line the process writes just before it exits, to the "
                                            + "watch event with phase Deleted arriving (wall clock, same machine)")
                            .with("process", "sh -c 'sleep 0.3; echo exiting'")
                            .with("sequential", true)
                            .with("warm_up", WARM_UP)
                            .with("cpu_ms_per_task_whole_life_by_process", per)
                            .with("left_after", left));
        }

        private static double one(Node node, String name) throws InterruptedException, IOException {
            TaskWatch.Tracked t = node.tasks().track(name);
            Task task = node.createTask(name, "exiter");
            TaskWatch.Seen deleted = node.awaitSeen(t.deleted, "Task " + name + " Deleted");
            Path log = node.agentRoot()
                    .resolve("tasks")
                    .resolve(task.getMetadata().getUid())
                    .resolve("task.log");
            Instant exited = null;
            for (String line : Files.readAllLines(log)) {
                if (line.endsWith(" exiting")) {
                    exited = OffsetDateTime.parse(line.substring(0, line.indexOf(' ')))
                            .toInstant();
                }
            }
            if (exited == null) {
                throw new IllegalStateException("no 'exiting' line in " + log + ": " + Files.readString(log)
                        + "; status " + deleted.task().getStatus());
            }
            node.deleteTask(name);
            return Duration.between(exited, deleted.wall()).toNanos() / 1e6;
        }
    }

    /**
     * node_memory_N_tasks: with N Tasks of sleep 3600 running (one Container each) besides the keep Container, the
     * summed VmRSS of the agent JVM and every conmon of its root; beside containerd with N {@code ctr run -d} tasks,
     * the summed VmRSS of containerd and every containerd-shim-runc-v2 of its socket. Both sides run at the same
     * time; RSS read once everything is running and again 10 s later (the later reading is reported). Everything is
     * cleaned up after, and what is left (processes, mounts) is reported.
     */
    static final class Memory implements Scenario {
        @Override
        public String name() {
            return "node_memory_tasks";
        }

        @Override
        public String description() {
            return "RSS of the agent + conmons with --memory-tasks (default 200) sleep Tasks vs containerd + shims";
        }

        @Override
        public List<Measurement> run(Settings settings) throws Exception {
            return withNode(settings, name(), true, node -> measure(settings, node));
        }

        private List<Measurement> measure(Settings settings, Node node) throws Exception {
            int count = settings.memoryTasks();
            long agentBefore = rss(node.agent().pid());
            long containerdBefore = rss(node.containerd().handle().pid());
            for (int i = 0; i < count; i++) {
                String name = String.format("m-%04d", i);
                node.tasks().track(name);
                node.containers().track(name);
                node.createContainer(name, "[sleep, '3600']");
                node.createTask(name, name);
            }
            for (int i = 0; i < count; i++) {
                String name = String.format("m-%04d", i);
                node.awaitSeen(node.tasks().tracked(name).running, "Task " + name + " Running");
            }
            for (int i = 0; i < count; i++) {
                node.containerd().runTask(node.image(), String.format("m-%04d", i), "sleep", "3600");
            }
            LOG.info("{} tasks running on each side; settling 10 s", count);
            Thread.sleep(10_000);
            List<ProcessHandle> conmons = node.conmons();
            List<ProcessHandle> shims = node.shims();
            long agent = rss(node.agent().pid());
            long conmon = conmons.stream().mapToLong(p -> rss(p.pid())).sum();
            long containerd = rss(node.containerd().handle().pid());
            long shim = shims.stream().mapToLong(p -> rss(p.pid())).sum();
            long pssStevedore = pss(node.agent().pid())
                    + conmons.stream().mapToLong(p -> pss(p.pid())).sum();
            long pssContainerd = pss(node.containerd().handle().pid())
                    + shims.stream().mapToLong(p -> pss(p.pid())).sum();
            double mib = 1024 * 1024;
            LOG.info(
                    "agent {} MiB + {} conmon {} MiB; containerd {} MiB + {} shims {} MiB",
                    agent / mib,
                    conmons.size(),
                    conmon / mib,
                    containerd / mib,
                    shims.size(),
                    shim / mib);

            for (int i = 0; i < count; i++) {
                node.containerd().removeTask(String.format("m-%04d", i));
            }
            for (int i = 0; i < count; i++) {
                String name = String.format("m-%04d", i);
                node.client()
                        .resources(Task.class)
                        .inNamespace(NAMESPACE)
                        .withName(name)
                        .delete();
            }
            for (int i = 0; i < count; i++) {
                String name = String.format("m-%04d", i);
                node.awaitSeen(node.tasks().tracked(name).gone, "Task " + name + " gone");
                node.client()
                        .resources(Container.class)
                        .inNamespace(NAMESPACE)
                        .withName(name)
                        .delete();
            }
            for (int i = 0; i < count; i++) {
                String name = String.format("m-%04d", i);
                ContainerWatch.await(
                        node.containers().tracked(name).gone,
                        EACH_AT_MOST,
                        "Container " + name + " gone",
                        node.agent()::checkAlive);
            }
            String left = node.leftovers();
            LOG.info("cleaned up; left: {}", left);
            String prefix = "node_memory_" + Settings.sizeLabel(count) + "_tasks_";
            return List.of(Measurement.single(prefix + "rss", "MiB", Report.round((agent + conmon) / mib))
                    .withPeer("containerd", Report.round((containerd + shim) / mib))
                    .with(
                            "what",
                            "sum of VmRSS: the agent JVM plus its conmon processes vs containerd plus its "
                                    + "containerd-shim-runc-v2 processes, " + count
                                    + " sleep 3600 tasks each, both running at once")
                    .with("agent_mib", Report.round(agent / mib))
                    .with("conmon_count", conmons.size())
                    .with("conmon_mib", Report.round(conmon / mib))
                    .with("conmon_kib_each", Report.round(conmon / 1024.0 / Math.max(1, conmons.size())))
                    .with("agent_mib_before_tasks", Report.round(agentBefore / mib))
                    .with("peer_containerd_mib", Report.round(containerd / mib))
                    .with("peer_shim_count", shims.size())
                    .with("peer_shim_mib", Report.round(shim / mib))
                    .with("peer_shim_kib_each", Report.round(shim / 1024.0 / Math.max(1, shims.size())))
                    .with("peer_containerd_mib_before_tasks", Report.round(containerdBefore / mib))
                    .with("pss_mib", Report.round(pssStevedore / mib))
                    .with("peer_pss_mib", Report.round(pssContainerd / mib))
                    .with(
                            "pss_note",
                            "Pss (smaps_rollup) divides shared pages (the conmon/shim binaries' text) among "
                                    + "their users; summed VmRSS counts them once per process")
                    .with("agent_jvm_options", String.join(" ", settings.agentJvmOptions()))
                    .with("left_after", left));
        }
    }
}
