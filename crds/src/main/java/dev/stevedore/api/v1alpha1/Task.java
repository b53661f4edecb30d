package dev.stevedore.api.v1alpha1;

import io.fabric8.crd.generator.annotation.AdditionalPrinterColumn;
import io.fabric8.crd.generator.annotation.AdditionalSelectableField;
import io.fabric8.generator.annotation.Required;
import io.fabric8.kubernetes.api.model.Namespaced;
import io.fabric8.kubernetes.client.CustomResource;
import io.fabric8.kubernetes.model.annotation.Categories;
import io.fabric8.kubernetes.model.annotation.Group;
import io.fabric8.kubernetes.model.annotation.ShortNames;
import io.fabric8.kubernetes.model.annotation.Version;

/**
 * A Container's running process. Its lifecycle ends when the process exits: the node releases its runtime
 * resources and marks it Deleted with the exit status. One live Task per Container at a time.
 */
@Group(Container.GROUP)
@Version(Container.VERSION)
@ShortNames("tk")
@Categories("stevedore")
@AdditionalPrinterColumn(name = "CONTAINER", jsonPath = ".spec.container", type = AdditionalPrinterColumn.Type.STRING)
@AdditionalPrinterColumn(name = "NODE", jsonPath = ".spec.nodeName", type = AdditionalPrinterColumn.Type.STRING)
@AdditionalPrinterColumn(name = "PHASE", jsonPath = ".status.phase", type = AdditionalPrinterColumn.Type.STRING)
@AdditionalPrinterColumn(name = "EXIT", jsonPath = ".status.exitCode", type = AdditionalPrinterColumn.Type.INTEGER)
@AdditionalPrinterColumn(
        name = "AGE",
        jsonPath = ".metadata.creationTimestamp",
        type = AdditionalPrinterColumn.Type.DATE)
@AdditionalSelectableField(jsonPath = "." + SelectableFields.NODE_NAME)
@AdditionalSelectableField(jsonPath = "." + SelectableFields.CONTAINER)
public class Task extends CustomResource<TaskSpec, TaskStatus> implements Namespaced {
    /** Required: a Task without a spec would have no container, and none of the spec's rules would run. */
    @Override
    @Required
    public TaskSpec getSpec() {
        return super.getSpec();
    }
}
