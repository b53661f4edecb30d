package dev.stevedore.testing;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * A CNI network of a test's or benchmark's own, as hack/local-up.sh installs one: a configuration list of Debian's
 * bridge (with host-local addresses kept in a directory of the caller's) and portmap, on a bridge and subnet of its
 * own, with no route beyond the subnet — tasks reach each other and the host's address on the bridge (the subnet's
 * first), nothing else. {@link #close} removes the bridge and puts IP forwarding back as it was (the bridge plugin
 * turns it on, as it does under containerd).
 */
public final class CniBridgeNetwork implements AutoCloseable {
    public static final Path DEBIAN_PLUGINS = Path.of("/usr/lib/cni");
    private static final Path IP_FORWARD = Path.of("/proc/sys/net/ipv4/ip_forward");

    private final String name;
    private final String bridge;
    private final Path confDir;
    private final Path ipam;
    private final String ipForward;

    private CniBridgeNetwork(String name, String bridge, Path confDir, Path ipam, String ipForward) {
        this.name = name;
        this.bridge = bridge;
        this.confDir = confDir;
        this.ipam = ipam;
        this.ipForward = ipForward;
    }

    /** The network's configuration in {@code dir}/net.d, its addresses in {@code dir}/ipam. */
    public static CniBridgeNetwork create(Path dir, String name, String bridge, String subnet) throws IOException {
        Path conf = Files.createDirectories(dir.resolve("net.d"));
        Path ipam = dir.resolve("ipam");
        Files.writeString(conf.resolve("10-" + name + ".conflist"), """
                {"cniVersion": "1.0.0", "name": "%s", "plugins": [
                  {"type": "bridge", "bridge": "%s", "isGateway": true, "ipMasq": false, "hairpinMode": true,
                   "ipam": {"type": "host-local", "ranges": [[{"subnet": "%s"}]], "dataDir": "%s"}},
                  {"type": "portmap", "capabilities": {"portMappings": true}}]}
                """.formatted(name, bridge, subnet, ipam));
        return new CniBridgeNetwork(
                name, bridge, conf, ipam, Files.readString(IP_FORWARD).strip());
    }

    public String name() {
        return name;
    }

    public String bridge() {
        return bridge;
    }

    public Path confDir() {
        return confDir;
    }

    /** Where host-local keeps a file per address it gave out (holding the container id). */
    public Path addresses() {
        return ipam.resolve(name);
    }

    /** The agent's flags for this network: its configuration, Debian's plugins after {@code pluginDirs}. */
    public List<String> agentFlags(Path... pluginDirs) {
        StringBuilder path = new StringBuilder();
        for (Path dir : pluginDirs) {
            path.append(dir).append(',');
        }
        return List.of(
                "--cni-conf-dir",
                confDir.toString(),
                "--cni-bin-dir",
                path.append(DEBIAN_PLUGINS).toString());
    }

    @Override
    public void close() throws IOException {
        try {
            new ProcessBuilder("ip", "link", "del", bridge).inheritIO().start().waitFor();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        Files.writeString(IP_FORWARD, ipForward);
    }
}
