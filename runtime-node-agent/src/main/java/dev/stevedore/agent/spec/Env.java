package dev.stevedore.agent.spec;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * An environment as {@code NAME=value} strings, overridden layer by layer as containerd's
 * {@code replaceOrAppendEnvValues} does: a name already there is replaced in place (so PATH stays first), a new
 * name is appended, and an entry without '=' removes the name (how an image unsets a variable).
 */
final class Env {
    private final Map<String, String> entries = new LinkedHashMap<>();

    Env override(List<String> layer) {
        if (layer != null) {
            for (String entry : layer) {
                int equals = entry.indexOf('=');
                if (equals < 0) {
                    entries.remove(entry);
                } else if (equals > 0) { // "=x" names nothing; the kernel would pass it on, a shell would not
                    entries.put(entry.substring(0, equals), entry);
                }
            }
        }
        return this;
    }

    Env set(String name, String value) {
        entries.put(name, name + "=" + (value == null ? "" : value));
        return this;
    }

    List<String> toList() {
        return new ArrayList<>(entries.values());
    }
}
