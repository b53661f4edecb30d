package dev.stevedore.api.v1alpha1;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.kubernetes.api.model.Condition;
import java.util.List;

/** Written by the operator (scheduling) and by the node agent (image, rootfs, spec), each under its own field manager. */
@JsonInclude(JsonInclude.Include.NON_EMPTY)
public record ContainerStatus(
        @JsonPropertyDescription("The node the container was scheduled to.")
        String nodeName,

        @JsonPropertyDescription("The digest (sha256:...) the image reference resolved to on the node.")
        String imageDigest,

        @JsonPropertyDescription("The snapshotter that made the root filesystem.")
        String snapshotter,

        @JsonPropertyDescription("Key of the container's active rootfs snapshot on the node.")
        String snapshotKey,

        @JsonPropertyDescription(
                "sha256 digest of the generated OCI runtime spec (config.json) the next Task will use.")
        String specDigest,

        @JsonPropertyDescription("The metadata.generation this status describes.")
        Long observedGeneration,

        @JsonPropertyDescription(
                "Scheduled, ImageReady, RootfsReady and Ready, with reasons and messages; Stalled when "
                        + "the node gave up on this generation (a missing image, a rejected layer or spec) until the Container changes; "
                        + "Reconciling while it is on its way to Ready (scheduling, pulling, preparing, retrying).")
        List<Condition> conditions) {

    public static final String SCHEDULED = "Scheduled";
    public static final String IMAGE_READY = "ImageReady";
    public static final String ROOTFS_READY = "RootfsReady";
    public static final String READY = "Ready";
}
