package dev.stevedore.agent;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.stevedore.agent.testing.Containers;
import dev.stevedore.agent.testing.LocalRegistry;
import dev.stevedore.agent.testing.ParityImages;
import dev.stevedore.agent.testing.RuntimeSpecSchema;
import dev.stevedore.agent.testing.Tasks;
import dev.stevedore.api.v1alpha1.Container;
import dev.stevedore.api.v1alpha1.ContainerStatus;
import dev.stevedore.api.v1alpha1.RuntimeNode;
import dev.stevedore.api.v1alpha1.Task;
import dev.stevedore.api.v1alpha1.TaskStatus;
import dev.stevedore.testing.ContainerdDaemon;
import dev.stevedore.testing.ControlPlane;
import dev.stevedore.testing.Crds;
import dev.stevedore.testing.TestNamespace;
import dev.stevedore.testing.WithControlPlane;
import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Stevedore beside Debian's containerd, on the same images from the same registry: the config.json the agent
 * generates equals what {@code ctr containers create} makes of the same image and overrides (but for the intended
 * differences of docs/spec-parity.md), and a task prints what {@code ctr run} prints. The images are the shapes
 * users run (named users with supplementary groups, every form of User, a missing working directory, a merged
 * /usr, zstd layers, a /tmp of mode 1777 only implied by an upper layer).
 */
@WithControlPlane
class ContainerdParityIT {
    private static final String NODE = "parity-it-node";
    private static final String CTR_NAMESPACE = "parity";
    private static final Duration TIMEOUT = Duration.ofSeconds(120);
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final ObjectMapper SORTED = JsonMapper.builder()
            .enable(SerializationFeature.ORDER_MAP_ENTRIES_BY_KEYS)
            .enable(SerializationFeature.INDENT_OUTPUT)
            .build();
    /** What a task shows of itself: who it is, where, with which environment, limits and file system. */
    private static final String PROBE = String.join(
            "; ",
            "id",
            "echo HOME=$HOME",
            "pwd",
            "env | sort",
            "stat -c '%A %u:%g %n' / /tmp /run /dev /dev/shm /home 2>&1",
            "ulimit -n",
            "grep -E '^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs|Groups|Seccomp|Seccomp_filters):' /proc/self/status",
            "cut -d' ' -f2,3 /proc/self/mounts | sort",
            "cat /tmp/marker 2>/dev/null || true");

    private static final Pattern SPEC_PROCESS = Pattern.compile("(?m)^process: \\{");
    /** containerd's default capabilities, in its order. */
    private static final List<String> DEFAULT_CAPS = List.of(
            "CAP_CHOWN",
            "CAP_DAC_OVERRIDE",
            "CAP_FSETID",
            "CAP_FOWNER",
            "CAP_MKNOD",
            "CAP_NET_RAW",
            "CAP_SETGID",
            "CAP_SETUID",
            "CAP_SETFCAP",
            "CAP_SETPCAP",
            "CAP_NET_BIND_SERVICE",
            "CAP_SYS_CHROOT",
            "CAP_KILL",
            "CAP_AUDIT_WRITE");
    /** What ctr's --cap-add CAP_SYS_PTRACE --cap-add CAP_SYS_ADMIN makes of them. */
    private static final List<String> CAP_ADD = Stream.concat(
                    DEFAULT_CAPS.stream(), Stream.of("CAP_SYS_PTRACE", "CAP_SYS_ADMIN"))
            .toList();
    /** What ctr's --cap-drop CAP_SYS_CHROOT makes of them. */
    private static final List<String> CAP_DROP =
            DEFAULT_CAPS.stream().filter(cap -> !cap.equals("CAP_SYS_CHROOT")).toList();

    @TempDir
    static Path tmp;

    private static ControlPlane controlPlane;
    private static LocalRegistry registry;
    private static ContainerdDaemon containerd;
    private static NodeAgent.Running agent;
    private static Path root;
    private static final Map<String, String> IMAGES = new LinkedHashMap<>();

    /** One comparison: an image, the Container's overrides (YAML under spec) and the same as ctr flags. */
    private record Case(String name, String image, String containerSpec, List<String> ctrFlags, List<String> args) {}

    @BeforeAll
    static void start(ControlPlane cp) throws Exception {
        controlPlane = cp;
        Crds.installStevedore(cp.adminClient());
        registry = LocalRegistry.start();
        ParityImages images = ParityImages.build(tmp.resolve("images"));
        for (String tag : List.of(
                ParityImages.BASE,
                ParityImages.USERS,
                ParityImages.USER_NAME,
                ParityImages.USER_UID_GID,
                ParityImages.USER_NAME_GROUP,
                ParityImages.USER_UID,
                ParityImages.MISSING_WORKDIR,
                ParityImages.MERGED_USR,
                ParityImages.IMPLIED_TMP,
                ParityImages.ENV_WITHOUT_PATH)) {
            IMAGES.put(tag, push(images, tag, false));
        }
        IMAGES.put("zstd", push(images, ParityImages.USER_NAME, true).replace(ParityImages.USER_NAME, "zstd"));
        containerd = ContainerdDaemon.start(tmp.resolve("containerd"), tmp.resolve("containerd.log"));
        for (String image : IMAGES.values()) {
            ctr("images", "pull", "--plain-http", image);
        }
        root = tmp.resolve("root");
        agent = NodeAgent.start(
                cp.adminClient(), NodeAgent.Settings.of(NODE, root).withHeartbeatInterval(Duration.ofSeconds(5)));
    }

    private static String push(ParityImages images, String tag, boolean zstd) {
        String reference = registry.host() + "/parity/" + (zstd ? "zstd" : tag) + ":1";
        images.push(tag, reference, zstd);
        return zstd ? reference.replace("/zstd:", "/" + ParityImages.USER_NAME + ":") : reference;
    }

    @AfterAll
    static void stop() {
        try {
            if (agent != null) {
                agent.close();
            }
            if (containerd != null) {
                containerd.close();
            }
        } finally {
            if (registry != null) {
                registry.close();
            }
            controlPlane
                    .adminClient()
                    .resources(RuntimeNode.class)
                    .withName(NODE)
                    .delete();
        }
    }

    @Test
    void theSpecEqualsContainerdsButForTheWrittenDifferences(TestNamespace ns) throws Exception {
        ns.privileged(); // the capability cases go beyond baseline, as ctr's do
        List<Case> cases = List.of(
                new Case("defaults", ParityImages.BASE, "", List.of(), List.of()),
                new Case(
                        "overrides",
                        ParityImages.BASE,
                        """
                        process:
                          args: [sh, -c, 'echo hi']
                          env: [{name: FOO, value: bar}, {name: PATH, value: /bin:/usr/bin}]
                          workingDir: /tmp
                        """,
                        List.of("--env", "FOO=bar", "--env", "PATH=/bin:/usr/bin", "--cwd", "/tmp"),
                        List.of("sh", "-c", "echo hi")),
                new Case("root-in-groups", ParityImages.USERS, "", List.of(), List.of()),
                new Case("user-name", ParityImages.USER_NAME, "", List.of(), List.of()),
                new Case(
                        "user-name-native",
                        ParityImages.USER_NAME,
                        "snapshotter: native",
                        List.of("--snapshotter", "native"),
                        List.of()),
                new Case("user-uid-gid", ParityImages.USER_UID_GID, "", List.of(), List.of()),
                new Case("user-name-group", ParityImages.USER_NAME_GROUP, "", List.of(), List.of()),
                new Case("user-uid", ParityImages.USER_UID, "", List.of(), List.of()),
                new Case("env-without-path", ParityImages.ENV_WITHOUT_PATH, "", List.of(), List.of()),
                new Case("merged-usr", ParityImages.MERGED_USR, "", List.of(), List.of()),
                new Case(
                        "memory",
                        ParityImages.BASE,
                        "resources: {memory: 64Mi}",
                        List.of("--memory-limit", "67108864"),
                        List.of()),
                // ctr run's --cpu-shares defaults to 1024 (cgroup v1's own default); 0 leaves it unset as asked.
                new Case(
                        "cpu",
                        ParityImages.BASE,
                        "resources: {cpu: 500m}",
                        List.of("--cpus", "0.5", "--cpu-shares", "0"),
                        List.of()),
                new Case(
                        "read-only",
                        ParityImages.BASE,
                        "ociSpec: {root: {readonly: true}}",
                        List.of("--read-only"),
                        List.of()),
                // The seccomp profile follows the capabilities: CAP_SYS_ADMIN and CAP_SYS_PTRACE add syscalls (in
                // the order of the bounding set) and take away clone's condition; without CAP_SYS_CHROOT, no chroot.
                new Case(
                        "cap-add",
                        ParityImages.BASE,
                        capabilities(CAP_ADD),
                        List.of("--cap-add", "CAP_SYS_PTRACE", "--cap-add", "CAP_SYS_ADMIN"),
                        List.of()),
                new Case(
                        "cap-drop",
                        ParityImages.BASE,
                        capabilities(CAP_DROP),
                        List.of("--cap-drop", "CAP_SYS_CHROOT"),
                        List.of()));
        for (Case c : cases) {
            Containers.create(ns, c.name(), IMAGES.get(c.image()), NODE, c.containerSpec());
        }
        for (Case c : cases) {
            ObjectNode ours = stevedoreSpec(ns, c.name());
            RuntimeSpecSchema.assertValid(ours);
            ObjectNode theirs = containerdSpec(c);
            assertThat(canonical(withoutIntendedDifferences(ours)))
                    .as("case %s: Stevedore's spec against containerd's (expected)", c.name())
                    .isEqualTo(canonical(withoutIntendedDifferences(theirs)));
        }
    }

    @Test
    void tasksPrintWhatCtrRunPrints(TestNamespace ns) throws Exception {
        ns.privileged();
        List<Case> cases = List.of(
                new Case("run-user-name", ParityImages.USER_NAME, "", List.of(), List.of()),
                new Case(
                        "run-user-name-native",
                        ParityImages.USER_NAME,
                        "snapshotter: native",
                        List.of("--snapshotter", "native"),
                        List.of()),
                new Case("run-root-in-groups", ParityImages.USERS, "", List.of(), List.of()),
                new Case("run-user-uid-gid", ParityImages.USER_UID_GID, "", List.of(), List.of()),
                new Case("run-user-name-group", ParityImages.USER_NAME_GROUP, "", List.of(), List.of()),
                new Case("run-user-uid", ParityImages.USER_UID, "", List.of(), List.of()),
                new Case("run-missing-workdir", ParityImages.MISSING_WORKDIR, "", List.of(), List.of()),
                new Case("run-merged-usr", ParityImages.MERGED_USR, "", List.of(), List.of()),
                new Case("run-zstd", "zstd", "", List.of(), List.of()),
                new Case("run-implied-tmp", ParityImages.IMPLIED_TMP, "", List.of(), List.of()),
                new Case(
                        "run-overrides",
                        ParityImages.USERS,
                        "process: {env: [{name: FOO, value: bar}], workingDir: /home}",
                        List.of("--env", "FOO=bar", "--cwd", "/home"),
                        List.of()),
                new Case(
                        "run-cap-add",
                        ParityImages.BASE,
                        capabilities(CAP_ADD),
                        List.of("--cap-add", "CAP_SYS_PTRACE", "--cap-add", "CAP_SYS_ADMIN"),
                        List.of()));
        for (Case c : cases) {
            // The probe goes into spec.process (not into an ociSpec's process).
            String spec = SPEC_PROCESS.matcher(c.containerSpec()).find()
                    ? c.containerSpec()
                    : c.containerSpec() + "\nprocess: {}";
            Containers.create(
                    ns,
                    c.name(),
                    IMAGES.get(c.image()),
                    NODE,
                    SPEC_PROCESS
                            .matcher(spec)
                            .replaceFirst(
                                    Matcher.quoteReplacement("process: {args: [sh, -c, " + yamlQuoted(PROBE) + "], ")));
            Tasks.create(ns, c.name(), c.name(), NODE, "");
        }
        for (Case c : cases) {
            Task done = Tasks.await(
                    ns, c.name(), t -> t.getStatus() != null && t.getStatus().phase() == TaskStatus.Phase.Deleted);
            String ours = taskOutput(done);
            String theirs = ctrRun(c);
            assertThat(done.getStatus().exitCode())
                    .as("case %s: %s", c.name(), done.getStatus().message())
                    .isZero();
            assertThat(ours)
                    .as("case %s: the task's output against ctr run's (expected)", c.name())
                    .isEqualTo(theirs);
        }
    }

    /** The spec the agent wrote for the Container, once it is Ready. */
    private static ObjectNode stevedoreSpec(TestNamespace ns, String name) throws IOException {
        Container ready = Containers.awaitCondition(ns, name, ContainerStatus.READY, "True");
        Path file = root.resolve("containers")
                .resolve(ready.getMetadata().getUid())
                .resolve("specs")
                .resolve(ready.getStatus().specDigest().substring("sha256:".length()) + ".json");
        return (ObjectNode) JSON.readTree(file.toFile());
    }

    /**
     * What {@code ctr containers create} writes; for flags only {@code ctr run} has (--cpus), what {@code ctr run -d}
     * writes, its task removed afterwards.
     */
    private static ObjectNode containerdSpec(Case c) throws IOException {
        String id = "spec-" + c.name();
        boolean runOnly = c.ctrFlags().contains("--cpus");
        List<String> create = new ArrayList<>(runOnly ? List.of("run", "-d") : List.of("containers", "create"));
        // --seccomp: containerd's default profile, which the agent puts in every spec.
        create.addAll(List.of("--snapshotter", "overlayfs", "--seccomp"));
        create.addAll(c.ctrFlags());
        // "--": ctr would read the command's own flags (sh -c) as its own (-c is its --config).
        create.addAll(List.of("--", IMAGES.get(c.image()), id));
        create.addAll(c.args());
        ctr(create.toArray(String[]::new));
        try {
            return (ObjectNode) JSON.readTree(ctr("containers", "info", id)).path("Spec");
        } finally {
            if (runOnly) {
                ctr("tasks", "rm", "-f", id);
            }
            ctr("containers", "rm", id);
        }
    }

    /**
     * The differences docs/spec-parity.md lists, taken out of both: the spec version string, the hostname Stevedore
     * gives and ctr does not, the cgroup (set per task in its bundle), and memory+swap beside a memory limit (set as
     * the kubelet sets it).
     */
    private static ObjectNode withoutIntendedDifferences(ObjectNode spec) {
        ObjectNode copy = spec.deepCopy();
        copy.remove(List.of("ociVersion", "hostname"));
        ObjectNode linux = (ObjectNode) copy.path("linux");
        linux.remove("cgroupsPath");
        if (linux.path("resources").path("memory") instanceof ObjectNode memory) {
            memory.remove("swap");
        }
        return copy;
    }

    /** Keys sorted, indented: equal specs print equal, and a difference shows as a line. */
    private static String canonical(ObjectNode spec) throws IOException {
        return SORTED.writeValueAsString(SORTED.treeToValue(spec, Object.class));
    }

    private static String ctrRun(Case c) throws IOException {
        List<String> run = new ArrayList<>(List.of("run", "--rm", "--snapshotter", "overlayfs", "--seccomp"));
        run.addAll(c.ctrFlags());
        run.addAll(List.of("--", IMAGES.get(c.image()), "run-" + c.name(), "sh", "-c", PROBE));
        return ctr(run.toArray(String[]::new));
    }

    /** The task's stdout and stderr as conmon logged them (k8s-file: time, stream, partial flag, text). */
    private static String taskOutput(Task task) throws IOException {
        Path log = root.resolve("tasks").resolve(task.getMetadata().getUid()).resolve("task.log");
        StringBuilder out = new StringBuilder();
        Matcher line =
                Pattern.compile("(?m)^\\S+ (?:stdout|stderr) ([FP]) (.*)$").matcher(Files.readString(log));
        while (line.find()) {
            out.append(line.group(2)).append(line.group(1).equals("F") ? "\n" : "");
        }
        return out.toString();
    }

    private static String ctr(String... args) throws IOException {
        Path out = Files.createTempFile(tmp, "ctr", ".out");
        try {
            Process process = new ProcessBuilder(containerd.ctr(CTR_NAMESPACE, args))
                    .redirectInput(new File("/dev/null"))
                    .redirectErrorStream(true)
                    .redirectOutput(out.toFile())
                    .start();
            if (!process.waitFor(TIMEOUT.toSeconds(), TimeUnit.SECONDS)) {
                process.destroyForcibly();
                throw new AssertionError("ctr " + String.join(" ", args) + " did not finish in " + TIMEOUT);
            }
            String output = Files.readString(out, StandardCharsets.UTF_8);
            if (process.exitValue() != 0) {
                throw new AssertionError(
                        "ctr " + String.join(" ", args) + " failed (" + process.exitValue() + "):\n" + output);
            }
            return output;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        } finally {
            Files.deleteIfExists(out);
        }
    }

    /** A Container's spec with these bounding, effective and permitted capabilities, as ctr sets them. */
    private static String capabilities(List<String> caps) {
        String list = String.join(", ", caps);
        return "ociSpec: {process: {capabilities: {bounding: [%s], effective: [%s], permitted: [%s]}}}"
                .formatted(list, list, list);
    }

    private static String yamlQuoted(String text) {
        return "'" + text.replace("'", "''") + "'";
    }
}
