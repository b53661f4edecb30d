package dev.stevedore.bench;

import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * CPU time of the processes a scenario involves, to tell where a run's time goes: the component under test (the
 * operator, a node agent, containerd...), the benchmark itself, and the control plane (etcd, kube-apiserver,
 * kube-controller-manager, which an ephemeral control plane runs as children of this JVM).
 */
final class CpuUsage {
    private static final String[] CONTROL_PLANE = {"etcd", "kube-apiserver", "kube-controller-manager"};

    private final Map<String, ProcessHandle> processes = new LinkedHashMap<>();

    CpuUsage(ProcessHandle operator) {
        this(Map.of("operator", operator));
    }

    /** {@code own}: the scenario's processes by the name to report them under, in the order to report them. */
    CpuUsage(Map<String, ProcessHandle> own) {
        processes.putAll(own);
        processes.put("bench", ProcessHandle.current());
        for (String component : CONTROL_PLANE) {
            ProcessHandle.current()
                    .children()
                    .filter(p -> p.info()
                            .command()
                            .map(c -> c.endsWith("/" + component))
                            .orElse(false))
                    .findFirst()
                    .ifPresent(p -> processes.put(component, p));
        }
    }

    /** Total CPU time (user + system) of each process so far. */
    Map<String, Duration> snapshot() {
        Map<String, Duration> cpu = new LinkedHashMap<>();
        processes.forEach((name, process) ->
                cpu.put(name, process.info().totalCpuDuration().orElse(Duration.ZERO)));
        return cpu;
    }

    static Map<String, Duration> delta(Map<String, Duration> before, Map<String, Duration> after) {
        Map<String, Duration> delta = new LinkedHashMap<>();
        after.forEach((name, cpu) -> delta.put(name, cpu.minus(before.getOrDefault(name, Duration.ZERO))));
        return delta;
    }

    /** Adds {@code more} into {@code total}, process by process. */
    static void accumulate(Map<String, Duration> total, Map<String, Duration> more) {
        more.forEach((name, cpu) -> total.merge(name, cpu, Duration::plus));
    }
}
