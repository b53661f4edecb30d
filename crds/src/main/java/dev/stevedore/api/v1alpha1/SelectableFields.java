package dev.stevedore.api.v1alpha1;

/**
 * The fields a field selector may name ({@code withField(NODE_NAME, node)}, {@code kubectl get --field-selector}).
 * The CRDs declare them as selectableFields, so the API server does the filtering: a node agent lists and watches
 * only its own node's objects, as kubelet does with Pods.
 */
public final class SelectableFields {
    /** Of Containers and Tasks: the node they are scheduled or bound to. */
    public static final String NODE_NAME = "spec.nodeName";
    /** Of Tasks: the Container a Task runs. */
    public static final String CONTAINER = "spec.container";

    private SelectableFields() {}
}
