package dev.stevedore.api;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.stevedore.testing.TestNamespace;
import dev.stevedore.testing.WithControlPlane;
import io.fabric8.kubernetes.api.model.ConfigMap;
import io.fabric8.kubernetes.api.model.ConfigMapBuilder;
import io.fabric8.kubernetes.api.model.Event;
import java.time.Duration;
import java.util.Comparator;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Events as client-go records them, on a real API server: one object per distinct Event, repeats counted on it. */
@WithControlPlane
class EventRecorderIT {
    private static final Duration TIMEOUT = Duration.ofSeconds(30);

    @Test
    void aRepeatedEventIsCountedOnOneObjectAndADifferentOneIsAnotherObject(TestNamespace ns) {
        ConfigMap object = ns.client()
                .resource(new ConfigMapBuilder()
                        .withNewMetadata()
                        .withName("subject")
                        .endMetadata()
                        .build())
                .create();
        try (EventRecorder events = new EventRecorder(ns.client(), "stevedore-agent", "node-a")) {
            for (int i = 0; i < 3; i++) {
                events.record(object, EventRecorder.WARNING, "BackOff", "pulling again");
            }
            events.record(object, EventRecorder.NORMAL, "Pulled", "pulled in 1.2s");

            await().atMost(TIMEOUT)
                    .until(() -> events(ns).stream().mapToInt(Event::getCount).sum() == 4);
            List<Event> recorded = events(ns);
            assertThat(recorded)
                    .extracting(Event::getReason, Event::getType, Event::getCount)
                    .containsExactly(
                            org.assertj.core.groups.Tuple.tuple("BackOff", "Warning", 3),
                            org.assertj.core.groups.Tuple.tuple("Pulled", "Normal", 1));
            Event backOff = recorded.get(0);
            assertThat(backOff.getInvolvedObject().getUid())
                    .isEqualTo(object.getMetadata().getUid());
            assertThat(backOff.getInvolvedObject().getKind()).isEqualTo("ConfigMap");
            assertThat(backOff.getSource().getComponent()).isEqualTo("stevedore-agent");
            assertThat(backOff.getSource().getHost()).isEqualTo("node-a");
            assertThat(backOff.getReportingInstance()).isEqualTo("node-a");
            assertThat(backOff.getMessage()).isEqualTo("pulling again");

            // An Event gone from the server (expired: they live an hour) is created again at its next repeat.
            ns.client()
                    .v1()
                    .events()
                    .inNamespace(ns.name())
                    .withName(backOff.getMetadata().getName())
                    .delete();
            await().atMost(TIMEOUT).until(() -> events(ns).size() == 1);
            events.record(object, EventRecorder.WARNING, "BackOff", "pulling again");
            await().atMost(TIMEOUT).until(() -> events(ns).size() == 2);
            assertThat(events(ns))
                    .filteredOn(e -> e.getReason().equals("BackOff"))
                    .singleElement()
                    .extracting(Event::getCount)
                    .isEqualTo(1);
        }
    }

    @Test
    void aMessageLongerThanTheApiServersLimitIsCutToIt(TestNamespace ns) {
        ConfigMap object = ns.client()
                .resource(new ConfigMapBuilder()
                        .withNewMetadata()
                        .withName("long")
                        .endMetadata()
                        .build())
                .create();
        try (EventRecorder events = new EventRecorder(ns.client(), "stevedore-operator", null)) {
            events.record(object, EventRecorder.WARNING, "Failed", "x".repeat(5000));

            await().atMost(TIMEOUT).until(() -> events(ns).size() == 1);
            assertThat(events(ns).get(0).getMessage())
                    .hasSize(EventRecorder.MESSAGE_LIMIT)
                    .endsWith("...");
            assertThat(events(ns).get(0).getSource().getHost()).isNull();
        }
    }

    private static List<Event> events(TestNamespace ns) {
        return ns.client().v1().events().inNamespace(ns.name()).list().getItems().stream()
                .sorted(Comparator.comparing(Event::getReason))
                .toList();
    }
}
