package dev.stevedore.agent.tasks;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

class SignalsAndMessagesTest {

    @Test
    void signalNamesAndNumbers() {
        assertThat(Signals.number("SIGTERM")).isEqualTo(15);
        assertThat(Signals.number("SIGKILL")).isEqualTo(9);
        assertThat(Signals.number("SIGRTMIN+3")).isEqualTo(37);
        assertThat(Signals.name(9)).isEqualTo("SIGKILL");
        assertThat(Signals.name(15)).isEqualTo("SIGTERM");
        assertThat(Signals.name(0)).isNull();
    }

    @Test
    void runcsLogLineIsReducedToItsMessage() {
        String raw =
                "time=\"2026-11-29T13:00:43Z\" level=error msg=\"runc create failed: unable to start container process: "
                        + "exec: \\\"nosuchcmd\\\": executable file not found in $PATH\"\n";
        assertThat(ConmonRuntime.runtimeMessage(raw))
                .isEqualTo(
                        "runc create failed: unable to start container process: exec: \"nosuchcmd\": executable file not found in $PATH");
        assertThat(ConmonRuntime.runtimeMessage("crun: plain message\n")).isEqualTo("crun: plain message");
    }
}
