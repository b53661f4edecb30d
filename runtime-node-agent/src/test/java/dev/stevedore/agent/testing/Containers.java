package dev.stevedore.agent.testing;

import dev.stevedore.api.v1alpha1.Container;
import dev.stevedore.testing.TestNamespace;
import io.fabric8.kubernetes.api.model.Condition;
import io.fabric8.kubernetes.client.utils.Serialization;
import java.time.Duration;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import java.util.function.Supplier;

/** Containers bound to a node by name, and waiting on what the node agent reports about them. */
public final class Containers {
    /** Generous: two cores, and other builds running beside the tests. */
    public static final Duration TIMEOUT = Duration.ofSeconds(120);

    private Containers() {}

    /** @param node its spec.nodeName, or null to leave it to the operator's scheduling */
    public static Container create(TestNamespace ns, String name, String image, String node, String moreSpec) {
        String yaml =
                """
                apiVersion: stevedore.dev/v1alpha1
                kind: Container
                metadata: {name: %s}
                spec:
                  image: %s
                """.formatted(name, image) + (node == null ? "" : "  nodeName: " + node + "\n") + moreSpec.indent(2);
        return ns.client()
                .resource(Serialization.unmarshal(yaml, Container.class))
                .create();
    }

    public static Container awaitCondition(TestNamespace ns, String name, String type, String status) {
        return awaitCondition(ns, name, type, status, () -> "");
    }

    /** @param diagnostics appended to the failure message, e.g. the agent's log */
    public static Container awaitCondition(
            TestNamespace ns, String name, String type, String status, Supplier<String> diagnostics) {
        return await(
                ns,
                name,
                c -> c.getStatus() != null
                        && c.getStatus().conditions() != null
                        && c.getStatus().conditions().stream()
                                .anyMatch(x -> type.equals(x.getType()) && status.equals(x.getStatus())),
                type + "=" + status,
                diagnostics);
    }

    public static Container await(
            TestNamespace ns, String name, Predicate<Container> condition, String what, Supplier<String> diagnostics) {
        try {
            return ns.client()
                    .resources(Container.class)
                    .withName(name)
                    .waitUntilCondition(c -> c != null && condition.test(c), TIMEOUT.toSeconds(), TimeUnit.SECONDS);
        } catch (RuntimeException e) {
            Container last =
                    ns.client().resources(Container.class).withName(name).get();
            throw new AssertionError(
                    "Container " + name + " did not get " + what + " in " + TIMEOUT.toSeconds()
                            + "s; its status: " + (last == null ? "(gone)" : Serialization.asYaml(last.getStatus()))
                            + diagnostics.get(),
                    e);
        }
    }

    public static void awaitGone(TestNamespace ns, String name) {
        ns.client()
                .resources(Container.class)
                .withName(name)
                .waitUntilCondition(Objects::isNull, TIMEOUT.toSeconds(), TimeUnit.SECONDS);
    }

    public static Condition condition(Container container, String type) {
        return container.getStatus().conditions().stream()
                .filter(c -> type.equals(c.getType()))
                .findFirst()
                .orElseThrow(() -> new AssertionError("no condition " + type + " in " + container.getStatus()));
    }

    /** Lets the API server delete the namespace's Containers though no agent runs to release them. */
    public static void dropFinalizers(TestNamespace ns) {
        List<Container> all = ns.client().resources(Container.class).list().getItems();
        for (Container container : all) {
            if (container.getMetadata().getFinalizers() != null
                    && !container.getMetadata().getFinalizers().isEmpty()) {
                ns.client()
                        .resources(Container.class)
                        .withName(container.getMetadata().getName())
                        .edit(c -> {
                            c.getMetadata().setFinalizers(List.of());
                            return c;
                        });
            }
        }
    }
}
