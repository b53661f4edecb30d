package dev.stevedore.operator;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.stevedore.api.FieldManager;
import dev.stevedore.api.v1alpha1.Container;
import dev.stevedore.api.v1alpha1.ContainerStatus;
import dev.stevedore.api.v1alpha1.Task;
import dev.stevedore.testing.Chart;
import dev.stevedore.testing.ControlPlane;
import dev.stevedore.testing.Crds;
import dev.stevedore.testing.TestNamespace;
import dev.stevedore.testing.WithControlPlane;
import io.fabric8.kubernetes.api.model.Event;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.ManagedFieldsEntry;
import io.fabric8.kubernetes.api.model.authorization.v1.SelfSubjectAccessReview;
import io.fabric8.kubernetes.api.model.authorization.v1.SelfSubjectAccessReviewBuilder;
import io.fabric8.kubernetes.api.model.coordination.v1.Lease;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.utils.Serialization;
import io.javaoperatorsdk.operator.Operator;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The operator runs as the ServiceAccount of the Helm chart, with exactly the chart's RBAC, and two replicas
 * share the work through leader election. The operator logs a write it is refused (an Event, say) and goes on, so
 * each test checks the writes themselves: every one was made with the chart's credentials, the only ones the
 * operator has here.
 */
@WithControlPlane
class OperatorRbacAndLeaderElectionIT {
    /** Generous: a leader hand-over waits out the Lease (15 s) on two busy cores. */
    private static final Duration TIMEOUT = Duration.ofSeconds(120);
    /** No test here is about a lost node: the only heartbeat is at registration, and the node must stay Ready. */
    private static final Duration NO_NODE_LOSS = Duration.ofHours(1);

    @BeforeAll
    static void installCrds(ControlPlane controlPlane) {
        Crds.installStevedore(controlPlane.adminClient());
    }

    @Test
    void theChartsServiceAccountCanDoItsJobAndNoMore(TestNamespace ns) {
        KubernetesClient asOperator = ns.clientAs(installChartRbac(ns));
        registerNode(ns);
        Operator operator = StevedoreOperator.start(asOperator, replica(ns, "replica-one"));
        try {
            createContainer(ns, "app");
            createTask(ns, "app-1", "app");
            assertTheOperatorDidItsJob(ns, "app", "app-1");
        } finally {
            operator.stop();
        }
        assertThat(allowed(asOperator, "delete", "containers", "stevedore.dev")).isFalse();
        assertThat(allowed(asOperator, "create", "containers", "stevedore.dev")).isFalse();
        // It GETs the pull Secrets a Container names for that Container's node agent, but never enumerates them.
        assertThat(allowed(asOperator, "get", "secrets", "")).isTrue();
        assertThat(allowed(asOperator, "list", "secrets", "")).isFalse();
        assertThat(allowed(asOperator, "watch", "secrets", "")).isFalse();
        assertThat(allowed(asOperator, "create", "pods", "")).isFalse();
        assertThat(allowed(asOperator, "patch", "tasks", "stevedore.dev")).isTrue();
    }

    @Test
    void aSecondReplicaTakesOverWhenTheLeaderStops(TestNamespace ns) {
        KubernetesClient asOperator = ns.clientAs(installChartRbac(ns));
        registerNode(ns);
        Operator one = StevedoreOperator.start(asOperator, replica(ns, "replica-one"));
        await().atMost(TIMEOUT).until(() -> "replica-one".equals(holder(ns)));
        Operator two = StevedoreOperator.start(asOperator, replica(ns, "replica-two"));
        try {
            // Both are ready (/readyz), the one waiting for the Lease too: the PodDisruptionBudget counts it.
            assertThat(StevedoreOperator.notReady(null)).contains("starting");
            assertThat(StevedoreOperator.notReady(one)).isEmpty();
            assertThat(StevedoreOperator.notReady(two)).isEmpty();
            one.stop();
            assertThat(StevedoreOperator.notReady(one)).isPresent();
            await().atMost(TIMEOUT).until(() -> "replica-two".equals(holder(ns)));
            createContainer(ns, "after-failover");
            createTask(ns, "after-failover-1", "after-failover");
            assertTheOperatorDidItsJob(ns, "after-failover", "after-failover-1");
        } finally {
            two.stop();
        }
    }

    /**
     * The Container scheduled (spec), its Scheduled condition applied by the operator's field manager (status), a
     * Scheduled Event on it and a Bound one on its Task (events), and the Task bound to the node (tasks).
     */
    private static void assertTheOperatorDidItsJob(TestNamespace ns, String container, String task) {
        String node = nodeName(ns);
        await().atMost(TIMEOUT).untilAsserted(() -> {
            Container scheduled =
                    ns.client().resources(Container.class).withName(container).get();
            assertThat(scheduled.getSpec().nodeName()).isEqualTo(node);
            assertThat(scheduled.getStatus()).as("status").isNotNull();
            assertThat(scheduled.getStatus().conditions())
                    .anyMatch(c -> ContainerStatus.SCHEDULED.equals(c.getType()) && "True".equals(c.getStatus()));
            assertThat(statusManagers(scheduled)).contains(FieldManager.OPERATOR.name());
        });
        await().atMost(TIMEOUT)
                .untilAsserted(() -> assertThat(ns.client()
                                .resources(Task.class)
                                .withName(task)
                                .get()
                                .getSpec()
                                .nodeName())
                        .isEqualTo(node));
        await().atMost(TIMEOUT)
                .untilAsserted(() ->
                        assertThat(eventReasons(ns, "Container", container)).contains("Scheduled"));
        await().atMost(TIMEOUT)
                .untilAsserted(() -> assertThat(eventReasons(ns, "Task", task)).contains("Bound"));
    }

    /** Who applied the object's status: managers of the status subresource in its managedFields. */
    private static List<String> statusManagers(HasMetadata object) {
        return object.getMetadata().getManagedFields().stream()
                .filter(entry -> "status".equals(entry.getSubresource()))
                .map(ManagedFieldsEntry::getManager)
                .toList();
    }

    private static List<String> eventReasons(TestNamespace ns, String kind, String name) {
        return ns.client().v1().events().list().getItems().stream()
                .filter(e -> kind.equals(e.getInvolvedObject().getKind())
                        && name.equals(e.getInvolvedObject().getName()))
                .map(Event::getReason)
                .toList();
    }

    /** The chart's ServiceAccount and RBAC for the operator, rendered into the test's namespace. */
    private static String installChartRbac(TestNamespace ns) {
        Chart.installRbac(ns);
        return Chart.operatorServiceAccount(ns);
    }

    /** A Ready node for the test's Containers alone; the teardown deletes it by its label. */
    private static void registerNode(TestNamespace ns) {
        new NodeSide(ns.client()).register(nodeName(ns), Map.of(TestNamespace.TEST_LABEL, ns.name()));
    }

    private static String nodeName(TestNamespace ns) {
        return ns.name() + "-node";
    }

    private static void createContainer(TestNamespace ns, String name) {
        ns.client()
                .resource(Serialization.unmarshal(
                        """
                apiVersion: stevedore.dev/v1alpha1
                kind: Container
                metadata: {name: %s}
                spec:
                  image: 127.0.0.1:5000/stevedore/busybox:latest
                  nodeSelector: {%s: %s}
                """.formatted(name, TestNamespace.TEST_LABEL, ns.name()), Container.class))
                .create();
    }

    private static void createTask(TestNamespace ns, String name, String container) {
        ns.client()
                .resource(Serialization.unmarshal("""
                apiVersion: stevedore.dev/v1alpha1
                kind: Task
                metadata: {name: %s}
                spec: {container: %s}
                """.formatted(name, container), Task.class))
                .create();
    }

    private static StevedoreOperator.Settings replica(TestNamespace ns, String identity) {
        return new StevedoreOperator.Settings(
                new StevedoreOperator.LeaderElection(ns.name(), identity, false), NO_NODE_LOSS);
    }

    private static String holder(TestNamespace ns) {
        Lease lease =
                ns.client().leases().withName(StevedoreOperator.LEASE_NAME).get();
        return lease == null ? null : lease.getSpec().getHolderIdentity();
    }

    private static boolean allowed(KubernetesClient client, String verb, String resource, String group) {
        SelfSubjectAccessReview review = client.authorization()
                .v1()
                .selfSubjectAccessReview()
                .create(new SelfSubjectAccessReviewBuilder()
                        .withNewSpec()
                        .withNewResourceAttributes()
                        .withVerb(verb)
                        .withResource(resource)
                        .withGroup(group)
                        .withNamespace("default")
                        .endResourceAttributes()
                        .endSpec()
                        .build());
        return review.getStatus().getAllowed();
    }
}
