package dev.stevedore.testing;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.fabric8.kubernetes.api.model.ConfigMap;
import io.fabric8.kubernetes.api.model.ConfigMapBuilder;
import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.api.model.GenericKubernetesResourceBuilder;
import io.fabric8.kubernetes.api.model.NodeBuilder;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.PodBuilder;
import io.fabric8.kubernetes.api.model.ServiceAccountBuilder;
import io.fabric8.kubernetes.api.model.apiextensions.v1.CustomResourceDefinition;
import io.fabric8.kubernetes.api.model.authentication.SelfSubjectReview;
import io.fabric8.kubernetes.api.model.authentication.SelfSubjectReviewBuilder;
import io.fabric8.kubernetes.api.model.authentication.TokenRequestBuilder;
import io.fabric8.kubernetes.api.model.rbac.RoleBindingBuilder;
import io.fabric8.kubernetes.api.model.rbac.RoleBuilder;
import io.fabric8.kubernetes.client.Config;
import io.fabric8.kubernetes.client.ConfigBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientBuilder;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.fabric8.kubernetes.client.dsl.base.ResourceDefinitionContext;
import java.time.Duration;
import java.util.Base64;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** Proves the control plane the tests run on is a real one: CEL admission, the garbage collector, RBAC, tokens. */
@WithControlPlane
class ControlPlaneIT {
    private static final Duration TIMEOUT = Duration.ofSeconds(60);

    @Test
    void celRuleOfACrdRejectsABadObjectWithTheServersMessage(TestNamespace ns) {
        KubernetesClient client = ns.client();
        CustomResourceDefinition crd = client.apiextensions()
                .v1()
                .customResourceDefinitions()
                .load(getClass().getResourceAsStream("/widgets-crd.yaml"))
                .serverSideApply();
        client.apiextensions()
                .v1()
                .customResourceDefinitions()
                .resource(crd)
                .waitUntilCondition(Crds::established, 60, java.util.concurrent.TimeUnit.SECONDS);
        ResourceDefinitionContext widgets = new ResourceDefinitionContext.Builder()
                .withGroup("it.stevedore.dev")
                .withVersion("v1")
                .withPlural("widgets")
                .withKind("Widget")
                .withNamespaced(true)
                .build();

        assertThatThrownBy(() -> client.genericKubernetesResources(widgets)
                        .resource(widget("too-many", 5, 3))
                        .create())
                .isInstanceOfSatisfying(KubernetesClientException.class, e -> {
                    assertThat(e.getCode()).isEqualTo(422);
                    assertThat(e.getMessage()).contains("replicas must not exceed maxReplicas");
                });
        assertThat(client.genericKubernetesResources(widgets)
                        .resource(widget("fits", 2, 3))
                        .create()
                        .getMetadata()
                        .getUid())
                .isNotBlank();
    }

    @Test
    void garbageCollectorDeletesAnObjectWhoseOwnerIsDeleted(TestNamespace ns) {
        KubernetesClient client = ns.client();
        ConfigMap owner = client.configMaps()
                .resource(new ConfigMapBuilder()
                        .withNewMetadata()
                        .withName("owner")
                        .endMetadata()
                        .build())
                .create();
        client.configMaps()
                .resource(new ConfigMapBuilder()
                        .withNewMetadata()
                        .withName("dependent")
                        .addNewOwnerReference()
                        .withApiVersion("v1")
                        .withKind("ConfigMap")
                        .withName("owner")
                        .withUid(owner.getMetadata().getUid())
                        .endOwnerReference()
                        .endMetadata()
                        .build())
                .create();

        client.configMaps().withName("owner").delete();

        await().atMost(TIMEOUT)
                .until(() -> client.configMaps().withName("dependent").get() == null);
    }

    @Test
    void apiServerComesBackAfterAnOutageWithItsData(TestNamespace ns, ControlPlane controlPlane) {
        KubernetesClient client = ns.client();
        client.configMaps()
                .resource(new ConfigMapBuilder()
                        .withNewMetadata()
                        .withName("before-the-outage")
                        .endMetadata()
                        .build())
                .create();

        Config noRetries = controlPlane.adminConfig();
        noRetries.setRequestRetryBackoffLimit(0);
        controlPlane.stopApiServer();
        try (KubernetesClient impatient =
                new KubernetesClientBuilder().withConfig(noRetries).build()) {
            assertThatThrownBy(() -> impatient.namespaces().list()).isInstanceOf(KubernetesClientException.class);
        } finally {
            controlPlane.startApiServer();
        }

        assertThat(client.configMaps().withName("before-the-outage").get()).isNotNull();
    }

    @Test
    void serviceAccountIsForbiddenWithoutRbacAndAllowedWithARole(TestNamespace ns) {
        KubernetesClient admin = ns.client();
        admin.serviceAccounts()
                .resource(new ServiceAccountBuilder()
                        .withNewMetadata()
                        .withName("nobody")
                        .endMetadata()
                        .build())
                .create();
        admin.serviceAccounts()
                .resource(new ServiceAccountBuilder()
                        .withNewMetadata()
                        .withName("reader")
                        .endMetadata()
                        .build())
                .create();
        admin.rbac()
                .roles()
                .resource(new RoleBuilder()
                        .withNewMetadata()
                        .withName("configmap-reader")
                        .endMetadata()
                        .addNewRule()
                        .withApiGroups("")
                        .withResources("configmaps")
                        .withVerbs("get", "list")
                        .endRule()
                        .build())
                .create();
        admin.rbac()
                .roleBindings()
                .resource(new RoleBindingBuilder()
                        .withNewMetadata()
                        .withName("reader")
                        .endMetadata()
                        .withNewRoleRef()
                        .withApiGroup("rbac.authorization.k8s.io")
                        .withKind("Role")
                        .withName("configmap-reader")
                        .endRoleRef()
                        .addNewSubject()
                        .withKind("ServiceAccount")
                        .withName("reader")
                        .withNamespace(ns.name())
                        .endSubject()
                        .build())
                .create();

        assertThatThrownBy(() -> ns.clientAs("nobody").configMaps().list())
                .isInstanceOfSatisfying(
                        KubernetesClientException.class,
                        e -> assertThat(e.getCode()).isEqualTo(403));
        assertThat(ns.clientAs("reader").configMaps().list().getItems())
                .extracting(c -> c.getMetadata().getName())
                .contains("kube-root-ca.crt");
    }

    @Test
    void tokenBoundToAPodCarriesThePodsNodeName(TestNamespace ns) throws Exception {
        KubernetesClient admin = ns.client();
        String nodeName = ns.name() + "-node";
        admin.nodes()
                .resource(new NodeBuilder()
                        .withNewMetadata()
                        .withName(nodeName)
                        .endMetadata()
                        .build())
                .create();
        try {
            admin.serviceAccounts()
                    .resource(new ServiceAccountBuilder()
                            .withNewMetadata()
                            .withName("workload")
                            .endMetadata()
                            .build())
                    .create();
            Pod pod = admin.pods()
                    .resource(new PodBuilder()
                            .withNewMetadata()
                            .withName("workload")
                            .endMetadata()
                            .withNewSpec()
                            .withNodeName(nodeName)
                            .withServiceAccountName("workload")
                            .addNewContainer()
                            .withName("main")
                            .withImage("example.invalid/none:1")
                            .endContainer()
                            .endSpec()
                            .build())
                    .create();

            String token = admin.serviceAccounts()
                    .withName("workload")
                    .tokenRequest(new TokenRequestBuilder()
                            .withNewSpec()
                            .withAudiences(ControlPlane.ISSUER)
                            .withNewBoundObjectRef()
                            .withApiVersion("v1")
                            .withKind("Pod")
                            .withName("workload")
                            .withUid(pod.getMetadata().getUid())
                            .endBoundObjectRef()
                            .endSpec()
                            .build())
                    .getStatus()
                    .getToken();

            JsonNode claims = new ObjectMapper().readTree(Base64.getUrlDecoder().decode(token.split("\\.")[1]));
            assertThat(claims.at("/kubernetes.io/pod/name").asText()).isEqualTo("workload");
            assertThat(claims.at("/kubernetes.io/node/name").asText()).isEqualTo(nodeName);

            // The server accepts the token and attributes the request to the node.
            Config asPod = new ConfigBuilder(Config.empty())
                    .withMasterUrl(ns.controlPlane().url())
                    .withCaCertData(ns.controlPlane().adminConfig().getCaCertData())
                    .withOauthToken(token)
                    .build();
            try (KubernetesClient podClient =
                    new KubernetesClientBuilder().withConfig(asPod).build()) {
                SelfSubjectReview review = podClient
                        .resource(new SelfSubjectReviewBuilder().build())
                        .create();
                assertThat(review.getStatus().getUserInfo().getUsername())
                        .isEqualTo("system:serviceaccount:" + ns.name() + ":workload");
                assertThat(review.getStatus().getUserInfo().getExtra())
                        .containsEntry("authentication.kubernetes.io/node-name", java.util.List.of(nodeName));
            }
        } finally {
            admin.nodes().withName(nodeName).delete();
        }
    }

    private static GenericKubernetesResource widget(String name, int replicas, int maxReplicas) {
        return new GenericKubernetesResourceBuilder()
                .withApiVersion("it.stevedore.dev/v1")
                .withKind("Widget")
                .withNewMetadata()
                .withName(name)
                .endMetadata()
                .addToAdditionalProperties("spec", Map.of("replicas", replicas, "maxReplicas", maxReplicas))
                .build();
    }
}
