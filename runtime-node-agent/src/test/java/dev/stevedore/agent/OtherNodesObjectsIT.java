package dev.stevedore.agent;

import static org.assertj.core.api.Assertions.assertThat;

import dev.stevedore.agent.testing.AgentRoot;
import dev.stevedore.agent.testing.Containers;
import dev.stevedore.agent.testing.LocalRegistry;
import dev.stevedore.agent.testing.Tasks;
import dev.stevedore.agent.testing.TestImages;
import dev.stevedore.api.v1alpha1.Container;
import dev.stevedore.api.v1alpha1.ContainerStatus;
import dev.stevedore.api.v1alpha1.RuntimeNode;
import dev.stevedore.api.v1alpha1.Task;
import dev.stevedore.api.v1alpha1.TaskStatus;
import dev.stevedore.testing.ControlPlane;
import dev.stevedore.testing.Crds;
import dev.stevedore.testing.TestNamespace;
import dev.stevedore.testing.WithControlPlane;
import io.fabric8.kubernetes.api.model.HasMetadata;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * An agent sees only its own node's objects: the API server filters its lists and watches by spec.nodeName. With the
 * agent of one node running, Containers and Tasks bound to another node are never written (no finalizer, no status,
 * not even their resourceVersion changes) and nothing of them lands in the agent's root, while the agent prepares and
 * runs its own node's, created after them.
 */
@WithControlPlane
class OtherNodesObjectsIT {
    private static final String NODE = "this-node";
    private static final String OTHER_NODE = "other-node";

    @TempDir
    static Path tmp;

    private static ControlPlane controlPlane;
    private static LocalRegistry registry;
    private static String ownImage;
    private static String otherNodesImage;

    private NodeAgent.Running agent;
    private TestNamespace namespace;

    @BeforeAll
    static void pushImages(ControlPlane cp) {
        controlPlane = cp;
        Crds.installStevedore(cp.adminClient());
        registry = LocalRegistry.start();
        TestImages images = TestImages.build(tmp.resolve("images"));
        ownImage = registry.host() + "/test/this-node:1";
        otherNodesImage = registry.host() + "/test/other-node-only:1";
        images.push(TestImages.BASE, ownImage);
        images.push(TestImages.BASE, otherNodesImage);
    }

    @AfterAll
    static void stopRegistry() {
        if (registry != null) {
            registry.close();
        }
    }

    /** This node's objects are released by the running agent; the other node's carry no finalizer to wait for. */
    @AfterEach
    void deleteWhileTheAgentRuns() {
        try {
            if (agent != null && namespace != null) {
                List<Task> tasks =
                        namespace.client().resources(Task.class).list().getItems();
                namespace.client().resources(Task.class).delete();
                namespace.client().resources(Container.class).delete();
                for (Task task : tasks) {
                    namespace
                            .client()
                            .resources(Task.class)
                            .withName(task.getMetadata().getName())
                            .waitUntilCondition(Objects::isNull, Containers.TIMEOUT.toSeconds(), TimeUnit.SECONDS);
                }
                namespace
                        .client()
                        .resources(Container.class)
                        .list()
                        .getItems()
                        .forEach(c ->
                                Containers.awaitGone(namespace, c.getMetadata().getName()));
            }
        } finally {
            if (agent != null) {
                agent.close();
            }
            if (namespace != null) {
                Containers.dropFinalizers(namespace);
            }
            controlPlane
                    .adminClient()
                    .resources(RuntimeNode.class)
                    .withName(NODE)
                    .delete();
        }
    }

    @Test
    void anotherNodesContainerAndTaskAreNeverTouched(TestNamespace ns) throws Exception {
        namespace = ns;
        AgentRoot root = new AgentRoot(tmp.resolve("root"));
        // Before the agent starts (its first list) and after (its watch): neither may reach it.
        Container otherBefore = Containers.create(ns, "other-before", otherNodesImage, OTHER_NODE, "");
        Task otherTask = Tasks.create(ns, "other-before-1", "other-before", OTHER_NODE, "");
        agent = NodeAgent.start(
                controlPlane.adminClient(),
                NodeAgent.Settings.of(NODE, root.path()).withHeartbeatInterval(Duration.ofSeconds(5)));
        Container otherAfter = Containers.create(ns, "other-after", otherNodesImage, OTHER_NODE, "");

        // This node's Container and Task, created after the other node's: once the agent has prepared and run them,
        // it has had every event of the other node's objects that it could have had.
        Containers.create(ns, "own", ownImage, NODE, "process: {args: [sh, -c, 'exit 0']}");
        Containers.awaitCondition(ns, "own", ContainerStatus.READY, "True");
        Tasks.create(ns, "own-1", "own", NODE, "");
        Task ownDone = Tasks.awaitPhase(ns, "own-1", TaskStatus.Phase.Deleted);
        assertThat(ownDone.getStatus().exitCode()).isZero();

        for (HasMetadata created : List.of(otherBefore, otherTask, otherAfter)) {
            assertUntouched(ns, created);
        }
        for (HasMetadata created : List.of(otherBefore, otherAfter)) {
            String uid = created.getMetadata().getUid();
            assertThat(root.path().resolve("containers").resolve(uid)).doesNotExist();
            assertThat(root.snapshots()).noneMatch(s -> s.name().contains(uid));
        }
        assertThat(root.path().resolve("tasks").resolve(otherTask.getMetadata().getUid()))
                .doesNotExist();
        assertThat(root.imageRecord(otherNodesImage))
                .as("a pull of the other node's image")
                .doesNotExist();
        assertThat(root.imageRecord(ownImage)).exists();
        assertThat(controlPlane
                        .adminClient()
                        .resources(RuntimeNode.class)
                        .withName(OTHER_NODE)
                        .get())
                .isNull();
    }

    /** Not written since it was created: the same resourceVersion, no finalizer, no status. */
    private static void assertUntouched(TestNamespace ns, HasMetadata created) {
        HasMetadata now = ns.client()
                .resources(created.getClass())
                .withName(created.getMetadata().getName())
                .get();
        String what = created.getKind() + " " + created.getMetadata().getName();
        assertThat(now).as(what).isNotNull();
        assertThat(now.getMetadata().getFinalizers()).as(what + ": finalizers").isEmpty();
        assertThat(now.getMetadata().getResourceVersion())
                .as(what + " was written: " + now)
                .isEqualTo(created.getMetadata().getResourceVersion());
        Object status = now instanceof Container c ? c.getStatus() : ((Task) now).getStatus();
        assertThat(status).as(what + ": status").isNull();
    }
}
