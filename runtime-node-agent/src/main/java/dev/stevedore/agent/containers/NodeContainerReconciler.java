package dev.stevedore.agent.containers;

import dev.stevedore.agent.gc.GarbageCollector;
import dev.stevedore.agent.gc.ImageGarbageCollector;
import dev.stevedore.agent.images.ImageException;
import dev.stevedore.agent.node.AgentFinalizer;
import dev.stevedore.agent.spec.SecurityLevel;
import dev.stevedore.api.EventRecorder;
import dev.stevedore.api.FieldManager;
import dev.stevedore.api.v1alpha1.Conditions;
import dev.stevedore.api.v1alpha1.Container;
import dev.stevedore.api.v1alpha1.ContainerStatus;
import dev.stevedore.api.v1alpha1.SelectableFields;
import io.fabric8.kubernetes.api.model.Condition;
import io.fabric8.kubernetes.api.model.Namespace;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.javaoperatorsdk.operator.api.reconciler.Context;
import io.javaoperatorsdk.operator.api.reconciler.ControllerConfiguration;
import io.javaoperatorsdk.operator.api.reconciler.Reconciler;
import io.javaoperatorsdk.operator.api.reconciler.UpdateControl;
import java.io.IOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import java.util.function.Predicate;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The node side of a Container: prepares image, rootfs and spec, reports them (ImageReady, RootfsReady, Ready,
 * imageDigest, snapshotKey, specDigest), and on deletion releases them before letting the object go. Watches only
 * this node's Containers (a field selector on spec.nodeName, applied when the controller is registered).
 *
 * <p>It sees every event, the delete event too, and has the {@link AgentFinalizer} added beside preparing, not
 * before it: a Container deleted before the finalizer is on it is released all the same, once no task holds its
 * rootfs.
 */
@ControllerConfiguration(name = "node-container", triggerReconcilerOnAllEvents = true)
public class NodeContainerReconciler implements Reconciler<Container>, AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(NodeContainerReconciler.class);
    private static final Duration MAX_BACKOFF = Duration.ofMinutes(5);
    private static final Duration WHILE_IN_USE = Duration.ofSeconds(1);

    private final RootfsPreparer preparer;
    private final GarbageCollector gc;
    private final ImageGarbageCollector imageGc;
    private final Map<String, Integer> failures = new ConcurrentHashMap<>();
    private final ScheduledExecutorService later = Executors.newSingleThreadScheduledExecutor(r -> {
        Thread t = new Thread(r, "container-release");
        t.setDaemon(true);
        return t;
    });

    private final ScheduledExecutorService pullTimer = Executors.newSingleThreadScheduledExecutor(r -> {
        Thread t = new Thread(r, "pull-progress");
        t.setDaemon(true);
        return t;
    });

    private final Predicate<String> usedByTask;
    private final Consumer<ContainerRecord> prepared;
    private final AgentFinalizer finalizer;
    private final PullCredentials pullCredentials;
    private final EventRecorder events;

    /**
     * @param usedByTask whether a task of the Container (by UID) still holds its rootfs: deletion waits for it
     * @param prepared told of each Container prepared, before its status is written: its next Task need not wait
     *        for the status to come back from the API server
     */
    public NodeContainerReconciler(
            RootfsPreparer preparer,
            GarbageCollector gc,
            ImageGarbageCollector imageGc,
            Predicate<String> usedByTask,
            Consumer<ContainerRecord> prepared,
            AgentFinalizer finalizer,
            PullCredentials pullCredentials,
            EventRecorder events) {
        this.events = events;
        this.finalizer = finalizer;
        this.pullCredentials = pullCredentials;
        this.preparer = preparer;
        this.gc = gc;
        this.imageGc = imageGc;
        this.usedByTask = usedByTask;
        this.prepared = prepared;
    }

    @Override
    public UpdateControl<Container> reconcile(Container container, Context<Container> context) throws IOException {
        if (context.isPrimaryResourceDeleted() || container.isMarkedForDeletion()) {
            return delete(container, context);
        }
        finalizer.addSoon(container);
        return prepare(container, context);
    }

    private UpdateControl<Container> prepare(Container container, Context<Container> context) throws IOException {
        return prepare(container, context, true);
    }

    /** @param mayReclaim whether a full disk may remove the unused images and try once more at once */
    private UpdateControl<Container> prepare(Container container, Context<Container> context, boolean mayReclaim)
            throws IOException {
        String uid = container.getMetadata().getUid();
        Long generation = container.getMetadata().getGeneration();
        List<Condition> current =
                container.getStatus() == null ? null : container.getStatus().conditions();
        try {
            ContainerRecord record = prepareShowingPull(container, context);
            failures.remove(uid);
            imageGc.runSoon(); // the new image may have taken the disk over the high threshold
            prepared.accept(record);
            apply(
                    context,
                    container,
                    new ContainerStatus(
                            null,
                            record.imageDigest(),
                            record.snapshotter(),
                            record.snapshotKey(),
                            record.specDigest(),
                            generation,
                            List.of(
                                    Conditions.of(
                                            current,
                                            ContainerStatus.IMAGE_READY,
                                            "True",
                                            "ImagePresent",
                                            "image " + record.imageDigest() + " is on the node",
                                            generation),
                                    Conditions.of(
                                            current,
                                            ContainerStatus.ROOTFS_READY,
                                            "True",
                                            "RootfsPrepared",
                                            "snapshot " + record.snapshotKey() + " (" + record.snapshotter() + ")",
                                            generation),
                                    Conditions.of(
                                            current,
                                            ContainerStatus.READY,
                                            "True",
                                            "Ready",
                                            "the next Task can start",
                                            generation))));
            return UpdateControl.noUpdate();
        } catch (RootfsPreparer.PrepareException e) {
            String disk = "";
            if (ImageException.DISK_FULL.equals(e.reason())) {
                // As kubelet under disk pressure: unused images go, and the failed pull's verified blobs with them (its
                // partial files and half-unpacked snapshots are gone already).
                ImageGarbageCollector.Freed freed = imageGc.reclaimAll();
                if (freed.images() > 0 && mayReclaim) {
                    return prepare(container, context, false);
                }
                disk = freed.images() > 0
                        ? "; removed unused images (" + freed.images() + "), the node's disk has " + freed.after()
                        : "; the node's disk has " + freed.after() + " and no unused image left to remove";
            }
            events.record(container, EventRecorder.WARNING, "Failed", failedEvent(e));
            int attempt = failures.merge(uid, 1, Integer::sum);
            Duration backoff = e.transientFailure() ? backoff(attempt) : null;
            String message =
                    e.getMessage() + disk + (backoff == null ? "" : "; retrying in " + backoff.toSeconds() + "s");
            applyNotReady(context, container, e.condition(), e.reason(), message, backoff == null);
            LOG.info(
                    "container {}/{} not ready: {}: {}",
                    container.getMetadata().getNamespace(),
                    container.getMetadata().getName(),
                    e.reason(),
                    message);
            return backoff == null
                    ? UpdateControl.noUpdate()
                    : UpdateControl.<Container>noUpdate().rescheduleAfter(backoff);
        }
    }

    /**
     * Prepares the Container, its pull (if there is one) shown as it runs; the shows end before this returns, so the
     * status written next is never followed by a stale one.
     */
    private ContainerRecord prepareShowingPull(Container container, Context<Container> context)
            throws RootfsPreparer.PrepareException, IOException {
        try (PullProgress pull = new PullProgress(
                events,
                pullTimer,
                container,
                message -> applyNotReady(context, container, ContainerStatus.IMAGE_READY, "Pulling", message, false))) {
            return preparer.prepare(
                    container,
                    pullCredentials.of(container),
                    securityLevel(context.getClient(), container.getMetadata().getNamespace()),
                    pull);
        }
    }

    /** What failed, as kubelet words a failed pull; the same failure again is counted on one Event. */
    private static String failedEvent(RootfsPreparer.PrepareException e) {
        return ContainerStatus.IMAGE_READY.equals(e.condition())
                ? "Failed to pull image: " + e.getMessage()
                : "Failed to prepare the root filesystem: " + e.getMessage();
    }

    /**
     * The level of the namespace now, read at each prepare rather than from an informer: prepares are rare, a get is
     * always current, and the agent needs no list or watch of every namespace.
     */
    private static SecurityLevel securityLevel(KubernetesClient client, String namespace) {
        Namespace object = client.namespaces().withName(namespace).get();
        return SecurityLevel.enforced(
                object == null ? null : object.getMetadata().getLabels());
    }

    /** Releases the Container's rootfs and spec once no task holds them, then lets the object go. */
    private UpdateControl<Container> delete(Container container, Context<Container> context) throws IOException {
        String uid = container.getMetadata().getUid();
        if (context.isPrimaryResourceDeleted()) {
            // Gone without waiting: no event comes back for it, so the release waits here for its tasks.
            releaseOnceUnused(uid);
            return UpdateControl.noUpdate();
        }
        if (usedByTask.test(uid)) {
            return UpdateControl.<Container>noUpdate().rescheduleAfter(WHILE_IN_USE);
        }
        release(uid);
        finalizer.remove(container);
        return UpdateControl.noUpdate();
    }

    /**
     * For a restarted agent: recorded Containers whose objects went while it was away, without waiting for it, are
     * released, each once no task holds its rootfs.
     */
    public void releaseGone(KubernetesClient client, String nodeName, ContainerRecords records) throws IOException {
        Set<String> present = new HashSet<>();
        try {
            client.resources(Container.class)
                    .inAnyNamespace()
                    .withField(SelectableFields.NODE_NAME, nodeName)
                    .list()
                    .getItems()
                    .forEach(c -> present.add(c.getMetadata().getUid()));
        } catch (KubernetesClientException e) {
            LOG.warn("listing this node's Containers, released ones are left for later: {}", e.getMessage());
            return;
        }
        for (ContainerRecord record : records.list()) {
            if (!present.contains(record.uid())) {
                LOG.info(
                        "container {}/{} ({}) has no Container object: releasing it",
                        record.namespace(),
                        record.name(),
                        record.uid());
                releaseOnceUnused(record.uid());
            }
        }
    }

    /** Stops the releases waiting for tasks (a restarted agent's {@link #releaseGone} takes them up) and pull shows. */
    @Override
    public void close() {
        later.shutdownNow();
        pullTimer.shutdownNow();
    }

    private void releaseOnceUnused(String uid) {
        try {
            if (usedByTask.test(uid)) {
                later.schedule(() -> releaseOnceUnused(uid), WHILE_IN_USE.toMillis(), TimeUnit.MILLISECONDS);
            } else {
                release(uid);
            }
        } catch (IOException | RuntimeException e) {
            LOG.warn("releasing container {}: {}", uid, e.toString());
        }
    }

    /** Its snapshots and specs go; its image stays cached unless the disk is over the image GC's high threshold. */
    private void release(String uid) throws IOException {
        preparer.release(uid);
        failures.remove(uid);
        gc.collect();
        imageGc.run();
    }

    /**
     * The failed step False with its reason; the steps before it True; Ready False with the same reason; and, when the
     * node will not retry, Stalled True with it (left out otherwise, so the apply removes an earlier one).
     */
    private static List<Condition> failed(
            List<Condition> current,
            String failedCondition,
            String reason,
            String message,
            Long generation,
            boolean stalled) {
        List<Condition> conditions = new ArrayList<>();
        for (String step : List.of(ContainerStatus.IMAGE_READY, ContainerStatus.ROOTFS_READY)) {
            if (step.equals(failedCondition)) {
                conditions.add(Conditions.of(current, step, "False", reason, message, generation));
                break;
            }
            conditions.add(Conditions.of(current, step, "True", "Done", step + " done", generation));
        }
        conditions.add(Conditions.of(current, ContainerStatus.READY, "False", reason, message, generation));
        if (stalled) {
            conditions.add(Conditions.of(current, Conditions.STALLED, "True", reason, message, generation));
        }
        return conditions;
    }

    private static Duration backoff(int attempt) {
        long seconds = Math.min(MAX_BACKOFF.toSeconds(), 1L << Math.min(attempt, 8));
        return Duration.ofSeconds(seconds);
    }

    /** The Container's status as not (yet) ready: the steps before {@code condition} done, it false for {@code reason}. */
    private static void applyNotReady(
            Context<Container> context,
            Container container,
            String condition,
            String reason,
            String message,
            boolean stalled) {
        Long generation = container.getMetadata().getGeneration();
        List<Condition> current =
                container.getStatus() == null ? null : container.getStatus().conditions();
        apply(
                context,
                container,
                new ContainerStatus(
                        null,
                        null,
                        null,
                        null,
                        null,
                        generation,
                        failed(current, condition, reason, message, generation, stalled)));
    }

    private static void apply(Context<Container> context, Container container, ContainerStatus status) {
        Container apply = new Container();
        apply.setMetadata(FieldManager.identity(container));
        apply.setStatus(status);
        FieldManager.AGENT.applyStatus(context.getClient(), apply);
    }
}
