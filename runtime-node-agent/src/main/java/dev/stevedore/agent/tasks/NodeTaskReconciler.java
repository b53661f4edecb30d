package dev.stevedore.agent.tasks;

import java.io.IOException;
import java.time.Duration;

import dev.stevedore.api.v1alpha1.Task;
import io.javaoperatorsdk.operator.api.reconciler.Cleaner;
import io.javaoperatorsdk.operator.api.reconciler.Context;
import io.javaoperatorsdk.operator.api.reconciler.ControllerConfiguration;
import io.javaoperatorsdk.operator.api.reconciler.DeleteControl;
import io.javaoperatorsdk.operator.api.reconciler.Reconciler;
import io.javaoperatorsdk.operator.api.reconciler.UpdateControl;

/**
 * The node side of a Task: runs it (through {@link TaskManager}) once bound to this node, follows desiredState,
 * and on deletion stops a live task and removes its record and log before letting the object go.
 */
@ControllerConfiguration(name = "node-task", finalizerName = NodeTaskReconciler.FINALIZER, generationAwareEventProcessing = true)
public class NodeTaskReconciler implements Reconciler<Task>, Cleaner<Task> {
    public static final String FINALIZER = "stevedore.dev/node-agent";
    private static final Duration WHILE_STOPPING = Duration.ofSeconds(1);

    private final TaskManager tasks;

    public NodeTaskReconciler(TaskManager tasks) {
        this.tasks = tasks;
    }

    @Override
    public UpdateControl<Task> reconcile(Task task, Context<Task> context) throws IOException {
        Duration again = tasks.reconcile(task);
        return again == null ? UpdateControl.noUpdate() : UpdateControl.<Task>noUpdate().rescheduleAfter(again);
    }

    @Override
    public DeleteControl cleanup(Task task, Context<Task> context) throws IOException {
        return tasks.remove(task) ? DeleteControl.defaultDelete() : DeleteControl.noFinalizerRemoval().rescheduleAfter(WHILE_STOPPING);
    }
}
