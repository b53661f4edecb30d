package dev.stevedore.agent.network;

import java.nio.file.Path;
import java.util.List;

/**
 * Where the node's CNI networks and plugins are, and the resolv.conf tasks' are made from.
 *
 * @param cniConfDir the CNI configuration directory (containerd's and kubelet's default /etc/cni/net.d)
 * @param cniBinDirs the plugin directories, searched in order: the CNI project's /opt/cni/bin, then Debian's and
 *     Ubuntu's /usr/lib/cni
 * @param resolvConf the node's resolv.conf (kubelet's --resolv-conf); null: tasks get only their dnsConfig
 */
public record NetworkSettings(Path cniConfDir, List<Path> cniBinDirs, Path resolvConf) {
    public static final NetworkSettings DEFAULTS = new NetworkSettings(
            Path.of("/etc/cni/net.d"),
            List.of(Path.of("/opt/cni/bin"), Path.of("/usr/lib/cni")),
            Path.of("/etc/resolv.conf"));

    public NetworkSettings {
        cniBinDirs = List.copyOf(cniBinDirs);
    }

    /** The tasks' networks, their namespaces bound in {@code netnsDir}. */
    public TaskNetworks taskNetworks(Path netnsDir) {
        return new TaskNetworks(new CniConfigs(cniConfDir), new CniPlugins(cniBinDirs), netnsDir, resolvConf);
    }
}
