package dev.stevedore.agent.tasks;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.stevedore.agent.NodeAgent;
import dev.stevedore.agent.fs.MountTable;
import dev.stevedore.agent.testing.LocalRegistry;
import dev.stevedore.agent.testing.TestImages;
import dev.stevedore.api.v1alpha1.Container;
import dev.stevedore.api.v1alpha1.Task;
import dev.stevedore.api.v1alpha1.TaskStatus;
import dev.stevedore.operator.StevedoreOperator;
import dev.stevedore.testing.ControlPlane;
import dev.stevedore.testing.Crds;
import dev.stevedore.testing.TestNamespace;
import dev.stevedore.testing.WithControlPlane;
import io.fabric8.kubernetes.client.Watch;
import io.fabric8.kubernetes.client.Watcher;
import io.fabric8.kubernetes.client.WatcherException;
import io.fabric8.kubernetes.client.utils.Serialization;
import io.javaoperatorsdk.operator.Operator;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
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
                NODE,
                root,
                Map.of("stevedore.dev/test", "tasks-with-operator"),
                List.of(),
                Set.of(),
                Duration.ofSeconds(5));
        operator =
                StevedoreOperator.start(cp.adminClient(), new StevedoreOperator.Settings(null, Duration.ofSeconds(40)));
    }

    @AfterAll
    static void stop() {
        operator.stop();
        agent.close();
        registry.close();
        controlPlane
                .adminClient()
                .resources(dev.stevedore.api.v1alpha1.RuntimeNode.class)
                .withName(NODE)
                .delete();
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

    private static long conmonsUnder(Path dir) {
        return ProcessHandle.allProcesses()
                .filter(p -> p.info().command().map(c -> c.endsWith("/conmon")).orElse(false))
                .filter(p -> String.join(" ", p.info().arguments().orElse(new String[0]))
                        .contains(dir.toString()))
                .count();
    }
}
