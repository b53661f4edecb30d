package dev.stevedore.operator.pullcredentials;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.stevedore.api.PullCredentialsApi;
import dev.stevedore.api.v1alpha1.Container;
import dev.stevedore.testing.Chart;
import dev.stevedore.testing.ControlPlane;
import dev.stevedore.testing.Crds;
import dev.stevedore.testing.NodeCredentials;
import dev.stevedore.testing.TestNamespace;
import dev.stevedore.testing.WithControlPlane;
import io.fabric8.kubernetes.api.model.SecretBuilder;
import io.fabric8.kubernetes.api.model.authentication.TokenRequestBuilder;
import io.fabric8.kubernetes.client.utils.Serialization;
import java.io.ByteArrayInputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.security.KeyStore;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.util.Base64;
import java.util.List;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManagerFactory;
import javax.net.ssl.X509TrustManager;
import okhttp3.MediaType;
import okhttp3.OkHttpClient;
import okhttp3.Request;
import okhttp3.RequestBody;
import okhttp3.Response;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The operator's pull-credentials endpoint under the chart's operator RBAC, asked by tokens the API server issues
 * as the kubelet would project them: the agent of node A gets the pull Secrets its own Container names and nothing
 * else; every other caller and question is refused with a status and a reason.
 */
@WithControlPlane
class PullCredentialsServerIT {
    private static final String NODE_A = "node-a";
    private static final String NODE_B = "node-b";
    private static final ObjectMapper JSON = new ObjectMapper();

    @BeforeAll
    static void installCrds(ControlPlane controlPlane) {
        Crds.installStevedore(controlPlane.adminClient());
    }

    private record Answer(int status, String body) {}

    @Test
    void theAgentOfANodeGetsOnlyThePullSecretsItsOwnContainerNames(TestNamespace ns) throws Exception {
        try (PullCredentialsServer server = startUnderTheChartsRbac(ns)) {
            pullSecret(ns, "regcred", "kubernetes.io/dockerconfigjson", "{\"auths\":{\"a.example\":{}}}");
            pullSecret(ns, "not-named", "kubernetes.io/dockerconfigjson", "{\"auths\":{\"b.example\":{}}}");
            pullSecret(ns, "opaque", "Opaque", "{\"auths\":{\"c.example\":{}}}");
            Container onA = container(ns, "on-a", NODE_A, "[regcred, opaque, missing]");
            Container onB = container(ns, "on-b", NODE_B, "[not-named]");
            String agentOfA = NodeCredentials.issue(ns, Chart.agentServiceAccount(ns), NODE_A)
                    .token(PullCredentialsApi.AUDIENCE);

            Answer own = post(ns, server, agentOfA, request(onA));
            assertThat(own.status()).as(own.body()).isEqualTo(200);
            PullCredentialsApi.Response response = JSON.readValue(own.body(), PullCredentialsApi.Response.class);
            // Only the named Secret of the pull-secret type: not an Opaque one, not one the Container does not name.
            assertThat(response.secrets())
                    .extracting(PullCredentialsApi.PullSecret::name)
                    .containsExactly("regcred");
            assertThat(new String(
                            Base64.getDecoder().decode(response.secrets().get(0).dockerConfigJson()),
                            StandardCharsets.UTF_8))
                    .isEqualTo("{\"auths\":{\"a.example\":{}}}");

            Answer otherNodes = post(ns, server, agentOfA, request(onB));
            assertThat(otherNodes.status()).isEqualTo(403);
            assertThat(otherNodes.body()).contains("Container " + ns.name() + "/on-b is not bound to node " + NODE_A);
            assertThat(otherNodes.body()).doesNotContain("b.example");
        }
    }

    @Test
    void callersOtherThanANodesAgentAndQuestionsAboutOtherContainersAreRefused(TestNamespace ns) throws Exception {
        try (PullCredentialsServer server = startUnderTheChartsRbac(ns)) {
            pullSecret(ns, "regcred", "kubernetes.io/dockerconfigjson", "{\"auths\":{\"a.example\":{}}}");
            Container onA = container(ns, "on-a", NODE_A, "[regcred]");
            String agent = Chart.agentServiceAccount(ns);

            Answer noNode = post(ns, server, unboundToken(ns, agent, PullCredentialsApi.AUDIENCE), request(onA));
            assertThat(noNode.status()).isEqualTo(403);
            assertThat(noNode.body()).contains("is not bound to a Pod on a node");

            String operatorOnA = NodeCredentials.issue(ns, Chart.operatorServiceAccount(ns), NODE_A)
                    .token(PullCredentialsApi.AUDIENCE);
            Answer otherAccount = post(ns, server, operatorOnA, request(onA));
            assertThat(otherAccount.status()).isEqualTo(403);
            assertThat(otherAccount.body()).contains("is not the node agent's ServiceAccount");

            // The agent's API token (the API server's audience) is not taken here, nor is no token at all.
            Answer apiToken = post(ns, server, unboundToken(ns, agent, ControlPlane.ISSUER), request(onA));
            assertThat(apiToken.status()).isEqualTo(401);
            assertThat(post(ns, server, null, request(onA)).status()).isEqualTo(401);

            String agentOfA = NodeCredentials.issue(ns, agent, NODE_A).token(PullCredentialsApi.AUDIENCE);
            Answer replaced = post(
                    ns,
                    server,
                    agentOfA,
                    new PullCredentialsApi.Request(ns.name(), "on-a", "00000000-0000-0000-0000-000000000000"));
            assertThat(replaced.status()).isEqualTo(409);
            Answer missing = post(ns, server, agentOfA, new PullCredentialsApi.Request(ns.name(), "nothing", "x"));
            assertThat(missing.status()).isEqualTo(404);
            assertThat(post(ns, server, agentOfA, request(onA)).status()).isEqualTo(200);
        }
    }

    private static PullCredentialsServer startUnderTheChartsRbac(TestNamespace ns) throws Exception {
        Chart.installRbac(ns);
        return PullCredentialsServer.start(
                ns.clientAs(Chart.operatorServiceAccount(ns)),
                new PullCredentialsServer.Settings(
                        new InetSocketAddress(InetAddress.getLoopbackAddress(), 0),
                        ns.name(),
                        Chart.release(ns) + "-operator-serving",
                        caConfigMap(ns),
                        List.of("127.0.0.1"),
                        ns.name() + "/" + Chart.agentServiceAccount(ns)));
    }

    private static String caConfigMap(TestNamespace ns) {
        return Chart.release(ns) + "-pull-credentials-ca";
    }

    private static void pullSecret(TestNamespace ns, String name, String type, String dockerConfigJson) {
        ns.client()
                .secrets()
                .resource(new SecretBuilder()
                        .withNewMetadata()
                        .withName(name)
                        .endMetadata()
                        .withType(type)
                        .addToData(
                                ".dockerconfigjson",
                                Base64.getEncoder().encodeToString(dockerConfigJson.getBytes(StandardCharsets.UTF_8)))
                        .build())
                .create();
    }

    private static Container container(TestNamespace ns, String name, String node, String pullSecrets) {
        String yaml = """
                apiVersion: stevedore.dev/v1alpha1
                kind: Container
                metadata: {name: %s}
                spec:
                  image: registry.example/app:1
                  nodeName: %s
                  imagePullSecrets: %s
                """.formatted(name, node, pullSecrets.replaceAll("(\\w[\\w-]*)", "{name: $1}"));
        return ns.client()
                .resource(Serialization.unmarshal(yaml, Container.class))
                .create();
    }

    private static PullCredentialsApi.Request request(Container container) {
        return new PullCredentialsApi.Request(
                container.getMetadata().getNamespace(),
                container.getMetadata().getName(),
                container.getMetadata().getUid());
    }

    /** A token of the ServiceAccount for {@code audience}, bound to no object: it names no node. */
    private static String unboundToken(TestNamespace ns, String serviceAccount, String audience) {
        return ns.client()
                .serviceAccounts()
                .withName(serviceAccount)
                .tokenRequest(new TokenRequestBuilder()
                        .withNewSpec()
                        .withAudiences(audience)
                        .endSpec()
                        .build())
                .getStatus()
                .getToken();
    }

    /** POSTs as an agent would, trusting only the CA the server published. */
    private static Answer post(
            TestNamespace ns, PullCredentialsServer server, String token, PullCredentialsApi.Request request)
            throws Exception {
        String caPem = ns.client()
                .configMaps()
                .withName(caConfigMap(ns))
                .get()
                .getData()
                .get("ca.crt");
        KeyStore trusted = KeyStore.getInstance(KeyStore.getDefaultType());
        trusted.load(null, null);
        int i = 0;
        for (Certificate ca : CertificateFactory.getInstance("X.509")
                .generateCertificates(new ByteArrayInputStream(caPem.getBytes(StandardCharsets.US_ASCII)))) {
            trusted.setCertificateEntry("ca-" + i++, ca);
        }
        TrustManagerFactory factory = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        factory.init(trusted);
        X509TrustManager trust = (X509TrustManager) factory.getTrustManagers()[0];
        SSLContext tls = SSLContext.getInstance("TLS");
        tls.init(null, new X509TrustManager[] {trust}, null);
        OkHttpClient http = new OkHttpClient.Builder()
                .sslSocketFactory(tls.getSocketFactory(), trust)
                .build();
        Request.Builder builder = new Request.Builder()
                .url("https://127.0.0.1:" + server.port() + PullCredentialsApi.PATH)
                .post(RequestBody.create(JSON.writeValueAsBytes(request), MediaType.get("application/json")));
        if (token != null) {
            builder.header("Authorization", "Bearer " + token);
        }
        try (Response response = http.newCall(builder.build()).execute()) {
            return new Answer(response.code(), response.body().string());
        } finally {
            http.dispatcher().executorService().shutdown();
            http.connectionPool().evictAll();
        }
    }
}
