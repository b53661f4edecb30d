package dev.stevedore.agent.spec;

import java.util.List;
import java.util.stream.Collectors;

/** A Container that breaks rules of its namespace's security level; the message names each field and the level. */
public final class SecurityLevelViolationException extends SpecRejectedException {
    private static final long serialVersionUID = 1L;

    SecurityLevelViolationException(SecurityLevel.Enforced enforced, List<SecurityRules.Violation> violations) {
        super(violations.stream().map(v -> v.message(enforced)).collect(Collectors.joining("; ")));
    }
}
