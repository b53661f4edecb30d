package dev.stevedore.testing;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/** Finds what the tests need from outside the JVM: the control-plane binaries that {@code hack/build-tools.sh} builds. */
public final class Tools {
    private Tools() {}

    /**
     * The directory named by the {@code stevedore.tools.dir} system property or the {@code STEVEDORE_TOOLS_DIR}
     * environment variable; otherwise the one {@code hack/build-tools.sh} prints (building them the first time).
     */
    public static Path binDir() {
        String configured = System.getProperty("stevedore.tools.dir", "");
        if (configured.isBlank()) {
            configured = System.getenv().getOrDefault("STEVEDORE_TOOLS_DIR", "");
        }
        return configured.isBlank() ? Path.of(runScript("hack/build-tools.sh")) : Path.of(configured);
    }

    /** The OCI runtime-spec schema directory that {@code hack/runtime-spec-schema.sh} prints. */
    public static Path runtimeSpecSchemaDir() {
        return Path.of(runScript("hack/runtime-spec-schema.sh"));
    }

    /** The checkout this code runs in: the nearest directory above the working directory with hack/build-tools.sh. */
    public static Path repositoryRoot() {
        for (Path dir = Path.of("").toAbsolutePath(); dir != null; dir = dir.getParent()) {
            if (Files.isExecutable(dir.resolve("hack/build-tools.sh"))) {
                return dir;
            }
        }
        throw new IllegalStateException("no hack/build-tools.sh above "
                + Path.of("").toAbsolutePath() + "; set -Dstevedore.tools.dir to the control-plane binaries");
    }

    /** Runs a script of the checkout and returns the last line it prints; its stderr goes to ours. */
    private static String runScript(String relativePath) {
        Path script = repositoryRoot().resolve(relativePath);
        try {
            Process process = new ProcessBuilder(script.toString())
                    .redirectError(ProcessBuilder.Redirect.INHERIT)
                    .start();
            String out = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
            if (process.waitFor() != 0) {
                throw new IllegalStateException(script + " failed with exit code " + process.exitValue());
            }
            return out.substring(out.lastIndexOf('\n') + 1);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while running " + script, e);
        }
    }
}
