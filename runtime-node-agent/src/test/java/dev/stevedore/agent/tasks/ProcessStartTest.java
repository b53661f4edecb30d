package dev.stevedore.agent.tasks;

import static org.assertj.core.api.Assertions.assertThat;

import dev.stevedore.agent.tasks.ProcessStart.Match;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.OptionalLong;
import org.junit.jupiter.api.Test;

class ProcessStartTest {
    /** A real line (a sleep), fields 1 to 52; starttime (22) is 81234567. */
    private static final String SLEEP = "4242 (sleep) S 4240 4242 4240 0 -1 4194560 107 0 0 0 0 0 0 0 20 0 1 0 81234567"
            + " 2408448 193 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n";

    @Test
    void readsTheStartTimeAfterTheCommand() {
        assertThat(ProcessStart.parse(SLEEP)).hasValue(81234567L);
    }

    @Test
    void aCommandWithSpacesAndParenthesesDoesNotShiftTheFields() {
        // A process names itself: "x) R 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 (" would fool a split on
        // the first ')' or on spaces.
        String hostile = SLEEP.replace("(sleep)", "(x) R 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 99 ()");
        assertThat(ProcessStart.parse(hostile)).hasValue(81234567L);
        assertThat(ProcessStart.parse(SLEEP.replace("(sleep)", "(a b  c)"))).hasValue(81234567L);
    }

    /** A conmon that exited is a zombie until the host's init reaps it, which may take long: it is gone. */
    @Test
    void aProcessThatExitedHasNoStartTimeEvenBeforeItIsReaped() {
        assertThat(ProcessStart.parse(SLEEP.replace("(sleep) S", "(conmon) Z"))).isEmpty();
        assertThat(ProcessStart.parse(SLEEP.replace("(sleep) S", "(conmon) X"))).isEmpty();
        assertThat(ProcessStart.parse(SLEEP.replace("(sleep) S", "(conmon) D"))).hasValue(81234567L);
    }

    @Test
    void aLineItCannotReadIsNoStartTime() {
        assertThat(ProcessStart.parse("")).isEmpty();
        assertThat(ProcessStart.parse("4242 (sleep S 1 2")).isEmpty();
        assertThat(ProcessStart.parse("4242 (sleep) S 4240 4242")).isEmpty();
        assertThat(ProcessStart.parse(SLEEP.replace("81234567", "soon"))).isEmpty();
    }

    @Test
    void readsALiveProcessAndNothingOfAGoneOne() throws Exception {
        long self = ProcessHandle.current().pid();
        OptionalLong start = ProcessStart.of(self);
        assertThat(start).isPresent();
        assertThat(start).isEqualTo(ProcessStart.parse(Files.readString(Path.of("/proc/self/stat"))));
        Process done = new ProcessBuilder("true").start();
        done.waitFor();
        assertThat(ProcessStart.of(done.pid())).isEmpty();
        assertThat(ProcessStart.of(0)).isEmpty();
    }

    @Test
    void aRecordedProcessIsTheOneUnderItsPidOnlyWithTheSameStartTime() {
        assertThat(ProcessStart.match(100L, OptionalLong.of(100))).isEqualTo(Match.SAME);
        assertThat(ProcessStart.match(100L, OptionalLong.of(101))).isEqualTo(Match.OTHER);
        assertThat(ProcessStart.match(100L, OptionalLong.empty())).isEqualTo(Match.GONE);
        assertThat(ProcessStart.match(null, OptionalLong.of(101))).isEqualTo(Match.UNKNOWN);
        assertThat(ProcessStart.match(null, OptionalLong.empty())).isEqualTo(Match.GONE);
    }
}
