package dev.stevedore.agent.testing;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;

/**
 * A CNI network of the tests' own: a bridge {@value #BRIDGE} with {@value #SUBNET}, host-local addresses kept in a
 * directory of the test, portmap, Debian's plugins. No route leads beyond the subnet: tasks reach each other and
 * the host's address on the bridge ({@value #GATEWAY}), nothing else. {@link #close} removes the bridge and puts
 * IP forwarding back as it was (the bridge plugin turns it on, as under containerd).
 */
public final class TestNetwork implements AutoCloseable {
    public static final String NAME = "itnet";
    public static final String BRIDGE = "stevedore-itnet";
    public static final String SUBNET = "10.213.32.0/24";
    public static final String GATEWAY = "10.213.32.1";
    public static final Path PLUGINS = Path.of("/usr/lib/cni");
    private static final Path IP_FORWARD = Path.of("/proc/sys/net/ipv4/ip_forward");

    private final Path confDir;
    private final Path ipam;
    private final String ipForward;

    private TestNetwork(Path confDir, Path ipam, String ipForward) {
        this.confDir = confDir;
        this.ipam = ipam;
        this.ipForward = ipForward;
    }

    /** The network's configuration in {@code dir}/net.d, its addresses in {@code dir}/ipam. */
    public static TestNetwork create(Path dir) throws IOException {
        Path conf = Files.createDirectories(dir.resolve("net.d"));
        Path ipam = dir.resolve("ipam");
        Files.writeString(conf.resolve("10-" + NAME + ".conflist"), """
                {"cniVersion": "1.0.0", "name": "%s", "plugins": [
                  {"type": "bridge", "bridge": "%s", "isGateway": true, "ipMasq": false, "hairpinMode": true,
                   "ipam": {"type": "host-local", "ranges": [[{"subnet": "%s"}]], "dataDir": "%s"}},
                  {"type": "portmap", "capabilities": {"portMappings": true}}]}
                """.formatted(NAME, BRIDGE, SUBNET, ipam));
        return new TestNetwork(conf, ipam, Files.readString(IP_FORWARD).strip());
    }

    public Path confDir() {
        return confDir;
    }

    /** The agent's flags for this network: its configuration, Debian's plugins, no resolv.conf of the node. */
    public List<String> agentFlags() {
        return List.of("--cni-conf-dir", confDir.toString(), "--cni-bin-dir", PLUGINS.toString(), "--resolv-conf", "");
    }

    /** No namespace (under {@code netnsDir}), address or iptables rule of the task {@code uid} is left. */
    public void assertNothingLeftOf(String uid, Path netnsDir) throws IOException {
        assertThat(netnsDir.resolve(uid)).as("the task's network namespace").doesNotExist();
        Path addresses = ipam.resolve(NAME);
        if (Files.isDirectory(addresses)) {
            // host-local keeps a file per address holding the container id; last_reserved_ip.0 and lock stay.
            try (Stream<Path> files = Files.list(addresses)) {
                assertThat(files.filter(f -> !f.getFileName().toString().startsWith("last_reserved_ip")
                                && !f.getFileName().toString().equals("lock")))
                        .as("addresses allocated")
                        .allSatisfy(f -> assertThat(Files.readString(f)).doesNotContain(uid));
            }
        }
        assertThat(iptables()).as("iptables rules naming the task").doesNotContain(uid);
    }

    /** No address is allocated, no veth on the bridge: every task is gone from the network. */
    public void assertEmpty() throws IOException {
        Path addresses = ipam.resolve(NAME);
        if (Files.isDirectory(addresses)) {
            try (Stream<Path> files = Files.list(addresses)) {
                assertThat(files.map(f -> f.getFileName().toString()))
                        .as("addresses allocated")
                        .allMatch(name -> name.startsWith("last_reserved_ip") || name.equals("lock"));
            }
        }
        Path ports = Path.of("/sys/class/net", BRIDGE, "brif");
        if (Files.isDirectory(ports)) {
            try (Stream<Path> veths = Files.list(ports)) {
                assertThat(veths).as("veths on the bridge").isEmpty();
            }
        }
    }

    public static String iptables() throws IOException {
        Process save =
                new ProcessBuilder("iptables-save").redirectErrorStream(true).start();
        String rules = new String(save.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        try {
            save.waitFor();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        return rules;
    }

    @Override
    public void close() throws IOException, InterruptedException {
        new ProcessBuilder("ip", "link", "del", BRIDGE).inheritIO().start().waitFor();
        Files.writeString(IP_FORWARD, ipForward);
    }
}
