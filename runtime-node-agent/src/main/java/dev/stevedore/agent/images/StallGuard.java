package dev.stevedore.agent.images;

import static dev.stevedore.agent.images.ImageException.REGISTRY_UNAVAILABLE;

import java.io.FilterInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.time.Duration;
import java.util.function.LongSupplier;

/**
 * Fails a response body that delivers fewer than {@code minBytes} in any {@code window}. The read timeout alone
 * ends only a body that stops: one that drips a byte just inside it would hold the pull, and its thread, for ever.
 * Each read still waits at most the read timeout, so a stall is noticed within the window plus that timeout.
 */
final class StallGuard extends FilterInputStream {
    private final String what;
    private final long windowNanos;
    private final long minBytes;
    private final LongSupplier nanoTime;
    private long windowStart;
    private long bytesInWindow;

    StallGuard(InputStream in, String what, Duration window, long minBytes, LongSupplier nanoTime) {
        super(in);
        this.what = what;
        this.windowNanos = window.toNanos();
        this.minBytes = minBytes;
        this.nanoTime = nanoTime;
        this.windowStart = nanoTime.getAsLong();
    }

    @Override
    public int read() throws IOException {
        byte[] one = new byte[1];
        int n = read(one, 0, 1);
        return n < 0 ? -1 : one[0] & 0xff;
    }

    @Override
    public int read(byte[] b, int off, int len) throws IOException {
        int n = super.read(b, off, len);
        if (n > 0) {
            bytesInWindow += n;
        }
        long now = nanoTime.getAsLong();
        if (n >= 0 && now - windowStart >= windowNanos) {
            if (bytesInWindow < minBytes) {
                throw new FetchException(
                        REGISTRY_UNAVAILABLE,
                        String.format(
                                "%s: the registry stalled: %d bytes in %.1f s, less than the %d bytes per %.1f s a"
                                        + " transfer must make",
                                what, bytesInWindow, (now - windowStart) / 1e9, minBytes, windowNanos / 1e9),
                        true,
                        null);
            }
            windowStart = now;
            bytesInWindow = 0;
        }
        return n;
    }
}
