package dev.stevedore.agent.spec;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.List;

import org.junit.jupiter.api.Test;

class CgroupsPathTest {

    @Test
    void formsForCgroupfsAndSystemd() {
        assertThat(CgroupsPath.stevedore().forContainer("c1")).isEqualTo("stevedore/c1");
        assertThat(CgroupsPath.cgroupfs("/stevedore").forContainer("c1")).isEqualTo("/stevedore/c1");
        assertThat(CgroupsPath.systemd("stevedore.slice", "stevedore").forContainer("c1"))
                .isEqualTo("stevedore.slice:stevedore:c1");
    }

    @Test
    void parentsThatClimbOrAreEmptyAreRefused() {
        for (String parent : List.of("", "/", "../x", "a/../b", "a/./b", "a//b", "a/", "a b")) {
            assertThatThrownBy(() -> CgroupsPath.cgroupfs(parent)).as(parent).isInstanceOf(IllegalArgumentException.class);
        }
        assertThatThrownBy(() -> CgroupsPath.systemd("system", "x")).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> CgroupsPath.systemd("system.slice", "a:b")).isInstanceOf(IllegalArgumentException.class);
    }
}
