package dev.stevedore.operator.subresources;

import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.fabric8.kubernetes.api.model.ConfigMap;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.vertx.core.MultiMap;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.http.ServerWebSocket;
import java.io.IOException;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.security.cert.Certificate;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import javax.naming.InvalidNameException;
import javax.naming.ldap.LdapName;
import javax.naming.ldap.Rdn;
import javax.net.ssl.SSLPeerUnverifiedException;

/**
 * Who a request through the API server's aggregation layer comes from, as an extension API server authenticates it
 * (k8s.io/apiserver's request-header authenticator): the connection presents a client certificate issued by the
 * front-proxy CA to one of the allowed names, and then, and only then, the user, groups and extras in its headers
 * are believed. All of it as the API server publishes it in {@code kube-system/extension-apiserver-authentication}.
 */
final class FrontProxy {
    static final String CONFIG_MAP_NAMESPACE = "kube-system";
    static final String CONFIG_MAP = "extension-apiserver-authentication";
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final TypeReference<List<String>> STRINGS = new TypeReference<>() {};

    /** A user the API server authenticated. */
    record User(String name, List<String> groups, Map<String, List<String>> extra) {}

    private final String caPem;
    private final List<String> allowedNames;
    private final List<String> userHeaders;
    private final List<String> groupHeaders;
    private final List<String> extraPrefixes;

    private FrontProxy(
            String caPem,
            List<String> allowedNames,
            List<String> userHeaders,
            List<String> groupHeaders,
            List<String> extraPrefixes) {
        this.caPem = caPem;
        this.allowedNames = allowedNames;
        this.userHeaders = userHeaders;
        this.groupHeaders = groupHeaders;
        this.extraPrefixes = extraPrefixes;
    }

    /** As the API server publishes it; an API server without a front proxy cannot send aggregated requests. */
    static FrontProxy read(KubernetesClient client) throws IOException {
        ConfigMap config = client.configMaps()
                .inNamespace(CONFIG_MAP_NAMESPACE)
                .withName(CONFIG_MAP)
                .get();
        Map<String, String> data = config == null || config.getData() == null ? Map.of() : config.getData();
        String ca = data.get("requestheader-client-ca-file");
        if (ca == null || ca.isBlank()) {
            throw new IOException("the API server has no front proxy (no requestheader-client-ca-file in "
                    + CONFIG_MAP_NAMESPACE + "/" + CONFIG_MAP + "): start it with --requestheader-client-ca-file "
                    + "and --proxy-client-cert-file for the aggregation layer");
        }
        return new FrontProxy(
                ca,
                list(data, "requestheader-allowed-names"),
                list(data, "requestheader-username-headers"),
                list(data, "requestheader-group-headers"),
                list(data, "requestheader-extra-headers-prefix"));
    }

    /** The CA the connections' client certificates must chain to. */
    String caPem() {
        return caPem;
    }

    /** The user, when the request came through the front proxy; empty for anyone else. */
    Optional<User> user(HttpServerRequest request) {
        try {
            return user(request.connection().peerCertificates(), request.headers());
        } catch (SSLPeerUnverifiedException e) {
            return Optional.empty();
        }
    }

    /** The same for a WebSocket's upgrade request. */
    Optional<User> user(ServerWebSocket socket) {
        try {
            return user(socket.peerCertificates(), socket.headers());
        } catch (SSLPeerUnverifiedException e) {
            return Optional.empty();
        }
    }

    private Optional<User> user(List<Certificate> chain, MultiMap headers) {
        if (chain == null || chain.isEmpty() || !(chain.get(0) instanceof X509Certificate leaf)) {
            return Optional.empty();
        }
        if (!allowedNames.isEmpty() && !allowedNames.contains(commonName(leaf))) {
            return Optional.empty();
        }
        String name = userHeaders.stream()
                .map(headers::get)
                .filter(v -> v != null && !v.isEmpty())
                .findFirst()
                .orElse(null);
        if (name == null) {
            return Optional.empty();
        }
        List<String> groups = new ArrayList<>();
        groupHeaders.forEach(h -> groups.addAll(headers.getAll(h)));
        Map<String, List<String>> extra = new LinkedHashMap<>();
        headers.forEach(header -> {
            for (String prefix : extraPrefixes) {
                if (header.getKey().toLowerCase(Locale.ROOT).startsWith(prefix.toLowerCase(Locale.ROOT))) {
                    String key = URLDecoder.decode(
                            header.getKey().substring(prefix.length()).toLowerCase(Locale.ROOT),
                            StandardCharsets.UTF_8);
                    extra.computeIfAbsent(key, k -> new ArrayList<>()).add(header.getValue());
                }
            }
        });
        return Optional.of(new User(name, groups, extra));
    }

    private static String commonName(X509Certificate certificate) {
        try {
            for (Rdn rdn : new LdapName(certificate.getSubjectX500Principal().getName()).getRdns()) {
                if (rdn.getType().equalsIgnoreCase("CN")) {
                    return rdn.getValue().toString();
                }
            }
        } catch (InvalidNameException e) {
            return "";
        }
        return "";
    }

    private static List<String> list(Map<String, String> data, String key) throws IOException {
        String value = data.get(key);
        return value == null || value.isBlank() ? List.of() : JSON.readValue(value, STRINGS);
    }
}
