package dev.stevedore.agent.containers;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.stevedore.agent.images.RegistryAuth;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.Base64;
import java.util.HashMap;
import java.util.Iterator;
import java.util.Map;

/** Registry credentials from the {@code .dockerconfigjson} of a pull Secret, by registry host. */
final class PullSecrets {
    private static final ObjectMapper JSON = new ObjectMapper();

    private PullSecrets() {}

    static Map<String, RegistryAuth> parse(byte[] dockerConfigJson) throws IOException {
        Map<String, RegistryAuth> auths = new HashMap<>();
        JsonNode entries = JSON.readTree(dockerConfigJson).path("auths");
        for (Iterator<Map.Entry<String, JsonNode>> it = entries.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> entry = it.next();
            JsonNode auth = entry.getValue();
            String username = auth.path("username").asText("");
            String password = auth.path("password").asText("");
            if (username.isEmpty() && auth.hasNonNull("auth")) {
                String decoded =
                        new String(Base64.getDecoder().decode(auth.get("auth").asText()), StandardCharsets.UTF_8);
                int colon = decoded.indexOf(':');
                username = colon < 0 ? decoded : decoded.substring(0, colon);
                password = colon < 0 ? "" : decoded.substring(colon + 1);
            }
            auths.put(host(entry.getKey()), new RegistryAuth(username, password));
        }
        return auths;
    }

    /** "https://index.docker.io/v1/" → "index.docker.io"; "registry:5000" stays. */
    private static String host(String key) {
        String host = key.replaceFirst("^[a-z]+://", "");
        int slash = host.indexOf('/');
        return slash < 0 ? host : host.substring(0, slash);
    }
}
