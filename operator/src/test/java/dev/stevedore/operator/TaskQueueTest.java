package dev.stevedore.operator;

import static org.assertj.core.api.Assertions.assertThat;

import dev.stevedore.api.v1alpha1.Task;
import dev.stevedore.api.v1alpha1.TaskSpec;
import dev.stevedore.api.v1alpha1.TaskStatus;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;

class TaskQueueTest {
    private static final String NODE = "node-1";

    @Test
    void threeQueuedTasksRunOneAtATimeOldestFirst() {
        List<Task> tasks = new ArrayList<>(List.of(
                task("b-middle", "2025-01-01T00:00:02Z"),
                task("c-newest", "2025-01-01T00:00:03Z"),
                task("z-oldest", "2025-01-01T00:00:01Z")));
        List<String> ran = new ArrayList<>();

        for (int turn = 0; turn < 3; turn++) {
            TaskQueue queue = new TaskQueue(tasks);
            assertThat(queue.holder()).isEmpty();
            Task next = queue.next().orElseThrow();
            Task bound = bind(next);
            replace(tasks, next, bound);
            TaskQueue whileRunning = new TaskQueue(tasks);
            assertThat(whileRunning.holder()).map(TaskQueueTest::name).contains(name(bound));
            ran.add(name(bound));
            replace(tasks, bound, withPhase(bound, TaskStatus.Phase.Deleted));
        }

        assertThat(ran).containsExactly("z-oldest", "b-middle", "c-newest");
        assertThat(new TaskQueue(tasks).next()).isEmpty();
        assertThat(new TaskQueue(tasks).holder()).isEmpty();
    }

    @Test
    void aBoundLiveTaskHoldsTheContainer() {
        Task running = withPhase(bind(task("running", "2025-01-01T00:00:05Z")), TaskStatus.Phase.Running);
        Task older = task("older-but-waiting", "2025-01-01T00:00:01Z");

        TaskQueue queue = new TaskQueue(List.of(older, running));

        assertThat(queue.holder()).map(TaskQueueTest::name).contains("running");
        assertThat(queue.next()).map(TaskQueueTest::name).contains("older-but-waiting");
    }

    @Test
    void aBoundTaskBeingDeletedHoldsUntilItsNodeMarksItDeleted() {
        Task leaving = deleting(bind(task("leaving", "2025-01-01T00:00:01Z")));

        assertThat(new TaskQueue(List.of(leaving)).holder())
                .map(TaskQueueTest::name)
                .contains("leaving");
        assertThat(new TaskQueue(List.of(withPhase(leaving, TaskStatus.Phase.Deleted))).holder())
                .isEmpty();
    }

    @Test
    void ofTwoLiveTasksTheOldestIsTheHolder() {
        Task newer = bind(task("newer", "2025-01-01T00:00:02Z"));
        Task older = bind(task("older", "2025-01-01T00:00:01Z"));

        assertThat(new TaskQueue(List.of(newer, older)).holder())
                .map(TaskQueueTest::name)
                .contains("older");
    }

    @Test
    void tasksCreatedInTheSameSecondGoInNameOrder() {
        String second = "2025-01-01T00:00:01Z";

        Optional<Task> next = new TaskQueue(List.of(task("b", second), task("c", second), task("a", second))).next();

        assertThat(next).map(TaskQueueTest::name).contains("a");
    }

    @Test
    void onlyUnboundUnfinishedWantedTasksWait() {
        String t = "2025-01-01T00:00:01Z";
        assertThat(TaskQueue.waiting(task("fresh", t))).isTrue();
        assertThat(TaskQueue.waiting(bind(task("bound", t)))).isFalse();
        assertThat(TaskQueue.waiting(withPhase(task("cancelled", t), TaskStatus.Phase.Deleted)))
                .isFalse();
        assertThat(TaskQueue.waiting(deleting(task("being-deleted", t)))).isFalse();
        assertThat(TaskQueue.waiting(stopped(task("stopped", t)))).isFalse();
        assertThat(TaskQueue.waiting(withPhase(task("pending", t), TaskStatus.Phase.Pending)))
                .isTrue();
    }

    @Test
    void nextSkipsWhatDoesNotWait() {
        List<Task> tasks = List.of(
                stopped(task("a-stopped", "2025-01-01T00:00:01Z")),
                deleting(task("b-being-deleted", "2025-01-01T00:00:02Z")),
                withPhase(task("c-cancelled", "2025-01-01T00:00:03Z"), TaskStatus.Phase.Deleted),
                task("d-waiting", "2025-01-01T00:00:04Z"));

        assertThat(new TaskQueue(tasks).next()).map(TaskQueueTest::name).contains("d-waiting");
        assertThat(new TaskQueue(tasks.subList(0, 3)).next()).isEmpty();
    }

    private static Task task(String name, String created) {
        Task task = new Task();
        task.setMetadata(new ObjectMetaBuilder()
                .withName(name)
                .withNamespace("ns")
                .withUid("uid-" + name)
                .withCreationTimestamp(created)
                .build());
        task.setSpec(new TaskSpec("app", null, TaskSpec.DesiredState.Running, null, null, null));
        return task;
    }

    private static Task bind(Task task) {
        Task bound = copy(task);
        TaskSpec s = task.getSpec();
        bound.setSpec(new TaskSpec(
                s.container(),
                NODE,
                s.desiredState(),
                s.stopSignal(),
                s.stopGracePeriodSeconds(),
                s.ttlSecondsAfterDeleted()));
        return bound;
    }

    private static Task stopped(Task task) {
        Task stopped = copy(task);
        TaskSpec s = task.getSpec();
        stopped.setSpec(new TaskSpec(
                s.container(),
                s.nodeName(),
                TaskSpec.DesiredState.Stopped,
                s.stopSignal(),
                s.stopGracePeriodSeconds(),
                s.ttlSecondsAfterDeleted()));
        return stopped;
    }

    private static Task withPhase(Task task, TaskStatus.Phase phase) {
        Task changed = copy(task);
        changed.setStatus(new TaskStatus(phase, null, null, null, null, null, null, null, null, null));
        return changed;
    }

    private static Task deleting(Task task) {
        Task changed = copy(task);
        changed.getMetadata().setDeletionTimestamp("2025-01-01T00:01:00Z");
        return changed;
    }

    private static Task copy(Task task) {
        Task copy = new Task();
        copy.setMetadata(new ObjectMetaBuilder(task.getMetadata()).build());
        copy.setSpec(task.getSpec());
        copy.setStatus(task.getStatus());
        return copy;
    }

    private static void replace(List<Task> tasks, Task old, Task now) {
        tasks.set(tasks.indexOf(old), now);
    }

    private static String name(Task task) {
        return task.getMetadata().getName();
    }
}
