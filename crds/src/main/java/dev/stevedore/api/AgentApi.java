package dev.stevedore.api;

import java.util.List;

/**
 * The node agent's HTTPS endpoint for what the API server cannot hold: a Task's log, its processes and their usage,
 * as kubelet's API serves containers' logs and stats. Only the operator calls it, proxying requests the API server
 * authenticated and authorized for users (the {@code subresources.stevedore.dev} aggregated API): it presents a
 * ServiceAccount token of {@link #AUDIENCE}, which the agent has the API server review. The agent publishes where it
 * serves and the certificate it serves in its RuntimeNode's {@code status.agentEndpoint}; the operator accepts
 * that certificate and no other.
 */
public final class AgentApi {
    /**
     * The audience of the operator's token: one the API server does not take, so a token the agent sees cannot be
     * replayed against the API, and an API token is not taken here.
     */
    public static final String AUDIENCE = "stevedore.dev/agent-api";

    private AgentApi() {}

    /**
     * {@code GET}: the task's log as plain text, with the query parameters of {@code kubectl logs}: {@code stream}
     * (stdout, stderr; both by default), {@code tailLines}, {@code sinceTime} (RFC 3339), {@code timestamps},
     * {@code follow}.
     */
    public static String logPath(String taskUid) {
        return "/v1/tasks/" + taskUid + "/log";
    }

    /** {@code GET}: the task's {@link Processes}. */
    public static String processesPath(String taskUid) {
        return "/v1/tasks/" + taskUid + "/processes";
    }

    /** {@code GET}: the task's {@link Usage}. */
    public static String usagePath(String taskUid) {
        return "/v1/tasks/" + taskUid + "/usage";
    }

    /**
     * A WebSocket ({@link #EXEC_PROTOCOL}): runs the query's {@code command} parameters (one per argument) in the
     * running task, with {@code stdin=true} and {@code tty=true} as kubectl exec's {@code -i} and {@code -t}.
     */
    public static String execPath(String taskUid) {
        return "/v1/tasks/" + taskUid + "/exec";
    }

    /**
     * Kubernetes' exec protocol over WebSocket, as kubectl 1.30 and later speak it to the API server: each binary
     * message starts with its channel; {@link #ERROR} carries the final {@code Status} (its exit code for a failure),
     * {@link #RESIZE} a terminal size as {@code {"Width":W,"Height":H}}, {@link #CLOSE} the channel it closes.
     */
    public static final String EXEC_PROTOCOL = "v5.channel.k8s.io";

    public static final byte STDIN = 0;
    public static final byte STDOUT = 1;
    public static final byte STDERR = 2;
    public static final byte ERROR = 3;
    public static final byte RESIZE = 4;
    public static final byte CLOSE = (byte) 255;

    /** The processes in the task's cgroup, as the node sees them (host PIDs), as {@code ctr tasks ps} lists them. */
    public record Processes(List<Process> processes) {}

    /**
     * @param pid in the node's PID namespace
     * @param command its command line, arguments separated by spaces
     */
    public record Process(long pid, long parentPid, String state, long rssBytes, String command) {}

    /**
     * The task's usage now, as {@code kubectl top} shows a Pod's: CPU as cores used over the last second, memory as
     * the working set.
     */
    public record Usage(
            double cpuCores, double cpuSecondsTotal, long memoryWorkingSetBytes, long memoryBytes, long pids) {}
}
