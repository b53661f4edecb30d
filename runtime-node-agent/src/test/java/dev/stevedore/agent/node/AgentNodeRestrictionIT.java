package dev.stevedore.agent.node;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import dev.stevedore.agent.testing.AgentProcess;
import dev.stevedore.agent.testing.Containers;
import dev.stevedore.agent.testing.LocalRegistry;
import dev.stevedore.agent.testing.ObjectEvents;
import dev.stevedore.agent.testing.Tasks;
import dev.stevedore.agent.testing.TestImages;
import dev.stevedore.api.FieldManager;
import dev.stevedore.api.NodeAgentFinalizer;
import dev.stevedore.api.v1alpha1.Conditions;
import dev.stevedore.api.v1alpha1.Container;
import dev.stevedore.api.v1alpha1.ContainerStatus;
import dev.stevedore.api.v1alpha1.RuntimeNode;
import dev.stevedore.api.v1alpha1.RuntimeNodeSpec;
import dev.stevedore.api.v1alpha1.RuntimeNodeStatus;
import dev.stevedore.api.v1alpha1.Task;
import dev.stevedore.api.v1alpha1.TaskStatus;
import dev.stevedore.testing.Chart;
import dev.stevedore.testing.ControlPlane;
import dev.stevedore.testing.Crds;
import dev.stevedore.testing.NodeCredentials;
import dev.stevedore.testing.TestNamespace;
import dev.stevedore.testing.WithControlPlane;
import io.fabric8.kubernetes.api.model.ConfigMap;
import io.fabric8.kubernetes.api.model.ConfigMapBuilder;
import io.fabric8.kubernetes.api.model.Event;
import io.fabric8.kubernetes.api.model.EventBuilder;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.fabric8.kubernetes.api.model.ObjectReferenceBuilder;
import io.fabric8.kubernetes.api.model.Secret;
import io.fabric8.kubernetes.api.model.authorization.v1.SelfSubjectAccessReviewBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.fabric8.kubernetes.client.Watcher;
import io.fabric8.kubernetes.client.WatcherException;
import io.fabric8.kubernetes.client.dsl.base.PatchContext;
import io.fabric8.kubernetes.client.dsl.base.PatchType;
import io.fabric8.kubernetes.client.utils.Serialization;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.TimeUnit;
import org.assertj.core.api.ThrowableAssert.ThrowingCallable;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The API server holds a node agent to its own node, as NodeRestriction holds a kubelet: with a token bound to its
 * Pod on node A, the chart's RBAC and the chart's policy {@code <release>-agent-node-restriction}, the agent of A
 * writes the status and its finalizer of A's Containers and Tasks and its own RuntimeNode, and nothing of node B's,
 * no spec, no other metadata, no delete; and it cannot list or watch Secrets.
 */
@WithControlPlane
class AgentNodeRestrictionIT {
    /** A new policy is in force once the API server's informer has it: a moment after it is created. */
    private static final Duration POLICY_IN_FORCE = Duration.ofSeconds(30);

    @TempDir
    static Path tmp;

    private static LocalRegistry registry;
    private static String image;

    @BeforeAll
    static void start(ControlPlane controlPlane) {
        Crds.installStevedore(controlPlane.adminClient());
        registry = LocalRegistry.start();
        image = registry.host() + "/test/base:1";
        TestImages.build(tmp.resolve("images")).push(TestImages.BASE, image);
    }

    @AfterAll
    static void stop() {
        if (registry != null) {
            registry.close();
        }
    }

    @Test
    void theAgentOfNodeAWritesWhatIsNodeAsAndNothingOfNodeBs(TestNamespace ns) {
        String a = ns.name() + "-a";
        String b = ns.name() + "-b";
        Chart.installRbac(ns);
        Containers.create(ns, "a-box", image, a, "");
        Containers.create(ns, "b-box", image, b, "");
        Tasks.create(ns, "a-1", "a-box", a, "");
        Tasks.create(ns, "b-1", "b-box", b, "");
        Containers.create(ns, "free-box", image, null, ""); // no operator runs: it stays on no node
        KubernetesClient asA = ns.clientOnNode(Chart.agentServiceAccount(ns), a);
        Chart.installAdmissionPolicy(ns, "agent-node-restriction");
        String agentOfA = "node agent of node \"" + a + "\"";
        String boundToB = " bound to node \"" + b + "\"";

        // Node B's Containers and Tasks: no status, no finalizer, no spec.
        await().atMost(POLICY_IN_FORCE)
                .untilAsserted(() -> assertRefused(
                        () -> applyContainerStatus(asA, container(ns, "b-box")),
                        agentOfA + " may not write Container " + ns.name() + "/b-box" + boundToB));
        assertRefused(
                () -> addFinalizer(asA, container(ns, "b-box"), NodeAgentFinalizer.NAME),
                agentOfA + " may not write Container " + ns.name() + "/b-box" + boundToB);
        assertRefused(
                () -> mergePatch(asA, container(ns, "b-box"), "{\"spec\": {\"image\": \"elsewhere/other:1\"}}"),
                agentOfA + " may not write Container " + ns.name() + "/b-box" + boundToB);
        assertRefused(
                () -> applyTaskStatus(asA, task(ns, "b-1")),
                agentOfA + " may not write Task " + ns.name() + "/b-1" + boundToB);
        assertRefused(
                () -> addFinalizer(asA, task(ns, "b-1"), NodeAgentFinalizer.NAME),
                agentOfA + " may not write Task " + ns.name() + "/b-1" + boundToB);

        assertRefused(
                () -> applyContainerStatus(asA, container(ns, "free-box")),
                agentOfA + " may not write Container " + ns.name() + "/free-box, which is bound to no node");

        // Node B's RuntimeNode: neither created nor written, nor its status.
        assertRefused(() -> register(asA, b), agentOfA + " may not write RuntimeNode " + b);
        register(ns.client(), b);
        ns.deleteAfterTest(ns.client().resources(RuntimeNode.class).withName(b).get());
        assertRefused(() -> register(asA, b), agentOfA + " may not write RuntimeNode " + b);
        assertRefused(() -> heartbeat(asA, b), agentOfA + " may not write RuntimeNode " + b);

        // Its own: status, its finalizer added and removed by the agent's own code, its RuntimeNode.
        applyContainerStatus(asA, container(ns, "a-box"));
        applyTaskStatus(asA, task(ns, "a-1"));
        AgentFinalizer finalizer = new AgentFinalizer(asA);
        try {
            finalizer.addSoon(container(ns, "a-box"));
            finalizer.addSoon(task(ns, "a-1"));
            await().atMost(POLICY_IN_FORCE)
                    .until(() -> container(ns, "a-box").hasFinalizer(NodeAgentFinalizer.NAME)
                            && task(ns, "a-1").hasFinalizer(NodeAgentFinalizer.NAME));
            finalizer.remove(container(ns, "a-box"));
            finalizer.remove(task(ns, "a-1"));
        } finally {
            finalizer.close();
        }
        assertThat(container(ns, "a-box").hasFinalizer(NodeAgentFinalizer.NAME)).isFalse();
        assertThat(task(ns, "a-1").hasFinalizer(NodeAgentFinalizer.NAME)).isFalse();
        register(asA, a);
        ns.deleteAfterTest(ns.client().resources(RuntimeNode.class).withName(a).get());
        heartbeat(asA, a);
        assertThat(ns.client()
                        .resources(RuntimeNode.class)
                        .withName(a)
                        .get()
                        .getStatus()
                        .lastHeartbeatTime())
                .isNotNull();

        // Events: on its own node's Stevedore objects, from its node, as its recorder writes them; repeats counted
        // on its own Events only.
        Event ownEvent = asA.v1()
                .events()
                .inNamespace(ns.name())
                .resource(event(ns, task(ns, "a-1"), a))
                .create();
        asA.v1()
                .events()
                .inNamespace(ns.name())
                .resource(ownEvent) // named, as the recorder counts a repeat: the agent may not read Events
                .patch(PatchContext.of(PatchType.JSON_MERGE), "{\"count\": 2}");
        String ownEventsOnly = agentOfA + " may record only its own Events on Stevedore objects";
        assertRefused(
                () -> asA.v1()
                        .events()
                        .inNamespace(ns.name())
                        .resource(event(ns, task(ns, "b-1"), b))
                        .create(),
                ownEventsOnly);
        ConfigMap notStevedores = ns.client()
                .resource(new ConfigMapBuilder()
                        .withNewMetadata()
                        .withName("cm")
                        .endMetadata()
                        .build())
                .create();
        assertRefused(
                () -> asA.v1()
                        .events()
                        .inNamespace(ns.name())
                        .resource(event(ns, notStevedores, a))
                        .create(),
                ownEventsOnly);
        Event bsEvent = ns.client()
                .v1()
                .events()
                .inNamespace(ns.name())
                .resource(event(ns, task(ns, "b-1"), b))
                .create();
        assertRefused(
                () -> asA.v1()
                        .events()
                        .inNamespace(ns.name())
                        .resource(bsEvent)
                        .patch(PatchContext.of(PatchType.JSON_MERGE), "{\"source\": {\"host\": \"" + a + "\"}}"),
                ownEventsOnly);

        // Its own, but not its to change: spec, other metadata, another finalizer, cordoning, creating.
        assertRefused(
                () -> mergePatch(asA, container(ns, "a-box"), "{\"spec\": {\"image\": \"elsewhere/other:1\"}}"),
                agentOfA + " may not change the spec of Container " + ns.name() + "/a-box");
        assertRefused(
                () -> mergePatch(asA, task(ns, "a-1"), "{\"spec\": {\"desiredState\": \"Stopped\"}}"),
                agentOfA + " may not change the spec of Task " + ns.name() + "/a-1");
        assertRefused(
                () -> mergePatch(asA, container(ns, "a-box"), "{\"metadata\": {\"labels\": {\"owned\": \"yes\"}}}"),
                agentOfA + " may change no metadata of Container " + ns.name() + "/a-box but its finalizer "
                        + NodeAgentFinalizer.NAME);
        assertRefused(
                () -> addFinalizer(asA, task(ns, "a-1"), "example.com/other"),
                agentOfA + " may change no metadata of Task " + ns.name() + "/a-1 but its finalizer "
                        + NodeAgentFinalizer.NAME);
        assertRefused(
                () -> mergePatch(asA, runtimeNode(ns, a), "{\"spec\": {\"unschedulable\": true}}"),
                agentOfA + " may not cordon or uncordon its RuntimeNode");
        assertRefused(() -> asA.resource(newContainer(a)).create(), "cannot create resource \"containers\"");

        // Nothing is deleted: not even its own.
        assertRefused(() -> asA.resource(container(ns, "a-box")).delete(), "cannot delete resource");
        assertRefused(() -> asA.resource(task(ns, "a-1")).delete(), "cannot delete resource");
        assertRefused(() -> asA.resource(runtimeNode(ns, a)).delete(), "cannot delete resource");

        // No Secret of any namespace is listed or watched.
        assertRefused(() -> asA.secrets().inNamespace(ns.name()).list(), "cannot list resource \"secrets\"");
        assertRefused(() -> asA.secrets().inAnyNamespace().list(), "cannot list resource \"secrets\"");
        // A refused watch says only "Forbidden" (its websocket upgrade fails): the authorizer says why.
        assertRefused(
                () -> asA.secrets()
                        .inNamespace(ns.name())
                        .watch(new IgnoringWatcher())
                        .close(),
                "Forbidden");
        assertThat(allowed(asA, "watch", "secrets")).isFalse();
        assertThat(allowed(asA, "list", "secrets")).isFalse();
    }

    @Test
    void credentialsThatNameNoNodeMayWriteNothing(TestNamespace ns) {
        String a = ns.name() + "-a";
        Chart.installRbac(ns);
        Containers.create(ns, "a-box", image, a, "");
        KubernetesClient unbound = ns.clientAs(Chart.agentServiceAccount(ns));
        Chart.installAdmissionPolicy(ns, "agent-node-restriction");
        String noNode = "the node agent's credentials name no node";
        await().atMost(POLICY_IN_FORCE)
                .untilAsserted(() ->
                        assertRefused(() -> applyContainerStatus(unbound, container(ns, "a-box")), noNode));
        assertRefused(() -> addFinalizer(unbound, container(ns, "a-box"), NodeAgentFinalizer.NAME), noNode);
        assertRefused(() -> register(unbound, a), noNode);
    }

    /**
     * The agent, as its own process, with a kubeconfig holding its Pod-bound token of node A, under the chart's RBAC
     * and policy: every write of its whole job is allowed.
     */
    @Test
    void anAgentUnderItsNodesCredentialsAndThePolicyDoesItsWholeJob(TestNamespace ns) {
        String node = ns.name() + "-a";
        Chart.installRbac(ns);
        NodeCredentials credentials = NodeCredentials.issue(ns, Chart.agentServiceAccount(ns), node);
        Chart.installAdmissionPolicy(ns, "agent-node-restriction");
        KubernetesClient asNode = credentials.client();
        // A dry run: a RuntimeNode created before the policy is in force would outlive the test.
        RuntimeNode other = new RuntimeNode();
        other.setMetadata(new ObjectMetaBuilder().withName(ns.name() + "-b").build());
        await().atMost(POLICY_IN_FORCE)
                .untilAsserted(() -> assertRefused(
                        () -> asNode.resource(other).dryRun().create(),
                        "may not write RuntimeNode " + ns.name() + "-b"));

        Path log = tmp.resolve(ns.name() + "-agent.log");
        try (AgentProcess agent = AgentProcess.start(
                node,
                tmp.resolve(ns.name()),
                credentials.writeKubeconfig(tmp.resolve(ns.name() + ".kubeconfig")),
                log)) {
            RuntimeNode registered = awaitHeartbeat(ns, node, null, agent);
            ns.deleteAfterTest(registered);
            awaitHeartbeat(ns, node, registered.getStatus().lastHeartbeatTime(), agent);

            Containers.create(ns, "app", image, node, "process: {args: [sh, -c, 'exit 3']}");
            Containers.awaitCondition(ns, "app", ContainerStatus.READY, "True", agent::log);
            Tasks.create(ns, "app-1", "app", node, "");
            Task done = Tasks.awaitPhase(ns, "app-1", TaskStatus.Phase.Deleted);
            assertThat(done.getStatus().exitCode()).isEqualTo(3);
            assertThat(done.getStatus().reason()).isEqualTo("Error");
            ObjectEvents.awaitRecorded(ns, "Container", "app", "Normal Pulling: ", "Normal Pulled: ");
            ObjectEvents.awaitRecorded(ns, "Task", "app-1", "Normal Started: ", "Warning Exited: exited with code 3");
            await().atMost(Containers.TIMEOUT)
                    .until(() -> container(ns, "app").hasFinalizer(NodeAgentFinalizer.NAME)
                            && task(ns, "app-1").hasFinalizer(NodeAgentFinalizer.NAME));

            // Their deletion waits on the agent's finalizers: it removes them once it has released what it made.
            ns.client().resources(Task.class).withName("app-1").delete();
            ns.client()
                    .resources(Task.class)
                    .withName("app-1")
                    .waitUntilCondition(Objects::isNull, Containers.TIMEOUT.toSeconds(), TimeUnit.SECONDS);
            ns.client().resources(Container.class).withName("app").delete();
            Containers.awaitGone(ns, "app");
            assertThat(agent.log()).doesNotContain("denied request").doesNotContain("forbidden");
        }
    }

    // --- the agent's writes, as it makes them ------------------------------------------------------------------

    private static void applyContainerStatus(KubernetesClient client, Container of) {
        Container apply = new Container();
        apply.setMetadata(FieldManager.identity(of));
        apply.setStatus(new ContainerStatus(
                null,
                null,
                null,
                null,
                null,
                null,
                List.of(Conditions.of(null, ContainerStatus.READY, "False", "Preparing", "written by the test", 1L))));
        FieldManager.AGENT.applyStatus(client, apply);
    }

    private static void applyTaskStatus(KubernetesClient client, Task of) {
        Task apply = new Task();
        apply.setMetadata(new ObjectMetaBuilder()
                .withName(of.getMetadata().getName())
                .withNamespace(of.getMetadata().getNamespace())
                .withUid(of.getMetadata().getUid())
                .build());
        apply.setStatus(new TaskStatus(
                TaskStatus.Phase.Pending, null, null, null, null, null, "Bound", "written by the test", 1L, null));
        FieldManager.AGENT.applyStatus(client, apply);
    }

    private static void register(KubernetesClient client, String node) {
        RuntimeNode apply = new RuntimeNode();
        apply.setMetadata(new ObjectMetaBuilder().withName(node).build());
        apply.setSpec(new RuntimeNodeSpec(null));
        FieldManager.AGENT.apply(client, apply);
    }

    private static void heartbeat(KubernetesClient client, String node) {
        RuntimeNode apply = new RuntimeNode();
        apply.setMetadata(new ObjectMetaBuilder().withName(node).build());
        apply.setStatus(new RuntimeNodeStatus(
                List.of(), List.of(), null, 1L, 0L, List.of(), 0, null, "2026-12-01T10:00:00Z", List.of()));
        FieldManager.AGENT.applyStatus(client, apply);
    }

    /** A JSON patch of the finalizer list, as the agent's (it tests nothing: the test owns the object). */
    private static void addFinalizer(KubernetesClient client, HasMetadata resource, String name) {
        List<String> finalizers = new ArrayList<>(
                Objects.requireNonNullElse(resource.getMetadata().getFinalizers(), List.of()));
        finalizers.add(name);
        client.resource(resource)
                .patch(
                        PatchContext.of(PatchType.JSON),
                        Serialization.asJson(
                                List.of(Map.of("op", "add", "path", "/metadata/finalizers", "value", finalizers))));
    }

    private static void mergePatch(KubernetesClient client, HasMetadata resource, String patch) {
        client.resource(resource).patch(PatchContext.of(PatchType.JSON_MERGE), patch);
    }

    // --- fixtures ------------------------------------------------------------------------------------------------

    /** An Event on {@code about} as the agent of {@code node} records it. */
    private static Event event(TestNamespace ns, HasMetadata about, String node) {
        return new EventBuilder()
                .withNewMetadata()
                .withGenerateName(about.getMetadata().getName() + ".")
                .withNamespace(ns.name())
                .endMetadata()
                .withInvolvedObject(new ObjectReferenceBuilder()
                        .withApiVersion(about.getApiVersion())
                        .withKind(about.getKind())
                        .withName(about.getMetadata().getName())
                        .withNamespace(ns.name())
                        .withUid(about.getMetadata().getUid())
                        .build())
                .withType("Normal")
                .withReason("Started")
                .withMessage("Started the task")
                .withNewSource()
                .withComponent("stevedore-agent")
                .withHost(node)
                .endSource()
                .withReportingComponent("stevedore-agent")
                .withReportingInstance(node)
                .withCount(1)
                .build();
    }

    private static void assertRefused(ThrowingCallable write, String message) {
        assertThatThrownBy(write).isInstanceOfSatisfying(KubernetesClientException.class, e -> {
            assertThat(e.getCode()).as(e.getMessage()).isEqualTo(403);
            assertThat(e.getMessage()).contains(message);
        });
    }

    /** What the authorizer says of {@code verb} on {@code resource} in every namespace, for the client's user. */
    private static boolean allowed(KubernetesClient client, String verb, String resource) {
        return client.authorization()
                .v1()
                .selfSubjectAccessReview()
                .create(new SelfSubjectAccessReviewBuilder()
                        .withNewSpec()
                        .withNewResourceAttributes()
                        .withVerb(verb)
                        .withResource(resource)
                        .endResourceAttributes()
                        .endSpec()
                        .build())
                .getStatus()
                .getAllowed();
    }

    private static Container container(TestNamespace ns, String name) {
        return ns.client().resources(Container.class).withName(name).get();
    }

    private static Task task(TestNamespace ns, String name) {
        return ns.client().resources(Task.class).withName(name).get();
    }

    private static RuntimeNode runtimeNode(TestNamespace ns, String name) {
        return ns.client().resources(RuntimeNode.class).withName(name).get();
    }

    private static Container newContainer(String node) {
        return Serialization.unmarshal("""
                apiVersion: stevedore.dev/v1alpha1
                kind: Container
                metadata: {name: made-by-the-agent}
                spec: {image: elsewhere/other:1, nodeName: %s}
                """.formatted(node), Container.class);
    }

    /** The RuntimeNode once it has a heartbeat other than {@code after}. */
    private static RuntimeNode awaitHeartbeat(TestNamespace ns, String node, String after, AgentProcess agent) {
        try {
            return ns.client()
                    .resources(RuntimeNode.class)
                    .withName(node)
                    .waitUntilCondition(
                            n -> n != null
                                    && n.getStatus() != null
                                    && n.getStatus().lastHeartbeatTime() != null
                                    && !n.getStatus().lastHeartbeatTime().equals(after),
                            Containers.TIMEOUT.toSeconds(),
                            TimeUnit.SECONDS);
        } catch (RuntimeException e) {
            throw new AssertionError("no heartbeat of " + node + "; the agent's log:\n" + agent.log(), e);
        }
    }

    private static final class IgnoringWatcher implements Watcher<Secret> {
        @Override
        public void eventReceived(Action action, Secret resource) {}

        @Override
        public void onClose(WatcherException cause) {}
    }
}
