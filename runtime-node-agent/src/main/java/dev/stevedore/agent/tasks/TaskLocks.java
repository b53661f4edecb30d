package dev.stevedore.agent.tasks;

import java.io.IOException;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.locks.ReentrantLock;

/**
 * One lock per task: its reconcile, its exit, its stop timer, its adoption and the sweep take turns. A lock goes
 * with the task's record; tasks never wait for each other, except to start: the tasks of one Container take turns
 * deciding whether it is free, taken inside the task's own lock and never the other way round.
 */
final class TaskLocks {
    @FunctionalInterface
    interface Locked<T> {
        T run() throws IOException;
    }

    /** Striped rather than one per Container: nothing says when a Container's lock could go. */
    private static final int START_STRIPES = 64;

    private final Map<String, ReentrantLock> locks = new ConcurrentHashMap<>();
    private final ReentrantLock[] starts = new ReentrantLock[START_STRIPES];

    TaskLocks() {
        for (int i = 0; i < starts.length; i++) {
            starts[i] = new ReentrantLock();
        }
    }

    <T> T with(String uid, Locked<T> body) throws IOException {
        ReentrantLock lock = locks.computeIfAbsent(uid, k -> new ReentrantLock());
        lock.lock();
        try {
            return body.run();
        } finally {
            lock.unlock();
        }
    }

    /** Runs {@code body} while no other task of the Container {@code containerUid} starts. */
    <T> T withStartOf(String containerUid, Locked<T> body) throws IOException {
        ReentrantLock lock = starts[Math.floorMod(containerUid.hashCode(), starts.length)];
        lock.lock();
        try {
            return body.run();
        } finally {
            lock.unlock();
        }
    }

    /** The task's record has gone (called under its lock): so does its lock. */
    void forget(String uid) {
        locks.remove(uid);
    }
}
