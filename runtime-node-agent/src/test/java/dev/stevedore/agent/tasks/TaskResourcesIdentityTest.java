package dev.stevedore.agent.tasks;

import static org.assertj.core.api.Assertions.assertThat;

import dev.stevedore.agent.network.NetworkSettings;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A conmon PID the agent recorded that now belongs to another, live process (here a sleep of the test's): it is not
 * taken for the task's conmon, waited for or killed, whether the record has a start time or, written by an older
 * agent, only conmon's pid file.
 */
class TaskResourcesIdentityTest {
    private static final String UID = "0a1b2c3d-0000-4000-8000-000000000001";

    @TempDir
    Path root;

    private TaskRecords records;
    private TaskResources resources;
    private Process other;
    private long otherStart;

    @BeforeEach
    void setUp() throws IOException {
        records = new TaskRecords(root, root.resolve("exits"));
        resources = new TaskResources(
                records,
                new Runtimes(new FakeRuntime("runc"), new FakeRuntime("crun")),
                new NetworkSettings(root.resolve("cni"), List.of(), null).taskNetworks(root.resolve("netns")));
        other = new ProcessBuilder("sleep", "60").start();
        otherStart = ProcessStart.of(other.pid()).orElseThrow();
    }

    @AfterEach
    void tearDown() {
        other.destroyForcibly();
    }

    private TaskRecord recordWithConmon(ProcessId conmon) {
        return TaskRecord.creating(UID, "ns", "t", "c-uid", "overlayfs", "k", "runc", "/b", 1L, null)
                .created(new ProcessId(4242L, null), conmon)
                .started(java.time.Instant.EPOCH);
    }

    @Test
    void aPidWithAnotherStartTimeIsNotTheConmonAndIsLeftAlone() {
        TaskRecord rec = recordWithConmon(new ProcessId(other.pid(), otherStart - 1));
        assertThat(resources.conmon(rec)).isEmpty();
        resources.awaitConmonExit(rec);
        assertThat(other.isAlive()).isTrue();
    }

    @Test
    void aRecordOfAnOlderAgentTrustsThePidFileOnlyForAConmonOfThisTask() throws IOException {
        Files.createDirectories(records.taskDir(UID));
        Files.writeString(records.taskDir(UID).resolve("conmon.pid"), Long.toString(other.pid()));
        TaskRecord rec = recordWithConmon(null);
        assertThat(rec.conmon()).isNull();
        assertThat(resources.conmon(rec)).isEmpty();
        resources.awaitConmonExit(rec);
        assertThat(other.isAlive()).isTrue();
    }

    @Test
    void theRecordedProcessIsTheConmonAndIsKilledWhenItOutstaysItsWait() throws Exception {
        TaskRecord rec = recordWithConmon(new ProcessId(other.pid(), otherStart));
        assertThat(resources.conmon(rec)).map(ProcessHandle::pid).contains(other.pid());
        long started = System.nanoTime();
        resources.awaitConmonExit(rec);
        assertThat(other.waitFor(5, java.util.concurrent.TimeUnit.SECONDS)).isTrue();
        assertThat(Duration.ofNanos(System.nanoTime() - started)).isGreaterThanOrEqualTo(Duration.ofSeconds(5));
    }
}
