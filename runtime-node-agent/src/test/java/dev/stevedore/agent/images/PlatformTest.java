package dev.stevedore.agent.images;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

class PlatformTest {

    @Test
    void namesArchitecturesAsGoDoes() {
        assertThat(Platform.goArch("x86_64")).isEqualTo("amd64");
        assertThat(Platform.goArch("amd64")).isEqualTo("amd64");
        assertThat(Platform.goArch("aarch64")).isEqualTo("arm64");
        assertThat(Platform.parse("linux/aarch64")).isEqualTo(new Platform("linux", "arm64"));
    }

    @Test
    void theJvmsPlatformIsLinuxOnAGoArchitecture() {
        Platform current = Platform.current();

        assertThat(current.os()).isEqualTo("linux");
        assertThat(current.architecture()).isIn("amd64", "arm64", "ppc64le", "s390x", "riscv64");
    }

    @Test
    void matchesOsAndArchitecture() {
        Platform amd64 = new Platform("linux", "amd64");

        assertThat(amd64.matches("linux", "amd64")).isTrue();
        assertThat(amd64.matches("linux", "x86_64")).isTrue();
        assertThat(amd64.matches("linux", "arm64")).isFalse();
        assertThat(amd64.matches("windows", "amd64")).isFalse();
        assertThat(amd64.matches("linux", null)).isFalse();
    }
}
