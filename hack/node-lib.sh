# Shared by hack/node-up.sh and hack/node-down.sh: the node's settings, where its state lives, and its parts.
# shellcheck shell=bash
node_name=${STEVEDORE_NODE_NAME:-stevedore-node}
node_interface=${STEVEDORE_NODE_INTERFACE:-stevedore-node}
node_ip=${STEVEDORE_NODE_IP:-10.213.0.1}
node_bridge=${STEVEDORE_NODE_BRIDGE:-stevedore-cni0}
pod_cidr=${STEVEDORE_POD_CIDR:-10.213.1.0/24}
pod_prefix=${pod_cidr#*/}
bridge_ip=$(echo "${pod_cidr%/*}" | awk -F. '{ print $1 "." $2 "." $3 "." $4 + 1 }')
kubelet_port=${STEVEDORE_KUBELET_PORT:-10250}
node_dir="$state/node"
containerd_socket="$node_dir/containerd/containerd.sock"
sandbox_image=docker.io/stevedore/sandbox:busybox
# Not "/": two nodes on one machine (a developer's and a test's) keep their Pods' cgroups apart.
cgroup_root="/stevedore-node-$node_name"
# What the kubelet would change on the host (it sets them on start), restored by node-down.
kernel_settings=(vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops kernel.keys.root_maxkeys
  kernel.keys.root_maxbytes)

ctr() { /usr/bin/ctr --address "$containerd_socket" "$@"; }

write_containerd_config() {
  mkdir -p "$node_dir/containerd"
  cat > "$node_dir/containerd/config.toml" <<TOML
version = 2
root = "$node_dir/containerd/root"
state = "$node_dir/containerd/state"
# Snapshotters this host has no use for; they only log that they cannot start.
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs"]
[grpc]
  address = "$containerd_socket"
[plugins."io.containerd.internal.v1.opt"]
  path = "$node_dir/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$sandbox_image"
  # A process here may not lower its oom_score_adj: without this every sandbox fails in runc's nsexec.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        Root = "$node_dir/containerd/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$node_dir/cni"
    max_conf_num = 1
  [plugins."io.containerd.grpc.v1.cri".registry.mirrors."$registry"]
    endpoint = ["http://$registry"]
TOML
}

# Imports an OCI image archive into the k8s.io namespace, where the kubelet's images live, named $2 (a normalized
# name, as the kubelet asks for it). The base name keeps ctr from naming a tag-only reference in the archive after
# the date (a name the CRI plugin cannot resolve), and skips a full one (Jib's, not normalized).
import_image() {
  ctr -n k8s.io images import --base-name "${2%:*}" --index-name "$2" "$1" >/dev/null
  [ -n "$(ctr -n k8s.io images ls -q "name==$2")" ] || { log "importing $1 did not create $2"; exit 1; }
}

# A kubeconfig $node_dir/$1.kubeconfig with a client certificate for user $2 in group $3, signed by the control
# plane's CA: the Node authorizer and NodeRestriction know a kubelet by CN system:node:<name> in system:nodes, the
# default RBAC roles the scheduler by CN system:kube-scheduler.
write_client_kubeconfig() {
  local file=$1 user=$2 group=$3 pki="$state/control-plane/pki" subject
  subject="/CN=$user"
  [ -z "$group" ] || subject="/O=$group$subject"
  if ! openssl x509 -in "$node_dir/pki/$file.crt" -noout -subject 2>/dev/null | grep -qF "CN = $user"; then
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
      -keyout "$node_dir/pki/$file.key" -subj "$subject" 2>/dev/null \
      | openssl x509 -req -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -days 365 -out "$node_dir/pki/$file.crt" \
        -extfile <(echo "extendedKeyUsage=clientAuth") 2>/dev/null
    chmod 600 "$node_dir/pki/$file.key"
  fi
  cat > "$node_dir/$file.kubeconfig" <<YAML
apiVersion: v1
kind: Config
clusters: [{name: local, cluster: {server: "https://127.0.0.1:$apiserver_port", certificate-authority: "$pki/ca.crt"}}]
users: [{name: $user, user: {client-certificate: "$node_dir/pki/$file.crt", client-key: "$node_dir/pki/$file.key"}}]
contexts: [{name: local, context: {cluster: local, user: $user}}]
current-context: local
YAML
  chmod 600 "$node_dir/$file.kubeconfig"
}

write_kubelet_config() {
  cat > "$node_dir/kubelet-config.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
containerRuntimeEndpoint: unix://$containerd_socket
cgroupDriver: cgroupfs
cgroupRoot: $cgroup_root
failCgroupV1: false
failSwapOn: false
address: $node_ip
port: $kubelet_port
healthzBindAddress: $node_ip
readOnlyPort: 0
podLogsDir: $node_dir/pod-logs
volumePluginDir: $node_dir/volume-plugins
staticPodPath: ""
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $state/control-plane/pki/ca.crt}
authorization: {mode: Webhook}
# A test machine's disk and memory are shared: pressure taints would only make Pods flaky. The images are imported,
# not pulled: garbage collection would lose them.
evictionHard: {memory.available: 50Mi, nodefs.available: 1%, imagefs.available: 1%}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
# No iptables rules of the kubelet on the host (there is no kube-proxy here to need them).
makeIPTablesUtilChains: false
YAML
}

save_kernel_settings() {
  [ -f "$node_dir/kernel-settings" ] || sysctl "${kernel_settings[@]}" | tr -d ' ' > "$node_dir/kernel-settings"
}

restore_kernel_settings() {
  if [ -f "$node_dir/kernel-settings" ]; then
    sysctl -q -w $(cat "$node_dir/kernel-settings") || true
    rm -f "$node_dir/kernel-settings"
  fi
}
