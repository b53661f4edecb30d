package dev.stevedore.testing;

import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.NamespacedKubernetesClient;
import java.util.ArrayList;
import java.util.List;

/**
 * The namespace one test runs in, created before it and deleted after it, on the JVM's shared control plane.
 * Resolve it as a test-method parameter under {@link WithControlPlane}.
 */
public final class TestNamespace {
    private final String name;
    private final ControlPlane controlPlane;
    private final List<KubernetesClient> clients = new ArrayList<>();

    TestNamespace(String name, ControlPlane controlPlane) {
        this.name = name;
        this.controlPlane = controlPlane;
    }

    public String name() {
        return name;
    }

    public ControlPlane controlPlane() {
        return controlPlane;
    }

    /** A cluster-admin client whose default namespace is this one. */
    public KubernetesClient client() {
        return controlPlane
                .adminClient()
                .adapt(NamespacedKubernetesClient.class)
                .inNamespace(name);
    }

    /** A client authenticated as the ServiceAccount {@code serviceAccount} of this namespace; closed after the test. */
    public synchronized KubernetesClient clientAs(String serviceAccount) {
        KubernetesClient client = controlPlane.clientAs(name, serviceAccount);
        clients.add(client);
        return client;
    }

    synchronized void close() {
        clients.forEach(KubernetesClient::close);
        clients.clear();
        controlPlane.adminClient().namespaces().withName(name).delete();
    }
}
