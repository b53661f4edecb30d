package dev.stevedore.testing;

import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.admissionregistration.v1.MatchResourcesBuilder;
import io.fabric8.kubernetes.api.model.admissionregistration.v1.ValidatingAdmissionPolicy;
import io.fabric8.kubernetes.api.model.admissionregistration.v1.ValidatingAdmissionPolicyBinding;
import io.fabric8.kubernetes.client.KubernetesClient;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/** The Helm chart charts/stevedore, rendered by the pinned helm binary, and its RBAC installed for one test. */
public final class Chart {
    private static final Duration RENDER_TIMEOUT = Duration.ofSeconds(120);
    private static final Set<String> RBAC_KINDS =
            Set.of("ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding");
    private static final Set<String> CLUSTER_SCOPED = Set.of("ClusterRole", "ClusterRoleBinding");

    private Chart() {}

    /** A release name of the test's own: the chart's cluster-scoped names carry it (Helm allows 53 characters). */
    public static String release(TestNamespace ns) {
        return "st-" + ns.name().substring(ns.name().lastIndexOf('-') + 1);
    }

    /** {@code helm template release charts/stevedore --namespace namespace} for {@code client}'s server, parsed. */
    public static List<HasMetadata> render(KubernetesClient client, String release, String namespace) {
        Path errors = null;
        try {
            errors = Files.createTempFile("stevedore-helm-", ".err"); // its warnings are no YAML
            Processes.Result helm = Processes.run(
                    new ProcessBuilder(
                                    Tools.binDir().resolve("helm").toString(),
                                    "template",
                                    release,
                                    Tools.repositoryRoot()
                                            .resolve("charts/stevedore")
                                            .toString(),
                                    "--namespace",
                                    namespace,
                                    // The chart's kubeVersion is checked against this server, as helm install does.
                                    "--kube-version",
                                    client.getKubernetesVersion().getGitVersion())
                            .redirectError(errors.toFile()),
                    RENDER_TIMEOUT);
            if (helm.exitCode() != 0) {
                throw new IllegalStateException("helm template failed: " + Files.readString(errors));
            }
            return client.load(new ByteArrayInputStream(helm.output().getBytes(StandardCharsets.UTF_8)))
                    .items();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } finally {
            if (errors != null) {
                errors.toFile().delete();
            }
        }
    }

    /**
     * Creates the chart's ServiceAccounts, Roles and ClusterRoles, and their bindings, rendered into the test's
     * namespace under {@link #release}; the cluster-scoped ones are deleted with the namespace.
     */
    public static void installRbac(TestNamespace ns) {
        KubernetesClient client = ns.client();
        for (HasMetadata object : render(client, release(ns), ns.name())) {
            if (RBAC_KINDS.contains(object.getKind())) {
                HasMetadata created = client.resource(object).create();
                if (CLUSTER_SCOPED.contains(object.getKind())) {
                    ns.deleteAfterTest(created);
                }
            }
        }
    }

    /**
     * Creates the chart's ValidatingAdmissionPolicies and their bindings for Containers' security levels, under
     * {@link #release}; they are cluster-scoped and deleted with the namespace.
     *
     * @return the bindings, by mode (enforce, warn, audit)
     */
    public static Map<String, HasMetadata> installSecurityPolicy(TestNamespace ns) {
        KubernetesClient client = ns.client();
        Map<String, HasMetadata> bindings = new TreeMap<>();
        for (HasMetadata object : render(client, release(ns), ns.name())) {
            if (object.getMetadata().getName().startsWith(release(ns) + "-container-security-")) {
                HasMetadata created = ns.deleteAfterTest(client.resource(object).create());
                if (object.getKind().equals("ValidatingAdmissionPolicyBinding")) {
                    String name = created.getMetadata().getName();
                    bindings.put(name.substring(name.lastIndexOf('-') + 1), created);
                }
            }
        }
        return bindings;
    }

    /**
     * Creates the chart's ValidatingAdmissionPolicy {@code <release>-<policy>} and its binding, rendered under
     * {@link #release}; they are deleted with the namespace. The binding is narrowed to the test's namespace
     * (cluster-scoped objects stay covered), so the policy reaches no other test's objects, not even in the moments
     * it takes to go. A policy is in force a moment after it is created: await its first refusal.
     *
     * @param policy {@code agent-node-restriction} or {@code task-binding}
     */
    public static void installAdmissionPolicy(TestNamespace ns, String policy) {
        KubernetesClient client = ns.client();
        String name = release(ns) + "-" + policy;
        for (HasMetadata object : render(client, release(ns), ns.name())) {
            if (!name.equals(object.getMetadata().getName())) {
                continue;
            }
            if (object instanceof ValidatingAdmissionPolicyBinding binding) {
                binding.getSpec()
                        .setMatchResources(new MatchResourcesBuilder()
                                .withNewNamespaceSelector()
                                .addToMatchLabels("kubernetes.io/metadata.name", ns.name())
                                .endNamespaceSelector()
                                .build());
            }
            if (object instanceof ValidatingAdmissionPolicy || object instanceof ValidatingAdmissionPolicyBinding) {
                ns.deleteAfterTest(client.resource(object).create());
            }
        }
    }

    /** The chart's operator ServiceAccount of the test's release. */
    public static String operatorServiceAccount(TestNamespace ns) {
        return release(ns) + "-operator";
    }

    /** The chart's node-agent ServiceAccount of the test's release. */
    public static String agentServiceAccount(TestNamespace ns) {
        return release(ns) + "-agent";
    }
}
