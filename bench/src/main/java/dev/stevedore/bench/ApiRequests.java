package dev.stevedore.bench;

import io.fabric8.kubernetes.client.KubernetesClient;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Counts the requests the kube-apiserver served for Stevedore's resources, from its {@code apiserver_request_total}
 * metric, keyed "VERB resource[/subresource]" (e.g. "PATCH containers/status", "POST events").
 *
 * <p>What is counted: every request, whatever its response code, to a resource of the stevedore.dev group
 * (containers, containers/status, tasks, tasks/status, runtimenodes, runtimenodes/status) and to core (group "")
 * events. What is not: WATCH requests. The API server records a request when it ends, so a watch is counted when its
 * connection closes or rotates (every 30-60 minutes), not when it is opened: whether an informer's watch falls
 * inside a measurement window is chance, not work done per Container. Everything else (GET, LIST, POST, PATCH,
 * PUT, DELETE) is counted, from every client: the operator, the benchmark itself, and
 * kube-controller-manager (whose garbage collector and quota controller list Stevedore's resources when they
 * discover them). The API server files a server-side apply under verb PATCH, like any other patch.
 */
final class ApiRequests {
    private static final String METRIC = "apiserver_request_total";
    private static final Pattern LABEL = Pattern.compile("(\\w+)=\"((?:[^\"\\\\]|\\\\.)*)\"");

    private ApiRequests() {}

    /** The counters now, by "VERB resource[/subresource]". */
    static Map<String, Long> scrape(KubernetesClient admin) {
        return parse(admin.raw("/metrics"));
    }

    static Map<String, Long> parse(String exposition) {
        Map<String, Long> counts = new TreeMap<>();
        for (String line : exposition.split("\n")) {
            if (!line.startsWith(METRIC + "{")) {
                continue;
            }
            int close = line.lastIndexOf('}');
            Map<String, String> labels = labels(line.substring(METRIC.length() + 1, close));
            if (!counted(labels)) {
                continue;
            }
            String resource = labels.getOrDefault("resource", "");
            String subresource = labels.getOrDefault("subresource", "");
            String key = labels.get("verb") + " " + resource + (subresource.isEmpty() ? "" : "/" + subresource);
            long value =
                    (long) Double.parseDouble(line.substring(close + 1).trim().split("\\s+")[0]);
            counts.merge(key, value, Long::sum);
        }
        return counts;
    }

    /** after - before, for the keys that changed. */
    static Map<String, Long> delta(Map<String, Long> before, Map<String, Long> after) {
        Map<String, Long> delta = new TreeMap<>();
        after.forEach((key, count) -> {
            long d = count - before.getOrDefault(key, 0L);
            if (d != 0) {
                delta.put(key, d);
            }
        });
        return delta;
    }

    static long total(Map<String, Long> counts) {
        return counts.values().stream().mapToLong(Long::longValue).sum();
    }

    private static boolean counted(Map<String, String> labels) {
        if ("WATCH".equals(labels.get("verb"))) {
            return false;
        }
        String group = labels.getOrDefault("group", "");
        return "stevedore.dev".equals(group) || (group.isEmpty() && "events".equals(labels.get("resource")));
    }

    private static Map<String, String> labels(String text) {
        Map<String, String> labels = new TreeMap<>();
        Matcher match = LABEL.matcher(text);
        while (match.find()) {
            labels.put(match.group(1), match.group(2));
        }
        return labels;
    }
}
