package dev.stevedore.testing;

import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.Namespace;
import io.fabric8.kubernetes.api.model.NamespaceCondition;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.fabric8.kubernetes.client.dsl.base.PatchContext;
import io.fabric8.kubernetes.client.dsl.base.PatchType;
import io.fabric8.kubernetes.client.dsl.base.ResourceDefinitionContext;
import io.fabric8.kubernetes.client.utils.Serialization;
import java.time.Duration;
import java.time.Instant;
import java.time.format.DateTimeParseException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.function.Supplier;
import org.awaitility.Awaitility;
import org.awaitility.core.ConditionTimeoutException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Ends a test in two steps. {@link #run}: deletes the test's Tasks and Containers, the cluster-scoped objects it made
 * and the RuntimeNodes labelled with its name, waits until all are gone — so the node agent has released what it
 * made for them (their finalizer {@value #AGENT_FINALIZER} goes once it has), and nothing of this test overlaps the
 * next one — then deletes the namespace. {@link #awaitNamespaceGone}: waits until the namespace controller has
 * deleted the namespace with everything else in it; it starts no sooner than 5 s after the delete (its fixed grace
 * for HA API servers), so the tests of a class wait for their namespaces together, once, when the class ends.
 * Either fails, naming what is left and its finalizers, when it takes longer than its timeout ({@link #TIMEOUT}).
 *
 * <p>Where no agent serves a Container's or Task's node (its RuntimeNode is gone, or has not heartbeat for
 * {@link #UNSERVED_AFTER}), nobody could remove the agent's finalizer: the test stopped its agent, or killed it. The
 * teardown drops that finalizer and says so in the log; an agent's next start sweeps what it had made. Where an agent
 * does serve the node, only the agent removes it, so a release that never ends fails the test.
 */
final class NamespaceTeardown {
    static final String AGENT_FINALIZER = "stevedore.dev/node-agent";
    /** Generous: the agent stops tasks (grace periods) and removes snapshots on two busy cores. */
    static final Duration TIMEOUT = Duration.ofSeconds(180);

    static final ResourceDefinitionContext RUNTIME_NODES = stevedore("RuntimeNode", "runtimenodes", false);
    static final ResourceDefinitionContext CONTAINERS = stevedore("Container", "containers", true);
    static final ResourceDefinitionContext TASKS = stevedore("Task", "tasks", true);
    /** Agents in tests heartbeat every 2 to 10 s; a minute without one means none runs. */
    static final Duration UNSERVED_AFTER = Duration.ofSeconds(60);

    private static final Logger LOG = LoggerFactory.getLogger(NamespaceTeardown.class);
    private static final List<ResourceDefinitionContext> AGENT_KINDS = List.of(CONTAINERS, TASKS);

    private final KubernetesClient admin;
    private final String namespace;
    private final List<HasMetadata> clusterScoped;
    private final Duration timeout;

    NamespaceTeardown(KubernetesClient admin, String namespace, List<HasMetadata> clusterScoped, Duration timeout) {
        this.admin = admin;
        this.namespace = namespace;
        this.clusterScoped = clusterScoped;
        this.timeout = timeout;
    }

    void run() {
        for (ResourceDefinitionContext kind : AGENT_KINDS) {
            unlessKindMissing(() -> admin.genericKubernetesResources(kind)
                    .inNamespace(namespace)
                    .delete());
        }
        clusterScoped.forEach(object -> admin.resource(object).delete());
        unlessKindMissing(() -> admin.genericKubernetesResources(RUNTIME_NODES)
                .withLabel(TestNamespace.TEST_LABEL, namespace)
                .delete());
        try {
            await("what the test made in and for namespace " + namespace, () -> {
                releaseWhereNoAgentServes();
                return agentObjectsGone()
                        && clusterScoped.stream()
                                .allMatch(object -> admin.resource(object).get() == null)
                        && testRuntimeNodes().isEmpty();
            });
        } finally {
            admin.namespaces().withName(namespace).delete(); // whatever is left, the namespace goes on ending
        }
    }

    /** After {@link #run}: waits until the namespace controller has deleted the namespace. */
    void awaitNamespaceGone() {
        await(
                "namespace " + namespace,
                () -> admin.namespaces().withName(namespace).get() == null);
    }

    private void await(String what, java.util.concurrent.Callable<Boolean> gone) {
        try {
            Awaitility.await("the teardown of " + what)
                    .atMost(timeout)
                    .pollDelay(Duration.ZERO)
                    .pollInterval(Duration.ofMillis(200))
                    .ignoreExceptions() // a failed read is tried again at the next poll
                    .until(gone);
        } catch (ConditionTimeoutException e) {
            throw new AssertionError(what + " is not gone after " + timeout.toSeconds() + " s; left:" + leftovers(), e);
        }
    }

    private boolean agentObjectsGone() {
        return AGENT_KINDS.stream()
                .allMatch(kind -> orEmpty(() -> admin.genericKubernetesResources(kind)
                                .inNamespace(namespace)
                                .list()
                                .getItems())
                        .isEmpty());
    }

    private void releaseWhereNoAgentServes() {
        for (ResourceDefinitionContext kind : AGENT_KINDS) {
            for (GenericKubernetesResource object : agentFinalized(kind)) {
                String node = object.get("spec", "nodeName");
                Optional<String> unserved = whyNoAgentServes(node);
                if (unserved.isPresent()) {
                    dropAgentFinalizer(kind, object, node, unserved.get());
                }
            }
        }
    }

    private List<GenericKubernetesResource> agentFinalized(ResourceDefinitionContext kind) {
        return orEmpty(() -> admin.genericKubernetesResources(kind)
                        .inNamespace(namespace)
                        .list()
                        .getItems())
                .stream()
                .filter(object -> object.getMetadata().getFinalizers().contains(AGENT_FINALIZER))
                .toList();
    }

    /** Empty while an agent heartbeats for {@code node}; otherwise why none does. */
    private Optional<String> whyNoAgentServes(String node) {
        if (node == null) {
            return Optional.of("it names no node");
        }
        GenericKubernetesResource runtimeNode =
                admin.genericKubernetesResources(RUNTIME_NODES).withName(node).get();
        if (runtimeNode == null) {
            return Optional.of("RuntimeNode " + node + " is gone");
        }
        String heartbeat = runtimeNode.get("status", "lastHeartbeatTime");
        try {
            if (heartbeat != null
                    && Instant.parse(heartbeat).isAfter(Instant.now().minus(UNSERVED_AFTER))) {
                return Optional.empty();
            }
        } catch (DateTimeParseException unreadable) {
            // as good as none
        }
        return Optional.of("RuntimeNode " + node + " has not heartbeat since " + heartbeat);
    }

    /** A JSON patch that tests the list it changes, so a finalizer someone else adds meanwhile stays. */
    private void dropAgentFinalizer(
            ResourceDefinitionContext kind, GenericKubernetesResource object, String node, String why) {
        List<String> finalizers = object.getMetadata().getFinalizers();
        List<String> kept = new ArrayList<>(finalizers);
        kept.remove(AGENT_FINALIZER);
        LOG.warn(
                "{} {}/{} keeps the node agent's finalizer and no agent serves node {} ({}): dropping it",
                kind.getKind(),
                namespace,
                object.getMetadata().getName(),
                node,
                why);
        try {
            admin.genericKubernetesResources(kind)
                    .inNamespace(namespace)
                    .withName(object.getMetadata().getName())
                    .patch(
                            PatchContext.of(PatchType.JSON),
                            Serialization.asJson(List.of(
                                    Map.of("op", "test", "path", "/metadata/finalizers", "value", finalizers),
                                    Map.of("op", "replace", "path", "/metadata/finalizers", "value", kept))));
        } catch (KubernetesClientException changedOrGone) {
            // the next poll sees it again, if it is still there
        }
    }

    private List<GenericKubernetesResource> testRuntimeNodes() {
        return orEmpty(() -> admin.genericKubernetesResources(RUNTIME_NODES)
                .withLabel(TestNamespace.TEST_LABEL, namespace)
                .list()
                .getItems());
    }

    /** What keeps the teardown from ending, for the failure message. */
    private String leftovers() {
        StringBuilder out = new StringBuilder();
        try {
            Namespace ns = admin.namespaces().withName(namespace).get();
            if (ns != null && ns.getStatus() != null) {
                out.append("\n  Namespace ")
                        .append(namespace)
                        .append(": ")
                        .append(ns.getStatus().getPhase());
                for (NamespaceCondition condition :
                        Objects.requireNonNullElse(ns.getStatus().getConditions(), List.<NamespaceCondition>of())) {
                    if ("True".equals(condition.getStatus())) {
                        out.append("\n    ")
                                .append(condition.getType())
                                .append(": ")
                                .append(condition.getMessage());
                    }
                }
            }
            for (ResourceDefinitionContext kind : AGENT_KINDS) {
                orEmpty(() -> admin.genericKubernetesResources(kind)
                                .inNamespace(namespace)
                                .list()
                                .getItems())
                        .forEach(object -> out.append("\n  ")
                                .append(kind.getKind())
                                .append(' ')
                                .append(object.getMetadata().getName())
                                .append(" on node ")
                                .append((String) object.get("spec", "nodeName"))
                                .append(", finalizers ")
                                .append(object.getMetadata().getFinalizers()));
            }
            clusterScoped.stream()
                    .filter(object -> admin.resource(object).get() != null)
                    .forEach(object -> out.append("\n  ")
                            .append(object.getKind())
                            .append(' ')
                            .append(object.getMetadata().getName()));
            testRuntimeNodes()
                    .forEach(node -> out.append("\n  RuntimeNode ")
                            .append(node.getMetadata().getName()));
        } catch (KubernetesClientException e) {
            out.append("\n  (cannot list what is left: ").append(e.getMessage()).append(')');
        }
        return out.toString();
    }

    /** A list of a Stevedore kind, empty where its CRD is not installed (tests of the control plane alone). */
    private static <T> List<T> orEmpty(Supplier<List<T>> list) {
        try {
            return list.get();
        } catch (KubernetesClientException e) {
            if (e.getCode() == 404) {
                return List.of();
            }
            throw e;
        }
    }

    private static void unlessKindMissing(Runnable action) {
        orEmpty(() -> {
            action.run();
            return List.of();
        });
    }

    private static ResourceDefinitionContext stevedore(String kind, String plural, boolean namespaced) {
        return new ResourceDefinitionContext.Builder()
                .withGroup("stevedore.dev")
                .withVersion("v1alpha1")
                .withKind(kind)
                .withPlural(plural)
                .withNamespaced(namespaced)
                .build();
    }
}
