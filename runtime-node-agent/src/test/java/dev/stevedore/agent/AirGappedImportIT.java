package dev.stevedore.agent;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.stevedore.agent.testing.AgentProcess;
import dev.stevedore.agent.testing.AgentRoot;
import dev.stevedore.agent.testing.Containers;
import dev.stevedore.agent.testing.TestImages;
import dev.stevedore.api.v1alpha1.Container;
import dev.stevedore.api.v1alpha1.ContainerStatus;
import dev.stevedore.api.v1alpha1.RuntimeNode;
import dev.stevedore.testing.ControlPlane;
import dev.stevedore.testing.Crds;
import dev.stevedore.testing.TestNamespace;
import dev.stevedore.testing.WithControlPlane;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code stevedore-agent import} for nodes without a registry, as {@code ctr images import}: an OCI archive imported
 * under a name no registry has (here, no registry runs at all) makes a Container of that image Ready, whether the
 * import ran beside the running agent or before it started, and garbage collection keeps the imported image.
 */
@WithControlPlane
class AirGappedImportIT {
    /** Under .example, which never resolves: a pull could not succeed. */
    private static final String NAME = "airgap.example/app:1";

    @TempDir
    static Path tmp;

    private static ControlPlane controlPlane;
    private static TestImages images;
    private static Path archive;

    private NodeAgent.Running agent;
    private String node;
    private TestNamespace namespace;

    @BeforeAll
    static void build(ControlPlane cp) {
        controlPlane = cp;
        Crds.installStevedore(cp.adminClient());
        images = TestImages.build(tmp.resolve("images"));
        archive = images.ociArchive(TestImages.LAYERED, NAME, tmp.resolve("app.tar"));
    }

    @AfterEach
    void stopTheAgent() {
        try {
            if (agent != null && namespace != null) {
                // Released by the agent (snapshots, records), as a node would.
                namespace.client().resources(Container.class).delete();
                namespace
                        .client()
                        .resources(Container.class)
                        .list()
                        .getItems()
                        .forEach(c ->
                                Containers.awaitGone(namespace, c.getMetadata().getName()));
            }
        } finally {
            if (agent != null) {
                agent.close();
            }
            if (namespace != null) {
                Containers.dropFinalizers(namespace);
            }
            if (node != null) {
                controlPlane
                        .adminClient()
                        .resources(RuntimeNode.class)
                        .withName(node)
                        .delete();
            }
        }
    }

    @Test
    void anImageImportedBesideTheRunningAgentMakesAContainerReadyWithoutARegistry(TestNamespace ns) throws Exception {
        namespace = ns;
        node = "airgap-running-node";
        AgentRoot root = new AgentRoot(tmp.resolve("running"));
        agent = NodeAgent.start(
                controlPlane.adminClient(),
                NodeAgent.Settings.of(node, root.path()).withHeartbeatInterval(Duration.ofSeconds(2)));

        AgentProcess.Result imported = AgentProcess.runImport(root.path(), archive);

        assertThat(imported.exitCode()).as(imported.stderr()).isZero();
        assertThat(imported.stdout()).isEqualTo(NAME + " " + images.digest(TestImages.LAYERED) + "\n");
        // The running agent sees the record another process wrote: its heartbeat lists the image.
        controlPlane
                .adminClient()
                .resources(RuntimeNode.class)
                .withName(node)
                .waitUntilCondition(
                        n -> n != null
                                && n.getStatus() != null
                                && n.getStatus().images() != null
                                && n.getStatus().images().stream().anyMatch(i -> NAME.equals(i.name())),
                        60,
                        TimeUnit.SECONDS);

        // A Container deleted on the node makes the agent collect garbage; the imported image, which no Container
        // uses yet, must survive it: no registry could give it back. The stray blob's going shows the collection ran.
        String stray = root.putStrayBlob();
        Containers.create(ns, "unrelated", "nowhere.invalid/x:1", node, "");
        Containers.awaitCondition(ns, "unrelated", ContainerStatus.IMAGE_READY, "False");
        ns.client().resources(Container.class).withName("unrelated").delete();
        Containers.awaitGone(ns, "unrelated");
        await().atMost(Containers.TIMEOUT).until(() -> !root.hasBlob(stray));
        assertTheImportIsKept(root);

        Containers.create(ns, "app", NAME, node, "");
        Container ready = Containers.awaitCondition(ns, "app", ContainerStatus.READY, "True");

        assertThat(ready.getStatus().imageDigest()).isEqualTo(images.digest(TestImages.LAYERED));
        assertThat(root.imageNames()).contains(NAME);
        assertThat(root.leftovers()).isEmpty();
    }

    @Test
    void anImageImportedBeforeTheAgentStartsSurvivesItsStartup(TestNamespace ns) throws IOException {
        namespace = ns;
        node = "airgap-preloaded-node";
        AgentRoot root = new AgentRoot(tmp.resolve("preloaded"));
        AgentProcess.Result imported = AgentProcess.runImport(root.path(), archive);
        assertThat(imported.exitCode()).as(imported.stderr()).isZero();

        String stray = root.putStrayBlob();

        // Starting, the agent removes a crash's leftovers and collects garbage (before start returns): the import is
        // neither, and no Container yet holds its image.
        agent = NodeAgent.start(
                controlPlane.adminClient(),
                NodeAgent.Settings.of(node, root.path()).withHeartbeatInterval(Duration.ofSeconds(2)));
        assertThat(root.hasBlob(stray))
                .as("a blob no image references, after the start-up collection")
                .isFalse();
        assertTheImportIsKept(root);
        Containers.create(ns, "app", NAME, node, "snapshotter: native");

        Container ready = Containers.awaitCondition(ns, "app", ContainerStatus.READY, "True");
        assertThat(ready.getStatus().imageDigest()).isEqualTo(images.digest(TestImages.LAYERED));
        assertThat(ready.getStatus().snapshotter()).isEqualTo("native");
    }

    @Test
    void aCorruptArchiveIsRefusedAndLeavesNothing() throws IOException {
        AgentRoot root = new AgentRoot(tmp.resolve("corrupt"));
        String layer = images.layerDigests(TestImages.LAYERED).get(1);
        Path corrupt = Files.copy(archive, tmp.resolve("corrupt.tar"));
        byte[] bytes = Files.readAllBytes(corrupt);
        byte[] blob = Files.readAllBytes(images.blobPath(layer));
        int at = indexOf(bytes, Arrays.copyOf(blob, Math.min(blob.length, 256)));
        assertThat(at).as("the layer's bytes in the archive").isNotNegative();
        bytes[at + blob.length / 2] ^= 0x01;
        Files.write(corrupt, bytes);

        AgentProcess.Result result = AgentProcess.runImport(root.path(), corrupt);

        assertThat(result.exitCode()).isEqualTo(1);
        assertThat(result.stderr()).contains("DigestMismatch").contains(layer);
        assertThat(result.stdout()).isEmpty();
        assertThat(root.imageNames()).isEmpty();
        assertThat(root.hasBlob(layer)).isFalse();
        assertThat(root.leftovers()).isEmpty();
    }

    /** The imported image's record and every blob of it, by name. */
    private static void assertTheImportIsKept(AgentRoot root) {
        assertThat(root.imageRecord(NAME)).as("the imported image's record").exists();
        List<String> blobs = new ArrayList<>(images.layerDigests(TestImages.LAYERED));
        blobs.add(images.digest(TestImages.LAYERED));
        blobs.add(images.manifest(TestImages.LAYERED)
                .path("config")
                .path("digest")
                .asText());
        assertThat(blobs).allSatisfy(d -> assertThat(root.hasBlob(d)).as(d).isTrue());
    }

    private static int indexOf(byte[] haystack, byte[] needle) {
        outer:
        for (int i = 0; i <= haystack.length - needle.length; i++) {
            for (int j = 0; j < needle.length; j++) {
                if (haystack[i + j] != needle[j]) {
                    continue outer;
                }
            }
            return i;
        }
        return -1;
    }
}
