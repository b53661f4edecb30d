package dev.stevedore.api.v1alpha1;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;

@JsonInclude(JsonInclude.Include.NON_NULL)
public record RuntimeNodeSpec(
        @JsonPropertyDescription("When true, no new Container is scheduled to this node (like kubectl cordon); "
                + "what runs there keeps running.")
        Boolean unschedulable) {}
