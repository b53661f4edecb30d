package dev.stevedore.testing;

import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.NamespacedKubernetesClient;
import java.util.ArrayList;
import java.util.List;

/**
 * The namespace one test runs in, created before it and deleted after it, on the JVM's shared control plane.
 * Resolve it as a test-method parameter under {@link WithControlPlane}.
 *
 * <p>The test ends when the namespace is gone, so nothing it made (nor what a node agent releases for it) overlaps
 * the next test: see {@link NamespaceTeardown}. RuntimeNodes labelled {@code stevedore.dev/test=<namespace>} and
 * the objects passed to {@link #deleteAfterTest} go with it.
 */
public final class TestNamespace {
    /** The label that ties a cluster-scoped object (say a RuntimeNode) to the test whose namespace it names. */
    public static final String TEST_LABEL = "stevedore.dev/test";

    private final String name;
    private final ControlPlane controlPlane;
    private final List<KubernetesClient> clients = new ArrayList<>();
    private final List<HasMetadata> clusterScoped = new ArrayList<>();

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

    /** The namespace label that sets the security level its Containers are held to (docs/security-levels.md). */
    public static final String ENFORCE_LABEL = "security.stevedore.dev/enforce";

    /**
     * Sets a label of this namespace, e.g. {@link #ENFORCE_LABEL} to {@code privileged} for a test whose Containers
     * bind host paths, add capabilities or devices: without it, the namespace is held to baseline.
     */
    public void label(String key, String value) {
        controlPlane.adminClient().namespaces().withName(name).edit(namespace -> {
            namespace.getMetadata().getLabels().put(key, value);
            return namespace;
        });
    }

    /** Holds this namespace's Containers to the {@code privileged} security level: the node's own limits only. */
    public void privileged() {
        label(ENFORCE_LABEL, "privileged");
    }

    /** A cluster-admin client whose default namespace is this one. */
    public KubernetesClient client() {
        return controlPlane
                .adminClient()
                .adapt(NamespacedKubernetesClient.class)
                .inNamespace(name);
    }

    /** A client authenticated as the ServiceAccount {@code serviceAccount} of this namespace; closed after the test. */
    public KubernetesClient clientAs(String serviceAccount) {
        return closeAfterTest(controlPlane.clientAs(name, serviceAccount));
    }

    /**
     * A client authenticated as the ServiceAccount {@code serviceAccount} of this namespace as its Pod on {@code
     * node} would be: see {@link NodeCredentials}; closed after the test.
     */
    public KubernetesClient clientOnNode(String serviceAccount, String node) {
        return NodeCredentials.issue(this, serviceAccount, node).client();
    }

    synchronized KubernetesClient closeAfterTest(KubernetesClient client) {
        clients.add(client);
        return client;
    }

    /**
     * Deletes the cluster-scoped {@code object} (a ClusterRole, a Namespace other than this one...) when the test
     * ends; the test ends once it is gone.
     */
    public synchronized <T extends HasMetadata> T deleteAfterTest(T object) {
        clusterScoped.add(object);
        return object;
    }

    /** Ends the test (see {@link NamespaceTeardown#run}); the caller awaits the namespace's own end later. */
    synchronized NamespaceTeardown close() {
        clients.forEach(KubernetesClient::close);
        clients.clear();
        NamespaceTeardown teardown = new NamespaceTeardown(
                controlPlane.adminClient(), name, List.copyOf(clusterScoped), NamespaceTeardown.TIMEOUT);
        teardown.run();
        clusterScoped.clear();
        return teardown;
    }
}
