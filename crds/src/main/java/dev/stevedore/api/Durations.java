package dev.stevedore.api;

import java.time.Duration;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** Durations as Kubernetes components write them in flags and configuration: 500ms, 10s, 5m, 1h. */
public final class Durations {
    private static final Pattern DURATION = Pattern.compile("(\\d+)(ms|s|m|h)");

    private Durations() {
    }

    public static Duration parse(String value) {
        Matcher match = DURATION.matcher(value.trim());
        if (!match.matches()) {
            throw new IllegalArgumentException("'" + value + "' is not a duration like 500ms, 10s, 5m or 1h");
        }
        long amount = Long.parseLong(match.group(1));
        return switch (match.group(2)) {
            case "ms" -> Duration.ofMillis(amount);
            case "s" -> Duration.ofSeconds(amount);
            case "m" -> Duration.ofMinutes(amount);
            default -> Duration.ofHours(amount);
        };
    }
}
