package dev.stevedore.agent.tasks;

import dev.stevedore.api.FieldManager;
import dev.stevedore.api.v1alpha1.Task;
import dev.stevedore.api.v1alpha1.TaskStatus;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.fabric8.kubernetes.client.RequestConfigBuilder;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Writes a Task's status as the agent's field manager with server-side apply: one request, no read first, and the
 * UID in the applied object is its precondition, so a status never lands on another object of the same name.
 *
 * <p>One try per write: the client's own retries (ten, over some 20 s while the API server is away) would hold the
 * task's lock all that time; a write that does not land is tried again by {@link StatusRetries}, outside the lock.
 */
final class TaskStatusWriter {
    private static final Logger LOG = LoggerFactory.getLogger(TaskStatusWriter.class);

    enum Result {
        WRITTEN,
        NOT_WRITTEN,
        TASK_GONE
    }

    private final KubernetesClient client;

    TaskStatusWriter(KubernetesClient client) {
        this.client = client.newClient(
                        new RequestConfigBuilder(client.getConfiguration().getRequestConfig())
                                .withRequestRetryBackoffLimit(0)
                                .build())
                .adapt(KubernetesClient.class);
    }

    Result write(TaskRef task, TaskStatus status) {
        Task apply = new Task();
        apply.setMetadata(new ObjectMetaBuilder()
                .withName(task.name())
                .withNamespace(task.namespace())
                .withUid(task.uid())
                .build());
        apply.setStatus(status);
        try {
            FieldManager.AGENT.applyStatus(client, apply);
            return Result.WRITTEN;
        } catch (KubernetesClientException e) {
            // 404: no object of that name; 409: one with another UID.
            if (e.getCode() == 404 || e.getCode() == 409) {
                return Result.TASK_GONE;
            }
            // At INFO once per run of failures, by StatusRetries: an outage would repeat this every few seconds.
            LOG.debug("status of task {}/{} not written: {}", task.namespace(), task.name(), e.getMessage());
            return Result.NOT_WRITTEN;
        }
    }
}
