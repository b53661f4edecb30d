package dev.stevedore.agent.snapshots;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Applies a layer in a JVM of its own, so a test can choose the locale it runs under. Prints the JDK's file name
 * encoding first, so the test can tell that the locale took effect.
 *
 * <p>Arguments: the mode (OVERLAY or NATIVE), the uncompressed layer, the rootfs directory.
 */
public final class ApplyLayerMain {
    private ApplyLayerMain() {}

    public static void main(String[] args) throws IOException {
        System.out.println(System.getProperty("sun.jnu.encoding"));
        try (InputStream tar = Files.newInputStream(Path.of(args[1]))) {
            new LayerApplier(LayerApplier.Mode.valueOf(args[0]), LayerLimits.DEFAULTS).apply(tar, Path.of(args[2]));
        }
    }
}
