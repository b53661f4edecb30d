package dev.stevedore.bench;

import dev.stevedore.api.v1alpha1.Container;
import dev.stevedore.api.v1alpha1.ContainerStatus;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.Watch;
import io.fabric8.kubernetes.client.Watcher;
import io.fabric8.kubernetes.client.WatcherException;
import java.time.Duration;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLongArray;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.ToIntFunction;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Watches the Containers of one namespace and records, by {@link System#nanoTime()}, when each is first seen
 * scheduled: spec.nodeName set and a Scheduled=True condition, i.e. what a client of the API would wait for.
 */
final class SchedulingWatch implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(SchedulingWatch.class);
    private static final Duration PROGRESS_EVERY = Duration.ofSeconds(15);

    private final ToIntFunction<String> indexOf;
    private final AtomicLongArray scheduledAt;
    private final CountDownLatch remaining;
    private final AtomicReference<WatcherException> failure = new AtomicReference<>();
    private final Watch watch;

    /** Starts watching now; call before the first Container is created, so no transition is missed. */
    SchedulingWatch(KubernetesClient client, String namespace, int count, ToIntFunction<String> indexOf) {
        this.indexOf = indexOf;
        this.scheduledAt = new AtomicLongArray(count);
        this.remaining = new CountDownLatch(count);
        this.watch = client.resources(Container.class).inNamespace(namespace).watch(new Watcher<>() {
            @Override
            public void eventReceived(Action action, Container container) {
                observed(container);
            }

            @Override
            public void onClose(WatcherException cause) {
                // fabric8 resumes a watch whose connection merely dropped; this is one it could not resume.
                failure.set(cause);
            }
        });
    }

    private void observed(Container container) {
        if (!scheduled(container)) {
            return;
        }
        int index = indexOf.applyAsInt(container.getMetadata().getName());
        if (index >= 0 && index < scheduledAt.length() && scheduledAt.compareAndSet(index, 0, System.nanoTime())) {
            remaining.countDown();
        }
    }

    static boolean scheduled(Container container) {
        return container.getSpec() != null
                && container.getSpec().nodeName() != null
                && container.getStatus() != null
                && container.getStatus().conditions() != null
                && container.getStatus().conditions().stream()
                        .anyMatch(c -> ContainerStatus.SCHEDULED.equals(c.getType()) && "True".equals(c.getStatus()));
    }

    /**
     * Waits until every Container was seen scheduled, checking {@code healthCheck} (which throws when what should
     * schedule them is gone) and logging progress while it waits.
     */
    void awaitAll(Duration timeout, Runnable healthCheck) throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        long nextProgress = System.nanoTime() + PROGRESS_EVERY.toNanos();
        while (!remaining.await(1, TimeUnit.SECONDS)) {
            healthCheck.run();
            if (failure.get() != null) {
                throw new IllegalStateException("the watch on Containers closed", failure.get());
            }
            long now = System.nanoTime();
            if (now > deadline) {
                throw new IllegalStateException("after " + timeout + ", " + remaining.getCount() + " of "
                        + scheduledAt.length() + " Containers are not scheduled");
            }
            if (now > nextProgress) {
                LOG.info(
                        "{} of {} Containers scheduled",
                        scheduledAt.length() - remaining.getCount(),
                        scheduledAt.length());
                nextProgress = now + PROGRESS_EVERY.toNanos();
            }
        }
    }

    /** When Container {@code index} was seen scheduled, by {@link System#nanoTime()}; 0 if not yet. */
    long scheduledAt(int index) {
        return scheduledAt.get(index);
    }

    @Override
    public void close() {
        watch.close();
    }
}
