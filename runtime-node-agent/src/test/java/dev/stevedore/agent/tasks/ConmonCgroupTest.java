package dev.stevedore.agent.tasks;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Which cgroups conmon joins, on fake cgroup trees (cgroup.procs files stand for each hierarchy's root). */
class ConmonCgroupTest {
    @TempDir
    Path dir;

    @Test
    void onCgroupV1EveryMountedHierarchyIsJoinedOnceAndTheUnifiedOneToo() throws IOException {
        Path root = dir.resolve("v1");
        for (String h : new String[] {"cpu,cpuacct", "memory", "pids", "systemd", "unified", "cpuset"}) {
            Files.createDirectories(root.resolve(h));
            Files.writeString(root.resolve(h).resolve("cgroup.procs"), "");
        }
        Files.createSymbolicLink(root.resolve("cpu"), root.resolve("cpu,cpuacct"));
        Files.createSymbolicLink(root.resolve("cpuacct"), root.resolve("cpu,cpuacct"));
        Files.createDirectories(root.resolve("not-a-hierarchy"));

        assertThat(ConmonCgroup.hierarchies(root))
                .extracting(p -> p.getFileName().toString())
                .containsExactly("cpu,cpuacct", "cpuset", "memory", "pids", "systemd", "unified");
    }

    @Test
    void onCgroupV2TheRootIsTheOneHierarchy() throws IOException {
        Path root = Files.createDirectories(dir.resolve("v2"));
        Files.writeString(root.resolve("cgroup.procs"), "");
        Files.createDirectories(root.resolve("system.slice"));
        Files.writeString(root.resolve("system.slice/cgroup.procs"), "");

        assertThat(ConmonCgroup.hierarchies(root)).containsExactly(root);
    }

    @Test
    void conmonIsWrittenIntoTheCgroupOfEachHierarchyMadeAtPrepare() throws IOException {
        Path root = dir.resolve("hybrid");
        for (String h : new String[] {"memory", "freezer", "unified"}) {
            Files.createDirectories(root.resolve(h));
            Files.writeString(root.resolve(h).resolve("cgroup.procs"), "");
            // What the kernel would show in the new cgroup: an empty cgroup.procs.
            Files.createDirectories(root.resolve(h).resolve("stevedore/conmon"));
            Files.writeString(root.resolve(h).resolve("stevedore/conmon/cgroup.procs"), "");
        }
        ConmonCgroup cgroup = ConmonCgroup.prepare(root, "/stevedore/conmon");
        cgroup.join(4242);

        for (String h : new String[] {"memory", "freezer", "unified"}) {
            assertThat(root.resolve(h).resolve("stevedore/conmon/cgroup.procs")).hasContent("4242");
            assertThat(root.resolve(h).resolve("cgroup.procs")).hasContent("");
        }
    }

    @Test
    void aNewCpusetTakesItsCpusAndMemsFromItsParentsLevelByLevel() throws IOException {
        Path cpuset = Files.createDirectories(dir.resolve("c/cpuset"));
        Files.writeString(cpuset.resolve("cgroup.procs"), "");
        Files.writeString(cpuset.resolve("cpuset.cpus"), "0-3\n");
        Files.writeString(cpuset.resolve("cpuset.mems"), "0\n");
        for (String level : new String[] {"stevedore", "stevedore/conmon"}) {
            Files.createDirectories(cpuset.resolve(level));
            Files.writeString(cpuset.resolve(level).resolve("cpuset.cpus"), "\n");
            Files.writeString(cpuset.resolve(level).resolve("cpuset.mems"), "\n");
        }
        Files.writeString(cpuset.resolve("stevedore/cpuset.cpus"), "1-2\n"); // set already (by runc): kept

        ConmonCgroup.prepare(dir.resolve("c"), "/stevedore/conmon");

        assertThat(cpuset.resolve("stevedore/cpuset.cpus")).hasContent("1-2");
        assertThat(cpuset.resolve("stevedore/cpuset.mems")).hasContent("0");
        assertThat(cpuset.resolve("stevedore/conmon/cpuset.cpus")).hasContent("1-2");
        assertThat(cpuset.resolve("stevedore/conmon/cpuset.mems")).hasContent("0");
    }

    @Test
    void thePathMustNameACgroupBelowTheRoot() {
        assertThat(ConmonCgroup.relativePath("/stevedore/conmon")).isEqualTo("stevedore/conmon");
        assertThat(ConmonCgroup.relativePath("/stevedore/conmon/")).isEqualTo("stevedore/conmon");
        for (String bad : new String[] {"stevedore/conmon", "/", "//", "/stevedore/../x", "/a//b", "/./a"}) {
            assertThatThrownBy(() -> ConmonCgroup.relativePath(bad))
                    .as(bad)
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessageStartingWith("--conmon-cgroup " + bad + ": ");
        }
    }

    @Test
    void withoutAPathNothingIsJoined() throws IOException {
        assertThat(ConmonCgroup.NONE.dirs()).isEmpty();
        ConmonCgroup.NONE.join(1);
    }

    @Test
    void aHostWithoutCgroupsRefusesTheFlagAtOnce() throws IOException {
        Path empty = Files.createDirectories(dir.resolve("none"));
        assertThatThrownBy(() -> ConmonCgroup.prepare(empty, "/stevedore/conmon"))
                .hasMessageContaining("--conmon-cgroup /stevedore/conmon: no cgroup hierarchy is mounted");
    }
}
