package dev.stevedore.operator;

import dev.stevedore.api.FieldManager;
import dev.stevedore.api.v1alpha1.Container;
import dev.stevedore.api.v1alpha1.ContainerStatus;
import dev.stevedore.api.v1alpha1.RuntimeNode;
import dev.stevedore.api.v1alpha1.RuntimeNodeSpec;
import dev.stevedore.api.v1alpha1.RuntimeNodeStatus;
import dev.stevedore.api.v1alpha1.Task;
import dev.stevedore.api.v1alpha1.TaskStatus;
import io.fabric8.kubernetes.api.model.Condition;
import io.fabric8.kubernetes.api.model.ConditionBuilder;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.List;
import java.util.Map;

/** Writes what a node agent would, under the agent's field manager, so operator tests need no agent. */
final class NodeSide {
    private final KubernetesClient client;

    NodeSide(KubernetesClient client) {
        this.client = client;
    }

    RuntimeNode register(String name, Map<String, String> labels) {
        return register(name, labels, null);
    }

    /** @param unschedulable the spec's cordon, which a person sets (kubectl), not the agent */
    RuntimeNode register(String name, Map<String, String> labels, Boolean unschedulable) {
        RuntimeNode node = new RuntimeNode();
        node.setMetadata(
                new ObjectMetaBuilder().withName(name).withLabels(labels).build());
        node.setSpec(new RuntimeNodeSpec(unschedulable));
        client.resource(node).create();
        return heartbeat(name, Instant.now(), "True");
    }

    RuntimeNode heartbeat(String name, Instant at, String ready) {
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
                at.truncatedTo(ChronoUnit.SECONDS).toString(),
                List.of(condition("Ready", ready, "AgentReady"))));
        return FieldManager.AGENT.applyStatus(client, apply);
    }

    void containerReady(String namespace, String name) {
        Container apply = new Container();
        apply.setMetadata(
                new ObjectMetaBuilder().withName(name).withNamespace(namespace).build());
        apply.setStatus(new ContainerStatus(
                null,
                "sha256:" + "0".repeat(64),
                "overlayfs",
                name,
                null,
                null,
                List.of(condition(ContainerStatus.READY, "True", "RootfsPrepared"))));
        FieldManager.AGENT.applyStatus(client, apply);
    }

    void taskPhase(String namespace, String name, TaskStatus.Phase phase, Integer exitCode) {
        Task apply = new Task();
        apply.setMetadata(
                new ObjectMetaBuilder().withName(name).withNamespace(namespace).build());
        String now = Instant.now().truncatedTo(ChronoUnit.SECONDS).toString();
        apply.setStatus(new TaskStatus(
                phase,
                "node",
                42L,
                now,
                exitCode,
                phase == TaskStatus.Phase.Deleted ? now : null,
                exitCode == null ? null : exitCode == 0 ? "Completed" : "Error",
                null,
                null,
                null));
        FieldManager.AGENT.applyStatus(client, apply);
    }

    private static Condition condition(String type, String status, String reason) {
        return new ConditionBuilder()
                .withType(type)
                .withStatus(status)
                .withReason(reason)
                .withMessage(reason)
                .withLastTransitionTime(
                        Instant.now().truncatedTo(ChronoUnit.SECONDS).toString())
                .build();
    }
}
