package dev.stevedore.agent.network;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.stevedore.api.v1alpha1.ContainerSpec;
import dev.stevedore.api.v1alpha1.RuntimeNodeStatus;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Which network a task gets on a node, and what its spec and bundle get for it; no plugin runs here. */
class TaskNetworksTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path dir;

    private Path conf;
    private TaskNetworks networks;

    @BeforeEach
    void setUp() throws IOException {
        conf = Files.createDirectories(dir.resolve("net.d"));
        Files.writeString(dir.resolve("resolv.conf"), "nameserver 10.0.0.2\n");
        networks = new NetworkSettings(conf, List.of(), dir.resolve("resolv.conf")).taskNetworks(dir.resolve("netns"));
    }

    @Test
    void withoutAModeANodeWithoutNetworksGivesNoneAndOneWithNetworksItsFirstByFileName() throws Exception {
        assertThat(networks.plan("uid", null).mode()).isEqualTo(ContainerSpec.NetworkMode.none);

        write(
                "20-b.conflist",
                "{\"cniVersion\":\"1.0.0\",\"name\":\"b\",\"plugins\":[{\"type\":\"bridge\"},{\"type\":\"portmap\"}]}");
        write("10-a.conf", "{\"cniVersion\":\"0.4.0\",\"name\":\"a\",\"type\":\"ptp\"}");
        write("05-broken.conflist", "{\"name\":");
        write("README", "not a configuration");

        TaskNetworks.Plan plan = networks.plan("uid", null);
        assertThat(plan.mode()).isEqualTo(ContainerSpec.NetworkMode.cni);
        assertThat(plan.attachment().network()).isEqualTo("a");
        assertThat(plan.attachment().netns()).isEqualTo(dir.resolve("netns/uid").toString());
        assertThat(plan.attachment().ifName()).isEqualTo("eth0");
        assertThat(networks.plan("uid", network(null, "b", List.of()))
                        .attachment()
                        .config()
                        .path("plugins")
                        .size())
                .isEqualTo(2);
        assertThat(networks.offered())
                .containsExactly(
                        new RuntimeNodeStatus.NetworkInfo("a", List.of("ptp")),
                        new RuntimeNodeStatus.NetworkInfo("b", List.of("bridge", "portmap")));
    }

    @Test
    void aNetworkTheNodeDoesNotOfferIsNamedInTheError() throws IOException {
        assertThatThrownBy(() -> networks.plan("uid", network(ContainerSpec.NetworkMode.cni, null, List.of())))
                .hasMessage("the node has no CNI network in " + conf);
        assertThatThrownBy(() -> networks.plan(
                        "uid", network(null, null, List.of(new ContainerSpec.Port(80, null, 8080, null)))))
                .as("ports a node without a network cannot forward")
                .hasMessage("the node has no CNI network in " + conf);
        write("10-a.conf", "{\"cniVersion\":\"0.4.0\",\"name\":\"a\",\"type\":\"ptp\"}");
        assertThatThrownBy(() -> networks.plan("uid", network(null, "other", List.of())))
                .hasMessage("the node has no CNI network named other in " + conf);
    }

    @Test
    void portsWithAHostPortArePortMappingsForThePortmapPlugin() throws Exception {
        write("10-a.conf", "{\"cniVersion\":\"0.4.0\",\"name\":\"a\",\"type\":\"ptp\"}");
        List<ContainerSpec.Port> ports = List.of(
                new ContainerSpec.Port(8080, null, 18080, null),
                new ContainerSpec.Port(53, ContainerSpec.Protocol.UDP, 1053, "10.213.32.1"),
                new ContainerSpec.Port(9090, ContainerSpec.Protocol.TCP, null, null));

        ObjectNode args =
                networks.plan("uid", network(null, null, ports)).attachment().capabilityArgs();

        assertThat(args).isEqualTo(JSON.readTree("""
                {"portMappings": [
                  {"hostPort": 18080, "containerPort": 8080, "protocol": "tcp"},
                  {"hostPort": 1053, "containerPort": 53, "protocol": "udp", "hostIP": "10.213.32.1"}]}
                """));
    }

    @Test
    void aCniTaskJoinsItsNamespaceAndGetsItsEtcFilesUnlessItMountsItsOwn() throws Exception {
        ObjectNode spec = (ObjectNode) JSON.readTree("""
                {"hostname": "web", "root": {"readonly": true},
                 "linux": {"namespaces": [{"type": "pid"}, {"type": "network"}]},
                 "mounts": [{"destination": "/etc/hostname", "type": "bind", "source": "/x"}]}
                """);
        TaskNetwork attached =
                new TaskNetwork("a", JSON.createObjectNode(), "/run/netns/uid", "eth0", null, (ObjectNode)
                        JSON.readTree("{\"ips\": [{\"address\": \"10.213.32.7/24\"}]}"));
        TaskNetworks.Plan plan = new TaskNetworks.Plan(
                ContainerSpec.NetworkMode.cni,
                attached,
                new ContainerSpec.DnsConfig(null, List.of("svc"), null),
                false);

        networks.configure(spec, dir, plan, attached);

        assertThat(spec.path("linux").path("namespaces").get(1).path("path").asText())
                .isEqualTo("/run/netns/uid");
        assertThat(destinations(spec)).containsExactly("/etc/hostname", "/etc/hosts", "/etc/resolv.conf");
        assertThat(spec.path("mounts").get(1).path("source").asText())
                .isEqualTo(dir.resolve("hosts").toString());
        assertThat(spec.path("mounts").get(1).path("options").toString()).isEqualTo("[\"rbind\",\"rprivate\",\"ro\"]");
        assertThat(Files.readString(dir.resolve("hosts"))).endsWith("10.213.32.7\tweb\n");
        assertThat(Files.readString(dir.resolve("resolv.conf"))).isEqualTo("search svc\nnameserver 10.0.0.2\n");
    }

    @Test
    void withoutANetworkTheImagesFilesStayUnlessTheContainerNamesAHostnameOrGivesADnsConfig() throws Exception {
        ObjectNode plain = (ObjectNode) JSON.readTree("{\"hostname\": \"c1\"}");
        networks.configure(plain, dir, networks.plan("uid", null), null);
        assertThat(destinations(plain)).as("as ctr run without --cni").isEmpty();

        ObjectNode named = (ObjectNode) JSON.readTree("{\"hostname\": \"web\"}");
        networks.configure(
                named, dir, networks.plan("uid", new ContainerSpec.Network(null, null, null, null, "web")), null);
        assertThat(destinations(named)).containsExactly("/etc/hosts", "/etc/hostname");

        ObjectNode resolving = (ObjectNode) JSON.readTree("{\"hostname\": \"c1\"}");
        ContainerSpec.DnsConfig dns = new ContainerSpec.DnsConfig(List.of("10.0.0.53"), null, null);
        networks.configure(
                resolving,
                dir,
                networks.plan("uid", new ContainerSpec.Network(ContainerSpec.NetworkMode.none, null, null, dns, null)),
                null);
        assertThat(destinations(resolving)).containsExactly("/etc/resolv.conf");
    }

    @Test
    void aHostNetworkTaskGetsTheNodesHostsReadOnly() throws Exception {
        ObjectNode spec = (ObjectNode) JSON.readTree("{\"hostname\": \"h\", \"linux\": {\"namespaces\": []}}");

        networks.configure(spec, dir, new TaskNetworks.Plan(ContainerSpec.NetworkMode.host, null, null, false), null);

        JsonNode hosts = spec.path("mounts").get(0);
        assertThat(hosts.path("source").asText()).isEqualTo("/etc/hosts");
        assertThat(hosts.path("options").toString()).isEqualTo("[\"rbind\",\"rprivate\",\"ro\"]");
        assertThat(spec.path("mounts").get(1).path("options").toString()).isEqualTo("[\"rbind\",\"rprivate\",\"rw\"]");
    }

    private static List<String> destinations(ObjectNode spec) {
        List<String> destinations = new ArrayList<>();
        spec.path("mounts").forEach(m -> destinations.add(m.path("destination").asText()));
        return destinations;
    }

    private static ContainerSpec.Network network(
            ContainerSpec.NetworkMode mode, String name, List<ContainerSpec.Port> ports) {
        return new ContainerSpec.Network(mode, name, ports, null, null);
    }

    private void write(String name, String json) throws IOException {
        Files.writeString(conf.resolve(name), json);
    }
}
