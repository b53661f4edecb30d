package dev.stevedore.agent.containers;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.stevedore.agent.images.RegistryAuth;
import dev.stevedore.api.PullCredentialsApi;
import dev.stevedore.api.v1alpha1.Container;
import io.fabric8.kubernetes.api.model.LocalObjectReference;
import java.io.IOException;
import java.io.InputStream;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.time.Duration;
import java.util.Base64;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManagerFactory;
import javax.net.ssl.X509TrustManager;
import okhttp3.MediaType;
import okhttp3.OkHttpClient;
import okhttp3.Request;
import okhttp3.RequestBody;
import okhttp3.Response;

/**
 * The agent's side of the operator's pull-credentials endpoint ({@link PullCredentialsApi}): it presents the
 * token the kubelet projects for this agent's Pod and trusts only the CA the operator publishes. Both files are read
 * at each call, as the kubelet renews the token and the CA may arrive after the agent started.
 */
public final class PullCredentialsClient implements PullCredentials {
    static final String REFUSED = "PullCredentialsRefused";

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final MediaType JSON_TYPE = MediaType.get("application/json");
    private static final int MAX_RESPONSE_BYTES = 1024 * 1024;
    private static final int MAX_REASON_CHARS = 512;

    private final URI endpoint;
    private final Path caFile;
    private final Path tokenFile;
    private final OkHttpClient http;

    /**
     * @param url the operator's endpoint, e.g. {@code https://stevedore-operator.stevedore-system.svc}
     * @param caFile PEM certificates the endpoint's certificate must chain to
     * @param tokenFile a ServiceAccount token bound to this agent's Pod, of audience {@link PullCredentialsApi#AUDIENCE}
     */
    public PullCredentialsClient(URI url, Path caFile, Path tokenFile) {
        if (!"https".equals(url.getScheme())) {
            throw new IllegalArgumentException("the pull-credentials URL must be https: " + url);
        }
        this.endpoint = url.resolve(PullCredentialsApi.PATH);
        this.caFile = caFile;
        this.tokenFile = tokenFile;
        this.http = new OkHttpClient.Builder()
                .connectTimeout(Duration.ofSeconds(5))
                .readTimeout(Duration.ofSeconds(10))
                .callTimeout(Duration.ofSeconds(20))
                .followRedirects(false)
                .build();
    }

    @Override
    public Map<String, RegistryAuth> of(Container container) throws RootfsPreparer.PrepareException {
        List<LocalObjectReference> refs = container.getSpec().imagePullSecrets();
        if (refs == null || refs.isEmpty()) {
            return Map.of();
        }
        String names = refs.stream().map(LocalObjectReference::getName).toList().toString();
        String failure = "cannot get the pull Secrets " + names + " from the operator at " + endpoint + ": ";
        Request request;
        OkHttpClient client;
        try {
            request = new Request.Builder()
                    .url(endpoint.toString())
                    .header(
                            "Authorization",
                            "Bearer " + Files.readString(tokenFile).strip())
                    .post(RequestBody.create(
                            JSON.writeValueAsBytes(new PullCredentialsApi.Request(
                                    container.getMetadata().getNamespace(),
                                    container.getMetadata().getName(),
                                    container.getMetadata().getUid())),
                            JSON_TYPE))
                    .build();
            client = trusting(caFile);
        } catch (IOException | GeneralSecurityException e) {
            throw unavailable(failure + "this agent's token or CA file: " + e.getMessage(), e);
        }
        try (Response response = client.newCall(request).execute()) {
            InputStream body = response.body().byteStream();
            byte[] bytes = body.readNBytes(MAX_RESPONSE_BYTES + 1);
            if (response.code() != 200) {
                String reason = new String(bytes, StandardCharsets.UTF_8).strip();
                throw new RootfsPreparer.PrepareException(
                        PullCredentials.CONDITION,
                        response.code() >= 500 ? UNAVAILABLE : REFUSED,
                        failure + response.code() + " "
                                + reason.substring(0, Math.min(reason.length(), MAX_REASON_CHARS)),
                        true,
                        null);
            }
            if (bytes.length > MAX_RESPONSE_BYTES) {
                throw unavailable(failure + "the answer is larger than " + MAX_RESPONSE_BYTES + " bytes", null);
            }
            return auths(JSON.readValue(bytes, PullCredentialsApi.Response.class));
        } catch (IOException | IllegalArgumentException e) {
            throw unavailable(failure + e.getMessage(), e);
        }
    }

    /** Later Secrets win for a registry both name, as the last one read did before. */
    private static Map<String, RegistryAuth> auths(PullCredentialsApi.Response response) throws IOException {
        Map<String, RegistryAuth> auths = new HashMap<>();
        if (response.secrets() != null) {
            for (PullCredentialsApi.PullSecret secret : response.secrets()) {
                auths.putAll(PullSecrets.parse(Base64.getDecoder().decode(secret.dockerConfigJson())));
            }
        }
        return auths;
    }

    private OkHttpClient trusting(Path caFile) throws IOException, GeneralSecurityException {
        KeyStore trusted = KeyStore.getInstance(KeyStore.getDefaultType());
        trusted.load(null, null);
        try (InputStream in = Files.newInputStream(caFile)) {
            int i = 0;
            for (Certificate certificate :
                    CertificateFactory.getInstance("X.509").generateCertificates(in)) {
                trusted.setCertificateEntry("ca-" + i++, certificate);
            }
            if (i == 0) {
                throw new IOException(caFile + " holds no certificate");
            }
        }
        TrustManagerFactory factory = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        factory.init(trusted);
        X509TrustManager trustManager = (X509TrustManager) factory.getTrustManagers()[0];
        SSLContext context = SSLContext.getInstance("TLS");
        context.init(null, new X509TrustManager[] {trustManager}, null);
        return http.newBuilder()
                .sslSocketFactory(context.getSocketFactory(), trustManager)
                .build();
    }

    private static RootfsPreparer.PrepareException unavailable(String message, Throwable cause) {
        return new RootfsPreparer.PrepareException(PullCredentials.CONDITION, UNAVAILABLE, message, true, cause);
    }
}
