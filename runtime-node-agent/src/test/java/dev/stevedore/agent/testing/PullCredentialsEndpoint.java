package dev.stevedore.agent.testing;

import dev.stevedore.agent.containers.PullCredentialsClient;
import dev.stevedore.api.PullCredentialsApi;
import dev.stevedore.operator.pullcredentials.PullCredentialsServer;
import dev.stevedore.testing.Chart;
import dev.stevedore.testing.NodeCredentials;
import dev.stevedore.testing.TestNamespace;
import io.fabric8.kubernetes.api.model.SecretBuilder;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.util.Base64;
import java.util.List;

/**
 * The operator's pull-credentials endpoint for one test's node agent, as the chart wires it: the operator's server on
 * a loopback port under the chart's operator ServiceAccount of the test's release, and in {@code dir} the two files
 * the agent reads at each use — a token of the chart's agent ServiceAccount bound to a Pod on the node, and the CA
 * the operator published. The test's namespace needs the chart's RBAC ({@link Chart#installRbac}).
 */
public final class PullCredentialsEndpoint implements AutoCloseable {
    private final PullCredentialsServer server;

    private PullCredentialsEndpoint(PullCredentialsServer server) {
        this.server = server;
    }

    /** What an agent is given: the endpoint on {@code port}, and the token and CA files in {@code dir}. */
    public static PullCredentialsClient client(int port, Path dir) {
        return new PullCredentialsClient(
                URI.create("https://127.0.0.1:" + port), dir.resolve("ca.crt"), dir.resolve("token"));
    }

    /** Issues the agent's token for {@code node}, starts the server on {@code port} and publishes its CA. */
    public static PullCredentialsEndpoint start(TestNamespace ns, String node, int port, Path dir) {
        try {
            Files.createDirectories(dir);
            Files.writeString(
                    dir.resolve("token"),
                    NodeCredentials.issue(ns, Chart.agentServiceAccount(ns), node)
                            .token(PullCredentialsApi.AUDIENCE));
            PullCredentialsServer server = PullCredentialsServer.start(
                    ns.clientAs(Chart.operatorServiceAccount(ns)),
                    new PullCredentialsServer.Settings(
                            new InetSocketAddress(InetAddress.getLoopbackAddress(), port),
                            ns.name(),
                            Chart.release(ns) + "-operator-serving",
                            Chart.release(ns) + "-pull-credentials-ca",
                            List.of("127.0.0.1"),
                            ns.name() + "/" + Chart.agentServiceAccount(ns)));
            Files.writeString(
                    dir.resolve("ca.crt"),
                    ns.client()
                            .configMaps()
                            .withName(Chart.release(ns) + "-pull-credentials-ca")
                            .get()
                            .getData()
                            .get("ca.crt"));
            return new PullCredentialsEndpoint(server);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("the endpoint's serving certificate", e);
        }
    }

    /** A kubernetes.io/dockerconfigjson Secret {@code name} with {@code user}'s Basic credentials for {@code host}. */
    public static void pullSecret(TestNamespace ns, String name, String host, String user, String password) {
        String auth = Base64.getEncoder().encodeToString((user + ":" + password).getBytes(StandardCharsets.UTF_8));
        String dockerConfig = "{\"auths\":{\"" + host + "\":{\"auth\":\"" + auth + "\"}}}";
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

    public static int freePort() {
        try (ServerSocket socket = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            return socket.getLocalPort();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    @Override
    public void close() {
        server.close();
    }
}
