package dev.stevedore.agent.testing;

import dev.stevedore.api.AgentApi;
import dev.stevedore.testing.ControlPlane;
import java.io.ByteArrayInputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.WebSocket;
import java.net.http.WebSocketHandshakeException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.KeyStore;
import java.security.cert.CertificateFactory;
import java.time.Duration;
import java.util.Base64;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManagerFactory;

/** An exec over the API server as a client speaks it: a WebSocket of Kubernetes' exec protocol, no stdin. */
public final class Exec {
    private Exec() {}

    /**
     * @param handshakeStatus the upgrade's status when it was refused, else 101
     * @param status the final Status on the error channel
     */
    public record Result(int handshakeStatus, String stdout, String status) {}

    public static Result run(ControlPlane controlPlane, String url, String token) throws Exception {
        StringBuilder stdout = new StringBuilder();
        StringBuilder status = new StringBuilder();
        CompletableFuture<Void> closed = new CompletableFuture<>();
        WebSocket.Listener listener = new WebSocket.Listener() {
            @Override
            public CompletionStage<?> onBinary(WebSocket socket, ByteBuffer data, boolean last) {
                byte channel = data.get();
                String text = StandardCharsets.UTF_8.decode(data).toString();
                if (channel == AgentApi.STDOUT) {
                    stdout.append(text);
                } else if (channel == AgentApi.ERROR) {
                    status.append(text);
                }
                socket.request(1);
                return null;
            }

            @Override
            public CompletionStage<?> onClose(WebSocket socket, int code, String reason) {
                closed.complete(null);
                return null;
            }

            @Override
            public void onError(WebSocket socket, Throwable error) {
                closed.completeExceptionally(error);
            }
        };
        try {
            client(controlPlane)
                    .newWebSocketBuilder()
                    .header("Authorization", "Bearer " + token)
                    .subprotocols(AgentApi.EXEC_PROTOCOL)
                    .buildAsync(URI.create(url), listener)
                    .get(60, TimeUnit.SECONDS);
        } catch (ExecutionException e) {
            if (e.getCause() instanceof WebSocketHandshakeException refused) {
                return new Result(refused.getResponse().statusCode(), "", "");
            }
            throw e;
        }
        closed.get(120, TimeUnit.SECONDS);
        return new Result(101, stdout.toString(), status.toString());
    }

    private static HttpClient client(ControlPlane controlPlane) throws Exception {
        KeyStore trusted = KeyStore.getInstance("PKCS12");
        trusted.load(null, null);
        trusted.setCertificateEntry(
                "ca",
                CertificateFactory.getInstance("X.509")
                        .generateCertificate(new ByteArrayInputStream(Base64.getDecoder()
                                .decode(controlPlane.adminConfig().getCaCertData()))));
        TrustManagerFactory trust = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        trust.init(trusted);
        SSLContext tls = SSLContext.getInstance("TLS");
        tls.init(null, trust.getTrustManagers(), null);
        return HttpClient.newBuilder()
                .sslContext(tls)
                .connectTimeout(Duration.ofSeconds(10))
                .build();
    }
}
