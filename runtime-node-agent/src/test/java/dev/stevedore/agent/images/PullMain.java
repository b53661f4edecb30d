package dev.stevedore.agent.images;

import dev.stevedore.agent.content.FileContentStore;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.Set;

/**
 * Pulls one reference into a fresh agent root in a JVM of its own, so a test can run the pull under the agent's
 * shipped JVM options. Prints the JVM's heap limit, then {@code pulled <digest>} or {@code failed <reason>:
 * <message>}. An OutOfMemoryError ends the JVM with a non-zero exit.
 *
 * <p>Arguments: the reference, the agent root.
 */
public final class PullMain {
    private PullMain() {}

    public static void main(String[] args) throws Exception {
        System.out.println("max heap " + Runtime.getRuntime().maxMemory());
        Path root = Path.of(args[1]);
        RegistryImageService service = new RegistryImageService(
                new FileContentStore(root),
                root.resolve("images"),
                Platform.current(),
                Set.of(),
                true,
                Duration.ofSeconds(10),
                RegistryClient.StallLimit.DEFAULT);
        try {
            System.out.println("pulled " + service.pull(args[0], Map.of()).digest());
        } catch (ImageException e) {
            System.out.println("failed " + e.reason() + ": " + e.getMessage());
        }
    }
}
