package dev.stevedore.agent.tasks;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class RuntimesTest {
    @TempDir
    Path dir;

    @Test
    void aHybridHostIsOneWhoseCgroup2MountHasControllers() throws IOException {
        Path hybrid = cgroupRoot("hybrid", true, "hugetlb\n");
        Path drained = cgroupRoot("drained", true, "\n");
        Path v2 = Files.createDirectories(dir.resolve("v2"));
        Files.writeString(v2.resolve("cgroup.controllers"), "cpu memory pids\n");
        Path v1Only = Files.createDirectories(dir.resolve("v1/memory"));

        assertThat(Runtimes.hybridWithV2Controllers(hybrid)).isTrue();
        assertThat(Runtimes.hybridWithV2Controllers(drained)).isFalse();
        assertThat(Runtimes.hybridWithV2Controllers(v2)).isFalse();
        assertThat(Runtimes.hybridWithV2Controllers(v1Only.getParent())).isFalse();
    }

    @Test
    void theWrapperRunsCrunInAMountNamespaceWithoutTheCgroup2Mount() {
        String script = Runtimes.wrapperScript(Path.of("/usr/bin/crun"));
        assertThat(script)
                .startsWith("#!/bin/sh\n")
                .contains("exec /usr/bin/unshare --mount --propagation private /bin/sh -c "
                        + "'umount /sys/fs/cgroup/unified 2>/dev/null; exec /usr/bin/crun \"$@\"' crun \"$@\"");
    }

    /** An agent (re)started on a full disk must not fail writing what is already there. */
    @Test
    void theWrapperIsWrittenOnlyWhenItDiffers() throws IOException {
        Path wrapper = dir.resolve("bin/crun");
        Runtimes.writeWrapper(wrapper);
        Object written = Files.getAttribute(wrapper, "unix:ino");

        Runtimes.writeWrapper(wrapper);
        assertThat(Files.getAttribute(wrapper, "unix:ino")).isEqualTo(written);

        Files.writeString(wrapper, "#!/bin/sh\nexit 1\n");
        Runtimes.writeWrapper(wrapper);
        assertThat(Files.readString(wrapper)).isEqualTo(Runtimes.wrapperScript(Path.of("/usr/bin/crun")));
        assertThat(Files.isExecutable(wrapper)).isTrue();
    }

    @Test
    void everyCrunCallGoesThroughTheWrapperOnAHybridHostAndStraightToCrunElsewhere() throws Exception {
        Runtimes runtimes = Runtimes.prepare(dir.resolve("root"));
        Path wrapper = dir.resolve("root/bin/crun");
        assertThat(binary(runtimes, "runc")).isEqualTo(Runtimes.RUNC);
        assertThat(binary(runtimes, null)).isEqualTo(Runtimes.RUNC);
        if (Files.isExecutable(Runtimes.CRUN) && Runtimes.hybridWithV2Controllers(Runtimes.CGROUP_ROOT)) {
            assertThat(binary(runtimes, "crun")).isEqualTo(wrapper);
            assertThat(wrapper).isExecutable();
            // The wrapper really reaches crun, and crun in there sees no cgroup2 mount (the host still has it).
            ConmonRuntime.Result version = ConmonRuntime.exec(List.of(wrapper.toString(), "--version"));
            assertThat(version.code()).as(version.err()).isZero();
            assertThat(version.out()).startsWith("crun version");
            ConmonRuntime.Result mounts = ConmonRuntime.exec(List.of(
                    "/usr/bin/unshare",
                    "--mount",
                    "--propagation",
                    "private",
                    "/bin/sh",
                    "-c",
                    "umount /sys/fs/cgroup/unified 2>/dev/null; cat /proc/self/mounts"));
            assertThat(mounts.out()).doesNotContain(" /sys/fs/cgroup/unified ");
            assertThat(Files.readString(Path.of("/proc/self/mounts"))).contains(" /sys/fs/cgroup/unified ");
        } else {
            assertThat(binary(runtimes, "crun")).isEqualTo(Runtimes.CRUN);
            assertThat(wrapper).doesNotExist();
        }
    }

    @Test
    void theExecutablesGivenAreUsedAsTheyAre() throws IOException {
        Path runc = dir.resolve("my-runc");
        Path crun = dir.resolve("my-crun");
        Runtimes runtimes = Runtimes.prepare(
                dir.resolve("root"), Map.of("runc", runc, "crun", crun), dir.resolve("state"), ConmonCgroup.NONE);
        assertThat(binary(runtimes, "runc")).isEqualTo(runc);
        assertThat(binary(runtimes, "crun")).isEqualTo(crun);
        assertThat(dir.resolve("root/bin/crun"))
                .as("no wrapper for a crun given")
                .doesNotExist();
        assertThatThrownBy(() -> Runtimes.prepare(
                        dir.resolve("root"), Map.of("youki", runc), dir.resolve("state"), ConmonCgroup.NONE))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("youki");
    }

    @Test
    void eachRuntimeKeepsItsStateInTheStateDirectoryClosedToOtherUsers() throws IOException {
        Path state = dir.resolve("state");
        Runtimes runtimes = Runtimes.prepare(dir.resolve("root"), Map.of(), state, ConmonCgroup.NONE);

        assertThat(((ConmonRuntime) runtimes.named("runc")).runtimeCommand("list"))
                .containsExactly(
                        Runtimes.RUNC.toString(),
                        "--root",
                        state.resolve("runc").toString(),
                        "list");
        assertThat(((ConmonRuntime) runtimes.named("crun")).runtimeCommand("kill", "x", "9"))
                .containsSubsequence("--root", state.resolve("crun").toString(), "kill", "x", "9");
        assertThat(Files.getPosixFilePermissions(state)).isEqualTo(PosixFilePermissions.fromString("rwx--x--x"));
        assertThat(Files.getPosixFilePermissions(state.resolve("runc")))
                .isEqualTo(PosixFilePermissions.fromString("rwx------"));
        assertThat(Files.getPosixFilePermissions(state.resolve("crun")))
                .isEqualTo(PosixFilePermissions.fromString("rwx------"));
    }

    private static Path binary(Runtimes runtimes, String name) {
        return ((ConmonRuntime) runtimes.named(name)).binary();
    }

    private Path cgroupRoot(String name, boolean v1, String v2Controllers) throws IOException {
        Path root = Files.createDirectories(dir.resolve(name));
        if (v1) {
            Files.createDirectories(root.resolve("memory"));
        }
        Files.createDirectories(root.resolve("unified"));
        Files.writeString(root.resolve("unified/cgroup.controllers"), v2Controllers);
        return root;
    }
}
