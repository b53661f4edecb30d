package dev.stevedore.agent.network;

import static org.assertj.core.api.Assertions.assertThat;

import dev.stevedore.api.v1alpha1.ContainerSpec;
import java.util.List;
import org.junit.jupiter.api.Test;

/** A task's /etc files as the CRI plugin and kubelet write a Pod's. */
class EtcFilesTest {
    private static final String NODE = """
            # written by the node's resolver
            nameserver 10.0.0.2
            search old.example
            search node.example corp.example
            options ndots:5 timeout:2 rotate
            """;

    @Test
    void dnsConfigGoesAfterTheNodesSettingsWithoutDuplicatesAndReplacesAnOptionOfTheSameName() {
        ContainerSpec.DnsConfig dns = new ContainerSpec.DnsConfig(
                List.of("10.0.0.2", "10.213.32.53"),
                List.of("svc.example", "corp.example"),
                List.of(new ContainerSpec.DnsOption("ndots", "2"), new ContainerSpec.DnsOption("edns0", null)));

        assertThat(EtcFiles.resolvConf(NODE, dns)).isEqualTo("""
                search node.example corp.example svc.example
                nameserver 10.0.0.2
                nameserver 10.213.32.53
                options ndots:2 timeout:2 rotate edns0
                """);
    }

    @Test
    void theNodesFileStaysAsTheResolverReadsItAndNoneGivesOnlyTheDnsConfig() {
        assertThat(EtcFiles.resolvConf(NODE, null)).isEqualTo("""
                search node.example corp.example
                nameserver 10.0.0.2
                options ndots:5 timeout:2 rotate
                """);
        assertThat(EtcFiles.resolvConf("", new ContainerSpec.DnsConfig(List.of("192.0.2.53"), null, null)))
                .isEqualTo("nameserver 192.0.2.53\n");
    }

    @Test
    void atMostThreeNameserversAreKeptAsTheResolverReadsNoMore() {
        ContainerSpec.DnsConfig dns =
                new ContainerSpec.DnsConfig(List.of("10.0.0.3", "10.0.0.4", "10.0.0.5"), null, null);

        assertThat(EtcFiles.resolvConf(NODE, dns))
                .contains("nameserver 10.0.0.2\nnameserver 10.0.0.3\nnameserver 10.0.0.4\n")
                .doesNotContain("10.0.0.5");
    }

    @Test
    void hostsHasTheDefaultsAndEachAddressUnderTheHostname() {
        assertThat(EtcFiles.hosts("web", List.of("10.213.32.7", "fd00::7")))
                .startsWith(
                        "# Managed by Stevedore.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
                .endsWith("fe00::2\tip6-allrouters\n10.213.32.7\tweb\nfd00::7\tweb\n");
        assertThat(EtcFiles.hostname("web")).isEqualTo("web\n");
    }
}
