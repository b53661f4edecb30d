package dev.stevedore.e2e;

import static org.assertj.core.api.Assertions.assertThat;

import dev.stevedore.testing.ControlPlane;
import dev.stevedore.testing.Processes;
import dev.stevedore.testing.Tools;
import io.fabric8.kubernetes.api.model.HasMetadata;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The install without Helm, as the README gives it, on a control plane of its own that has never seen Stevedore:
 * {@code kubectl apply --server-side -f manifests/stevedore.yaml}, the CRDs Established, then
 * {@code kubectl apply -f manifests/examples/} creates every example object. Real applies, with the pinned kubectl.
 */
class ApplyOnAnEmptyClusterIT {
    private static final Path REPO = Tools.repositoryRoot();
    private static final List<String> CRDS =
            List.of("containers.stevedore.dev", "tasks.stevedore.dev", "runtimenodes.stevedore.dev");

    @TempDir
    static Path tmp;

    private static ControlPlane cluster;
    private static Path kubectl;

    @BeforeAll
    static void emptyCluster() {
        Path tools = Tools.binDir();
        kubectl = tools.resolve("kubectl");
        cluster = ControlPlane.startEphemeral(tools);
    }

    @AfterAll
    static void stop() {
        cluster.close();
    }

    @Test
    void theManifestThenTheExamplesApply() throws Exception {
        assertThat(kubectl("get", "crd", "-o", "name").output()).doesNotContain("stevedore.dev");

        Processes.Result install = kubectl("apply", "--server-side", "-f", "manifests/stevedore.yaml");
        assertThat(install.exitCode()).as(install.output()).isZero();
        List<String> waitForCrds = new ArrayList<>(List.of("wait", "--for=condition=Established", "--timeout=60s"));
        CRDS.forEach(crd -> waitForCrds.add("crd/" + crd));
        Processes.Result established = kubectl(waitForCrds.toArray(String[]::new));
        assertThat(established.exitCode()).as(established.output()).isZero();

        Processes.Result examples = kubectl("apply", "-f", "manifests/examples/");
        assertThat(examples.exitCode()).as(examples.output()).isZero();

        int exampleObjects = 0;
        try (Stream<Path> files = Files.list(REPO.resolve("manifests/examples"))) {
            for (Path file : files.filter(f -> f.toString().endsWith(".yaml")).toList()) {
                exampleObjects += objectsOf(file).size();
            }
        }
        assertThat(examples.output().lines())
                .as("kubectl apply's line per object")
                .hasSize(exampleObjects)
                .allMatch(line -> line.endsWith(" created"));

        // Every object of both, found where the files put it (the examples name no namespace: default).
        Processes.Result created =
                kubectl("get", "-f", "manifests/stevedore.yaml", "-f", "manifests/examples/", "-o", "name");
        assertThat(created.exitCode()).as(created.output()).isZero();
        assertThat(created.output().lines())
                .hasSize(objectsOf(REPO.resolve("manifests/stevedore.yaml")).size() + exampleObjects)
                .contains(
                        "customresourcedefinition.apiextensions.k8s.io/containers.stevedore.dev",
                        "deployment.apps/stevedore-operator",
                        "container.stevedore.dev/hello-world",
                        "task.stevedore.dev/hello-world",
                        "secret/private-registry-credentials");
    }

    private static List<HasMetadata> objectsOf(Path file) throws IOException {
        try (InputStream in = Files.newInputStream(file)) {
            return cluster.adminClient().load(in).items();
        }
    }

    private static Processes.Result kubectl(String... args) {
        List<String> command = new ArrayList<>(List.of(
                kubectl.toString(),
                "--kubeconfig",
                cluster.kubeconfig().toString(),
                "--cache-dir",
                tmp.resolve("kube-cache").toString()));
        command.addAll(List.of(args));
        return Processes.run(new ProcessBuilder(command).directory(REPO.toFile()), Duration.ofMinutes(2));
    }
}
