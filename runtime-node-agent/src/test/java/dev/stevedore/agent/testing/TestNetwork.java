package dev.stevedore.agent.testing;

import static org.assertj.core.api.Assertions.assertThat;

import dev.stevedore.testing.CniBridgeNetwork;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;

/**
 * The tests' CNI network ({@link CniBridgeNetwork}: bridge {@value #BRIDGE}, {@value #SUBNET}, the host's address
 * {@value #GATEWAY}), with what a test checks of it: that nothing of a task is left on it.
 */
public final class TestNetwork {
    public static final String NAME = "itnet";
    public static final String BRIDGE = "stevedore-itnet";
    public static final String SUBNET = "10.213.32.0/24";
    public static final String GATEWAY = "10.213.32.1";

    private TestNetwork() {}

    public static CniBridgeNetwork create(Path dir) throws IOException {
        return CniBridgeNetwork.create(dir, NAME, BRIDGE, SUBNET);
    }

    /** No namespace (under {@code netnsDir}), address or iptables rule of the task {@code uid} is left. */
    public static void assertNothingLeftOf(CniBridgeNetwork network, String uid, Path netnsDir) throws IOException {
        assertThat(netnsDir.resolve(uid)).as("the task's network namespace").doesNotExist();
        if (Files.isDirectory(network.addresses())) {
            try (Stream<Path> files = Files.list(network.addresses())) {
                assertThat(files.filter(TestNetwork::isAddress))
                        .as("addresses allocated")
                        .allSatisfy(f -> assertThat(Files.readString(f)).doesNotContain(uid));
            }
        }
        assertThat(iptables()).as("iptables rules naming the task").doesNotContain(uid);
    }

    /** No address is allocated, no veth on the bridge: every task is gone from the network. */
    public static void assertEmpty(CniBridgeNetwork network) throws IOException {
        if (Files.isDirectory(network.addresses())) {
            try (Stream<Path> files = Files.list(network.addresses())) {
                assertThat(files.filter(TestNetwork::isAddress))
                        .as("addresses allocated")
                        .isEmpty();
            }
        }
        Path ports = Path.of("/sys/class/net", network.bridge(), "brif");
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

    /** host-local's files beside the addresses: the last one given out, and its lock. */
    private static boolean isAddress(Path file) {
        String name = file.getFileName().toString();
        return !name.startsWith("last_reserved_ip") && !name.equals("lock");
    }
}
