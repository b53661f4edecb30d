package dev.stevedore.agent;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.stevedore.agent.containers.PullCredentialsClient;
import dev.stevedore.agent.snapshots.LayerLimits;
import dev.stevedore.agent.testing.Containers;
import dev.stevedore.agent.testing.LocalRegistry;
import dev.stevedore.agent.testing.TestImages;
import dev.stevedore.api.PullCredentialsApi;
import dev.stevedore.api.v1alpha1.Container;
import dev.stevedore.api.v1alpha1.ContainerStatus;
import dev.stevedore.operator.pullcredentials.PullCredentialsServer;
import dev.stevedore.testing.Chart;
import dev.stevedore.testing.ControlPlane;
import dev.stevedore.testing.Crds;
import dev.stevedore.testing.NodeCredentials;
import dev.stevedore.testing.TestNamespace;
import dev.stevedore.testing.WithControlPlane;
import io.fabric8.kubernetes.api.model.Condition;
import io.fabric8.kubernetes.api.model.SecretBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.Set;
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
        pullSecret(ns, "regcred");
        assertForbidden(() ->
                asAgent.secrets().inNamespace(ns.name()).withName("regcred").get());
        assertForbidden(() -> asAgent.secrets().inAnyNamespace().list());

        Path token = tmp.resolve(ns.name() + "-token");
        Files.writeString(
                token,
                NodeCredentials.issue(ns, Chart.agentServiceAccount(ns), node).token(PullCredentialsApi.AUDIENCE));
        Path ca = tmp.resolve(ns.name() + "-ca.crt");
        int port = freePort();
        // The endpoint is not up yet, and its CA not published: the agent starts all the same.
        NodeAgent.Running agent = NodeAgent.start(
                asAgent,
                node,
                tmp.resolve(ns.name()),
                Map.of(TestNamespace.TEST_LABEL, ns.name()),
                List.of(),
                Set.of(),
                Duration.ofSeconds(2),
                Map.of(),
                new PullCredentialsClient(URI.create("https://127.0.0.1:" + port), ca, token),
                LayerLimits.DEFAULTS);
        PullCredentialsServer server = null;
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

            server = PullCredentialsServer.start(
                    ns.clientAs(Chart.operatorServiceAccount(ns)),
                    new PullCredentialsServer.Settings(
                            new InetSocketAddress(InetAddress.getLoopbackAddress(), port),
                            ns.name(),
                            Chart.release(ns) + "-operator-serving",
                            Chart.release(ns) + "-pull-credentials-ca",
                            List.of("127.0.0.1"),
                            ns.name() + "/" + Chart.agentServiceAccount(ns)));
            Files.writeString(
                    ca,
                    ns.client()
                            .configMaps()
                            .withName(Chart.release(ns) + "-pull-credentials-ca")
                            .get()
                            .getData()
                            .get("ca.crt"));
            Container ready = Containers.awaitCondition(ns, "with-secret", ContainerStatus.READY, "True");
            assertThat(ready.getStatus().imageDigest()).startsWith("sha256:");

            for (String name : List.of("no-secret", "with-secret")) {
                ns.client().resources(Container.class).withName(name).delete();
                Containers.awaitGone(ns, name);
            }
        } finally {
            agent.close();
            if (server != null) {
                server.close();
            }
        }
    }

    private static void assertForbidden(Runnable call) {
        assertThatThrownBy(call::run)
                .isInstanceOfSatisfying(
                        KubernetesClientException.class,
                        e -> assertThat(e.getCode()).isEqualTo(403));
    }

    private static void pullSecret(TestNamespace ns, String name) {
        String dockerConfig = "{\"auths\":{\"" + registry.host() + "\":{\"auth\":\""
                + Base64.getEncoder().encodeToString((USER + ":" + PASSWORD).getBytes(StandardCharsets.UTF_8))
                + "\"}}}";
        ns.client()
                .secrets()
                .resource(new SecretBuilder()
                        .withNewMetadata()
                        .withName(name)
                        .endMetadata()
                        .withType("kubernetes.io/dockerconfigjson")
                        .addToData(
                                ".dockerconfigjson",
                                Base64.getEncoder().encodeToString(dockerConfig.getBytes(StandardCharsets.UTF_8)))
                        .build())
                .create();
    }

    private static int freePort() throws IOException {
        try (ServerSocket socket = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            return socket.getLocalPort();
        }
    }
}
