package dev.stevedore.api.v1alpha1;

import io.fabric8.crd.generator.annotation.AdditionalPrinterColumn;
import io.fabric8.kubernetes.client.CustomResource;
import io.fabric8.kubernetes.model.annotation.Categories;
import io.fabric8.kubernetes.model.annotation.Group;
import io.fabric8.kubernetes.model.annotation.ShortNames;
import io.fabric8.kubernetes.model.annotation.Version;

/** One node agent: created and heartbeated by the agent, named after its node. Cluster-scoped. */
@Group(Container.GROUP)
@Version(Container.VERSION)
@ShortNames("rn")
@Categories("stevedore")
@AdditionalPrinterColumn(
        name = "READY",
        jsonPath = ".status.conditions[?(@.type==\"Ready\")].status",
        type = AdditionalPrinterColumn.Type.STRING)
@AdditionalPrinterColumn(
        name = "RUNTIMES",
        jsonPath = ".status.runtimes[*].name",
        type = AdditionalPrinterColumn.Type.STRING)
@AdditionalPrinterColumn(name = "TASKS", jsonPath = ".status.runningTasks", type = AdditionalPrinterColumn.Type.INTEGER)
@AdditionalPrinterColumn(
        name = "AGE",
        jsonPath = ".metadata.creationTimestamp",
        type = AdditionalPrinterColumn.Type.DATE)
public class RuntimeNode extends CustomResource<RuntimeNodeSpec, RuntimeNodeStatus> {}
