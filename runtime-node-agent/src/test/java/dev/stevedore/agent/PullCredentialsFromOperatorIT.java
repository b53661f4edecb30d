package dev.stevedore.agent;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.stevedore.agent.testing.Containers;
import dev.stevedore.agent.testing.LocalRegistry;
import dev.stevedore.agent.testing.PullCredentialsEndpoint;
import dev.stevedore.agent.testing.TestImages;
import dev.stevedore.api.v1alpha1.Container;
import dev.stevedore.api.v1alpha1.ContainerStatus;
import dev.stevedore.testing.Chart;
import dev.stevedore.testing.ControlPlane;
import dev.stevedore.testing.Crds;
import dev.stevedore.testing.TestNamespace;
import dev.stevedore.testing.WithControlPlane;
import io.fabric8.kubernetes.api.model.Condition;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A real node agent, with the chart's agent credentials (which cannot read Secrets), pulls a private image from a
 * registry behind Basic auth with the credentials the operator's pull-credentials endpoint gives it; while the
 * endpoint is down, the Container says so and nothing is lost: the agent retries and gets there once it is up.
 */
@WithControlPlane
class PullCredentialsFromOperatorIT {
    private static final String USER = "puller";
    private static final String PASSWORD = "s3cret";

    @TempDir
    static Path tmp;

    private static LocalRegistry registry;
    private static String image;

    @BeforeAll
    static void start(ControlPlane controlPlane) {
        Crds.installStevedore(controlPlane.adminClient());
        registry = LocalRegistry.withBasicAuth(USER, PASSWORD);
        image = registry.host() + "/private/base:1";
        TestImages.build(tmp.resolve("images"))
                .push(TestImages.BASE, image, TestImages.Format.OCI, USER + ":" + PASSWORD);
    }

    @AfterAll
    static void stop() {
        if (registry != null) {
            registry.close();
        }
    }

    @Test
    void anAgentThatCannotReadSecretsPullsAPrivateImageWithCredentialsFromTheOperator(TestNamespace ns)
            throws Exception {
        Chart.installRbac(ns);
        String node = ns.name() + "-node";
        KubernetesClient asAgent = ns.clientAs(Chart.agentServiceAccount(ns));
        PullCredentialsEndpoint.pullSecret(ns, "regcred", registry.host(), USER, PASSWORD);
        assertForbidden(() ->
                asAgent.secrets().inNamespace(ns.name()).withName("regcred").get());
        assertForbidden(() -> asAgent.secrets().inAnyNamespace().list());

        Path credentials = tmp.resolve(ns.name() + "-credentials");
        int port = PullCredentialsEndpoint.freePort();
        // The endpoint is not up yet, and its CA not published: the agent starts all the same.
        NodeAgent.Running agent = NodeAgent.start(
                asAgent,
                NodeAgent.Settings.of(node, tmp.resolve(ns.name()))
                        .withLabels(Map.of(TestNamespace.TEST_LABEL, ns.name()))
                        .withHeartbeatInterval(Duration.ofSeconds(2))
                        .withPullCredentials(PullCredentialsEndpoint.client(port, credentials)));
        PullCredentialsEndpoint endpoint = null;
        try {
            Containers.create(ns, "no-secret", image, node, "");
            Condition unauthorized = Containers.condition(
                    Containers.awaitCondition(ns, "no-secret", ContainerStatus.IMAGE_READY, "False"),
                    ContainerStatus.IMAGE_READY);
            assertThat(unauthorized.getReason()).isEqualTo("Unauthorized");

            Containers.create(ns, "with-secret", image, node, "imagePullSecrets: [{name: regcred}]");
            Condition waiting = Containers.condition(
                    Containers.awaitCondition(ns, "with-secret", ContainerStatus.IMAGE_READY, "False"),
                    ContainerStatus.IMAGE_READY);
            assertThat(waiting.getReason()).isEqualTo("PullCredentialsUnavailable");
            assertThat(waiting.getMessage())
                    .contains("cannot get the pull Secrets [regcred] from the operator at https://127.0.0.1:" + port)
                    .contains("retrying in");

            endpoint = PullCredentialsEndpoint.start(ns, node, port, credentials);
            Container ready = Containers.awaitCondition(ns, "with-secret", ContainerStatus.READY, "True");
            assertThat(ready.getStatus().imageDigest()).startsWith("sha256:");

            for (String name : List.of("no-secret", "with-secret")) {
                ns.client().resources(Container.class).withName(name).delete();
                Containers.awaitGone(ns, name);
            }
        } finally {
            agent.close();
            if (endpoint != null) {
                endpoint.close();
            }
        }
    }

    private static void assertForbidden(Runnable call) {
        assertThatThrownBy(call::run)
                .isInstanceOfSatisfying(
                        KubernetesClientException.class,
                        e -> assertThat(e.getCode()).isEqualTo(403));
    }
}
