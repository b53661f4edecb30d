package dev.stevedore.bench;

import static org.assertj.core.api.Assertions.assertThat;

import java.security.SecureRandom;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The faults scenario of {@code hack/bench.sh faults}, short: Container + Task lifecycles on a real control plane, a
 * real operator and a real node agent, while the agent and the operator are SIGKILLed, the API server restarted and
 * the agent's disk filled; no exit code may be lost, no task started twice, nothing left behind. A new seed every run
 * (in the log and in a failure's message); {@code -Dstevedore.faults.seed=N} repeats one.
 */
class FaultsIT {
    private static final Logger LOG = LoggerFactory.getLogger(FaultsIT.class);

    @Test
    void noExitCodeIsLostNoTaskStartsTwiceAndNothingLeaksUnderFaults() throws Exception {
        long seed = Long.getLong("stevedore.faults.seed", new SecureRandom().nextLong());
        LOG.info("FaultsIT seed {}", seed);
        FaultPlan plan = new FaultPlan(40, 5, 3, 1, 1, seed);

        FaultScenario.Counts counts = FaultScenario.runCounted(settings(plan));

        String repeat = "seed " + seed + " (-Dstevedore.faults.seed=" + seed + " repeats the plan)";
        assertThat(counts.lifecycles()).as(repeat).isEqualTo(40);
        assertThat(counts.injected())
                .as(repeat)
                .isEqualTo(Map.of(
                        FaultScenario.Fault.AGENT_KILL, 5,
                        FaultScenario.Fault.OPERATOR_KILL, 3,
                        FaultScenario.Fault.API_SERVER_RESTART, 1,
                        FaultScenario.Fault.DISK_FILL, 1));
        assertThat(counts.lostExitCodes()).as("lost exit codes, " + repeat).isZero();
        assertThat(counts.doubleStarts()).as("double starts, " + repeat).isZero();
        assertThat(counts.leaks())
                .as("left on the node, " + repeat)
                .isEqualTo(new NodeLeaks(List.of(), List.of(), List.of(), List.of(), List.of()));
        assertThat(counts.objectsLeft())
                .as("Tasks and Containers that could not be deleted, " + repeat)
                .isZero();
        assertThat(counts.agentCrashes())
                .as("agent exits nobody asked for, " + repeat)
                .isZero();
    }

    private static Settings settings(FaultPlan plan) {
        return new Settings(
                1,
                1,
                1,
                Duration.ofMinutes(10),
                List.of("-Xmx256m"),
                1,
                1,
                1,
                Bench.expandArgumentFiles(List.of("@" + Bench.AGENT_JVM_OPTIONS)),
                1,
                1,
                plan);
    }
}
