package dev.stevedore.agent.tasks;

import static org.assertj.core.api.Assertions.assertThat;

import dev.stevedore.agent.NodeAgent;
import dev.stevedore.agent.fs.MountTable;
import dev.stevedore.agent.fs.PosixFiles;
import dev.stevedore.agent.testing.Containers;
import dev.stevedore.agent.testing.LocalRegistry;
import dev.stevedore.agent.testing.TaskLog;
import dev.stevedore.agent.testing.Tasks;
import dev.stevedore.agent.testing.TestImages;
import dev.stevedore.api.v1alpha1.ContainerStatus;
import dev.stevedore.api.v1alpha1.RuntimeNode;
import dev.stevedore.api.v1alpha1.Task;
import dev.stevedore.api.v1alpha1.TaskSpec;
import dev.stevedore.api.v1alpha1.TaskStatus;
import dev.stevedore.testing.ControlPlane;
import dev.stevedore.testing.Crds;
import dev.stevedore.testing.TestNamespace;
import dev.stevedore.testing.WithControlPlane;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * What other users of the host and a container's own writes can reach on the node, with the real runc: the agent's
 * state is closed to host users (also state an older agent left open), tasks running as non-root users in their
 * container still work, and a symlink a container swaps into an allowed host path after its Container was prepared
 * is never what a later task mounts.
 */
@WithControlPlane
class HostExposureIT {
    private static final String NODE = "host-exposure-it-node";
    private static final String NOBODY = "65534";

    @TempDir
    static Path tmp;

    private static ControlPlane controlPlane;
    private static LocalRegistry registry;
    private static String image;
    private static Path root;
    private static Runtimes runtimes;
    private static NodeAgent.Running agent;
    /** The allowed host path as the node's administrator gave it: a link to the real directory. */
    private static Path allowedLink;

    private static Path allowed;

    @BeforeAll
    static void start(ControlPlane cp) throws Exception {
        controlPlane = cp;
        Crds.installStevedore(cp.adminClient());
        registry = LocalRegistry.start();
        TestImages images = TestImages.build(tmp.resolve("images"));
        image = registry.host() + "/test/busybox:1";
        images.push(TestImages.BASE, image);
        PosixFiles.chmod(tmp, 0755); // so that only the agent's own modes stand between a host user and its root
        root = tmp.resolve("root");
        olderAgentsOpenState(root);
        allowed = Files.createDirectory(tmp.resolve("allowed"));
        allowedLink = Files.createSymbolicLink(tmp.resolve("allowed-link"), allowed);
        runtimes = Runtimes.prepare(tmp.resolve("test-runtimes"));
        agent = NodeAgent.start(
                cp.adminClient(),
                NodeAgent.Settings.of(NODE, root)
                        .withAllowedHostPaths(List.of(allowedLink))
                        .withHeartbeatInterval(Duration.ofSeconds(5)));
    }

    /** What an agent before this change left: everything readable by all. */
    private static void olderAgentsOpenState(Path root) throws IOException {
        for (String dir : List.of("snapshots/overlayfs", "content/blobs", "tasks", "containers")) {
            Files.createDirectories(root.resolve(dir));
        }
        try (Stream<Path> all = Files.walk(root)) {
            for (Path path : all.toList()) {
                PosixFiles.chmod(path, 0755);
            }
        }
    }

    @AfterAll
    static void stop() throws Exception {
        try {
            if (agent != null) {
                agent.close();
            }
        } finally {
            LeftoverTasks.removeUnder(root, runtimes);
            registry.close();
            controlPlane
                    .adminClient()
                    .resources(RuntimeNode.class)
                    .withName(NODE)
                    .delete();
        }
    }

    @Test
    void theStateDirectoriesAreClosedOnStartAlsoWhenAnOlderAgentLeftThemOpen() throws IOException {
        assertThat(mode(root)).as("the root").isEqualTo(0711);
        try (Stream<Path> entries = Files.list(root)) {
            for (Path entry : entries.toList()) {
                assertThat(mode(entry) & 077).as(entry.toString()).isZero();
            }
        }
    }

    @Test
    void anUnprivilegedHostUserCannotReachARunningTasksFiles(TestNamespace ns) throws Exception {
        container(ns, "sleeper", "process: {args: [sleep, '3600']}");
        Task task = Tasks.create(ns, "sleeper-1", "sleeper", NODE, "");
        Tasks.awaitPhase(ns, "sleeper-1", TaskStatus.Phase.Running);
        Path bundle = root.resolve("tasks").resolve(task.getMetadata().getUid()).resolve("bundle");
        Path layerFile;
        try (Stream<Path> files = Files.walk(root.resolve("snapshots/overlayfs"))) {
            layerFile =
                    files.filter(p -> p.endsWith("fs/bin/busybox")).findFirst().orElseThrow();
        }
        Path blob;
        try (Stream<Path> blobs = Files.list(root.resolve("content/blobs/sha256"))) {
            blob = blobs.findFirst().orElseThrow();
        }
        assertThat(bundle.resolve("rootfs/bin/busybox"))
                .as("the task's rootfs, as root sees it")
                .exists();
        assertThat(asNobody("stat", tmp.toString()).exit())
                .as("the test's directory, above the agent's root, is open to nobody")
                .isZero();

        List<Path> beyondReach = List.of(
                bundle.resolve("rootfs/bin/busybox"),
                bundle.resolve("rootfs"),
                bundle.resolve("config.json"),
                layerFile,
                blob);
        for (Path path : beyondReach) {
            Result stat = asNobody("stat", path.toString());
            assertThat(stat.exit())
                    .as("stat %s as nobody: %s", path, stat.output())
                    .isNotZero();
            assertThat(stat.output()).contains("Permission denied");
        }
        // The root is 0711, as containerd's: what is in it can be named, but neither it nor its entries listed.
        for (String dir : List.of("", "snapshots", "tasks", "content", "containers")) {
            Result list = asNobody("ls", root.resolve(dir).toString());
            assertThat(list.exit())
                    .as("ls %s as nobody: %s", dir, list.output())
                    .isNotZero();
            assertThat(list.output()).contains("Permission denied");
        }

        Tasks.setDesired(ns, "sleeper-1", TaskSpec.DesiredState.Stopped);
        Tasks.awaitPhase(ns, "sleeper-1", TaskStatus.Phase.Deleted);
    }

    /** overlayfs checks the layers below with the mounter's (root's) credentials, so closed directories cost nothing. */
    @Test
    void aTaskRunningAsANonRootUserReadsItsImageAndWritesItsRootfs(TestNamespace ns) throws Exception {
        container(ns, "nobody", """
                process:
                  args: [sh, -c, 'id -u; cat /etc/passwd > /dev/null && echo written > /tmp/w && cat /tmp/w']
                  user: {uid: 65534, gid: 65534}
                """);
        Task task = Tasks.create(ns, "nobody-1", "nobody", NODE, "");
        Task done = Tasks.awaitPhase(ns, "nobody-1", TaskStatus.Phase.Deleted);

        assertThat(done.getStatus().reason()).as(done.getStatus().message()).isEqualTo("Completed");
        assertThat(TaskLog.read(log(task)).lines())
                .extracting(TaskLog.Line::text)
                .containsExactly(NOBODY, "written");
        LeftoverTasks.assertNoneLeft(root, runtimes, task.getMetadata().getUid());
    }

    /**
     * The Container is prepared while its bind source is a directory; then what the container could do through a
     * writable allowed path happens: the directory becomes a symlink to /. A Task started after that fails, saying
     * why, and mounts nothing; one started before the swap saw the directory, through the administrator's link.
     */
    @Test
    void aSymlinkSwappedIntoAnAllowedPathAfterThePrepareIsNotMounted(TestNamespace ns) throws Exception {
        ns.privileged(); // host paths are for privileged namespaces only
        Path data = Files.createDirectory(allowed.resolve("data"));
        Files.writeString(data.resolve("marker"), "host data\n");
        container(ns, "binder", """
                process: {args: [sh, -c, 'cat /data/marker; ls /data']}
                mounts: [{source: %s/data, destination: /data, options: [rbind, ro]}]
                """.formatted(allowedLink));

        Task before = Tasks.create(ns, "binder-1", "binder", NODE, "");
        Task seen = Tasks.awaitPhase(ns, "binder-1", TaskStatus.Phase.Deleted);
        assertThat(seen.getStatus().reason()).as(seen.getStatus().message()).isEqualTo("Completed");
        assertThat(TaskLog.read(log(before)).lines())
                .extracting(TaskLog.Line::text)
                .containsExactly("host data", "marker");
        LeftoverTasks.assertNoneLeft(root, runtimes, before.getMetadata().getUid());

        Files.move(data, allowed.resolve("data-before"));
        Files.createSymbolicLink(data, Path.of("/"));
        Task after = Tasks.create(ns, "binder-2", "binder", NODE, "");
        Task refused = Tasks.awaitPhase(ns, "binder-2", TaskStatus.Phase.Deleted);

        assertThat(refused.getStatus().reason()).isEqualTo("StartFailed");
        assertThat(refused.getStatus().message())
                .contains("bind mount source " + data)
                .contains("has a symbolic link in it")
                .contains("not mounted");
        assertThat(log(after))
                .satisfiesAnyOf(
                        log -> assertThat(log).doesNotExist(),
                        log -> assertThat(Files.readString(log)).doesNotContain("bin"));
        LeftoverTasks.assertNoneLeft(root, runtimes, after.getMetadata().getUid());
        assertThat(MountTable.under(root)).as("mounts under the agent's root").isEmpty();
    }

    private record Result(int exit, String output) {}

    private static Result asNobody(String... command) throws Exception {
        List<String> args =
                new ArrayList<>(List.of("setpriv", "--reuid=" + NOBODY, "--regid=" + NOBODY, "--clear-groups", "--"));
        args.addAll(List.of(command));
        Process process = new ProcessBuilder(args).redirectErrorStream(true).start();
        String output = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(process.waitFor(30, TimeUnit.SECONDS)).isTrue();
        return new Result(process.exitValue(), output);
    }

    private static int mode(Path path) throws IOException {
        return (int) Files.getAttribute(path, "unix:mode", java.nio.file.LinkOption.NOFOLLOW_LINKS) & 07777;
    }

    private static void container(TestNamespace ns, String name, String moreSpec) {
        Containers.create(ns, name, image, NODE, moreSpec);
        Containers.awaitCondition(ns, name, ContainerStatus.READY, "True");
    }

    private static Path log(Task task) {
        return root.resolve("tasks").resolve(task.getMetadata().getUid()).resolve("task.log");
    }
}
