package dev.stevedore.bench;

import java.time.Duration;
import java.util.List;

/**
 * What the command line sets for every scenario; each reads the knobs that concern it.
 *
 * @param containers how many Containers a scenario creates
 * @param nodes how many RuntimeNodes it registers
 * @param createThreads how many requests create objects at once
 * @param timeout how long a scenario waits for the system to reach the state it measures before it gives up
 * @param operatorJvmOptions JVM options of the operator process
 * @param readyContainers how many Containers container_ready creates, one after another
 * @param pulls how many cold pulls image_pull_cold makes on each side
 * @param layerMiB the size of the random layer of image_pull_cold's image, in MiB
 * @param agentJvmOptions JVM options of the node agent process
 * @param tasks how many Tasks task_start and task_exit_to_deleted measure, one after another
 * @param memoryTasks how many Tasks node_memory_tasks runs at once on each side
 * @param faults what the faults scenario runs and injects
 */
public record Settings(
        int containers,
        int nodes,
        int createThreads,
        Duration timeout,
        List<String> operatorJvmOptions,
        int readyContainers,
        int pulls,
        int layerMiB,
        List<String> agentJvmOptions,
        int tasks,
        int memoryTasks,
        FaultPlan faults) {

    /** A size for a measurement's name: 10000 is "10k", 500 is "500". */
    public static String sizeLabel(int count) {
        return count >= 1000 && count % 1000 == 0 ? count / 1000 + "k" : Integer.toString(count);
    }
}
