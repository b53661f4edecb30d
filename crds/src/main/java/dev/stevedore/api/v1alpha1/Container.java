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
 * What a container is, with no runtime state: its image, runtime, process, resources and mounts. The node it is
 * scheduled on turns it into a root filesystem and an OCI runtime spec; a {@link Task} runs it.
 */
@Group(Container.GROUP)
@Version(Container.VERSION)
@ShortNames("ctr")
@Categories("stevedore")
@AdditionalPrinterColumn(name = "NODE", jsonPath = ".spec.nodeName", type = AdditionalPrinterColumn.Type.STRING)
@AdditionalPrinterColumn(name = "IMAGE", jsonPath = ".spec.image", type = AdditionalPrinterColumn.Type.STRING)
@AdditionalPrinterColumn(
        name = "READY",
        jsonPath = ".status.conditions[?(@.type==\"Ready\")].status",
        type = AdditionalPrinterColumn.Type.STRING)
@AdditionalPrinterColumn(
        name = "AGE",
        jsonPath = ".metadata.creationTimestamp",
        type = AdditionalPrinterColumn.Type.DATE)
@AdditionalSelectableField(jsonPath = "." + SelectableFields.NODE_NAME)
public class Container extends CustomResource<ContainerSpec, ContainerStatus> implements Namespaced {
    public static final String GROUP = "stevedore.dev";
    public static final String VERSION = "v1alpha1";

    /** Required: a Container without a spec would have no image, and none of the spec's rules would run. */
    @Override
    @Required
    public ContainerSpec getSpec() {
        return super.getSpec();
    }
}
