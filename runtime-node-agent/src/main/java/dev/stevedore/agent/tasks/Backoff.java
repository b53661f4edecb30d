package dev.stevedore.agent.tasks;

import java.time.Duration;

/**
 * How long to wait before trying again after a run of failures: doubling from {@code initial} up to {@code cap},
 * less up to {@code jitter} of it at random, so the retries of many tasks do not reach a returning API server in
 * step, and the cap stays the longest wait: a server that is back is seen within {@code cap}. Pure: the caller
 * passes the random draw.
 */
record Backoff(Duration initial, Duration cap, double jitter) {
    /** Status writes: a few tries in the first second, then one every 2 to 4 s for as long as it takes. */
    static final Backoff STATUS_WRITES = new Backoff(Duration.ofMillis(200), Duration.ofSeconds(4), 0.5);

    Backoff {
        if (initial.isNegative() || initial.isZero() || cap.compareTo(initial) < 0 || jitter < 0 || jitter >= 1) {
            throw new IllegalArgumentException("initial > 0, cap >= initial, 0 <= jitter < 1");
        }
    }

    /**
     * @param failures how many tries in a row failed, at least 1
     * @param random a draw from [0, 1)
     */
    Duration after(int failures, double random) {
        if (failures < 1) {
            throw new IllegalArgumentException("failures must be at least 1: " + failures);
        }
        // 2^30 ms is 12 days: far past any cap, and the shift cannot overflow.
        long doubled = initial.toMillis() << Math.min(failures - 1, 30);
        long full = Math.min(doubled < 0 ? Long.MAX_VALUE : doubled, cap.toMillis());
        return Duration.ofMillis(full - (long) (full * jitter * random));
    }
}
