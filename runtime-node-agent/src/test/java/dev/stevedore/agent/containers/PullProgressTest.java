package dev.stevedore.agent.containers;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.stevedore.api.EventRecorder;
import dev.stevedore.api.v1alpha1.Container;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** A pull's progress as the Container's status shows it: how it reads, when it is shown, and never after the pull. */
class PullProgressTest {
    private static final long MIB = 1024 * 1024;

    private final ScheduledExecutorService timer = Executors.newSingleThreadScheduledExecutor();
    private final List<String> shown = new CopyOnWriteArrayList<>();

    @AfterEach
    void stopTimer() {
        timer.shutdownNow();
    }

    @Test
    void itReadsAsCtrPullPrintsIt() {
        assertThat(PullProgress.describe("r.example/app:1", 52 * MIB + MIB / 2, 200 * MIB))
                .isEqualTo("pulling r.example/app:1: 52.5 MiB of 200.0 MiB (26%)");
        assertThat(PullProgress.describe("r.example/app:1", 0, 0))
                .as("every layer already on the node")
                .isEqualTo("pulling r.example/app:1: 0.0 MiB of 0.0 MiB (100%)");
    }

    @Test
    void theTimerShowsWhatMovedAndNothingOnceThePullIsOver() {
        PullProgress pull = new PullProgress(EventRecorder.discarding(), timer, new Container(), shown::add);
        pull.pulling("r.example/app:1");
        pull.progress(0, 20 * MIB);
        pull.progress(5 * MIB, 20 * MIB);

        await().atMost(PullProgress.INTERVAL.multipliedBy(5))
                .until(() -> shown.contains("pulling r.example/app:1: 5.0 MiB of 20.0 MiB (25%)"));
        // Nothing moved: nothing written again.
        await().during(PullProgress.INTERVAL.multipliedBy(2))
                .atMost(PullProgress.INTERVAL.multipliedBy(4))
                .until(() -> shown.size() == 1);

        pull.close();
        pull.progress(20 * MIB, 20 * MIB);
        await().during(PullProgress.INTERVAL.multipliedBy(2))
                .atMost(PullProgress.INTERVAL.multipliedBy(4))
                .until(() -> shown.size() == 1);
    }
}
