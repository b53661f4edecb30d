package dev.stevedore.agent.tasks;

import static org.assertj.core.api.Assertions.assertThat;

import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Tasks' usage read from cgroup trees laid out as the kernel's (v1 and v2), and the series made of it. */
class TaskMetricsTest {
    private static final String UID = "0a1b2c3d-0000-4000-8000-000000000001";

    @TempDir
    Path cgroups;

    @Test
    void v1ControllersGiveCpuMemoryWorkingSetAndPids() throws IOException {
        write("cpuacct/stevedore/" + UID + "/cpuacct.usage", "2500000000\n");
        write("memory/stevedore/" + UID + "/memory.usage_in_bytes", "10485760\n");
        write("memory/stevedore/" + UID + "/memory.stat", "cache 4096\ninactive_file 1\ntotal_inactive_file 4194304\n");
        write("pids/stevedore/" + UID + "/pids.current", "3\n");

        assertThat(TaskUsage.of(cgroups, UID)).contains(new TaskUsage(2.5, 10485760, 6291456, 3));
    }

    @Test
    void theUnifiedHierarchyIsReadWhereTheNodeHasIt() throws IOException {
        write("cgroup.controllers", "cpu memory pids\n");
        write("stevedore/" + UID + "/cpu.stat", "usage_usec 1500000\nuser_usec 1000000\n");
        write("stevedore/" + UID + "/memory.current", "8388608\n");
        write("stevedore/" + UID + "/memory.stat", "anon 1\ninactive_file 9999999999\n");
        write("stevedore/" + UID + "/pids.current", "1\n");

        // More inactive cache than usage, as the counters may briefly disagree: never a negative working set.
        assertThat(TaskUsage.of(cgroups, UID)).contains(new TaskUsage(1.5, 8388608, 0, 1));
    }

    @Test
    void aTaskWithoutACgroupHasNoUsage() {
        assertThat(TaskUsage.of(cgroups, UID)).isEmpty();
    }

    @Test
    void aLiveTaskHasSeriesWhichGoWhenItIsNoLongerLive() throws IOException {
        write("cpuacct/stevedore/" + UID + "/cpuacct.usage", "1000000000\n");
        write("memory/stevedore/" + UID + "/memory.usage_in_bytes", "4096\n");
        write("memory/stevedore/" + UID + "/memory.stat", "total_inactive_file 0\n");
        write("pids/stevedore/" + UID + "/pids.current", "2\n");
        PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        TaskMetrics metrics = new TaskMetrics(registry, cgroups);
        TaskRecord rec = TaskRecord.creating(
                        UID, "team-a", "web-1", "c-uid", "overlayfs", "snap", "runc", "/b", 1L, null)
                .created(new ProcessId(4242L, null), null)
                .started(Instant.parse("2026-12-01T10:00:00Z"));
        String labels = "{namespace=\"team-a\",task=\"web-1\",uid=\"" + UID + "\"}";

        metrics.refresh(List.of(rec));
        assertThat(registry.scrape())
                .contains("stevedore_task_cpu_usage_seconds_total" + labels + " 1.0")
                .contains("stevedore_task_memory_usage_bytes" + labels + " 4096.0")
                .contains("stevedore_task_pids" + labels + " 2.0");

        write("cpuacct/stevedore/" + UID + "/cpuacct.usage", "3000000000\n");
        metrics.refresh(List.of(rec));
        assertThat(registry.scrape()).contains("stevedore_task_cpu_usage_seconds_total" + labels + " 3.0");

        metrics.refresh(List.of());
        assertThat(registry.scrape()).doesNotContain(UID);
    }

    private void write(String path, String content) throws IOException {
        Path file = cgroups.resolve(path);
        Files.createDirectories(file.getParent());
        Files.writeString(file, content);
    }
}
