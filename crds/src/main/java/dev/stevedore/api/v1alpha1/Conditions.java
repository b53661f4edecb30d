package dev.stevedore.api.v1alpha1;

import io.fabric8.kubernetes.api.model.Condition;
import io.fabric8.kubernetes.api.model.ConditionBuilder;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.Optional;

/** metav1.Condition lists of the stevedore.dev objects, updated the Kubernetes way: lastTransitionTime moves only when the status changes. */
public final class Conditions {
    /**
     * True while the object is on its way to what its spec asks: kstatus (Flux, kubectl wait tooling) reads it as
     * InProgress. On Containers and Tasks the operator owns it, deriving it from the whole status.
     */
    public static final String RECONCILING = "Reconciling";
    /**
     * True once the object will not get to what its spec asks without a change: kstatus reads it as Failed. On
     * Containers and Tasks the node agent owns it: it is the one that gives up. On a Container, the node will not try
     * this generation again: its failure is the Container's own (an image that does not exist, a rejected layer or
     * spec), not the network's.
     */
    public static final String STALLED = "Stalled";

    private Conditions() {}

    public static Optional<Condition> find(List<Condition> conditions, String type) {
        return conditions == null
                ? Optional.empty()
                : conditions.stream().filter(c -> type.equals(c.getType())).findFirst();
    }

    public static boolean isTrue(List<Condition> conditions, String type) {
        return find(conditions, type).map(c -> "True".equals(c.getStatus())).orElse(false);
    }

    /** A condition as it should be now, keeping the transition time of {@code previous} if the status is unchanged. */
    public static Condition of(
            List<Condition> previous, String type, String status, String reason, String message, Long generation) {
        String transition = find(previous, type)
                .filter(c -> status.equals(c.getStatus()))
                .map(Condition::getLastTransitionTime)
                .orElseGet(() -> Instant.now().truncatedTo(ChronoUnit.SECONDS).toString());
        return new ConditionBuilder()
                .withType(type)
                .withStatus(status)
                .withReason(reason)
                .withMessage(message)
                .withObservedGeneration(generation)
                .withLastTransitionTime(transition)
                .build();
    }

    /** Whether applying {@code wanted} would change any of these conditions. */
    public static boolean changes(List<Condition> current, List<Condition> wanted) {
        for (Condition want : wanted) {
            Optional<Condition> have = find(current, want.getType());
            if (have.isEmpty()
                    || !Objects.equals(have.get().getStatus(), want.getStatus())
                    || !Objects.equals(have.get().getReason(), want.getReason())
                    || !Objects.equals(have.get().getMessage(), want.getMessage())
                    || !Objects.equals(have.get().getObservedGeneration(), want.getObservedGeneration())) {
                return true;
            }
        }
        return false;
    }

    public static List<Condition> list(Condition... conditions) {
        return new ArrayList<>(List.of(conditions));
    }
}
