package dev.stevedore.testing;

import io.fabric8.kubernetes.api.model.apiextensions.v1.CustomResourceDefinition;
import io.fabric8.kubernetes.client.KubernetesClient;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.awaitility.Awaitility;
import org.awaitility.core.ConditionTimeoutException;

/** Installs CRD manifests the way {@code kubectl apply --server-side} does, and waits until they are served. */
public final class Crds {
    private static final Duration OPENAPI_TIMEOUT = Duration.ofSeconds(60);

    private Crds() {}

    /** The project's own CRDs, from crds/ of this checkout. */
    public static List<CustomResourceDefinition> installStevedore(KubernetesClient client) {
        return install(client, Tools.repositoryRoot().resolve("crds"));
    }

    public static List<CustomResourceDefinition> install(KubernetesClient client, Path dir) {
        try (Stream<Path> files = Files.list(dir)) {
            List<CustomResourceDefinition> applied = files.filter(
                            f -> f.toString().endsWith(".yaml"))
                    .sorted()
                    .map(file -> apply(client, file))
                    .toList();
            applied.forEach(crd -> client.apiextensions()
                    .v1()
                    .customResourceDefinitions()
                    .resource(crd)
                    .waitUntilCondition(Crds::established, 60, TimeUnit.SECONDS));
            applied.forEach(crd -> awaitOpenApi(client, crd));
            return applied;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static CustomResourceDefinition apply(KubernetesClient client, Path file) {
        try (InputStream in = Files.newInputStream(file)) {
            return client.apiextensions()
                    .v1()
                    .customResourceDefinitions()
                    .load(in)
                    .fieldManager("stevedore-tests")
                    .forceConflicts()
                    .serverSideApply();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /**
     * kubectl explain and client-side validation read the OpenAPI document, published a little after Established;
     * the server offers no watch on it.
     */
    private static void awaitOpenApi(KubernetesClient client, CustomResourceDefinition crd) {
        String path = "apis/" + crd.getSpec().getGroup() + "/"
                + crd.getSpec().getVersions().get(0).getName();
        try {
            Awaitility.await("the OpenAPI document listing " + path)
                    .atMost(OPENAPI_TIMEOUT)
                    .pollDelay(Duration.ZERO)
                    .pollInterval(Duration.ofMillis(100))
                    .until(() -> String.valueOf(client.raw("/openapi/v3")).contains("\"" + path + "\""));
        } catch (ConditionTimeoutException e) {
            throw new IllegalStateException(
                    "the OpenAPI document does not list " + path + " after " + OPENAPI_TIMEOUT.toSeconds() + " s", e);
        }
    }

    /** The server writes status.acceptedNames before any condition, so conditions may still be null. */
    static boolean established(CustomResourceDefinition crd) {
        return crd != null
                && crd.getStatus() != null
                && crd.getStatus().getConditions() != null
                && crd.getStatus().getConditions().stream()
                        .anyMatch(c -> "Established".equals(c.getType()) && "True".equals(c.getStatus()));
    }
}
