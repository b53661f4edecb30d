package dev.stevedore.agent.spec;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * A process environment as {@code NAME=value} strings, built as containerd's {@code replaceOrAppendEnvValues}
 * builds it: the defaults (the image's Env) are kept as they are, in order; an override of a name already there
 * replaces it in place (so PATH stays first), a new name is appended.
 */
final class Env {
    private final List<String> entries;
    private final Map<String, Integer> indexByName = new HashMap<>();

    Env(List<String> defaults) {
        entries = new ArrayList<>(defaults);
        for (int i = 0; i < entries.size(); i++) {
            indexByName.put(name(entries.get(i)), i);
        }
    }

    Env set(String name, String value) {
        String entry = name + "=" + (value == null ? "" : value);
        Integer index = indexByName.get(name);
        if (index != null) {
            entries.set(index, entry);
        } else {
            indexByName.put(name, entries.size());
            entries.add(entry);
        }
        return this;
    }

    List<String> toList() {
        return List.copyOf(entries);
    }

    private static String name(String entry) {
        int equals = entry.indexOf('=');
        return equals < 0 ? entry : entry.substring(0, equals);
    }
}
