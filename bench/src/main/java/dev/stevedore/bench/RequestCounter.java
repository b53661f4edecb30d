package dev.stevedore.bench;

import io.fabric8.kubernetes.client.http.BasicBuilder;
import io.fabric8.kubernetes.client.http.HttpRequest;
import io.fabric8.kubernetes.client.http.Interceptor;
import java.util.concurrent.atomic.AtomicLong;
import java.util.regex.Pattern;

/**
 * Counts the benchmark's own requests that {@link ApiRequests} counts on the server (Stevedore resources and core
 * events, no watches), so they can be taken out of the server's totals. An interceptor sees every attempt,
 * retries included, as the server does.
 */
final class RequestCounter implements Interceptor {
    static final String NAME = "stevedore-bench-request-counter";
    private static final Pattern COUNTED =
            Pattern.compile("^/apis/stevedore\\.dev/.*|^/api/v1/(namespaces/[^/]+/)?events(/.*)?$");

    private final AtomicLong requests = new AtomicLong();

    @Override
    public void before(BasicBuilder builder, HttpRequest request, RequestTags tags) {
        String query = request.uri().getRawQuery();
        boolean watch = query != null && (query.contains("watch=true") || query.contains("watch=1"));
        if (!watch && COUNTED.matcher(request.uri().getRawPath()).matches()) {
            requests.incrementAndGet();
        }
    }

    long count() {
        return requests.get();
    }
}
