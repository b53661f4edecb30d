package dev.stevedore.agent.containers;

import dev.stevedore.agent.images.Image;
import dev.stevedore.agent.images.ImageService;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import java.time.Duration;
import java.util.concurrent.atomic.AtomicLong;

/**
 * What preparing Containers costs the node, in Prometheus terms: image pulls by result (success, or the reason of
 * the ImageReady condition they failed with, a small fixed set), their duration and the layer bytes downloaded, and
 * the time each layer took to unpack into a snapshot.
 */
public final class PrepareMetrics {
    private static final Duration[] PULL_BUCKETS = seconds(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600);
    private static final Duration[] UNPACK_BUCKETS = seconds(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60);

    private final MeterRegistry registry;
    private final Timer pullDuration;
    private final Counter pulledBytes;

    public PrepareMetrics(MeterRegistry registry) {
        this.registry = registry;
        this.pullDuration = Timer.builder("stevedore.image.pull.duration")
                .description("Time successful image pulls took, from the first request to the image recorded")
                .serviceLevelObjectives(PULL_BUCKETS)
                .register(registry);
        this.pulledBytes = Counter.builder("stevedore.image.pull.bytes")
                .description("Bytes of image layers downloaded")
                .baseUnit("bytes")
                .register(registry);
    }

    /** A listener of one pull that measures it and passes everything on to {@code next}. */
    Pull measure(ImageService.PullListener next) {
        return new Pull(next);
    }

    void unpacked(String snapshotter, Duration took) {
        Timer.builder("stevedore.layer.unpack.duration")
                .description("Time an image layer took to unpack into a committed snapshot")
                .tag("snapshotter", snapshotter)
                .serviceLevelObjectives(UNPACK_BUCKETS)
                .register(registry)
                .record(took);
    }

    private void counted(String result) {
        Counter.builder("stevedore.image.pulls")
                .description("Image pulls by result: success, or the reason they failed with")
                .tag("result", result)
                .register(registry)
                .increment();
    }

    private static Duration[] seconds(double... values) {
        Duration[] durations = new Duration[values.length];
        for (int i = 0; i < values.length; i++) {
            durations[i] = Duration.ofNanos((long) (values[i] * 1e9));
        }
        return durations;
    }

    /** One pull, if the image was pulled at all: {@link #pulling} is not called for an image on the node. */
    final class Pull implements ImageService.PullListener {
        private final ImageService.PullListener next;
        private volatile boolean pulling;
        private final AtomicLong counted = new AtomicLong();

        private Pull(ImageService.PullListener next) {
            this.next = next;
        }

        @Override
        public void pulling(String reference) {
            pulling = true;
            next.pulling(reference);
        }

        @Override
        public void progress(long done, long total) {
            // Called at every read of the download: only what is new since the last call is added.
            long before = counted.getAndAccumulate(done, Math::max);
            if (done > before) {
                pulledBytes.increment(done - before);
            }
            next.progress(done, total);
        }

        @Override
        public void pulled(Image image, Duration took) {
            counted("success");
            pullDuration.record(took);
            next.pulled(image, took);
        }

        /** The pull (or the check of an image on the node) failed with the ImageReady condition's reason. */
        void failed(String reason) {
            if (pulling) {
                counted(reason);
            }
        }
    }
}
