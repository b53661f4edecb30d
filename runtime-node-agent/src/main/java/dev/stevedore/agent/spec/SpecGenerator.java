package dev.stevedore.agent.spec;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.stevedore.agent.images.ImageConfig;
import dev.stevedore.agent.images.Platform;
import dev.stevedore.api.v1alpha1.ContainerSpec;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * Builds a container's config.json (OCI runtime spec 1.0.2) in layers, each overriding the one before, as
 * containerd's {@code ctr run} does:
 * <ol>
 * <li>{@link DefaultSpec}: containerd's defaults (namespaces, capabilities, masks, mounts, devices) and the
 * hostname (network.hostname, or one from the container id); without the network namespace for network.mode host,
 * as ctr run --net-host. The cgroup is the task's, set in its bundle, and so is what the task's network adds (the
 * namespace's path, /etc/hosts, /etc/hostname, /etc/resolv.conf).</li>
 * <li>The image config. The command is Entrypoint followed by Cmd; the environment is the image's Env, or the
 * default PATH when the image has none (containerd's rule: an image's Env without PATH gets none); the working
 * directory is the image's WorkingDir, or /; the user and its groups are the image's User, resolved in the
 * prepared root filesystem by {@link ImageUser}.</li>
 * <li>The Container's process. {@code args}, when given, is the whole command and replaces both Entrypoint and
 * Cmd, as containerd's {@code WithProcessArgs} and ctr run do (Docker's command would replace only Cmd): the
 * API documents args that way, and one rule is easier to predict than a split. {@code env} replaces variables of
 * the same name and adds the rest; {@code workingDir} and {@code user} (gid defaulting to the uid, as the API
 * says) replace the image's.</li>
 * <li>Resources ({@link ResourceLimits}) and the Container's mounts, appended after the defaults.</li>
 * <li>ociSpec, merged last as a JSON Merge Patch ({@link JsonMerge}): objects merge key by key, anything else
 * replaces, null deletes.</li>
 * </ol>
 * The finished spec then has to pass {@link NodePolicy}: host paths the node does not allow are refused whichever
 * layer brought them; and then the rules of the namespace's {@link SecurityLevel} ({@link SecurityRules}).
 */
public final class SpecGenerator {
    /** runc's and crun's rule for container ids; also keeps the id from steering the cgroup path with / or .. */
    private static final Pattern CONTAINER_ID = Pattern.compile("[A-Za-z0-9_+-][A-Za-z0-9_.+-]{0,1023}");

    private static final Pattern FULL_HEX_ID = Pattern.compile("[0-9a-f]{64}");
    /** A hostname is at most one DNS label long in practice (the kernel's limit is 64 bytes). */
    private static final int MAX_HOSTNAME = 63;

    private static final ObjectMapper MAPPER = new ObjectMapper();

    private final NodePolicy policy;
    /** The node's architecture (Go's name) and kernel release: the seccomp profile depends on them. */
    private final String arch = Platform.current().architecture();

    private final String kernelRelease = System.getProperty("os.version");

    /** @param allowedHostPaths the host directories a Container may bind mount, with everything below them */
    public SpecGenerator(List<Path> allowedHostPaths) {
        this.policy = new NodePolicy(allowedHostPaths);
    }

    /**
     * The container's spec, for a bundle whose root filesystem is the directory {@code rootfs} next to config.json.
     *
     * @param containerId the runtime's id of the container (also its hostname, shortened)
     * @param rootfs the container's prepared root filesystem, mounted read-only on the host: the image's User and
     *        groups are looked up in its /etc/passwd and /etc/group, links resolved inside it, never to the host
     * @param enforced the security level of the Container's namespace
     * @throws SpecRejectedException for what the node refuses, e.g. a bind mount of a host path it does not allow,
     *         a user or group name missing from the image, or an image without a command
     * @throws SecurityLevelViolationException for what the namespace's security level refuses
     */
    public ObjectNode generate(
            String containerId,
            ContainerSpec container,
            ImageConfig image,
            Path rootfs,
            SecurityLevel.Enforced enforced)
            throws SpecRejectedException {
        if (containerId == null || !CONTAINER_ID.matcher(containerId).matches()) {
            throw new IllegalArgumentException("not a container id: " + containerId);
        }
        ContainerSpec.Process overrides = container.process();
        ContainerSpec.Network network = container.network();
        ObjectNode spec = DefaultSpec.create(
                network != null && network.hostname() != null ? network.hostname() : hostname(containerId));
        if (network != null && network.mode() == ContainerSpec.NetworkMode.host) {
            removeNamespace(spec, "network");
        }
        ObjectNode process = (ObjectNode) spec.get("process");

        setArray(process, "args", args(overrides, image));
        setArray(process, "env", env(overrides, image));
        process.put("cwd", cwd(overrides, image));
        ImageUser.Ids user = user(overrides, image, rootfs);
        ObjectNode userNode =
                process.withObjectProperty("user").put("uid", user.uid()).put("gid", user.gid());
        ArrayNode gids = userNode.putArray("additionalGids");
        user.additionalGids().forEach(gids::add);

        ResourceLimits.apply(
                container.resources(), spec.withObjectProperty("linux").withObjectProperty("resources"));
        ArrayNode mounts = spec.withArrayProperty("mounts");
        if (container.mounts() != null) {
            for (ContainerSpec.Mount mount : container.mounts()) {
                mounts.add(toOci(mount));
            }
        }

        ObjectNode ociSpec =
                container.ociSpec() == null || container.ociSpec().isEmpty() ? null : toObject(container.ociSpec());
        // The capabilities are final only after ociSpec, which may also change or remove the profile: the profile
        // is computed on the merged spec and put in before the merge.
        ObjectNode merged = ociSpec == null ? spec : JsonMerge.apply(spec.deepCopy(), ociSpec);
        spec.withObjectProperty("linux").set("seccomp", DefaultSeccomp.CONTAINERD.profile(merged, arch, kernelRelease));
        ObjectNode beforeOciSpec = spec.deepCopy();
        if (ociSpec != null) {
            JsonMerge.apply(spec, ociSpec);
        }
        policy.check(spec);
        List<SecurityRules.Violation> violations =
                SecurityRules.check(enforced.level(), container, beforeOciSpec, spec);
        if (!violations.isEmpty()) {
            throw new SecurityLevelViolationException(enforced, violations);
        }
        return spec;
    }

    /**
     * sha256 of the spec's canonical JSON (object keys sorted recursively, no insignificant whitespace), as
     * {@code sha256:<hex>}: the Container's status.specDigest. Equal specs give equal digests whatever the order
     * of their keys.
     */
    public String digest(ObjectNode spec) {
        return CanonicalJson.sha256(spec);
    }

    /** As containerd's WithHostNamespace: the container stays in the runtime's (the host's) namespace of that type. */
    private static void removeNamespace(ObjectNode spec, String type) {
        ArrayNode namespaces = spec.withObjectProperty("linux").withArrayProperty("namespaces");
        for (int i = namespaces.size() - 1; i >= 0; i--) {
            if (type.equals(namespaces.get(i).path("type").asText())) {
                namespaces.remove(i);
            }
        }
    }

    /** Docker's short id for a full hex id; otherwise the id itself, cut to a hostname's length. */
    static String hostname(String containerId) {
        if (FULL_HEX_ID.matcher(containerId).matches()) {
            return containerId.substring(0, 12);
        }
        return containerId.length() <= MAX_HOSTNAME ? containerId : containerId.substring(0, MAX_HOSTNAME);
    }

    private static List<String> args(ContainerSpec.Process overrides, ImageConfig image) throws SpecRejectedException {
        if (overrides != null && overrides.args() != null && !overrides.args().isEmpty()) {
            return overrides.args();
        }
        List<String> args = new ArrayList<>();
        if (image.entrypoint() != null) {
            args.addAll(image.entrypoint());
        }
        if (image.cmd() != null) {
            args.addAll(image.cmd());
        }
        if (args.isEmpty()) {
            throw new SpecRejectedException(
                    "no command: the image has no Entrypoint or Cmd and spec.process.args is empty");
        }
        return args;
    }

    private static List<String> env(ContainerSpec.Process overrides, ImageConfig image) {
        boolean imageHasEnv = image.env() != null && !image.env().isEmpty();
        Env env = new Env(imageHasEnv ? image.env() : List.of(DefaultSpec.DEFAULT_PATH));
        if (overrides != null && overrides.env() != null) {
            for (ContainerSpec.EnvVar variable : overrides.env()) {
                env.set(variable.name(), variable.value());
            }
        }
        return env.toList();
    }

    private static String cwd(ContainerSpec.Process overrides, ImageConfig image) throws SpecRejectedException {
        String cwd = overrides != null
                        && overrides.workingDir() != null
                        && !overrides.workingDir().isEmpty()
                ? overrides.workingDir()
                : image.workingDir();
        if (cwd == null || cwd.isEmpty()) {
            return "/";
        }
        // The runtime spec requires an absolute cwd; runc would fail later with a less helpful message.
        if (!cwd.startsWith("/")) {
            throw new SpecRejectedException("working directory \"" + cwd + "\" is not an absolute path");
        }
        return cwd;
    }

    private static ImageUser.Ids user(ContainerSpec.Process overrides, ImageConfig image, Path rootfs)
            throws SpecRejectedException {
        if (overrides != null && overrides.user() != null && overrides.user().uid() != null) {
            return ImageUser.resolve(overrides.user().uid(), overrides.user().gid(), rootfs);
        }
        return ImageUser.resolve(image.user(), rootfs);
    }

    /**
     * A Container's mount in OCI form. The API's default type is bind; a bind mount without a bind option gets
     * rbind, as Docker and containerd give, so that mounts below the source come along. The node's rules are
     * checked on the finished spec.
     */
    private static ObjectNode toOci(ContainerSpec.Mount mount) throws SpecRejectedException {
        ObjectNode oci = MAPPER.createObjectNode();
        String type = mount.type() == null || mount.type().isEmpty() ? "bind" : mount.type();
        String destination = mount.destination();
        // Normalized so that the runtime and the node's checks see the same path (/data/../ is /).
        oci.put(
                "destination",
                destination != null && destination.startsWith("/")
                        ? NodePolicy.path(destination, "mount destination")
                                .normalize()
                                .toString()
                        : destination);
        oci.put("type", type);
        if (mount.source() != null) {
            oci.put("source", mount.source());
        }
        ArrayNode options = oci.putArray("options");
        if (mount.options() != null) {
            mount.options().forEach(options::add);
        }
        if ("bind".equals(type) && !NodePolicy.hasBindOption(options)) {
            options.add("rbind");
        }
        if (options.isEmpty()) {
            oci.remove("options");
        }
        return oci;
    }

    private static ObjectNode toObject(Map<String, Object> ociSpec) throws SpecRejectedException {
        try {
            return MAPPER.valueToTree(ociSpec);
        } catch (IllegalArgumentException e) {
            throw new SpecRejectedException("ociSpec is not a JSON object: " + e.getMessage());
        }
    }

    private static void setArray(ObjectNode node, String field, List<String> values) {
        ArrayNode array = node.putArray(field);
        values.forEach(array::add);
    }
}
