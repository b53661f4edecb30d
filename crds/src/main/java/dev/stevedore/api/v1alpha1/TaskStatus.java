package dev.stevedore.api.v1alpha1;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.kubernetes.api.model.Condition;
import java.util.List;

/** Written by the operator (Pending, binding) and by the node agent (everything from Created on). */
@JsonInclude(JsonInclude.Include.NON_EMPTY)
public record TaskStatus(
        @JsonPropertyDescription("Pending, Created, Running, Paused, Stopped or Deleted (the process exited and its "
                + "runtime resources are released; final).")
        Phase phase,

        @JsonPropertyDescription("The node the task runs on.")
        String nodeName,

        @JsonPropertyDescription("PID of the task's process on the node.")
        Long pid,

        @JsonPropertyDescription("When the process started (RFC 3339).")
        String startedAt,

        @JsonPropertyDescription("The process's exit code; 128+N when killed by signal N.")
        Integer exitCode,

        @JsonPropertyDescription("When the process exited (RFC 3339).")
        String exitedAt,

        @JsonPropertyDescription(
                "Why the task is in its phase: Completed, Error, Signaled, OOMKilled, StartFailed (also "
                        + "when its Container cannot run on the node), ContainerBusy, ContainerNotReady, ...")
        String reason,

        @JsonPropertyDescription("Details for a person, e.g. the runtime's error or the signal's name.")
        String message,

        @JsonPropertyDescription("The task's addresses on its CNI network while it runs, as a Pod's podIPs.")
        List<String> ips,

        @JsonPropertyDescription("The metadata.generation this status describes.")
        Long observedGeneration,

        @JsonPropertyDescription("Conditions of the task: NodeReachable; NodeLost while its node has not been ready "
                + "for longer than the operator's --node-lost-grace (the phase is then the node's last word); "
                + "Reconciling while it is Pending, starting, stopping or not yet at its desiredState; Stalled once "
                + "it ended without doing what was asked (StartFailed, Error, Signaled, OOMKilled, Lost, "
                + "AlreadyExists).")
        List<Condition> conditions) {

    /** A status of a task without addresses: not (or no longer) on a CNI network. */
    public TaskStatus(
            Phase phase,
            String nodeName,
            Long pid,
            String startedAt,
            Integer exitCode,
            String exitedAt,
            String reason,
            String message,
            Long observedGeneration,
            List<Condition> conditions) {
        this(
                phase,
                nodeName,
                pid,
                startedAt,
                exitCode,
                exitedAt,
                reason,
                message,
                null,
                observedGeneration,
                conditions);
    }

    /** This status with {@code conditions} in place of its own. */
    public TaskStatus withConditions(List<Condition> conditions) {
        return new TaskStatus(
                phase,
                nodeName,
                pid,
                startedAt,
                exitCode,
                exitedAt,
                reason,
                message,
                ips,
                observedGeneration,
                conditions);
    }

    public enum Phase {
        Pending,
        Created,
        Running,
        Paused,
        Stopped,
        Deleted
    }
}
