package dev.stevedore.agent.spec;

import static dev.stevedore.agent.spec.Specs.EMPTY_ROOTFS;
import static dev.stevedore.agent.spec.Specs.SH_IMAGE;
import static dev.stevedore.agent.spec.Specs.json;
import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.stevedore.api.v1alpha1.ContainerSpec;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.List;
import org.junit.jupiter.api.Test;

class SpecDigestTest {
    private final SpecGenerator generator = new SpecGenerator(List.of());

    @Test
    void theDigestIsTheSha256OfTheCanonicalJson() throws Exception {
        String canonical = "{\"a\":[true,null,{\"x\":\"\\u0001é\",\"y\":1}],\"b\":-2.5,\"c\":\"\"}";
        String expected = "sha256:"
                + HexFormat.of()
                        .formatHex(MessageDigest.getInstance("SHA-256")
                                .digest(canonical.getBytes(StandardCharsets.UTF_8)));

        ObjectNode spec = json("{ \"c\": \"\",\n \"b\": -2.5, \"a\": [true, null, {\"y\": 1, \"x\": \"\\u0001é\"}] }");

        assertThat(new String(CanonicalJson.bytes(spec), StandardCharsets.UTF_8))
                .isEqualTo(canonical);
        assertThat(generator.digest(spec)).isEqualTo(expected).matches("sha256:[0-9a-f]{64}");
    }

    @Test
    void keyOrderDoesNotMatter() {
        ObjectNode one = json("{\"process\":{\"cwd\":\"/\",\"args\":[\"sh\"]},\"ociVersion\":\"1.0.2\"}");
        ObjectNode other = json("{\"ociVersion\":\"1.0.2\",\"process\":{\"args\":[\"sh\"],\"cwd\":\"/\"}}");
        assertThat(generator.digest(one)).isEqualTo(generator.digest(other));
    }

    @Test
    void theSameContainerGivesTheSameDigestEveryTime() throws Exception {
        ContainerSpec container = Specs.container(
                new ContainerSpec.Process(List.of("sh"), List.of(new ContainerSpec.EnvVar("A", "1")), null, null));
        String first = generator.digest(Specs.generate(generator, "c1", container, SH_IMAGE, EMPTY_ROOTFS));
        String second =
                generator.digest(Specs.generate(new SpecGenerator(List.of()), "c1", container, SH_IMAGE, EMPTY_ROOTFS));
        assertThat(first).isEqualTo(second);
    }

    @Test
    void anyChangeChangesTheDigest() throws Exception {
        ObjectNode spec = Specs.generate(generator, "c1", Specs.container(), SH_IMAGE, EMPTY_ROOTFS);
        String before = generator.digest(spec);

        ObjectNode changed = spec.deepCopy();
        ((com.fasterxml.jackson.databind.node.ArrayNode) changed.path("process").path("env")).add("A=1");
        assertThat(generator.digest(changed)).isNotEqualTo(before);

        ObjectNode reordered = spec.deepCopy();
        com.fasterxml.jackson.databind.node.ArrayNode masked = (com.fasterxml.jackson.databind.node.ArrayNode)
                reordered.path("linux").path("maskedPaths");
        masked.insert(0, masked.remove(masked.size() - 1));
        assertThat(generator.digest(reordered)).as("array order is content").isNotEqualTo(before);

        assertThat(generator.digest(Specs.generate(generator, "c2", Specs.container(), SH_IMAGE, EMPTY_ROOTFS)))
                .isNotEqualTo(before);
    }
}
