package dev.stevedore.testing;

import io.fabric8.kubernetes.api.model.NamespaceBuilder;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.ThreadLocalRandom;
import org.junit.jupiter.api.extension.AfterAllCallback;
import org.junit.jupiter.api.extension.AfterEachCallback;
import org.junit.jupiter.api.extension.ExtensionContext;
import org.junit.jupiter.api.extension.ParameterContext;
import org.junit.jupiter.api.extension.ParameterResolver;

/**
 * One control plane per test JVM, started on first use and closed when the JUnit run ends (its processes also
 * stop if the JVM exits another way); one namespace per test method.
 */
public final class ControlPlaneExtension implements ParameterResolver, AfterEachCallback, AfterAllCallback {
    private static final ExtensionContext.Namespace STORE =
            ExtensionContext.Namespace.create(ControlPlaneExtension.class);

    @Override
    public boolean supportsParameter(ParameterContext parameter, ExtensionContext context) {
        Class<?> type = parameter.getParameter().getType();
        return type == TestNamespace.class || type == ControlPlane.class;
    }

    @Override
    public Object resolveParameter(ParameterContext parameter, ExtensionContext context) {
        if (parameter.getParameter().getType() == ControlPlane.class) {
            return controlPlane(context);
        }
        return context.getStore(STORE)
                .getOrComputeIfAbsent(TestNamespace.class, key -> createNamespace(context), TestNamespace.class);
    }

    @Override
    public void afterEach(ExtensionContext context) {
        TestNamespace namespace = context.getStore(STORE).remove(TestNamespace.class, TestNamespace.class);
        if (namespace != null) {
            NamespaceTeardown teardown = namespace.close();
            context.getParent().ifPresent(parent -> namespacesEnding(parent).add(teardown));
        }
    }

    /** The namespaces of the class's tests end together: one wait of the namespace controller's grace, not one per test. */
    @Override
    public void afterAll(ExtensionContext context) {
        for (NamespaceTeardown teardown : namespacesEnding(context)) {
            teardown.awaitNamespaceGone();
        }
    }

    @SuppressWarnings("unchecked")
    private static List<NamespaceTeardown> namespacesEnding(ExtensionContext classContext) {
        return classContext
                .getStore(STORE)
                .getOrComputeIfAbsent("namespaces-ending", key -> new ArrayList<>(), List.class);
    }

    /** The JVM's control plane; the root store closes it (it is AutoCloseable) when the run ends. */
    public static ControlPlane controlPlane(ExtensionContext context) {
        return context.getRoot()
                .getStore(STORE)
                .getOrComputeIfAbsent(
                        ControlPlane.class, key -> ControlPlane.startEphemeral(Tools.binDir()), ControlPlane.class);
    }

    private static TestNamespace createNamespace(ExtensionContext context) {
        String name = namespaceName(context.getRequiredTestMethod().getName());
        ControlPlane controlPlane = controlPlane(context);
        controlPlane
                .adminClient()
                .namespaces()
                .resource(new NamespaceBuilder()
                        .withNewMetadata()
                        .withName(name)
                        .addToLabels("stevedore.dev/test", "true")
                        .endMetadata()
                        .build())
                .create();
        return new TestNamespace(name, controlPlane);
    }

    /** A DNS label: the test's name, shortened, and a random suffix so repeated runs never collide. */
    static String namespaceName(String testName) {
        String base = testName.replaceAll("([a-z0-9])([A-Z])", "$1-$2")
                .toLowerCase(Locale.ROOT)
                .replaceAll("[^a-z0-9-]+", "-")
                .replaceAll("^-+|-+$", "");
        if (base.length() > 50) {
            base = base.substring(0, 50).replaceAll("-+$", "");
        }
        return (base.isEmpty() ? "test" : base) + "-"
                + Integer.toString(ThreadLocalRandom.current().nextInt(36 * 36 * 36 * 36), 36);
    }
}
