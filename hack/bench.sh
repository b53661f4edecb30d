#!/usr/bin/env bash
# The project's benchmarks: Stevedore on a real control plane (etcd, kube-apiserver, kube-controller-manager),
# measured. Prints a table, or with --json one JSON object per line per measurement; logs go to stderr.
#
#   hack/bench.sh                                  every scenario, full size
#   hack/bench.sh scheduling --containers 500      one scenario, smaller
#   hack/bench.sh --list | --help
#
# Benchmarks assert nothing and mvn verify never runs them. STEVEDORE_SKIP_BUILD=1 uses the build already in
# target/ (bench and operator).
set -euo pipefail
cd "$(dirname "$0")/.."
hack/install-prereqs.sh
tools=$(hack/build-tools.sh)
if [ "${STEVEDORE_SKIP_BUILD:-}" != 1 ]; then
  # The operator too: the benchmarks run it as a process of its own, from operator/target/.
  mvn -B -q -DskipTests install -pl operator,bench -am >&2
fi
exec java -Dstevedore.tools.dir="$tools" -cp "bench/target/classes:bench/target/lib/*" dev.stevedore.bench.Bench "$@"
