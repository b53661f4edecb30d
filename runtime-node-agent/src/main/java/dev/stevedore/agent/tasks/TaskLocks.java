package dev.stevedore.agent.tasks;

import java.io.IOException;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.locks.ReentrantLock;

/**
 * One lock per task: its reconcile, its exit, its stop timer, its adoption and the sweep take turns. A lock goes
 * with the task's record; tasks never wait for each other.
 */
final class TaskLocks {
    @FunctionalInterface
    interface Locked<T> {
        T run() throws IOException;
    }

    private final Map<String, ReentrantLock> locks = new ConcurrentHashMap<>();

    <T> T with(String uid, Locked<T> body) throws IOException {
        ReentrantLock lock = locks.computeIfAbsent(uid, k -> new ReentrantLock());
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
