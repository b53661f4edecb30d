package dev.stevedore.agent.spec;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assertions.fail;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.stevedore.agent.images.ImageConfig;
import dev.stevedore.api.v1alpha1.ContainerSpec;
import io.fabric8.kubernetes.api.model.Quantity;
import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The generated config.json, run by the real runtimes on a busybox root filesystem: proof that runc and crun
 * accept the spec, not only that it looks right. Needs root and the Debian packages runc, crun and busybox-static
 * (hack/install-prereqs.sh).
 */
class SpecGeneratorIT {
    private static final Path BUSYBOX = Path.of("/bin/busybox");
    private static final ImageConfig IMAGE = new ImageConfig(null, List.of("sh"), null, null, null);
    private static final ContainerSpec.Resources LIMITS =
            new ContainerSpec.Resources(new Quantity("64Mi"), new Quantity("500m"), 64L);

    @TempDir
    Path dir;

    Path bundle;
    Path rootfs;
    /** A cgroup parent of this test's own, removed afterwards: runtimes delete a container's cgroup, not its parent. */
    final String cgroupParent = "stevedore-it-" + randomHex();

    final List<String[]> toDelete = new ArrayList<>();

    @BeforeAll
    static void requirements() throws IOException {
        if (!isRoot()) {
            fail("runc and crun run containers as root here: run the tests as root");
        }
        for (Path tool : List.of(BUSYBOX, Path.of("/usr/sbin/runc"), Path.of("/usr/bin/crun"))) {
            if (!Files.isExecutable(tool) && !onPath(tool.getFileName().toString())) {
                fail(tool.getFileName() + " is missing: run hack/install-prereqs.sh");
            }
        }
    }

    @BeforeEach
    void busyboxBundle() throws IOException {
        bundle = Files.createDirectories(dir.resolve("bundle"));
        rootfs = Files.createDirectories(bundle.resolve("rootfs"));
        Path bin = Files.createDirectories(rootfs.resolve("bin"));
        Files.copy(BUSYBOX, bin.resolve("busybox"), StandardCopyOption.COPY_ATTRIBUTES);
        Files.createSymbolicLink(bin.resolve("sh"), Path.of("busybox"));
    }

    @AfterEach
    void cleanUp() throws Exception {
        for (String[] delete : toDelete) {
            exec(delete);
        }
        removeCgroups(cgroupParent);
    }

    @Test
    void runcRunsTheGeneratedSpec() throws Exception {
        Result result = run(Runtime.RUNC, "it-runc-" + randomHex(), echoOkExit3());

        assertThat(result.stdout()).as(result.stderr()).isEqualTo("ok\n");
        assertThat(result.exitCode()).as(result.stderr()).isEqualTo(3);
    }

    @Test
    void crunRunsTheGeneratedSpec() throws Exception {
        Result result = run(Runtime.CRUN, "it-crun-" + randomHex(), echoOkExit3());

        assertThat(result.stdout()).as(result.stderr()).isEqualTo("ok\n");
        assertThat(result.exitCode()).as(result.stderr()).isEqualTo(3);
    }

    @Test
    void theRuntimeAppliesTheImageUserTheLimitsAndTheBindMount() throws Exception {
        Files.createDirectories(rootfs.resolve("etc"));
        Files.writeString(rootfs.resolve("etc/passwd"), "root:x:0:0::/:/bin/sh\napp:x:1234:2345::/:/bin/sh\n");
        Files.writeString(rootfs.resolve("etc/group"), "app:x:2345:\nwheel:x:10:root,app\n");
        Path shared = Files.createDirectories(dir.resolve("host/shared"));
        Files.writeString(shared.resolve("greeting"), "hello from the host\n");
        String script = String.join(
                "; ",
                "busybox id -u",
                "busybox id -g",
                "busybox id -G",
                "busybox cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || busybox cat /sys/fs/cgroup/memory.max",
                "busybox cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || busybox cat /sys/fs/cgroup/pids.max",
                "busybox cat /shared/greeting");
        ContainerSpec container = Specs.container(
                new ContainerSpec.Process(List.of("sh", "-c", script), null, null, null),
                LIMITS,
                List.of(new ContainerSpec.Mount("bind", shared.toString(), "/shared", List.of("ro"))),
                null);
        ImageConfig image = new ImageConfig(null, List.of("sh"), null, null, "app");
        SpecGenerator generator = new SpecGenerator(List.of(dir.resolve("host")));

        Result result = run(Runtime.RUNC, "it-user-" + randomHex(), generator, container, image);

        assertThat(result.stdout())
                .as(result.stderr())
                .isEqualTo("1234\n2345\n2345 10\n67108864\n64\nhello from the host\n");
        assertThat(result.exitCode()).as(result.stderr()).isZero();
    }

    @Test
    void runcAppliesTheSeccompProfile() throws Exception {
        assertTheSeccompProfileApplies(Runtime.RUNC);
    }

    @Test
    void crunAppliesTheSeccompProfile() throws Exception {
        assertTheSeccompProfileApplies(Runtime.CRUN);
    }

    /**
     * The profile denies unshare without CAP_SYS_ADMIN; the same container without the profile may create a user
     * namespace, which needs no capability: the denial is the profile's.
     */
    private void assertTheSeccompProfileApplies(Runtime runtime) throws Exception {
        String script = "busybox grep '^Seccomp:' /proc/self/status; "
                + "busybox unshare -U true 2>/dev/null && echo unshared || echo denied";
        ContainerSpec.Process process = new ContainerSpec.Process(List.of("sh", "-c", script), null, null, null);

        Result confined = run(runtime, "it-seccomp-" + randomHex(), Specs.container(process, LIMITS, null, null));
        Result unconfined = run(
                runtime,
                "it-unconfined-" + randomHex(),
                Specs.container(process, LIMITS, null, Specs.map("{\"linux\": {\"seccomp\": null}}")));

        assertThat(confined.stdout()).as(confined.stderr()).isEqualTo("Seccomp:\t2\ndenied\n");
        assertThat(unconfined.stdout()).as(unconfined.stderr()).isEqualTo("Seccomp:\t0\nunshared\n");
    }

    private static ContainerSpec echoOkExit3() {
        return Specs.container(
                new ContainerSpec.Process(List.of("sh", "-c", "echo ok; exit 3"), null, null, null),
                LIMITS,
                null,
                null);
    }

    private Result run(Runtime runtime, String id, ContainerSpec container) throws Exception {
        return run(runtime, id, new SpecGenerator(List.of()), container, IMAGE);
    }

    private Result run(Runtime runtime, String id, SpecGenerator generator, ContainerSpec container, ImageConfig image)
            throws Exception {
        ObjectNode spec = Specs.generate(generator, id, container, image, rootfs);
        // As the task's bundle does: a cgroup of its own. And, for this test to read its limits from inside, the
        // cgroup hierarchy read-only (containerd's spec has no such mount, nor does the agent's).
        spec.withObjectProperty("linux").put("cgroupsPath", cgroupParent + "/" + id);
        spec.withArrayProperty("mounts").add(Specs.json("""
                {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
                 "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}"""));
        Files.writeString(
                bundle.resolve("config.json"),
                Specs.MAPPER.writerWithDefaultPrettyPrinter().writeValueAsString(spec));
        Path state = Files.createDirectories(dir.resolve("state"));
        toDelete.add(runtime.command(state, "delete", "-f", id));
        return exec(runtime.command(state, "run", "--bundle", bundle.toString(), id));
    }

    enum Runtime {
        RUNC,
        CRUN;

        String[] command(Path state, String... args) {
            List<String> command = new ArrayList<>();
            if (this == CRUN && hybridCgroupsWithV2Controllers()) {
                // crun 1.8 refuses a hybrid cgroup host whose v2 hierarchy has any controller ("cgroups in hybrid
                // mode not supported, drop all controllers from cgroupv2"). In a mount namespace of its own, without
                // the v2 mount, it sees plain cgroup v1; the host keeps its mounts.
                command.addAll(List.of(
                        "unshare",
                        "--mount",
                        "--propagation",
                        "private",
                        "sh",
                        "-c",
                        "umount /sys/fs/cgroup/unified && exec \"$@\"",
                        "sh"));
            }
            command.addAll(List.of(name().toLowerCase(), "--root", state.toString()));
            command.addAll(List.of(args));
            return command.toArray(String[]::new);
        }
    }

    record Result(int exitCode, String stdout, String stderr) {}

    private Result exec(String... command) throws Exception {
        Path err = Files.createTempFile(dir, "stderr", ".txt");
        Process process = new ProcessBuilder(command)
                .redirectInput(new File("/dev/null"))
                .redirectError(err.toFile())
                .start();
        // The container's stdout is runc's: read it while it runs. stderr goes to a file, so neither pipe fills.
        byte[] out = process.getInputStream().readAllBytes();
        if (!process.waitFor(2, TimeUnit.MINUTES)) {
            process.destroyForcibly();
            fail(String.join(" ", command) + " did not finish in 2 minutes");
        }
        return new Result(process.exitValue(), new String(out, StandardCharsets.UTF_8), Files.readString(err));
    }

    private static boolean hybridCgroupsWithV2Controllers() {
        Path unified = Path.of("/sys/fs/cgroup/unified/cgroup.controllers");
        try {
            return Files.isRegularFile(unified) && !Files.readString(unified).isBlank();
        } catch (IOException e) {
            return false;
        }
    }

    /** Every directory named {@code parent} in the cgroup hierarchies, with what is left below it, children first. */
    private static void removeCgroups(String parent) throws IOException {
        for (String line : Files.readAllLines(Path.of("/proc/self/mountinfo"))) {
            String[] halves = line.split(" - ", 2);
            if (halves.length < 2 || !halves[1].startsWith("cgroup")) {
                continue;
            }
            Path mountPoint = Path.of(halves[0].split(" ")[4]);
            try (Stream<Path> dirs = Files.walk(mountPoint, 6)) {
                List<Path> ours = dirs.filter(Files::isDirectory)
                        .filter(p -> p.toString().contains("/" + parent))
                        .sorted(Comparator.comparingInt(Path::getNameCount).reversed())
                        .toList();
                for (Path cgroup : ours) {
                    Files.deleteIfExists(cgroup); // rmdir: a cgroup's files are not real and go with it
                }
            } catch (IOException | java.io.UncheckedIOException e) {
                // Best effort: a cgroup still busy, removed by someone else during the walk, or a hierarchy we may
                // not walk is not this test's failure.
            }
        }
    }

    private static boolean isRoot() throws IOException {
        for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
            if (line.startsWith("Uid:")) {
                return line.split("\\s+")[2].equals("0"); // the effective uid
            }
        }
        return false;
    }

    private static boolean onPath(String name) {
        for (String entry : System.getenv().getOrDefault("PATH", "").split(":")) {
            if (!entry.isEmpty() && Files.isExecutable(Path.of(entry, name))) {
                return true;
            }
        }
        return false;
    }

    private static String randomHex() {
        byte[] bytes = new byte[4];
        ThreadLocalRandom.current().nextBytes(bytes);
        return HexFormat.of().formatHex(bytes);
    }
}
