package dev.stevedore.agent.taskapi;

import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpServerResponse;
import java.io.IOException;
import java.io.OutputStream;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;

/**
 * A chunked response written from a blocking thread, as a stream: bytes are gathered and sent at each flush, the
 * writer waits while the connection's write queue is full (a slow reader slows the log reader, it does not fill
 * the agent's heap), and a reader that went away turns every write into an {@link IOException}.
 */
final class ResponseStream extends OutputStream {
    private static final int BATCH = 16 * 1024;

    private final HttpServerResponse response;
    private final Semaphore drained = new Semaphore(0);
    private volatile boolean closed;
    private Buffer pending = Buffer.buffer();

    ResponseStream(HttpServerResponse response) {
        this.response = response;
        response.closeHandler(v -> closed());
        response.exceptionHandler(e -> closed());
        response.drainHandler(v -> drained.release());
    }

    private void closed() {
        closed = true;
        drained.release();
    }

    boolean isClosed() {
        return closed;
    }

    @Override
    public void write(int b) throws IOException {
        write(new byte[] {(byte) b}, 0, 1);
    }

    @Override
    public void write(byte[] bytes, int offset, int length) throws IOException {
        if (closed) {
            throw new IOException("the reader went away");
        }
        pending.appendBytes(bytes, offset, length);
        if (pending.length() >= BATCH) {
            flush();
        }
    }

    @Override
    public void flush() throws IOException {
        if (pending.length() == 0) {
            return;
        }
        try {
            while (response.writeQueueFull() && !closed) {
                drained.tryAcquire(1, TimeUnit.SECONDS);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted", e);
        }
        if (closed) {
            throw new IOException("the reader went away");
        }
        response.write(pending);
        pending = Buffer.buffer();
    }

    @Override
    public void close() throws IOException {
        if (!closed) {
            flush();
            response.end();
        }
    }
}
