package dev.stevedore.testing;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

class ControlPlaneExtensionTest {
    private static final String DNS_LABEL = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";

    @Test
    void namespaceNamesAreDnsLabelsNamedAfterTheTest() {
        assertThat(ControlPlaneExtension.namespaceName("tokenBoundToPod")).matches("token-bound-to-pod-[a-z0-9]+");
        assertThat(ControlPlaneExtension.namespaceName("x".repeat(200)))
                .matches(DNS_LABEL)
                .hasSizeLessThanOrEqualTo(63);
        assertThat(ControlPlaneExtension.namespaceName("__")).matches("test-[a-z0-9]+");
    }

    @Test
    void namespaceNamesOfRepeatedRunsDiffer() {
        assertThat(ControlPlaneExtension.namespaceName("same"))
                .isNotEqualTo(ControlPlaneExtension.namespaceName("same"));
    }
}
