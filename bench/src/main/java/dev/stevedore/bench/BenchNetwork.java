package dev.stevedore.bench;

import dev.stevedore.testing.CniBridgeNetwork;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The CNI network task_start's networked tasks use on both sides, one configuration list for the agent
 * ({@code --cni-conf-dir}) and for {@code ctr run --cni}: a {@link CniBridgeNetwork} of the benchmark's own
 * ({@value #BRIDGE}, {@value #SUBNET}).
 *
 * <p>ctr has no flags for CNI directories: it reads {@code /etc/cni/net.d} and runs plugins from
 * {@code /opt/cni/bin}. So ctr runs in a mount namespace of the benchmark's own where those two are this network's
 * (overlays on /etc and /opt, nothing of the host's changed), entered with {@code nsenter}; {@link #enterCost}
 * measures what entering adds to each ctr run.
 */
final class BenchNetwork implements AutoCloseable {
    static final String BRIDGE = "stevedore-bench";
    static final String SUBNET = "10.213.48.0/20";

    private final CniBridgeNetwork network;
    private final Path dir;
    private final Path mountNamespace;

    private BenchNetwork(CniBridgeNetwork network, Path dir, Path mountNamespace) {
        this.network = network;
        this.dir = dir;
        this.mountNamespace = mountNamespace;
    }

    static BenchNetwork create(Path dir) throws IOException {
        CniBridgeNetwork network = CniBridgeNetwork.create(dir, "bench", BRIDGE, SUBNET);
        // A private mount point to bind the namespace at (a namespace cannot be bound on a shared one).
        Path holder = Files.createDirectories(dir.resolve("mntns"));
        Commands.run("mount", "--bind", holder.toString(), holder.toString());
        Commands.run("mount", "--make-private", holder.toString());
        Path mountNamespace = Files.createFile(holder.resolve("ctr"));
        for (String top : List.of("etc", "opt")) {
            Files.createDirectories(dir.resolve("upper/" + top + "/cni"));
            Files.createDirectories(dir.resolve("work/" + top));
        }
        Files.createSymbolicLink(dir.resolve("upper/etc/cni/net.d"), network.confDir());
        Files.createSymbolicLink(dir.resolve("upper/opt/cni/bin"), CniBridgeNetwork.DEBIAN_PLUGINS);
        Commands.run(
                "unshare",
                "--mount=" + mountNamespace,
                "--propagation",
                "private",
                "sh",
                "-c",
                overlay("etc", dir) + " && " + overlay("opt", dir));
        return new BenchNetwork(network, dir, mountNamespace);
    }

    private static String overlay(String top, Path dir) {
        return "mount -t overlay overlay -o lowerdir=/" + top + ",upperdir=" + dir.resolve("upper/" + top) + ",workdir="
                + dir.resolve("work/" + top) + " /" + top;
    }

    /** The agent's flags for this network. */
    List<String> agentFlags() {
        return network.agentFlags();
    }

    /** {@code command} run in the mount namespace where /etc/cni/net.d and /opt/cni/bin are this network's. */
    List<String> enter(List<String> command) {
        List<String> entered = new ArrayList<>(List.of("nsenter", "--mount=" + mountNamespace, "--"));
        entered.addAll(command);
        return entered;
    }

    /** The median wall time of {@code nsenter ... true}, spawn to reap (ms): what entering adds to a ctr run. */
    double enterCost(int times) {
        double[] samples = new double[times];
        for (int i = 0; i < times; i++) {
            long started = System.nanoTime();
            Commands.run(enter(List.of("true")));
            samples[i] = (System.nanoTime() - started) / 1e6;
        }
        return Measurement.of("enter", "ms", samples).p50();
    }

    @Override
    public void close() throws IOException {
        Commands.execute(List.of("umount", mountNamespace.toString()));
        Commands.execute(List.of("umount", dir.resolve("mntns").toString()));
        network.close();
    }
}
