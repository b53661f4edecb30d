package dev.stevedore.api.v1alpha1;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.crd.generator.annotation.PreserveUnknownFields;
import io.fabric8.crd.generator.annotation.SchemaFrom;
import io.fabric8.generator.annotation.Default;
import io.fabric8.generator.annotation.Pattern;
import io.fabric8.generator.annotation.Required;
import io.fabric8.generator.annotation.Size;
import io.fabric8.generator.annotation.ValidationRule;
import io.fabric8.kubernetes.api.model.LocalObjectReference;
import java.util.List;
import java.util.Map;

@JsonInclude(JsonInclude.Include.NON_EMPTY)
@ValidationRule(
        value = "!has(oldSelf.nodeName) || (has(self.nodeName) && self.nodeName == oldSelf.nodeName)",
        message = "nodeName is immutable once set",
        fieldPath = ".nodeName",
        reason = "FieldValueForbidden")
@ValidationRule(
        value = "!has(oldSelf.snapshotter) || (has(self.snapshotter) && self.snapshotter == oldSelf.snapshotter)",
        message = "snapshotter is immutable once set",
        fieldPath = ".snapshotter",
        reason = "FieldValueForbidden")
public record ContainerSpec(
        @Required
        @Size(min = 1, max = 512)
        @Pattern(IMAGE_REFERENCE)
        @JsonPropertyDescription(
                "OCI image reference, by tag or digest: [registry[:port]/]repository[:tag][@sha256:digest]. "
                        + "Without a registry, docker.io is meant. May change: the node prepares the new image for the next Task.")
        String image,

        @JsonPropertyDescription(
                "Secrets of type kubernetes.io/dockerconfigjson in this namespace with credentials for "
                        + "the image's registry, as in a Pod.")
        List<LocalObjectReference> imagePullSecrets,

        @JsonPropertyDescription("The OCI runtime that runs this container's tasks.")
        Runtime runtime,

        @Default("overlayfs")
        @JsonPropertyDescription("How the root filesystem is made from the image's layers: overlayfs (shared layers, "
                + "an upper directory per container) or native (a full copy). Immutable once set.")
        Snapshotter snapshotter,

        @Size(max = 253)
        @Pattern(DNS_SUBDOMAIN)
        @JsonPropertyDescription("The node (RuntimeNode name) the container lives on. Set it to pin the container; "
                + "otherwise the operator sets it when it schedules. Immutable once set.")
        String nodeName,

        @JsonPropertyDescription("Labels the chosen RuntimeNode must have, as in a Pod.")
        Map<String, String> nodeSelector,

        @JsonPropertyDescription("Overrides on the image config's Entrypoint, Cmd, Env, WorkingDir and User, as with "
                + "ctr run or docker run.")
        Process process,

        @JsonPropertyDescription("Resource limits enforced through cgroups.")
        Resources resources,

        @Size(max = 64) @JsonPropertyDescription("Extra OCI mounts, added after the runtime defaults.")
        List<Mount> mounts,

        @JsonPropertyDescription("The tasks' network: a CNI network of the node (the default where the node has one), "
                + "the host's network, or none; ports, DNS and hostname.")
        Network network,

        // Schema of an ObjectNode: any object, kept whole. Map<String, Object> alone would make every value an object
        // whose content the API server prunes, and refuse strings and lists such as hostname or mounts.
        @SchemaFrom(type = com.fasterxml.jackson.databind.node.ObjectNode.class)
        @PreserveUnknownFields
        @JsonPropertyDescription(
                "A free-form part of an OCI runtime spec (config.json), merged last into the generated "
                        + "spec, for what the fields above do not cover. Objects merge key by key; anything else replaces.")
        Map<String, Object> ociSpec) {

    /** The reference grammar of the distribution project, in RE2 syntax. */
    static final String IMAGE_REFERENCE =
            "^(([a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)(\\.[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)*"
                    + "(:[0-9]+)?/)?[a-z0-9]+(([._]|__|-+)[a-z0-9]+)*(/[a-z0-9]+(([._]|__|-+)[a-z0-9]+)*)*"
                    + "(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@[A-Za-z][A-Za-z0-9]*([-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?$";

    static final String DNS_LABEL = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";

    static final String DNS_SUBDOMAIN = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";

    public enum Snapshotter {
        overlayfs,
        @com.fasterxml.jackson.annotation.JsonProperty("native")
        nativeCopy
    }

    @JsonInclude(JsonInclude.Include.NON_EMPTY)
    public record Runtime(
            @Default("runc") @JsonPropertyDescription("runc or crun; never a path.")
            RuntimeName name) {}

    public enum RuntimeName {
        runc,
        crun
    }

    // Rules sit on the enclosing type: the generator would copy a rule on a record component twice. The reason is
    // FieldValueInvalid, not FieldValueDuplicate: the API server drops the message of a Duplicate and says only
    // 'Duplicate value: "object"'.
    @JsonInclude(JsonInclude.Include.NON_EMPTY)
    @ValidationRule(
            value = "!has(self.env) || self.env.all(e, self.env.exists_one(f, f.name == e.name))",
            message = "env names must be unique",
            fieldPath = ".env",
            reason = "FieldValueInvalid")
    public record Process(
            @JsonPropertyDescription("The command and its arguments; replaces the image's Entrypoint and Cmd.")
            List<String> args,

            @Size(max = 256)
            @JsonPropertyDescription(
                    "Environment variables, added to the image's Env; a name already there is replaced.")
            List<EnvVar> env,

            @Pattern("^/.*") @JsonPropertyDescription("Absolute working directory; replaces the image's WorkingDir.")
            String workingDir,

            @JsonPropertyDescription("The user and group the process runs as; replaces the image's User. The "
                    + "supplementary groups are the uid's groups in the image's /etc/group.")
            User user) {}

    public record EnvVar(
            @Required
            @Size(min = 1, max = 256)
            @Pattern("^[^=]+$")
            @JsonPropertyDescription("Variable name; must not contain '='.")
            String name,

            @JsonPropertyDescription("Variable value; empty when absent.")
            String value) {}

    public record User(
            @Required @io.fabric8.generator.annotation.Min(0) @JsonPropertyDescription("Numeric user id.")
            Long uid,

            @io.fabric8.generator.annotation.Min(0)
            @JsonPropertyDescription("Numeric group id; when absent, the uid's primary group in the image's "
                    + "/etc/passwd, or 0 (as runAsUser without runAsGroup in a Pod).")
            Long gid) {}

    @JsonInclude(JsonInclude.Include.NON_EMPTY)
    @ValidationRule(
            value =
                    "!has(self.memory) || (isQuantity(string(self.memory)) && quantity(string(self.memory)).isGreaterThan(quantity('0')))",
            message = "memory must be a positive quantity, e.g. 64Mi",
            fieldPath = ".memory",
            reason = "FieldValueInvalid")
    @ValidationRule(
            value =
                    "!has(self.cpu) || (isQuantity(string(self.cpu)) && quantity(string(self.cpu)).isGreaterThan(quantity('0')))",
            message = "cpu must be a positive quantity, e.g. 500m",
            fieldPath = ".cpu",
            reason = "FieldValueInvalid")
    public record Resources(
            @JsonPropertyDescription(
                    "Memory limit, a Kubernetes quantity such as 64Mi; the task is OOM-killed above it.")
            io.fabric8.kubernetes.api.model.Quantity memory,

            @JsonPropertyDescription("CPU limit, a Kubernetes quantity such as 500m, enforced as a CFS quota.")
            io.fabric8.kubernetes.api.model.Quantity cpu,

            @io.fabric8.generator.annotation.Min(1) @JsonPropertyDescription("Maximum number of processes and threads.")
            Long pids) {}

    @JsonInclude(JsonInclude.Include.NON_EMPTY)
    public record Mount(
            @Default("bind") @JsonPropertyDescription("Mount type, e.g. bind, tmpfs, proc.")
            String type,

            @JsonPropertyDescription("Mount source; for bind mounts a host path the node's configuration must allow.")
            String source,

            @Required @Pattern("^/.*") @JsonPropertyDescription("Absolute path inside the container.")
            String destination,

            @JsonPropertyDescription("Mount options, e.g. rbind, ro, nosuid.")
            List<String> options) {}

    public enum NetworkMode {
        cni,
        host,
        none
    }

    // The rules sit on the enclosing type, as Process's (see there).
    @JsonInclude(JsonInclude.Include.NON_EMPTY)
    @ValidationRule(
            value = "!has(self.ports) || !has(self.mode) || self.mode == 'cni'",
            message = "ports are forwarded to a task's own network: only with mode cni",
            fieldPath = ".ports",
            reason = "FieldValueForbidden")
    @ValidationRule(
            value = "!has(self.name) || !has(self.mode) || self.mode == 'cni'",
            message = "name names a CNI network: only with mode cni",
            fieldPath = ".name",
            reason = "FieldValueForbidden")
    @ValidationRule(
            value =
                    "!has(self.ports) || self.ports.all(p, !has(p.hostPort) || "
                            + "self.ports.exists_one(q, has(q.hostPort) && q.hostPort == p.hostPort && q.protocol == p.protocol))",
            message = "a hostPort may be forwarded once per protocol",
            fieldPath = ".ports",
            reason = "FieldValueInvalid")
    public record Network(
            @JsonPropertyDescription("cni: a network namespace of the task's own, attached to a CNI network of the "
                    + "node (the default where the node has a CNI configuration); host: the node's network namespace, "
                    + "allowed only at the privileged security level; none: loopback only (the default elsewhere).")
            NetworkMode mode,

            @Size(max = 253)
            @JsonPropertyDescription("The CNI network (its configuration's name) when the node offers several; "
                    + "the node's default otherwise. The RuntimeNode lists the networks it offers.")
            String name,

            @Size(max = 64)
            @JsonPropertyDescription("The task's ports; those with a hostPort are forwarded from the node, through "
                    + "the CNI portmap plugin, as a Pod's hostPorts.")
            List<Port> ports,

            @JsonPropertyDescription(
                    "Added to the node's resolv.conf for the task's /etc/resolv.conf, as a Pod's " + "dnsConfig.")
            DnsConfig dnsConfig,

            @Size(max = 63)
            @Pattern(DNS_LABEL)
            @JsonPropertyDescription("The task's hostname, also in its /etc/hostname and /etc/hosts; the "
                    + "Container's UID (shortened) otherwise.")
            String hostname) {}

    public enum Protocol {
        TCP,
        UDP,
        SCTP
    }

    @JsonInclude(JsonInclude.Include.NON_EMPTY)
    @ValidationRule(
            value = "!has(self.hostIP) || isIP(self.hostIP)",
            message = "hostIP must be an IP address",
            fieldPath = ".hostIP",
            reason = "FieldValueInvalid")
    public record Port(
            @Required
            @io.fabric8.generator.annotation.Min(1)
            @io.fabric8.generator.annotation.Max(65535)
            @JsonPropertyDescription("The port the task listens on.")
            Integer containerPort,

            @Default("TCP") @JsonPropertyDescription("TCP, UDP or SCTP.")
            Protocol protocol,

            @io.fabric8.generator.annotation.Min(1)
            @io.fabric8.generator.annotation.Max(65535)
            @JsonPropertyDescription("The node's port forwarded to containerPort.")
            Integer hostPort,

            @Size(max = 45)
            @JsonPropertyDescription("The node's address the hostPort is bound to; all of them otherwise.")
            String hostIP) {}

    @JsonInclude(JsonInclude.Include.NON_EMPTY)
    @ValidationRule(
            value = "!has(self.nameservers) || self.nameservers.all(n, isIP(n))",
            message = "nameservers must be IP addresses",
            fieldPath = ".nameservers",
            reason = "FieldValueInvalid")
    @ValidationRule(
            value = "!has(self.searches) || self.searches.all(s, size(s) <= 253)",
            message = "a search domain has at most 253 characters",
            fieldPath = ".searches",
            reason = "FieldValueInvalid")
    public record DnsConfig(
            @Size(max = 3) @JsonPropertyDescription("Name servers, after the node's (at most 3 in all are kept).")
            List<String> nameservers,

            @Size(max = 32) @JsonPropertyDescription("Search domains, after the node's.")
            List<String> searches,

            @Size(max = 32)
            @JsonPropertyDescription("Resolver options; one of the node's with the same name is replaced.")
            List<DnsOption> options) {}

    public record DnsOption(
            @Required @Size(min = 1, max = 64) @Pattern("^[A-Za-z0-9_-]+$") @JsonPropertyDescription("e.g. ndots.")
            String name,

            @Size(max = 64) @Pattern("^[!-~]*$") @JsonPropertyDescription("e.g. 2; none for options without one.")
            String value) {}
}
