package dev.stevedore.e2e;

import static org.assertj.core.api.Assertions.assertThat;

import dev.stevedore.testing.Processes;
import dev.stevedore.testing.TestNamespace;
import dev.stevedore.testing.Tools;
import dev.stevedore.testing.WithControlPlane;
import io.fabric8.kubernetes.api.model.EnvVar;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.apps.DaemonSet;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;

/** manifests/stevedore.yaml is the chart rendered, and the API server accepts every object in it. */
@WithControlPlane
class InstallManifestsIT {
    private static final Path REPO = Tools.repositoryRoot();

    @Test
    void theCheckedInManifestIsTheRenderedChart() throws Exception {
        ProcessBuilder render = new ProcessBuilder(
                        REPO.resolve("hack/update-manifests.sh").toString(), "--stdout")
                .directory(REPO.toFile())
                .redirectError(ProcessBuilder.Redirect.DISCARD);
        Processes.Result result = Processes.run(render, Duration.ofMinutes(2));
        assertThat(result.exitCode()).isZero();
        String rendered = result.output();
        assertThat(Files.readString(REPO.resolve("manifests/stevedore.yaml")))
                .as("manifests/stevedore.yaml is stale: run hack/update-manifests.sh")
                .isEqualTo(rendered);
    }

    @Test
    void theChartRunsTheAgentWithTheJvmOptionsItShipsWith(TestNamespace ns) throws Exception {
        List<String> shipped = Files.readAllLines(REPO.resolve("runtime-node-agent/jvm.options")).stream()
                .map(line -> line.replaceFirst("#.*", "").strip())
                .filter(line -> !line.isEmpty())
                .toList();
        DaemonSet agent =
                ns.client().load(Files.newInputStream(REPO.resolve("manifests/stevedore.yaml"))).items().stream()
                        .filter(DaemonSet.class::isInstance)
                        .map(DaemonSet.class::cast)
                        .findFirst()
                        .orElseThrow();
        String jdkJavaOptions = agent.getSpec().getTemplate().getSpec().getContainers().get(0).getEnv().stream()
                .filter(env -> env.getName().equals("JDK_JAVA_OPTIONS"))
                .map(EnvVar::getValue)
                .findFirst()
                .orElseThrow();
        assertThat(shipped).isNotEmpty();
        assertThat(jdkJavaOptions.split(" "))
                .as("the chart's agent.jvmOptions vs runtime-node-agent/jvm.options")
                .containsExactlyElementsOf(shipped);
    }

    @Test
    void theNamespaceAllowsThePrivilegedNodeAgent(TestNamespace ns) throws Exception {
        List<HasMetadata> objects = ns.client()
                .load(Files.newInputStream(REPO.resolve("manifests/stevedore.yaml")))
                .items();
        assertThat(objects)
                .filteredOn(o -> o.getKind().equals("Namespace"))
                .singleElement()
                .satisfies(namespace -> assertThat(namespace.getMetadata().getLabels())
                        .containsEntry("pod-security.kubernetes.io/enforce", "privileged"));
        assertThat(objects)
                .filteredOn(DaemonSet.class::isInstance)
                .map(o -> ((DaemonSet) o)
                        .getSpec()
                        .getTemplate()
                        .getSpec()
                        .getContainers()
                        .get(0)
                        .getSecurityContext())
                .singleElement()
                .satisfies(security -> assertThat(security.getPrivileged()).isTrue());
    }

    @Test
    void everyObjectOfTheManifestIsAccepted(TestNamespace ns) throws Exception {
        List<HasMetadata> objects = ns.client()
                .load(Files.newInputStream(REPO.resolve("manifests/stevedore.yaml")))
                .items();
        assertThat(objects)
                .extracting(HasMetadata::getKind)
                .contains("Namespace", "CustomResourceDefinition", "ServiceAccount", "ClusterRole", "Deployment");
        // The namespace for real (objects in a missing namespace are refused even in a dry run), then a server-side
        // dry run of the rest: admission and validation of every object, without running anything.
        objects.stream()
                .filter(o -> o.getKind().equals("Namespace"))
                .forEach(o -> ns.deleteAfterTest(ns.client().resource(o).serverSideApply()));
        objects.stream()
                .filter(o -> !o.getKind().equals("Namespace"))
                .forEach(o -> ns.client().resource(o).dryRun().serverSideApply());
    }
}
