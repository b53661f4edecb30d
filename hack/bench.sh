#!/usr/bin/env bash
# The project's benchmarks: Stevedore on a real control plane (etcd, kube-apiserver, kube-controller-manager),
# measured. Prints a table, or with --json one JSON object per line per measurement; logs go to stderr.
#
#   hack/bench.sh                                  every scenario, full size
#   hack/bench.sh scheduling --containers 500      one scenario, smaller
#   hack/bench.sh container_ready --ready-containers 20
#   hack/bench.sh image_pull_cold --pulls 3 --layer-mib 10
#   hack/bench.sh task_start task_exit_to_deleted --tasks 10
#   hack/bench.sh node_memory_tasks --memory-tasks 20
#   hack/bench.sh faults --lifecycles 40 --agent-kills 5 --operator-kills 3 --apiserver-restarts 1 --disk-fills 1
#   hack/bench.sh --list | --help
#
# Scenarios (what each measures exactly is in the comment of its class in bench/src/main/java/dev/stevedore/bench/):
#   scheduling       the operator schedules N Containers onto M RuntimeNodes: time to all Scheduled, per-Container
#                    latency, operator memory, API requests and CPU per process.
#   container_ready  create to Ready=True (seen by a watch) of Containers pinned to a real node agent's node, one at
#                    a time, the image already on the node; split at the agent's finalizer; delete to gone; CPU and
#                    API requests per Container.
#   image_pull_cold  cold pull + unpack of busybox plus a layer of random data from a loopback registry: the node
#                    agent (create to Ready) vs containerd (ctr images pull), alternating in the same run; split
#                    into fetch and unpack on both sides; CPU per pull.
#   task_start       a Container and its Task (sleep 3600) created together, image cached, to phase Running seen by a
#                    watch, --tasks times one at a time; vs containerd's ctr run -d (spawn to exit), alternating.
#   task_exit_to_deleted  the process's exit (conmon's log stamp of the line it writes just before exiting) to phase
#                    Deleted seen by a watch, --tasks times.
#   node_memory_tasks  --memory-tasks sleep Tasks running: RSS of the agent plus its conmons vs containerd plus its
#                    shims (ctr run -d); everything cleaned up and checked after.
#   faults           --lifecycles Container + Task lifecycles (operator-scheduled, 4 in flight) while the agent and the
#                    operator are SIGKILLed and restarted, the API server is down a few seconds and the agent's disk
#                    (a tmpfs of the run's own) is filled, at points drawn from --seed; then counts lost exit codes,
#                    double starts and leaked processes, mounts, cgroups, records and snapshots (docs/faults.md).
#
# Benchmarks assert nothing and mvn verify never runs them. STEVEDORE_SKIP_BUILD=1 uses the build already in
# target/ (bench, operator and runtime-node-agent).
set -euo pipefail
cd "$(dirname "$0")/.."
# containerd (and its ctr) is the peer of image_pull_cold and the task scenarios; the benchmark starts its own daemon, never the host's service.
hack/install-prereqs.sh containerd
tools=$(hack/build-tools.sh)
if [ "${STEVEDORE_SKIP_BUILD:-}" != 1 ]; then
  # The operator and the node agent too: the benchmarks run them as processes of their own, from <module>/target/.
  mvn -B -q -DskipTests install -pl operator,runtime-node-agent,bench -am >&2
fi
# The harness's own JIT compilations would compete for the CPUs with what it measures: C1 only keeps them short.
exec java -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Dstevedore.tools.dir="$tools" -cp "bench/target/classes:bench/target/lib/*" dev.stevedore.bench.Bench "$@"
