package dev.stevedore.agent.tasks;

import dev.stevedore.api.v1alpha1.SelectableFields;
import dev.stevedore.api.v1alpha1.Task;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import java.io.IOException;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * At agent start, what no Task object wants any more goes: records of Tasks deleted while the agent was down (their
 * finalizer removed by hand, or never added), and runtime containers in this agent's bundles without a record (a
 * crash between the runtime's create and the record's removal).
 */
final class OrphanSweep {
    private static final Logger LOG = LoggerFactory.getLogger(OrphanSweep.class);
    private static final Pattern UID = Pattern.compile("[a-f0-9-]{1,64}");

    private final KubernetesClient client;
    private final String nodeName;
    private final TaskRecords records;
    private final Runtimes runtimes;
    private final TaskDecisions decisions;
    private final TaskExecutor executor;
    private final TaskLocks locks;

    OrphanSweep(
            KubernetesClient client,
            String nodeName,
            TaskRecords records,
            Runtimes runtimes,
            TaskDecisions decisions,
            TaskExecutor executor,
            TaskLocks locks) {
        this.client = client;
        this.nodeName = nodeName;
        this.records = records;
        this.runtimes = runtimes;
        this.decisions = decisions;
        this.executor = executor;
        this.locks = locks;
    }

    void run() {
        Set<String> wanted = new HashSet<>();
        try {
            client.resources(Task.class)
                    .inAnyNamespace()
                    .withField(SelectableFields.NODE_NAME, nodeName)
                    .list()
                    .getItems()
                    .forEach(t -> wanted.add(t.getMetadata().getUid()));
        } catch (KubernetesClientException e) {
            LOG.warn("listing this node's Tasks, orphans are left for later: {}", e.getMessage());
            return;
        }
        for (TaskRecord rec : records.list()) {
            if (!wanted.contains(rec.uid())) {
                removeRecorded(rec);
            }
        }
        String ours = records.tasksDir().toAbsolutePath().normalize() + "/";
        for (OciRuntime runtime : runtimes.all()) {
            try {
                for (Map.Entry<String, String> c : runtime.list().entrySet()) {
                    if (c.getValue().startsWith(ours)
                            && UID.matcher(c.getKey()).matches()
                            && records.get(c.getKey()).isEmpty()) {
                        LOG.info("{} container {} has no record: deleting", runtime.name(), c.getKey());
                        runtime.delete(c.getKey(), true);
                        Bundles.release(Path.of(c.getValue()));
                        TaskResources.removeCgroups(c.getKey());
                    }
                }
            } catch (IOException | RuntimeCommandException e) {
                LOG.warn("listing {} containers: {}", runtime.name(), e.toString());
            }
        }
    }

    private void removeRecorded(TaskRecord rec) {
        try {
            locks.with(rec.uid(), () -> {
                LOG.info("task {}/{} ({}) has no Task object: cleaning up", rec.namespace(), rec.name(), rec.uid());
                executor.execute(TaskRef.of(rec), rec, decisions.orphaned());
                locks.forget(rec.uid());
                return null;
            });
        } catch (IOException e) {
            LOG.warn("cleaning up {}: {}", rec.uid(), e.toString());
        }
    }
}
