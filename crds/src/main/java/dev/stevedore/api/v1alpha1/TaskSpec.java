package dev.stevedore.api.v1alpha1;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.generator.annotation.Default;
import io.fabric8.generator.annotation.Min;
import io.fabric8.generator.annotation.Pattern;
import io.fabric8.generator.annotation.Required;
import io.fabric8.generator.annotation.Size;
import io.fabric8.generator.annotation.ValidationRule;

@JsonInclude(JsonInclude.Include.NON_NULL)
@ValidationRule(
        value = "!has(oldSelf.nodeName) || (has(self.nodeName) && self.nodeName == oldSelf.nodeName)",
        message = "nodeName is immutable once set",
        fieldPath = ".nodeName",
        reason = "FieldValueForbidden")
@ValidationRule(
        value = "self.container == oldSelf.container",
        message = "container is immutable",
        fieldPath = ".container",
        reason = "FieldValueForbidden")
public record TaskSpec(
        @Required
        @Size(min = 1, max = 253)
        @Pattern(ContainerSpec.DNS_SUBDOMAIN)
        @JsonPropertyDescription("Name of the Container in this namespace whose process this is. Immutable.")
        String container,

        @Size(max = 253)
        @Pattern(ContainerSpec.DNS_SUBDOMAIN)
        @JsonPropertyDescription("The node the task runs on: set by the operator when it binds the Task to its "
                + "Container's node. Immutable once set.")
        String nodeName,

        @Default("Running")
        @JsonPropertyDescription("Running (start or resume), Paused (freeze) or Stopped (send stopSignal, then SIGKILL "
                + "after stopGracePeriodSeconds).")
        DesiredState desiredState,

        @Default("SIGTERM")
        @Pattern("^SIG(HUP|INT|QUIT|KILL|USR1|USR2|TERM|WINCH|PWR|ALRM|RTMIN\\+[0-9]{1,2})$")
        @JsonPropertyDescription("The signal that asks the process to stop, e.g. SIGTERM, SIGINT, SIGQUIT.")
        String stopSignal,

        @Default("10")
        @Min(0)
        @JsonPropertyDescription("Seconds between stopSignal and SIGKILL, when Stopped or deleted.")
        Long stopGracePeriodSeconds,

        @Min(0)
        @JsonPropertyDescription("When set, the Task object is deleted this many seconds after it reached Deleted.")
        Long ttlSecondsAfterDeleted) {

    public enum DesiredState {
        Running,
        Paused,
        Stopped
    }
}
