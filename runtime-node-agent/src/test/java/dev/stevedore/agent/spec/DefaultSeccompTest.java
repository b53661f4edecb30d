package dev.stevedore.agent.spec;

import static dev.stevedore.agent.spec.Specs.json;
import static dev.stevedore.agent.spec.Specs.strings;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class DefaultSeccompTest {
    private static final DefaultSeccomp CONTAINERD = DefaultSeccomp.CONTAINERD;
    private static final String KERNEL = "6.1.0-13-amd64";
    private static final long CLONE_NAMESPACE_FLAGS = 0x7E020000L;

    @Test
    void withTheDefaultCapabilitiesOnAmd64() {
        ObjectNode profile = CONTAINERD.profile(withCaps(DefaultSpec.CAPABILITIES), "amd64", KERNEL);

        assertThat(profile.path("defaultAction").asText()).isEqualTo("SCMP_ACT_ERRNO");
        assertThat(strings(profile.path("architectures")))
                .containsExactly("SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32");
        assertThat(allowed(profile))
                .contains("read", "execve", "arch_prctl", "modify_ldt", "ptrace")
                .as("CAP_SYS_CHROOT is a default capability")
                .contains("chroot")
                .as("what CAP_SYS_ADMIN, CAP_SYS_MODULE, CAP_SYS_BOOT, CAP_SYS_PTRACE would add")
                .doesNotContain("mount", "umount2", "unshare", "setns", "init_module", "reboot", "kcmp")
                .as("another architecture's")
                .doesNotContain("arm_fadvise64_64", "s390_runtime_instr")
                .as("clone only with the argument condition below")
                .doesNotContain("clone");
        assertThat(rulesFor(profile, "clone"))
                .containsExactly(json("{\"names\":[\"clone\"],\"action\":\"SCMP_ACT_ALLOW\",\"args\":[{\"index\":0,"
                        + "\"value\":" + CLONE_NAMESPACE_FLAGS + ",\"op\":\"SCMP_CMP_MASKED_EQ\"}]}"));
        JsonNode last = profile.path("syscalls").get(profile.path("syscalls").size() - 1);
        assertThat(last).isEqualTo(json("{\"names\":[\"clone3\"],\"action\":\"SCMP_ACT_ERRNO\",\"errnoRet\":38}"));
        assertThat(rulesFor(profile, "personality")).hasSize(5);
    }

    @Test
    void capSysAdminAllowsMountAndNamespacesAndDropsTheCloneConditions() {
        List<String> caps = new ArrayList<>(DefaultSpec.CAPABILITIES);
        caps.add("CAP_SYS_ADMIN");

        ObjectNode profile = CONTAINERD.profile(withCaps(caps), "amd64", KERNEL);

        assertThat(allowed(profile)).contains("mount", "umount2", "unshare", "setns", "clone", "clone3");
        assertThat(rulesFor(profile, "clone3"))
                .allSatisfy(rule -> assertThat(rule.path("action").asText()).isEqualTo("SCMP_ACT_ALLOW"));
        assertThat(profile.toString()).doesNotContain("SCMP_CMP_MASKED_EQ", "errnoRet");
    }

    @Test
    void eachCapabilityAddsItsSyscalls() {
        List<String> caps = List.of(
                "CAP_DAC_READ_SEARCH",
                "CAP_SYS_BOOT",
                "CAP_SYS_MODULE",
                "CAP_SYS_PACCT",
                "CAP_SYS_PTRACE",
                "CAP_SYS_RAWIO",
                "CAP_SYS_TIME",
                "CAP_SYS_TTY_CONFIG",
                "CAP_SYS_NICE",
                "CAP_SYSLOG",
                "CAP_BPF",
                "CAP_PERFMON");

        assertThat(allowed(CONTAINERD.profile(withCaps(caps), "amd64", KERNEL)))
                .contains(
                        "open_by_handle_at",
                        "reboot",
                        "init_module",
                        "acct",
                        "kcmp",
                        "process_vm_readv",
                        "iopl",
                        "settimeofday",
                        "vhangup",
                        "mbind",
                        "syslog",
                        "bpf",
                        "perf_event_open")
                .doesNotContain("chroot", "mount");
    }

    @Test
    void capabilityRulesFollowTheOrderOfTheBoundingSetAsContainerdsDo() {
        ObjectNode ptraceFirst = CONTAINERD.profile(withCaps(List.of("CAP_SYS_PTRACE", "CAP_SYSLOG")), "amd64", KERNEL);
        ObjectNode syslogFirst = CONTAINERD.profile(withCaps(List.of("CAP_SYSLOG", "CAP_SYS_PTRACE")), "amd64", KERNEL);

        assertThat(indexOf(ptraceFirst, "kcmp")).isLessThan(indexOf(ptraceFirst, "syslog"));
        assertThat(indexOf(syslogFirst, "kcmp")).isGreaterThan(indexOf(syslogFirst, "syslog"));
    }

    @Test
    void theArchitectureChoosesTheArchesAndTheirSyscalls() {
        ObjectNode defaults = withCaps(DefaultSpec.CAPABILITIES);

        ObjectNode arm64 = CONTAINERD.profile(defaults, "arm64", KERNEL);
        assertThat(strings(arm64.path("architectures"))).containsExactly("SCMP_ARCH_ARM", "SCMP_ARCH_AARCH64");
        assertThat(allowed(arm64)).contains("arm_fadvise64_64", "set_tls").doesNotContain("arch_prctl", "modify_ldt");

        ObjectNode s390x = CONTAINERD.profile(defaults, "s390x", KERNEL);
        assertThat(strings(s390x.path("architectures"))).containsExactly("SCMP_ARCH_S390", "SCMP_ARCH_S390X");
        assertThat(allowed(s390x)).contains("s390_runtime_instr");
        assertThat(rulesFor(s390x, "clone"))
                .as("s390's clone has the flags in its second argument")
                .singleElement()
                .satisfies(rule -> assertThat(
                                rule.path("args").get(0).path("index").asInt())
                        .isEqualTo(1));

        ObjectNode i386 = CONTAINERD.profile(defaults, "386", KERNEL);
        assertThat(i386.has("architectures"))
                .as("containerd lists none for 386")
                .isFalse();
        assertThat(allowed(i386)).contains("modify_ldt").doesNotContain("arch_prctl");
    }

    @Test
    void ptraceAloneNeedsKernel48() {
        ObjectNode defaults = withCaps(DefaultSpec.CAPABILITIES);

        assertThat(allowed(CONTAINERD.profile(defaults, "amd64", "4.8.0"))).contains("ptrace");
        assertThat(allowed(CONTAINERD.profile(defaults, "amd64", "5.0"))).contains("ptrace");
        assertThat(allowed(CONTAINERD.profile(defaults, "amd64", "4.7.10"))).doesNotContain("ptrace");
        assertThat(allowed(CONTAINERD.profile(defaults, "amd64", "3.10.0-1160.el7.x86_64")))
                .doesNotContain("ptrace");
        assertThat(allowed(CONTAINERD.profile(defaults, "amd64", "unknown"))).doesNotContain("ptrace");
        assertThat(allowed(CONTAINERD.profile(withCaps(List.of("CAP_SYS_PTRACE")), "amd64", "4.7")))
                .as("CAP_SYS_PTRACE allows it on any kernel")
                .contains("ptrace");
    }

    @Test
    void aCapabilityListedTwiceAddsItsRulesOnce() {
        List<String> caps = new ArrayList<>();
        for (int i = 0; i < 1000; i++) {
            caps.add("CAP_SYS_ADMIN");
        }

        assertThat(rulesFor(CONTAINERD.profile(withCaps(caps), "amd64", KERNEL), "mount"))
                .hasSize(1);
    }

    @Test
    void aSpecWithoutCapabilitiesGetsTheRulesForNoCapability() {
        ObjectNode profile = CONTAINERD.profile(json("{\"process\":{}}"), "amd64", KERNEL);

        assertThat(allowed(profile)).doesNotContain("chroot", "mount");
        assertThat(rulesFor(profile, "clone3")).hasSize(1);
    }

    @Test
    void profilesShareNoNodes() {
        ObjectNode first = CONTAINERD.profile(withCaps(DefaultSpec.CAPABILITIES), "amd64", KERNEL);
        first.withArrayProperty("syscalls").get(0).withArrayProperty("names").removeAll();

        assertThat(allowed(CONTAINERD.profile(withCaps(DefaultSpec.CAPABILITIES), "amd64", KERNEL)))
                .contains("read");
    }

    @Test
    void rulesWithAnUnknownConditionAreRefused() {
        assertThatThrownBy(
                        () -> DefaultSeccomp.parse(
                                json(
                                        "{\"syscalls\":[{\"names\":[\"mount\"],\"action\":\"SCMP_ACT_ALLOW\",\"caps\":\"CAP_SYS_ADMIN\"}]}")))
                .hasMessageContaining("unknown key caps");
        assertThatThrownBy(() -> DefaultSeccomp.parse(json(
                        "{\"syscalls\":[{\"names\":[\"ptrace\"],\"action\":\"SCMP_ACT_ALLOW\",\"minKernel\":\"4\"}]}")))
                .hasMessageContaining("minKernel 4 is not major.minor");
    }

    private static ObjectNode withCaps(List<String> bounding) {
        ObjectNode spec = json("{}");
        bounding.forEach(spec.withObjectProperty("process")
                .withObjectProperty("capabilities")
                .withArrayProperty("bounding")::add);
        return spec;
    }

    /** The syscalls allowed without a condition on their arguments. */
    private static List<String> allowed(ObjectNode profile) {
        List<String> names = new ArrayList<>();
        for (JsonNode rule : profile.path("syscalls")) {
            if (rule.path("action").asText().equals("SCMP_ACT_ALLOW") && !rule.has("args")) {
                names.addAll(strings(rule.path("names")));
            }
        }
        return names;
    }

    private static List<JsonNode> rulesFor(ObjectNode profile, String syscall) {
        List<JsonNode> rules = new ArrayList<>();
        profile.path("syscalls").forEach(rule -> {
            if (strings(rule.path("names")).contains(syscall)) {
                rules.add(rule);
            }
        });
        return rules;
    }

    private static int indexOf(ObjectNode profile, String syscall) {
        JsonNode syscalls = profile.path("syscalls");
        for (int i = 0; i < syscalls.size(); i++) {
            if (strings(syscalls.get(i).path("names")).contains(syscall)) {
                return i;
            }
        }
        throw new AssertionError(syscall + " has no rule");
    }
}
