package dev.stevedore.agent.tasks;

import static org.assertj.core.api.Assertions.assertThat;

import dev.stevedore.agent.NodeAgent;
import dev.stevedore.agent.logs.LogLimits;
import dev.stevedore.agent.logs.LogOptions;
import dev.stevedore.agent.logs.TaskLogFiles;
import dev.stevedore.agent.logs.TaskLogReader;
import dev.stevedore.agent.testing.Containers;
import dev.stevedore.agent.testing.LocalRegistry;
import dev.stevedore.agent.testing.Tasks;
import dev.stevedore.agent.testing.TestImages;
import dev.stevedore.api.v1alpha1.ContainerStatus;
import dev.stevedore.api.v1alpha1.RuntimeNode;
import dev.stevedore.api.v1alpha1.Task;
import dev.stevedore.api.v1alpha1.TaskStatus;
import dev.stevedore.testing.ControlPlane;
import dev.stevedore.testing.Crds;
import dev.stevedore.testing.TestNamespace;
import dev.stevedore.testing.WithControlPlane;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.awaitility.Awaitility;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A task's log with real conmon and runc: rotated by size while the task writes, conmon reopening its file, the
 * oldest files going, and a follower that reads every line once, in order, across rotations and an agent restart.
 */
@WithControlPlane
class TaskLogsIT {
    private static final String NODE = "task-logs-it-node";
    private static final LogLimits SMALL = new LogLimits(64 * 1024, 3);
    private static final int BATCHES = 150;
    private static final int LINES_PER_BATCH = 20;

    @TempDir
    static Path tmp;

    private static LocalRegistry registry;
    private static Path root;
    private static ControlPlane controlPlane;
    private static String image;
    private static Runtimes runtimes;
    private static final AtomicReference<NodeAgent.Running> agent = new AtomicReference<>();

    @BeforeAll
    static void start(ControlPlane cp) throws Exception {
        controlPlane = cp;
        Crds.installStevedore(cp.adminClient());
        registry = LocalRegistry.start();
        TestImages images = TestImages.build(tmp.resolve("images"));
        image = registry.host() + "/test/busybox:1";
        images.push(TestImages.BASE, image);
        root = tmp.resolve("root");
        runtimes = Runtimes.prepare(tmp.resolve("test-runtimes"));
        agent.set(startAgent());
    }

    private static NodeAgent.Running startAgent() throws IOException {
        return NodeAgent.start(
                controlPlane.adminClient(),
                NodeAgent.Settings.of(NODE, root)
                        .withHeartbeatInterval(Duration.ofSeconds(5))
                        .withTaskRuntime(NodeAgent.TaskRuntime.DEFAULTS.withLogLimits(SMALL)));
    }

    @AfterAll
    static void stop() throws Exception {
        try {
            if (agent.get() != null) {
                agent.get().close();
            }
        } finally {
            LeftoverTasks.removeUnder(root, runtimes);
            registry.close();
            controlPlane
                    .adminClient()
                    .resources(RuntimeNode.class)
                    .withName(NODE)
                    .delete();
        }
    }

    @Test
    void aFollowerReadsEveryLineOnceAcrossRotationsAndAnAgentRestart(TestNamespace ns) throws Exception {
        // About 300 KiB in 20-line batches over some 20 s: rotated at 64 KiB every 10 s, so three or four times.
        Containers.create(ns, "chatty", image, NODE, """
                process:
                  args: [sh, -c, 'i=0; while [ $i -lt %d ]; do j=0; while [ $j -lt %d ]; do echo "line $i.$j 0123456789abcdef"; j=$((j+1)); done; i=$((i+1)); sleep 0.1; done']
                """.formatted(BATCHES, LINES_PER_BATCH));
        Containers.awaitCondition(ns, "chatty", ContainerStatus.READY, "True");
        Task task = Tasks.create(ns, "chatty-1", "chatty", NODE, "");
        String uid = task.getMetadata().getUid();
        Tasks.awaitPhase(ns, "chatty-1", TaskStatus.Phase.Running);
        TaskLogFiles files = agent.get().tasks().logFiles(uid);

        ByteArrayOutputStream followed = new ByteArrayOutputStream();
        CompletableFuture<Void> following = CompletableFuture.runAsync(() -> {
            try {
                TaskLogReader.read(
                        files,
                        new LogOptions(LogOptions.Stream.STDOUT, null, null, false, true),
                        followed,
                        () -> agent.get()
                                .tasks()
                                .record(uid)
                                .map(TaskRecord::live)
                                .orElse(false));
            } catch (IOException | InterruptedException e) {
                throw new IllegalStateException(e);
            }
        });
        Awaitility.await("a first rotation")
                .atMost(Duration.ofSeconds(60))
                .until(() -> files.files().size() > 1);
        // The stopped agent still reads the task's record from disk, as the follower asks, until the new one runs.
        agent.get().close();
        agent.set(startAgent());

        Task done = Tasks.awaitPhase(ns, "chatty-1", TaskStatus.Phase.Deleted);
        assertThat(done.getStatus().exitCode()).isZero();
        following.get(60, TimeUnit.SECONDS);

        assertThat(followed.toString(StandardCharsets.UTF_8).lines().toList())
                .as("every line once, in order")
                .isEqualTo(expectedLines());
        assertThat(files.files()).as("rotated, the oldest files gone").hasSizeBetween(2, SMALL.maxFiles());
        ByteArrayOutputStream tail = new ByteArrayOutputStream();
        TaskLogReader.read(files, new LogOptions(LogOptions.Stream.ALL, 3L, null, true, false), tail, () -> false);
        assertThat(tail.toString(StandardCharsets.UTF_8).lines())
                .hasSize(3)
                .allSatisfy(
                        line -> assertThat(line).matches("\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{9}Z line .*"))
                .last()
                .asString()
                .endsWith("line " + (BATCHES - 1) + "." + (LINES_PER_BATCH - 1) + " 0123456789abcdef");
    }

    private static List<String> expectedLines() {
        List<String> lines = new ArrayList<>();
        for (int i = 0; i < BATCHES; i++) {
            for (int j = 0; j < LINES_PER_BATCH; j++) {
                lines.add("line " + i + "." + j + " 0123456789abcdef");
            }
        }
        return lines;
    }
}
