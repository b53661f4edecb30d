package dev.stevedore.bench;

import dev.stevedore.api.FieldManager;
import dev.stevedore.api.v1alpha1.RuntimeNode;
import dev.stevedore.api.v1alpha1.RuntimeNodeSpec;
import dev.stevedore.api.v1alpha1.RuntimeNodeStatus;
import io.fabric8.kubernetes.api.model.Condition;
import io.fabric8.kubernetes.api.model.ConditionBuilder;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.List;

/**
 * Registers RuntimeNodes as node agents would (a Ready heartbeat, server-side applied under the agent's field
 * manager), so scheduling can be measured without agents. As the operator's NodeSide test helper does.
 */
final class NodeAgentStandIn {
    private final KubernetesClient client;

    NodeAgentStandIn(KubernetesClient client) {
        this.client = client;
    }

    /** Creates the node and reports it Ready now, once: the operator must be given a grace period longer than the run. */
    RuntimeNode register(String name) {
        RuntimeNode node = new RuntimeNode();
        node.setMetadata(new ObjectMetaBuilder().withName(name).build());
        node.setSpec(new RuntimeNodeSpec(null));
        client.resource(node).create();

        String now = Instant.now().truncatedTo(ChronoUnit.SECONDS).toString();
        RuntimeNode apply = new RuntimeNode();
        apply.setMetadata(new ObjectMetaBuilder().withName(name).build());
        apply.setStatus(new RuntimeNodeStatus(
                List.of(new RuntimeNodeStatus.RuntimeInfo("runc", "1.1.5")),
                List.of("overlayfs", "native"),
                null,
                null,
                null,
                null,
                0,
                null,
                now,
                List.of(ready(now))));
        return FieldManager.AGENT.applyStatus(client, apply);
    }

    private static Condition ready(String now) {
        return new ConditionBuilder()
                .withType("Ready")
                .withStatus("True")
                .withReason("AgentReady")
                .withMessage("AgentReady")
                .withLastTransitionTime(now)
                .build();
    }
}
