package dev.stevedore.agent;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.stevedore.agent.testing.AgentProcess;
import dev.stevedore.agent.testing.AgentRoot;
import dev.stevedore.agent.testing.Containers;
import dev.stevedore.agent.testing.LocalRegistry;
import dev.stevedore.agent.testing.TestImages;
import dev.stevedore.api.v1alpha1.Conditions;
import dev.stevedore.api.v1alpha1.Container;
import dev.stevedore.api.v1alpha1.ContainerStatus;
import dev.stevedore.api.v1alpha1.RuntimeNode;
import dev.stevedore.api.v1alpha1.RuntimeNodeStatus;
import dev.stevedore.operator.StevedoreOperator;
import dev.stevedore.testing.ControlPlane;
import dev.stevedore.testing.Crds;
import dev.stevedore.testing.TestNamespace;
import dev.stevedore.testing.WithControlPlane;
import io.fabric8.kubernetes.api.model.Condition;
import io.javaoperatorsdk.operator.Operator;
import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.file.FileStore;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveOutputStream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A full disk for real: the agent's root is a tmpfs of {@value #DISK_MIB} MiB mounted for each test (overlayfs takes
 * its upper directories there), the images carry layers of random bytes (gzip leaves them as big), and their sizes
 * are chosen against the disk's. A pull bigger than the free space fails with DiskFull and leaves nothing; once
 * space is freed it succeeds; image garbage collection keeps the disk under its high threshold while Containers of
 * different images come and go. Every mount is undone after each test, whatever happened.
 */
@WithControlPlane
class DiskPressureIT {
    private static final Logger LOG = LoggerFactory.getLogger(DiskPressureIT.class);
    private static final long MIB = 1024 * 1024;
    private static final int DISK_MIB = 256;
    /** Held by a running Container: its blob and its unpacked layer take 2 x 100 MiB, 79% of the disk. */
    private static final int HOG_MIB = 100;
    /** Its blob alone does not fit beside the hog; blob and unpacked layer do once the hog is gone. */
    private static final int BIG_MIB = 80;
    /** Six images of one such layer each (2 x 20 MiB on the disk): four cached ones would take it over 60%. */
    private static final int CYCLE_MIB = 20;
    /** Zeros: its blob is a few KiB, unpacked it does not fit beside the hog. */
    private static final int ZEROS_MIB = 70;

    private static final int CYCLES = 6;

    @TempDir
    static Path tmp;

    private static ControlPlane controlPlane;
    private static LocalRegistry registry;
    private static TestImages images;

    private final String node = "disk-pressure-node";
    private Path root;
    private AgentProcess agent;
    private TestNamespace namespace;

    @BeforeAll
    static void buildImages(ControlPlane cp) throws IOException {
        controlPlane = cp;
        Crds.installStevedore(cp.adminClient());
        registry = LocalRegistry.start();
        images = TestImages.build(tmp.resolve("images"));
        push("hog", HOG_MIB);
        push("big", BIG_MIB);
        pushZeros("zeros", ZEROS_MIB);
        for (int i = 1; i <= CYCLES; i++) {
            push("cycle-" + i, CYCLE_MIB);
        }
    }

    @AfterAll
    static void stopRegistry() {
        if (registry != null) {
            registry.close();
        }
    }

    @AfterEach
    void stopTheAgentAndUnmount() {
        try {
            if (agent != null) {
                agent.close();
            }
            if (namespace != null) {
                Containers.dropFinalizers(namespace);
            }
            controlPlane
                    .adminClient()
                    .resources(RuntimeNode.class)
                    .withName(node)
                    .delete();
        } finally {
            if (root != null) {
                unmountEverythingUnder(root);
            }
        }
    }

    @Test
    void aPullBiggerThanTheFreeSpaceFailsWithDiskFullLeavesNothingAndSucceedsOnceSpaceIsFreed(TestNamespace ns) {
        namespace = ns;
        AgentRoot disk = startAgentOnATmpfs("full", "--disk-pressure-threshold", "25");
        Operator operator = StevedoreOperator.start(
                controlPlane.adminClient(), new StevedoreOperator.Settings(null, Duration.ofSeconds(40)));
        try {
            fillAndFree(ns, disk);
        } finally {
            operator.stop();
        }
    }

    private void fillAndFree(TestNamespace ns, AgentRoot disk) {
        Containers.create(ns, "hog", image("hog"), node, "");
        awaitCondition(ns, "hog", ContainerStatus.READY, "True");
        Condition pressure = awaitDiskPressure("True");
        assertThat(pressure.getReason()).isEqualTo("DiskPressure");
        LOG.info("RuntimeNode: DiskPressure=True: {}", pressure.getMessage());
        // The operator places nothing new on the node while it is under disk pressure.
        Containers.create(ns, "later", image("cycle-1"), null, "");
        Container waiting = Containers.await(
                ns,
                "later",
                c -> c.getStatus() != null
                        && Conditions.find(c.getStatus().conditions(), ContainerStatus.SCHEDULED)
                                .filter(s -> "False".equals(s.getStatus()))
                                .isPresent(),
                "Scheduled=False",
                () -> "");
        assertThat(Containers.condition(waiting, ContainerStatus.SCHEDULED).getMessage())
                .isEqualTo("0/1 nodes are available: 1 node with disk pressure.");
        assertThat(pressure.getMessage()).contains("% of the agent's root file system is free", "threshold is 25%");
        long availableBefore = available(disk.path());
        LOG.info("hog ready: {} MiB of {} available", availableBefore / MIB, DISK_MIB);

        Containers.create(ns, "big", image("big"), node, "");
        Container failed = awaitDiskFull(ns, "big");
        LOG.info("big: {}", Containers.condition(failed, ContainerStatus.READY).getMessage());
        assertThat(Containers.condition(failed, ContainerStatus.IMAGE_READY).getMessage())
                .contains("No space left on device", "no unused image left to remove", "retrying in");
        ns.client().resources(Container.class).withName("big").delete();
        Containers.awaitGone(ns, "big");

        String bigLayer = images.layerDigests("big").get(1);
        assertThat(disk.ingestTemps()).as("partial downloads").isEmpty();
        assertThat(disk.snapshotTemps()).as("half-unpacked snapshots").isEmpty();
        assertThat(disk.hasBlob(bigLayer)).isFalse();
        assertThat(disk.imageNames()).doesNotContain(image("big"));
        long availableAfter = available(disk.path());
        LOG.info("big failed and deleted: {} MiB available", availableAfter / MIB);
        assertThat(availableAfter).as("free space, back").isGreaterThanOrEqualTo(availableBefore - MIB);

        Containers.create(ns, "big-again", image("big"), node, "");
        awaitDiskFull(ns, "big-again");
        ns.client().resources(Container.class).withName("hog").delete();
        Containers.awaitGone(ns, "hog");

        // The hog's image, cached once its Container went, is removed when the next try finds the disk full.
        awaitCondition(ns, "big-again", ContainerStatus.READY, "True");
        LOG.info("big ready: {} MiB available", available(disk.path()) / MIB);
        assertThat(disk.imageNames()).contains(image("big")).doesNotContain(image("hog"));
        assertThat(disk.hasBlob(images.layerDigests("hog").get(1))).isFalse();
        assertThat(disk.hasBlob(bigLayer)).isTrue();
        awaitDiskPressure("False");
        Container placed = awaitCondition(ns, "later", ContainerStatus.READY, "True");
        assertThat(placed.getSpec().nodeName()).isEqualTo(node);
    }

    @Test
    void anUnpackBiggerThanTheFreeSpaceFailsWithDiskFullAndLeavesNoSnapshotNorItsImage(TestNamespace ns) {
        namespace = ns;
        AgentRoot disk = startAgentOnATmpfs("unpack");
        Containers.create(ns, "hog", image("hog"), node, "");
        awaitCondition(ns, "hog", ContainerStatus.READY, "True");
        long availableBefore = available(disk.path());

        Containers.create(ns, "zeros", image("zeros"), node, "");
        Container failed = awaitDiskFull(ns, "zeros", ContainerStatus.ROOTFS_READY);
        LOG.info(
                "zeros: {}", Containers.condition(failed, ContainerStatus.READY).getMessage());
        assertThat(Containers.condition(failed, ContainerStatus.ROOTFS_READY).getMessage())
                .contains("No space left on device", "removed unused images (1)", "retrying in");
        ns.client().resources(Container.class).withName("zeros").delete();
        Containers.awaitGone(ns, "zeros");

        String zerosTop = AgentRoot.chainIds(images.diffIds("zeros")).get(1);
        assertThat(disk.snapshotTemps()).as("half-unpacked snapshots").isEmpty();
        assertThat(disk.committed(zerosTop)).isEmpty();
        assertThat(disk.imageNames()).as("the image, which no Container uses").doesNotContain(image("zeros"));
        assertThat(disk.hasBlob(images.layerDigests("zeros").get(1))).isFalse();
        assertThat(available(disk.path())).as("free space, back").isGreaterThanOrEqualTo(availableBefore - MIB);
    }

    @Test
    void imageGarbageCollectionKeepsTheDiskUnderTheHighThresholdWhileContainersComeAndGo(TestNamespace ns) {
        namespace = ns;
        AgentRoot disk =
                startAgentOnATmpfs("cycles", "--image-gc-high-threshold", "60", "--image-gc-low-threshold", "40");
        AtomicLong peakUsed = new AtomicLong();
        ScheduledExecutorService sampler = Executors.newSingleThreadScheduledExecutor();
        sampler.scheduleAtFixedRate(
                () -> peakUsed.accumulateAndGet(used(disk.path()), Math::max), 0, 20, TimeUnit.MILLISECONDS);
        List<String> figures = new ArrayList<>();
        try {
            for (int i = 1; i <= CYCLES; i++) {
                String name = "cycle-" + i;
                Containers.create(ns, name, image(name), node, "");
                awaitCondition(ns, name, ContainerStatus.READY, "True");
                ns.client().resources(Container.class).withName(name).delete();
                Containers.awaitGone(ns, name);
                await("the disk at or under the 60% high threshold after " + name)
                        .atMost(Duration.ofSeconds(60))
                        .pollInterval(Duration.ofMillis(200))
                        .until(() -> usedPercent(disk.path()) <= 60);
                figures.add(name + ": " + String.format("%.1f%%", usedPercent(disk.path())));
            }
        } finally {
            sampler.shutdownNow();
        }
        double peak = 100.0 * peakUsed.get() / (DISK_MIB * MIB);
        LOG.info("disk used after each Container came and went: {}; peak {}%", figures, String.format("%.1f", peak));

        assertThat(peak)
                .as("the peak: the cache went over the threshold, and never filled the disk")
                .isGreaterThan(60)
                .isLessThan(95);
        // Least recently used first: the first four went, the two last are cached.
        assertThat(disk.imageNames())
                .contains(image("cycle-5"), image("cycle-6"))
                .doesNotContain(image("cycle-1"), image("cycle-2"), image("cycle-3"), image("cycle-4"));
        assertThat(disk.ingestTemps()).as("partial downloads").isEmpty();
        assertThat(disk.snapshotTemps()).as("half-unpacked snapshots").isEmpty();
        assertThat(disk.mounts())
                .as("mounts: the tmpfs alone")
                .containsExactly(disk.path().toString());
    }

    // --- the disk -----------------------------------------------------------------------------------------------

    private AgentRoot startAgentOnATmpfs(String name, String... flags) {
        root = tmp.resolve(name);
        try {
            Files.createDirectories(root);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        run(
                "mount",
                "-t",
                "tmpfs",
                "-o",
                "size=" + DISK_MIB + "m,mode=0755",
                "stevedore-disk-pressure-it",
                root.toString());
        agent = AgentProcess.start(
                node, root, controlPlane.kubeconfig(), tmp.resolve(name + "-agent.log"), List.of(flags));
        return new AgentRoot(root);
    }

    /** Mounts below first (a rootfs the agent had mounted when it was stopped), the tmpfs last; lazily if busy. */
    private static void unmountEverythingUnder(Path dir) {
        List<String> mounts = new ArrayList<>(new AgentRoot(dir).mounts());
        mounts.sort((a, b) -> b.length() - a.length());
        for (String mount : mounts) {
            if (exitCode("umount", mount) != 0) {
                run("umount", "-l", mount);
            }
        }
    }

    private static long available(Path path) {
        try {
            return Files.getFileStore(path).getUsableSpace();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static long used(Path path) {
        try {
            FileStore store = Files.getFileStore(path);
            return store.getTotalSpace() - store.getUsableSpace();
        } catch (IOException e) {
            return 0; // unmounted at the end of the test
        }
    }

    private static double usedPercent(Path path) {
        return 100.0 * used(path) / (DISK_MIB * MIB);
    }

    // --- the cluster ----------------------------------------------------------------------------------------------

    private Container awaitCondition(TestNamespace ns, String name, String type, String status) {
        return Containers.awaitCondition(ns, name, type, status, () -> "\nagent log:\n" + agent.log());
    }

    private Container awaitDiskFull(TestNamespace ns, String name) {
        return awaitDiskFull(ns, name, ContainerStatus.IMAGE_READY);
    }

    /** @param step the condition of the step that ran out of space */
    private Container awaitDiskFull(TestNamespace ns, String name, String step) {
        Container failed = Containers.await(
                ns,
                name,
                c -> c.getStatus() != null
                        && Conditions.find(c.getStatus().conditions(), ContainerStatus.READY)
                                .filter(r -> "False".equals(r.getStatus()) && "DiskFull".equals(r.getReason()))
                                .isPresent(),
                "Ready=False with reason DiskFull",
                () -> "\nagent log:\n" + agent.log());
        assertThat(Containers.condition(failed, step).getReason()).isEqualTo("DiskFull");
        assertThat(Conditions.find(failed.getStatus().conditions(), Conditions.STALLED))
                .as("retried, not given up")
                .isEmpty();
        return failed;
    }

    private Condition awaitDiskPressure(String status) {
        return await("DiskPressure=" + status + " on the RuntimeNode")
                .atMost(Containers.TIMEOUT)
                .pollInterval(Duration.ofMillis(200))
                .until(
                        () -> {
                            RuntimeNode runtimeNode = controlPlane
                                    .adminClient()
                                    .resources(RuntimeNode.class)
                                    .withName(node)
                                    .get();
                            return runtimeNode == null || runtimeNode.getStatus() == null
                                    ? null
                                    : Conditions.find(
                                                    runtimeNode.getStatus().conditions(),
                                                    RuntimeNodeStatus.DISK_PRESSURE)
                                            .orElse(null);
                        },
                        c -> c != null && status.equals(c.getStatus()));
    }

    // --- the images -----------------------------------------------------------------------------------------------

    private static String image(String tag) {
        return registry.host() + "/test/" + tag + ":1";
    }

    /** Tags and pushes busybox plus a layer of {@code mib} MiB of random bytes, which no other image has. */
    private static void push(String tag, int mib) throws IOException {
        pushLayer(tag, mib, out -> writeRandom(out, mib, new SplittableRandom(tag.hashCode())));
    }

    private static void pushZeros(String tag, int mib) throws IOException {
        byte[] zeros = new byte[(int) MIB];
        pushLayer(tag, mib, out -> {
            for (int i = 0; i < mib; i++) {
                out.write(zeros);
            }
        });
    }

    private interface Content {
        void writeTo(OutputStream out) throws IOException;
    }

    /** Tags and pushes busybox plus a layer of one file of {@code mib} MiB. */
    private static void pushLayer(String tag, int mib, Content content) throws IOException {
        Path layer = tmp.resolve(tag + ".tar");
        try (TarArchiveOutputStream tar = new TarArchiveOutputStream(Files.newOutputStream(layer))) {
            TarArchiveEntry entry = new TarArchiveEntry("opt/" + tag);
            entry.setMode(0100644);
            entry.setSize(mib * MIB);
            tar.putArchiveEntry(entry);
            content.writeTo(tar);
            tar.closeArchiveEntry();
        }
        images.withLayer(TestImages.BASE, tag, layer);
        images.push(tag, image(tag));
        Files.delete(layer);
    }

    private static void writeRandom(OutputStream out, int mib, SplittableRandom random) throws IOException {
        byte[] chunk = new byte[(int) MIB];
        for (int i = 0; i < mib; i++) {
            for (int j = 0; j < chunk.length; j += 8) {
                long bits = random.nextLong();
                for (int k = 0; k < 8; k++) {
                    chunk[j + k] = (byte) (bits >>> (8 * k));
                }
            }
            out.write(chunk);
        }
    }

    private static void run(String... command) {
        int exit = exitCode(command);
        if (exit != 0) {
            throw new IllegalStateException(String.join(" ", command) + " exited with " + exit);
        }
    }

    private static int exitCode(String... command) {
        try {
            return new ProcessBuilder(command).inheritIO().start().waitFor();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }
}
