package dev.stevedore.kubectl;

import dev.stevedore.api.AgentApi;
import io.fabric8.kubernetes.client.Config;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientBuilder;
import io.fabric8.kubernetes.client.http.WebSocket;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.time.format.DateTimeParseException;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutionException;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import sun.misc.Signal;

/**
 * {@code kubectl stevedore}: what {@code kubectl logs} and {@code kubectl top} give for a Pod, for a Task — its log,
 * its processes and its usage — through the API server (the {@code subresources.stevedore.dev} aggregated API), with
 * the user's kubeconfig and RBAC. kubectl runs it as a plugin: {@code kubectl-stevedore} on the PATH.
 */
@Command(
        name = "kubectl stevedore",
        mixinStandardHelpOptions = true,
        description = "A Stevedore Task's log, processes and usage, through the API server.",
        subcommands = {
            KubectlStevedore.Logs.class,
            KubectlStevedore.Exec.class,
            KubectlStevedore.Ps.class,
            KubectlStevedore.Top.class,
        })
public final class KubectlStevedore implements Callable<Integer> {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() {
        spec.commandLine().usage(spec.commandLine().getErr());
        return 2;
    }

    /** Where and as whom, as kubectl's own flags say it. */
    static final class Cluster {
        @Option(
                names = "--kubeconfig",
                description = "The kubeconfig to use (default: $KUBECONFIG, else ~/.kube/config).")
        Path kubeconfig;

        @Option(names = "--context", description = "The kubeconfig context to use (default: its current one).")
        String context;

        @Option(
                names = {"-n", "--namespace"},
                description = "The Task's namespace (default: the context's).")
        String namespace;

        KubernetesClient client() throws IOException {
            Config config = kubeconfig == null
                    ? Config.autoConfigure(context)
                    : Config.fromKubeconfig(context, Files.readString(kubeconfig), kubeconfig.toString());
            return new KubernetesClientBuilder().withConfig(config).build();
        }

        String namespace(KubernetesClient client) {
            if (namespace != null) {
                return namespace;
            }
            String configured = client.getConfiguration().getNamespace();
            return configured == null ? "default" : configured;
        }
    }

    /** Runs a subcommand's request, printing a refusal as kubectl does (exit code 1). */
    abstract static class TaskCommand implements Callable<Integer> {
        @Mixin
        Cluster cluster;

        @Parameters(index = "0", paramLabel = "TASK", description = "The Task's name.")
        String task;

        @CommandLine.Spec
        CommandLine.Model.CommandSpec spec;

        @Override
        public Integer call() throws Exception {
            try (KubernetesClient client = cluster.client()) {
                return run(
                        new TaskSubresources(client),
                        cluster.namespace(client),
                        spec.commandLine().getOut());
            } catch (TaskSubresources.ApiError e) {
                spec.commandLine().getErr().println(e.getMessage());
                return 1;
            }
        }

        /** Returns the exit code. */
        abstract int run(TaskSubresources api, String namespace, PrintWriter out) throws Exception;
    }

    @Command(name = "logs", mixinStandardHelpOptions = true, description = "Print a Task's log (stdout and stderr).")
    static final class Logs extends TaskCommand {
        @Option(
                names = {"-f", "--follow"},
                description = "Keep printing what the task logs until it exits.")
        boolean follow;

        @Option(names = "--tail", paramLabel = "LINES", description = "Only the last LINES lines (default: all).")
        Long tail;

        @Option(
                names = "--since",
                paramLabel = "DURATION",
                description = "Only lines newer than this, e.g. 10s, 5m, 2h.")
        String since;

        @Option(
                names = "--since-time",
                paramLabel = "RFC3339",
                description = "Only lines logged at or after this time.")
        String sinceTime;

        @Option(names = "--timestamps", description = "Prefix each line with the time it was logged.")
        boolean timestamps;

        @Option(names = "--stream", paramLabel = "STREAM", description = "Only stdout or stderr (default: both).")
        String stream;

        @Override
        int run(TaskSubresources api, String namespace, PrintWriter out) throws Exception {
            Map<String, String> query = TaskSubresources.query();
            if (follow) {
                query.put("follow", "true");
            }
            if (tail != null) {
                query.put("tailLines", Long.toString(tail));
            }
            if (since != null) {
                query.put("sinceSeconds", Long.toString(seconds(since)));
            }
            if (sinceTime != null) {
                try {
                    query.put("sinceTime", Instant.parse(sinceTime).toString());
                } catch (DateTimeParseException e) {
                    throw new CommandLine.ParameterException(
                            spec.commandLine(), "--since-time: not RFC 3339: " + sinceTime);
                }
            }
            if (timestamps) {
                query.put("timestamps", "true");
            }
            if (stream != null) {
                query.put("stream", stream.toLowerCase(Locale.ROOT));
            }
            out.flush();
            try (InputStream log = api.open(namespace, task, "log", query)) {
                // Copied as it comes: a followed log is printed line by line, not when it ends.
                byte[] buffer = new byte[8192];
                int n;
                while ((n = log.read(buffer)) > 0) {
                    System.out.write(buffer, 0, n);
                    System.out.flush();
                }
            }
            return 0;
        }

        private long seconds(String duration) {
            try {
                return Duration.parse("PT" + duration.toUpperCase(Locale.ROOT)).toSeconds();
            } catch (DateTimeParseException e) {
                throw new CommandLine.ParameterException(
                        spec.commandLine(), "--since: not a duration such as 10s, 5m or 2h: " + duration);
            }
        }
    }

    @Command(name = "ps", mixinStandardHelpOptions = true, description = "List a running Task's processes.")
    static final class Ps extends TaskCommand {
        @Override
        int run(TaskSubresources api, String namespace, PrintWriter out) throws Exception {
            AgentApi.Processes processes = api.read(namespace, task, "processes", AgentApi.Processes.class);
            out.printf("%-8s %-8s %-6s %-8s %s%n", "PID", "PPID", "STATE", "RSS", "COMMAND");
            for (AgentApi.Process p : processes.processes()) {
                out.printf(
                        "%-8d %-8d %-6s %-8s %s%n",
                        p.pid(), p.parentPid(), p.state(), mebibytes(p.rssBytes()), p.command());
            }
            out.flush();
            return 0;
        }
    }

    @Command(
            name = "top",
            mixinStandardHelpOptions = true,
            description = "Show a running Task's CPU (over one second), memory (working set) and process count.")
    static final class Top extends TaskCommand {
        @Override
        int run(TaskSubresources api, String namespace, PrintWriter out) throws Exception {
            AgentApi.Usage usage = api.read(namespace, task, "usage", AgentApi.Usage.class);
            out.printf("%-24s %-12s %-15s %s%n", "NAME", "CPU(cores)", "MEMORY(bytes)", "PIDS");
            out.printf(
                    "%-24s %-12s %-15s %d%n",
                    task,
                    Math.round(usage.cpuCores() * 1000) + "m",
                    mebibytes(usage.memoryWorkingSetBytes()),
                    usage.pids());
            out.flush();
            return 0;
        }
    }

    @Command(
            name = "exec",
            mixinStandardHelpOptions = true,
            description = "Run a command in a running Task: kubectl stevedore exec [-i] [-t] TASK -- COMMAND [ARG...]. "
                    + "Exits with the command's exit code.")
    static final class Exec extends TaskCommand {
        @Option(
                names = {"-i", "--stdin"},
                description = "Pass this process's stdin to the command.")
        boolean stdin;

        @Option(
                names = {"-t", "--tty"},
                description = "Give the command a terminal, sized as this one and resized with it.")
        boolean tty;

        @Parameters(
                index = "1..*",
                arity = "1..*",
                paramLabel = "COMMAND",
                description = "The command and its arguments.")
        List<String> command;

        @Override
        int run(TaskSubresources api, String namespace, PrintWriter out) throws Exception {
            ExecClient client = new ExecClient(System.out, System.err);
            WebSocket socket;
            try {
                socket = api.exec(namespace, task, command, stdin, tty, client).get();
            } catch (ExecutionException e) {
                spec.commandLine().getErr().println(ExecClient.refusal(e));
                return 1;
            }
            Optional<Terminal> raw = tty && stdin ? Terminal.raw() : Optional.empty();
            try {
                if (tty) {
                    Terminal.size().ifPresent(size -> ExecClient.sendSize(socket, size[0], size[1]));
                    Signal.handle(
                            new Signal("WINCH"),
                            signal -> Terminal.size().ifPresent(size -> ExecClient.sendSize(socket, size[0], size[1])));
                }
                if (stdin) {
                    Thread input = new Thread(
                            () -> {
                                try {
                                    ExecClient.sendInput(socket, System.in);
                                } catch (IOException e) {
                                    System.err.println("error: reading stdin: " + e.getMessage());
                                }
                            },
                            "stdin");
                    input.setDaemon(true);
                    input.start();
                }
                return client.awaitExit();
            } finally {
                raw.ifPresent(Terminal::close);
            }
        }
    }

    /** As kubectl top prints memory: whole mebibytes. */
    static String mebibytes(long bytes) {
        return Math.round(bytes / (1024.0 * 1024.0)) + "Mi";
    }

    public static void main(String[] args) {
        System.exit(new CommandLine(new KubectlStevedore()).execute(args));
    }
}
