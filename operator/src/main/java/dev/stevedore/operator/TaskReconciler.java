package dev.stevedore.operator;

import dev.stevedore.api.FieldManager;
import dev.stevedore.api.v1alpha1.Conditions;
import dev.stevedore.api.v1alpha1.Container;
import dev.stevedore.api.v1alpha1.ContainerStatus;
import dev.stevedore.api.v1alpha1.RuntimeNode;
import dev.stevedore.api.v1alpha1.Task;
import dev.stevedore.api.v1alpha1.TaskStatus;
import io.fabric8.kubernetes.api.model.Condition;
import io.fabric8.kubernetes.client.KubernetesClient;
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
import java.util.Optional;
import java.util.Set;
import java.util.stream.Collectors;

/**
 * Per-Task bookkeeping: why an unbound Task is Pending, whether its node is reachable, and the TTL after Deleted.
 * Adopting a Task (its ownerReference) and binding it are the Container's reconciler's job. Status events matter
 * here (the node agent moves the phase), so this reconciler is not generation-aware.
 */
@ControllerConfiguration(
        name = "task",
        generationAwareEventProcessing = false,
        informer = @Informer(itemStore = LeanItemStore.class))
public class TaskReconciler implements Reconciler<Task> {
    private static final String BY_CONTAINER = "byContainer";
    private static final String BY_NODE = "byNode";

    private final Events events;
    private IndexerResourceCache<Task> tasks;

    public TaskReconciler(Events events) {
        this.events = events;
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
        KubernetesClient client = context.getClient();
        Optional<Container> container = context.getSecondaryResource(Container.class);
        TaskStatus status = task.getStatus();
        List<Condition> current = status == null ? null : status.conditions();
        if (TaskQueue.bound(task)) {
            // A Deleted Task keeps the NodeReachable it had: where it ran no longer matters.
            Condition reachable = TaskQueue.deleted(task)
                    ? Conditions.find(current, ContainerReconciler.NODE_REACHABLE)
                            .orElse(null)
                    : Nodes.reachable(
                            current,
                            context.getSecondaryResource(RuntimeNode.class),
                            task.getSpec().nodeName(),
                            task.getMetadata().getGeneration());
            boolean agentStarted =
                    status != null && status.phase() != null && status.phase() != TaskStatus.Phase.Pending;
            // Until the node agent takes the phase over, the Task stays Pending, saying what it waits for.
            apply(client, task, agentStarted ? null : whileBound(task, container), reachable);
            return TaskQueue.deleted(task) ? expireAfterTtl(client, task) : UpdateControl.noUpdate();
        }
        if (TaskQueue.deleted(task)) {
            return expireAfterTtl(client, task); // Cancelled here, its Reconciling written with it
        }
        if (!TaskQueue.waiting(task)) {
            apply(
                    client,
                    task,
                    new Phase(TaskStatus.Phase.Deleted, "Cancelled", "stopped before it was started"),
                    null);
            events.record(task, Events.NORMAL, "Cancelled", "Stopped before it was started");
            return UpdateControl.noUpdate();
        }
        Phase pending = pendingReason(task, container);
        if (apply(client, task, pending, null) && "ContainerBusy".equals(pending.reason())) {
            events.record(task, Events.NORMAL, "ContainerBusy", pending.message());
        }
        return UpdateControl.noUpdate();
    }

    /** The phase the operator writes (Pending, or Deleted for a Task cancelled before it was bound), and why. */
    private record Phase(TaskStatus.Phase phase, String reason, String message) {
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
     * taken the phase over), NodeReachable once bound, and Reconciling for the status the Task will then have. Every
     * apply carries Reconciling: one without it would remove it.
     *
     * @return whether it wrote
     */
    private static boolean apply(KubernetesClient client, Task task, Phase phase, Condition reachable) {
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
        Condition reconciling = Reconciling.ofTask(generation, phase == null ? status : written, current);
        List<Condition> conditions = reachable == null ? List.of(reconciling) : List.of(reachable, reconciling);
        if ((phase == null || !phase.differsFrom(status)) && !Conditions.changes(current, conditions)) {
            return false;
        }
        Task apply = new Task();
        apply.setMetadata(FieldManager.identity(task));
        apply.setStatus(written.withConditions(conditions));
        FieldManager.OPERATOR.applyStatus(client, apply);
        return true;
    }

    private static Set<ResourceID> ids(List<Task> list) {
        return list.stream().map(ResourceID::fromResource).collect(Collectors.toSet());
    }
}
