package dev.stevedore.agent.spec;

import static dev.stevedore.agent.spec.Specs.EMPTY_ROOTFS;
import static dev.stevedore.agent.spec.Specs.SH_IMAGE;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatCode;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.stevedore.agent.testing.SecurityLevelCases;
import dev.stevedore.api.v1alpha1.ContainerSpec;
import io.fabric8.kubernetes.client.utils.Serialization;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.FieldSource;
import org.junit.jupiter.params.provider.ValueSource;

/** The rules of the security levels on the finished spec: each refuses at its level, names the field and the level. */
class SecurityRulesTest {
    private static final String NAMESPACE = "team-a";
    private static final List<SecurityLevelCases.Case> CASES = SecurityLevelCases.CASES;
    private static final List<SecurityLevelCases.Case> RESTRICTED_CASES =
            CASES.stream().filter(c -> c.level().equals("restricted")).toList();

    @TempDir
    Path hostPath;

    @ParameterizedTest
    @FieldSource("CASES")
    void eachRuleRefusesAtItsLevelWithTheFieldAndTheLevel(SecurityLevelCases.Case rule) {
        ContainerSpec container = container(rule.spec(hostPath.toString()));

        assertThatThrownBy(() -> generate(container, SecurityLevel.valueOf(rule.level())))
                .isInstanceOf(SecurityLevelViolationException.class)
                .hasMessageContaining(
                        rule.message(NAMESPACE).replace(SecurityLevelCases.HOST_PATH, hostPath.toString()));
    }

    @ParameterizedTest
    @FieldSource("CASES")
    void privilegedAllowsWhatTheNodeAllows(SecurityLevelCases.Case rule) {
        ContainerSpec container = container(rule.spec(hostPath.toString()));

        assertThatCode(() -> generate(container, SecurityLevel.privileged)).doesNotThrowAnyException();
    }

    @ParameterizedTest
    @FieldSource("RESTRICTED_CASES")
    void restrictedRulesDoNotApplyAtBaseline(SecurityLevelCases.Case rule) throws Exception {
        generate(container(rule.spec(hostPath.toString())), SecurityLevel.baseline);
    }

    @Test
    void theDefaultsAreBaselineAndTheMostRestrictedAllowsIsRestricted() throws Exception {
        generate(container("process: {args: ['true']}"), SecurityLevel.baseline);
        generate(container(SecurityLevelCases.MOST_RESTRICTED_ALLOWS), SecurityLevel.restricted);
    }

    @ParameterizedTest
    @ValueSource(
            strings = {
                "{linux: null}",
                "{process: [1]}",
                "{process: {capabilities: null}}",
                "{root: {path: rootfs}}",
                "{mounts: []}",
                "{linux: {resources: {devices: null}}}",
                "{linux: {seccomp: null}}"
            })
    void anOciSpecKeyOutsideTheAllowedPathsIsRefusedEvenAsNullOrList(String ociSpec) {
        assertThatThrownBy(() -> generate(container("ociSpec: " + ociSpec), SecurityLevel.baseline))
                .isInstanceOf(SecurityLevelViolationException.class)
                .hasMessageContaining(" is set, which the baseline level of namespace \"team-a\" does not allow");
    }

    @Test
    void aStringThatReadsAsTrueIsNotTrue() {
        assertThatThrownBy(() ->
                        generate(container("ociSpec: {process: {noNewPrivileges: 'true'}}"), SecurityLevel.baseline))
                .hasMessageContaining("spec.ociSpec.process.noNewPrivileges is not true");
    }

    @Test
    void theLevelComesFromTheEnforceLabelBaselineWithoutItRestrictedForAnUnknownValue() {
        assertThat(SecurityLevel.enforced(null)).isEqualTo(SecurityLevel.baseline);
        assertThat(SecurityLevel.enforced(Map.of("other", "x"))).isEqualTo(SecurityLevel.baseline);
        assertThat(SecurityLevel.enforced(Map.of(SecurityLevel.ENFORCE_LABEL, "privileged")))
                .isEqualTo(SecurityLevel.privileged);
        assertThat(SecurityLevel.enforced(Map.of(SecurityLevel.ENFORCE_LABEL, "Privileged")))
                .isEqualTo(SecurityLevel.restricted);
        assertThat(SecurityLevel.enforced(Map.of(SecurityLevel.ENFORCE_LABEL, "")))
                .isEqualTo(SecurityLevel.restricted);
    }

    private void generate(ContainerSpec container, SecurityLevel level) throws SpecRejectedException {
        new SpecGenerator(List.of(hostPath))
                .generate("c1", container, SH_IMAGE, EMPTY_ROOTFS, new SecurityLevel.Enforced(NAMESPACE, level));
    }

    private static ContainerSpec container(String spec) {
        return Serialization.unmarshal("image: busybox\n" + spec, ContainerSpec.class);
    }
}
