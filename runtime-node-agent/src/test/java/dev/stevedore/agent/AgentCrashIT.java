package dev.stevedore.agent;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.stevedore.agent.testing.AgentProcess;
import dev.stevedore.agent.testing.AgentRoot;
import dev.stevedore.agent.testing.Containers;
import dev.stevedore.agent.testing.LocalRegistry;
import dev.stevedore.agent.testing.ObjectEvents;
import dev.stevedore.agent.testing.StallingProxy;
import dev.stevedore.agent.testing.TestImages;
import dev.stevedore.api.v1alpha1.Container;
import dev.stevedore.api.v1alpha1.ContainerStatus;
import dev.stevedore.api.v1alpha1.RuntimeNode;
import dev.stevedore.testing.ControlPlane;
import dev.stevedore.testing.Crds;
import dev.stevedore.testing.TestNamespace;
import dev.stevedore.testing.WithControlPlane;
import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Random;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveOutputStream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The agent as its own process, killed with SIGKILL in the middle of its work and started again on the same root:
 * the Container becomes Ready, and nothing the kill interrupted is left behind (no partial downloads in
 * content/ingest, no half-built snapshots, no container directories without a record, no mounts).
 */
@WithControlPlane
class AgentCrashIT {
    /** Big enough that a download is caught in the middle; random, so gzip leaves it as big. */
    private static final int BIG_LAYER_BYTES = 32 * 1024 * 1024;
    /** Responses are held once a connection carried this much: only the big layer gets there. */
    private static final long STALL_AFTER_BYTES = 8 * 1024 * 1024;
    /** Many small files: unpacking takes seconds (a syscall or ten per file), the blob is small. */
    private static final int MANY_FILES = 30_000;

    private static final String MANY_DIR = "many";

    @TempDir
    static Path tmp;

    private static ControlPlane controlPlane;
    private static LocalRegistry registry;
    private static TestImages images;

    private AgentProcess agent;
    private String node;
    private TestNamespace namespace;

    @BeforeAll
    static void buildImages(ControlPlane cp) throws IOException {
        controlPlane = cp;
        Crds.installStevedore(cp.adminClient());
        registry = LocalRegistry.start();
        images = TestImages.build(tmp.resolve("images"));
        images.withLayer(TestImages.BASE, "big", bigLayer(tmp.resolve("big.tar")));
        images.push("big", registry.host() + "/test/big:1");
        images.withLayer(TestImages.BASE, "many", manyFilesLayer(tmp.resolve("many.tar")));
        images.push("many", registry.host() + "/test/many:1");
    }

    @AfterAll
    static void stopRegistry() {
        if (registry != null) {
            registry.close();
        }
    }

    @AfterEach
    void stopTheAgent() {
        try {
            if (agent != null && agent.isAlive() && namespace != null) {
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
    void killedInTheMiddleOfAPullTheAgentPullsAgainAfterARestartAndLeavesNoPartialDownload(TestNamespace ns) {
        namespace = ns;
        node = "crash-mid-pull-node";
        AgentRoot root = new AgentRoot(tmp.resolve("mid-pull"));
        Path log = tmp.resolve("mid-pull-agent.log");
        String bigLayer = images.layerDigests("big").get(1);
        String partialPrefix = bigLayer.replace(':', '-') + "-";
        try (StallingProxy proxy = new StallingProxy(registry.host(), STALL_AFTER_BYTES)) {
            String image = proxy.host() + "/test/big:1";
            agent = AgentProcess.start(node, root.path(), controlPlane.kubeconfig(), log);
            Containers.create(ns, "big", image, node, "");

            // The big layer's download is held half-way by the proxy: its temp file is in content/ingest.
            await("the big layer half downloaded")
                    .atMost(Containers.TIMEOUT)
                    .pollInterval(Duration.ofMillis(20))
                    .failFast("the agent exited", () -> !agent.isAlive())
                    .until(() -> proxy.stalled() > 0
                            && root.ingestTemps().stream()
                                    .anyMatch(
                                            p -> p.getFileName().toString().startsWith(partialPrefix) && size(p) > 0));
            agent.kill();

            List<Path> partial = root.ingestTemps();
            assertThat(partial).as("what the kill left in content/ingest").isNotEmpty();
            assertThat(root.hasBlob(bigLayer)).isFalse();
            assertThat(root.imageNames()).doesNotContain(image);

            proxy.release();
            agent = AgentProcess.start(node, root.path(), controlPlane.kubeconfig(), log);
            Container ready = Containers.awaitCondition(
                    ns, "big", ContainerStatus.READY, "True", () -> "\nagent log:\n" + agent.log());

            assertThat(ready.getStatus().imageDigest()).isEqualTo(images.digest("big"));
            assertThat(root.hasBlob(bigLayer)).isTrue();
            assertThat(root.committed(topChainId("big"))).hasSize(1);
            assertThat(partial).allSatisfy(p -> assertThat(p).doesNotExist());
            assertThat(root.leftovers()).isEmpty();
        }
    }

    /**
     * Not a crash, but the same held download: while the big layer's pull is held part-way, the Container's status
     * says how far it got (ImageReady=False, reason Pulling, "pulling REF: D MiB of T MiB"), and its Events say it
     * is pulling; once it goes on, the pull ends Ready and Pulled.
     */
    @Test
    void aPullHeldPartWayShowsHowFarItGotInTheContainersStatus(TestNamespace ns) {
        namespace = ns;
        node = "pull-progress-node";
        AgentRoot root = new AgentRoot(tmp.resolve("progress"));
        try (StallingProxy proxy = new StallingProxy(registry.host(), STALL_AFTER_BYTES)) {
            String image = proxy.host() + "/test/big:1";
            agent = AgentProcess.start(node, root.path(), controlPlane.kubeconfig(), tmp.resolve("progress.log"));
            Containers.create(ns, "big", image, node, "");

            Pattern progress = Pattern.compile(
                    "pulling " + Pattern.quote(image) + ": ([0-9.]+) MiB of ([0-9.]+) MiB \\([0-9]+%\\)");
            Matcher shown = await("the pull's progress in the status")
                    .atMost(Containers.TIMEOUT)
                    .failFast("the agent exited", () -> !agent.isAlive())
                    .until(() -> progress.matcher(imageReadyMessage(ns, "big", "Pulling")), Matcher::matches);
            double done = Double.parseDouble(shown.group(1));
            double total = Double.parseDouble(shown.group(2));
            assertThat(done).isPositive().isLessThan(total);
            assertThat(total).isGreaterThanOrEqualTo(BIG_LAYER_BYTES / (1024.0 * 1024.0) - 0.1);
            assertThat(proxy.stalled()).as("the pull is still held").isPositive();
            ObjectEvents.awaitRecorded(ns, "Container", "big", "Normal Pulling: Pulling image \"" + image + "\"");

            proxy.release();
            Containers.awaitCondition(ns, "big", ContainerStatus.READY, "True", () -> "\nagent log:\n" + agent.log());
            ObjectEvents.awaitRecorded(ns, "Container", "big", "Normal Pulled: Successfully pulled image");
        }
    }

    /** The message of the Container's ImageReady condition while its reason is {@code reason}, else "". */
    private static String imageReadyMessage(TestNamespace ns, String name, String reason) {
        Container container =
                ns.client().resources(Container.class).withName(name).get();
        if (container == null
                || container.getStatus() == null
                || container.getStatus().conditions() == null) {
            return "";
        }
        return container.getStatus().conditions().stream()
                .filter(c -> ContainerStatus.IMAGE_READY.equals(c.getType()) && reason.equals(c.getReason()))
                .map(c -> c.getMessage())
                .findFirst()
                .orElse("");
    }

    @Test
    void killedInTheMiddleOfAnUnpackTheAgentUnpacksAgainAfterARestartAndLeavesNoPartialSnapshot(TestNamespace ns)
            throws IOException {
        namespace = ns;
        node = "crash-mid-unpack-node";
        AgentRoot root = new AgentRoot(tmp.resolve("mid-unpack"));
        Path log = tmp.resolve("mid-unpack-agent.log");
        String chainId = topChainId("many");
        agent = AgentProcess.start(node, root.path(), controlPlane.kubeconfig(), log);
        Containers.create(ns, "many", registry.host() + "/test/many:1", node, "");

        // The layer of many files is being unpacked into snapshots/overlayfs/tmp/<id>/fs.
        await("the many-files layer half unpacked")
                .atMost(Containers.TIMEOUT)
                .pollInterval(Duration.ofMillis(10))
                .failFast("the agent exited", () -> !agent.isAlive())
                .failFast(
                        "the layer was committed before the kill",
                        () -> !root.committed(chainId).isEmpty())
                .until(() -> root.snapshotTemps().stream()
                        .anyMatch(t -> Files.isDirectory(t.resolve("fs").resolve(MANY_DIR))));
        agent.kill();

        assertThat(root.snapshotTemps())
                .as("what the kill left in snapshots/*/tmp")
                .isNotEmpty();
        assertThat(root.committed(chainId)).isEmpty();

        agent = AgentProcess.start(node, root.path(), controlPlane.kubeconfig(), log);
        Container ready = Containers.awaitCondition(
                ns, "many", ContainerStatus.READY, "True", () -> "\nagent log:\n" + agent.log());

        assertThat(ready.getStatus().imageDigest()).isEqualTo(images.digest("many"));
        List<AgentRoot.Snapshot> committed = root.committed(chainId);
        assertThat(committed).hasSize(1);
        Path unpacked = root.path()
                .resolve("snapshots/overlayfs")
                .resolve(Long.toString(committed.get(0).id()))
                .resolve("fs")
                .resolve(MANY_DIR);
        try (Stream<Path> files = Files.walk(unpacked)) {
            assertThat(files.filter(Files::isRegularFile).count())
                    .as("files of the layer, unpacked again")
                    .isEqualTo(MANY_FILES);
        }
        assertThat(root.leftovers()).isEmpty();
    }

    private static long size(Path file) {
        try {
            return Files.size(file);
        } catch (IOException gone) {
            return -1;
        }
    }

    /** The chain ID of a tag's whole stack of layers, as the agent names its top committed snapshot. */
    private static String topChainId(String tag) {
        String chain = null;
        for (String diffId : images.diffIds(tag)) {
            chain = chain == null ? diffId : "sha256:" + sha256Hex(chain + " " + diffId);
        }
        return chain;
    }

    private static String sha256Hex(String text) {
        try {
            return HexFormat.of()
                    .formatHex(MessageDigest.getInstance("SHA-256").digest(text.getBytes(StandardCharsets.UTF_8)));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    private static Path bigLayer(Path file) throws IOException {
        try (TarArchiveOutputStream tar = new TarArchiveOutputStream(Files.newOutputStream(file))) {
            TarArchiveEntry entry = new TarArchiveEntry("opt/big");
            entry.setMode(0100644);
            entry.setSize(BIG_LAYER_BYTES);
            tar.putArchiveEntry(entry);
            Random random = new Random();
            byte[] chunk = new byte[1024 * 1024];
            for (int written = 0; written < BIG_LAYER_BYTES; written += chunk.length) {
                random.nextBytes(chunk);
                tar.write(chunk);
            }
            tar.closeArchiveEntry();
        }
        return file;
    }

    private static Path manyFilesLayer(Path file) throws IOException {
        try (OutputStream out = Files.newOutputStream(file);
                TarArchiveOutputStream tar = new TarArchiveOutputStream(out)) {
            List<String> dirs = new ArrayList<>();
            for (int d = 0; d < 100; d++) {
                dirs.add(MANY_DIR + "/d" + d + "/");
            }
            TarArchiveEntry top = new TarArchiveEntry(MANY_DIR + "/");
            top.setMode(040755);
            tar.putArchiveEntry(top);
            tar.closeArchiveEntry();
            for (String dir : dirs) {
                TarArchiveEntry entry = new TarArchiveEntry(dir);
                entry.setMode(040755);
                tar.putArchiveEntry(entry);
                tar.closeArchiveEntry();
            }
            for (int f = 0; f < MANY_FILES; f++) {
                byte[] content = ("file " + f + "\n").getBytes(StandardCharsets.UTF_8);
                TarArchiveEntry entry = new TarArchiveEntry(dirs.get(f % dirs.size()) + "f" + f);
                entry.setMode(0100644);
                entry.setSize(content.length);
                tar.putArchiveEntry(entry);
                tar.write(content);
                tar.closeArchiveEntry();
            }
        } catch (UncheckedIOException e) {
            throw e.getCause();
        }
        return file;
    }
}
