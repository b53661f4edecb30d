package dev.stevedore.api.v1alpha1;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.stevedore.testing.ControlPlane;
import dev.stevedore.testing.Crds;
import dev.stevedore.testing.TestNamespace;
import dev.stevedore.testing.WithControlPlane;
import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.api.model.GenericKubernetesResourceBuilder;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.fabric8.kubernetes.client.utils.Serialization;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;
import org.assertj.core.api.ThrowableAssert.ThrowingCallable;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Every validation rule of the CRDs, against the real API server: a bad object is refused with 422 and the server's
 * own message for the field; good objects apply. Bad objects go out as {@link GenericKubernetesResource}, since the
 * typed classes would refuse a bad enum value before the server sees it.
 */
@WithControlPlane
class ValidationRulesIT {
    private static final String API_VERSION = Container.GROUP + "/" + Container.VERSION;

    @BeforeAll
    static void installCrds(ControlPlane controlPlane) {
        Crds.installStevedore(controlPlane.adminClient());
    }

    // --- Container -------------------------------------------------------------------------------------------------

    @Test
    void aContainerWithEveryFieldAppliesAndReadsBack(TestNamespace ns) {
        Container sent = Serialization.unmarshal("""
                apiVersion: stevedore.dev/v1alpha1
                kind: Container
                metadata: {name: full}
                spec:
                  image: registry.example:5000/team/app:1.2@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
                  imagePullSecrets: [{name: registry-credentials}]
                  runtime:
                    name: crun
                  snapshotter: native
                  nodeName: node-a.example
                  nodeSelector: {disk: ssd}
                  process:
                    args: [/bin/app, --port, "8080"]
                    env: [{name: MODE, value: production}, {name: EMPTY}]
                    workingDir: /srv
                    user: {uid: 1000, gid: 100}
                  resources: {memory: 64Mi, cpu: 500m, pids: 100}
                  mounts:
                  - {type: tmpfs, source: tmpfs, destination: /tmp, options: [nosuid, nodev]}
                  - {type: bind, source: /var/lib/data, destination: /data, options: [rbind, ro]}
                  ociSpec:
                    hostname: full
                    mounts: [{destination: /run, type: tmpfs}]
                    linux:
                      sysctl: {net.ipv4.ip_forward: "1"}
                      maskedPaths: [/proc/kcore]
                      resources:
                        devices: [{allow: false, access: rwm}]
                """, Container.class);

        ns.client().resource(sent).fieldManager("validation-rules-it").serverSideApply();

        Container read = ns.client().resources(Container.class).withName("full").get();
        assertThat(read.getSpec()).isEqualTo(sent.getSpec());
        assertThat(read.getSpec().ociSpec())
                .containsEntry("hostname", "full")
                .containsEntry("mounts", List.of(Map.of("destination", "/run", "type", "tmpfs")))
                .containsEntry(
                        "linux",
                        Map.of(
                                "sysctl", Map.of("net.ipv4.ip_forward", "1"),
                                "maskedPaths", List.of("/proc/kcore"),
                                "resources", Map.of("devices", List.of(Map.of("allow", false, "access", "rwm")))));
    }

    @Test
    void containerWithoutImageIsRefused(TestNamespace ns) {
        assertRefused(creating(ns, container("{runtime: {name: runc}}")), "spec.image: Required value");
    }

    @Test
    void containerWithoutSpecIsRefused(TestNamespace ns) {
        assertRefused(creating(ns, withoutSpec("Container")), "spec: Required value");
    }

    @ParameterizedTest
    @ValueSource(strings = {"UPPER/Case", "a b", "busybox:", "-busybox", "busybox@sha256:xyz"})
    void imageThatIsNotAReferenceIsRefused(String image, TestNamespace ns) {
        assertRefused(
                creating(ns, container("{image: '" + image + "'}")),
                "spec.image: Invalid value: \"" + image + "\": spec.image in body should match");
    }

    @Test
    void runtimeNameThatIsAPathIsRefused(TestNamespace ns) {
        assertRefused(
                creating(ns, container("{image: busybox, runtime: {name: /bin/sh}}")),
                "spec.runtime.name: Unsupported value: \"/bin/sh\": supported values: \"crun\", \"runc\"");
    }

    @Test
    void unknownSnapshotterIsRefused(TestNamespace ns) {
        assertRefused(
                creating(ns, container("{image: busybox, snapshotter: btrfs}")),
                "spec.snapshotter: Unsupported value: \"btrfs\": supported values: \"native\", \"overlayfs\"");
    }

    @Test
    void snapshotterCannotChange(TestNamespace ns) {
        create(ns, container("{image: busybox, snapshotter: native}"));
        assertRefused(
                editingSpec(ns, "Container", "web", spec -> spec.put("snapshotter", "overlayfs")),
                "spec.snapshotter: Forbidden: snapshotter is immutable once set");
    }

    @Test
    void containerNodeNameCannotChangeOnceSet(TestNamespace ns) {
        create(ns, container("{image: busybox, nodeName: node-a}"));
        assertRefused(
                editingSpec(ns, "Container", "web", spec -> spec.put("nodeName", "node-b")),
                "spec.nodeName: Forbidden: nodeName is immutable once set");
    }

    @Test
    void containerNodeNameCannotBeRemovedOnceSet(TestNamespace ns) {
        create(ns, container("{image: busybox, nodeName: node-a}"));
        assertRefused(
                editingSpec(ns, "Container", "web", spec -> spec.remove("nodeName")),
                "spec.nodeName: Forbidden: nodeName is immutable once set");
    }

    @Test
    void containerNodeNameCanBeSetWhenUnset(TestNamespace ns) {
        create(ns, container("{image: busybox}"));
        GenericKubernetesResource scheduled = editSpec(ns, "Container", "web", spec -> spec.put("nodeName", "node-a"));
        assertThat(spec(scheduled)).containsEntry("nodeName", "node-a");
    }

    @ParameterizedTest
    @ValueSource(strings = {"Node-A", "node_a", "-node", "node..a"})
    void containerNodeNameThatIsNotADnsSubdomainIsRefused(String nodeName, TestNamespace ns) {
        assertRefused(
                creating(ns, container("{image: busybox, nodeName: '" + nodeName + "'}")),
                "spec.nodeName: Invalid value: \"" + nodeName + "\": spec.nodeName in body should match");
    }

    @Test
    void envEntryWithoutNameIsRefused(TestNamespace ns) {
        assertRefused(
                creating(ns, container("{image: busybox, process: {env: [{value: x}]}}")),
                "spec.process.env[0].name: Required value");
    }

    @Test
    void duplicateEnvNamesAreRefused(TestNamespace ns) {
        assertRefused(
                creating(ns, container("""
                image: busybox
                process:
                  env: [{name: A, value: "1"}, {name: B}, {name: A, value: "2"}]
                """)), "spec.process.env: Invalid value: \"object\": env names must be unique");
    }

    @Test
    void relativeWorkingDirIsRefused(TestNamespace ns) {
        assertRefused(
                creating(ns, container("{image: busybox, process: {workingDir: srv}}")),
                "spec.process.workingDir: Invalid value: \"srv\": "
                        + "spec.process.workingDir in body should match '^/.*'");
    }

    @Test
    void negativeUidIsRefused(TestNamespace ns) {
        assertRefused(
                creating(ns, container("{image: busybox, process: {user: {uid: -1}}}")),
                "spec.process.user.uid: Invalid value: -1: "
                        + "spec.process.user.uid in body should be greater than or equal to 0");
    }

    @ParameterizedTest
    @ValueSource(strings = {"lots", "0", "-64Mi", "0Mi"})
    void memoryThatIsNotAPositiveQuantityIsRefused(String memory, TestNamespace ns) {
        assertRefused(
                creating(ns, container("{image: busybox, resources: {memory: '" + memory + "'}}")),
                "spec.resources.memory: Invalid value: \"object\": memory must be a positive quantity, e.g. 64Mi");
    }

    @Test
    void negativeIntegerMemoryIsRefused(TestNamespace ns) {
        assertRefused(
                creating(ns, container("{image: busybox, resources: {memory: -1}}")),
                "spec.resources.memory: Invalid value: \"object\": memory must be a positive quantity, e.g. 64Mi");
    }

    @ParameterizedTest
    @ValueSource(strings = {"fast", "0", "-500m", "0m"})
    void cpuThatIsNotAPositiveQuantityIsRefused(String cpu, TestNamespace ns) {
        assertRefused(
                creating(ns, container("{image: busybox, resources: {cpu: '" + cpu + "'}}")),
                "spec.resources.cpu: Invalid value: \"object\": cpu must be a positive quantity, e.g. 500m");
    }

    @Test
    void zeroPidsIsRefused(TestNamespace ns) {
        assertRefused(
                creating(ns, container("{image: busybox, resources: {pids: 0}}")),
                "spec.resources.pids: Invalid value: 0: "
                        + "spec.resources.pids in body should be greater than or equal to 1");
    }

    @Test
    void mountWithoutDestinationIsRefused(TestNamespace ns) {
        assertRefused(
                creating(ns, container("{image: busybox, mounts: [{type: tmpfs, source: tmpfs}]}")),
                "spec.mounts[0].destination: Required value");
    }

    @Test
    void relativeMountDestinationIsRefused(TestNamespace ns) {
        assertRefused(
                creating(ns, container("{image: busybox, mounts: [{source: /data, destination: data}]}")),
                "spec.mounts[0].destination: Invalid value: \"data\": "
                        + "spec.mounts[0].destination in body should match '^/.*'");
    }

    // --- Task ------------------------------------------------------------------------------------------------------

    @Test
    void aTaskWithEveryFieldAppliesAndReadsBack(TestNamespace ns) {
        Task sent = Serialization.unmarshal("""
                apiVersion: stevedore.dev/v1alpha1
                kind: Task
                metadata: {name: full-1}
                spec:
                  container: full
                  nodeName: node-a.example
                  desiredState: Paused
                  stopSignal: SIGRTMIN+3
                  stopGracePeriodSeconds: 30
                  ttlSecondsAfterDeleted: 0
                """, Task.class);

        ns.client().resource(sent).fieldManager("validation-rules-it").serverSideApply();

        assertThat(ns.client().resources(Task.class).withName("full-1").get().getSpec())
                .isEqualTo(sent.getSpec());
    }

    @Test
    void taskWithoutContainerIsRefused(TestNamespace ns) {
        assertRefused(creating(ns, task("{desiredState: Running}")), "spec.container: Required value");
    }

    @Test
    void taskWithoutSpecIsRefused(TestNamespace ns) {
        assertRefused(creating(ns, withoutSpec("Task")), "spec: Required value");
    }

    @Test
    void taskContainerCannotChange(TestNamespace ns) {
        create(ns, task("{container: web}"));
        assertRefused(
                editingSpec(ns, "Task", "web-1", spec -> spec.put("container", "other")),
                "spec.container: Forbidden: container is immutable");
    }

    @Test
    void taskNodeNameCannotChangeOnceSet(TestNamespace ns) {
        create(ns, task("{container: web, nodeName: node-a}"));
        assertRefused(
                editingSpec(ns, "Task", "web-1", spec -> spec.put("nodeName", "node-b")),
                "spec.nodeName: Forbidden: nodeName is immutable once set");
    }

    @Test
    void taskNodeNameCanBeSetWhenUnset(TestNamespace ns) {
        create(ns, task("{container: web}"));
        GenericKubernetesResource bound = editSpec(ns, "Task", "web-1", spec -> spec.put("nodeName", "node-a"));
        assertThat(spec(bound)).containsEntry("nodeName", "node-a");
    }

    @Test
    void unknownDesiredStateIsRefused(TestNamespace ns) {
        assertRefused(
                creating(ns, task("{container: web, desiredState: Sleeping}")),
                "spec.desiredState: Unsupported value: \"Sleeping\": "
                        + "supported values: \"Paused\", \"Running\", \"Stopped\"");
    }

    @ParameterizedTest
    @ValueSource(strings = {"SIGFOO", "9", "TERM", "sigterm"})
    void unknownStopSignalIsRefused(String signal, TestNamespace ns) {
        assertRefused(
                creating(ns, task("{container: web, stopSignal: '" + signal + "'}")),
                "spec.stopSignal: Invalid value: \"" + signal + "\": spec.stopSignal in body should match");
    }

    @Test
    void negativeStopGracePeriodIsRefused(TestNamespace ns) {
        assertRefused(
                creating(ns, task("{container: web, stopGracePeriodSeconds: -1}")),
                "spec.stopGracePeriodSeconds: Invalid value: -1: "
                        + "spec.stopGracePeriodSeconds in body should be greater than or equal to 0");
    }

    @Test
    void negativeTtlSecondsAfterDeletedIsRefused(TestNamespace ns) {
        assertRefused(
                creating(ns, task("{container: web, ttlSecondsAfterDeleted: -1}")),
                "spec.ttlSecondsAfterDeleted: Invalid value: -1: "
                        + "spec.ttlSecondsAfterDeleted in body should be greater than or equal to 0");
    }

    // --- helpers ---------------------------------------------------------------------------------------------------

    /** A Container named web with the given spec, written as YAML (block or flow style). */
    private static GenericKubernetesResource container(String specYaml) {
        return withSpec(withoutSpec("Container"), specYaml);
    }

    /** A Task named web-1 with the given spec, written as YAML (block or flow style). */
    private static GenericKubernetesResource task(String specYaml) {
        return withSpec(withoutSpec("Task"), specYaml);
    }

    private static GenericKubernetesResource withoutSpec(String kind) {
        return new GenericKubernetesResourceBuilder()
                .withApiVersion(API_VERSION)
                .withKind(kind)
                .withNewMetadata()
                .withName(kind.equals("Task") ? "web-1" : "web")
                .endMetadata()
                .build();
    }

    private static GenericKubernetesResource withSpec(GenericKubernetesResource resource, String specYaml) {
        Map<?, ?> document = Serialization.unmarshal("spec:\n" + specYaml.indent(2), Map.class);
        resource.setAdditionalProperty("spec", document.get("spec"));
        return resource;
    }

    @SuppressWarnings("unchecked")
    private static Map<String, Object> spec(GenericKubernetesResource resource) {
        return (Map<String, Object>) resource.getAdditionalProperties().get("spec");
    }

    private static GenericKubernetesResource create(TestNamespace ns, GenericKubernetesResource resource) {
        return ns.client().resource(resource).create();
    }

    private static ThrowingCallable creating(TestNamespace ns, GenericKubernetesResource resource) {
        return () -> create(ns, resource);
    }

    private static GenericKubernetesResource editSpec(
            TestNamespace ns, String kind, String name, Consumer<Map<String, Object>> change) {
        return ns.client()
                .genericKubernetesResources(API_VERSION, kind)
                .withName(name)
                .edit(resource -> {
                    change.accept(spec(resource));
                    return resource;
                });
    }

    private static ThrowingCallable editingSpec(
            TestNamespace ns, String kind, String name, Consumer<Map<String, Object>> change) {
        return () -> editSpec(ns, kind, name, change);
    }

    /** The call fails with 422 Unprocessable Entity, and the API server's message names the field and the rule. */
    private static void assertRefused(ThrowingCallable call, String serverMessage) {
        assertThatThrownBy(call).isInstanceOfSatisfying(KubernetesClientException.class, e -> {
            assertThat(e.getCode()).as("HTTP status").isEqualTo(422);
            assertThat(e.getMessage()).contains(serverMessage);
        });
    }
}
