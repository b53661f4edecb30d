package dev.stevedore.bench;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.function.LongSupplier;

/**
 * Samples a process's resident set size at a fixed rate, for the shape of its memory over a run; the peak comes
 * from the kernel's high-water mark, which no sampling rate can miss.
 */
final class RssSampler implements AutoCloseable {
    private final ScheduledExecutorService timer =
            Executors.newSingleThreadScheduledExecutor(r -> new Thread(r, "rss-sampler"));
    private final List<Long> samples = new ArrayList<>();
    private final Duration every;

    RssSampler(LongSupplier rssBytes, Duration every) {
        this.every = every;
        timer.scheduleAtFixedRate(
                () -> {
                    long rss = rssBytes.getAsLong();
                    synchronized (samples) {
                        samples.add(rss);
                    }
                },
                0,
                every.toMillis(),
                TimeUnit.MILLISECONDS);
    }

    Duration every() {
        return every;
    }

    /** The samples so far, in bytes. */
    long[] samples() {
        synchronized (samples) {
            return samples.stream().mapToLong(Long::longValue).toArray();
        }
    }

    /** Takes no more samples. */
    void stop() {
        timer.shutdownNow();
    }

    @Override
    public void close() {
        stop();
    }
}
