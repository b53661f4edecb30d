package dev.stevedore.agent.tasks;

import java.time.Duration;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Tries a task's status write again until it lands: after each failure {@code retry} is called with the task's UID
 * once the {@link Backoff} for the failures so far has passed, at most one call waiting per task however often it
 * fails meanwhile. The task's record stays the truth until then, so the retry writes what the record says then.
 */
final class StatusRetries implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(StatusRetries.class);

    private final Backoff backoff;
    private final Consumer<String> retry;
    /** Failures in a row, by task UID. */
    private final Map<String, Integer> failures = new ConcurrentHashMap<>();
    /** The tasks with a retry waiting. */
    private final Set<String> waiting = ConcurrentHashMap.newKeySet();

    private final ScheduledExecutorService timer = Executors.newSingleThreadScheduledExecutor(r -> {
        Thread t = new Thread(r, "task-status-retry");
        t.setDaemon(true);
        return t;
    });

    StatusRetries(Backoff backoff, Consumer<String> retry) {
        this.backoff = backoff;
        this.retry = retry;
    }

    /** A write for the task did not land; returns how long until it is tried again. */
    Duration failed(String uid) {
        int n = failures.merge(uid, 1, Integer::sum);
        if (n == 1) {
            LOG.info("status of task {} not written; trying again until it lands", uid);
        }
        Duration delay = backoff.after(n, ThreadLocalRandom.current().nextDouble());
        if (waiting.add(uid)) {
            timer.schedule(
                    () -> {
                        waiting.remove(uid);
                        retry.accept(uid);
                    },
                    delay.toMillis(),
                    TimeUnit.MILLISECONDS);
        }
        return delay;
    }

    /** The task's status landed (or there is no task left to tell): the next failure starts from the shortest wait. */
    void landed(String uid) {
        Integer failed = failures.remove(uid);
        if (failed != null) {
            LOG.info("status of task {} written (or its Task gone) after {} failed tries", uid, failed);
        }
    }

    @Override
    public void close() {
        timer.shutdownNow();
    }
}
