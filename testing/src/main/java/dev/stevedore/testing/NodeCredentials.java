package dev.stevedore.testing;

import io.fabric8.kubernetes.api.model.Node;
import io.fabric8.kubernetes.api.model.NodeBuilder;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.PodBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import java.nio.file.Path;

/**
 * The credentials a Pod of a DaemonSet has on one node: a token of its ServiceAccount bound to the Pod, which names
 * the Pod's node ({@code authentication.kubernetes.io/node-name}), as kubelet mounts it.
 *
 * <p>No kubelet runs, so the Pod only stands for one: it tolerates every taint (the node lifecycle controller taints
 * a Node that never reports and would evict it) and goes at once when deleted (grace period 0), with its namespace.
 * Its Node object, which keeps the pod garbage collector from deleting it as an orphan, goes with the test. The
 * token is valid while both exist.
 */
public final class NodeCredentials {
    private final TestNamespace ns;
    private final String serviceAccount;
    private final String node;
    private final Pod pod;

    private NodeCredentials(TestNamespace ns, String serviceAccount, String node, Pod pod) {
        this.ns = ns;
        this.serviceAccount = serviceAccount;
        this.node = node;
        this.pod = pod;
    }

    /** Issues them for the ServiceAccount {@code serviceAccount} of the test's namespace on {@code node}. */
    public static NodeCredentials issue(TestNamespace ns, String serviceAccount, String node) {
        KubernetesClient admin = ns.client();
        if (admin.nodes().withName(node).get() == null) {
            Node created = admin.nodes()
                    .resource(new NodeBuilder()
                            .withNewMetadata()
                            .withName(node)
                            .addToLabels(TestNamespace.TEST_LABEL, ns.name())
                            .endMetadata()
                            .build())
                    .create();
            ns.deleteAfterTest(created);
        }
        Pod pod = admin.pods()
                .resource(new PodBuilder()
                        .withNewMetadata()
                        .withGenerateName(serviceAccount + "-")
                        .endMetadata()
                        .withNewSpec()
                        .withNodeName(node)
                        .withServiceAccountName(serviceAccount)
                        .withAutomountServiceAccountToken(false)
                        .withTerminationGracePeriodSeconds(0L)
                        .addNewToleration()
                        .withOperator("Exists")
                        .endToleration()
                        .addNewContainer()
                        .withName("agent")
                        .withImage("stevedore/runtime-node-agent:never-pulled")
                        .endContainer()
                        .endSpec()
                        .build())
                .create();
        return new NodeCredentials(ns, serviceAccount, node, pod);
    }

    /** A token bound to the Pod for {@code audience}: the API server's, or another as a projected volume has it. */
    public String token(String audience) {
        return ns.controlPlane().token(ns.name(), serviceAccount, pod, audience);
    }

    public String node() {
        return node;
    }

    /** A client that presents them; closed after the test. */
    public KubernetesClient client() {
        return ns.closeAfterTest(ns.controlPlane().clientWithToken(ns.name(), token(ControlPlane.ISSUER)));
    }

    /** A kubeconfig that presents them, for a process of its own. */
    public Path writeKubeconfig(Path file) {
        ns.controlPlane().writeTokenKubeconfig(file, token(ControlPlane.ISSUER));
        return file;
    }
}
