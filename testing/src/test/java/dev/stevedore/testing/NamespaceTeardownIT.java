package dev.stevedore.testing;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.fabric8.kubernetes.api.model.ConfigMap;
import io.fabric8.kubernetes.api.model.ConfigMapBuilder;
import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.api.model.GenericKubernetesResourceBuilder;
import io.fabric8.kubernetes.api.model.NamespaceBuilder;
import io.fabric8.kubernetes.api.model.rbac.ClusterRole;
import io.fabric8.kubernetes.api.model.rbac.ClusterRoleBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.dsl.base.ResourceDefinitionContext;
import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * A test ends when its namespace is gone: the teardown waits for the namespace controller and the node agent,
 * removes what the test made outside its namespace, drops the agent's finalizer only where no agent could remove it,
 * and fails naming what is left.
 */
@WithControlPlane
class NamespaceTeardownIT {
    private static final String HOLD = "test.stevedore.dev/hold";
    private static final Duration SHORT = Duration.ofSeconds(5);
    private static final Duration TIMEOUT = Duration.ofSeconds(120);

    private static KubernetesClient admin;

    @BeforeAll
    static void installCrds(ControlPlane controlPlane) {
        admin = controlPlane.adminClient();
        Crds.installStevedore(admin);
    }

    @Test
    void closeReturnsOnceWhatTheTestMadeOutsideItIsGoneAndTheNamespaceEndsAfter(ControlPlane controlPlane) {
        TestNamespace ns = namespace(controlPlane, "waits");
        heldConfigMap(ns);
        ClusterRole role = ns.deleteAfterTest(admin.rbac()
                .clusterRoles()
                .resource(new ClusterRoleBuilder()
                        .withNewMetadata()
                        .withName(ns.name() + "-role")
                        .endMetadata()
                        .build())
                .create());
        String node = ns.name() + "-node";
        runtimeNode(node, Map.of(TestNamespace.TEST_LABEL, ns.name()), Instant.now());
        // Its controller lets the ConfigMap go once it is being deleted: the namespace goes a while after close().
        CompletableFuture<Void> controller = CompletableFuture.runAsync(() -> {
            admin.configMaps()
                    .inNamespace(ns.name())
                    .withName("held")
                    .waitUntilCondition(c -> c == null || c.isMarkedForDeletion(), 120, TimeUnit.SECONDS);
            release(ns);
        });

        NamespaceTeardown teardown = ns.close();
        assertThat(admin.rbac().clusterRoles().resource(role).get()).isNull();
        assertThat(admin.genericKubernetesResources(NamespaceTeardown.RUNTIME_NODES)
                        .withName(node)
                        .get())
                .isNull();
        assertThat(admin.namespaces().withName(ns.name()).get().isMarkedForDeletion())
                .isTrue();

        teardown.awaitNamespaceGone();
        assertThat(admin.namespaces().withName(ns.name()).get()).isNull();
        controller.join();
    }

    @Test
    void aTeardownThatDoesNotEndFailsNamingWhatIsLeft(ControlPlane controlPlane) {
        TestNamespace ns = namespace(controlPlane, "stuck");
        finalized(ns, NamespaceTeardown.CONTAINERS, "held", null, HOLD);
        try {
            assertThatThrownBy(() -> teardown(ns, SHORT))
                    .isInstanceOf(AssertionError.class)
                    .hasMessageContaining(ns.name())
                    .hasMessageContaining("Container held on node null, finalizers [" + HOLD + "]");
        } finally {
            dropFinalizers(ns, NamespaceTeardown.CONTAINERS, "held");
            awaitGone(ns);
        }
    }

    @Test
    void theAgentsFinalizerIsDroppedWhereNoAgentServesTheNode(ControlPlane controlPlane) {
        TestNamespace ns = namespace(controlPlane, "unserved");
        String silent = ns.name() + "-silent";
        runtimeNode(silent, Map.of(), Instant.now().minus(NamespaceTeardown.UNSERVED_AFTER.plusSeconds(30)));
        try {
            agentFinalized(ns, NamespaceTeardown.CONTAINERS, "on-a-missing-node", ns.name() + "-missing");
            agentFinalized(ns, NamespaceTeardown.CONTAINERS, "on-a-silent-node", silent);
            agentFinalized(ns, NamespaceTeardown.TASKS, "task-on-a-missing-node", ns.name() + "-missing");

            ns.close().awaitNamespaceGone();

            assertThat(admin.namespaces().withName(ns.name()).get()).isNull();
        } finally {
            admin.genericKubernetesResources(NamespaceTeardown.RUNTIME_NODES)
                    .withName(silent)
                    .delete();
        }
    }

    @Test
    void whileAnAgentHeartbeatsForTheNodeOnlyTheAgentRemovesItsFinalizer(ControlPlane controlPlane) {
        TestNamespace ns = namespace(controlPlane, "served");
        String served = ns.name() + "-served";
        runtimeNode(served, Map.of(), Instant.now());
        agentFinalized(ns, NamespaceTeardown.CONTAINERS, "leaked", served);
        try {
            assertThatThrownBy(() -> teardown(ns, SHORT))
                    .isInstanceOf(AssertionError.class)
                    .hasMessageContaining("Container leaked on node " + served)
                    .hasMessageContaining(NamespaceTeardown.AGENT_FINALIZER);
        } finally {
            dropFinalizers(ns, NamespaceTeardown.CONTAINERS, "leaked");
            awaitGone(ns);
            admin.genericKubernetesResources(NamespaceTeardown.RUNTIME_NODES)
                    .withName(served)
                    .delete();
        }
    }

    private static TestNamespace namespace(ControlPlane controlPlane, String prefix) {
        String name = ControlPlaneExtension.namespaceName("teardown-" + prefix);
        admin.namespaces()
                .resource(new NamespaceBuilder()
                        .withNewMetadata()
                        .withName(name)
                        .endMetadata()
                        .build())
                .create();
        return new TestNamespace(name, controlPlane);
    }

    private static void teardown(TestNamespace ns, Duration timeout) {
        new NamespaceTeardown(admin, ns.name(), List.of(), timeout).run();
    }

    private static void heldConfigMap(TestNamespace ns) {
        ns.client()
                .configMaps()
                .resource(new ConfigMapBuilder()
                        .withNewMetadata()
                        .withName("held")
                        .addToFinalizers(HOLD)
                        .endMetadata()
                        .build())
                .create();
    }

    private static void release(TestNamespace ns) {
        ConfigMap held =
                admin.configMaps().inNamespace(ns.name()).withName("held").get();
        if (held != null) {
            admin.configMaps().resource(held).edit(c -> {
                c.getMetadata().setFinalizers(List.of());
                return c;
            });
        }
    }

    private static void awaitGone(TestNamespace ns) {
        admin.namespaces()
                .withName(ns.name())
                .waitUntilCondition(Objects::isNull, TIMEOUT.toSeconds(), TimeUnit.SECONDS);
    }

    /** An object of {@code kind} bound to {@code node}, with the finalizer the node agent adds. */
    private static void agentFinalized(TestNamespace ns, ResourceDefinitionContext kind, String name, String node) {
        finalized(ns, kind, name, node, NamespaceTeardown.AGENT_FINALIZER);
    }

    private static void finalized(
            TestNamespace ns, ResourceDefinitionContext kind, String name, String node, String finalizer) {
        Map<String, Object> spec = new HashMap<>(
                kind == NamespaceTeardown.TASKS ? Map.of("container", "c") : Map.of("image", "127.0.0.1:5000/x:1"));
        if (node != null) {
            spec.put("nodeName", node);
        }
        admin.genericKubernetesResources(kind)
                .inNamespace(ns.name())
                .resource(new GenericKubernetesResourceBuilder()
                        .withApiVersion("stevedore.dev/v1alpha1")
                        .withKind(kind.getKind())
                        .withNewMetadata()
                        .withName(name)
                        .withNamespace(ns.name())
                        .addToFinalizers(finalizer)
                        .endMetadata()
                        .addToAdditionalProperties("spec", spec)
                        .build())
                .create();
    }

    /** Lets the object go, if it has not gone already. */
    private static void dropFinalizers(TestNamespace ns, ResourceDefinitionContext kind, String name) {
        var resource =
                admin.genericKubernetesResources(kind).inNamespace(ns.name()).withName(name);
        if (resource.get() == null) {
            return;
        }
        resource.edit(object -> {
            object.getMetadata().setFinalizers(List.of());
            return object;
        });
    }

    /** A RuntimeNode whose agent last heartbeat at {@code heartbeat}. */
    private static void runtimeNode(String name, Map<String, String> labels, Instant heartbeat) {
        GenericKubernetesResource node = admin.genericKubernetesResources(NamespaceTeardown.RUNTIME_NODES)
                .resource(new GenericKubernetesResourceBuilder()
                        .withApiVersion("stevedore.dev/v1alpha1")
                        .withKind("RuntimeNode")
                        .withNewMetadata()
                        .withName(name)
                        .withLabels(labels)
                        .endMetadata()
                        .addToAdditionalProperties("spec", Map.of())
                        .build())
                .create();
        node.setAdditionalProperty(
                "status",
                Map.of(
                        "lastHeartbeatTime",
                        heartbeat.truncatedTo(ChronoUnit.SECONDS).toString()));
        admin.genericKubernetesResources(NamespaceTeardown.RUNTIME_NODES)
                .resource(node)
                .updateStatus();
    }
}
