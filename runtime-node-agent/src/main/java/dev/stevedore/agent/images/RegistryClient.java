package dev.stevedore.agent.images;

import static dev.stevedore.agent.images.ImageException.INVALID_IMAGE;
import static dev.stevedore.agent.images.ImageException.MANIFEST_UNKNOWN;
import static dev.stevedore.agent.images.ImageException.REGISTRY_UNAVAILABLE;
import static dev.stevedore.agent.images.ImageException.UNAUTHORIZED;

import com.fasterxml.jackson.databind.JsonNode;
import dev.stevedore.agent.content.Digest;
import java.io.ByteArrayOutputStream;
import java.io.FilterInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Predicate;
import java.util.regex.Pattern;
import javax.net.ssl.SSLException;
import okhttp3.Credentials;
import okhttp3.HttpUrl;
import okhttp3.Interceptor;
import okhttp3.OkHttpClient;
import okhttp3.Request;
import okhttp3.Response;
import okhttp3.ResponseBody;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The pull half of the OCI distribution API for one repository, over okhttp: manifests by tag or digest, blobs as
 * streams, Basic auth and the Bearer token flow. It verifies nothing itself: every byte goes through the content
 * store, which hashes it. One instance serves one pull, so the tokens it caches live no longer than that.
 *
 * <p>Why not oras-java-sdk 0.7.0: its Registry reads the host's containers registries.conf (mirrors, aliases,
 * blocking) behind the agent's back, is plain-HTTP or HTTPS as a whole rather than per registry, names a manifest
 * by the registry's Docker-Content-Digest header instead of hashing the bytes, and java.net.http only has a connect
 * timeout, so a stalled layer download would hang a pull. This class is what a pull needs of the protocol.
 *
 * <p>Credentials are scoped by host, as containerd's docker authorizer scopes them. An answer to a challenge is kept
 * per origin (scheme, host and port) of the response that carried the 401, and a network interceptor adds it to
 * requests to that origin only, redirected ones included; okhttp itself drops an Authorization header when it
 * follows a redirect to another origin, as Go's client does. The credentials a Container gives are those for the
 * registry it names, and only the registry's own challenges get them: a Basic challenge from a host a redirect led
 * to (blob storage, say) is refused rather than answered with them, and a Bearer challenge from such a host gets an
 * anonymous token. A Bearer challenge from the registry sends them to its token realm, on whatever host the registry
 * names (auth.docker.io for Docker Hub), as the token protocol and containerd do, but never in the clear to a realm
 * that is neither HTTPS nor a registry the agent may speak plain HTTP to.
 *
 * <p>Every body is bounded: manifests, configs, tokens and error bodies are read into memory only up to
 * {@link Oci#MAX_JSON_SIZE} (containerd's limit, 4 * 1048 * 1048 bytes, is meant as 4 MiB); a blob streams to the
 * content store, which stops one byte past its descriptor's size. A body that stops is ended by the read timeout,
 * one that drips by the {@link StallGuard}.
 */
final class RegistryClient {
    private static final Logger LOG = LoggerFactory.getLogger(RegistryClient.class);
    private static final Pattern LOOPBACK_V4 = Pattern.compile("127(?:\\.[0-9]{1,3}){3}");

    /** The slowest transfer that is not a stall: fewer than {@code minBytes} in a {@code window} ends it. */
    record StallLimit(Duration window, long minBytes) {
        /** 16 KiB a minute: any working link does far better; a registry sending less is holding the pull. */
        static final StallLimit DEFAULT = new StallLimit(Duration.ofSeconds(60), 16 * 1024);
    }

    private final OkHttpClient http;
    private final OkHttpClient tokenHttp;
    private final HttpUrl base;
    private final String repository;
    private final RegistryAuth auth;
    private final Predicate<String> plainHttpAllowed;
    private final StallLimit stallLimit;
    /** The Authorization header for each origin that challenged us. */
    private final Map<String, String> authorizations = new ConcurrentHashMap<>();

    private volatile boolean credentialsSent;

    record FetchedManifest(byte[] bytes, String mediaType, String digestHeader) {}

    /**
     * @param registry {@code host[:port]} of the registry API
     * @param auth credentials for this registry, or null for anonymous pulls
     * @param insecure registries, beyond loopback ones, spoken to over plain HTTP
     */
    RegistryClient(
            OkHttpClient http,
            String registry,
            String repository,
            RegistryAuth auth,
            Set<String> insecure,
            StallLimit stallLimit) {
        this.tokenHttp = http;
        this.http = http.newBuilder().addNetworkInterceptor(this::authorize).build();
        this.plainHttpAllowed = host -> isLoopback(host) || insecure.contains(host);
        String scheme = plainHttpAllowed.test(registry) ? "http" : "https";
        this.base = HttpUrl.get(scheme + "://" + registry + "/v2/");
        this.repository = repository;
        this.auth = auth;
        this.stallLimit = stallLimit;
    }

    /** True for {@code localhost}, 127.0.0.0/8 and ::1, with or without a port; names are not resolved. */
    static boolean isLoopback(String hostAndPort) {
        String host = hostAndPort;
        if (host.startsWith("[")) {
            host = host.substring(1, host.indexOf(']') > 0 ? host.indexOf(']') : host.length());
        } else if (host.indexOf(':') == host.lastIndexOf(':') && host.indexOf(':') >= 0) {
            host = host.substring(0, host.indexOf(':'));
        }
        return host.equalsIgnoreCase("localhost")
                || LOOPBACK_V4.matcher(host).matches()
                || host.equals("::1")
                || host.equals("0:0:0:0:0:0:0:1");
    }

    String scheme() {
        return base.scheme();
    }

    FetchedManifest manifest(String reference) throws FetchException {
        try (Response response = send(manifestRequest(reference, "GET"))) {
            if (!response.isSuccessful()) {
                throw failure(response, "manifest " + reference, true);
            }
            byte[] bytes = readSmall(response.body(), "manifest " + reference);
            String contentType = response.header("Content-Type", "");
            return new FetchedManifest(
                    bytes, contentType.split(";", 2)[0].trim(), response.header("Docker-Content-Digest"));
        }
    }

    /**
     * Whether the registry lets these credentials pull the manifest {@code digest} of this repository: a HEAD, as a
     * pull's resolve step is. Refusals (401, 403, 404) are {@link ImageException#UNAUTHORIZED} or
     * {@link ImageException#MANIFEST_UNKNOWN} FetchExceptions; a registry that cannot answer, a transient one.
     */
    void checkPull(Digest digest) throws FetchException {
        try (Response response = send(manifestRequest(digest.toString(), "HEAD"))) {
            if (!response.isSuccessful()) {
                throw failure(response, "manifest " + digest, true);
            }
        }
    }

    /** Whether credentials went to the registry or its token realm: if not, what it served is public. */
    boolean credentialsSent() {
        return credentialsSent;
    }

    private Request manifestRequest(String reference, String method) {
        return new Request.Builder()
                .url(base.newBuilder()
                        .addPathSegments(repository)
                        .addPathSegment("manifests")
                        .addPathSegment(reference)
                        .build())
                .header("Accept", Oci.MANIFEST_ACCEPT)
                .method(method, null)
                .build();
    }

    /** The blob's bytes as the registry sends them; read errors and stalls come as transient FetchExceptions. */
    InputStream blob(Digest digest) throws FetchException {
        Request request = new Request.Builder()
                .url(base.newBuilder()
                        .addPathSegments(repository)
                        .addPathSegment("blobs")
                        .addPathSegment(digest.toString())
                        .build())
                .build();
        Response response = send(request);
        if (!response.isSuccessful()) {
            try (response) {
                throw failure(response, "blob " + digest, false);
            }
        }
        return new FilterInputStream(guarded(response.body(), "blob " + digest)) {
            @Override
            public int read(byte[] b, int off, int len) throws IOException {
                try {
                    return super.read(b, off, len);
                } catch (IOException e) {
                    throw unavailable("reading blob " + digest, e);
                }
            }

            @Override
            public void close() {
                response.close();
            }
        };
    }

    private InputStream guarded(ResponseBody body, String what) {
        return new StallGuard(body.byteStream(), what, stallLimit.window(), stallLimit.minBytes(), System::nanoTime);
    }

    /**
     * Sends; on a 401, answers the challenge of the origin that sent it (a redirect may have led elsewhere) and sends
     * once more. The interceptor adds each origin's answer.
     */
    private Response send(Request request) throws FetchException {
        Response response = execute(http, request);
        if (response.code() != 401) {
            return response;
        }
        HttpUrl challenger = response.request().url();
        var challenges = response.headers("WWW-Authenticate");
        response.close();
        AuthChallenge challenge = AuthChallenge.choose(challenges)
                .orElseThrow(() -> new FetchException(
                        UNAUTHORIZED, challenger.host() + " answered 401 with no challenge", false, null));
        authorizations.put(origin(challenger), answer(challenge, challenger));
        return execute(http, request);
    }

    private Response authorize(Interceptor.Chain chain) throws IOException {
        Request request = chain.request();
        String authorization = authorizations.get(origin(request.url()));
        if (authorization == null) {
            return chain.proceed(request);
        }
        return chain.proceed(
                request.newBuilder().header("Authorization", authorization).build());
    }

    private static String origin(HttpUrl url) {
        return url.scheme() + "://" + url.host() + ":" + url.port();
    }

    private String answer(AuthChallenge challenge, HttpUrl challenger) throws FetchException {
        boolean registry = origin(challenger).equals(origin(base));
        RegistryAuth credentials = registry ? auth : null;
        if (challenge.isBasic()) {
            if (credentials == null) {
                throw new FetchException(
                        UNAUTHORIZED,
                        registry || auth == null
                                ? challenger.host() + " requires credentials and none were given"
                                : challenger.host() + ":" + challenger.port() + ", reached by a redirect from "
                                        + base.host() + ":" + base.port()
                                        + ", asks for Basic credentials: those for the registry go to no other host",
                        false,
                        null);
            }
            credentialsSent = true;
            return basic(credentials);
        }
        if (challenge.isBearer()) {
            return "Bearer " + token(challenge, credentials);
        }
        throw new FetchException(UNAUTHORIZED, "unsupported authentication scheme " + challenge.scheme(), false, null);
    }

    /**
     * The token flow of the distribution spec: GET realm?service=…&scope=…, with Basic credentials if any. The realm
     * is asked without this client's interceptor: no registry token goes to it.
     */
    private String token(AuthChallenge challenge, RegistryAuth credentials) throws FetchException {
        HttpUrl realm = challenge.parameter("realm") == null ? null : HttpUrl.parse(challenge.parameter("realm"));
        if (realm == null) {
            throw new FetchException(UNAUTHORIZED, "Bearer challenge without a usable realm", false, null);
        }
        HttpUrl.Builder url = realm.newBuilder();
        if (challenge.parameter("service") != null) {
            url.addQueryParameter("service", challenge.parameter("service"));
        }
        String scope = challenge.parameter("scope");
        url.addQueryParameter("scope", scope != null ? scope : "repository:" + repository + ":pull");
        Request.Builder request = new Request.Builder().url(url.build());
        if (credentials != null) {
            // Credentials go to the realm only over TLS, or where the registry itself may be spoken to in the clear.
            if (realm.isHttps()
                    || plainHttpAllowed.test(realm.host() + ":" + realm.port())
                    || plainHttpAllowed.test(realm.host())) {
                request.header("Authorization", basic(credentials));
                credentialsSent = true;
            } else {
                LOG.warn("not sending credentials to the plain-HTTP token realm {}", realm);
            }
        }
        try (Response response = execute(tokenHttp, request.build())) {
            if (!response.isSuccessful()) {
                throw failure(response, "token from " + realm.host(), false);
            }
            JsonNode json = Oci.JSON.readTree(readSmall(response.body(), "token"));
            String token = json.path("token").asText(json.path("access_token").asText(""));
            if (token.isBlank()) {
                throw new FetchException(
                        UNAUTHORIZED, "the token realm " + realm.host() + " returned no token", false, null);
            }
            return token;
        } catch (FetchException e) {
            throw e;
        } catch (IOException e) {
            throw new FetchException(UNAUTHORIZED, "unreadable token response from " + realm.host(), false, e);
        }
    }

    private static String basic(RegistryAuth credentials) {
        return Credentials.basic(credentials.username(), credentials.password(), StandardCharsets.UTF_8);
    }

    private static Response execute(OkHttpClient client, Request request) throws FetchException {
        try {
            return client.newCall(request).execute();
        } catch (IOException e) {
            throw unavailable(
                    request.method() + " " + request.url().host()
                            + request.url().encodedPath(),
                    e);
        }
    }

    private static FetchException unavailable(String what, IOException e) {
        if (e instanceof FetchException fetch) {
            return fetch;
        }
        // A certificate problem does not go away by retrying; a refused connection or a timeout may.
        boolean transientFailure = !(e instanceof SSLException);
        return new FetchException(REGISTRY_UNAVAILABLE, what + ": " + e, transientFailure, e);
    }

    private FetchException failure(Response response, String what, boolean manifest) {
        String code = errorCode(response);
        String message = what + ": HTTP " + response.code() + (code.isEmpty() ? "" : " " + code);
        int status = response.code();
        if (status == 401 || status == 403) {
            return new FetchException(UNAUTHORIZED, message, false, null);
        }
        if (status == 429 || status >= 500) {
            return new FetchException(REGISTRY_UNAVAILABLE, message, true, null);
        }
        if (manifest && (status == 404 || code.equals("MANIFEST_UNKNOWN") || code.equals("NAME_UNKNOWN"))) {
            return new FetchException(MANIFEST_UNKNOWN, message, false, null);
        }
        // A blob a manifest names but the registry lacks, or a request the registry found malformed.
        return new FetchException(INVALID_IMAGE, message, false, null);
    }

    /** The first {@code errors[].code} of a distribution error body, or "". */
    private String errorCode(Response response) {
        try {
            byte[] body = readSmall(response.body(), "error");
            return Oci.JSON.readTree(body).path("errors").path(0).path("code").asText("");
        } catch (IOException | RuntimeException unreadable) {
            return "";
        }
    }

    private byte[] readSmall(ResponseBody body, String what) throws FetchException {
        if (body.contentLength() > Oci.MAX_JSON_SIZE) {
            throw new FetchException(
                    INVALID_IMAGE, what + " is larger than " + Oci.MAX_JSON_SIZE + " bytes", false, null);
        }
        try (InputStream in = guarded(body, what)) {
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            byte[] buffer = new byte[16 * 1024];
            for (int n; (n = in.read(buffer)) != -1; ) {
                out.write(buffer, 0, n);
                if (out.size() > Oci.MAX_JSON_SIZE) {
                    throw new FetchException(
                            INVALID_IMAGE, what + " is larger than " + Oci.MAX_JSON_SIZE + " bytes", false, null);
                }
            }
            return out.toByteArray();
        } catch (FetchException e) {
            throw e;
        } catch (IOException e) {
            throw unavailable("reading " + what, e);
        }
    }
}
