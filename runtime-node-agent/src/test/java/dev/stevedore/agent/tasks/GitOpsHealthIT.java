package dev.stevedore.agent.tasks;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.stevedore.agent.NodeAgent;
import dev.stevedore.agent.testing.Containers;
import dev.stevedore.agent.testing.LocalRegistry;
import dev.stevedore.agent.testing.TestImages;
import dev.stevedore.api.v1alpha1.Container;
import dev.stevedore.api.v1alpha1.RuntimeNode;
import dev.stevedore.api.v1alpha1.Task;
import dev.stevedore.operator.StevedoreOperator;
import dev.stevedore.testing.ControlPlane;
import dev.stevedore.testing.Crds;
import dev.stevedore.testing.Processes;
import dev.stevedore.testing.TestNamespace;
import dev.stevedore.testing.Tools;
import dev.stevedore.testing.WithControlPlane;
import io.fabric8.kubernetes.client.dsl.base.PatchContext;
import io.fabric8.kubernetes.client.dsl.base.PatchType;
import io.fabric8.kubernetes.client.utils.Serialization;
import io.javaoperatorsdk.operator.Operator;
import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Containers and Tasks, driven by the real operator and agent into each state, read as GitOps tools read them:
 * kubectl gets them as YAML, and the kstatus helper (sigs.k8s.io/cli-utils, what Flux and kubectl's wait tooling
 * use) and the Argo CD health checks of docs/gitops.md (run by gopher-lua, Argo CD's interpreter) judge them.
 */
@WithControlPlane
class GitOpsHealthIT {
    private static final String NODE = "gitops-health-node";
    private static final Map<String, String> LABELS = Map.of("stevedore.dev/test", "gitops-health");
    private static final Duration PROCESS_TIMEOUT = Duration.ofSeconds(60);

    @TempDir
    static Path tmp;

    private static ControlPlane controlPlane;
    private static LocalRegistry registry;
    /** Accepts connections and never answers: a pull from it stays under way until the read timeout. */
    private static ServerSocket silentRegistry;

    private static NodeAgent.Running agent;
    private static Operator operator;
    private static String image;
    private static Path argocdCm;

    @BeforeAll
    static void start(ControlPlane cp) throws Exception {
        controlPlane = cp;
        argocdCm = Files.writeString(tmp.resolve("argocd-cm.yaml"), argocdConfigMapOfTheDocs());
        Crds.installStevedore(cp.adminClient());
        registry = LocalRegistry.start();
        silentRegistry = new ServerSocket(0, 50, InetAddress.getLoopbackAddress());
        image = registry.host() + "/test/busybox:1";
        TestImages.build(tmp.resolve("images")).push(TestImages.BASE, image);
        agent = NodeAgent.start(
                cp.adminClient(),
                NodeAgent.Settings.of(NODE, tmp.resolve("root"))
                        .withLabels(LABELS)
                        .withHeartbeatInterval(Duration.ofSeconds(5)));
        operator =
                StevedoreOperator.start(cp.adminClient(), new StevedoreOperator.Settings(null, Duration.ofSeconds(40)));
    }

    @AfterAll
    static void stop() throws IOException {
        try {
            operator.stop();
            agent.close();
        } finally {
            LeftoverTasks.removeUnder(tmp.resolve("root"), Runtimes.prepare(tmp.resolve("cleanup-runtimes")));
            silentRegistry.close();
            registry.close();
            controlPlane
                    .adminClient()
                    .resources(RuntimeNode.class)
                    .withName(NODE)
                    .delete();
        }
    }

    @Test
    void readyContainersAndTasksThatDoWhatWasAskedAreCurrentAndTheQueuedOneIsInProgress(TestNamespace ns) {
        container(ns, "service", image, "process: {args: [sleep, '3600']}");
        container(ns, "once", image, "process: {args: [sh, -c, 'echo done']}");
        task(ns, "once-1", "once");
        task(ns, "service-1", "service");
        awaitHealth(ns, "Task/service-1", "Current - | Healthy");
        task(ns, "service-2", "service");

        awaitHealth(
                ns,
                Map.of(
                        "Container/service", "Current - | Healthy",
                        "Container/once", "Current - | Healthy",
                        "Task/once-1", "Current - | Healthy",
                        "Task/service-1", "Current - | Healthy",
                        "Task/service-2", "InProgress ContainerBusy | Progressing"));

        // A service stopped as asked (sleep, as PID 1, dies only by the SIGKILL after the grace period) did its job.
        setDesiredState(ns, "service-1", "Stopped");
        awaitHealth(ns, "Task/service-2", "Current - | Healthy");
        assertThat(ns.client().resources(Task.class).withName("service-1").get().getStatus())
                .extracting(s -> s.phase().name(), s -> s.reason())
                .containsExactly("Deleted", "Signaled");
        awaitHealth(ns, "Task/service-1", "Current - | Healthy");
        assertThat(kubectl(ns, "wait", "--for=condition=Reconciling=false", "tk/service-2", "--timeout=10s"))
                .contains("condition met");
        setDesiredState(ns, "service-2", "Paused");
        awaitHealth(ns, "Task/service-2", "Current - | Suspended");
        setDesiredState(ns, "service-2", "Stopped");
        kubectl(ns, "wait", "--for=jsonpath={.status.phase}=Deleted", "tk/service-2", "--timeout=60s");
    }

    @Test
    void containersOnTheirWayAndTheirTasksAreInProgressWithTheReason(TestNamespace ns) {
        container(ns, "pulling", "127.0.0.1:" + silentRegistry.getLocalPort() + "/test/busybox:1", "");
        // Nothing listens on port 1: the pull fails as a registry that does not answer, which the node retries.
        container(ns, "unreachable", "127.0.0.1:1/test/busybox:1", "");
        task(ns, "unreachable-1", "unreachable");
        ns.client()
                .resource(Serialization.unmarshal("""
                        apiVersion: stevedore.dev/v1alpha1
                        kind: Container
                        metadata: {name: nowhere}
                        spec:
                          image: %s
                          nodeSelector: {stevedore.dev/test: no-such-node}
                        """.formatted(image), Container.class))
                .create();

        awaitHealth(
                ns,
                Map.of(
                        "Container/pulling", "InProgress Preparing | Progressing",
                        "Container/unreachable", "InProgress RegistryUnavailable | Progressing",
                        "Container/nowhere", "InProgress Unschedulable | Progressing",
                        "Task/unreachable-1", "InProgress ContainerNotReady | Progressing"));
    }

    @Test
    void containersTheNodeGaveUpOnAndTasksThatFailedAreFailedWithTheReasonUntilFixed(TestNamespace ns) {
        container(ns, "missing", registry.host() + "/test/no-such-image:1", "");
        task(ns, "missing-1", "missing");
        // A bind mount of a host path the node does not allow: the spec is rejected until the Container changes.
        container(ns, "rejected", image, """
                process: {args: [sh, -c, 'echo fixed']}
                mounts: [{source: /etc, destination: /host-etc}]
                """);
        container(ns, "failing", image, "process: {args: [sh, -c, 'exit 3']}");
        task(ns, "failing-1", "failing");

        awaitHealth(
                ns,
                Map.of(
                        "Container/missing", "Failed ManifestUnknown | Degraded",
                        "Task/missing-1", "Failed StartFailed | Degraded",
                        "Container/rejected", "Failed SpecRejected | Degraded",
                        "Container/failing", "Current - | Healthy",
                        "Task/failing-1", "Failed Error | Degraded"));
        assertThat(kubectl(ns, "wait", "--for=condition=Stalled", "ctr/missing", "tk/failing-1", "--timeout=10s"))
                .contains(
                        "container.stevedore.dev/missing condition met", "task.stevedore.dev/failing-1 condition met");

        ns.client()
                .resources(Container.class)
                .withName("rejected")
                .patch(PatchContext.of(PatchType.JSON_MERGE), "{\"spec\": {\"mounts\": null}}");
        awaitHealth(ns, "Container/rejected", "Current - | Healthy");
    }

    // --- what GitOps tools see --------------------------------------------------------------------------------

    private static void awaitHealth(TestNamespace ns, String object, String expected) {
        await().atMost(Containers.TIMEOUT)
                .pollInterval(Duration.ofSeconds(1))
                .untilAsserted(() -> assertThat(health(ns)).containsEntry(object, expected));
    }

    private static void awaitHealth(TestNamespace ns, Map<String, String> expected) {
        await().atMost(Containers.TIMEOUT)
                .pollInterval(Duration.ofSeconds(1))
                .untilAsserted(() -> assertThat(health(ns)).containsExactlyInAnyOrderEntriesOf(expected));
    }

    /**
     * "Kind/name" to "kstatus-status kstatus-reason | argo-cd-health" for every Container and Task of the namespace,
     * from one {@code kubectl get -o yaml}: both judge the same objects.
     */
    private static Map<String, String> health(TestNamespace ns) {
        String objects = kubectl(ns, "get", "containers.stevedore.dev,tasks.stevedore.dev", "-o", "yaml");
        Map<String, String> kstatus = judge(objects);
        Map<String, String> argocd = judge(objects, "-argocd-cm", argocdCm.toString());
        Map<String, String> both = new TreeMap<>();
        kstatus.forEach((object, status) -> {
            String[] statusAndReason = status.split(" ", 3);
            String health = argocd.getOrDefault(object, "none").split(" ", 2)[0];
            both.put(object, statusAndReason[0] + " " + statusAndReason[1] + " | " + health);
        });
        return both;
    }

    /** The kstatus helper's lines ("Kind/namespace/name status reason message") by "Kind/name". */
    private static Map<String, String> judge(String objects, String... flags) {
        List<String> command =
                new ArrayList<>(List.of(Tools.binDir().resolve("kstatus").toString()));
        command.addAll(List.of(flags));
        ProcessBuilder builder = new ProcessBuilder(command).redirectError(ProcessBuilder.Redirect.INHERIT);
        Processes.Result result = Processes.run(builder, objects, PROCESS_TIMEOUT);
        assertThat(result.exitCode()).as(result.output()).isZero();
        Map<String, String> byObject = new TreeMap<>();
        for (String line : result.output().lines().toList()) {
            String[] objectAndRest = line.split(" ", 2);
            String[] kindNamespaceName = objectAndRest[0].split("/");
            byObject.put(kindNamespaceName[0] + "/" + kindNamespaceName[2], objectAndRest[1]);
        }
        return byObject;
    }

    private static String kubectl(TestNamespace ns, String... args) {
        List<String> command = new ArrayList<>(List.of(
                Tools.binDir().resolve("kubectl").toString(),
                "--kubeconfig",
                controlPlane.kubeconfig().toString(),
                "-n",
                ns.name()));
        command.addAll(List.of(args));
        ProcessBuilder builder = new ProcessBuilder(command).redirectError(ProcessBuilder.Redirect.INHERIT);
        Processes.Result result = Processes.run(builder, PROCESS_TIMEOUT);
        assertThat(result.exitCode()).as(result.output()).isZero();
        return result.output();
    }

    /** The argocd-cm ConfigMap block of docs/gitops.md, as users copy it. */
    private static String argocdConfigMapOfTheDocs() throws IOException {
        String docs = Files.readString(Tools.repositoryRoot().resolve("docs/gitops.md"));
        Matcher block = Pattern.compile("```yaml\n(.*?)```", Pattern.DOTALL).matcher(docs);
        while (block.find()) {
            if (block.group(1).contains("name: argocd-cm")) {
                return block.group(1);
            }
        }
        throw new AssertionError("docs/gitops.md has no argocd-cm block");
    }

    // --- objects ----------------------------------------------------------------------------------------------

    private static void container(TestNamespace ns, String name, String image, String moreSpec) {
        Containers.create(ns, name, image, null, "nodeSelector: {stevedore.dev/test: gitops-health}\n" + moreSpec);
    }

    private static void task(TestNamespace ns, String name, String container) {
        ns.client()
                .resource(Serialization.unmarshal("""
                        apiVersion: stevedore.dev/v1alpha1
                        kind: Task
                        metadata: {name: %s}
                        spec: {container: %s, stopGracePeriodSeconds: 1}
                        """.formatted(name, container), Task.class))
                .create();
    }

    private static void setDesiredState(TestNamespace ns, String name, String state) {
        ns.client()
                .resources(Task.class)
                .withName(name)
                .patch(PatchContext.of(PatchType.JSON_MERGE), "{\"spec\": {\"desiredState\": \"" + state + "\"}}");
    }
}
