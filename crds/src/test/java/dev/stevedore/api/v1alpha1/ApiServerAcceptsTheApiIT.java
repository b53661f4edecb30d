package dev.stevedore.api.v1alpha1;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.stevedore.testing.Crds;
import dev.stevedore.testing.TestNamespace;
import dev.stevedore.testing.WithControlPlane;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

@WithControlPlane
class ApiServerAcceptsTheApiIT {

    @BeforeAll
    static void installCrds(dev.stevedore.testing.ControlPlane controlPlane) {
        Crds.installStevedore(controlPlane.adminClient());
    }

    @Test
    void aMinimalContainerAndTaskApplyWithDefaults(TestNamespace ns) {
        KubernetesClient client = ns.client();
        Container container = client.resource(load("""
                apiVersion: stevedore.dev/v1alpha1
                kind: Container
                metadata: {name: hello}
                spec: {image: "registry.example:5000/busybox:1.35"}
                """, Container.class)).create();
        Task task = client.resource(load("""
                apiVersion: stevedore.dev/v1alpha1
                kind: Task
                metadata: {name: hello-1}
                spec: {container: hello}
                """, Task.class)).create();

        assertThat(container.getSpec().snapshotter()).isEqualTo(ContainerSpec.Snapshotter.overlayfs);
        assertThat(task.getSpec().desiredState()).isEqualTo(TaskSpec.DesiredState.Running);
        assertThat(task.getSpec().stopSignal()).isEqualTo("SIGTERM");
        assertThat(task.getSpec().stopGracePeriodSeconds()).isEqualTo(10L);
    }

    @Test
    void aRuntimeThatIsAPathIsRefused(TestNamespace ns) {
        assertThatThrownBy(() -> ns.client()
                        .resource(load("""
                apiVersion: stevedore.dev/v1alpha1
                kind: Container
                metadata: {name: sneaky}
                spec: {image: busybox, runtime: {name: /bin/sh}}
                """, io.fabric8.kubernetes.api.model.GenericKubernetesResource.class))
                        .create())
                .isInstanceOfSatisfying(KubernetesClientException.class, e -> {
                    assertThat(e.getCode()).isEqualTo(422);
                    assertThat(e.getMessage()).contains("spec.runtime.name: Unsupported value: \"/bin/sh\"");
                });
    }

    private static <T> T load(String yaml, Class<T> type) {
        return io.fabric8.kubernetes.client.utils.Serialization.unmarshal(yaml, type);
    }
}
