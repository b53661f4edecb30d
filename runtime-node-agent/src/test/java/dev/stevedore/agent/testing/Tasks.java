package dev.stevedore.agent.testing;

import dev.stevedore.api.v1alpha1.Task;
import dev.stevedore.api.v1alpha1.TaskSpec;
import dev.stevedore.api.v1alpha1.TaskStatus;
import dev.stevedore.testing.TestNamespace;
import io.fabric8.kubernetes.client.dsl.base.PatchContext;
import io.fabric8.kubernetes.client.dsl.base.PatchType;
import io.fabric8.kubernetes.client.utils.Serialization;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;

/** Tasks bound to a node by name, and waiting on the phase the node agent reports. */
public final class Tasks {
    private Tasks() {}

    public static Task create(TestNamespace ns, String name, String container, String node, String moreSpec) {
        String yaml = """
                apiVersion: stevedore.dev/v1alpha1
                kind: Task
                metadata: {name: %s}
                spec:
                  container: %s
                  nodeName: %s
                """.formatted(name, container, node) + moreSpec.indent(2);
        return ns.client().resource(Serialization.unmarshal(yaml, Task.class)).create();
    }

    /**
     * As {@code kubectl patch tk NAME --type=merge}: a merge patch of spec.desiredState alone, with no
     * resourceVersion, so the operator's and the agent's status writes in between do not make it conflict.
     */
    public static void setDesired(TestNamespace ns, String name, TaskSpec.DesiredState state) {
        ns.client()
                .resources(Task.class)
                .withName(name)
                .patch(PatchContext.of(PatchType.JSON_MERGE), "{\"spec\": {\"desiredState\": \"" + state + "\"}}");
    }

    public static Task awaitPhase(TestNamespace ns, String name, TaskStatus.Phase phase) {
        return await(ns, name, t -> t.getStatus() != null && t.getStatus().phase() == phase);
    }

    public static Task await(TestNamespace ns, String name, Predicate<Task> condition) {
        return ns.client()
                .resources(Task.class)
                .withName(name)
                .waitUntilCondition(
                        t -> t != null && condition.test(t), Containers.TIMEOUT.toSeconds(), TimeUnit.SECONDS);
    }
}
