package dev.stevedore.agent.tasks;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import org.junit.jupiter.api.Test;

class BackoffTest {
    private final Backoff backoff = new Backoff(Duration.ofMillis(200), Duration.ofSeconds(4), 0.5);

    @Test
    void doublesFromTheFirstWaitUpToTheCap() {
        assertThat(java.util.stream.IntStream.rangeClosed(1, 8)
                        .mapToObj(n -> backoff.after(n, 0).toMillis()))
                .containsExactly(200L, 400L, 800L, 1600L, 3200L, 4000L, 4000L, 4000L);
    }

    @Test
    void staysAtTheCapHoweverLongItFails() {
        assertThat(backoff.after(1_000_000, 0)).isEqualTo(Duration.ofSeconds(4));
    }

    @Test
    void jitterOnlyShortensTheWaitAndByAtMostItsShare() {
        assertThat(backoff.after(1, 0.999)).isEqualTo(Duration.ofMillis(101));
        assertThat(backoff.after(20, 0.5)).isEqualTo(Duration.ofSeconds(3));
        assertThat(backoff.after(20, 0.999).toMillis()).isGreaterThan(2000).isLessThanOrEqualTo(4000);
    }

    @Test
    void theStatusWritesBackoffNoticesAReturningApiServerWithinSeconds() {
        assertThat(Backoff.STATUS_WRITES.after(Integer.MAX_VALUE, 0)).isLessThanOrEqualTo(Duration.ofSeconds(5));
        assertThat(Backoff.STATUS_WRITES.after(1, 0)).isLessThan(Duration.ofSeconds(1));
    }

    @Test
    void refusesWhatIsNoBackoff() {
        assertThatThrownBy(() -> backoff.after(0, 0)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> new Backoff(Duration.ZERO, Duration.ofSeconds(1), 0))
                .isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> new Backoff(Duration.ofSeconds(2), Duration.ofSeconds(1), 0))
                .isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> new Backoff(Duration.ofSeconds(1), Duration.ofSeconds(2), 1))
                .isInstanceOf(IllegalArgumentException.class);
    }
}
