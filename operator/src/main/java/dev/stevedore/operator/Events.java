package dev.stevedore.operator;

import io.fabric8.kubernetes.api.model.EventBuilder;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.ObjectReferenceBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** Records Kubernetes Events on Stevedore objects, for {@code kubectl describe} and {@code kubectl events}. */
final class Events {
    static final String NORMAL = "Normal";
    static final String WARNING = "Warning";
    private static final Logger LOG = LoggerFactory.getLogger(Events.class);
    private static final String COMPONENT = "stevedore-operator";

    private final KubernetesClient client;

    Events(KubernetesClient client) {
        this.client = client;
    }

    /** Best effort: an Event that cannot be written is logged, never fails a reconcile. */
    void record(HasMetadata object, String type, String reason, String message) {
        String namespace = object.getMetadata().getNamespace() == null
                ? "default"
                : object.getMetadata().getNamespace();
        String now = Instant.now().truncatedTo(ChronoUnit.SECONDS).toString();
        try {
            client.v1()
                    .events()
                    .inNamespace(namespace)
                    .resource(new EventBuilder()
                            .withNewMetadata()
                            .withGenerateName(object.getMetadata().getName() + ".")
                            .withNamespace(namespace)
                            .endMetadata()
                            .withInvolvedObject(new ObjectReferenceBuilder()
                                    .withApiVersion(object.getApiVersion())
                                    .withKind(object.getKind())
                                    .withName(object.getMetadata().getName())
                                    .withNamespace(object.getMetadata().getNamespace())
                                    .withUid(object.getMetadata().getUid())
                                    .build())
                            .withType(type)
                            .withReason(reason)
                            .withMessage(message)
                            .withNewSource()
                            .withComponent(COMPONENT)
                            .endSource()
                            .withReportingComponent(COMPONENT)
                            .withFirstTimestamp(now)
                            .withLastTimestamp(now)
                            .withCount(1)
                            .build())
                    .create();
        } catch (KubernetesClientException e) {
            LOG.warn(
                    "cannot record event {} on {}/{}: {}",
                    reason,
                    namespace,
                    object.getMetadata().getName(),
                    e.getMessage());
        }
    }
}
