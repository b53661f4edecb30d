package dev.stevedore.agent.testing;

import static org.awaitility.Awaitility.await;

import dev.stevedore.testing.TestNamespace;
import io.fabric8.kubernetes.api.model.Event;
import java.time.Duration;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;

/** The Events recorded on an object, as {@code kubectl events --for KIND/NAME} lists them. */
public final class ObjectEvents {
    private static final Duration TIMEOUT = Duration.ofSeconds(60);

    private ObjectEvents() {}

    /** "TYPE REASON: MESSAGE" of each Event on the object, oldest first. */
    public static List<String> of(TestNamespace ns, String kind, String name) {
        return ns.client().v1().events().inNamespace(ns.name()).list().getItems().stream()
                .filter(e -> kind.equals(e.getInvolvedObject().getKind())
                        && name.equals(e.getInvolvedObject().getName()))
                .sorted(Comparator.comparing(Event::getFirstTimestamp)
                        .thenComparing(e -> e.getMetadata().getCreationTimestamp()))
                .map(e -> e.getType() + " " + e.getReason() + ": " + e.getMessage())
                .toList();
    }

    /**
     * Waits until the object has an Event starting with each of {@code expected} ("TYPE REASON: start of the
     * message"), and returns its Events (they are recorded asynchronously, after what they tell).
     */
    public static List<String> awaitRecorded(TestNamespace ns, String kind, String name, String... expected) {
        return await().atMost(TIMEOUT)
                .until(
                        () -> of(ns, kind, name),
                        events -> Arrays.stream(expected)
                                .allMatch(prefix -> events.stream().anyMatch(e -> e.startsWith(prefix))));
    }
}
