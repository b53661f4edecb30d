#!/usr/bin/env bash
# Removes what hack/node-up.sh added: the Stevedore release, the node's Pods, the kubelet, kube-scheduler and
# containerd, and every process, mount, cgroup, network namespace, bridge and interface of the node; then deletes the
# Node object and its RuntimeNode. Works after a node-up that failed halfway. Keeps the control plane and registry
# (hack/local-down.sh stops them) and the node's files (containerd's images), so the next node-up is faster. Same
# settings as hack/node-up.sh.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$repo/hack/node-lib.sh"
started=$(date +%s)
tools=$("$repo/hack/build-tools.sh")
api_up() { kubectl get --raw /readyz --request-timeout=5s >/dev/null 2>&1; }

if api_up; then
  if "$tools/helm" --kubeconfig "$state/kubeconfig" status stevedore -n stevedore-system >/dev/null 2>&1; then
    # While its agent runs: it stops their tasks, releases their mounts and removes its finalizer. After the
    # uninstall nothing would, and the objects would hang in deletion.
    log "deleting the Tasks and Containers bound to node $node_name"
    kubectl delete tasks,containers -A --field-selector "spec.nodeName=$node_name" --timeout=120s >/dev/null 2>&1 || true
    log "uninstalling the release"
    "$tools/helm" --kubeconfig "$state/kubeconfig" uninstall stevedore -n stevedore-system --wait --timeout 2m \
      >/dev/null || true
    kubectl wait -n stevedore-system --for=delete pod -l app.kubernetes.io/instance=stevedore --timeout=120s \
      >/dev/null 2>&1 || true
  fi
  # With the kubelet running, deleted Pods stop as on any node (their sandboxes' networks torn down by the CNI
  # plugins); without it, nothing would confirm their end.
  if ours "$node_dir/run/kubelet.pid"; then
    log "deleting the Pods on node $node_name"
    kubectl delete pods -A --field-selector "spec.nodeName=$node_name" --timeout=90s >/dev/null 2>&1 || true
  fi
  kubectl delete pods -A --field-selector "spec.nodeName=$node_name" --grace-period=0 --force >/dev/null 2>&1 || true
fi

log "stopping the kubelet, the scheduler and containerd"
stop_pidfile "$node_dir/run/kubelet.pid"
stop_pidfile "$node_dir/run/kube-scheduler.pid"
if ours "$node_dir/run/containerd.pid"; then
  for id in $(ctr -n k8s.io tasks ls -q 2>/dev/null); do
    ctr -n k8s.io tasks kill -a -s SIGKILL "$id" >/dev/null 2>&1 || true
    ctr -n k8s.io tasks delete -f "$id" >/dev/null 2>&1 || true
  done
  for id in $(ctr -n k8s.io containers ls -q 2>/dev/null); do
    ctr -n k8s.io containers delete "$id" >/dev/null 2>&1 || true
  done
fi
stop_pidfile "$node_dir/run/containerd.pid"

# What a crashed containerd, a failed install or the agent left: containers of the runtimes' state directories
# under the node's (containerd's, the agent's runc and crun), then any process that names the node's directory
# (shims, conmon, the agent) or sits in its Pods' cgroups.
for root in "$node_dir"/containerd/runc/* "$node_dir/stevedore-run/runc"; do
  [ -d "$root" ] || continue
  for id in $(runc --root "$root" list -q 2>/dev/null); do
    runc --root "$root" delete --force "$id" 2>/dev/null || true
  done
done
if [ -d "$node_dir/stevedore-run/crun" ]; then
  for id in $(crun --root "$node_dir/stevedore-run/crun" list -q 2>/dev/null); do
    crun --root "$node_dir/stevedore-run/crun" delete --force "$id" 2>/dev/null || true
  done
fi
node_processes() {
  local proc
  for proc in /proc/[0-9]*; do
    [ "${proc#/proc/}" != $$ ] && { tr '\0' ' ' < "$proc/cmdline"; } 2>/dev/null | grep -qF "$node_dir/" \
      && echo "${proc#/proc/}"
  done
  cat "/sys/fs/cgroup/pids$cgroup_root"/**/cgroup.procs 2>/dev/null || true
}
shopt -s globstar nullglob
for _ in $(seq 50); do
  pids=$(node_processes | sort -u)
  [ -z "$pids" ] && break
  kill -KILL $pids 2>/dev/null || true
  sleep 0.1
done

log "removing the node's network namespaces, mounts, cgroups and interfaces"
# A Pod's network namespace is the node's when the host end of its eth0 is on the node's bridge.
for netns in /run/netns/cni-*; do
  peer=$(ip -n "${netns##*/}" -o link show eth0 2>/dev/null | sed -n 's/^[0-9]*: eth0@if\([0-9]*\):.*/\1/p')
  if [ -n "$peer" ] && ip -o link show | grep -q "^$peer: .* master $node_bridge "; then
    ip netns delete "${netns##*/}"
  fi
done
unmount_under "$node_dir"
# Deepest first: a cgroup goes only when it has no children.
for hierarchy in /sys/fs/cgroup/*/; do
  [ -d "$hierarchy${cgroup_root#/}" ] || continue
  find "$hierarchy${cgroup_root#/}" -depth -type d -exec rmdir {} + 2>/dev/null || true
done
ip link del "$node_bridge" 2>/dev/null || true
ip link del "$node_interface" 2>/dev/null || true
rm -f "/var/lib/cni/results/stevedore-$node_name-"*
find /var/log/containers -maxdepth 1 -lname "$node_dir/*" -delete 2>/dev/null || true
restore_kernel_settings

if api_up; then
  kubectl delete node "$node_name" --ignore-not-found >/dev/null
  # No agent reports for it any more (absent when the CRDs are).
  kubectl delete runtimenode "$node_name" --ignore-not-found >/dev/null 2>&1 || true
fi
leftover=(/sys/fs/cgroup/*/"${cgroup_root#/}")
[ ${#leftover[@]} -eq 0 ] || { log "cgroups left behind: ${leftover[*]}"; exit 1; }
log "node $node_name removed in $(( $(date +%s) - started ))s; its files are kept in $node_dir"
