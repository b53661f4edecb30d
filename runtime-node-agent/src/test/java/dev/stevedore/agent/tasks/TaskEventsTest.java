package dev.stevedore.agent.tasks;

import static org.assertj.core.api.Assertions.assertThat;

import dev.stevedore.api.v1alpha1.TaskStatus;
import dev.stevedore.api.v1alpha1.TaskStatus.Phase;
import org.junit.jupiter.api.Test;

/** The Event a task's end gives, from its final status. */
class TaskEventsTest {

    @Test
    void anExitIsExitedNormalForZeroAndWarningOtherwise() {
        assertThat(TaskEvents.ended(deleted(0, "Completed", "exited with code 0")))
                .isEqualTo(new TaskEvents.Ended("Normal", "Exited", "exited with code 0"));
        assertThat(TaskEvents.ended(deleted(42, "Error", "exited with code 42")))
                .isEqualTo(new TaskEvents.Ended("Warning", "Exited", "exited with code 42"));
        assertThat(TaskEvents.ended(deleted(137, "Signaled", "killed by SIGKILL")))
                .isEqualTo(new TaskEvents.Ended("Warning", "Exited", "killed by SIGKILL"));
    }

    @Test
    void anOomKillAStartFailureAndALostExitSayWhatTheyAre() {
        assertThat(TaskEvents.ended(deleted(137, "OOMKilled", "killed by the memory cgroup's OOM killer")))
                .isEqualTo(new TaskEvents.Ended("Warning", "OOMKilled", "killed by the memory cgroup's OOM killer"));
        assertThat(TaskEvents.ended(deleted(null, "StartFailed", "runc create: no such file")))
                .isEqualTo(new TaskEvents.Ended("Warning", "Failed", "runc create: no such file"));
        assertThat(TaskEvents.ended(deleted(null, "MonitorLost", "conmon died")))
                .isEqualTo(new TaskEvents.Ended("Warning", "MonitorLost", "conmon died"));
    }

    private static TaskStatus deleted(Integer exitCode, String reason, String message) {
        return new TaskStatus(
                Phase.Deleted, "node-1", 7L, null, exitCode, "2026-12-01T10:00:00Z", reason, message, 1L, null);
    }
}
