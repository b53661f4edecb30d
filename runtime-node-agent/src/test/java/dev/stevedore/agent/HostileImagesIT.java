package dev.stevedore.agent;

import static org.assertj.core.api.Assertions.assertThat;

import dev.stevedore.agent.testing.AgentProcess;
import dev.stevedore.agent.testing.AgentRoot;
import dev.stevedore.agent.testing.Containers;
import dev.stevedore.agent.testing.LocalRegistry;
import dev.stevedore.agent.testing.RawTar;
import dev.stevedore.agent.testing.TestImages;
import dev.stevedore.api.v1alpha1.Container;
import dev.stevedore.api.v1alpha1.ContainerStatus;
import dev.stevedore.api.v1alpha1.RuntimeNode;
import dev.stevedore.testing.ControlPlane;
import dev.stevedore.testing.Crds;
import dev.stevedore.testing.TestNamespace;
import dev.stevedore.testing.WithControlPlane;
import io.fabric8.kubernetes.api.model.Condition;
import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.TreeSet;
import java.util.function.Consumer;
import java.util.stream.Stream;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveOutputStream;
import org.apache.commons.compress.archivers.tar.TarConstants;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Hostile images from a real registry through the whole agent: layers that try to write outside the rootfs (by
 * {@code ..}, through absolute and relative symlinks, by hardlinks to files outside) and a layer whose bytes the
 * registry corrupted. Each Container fails with the reason and a message naming the problem; nothing is written
 * outside the snapshot being built, and nothing half-done is kept.
 */
@WithControlPlane
class HostileImagesIT {
    private static final String NODE = "hostile-images-it-node";
    /** More than enough {@code ..} to climb from any snapshot directory to /. */
    private static final String TO_ROOT = String.join("/", Collections.nCopies(40, ".."));

    @TempDir
    static Path tmp;

    private static ControlPlane controlPlane;
    private static LocalRegistry registry;
    private static TestImages images;
    private static AgentRoot root;
    private static NodeAgent.Running agent;
    /** What the layers aim at: beside the agent's root, as the rest of the host is. */
    private static Path outside;

    private static Path sentinel;
    private static Map<String, Object> outsideBefore;
    private static Map<String, Object> sentinelBefore;

    /** A hostile layer: its entries, and what the rejection must say (with {@code %o} for the outside directory). */
    private record Hostile(Consumer<Tar> entries, List<String> messageParts) {}

    private static final Map<String, Hostile> HOSTILE = new LinkedHashMap<>();

    static {
        HOSTILE.put(
                "dot-dot-traversal",
                new Hostile(
                        t -> t.file(TO_ROOT + "%o/pwned-traversal", "pwned"),
                        List.of("entry escapes rootfs: " + TO_ROOT + "%o/pwned-traversal")));
        HOSTILE.put(
                "dot-dot-into-the-agent-root",
                new Hostile(
                        t -> t.file("../../../../pwned-nearby", "pwned"),
                        List.of("entry escapes rootfs: ../../../../pwned-nearby")));
        // Writes through symlinks that point out are not rejected: they are resolved with the rootfs as /, as
        // containerd does, and land inside (HostileLayerTest.symlinksPointingOutAreResolvedInsideTheRootfs).
        HOSTILE.put(
                "hardlink-to-a-file-outside",
                new Hostile(
                        t -> t.hardlink("pwned-hardlink", TO_ROOT + "%o/sentinel")
                                .file("pwned-hardlink", "pwned"),
                        List.of("entry escapes rootfs: " + TO_ROOT + "%o/sentinel")));
        HOSTILE.put(
                "hardlink-to-an-absolute-path",
                new Hostile(
                        t -> t.hardlink("pwned-hardlink", "%o/sentinel").file("pwned-hardlink", "pwned"),
                        List.of("entry escapes rootfs: %o/sentinel (absolute path)")));
        HOSTILE.put(
                "hardlink-through-a-symlink",
                new Hostile(
                        t -> t.symlink("escape", "%o")
                                .hardlink("pwned-hardlink", "escape/sentinel")
                                .file("pwned-hardlink", "pwned"),
                        List.of("hardlink pwned-hardlink -> escape/sentinel: target not found")));
    }

    @BeforeAll
    static void start(ControlPlane cp) throws Exception {
        controlPlane = cp;
        Crds.installStevedore(cp.adminClient());
        outside = Files.createDirectory(tmp.resolve("outside"));
        sentinel = Files.writeString(outside.resolve("sentinel"), "original");
        registry = LocalRegistry.start();
        images = TestImages.build(tmp.resolve("images"));
        for (Map.Entry<String, Hostile> hostile : HOSTILE.entrySet()) {
            Tar layer = new Tar(tmp.resolve(hostile.getKey() + ".tar"), outside.toString());
            layer.file("etc/written-before-the-hostile-entry", "harmless\n"); // a partial unpack would keep this
            hostile.getValue().entries().accept(layer);
            images.withLayer(TestImages.BASE, hostile.getKey(), layer.close());
            images.push(hostile.getKey(), reference(hostile.getKey()));
        }
        outsideBefore = attributes(outside);
        sentinelBefore = attributes(sentinel);
        root = new AgentRoot(tmp.resolve("root"));
        agent = NodeAgent.start(
                cp.adminClient(),
                NodeAgent.Settings.of(NODE, root.path()).withHeartbeatInterval(Duration.ofSeconds(5)));
    }

    @AfterAll
    static void stop() {
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

    private Set<String> filesBefore;

    @BeforeEach
    void recordTheRoot() {
        filesBefore = root.filesOutsideSnapshots();
    }

    @AfterEach
    void nothingChangedOutside() throws IOException {
        assertThat(attributes(outside)).as("the directory outside").isEqualTo(outsideBefore);
        assertThat(attributes(sentinel)).as("the sentinel file outside").isEqualTo(sentinelBefore);
        assertThat(Files.readString(sentinel)).isEqualTo("original");
        try (Stream<Path> children = Files.list(outside)) {
            assertThat(children).containsExactly(sentinel);
        }
        try (Stream<Path> all = Files.walk(tmp)) {
            assertThat(all.filter(p -> p.getFileName().toString().startsWith("pwned")))
                    .as("files the layers tried to write")
                    .isEmpty();
        }
    }

    static Stream<Arguments> hostileLayers() {
        List<Arguments> cases = new ArrayList<>();
        for (String name : HOSTILE.keySet()) {
            cases.add(Arguments.of(name, "overlayfs"));
            cases.add(Arguments.of(name, "native"));
        }
        return cases.stream();
    }

    @ParameterizedTest(name = "{0} ({1})")
    @MethodSource("hostileLayers")
    void aHostileLayerIsRejectedAndLeavesNothing(String name, String snapshotter, TestNamespace ns) {
        Containers.create(
                ns, "hostile", reference(name), NODE, snapshotter.equals("native") ? "snapshotter: native" : "");

        Container failed = Containers.awaitCondition(ns, "hostile", ContainerStatus.ROOTFS_READY, "False");

        String layer = images.layerDigests(name).get(1);
        Condition rootfs = Containers.condition(failed, ContainerStatus.ROOTFS_READY);
        assertThat(rootfs.getReason()).isEqualTo("LayerRejected");
        assertThat(rootfs.getMessage()).startsWith("layer " + layer + ": ");
        for (String part : HOSTILE.get(name).messageParts()) {
            assertThat(rootfs.getMessage()).contains(part.replace("%o", outside.toString()));
        }
        Condition ready = Containers.condition(failed, ContainerStatus.READY);
        assertThat(ready.getStatus()).isEqualTo("False");
        assertThat(ready.getReason()).isEqualTo("LayerRejected");
        assertThat(Containers.condition(failed, ContainerStatus.IMAGE_READY).getStatus())
                .isEqualTo("True");

        // (The base layer's snapshot is no evidence either way: garbage collection, run when the previous test's
        // Containers went, may take it, since a Container that failed holds no snapshot.)
        List<String> chain = AgentRoot.chainIds(images.diffIds(name));
        assertThat(root.committed(chain.get(1)))
                .as("a committed snapshot of the hostile layer")
                .isEmpty();
        assertThat(root.snapshotsBeingBuilt()).as("half-unpacked snapshots").isEmpty();
        assertThat(root.path()
                        .resolve("containers")
                        .resolve(failed.getMetadata().getUid()))
                .doesNotExist();
        assertThat(newFilesOutsideSnapshots())
                .as("new files in the agent's root outside snapshots/")
                .isSubsetOf(filesOfImage(name));
    }

    @Test
    void aLayerCorruptedInTheRegistryIsADigestMismatchAndLeavesNoPartialState(TestNamespace ns) throws Exception {
        Tar unique = new Tar(tmp.resolve("corrupt.tar"), outside.toString());
        byte[] noise = new byte[512 * 1024];
        new Random().nextBytes(noise); // this layer is in no other image, so no other test pulls it intact
        unique.file("opt/noise", noise);
        images.withLayer(TestImages.BASE, "corrupt", unique.close());
        images.push("corrupt", reference("corrupt"));
        String layer = images.layerDigests("corrupt").get(1);
        flipAByteInTheMiddle(registry.blobData(layer));

        Containers.create(ns, "corrupt", reference("corrupt"), NODE, "");
        Container failed = Containers.awaitCondition(ns, "corrupt", ContainerStatus.IMAGE_READY, "False");

        Condition image = Containers.condition(failed, ContainerStatus.IMAGE_READY);
        assertThat(image.getReason()).isEqualTo("DigestMismatch");
        assertThat(image.getMessage()).contains(layer);
        assertThat(Containers.condition(failed, ContainerStatus.READY).getReason())
                .isEqualTo("DigestMismatch");
        assertThat(failed.getStatus().conditions())
                .extracting(Condition::getType)
                .doesNotContain(ContainerStatus.ROOTFS_READY);
        assertThat(root.hasBlob(layer))
                .as("the corrupted blob in the content store")
                .isFalse();
        assertThat(root.imageRecord(reference("corrupt"))).as("an image record").doesNotExist();
        assertThat(root.imageNames()).doesNotContain(reference("corrupt"));
        assertThat(root.ingestTemps()).as("temp files in content/ingest").isEmpty();
        assertThat(root.committed(AgentRoot.chainIds(images.diffIds("corrupt")).get(1)))
                .isEmpty();
        assertThat(root.path()
                        .resolve("containers")
                        .resolve(failed.getMetadata().getUid()))
                .doesNotExist();
        assertThat(newFilesOutsideSnapshots()).isSubsetOf(filesOfImage("corrupt"));
    }

    /**
     * Layers are shared by chain ID, which comes from the config's diff_ids: an image that claims another image's
     * diff_id for a layer of its own would, if unchecked, have its content unpacked under the other's chain ID and
     * served as that image's rootfs. The agent hashes the uncompressed layer while unpacking it, as containerd
     * does, and refuses the lie: the image may be recorded, but no snapshot is made of the layer.
     */
    @Test
    void anImageLyingAboutALayersDiffIdCannotPoisonAnotherImagesSnapshot(TestNamespace ns) throws IOException {
        Tar poison = new Tar(tmp.resolve("poison.tar"), outside.toString());
        poison.file(TestImages.ADDED_FILE, "poisoned\n");
        images.withLayer(TestImages.BASE, "poison-honest", poison.close());
        List<String> victimDiffIds = images.diffIds(TestImages.LAYERED);
        List<String> honest = images.diffIds("poison-honest");
        images.withDiffIds("poison-honest", "poison", List.of(honest.get(0), victimDiffIds.get(1)));
        images.push("poison", reference("poison"));
        images.push(TestImages.LAYERED, reference("victim"));
        String victimChainId = AgentRoot.chainIds(victimDiffIds).get(1);

        Containers.create(ns, "poison", reference("poison"), NODE, "");
        Container poisoned = Containers.await(
                ns,
                "poison",
                c -> c.getStatus() != null
                        && c.getStatus().conditions() != null
                        && c.getStatus().conditions().stream().anyMatch(x -> ContainerStatus.READY.equals(x.getType())),
                "a Ready condition",
                () -> "");

        Condition rootfs = Containers.condition(poisoned, ContainerStatus.ROOTFS_READY);
        assertThat(rootfs.getStatus()).as(rootfs.getMessage()).isEqualTo("False");
        assertThat(rootfs.getReason()).isEqualTo("LayerRejected");
        assertThat(rootfs.getMessage())
                .contains(images.layerDigests("poison").get(1))
                .contains(honest.get(1))
                .contains(victimDiffIds.get(1));
        assertThat(Containers.condition(poisoned, ContainerStatus.READY).getReason())
                .isEqualTo("LayerRejected");
        assertThat(root.committed(victimChainId))
                .as("a snapshot under the victim's chain ID")
                .isEmpty();
        assertThat(root.snapshotsBeingBuilt()).as("half-unpacked snapshots").isEmpty();

        Containers.create(ns, "victim", reference("victim"), NODE, "");
        Containers.awaitCondition(ns, "victim", ContainerStatus.READY, "True");
        List<AgentRoot.Snapshot> shared = root.committed(victimChainId);
        assertThat(shared).hasSize(1);
        Path layerTree = root.path()
                .resolve("snapshots/overlayfs")
                .resolve(Long.toString(shared.get(0).id()))
                .resolve("fs");
        assertThat(layerTree.resolve(TestImages.ADDED_FILE)).hasContent("stevedore test image\n");
    }

    /**
     * Layers made to exhaust the agent's memory, unpacked by an agent JVM with the options it ships with (a 128 MiB
     * heap): PAX headers piling up before one entry (200 MiB of them), and directories whose paths, each near
     * PATH_MAX, the unpack would keep until the layer ends (60,000 of them, about 180 MiB; the tar names are short,
     * the paths grow through symlinks). Unbounded, either ends the agent's heap; bounded, each layer is rejected with
     * a message naming the limit and the flag that raises it, and the agent carries on. Entries and uncompressed
     * bytes are limited by flags set low here, which proves the flags reach the unpack.
     */
    @Test
    void layersMadeToExhaustTheShippedHeapAreRejectedByTheirLimits(TestNamespace ns) throws Exception {
        Map<String, String> floods = new LinkedHashMap<>();
        floods.put("pax-flood", "--max-layer-pax-size");
        floods.put("path-flood", "--max-layer-path-bytes");
        floods.put("entries-flood", "--max-layer-entries");
        floods.put("zeros-flood", "--max-layer-bytes");
        for (String name : floods.keySet()) {
            Path layer = tmp.resolve(name + ".tar");
            try (OutputStream out = new BufferedOutputStream(Files.newOutputStream(layer), 1 << 16)) {
                writeFlood(name, new RawTar(out), out);
            }
            images.withLayer(TestImages.BASE, name, layer);
            Files.delete(layer);
            images.push(name, reference(name));
        }
        String node = "hostile-heap-it-node";
        AgentRoot heapRoot = new AgentRoot(tmp.resolve("heap-root"));
        try (AgentProcess heapAgent = AgentProcess.start(
                node,
                heapRoot.path(),
                controlPlane.kubeconfig(),
                tmp.resolve("heap-agent.log"),
                List.of("--max-layer-entries", "50000", "--max-layer-bytes", Long.toString(64L << 20)))) {
            for (Map.Entry<String, String> flood : floods.entrySet()) {
                Containers.create(ns, flood.getKey(), reference(flood.getKey()), node, "");
                Container failed = Containers.awaitCondition(ns, flood.getKey(), ContainerStatus.ROOTFS_READY, "False");

                Condition rootfs = Containers.condition(failed, ContainerStatus.ROOTFS_READY);
                assertThat(rootfs.getReason()).as(heapAgent.log()).isEqualTo("LayerRejected");
                assertThat(rootfs.getMessage())
                        .contains("the layer exceeds the limit of")
                        .contains("(the agent's " + flood.getValue() + " raises it)");
                assertThat(heapRoot.committed(AgentRoot.chainIds(images.diffIds(flood.getKey()))
                                .get(1)))
                        .isEmpty();
                assertThat(heapRoot.snapshotsBeingBuilt())
                        .as("half-unpacked snapshots")
                        .isEmpty();
            }
            assertThat(heapAgent.isAlive()).as(heapAgent.log()).isTrue();
            assertThat(heapAgent.log()).doesNotContain("OutOfMemoryError");
        } finally {
            controlPlane
                    .adminClient()
                    .resources(RuntimeNode.class)
                    .withName(node)
                    .delete();
        }
    }

    private static void writeFlood(String name, RawTar tar, OutputStream out) throws IOException {
        switch (name) {
            case "pax-flood" -> {
                String value = "a".repeat((1 << 20) - 600);
                for (int i = 0; i < 200; i++) {
                    tar.pax("k" + i + "=" + value);
                }
                tar.file("after-the-headers", new byte[0]);
            }
            case "path-flood" -> {
                String parent = "";
                for (int level = 0; level < 29; level++) {
                    String dir = parent + "x".repeat(95);
                    tar.dir(dir).symlink("l" + level, dir);
                    parent = "l" + level + "/";
                }
                for (int i = 0; i < 60_000; i++) {
                    tar.dir(parent + i);
                }
            }
            case "entries-flood" -> {
                for (int i = 0; i < 60_000; i++) {
                    tar.file("f" + i, new byte[0]);
                }
            }
            case "zeros-flood" -> {
                byte[] mib = new byte[1 << 20];
                tar.file("zeros", new byte[0]);
                tar.end();
                for (int i = 0; i < 100; i++) {
                    out.write(mib);
                }
                return;
            }
            default -> throw new IllegalArgumentException(name);
        }
        tar.end();
    }

    private Set<String> newFilesOutsideSnapshots() {
        Set<String> added = new TreeSet<>(root.filesOutsideSnapshots());
        added.removeAll(filesBefore);
        return added;
    }

    /** What pulling the image may add: its blobs, its record, and the directories holding them. */
    private static Set<String> filesOfImage(String tag) {
        Set<String> files = new TreeSet<>(List.of(
                "content/", "content/blobs/", "content/blobs/sha256/", "content/ingest/", "images/", "containers/"));
        List<String> digests = new ArrayList<>(images.layerDigests(tag));
        digests.add(images.digest(tag));
        digests.add(images.manifest(tag).path("config").path("digest").asText());
        for (String digest : digests) {
            files.add("content/blobs/" + digest.replace(':', '/'));
        }
        files.add(root.path().relativize(root.imageRecord(reference(tag))).toString());
        return files;
    }

    private static String reference(String tag) {
        return registry.host() + "/test/" + tag + ":1";
    }

    private static void flipAByteInTheMiddle(Path file) throws IOException {
        byte[] bytes = Files.readAllBytes(file);
        bytes[bytes.length / 2] ^= 0x01;
        Files.write(file, bytes, StandardOpenOption.TRUNCATE_EXISTING);
    }

    private static Map<String, Object> attributes(Path path) throws IOException {
        Map<String, Object> attributes =
                new LinkedHashMap<>(Files.readAttributes(path, "unix:*", LinkOption.NOFOLLOW_LINKS));
        attributes.remove("lastAccessTime");
        return attributes;
    }

    /** A layer tar written entry by entry with commons-compress; {@code %o} in names and targets is the outside dir. */
    private static final class Tar {
        private final Path file;
        private final String outsideDir;
        private final TarArchiveOutputStream out;

        Tar(Path file, String outsideDir) throws IOException {
            this.file = file;
            this.outsideDir = outsideDir;
            this.out = new TarArchiveOutputStream(Files.newOutputStream(file));
            out.setLongFileMode(TarArchiveOutputStream.LONGFILE_POSIX);
        }

        Tar file(String name, String content) {
            return file(name, content.getBytes(StandardCharsets.UTF_8));
        }

        Tar file(String name, byte[] content) {
            TarArchiveEntry entry = entry(name, TarConstants.LF_NORMAL, 0644);
            entry.setSize(content.length);
            return put(entry, content);
        }

        Tar dir(String name) {
            return put(entry(name, TarConstants.LF_DIR, 0755), null);
        }

        Tar symlink(String name, String target) {
            TarArchiveEntry entry = entry(name, TarConstants.LF_SYMLINK, 0777);
            entry.setLinkName(target.replace("%o", outsideDir));
            return put(entry, null);
        }

        Tar hardlink(String name, String target) {
            TarArchiveEntry entry = entry(name, TarConstants.LF_LINK, 0644);
            entry.setLinkName(target.replace("%o", outsideDir));
            return put(entry, null);
        }

        Path close() throws IOException {
            out.close();
            return file;
        }

        private TarArchiveEntry entry(String name, byte type, int mode) {
            // preserveAbsolutePath and no normalization: the names are hostile on purpose
            TarArchiveEntry entry = new TarArchiveEntry(name.replace("%o", outsideDir), type, true);
            entry.setMode(mode);
            entry.setModTime(0);
            return entry;
        }

        private Tar put(TarArchiveEntry entry, byte[] content) {
            try {
                out.putArchiveEntry(entry);
                if (content != null) {
                    out.write(content);
                }
                out.closeArchiveEntry();
                return this;
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
    }
}
