package dev.stevedore.agent;

import static org.assertj.core.api.Assertions.assertThat;

import dev.stevedore.agent.testing.Containers;
import dev.stevedore.agent.testing.LocalRegistry;
import dev.stevedore.agent.testing.SecurityLevelCases;
import dev.stevedore.agent.testing.Tasks;
import dev.stevedore.agent.testing.TestImages;
import dev.stevedore.api.v1alpha1.Conditions;
import dev.stevedore.api.v1alpha1.Container;
import dev.stevedore.api.v1alpha1.RuntimeNode;
import dev.stevedore.api.v1alpha1.Task;
import dev.stevedore.api.v1alpha1.TaskStatus;
import dev.stevedore.testing.Chart;
import dev.stevedore.testing.ControlPlane;
import dev.stevedore.testing.Crds;
import dev.stevedore.testing.Processes;
import dev.stevedore.testing.TestNamespace;
import dev.stevedore.testing.Tools;
import dev.stevedore.testing.WithControlPlane;
import io.fabric8.kubernetes.api.model.Condition;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.fabric8.kubernetes.client.utils.Serialization;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.assertj.core.api.SoftAssertions;
import org.awaitility.Awaitility;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The security levels of docs/security-levels.md, against the real API server and runc, case by case
 * ({@link SecurityLevelCases}, one Container per rule that breaks that rule alone): the chart's admission policy
 * refuses each with its message; with no policy bound, the node agent refuses each with the same message in a
 * Stalled condition, and its Task fails to start; in a privileged namespace each runs to completion.
 */
@WithControlPlane
class SecurityLevelsIT {
    private static final String NODE = "security-levels-it-node";
    private static final Duration POLICY_LOADED = Duration.ofSeconds(60);

    @TempDir
    static Path tmp;

    private static ControlPlane controlPlane;
    private static LocalRegistry registry;
    private static NodeAgent.Running agent;
    private static String image;
    private static Path hostPath;

    @BeforeAll
    static void start(ControlPlane cp) throws Exception {
        controlPlane = cp;
        Crds.installStevedore(cp.adminClient());
        registry = LocalRegistry.start();
        image = registry.host() + "/test/base:1";
        TestImages.build(tmp.resolve("images")).push(TestImages.BASE, image);
        hostPath = Files.createDirectories(tmp.resolve("allowed"));
        agent = NodeAgent.start(
                cp.adminClient(),
                NodeAgent.Settings.of(NODE, tmp.resolve("root"))
                        .withAllowedHostPaths(List.of(hostPath))
                        .withHeartbeatInterval(Duration.ofSeconds(5)));
    }

    @AfterAll
    static void stop() {
        agent.close();
        registry.close();
        controlPlane.adminClient().resources(RuntimeNode.class).withName(NODE).delete();
    }

    @Test
    void theAdmissionPolicyRefusesEachRuleNamingTheFieldAndTheLevel(TestNamespace ns) {
        Chart.installSecurityPolicy(ns);
        SoftAssertions softly = new SoftAssertions();
        // Restricted before baseline, so that the unknown value below has to be seen to count as restricted.
        for (String level : List.of("restricted", "baseline")) {
            ns.label(TestNamespace.ENFORCE_LABEL, level);
            List<SecurityLevelCases.Case> cases = casesOf(level);
            // The API server loads policies and sees labels through informers: wait until the first case is refused
            // at this level.
            SecurityLevelCases.Case first = cases.get(0);
            Awaitility.await("the policy refuses " + first + " at " + level)
                    .atMost(POLICY_LOADED)
                    .untilAsserted(() -> assertThat(refusal(ns, first)).contains(message(ns, first)));
            softly.assertThat(refusal(ns, "most-allowed", SecurityLevelCases.MOST_RESTRICTED_ALLOWS))
                    .as("the most restricted allows, at " + level)
                    .isNull();
            for (SecurityLevelCases.Case rule : cases) {
                String refusal = refusal(ns, rule);
                if (rule.refusedAtAdmission()) {
                    softly.assertThat(refusal).as(rule.name()).contains(message(ns, rule));
                } else {
                    softly.assertThat(refusal)
                            .as(rule.name() + ": only the node knows")
                            .isNull();
                }
            }
        }
        // A value that is no level counts as restricted, as Pod Security Admission has it.
        ns.label(TestNamespace.ENFORCE_LABEL, "Baseline");
        SecurityLevelCases.Case restrictedOnly = casesOf("restricted").get(0);
        Awaitility.await("the policy refuses " + restrictedOnly + " at an unknown level")
                .atMost(POLICY_LOADED)
                .untilAsserted(() -> assertThat(refusal(ns, restrictedOnly)).contains(message(ns, restrictedOnly)));
        softly.assertAll();
    }

    @Test
    void withThePolicyBindingRemovedTheAgentRefusesEachRuleAndItsTaskDoesNotStart(TestNamespace ns) {
        ns.client().resource(Chart.installSecurityPolicy(ns).get("enforce")).delete();
        // The API server sees the binding go through an informer.
        SecurityLevelCases.Case first = SecurityLevelCases.CASES.get(0);
        Awaitility.await("no policy refuses " + first).atMost(POLICY_LOADED).until(() -> refusal(ns, first) == null);
        SoftAssertions softly = new SoftAssertions();
        for (String level : List.of("baseline", "restricted")) {
            ns.label(TestNamespace.ENFORCE_LABEL, level);
            List<SecurityLevelCases.Case> cases = casesOf(level);
            cases.forEach(rule -> ns.client().resource(container(rule)).create());
            // Awaited before the next level's label: the agent reads the label when it prepares a Container.
            for (SecurityLevelCases.Case rule : cases) {
                Container stalled = Containers.awaitCondition(ns, rule.name(), Conditions.STALLED, "True");
                Condition condition = Containers.condition(stalled, Conditions.STALLED);
                softly.assertThat(condition.getReason()).as(rule.name()).isEqualTo("SecurityLevelViolation");
                softly.assertThat(condition.getMessage()).as(rule.name()).contains(message(ns, rule));
            }
        }
        for (SecurityLevelCases.Case rule : SecurityLevelCases.CASES) {
            Tasks.create(ns, rule.name(), rule.name(), NODE, "");
        }
        for (SecurityLevelCases.Case rule : SecurityLevelCases.CASES) {
            Task task = Tasks.awaitPhase(ns, rule.name(), TaskStatus.Phase.Deleted);
            softly.assertThat(task.getStatus().reason()).as(rule.name()).isEqualTo("StartFailed");
            softly.assertThat(task.getStatus().message()).as(rule.name()).contains("SecurityLevelViolation");
        }
        softly.assertAll();
    }

    @Test
    void inAPrivilegedNamespaceEachRuns(TestNamespace ns) throws IOException {
        Chart.installSecurityPolicy(ns);
        ns.privileged();
        SecurityLevelCases.Case first = SecurityLevelCases.CASES.get(0);
        Awaitility.await("the policy admits " + first + " in a privileged namespace")
                .atMost(POLICY_LOADED)
                .until(() -> refusal(ns, first) == null);
        for (SecurityLevelCases.Case rule : SecurityLevelCases.CASES) {
            ns.client().resource(container(rule)).create();
            Tasks.create(ns, rule.name(), rule.name(), NODE, "");
        }
        SoftAssertions softly = new SoftAssertions();
        for (SecurityLevelCases.Case rule : SecurityLevelCases.CASES) {
            Task task = Tasks.awaitPhase(ns, rule.name(), TaskStatus.Phase.Deleted);
            if (rule.securityModule() == null || securityModuleEnabled(rule.securityModule())) {
                softly.assertThat(task.getStatus().reason())
                        .as(rule.name() + ": " + task.getStatus().message())
                        .isEqualTo("Completed");
                softly.assertThat(task.getStatus().exitCode()).as(rule.name()).isEqualTo(0);
            } else {
                // The node passed the profile or label to runc, which cannot apply it without the module.
                softly.assertThat(task.getStatus().message())
                        .as(rule.name())
                        .contains("runc create failed")
                        .contains(rule.securityModule());
            }
        }
        softly.assertAll();
    }

    @Test
    void aRestrictedContainerRunsAsNonRootOnAReadOnlyRoot(TestNamespace ns) {
        Chart.installSecurityPolicy(ns);
        ns.label(TestNamespace.ENFORCE_LABEL, "restricted");
        Awaitility.await("the policy refuses at restricted")
                .atMost(POLICY_LOADED)
                .until(() -> refusal(ns, casesOf("restricted").get(0)) != null);
        // Exits 0 only as uid 1000, with / mounted read-only and a write to it refused.
        Containers.create(ns, "non-root", image, NODE, """
                process:
                  user: {uid: 1000}
                  args: [sh, -c, '[ "$(id -u)" = 1000 ] && awk ''$2 == "/" {print $4}'' /proc/self/mounts | grep -q ^ro, && ! touch /probe']
                ociSpec: {root: {readonly: true}, process: {capabilities: {bounding: [], effective: [], permitted: []}}}
                """);
        Tasks.create(ns, "non-root", "non-root", NODE, "");

        Task task = Tasks.awaitPhase(ns, "non-root", TaskStatus.Phase.Deleted);

        assertThat(task.getStatus().reason()).as(task.getStatus().message()).isEqualTo("Completed");
        assertThat(task.getStatus().exitCode()).isZero();
    }

    @Test
    void theWarnLabelWarnsOnCreateAndAdmits(TestNamespace ns) {
        Chart.installSecurityPolicy(ns);
        ns.label("security.stevedore.dev/warn", "restricted");
        SecurityLevelCases.Case rule = casesOf("restricted").get(0);
        // fabric8 does not hand a response's warnings to the caller: kubectl prints them on stderr.
        Awaitility.await("a warning on create").atMost(POLICY_LOADED).untilAsserted(() -> {
            Processes.Result created = kubectlCreate(ns, rule);
            assertThat(created.exitCode()).as(created.output()).isZero();
            assertThat(created.output()).contains("Warning: ").contains(message(ns, rule));
        });
    }

    private static boolean securityModuleEnabled(String module) throws IOException {
        if (module.equals("selinux")) {
            return Files.exists(Path.of("/sys/fs/selinux/enforce"));
        }
        Path enabled = Path.of("/sys/module/apparmor/parameters/enabled");
        return Files.exists(enabled) && Files.readString(enabled).startsWith("Y");
    }

    private static List<SecurityLevelCases.Case> casesOf(String level) {
        return SecurityLevelCases.CASES.stream()
                .filter(c -> c.level().equals(level))
                .toList();
    }

    private static String message(TestNamespace ns, SecurityLevelCases.Case rule) {
        return rule.message(ns.name()).replace(SecurityLevelCases.HOST_PATH, hostPath.toString());
    }

    /** The API server's refusal of the case's Container, or null when it would create it (a dry run). */
    private static String refusal(TestNamespace ns, SecurityLevelCases.Case rule) {
        return refusal(ns, rule.name(), rule.spec(hostPath.toString()));
    }

    private static String refusal(TestNamespace ns, String name, String spec) {
        try {
            ns.client().resource(container(name, spec)).dryRun().create();
            return null;
        } catch (KubernetesClientException e) {
            return e.getMessage();
        }
    }

    private static Container container(SecurityLevelCases.Case rule) {
        return container(rule.name(), rule.spec(hostPath.toString()));
    }

    private static Container container(String name, String spec) {
        return Serialization.unmarshal(yaml(name, spec), Container.class);
    }

    private static String yaml(String name, String spec) {
        return """
                apiVersion: stevedore.dev/v1alpha1
                kind: Container
                metadata: {name: %s}
                spec:
                  image: %s
                  nodeName: %s
                """.formatted(name, image, NODE) + spec.indent(2);
    }

    private static Processes.Result kubectlCreate(TestNamespace ns, SecurityLevelCases.Case rule) {
        return Processes.run(
                new ProcessBuilder(
                                Tools.binDir().resolve("kubectl").toString(),
                                "--kubeconfig",
                                controlPlane.kubeconfig().toString(),
                                "--namespace",
                                ns.name(),
                                "create",
                                "--dry-run=server",
                                "-f",
                                "-")
                        .redirectErrorStream(true),
                yaml(rule.name(), rule.spec(hostPath.toString())),
                Duration.ofSeconds(60));
    }
}
