package dev.stevedore.agent.tasks;

import java.io.IOException;
import java.nio.file.Files;
import java.time.Clock;
import java.util.Optional;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A restarted agent takes its recorded tasks back: each record meets what the runtime, conmon and the exit
 * directory show of the task, and {@link TaskDecisions#adopt} says what follows (start a container created but
 * never started, follow a running or paused one, finish one that ended meanwhile).
 */
final class TaskAdoption {
    private static final Logger LOG = LoggerFactory.getLogger(TaskAdoption.class);

    private final TaskRecords records;
    private final Runtimes runtimes;
    private final TaskResources resources;
    private final TaskDecisions decisions;
    private final TaskExecutor executor;
    private final Clock clock;

    TaskAdoption(
            TaskRecords records,
            Runtimes runtimes,
            TaskResources resources,
            TaskDecisions decisions,
            TaskExecutor executor,
            Clock clock) {
        this.records = records;
        this.runtimes = runtimes;
        this.resources = resources;
        this.decisions = decisions;
        this.executor = executor;
        this.clock = clock;
    }

    /** Adopts the task recorded as {@code uid} (the caller holds its lock); returns what the executor did. */
    TaskExecutor.Outcome adopt(String uid) throws IOException {
        TaskRecord rec = records.get(uid).orElse(null);
        if (rec == null) {
            return new TaskExecutor.Outcome(null, false, TaskExecutor.StatusWrite.NONE);
        }
        TaskDecisions.Found found = rec.live() ? look(rec) : null;
        if (found != null && !found.exitFilePresent()) {
            LOG.info(
                    "adopting task {}/{}: recorded {}, runtime says {}, conmon {}",
                    rec.namespace(),
                    rec.name(),
                    rec.state(),
                    found.runtimeState().orElse("nothing"),
                    found.monitorAlive() ? "running" : "gone");
        }
        return executor.execute(TaskRef.of(rec), rec, decisions.adopt(rec, found, clock.instant()));
    }

    /**
     * What the node shows of a live task outside its record: its conmon first, which writes the exit file before it
     * exits (a conmon gone and no exit file after it: none is coming), then the exit file, then the runtime, which
     * need not be asked when the exit file is there.
     */
    TaskDecisions.Found look(TaskRecord rec) throws IOException {
        // Learnt only of the recorded conmon (an older agent's record has none): never of a PID alone.
        Optional<ProcessHandle> conmon = resources.conmon(rec).filter(ProcessHandle::isAlive);
        if (Files.exists(records.exitFile(rec.runtimeId()))) {
            return new TaskDecisions.Found(Optional.empty(), true, conmon.isPresent(), null, null);
        }
        Optional<String> state = runtimes.named(rec.runtime()).state(rec.runtimeId());
        return new TaskDecisions.Found(
                state,
                false,
                conmon.isPresent(),
                state.isPresent() ? resources.containerProcess(rec.uid()) : null,
                conmon.map(h -> TaskResources.identify(h.pid())).orElse(null));
    }
}
