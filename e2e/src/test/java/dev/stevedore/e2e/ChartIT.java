package dev.stevedore.e2e;

import static org.assertj.core.api.Assertions.assertThat;

import dev.stevedore.testing.Processes;
import dev.stevedore.testing.TestNamespace;
import dev.stevedore.testing.Tools;
import dev.stevedore.testing.WithControlPlane;
import io.fabric8.kubernetes.api.model.Container;
import io.fabric8.kubernetes.api.model.EnvVar;
import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.PodSpec;
import io.fabric8.kubernetes.api.model.Volume;
import io.fabric8.kubernetes.api.model.VolumeMount;
import io.fabric8.kubernetes.api.model.apps.DaemonSet;
import io.fabric8.kubernetes.api.model.apps.Deployment;
import io.fabric8.kubernetes.api.model.policy.v1.PodDisruptionBudget;
import io.fabric8.kubernetes.client.KubernetesClient;
import java.io.ByteArrayInputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import javax.xml.parsers.DocumentBuilderFactory;
import org.junit.jupiter.api.Test;

/**
 * The chart rendered by Helm with the values users set: what the agent and operator Pods get (host paths, probes,
 * the API server's address), what values.schema.json refuses, and that the API server accepts every object.
 */
@WithControlPlane
class ChartIT {
    private static final Path REPO = Tools.repositoryRoot();
    private static final Path CHART = REPO.resolve("charts/stevedore");

    @Test
    void theChartsAppVersionIsTheProjectVersionTheImagesAreTaggedWith() throws Exception {
        String pomVersion = DocumentBuilderFactory.newInstance()
                .newDocumentBuilder()
                .parse(REPO.resolve("pom.xml").toFile())
                .getDocumentElement()
                .getElementsByTagName("version")
                .item(0)
                .getTextContent();
        Matcher appVersion =
                Pattern.compile("(?m)^appVersion: \"(.*)\"$").matcher(Files.readString(CHART.resolve("Chart.yaml")));
        assertThat(appVersion.find()).isTrue();
        assertThat(appVersion.group(1)).as("Chart.yaml appVersion vs pom.xml").isEqualTo(pomVersion);
    }

    @Test
    void theAgentKeepsItsStateOnTheHostAndIsProbedOnTheNodesLoopback(TestNamespace ns) {
        List<HasMetadata> objects = render(
                ns,
                "--set",
                "agent.allowedHostPaths={/srv/data,/mnt/shared}",
                "--set",
                "kubernetesServiceHost=10.1.2.3",
                "--set",
                "kubernetesServicePort=6443");
        PodSpec pod = the(objects, DaemonSet.class).getSpec().getTemplate().getSpec();
        Container agent = pod.getContainers().get(0);

        assertThat(pod.getHostNetwork()).isTrue();
        assertThat(pod.getHostPID()).isTrue();
        assertThat(pod.getDnsPolicy()).isEqualTo("ClusterFirstWithHostNet");
        assertThat(pod.getPriorityClassName()).isEqualTo("system-node-critical");
        assertThat(pod.getTolerations()).singleElement().satisfies(t -> {
            assertThat(t.getOperator()).isEqualTo("Exists");
            assertThat(t.getKey()).isNull();
        });
        assertThat(agent.getArgs())
                .contains(
                        "--root=/var/lib/stevedore",
                        "--state-dir=/run/stevedore",
                        "--conmon-cgroup=/stevedore/conmon",
                        "--health-address=127.0.0.1:9440",
                        "--allow-host-path=/srv/data",
                        "--allow-host-path=/mnt/shared",
                        "--cni-conf-dir=/etc/cni/net.d",
                        "--cni-bin-dir=/opt/cni/bin",
                        "--resolv-conf=/host/resolv.conf");
        assertThat(hostPathMounts(pod, agent))
                .containsEntry("/var/lib/stevedore", "/var/lib/stevedore")
                .containsEntry("/run/stevedore", "/run/stevedore")
                .containsEntry("/sys/fs/cgroup", "/sys/fs/cgroup")
                .containsEntry("/srv/data", "/srv/data")
                .containsEntry("/mnt/shared", "/mnt/shared")
                .containsEntry("/etc/cni/net.d", "/etc/cni/net.d")
                .containsEntry("/opt/cni/bin", "/opt/cni/bin")
                .containsEntry("/var/lib/cni", "/var/lib/cni")
                .containsEntry("/run/xtables.lock", "/run/xtables.lock")
                .containsEntry("/host/resolv.conf", "/etc/resolv.conf");
        assertThat(agent.getVolumeMounts())
                .filteredOn(m -> m.getMountPath().equals("/var/lib/stevedore")
                        || m.getMountPath().equals("/run/stevedore"))
                .extracting(VolumeMount::getMountPropagation)
                .containsExactly("Bidirectional", "Bidirectional");
        assertThat(agent.getLivenessProbe().getHttpGet()).satisfies(get -> {
            assertThat(get.getHost()).isEqualTo("127.0.0.1");
            assertThat(get.getPath()).isEqualTo("/healthz");
            assertThat(get.getPort().getIntVal()).isEqualTo(9440);
        });
        assertThat(agent.getReadinessProbe().getHttpGet().getPath()).isEqualTo("/readyz");
        assertThat(agent.getResources().getRequests()).containsKeys("cpu", "memory");
        assertThat(agent.getResources().getLimits()).containsKey("memory");
        assertThat(env(agent))
                .containsEntry("KUBERNETES_SERVICE_HOST", "10.1.2.3")
                .containsEntry("KUBERNETES_SERVICE_PORT", "6443");
        assertThat(env(the(objects, Deployment.class)
                        .getSpec()
                        .getTemplate()
                        .getSpec()
                        .getContainers()
                        .get(0)))
                .containsEntry("KUBERNETES_SERVICE_HOST", "10.1.2.3")
                .containsEntry("KUBERNETES_SERVICE_PORT", "6443");
    }

    @Test
    void theOperatorIsProbedSpreadAndKeptThroughDrains(TestNamespace ns) {
        List<HasMetadata> objects =
                render(ns, "--set", "operator.hostNetwork=true", "--set", "operator.healthPort=9081");
        PodSpec pod = the(objects, Deployment.class).getSpec().getTemplate().getSpec();
        Container operator = pod.getContainers().get(0);

        assertThat(pod.getHostNetwork()).isTrue();
        assertThat(env(operator)).doesNotContainKey("KUBERNETES_SERVICE_HOST");
        assertThat(operator.getArgs()).contains("--health-port=9081", "--pull-credentials-port=8443");
        assertThat(operator.getPorts()).anySatisfy(p -> {
            assertThat(p.getName()).isEqualTo("health");
            assertThat(p.getContainerPort()).isEqualTo(9081);
        });
        assertThat(operator.getLivenessProbe().getHttpGet().getPath()).isEqualTo("/healthz");
        assertThat(operator.getReadinessProbe().getHttpGet().getPath()).isEqualTo("/readyz");
        assertThat(pod.getAffinity().getPodAntiAffinity().getPreferredDuringSchedulingIgnoredDuringExecution())
                .singleElement()
                .satisfies(term ->
                        assertThat(term.getPodAffinityTerm().getTopologyKey()).isEqualTo("kubernetes.io/hostname"));
        PodDisruptionBudget pdb = the(objects, PodDisruptionBudget.class);
        assertThat(pdb.getSpec().getMinAvailable().getIntVal()).isEqualTo(1);
        assertThat(pdb.getSpec().getSelector().getMatchLabels())
                .isEqualTo(
                        the(objects, Deployment.class).getSpec().getSelector().getMatchLabels());

        List<HasMetadata> single = render(ns, "--set", "operator.replicas=1", "--set", "operator.healthPort=0");
        assertThat(single).noneMatch(PodDisruptionBudget.class::isInstance);
        Container unprobed = the(single, Deployment.class)
                .getSpec()
                .getTemplate()
                .getSpec()
                .getContainers()
                .get(0);
        assertThat(unprobed.getLivenessProbe()).isNull();
        assertThat(unprobed.getArgs()).contains("--health-port=0");
    }

    /**
     * Both components serve /metrics where Prometheus looks: the agent on its node's address (status.hostIP), the
     * operator on every Pod address, each Pod annotated for annotation-driven scrape configs; PodMonitors on request.
     */
    @Test
    void bothComponentsServeMetricsWherePrometheusLooks(TestNamespace ns) {
        List<HasMetadata> objects = render(ns);
        DaemonSet agents = the(objects, DaemonSet.class);
        Container agent =
                agents.getSpec().getTemplate().getSpec().getContainers().get(0);
        assertThat(agent.getArgs()).contains("--metrics-address=$(HOST_IP):9441");
        assertThat(agent.getEnv())
                .filteredOn(e -> e.getName().equals("HOST_IP"))
                .singleElement()
                .satisfies(e -> assertThat(e.getValueFrom().getFieldRef().getFieldPath())
                        .isEqualTo("status.hostIP"));
        assertThat(agents.getSpec().getTemplate().getMetadata().getAnnotations())
                .containsEntry("prometheus.io/scrape", "true")
                .containsEntry("prometheus.io/port", "9441")
                .containsEntry("prometheus.io/path", "/metrics");
        Deployment operators = the(objects, Deployment.class);
        Container operator =
                operators.getSpec().getTemplate().getSpec().getContainers().get(0);
        assertThat(operator.getArgs()).contains("--metrics-address=:8080");
        assertThat(operator.getPorts()).anySatisfy(p -> {
            assertThat(p.getName()).isEqualTo("metrics");
            assertThat(p.getContainerPort()).isEqualTo(8080);
        });
        assertThat(operators.getSpec().getTemplate().getMetadata().getAnnotations())
                .containsEntry("prometheus.io/port", "8080");
        assertThat(objects).noneMatch(o -> o.getKind().equals("PodMonitor"));

        List<HasMetadata> monitored = render(
                ns,
                "--set",
                "metrics.podMonitor.enabled=true",
                "--set",
                "metrics.podMonitor.labels.release=prometheus",
                "--set",
                "agent.metricsPort=0");
        assertThat(monitored)
                .filteredOn(o -> o.getKind().equals("PodMonitor"))
                .singleElement()
                .satisfies(monitor -> {
                    assertThat(monitor.getMetadata().getName()).isEqualTo("t-operator");
                    assertThat(monitor.getMetadata().getLabels()).containsEntry("release", "prometheus");
                    assertThat(((GenericKubernetesResource) monitor)
                                    .getAdditionalProperties()
                                    .toString())
                            .contains("app.kubernetes.io/component=operator", "port=metrics", "path=/metrics");
                });
        DaemonSet unscraped = the(monitored, DaemonSet.class);
        assertThat(unscraped
                        .getSpec()
                        .getTemplate()
                        .getSpec()
                        .getContainers()
                        .get(0)
                        .getArgs())
                .noneMatch(a -> a.startsWith("--metrics-address"));
        assertThat(unscraped.getSpec().getTemplate().getMetadata().getAnnotations())
                .as("no annotations at all")
                .isNullOrEmpty();
    }

    /**
     * The aggregated API as the API server needs it: the APIService on the operator Service's port, the operator's
     * token for the agents' audience and its RBAC (reviews, the front proxy's ConfigMap), the agents' endpoint on
     * the node's address taking only the operator, and the users' role aggregated into view/edit/admin.
     */
    @Test
    void theAggregatedApiIsRegisteredWithWhatItNeeds(TestNamespace ns) {
        List<HasMetadata> objects = render(ns);
        io.fabric8.kubernetes.api.model.APIService apiService =
                the(objects, io.fabric8.kubernetes.api.model.APIService.class);
        assertThat(apiService.getMetadata().getName()).isEqualTo("v1alpha1.subresources.stevedore.dev");
        assertThat(apiService.getSpec().getService()).satisfies(service -> {
            assertThat(service.getNamespace()).isEqualTo(ns.name());
            assertThat(service.getName()).isEqualTo("t-operator");
            assertThat(service.getPort()).isEqualTo(8444);
        });
        assertThat(the(objects, io.fabric8.kubernetes.api.model.Service.class)
                        .getSpec()
                        .getPorts())
                .anySatisfy(p -> {
                    assertThat(p.getPort()).isEqualTo(8444);
                    assertThat(p.getTargetPort().getStrVal()).isEqualTo("subresources");
                });
        PodSpec operatorPod =
                the(objects, Deployment.class).getSpec().getTemplate().getSpec();
        assertThat(operatorPod.getContainers().get(0).getArgs())
                .contains(
                        "--subresources-port=8444",
                        "--agent-endpoint-token=/var/run/secrets/stevedore.dev/agent-endpoint/token");
        assertThat(operatorPod.getVolumes())
                .filteredOn(v -> v.getName().equals("agent-endpoint"))
                .singleElement()
                .satisfies(v -> assertThat(v.getProjected()
                                .getSources()
                                .get(0)
                                .getServiceAccountToken()
                                .getAudience())
                        .isEqualTo("stevedore.dev/agent-api"));
        assertThat(the(objects, DaemonSet.class)
                        .getSpec()
                        .getTemplate()
                        .getSpec()
                        .getContainers()
                        .get(0)
                        .getArgs())
                .contains(
                        "--endpoint-address=$(HOST_IP):10350",
                        "--operator-service-account=" + ns.name() + "/t-operator");
        assertThat(objects)
                .filteredOn(o -> o instanceof io.fabric8.kubernetes.api.model.rbac.RoleBinding binding
                        && binding.getMetadata().getNamespace().equals("kube-system"))
                .singleElement()
                .satisfies(o -> assertThat(((io.fabric8.kubernetes.api.model.rbac.RoleBinding) o)
                                .getRoleRef()
                                .getName())
                        .isEqualTo("extension-apiserver-authentication-reader"));
        assertThat(objects)
                .filteredOn(o -> o.getMetadata().getName().equals("t-tasks-subresources-view"))
                .singleElement()
                .satisfies(role -> assertThat(role.getMetadata().getLabels())
                        .containsEntry("rbac.authorization.k8s.io/aggregate-to-view", "true"));
    }

    @Test
    void valuesTheSchemaRefusesFailBeforeAnythingIsRendered() {
        Map<String, String> refusals = Map.ofEntries(
                Map.entry("agent.healthPort=http", "/agent/healthPort"),
                Map.entry("agent.root=var/lib/stevedore", "/agent/root"),
                Map.entry("agent.stateDir=/run/../etc", "/agent/stateDir"),
                Map.entry("agent.allowedHostPaths={relative}", "/agent/allowedHostPaths/0"),
                Map.entry("agent.conmonCgroup=stevedore", "/agent/conmonCgroup"),
                Map.entry("operator.replicas=0", "/operator/replicas"),
                Map.entry("operator.hostNetwork=yes", "/operator/hostNetwork"),
                Map.entry("operator.replica=2", "additional properties 'replica'"),
                Map.entry("agent.layerLimits.max-layer-byte=1", "additional properties 'max-layer-byte'"),
                Map.entry("kubernetesServicePort=https", "/kubernetesServicePort"),
                Map.entry("metrics.podMonitor.interval=often", "/metrics/podMonitor/interval"));
        refusals.forEach((set, field) -> {
            Processes.Result result = helm("template", "t", CHART.toString(), "--kube-version", "1.31.0", "--set", set);
            assertThat(result.exitCode()).as("helm template --set %s", set).isNotZero();
            assertThat(result.output()).as(set).contains("values don't meet the specifications", field);
        });
        Processes.Result tooOld = helm("template", "t", CHART.toString(), "--kube-version", "1.30.9");
        assertThat(tooOld.exitCode()).isNotZero();
        assertThat(tooOld.output()).contains("chart requires kubeVersion: >=1.31.0-0");
        assertThat(helm("lint", CHART.toString(), "--kube-version", "1.31.0", "--set", "agent.healthPort=x")
                        .exitCode())
                .isNotZero();
        assertThat(helm("lint", CHART.toString(), "--kube-version", "1.31.0").exitCode())
                .isZero();
    }

    @Test
    void theApiServerAcceptsEveryObjectRenderedWithNonDefaultValues(TestNamespace ns) {
        List<HasMetadata> objects = render(
                ns,
                "--include-crds",
                "--set",
                "agent.allowedHostPaths={/srv/data}",
                "--set",
                "operator.hostNetwork=true",
                "--set",
                "kubernetesServiceHost=10.1.2.3",
                "--set",
                "kubernetesServicePort=6443");
        assertThat(objects)
                .extracting(HasMetadata::getKind)
                .contains("CustomResourceDefinition", "DaemonSet", "Deployment", "PodDisruptionBudget");
        KubernetesClient client = ns.client();
        objects.forEach(o -> client.resource(o).dryRun().serverSideApply());
    }

    // --- helpers -------------------------------------------------------------------------------------------

    /** {@code helm template} of the chart into the test's namespace, parsed. */
    private static List<HasMetadata> render(TestNamespace ns, String... flags) {
        List<String> args = new ArrayList<>(
                List.of("template", "t", CHART.toString(), "--namespace", ns.name(), "--kube-version", "1.31.0"));
        args.addAll(List.of(flags));
        ProcessBuilder helm = helmCommand(args).redirectError(ProcessBuilder.Redirect.DISCARD);
        Processes.Result result = Processes.run(helm, Duration.ofMinutes(1));
        assertThat(result.exitCode()).as(result.output()).isZero();
        return ns.client()
                .load(new ByteArrayInputStream(result.output().getBytes(StandardCharsets.UTF_8)))
                .items();
    }

    private static Processes.Result helm(String... args) {
        return Processes.run(helmCommand(List.of(args)), Duration.ofMinutes(1));
    }

    private static ProcessBuilder helmCommand(List<String> args) {
        List<String> command =
                new ArrayList<>(List.of(Tools.binDir().resolve("helm").toString()));
        command.addAll(args);
        return new ProcessBuilder(command).directory(REPO.toFile());
    }

    private static <T extends HasMetadata> T the(List<HasMetadata> objects, Class<T> kind) {
        return objects.stream()
                .filter(kind::isInstance)
                .map(kind::cast)
                .reduce((a, b) -> {
                    throw new AssertionError("two " + kind.getSimpleName() + "s");
                })
                .orElseThrow(() -> new AssertionError("no " + kind.getSimpleName()));
    }

    /** Mount path to host path, for the container's hostPath volumes. */
    private static Map<String, String> hostPathMounts(PodSpec pod, Container container) {
        Map<String, String> hostPaths = pod.getVolumes().stream()
                .filter(v -> v.getHostPath() != null)
                .collect(Collectors.toMap(Volume::getName, v -> v.getHostPath().getPath()));
        return container.getVolumeMounts().stream()
                .filter(m -> hostPaths.containsKey(m.getName()))
                .collect(Collectors.toMap(VolumeMount::getMountPath, m -> hostPaths.get(m.getName())));
    }

    private static Map<String, String> env(Container container) {
        return container.getEnv().stream()
                .filter(e -> e.getValue() != null)
                .collect(Collectors.toMap(EnvVar::getName, EnvVar::getValue));
    }
}
