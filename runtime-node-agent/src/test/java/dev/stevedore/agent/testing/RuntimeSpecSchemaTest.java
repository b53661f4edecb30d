package dev.stevedore.agent.testing;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;

/** The schema check itself can fail: definitions in the schema's other files (defs.json) are applied too. */
class RuntimeSpecSchemaTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @Test
    void aValidSpecPassesAndViolationsInEveryFileAreFound() throws Exception {
        String valid = """
                {"ociVersion": "1.0.2", "root": {"path": "rootfs"},
                 "process": {"cwd": "/", "args": ["sh"], "user": {"uid": 0, "gid": 0}},
                 "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"}],
                 "linux": {"namespaces": [{"type": "pid"}]}}""";
        assertThat(RuntimeSpecSchema.violations(JSON.readTree(valid))).isEmpty();

        assertThat(RuntimeSpecSchema.violations(JSON.readTree(valid.replace("\"destination\": \"/proc\", ", ""))))
                .as("Mount in defs.json requires a destination")
                .isNotEmpty();
        assertThat(RuntimeSpecSchema.violations(JSON.readTree(valid.replace("\"uid\": 0", "\"uid\": -1"))))
                .as("uid is a uint32 of defs.json")
                .isNotEmpty();
        assertThat(RuntimeSpecSchema.violations(
                        JSON.readTree(valid.replace("\"type\": \"pid\"", "\"type\": \"pidx\""))))
                .as("namespace types are in config-linux.json / defs-linux.json")
                .isNotEmpty();
        assertThat(RuntimeSpecSchema.violations(JSON.readTree(valid.replace("\"ociVersion\": \"1.0.2\", ", ""))))
                .as("ociVersion is required")
                .isNotEmpty();
    }
}
