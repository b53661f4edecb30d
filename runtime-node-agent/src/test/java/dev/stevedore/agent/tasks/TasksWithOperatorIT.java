package dev.stevedore.agent.tasks;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.stevedore.agent.NodeAgent;
import dev.stevedore.agent.fs.MountTable;
import dev.stevedore.agent.testing.Containers;
import dev.stevedore.agent.testing.LocalRegistry;
import dev.stevedore.agent.testing.Tasks;
import dev.stevedore.agent.testing.TestImages;
import dev.stevedore.api.FieldManager;
import dev.stevedore.api.v1alpha1.Conditions;
import dev.stevedore.api.v1alpha1.Container;
import dev.stevedore.api.v1alpha1.ContainerStatus;
import dev.stevedore.api.v1alpha1.Task;
import dev.stevedore.api.v1alpha1.TaskSpec;
import dev.stevedore.api.v1alpha1.TaskStatus;
import dev.stevedore.operator.StevedoreOperator;
import dev.stevedore.testing.ControlPlane;
import dev.stevedore.testing.Crds;
import dev.stevedore.testing.TestNamespace;
import dev.stevedore.testing.WithControlPlane;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.ManagedFieldsEntry;
import io.fabric8.kubernetes.client.Watch;
import io.fabric8.kubernetes.client.Watcher;
import io.fabric8.kubernetes.client.WatcherException;
import io.fabric8.kubernetes.client.utils.Serialization;
import io.javaoperatorsdk.operator.Operator;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.IntStream;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The whole system on one node: the operator schedules and binds, the agent runs. Fifty Tasks created at once on
 * one Container run one after another, as containerd allows one task per container, and leave nothing behind.
 */
@WithControlPlane
class TasksWithOperatorIT {
    private static final String NODE = "tasks-with-operator-node";
    private static final int TASKS = 50;
    /** The operator's condition (ContainerReconciler.NODE_REACHABLE, package-private there). */
    private static final String NODE_REACHABLE = "NodeReachable";

    @TempDir
    static Path tmp;

    private static LocalRegistry registry;
    private static NodeAgent.Running agent;
    private static Operator operator;
    private static Path root;
    private static String image;
    private static ControlPlane controlPlane;

    @BeforeAll
    static void start(ControlPlane cp) throws Exception {
        controlPlane = cp;
        Crds.installStevedore(cp.adminClient());
        registry = LocalRegistry.start();
        image = registry.host() + "/test/busybox:1";
        TestImages.build(tmp.resolve("images")).push(TestImages.BASE, image);
        root = tmp.resolve("root");
        agent = NodeAgent.start(
                cp.adminClient(),
                NodeAgent.Settings.of(NODE, root)
                        .withLabels(Map.of("stevedore.dev/test", "tasks-with-operator"))
                        .withHeartbeatInterval(Duration.ofSeconds(5)));
        operator =
                StevedoreOperator.start(cp.adminClient(), new StevedoreOperator.Settings(null, Duration.ofSeconds(40)));
    }

    @AfterAll
    static void stop() throws Exception {
        try {
            operator.stop();
            agent.close();
        } finally {
            // A failed test can leave a running task: its mounts would keep @TempDir from being deleted.
            LeftoverTasks.removeUnder(root, Runtimes.prepare(tmp.resolve("cleanup-runtimes")));
            registry.close();
            controlPlane
                    .adminClient()
                    .resources(dev.stevedore.api.v1alpha1.RuntimeNode.class)
                    .withName(NODE)
                    .delete();
        }
    }

    @Test
    void fiftyTasksCreatedAtOnceRunOneAfterAnotherAndLeaveNothingBehind(TestNamespace ns) throws Exception {
        ns.client()
                .resource(Serialization.unmarshal("""
                apiVersion: stevedore.dev/v1alpha1
                kind: Container
                metadata: {name: batch}
                spec:
                  image: %s
                  nodeSelector: {stevedore.dev/test: tasks-with-operator}
                  process: {args: [sh, -c, 'echo run; exit 3']}
                """.formatted(image), Container.class))
                .create();

        Set<String> live = new HashSet<>();
        AtomicInteger mostLiveAtOnce = new AtomicInteger();
        // Watch events come in the order the API server wrote them, so this sees every overlap there was.
        try (Watch watch = ns.client().resources(Task.class).watch(new Watcher<>() {
            @Override
            public void eventReceived(Action action, Task task) {
                TaskStatus.Phase phase =
                        task.getStatus() == null ? null : task.getStatus().phase();
                synchronized (live) {
                    if (phase == TaskStatus.Phase.Created || phase == TaskStatus.Phase.Running) {
                        live.add(task.getMetadata().getName());
                    } else if (phase == TaskStatus.Phase.Deleted || action == Action.DELETED) {
                        live.remove(task.getMetadata().getName());
                    }
                    mostLiveAtOnce.accumulateAndGet(live.size(), Math::max);
                }
            }

            @Override
            public void onClose(WatcherException cause) {}
        })) {
            IntStream.range(0, TASKS)
                    .parallel()
                    .forEach(i -> ns.client()
                            .resource(Serialization.unmarshal("""
                    apiVersion: stevedore.dev/v1alpha1
                    kind: Task
                    metadata: {name: run-%d}
                    spec: {container: batch}
                    """.formatted(i), Task.class))
                            .create());

            await().atMost(Duration.ofMinutes(5))
                    .until(() -> ns.client().resources(Task.class).list().getItems().stream()
                                    .filter(t -> t.getStatus() != null
                                            && t.getStatus().phase() == TaskStatus.Phase.Deleted)
                                    .count()
                            == TASKS);
        }

        assertThat(mostLiveAtOnce.get()).isEqualTo(1);
        assertThat(ns.client().resources(Task.class).list().getItems())
                .hasSize(TASKS)
                .allSatisfy(t -> {
                    assertThat(t.getStatus().exitCode()).isEqualTo(3);
                    assertThat(t.getStatus().reason()).isEqualTo("Error");
                });
        assertThat(MountTable.under(root)).isEmpty();
        assertThat(conmonsUnder(root)).isZero();
        OciRuntime runc = Runtimes.prepare(tmp.resolve("check-runtimes")).named("runc");
        List<Path> hierarchies;
        try (Stream<Path> list = Files.list(Path.of("/sys/fs/cgroup"))) {
            hierarchies = list.toList();
        }
        for (Task task : ns.client().resources(Task.class).list().getItems()) {
            String uid = task.getMetadata().getUid();
            assertThat(runc.state(uid)).as("runc state of %s", uid).isEmpty();
            assertThat(hierarchies)
                    .noneMatch(h -> Files.exists(h.resolve("stevedore").resolve(uid)));
        }
    }

    @Test
    void threeQueuedTasksOfOneContainerRunOneAtATimeInTheOrderTheyWereCreated(TestNamespace ns) {
        // Named against their creation order: the queue goes by creationTimestamp, and by name only within a second.
        List<String> inCreationOrder = List.of("c-first", "b-second", "a-third");
        Instant previous = null;
        for (String name : inCreationOrder) {
            if (previous != null) {
                awaitTheSecondAfter(previous);
            }
            previous = Instant.parse(task(ns, name, "queue", "").getMetadata().getCreationTimestamp());
        }
        // The Container comes after its Tasks, so all three wait in line when it can take one.
        container(ns, "queue", "[sh, -c, 'sleep 2']");

        List<Task> done = inCreationOrder.stream()
                .map(name -> Tasks.awaitPhase(ns, name, TaskStatus.Phase.Deleted))
                .toList();
        assertThat(done).allSatisfy(t -> assertThat(t.getStatus().reason()).isEqualTo("Completed"));
        for (int i = 1; i < done.size(); i++) {
            TaskStatus before = done.get(i - 1).getStatus();
            TaskStatus after = done.get(i).getStatus();
            assertThat(Instant.parse(after.startedAt()))
                    .as("%s starts after %s exited", inCreationOrder.get(i), inCreationOrder.get(i - 1))
                    .isAfterOrEqualTo(Instant.parse(before.exitedAt()))
                    .isAfter(Instant.parse(before.startedAt()));
        }
    }

    @Test
    void aTaskIsDeletedItsTtlAfterItsProcessExitedAndNotBefore(TestNamespace ns) {
        long ttlSeconds = 5;
        container(ns, "brief", "[sh, -c, 'exit 0']");
        List<Task> deletions = new CopyOnWriteArrayList<>();
        List<Instant> goneAt = new CopyOnWriteArrayList<>();
        try (Watch watch = ns.client().resources(Task.class).withName("brief-1").watch(new Watcher<>() {
            @Override
            public void eventReceived(Action action, Task task) {
                if (task.getMetadata().getDeletionTimestamp() != null) {
                    deletions.add(task);
                }
                if (action == Action.DELETED) {
                    goneAt.add(Instant.now());
                }
            }

            @Override
            public void onClose(WatcherException cause) {}
        })) {
            task(ns, "brief-1", "brief", "ttlSecondsAfterDeleted: " + ttlSeconds);
            Task exited = Tasks.awaitPhase(ns, "brief-1", TaskStatus.Phase.Deleted);
            assertThat(exited.getStatus().reason()).isEqualTo("Completed");
            assertThat(exited.getStatus().pid()).as("a process ran").isPositive();

            await().atMost(Containers.TIMEOUT.plusSeconds(ttlSeconds)).until(() -> !goneAt.isEmpty());
            // The API server's own time of the deletion if the agent's finalizer held the object, else when the
            // test saw it go (later than the deletion, by the watch's delay).
            Instant deletedAt = deletions.isEmpty()
                    ? goneAt.get(0)
                    : Instant.parse(deletions.get(0).getMetadata().getDeletionTimestamp());
            assertThat(deletedAt)
                    .as(
                            "deleted %ss after the exit at %s",
                            ttlSeconds, exited.getStatus().exitedAt())
                    .isAfterOrEqualTo(
                            Instant.parse(exited.getStatus().exitedAt()).plusSeconds(ttlSeconds));
        }
    }

    @Test
    void theOperatorsAndTheAgentsStatusFieldsLiveSideBySideUnderTheirOwnManagers(TestNamespace ns) {
        container(ns, "shared", "[sleep, '3600']");
        task(ns, "shared-1", "shared", "stopGracePeriodSeconds: 1");

        Container container = Containers.await(
                ns,
                "shared",
                c -> c.getStatus() != null
                        && Conditions.isTrue(c.getStatus().conditions(), ContainerStatus.READY)
                        && Conditions.isTrue(c.getStatus().conditions(), ContainerStatus.SCHEDULED)
                        && Conditions.isTrue(c.getStatus().conditions(), NODE_REACHABLE),
                "Ready from the agent beside Scheduled and NodeReachable from the operator",
                () -> "");
        Task task = Tasks.await(
                ns,
                "shared-1",
                t -> t.getStatus() != null
                        && t.getStatus().phase() == TaskStatus.Phase.Running
                        && Conditions.isTrue(t.getStatus().conditions(), NODE_REACHABLE));

        assertThat(statusFieldsOf(container, FieldManager.AGENT))
                .contains(conditionKey(ContainerStatus.READY))
                .doesNotContain(
                        conditionKey(ContainerStatus.SCHEDULED),
                        conditionKey(NODE_REACHABLE),
                        conditionKey(Conditions.RECONCILING));
        assertThat(statusFieldsOf(container, FieldManager.OPERATOR))
                .contains(
                        conditionKey(ContainerStatus.SCHEDULED),
                        conditionKey(NODE_REACHABLE),
                        conditionKey(Conditions.RECONCILING))
                .doesNotContain(conditionKey(ContainerStatus.READY), conditionKey(Conditions.STALLED));
        assertThat(statusFieldsOf(task, FieldManager.AGENT))
                .contains("\"f:pid\"", "\"f:startedAt\"")
                .doesNotContain(conditionKey(NODE_REACHABLE), conditionKey(Conditions.RECONCILING));
        assertThat(statusFieldsOf(task, FieldManager.OPERATOR))
                .contains(conditionKey(NODE_REACHABLE), conditionKey(Conditions.RECONCILING))
                .doesNotContain(conditionKey(Conditions.STALLED));

        Tasks.setDesired(ns, "shared-1", TaskSpec.DesiredState.Stopped);
        Tasks.awaitPhase(ns, "shared-1", TaskStatus.Phase.Deleted);
    }

    /** The status fields {@code manager} owns by its applies, as the API server lists them (fieldsV1, as JSON). */
    private static String statusFieldsOf(HasMetadata object, FieldManager manager) {
        List<ManagedFieldsEntry> entries = object.getMetadata().getManagedFields().stream()
                .filter(e -> manager.name().equals(e.getManager())
                        && "Apply".equals(e.getOperation())
                        && "status".equals(e.getSubresource()))
                .toList();
        assertThat(entries)
                .as("%s's status apply on %s", manager, object.getMetadata().getName())
                .hasSize(1);
        return Serialization.asJson(entries.get(0).getFieldsV1());
    }

    private static String conditionKey(String type) {
        return "\"k:{\\\"type\\\":\\\"" + type + "\\\"}\"";
    }

    /** Creation timestamps are whole seconds: a Task created from here on is newer than one created at {@code at}. */
    private static void awaitTheSecondAfter(Instant at) {
        await().atMost(Duration.ofSeconds(30))
                .pollInterval(Duration.ofMillis(20))
                .until(() -> !Instant.now().isBefore(at.plusSeconds(1)));
    }

    private static void container(TestNamespace ns, String name, String args) {
        ns.client()
                .resource(Serialization.unmarshal("""
                apiVersion: stevedore.dev/v1alpha1
                kind: Container
                metadata: {name: %s}
                spec:
                  image: %s
                  nodeSelector: {stevedore.dev/test: tasks-with-operator}
                  process: {args: %s}
                """.formatted(name, image, args), Container.class))
                .create();
    }

    /** A Task the operator binds (no nodeName). */
    private static Task task(TestNamespace ns, String name, String container, String moreSpec) {
        String yaml = """
                apiVersion: stevedore.dev/v1alpha1
                kind: Task
                metadata: {name: %s}
                spec:
                  container: %s
                """.formatted(name, container) + moreSpec.indent(2);
        return ns.client().resource(Serialization.unmarshal(yaml, Task.class)).create();
    }

    private static long conmonsUnder(Path dir) {
        return ProcessHandle.allProcesses()
                .filter(p -> p.info().command().map(c -> c.endsWith("/conmon")).orElse(false))
                .filter(p -> String.join(" ", p.info().arguments().orElse(new String[0]))
                        .contains(dir.toString()))
                .count();
    }
}
