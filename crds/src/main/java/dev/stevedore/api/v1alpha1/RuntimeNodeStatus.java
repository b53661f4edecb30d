package dev.stevedore.api.v1alpha1;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.kubernetes.api.model.Condition;
import java.util.List;

/** Written by the node agent; the operator writes only the Ready condition when heartbeats stop. */
@JsonInclude(JsonInclude.Include.NON_EMPTY)
public record RuntimeNodeStatus(
        @JsonPropertyDescription("OCI runtimes installed on the node, with versions.")
        List<RuntimeInfo> runtimes,

        @JsonPropertyDescription("Snapshotters the node supports: overlayfs, native.")
        List<String> snapshotters,

        @JsonPropertyDescription("Free bytes on the file system of the agent's state directory.")
        Long diskFreeBytes,

        @JsonPropertyDescription("Bytes in use on the file system of the agent's state directory (images, snapshots, "
                + "what tasks wrote, and whatever else shares that file system), as statvfs counts them.")
        Long diskUsedBytes,

        @JsonPropertyDescription("Images in the node's content store.")
        List<ImageInfo> images,

        @JsonPropertyDescription("Number of tasks running (or paused) on the node.")
        Integer runningTasks,

        @JsonPropertyDescription("Address of the agent's API (logs, exec, metrics).")
        String address,

        @JsonPropertyDescription("Port of the agent's API.") Integer port,

        @JsonPropertyDescription("When the agent last reported itself alive (RFC 3339).")
        String lastHeartbeatTime,

        @JsonPropertyDescription("Ready: the agent heartbeats and can run tasks.")
        List<Condition> conditions) {

    /**
     * The agent's condition, as kubelet's on a Node: True while the file system of its root has less free space than
     * its --disk-pressure-threshold; the operator places no new Container on such a node.
     */
    public static final String DISK_PRESSURE = "DiskPressure";

    public record RuntimeInfo(
            @JsonPropertyDescription("runc or crun.") String name,

            @JsonPropertyDescription("The runtime's version.")
            String version) {}

    public record ImageInfo(
            @JsonPropertyDescription("The image reference it was pulled or imported as.")
            String name,

            @JsonPropertyDescription("Digest of its manifest.")
            String digest,

            @JsonPropertyDescription("Bytes of its blobs in the content store.")
            Long sizeBytes) {}
}
