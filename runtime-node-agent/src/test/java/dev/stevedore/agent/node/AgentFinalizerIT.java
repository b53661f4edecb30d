package dev.stevedore.agent.node;

import static org.assertj.core.api.Assertions.assertThat;

import dev.stevedore.agent.testing.Containers;
import dev.stevedore.api.NodeAgentFinalizer;
import dev.stevedore.api.v1alpha1.Container;
import dev.stevedore.testing.ControlPlane;
import dev.stevedore.testing.Crds;
import dev.stevedore.testing.TestNamespace;
import dev.stevedore.testing.WithControlPlane;
import io.fabric8.kubernetes.client.dsl.Resource;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The agent's finalizer against the real API server, written from stale copies of the object as an informer may
 * hold them: another writer's finalizer is never lost, and an object replaced under the same name is left alone.
 */
@WithControlPlane
class AgentFinalizerIT {
    private static final String NODE = "no-agent-here";
    private static final String OTHER = "example.com/other";
    private static final String THIRD = "example.com/third";

    @BeforeAll
    static void crds(ControlPlane cp) {
        Crds.installStevedore(cp.adminClient());
    }

    @Test
    void addingFromAStaleCopyKeepsAFinalizerAddedMeanwhile(TestNamespace ns) {
        Container stale = Containers.create(ns, "c", "busybox", NODE, "");
        setFinalizers(ns, List.of(OTHER));

        try (AgentFinalizer finalizer = new AgentFinalizer(ns.client())) {
            finalizer.addSoon(stale);
            Container now = container(ns)
                    .waitUntilCondition(c -> c.hasFinalizer(NodeAgentFinalizer.NAME), 30, TimeUnit.SECONDS);
            assertThat(now.getMetadata().getFinalizers()).containsExactly(OTHER, NodeAgentFinalizer.NAME);
        }
        setFinalizers(ns, List.of());
    }

    @Test
    void removingFromAStaleCopyKeepsTheOthers(TestNamespace ns) {
        Containers.create(ns, "c", "busybox", NODE, "");
        Container stale = setFinalizers(ns, List.of(NodeAgentFinalizer.NAME, OTHER));
        setFinalizers(ns, List.of(THIRD, NodeAgentFinalizer.NAME, OTHER));

        try (AgentFinalizer finalizer = new AgentFinalizer(ns.client())) {
            finalizer.remove(stale);
        }

        assertThat(container(ns).get().getMetadata().getFinalizers()).containsExactly(THIRD, OTHER);
        setFinalizers(ns, List.of());
    }

    @Test
    void anObjectReplacedUnderTheSameNameIsLeftAlone(TestNamespace ns) {
        Containers.create(ns, "c", "busybox", NODE, "");
        Container old = setFinalizers(ns, List.of(NodeAgentFinalizer.NAME));
        setFinalizers(ns, List.of());
        container(ns).delete();
        container(ns).waitUntilCondition(Objects::isNull, 30, TimeUnit.SECONDS);
        Containers.create(ns, "c", "busybox", NODE, "");
        setFinalizers(ns, List.of(NodeAgentFinalizer.NAME));

        // The same name and the same finalizer list: only the UID tells the replacement from the old object.
        try (AgentFinalizer finalizer = new AgentFinalizer(ns.client())) {
            finalizer.remove(old);
        }

        assertThat(container(ns).get().getMetadata().getFinalizers()).containsExactly(NodeAgentFinalizer.NAME);
        setFinalizers(ns, List.of());
    }

    private static Container setFinalizers(TestNamespace ns, List<String> finalizers) {
        return container(ns).edit(c -> {
            c.getMetadata().setFinalizers(finalizers);
            return c;
        });
    }

    private static Resource<Container> container(TestNamespace ns) {
        return ns.client().resources(Container.class).withName("c");
    }
}
