package dev.stevedore.api;

import java.math.BigDecimal;
import java.math.RoundingMode;
import java.time.Duration;
import java.util.Map;

/**
 * Durations as Kubernetes users write them in flags and Helm values: Go's {@code time.ParseDuration} syntax, a
 * possibly signed sequence of decimal numbers, each with an optional fraction and a unit ({@code 1m30s},
 * {@code 500ms}, {@code 1.5h}, {@code -2h45m}; units ns, us or µs, ms, s, m, h; a bare {@code 0}). As in Go, the
 * result is a whole number of nanoseconds (finer fractions are truncated) and fits in a signed 64-bit count of them.
 *
 * <p>Why not a library: fabric8's {@code io.fabric8.kubernetes.api.model.Duration}, already on the class path, is
 * not Go's syntax and is lenient where it should refuse: it reads {@code 1.5h} as 5h, drops a minus sign, accepts
 * days and weeks, and skips text it does not understand. {@link Duration#parse} reads only ISO-8601
 * ({@code PT1M30S}). The Java parsers of Go's syntax that exist live inside large SDKs (Spring Vault's
 * {@code DurationParser}, Couchbase's internal {@code Golang} helper): a whole framework for one function.
 */
public final class Durations {
    private static final Map<String, Long> NANOS_PER_UNIT = Map.of(
            "ns", 1L,
            "us", 1_000L,
            "\u00b5s", 1_000L, // µs, MICRO SIGN
            "\u03bcs", 1_000L, // μs, GREEK SMALL LETTER MU: Go accepts both
            "ms", 1_000_000L,
            "s", 1_000_000_000L,
            "m", 60_000_000_000L,
            "h", 3_600_000_000_000L);
    private static final String UNITS = "ns, us (or µs), ms, s, m, h";

    private Durations() {}

    /** Parses a Go duration; throws {@link IllegalArgumentException} saying what is wrong with it. */
    public static Duration parse(String text) {
        if (text == null || text.isEmpty()) {
            throw invalid(text, "it is empty");
        }
        int at = 0;
        boolean negative = text.charAt(0) == '-';
        if (negative || text.charAt(0) == '+') {
            at++;
        }
        if (text.substring(at).equals("0")) {
            return Duration.ZERO; // the one number that needs no unit
        }
        if (at == text.length()) {
            throw invalid(text, "a sign needs a number after it");
        }
        BigDecimal nanos = BigDecimal.ZERO;
        while (at < text.length()) {
            int numberStart = at;
            at = skip(text, at, true);
            String number = text.substring(numberStart, at);
            int unitStart = at;
            at = skip(text, at, false);
            String unit = text.substring(unitStart, at);
            nanos = nanos.add(component(text, number, unit));
        }
        try {
            return Duration.ofNanos((negative ? nanos.negate() : nanos).longValueExact());
        } catch (ArithmeticException e) {
            throw invalid(text, "it is out of range (at most about 2562047h)");
        }
    }

    /**
     * Parses a Go duration that must be longer than zero: for periods, grace periods and timeouts, where zero or
     * less would mean a busy loop or an instant failure rather than anything a user meant.
     */
    public static Duration parsePositive(String text) {
        Duration duration = parse(text);
        if (duration.isNegative() || duration.isZero()) {
            throw invalid(text, "it must be longer than zero");
        }
        return duration;
    }

    /** The index after the run of number characters (digits and '.') or of unit characters starting at {@code at}. */
    private static int skip(String text, int at, boolean number) {
        while (at < text.length() && isNumberChar(text.charAt(at)) == number) {
            at++;
        }
        return at;
    }

    private static boolean isNumberChar(char c) {
        return (c >= '0' && c <= '9') || c == '.';
    }

    /** One number-and-unit, in nanoseconds, truncated to a whole one as Go does. */
    private static BigDecimal component(String text, String number, String unit) {
        if (number.isEmpty()) {
            throw invalid(text, "expected a number before '" + unit + "'");
        }
        if (number.equals(".") || number.indexOf('.') != number.lastIndexOf('.')) {
            throw invalid(text, "'" + number + "' is not a number");
        }
        if (unit.isEmpty()) {
            throw invalid(text, "'" + number + "' has no unit (units: " + UNITS + ")");
        }
        Long perUnit = NANOS_PER_UNIT.get(unit);
        if (perUnit == null) {
            throw invalid(text, "unknown unit '" + unit + "' (units: " + UNITS + ")");
        }
        return new BigDecimal(number).multiply(BigDecimal.valueOf(perUnit)).setScale(0, RoundingMode.DOWN);
    }

    private static IllegalArgumentException invalid(String text, String why) {
        return new IllegalArgumentException(
                (text == null ? "null" : "'" + text + "'") + " is not a duration like 1m30s, 500ms or 1.5h: " + why);
    }
}
