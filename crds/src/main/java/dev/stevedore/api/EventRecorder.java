package dev.stevedore.api;

import io.fabric8.kubernetes.api.model.Event;
import io.fabric8.kubernetes.api.model.EventBuilder;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.ObjectReference;
import io.fabric8.kubernetes.api.model.ObjectReferenceBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.fabric8.kubernetes.client.dsl.base.PatchContext;
import io.fabric8.kubernetes.client.dsl.base.PatchType;
import java.time.Clock;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Records Kubernetes Events (core/v1: what {@code kubectl describe} and {@code kubectl events} show) on behalf of a
 * component, as client-go's recorder does for kubelet and controllers:
 *
 * <ul>
 *   <li><b>Asynchronously</b>, on a thread of its own with a bounded queue: a caller never waits for the API server
 *       (a task's exit is not held up by an Event during an outage); when the queue is full, the newest Event is
 *       dropped and counted, as client-go's broadcaster drops them.
 *   <li><b>De-duplicated</b>: an Event that repeats one this recorder wrote (same object, type, reason and message)
 *       increments that Event's {@code count} and moves its {@code lastTimestamp} (a merge patch), as client-go's
 *       EventCorrelator does, instead of creating another object. The recorder remembers the last 4096 Events; one
 *       that expired on the server meanwhile (Events live an hour) is created again.
 *   <li><b>Best effort</b>: a failed write is logged, never thrown.
 * </ul>
 */
public final class EventRecorder implements AutoCloseable {
    public static final String NORMAL = "Normal";
    public static final String WARNING = "Warning";
    /** The API server's limit on an Event's note, which client-go applies to messages too. */
    static final int MESSAGE_LIMIT = 1024;

    private static final Logger LOG = LoggerFactory.getLogger(EventRecorder.class);
    private static final int QUEUE = 1000;
    private static final int REMEMBERED = 4096;

    private final KubernetesClient client;
    private final String component;
    private final String host;
    private final Clock clock;
    private final ThreadPoolExecutor writer;
    private final AtomicLong dropped = new AtomicLong();
    /** The Events written, least recently repeated first; touched by the writer thread only. */
    private final Map<Key, Written> written = new LinkedHashMap<>(64, 0.75f, true) {
        @Override
        protected boolean removeEldestEntry(Map.Entry<Key, Written> eldest) {
            return size() > REMEMBERED;
        }
    };

    private record Key(String namespace, String uid, String name, String type, String reason, String message) {}

    private record Written(String name, int count) {}

    /**
     * @param component the Events' source (e.g. {@code stevedore-agent}), as kubelet's is {@code kubelet}
     * @param host the node an agent's Events come from (source.host, reportingInstance); null for a cluster component
     */
    public EventRecorder(KubernetesClient client, String component, String host, Clock clock) {
        this.client = client;
        this.component = component;
        this.host = host;
        this.clock = clock;
        this.writer = new ThreadPoolExecutor(
                1,
                1,
                10,
                TimeUnit.SECONDS,
                new ArrayBlockingQueue<>(QUEUE),
                r -> {
                    Thread t = new Thread(r, "events");
                    t.setDaemon(true);
                    return t;
                },
                (r, executor) -> {
                    throw new RejectedExecutionException();
                });
        // An idle recorder holds no thread: nothing needs closing when its component stops.
        this.writer.allowCoreThreadTimeOut(true);
    }

    public EventRecorder(KubernetesClient client, String component, String host) {
        this(client, component, host, Clock.systemUTC());
    }

    /** Records an Event on {@code object}, as it is now. */
    public void record(HasMetadata object, String type, String reason, String message) {
        record(
                new ObjectReferenceBuilder()
                        .withApiVersion(object.getApiVersion())
                        .withKind(object.getKind())
                        .withName(object.getMetadata().getName())
                        .withNamespace(object.getMetadata().getNamespace())
                        .withUid(object.getMetadata().getUid())
                        .build(),
                type,
                reason,
                message);
    }

    /** A recorder that records nothing, for a component run without Events (unit tests of its other requests). */
    public static EventRecorder discarding() {
        return new EventRecorder(null, "none", null);
    }

    /** Records an Event on the object {@code involved} refers to. */
    public void record(ObjectReference involved, String type, String reason, String message) {
        if (client == null) {
            return;
        }
        Instant at = clock.instant().truncatedTo(ChronoUnit.SECONDS);
        String note = message.length() > MESSAGE_LIMIT ? message.substring(0, MESSAGE_LIMIT - 3) + "..." : message;
        try {
            writer.execute(() -> write(involved, type, reason, note, at));
        } catch (RejectedExecutionException full) {
            if (dropped.getAndIncrement() % QUEUE == 0) {
                LOG.warn(
                        "the Event queue is full; dropping Events ({} so far), e.g. {} on {}",
                        dropped,
                        reason,
                        involved);
            }
        }
    }

    private void write(ObjectReference involved, String type, String reason, String message, Instant at) {
        String namespace = involved.getNamespace() == null ? "default" : involved.getNamespace();
        Key key = new Key(namespace, involved.getUid(), involved.getName(), type, reason, message);
        try {
            Written previous = written.get(key);
            if (previous != null && repeated(namespace, previous, at)) {
                written.put(key, new Written(previous.name(), previous.count() + 1));
                return;
            }
            Event created = client.v1()
                    .events()
                    .inNamespace(namespace)
                    .resource(event(involved, namespace, type, reason, message, at))
                    .create();
            written.put(key, new Written(created.getMetadata().getName(), 1));
        } catch (RuntimeException e) {
            LOG.warn(
                    "cannot record Event {} on {} {}/{}: {}",
                    reason,
                    involved.getKind(),
                    namespace,
                    involved.getName(),
                    e.getMessage());
        }
    }

    /** Counts a repeat on the Event written before; false when that Event is gone (expired or deleted). */
    private boolean repeated(String namespace, Written previous, Instant at) {
        try {
            // On the named object, not withName: fabric8 would read the Event first, which the agent may not.
            Event named = new EventBuilder()
                    .withNewMetadata()
                    .withName(previous.name())
                    .withNamespace(namespace)
                    .endMetadata()
                    .build();
            client.v1()
                    .events()
                    .inNamespace(namespace)
                    .resource(named)
                    .patch(
                            PatchContext.of(PatchType.JSON_MERGE),
                            "{\"count\":" + (previous.count() + 1) + ",\"lastTimestamp\":\"" + at + "\"}");
            return true;
        } catch (KubernetesClientException e) {
            if (e.getCode() == 404) {
                return false;
            }
            throw e;
        }
    }

    private Event event(
            ObjectReference involved, String namespace, String type, String reason, String message, Instant at) {
        return new EventBuilder()
                .withNewMetadata()
                .withGenerateName(involved.getName() + ".")
                .withNamespace(namespace)
                .endMetadata()
                .withInvolvedObject(involved)
                .withType(type)
                .withReason(reason)
                .withMessage(message)
                .withNewSource()
                .withComponent(component)
                .withHost(host)
                .endSource()
                .withReportingComponent(component)
                .withReportingInstance(host)
                .withFirstTimestamp(at.toString())
                .withLastTimestamp(at.toString())
                .withCount(1)
                .build();
    }

    /** Writes what is queued, for up to 2 s, then stops. */
    @Override
    public void close() {
        writer.shutdown();
        try {
            writer.awaitTermination(2, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        writer.shutdownNow();
    }
}
