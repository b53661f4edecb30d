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
import java.util.Set;
import java.util.function.Predicate;
import java.util.regex.Pattern;
import javax.net.ssl.SSLException;
import okhttp3.Credentials;
import okhttp3.HttpUrl;
import okhttp3.OkHttpClient;
import okhttp3.Request;
import okhttp3.Response;
import okhttp3.ResponseBody;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The pull half of the OCI distribution API for one repository, over okhttp: manifests by tag or digest, blobs as
 * streams, Basic auth and the Bearer token flow. It verifies nothing itself: every byte goes through the content
 * store, which hashes it. One instance serves one pull, so the token it caches lives no longer than that.
 *
 * <p>Why not oras-java-sdk 0.7.0: its Registry reads the host's containers registries.conf (mirrors, aliases,
 * blocking) behind the agent's back, is plain-HTTP or HTTPS as a whole rather than per registry, names a manifest
 * by the registry's Docker-Content-Digest header instead of hashing the bytes, and java.net.http only has a connect
 * timeout, so a stalled layer download would hang a pull. This class is what a pull needs of the protocol.
 */
final class RegistryClient {
    private static final Logger LOG = LoggerFactory.getLogger(RegistryClient.class);
    private static final Pattern LOOPBACK_V4 = Pattern.compile("127(?:\\.[0-9]{1,3}){3}");

    private final OkHttpClient http;
    private final HttpUrl base;
    private final String repository;
    private final RegistryAuth auth;
    private final Predicate<String> plainHttpAllowed;
    private String authorization;

    record FetchedManifest(byte[] bytes, String mediaType, String digestHeader) {}

    /**
     * @param registry {@code host[:port]} of the registry API
     * @param auth credentials, or null for anonymous pulls
     * @param insecure registries, beyond loopback ones, spoken to over plain HTTP
     */
    RegistryClient(OkHttpClient http, String registry, String repository, RegistryAuth auth, Set<String> insecure) {
        this.http = http;
        this.plainHttpAllowed = host -> isLoopback(host) || insecure.contains(host);
        String scheme = plainHttpAllowed.test(registry) ? "http" : "https";
        this.base = HttpUrl.get(scheme + "://" + registry + "/v2/");
        this.repository = repository;
        this.auth = auth;
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
        Request request = new Request.Builder()
                .url(base.newBuilder()
                        .addPathSegments(repository)
                        .addPathSegment("manifests")
                        .addPathSegment(reference)
                        .build())
                .header("Accept", Oci.MANIFEST_ACCEPT)
                .build();
        try (Response response = send(request)) {
            if (!response.isSuccessful()) {
                throw failure(response, "manifest " + reference, true);
            }
            byte[] bytes = readSmall(response.body(), "manifest " + reference);
            String contentType = response.header("Content-Type", "");
            return new FetchedManifest(
                    bytes, contentType.split(";", 2)[0].trim(), response.header("Docker-Content-Digest"));
        }
    }

    /** The blob's bytes as the registry sends them; read errors come as transient {@link FetchException}s. */
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
        return new FilterInputStream(response.body().byteStream()) {
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

    /** Sends with the current authorization; on a 401, answers the challenge once and sends again. */
    private Response send(Request request) throws FetchException {
        Response response = execute(authorized(request));
        if (response.code() != 401) {
            return response;
        }
        var challenges = response.headers("WWW-Authenticate");
        response.close();
        AuthChallenge challenge = AuthChallenge.choose(challenges)
                .orElseThrow(() ->
                        new FetchException(UNAUTHORIZED, base.host() + " answered 401 with no challenge", false, null));
        authorization = answer(challenge);
        return execute(authorized(request));
    }

    private Request authorized(Request request) {
        return authorization == null
                ? request
                : request.newBuilder().header("Authorization", authorization).build();
    }

    private String answer(AuthChallenge challenge) throws FetchException {
        if (challenge.isBasic()) {
            if (auth == null) {
                throw new FetchException(
                        UNAUTHORIZED, base.host() + " requires credentials and none were given", false, null);
            }
            return basic();
        }
        if (challenge.isBearer()) {
            return "Bearer " + token(challenge);
        }
        throw new FetchException(UNAUTHORIZED, "unsupported authentication scheme " + challenge.scheme(), false, null);
    }

    /** The token flow of the distribution spec: GET realm?service=…&scope=…, with Basic credentials if any. */
    private String token(AuthChallenge challenge) throws FetchException {
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
        if (auth != null) {
            // Credentials go to the realm only over TLS, or where the registry itself may be spoken to in the clear.
            if (realm.isHttps()
                    || plainHttpAllowed.test(realm.host() + ":" + realm.port())
                    || plainHttpAllowed.test(realm.host())) {
                request.header("Authorization", basic());
            } else {
                LOG.warn("not sending credentials to the plain-HTTP token realm {}", realm);
            }
        }
        try (Response response = execute(request.build())) {
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

    private String basic() {
        return Credentials.basic(auth.username(), auth.password(), StandardCharsets.UTF_8);
    }

    private Response execute(Request request) throws FetchException {
        try {
            return http.newCall(request).execute();
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

    private static FetchException failure(Response response, String what, boolean manifest) {
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
    private static String errorCode(Response response) {
        try {
            byte[] body = readSmall(response.body(), "error");
            return Oci.JSON.readTree(body).path("errors").path(0).path("code").asText("");
        } catch (IOException | RuntimeException unreadable) {
            return "";
        }
    }

    private static byte[] readSmall(ResponseBody body, String what) throws FetchException {
        if (body.contentLength() > Oci.MAX_JSON_SIZE) {
            throw new FetchException(
                    INVALID_IMAGE, what + " is larger than " + Oci.MAX_JSON_SIZE + " bytes", false, null);
        }
        try (InputStream in = body.byteStream()) {
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
