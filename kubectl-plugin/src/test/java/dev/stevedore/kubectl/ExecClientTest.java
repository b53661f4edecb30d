package dev.stevedore.kubectl;

import static org.assertj.core.api.Assertions.assertThat;

import dev.stevedore.api.AgentApi;
import io.fabric8.kubernetes.client.http.WebSocket;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

/** What the plugin makes of an exec's messages and of the API server's refusals. */
class ExecClientTest {
    private final ByteArrayOutputStream out = new ByteArrayOutputStream();
    private final ByteArrayOutputStream err = new ByteArrayOutputStream();
    private final ExecClient client = new ExecClient(
            new PrintStream(out, true, StandardCharsets.UTF_8), new PrintStream(err, true, StandardCharsets.UTF_8));
    private final WebSocket socket = new WebSocket() {
        @Override
        public boolean send(ByteBuffer buffer) {
            return true;
        }

        @Override
        public boolean sendClose(int code, String reason) {
            return true;
        }

        @Override
        public long queueSize() {
            return 0;
        }

        @Override
        public void request() {}
    };

    @Test
    void streamsGoWhereTheyBelongAndTheExitCodeComesFromTheStatus() throws Exception {
        message(AgentApi.STDOUT, "out\n");
        message(AgentApi.STDERR, "err\n");
        message(AgentApi.ERROR, """
                {"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: exit status 7",
                 "reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"7"}]}}""");
        client.onClose(socket, 1000, "");

        assertThat(client.awaitExit()).isEqualTo(7);
        assertThat(out.toString(StandardCharsets.UTF_8)).isEqualTo("out\n");
        assertThat(err.toString(StandardCharsets.UTF_8)).isEqualTo("err\n");
    }

    @Test
    void successIsZeroAndAnEndWithoutStatusIsOne() throws Exception {
        message(AgentApi.ERROR, "{\"metadata\":{},\"status\":\"Success\"}");
        client.onClose(socket, 1000, "");
        assertThat(client.awaitExit()).isZero();

        ExecClient cut = new ExecClient(System.out, new PrintStream(err, true, StandardCharsets.UTF_8));
        cut.onClose(socket, 1006, "gone");
        assertThat(cut.awaitExit()).isEqualTo(1);
    }

    @Test
    void aFailureWithoutExitCodeSaysWhy() throws Exception {
        message(AgentApi.ERROR, "{\"status\":\"Failure\",\"message\":\"the task is not running\"}");
        client.onClose(socket, 1000, "");

        assertThat(client.awaitExit()).isEqualTo(1);
        assertThat(err.toString(StandardCharsets.UTF_8)).contains("error: the task is not running");
    }

    @Test
    void refusalsAreWordedAsKubectlWordsThem() {
        assertThat(TaskSubresources.describe(
                        403,
                        "{\"kind\":\"Status\",\"reason\":\"Forbidden\",\"message\":\"User \\\"u\\\" cannot get\"}"))
                .isEqualTo("Error from server (Forbidden): User \"u\" cannot get");
        assertThat(TaskSubresources.describe(502, "bad gateway\n")).isEqualTo("Error from server (502): bad gateway");
    }

    private void message(byte channel, String payload) {
        byte[] bytes = payload.getBytes(StandardCharsets.UTF_8);
        client.onMessage(
                socket,
                ByteBuffer.allocate(bytes.length + 1).put(channel).put(bytes).flip());
    }
}
