package dev.stevedore.kubectl;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.stevedore.api.AgentApi;
import io.fabric8.kubernetes.client.http.WebSocket;
import io.fabric8.kubernetes.client.http.WebSocketHandshakeException;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;

/**
 * The user's side of an exec ({@link AgentApi#EXEC_PROTOCOL}, as kubectl speaks it): stdin and terminal sizes out,
 * stdout and stderr in, and the process's exit code from the final Status.
 */
final class ExecClient implements WebSocket.Listener {
    private static final ObjectMapper JSON = new ObjectMapper();

    private final PrintStream out;
    private final PrintStream err;
    private final CompletableFuture<Integer> exit = new CompletableFuture<>();
    private volatile Integer statusCode;

    ExecClient(PrintStream out, PrintStream err) {
        this.out = out;
        this.err = err;
    }

    /** The exit code once the exec has ended: the process's, or 1 when it ended without one. */
    int awaitExit() throws InterruptedException, IOException {
        try {
            return exit.get();
        } catch (ExecutionException e) {
            throw new IOException("the exec ended: " + e.getCause().getMessage(), e.getCause());
        }
    }

    /** Sends {@code stdin}'s bytes until it ends, then closes the process's stdin. */
    static void sendInput(WebSocket socket, InputStream stdin) throws IOException {
        byte[] buffer = new byte[8192];
        int n;
        while ((n = stdin.read(buffer)) > 0) {
            socket.send(ByteBuffer.allocate(n + 1)
                    .put(AgentApi.STDIN)
                    .put(buffer, 0, n)
                    .flip());
        }
        socket.send(ByteBuffer.wrap(new byte[] {AgentApi.CLOSE, AgentApi.STDIN}));
    }

    static void sendSize(WebSocket socket, int columns, int rows) {
        byte[] size = ("{\"Width\":" + columns + ",\"Height\":" + rows + "}").getBytes(StandardCharsets.US_ASCII);
        socket.send(ByteBuffer.allocate(size.length + 1)
                .put(AgentApi.RESIZE)
                .put(size)
                .flip());
    }

    /** The API server's refusal of the upgrade, worded as kubectl words a refusal. */
    static String refusal(Throwable failure) {
        Throwable cause = failure instanceof ExecutionException ? failure.getCause() : failure;
        if (cause instanceof WebSocketHandshakeException handshake && handshake.getResponse() != null) {
            int code = handshake.getResponse().code();
            String why = switch (code) {
                case 401 -> "(Unauthorized): the API server did not accept your credentials";
                case 403 -> "(Forbidden): you may not create tasks/exec on this task";
                case 404 -> "(NotFound): no such task";
                case 409 -> "(Conflict): the task is not running";
                default -> "(" + code + "): the exec was refused";
            };
            return "Error from server " + why;
        }
        return "error: " + cause.getMessage();
    }

    @Override
    public void onOpen(WebSocket socket) {
        socket.request();
    }

    @Override
    public void onMessage(WebSocket socket, ByteBuffer message) {
        if (message.remaining() > 0) {
            byte channel = message.get();
            byte[] payload = new byte[message.remaining()];
            message.get(payload);
            switch (channel) {
                case AgentApi.STDOUT -> write(out, payload);
                case AgentApi.STDERR -> write(err, payload);
                case AgentApi.ERROR -> statusCode = exitCode(payload);
                default -> {}
            }
        }
        socket.request();
    }

    @Override
    public void onClose(WebSocket socket, int code, String reason) {
        exit.complete(statusCode == null ? 1 : statusCode);
    }

    @Override
    public void onError(WebSocket socket, Throwable error) {
        exit.completeExceptionally(error);
    }

    private static void write(PrintStream stream, byte[] bytes) {
        stream.write(bytes, 0, bytes.length);
        stream.flush();
    }

    /** 0 for Success; the ExitCode cause of a Failure; else 1, its message printed as kubectl prints it. */
    private int exitCode(byte[] statusJson) {
        try {
            JsonNode status = JSON.readTree(statusJson);
            if ("Success".equals(status.path("status").asText())) {
                return 0;
            }
            for (JsonNode cause : status.path("details").path("causes")) {
                if ("ExitCode".equals(cause.path("reason").asText())) {
                    return Integer.parseInt(cause.path("message").asText());
                }
            }
            err.println("error: " + status.path("message").asText());
        } catch (IOException | NumberFormatException e) {
            err.println("error: an exec status nobody could read: " + e.getMessage());
        }
        return 1;
    }
}
