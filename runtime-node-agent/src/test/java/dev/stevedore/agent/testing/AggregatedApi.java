package dev.stevedore.agent.testing;

import dev.stevedore.testing.Processes;
import io.fabric8.kubernetes.api.model.EndpointsBuilder;
import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.api.model.NamespaceBuilder;
import io.fabric8.kubernetes.api.model.ServiceAccountBuilder;
import io.fabric8.kubernetes.api.model.ServiceBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.utils.Serialization;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.awaitility.Awaitility;

/**
 * Registers an operator running in the test's JVM as the aggregated API {@code v1alpha1.subresources.stevedore.dev}:
 * its Service with hand-made Endpoints (no kube-proxy, no Pod here; the API server routes to the endpoint) and the
 * APIService the chart installs, then waits for the APIService to be Available. An endpoint may not be a loopback
 * address, and test traffic stays off the machine's own network: the address is on a dummy interface of the test's
 * own, removed by {@link #unregister}.
 */
public final class AggregatedApi {
    public static final String NAMESPACE = "stevedore-system";
    public static final String SERVICE = "stevedore-operator";
    public static final String OPERATOR_SERVICE_ACCOUNT = "stevedore-operator";
    /** The test's own interface and address, where the API server reaches the operator. */
    private static final String INTERFACE = "stevedore-itapi"; // at most 15 characters, as the kernel takes

    private static final String ADDRESS = "10.213.2.1";

    /** The DNS name the API server checks the operator's serving certificate against. */
    public static final String SERVING_NAME = SERVICE + "." + NAMESPACE + ".svc";

    private AggregatedApi() {}

    /** The namespace and the operator's ServiceAccount, for its tokens. */
    public static void prepare(KubernetesClient admin) {
        admin.resource(new NamespaceBuilder()
                        .withNewMetadata()
                        .withName(NAMESPACE)
                        .endMetadata()
                        .build())
                .serverSideApply();
        admin.resource(new ServiceAccountBuilder()
                        .withNewMetadata()
                        .withName(OPERATOR_SERVICE_ACCOUNT)
                        .withNamespace(NAMESPACE)
                        .endMetadata()
                        .build())
                .serverSideApply();
    }

    /** Points the APIService at {@code port} on this host, and waits until the API server finds it Available. */
    public static void register(KubernetesClient admin, int port) {
        addInterface();
        String address = ADDRESS;
        admin.resource(new ServiceBuilder()
                        .withNewMetadata()
                        .withName(SERVICE)
                        .withNamespace(NAMESPACE)
                        .endMetadata()
                        .withNewSpec()
                        .addNewPort()
                        .withName("subresources")
                        .withPort(8444)
                        .withNewTargetPort(port)
                        .endPort()
                        .endSpec()
                        .build())
                .serverSideApply();
        admin.resource(new EndpointsBuilder()
                        .withNewMetadata()
                        .withName(SERVICE)
                        .withNamespace(NAMESPACE)
                        .endMetadata()
                        .addNewSubset()
                        .addNewAddress()
                        .withIp(address)
                        .endAddress()
                        .addNewPort()
                        .withName("subresources")
                        .withPort(port)
                        .endPort()
                        .endSubset()
                        .build())
                .serverSideApply();
        admin.resource(Serialization.unmarshal("""
                        apiVersion: apiregistration.k8s.io/v1
                        kind: APIService
                        metadata: {name: v1alpha1.subresources.stevedore.dev}
                        spec:
                          group: subresources.stevedore.dev
                          version: v1alpha1
                          groupPriorityMinimum: 1000
                          versionPriority: 15
                          service: {namespace: %s, name: %s, port: 8444}
                        """.formatted(NAMESPACE, SERVICE), GenericKubernetesResource.class))
                .serverSideApply();
    }

    /** Waits for the APIService to be Available: the API server reached the operator through its endpoint. */
    public static void awaitAvailable(KubernetesClient admin) {
        Awaitility.await("the APIService Available")
                .atMost(Duration.ofSeconds(90))
                .until(() -> {
                    GenericKubernetesResource service = admin.genericKubernetesResources(
                                    "apiregistration.k8s.io/v1", "APIService")
                            .withName("v1alpha1.subresources.stevedore.dev")
                            .get();
                    List<Map<String, Object>> conditions =
                            service == null ? List.of() : service.get("status", "conditions");
                    return conditions != null
                            && conditions.stream()
                                    .anyMatch(c -> "Available".equals(c.get("type")) && "True".equals(c.get("status")));
                });
    }

    /**
     * Removes the APIService: while it is registered and its server is gone, the API server's discovery fails for
     * the group, and namespaces cannot be deleted.
     */
    public static void unregister(KubernetesClient admin) {
        admin.genericKubernetesResources("apiregistration.k8s.io/v1", "APIService")
                .withName("v1alpha1.subresources.stevedore.dev")
                .delete();
        ip("link", "del", INTERFACE);
    }

    private static void addInterface() {
        if (ip("link", "show", INTERFACE) != 0 && ip("link", "add", INTERFACE, "type", "dummy") != 0) {
            require(ip("link", "add", INTERFACE, "type", "bridge")); // a kernel without the dummy module
        }
        require(ip("addr", "replace", ADDRESS + "/32", "dev", INTERFACE));
        require(ip("link", "set", INTERFACE, "up"));
    }

    private static int ip(String... args) {
        List<String> command = new java.util.ArrayList<>(List.of("ip"));
        command.addAll(List.of(args));
        return Processes.run(new ProcessBuilder(command), Duration.ofSeconds(30))
                .exitCode();
    }

    private static void require(int exitCode) {
        if (exitCode != 0) {
            throw new IllegalStateException(
                    "could not set up the interface " + INTERFACE + " (ip exited " + exitCode + ")");
        }
    }
}
