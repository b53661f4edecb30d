package dev.stevedore.agent.snapshots;

import java.util.List;

/** A mount as in the OCI runtime spec: what the runtime (or the agent) mounts to make a root filesystem. */
public record Mount(String type, String source, List<String> options) {}
