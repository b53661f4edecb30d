package dev.stevedore.agent.spec;

import static dev.stevedore.agent.spec.Specs.EMPTY_ROOTFS;
import static dev.stevedore.agent.spec.Specs.SH_IMAGE;
import static dev.stevedore.agent.spec.Specs.strings;
import static dev.stevedore.agent.spec.Specs.withOciSpec;
import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.stevedore.api.v1alpha1.ContainerSpec;
import io.fabric8.kubernetes.api.model.Quantity;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** spec.ociSpec, merged last: what the other fields do not cover, and overrides of what they do. */
class OciSpecTest {
    private final SpecGenerator generator = new SpecGenerator(List.of());

    @Test
    void nestedObjectsMergeKeyByKey() throws Exception {
        ContainerSpec container = Specs.container(
                null, new ContainerSpec.Resources(new Quantity("64Mi"), null, null), null, Specs.map("""
                        {"process": {"terminal": false, "user": {"additionalGids": [10]}},
                         "linux": {"resources": {"pids": {"limit": 5}}, "sysctl": {"net.ipv4.ping_group_range": "0 0"}}}
                        """));

        ObjectNode spec = Specs.generate(generator, "c1", container, SH_IMAGE, EMPTY_ROOTFS);

        JsonNode resources = spec.path("linux").path("resources");
        assertThat(resources.path("pids").path("limit").asInt()).isEqualTo(5);
        assertThat(resources.path("memory").path("limit").asLong())
                .as("kept beside the patch")
                .isEqualTo(67108864L);
        assertThat(resources.path("devices").size()).as("kept beside the patch").isEqualTo(10);
        assertThat(spec.path("linux")
                        .path("sysctl")
                        .path("net.ipv4.ping_group_range")
                        .asText())
                .isEqualTo("0 0");
        assertThat(spec.path("hostname").asText()).as("kept beside the patch").isEqualTo("c1");
        assertThat(spec.path("process").path("user").path("uid").asInt(-1)).isZero();
        assertThat(spec.path("process").path("user").path("additionalGids"))
                .isEqualTo(Specs.json("{\"g\":[10]}").get("g"));
    }

    @Test
    void arraysAndScalarsReplace() throws Exception {
        ObjectNode spec = Specs.generate(generator, "c1", withOciSpec("""
                {"process": {"args": ["sh", "-c", "true"], "capabilities": {"bounding": ["CAP_KILL"]}},
                 "linux": {"maskedPaths": ["/proc/kcore"]},
                 "hostname": "web"}
                """), SH_IMAGE, EMPTY_ROOTFS);

        assertThat(strings(spec.path("process").path("args"))).containsExactly("sh", "-c", "true");
        assertThat(strings(spec.path("process").path("capabilities").path("bounding")))
                .containsExactly("CAP_KILL");
        assertThat(spec.path("process").path("capabilities").path("effective"))
                .as("a sibling array stays")
                .hasSize(14);
        assertThat(strings(spec.path("linux").path("maskedPaths"))).containsExactly("/proc/kcore");
        assertThat(spec.path("hostname").asText()).isEqualTo("web");
    }

    @Test
    void nullDeletes() throws Exception {
        ObjectNode spec = Specs.generate(generator, "c1", withOciSpec("""
                {"hostname": null, "process": {"rlimits": null}, "linux": {"readonlyPaths": null}}
                """), SH_IMAGE, EMPTY_ROOTFS);

        assertThat(spec.has("hostname")).isFalse();
        assertThat(spec.path("process").has("rlimits")).isFalse();
        assertThat(spec.path("process").has("args")).isTrue();
        assertThat(spec.path("linux").has("readonlyPaths")).isFalse();
        assertThat(spec.path("linux").has("maskedPaths")).isTrue();
    }

    @Test
    void capabilitiesAddedThroughOciSpecAllowTheirSyscallsAsWithContainerd() throws Exception {
        ObjectNode spec = Specs.generate(generator, "c1", withOciSpec("""
                {"process": {"capabilities": {"bounding": ["CAP_SYS_ADMIN", "CAP_SYS_PTRACE"]}}}
                """), SH_IMAGE, EMPTY_ROOTFS);

        assertThat(seccompAllowed(spec))
                .contains("mount", "unshare", "setns", "clone3", "process_vm_readv")
                .as("CAP_SYS_CHROOT is no longer in the bounding set")
                .doesNotContain("chroot");
        assertThat(spec.path("linux").path("seccomp").toString()).doesNotContain("SCMP_CMP_MASKED_EQ");
    }

    @Test
    void theSeccompProfileIsMergedReplacedOrDeletedLikeAnyOtherKey() throws Exception {
        ObjectNode merged = Specs.generate(generator, "c1", withOciSpec("""
                {"linux": {"seccomp": {"defaultAction": "SCMP_ACT_LOG"}}}
                """), SH_IMAGE, EMPTY_ROOTFS);
        ObjectNode replaced = Specs.generate(generator, "c1", withOciSpec("""
                {"linux": {"seccomp": {"syscalls": [{"names": ["mount"], "action": "SCMP_ACT_ALLOW"}]}}}
                """), SH_IMAGE, EMPTY_ROOTFS);
        ObjectNode deleted = Specs.generate(
                generator, "c1", withOciSpec("{\"linux\": {\"seccomp\": null}}"), SH_IMAGE, EMPTY_ROOTFS);

        assertThat(merged.path("linux").path("seccomp").path("defaultAction").asText())
                .isEqualTo("SCMP_ACT_LOG");
        assertThat(seccompAllowed(merged)).as("kept beside the patch").contains("read");
        assertThat(replaced.path("linux").path("seccomp").path("syscalls"))
                .isEqualTo(Specs.json("{\"s\": [{\"names\": [\"mount\"], \"action\": \"SCMP_ACT_ALLOW\"}]}")
                        .get("s"));
        assertThat(deleted.path("linux").has("seccomp")).isFalse();
    }

    @Test
    void theContainersOciSpecIsNotChanged() throws Exception {
        ContainerSpec container = withOciSpec("{\"linux\": {\"resources\": {\"pids\": {\"limit\": 5}}}}");
        Specs.generate(generator, "c1", container, SH_IMAGE, EMPTY_ROOTFS);
        assertThat(container.ociSpec())
                .isEqualTo(Specs.map("{\"linux\": {\"resources\": {\"pids\": {\"limit\": 5}}}}"));
    }

    /** The syscalls the spec's seccomp profile allows without a condition on their arguments. */
    static List<String> seccompAllowed(JsonNode spec) {
        List<String> allowed = new ArrayList<>();
        for (JsonNode rule : spec.path("linux").path("seccomp").path("syscalls")) {
            if (rule.path("action").asText().equals("SCMP_ACT_ALLOW") && !rule.has("args")) {
                allowed.addAll(strings(rule.path("names")));
            }
        }
        return allowed;
    }
}
