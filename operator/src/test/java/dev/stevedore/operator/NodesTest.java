package dev.stevedore.operator;

import static org.assertj.core.api.Assertions.assertThat;

import dev.stevedore.api.v1alpha1.ContainerStatus;
import dev.stevedore.api.v1alpha1.RuntimeNode;
import dev.stevedore.api.v1alpha1.RuntimeNodeSpec;
import dev.stevedore.api.v1alpha1.RuntimeNodeStatus;
import io.fabric8.kubernetes.api.model.Condition;
import io.fabric8.kubernetes.api.model.ConditionBuilder;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Which RuntimeNode updates wake the Containers waiting to be scheduled: not every heartbeat. */
class NodesTest {
    @Test
    void diskPressureComingOrGoingConcernsSchedulingAHeartbeatDoesNot() {
        RuntimeNode full = node("10:00:00", "True");
        RuntimeNode fullLater = node("10:00:10", "True");
        RuntimeNode freed = node("10:00:20", "False");

        assertThat(Nodes.schedulingRelevantChange(fullLater, full)).isFalse();
        assertThat(Nodes.schedulingRelevantChange(freed, fullLater)).isTrue();
        assertThat(Nodes.schedulingRelevantChange(full, freed)).isTrue();
    }

    private static RuntimeNode node(String heartbeat, String diskPressure) {
        RuntimeNode node = new RuntimeNode();
        node.setMetadata(new ObjectMetaBuilder().withName("n").build());
        node.setSpec(new RuntimeNodeSpec(null));
        node.setStatus(new RuntimeNodeStatus(
                null,
                null,
                null,
                null,
                null,
                null,
                null,
                null,
                "2026-01-01T" + heartbeat + "Z",
                List.of(
                        condition(ContainerStatus.READY, "True", heartbeat),
                        condition(RuntimeNodeStatus.DISK_PRESSURE, diskPressure, heartbeat))));
        return node;
    }

    private static Condition condition(String type, String status, String time) {
        return new ConditionBuilder()
                .withType(type)
                .withStatus(status)
                .withReason("Test")
                .withMessage("at " + time)
                .build();
    }
}
