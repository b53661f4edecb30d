package dev.stevedore.agent.network;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.stevedore.api.v1alpha1.ContainerSpec;
import dev.stevedore.api.v1alpha1.RuntimeNodeStatus;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Tasks' networks, as containerd's CRI plugin sets up a sandbox's: for a Container on a CNI network, a network
 * namespace of the task's own ({@code <netnsDir>/<task uid>}), loopback brought up by the loopback plugin and the
 * network's plugins run with ADD before the runtime creates the container, DEL once it has gone; for every task its
 * /etc/hosts, /etc/hostname and /etc/resolv.conf ({@link EtcFiles}). A Container on the host's network gets the
 * node's /etc/hosts; one on none a namespace with loopback alone, which the runtime makes, and the image's /etc
 * files, as with ctr run, unless it names a hostname or gives a dnsConfig.
 */
public final class TaskNetworks {
    private static final Logger LOG = LoggerFactory.getLogger(TaskNetworks.class);
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final CniNetwork LOOPBACK = loopback();
    private static final Path NODE_HOSTS = Path.of("/etc/hosts");

    private final CniConfigs configs;
    private final CniPlugins plugins;
    private final Path netnsDir;
    private final Path nodeResolvConf;

    /**
     * @param netnsDir where tasks' namespaces are bound (a directory of the runtime state, gone at a reboot as they
     *     are)
     * @param nodeResolvConf the node's resolv.conf, which tasks' are made from (kubelet's --resolv-conf); null: none
     */
    public TaskNetworks(CniConfigs configs, CniPlugins plugins, Path netnsDir, Path nodeResolvConf) {
        this.configs = configs;
        this.plugins = plugins;
        this.netnsDir = netnsDir;
        this.nodeResolvConf = nodeResolvConf;
    }

    /**
     * What a task of a Container gets: its mode, resolved on this node, the attachment for cni, and which /etc files.
     *
     * @param hostnameAsked whether the Container set network.hostname
     */
    public record Plan(
            ContainerSpec.NetworkMode mode,
            TaskNetwork attachment,
            ContainerSpec.DnsConfig dns,
            boolean hostnameAsked) {
        /**
         * /etc/hosts and /etc/hostname: on a network, as the CRI plugin writes a Pod's; without one (loopback only,
         * as ctr run without --cni, which writes neither) only when the Container named its hostname.
         */
        boolean writesNames() {
            return mode != ContainerSpec.NetworkMode.none || hostnameAsked;
        }

        /** /etc/resolv.conf: on a network, or when the Container gave a dnsConfig. */
        boolean writesResolvConf() {
            return mode != ContainerSpec.NetworkMode.none || dns != null;
        }
    }

    /** A Container asks for a network this node does not offer. */
    public static final class NetworkUnavailableException extends Exception {
        NetworkUnavailableException(String message) {
            super(message);
        }
    }

    /** The networks the node offers, for its RuntimeNode. */
    public List<RuntimeNodeStatus.NetworkInfo> offered() {
        return configs.load().stream()
                .map(n -> new RuntimeNodeStatus.NetworkInfo(n.name(), n.pluginTypes()))
                .toList();
    }

    /**
     * The network of a task of a Container with {@code spec}: cni (by default where the node has a network) with
     * the network's configuration as it is now, host, or none.
     */
    public Plan plan(String taskUid, ContainerSpec.Network spec) throws NetworkUnavailableException {
        ContainerSpec.NetworkMode asked = spec == null ? null : spec.mode();
        ContainerSpec.DnsConfig dns = spec == null ? null : spec.dnsConfig();
        boolean hostname = spec != null && spec.hostname() != null;
        if (asked == ContainerSpec.NetworkMode.host || asked == ContainerSpec.NetworkMode.none) {
            return new Plan(asked, null, dns, hostname);
        }
        String name = spec == null ? null : spec.name();
        CniNetwork network = configs.find(name).orElse(null);
        if (network == null) {
            // A Container that names nothing of a network runs without one here, as before the node had any;
            // one that asks for a network or forwards ports would silently lose them.
            if (asked == null
                    && (name == null || name.isEmpty())
                    && (spec == null || spec.ports() == null || spec.ports().isEmpty())) {
                return new Plan(ContainerSpec.NetworkMode.none, null, dns, hostname);
            }
            throw new NetworkUnavailableException((name == null || name.isEmpty()
                            ? "the node has no CNI network"
                            : "the node has no CNI network named " + name)
                    + " in " + configs.dir());
        }
        return new Plan(
                ContainerSpec.NetworkMode.cni,
                new TaskNetwork(
                        network.name(),
                        network.config(),
                        netnsDir.resolve(taskUid).toString(),
                        TaskNetwork.INTERFACE,
                        capabilityArgs(spec),
                        null),
                dns,
                hostname);
    }

    /**
     * Makes the namespace and runs the plugins' ADD, loopback first; the attachment with the result. What fails
     * half-way is left for {@link #detach}, which the task's release runs.
     */
    public TaskNetwork attach(String taskUid, TaskNetwork planned) throws IOException {
        Path netns = Path.of(planned.netns());
        // The mount table is read only for a file that is there already: a retried start's, or a crash's.
        if (Files.exists(netns) && !NetworkNamespaces.exists(netns)) {
            Files.delete(netns);
        }
        if (!Files.exists(netns)) {
            NetworkNamespaces.create(netns);
        }
        plugins.add(LOOPBACK, new CniPlugins.Attachment(taskUid, planned.netns(), "lo", null));
        ObjectNode result = plugins.add(
                CniNetwork.of(planned.config()),
                new CniPlugins.Attachment(taskUid, planned.netns(), planned.ifName(), planned.capabilityArgs()));
        return planned.attached(result);
    }

    /**
     * Runs the plugins' DEL (releasing the address, the host's end of the veth, port forwards) and removes the
     * namespace. Idempotent, and safe for an attachment that never got as far as its ADD; a failing DEL throws, and
     * the namespace stays for the retry.
     */
    public void detach(String taskUid, TaskNetwork attachment) throws IOException {
        Path netns = Path.of(attachment.netns());
        // DEL with the namespace gone is a plugin's to accept; a path that holds none would make it fail.
        String path = NetworkNamespaces.exists(netns) ? attachment.netns() : "";
        plugins.del(
                CniNetwork.of(attachment.config()),
                new CniPlugins.Attachment(taskUid, path, attachment.ifName(), attachment.capabilityArgs()),
                attachment.result());
        NetworkNamespaces.remove(netns);
        LOG.debug("task {} detached from network {}", taskUid, attachment.network());
    }

    /**
     * Points the task's spec at its network and gives it its /etc files: for cni the namespace's path; /etc/hostname
     * and /etc/resolv.conf written into the bundle, and /etc/hosts (the node's for host), as {@link Plan} says. A
     * destination the Container mounts something at itself is left to it, as kubelet leaves a Pod's.
     */
    public void configure(ObjectNode spec, Path bundle, Plan plan, TaskNetwork attached) throws IOException {
        if (attached != null) {
            for (JsonNode namespace : spec.path("linux").path("namespaces")) {
                if ("network".equals(namespace.path("type").asText())) {
                    ((ObjectNode) namespace).put("path", attached.netns());
                }
            }
        }
        String hostname = spec.path("hostname").asText("");
        List<String> ips = attached == null ? List.of() : attached.ips();
        boolean readOnly = spec.path("root").path("readonly").asBoolean(false);
        ArrayNode mounts = spec.withArrayProperty("mounts");
        Set<String> taken = new HashSet<>();
        mounts.forEach(m -> taken.add(m.path("destination").asText()));
        if (plan.writesNames()) {
            Path hosts = plan.mode() == ContainerSpec.NetworkMode.host
                    ? NODE_HOSTS
                    : write(bundle.resolve("hosts"), EtcFiles.hosts(hostname, ips));
            // The node's own file read-only: a task on the host's network must not rewrite the node's names.
            bind(mounts, taken, hosts, "/etc/hosts", readOnly || hosts == NODE_HOSTS);
            if (!hostname.isEmpty()) {
                bind(
                        mounts,
                        taken,
                        write(bundle.resolve("hostname"), EtcFiles.hostname(hostname)),
                        "/etc/hostname",
                        readOnly);
            }
        }
        if (!plan.writesResolvConf()) {
            return;
        }
        String node = nodeResolvConf == null || !Files.isRegularFile(nodeResolvConf)
                ? ""
                : Files.readString(nodeResolvConf, StandardCharsets.UTF_8);
        bind(
                mounts,
                taken,
                write(bundle.resolve("resolv.conf"), EtcFiles.resolvConf(node, plan.dns())),
                "/etc/resolv.conf",
                readOnly);
    }

    private static Path write(Path file, String content) throws IOException {
        // Not fsynced: the bundle is made again at the next start.
        Files.writeString(file, content, StandardCharsets.UTF_8);
        return file;
    }

    /** containerd's CRI mounts for these files: rbind, rprivate, read-only with a read-only rootfs. */
    private static void bind(ArrayNode mounts, Set<String> taken, Path source, String destination, boolean readOnly) {
        if (!Files.exists(source) || !taken.add(destination)) {
            return;
        }
        ObjectNode mount = mounts.addObject()
                .put("destination", destination)
                .put("type", "bind")
                .put("source", source.toString());
        mount.putArray("options").add("rbind").add("rprivate").add(readOnly ? "ro" : "rw");
    }

    /** portMappings for the portmap plugin: the ports with a hostPort. */
    private static ObjectNode capabilityArgs(ContainerSpec.Network spec) {
        ObjectNode args = JSON.createObjectNode();
        ArrayNode mappings = JSON.createArrayNode();
        if (spec != null && spec.ports() != null) {
            for (ContainerSpec.Port port : spec.ports()) {
                if (port.hostPort() == null) {
                    continue;
                }
                ObjectNode mapping = mappings.addObject()
                        .put("hostPort", port.hostPort())
                        .put("containerPort", port.containerPort())
                        .put(
                                "protocol",
                                (port.protocol() == null ? ContainerSpec.Protocol.TCP : port.protocol())
                                        .name()
                                        .toLowerCase(java.util.Locale.ROOT));
                if (port.hostIP() != null && !port.hostIP().isEmpty()) {
                    mapping.put("hostIP", port.hostIP());
                }
            }
        }
        if (!mappings.isEmpty()) {
            args.set("portMappings", mappings);
        }
        return args.isEmpty() ? null : args;
    }

    private static CniNetwork loopback() {
        try {
            return CniNetwork.parse(
                    "{\"cniVersion\":\"0.3.1\",\"name\":\"cni-loopback\",\"type\":\"loopback\"}"
                            .getBytes(StandardCharsets.UTF_8),
                    false);
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }
}
