package dev.stevedore.agent.tasks;

import dev.stevedore.agent.containers.ContainerRecord;
import dev.stevedore.agent.node.AgentFinalizer;
import dev.stevedore.api.v1alpha1.Conditions;
import dev.stevedore.api.v1alpha1.Container;
import dev.stevedore.api.v1alpha1.ContainerStatus;
import dev.stevedore.api.v1alpha1.SelectableFields;
import dev.stevedore.api.v1alpha1.Task;
import io.javaoperatorsdk.operator.api.config.informer.FieldSelector;
import io.javaoperatorsdk.operator.api.config.informer.InformerEventSourceConfiguration;
import io.javaoperatorsdk.operator.api.reconciler.Context;
import io.javaoperatorsdk.operator.api.reconciler.ControllerConfiguration;
import io.javaoperatorsdk.operator.api.reconciler.EventSourceContext;
import io.javaoperatorsdk.operator.api.reconciler.Reconciler;
import io.javaoperatorsdk.operator.api.reconciler.UpdateControl;
import io.javaoperatorsdk.operator.processing.event.ResourceID;
import io.javaoperatorsdk.operator.processing.event.source.EventSource;
import io.javaoperatorsdk.operator.processing.event.source.IndexerResourceCache;
import io.javaoperatorsdk.operator.processing.event.source.inbound.SimpleInboundEventSource;
import io.javaoperatorsdk.operator.processing.event.source.informer.InformerEventSource;
import java.io.IOException;
import java.time.Duration;
import java.util.List;
import java.util.Objects;
import java.util.Set;
import java.util.stream.Collectors;

/**
 * The node side of a Task: runs it (through {@link TaskManager}) once bound to this node, follows desiredState,
 * and on deletion stops a live task and removes its record and log before letting the object go.
 *
 * <p>A Task waits for its Container to be prepared without polling: the Container reconciler of this agent says when
 * it has prepared one ({@link #containerPrepared}, before the Container's status is even written), and this node's
 * Containers (an informer with the field selector {@code spec.nodeName=<node>}) are a secondary source whose
 * Ready, Stalled or specDigest changes trigger too; both reach the Tasks that name the Container through an index on the
 * primary cache (namespace/container).
 *
 * <p>It sees every event, the delete event too, and has the {@link AgentFinalizer} added beside the start, not before
 * it: a Task deleted before the finalizer is on it is stopped all the same.
 */
@ControllerConfiguration(name = "node-task", generationAwareEventProcessing = true, triggerReconcilerOnAllEvents = true)
public class NodeTaskReconciler implements Reconciler<Task> {
    static final String BY_CONTAINER = "by-container";
    private static final Duration WHILE_STOPPING = Duration.ofSeconds(1);

    private final TaskManager tasks;
    private final String nodeName;
    private final AgentFinalizer finalizer;
    private final SimpleInboundEventSource<Task> prepared = new SimpleInboundEventSource<>("prepared-containers");
    private volatile IndexerResourceCache<Task> primaries;

    public NodeTaskReconciler(TaskManager tasks, String nodeName, AgentFinalizer finalizer) {
        this.tasks = tasks;
        this.nodeName = nodeName;
        this.finalizer = finalizer;
    }

    @Override
    public List<EventSource<?, Task>> prepareEventSources(EventSourceContext<Task> context) {
        IndexerResourceCache<Task> primaries = context.getPrimaryCache();
        this.primaries = primaries;
        primaries.addIndexer(
                BY_CONTAINER,
                t -> List.of(
                        containerKey(t.getMetadata().getNamespace(), t.getSpec().container())));
        var containers = new InformerEventSource<>(
                InformerEventSourceConfiguration.from(Container.class, Task.class)
                        .withFieldSelector(
                                new FieldSelector(new FieldSelector.Field(SelectableFields.NODE_NAME, nodeName)))
                        .withPrimaryToSecondaryMapper((Task t) -> Set.of(new ResourceID(
                                t.getSpec().container(), t.getMetadata().getNamespace())))
                        .withSecondaryToPrimaryMapper(c -> primaries
                                .byIndex(
                                        BY_CONTAINER,
                                        containerKey(
                                                c.getMetadata().getNamespace(),
                                                c.getMetadata().getName()))
                                .stream()
                                .map(ResourceID::fromResource)
                                .collect(Collectors.toSet()))
                        .withOnUpdateFilter(NodeTaskReconciler::startRelevantChange)
                        .build(),
                context);
        return List.of(containers, prepared);
    }

    /** The Container's rootfs and spec are ready on this node: its waiting Tasks may start now. */
    public void containerPrepared(ContainerRecord container) {
        IndexerResourceCache<Task> cache = primaries;
        if (cache != null) {
            cache.byIndex(BY_CONTAINER, containerKey(container.namespace(), container.name()))
                    .forEach(task -> prepared.propagateEvent(ResourceID.fromResource(task)));
        }
    }

    static String containerKey(String namespace, String container) {
        return namespace + "/" + container;
    }

    /**
     * Container updates that matter to a waiting Task: its Ready condition or specDigest changed (a safety net: the
     * usual trigger is {@link #containerPrepared}, which comes before the Container's status is even written), or the
     * node gave up on it (Stalled), which ends a waiting Task.
     */
    static boolean startRelevantChange(Container updated, Container old) {
        return is(updated, ContainerStatus.READY) != is(old, ContainerStatus.READY)
                || is(updated, Conditions.STALLED) != is(old, Conditions.STALLED)
                || !Objects.equals(specDigest(updated), specDigest(old));
    }

    private static boolean is(Container c, String condition) {
        return c.getStatus() != null && Conditions.isTrue(c.getStatus().conditions(), condition);
    }

    private static String specDigest(Container c) {
        return c.getStatus() == null ? null : c.getStatus().specDigest();
    }

    @Override
    public UpdateControl<Task> reconcile(Task task, Context<Task> context) throws IOException {
        if (context.isPrimaryResourceDeleted() || task.isMarkedForDeletion()) {
            return delete(task, context);
        }
        finalizer.addSoon(task);
        Duration again = tasks.reconcile(task, context.getSecondaryResource(Container.class));
        return again == null
                ? UpdateControl.noUpdate()
                : UpdateControl.<Task>noUpdate().rescheduleAfter(again);
    }

    /** Stops a live task; once it has exited and is released, its record goes, and then the finalizer. */
    private UpdateControl<Task> delete(Task task, Context<Task> context) throws IOException {
        boolean removed = tasks.remove(task);
        if (context.isPrimaryResourceDeleted()) {
            // Gone without waiting (deleted before the finalizer was on it, or the finalizer removed by hand): the
            // stop is under way and the exit finishes the clean-up, finding no Task left to tell.
            return UpdateControl.noUpdate();
        }
        if (!removed) {
            return UpdateControl.<Task>noUpdate().rescheduleAfter(WHILE_STOPPING);
        }
        finalizer.remove(task);
        return UpdateControl.noUpdate();
    }
}
