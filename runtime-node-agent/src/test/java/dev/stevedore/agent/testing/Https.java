package dev.stevedore.agent.testing;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.cert.CertificateFactory;
import java.time.Duration;
import java.util.Base64;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManagerFactory;

/** Plain HTTPS requests for tests that need the status code and body as they are, with a bearer token or none. */
public final class Https {
    private final HttpClient http;

    private Https(SSLContext tls) {
        // HTTP/1.1: the API server answers an unauthenticated HTTP/2 request with GOAWAY, which fails it here.
        this.http = HttpClient.newBuilder()
                .version(HttpClient.Version.HTTP_1_1)
                .sslContext(tls)
                .connectTimeout(Duration.ofSeconds(10))
                .build();
    }

    /** Trusting only the PEM certificates given (a CA, or a pinned server certificate). */
    public static Https trusting(String pem) {
        try {
            KeyStore store = KeyStore.getInstance("PKCS12");
            store.load(null, null);
            int i = 0;
            for (var certificate : CertificateFactory.getInstance("X.509")
                    .generateCertificates(new ByteArrayInputStream(pem.getBytes(StandardCharsets.US_ASCII)))) {
                store.setCertificateEntry("trusted-" + i++, certificate);
            }
            TrustManagerFactory trust = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
            trust.init(store);
            SSLContext tls = SSLContext.getInstance("TLS");
            tls.init(null, trust.getTrustManagers(), null);
            return new Https(tls);
        } catch (GeneralSecurityException | IOException e) {
            throw new IllegalStateException(e);
        }
    }

    /** Trusting the base64 PEM of a kubeconfig's certificate-authority-data. */
    public static Https trustingBase64(String base64Pem) {
        return trusting(new String(Base64.getDecoder().decode(base64Pem), StandardCharsets.US_ASCII));
    }

    public record Response(int status, String body) {}

    public Response get(String url, String token) throws IOException, InterruptedException {
        HttpResponse<String> response = http.send(request(url, token), HttpResponse.BodyHandlers.ofString());
        return new Response(response.statusCode(), response.body());
    }

    /** The response as it streams; the caller closes the body. */
    public HttpResponse<InputStream> stream(String url, String token) throws IOException, InterruptedException {
        return http.send(request(url, token), HttpResponse.BodyHandlers.ofInputStream());
    }

    private static HttpRequest request(String url, String token) {
        HttpRequest.Builder request = HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofMinutes(2));
        if (token != null) {
            request.header("Authorization", "Bearer " + token);
        }
        return request.build();
    }
}
