package dev.stevedore.bench;

import dev.stevedore.api.Durations;
import dev.stevedore.testing.Tools;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** The entry point of {@code hack/bench.sh}: runs the chosen scenarios and reports what they measured. */
@Command(
        name = "hack/bench.sh",
        mixinStandardHelpOptions = true,
        sortOptions = false,
        description = {
            "Benchmarks Stevedore on a real control plane. Results go to stdout, logs to stderr.",
            "Scenarios: run all when none is named; --list shows them."
        })
public final class Bench implements Callable<Integer> {
    private static final Logger LOG = LoggerFactory.getLogger(Bench.class);
    /** The node agent's JVM options as it ships them, relative to the repository root. */
    static final String AGENT_JVM_OPTIONS = "runtime-node-agent/jvm.options";

    /** Every scenario, in the order they run. Add new ones here. */
    static final List<Scenario> SCENARIOS = List.of(
            new SchedulingScenario(),
            new ContainerReadyScenario(),
            new ImagePullColdScenario(),
            new TaskScenarios.Start(),
            new TaskScenarios.ExitToDeleted(),
            new TaskScenarios.Memory(),
            new FaultScenario());

    @Parameters(paramLabel = "SCENARIO", arity = "0..*", description = "Scenarios to run (default: all).")
    List<String> chosen = new ArrayList<>();

    @Option(names = "--json", description = "One JSON object per line per measurement instead of a table.")
    boolean json;

    @Option(names = "--list", description = "List the scenarios and exit.")
    boolean list;

    @Option(
            names = "--containers",
            defaultValue = "10000",
            paramLabel = "N",
            description = "Containers to create (default: ${DEFAULT-VALUE}).")
    int containers;

    @Option(
            names = "--nodes",
            defaultValue = "10",
            paramLabel = "M",
            description = "RuntimeNodes to register (default: ${DEFAULT-VALUE}).")
    int nodes;

    @Option(
            names = "--create-threads",
            defaultValue = "16",
            paramLabel = "T",
            description = "Create requests in flight at once (default: ${DEFAULT-VALUE}).")
    int createThreads;

    @Option(
            names = "--timeout",
            defaultValue = "30m",
            paramLabel = "DURATION",
            description =
                    "How long a scenario may wait for what it measures before it fails (default: ${DEFAULT-VALUE}).")
    Duration timeout;

    // A fixed maximum heap, so figures compare across machines: left alone, the JVM would size it from this
    // machine's memory and the RSS would follow. Note the Helm chart's 512Mi memory limit gives only a 128 MiB
    // heap (a quarter of the limit); -XX:MaxRAM=512m reproduces that here.
    @Option(
            names = "--operator-jvm-options",
            defaultValue = "-Xmx512m",
            split = " ",
            paramLabel = "OPTS",
            description = "JVM options of the operator process, space-separated (default: ${DEFAULT-VALUE}; "
                    + "-XX:MaxRAM=512m sizes the heap as the chart's 512Mi memory limit does).")
    List<String> operatorJvmOptions;

    @Option(
            names = "--ready-containers",
            defaultValue = "100",
            paramLabel = "N",
            description = "container_ready: Containers to create, one at a time (default: ${DEFAULT-VALUE}).")
    int readyContainers;

    @Option(
            names = "--pulls",
            defaultValue = "10",
            paramLabel = "N",
            description =
                    "image_pull_cold: cold pulls on each side, Stevedore and containerd (default: ${DEFAULT-VALUE}).")
    int pulls;

    @Option(
            names = "--layer-mib",
            defaultValue = "50",
            paramLabel = "MIB",
            description =
                    "image_pull_cold: MiB of random data in the image's second layer (default: ${DEFAULT-VALUE}).")
    int layerMiB;

    // The options the agent ships with; an @file is read here, so the reports name the options themselves.
    @Option(
            names = "--agent-jvm-options",
            defaultValue = "@" + AGENT_JVM_OPTIONS,
            split = " ",
            paramLabel = "OPTS",
            description = "JVM options of the node agent process, space-separated; @FILE reads a java argument file "
                    + "(default: ${DEFAULT-VALUE}, what the agent ships with).")
    List<String> agentJvmOptions;

    @Option(
            names = "--tasks",
            defaultValue = "100",
            paramLabel = "N",
            description =
                    "task_start, task_exit_to_deleted: Tasks to measure, one at a time (default: ${DEFAULT-VALUE}).")
    int tasks;

    @Option(
            names = "--memory-tasks",
            defaultValue = "200",
            paramLabel = "N",
            description = "node_memory_tasks: Tasks running at once on each side (default: ${DEFAULT-VALUE}).")
    int memoryTasks;

    @Option(
            names = "--lifecycles",
            defaultValue = "500",
            paramLabel = "N",
            description = "faults: Container + Task lifecycles to run (default: ${DEFAULT-VALUE}).")
    int lifecycles;

    @Option(
            names = "--agent-kills",
            defaultValue = "50",
            paramLabel = "N",
            description = "faults: SIGKILLs of the node agent, each followed by a restart (default: ${DEFAULT-VALUE}).")
    int agentKills;

    @Option(
            names = "--operator-kills",
            defaultValue = "20",
            paramLabel = "N",
            description = "faults: SIGKILLs of the operator, each followed by a restart (default: ${DEFAULT-VALUE}).")
    int operatorKills;

    @Option(
            names = "--apiserver-restarts",
            defaultValue = "5",
            paramLabel = "N",
            description = "faults: kube-apiserver outages of a few seconds (default: ${DEFAULT-VALUE}).")
    int apiServerRestarts;

    @Option(
            names = "--disk-fills",
            defaultValue = "3",
            paramLabel = "N",
            description =
                    "faults: fillings of the agent's root file system (a tmpfs of the run's own) for a few seconds "
                            + "(default: ${DEFAULT-VALUE}).")
    int diskFills;

    @Option(
            names = "--seed",
            paramLabel = "SEED",
            description = "faults: the seed of when and which faults happen (default: a new one, printed).")
    Long seed;

    @Override
    public Integer call() {
        if (list) {
            SCENARIOS.forEach(s -> System.out.printf("%-16s %s%n", s.name(), s.description()));
            return 0;
        }
        if (containers < 1
                || nodes < 1
                || createThreads < 1
                || readyContainers < 1
                || pulls < 1
                || layerMiB < 1
                || tasks < 1
                || memoryTasks < 1
                || lifecycles < 1) {
            throw new CommandLine.ParameterException(
                    new CommandLine(this),
                    "--containers, --nodes, --create-threads, --ready-containers, --pulls, --layer-mib, --tasks, "
                            + "--memory-tasks and --lifecycles must be positive");
        }
        if (agentKills < 0 || operatorKills < 0 || apiServerRestarts < 0 || diskFills < 0) {
            throw new CommandLine.ParameterException(
                    new CommandLine(this),
                    "--agent-kills, --operator-kills, --apiserver-restarts and --disk-fills must not be negative");
        }
        Map<String, Scenario> byName = new LinkedHashMap<>();
        SCENARIOS.forEach(s -> byName.put(s.name(), s));
        List<Scenario> toRun = new ArrayList<>();
        for (String name : chosen) {
            Scenario scenario = byName.get(name);
            if (scenario == null) {
                throw new CommandLine.ParameterException(
                        new CommandLine(this),
                        "no scenario '" + name + "'; there are: " + String.join(", ", byName.keySet()));
            }
            toRun.add(scenario);
        }
        if (toRun.isEmpty()) {
            toRun.addAll(SCENARIOS);
        }

        Settings settings = new Settings(
                containers,
                nodes,
                createThreads,
                timeout,
                List.copyOf(operatorJvmOptions),
                readyContainers,
                pulls,
                layerMiB,
                expandArgumentFiles(agentJvmOptions),
                tasks,
                memoryTasks,
                new FaultPlan(
                        lifecycles,
                        agentKills,
                        operatorKills,
                        apiServerRestarts,
                        diskFills,
                        seed != null ? seed : new java.security.SecureRandom().nextLong()));
        Report report = new Report(System.out, json);
        List<String> failed = new ArrayList<>();
        for (Scenario scenario : toRun) {
            LOG.info("scenario {}: {}", scenario.name(), scenario.description());
            long started = System.nanoTime();
            try {
                report.add(scenario.run(settings));
                LOG.info("scenario {} done in {} s", scenario.name(), (System.nanoTime() - started) / 1_000_000_000);
            } catch (Exception e) {
                // One scenario failing should not cost the others' results.
                LOG.error("scenario {} failed", scenario.name(), e);
                failed.add(scenario.name());
            }
        }
        report.finish();
        if (!failed.isEmpty()) {
            LOG.error("failed: {}", String.join(", ", failed));
            return 1;
        }
        return 0;
    }

    /**
     * The options with each {@code @file} replaced by the options in it, as java reads an argument file: whitespace
     * separates them, {@code #} starts a comment to the end of the line (no quoting needed for ours).
     */
    static List<String> expandArgumentFiles(List<String> options) {
        List<String> expanded = new ArrayList<>();
        for (String option : options) {
            if (!option.startsWith("@")) {
                expanded.add(option);
                continue;
            }
            try {
                for (String line : Files.readAllLines(Tools.repositoryRoot().resolve(option.substring(1)))) {
                    String code = line.replaceFirst("#.*", "").strip();
                    if (!code.isEmpty()) {
                        expanded.addAll(List.of(code.split("\\s+")));
                    }
                }
            } catch (IOException e) {
                throw new UncheckedIOException("reading the JVM options in " + option.substring(1), e);
            }
        }
        return List.copyOf(expanded);
    }

    public static void main(String[] args) {
        System.exit(new CommandLine(new Bench())
                .registerConverter(Duration.class, Durations::parsePositive)
                .execute(args));
    }
}
