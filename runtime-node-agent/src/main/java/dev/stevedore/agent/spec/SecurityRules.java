package dev.stevedore.agent.spec;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.stevedore.api.v1alpha1.ContainerSpec;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The rules of the security levels (docs/security-levels.md), checked on the finished spec: what a Container's
 * fields and ociSpec made of the defaults. A pure function, the same rules as the chart's admission policy, so that
 * a Container that got past admission (the policy missing, or being replaced) still cannot run; its messages are
 * the policy's, field by field.
 */
public final class SecurityRules {
    /** Where a Container below privileged may set ociSpec: each key path, with everything below it. */
    static final Set<String> OCI_SPEC_PATHS = Set.of(
            "hostname",
            "domainname",
            "process.args",
            "process.env",
            "process.cwd",
            "process.rlimits",
            "process.noNewPrivileges",
            "process.apparmorProfile",
            "process.selinuxLabel",
            "process.capabilities.bounding",
            "process.capabilities.effective",
            "process.capabilities.permitted",
            "process.capabilities.inheritable",
            "process.capabilities.ambient",
            "root.readonly",
            "linux.namespaces",
            "linux.maskedPaths",
            "linux.readonlyPaths",
            "linux.sysctl",
            "linux.resources.memory",
            "linux.resources.cpu",
            "linux.resources.pids",
            "linux.resources.hugepageLimits");

    static final List<String> CAPABILITY_SETS = List.of("bounding", "effective", "permitted", "inheritable", "ambient");
    static final Set<String> RESTRICTED_CAPABILITIES = Set.of("CAP_NET_BIND_SERVICE");
    /** The five namespaces every Container below privileged keeps; a cgroup namespace may come on top. */
    static final List<String> REQUIRED_NAMESPACES = List.of("pid", "network", "ipc", "uts", "mount");

    static final Set<String> NAMESPACE_TYPES = Set.of("pid", "network", "ipc", "uts", "mount", "cgroup");
    /** Pod Security Standards' safe sysctls (Kubernetes 1.32 and later): namespaced, and harmless to neighbours. */
    static final Set<String> SAFE_SYSCTLS = Set.of(
            "kernel.shm_rmid_forced",
            "net.ipv4.ip_local_port_range",
            "net.ipv4.ip_local_reserved_ports",
            "net.ipv4.ip_unprivileged_port_start",
            "net.ipv4.ping_group_range",
            "net.ipv4.tcp_syncookies",
            "net.ipv4.tcp_keepalive_time",
            "net.ipv4.tcp_fin_timeout",
            "net.ipv4.tcp_keepalive_intvl",
            "net.ipv4.tcp_keepalive_probes",
            "net.ipv4.tcp_rmem",
            "net.ipv4.tcp_wmem");

    /** Pod Security Standards' SELinux types for containers. */
    static final Set<String> SELINUX_TYPES =
            Set.of("container_t", "container_init_t", "container_kvm_t", "container_engine_t");

    private static final Set<String> OCI_SPEC_PREFIXES = prefixes();
    private static final ObjectMapper MAPPER = new ObjectMapper();

    private SecurityRules() {}

    /** One broken rule: the field, as the Container's author wrote it or would write it, and what is wrong there. */
    public record Violation(String rule, String field, String problem) {
        public String message(SecurityLevel.Enforced enforced) {
            return field + " " + problem + ", which the " + enforced.level() + " level of namespace \""
                    + enforced.namespace() + "\" does not allow";
        }
    }

    /**
     * The rules of {@code level} that the Container breaks.
     *
     * @param defaults the spec before ociSpec was merged: what the node generates from the defaults and the fields
     * @param spec the finished spec, after ociSpec and the node's policy
     */
    public static List<Violation> check(
            SecurityLevel level, ContainerSpec container, ObjectNode defaults, ObjectNode spec) {
        List<Violation> violations = new ArrayList<>();
        if (level == SecurityLevel.privileged) {
            return violations;
        }
        if (container.ociSpec() != null) {
            ociSpecKeys("", MAPPER.valueToTree(container.ociSpec()), violations);
        }
        JsonNode process = spec.path("process");
        JsonNode linux = spec.path("linux");
        capabilities(level, process.path("capabilities"), violations);
        boolean hostNetwork =
                container.network() != null && container.network().mode() == ContainerSpec.NetworkMode.host;
        if (hostNetwork) {
            violations.add(new Violation("namespaces", "spec.network.mode", "is host"));
        }
        namespaces(linux.path("namespaces"), hostNetwork, violations);
        devices(defaults.path("linux"), linux, violations);
        containsAll("linux.maskedPaths", linux.path("maskedPaths"), DefaultSpec.MASKED_PATHS, violations);
        containsAll("linux.readonlyPaths", linux.path("readonlyPaths"), DefaultSpec.READONLY_PATHS, violations);
        if (!linux.path("seccomp").equals(defaults.path("linux").path("seccomp"))) {
            violations.add(ociSpec("seccomp", "linux.seccomp", "changes the node's default seccomp profile"));
        }
        // A boolean, not a string that reads as one: what the admission policy compares and the runtime parses.
        if (!process.path("noNewPrivileges").booleanValue()) {
            violations.add(ociSpec("no-new-privileges", "process.noNewPrivileges", "is not true"));
        }
        linux.path("sysctl").fieldNames().forEachRemaining(name -> {
            if (!SAFE_SYSCTLS.contains(name)) {
                violations.add(ociSpec("sysctls", "linux.sysctl", "sets " + name));
            }
        });
        securityModules(process, violations);
        hostPaths(spec.path("mounts"), violations);
        if (level == SecurityLevel.restricted) {
            nonRoot(container, process, violations);
            if (!spec.path("root").path("readonly").booleanValue()) {
                violations.add(ociSpec("read-only-root", "root.readonly", "is not true"));
            }
        }
        return violations;
    }

    private static void ociSpecKeys(String prefix, JsonNode object, List<Violation> violations) {
        for (Map.Entry<String, JsonNode> field : object.properties()) {
            String path = prefix.isEmpty() ? field.getKey() : prefix + "." + field.getKey();
            if (OCI_SPEC_PATHS.contains(path)) {
                continue;
            }
            if (OCI_SPEC_PREFIXES.contains(path) && field.getValue().isObject()) {
                ociSpecKeys(path, field.getValue(), violations);
            } else {
                violations.add(ociSpec("ocispec-keys", path, "is set"));
            }
        }
    }

    private static void capabilities(SecurityLevel level, JsonNode capabilities, List<Violation> violations) {
        Set<String> allowed =
                level == SecurityLevel.restricted ? RESTRICTED_CAPABILITIES : Set.copyOf(DefaultSpec.CAPABILITIES);
        for (String set : CAPABILITY_SETS) {
            for (JsonNode capability : capabilities.path(set)) {
                if (!allowed.contains(capability.asText())) {
                    violations.add(
                            ociSpec("capabilities", "process.capabilities." + set, "holds " + capability.asText()));
                    break;
                }
            }
        }
    }

    /** @param hostNetwork whether network.mode host (reported already) took the network namespace away */
    private static void namespaces(JsonNode namespaces, boolean hostNetwork, List<Violation> violations) {
        Set<String> types = new HashSet<>();
        for (JsonNode namespace : namespaces) {
            String type = namespace.path("type").asText();
            types.add(type);
            if (namespace.has("path")) {
                violations.add(ociSpec("namespaces", "linux.namespaces", "joins a namespace at a path"));
            }
            if (!NAMESPACE_TYPES.contains(type)) {
                violations.add(ociSpec("namespaces", "linux.namespaces", "adds a namespace of another type"));
            }
        }
        for (String type : REQUIRED_NAMESPACES) {
            if (!types.contains(type) && !(hostNetwork && type.equals("network"))) {
                violations.add(ociSpec("namespaces", "linux.namespaces", "lacks the " + type + " namespace"));
            }
        }
    }

    private static void devices(JsonNode defaults, JsonNode linux, List<Violation> violations) {
        if (!linux.path("devices").equals(defaults.path("devices"))) {
            violations.add(ociSpec("devices", "linux.devices", "adds devices"));
        }
        if (!linux.path("resources")
                .path("devices")
                .equals(defaults.path("resources").path("devices"))) {
            violations.add(ociSpec("devices", "linux.resources.devices", "changes the default device rules"));
        }
    }

    private static void containsAll(String path, JsonNode actual, List<String> required, List<Violation> violations) {
        Set<String> present = new HashSet<>();
        actual.forEach(node -> present.add(node.asText()));
        for (String entry : required) {
            if (!present.contains(entry)) {
                violations.add(ociSpec("masked-paths", path, "lacks " + entry));
                return;
            }
        }
    }

    private static void securityModules(JsonNode process, List<Violation> violations) {
        JsonNode apparmor = process.path("apparmorProfile");
        if (!apparmor.isMissingNode()
                && (apparmor.asText().isEmpty() || apparmor.asText().equals("unconfined"))) {
            violations.add(ociSpec("apparmor", "process.apparmorProfile", "is \"" + apparmor.asText() + "\""));
        }
        JsonNode selinux = process.path("selinuxLabel");
        if (!selinux.isMissingNode()) {
            String[] parts = selinux.asText().split(":", -1);
            String type = parts.length >= 3 ? parts[2] : "";
            if (!SELINUX_TYPES.contains(type)) {
                violations.add(ociSpec("selinux", "process.selinuxLabel", "has type \"" + type + "\""));
            }
        }
    }

    /** Bind mounts other than the defaults; the node's policy has already limited the other types. */
    private static void hostPaths(JsonNode mounts, List<Violation> violations) {
        Set<JsonNode> defaultMounts = new HashSet<>();
        DefaultSpec.mounts().forEach(defaultMounts::add);
        for (JsonNode mount : mounts) {
            if (!defaultMounts.contains(mount)
                    && NodePolicy.isBind(mount.path("type").asText(""), mount.path("options"))) {
                violations.add(new Violation(
                        "host-paths",
                        "spec.mounts",
                        "binds host path " + mount.path("source").asText()));
            }
        }
    }

    /** The resolved user: only the node knows the image's, so a Container that states none is checked here. */
    private static void nonRoot(ContainerSpec container, JsonNode process, List<Violation> violations) {
        if (process.path("user").path("uid").asLong(0) != 0) {
            return;
        }
        boolean stated = container.process() != null
                && container.process().user() != null
                && container.process().user().uid() != null;
        violations.add(
                stated
                        ? new Violation("run-as-non-root", "spec.process.user.uid", "is 0")
                        : new Violation(
                                "run-as-non-root",
                                "spec.process.user",
                                "is not set and the image's user is root (uid 0)"));
    }

    private static Violation ociSpec(String rule, String path, String problem) {
        return new Violation(rule, "spec.ociSpec." + path, problem);
    }

    private static Set<String> prefixes() {
        Set<String> prefixes = new HashSet<>();
        for (String path : OCI_SPEC_PATHS) {
            for (int dot = path.indexOf('.'); dot > 0; dot = path.indexOf('.', dot + 1)) {
                prefixes.add(path.substring(0, dot));
            }
        }
        return Set.copyOf(prefixes);
    }
}
