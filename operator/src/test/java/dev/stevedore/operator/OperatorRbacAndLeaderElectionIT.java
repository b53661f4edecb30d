package dev.stevedore.operator;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.stevedore.api.v1alpha1.Container;
import dev.stevedore.testing.ControlPlane;
import dev.stevedore.testing.Crds;
import dev.stevedore.testing.TestNamespace;
import dev.stevedore.testing.Tools;
import dev.stevedore.testing.WithControlPlane;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.authorization.v1.SelfSubjectAccessReview;
import io.fabric8.kubernetes.api.model.authorization.v1.SelfSubjectAccessReviewBuilder;
import io.fabric8.kubernetes.api.model.coordination.v1.Lease;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.utils.Serialization;
import io.javaoperatorsdk.operator.Operator;
import java.io.ByteArrayInputStream;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The operator runs as the ServiceAccount of the Helm chart, with exactly the chart's RBAC, and two replicas
 * share the work through leader election.
 */
@WithControlPlane
class OperatorRbacAndLeaderElectionIT {
    private static final Duration TIMEOUT = Duration.ofSeconds(60);

    @BeforeAll
    static void installCrds(ControlPlane controlPlane) {
        Crds.installStevedore(controlPlane.adminClient());
    }

    @Test
    void theChartsServiceAccountCanDoItsJobAndNoMore(TestNamespace ns) throws Exception {
        String serviceAccount = installChartRbac(ns);
        NodeSide nodeSide = new NodeSide(ns.client());
        nodeSide.register(ns.name() + "-node", Map.of("stevedore.dev/test", ns.name()));
        KubernetesClient asOperator = ns.clientAs(serviceAccount);
        Operator operator = StevedoreOperator.start(asOperator, replica(ns, "replica-one"));
        try {
            createContainer(ns, "app");
            await().atMost(TIMEOUT)
                    .until(() -> ns.client()
                                    .resources(Container.class)
                                    .withName("app")
                                    .get()
                                    .getSpec()
                                    .nodeName()
                            != null);
        } finally {
            operator.stop();
            ns.client()
                    .resources(dev.stevedore.api.v1alpha1.RuntimeNode.class)
                    .withName(ns.name() + "-node")
                    .delete();
        }
        assertThat(allowed(asOperator, "delete", "containers", "stevedore.dev")).isFalse();
        assertThat(allowed(asOperator, "create", "containers", "stevedore.dev")).isFalse();
        assertThat(allowed(asOperator, "get", "secrets", "")).isFalse();
        assertThat(allowed(asOperator, "create", "pods", "")).isFalse();
        assertThat(allowed(asOperator, "patch", "tasks", "stevedore.dev")).isTrue();
    }

    @Test
    void aSecondReplicaTakesOverWhenTheLeaderStops(TestNamespace ns) throws Exception {
        KubernetesClient asOperator = ns.clientAs(installChartRbac(ns));
        NodeSide nodeSide = new NodeSide(ns.client());
        nodeSide.register(ns.name() + "-node", Map.of("stevedore.dev/test", ns.name()));
        Operator one = StevedoreOperator.start(asOperator, replica(ns, "replica-one"));
        await().atMost(TIMEOUT).until(() -> "replica-one".equals(holder(ns)));
        Operator two = StevedoreOperator.start(asOperator, replica(ns, "replica-two"));
        try {
            one.stop();
            await().atMost(TIMEOUT).until(() -> "replica-two".equals(holder(ns)));
            createContainer(ns, "after-failover");
            await().atMost(TIMEOUT)
                    .until(() -> ns.client()
                                    .resources(Container.class)
                                    .withName("after-failover")
                                    .get()
                                    .getSpec()
                                    .nodeName()
                            != null);
        } finally {
            two.stop();
            ns.client()
                    .resources(dev.stevedore.api.v1alpha1.RuntimeNode.class)
                    .withName(ns.name() + "-node")
                    .delete();
        }
    }

    /** Renders the chart into the test's namespace and applies its ServiceAccount and RBAC. */
    private static String installChartRbac(TestNamespace ns) throws Exception {
        // Cluster-scoped names carry the release name: one per test, within Helm's 53 characters.
        String release = "st-" + ns.name().substring(ns.name().lastIndexOf('-') + 1);
        Process helm = new ProcessBuilder(
                        Tools.binDir().resolve("helm").toString(),
                        "template",
                        release,
                        Tools.repositoryRoot().resolve("charts/stevedore").toString(),
                        "--namespace",
                        ns.name())
                .start();
        byte[] rendered = helm.getInputStream().readAllBytes();
        String errors = new String(helm.getErrorStream().readAllBytes(), java.nio.charset.StandardCharsets.UTF_8);
        assertThat(helm.waitFor()).as(errors).isZero();
        Set<String> rbacKinds = Set.of("ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding");
        List<HasMetadata> objects =
                ns.client().load(new ByteArrayInputStream(rendered)).items();
        objects.stream()
                .filter(o -> rbacKinds.contains(o.getKind()))
                .forEach(o -> ns.client().resource(o).create());
        return release + "-operator";
    }

    private static void createContainer(TestNamespace ns, String name) {
        ns.client()
                .resource(Serialization.unmarshal("""
                apiVersion: stevedore.dev/v1alpha1
                kind: Container
                metadata: {name: %s}
                spec:
                  image: 127.0.0.1:5000/stevedore/busybox:latest
                  nodeSelector: {stevedore.dev/test: %s}
                """.formatted(name, ns.name()), Container.class))
                .create();
    }

    private static StevedoreOperator.Settings replica(TestNamespace ns, String identity) {
        return new StevedoreOperator.Settings(
                new StevedoreOperator.LeaderElection(ns.name(), identity, false), Duration.ofSeconds(40));
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
