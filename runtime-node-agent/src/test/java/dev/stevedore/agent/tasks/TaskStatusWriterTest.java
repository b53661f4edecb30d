package dev.stevedore.agent.tasks;

import static org.assertj.core.api.Assertions.assertThat;

import dev.stevedore.api.FieldManager;
import dev.stevedore.api.v1alpha1.Task;
import dev.stevedore.api.v1alpha1.TaskStatus;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.fabric8.kubernetes.client.Config;
import io.fabric8.kubernetes.client.ConfigBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientBuilder;
import io.fabric8.kubernetes.client.KubernetesClientException;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

class TaskStatusWriterTest {
    private static final TaskRef TASK = new TaskRef("ns", "t", "0a1b2c3d-0000-4000-8000-000000000001");
    private static final TaskStatus RUNNING =
            new TaskStatus(TaskStatus.Phase.Running, "node-1", 42L, null, null, null, "Started", "m", 1L, null);

    private final FakeTaskStatusApi api = new FakeTaskStatusApi();
    /** As the agent's own client: it retries a failed request (here twice, quickly). */
    private final KubernetesClient retrying = new KubernetesClientBuilder()
            .withConfig(new ConfigBuilder(Config.empty())
                    .withMasterUrl(api.url())
                    .withRequestRetryBackoffLimit(2)
                    .withRequestRetryBackoffInterval(10)
                    .build())
            .build();

    TaskStatusWriterTest() throws java.io.IOException {}

    @AfterEach
    void tearDown() {
        retrying.close();
        api.close();
    }

    @Test
    void triesEachWriteOnceWhateverTheClientRetries() {
        api.respondWith = 503;
        assertThat(new TaskStatusWriter(retrying).write(TASK, RUNNING)).isEqualTo(TaskStatusWriter.Result.NOT_WRITTEN);
        assertThat(api.requests).hasValue(1);

        // The client itself would have tried three times, holding the task's lock all along.
        api.requests.set(0);
        Task apply = new Task();
        apply.setMetadata(new ObjectMetaBuilder()
                .withName(TASK.name())
                .withNamespace(TASK.namespace())
                .withUid(TASK.uid())
                .build());
        apply.setStatus(RUNNING);
        try {
            FieldManager.AGENT.applyStatus(retrying, apply);
        } catch (KubernetesClientException expected) {
            assertThat(expected.getCode()).isEqualTo(503);
        }
        assertThat(api.requests).hasValue(3);
    }

    @Test
    void aWriteThatLandsOrFindsNoTaskSaysSo() {
        TaskStatusWriter writer = new TaskStatusWriter(retrying);
        assertThat(writer.write(TASK, RUNNING)).isEqualTo(TaskStatusWriter.Result.WRITTEN);
        assertThat(api.statuses()).containsExactly(RUNNING);
        api.respondWith = 404;
        assertThat(writer.write(TASK, RUNNING)).isEqualTo(TaskStatusWriter.Result.TASK_GONE);
        api.respondWith = 409;
        assertThat(writer.write(TASK, RUNNING)).isEqualTo(TaskStatusWriter.Result.TASK_GONE);
    }
}
