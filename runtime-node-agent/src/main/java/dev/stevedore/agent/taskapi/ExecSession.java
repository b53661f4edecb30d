package dev.stevedore.agent.taskapi;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.stevedore.agent.tasks.TaskExec;
import dev.stevedore.api.AgentApi;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.ServerWebSocket;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.util.List;
import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One exec over a WebSocket ({@link AgentApi#EXEC_PROTOCOL}): the caller's stdin and terminal sizes to the process,
 * its stdout and stderr back, then its exit as a Status on the error channel. Blocking reads and writes of the
 * process's pipes run on threads of their own, never on the event loop. When the caller goes, the process goes.
 */
final class ExecSession {
    private static final Logger LOG = LoggerFactory.getLogger(ExecSession.class);
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final byte[] END_OF_INPUT = new byte[0];

    private final ServerWebSocket socket;
    private final TaskExec exec;
    private final ExecutorService threads;
    private final BlockingQueue<byte[]> input = new LinkedBlockingQueue<>(256);

    private ExecSession(ServerWebSocket socket, TaskExec exec, ExecutorService threads) {
        this.socket = socket;
        this.exec = exec;
        this.threads = threads;
    }

    /** Runs it on the accepted socket until the process has exited and its output is sent, or the caller went. */
    static void run(ServerWebSocket socket, TaskExec exec, boolean stdin, boolean tty, ExecutorService threads) {
        new ExecSession(socket, exec, threads).run(stdin, tty);
    }

    private void run(boolean stdin, boolean tty) {
        Process process = exec.process();
        socket.closeHandler(v -> exec.close());
        socket.binaryMessageHandler(this::received);
        socket.resume(); // paused until the handlers are set: no message of the caller is lost
        if (stdin) {
            threads.execute(this::writeInput);
        } else {
            closeQuietly(process.getOutputStream());
        }
        threads.execute(() -> {
            try {
                var stdout = threads.submit(() -> pump(process.getInputStream(), AgentApi.STDOUT));
                if (!tty) {
                    pump(process.getErrorStream(), AgentApi.STDERR);
                }
                stdout.get();
                int code = process.waitFor();
                send(AgentApi.ERROR, JSON.writeValueAsBytes(status(code)));
                socket.close((short) 1000);
            } catch (Exception e) {
                LOG.debug("exec: {}", e.toString());
                socket.close((short) 1011);
            } finally {
                input.offer(END_OF_INPUT);
                exec.close();
            }
        });
    }

    private void received(Buffer message) {
        if (message.length() == 0) {
            return;
        }
        byte channel = message.getByte(0);
        byte[] payload = message.getBytes(1, message.length());
        if (channel == AgentApi.STDIN) {
            if (!input.offer(payload)) {
                LOG.debug("exec: stdin backlog full; closing");
                socket.close((short) 1011);
            }
        } else if (channel == AgentApi.RESIZE) {
            threads.execute(() -> resize(payload));
        } else if (channel == AgentApi.CLOSE && payload.length > 0 && payload[0] == AgentApi.STDIN) {
            input.offer(END_OF_INPUT);
        }
    }

    private void writeInput() {
        OutputStream stdin = exec.process().getOutputStream();
        try (stdin) {
            while (true) {
                byte[] bytes = input.poll(1, TimeUnit.SECONDS);
                if (bytes == END_OF_INPUT) {
                    return;
                }
                if (bytes == null) {
                    if (!exec.process().isAlive()) {
                        return;
                    }
                    continue;
                }
                stdin.write(bytes);
                stdin.flush();
            }
        } catch (IOException e) {
            LOG.debug("exec: stdin: {}", e.toString()); // the process closed it, or exited
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private void resize(byte[] payload) {
        try {
            JsonNode size = JSON.readTree(payload);
            int width = size.path("Width").asInt();
            int height = size.path("Height").asInt();
            if (width > 0 && height > 0 && width <= 10_000 && height <= 10_000) {
                exec.resize(width, height);
            }
        } catch (IOException e) {
            LOG.debug("exec: resize: {}", e.toString());
        }
    }

    private Void pump(InputStream from, byte channel) throws IOException, InterruptedException {
        byte[] buffer = new byte[8192];
        int n;
        while ((n = from.read(buffer)) > 0) {
            byte[] message = new byte[n];
            System.arraycopy(buffer, 0, message, 0, n);
            send(channel, message);
        }
        return null;
    }

    /** One message on a channel; waits while the socket's write queue is full (a slow caller slows the process). */
    private void send(byte channel, byte[] payload) throws InterruptedException {
        while (socket.writeQueueFull() && !socket.isClosed()) {
            Thread.sleep(10);
        }
        socket.writeBinaryMessage(
                Buffer.buffer(payload.length + 1).appendByte(channel).appendBytes(payload));
    }

    /** The Status kubectl reads an exec's end from: Success, or Failure with the exit code, as kubelet words it. */
    static Map<String, Object> status(int exitCode) {
        if (exitCode == 0) {
            return Map.of("metadata", Map.of(), "status", "Success");
        }
        return Map.of(
                "metadata",
                Map.of(),
                "status",
                "Failure",
                "message",
                "command terminated with non-zero exit code: exit status " + exitCode,
                "reason",
                "NonZeroExitCode",
                "details",
                Map.of("causes", List.of(Map.of("reason", "ExitCode", "message", Integer.toString(exitCode)))));
    }

    private static void closeQuietly(OutputStream stream) {
        try {
            stream.close();
        } catch (IOException e) {
            LOG.debug("exec: closing stdin: {}", e.toString());
        }
    }
}
