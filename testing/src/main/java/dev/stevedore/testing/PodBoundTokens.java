package dev.stevedore.testing;

import io.fabric8.kubernetes.api.model.NodeBuilder;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.PodBuilder;
import io.fabric8.kubernetes.api.model.authentication.TokenRequestBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import java.util.Map;

/**
 * ServiceAccount tokens as the kubelet projects them into a Pod on a node: bound to a Pod object whose
 * {@code spec.nodeName} is that node, so the API server puts the node's name in the token
 * ({@code authentication.kubernetes.io/node-name}). No kubelet runs here: the Pod is only an object, and so is the
 * Node it names (without one the pod garbage collector removes the Pod, and with it the token's validity).
 */
public final class PodBoundTokens {
    private PodBoundTokens() {}

    /**
     * A token of the ServiceAccount {@code serviceAccount} of the test's namespace for {@code audience}, bound to a
     * Pod of that namespace on {@code node}. The Node object is made if missing and goes with the test.
     */
    public static String onNode(TestNamespace ns, String serviceAccount, String node, String audience) {
        KubernetesClient client = ns.client();
        if (client.nodes().withName(node).get() == null) {
            ns.deleteAfterTest(client.nodes()
                    .resource(new NodeBuilder()
                            .withNewMetadata()
                            .withName(node)
                            .withLabels(Map.of(TestNamespace.TEST_LABEL, ns.name()))
                            .endMetadata()
                            .build())
                    .create());
        }
        Pod pod = client.pods()
                .resource(new PodBuilder()
                        .withNewMetadata()
                        .withGenerateName(serviceAccount + "-")
                        .endMetadata()
                        .withNewSpec()
                        .withNodeName(node)
                        .withServiceAccountName(serviceAccount)
                        .withAutomountServiceAccountToken(false)
                        // No kubelet reports on the Node: it turns unreachable, and nothing may evict the Pod.
                        .addNewToleration()
                        .withOperator("Exists")
                        .endToleration()
                        .addNewContainer()
                        .withName("agent")
                        .withImage("stevedore.invalid/not-run")
                        .endContainer()
                        .endSpec()
                        .build())
                .create();
        return client.serviceAccounts()
                .withName(serviceAccount)
                .tokenRequest(new TokenRequestBuilder()
                        .withNewSpec()
                        .withAudiences(audience)
                        .withNewBoundObjectRef()
                        .withApiVersion("v1")
                        .withKind("Pod")
                        .withName(pod.getMetadata().getName())
                        .withUid(pod.getMetadata().getUid())
                        .endBoundObjectRef()
                        .endSpec()
                        .build())
                .getStatus()
                .getToken();
    }
}
