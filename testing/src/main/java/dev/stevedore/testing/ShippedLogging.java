package dev.stevedore.testing;

import ch.qos.logback.classic.LoggerContext;
import ch.qos.logback.classic.joran.JoranConfigurator;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.classic.util.LogbackMDCAdapter;
import ch.qos.logback.core.Appender;
import ch.qos.logback.core.OutputStreamAppender;
import ch.qos.logback.core.joran.spi.JoranException;
import ch.qos.logback.core.status.Status;
import ch.qos.logback.core.util.StatusPrinter2;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import org.slf4j.Logger;

/**
 * A module's shipped logback.xml (the one in its jar, not a test's logback-test.xml) in a logger context of its
 * own, its appenders' bytes kept in memory: what the process would print, for a test to read.
 */
public final class ShippedLogging implements AutoCloseable {
    /** Strict: a second object after the first on one line fails too. */
    private static final ObjectMapper JSON = new ObjectMapper().enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);

    private final LoggerContext context = new LoggerContext();
    private final ByteArrayOutputStream printed = new ByteArrayOutputStream();

    private ShippedLogging(Path logbackXml) {
        context.setMDCAdapter(new LogbackMDCAdapter()); // as the context logback starts by itself has
        JoranConfigurator configurator = new JoranConfigurator();
        configurator.setContext(context);
        try {
            configurator.doConfigure(logbackXml.toFile());
        } catch (JoranException e) {
            throw new IllegalStateException("cannot read " + logbackXml, e);
        }
        failOnStatus(Status.WARN, logbackXml + " configures logback with warnings or errors");
        int captured = 0;
        for (Iterator<Appender<ILoggingEvent>> it =
                        context.getLogger(Logger.ROOT_LOGGER_NAME).iteratorForAppenders();
                it.hasNext(); ) {
            if (it.next() instanceof OutputStreamAppender<ILoggingEvent> appender) {
                appender.setOutputStream(printed); // in place of stdout; the encoder stays the shipped one
                captured++;
            }
        }
        if (captured == 0) {
            throw new IllegalStateException(logbackXml + " gives the root logger no appender that prints");
        }
    }

    /** The logback.xml shipped in the jar {@code ofClass} is part of (its target/classes in the reactor). */
    public static ShippedLogging of(Class<?> ofClass) {
        try {
            Path classes = Path.of(
                    ofClass.getProtectionDomain().getCodeSource().getLocation().toURI());
            return new ShippedLogging(classes.resolve("logback.xml"));
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    public Logger logger(String name) {
        return context.getLogger(name);
    }

    /** What was printed, line by line; an appender that failed to print fails. */
    public List<String> lines() {
        failOnStatus(Status.ERROR, "logback failed to print");
        return printed.toString(StandardCharsets.UTF_8).lines().toList();
    }

    /** Each printed line read as JSON; a line that is not one JSON object fails. */
    public List<JsonNode> jsonLines() {
        List<JsonNode> objects = new ArrayList<>();
        for (String line : lines()) {
            try {
                JsonNode node = JSON.readTree(line);
                if (node == null || !node.isObject()) {
                    throw new AssertionError("not a JSON object: " + line);
                }
                objects.add(node);
            } catch (IOException e) {
                throw new AssertionError("not one JSON object: " + line, e);
            }
        }
        return objects;
    }

    private void failOnStatus(int level, String what) {
        if (context.getStatusManager().getCopyOfStatusList().stream().anyMatch(s -> s.getLevel() >= level)) {
            new StatusPrinter2().print(context);
            throw new IllegalStateException(what + " (printed above)");
        }
    }

    @Override
    public void close() {
        context.stop();
    }
}
