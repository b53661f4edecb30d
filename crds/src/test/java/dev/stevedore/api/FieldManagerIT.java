package dev.stevedore.api;

import static org.assertj.core.api.Assertions.assertThat;

import dev.stevedore.api.v1alpha1.Container;
import dev.stevedore.api.v1alpha1.ContainerStatus;
import dev.stevedore.testing.ControlPlane;
import dev.stevedore.testing.Crds;
import dev.stevedore.testing.TestNamespace;
import dev.stevedore.testing.WithControlPlane;
import io.fabric8.kubernetes.api.model.Condition;
import io.fabric8.kubernetes.api.model.ConditionBuilder;
import io.fabric8.kubernetes.api.model.ManagedFieldsEntry;
import io.fabric8.kubernetes.client.utils.Serialization;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** The operator's and the agent's status applies share one object without removing each other's fields. */
@WithControlPlane
class FieldManagerIT {

    @BeforeAll
    static void installCrds(ControlPlane controlPlane) {
        Crds.installStevedore(controlPlane.adminClient());
    }

    @Test
    void eachManagerKeepsItsOwnConditionsAndOnlyThose(TestNamespace ns) {
        Container container = ns.client()
                .resource(Serialization.unmarshal("""
                apiVersion: stevedore.dev/v1alpha1
                kind: Container
                metadata: {name: shared}
                spec: {image: busybox}
                """, Container.class))
                .create();

        FieldManager.OPERATOR.applyStatus(ns.client(), status(container, "node-1", condition("Scheduled")));
        FieldManager.AGENT.applyStatus(ns.client(), status(container, null, condition(ContainerStatus.READY)));
        Container both = FieldManager.OPERATOR.applyStatus(
                ns.client(), status(container, "node-1", condition("Scheduled"), condition("NodeReachable")));

        assertThat(types(both)).containsExactlyInAnyOrder("Scheduled", ContainerStatus.READY, "NodeReachable");
        assertThat(both.getStatus().nodeName()).isEqualTo("node-1");
        assertThat(both.getMetadata().getManagedFields())
                .extracting(ManagedFieldsEntry::getManager)
                .contains(FieldManager.OPERATOR.name(), FieldManager.AGENT.name());

        // What a manager leaves out of its next apply is removed, and only what it owns.
        Container after =
                FieldManager.OPERATOR.applyStatus(ns.client(), status(container, "node-1", condition("Scheduled")));

        assertThat(types(after)).containsExactlyInAnyOrder("Scheduled", ContainerStatus.READY);
    }

    private static Container status(Container of, String nodeName, Condition... conditions) {
        Container apply = new Container();
        apply.setMetadata(FieldManager.identity(of));
        apply.setStatus(new ContainerStatus(nodeName, null, null, null, null, null, List.of(conditions)));
        return apply;
    }

    private static Condition condition(String type) {
        return new ConditionBuilder()
                .withType(type)
                .withStatus("True")
                .withReason("Test")
                .withMessage("test")
                .withLastTransitionTime("2025-01-01T00:00:00Z")
                .build();
    }

    private static List<String> types(Container container) {
        return container.getStatus().conditions().stream()
                .map(Condition::getType)
                .toList();
    }
}
