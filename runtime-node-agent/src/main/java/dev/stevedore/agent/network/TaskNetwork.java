package dev.stevedore.agent.network;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.ArrayList;
import java.util.List;

/**
 * A task's attachment to a CNI network, kept in its record: written before the namespace is made and the plugins
 * run, so that a restarted agent detaches exactly what may have been attached — with the configuration it was
 * attached with, whatever the node's files say by then — and the plugins' result once they ran.
 *
 * @param config the network's configuration list as used
 * @param netns the file the task's network namespace is bound at
 * @param capabilityArgs the runtimeConfig offered to plugins that declare the capability (portMappings)
 * @param result the last plugin's ADD result; null until the ADD completed
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
@JsonIgnoreProperties(ignoreUnknown = true)
public record TaskNetwork(
        String network, ObjectNode config, String netns, String ifName, ObjectNode capabilityArgs, ObjectNode result) {
    public static final String INTERFACE = "eth0";

    /** This attachment once ADD returned {@code addResult}. */
    TaskNetwork attached(ObjectNode addResult) {
        return new TaskNetwork(network, config, netns, ifName, capabilityArgs, addResult);
    }

    /** The addresses in the result, without their prefix length: "ips" of CNI 0.3.0 and later, or 0.2.0's ip4/ip6. */
    public List<String> ips() {
        List<String> ips = new ArrayList<>();
        if (result == null) {
            return ips;
        }
        for (JsonNode ip : result.path("ips")) {
            add(ips, ip.path("address").asText(""));
        }
        add(ips, result.path("ip4").path("ip").asText(""));
        add(ips, result.path("ip6").path("ip").asText(""));
        return ips;
    }

    private static void add(List<String> ips, String cidr) {
        if (!cidr.isEmpty()) {
            int slash = cidr.indexOf('/');
            ips.add(slash < 0 ? cidr : cidr.substring(0, slash));
        }
    }
}
