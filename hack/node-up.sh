#!/usr/bin/env bash
# Adds a real kubelet node to the local control plane and installs Stevedore into it with Helm, from the images
# built here: the control plane and registry as hack/local-up.sh runs them, Debian's containerd as the node's CRI
# runtime (a sandbox image built here from busybox-static), Debian's CNI plugins on a bridge of its own, and the
# kubelet built with the other tools. The node's address is on a dummy interface of its own; no traffic leaves this
# host. Everything keeps running in the background; state, logs and PID files live in $STEVEDORE_LOCAL_DIR/node.
# Safe to run again while up. Remove with hack/node-down.sh.
#
# Settings (environment), besides hack/local-up.sh's STEVEDORE_LOCAL_DIR, STEVEDORE_APISERVER_PORT,
# STEVEDORE_ETCD_PORT, STEVEDORE_ETCD_PEER_PORT, STEVEDORE_REGISTRY_PORT and STEVEDORE_SKIP_BUILD:
#   STEVEDORE_NODE_NAME (stevedore-node)          the Node's name
#   STEVEDORE_NODE_INTERFACE (stevedore-node)     the dummy interface that holds the node's address
#   STEVEDORE_NODE_IP (10.213.0.1)                the node's address (kubelet's --node-ip)
#   STEVEDORE_NODE_BRIDGE (stevedore-cni0)        the Pods' bridge
#   STEVEDORE_POD_CIDR (10.213.1.0/24)            the Pods' addresses; the bridge takes the first
#   STEVEDORE_KUBELET_PORT (10250)                kubelet's port on the node address (healthz: 10248 there)
#   STEVEDORE_OPERATOR_HEALTH_PORT (8081), STEVEDORE_PULL_CREDENTIALS_PORT (8443), STEVEDORE_AGENT_HEALTH_PORT (9440)
#                                                 the host ports of the Stevedore Pods (both run on the host network)
#   STEVEDORE_NODE_ONLY=1                         only the node: no images, no chart, no example
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$repo/hack/node-lib.sh"
cd "$repo"
started=$(date +%s)

ensure_prerequisites containerd containernetworking-plugins
if [ "${STEVEDORE_SKIP_BUILD:-}" != 1 ]; then
  log "building Stevedore"
  mvn -B -q -DskipTests install
fi
ensure_control_plane
ensure_registry

# local-up's operator and agent run as host processes: they would compete with the chart's for the same objects.
# Its agent identity (ServiceAccount, Pod, Node objects with no kubelet) would clash with the chart's and hold
# the agent DaemonSet (which tolerates every taint) on a node that never runs it.
stop_pidfile "$state/run/operator.pid"
stop_pidfile "$state/run/agent.pid"
# No kubelet confirms the placeholder Pod's end: it goes at once.
kubectl delete pods -n stevedore-system -l app.kubernetes.io/managed-by=stevedore-local-up --force --grace-period=0 \
  >/dev/null 2>&1
kubectl delete serviceaccounts -n stevedore-system -l app.kubernetes.io/managed-by=stevedore-local-up >/dev/null
# Its RuntimeNode would stay Ready for a grace period, long enough to be given the example.
for stale in $(kubectl get nodes -l app.kubernetes.io/managed-by=stevedore-local-up -o name); do
  kubectl delete runtimenode "${stale#node/}" --ignore-not-found --wait=false >/dev/null
  kubectl delete "$stale" >/dev/null
done

log "adding node $node_name ($node_ip on $node_interface; Pods on $node_bridge, $pod_cidr)"
mkdir -p "$node_dir"/{run,logs,pki,cni,ipam,kubelet,pod-logs,volume-plugins}
# A kernel without the dummy module gets a bridge with no ports: it holds a local address just the same.
if ! ip link show "$node_interface" >/dev/null 2>&1; then
  ip link add "$node_interface" type dummy 2>/dev/null || ip link add "$node_interface" type bridge
fi
ip addr replace "$node_ip/32" dev "$node_interface"
ip link set "$node_interface" up
# The bridge's address is set here, not by the bridge plugin (isGateway), which would turn on the host's IP
# forwarding. The Pods get no default route: they reach each other and this host only.
ip link show "$node_bridge" >/dev/null 2>&1 || ip link add "$node_bridge" type bridge
ip addr replace "$bridge_ip/$pod_prefix" dev "$node_bridge"
ip link set "$node_bridge" up
cat > "$node_dir/cni/10-stevedore.conflist" <<JSON
{
  "cniVersion": "0.4.0",
  "name": "stevedore-$node_name",
  "plugins": [
    {"type": "bridge", "bridge": "$node_bridge", "isGateway": false, "ipMasq": false, "hairpinMode": true,
     "ipam": {"type": "host-local", "dataDir": "$node_dir/ipam",
              "ranges": [[{"subnet": "$pod_cidr", "gateway": "$bridge_ip"}]]}},
    {"type": "loopback"}
  ]
}
JSON

if ! ours "$node_dir/run/containerd.pid"; then
  log "starting containerd"
  write_containerd_config
  setsid /usr/bin/containerd --config "$node_dir/containerd/config.toml" \
    </dev/null >>"$node_dir/logs/containerd.log" 2>&1 &
  echo $! > "$node_dir/run/containerd.pid"
  for _ in $(seq 100); do ctr version >/dev/null 2>&1 && break; sleep 0.1; done
  ctr version >/dev/null || { log "containerd did not start; see $node_dir/logs/containerd.log"; exit 1; }
fi
if [ -z "$(ctr -n k8s.io images ls -q "name==$sandbox_image")" ]; then
  log "building the sandbox image $sandbox_image from busybox-static"
  rm -rf "$node_dir/sandbox-image"
  # Tagged apart from the image's name: ctr would give the layout's tag and the name given to the import to two
  # images, and a later import fails on the clash.
  hack/build-busybox-image.sh "$node_dir/sandbox-image" layout >/dev/null
  # A Pod's sandbox only holds its namespaces: PID 1 sleeps until containerd kills it.
  umoci config --image "$node_dir/sandbox-image:layout" --config.entrypoint /bin/sleep --config.cmd 2147483647
  tar -C "$node_dir/sandbox-image" -cf "$node_dir/sandbox-image.tar" .
  import_image "$node_dir/sandbox-image.tar" "$sandbox_image"
fi

# The local control plane has no scheduler: nothing needed one before there was a node. Deployments and DaemonSets
# need it to place their Pods.
if ! ours "$node_dir/run/kube-scheduler.pid"; then
  log "starting kube-scheduler"
  write_client_kubeconfig kube-scheduler system:kube-scheduler ""
  setsid "$tools/kube-scheduler" --kubeconfig "$node_dir/kube-scheduler.kubeconfig" --leader-elect=false \
    --secure-port=0 </dev/null >>"$node_dir/logs/kube-scheduler.log" 2>&1 &
  echo $! > "$node_dir/run/kube-scheduler.pid"
fi

if ! ours "$node_dir/run/kubelet.pid"; then
  log "starting the kubelet"
  write_client_kubeconfig kubelet "system:node:$node_name" system:nodes
  write_kubelet_config
  save_kernel_settings
  # The kubelet's pod cgroups go under a root of this node's own, in every hierarchy; kubelet wants it to exist.
  for hierarchy in /sys/fs/cgroup/*/; do
    mkdir -p "$hierarchy${cgroup_root#/}"
  done
  for file in cpuset.cpus cpuset.mems; do
    cat "/sys/fs/cgroup/cpuset/$file" > "/sys/fs/cgroup/cpuset$cgroup_root/$file"
  done
  setsid "$tools/kubelet" --config "$node_dir/kubelet-config.yaml" --kubeconfig "$node_dir/kubelet.kubeconfig" \
    --root-dir "$node_dir/kubelet" --cert-dir "$node_dir/pki" --hostname-override "$node_name" \
    --node-ip "$node_ip" </dev/null >>"$node_dir/logs/kubelet.log" 2>&1 &
  echo $! > "$node_dir/run/kubelet.pid"
fi
if ! kubectl wait --for=create --timeout=60s "node/$node_name" >/dev/null \
  || ! kubectl wait --for=condition=Ready --timeout=120s "node/$node_name" >/dev/null; then
  log "node $node_name did not turn Ready; the last kubelet lines ($node_dir/logs/kubelet.log):"
  tail -20 "$node_dir/logs/kubelet.log" >&2
  exit 1
fi
log "node $node_name is Ready ($(( $(date +%s) - started ))s)"

if [ "${STEVEDORE_NODE_ONLY:-}" = 1 ]; then
  cat <<USAGE

Node $node_name is Ready (kubelet, containerd and kube-scheduler logs in $node_dir/logs). Use it with:
  export KUBECONFIG=$state/kubeconfig
  export PATH=$state/bin:\$PATH
Remove it with hack/node-down.sh.
USAGE
  exit 0
fi

version=$(sed -n 's:^  <version>\(.*\)</version>$:\1:p' pom.xml | head -1)
# It prints the operator's archive, then the agent's; with STEVEDORE_SKIP_BUILD=1 it reuses those in target/.
mapfile -t archives < <(hack/build-images.sh)
[ ${#archives[@]} -eq 2 ] || { log "hack/build-images.sh did not name both image archives"; exit 1; }
log "importing the images into the node's containerd"
import_image "${archives[0]}" "docker.io/stevedore/operator:$version"
import_image "${archives[1]}" "docker.io/stevedore/runtime-node-agent:$version"

# The agent mounts its Containers' root file systems with Bidirectional propagation, which needs its directories on a
# shared mount (as kubelet makes its root directory one); this host's / is not shared.
for dir in "$node_dir/stevedore" "$node_dir/stevedore-run"; do
  mkdir -p "$dir"
  mountpoint -q "$dir" || mount --bind "$dir" "$dir"
  mount --make-rshared "$dir"
done

log "installing the chart (release stevedore in stevedore-system)"
# The agent is privileged (overlay mounts, cgroups, runc in the host's PID namespace).
kubectl apply --server-side --field-manager=stevedore-node-up -f - >/dev/null <<YAML
apiVersion: v1
kind: Namespace
metadata: {name: stevedore-system, labels: {pod-security.kubernetes.io/enforce: privileged}}
YAML
# No kube-proxy and no cluster DNS on this node: both components reach the API server on loopback, and the operator
# serves on the host network. The agent's state is under the node's directory, its conmons' cgroup under the node's
# cgroup root (apart from another node's on this machine); its tasks are on the Pods' CNI network, as containerd's.
helm_values=(
  --set "operator.image.tag=$version"
  --set "agent.image.tag=$version"
  --set "kubernetesServiceHost=127.0.0.1"
  --set "kubernetesServicePort=$apiserver_port"
  --set "operator.hostNetwork=true"
  --set "operator.replicas=1"
  --set "operator.healthPort=${STEVEDORE_OPERATOR_HEALTH_PORT:-8081}"
  --set "operator.pullCredentialsPort=${STEVEDORE_PULL_CREDENTIALS_PORT:-8443}"
  --set "agent.healthPort=${STEVEDORE_AGENT_HEALTH_PORT:-9440}"
  --set "agent.root=$node_dir/stevedore"
  --set "agent.stateDir=$node_dir/stevedore-run"
  --set "agent.conmonCgroup=$cgroup_root/conmon"
  --set "agent.cni.confDir=$node_dir/cni"
  --set "agent.cni.binDirs={/usr/lib/cni}"
  --set "agent.cni.stateDir=$node_dir/ipam"
)
"$tools/helm" --kubeconfig "$state/kubeconfig" upgrade --install stevedore charts/stevedore \
  --namespace stevedore-system --wait --timeout 5m "${helm_values[@]}" >/dev/null
kubectl wait -n stevedore-system --for=condition=Ready --timeout=120s pod \
  -l app.kubernetes.io/instance=stevedore >/dev/null
kubectl get pods -n stevedore-system -o wide

run_hello_world "$node_dir/stevedore"
log "node-up took $(( $(date +%s) - started ))s"

write_env
cat <<USAGE

Stevedore runs on node $node_name: API server https://127.0.0.1:$apiserver_port, registry $registry (image $image).
Use it with:
  export KUBECONFIG=$state/kubeconfig
  export PATH=$state/bin:\$PATH        # or: . $state/env
  kubectl get nodes,pods -A; kubectl get ctr,tk,rn
The node's logs (kubelet, containerd, kube-scheduler) are in $node_dir/logs. Remove the release and the node with
hack/node-down.sh (hack/local-down.sh also stops the control plane).
USAGE
