package dev.stevedore.agent.tasks;

import static org.assertj.core.api.Assertions.assertThat;

import dev.stevedore.agent.containers.ContainerRecords;
import dev.stevedore.api.v1alpha1.Task;
import dev.stevedore.api.v1alpha1.TaskStatus;
import dev.stevedore.api.v1alpha1.TaskStatus.Phase;
import io.fabric8.kubernetes.client.utils.Serialization;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A start whose record write failed (a full disk) after the runtime's start: the record still says CREATING while
 * the process runs. The next reconcile must not wait for an agent restart to find out.
 */
class TaskManagerCreateCutShortTest {
    private static final String UID = "0a1b2c3d-0000-4000-8000-000000000001";

    @TempDir
    Path root;

    private final FakeRuntime runc = new FakeRuntime("runc");
    private TaskRecords records;
    private FakeTaskStatusApi api;
    private TaskManager tasks;
    private Process conmon;

    @BeforeEach
    void setUp() throws IOException {
        records = new TaskRecords(root);
        api = new FakeTaskStatusApi();
        tasks = new TaskManager(
                api.client(),
                "node-1",
                records,
                new ContainerRecords(root),
                Map.of(),
                0,
                new Runtimes(runc, new FakeRuntime("crun")),
                new BindSources(List.of()));
        records.put(TaskRecord.creating(UID, "ns", "t", "c-uid", "overlayfs", "snap-1", "runc", "/b", 1L));
        Files.writeString(records.taskDir(UID).resolve("ctr.pid"), "4343");
        // Its conmon runs on: a stand-in named conmon with the task's id among its arguments, as the real one.
        Path binary = Files.copy(Path.of("/bin/sh"), root.resolve("conmon"));
        conmon = new ProcessBuilder(binary.toString(), "-c", "sleep 60; true", UID).start();
        Files.writeString(records.taskDir(UID).resolve("conmon.pid"), Long.toString(conmon.pid()));
    }

    @AfterEach
    void tearDown() {
        conmon.destroyForcibly();
        tasks.close();
        api.close();
    }

    @Test
    void aStartedTaskWhoseRecordStillSaysCreatingIsFollowedAtTheNextReconcile() throws IOException {
        runc.has(UID, "running");

        tasks.reconcile(task(), Optional.empty());

        assertThat(records.get(UID).orElseThrow())
                .extracting(TaskRecord::state, TaskRecord::pid)
                .containsExactly(TaskRecord.State.RUNNING, 4343L);
        assertThat(runc.calls).noneMatch(call -> call.startsWith("start") || call.startsWith("create"));
        assertThat(api.statuses()).extracting(TaskStatus::phase).containsExactly(Phase.Running);
    }

    @Test
    void aCreatedTaskWhoseStartWasCutShortIsStartedOnce() throws IOException {
        runc.has(UID, "created");

        tasks.reconcile(task(), Optional.empty());
        tasks.reconcile(task(), Optional.empty());

        assertThat(runc.calls).containsExactly("start " + UID);
        assertThat(records.get(UID).orElseThrow().state()).isEqualTo(TaskRecord.State.RUNNING);
    }

    private static Task task() {
        return Serialization.unmarshal("""
                apiVersion: stevedore.dev/v1alpha1
                kind: Task
                metadata: {name: t, namespace: ns, uid: %s, generation: 1}
                spec: {container: box, nodeName: node-1}
                """.formatted(UID), Task.class);
    }
}
