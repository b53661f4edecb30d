package dev.stevedore.api.v1alpha1;

import static org.assertj.core.api.Assertions.assertThat;

import io.fabric8.crd.generator.annotation.AdditionalPrinterColumn;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.apiextensions.v1.CustomResourceColumnDefinition;
import io.fabric8.kubernetes.api.model.apiextensions.v1.CustomResourceDefinition;
import io.fabric8.kubernetes.api.model.apiextensions.v1.JSONSchemaProps;
import io.fabric8.kubernetes.client.utils.Serialization;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The CRD YAML checked in under crds/ must be what the build generates from the model classes. Run
 * hack/update-crds.sh after changing the API; it runs this test with -Dstevedore.crds.update=true.
 */
class CrdManifestsTest {
    private static final String HEADER =
            "# Generated from the classes in dev.stevedore.api.v1alpha1 by fabric8's crd-generator;\n"
                    + "# do not edit: change the classes and run hack/update-crds.sh.\n";

    @ParameterizedTest
    @ValueSource(classes = {Container.class, Task.class, RuntimeNode.class})
    void checkedInCrdIsTheGeneratedOne(Class<? extends HasMetadata> type) throws IOException {
        String name = HasMetadata.getPlural(type) + "." + HasMetadata.getGroup(type);
        Path generated = Path.of("target/classes/META-INF/fabric8/" + name + "-v1.yml");
        CustomResourceDefinition crd =
                Serialization.unmarshal(Files.readString(generated), CustomResourceDefinition.class);
        orderPrinterColumnsAsDeclared(crd, type);
        crd.getSpec()
                .getVersions()
                .forEach(v -> markConditionsAsListMaps(v.getSchema().getOpenAPIV3Schema()));
        String expected = HEADER + Serialization.asYaml(crd);

        Path checkedIn = Path.of(name + ".yaml");
        if (Boolean.getBoolean("stevedore.crds.update")) {
            Files.writeString(checkedIn, expected);
        }
        assertThat(checkedIn)
                .as("%s is stale: run hack/update-crds.sh", checkedIn)
                .hasContent(expected);
    }

    /**
     * Conditions are written by the operator and the node agent under different field managers; as a map keyed by
     * type (as metav1.Condition lists are in Kubernetes' own APIs), server-side apply gives each its own entries.
     */
    private static void markConditionsAsListMaps(JSONSchemaProps schema) {
        if (schema.getProperties() == null) {
            return;
        }
        schema.getProperties().forEach((name, property) -> {
            if (name.equals("conditions") && "array".equals(property.getType())) {
                property.setXKubernetesListType("map");
                property.setXKubernetesListMapKeys(List.of("type"));
                property.getItems()
                        .getSchema()
                        .setRequired(List.of("type", "status", "lastTransitionTime", "reason", "message"));
            } else {
                markConditionsAsListMaps(property);
            }
        });
    }

    /** The generator sorts columns by JSON path; kubectl shows them in the order the class declares them. */
    private static void orderPrinterColumnsAsDeclared(CustomResourceDefinition crd, Class<?> type) {
        List<String> declared = Arrays.stream(type.getAnnotationsByType(AdditionalPrinterColumn.class))
                .map(AdditionalPrinterColumn::name)
                .toList();
        crd.getSpec()
                .getVersions()
                .forEach(version -> version.getAdditionalPrinterColumns()
                        .sort(Comparator.comparingInt(
                                (CustomResourceColumnDefinition c) -> declared.indexOf(c.getName()))));
    }
}
