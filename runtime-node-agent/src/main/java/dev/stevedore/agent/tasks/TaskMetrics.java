package dev.stevedore.agent.tasks;

import dev.stevedore.api.v1alpha1.TaskStatus;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.Meter;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Tags;
import io.micrometer.core.instrument.Timer;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * The node's tasks in Prometheus terms: how long starts take (the runtime's create and start to the Running status
 * written) and how long an exit takes to reach the API server as {@code Deleted}, the tasks ended by reason, and each
 * running task's CPU, memory and process count from its cgroup, labelled with its namespace, name and UID. The per-task
 * series are read once per scrape ({@link #refresh}) and exist while the task runs.
 */
public final class TaskMetrics {
    private static final Duration[] BUCKETS = {
        Duration.ofMillis(5),
        Duration.ofMillis(10),
        Duration.ofMillis(25),
        Duration.ofMillis(50),
        Duration.ofMillis(100),
        Duration.ofMillis(250),
        Duration.ofMillis(500),
        Duration.ofSeconds(1),
        Duration.ofMillis(2500),
        Duration.ofSeconds(5),
        Duration.ofSeconds(10),
        Duration.ofSeconds(30),
    };

    private final MeterRegistry registry;
    private final Path cgroupRoot;
    private final Timer startDuration;
    private final Timer exitToDeleted;
    private final Map<String, Running> running = new HashMap<>();

    public TaskMetrics(MeterRegistry registry, Path cgroupRoot) {
        this.registry = registry;
        this.cgroupRoot = cgroupRoot;
        this.startDuration = Timer.builder("stevedore.task.start.duration")
                .description("Time from a task's start decided to its Running status written: bundle, the runtime's "
                        + "create and start, records and the status")
                .serviceLevelObjectives(BUCKETS)
                .register(registry);
        this.exitToDeleted = Timer.builder("stevedore.task.exit.to.deleted")
                .description("Time from a task's exit (its exit file written) to its Deleted status written")
                .serviceLevelObjectives(BUCKETS)
                .register(registry);
    }

    void started(Duration took) {
        startDuration.record(took);
    }

    /** Its final status landed; {@code sinceExit} is null for one without an exit code (it never ran, or was lost). */
    void ended(TaskStatus status, Duration sinceExit) {
        Counter.builder("stevedore.tasks.ended")
                .description("Tasks that ended, by the reason of their Event: Exited, OOMKilled, Failed, or why their "
                        + "exit status was lost")
                .tag("reason", TaskEvents.ended(status).reason())
                .register(registry)
                .increment();
        if (sinceExit != null) {
            exitToDeleted.record(sinceExit.isNegative() ? Duration.ZERO : sinceExit);
        }
    }

    /** Reads the usage of {@code live} tasks for the next scrape, and drops the series of tasks no longer live. */
    public synchronized void refresh(Collection<TaskRecord> live) {
        Map<String, TaskRecord> now = new HashMap<>();
        live.forEach(r -> now.put(r.uid(), r));
        for (var it = running.entrySet().iterator(); it.hasNext(); ) {
            var task = it.next();
            if (!now.containsKey(task.getKey())) {
                task.getValue().meters.forEach(registry::remove);
                it.remove();
            }
        }
        for (TaskRecord rec : now.values()) {
            Optional<TaskUsage> usage = TaskUsage.of(cgroupRoot, rec.uid());
            Running task = running.get(rec.uid());
            if (usage.isEmpty()) {
                continue; // exiting: its last values stay until the record is not live
            }
            if (task == null) {
                // The UID too: a Task deleted and created again under its name may run beside the old one's exit.
                task = new Running(
                        usage.get(), Tags.of("namespace", rec.namespace(), "task", rec.name(), "uid", rec.uid()));
                running.put(rec.uid(), task);
            } else {
                task.usage = usage.get();
            }
        }
    }

    /** A running task's last usage read, and its meters, which read it. */
    private final class Running {
        private volatile TaskUsage usage;
        private final List<Meter> meters;

        private Running(TaskUsage usage, Tags tags) {
            this.usage = usage;
            this.meters = List.of(
                    FunctionCounter.builder("stevedore.task.cpu.usage", this, t -> t.usage.cpuSeconds())
                            .description("CPU time the task used, user and system")
                            .baseUnit("seconds")
                            .tags(tags)
                            .register(registry),
                    Gauge.builder("stevedore.task.memory.usage", this, t -> t.usage.memoryBytes())
                            .description("Memory the task's cgroup uses, page cache included")
                            .baseUnit("bytes")
                            .tags(tags)
                            .register(registry),
                    Gauge.builder("stevedore.task.memory.working.set", this, t -> t.usage.workingSetBytes())
                            .description("The task's memory less its inactive page cache")
                            .baseUnit("bytes")
                            .tags(tags)
                            .register(registry),
                    Gauge.builder("stevedore.task.pids", this, t -> t.usage.pids())
                            .description("Processes and threads in the task's cgroup")
                            .tags(tags)
                            .register(registry));
        }
    }
}
