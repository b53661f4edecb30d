package dev.stevedore.operator;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import dev.stevedore.testing.ShippedLogging;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The README's "JSON-line logs": the operator's shipped logback.xml prints one JSON object per line. */
class OperatorLogsTest {
    private static final String LOGGER = "dev.stevedore.operator.ContainerReconciler";

    @Test
    void eachLineIsOneJsonObjectWithLevelLoggerAndMessage() {
        try (ShippedLogging logging = ShippedLogging.of(StevedoreOperator.class)) {
            logging.logger(LOGGER).info("started {} on {}", "web", "node-1");
            logging.logger(LOGGER)
                    .warn("two lines\nand \"quotes\"", new IllegalStateException("the cause\nover two lines"));
            logging.logger(LOGGER).debug("below the default level");
            logging.logger("io.fabric8.kubernetes.client.informers.SharedIndexInformer")
                    .info("client chatter below WARN");

            List<JsonNode> lines = logging.jsonLines();

            assertThat(lines).as(String.join("\n", logging.lines())).hasSize(2);
            assertThat(lines.get(0).path("level").asText()).isEqualTo("INFO");
            assertThat(lines.get(0).path("loggerName").asText()).isEqualTo(LOGGER);
            assertThat(lines.get(0).path("formattedMessage").asText()).isEqualTo("started web on node-1");
            assertThat(lines.get(1).path("level").asText()).isEqualTo("WARN");
            assertThat(lines.get(1).path("formattedMessage").asText()).isEqualTo("two lines\nand \"quotes\"");
            assertThat(lines.get(1).path("throwable").path("message").asText()).isEqualTo("the cause\nover two lines");
        }
    }
}
