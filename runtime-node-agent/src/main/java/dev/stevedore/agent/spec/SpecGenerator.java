package dev.stevedore.agent.spec;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.stevedore.agent.images.ImageConfig;
import dev.stevedore.api.v1alpha1.ContainerSpec;

/**
 * The OCI runtime spec (config.json) of a container: what runtimes give by default, then the image config, then
 * the Container's process, resources and mounts, then its ociSpec merged last.
 */
public interface SpecGenerator {

    /**
     * @param containerId the runtime's id of the container (also names its cgroup)
     * @throws SpecRejectedException for what the node refuses, e.g. a bind mount of a host path it does not allow
     */
    ObjectNode generate(String containerId, ContainerSpec container, ImageConfig image) throws SpecRejectedException;

    /** sha256 of the spec's canonical JSON (sorted keys, no whitespace): the Container's status.specDigest. */
    String digest(ObjectNode spec);
}
