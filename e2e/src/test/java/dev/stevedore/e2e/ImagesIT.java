package dev.stevedore.e2e;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.stevedore.testing.Processes;
import dev.stevedore.testing.Tools;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * hack/build-images.sh builds the two images the chart names, as OCI image archives that run: each is read by skopeo
 * and unpacked by umoci as a registry and a node would, and its commands run in it under runc.
 *
 * <p>The images are built here, by the script users run (a cold build of the Debian base images takes one to five
 * minutes, then they are cached; Jib takes about one). When the build ran with profile images (hack/test.sh runs it
 * so), the script reuses the archives in target/ (STEVEDORE_SKIP_BUILD=1) rather than run Maven inside Maven.
 */
class ImagesIT {
    private static final Path REPO = Tools.repositoryRoot();
    private static final String VERSION = System.getProperty("stevedore.version");
    private static final Duration BUILD_TIMEOUT = Duration.ofMinutes(20);
    private static final Duration RUN_TIMEOUT = Duration.ofMinutes(2);
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    static Path work;

    private static Path operatorArchive;
    private static Path agentArchive;

    @BeforeAll
    static void build() {
        Path log = work.resolve("build-images.log");
        ProcessBuilder script = new ProcessBuilder(
                        REPO.resolve("hack/build-images.sh").toString())
                .directory(REPO.toFile())
                .redirectError(log.toFile());
        script.environment().put("STEVEDORE_SKIP_BUILD", "1");
        Processes.Result built = Processes.run(script, BUILD_TIMEOUT);
        assertThat(built.exitCode()).as(() -> read(log)).isZero();
        List<String> lines = built.output().lines().toList();
        operatorArchive = Path.of(lines.get(lines.size() - 2));
        agentArchive = Path.of(lines.get(lines.size() - 1));
        assertThat(operatorArchive).isEqualTo(REPO.resolve("operator/target/stevedore-operator-image.tar"));
        assertThat(agentArchive).isEqualTo(REPO.resolve("runtime-node-agent/target/stevedore-agent-image.tar"));
    }

    /** With rm, which removes the root file systems' absolute symbolic links quietly, unlike JUnit's @TempDir. */
    @AfterAll
    static void removeBundles() {
        exec("rm", "-rf", work.toString());
    }

    @Test
    void theOperatorImageRunsTheOperatorAsNonroot() throws Exception {
        assertThat(refName(operatorArchive)).isEqualTo("stevedore/operator:" + VERSION);
        assertThat(imageConfig(operatorArchive).path("User").asText()).isEqualTo("65532:65532");

        Path bundle = unpack(operatorArchive, "operator");
        Processes.Result help = run(bundle, entrypointWith(operatorArchive, "--help"));
        assertThat(help.exitCode()).as(help.output()).isZero();
        assertThat(help.output()).startsWith("Usage: stevedore-operator");
        Processes.Result id = run(bundle, List.of("id", "-u"));
        assertThat(id.output().strip()).isEqualTo("65532");
    }

    @Test
    void theAgentImageIsTheStevedoreAgentCommandWithTheProgramsItRuns() throws Exception {
        assertThat(refName(agentArchive)).isEqualTo("stevedore/runtime-node-agent:" + VERSION);
        JsonNode config = imageConfig(agentArchive);
        assertThat(config.path("Entrypoint").toString()).isEqualTo("[\"/usr/local/bin/stevedore-agent\"]");
        assertThat(config.path("User").asText()).isEmpty(); // root: it mounts, and runs runc for every user

        Path bundle = unpack(agentArchive, "agent");
        Processes.Result help = run(bundle, entrypointWith(agentArchive, "--help"));
        assertThat(help.exitCode()).as(help.output()).isZero();
        assertThat(help.output()).startsWith("Usage: stevedore-agent");
        Processes.Result importHelp = run(bundle, entrypointWith(agentArchive, "import", "--help"));
        assertThat(importHelp.exitCode()).as(importHelp.output()).isZero();
        assertThat(importHelp.output()).startsWith("Usage: stevedore-agent import");
        // The executables the agent runs, at the paths it runs them from, each working in the image.
        Processes.Result programs = run(
                bundle,
                List.of(
                        "/bin/sh",
                        "-ec",
                        "for p in /usr/sbin/runc /usr/bin/crun /usr/bin/conmon /usr/bin/unshare /usr/bin/umount; do"
                                + " $p --version >/dev/null; echo $p; done"));
        assertThat(programs.exitCode()).as(programs.output()).isZero();
        assertThat(programs.output().lines())
                .containsExactly(
                        "/usr/sbin/runc", "/usr/bin/crun", "/usr/bin/conmon", "/usr/bin/unshare", "/usr/bin/umount");
    }

    /** The agent's import, as an air-gapped node runs it: the operator's image into a node root, in the agent image. */
    @Test
    void theAgentImageImportsTheOperatorImage() throws Exception {
        Path bundle = unpack(agentArchive, "agent-import");
        addReadOnlyBind(bundle, operatorArchive, "/images/operator.tar");
        Processes.Result imported = run(
                bundle, entrypointWith(agentArchive, "import", "--root", "/var/lib/stevedore", "/images/operator.tar"));
        assertThat(imported.exitCode()).as(imported.output()).isZero();
        String manifest =
                index(operatorArchive).path("manifests").get(0).path("digest").asText();
        assertThat(imported.output().lines()).contains("stevedore/operator:" + VERSION + " " + manifest);
    }

    private static JsonNode index(Path archive) throws IOException {
        Processes.Result index =
                Processes.run(new ProcessBuilder("tar", "-xOf", archive.toString(), "index.json"), RUN_TIMEOUT);
        assertThat(index.exitCode()).as(index.output()).isZero();
        return JSON.readTree(index.output());
    }

    private static String refName(Path archive) throws IOException {
        return index(archive)
                .path("manifests")
                .get(0)
                .path("annotations")
                .path("org.opencontainers.image.ref.name")
                .asText();
    }

    private static JsonNode imageConfig(Path archive) throws IOException {
        Processes.Result inspected = Processes.run(
                new ProcessBuilder("skopeo", "inspect", "--config", "oci-archive:" + archive)
                        .redirectError(ProcessBuilder.Redirect.DISCARD),
                RUN_TIMEOUT);
        assertThat(inspected.exitCode()).as(inspected.output()).isZero();
        return JSON.readTree(inspected.output()).path("config");
    }

    /** An OCI runtime bundle of the archive's image: skopeo makes it a layout, umoci unpacks it with its config. */
    private static Path unpack(Path archive, String name) {
        Path layout = work.resolve(name + "-layout");
        Path bundle = work.resolve(name);
        exec("skopeo", "copy", "-q", "oci-archive:" + archive, "oci:" + layout + ":image");
        exec("umoci", "unpack", "--image", layout + ":image", bundle.toString());
        return bundle;
    }

    /** The image's entrypoint with {@code args} as its command. */
    private static List<String> entrypointWith(Path archive, String... args) throws IOException {
        List<String> command = new ArrayList<>();
        imageConfig(archive).path("Entrypoint").forEach(arg -> command.add(arg.asText()));
        command.addAll(List.of(args));
        return command;
    }

    private static void addReadOnlyBind(Path bundle, Path source, String destination) throws IOException {
        ObjectNode config =
                (ObjectNode) JSON.readTree(bundle.resolve("config.json").toFile());
        ((ArrayNode) config.path("mounts"))
                .addObject()
                .put("destination", destination)
                .put("type", "bind")
                .put("source", source.toString())
                .set("options", JSON.createArrayNode().add("rbind").add("ro"));
        JSON.writeValue(bundle.resolve("config.json").toFile(), config);
    }

    /** Runs {@code args} in a container of the bundle, as its image's user, and removes the container. */
    private static Processes.Result run(Path bundle, List<String> args) throws IOException {
        ObjectNode config =
                (ObjectNode) JSON.readTree(bundle.resolve("config.json").toFile());
        ObjectNode process = (ObjectNode) config.path("process");
        process.put("terminal", false);
        ArrayNode argv = process.putArray("args");
        args.forEach(argv::add);
        JSON.writeValue(bundle.resolve("config.json").toFile(), config);
        String id = "stevedore-images-it-" + UUID.randomUUID();
        return Processes.run(new ProcessBuilder("runc", "run", id).directory(bundle.toFile()), RUN_TIMEOUT);
    }

    private static String read(Path file) {
        try {
            return Files.readString(file);
        } catch (IOException e) {
            return e.toString();
        }
    }

    private static void exec(String... command) {
        Processes.Result result = Processes.run(new ProcessBuilder(command), RUN_TIMEOUT);
        assertThat(result.exitCode())
                .as(String.join(" ", command) + ": " + result.output())
                .isZero();
    }
}
