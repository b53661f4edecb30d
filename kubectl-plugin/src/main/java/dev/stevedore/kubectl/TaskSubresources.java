package dev.stevedore.kubectl;

import dev.stevedore.api.AgentApi;
import io.fabric8.kubernetes.api.model.Status;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.http.HttpClient;
import io.fabric8.kubernetes.client.http.HttpRequest;
import io.fabric8.kubernetes.client.http.HttpResponse;
import io.fabric8.kubernetes.client.http.WebSocket;
import io.fabric8.kubernetes.client.utils.Serialization;
import java.io.IOException;
import java.io.InputStream;
import java.net.URI;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.stream.Collectors;

/**
 * A Task's subresources in the aggregated API {@code subresources.stevedore.dev/v1alpha1}, reached through the API
 * server with the user's own credentials, as kubectl reaches a Pod's log.
 */
final class TaskSubresources {
    static final String API = "/apis/subresources.stevedore.dev/v1alpha1";

    /** The API server's refusal, worded as kubectl words it. */
    static final class ApiError extends Exception {
        private static final long serialVersionUID = 1L;

        ApiError(String message) {
            super(message);
        }
    }

    private final KubernetesClient client;

    TaskSubresources(KubernetesClient client) {
        this.client = client;
    }

    /** The subresource's body as it streams; the caller closes it. */
    InputStream open(String namespace, String task, String subresource, Map<String, String> query)
            throws IOException, ApiError, InterruptedException {
        String base = client.getConfiguration().getMasterUrl().replaceAll("/+$", "");
        String path = API + "/namespaces/" + encode(namespace) + "/tasks/" + encode(task) + "/" + subresource;
        String queryString = query.entrySet().stream()
                .map(e -> encode(e.getKey()) + "=" + encode(e.getValue()))
                .collect(Collectors.joining("&"));
        HttpClient http = client.getHttpClient();
        HttpRequest request = http.newHttpRequestBuilder()
                .uri(URI.create(base + path + (queryString.isEmpty() ? "" : "?" + queryString)))
                .build();
        HttpResponse<InputStream> response;
        try {
            response = http.sendAsync(request, InputStream.class).get();
        } catch (ExecutionException e) {
            throw new IOException(
                    "the API server at " + base + " did not answer: "
                            + e.getCause().getMessage(),
                    e);
        }
        if (response.code() == 200) {
            return response.body();
        }
        String body;
        try (InputStream in = response.body()) {
            body = new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
        throw new ApiError(describe(response.code(), body));
    }

    /**
     * Opens an exec WebSocket for {@code command} in the task, {@code listener} told of what comes back. A refusal
     * of the upgrade fails the returned future with the API server's status.
     */
    CompletableFuture<WebSocket> exec(
            String namespace,
            String task,
            List<String> command,
            boolean stdin,
            boolean tty,
            WebSocket.Listener listener) {
        String base = client.getConfiguration().getMasterUrl().replaceAll("/+$", "");
        StringBuilder uri = new StringBuilder(base)
                .append(API)
                .append("/namespaces/")
                .append(encode(namespace))
                .append("/tasks/")
                .append(encode(task))
                .append("/exec?stdin=")
                .append(stdin)
                .append("&stdout=true&stderr=")
                .append(!tty)
                .append("&tty=")
                .append(tty);
        command.forEach(argument -> uri.append("&command=").append(encode(argument)));
        return client.getHttpClient()
                .newWebSocketBuilder()
                .subprotocol(AgentApi.EXEC_PROTOCOL)
                .uri(URI.create(uri.toString()))
                .buildAsync(listener);
    }

    /** A JSON subresource, read whole. */
    <T> T read(String namespace, String task, String subresource, Class<T> type)
            throws IOException, ApiError, InterruptedException {
        try (InputStream body = open(namespace, task, subresource, Map.of())) {
            return Serialization.unmarshal(body, type);
        }
    }

    /** As kubectl prints a refusal: {@code Error from server (Forbidden): message}. */
    static String describe(int code, String body) {
        try {
            Status status = Serialization.unmarshal(body, Status.class);
            if (status != null && status.getMessage() != null) {
                String reason = status.getReason() == null || status.getReason().isEmpty()
                        ? Integer.toString(code)
                        : status.getReason();
                return "Error from server (" + reason + "): " + status.getMessage();
            }
        } catch (RuntimeException e) {
            // not a Status: the body as it is
        }
        return "Error from server (" + code + "): " + body.strip();
    }

    static Map<String, String> query() {
        return new LinkedHashMap<>();
    }

    private static String encode(String value) {
        return URLEncoder.encode(value, StandardCharsets.UTF_8);
    }
}
