package dev.stevedore.agent.testing;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.networknt.schema.Error;
import com.networknt.schema.Schema;
import com.networknt.schema.SchemaLocation;
import com.networknt.schema.SchemaRegistry;
import com.networknt.schema.SpecificationVersion;
import dev.stevedore.testing.Tools;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * The OCI runtime-spec's own JSON schema (config-schema.json of the version runc implements, from
 * {@code hack/runtime-spec-schema.sh}): every config.json the tests see is checked against it. Loaded once.
 */
public final class RuntimeSpecSchema {
    private static final String BASE = "urn:runtime-spec-schema:";
    private static Schema schema;

    private RuntimeSpecSchema() {}

    /** Fails the test, naming each violation, unless {@code spec} is a valid config.json. */
    public static void assertValid(JsonNode spec) {
        List<String> errors = violations(spec);
        assertThat(errors)
                .as("violations of the runtime-spec schema in %s", spec)
                .isEmpty();
    }

    public static List<String> violations(JsonNode spec) {
        return schema().validate(spec).stream().map(Error::toString).toList();
    }

    private static synchronized Schema schema() {
        if (schema == null) {
            Path dir = Tools.runtimeSpecSchemaDir();
            // Draft 4, as the schema says. Its $refs are file names relative to it: the registry reads them from the
            // schema directory by name (it fetches nothing itself).
            schema = SchemaRegistry.withDefaultDialect(
                            SpecificationVersion.DRAFT_4,
                            registry -> registry.schemas((String iri) ->
                                    iri.startsWith(BASE) ? read(dir, iri.substring(BASE.length())) : null))
                    .getSchema(SchemaLocation.of(BASE + "config-schema.json"));
        }
        return schema;
    }

    private static String read(Path dir, String name) {
        try {
            return Files.readString(dir.resolve(Path.of(name).getFileName()));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
