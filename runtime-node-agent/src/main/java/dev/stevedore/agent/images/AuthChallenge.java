package dev.stevedore.agent.images;

import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;

/**
 * One {@code WWW-Authenticate} challenge (RFC 7235): a scheme and its parameters, e.g.
 * {@code Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:x:pull"}.
 */
record AuthChallenge(String scheme, Map<String, String> parameters) {

    boolean isBearer() {
        return scheme.equals("bearer");
    }

    boolean isBasic() {
        return scheme.equals("basic");
    }

    String parameter(String name) {
        return parameters.get(name);
    }

    /** The challenge to answer among the headers of a 401: Bearer if offered (registries prefer it), else Basic. */
    static Optional<AuthChallenge> choose(List<String> headers) {
        AuthChallenge chosen = null;
        for (String header : headers) {
            AuthChallenge challenge = parse(header);
            if (challenge.isBearer() || (challenge.isBasic() && chosen == null)) {
                chosen = challenge;
            }
        }
        return Optional.ofNullable(chosen);
    }

    static AuthChallenge parse(String header) {
        String trimmed = header.trim();
        int space = trimmed.indexOf(' ');
        String scheme = (space < 0 ? trimmed : trimmed.substring(0, space)).toLowerCase(Locale.ROOT);
        Map<String, String> parameters = new HashMap<>();
        if (space >= 0) {
            parseParameters(trimmed.substring(space + 1), parameters);
        }
        return new AuthChallenge(scheme, Map.copyOf(parameters));
    }

    /** {@code key=token} or {@code key="quoted \" string"}, separated by commas. */
    private static void parseParameters(String text, Map<String, String> into) {
        int i = 0;
        int n = text.length();
        while (i < n) {
            while (i < n && (text.charAt(i) == ',' || text.charAt(i) == ' ')) {
                i++;
            }
            int eq = text.indexOf('=', i);
            if (eq < 0) {
                return;
            }
            String key = text.substring(i, eq).trim().toLowerCase(Locale.ROOT);
            i = eq + 1;
            StringBuilder value = new StringBuilder();
            if (i < n && text.charAt(i) == '"') {
                for (i++; i < n && text.charAt(i) != '"'; i++) {
                    if (text.charAt(i) == '\\' && i + 1 < n) {
                        i++;
                    }
                    value.append(text.charAt(i));
                }
                i++; // the closing quote
            } else {
                for (; i < n && text.charAt(i) != ','; i++) {
                    value.append(text.charAt(i));
                }
            }
            into.put(key, value.toString().trim());
        }
    }
}
