package dev.stevedore.operator;

import dev.stevedore.api.EventRecorder;
import dev.stevedore.api.FieldManager;
import dev.stevedore.api.NodeAgentFinalizer;
import dev.stevedore.api.v1alpha1.Conditions;
import dev.stevedore.api.v1alpha1.Container;
import dev.stevedore.api.v1alpha1.ContainerStatus;
import dev.stevedore.api.v1alpha1.RuntimeNode;
import dev.stevedore.api.v1alpha1.Task;
import dev.stevedore.api.v1alpha1.TaskStatus;
import io.fabric8.kubernetes.api.model.Condition;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.javaoperatorsdk.operator.api.config.informer.Informer;
import io.javaoperatorsdk.operator.api.config.informer.InformerEventSourceConfiguration;
import io.javaoperatorsdk.operator.api.reconciler.Context;
import io.javaoperatorsdk.operator.api.reconciler.ControllerConfiguration;
import io.javaoperatorsdk.operator.api.reconciler.EventSourceContext;
import io.javaoperatorsdk.operator.api.reconciler.Reconciler;
import io.javaoperatorsdk.operator.api.reconciler.UpdateControl;
import io.javaoperatorsdk.operator.processing.event.ResourceID;
import io.javaoperatorsdk.operator.processing.event.source.EventSource;
import io.javaoperatorsdk.operator.processing.event.source.IndexerResourceCache;
import io.javaoperatorsdk.operator.processing.event.source.informer.InformerEventSource;
import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Per-Task bookkeeping: why an unbound Task is Pending, whether its node is reachable or lost, the TTL after
 * Deleted, and, when its node is gone, the node agent's finalizer no agent will remove. Adopting a Task (its
 * ownerReference) and binding it are the Container's reconciler's job. Status events matter here (the node agent
 * moves the phase), so this reconciler is not generation-aware; it sees Tasks being deleted too, for the finalizer.
 */
@ControllerConfiguration(
        name = "task",
        generationAwareEventProcessing = false,
        triggerReconcilerOnAllEvents = true,
        informer = @Informer(itemStore = LeanItemStore.class))
public class TaskReconciler implements Reconciler<Task> {
    private static final Logger LOG = LoggerFactory.getLogger(TaskReconciler.class);
    static final String NODE_LOST = "NodeLost";
    private static final String BY_CONTAINER = "byContainer";
    private static final String BY_NODE = "byNode";

    private final EventRecorder events;
    private final NodeLoss nodeLoss;
    private IndexerResourceCache<Task> tasks;

    public TaskReconciler(EventRecorder events, NodeLoss nodeLoss) {
        this.events = events;
        this.nodeLoss = nodeLoss;
    }

    @Override
    public List<EventSource<?, Task>> prepareEventSources(EventSourceContext<Task> context) {
        tasks = context.getPrimaryCache();
        tasks.addIndexer(
                BY_CONTAINER,
                t -> List.of(t.getMetadata().getNamespace() + "/" + t.getSpec().container()));
        tasks.addIndexer(
                BY_NODE,
                t -> t.getSpec().nodeName() == null
                        ? List.of()
                        : List.of(t.getSpec().nodeName()));
        var containers = new InformerEventSource<>(
                InformerEventSourceConfiguration.from(Container.class, Task.class)
                        .withPrimaryToSecondaryMapper((Task t) -> Set.of(new ResourceID(
                                t.getSpec().container(), t.getMetadata().getNamespace())))
                        .withSecondaryToPrimaryMapper(c -> ids(tasks.byIndex(
                                BY_CONTAINER,
                                c.getMetadata().getNamespace() + "/"
                                        + c.getMetadata().getName())))
                        .withItemStore(new LeanItemStore<>())
                        .build(),
                context);
        var nodes = new InformerEventSource<>(
                InformerEventSourceConfiguration.from(RuntimeNode.class, Task.class)
                        .withPrimaryToSecondaryMapper((Task t) -> t.getSpec().nodeName() == null
                                ? Set.of()
                                : Set.of(new ResourceID(t.getSpec().nodeName())))
                        .withSecondaryToPrimaryMapper(
                                n -> ids(tasks.byIndex(BY_NODE, n.getMetadata().getName())))
                        .withOnUpdateFilter(Nodes::schedulingRelevantChange)
                        .withItemStore(new LeanItemStore<>())
                        .build(),
                context);
        return List.of(containers, nodes);
    }

    @Override
    public UpdateControl<Task> reconcile(Task task, Context<Task> context) {
        if (context.isPrimaryResourceDeleted()) {
            return UpdateControl.noUpdate();
        }
        KubernetesClient client = context.getClient();
        Optional<Container> container = context.getSecondaryResource(Container.class);
        TaskStatus status = task.getStatus();
        List<Condition> current = status == null ? null : status.conditions();
        if (TaskQueue.bound(task)) {
            Optional<RuntimeNode> node = context.getSecondaryResource(RuntimeNode.class);
            NodeLoss.Standing standing = nodeLoss.standing(node, task.getSpec().nodeName(), Instant.now());
            if (task.isMarkedForDeletion()) {
                return releaseIfNodeGone(client, task, standing);
            }
            // A Deleted Task keeps the NodeReachable it had: where it ran no longer matters; nor is it lost.
            Condition reachable = TaskQueue.deleted(task)
                    ? Conditions.find(current, ContainerReconciler.NODE_REACHABLE)
                            .orElse(null)
                    : Nodes.reachable(
                            current,
                            node,
                            task.getSpec().nodeName(),
                            task.getMetadata().getGeneration());
            Condition lost = TaskQueue.deleted(task)
                    ? null
                    : nodeLost(current, standing, task.getMetadata().getGeneration());
            boolean agentStarted =
                    status != null && status.phase() != null && status.phase() != TaskStatus.Phase.Pending;
            // Until the node agent takes the phase over, the Task stays Pending, saying what it waits for.
            apply(client, task, agentStarted ? null : whileBound(task, container), reachable, lost);
            recordNodeLoss(task, current, lost, standing);
            if (TaskQueue.deleted(task)) {
                return expireAfterTtl(client, task);
            }
            return standing.changesIn()
                    .map(d -> UpdateControl.<Task>noUpdate().rescheduleAfter(d.plusMillis(100)))
                    .orElseGet(UpdateControl::noUpdate);
        }
        if (task.isMarkedForDeletion()) {
            return UpdateControl.noUpdate(); // unbound: no node agent's finalizer to wait for
        }
        if (TaskQueue.deleted(task)) {
            return expireAfterTtl(client, task); // Cancelled here, its Reconciling written with it
        }
        if (!TaskQueue.waiting(task)) {
            apply(
                    client,
                    task,
                    new Phase(TaskStatus.Phase.Deleted, "Cancelled", "stopped before it was started"),
                    null,
                    null);
            events.record(task, EventRecorder.NORMAL, "Cancelled", "Stopped before it was started");
            return UpdateControl.noUpdate();
        }
        Phase pending = pendingReason(task, container);
        if (apply(client, task, pending, null, null) && "ContainerBusy".equals(pending.reason())) {
            events.record(task, EventRecorder.NORMAL, "ContainerBusy", pending.message());
        }
        return UpdateControl.noUpdate();
    }

    /**
     * NodeLost=True on a live Task of a lost or gone node, as the node lifecycle controller marks the Pods of an
     * unreachable Node not ready; null otherwise, which removes it. The phase stays the agent's last word: the
     * process may well run on behind a partition, and only the agent knows how it ended.
     */
    static Condition nodeLost(List<Condition> current, NodeLoss.Standing standing, Long generation) {
        return switch (standing.state()) {
            case READY, NOT_READY -> null;
            case LOST, GONE ->
                Conditions.of(
                        current,
                        NODE_LOST,
                        "True",
                        NODE_LOST,
                        standing.describe() + "; the task's state is unknown until its node agent reports again",
                        generation);
        };
    }

    private void recordNodeLoss(Task task, List<Condition> current, Condition lost, NodeLoss.Standing standing) {
        boolean wasLost = Conditions.isTrue(current, NODE_LOST);
        if (lost != null && !wasLost) {
            events.record(task, EventRecorder.WARNING, NODE_LOST, lost.getMessage());
        } else if (lost == null && wasLost) {
            events.record(task, EventRecorder.NORMAL, "NodeRecovered", standing.describe());
        }
    }

    /**
     * A Task being deleted waits for its node agent's finalizer; on a gone node no agent will remove it, so the
     * operator does, as pod garbage collection force-deletes the Pods of a deleted Node.
     */
    private UpdateControl<Task> releaseIfNodeGone(KubernetesClient client, Task task, NodeLoss.Standing standing) {
        if (!task.hasFinalizer(NodeAgentFinalizer.NAME)) {
            return UpdateControl.noUpdate();
        }
        if (standing.state() == NodeLoss.State.GONE) {
            NodeAgentFinalizer.remove(client, task);
            events.record(task, EventRecorder.WARNING, "NodeGone", Nodes.releasedBecause(standing));
            return UpdateControl.noUpdate();
        }
        return standing.changesIn()
                .map(d -> UpdateControl.<Task>noUpdate().rescheduleAfter(d.plusMillis(100)))
                .orElseGet(UpdateControl::noUpdate);
    }

    /** The phase the operator writes (Pending, or Deleted for a Task cancelled before it was bound), and why. */
    record Phase(TaskStatus.Phase phase, String reason, String message) {
        static Phase pending(String reason, String message) {
            return new Phase(TaskStatus.Phase.Pending, reason, message);
        }

        boolean differsFrom(TaskStatus status) {
            return status == null
                    || status.phase() != phase
                    || !reason.equals(status.reason())
                    || !message.equals(status.message());
        }
    }

    /** A bound Task waits for its node agent, which waits for the Container to be Ready: why it is not, if it says. */
    private static Phase whileBound(Task task, Optional<Container> container) {
        Optional<Condition> notReady = container
                .map(Container::getStatus)
                .flatMap(s -> Conditions.find(s.conditions(), ContainerStatus.READY))
                .filter(ready -> "False".equals(ready.getStatus()));
        if (notReady.isPresent()) {
            return Phase.pending(
                    "ContainerNotReady",
                    "Container " + task.getSpec().container() + " is not ready on node "
                            + task.getSpec().nodeName() + ": " + notReady.get().getReason() + ": "
                            + notReady.get().getMessage());
        }
        return Phase.pending("Bound", "bound to node " + task.getSpec().nodeName() + "; waiting for its node agent");
    }

    private Phase pendingReason(Task task, Optional<Container> container) {
        String name = task.getSpec().container();
        if (container.isEmpty()) {
            return Phase.pending(
                    "ContainerNotFound",
                    "Container " + name + " does not exist in namespace "
                            + task.getMetadata().getNamespace());
        }
        if (container.get().getSpec().nodeName() == null) {
            String why = Optional.ofNullable(container.get().getStatus())
                    .flatMap(s -> Conditions.find(s.conditions(), ContainerStatus.SCHEDULED))
                    .map(Condition::getMessage)
                    .orElse("not scheduled yet");
            return Phase.pending("ContainerNotScheduled", "Container " + name + " has no node: " + why);
        }
        TaskQueue siblings =
                new TaskQueue(tasks.byIndex(BY_CONTAINER, task.getMetadata().getNamespace() + "/" + name));
        boolean first = siblings.next()
                .map(next ->
                        next.getMetadata().getUid().equals(task.getMetadata().getUid()))
                .orElse(false);
        if (siblings.holder().isPresent() || !first) {
            return Phase.pending(
                    "ContainerBusy",
                    "another Task of Container " + name
                            + " is live or ahead in line; the Tasks of a Container run one at a time");
        }
        return Phase.pending(
                "Binding", "binding to node " + container.get().getSpec().nodeName());
    }

    private UpdateControl<Task> expireAfterTtl(KubernetesClient client, Task task) {
        Long ttl = task.getSpec().ttlSecondsAfterDeleted();
        if (ttl == null) {
            return UpdateControl.noUpdate();
        }
        Instant finished = Optional.ofNullable(task.getStatus().exitedAt())
                .map(Instant::parse)
                .orElse(Instant.parse(task.getMetadata().getCreationTimestamp()));
        Duration left = Duration.between(Instant.now(), finished.plusSeconds(ttl));
        if (left.isNegative() || left.isZero()) {
            client.resource(task)
                    .withPropagationPolicy(io.fabric8.kubernetes.api.model.DeletionPropagation.BACKGROUND)
                    .delete();
            return UpdateControl.noUpdate();
        }
        return UpdateControl.<Task>noUpdate().rescheduleAfter(left.plusMillis(100));
    }

    /**
     * Applies the operator's part of the status if it changed: the phase it writes ({@code null} once the agent has
     * taken the phase over), NodeReachable once bound, NodeLost while its node is lost, and Reconciling for the status
     * the Task will then have (True while lost). Every apply carries Reconciling: one without it would remove it; one without NodeLost
     * removes it.
     *
     * @return whether it wrote
     */
    static boolean apply(KubernetesClient client, Task task, Phase phase, Condition reachable, Condition lost) {
        TaskStatus status = task.getStatus();
        List<Condition> current = status == null ? null : status.conditions();
        Long generation = task.getMetadata().getGeneration();
        String exitedAt = phase != null && phase.phase() == TaskStatus.Phase.Deleted
                ? Instant.now().truncatedTo(ChronoUnit.SECONDS).toString()
                : null;
        TaskStatus written = phase == null
                ? new TaskStatus(null, null, null, null, null, null, null, null, null, null)
                : new TaskStatus(
                        phase.phase(),
                        null,
                        null,
                        null,
                        null,
                        exitedAt,
                        phase.reason(),
                        phase.message(),
                        generation,
                        null);
        Condition reconciling = lost != null
                ? Reconciling.ofLostTask(lost, current, generation)
                : Reconciling.ofTask(generation, phase == null ? status : written, current);
        List<Condition> conditions =
                Stream.of(reachable, lost, reconciling).filter(Objects::nonNull).toList();
        boolean lostCleared =
                lost == null && Conditions.find(current, NODE_LOST).isPresent();
        if ((phase == null || !phase.differsFrom(status)) && !Conditions.changes(current, conditions) && !lostCleared) {
            return false;
        }
        Task apply = new Task();
        apply.setMetadata(FieldManager.identity(task));
        if (phase != null) {
            // The node agent may have taken the phase over since this copy was read; a forced apply would undo its
            // Running, or its Deleted with the exit status. The newer object's event reconciles again.
            apply.getMetadata().setResourceVersion(task.getMetadata().getResourceVersion());
        }
        apply.setStatus(written.withConditions(conditions));
        try {
            FieldManager.OPERATOR.applyStatus(client, apply);
        } catch (KubernetesClientException e) {
            if (e.getCode() == 409 && phase != null) {
                LOG.debug(
                        "task {}/{} moved on before its phase was written",
                        task.getMetadata().getNamespace(),
                        task.getMetadata().getName());
                return false;
            }
            throw e;
        }
        return true;
    }

    private static Set<ResourceID> ids(List<Task> list) {
        return list.stream().map(ResourceID::fromResource).collect(Collectors.toSet());
    }
}
