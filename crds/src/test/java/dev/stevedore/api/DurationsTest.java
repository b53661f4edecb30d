package dev.stevedore.api;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

class DurationsTest {

    @ParameterizedTest(name = "{0} is {1}")
    @CsvSource({
        "1m30s, PT1M30S",
        "500ms, PT0.5S",
        "2h, PT2H",
        "1.5h, PT1H30M",
        "300s, PT5M",
        "2h45m, PT2H45M",
        "1h1m1s1ms1us1ns, PT1H1M1.001001001S",
        ".5s, PT0.5S",
        "1.s, PT1S",
        "10us, PT0.00001S",
        "0, PT0S",
        "+0, PT0S",
        "-0, PT0S",
        "0s, PT0S",
        "+5s, PT5S",
        "-1.5h, PT-1H-30M",
        "1s1s, PT2S",
        "007s, PT7S",
    })
    void readsGoDurations(String text, String expected) {
        assertThat(Durations.parse(text)).isEqualTo(Duration.parse(expected));
    }

    @Test
    void readsBothMicroSigns() {
        assertThat(Durations.parse("3\u00b5s")).isEqualTo(Duration.ofNanos(3_000));
        assertThat(Durations.parse("3\u03bcs")).isEqualTo(Duration.ofNanos(3_000));
    }

    @Test
    void truncatesFractionsOfANanosecondAsGoDoes() {
        assertThat(Durations.parse("1.9ns")).isEqualTo(Duration.ofNanos(1));
        assertThat(Durations.parse("0.3333333333333s")).isEqualTo(Duration.ofNanos(333_333_333));
    }

    @Test
    void reachesGosLimitOfSixtyFourBitNanoseconds() {
        assertThat(Durations.parse("9223372036854775807ns")).isEqualTo(Duration.ofNanos(Long.MAX_VALUE));
        assertThat(Durations.parse("-9223372036854775808ns")).isEqualTo(Duration.ofNanos(Long.MIN_VALUE));
        assertThatThrownBy(() -> Durations.parse("9223372036854775808ns"))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("out of range");
        assertThatThrownBy(() -> Durations.parse("2562048h")).hasMessageContaining("out of range");
    }

    @ParameterizedTest(name = "''{0}'': {1}")
    @CsvSource(
            delimiter = '|',
            value = {
                "10| '10' has no unit",
                "1m30| '30' has no unit",
                "10S| unknown unit 'S'",
                "1d| unknown unit 'd'",
                "1w| unknown unit 'w'",
                "10 s| unknown unit ' s'",
                "garbage 10s| expected a number before 'garbage '",
                "s| expected a number before 's'",
                ".s| '.' is not a number",
                "1.2.3s| '1.2.3' is not a number",
                "-| a sign needs a number after it",
                "--1s| expected a number before '-'",
                "PT1M| expected a number before 'PT'",
            })
    void refusesWhatGoRefusesSayingWhy(String text, String why) {
        assertThatThrownBy(() -> Durations.parse(text))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageStartingWith("'" + text + "' is not a duration")
                .hasMessageContaining(why);
    }

    @ParameterizedTest
    @ValueSource(strings = {" 10s", "10s ", "10s\n"})
    void refusesSurroundingWhitespaceAsGoDoes(String text) {
        assertThatThrownBy(() -> Durations.parse(text)).isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void refusesEmptyAndNull() {
        assertThatThrownBy(() -> Durations.parse("")).hasMessageEndingWith("it is empty");
        assertThatThrownBy(() -> Durations.parse(null)).hasMessageStartingWith("null is not a duration");
    }

    @Test
    void positiveDurationsRefuseZeroAndLess() {
        assertThat(Durations.parsePositive("1ns")).isEqualTo(Duration.ofNanos(1));
        assertThat(Durations.parsePositive("40s")).isEqualTo(Duration.ofSeconds(40));
        assertThatThrownBy(() -> Durations.parsePositive("0")).hasMessageEndingWith("it must be longer than zero");
        assertThatThrownBy(() -> Durations.parsePositive("0s")).hasMessageEndingWith("it must be longer than zero");
        assertThatThrownBy(() -> Durations.parsePositive("-1s")).hasMessageEndingWith("it must be longer than zero");
        assertThatThrownBy(() -> Durations.parsePositive("1x")).hasMessageContaining("unknown unit 'x'");
    }
}
