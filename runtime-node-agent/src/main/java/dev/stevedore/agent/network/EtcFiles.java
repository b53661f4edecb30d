package dev.stevedore.agent.network;

import dev.stevedore.api.v1alpha1.ContainerSpec;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;

/**
 * The contents of a task's /etc/hosts, /etc/hostname and /etc/resolv.conf, as containerd's CRI plugin and kubelet
 * write a Pod's: the CRI plugin's default hosts with the task's addresses under its hostname (kubelet's managed
 * hosts file), and the node's resolv.conf with the Container's dnsConfig added as kubelet adds a Pod's.
 */
final class EtcFiles {
    /** The resolver reads at most three (glibc's MAXNS); kubelet keeps the first three too. */
    static final int MAX_NAMESERVERS = 3;
    /** kubelet's limit (MaxDNSSearchPaths since Kubernetes 1.28). */
    static final int MAX_SEARCHES = 32;

    private EtcFiles() {}

    static String hostname(String hostname) {
        return hostname + "\n";
    }

    static String hosts(String hostname, List<String> ips) {
        StringBuilder hosts = new StringBuilder()
                .append("# Managed by Stevedore.\n")
                .append("127.0.0.1\tlocalhost\n")
                .append("::1\tlocalhost ip6-localhost ip6-loopback\n")
                .append("fe00::0\tip6-localnet\n")
                .append("fe00::0\tip6-mcastprefix\n")
                .append("fe00::1\tip6-allnodes\n")
                .append("fe00::2\tip6-allrouters\n");
        for (String ip : ips) {
            hosts.append(ip).append('\t').append(hostname).append('\n');
        }
        return hosts.toString();
    }

    /**
     * The node's resolv.conf ({@code node}, its text) with {@code dns} added: name servers and search domains after
     * the node's, duplicates dropped, cut to the resolver's limits; an option of the same name replaced.
     */
    static String resolvConf(String node, ContainerSpec.DnsConfig dns) {
        LinkedHashSet<String> nameservers = new LinkedHashSet<>();
        LinkedHashSet<String> searches = new LinkedHashSet<>();
        Map<String, String> options = new LinkedHashMap<>();
        for (String line : node.split("\n")) {
            String[] fields = line.strip().split("\\s+");
            if (fields.length < 2 || fields[0].startsWith("#") || fields[0].startsWith(";")) {
                continue;
            }
            List<String> values = List.of(fields).subList(1, fields.length);
            switch (fields[0]) {
                case "nameserver" -> nameservers.add(fields[1]);
                // The last search (or domain) line counts, as the resolver reads it.
                case "search", "domain" -> {
                    searches.clear();
                    searches.addAll(values);
                }
                case "options" -> values.forEach(o -> option(options, o));
                default -> {}
            }
        }
        if (dns != null) {
            if (dns.nameservers() != null) {
                nameservers.addAll(dns.nameservers());
            }
            if (dns.searches() != null) {
                searches.addAll(dns.searches());
            }
            if (dns.options() != null) {
                dns.options().forEach(o -> options.put(o.name(), o.value()));
            }
        }
        StringBuilder conf = new StringBuilder();
        List<String> search = new ArrayList<>(searches);
        if (!search.isEmpty()) {
            conf.append("search ")
                    .append(String.join(" ", search.subList(0, Math.min(search.size(), MAX_SEARCHES))))
                    .append('\n');
        }
        nameservers.stream()
                .limit(MAX_NAMESERVERS)
                .forEach(n -> conf.append("nameserver ").append(n).append('\n'));
        if (!options.isEmpty()) {
            List<String> opts = new ArrayList<>();
            options.forEach((name, value) -> opts.add(value == null || value.isEmpty() ? name : name + ":" + value));
            conf.append("options ").append(String.join(" ", opts)).append('\n');
        }
        return conf.toString();
    }

    private static void option(Map<String, String> options, String option) {
        int colon = option.indexOf(':');
        options.put(colon < 0 ? option : option.substring(0, colon), colon < 0 ? null : option.substring(colon + 1));
    }
}
