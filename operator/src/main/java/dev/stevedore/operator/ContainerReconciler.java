package dev.stevedore.operator;

import dev.stevedore.api.EventRecorder;
import dev.stevedore.api.FieldManager;
import dev.stevedore.api.NodeAgentFinalizer;
import dev.stevedore.api.v1alpha1.Conditions;
import dev.stevedore.api.v1alpha1.Container;
import dev.stevedore.api.v1alpha1.ContainerStatus;
import dev.stevedore.api.v1alpha1.RuntimeNode;
import dev.stevedore.api.v1alpha1.Task;
import io.fabric8.kubernetes.api.model.Condition;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.dsl.base.PatchContext;
import io.fabric8.kubernetes.client.dsl.base.PatchType;
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
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.stream.Collectors;
import java.util.stream.Stream;

/**
 * Schedules a Container onto a RuntimeNode and hands the Container to its Tasks one at a time: a Container is
 * reconciled by one thread at a time, which makes it the natural lock for "one live Task per Container". It also
 * keeps the Container's Reconciling condition, which follows the node agent's status: so this reconciler is not
 * generation-aware. It sees Containers being deleted too: one of a gone node waits for a finalizer no agent will
 * remove.
 *
 * <p>A Container whose RuntimeNode is deleted stays assigned to it, marked NodeReachable=False (NodeNotFound) with
 * an Event: moving it by itself could start its Tasks a second time while the node, deleted from the API but maybe
 * still running, runs them too; and a Pod is never moved either. Deleting it (which now completes) and creating it
 * again runs it elsewhere.
 */
@ControllerConfiguration(
        name = "container",
        generationAwareEventProcessing = false,
        triggerReconcilerOnAllEvents = true,
        informer = @Informer(itemStore = LeanItemStore.class))
public class ContainerReconciler implements Reconciler<Container> {
    static final String NODE_REACHABLE = "NodeReachable";
    static final String NODE_NOT_FOUND = "NodeNotFound";
    private static final String BY_NODE = "byNode";
    private static final String UNSCHEDULED = "";

    private final EventRecorder events;
    private final NodeLoss nodeLoss;
    /** Nodes this process assigned, until the informer shows the assignment: spreading must not count stale. */
    private final Map<ResourceID, String> assumed = new ConcurrentHashMap<>();

    private IndexerResourceCache<Container> containers;
    private InformerEventSource<Task, Container> tasks;
    private InformerEventSource<RuntimeNode, Container> nodes;

    public ContainerReconciler(EventRecorder events, NodeLoss nodeLoss) {
        this.events = events;
        this.nodeLoss = nodeLoss;
    }

    @Override
    public List<EventSource<?, Container>> prepareEventSources(EventSourceContext<Container> context) {
        containers = context.getPrimaryCache();
        containers.addIndexer(
                BY_NODE,
                c -> List.of(
                        c.getSpec().nodeName() == null
                                ? UNSCHEDULED
                                : c.getSpec().nodeName()));
        tasks = new InformerEventSource<>(
                InformerEventSourceConfiguration.from(Task.class, Container.class)
                        .withSecondaryToPrimaryMapper(task -> Set.of(new ResourceID(
                                task.getSpec().container(), task.getMetadata().getNamespace())))
                        .withItemStore(new LeanItemStore<>())
                        .build(),
                context);
        nodes = new InformerEventSource<>(
                InformerEventSourceConfiguration.from(RuntimeNode.class, Container.class)
                        .withPrimaryToSecondaryMapper(
                                (Container c) -> c.getSpec().nodeName() == null
                                        ? Set.of()
                                        : Set.of(new ResourceID(c.getSpec().nodeName())))
                        // A node's change concerns its own Containers, and the unscheduled ones it may now fit.
                        .withSecondaryToPrimaryMapper(node -> Stream.concat(
                                        containers
                                                .byIndex(
                                                        BY_NODE,
                                                        node.getMetadata().getName())
                                                .stream(),
                                        containers.byIndex(BY_NODE, UNSCHEDULED).stream())
                                .map(ResourceID::fromResource)
                                .collect(Collectors.toSet()))
                        .withOnUpdateFilter(Nodes::schedulingRelevantChange)
                        .withItemStore(new LeanItemStore<>())
                        .build(),
                context);
        return List.of(tasks, nodes);
    }

    @Override
    public UpdateControl<Container> reconcile(Container container, Context<Container> context) {
        if (context.isPrimaryResourceDeleted()) {
            return UpdateControl.noUpdate();
        }
        KubernetesClient client = context.getClient();
        if (container.isMarkedForDeletion()) {
            return releaseIfNodeGone(client, container);
        }
        List<Task> ownTasks = adoptOrphans(client, container, context.getSecondaryResources(Task.class));
        List<Condition> current =
                container.getStatus() == null ? null : container.getStatus().conditions();
        String nodeName = container.getSpec().nodeName();
        if (nodeName == null) {
            Scheduler.Decision decision = decide(container);
            if (decision.nodeName().isEmpty()) {
                Condition unscheduled = Conditions.of(
                        current,
                        ContainerStatus.SCHEDULED,
                        "False",
                        Scheduler.UNSCHEDULABLE,
                        decision.message(),
                        container.getMetadata().getGeneration());
                applyStatus(
                        client,
                        container,
                        null,
                        List.of(unscheduled, Reconciling.ofContainer(container, unscheduled, current)),
                        EventRecorder.WARNING,
                        "FailedScheduling",
                        unscheduled.getMessage());
                return UpdateControl.noUpdate();
            }
            nodeName = decision.nodeName().get();
            // The status below describes the generation the assignment made, not the one it replaced.
            container = assignNode(client, container, nodeName);
        } else {
            assumed.remove(ResourceID.fromResource(container));
        }

        Optional<RuntimeNode> node = nodes.get(new ResourceID(nodeName));
        Condition scheduled = Conditions.of(
                current,
                ContainerStatus.SCHEDULED,
                "True",
                "Scheduled",
                "assigned to node " + nodeName,
                container.getMetadata().getGeneration());
        Condition reachable =
                Nodes.reachable(current, node, nodeName, container.getMetadata().getGeneration());
        List<Condition> wanted = List.of(scheduled, reachable, Reconciling.ofContainer(container, scheduled, current));
        boolean nodeJustNotFound = NODE_NOT_FOUND.equals(reachable.getReason())
                && !Conditions.find(current, NODE_REACHABLE)
                        .map(c -> NODE_NOT_FOUND.equals(c.getReason()))
                        .orElse(false);
        applyStatus(
                client,
                container,
                nodeName,
                wanted,
                EventRecorder.WARNING,
                nodeJustNotFound ? NODE_NOT_FOUND : null,
                reachable.getMessage());

        TaskQueue queue = new TaskQueue(ownTasks);
        if (queue.holder().isEmpty()) {
            Optional<Task> next = queue.next();
            if (next.isPresent()) {
                bind(client, container, next.get(), nodeName);
            }
        }
        return UpdateControl.noUpdate();
    }

    /**
     * Containers reconcile in parallel; deciding one at a time, each decision counting the ones before it as
     * assumed, keeps a burst of Containers from all picking the same least-loaded node.
     */
    private Scheduler.Decision decide(Container container) {
        synchronized (assumed) {
            Scheduler.Decision decision =
                    Scheduler.schedule(container, nodes.list().toList(), this::load);
            decision.nodeName().ifPresent(node -> assumed.put(ResourceID.fromResource(container), node));
            return decision;
        }
    }

    private Container assignNode(KubernetesClient client, Container container, String nodeName) {
        Container patch = new Container();
        patch.setMetadata(FieldManager.identity(container));
        patch.getMetadata()
                .setResourceVersion(container.getMetadata().getResourceVersion()); // lost race → 409, retried
        patch.setSpec(new dev.stevedore.api.v1alpha1.ContainerSpec(
                null, null, null, null, nodeName, null, null, null, null, null, null));
        try {
            Container assigned = client.resource(patch).patch(PatchContext.of(PatchType.JSON_MERGE));
            events.record(container, EventRecorder.NORMAL, "Scheduled", "Assigned to node " + nodeName);
            return assigned;
        } catch (RuntimeException e) {
            assumed.remove(ResourceID.fromResource(container));
            throw e;
        }
    }

    /**
     * Its Tasks, the orphans among them adopted first, whether or not the Container can be scheduled: deleting it
     * then deletes them all, queued ones too, and a bound Task always has its owner.
     */
    private List<Task> adoptOrphans(KubernetesClient client, Container container, Set<Task> ofContainer) {
        List<Task> adopted = new ArrayList<>();
        for (Task task : ofContainer) {
            if (Owners.orphan(task)) {
                Task owned = Owners.adopt(client, task, container);
                tasks.handleRecentResourceUpdate(ResourceID.fromResource(owned), owned, task);
                adopted.add(owned);
            } else {
                adopted.add(task);
            }
        }
        return adopted;
    }

    /** Binds the next Task (adopted already) to the Container's node, in an optimistic write. */
    private void bind(KubernetesClient client, Container container, Task task, String nodeName) {
        Task patch = new Task();
        patch.setMetadata(FieldManager.identity(task));
        patch.getMetadata().setResourceVersion(task.getMetadata().getResourceVersion());
        patch.setSpec(new dev.stevedore.api.v1alpha1.TaskSpec(null, nodeName, null, null, null, null));
        Task bound = client.resource(patch).patch(PatchContext.of(PatchType.JSON_MERGE));
        // Read-your-writes: the next reconcile of this Container must see the binding even before the watch does.
        tasks.handleRecentResourceUpdate(ResourceID.fromResource(bound), bound, task);
        events.record(
                task,
                EventRecorder.NORMAL,
                "Bound",
                "Bound to node " + nodeName + " with Container "
                        + container.getMetadata().getName());
    }

    private void applyStatus(
            KubernetesClient client,
            Container container,
            String nodeName,
            List<Condition> wanted,
            String eventType,
            String eventReason,
            String eventMessage) {
        ContainerStatus status = container.getStatus();
        List<Condition> current = status == null ? null : status.conditions();
        boolean nodeChanged = nodeName != null && (status == null || !nodeName.equals(status.nodeName()));
        if (!nodeChanged && !Conditions.changes(current, wanted)) {
            return;
        }
        Container apply = new Container();
        apply.setMetadata(FieldManager.identity(container));
        apply.setStatus(new ContainerStatus(nodeName, null, null, null, null, null, new ArrayList<>(wanted)));
        FieldManager.OPERATOR.applyStatus(client, apply);
        if (eventReason != null) {
            events.record(container, eventType, eventReason, eventMessage);
        }
    }

    /**
     * A Container being deleted waits for its node agent's finalizer, and, on a gone node, for the operator to remove
     * it, as pod garbage collection force-deletes the Pods of a deleted Node. An unscheduled one has no such
     * finalizer.
     */
    private UpdateControl<Container> releaseIfNodeGone(KubernetesClient client, Container container) {
        String nodeName = container.getSpec().nodeName();
        if (nodeName == null || !container.hasFinalizer(NodeAgentFinalizer.NAME)) {
            return UpdateControl.noUpdate();
        }
        NodeLoss.Standing standing = nodeLoss.standing(nodes.get(new ResourceID(nodeName)), nodeName, Instant.now());
        if (standing.state() == NodeLoss.State.GONE) {
            NodeAgentFinalizer.remove(client, container);
            events.record(container, EventRecorder.WARNING, "NodeGone", Nodes.releasedBecause(standing));
            return UpdateControl.noUpdate();
        }
        return standing.changesIn()
                .map(d -> UpdateControl.<Container>noUpdate().rescheduleAfter(d.plusMillis(100)))
                .orElseGet(UpdateControl::noUpdate);
    }

    /** Containers on the node: the informer's index, plus assignments it has not shown yet. */
    private int load(String nodeName) {
        int pending = 0;
        for (Map.Entry<ResourceID, String> entry : assumed.entrySet()) {
            Optional<Container> cached = containers.get(entry.getKey());
            if (cached.isEmpty() || cached.get().getSpec().nodeName() != null) {
                assumed.remove(entry.getKey());
            } else if (entry.getValue().equals(nodeName)) {
                pending++;
            }
        }
        return containers.byIndex(BY_NODE, nodeName).size() + pending;
    }
}
