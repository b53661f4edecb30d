package dev.stevedore.agent;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.stevedore.agent.snapshots.Mount;
import dev.stevedore.agent.snapshots.OverlayfsSnapshotter;
import dev.stevedore.agent.testing.AgentRoot;
import dev.stevedore.agent.testing.Containers;
import dev.stevedore.agent.testing.LocalRegistry;
import dev.stevedore.agent.testing.TestImages;
import dev.stevedore.api.NodeAgentFinalizer;
import dev.stevedore.api.v1alpha1.Container;
import dev.stevedore.api.v1alpha1.ContainerStatus;
import dev.stevedore.api.v1alpha1.RuntimeNode;
import dev.stevedore.testing.ControlPlane;
import dev.stevedore.testing.Crds;
import dev.stevedore.testing.TestNamespace;
import dev.stevedore.testing.WithControlPlane;
import io.fabric8.kubernetes.api.model.Condition;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveOutputStream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The node agent in this JVM against a real control plane and a real registry on loopback: Containers of its node
 * become Ready with the right rootfs and spec; failures say why; garbage collection takes back what no Container uses.
 */
@WithControlPlane
class NodeAgentIT {
    private static final Duration TIMEOUT = Containers.TIMEOUT;
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    static Path tmp;

    private static LocalRegistry registry;
    private static TestImages images;
    private static Path root;
    private static AgentRoot agentRoot;
    private static NodeAgent.Running agent;
    private static ControlPlane controlPlane;
    private static final String NODE = "agent-it-node";

    @BeforeAll
    static void start(ControlPlane cp) throws Exception {
        controlPlane = cp;
        Crds.installStevedore(cp.adminClient());
        registry = LocalRegistry.start();
        images = TestImages.build(tmp.resolve("images"));
        images.push(TestImages.LAYERED, registry.host() + "/test/layered:1");
        images.push(TestImages.BASE, registry.host() + "/test/base:1", TestImages.Format.DOCKER_V2S2, null);
        images.push(TestImages.MULTI, registry.host() + "/test/multi:1");
        root = tmp.resolve("root");
        agentRoot = new AgentRoot(root);
        agent = NodeAgent.start(
                cp.adminClient(),
                NodeAgent.Settings.of(NODE, root)
                        .withLabels(Map.of("stevedore.dev/test", "agent"))
                        .withHeartbeatInterval(Duration.ofSeconds(5)));
    }

    @AfterAll
    static void stop() {
        // Each step even if start() failed half-way: a registry left running outlives the test JVM.
        if (agent != null) {
            agent.close();
        }
        if (registry != null) {
            registry.close();
        }
        if (controlPlane != null) {
            controlPlane
                    .adminClient()
                    .resources(RuntimeNode.class)
                    .withName(NODE)
                    .delete();
        }
    }

    @Test
    void theAgentRegistersAndHeartbeatsItsRuntimeNode() {
        RuntimeNode node = controlPlane
                .adminClient()
                .resources(RuntimeNode.class)
                .withName(NODE)
                .waitUntilCondition(n -> n != null && n.getStatus() != null, 30, TimeUnit.SECONDS);
        assertThat(node.getStatus().conditions()).anySatisfy(c -> {
            assertThat(c.getType()).isEqualTo("Ready");
            assertThat(c.getStatus()).isEqualTo("True");
        });
        assertThat(node.getStatus().runtimes()).extracting(r -> r.name()).contains("runc", "crun");
        assertThat(node.getStatus().snapshotters()).contains("overlayfs", "native");
        assertThat(node.getStatus().diskFreeBytes()).isPositive();
    }

    @Test
    void aRuntimeNodeDeletedUnderALiveAgentIsBackWithinAHeartbeat() {
        var nodes = controlPlane.adminClient().resources(RuntimeNode.class).withName(NODE);
        RuntimeNode before = nodes.waitUntilCondition(n -> n != null && n.getStatus() != null, 30, TimeUnit.SECONDS);
        nodes.withTimeout(30, TimeUnit.SECONDS).delete();

        // The agent heartbeats every 5 s; two of them are more than enough.
        RuntimeNode back = nodes.waitUntilCondition(
                n -> n != null
                        && !n.getMetadata().getUid().equals(before.getMetadata().getUid())
                        && n.getStatus() != null,
                10,
                TimeUnit.SECONDS);
        assertThat(back.getMetadata().getLabels()).containsEntry("stevedore.dev/test", "agent");
        assertThat(back.getStatus().conditions()).anySatisfy(c -> {
            assertThat(c.getType()).isEqualTo("Ready");
            assertThat(c.getStatus()).isEqualTo("True");
        });
    }

    @Test
    void aContainerBecomesReadyWithTheImagesRootfsAndItsSpec(TestNamespace ns) throws Exception {
        container(ns, "web", registry.host() + "/test/layered:1", """
                process:
                    args: [sh, -c, 'echo hi']
                    env: [{name: GREETING, value: hello}]
                    workingDir: /tmp
                """);
        Container ready = awaitCondition(ns, "web", ContainerStatus.READY, "True");

        assertThat(ready.getStatus().imageDigest()).isEqualTo(images.digest(TestImages.LAYERED));
        assertThat(ready.getStatus().snapshotter()).isEqualTo("overlayfs");
        assertThat(ready.getStatus().specDigest()).startsWith("sha256:");
        assertThat(ready.getStatus().observedGeneration())
                .isEqualTo(ready.getMetadata().getGeneration());

        Path rootfs = mount(ready.getStatus().snapshotKey());
        try {
            assertThat(rootfs.resolve("bin/sh")).exists();
            assertThat(rootfs.resolve(TestImages.ADDED_FILE)).exists();
            assertThat(rootfs.resolve(TestImages.DELETED_FILE)).doesNotExist();
            assertThat(rootfs.resolve(TestImages.HIDDEN_FILE)).doesNotExist();
            assertThat(rootfs.resolve(TestImages.OPAQUE_KEPT_FILE)).hasContent("from the opaque layer");
        } finally {
            umount(rootfs);
        }

        JsonNode spec = JSON.readTree(specFile(ready).toFile());
        assertThat(spec.at("/process/args")).extracting(JsonNode::asText).containsExactly("sh", "-c", "echo hi");
        assertThat(spec.at("/process/env")).extracting(JsonNode::asText).contains("PATH=/bin", "GREETING=hello");
        assertThat(spec.at("/process/cwd").asText()).isEqualTo("/tmp");
        assertThat(spec.at("/root/path").asText()).isEqualTo("rootfs");
    }

    @Test
    void aDockerV2ImageAndAMultiPlatformIndexWork(TestNamespace ns) {
        container(ns, "docker", registry.host() + "/test/base:1", "");
        container(ns, "multi", registry.host() + "/test/multi:1", "snapshotter: native");
        // skopeo converts to Docker v2 schema2 on push, so the digest is the registry's, not the layout's.
        assertThat(awaitCondition(ns, "docker", ContainerStatus.READY, "True")
                        .getStatus()
                        .imageDigest())
                .startsWith("sha256:");
        Container multi = awaitCondition(ns, "multi", ContainerStatus.READY, "True");
        assertThat(multi.getStatus().imageDigest()).isEqualTo(images.digest(TestImages.MULTI));
        assertThat(multi.getStatus().snapshotter()).isEqualTo("native");
    }

    @Test
    void anUnknownManifestSaysSo(TestNamespace ns) {
        container(ns, "missing", registry.host() + "/test/nothing-here:1", "");
        Container failed = awaitCondition(ns, "missing", ContainerStatus.IMAGE_READY, "False");
        assertThat(condition(failed, ContainerStatus.IMAGE_READY).getReason()).isEqualTo("ManifestUnknown");
        assertThat(condition(failed, ContainerStatus.READY).getStatus()).isEqualTo("False");
    }

    @Test
    void changingTheImageRederivesRootfsAndSpec(TestNamespace ns) throws Exception {
        container(ns, "app", registry.host() + "/test/layered:1", "");
        Container before = awaitCondition(ns, "app", ContainerStatus.READY, "True");

        // The image and the command change: a new rootfs and a new spec, for the next Task.
        ns.client().resources(Container.class).withName("app").edit(c -> {
            var old = c.getSpec();
            c.setSpec(new dev.stevedore.api.v1alpha1.ContainerSpec(
                    registry.host() + "/test/multi:1",
                    old.imagePullSecrets(),
                    old.runtime(),
                    old.snapshotter(),
                    old.nodeName(),
                    old.nodeSelector(),
                    new dev.stevedore.api.v1alpha1.ContainerSpec.Process(List.of("sleep", "1"), null, null, null),
                    old.resources(),
                    old.mounts(),
                    old.network(),
                    old.ociSpec()));
            return c;
        });

        Container after = awaitObject(
                ns,
                "app",
                c -> c.getStatus() != null
                        && images.digest(TestImages.MULTI).equals(c.getStatus().imageDigest())
                        && Long.valueOf(c.getMetadata().getGeneration())
                                .equals(c.getStatus().observedGeneration()));
        assertThat(after.getStatus().snapshotKey())
                .isNotEqualTo(before.getStatus().snapshotKey());
        assertThat(after.getStatus().specDigest())
                .isNotEqualTo(before.getStatus().specDigest());
        assertThat(snapshotKeys())
                .doesNotContain(before.getStatus().snapshotKey())
                .contains(after.getStatus().snapshotKey());
    }

    @Test
    void twoContainersShareLayersAndReleasingTheLastKeepsTheImageCached(TestNamespace ns) throws Exception {
        // An image with a layer of its own: its blobs and snapshot are this test's alone, so they can be named.
        images.withLayer(TestImages.BASE, "gc", layerOfItsOwn(tmp.resolve("gc-layer.tar")));
        String image = registry.host() + "/test/gc:1";
        images.push("gc", image);
        List<String> ownBlobs = List.of(
                images.digest("gc"),
                images.manifest("gc").path("config").path("digest").asText(),
                images.layerDigests("gc").get(1));
        String ownChainId = AgentRoot.chainIds(images.diffIds("gc")).get(1);

        container(ns, "one", image, "");
        Container one = awaitReadyWithTheFinalizer(ns, "one");
        container(ns, "two", image, "");
        Container two = awaitReadyWithTheFinalizer(ns, "two");
        String oneKey = one.getStatus().snapshotKey();
        String twoKey = two.getStatus().snapshotKey();

        assertThat(twoKey).isNotEqualTo(oneKey);
        assertThat(snapshotKeys()).contains(oneKey, twoKey);
        assertThat(agentRoot.committed(ownChainId))
                .as("the shared layer, unpacked once")
                .hasSize(1);

        // With the finalizer on, the object goes only after the agent released it and collected garbage.
        ns.client().resources(Container.class).withName("one").delete();
        awaitGone(ns, "one");
        assertThat(snapshotKeys()).doesNotContain(oneKey).contains(twoKey);
        assertThat(containerDir(one)).doesNotExist();
        assertThat(agentRoot.committed(ownChainId))
                .as("the layer the other Container uses")
                .hasSize(1);
        assertThat(ownBlobs)
                .allSatisfy(d -> assertThat(agentRoot.hasBlob(d)).as(d).isTrue());
        assertThat(agentRoot.imageRecord(image)).exists();

        ns.client().resources(Container.class).withName("two").delete();
        awaitGone(ns, "two");
        assertThat(snapshotKeys()).doesNotContain(twoKey);
        assertThat(containerDir(two)).doesNotExist();
        // The image is a cache, as kubelet keeps images: it goes only under disk pressure (DiskPressureIT).
        assertThat(agentRoot.committed(ownChainId))
                .as("the layer of the cached image")
                .hasSize(1);
        assertThat(ownBlobs)
                .allSatisfy(d -> assertThat(agentRoot.hasBlob(d)).as(d).isTrue());
        assertThat(agentRoot.imageNames()).contains(image);
        assertThat(agentRoot.mounts())
                .as("root filesystems mounted to read them")
                .isEmpty();
    }

    private static Container awaitReadyWithTheFinalizer(TestNamespace ns, String name) {
        awaitCondition(ns, name, ContainerStatus.READY, "True");
        return awaitObject(ns, name, c -> c.hasFinalizer(NodeAgentFinalizer.NAME));
    }

    private static Path containerDir(Container container) {
        return root.resolve("containers").resolve(container.getMetadata().getUid());
    }

    /** A layer tar with one file of random bytes, which no other image has. */
    private static Path layerOfItsOwn(Path file) throws IOException {
        byte[] content = UUID.randomUUID().toString().getBytes(StandardCharsets.UTF_8);
        try (TarArchiveOutputStream tar = new TarArchiveOutputStream(Files.newOutputStream(file))) {
            TarArchiveEntry entry = new TarArchiveEntry("etc/gc-test");
            entry.setSize(content.length);
            entry.setMode(0644);
            tar.putArchiveEntry(entry);
            tar.write(content);
            tar.closeArchiveEntry();
        }
        return file;
    }

    private static void container(TestNamespace ns, String name, String image, String moreSpec) {
        Containers.create(ns, name, image, NODE, moreSpec);
    }

    private static Container awaitCondition(TestNamespace ns, String name, String type, String status) {
        return Containers.awaitCondition(ns, name, type, status);
    }

    private static Container awaitObject(TestNamespace ns, String name, Predicate<Container> condition) {
        return ns.client()
                .resources(Container.class)
                .withName(name)
                .waitUntilCondition(c -> c != null && condition.test(c), TIMEOUT.toSeconds(), TimeUnit.SECONDS);
    }

    private static void awaitGone(TestNamespace ns, String name) {
        ns.client()
                .resources(Container.class)
                .withName(name)
                .waitUntilCondition(java.util.Objects::isNull, TIMEOUT.toSeconds(), TimeUnit.SECONDS);
    }

    private static Condition condition(Container container, String type) {
        return container.getStatus().conditions().stream()
                .filter(c -> type.equals(c.getType()))
                .findFirst()
                .orElseThrow();
    }

    private static Path specFile(Container container) {
        String hex = container.getStatus().specDigest().substring("sha256:".length());
        return root.resolve("containers")
                .resolve(container.getMetadata().getUid())
                .resolve("specs")
                .resolve(hex + ".json");
    }

    /** Read from outside: a snapshotter opened on the agent's root would empty its tmp/, the agent's work. */
    private static List<String> snapshotKeys() {
        return agentRoot.snapshots().stream().map(AgentRoot.Snapshot::name).toList();
    }

    private static Path mount(String key) throws Exception {
        Optional<List<Mount>> mounts = new OverlayfsSnapshotter(root).mounts(key);
        Mount mount = mounts.orElseThrow().get(0);
        Path target = Files.createTempDirectory(tmp, "rootfs");
        List<String> command = new ArrayList<>(List.of("mount", "-t", mount.type(), mount.source(), target.toString()));
        if (!mount.options().isEmpty()) {
            command.addAll(List.of("-o", String.join(",", mount.options())));
        }
        run(command);
        return target;
    }

    private static void umount(Path target) throws Exception {
        run(List.of("umount", target.toString()));
    }

    /** Runs a command to its end, within a minute; its output goes to a file, read after the wait. */
    private static void run(List<String> command) throws Exception {
        Path output = Files.createTempFile(tmp, "command", ".out");
        Process process = new ProcessBuilder(command)
                .redirectErrorStream(true)
                .redirectOutput(output.toFile())
                .start();
        if (!process.waitFor(60, TimeUnit.SECONDS)) {
            process.destroyForcibly().waitFor();
            throw new AssertionError(command + " did not finish in 60s: " + Files.readString(output));
        }
        assertThat(process.exitValue())
                .as(command + ": " + Files.readString(output))
                .isZero();
    }
}
