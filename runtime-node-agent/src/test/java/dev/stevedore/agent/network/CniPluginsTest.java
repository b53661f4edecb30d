package dev.stevedore.agent.network;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The exec protocol, with scripts standing in for plugins: what each is given, and how its answers are read. */
class CniPluginsTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String CONFLIST = """
            {"cniVersion": "1.0.0", "name": "net", "plugins": [
              {"type": "first", "capabilities": {"portMappings": false}},
              {"type": "second", "capabilities": {"portMappings": true, "bandwidth": true}}]}
            """;

    @TempDir
    Path bin;

    @Test
    void eachPluginGetsTheNetworksNameAndVersionThePreviousResultAndOnlyTheCapabilitiesItDeclares() throws IOException {
        CniNetwork network = CniNetwork.parse(CONFLIST.getBytes(StandardCharsets.UTF_8), true);
        ObjectNode args = JSON.createObjectNode();
        args.putArray("portMappings").addObject().put("hostPort", 8080).put("containerPort", 80);
        CniPlugins.Attachment a = new CniPlugins.Attachment("uid", "/run/netns/x", "eth0", args);
        ObjectNode prev = (ObjectNode) JSON.readTree("{\"ips\": [{\"address\": \"10.1.0.2/24\"}]}");

        ObjectNode first = CniPlugins.pluginConfig(network, network.plugins().get(0), null, a);
        ObjectNode second = CniPlugins.pluginConfig(network, network.plugins().get(1), prev, a);

        assertThat(first.path("name").asText()).isEqualTo("net");
        assertThat(first.path("cniVersion").asText()).isEqualTo("1.0.0");
        assertThat(first.has("prevResult")).isFalse();
        assertThat(first.has("runtimeConfig")).isFalse();
        assertThat(second.path("prevResult")).isEqualTo(prev);
        assertThat(second.path("runtimeConfig").path("portMappings")).isEqualTo(args.get("portMappings"));
        assertThat(second.path("runtimeConfig").has("bandwidth")).isFalse();
    }

    @Test
    void addRunsThePluginsInOrderWithTheProtocolsEnvironmentAndReturnsTheLastResult() throws IOException {
        Path log = bin.resolve("calls");
        plugin(
                "first",
                "echo \"$CNI_COMMAND $CNI_CONTAINERID $CNI_NETNS $CNI_IFNAME $CNI_PATH first\" >> " + log
                        + "; echo '{\"cniVersion\":\"1.0.0\",\"ips\":[{\"address\":\"10.1.0.2/24\"}]}'");
        plugin(
                "second",
                "cat > " + bin.resolve("second.stdin") + "; echo \"$CNI_COMMAND second\" >> " + log
                        + "; echo '{\"cniVersion\":\"1.0.0\",\"ips\":[{\"address\":\"10.1.0.3/24\"}]}'");
        CniNetwork network = CniNetwork.parse(CONFLIST.getBytes(StandardCharsets.UTF_8), true);
        CniPlugins plugins = new CniPlugins(List.of(bin.resolve("missing"), bin));

        ObjectNode result = plugins.add(network, new CniPlugins.Attachment("uid-1", "/ns", "eth0", null));
        plugins.del(network, new CniPlugins.Attachment("uid-1", "", "eth0", null), result);

        assertThat(new TaskNetwork("net", network.config(), "/ns", "eth0", null, result).ips())
                .containsExactly("10.1.0.3");
        assertThat(Files.readAllLines(log))
                .containsExactly(
                        "ADD uid-1 /ns eth0 " + bin.resolve("missing") + ":" + bin + " first",
                        "ADD second",
                        "DEL second",
                        "DEL uid-1  eth0 " + bin.resolve("missing") + ":" + bin + " first");
        assertThat(JSON.readTree(bin.resolve("second.stdin").toFile()).path("prevResult"))
                .isEqualTo(result); // DEL gets the ADD's result
    }

    @Test
    void aPluginsErrorObjectIsTheMessageAndAMissingPluginIsNamed() throws IOException {
        plugin(
                "first",
                "echo '{\"code\": 11, \"msg\": \"no IP addresses available\", \"details\": \"range full\"}'; exit 1");
        CniNetwork network = CniNetwork.parse(CONFLIST.getBytes(StandardCharsets.UTF_8), true);
        CniPlugins plugins = new CniPlugins(List.of(bin));
        CniPlugins.Attachment a = new CniPlugins.Attachment("uid-1", "/ns", "eth0", null);

        assertThatThrownBy(() -> plugins.add(network, a))
                .isInstanceOf(CniPlugins.CniException.class)
                .hasMessage("first ADD: no IP addresses available (range full)");
        plugin("first", "echo 'iptables: not found' >&2; exit 2");
        assertThatThrownBy(() -> plugins.add(network, a)).hasMessage("first ADD: exit status 2: iptables: not found");
        Files.delete(bin.resolve("first"));
        assertThatThrownBy(() -> plugins.add(network, a)).hasMessage("no CNI plugin first in [" + bin + "]");
    }

    @Test
    void aTypeThatIsAPathIsRefusedWhenTheConfigurationIsRead() {
        String json = "{\"cniVersion\": \"1.0.0\", \"name\": \"net\", \"type\": \"../../bin/sh\"}";

        assertThatThrownBy(() -> CniNetwork.parse(json.getBytes(StandardCharsets.UTF_8), false))
                .hasMessage("network net has a plugin whose type \"../../bin/sh\" is not a name");
    }

    private void plugin(String name, String script) throws IOException {
        Path file = bin.resolve(name);
        Files.writeString(file, "#!/bin/sh\n" + script + "\n");
        Files.setPosixFilePermissions(file, PosixFilePermissions.fromString("rwx------"));
    }
}
