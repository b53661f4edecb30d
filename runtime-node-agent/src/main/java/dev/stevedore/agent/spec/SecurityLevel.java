package dev.stevedore.agent.spec;

import java.util.Map;

/**
 * How much a Container in a namespace may ask of its node, as Pod Security Standards' levels for Pods: the label
 * {@value #ENFORCE_LABEL} on the namespace says which; docs/security-levels.md has the rules of each.
 */
public enum SecurityLevel {
    /** Everything the node's own policy allows: host paths, more capabilities, devices, the host's namespaces. */
    privileged,
    /** containerd's defaults as the ceiling: ociSpec may narrow them but not widen them. The default. */
    baseline,
    /** baseline, and also a non-root user, a read-only root filesystem and no capability but CAP_NET_BIND_SERVICE. */
    restricted;

    public static final String ENFORCE_LABEL = "security.stevedore.dev/enforce";

    /**
     * The level enforced in a namespace with these labels: baseline without the label, and restricted for a value
     * that is no level, as Pod Security Admission does for an invalid level: a typo must not open the node up.
     */
    public static SecurityLevel enforced(Map<String, String> namespaceLabels) {
        String value = namespaceLabels == null ? null : namespaceLabels.get(ENFORCE_LABEL);
        if (value == null) {
            return baseline;
        }
        for (SecurityLevel level : values()) {
            if (level.name().equals(value)) {
                return level;
            }
        }
        return restricted;
    }

    /** The level and the namespace it is enforced in, for the messages of {@link SecurityRules}. */
    public record Enforced(String namespace, SecurityLevel level) {}
}
