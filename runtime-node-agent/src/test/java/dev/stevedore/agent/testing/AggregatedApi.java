package dev.stevedore.agent.testing;

import io.fabric8.kubernetes.api.model.EndpointsBuilder;
import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.api.model.NamespaceBuilder;
import io.fabric8.kubernetes.api.model.ServiceAccountBuilder;
import io.fabric8.kubernetes.api.model.ServiceBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.utils.Serialization;
import java.net.Inet4Address;
import java.net.InetAddress;
import java.net.NetworkInterface;
import java.net.SocketException;
import java.time.Duration;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import org.awaitility.Awaitility;

/**
 * Registers an operator running in the test's JVM as the aggregated API {@code v1alpha1.subresources.stevedore.dev}:
 * its Service with hand-made Endpoints (no kube-proxy, no Pod here; the API server routes to the endpoint, which
 * may not be a loopback address) and the APIService the chart installs, then waits for the APIService to be
 * Available.
 */
public final class AggregatedApi {
    public static final String NAMESPACE = "stevedore-system";
    public static final String SERVICE = "stevedore-operator";
    public static final String OPERATOR_SERVICE_ACCOUNT = "stevedore-operator";
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
        String address = hostAddress().getHostAddress();
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
    }

    /** This host's first address that is not a loopback one: Endpoints may not point at loopback. */
    public static InetAddress hostAddress() {
        try {
            for (NetworkInterface nic : Collections.list(NetworkInterface.getNetworkInterfaces())) {
                if (nic.isUp() && !nic.isLoopback()) {
                    for (InetAddress address : Collections.list(nic.getInetAddresses())) {
                        if (address instanceof Inet4Address && !address.isLinkLocalAddress()) {
                            return address;
                        }
                    }
                }
            }
        } catch (SocketException e) {
            throw new IllegalStateException(e);
        }
        throw new IllegalStateException("this host has no address but loopback ones");
    }
}
