package dev.stevedore.agent.spec;

import java.nio.file.Path;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.stevedore.agent.images.ImageConfig;
import dev.stevedore.api.v1alpha1.ContainerSpec;

/**
 * The OCI runtime spec (config.json, runtime-spec 1.0.2) of a container, built in layers, each overriding the one
 * before: what runtimes give by default (containerd's {@code oci.WithDefaultSpec}), then the image config, then the
 * Container's process, resources and mounts, then its ociSpec merged last.
 *
 * <p>The result is for a bundle whose root filesystem is the directory {@code rootfs} next to config.json.
 */
public interface SpecGenerator {

    /**
     * A spec without looking into the container's root filesystem: an image User given by name cannot be resolved
     * and is rejected, and a numeric User without a group gets gid 0.
     *
     * @param containerId the runtime's id of the container (also names its cgroup and, shortened, its hostname)
     * @throws SpecRejectedException for what the node refuses, e.g. a bind mount of a host path it does not allow
     */
    default ObjectNode generate(String containerId, ContainerSpec container, ImageConfig image)
            throws SpecRejectedException {
        return generate(containerId, container, image, null);
    }

    /**
     * A spec whose image User is resolved against the container's root filesystem, as containerd does: a user or
     * group name through {@code <rootfs>/etc/passwd} and {@code <rootfs>/etc/group}, and a numeric user without a
     * group gets its primary group from /etc/passwd. Symbolic links in the root filesystem are resolved inside it,
     * never to the host.
     *
     * @param containerId the runtime's id of the container (also names its cgroup and, shortened, its hostname)
     * @param rootfs the container's prepared root filesystem on the host, or null when it is not available
     * @throws SpecRejectedException for what the node refuses, e.g. a bind mount of a host path it does not allow,
     *         a user name missing from the image, or an image without a command
     */
    ObjectNode generate(String containerId, ContainerSpec container, ImageConfig image, Path rootfs)
            throws SpecRejectedException;

    /**
     * sha256 of the spec's canonical JSON (object keys sorted recursively, no insignificant whitespace), as
     * {@code sha256:<hex>}: the Container's status.specDigest. Equal specs give equal digests whatever the order
     * of their keys.
     */
    String digest(ObjectNode spec);
}
