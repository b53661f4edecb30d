package dev.stevedore.testing;

import java.util.concurrent.TimeUnit;

/** Child processes of the tests and benchmarks: daemons they start and must not leave behind. */
public final class Processes {
    private Processes() {}

    /** SIGTERM, so the process can shut down cleanly; SIGKILL if it has not within 10 s. */
    public static void stop(Process process) {
        if (!process.isAlive()) {
            return;
        }
        process.destroy();
        try {
            if (!process.waitFor(10, TimeUnit.SECONDS)) {
                process.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
            }
        } catch (InterruptedException e) {
            process.destroyForcibly();
            Thread.currentThread().interrupt();
        }
    }
}
