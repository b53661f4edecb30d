package dev.stevedore.bench;

import java.util.List;

/**
 * One benchmark: sets up what it measures (usually a control plane of its own, so scenarios cannot disturb each
 * other), runs it once and returns its measurements. Asserts nothing about speed: a benchmark reports, it does not
 * judge.
 */
public interface Scenario {
    /** The name to choose it by on the command line, and the prefix of its measurements' names. */
    String name();

    /** One line for {@code --list}. */
    String description();

    List<Measurement> run(Settings settings) throws Exception;
}
