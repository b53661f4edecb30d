package dev.stevedore.agent.containers;

import dev.stevedore.agent.images.Image;
import dev.stevedore.agent.images.ImageService;
import dev.stevedore.api.EventRecorder;
import dev.stevedore.api.v1alpha1.Container;
import java.time.Duration;
import java.util.Locale;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * What a Container's pull shows while it runs: the Events kubelet records ({@code Pulling}, {@code Pulled}), and its
 * progress, as {@code ctr pull} prints it, in the Container's status ({@code ImageReady=False}, reason
 * {@code Pulling}, "pulling REF: 52.3 MiB of 200.1 MiB (26%)").
 *
 * <p>The progress is shown by a timer every {@link #INTERVAL} (so a stalled pull shows where it stalled), not at
 * the downloading thread's reads, which only note the counts. It is never shown after the pull: {@link #close()}
 * stops the timer under the lock each showing holds, and the Container's next status is written after it.
 */
final class PullProgress implements ImageService.PullListener, AutoCloseable {
    static final Duration INTERVAL = Duration.ofSeconds(2);
    private static final Logger LOG = LoggerFactory.getLogger(PullProgress.class);
    private static final double MIB = 1024.0 * 1024.0;

    private final EventRecorder events;
    private final ScheduledExecutorService timer;
    private final Container container;
    private final Consumer<String> show;
    private final AtomicLong done = new AtomicLong();
    private final AtomicLong total = new AtomicLong(-1);
    /** Guarded by this. */
    private String reference;

    private ScheduledFuture<?> ticks;
    private long shown = -1;
    private boolean closed;

    /** @param show writes the progress, a message, to the Container's status */
    PullProgress(EventRecorder events, ScheduledExecutorService timer, Container container, Consumer<String> show) {
        this.events = events;
        this.timer = timer;
        this.container = container;
        this.show = show;
    }

    @Override
    public synchronized void pulling(String reference) {
        events.record(container, EventRecorder.NORMAL, "Pulling", "Pulling image \"" + reference + "\"");
        if (!closed) {
            this.reference = reference;
            ticks = timer.scheduleWithFixedDelay(
                    this::tick, INTERVAL.toMillis(), INTERVAL.toMillis(), TimeUnit.MILLISECONDS);
        }
    }

    @Override
    public void progress(long done, long total) {
        this.total.set(total);
        this.done.set(done);
    }

    @Override
    public void pulled(Image image, Duration took) {
        events.record(
                container,
                EventRecorder.NORMAL,
                "Pulled",
                String.format(
                        Locale.ROOT,
                        "Successfully pulled image \"%s\" in %.3fs. Image size: %d bytes. Digest: %s",
                        image.name(),
                        took.toMillis() / 1000.0,
                        image.size(),
                        image.digest()));
    }

    /** Shows the progress, unless the pull is over or nothing moved since it was last shown. */
    private synchronized void tick() {
        long now = done.get();
        if (closed || total.get() < 0 || now == shown) {
            return;
        }
        shown = now;
        try {
            show.accept(describe(reference, now, total.get()));
        } catch (RuntimeException e) {
            // The next tick tries again; the pull goes on either way.
            LOG.debug("showing the pull of {}: {}", reference, e.toString());
        }
    }

    /** "pulling REF: 52.3 MiB of 200.1 MiB (26%)". */
    static String describe(String reference, long done, long total) {
        long percent = total == 0 ? 100 : Math.min(100, done * 100 / total);
        return String.format(
                Locale.ROOT, "pulling %s: %.1f MiB of %.1f MiB (%d%%)", reference, done / MIB, total / MIB, percent);
    }

    @Override
    public synchronized void close() {
        closed = true;
        if (ticks != null) {
            ticks.cancel(false);
        }
    }
}
