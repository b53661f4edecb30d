package dev.stevedore.agent;

import static org.assertj.core.api.Assertions.assertThat;

import dev.stevedore.agent.testing.Containers;
import dev.stevedore.agent.testing.LocalRegistry;
import dev.stevedore.agent.testing.PullCredentialsEndpoint;
import dev.stevedore.agent.testing.TestImages;
import dev.stevedore.agent.testing.TestImages.Format;
import dev.stevedore.api.v1alpha1.Conditions;
import dev.stevedore.api.v1alpha1.Container;
import dev.stevedore.api.v1alpha1.ContainerStatus;
import dev.stevedore.api.v1alpha1.RuntimeNode;
import dev.stevedore.api.v1alpha1.Task;
import dev.stevedore.api.v1alpha1.TaskStatus;
import dev.stevedore.operator.StevedoreOperator;
import dev.stevedore.testing.Chart;
import dev.stevedore.testing.ControlPlane;
import dev.stevedore.testing.Crds;
import dev.stevedore.testing.TestNamespace;
import dev.stevedore.testing.WithControlPlane;
import io.fabric8.kubernetes.api.model.Condition;
import io.fabric8.kubernetes.client.utils.Serialization;
import io.javaoperatorsdk.operator.Operator;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * KEP-2535 on a real node: once a Container with credentials has pulled a private image, the image is cached on
 * the node, and another Container may use it only if its own credentials can pull it. Without credentials or with
 * wrong ones it is refused (ImageReady False, Unauthorized, and its Task ends StartFailed); with other valid
 * credentials, which the agent checks with the registry, its Task runs to completion.
 */
@WithControlPlane
class PrivateImageIT {
    private static final String NODE = "private-image-it-node";
    private static final Map<String, String> LABELS = Map.of("stevedore.dev/test", "private-image");
    private static final Map<String, String> PASSWORDS = Map.of("alice", "alice-s3cret", "carol", "carol-s3cret");

    @TempDir
    static Path tmp;

    private static ControlPlane controlPlane;
    private static LocalRegistry registry;
    private static NodeAgent.Running agent;
    private static Operator operator;
    private static String image;
    private static final int PORT = PullCredentialsEndpoint.freePort();

    @BeforeAll
    static void start(ControlPlane cp) throws Exception {
        controlPlane = cp;
        Crds.installStevedore(cp.adminClient());
        registry = LocalRegistry.withBasicAuth(PASSWORDS);
        image = registry.host() + "/private/busybox:1";
        TestImages.build(tmp.resolve("images"))
                .push(TestImages.BASE, image, Format.OCI, "alice:" + PASSWORDS.get("alice"));
        // Agents get pull Secrets from the operator's endpoint; each test starts it for its namespace.
        agent = NodeAgent.start(
                cp.adminClient(),
                NodeAgent.Settings.of(NODE, tmp.resolve("root"))
                        .withLabels(LABELS)
                        .withHeartbeatInterval(Duration.ofSeconds(5))
                        .withPullCredentials(PullCredentialsEndpoint.client(PORT, tmp.resolve("credentials"))));
        operator =
                StevedoreOperator.start(cp.adminClient(), new StevedoreOperator.Settings(null, Duration.ofSeconds(40)));
    }

    @AfterAll
    static void stop() {
        operator.stop();
        agent.close();
        registry.close();
        controlPlane.adminClient().resources(RuntimeNode.class).withName(NODE).delete();
    }

    @Test
    void aCachedPrivateImageServesOnlyContainersWhoseCredentialsPullIt(TestNamespace ns) {
        Chart.installRbac(ns);
        try (PullCredentialsEndpoint endpoint =
                PullCredentialsEndpoint.start(ns, NODE, PORT, tmp.resolve("credentials"))) {
            whoseCredentialsPullIt(ns);
        }
    }

    private static void whoseCredentialsPullIt(TestNamespace ns) {
        pullSecret(ns, "alice", "alice", PASSWORDS.get("alice"));
        pullSecret(ns, "carol", "carol", PASSWORDS.get("carol"));
        pullSecret(ns, "wrong", "alice", "guessed");

        // alice's Container pulls the image: from now on it is cached on the node.
        container(ns, "alices", "imagePullSecrets: [{name: alice}]");
        Containers.awaitCondition(ns, "alices", ContainerStatus.READY, "True");
        assertCompleted(runTask(ns, "alices-1", "alices"));

        for (String[] refused : new String[][] {{"anonymous", ""}, {"wrongs", "imagePullSecrets: [{name: wrong}]"}}) {
            container(ns, refused[0], refused[1]);
            Container stalled = Containers.awaitCondition(ns, refused[0], Conditions.STALLED, "True");
            Condition imageReady = Containers.condition(stalled, ContainerStatus.IMAGE_READY);
            assertThat(imageReady.getStatus()).isEqualTo("False");
            assertThat(imageReady.getReason()).isEqualTo("Unauthorized");
            assertThat(imageReady.getMessage())
                    .startsWith(image + " is on this node, pulled with other credentials, and " + registry.host()
                            + " refuses it to this Container")
                    .contains("give the Container imagePullSecrets that can pull it");
            Task failed = runTask(ns, refused[0] + "-1", refused[0]);
            assertThat(failed.getStatus().reason()).isEqualTo("StartFailed");
            assertThat(failed.getStatus().message()).contains("Unauthorized");
        }

        // carol's credentials are not the ones that pulled it; the registry says they may.
        container(ns, "carols", "imagePullSecrets: [{name: carol}]");
        Container ready = Containers.awaitCondition(ns, "carols", ContainerStatus.READY, "True");
        assertThat(Conditions.find(ready.getStatus().conditions(), Conditions.STALLED))
                .isEmpty();
        assertCompleted(runTask(ns, "carols-1", "carols"));
    }

    private static void pullSecret(TestNamespace ns, String name, String user, String password) {
        PullCredentialsEndpoint.pullSecret(ns, name, registry.host(), user, password);
    }

    private static void container(TestNamespace ns, String name, String moreSpec) {
        Containers.create(
                ns,
                name,
                image,
                null,
                "nodeSelector: {stevedore.dev/test: private-image}\nprocess: {args: [sh, -c, 'echo private']}\n"
                        + moreSpec);
    }

    /** Creates the Task and waits for it to end, Deleted, however it ends. */
    private static Task runTask(TestNamespace ns, String name, String container) {
        ns.client()
                .resource(Serialization.unmarshal("""
                        apiVersion: stevedore.dev/v1alpha1
                        kind: Task
                        metadata: {name: %s}
                        spec: {container: %s}
                        """.formatted(name, container), Task.class))
                .create();
        return ns.client()
                .resources(Task.class)
                .withName(name)
                .waitUntilCondition(
                        t -> t != null && t.getStatus() != null && t.getStatus().phase() == TaskStatus.Phase.Deleted,
                        Containers.TIMEOUT.toSeconds(),
                        TimeUnit.SECONDS);
    }

    private static void assertCompleted(Task task) {
        assertThat(task.getStatus().reason()).as(task.getStatus().message()).isEqualTo("Completed");
        assertThat(task.getStatus().exitCode()).isZero();
    }
}
