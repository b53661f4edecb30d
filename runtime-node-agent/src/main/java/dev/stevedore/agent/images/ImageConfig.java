package dev.stevedore.agent.images;

import java.util.List;

/** The parts of an OCI image config that a container's process starts from. */
public record ImageConfig(
        List<String> entrypoint, List<String> cmd, List<String> env, String workingDir, String user) {}
