package dev.stevedore.operator;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import dev.stevedore.api.v1alpha1.Container;
import dev.stevedore.api.v1alpha1.Task;
import dev.stevedore.testing.Chart;
import dev.stevedore.testing.ControlPlane;
import dev.stevedore.testing.Crds;
import dev.stevedore.testing.TestNamespace;
import dev.stevedore.testing.WithControlPlane;
import io.fabric8.kubernetes.api.model.ServiceAccountBuilder;
import io.fabric8.kubernetes.api.model.rbac.RoleBindingBuilder;
import io.fabric8.kubernetes.api.model.rbac.RoleBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.fabric8.kubernetes.client.dsl.base.PatchContext;
import io.fabric8.kubernetes.client.dsl.base.PatchType;
import io.fabric8.kubernetes.client.utils.Serialization;
import io.javaoperatorsdk.operator.Operator;
import java.time.Duration;
import java.util.Map;
import org.assertj.core.api.ThrowableAssert.ThrowingCallable;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Only the operator binds Tasks to nodes: under the chart's policy {@code <release>-task-binding}, a user who may
 * edit Tasks (a ServiceAccount of the namespace with an edit-like Role), and even a cluster admin, cannot set a
 * Task's spec.nodeName, while the operator, under its chart ServiceAccount, still binds them.
 */
@WithControlPlane
class TaskBindingPolicyIT {
    private static final Duration TIMEOUT = Duration.ofSeconds(120);
    /** A new policy is in force once the API server's informer has it: a moment after it is created. */
    private static final Duration POLICY_IN_FORCE = Duration.ofSeconds(30);

    @BeforeAll
    static void installCrds(ControlPlane controlPlane) {
        Crds.installStevedore(controlPlane.adminClient());
    }

    @Test
    void aUserCannotBindATaskButTheOperatorDoes(TestNamespace ns) {
        Chart.installRbac(ns);
        KubernetesClient asUser = ns.clientAs(editor(ns));
        String node = ns.name() + "-node";
        Chart.installAdmissionPolicy(ns, "task-binding");

        // A dry run until the policy is in force: a Task created before would be a bound one, ahead in line.
        await().atMost(POLICY_IN_FORCE)
                .untilAsserted(() -> assertRefused(
                        () -> asUser.resource(task("pinned", node)).dryRun().create(), ns, "pinned"));
        assertRefused(() -> asUser.resource(task("pinned", node)).create(), ns, "pinned");
        assertRefused(() -> ns.client().resource(task("pinned-by-admin", node)).create(), ns, "pinned-by-admin");
        asUser.resource(container("app", ns)).create();
        asUser.resource(task("app-1", null)).create();
        assertRefused(
                () -> asUser.resources(Task.class)
                        .withName("app-1")
                        .patch(PatchContext.of(PatchType.JSON_MERGE), "{\"spec\": {\"nodeName\": \"" + node + "\"}}"),
                ns,
                "app-1");

        new NodeSide(ns.client()).register(node, Map.of(TestNamespace.TEST_LABEL, ns.name()));
        Operator operator = StevedoreOperator.start(
                ns.clientAs(Chart.operatorServiceAccount(ns)),
                new StevedoreOperator.Settings(
                        new StevedoreOperator.LeaderElection(ns.name(), "only", false), Duration.ofHours(1)));
        try {
            await().atMost(TIMEOUT).untilAsserted(() -> {
                Task bound = asUser.resources(Task.class).withName("app-1").get();
                assertThat(bound.getSpec().nodeName())
                        .as(() -> Serialization.asYaml(bound)
                                + Serialization.asYaml(ns.client()
                                        .resources(Container.class)
                                        .withName("app")
                                        .get()))
                        .isEqualTo(node);
            });
        } finally {
            operator.stop();
        }
    }

    private static void assertRefused(ThrowingCallable write, TestNamespace ns, String task) {
        assertThatThrownBy(write).isInstanceOfSatisfying(KubernetesClientException.class, e -> {
            assertThat(e.getCode()).isEqualTo(403);
            assertThat(e.getMessage())
                    .contains("Task " + ns.name() + "/" + task
                            + ": spec.nodeName is set by the Stevedore operator only, which binds the Tasks of a"
                            + " Container to its node one at a time; create the Task without spec.nodeName");
        });
    }

    /** A ServiceAccount of the namespace that may do everything with Containers and Tasks, as "edit" would. */
    private static String editor(TestNamespace ns) {
        KubernetesClient admin = ns.client();
        admin.resource(new ServiceAccountBuilder()
                        .withNewMetadata()
                        .withName("developer")
                        .endMetadata()
                        .build())
                .create();
        admin.resource(new RoleBuilder()
                        .withNewMetadata()
                        .withName("stevedore-edit")
                        .endMetadata()
                        .addNewRule()
                        .withApiGroups("stevedore.dev")
                        .withResources("containers", "tasks")
                        .withVerbs("get", "list", "watch", "create", "update", "patch", "delete")
                        .endRule()
                        .build())
                .create();
        admin.resource(new RoleBindingBuilder()
                        .withNewMetadata()
                        .withName("developer-edits")
                        .endMetadata()
                        .withNewRoleRef()
                        .withApiGroup("rbac.authorization.k8s.io")
                        .withKind("Role")
                        .withName("stevedore-edit")
                        .endRoleRef()
                        .addNewSubject()
                        .withKind("ServiceAccount")
                        .withName("developer")
                        .withNamespace(ns.name())
                        .endSubject()
                        .build())
                .create();
        return "developer";
    }

    /** A Container for the test's node alone, which carries the test's label. */
    private static Container container(String name, TestNamespace ns) {
        return Serialization.unmarshal("""
                apiVersion: stevedore.dev/v1alpha1
                kind: Container
                metadata: {name: %s}
                spec:
                  image: 127.0.0.1:5000/stevedore/busybox:latest
                  nodeSelector: {%s: %s}
                """.formatted(name, TestNamespace.TEST_LABEL, ns.name()), Container.class);
    }

    private static Task task(String name, String node) {
        return Serialization.unmarshal("""
                apiVersion: stevedore.dev/v1alpha1
                kind: Task
                metadata: {name: %s}
                spec: {container: app%s}
                """.formatted(name, node == null ? "" : ", nodeName: " + node), Task.class);
    }
}
