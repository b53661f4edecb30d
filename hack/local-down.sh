#!/usr/bin/env bash
# Stops everything hack/local-up.sh started and unmounts everything under its state directory. Keeps the
# data (etcd, registry, images), so the next local-up starts where this one left off.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

# A node of hack/node-up.sh goes first: its Pods' mounts and the release need the control plane.
[ ! -d "$state/node" ] || "$repo/hack/node-down.sh"

for component in operator agent registry; do
  stop_pidfile "$state/run/$component.pid"
done
for component in kube-controller-manager kube-apiserver etcd; do
  stop_pidfile "$state/control-plane/run/$component.pid"
done
unmount_under "$state"
ip link del "$local_interface" 2>/dev/null || true
# The tasks' bridge; a task's address, veth and port forwards went with its Task (the agent's CNI DEL).
ip link del "$tasks_bridge" 2>/dev/null || true
if [ -e "$state/cni/ip_forward.before" ]; then
  cat "$state/cni/ip_forward.before" > /proc/sys/net/ipv4/ip_forward
  rm "$state/cni/ip_forward.before"
fi
log "stopped; state kept in $state"
