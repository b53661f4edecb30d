package dev.stevedore.agent.containers;

import static org.assertj.core.api.Assertions.assertThat;

import dev.stevedore.agent.images.ImageException;
import dev.stevedore.agent.images.ImageService;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class PrepareMetricsTest {
    private final SimpleMeterRegistry registry = new SimpleMeterRegistry();
    private final PrepareMetrics metrics = new PrepareMetrics(registry);

    @Test
    void aPullCountsItsBytesOnceAndItsResultAndPassesEverythingOn() {
        List<String> told = new ArrayList<>();
        PrepareMetrics.Pull pull = metrics.measure(new ImageService.PullListener() {
            @Override
            public void progress(long done, long total) {
                told.add(done + "/" + total);
            }
        });
        pull.pulling("registry.example/app:1");
        pull.progress(100, 1000);
        pull.progress(100, 1000); // no new bytes
        pull.progress(700, 1000);
        pull.pulled(null, Duration.ofSeconds(2));

        assertThat(registry.get("stevedore.image.pull.bytes").counter().count()).isEqualTo(700);
        assertThat(registry.get("stevedore.image.pulls")
                        .tag("result", "success")
                        .counter()
                        .count())
                .isEqualTo(1);
        assertThat(registry.get("stevedore.image.pull.duration").timer().count())
                .isEqualTo(1);
        assertThat(told).containsExactly("100/1000", "100/1000", "700/1000");
    }

    @Test
    void aFailedPullCountsUnderItsReasonAndAnImageAlreadyHereCountsNothing() {
        PrepareMetrics.Pull failed = metrics.measure(ImageService.PullListener.NONE);
        failed.pulling("registry.example/app:1");
        failed.failed(ImageException.UNAUTHORIZED);
        // The image was on the node: ensure found it and never pulled, then the check failed otherwise.
        metrics.measure(ImageService.PullListener.NONE).failed(ImageException.STORAGE_FAILURE);

        assertThat(registry.get("stevedore.image.pulls")
                        .tag("result", "Unauthorized")
                        .counter()
                        .count())
                .isEqualTo(1);
        assertThat(registry.find("stevedore.image.pulls").counters()).hasSize(1);
        assertThat(registry.get("stevedore.image.pull.duration").timer().count())
                .isZero();
    }
}
