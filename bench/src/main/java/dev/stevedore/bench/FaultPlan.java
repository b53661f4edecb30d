package dev.stevedore.bench;

/**
 * What the faults scenario does: how many task lifecycles it runs and how many faults of each kind it injects among
 * them, at points drawn from {@code seed}.
 *
 * @param lifecycles Container + Task lifecycles, each to its Task's phase Deleted and both objects gone
 * @param agentKills SIGKILLs of the node agent (each followed by a restart)
 * @param operatorKills SIGKILLs of the operator (each followed by a restart)
 * @param apiServerRestarts kube-apiserver outages: SIGKILL, a few seconds down, start
 * @param diskFills fillings of the agent's root file system to the last byte, for a few seconds
 * @param seed the seed of every random choice: when, what and for how long; the same seed gives the same plan
 */
public record FaultPlan(
        int lifecycles, int agentKills, int operatorKills, int apiServerRestarts, int diskFills, long seed) {

    public FaultPlan {
        if (lifecycles < 1 || agentKills < 0 || operatorKills < 0 || apiServerRestarts < 0 || diskFills < 0) {
            throw new IllegalArgumentException("--lifecycles must be positive and the fault counts not negative");
        }
    }
}
