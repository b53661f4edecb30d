#!/usr/bin/env bash
# Stops everything hack/local-up.sh started and unmounts everything under its state directory. Keeps the
# data (etcd, registry, images), so the next local-up starts where this one left off.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

for component in operator agent registry; do
  stop_pidfile "$state/run/$component.pid"
done
for component in kube-controller-manager kube-apiserver etcd; do
  stop_pidfile "$state/control-plane/run/$component.pid"
done
# Deepest first, so nested mounts come off before their parents.
awk -v prefix="$state/" 'index($2, prefix) == 1 { print $2 }' /proc/mounts | sort -r | while read -r mnt; do
  umount "$mnt" 2>/dev/null || umount -l "$mnt"
done
log "stopped; state kept in $state"
