package dev.stevedore.bench;

import java.util.function.IntFunction;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A component the faults scenario kills and starts again (the node agent, the operator): its current process, and how
 * to start the next one ({@code start} gets the incarnation number, 1 for the first, for a log of its own). A process
 * that exits without being killed is started again too, and counted.
 */
final class Restartable implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(Restartable.class);

    private final String role;
    private final IntFunction<JvmProcess> start;
    private JvmProcess current;
    private int incarnation;
    private int unexpectedExits;
    private boolean closed;
    /** A run stopped with ^C must not start what the JVM's shutdown stops. */
    private final Thread closeOnExit = new Thread(this::close, "restartable-close");

    Restartable(String role, IntFunction<JvmProcess> start) {
        this.role = role;
        this.start = start;
        Runtime.getRuntime().addShutdownHook(closeOnExit);
    }

    synchronized JvmProcess start() {
        if (closed) {
            throw new IllegalStateException("the " + role + " is closed");
        }
        current = start.apply(++incarnation);
        return current;
    }

    /** SIGKILL: no shutdown hook runs, as when a node loses power or the OOM killer strikes. */
    synchronized void kill() {
        current.handle().destroyForcibly();
        current.handle().onExit().join();
        current.close();
        LOG.info("{} (pid {}) killed", role, current.pid());
    }

    /** Starts the component again if it exited on its own, and counts that. */
    synchronized void restartIfExited() {
        if (!closed && current != null && !current.isAlive()) {
            unexpectedExits++;
            LOG.error("the {} exited on its own; the end of its log:\n{}", role, current.logTail(40));
            current.close();
            start();
        }
    }

    synchronized int unexpectedExits() {
        return unexpectedExits;
    }

    @Override
    public synchronized void close() {
        closed = true;
        if (Thread.currentThread() != closeOnExit) {
            try {
                Runtime.getRuntime().removeShutdownHook(closeOnExit);
            } catch (IllegalStateException alreadyShuttingDown) {
                // the hook is running or has run
            }
        }
        if (current != null) {
            current.close();
        }
    }
}
