# Shared by the hack/ scripts: where local state lives and how its processes are stopped.
# shellcheck shell=bash
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
state=$(mkdir -p "${STEVEDORE_LOCAL_DIR:-$repo/.local}" && cd "${STEVEDORE_LOCAL_DIR:-$repo/.local}" && pwd)

log() { echo "$(date +%H:%M:%S) $*" >&2; }

# True when the PID file names a live process whose command line mentions this state directory, so a PID
# reused by an unrelated process is never signalled.
ours() {
  local pid
  pid=$(cat "$1" 2>/dev/null) || return 1
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' < "/proc/$pid/cmdline" | grep -qF "$state"
}

# Stops the process of a PID file: SIGTERM, then SIGKILL after 10 s.
stop_pidfile() {
  local file=$1 pid
  if ours "$file"; then
    pid=$(cat "$file")
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$file"
}

# What local-up and node-up both run, the same way, on the ports of the STEVEDORE_* settings. After
# ensure_control_plane and ensure_registry: $tools (the pinned binaries), kubectl() (admin), $registry, $image.
apiserver_port=${STEVEDORE_APISERVER_PORT:-6443}
registry_port=${STEVEDORE_REGISTRY_PORT:-5000}
registry="127.0.0.1:$registry_port"
image="$registry/stevedore/busybox:latest"

# Installs the Debian packages (install-prereqs.sh's and the extra ones named) and the pinned tools; links kubectl
# and helm into $state/bin.
ensure_prerequisites() {
  mkdir -p "$state/run" "$state/logs" "$state/bin"
  log "installing prerequisites"
  "$repo/hack/install-prereqs.sh" "$@"
  tools=$("$repo/hack/build-tools.sh")
  ln -sfn "$tools/kubectl" "$state/bin/kubectl"
  ln -sfn "$tools/helm" "$state/bin/helm"
}

kubectl() { "$tools/kubectl" --kubeconfig "$state/kubeconfig" "$@"; }

# $state/env: what a shell sources to use the local cluster (its kubeconfig; kubectl, helm, stevedore-agent on PATH).
write_env() {
  cat > "$state/env" <<ENV
export KUBECONFIG=$state/kubeconfig
export PATH=$state/bin:\$PATH
ENV
}

# Starts etcd, kube-apiserver and kube-controller-manager under $state/control-plane, or reuses them when they run.
ensure_control_plane() {
  log "starting the control plane"
  java -cp "$repo/testing/target/classes:$repo/testing/target/lib/*" dev.stevedore.testing.LocalControlPlane \
    --bin "$tools" --dir "$state/control-plane" --apiserver-port "$apiserver_port" \
    --etcd-port "${STEVEDORE_ETCD_PORT:-2379}" --etcd-peer-port "${STEVEDORE_ETCD_PEER_PORT:-2380}" >/dev/null
  ln -sfn "$state/control-plane/kubeconfig" "$state/kubeconfig"
}

# Starts the registry on $registry unless it serves, and pushes the busybox image $image unless it is there.
ensure_registry() {
  if ! ours "$state/run/registry.pid" || ! curl -fsS "http://$registry/v2/" >/dev/null 2>&1; then
    log "starting the registry on $registry"
    stop_pidfile "$state/run/registry.pid"
    mkdir -p "$state/registry/data"
    cat > "$state/registry/config.yml" <<CONFIG
version: 0.1
log: {level: warn}
storage:
  filesystem: {rootdirectory: $state/registry/data}
  delete: {enabled: true}
http: {addr: "$registry"}
CONFIG
    setsid /usr/bin/docker-registry serve "$state/registry/config.yml" </dev/null >>"$state/logs/registry.log" 2>&1 &
    echo $! > "$state/run/registry.pid"
    for _ in $(seq 100); do curl -fsS "http://$registry/v2/" >/dev/null 2>&1 && break; sleep 0.1; done
    curl -fsS "http://$registry/v2/" >/dev/null || { log "the registry did not start; see $state/logs/registry.log"; exit 1; }
  fi
  if ! skopeo inspect --tls-verify=false "docker://$image" >/dev/null 2>&1; then
    log "building and pushing $image"
    rm -rf "$state/images/busybox"
    "$repo/hack/build-busybox-image.sh" "$state/images/busybox" latest
    skopeo copy -q --dest-tls-verify=false "oci:$state/images/busybox:latest" "docker://$image"
  fi
}

# Applies manifests/examples/hello-world.yaml with the registry's port, re-creating a Task that already ran, and
# prints its outcome once it ended (or whatever it reached in 120 s) and its log from the agent root $1.
run_hello_world() {
  local agent_root=$1
  log "applying manifests/examples/hello-world.yaml"
  local manifest
  manifest=$(sed "s#127.0.0.1:5000/#$registry/#" "$repo/manifests/examples/hello-world.yaml")
  kubectl apply --server-side -f - <<<"$manifest" >/dev/null
  # A Task ends Deleted when its process exits; a re-run re-creates the example to run it again.
  if [ "$(kubectl get tk hello-world -o jsonpath='{.status.phase}')" = Deleted ]; then
    kubectl delete tk hello-world --wait >/dev/null
    kubectl apply --server-side -f - <<<"$manifest" >/dev/null
  fi
  kubectl wait --for=jsonpath='{.status.phase}'=Deleted --timeout=120s tk/hello-world >/dev/null || true
  kubectl get runtimenodes,containers,tasks
  echo "hello-world: $(kubectl get tk hello-world -o jsonpath='{.status.phase} exitCode={.status.exitCode} reason={.status.reason}')"
  local uid
  uid=$(kubectl get tk hello-world -o jsonpath='{.metadata.uid}')
  echo "its log ($agent_root/tasks/$uid/task.log):"
  sed 's/^/  /' "$agent_root/tasks/$uid/task.log" 2>/dev/null || true
}

# Unmounts everything under a directory, deepest first so nested mounts come off before their parents.
unmount_under() {
  awk -v prefix="$1/" 'index($2, prefix) == 1 { print $2 }' /proc/mounts | sort -r | while read -r mnt; do
    umount "$mnt" 2>/dev/null || umount -l "$mnt"
  done
}

# The tasks' CNI network of local-up (a bridge with host-local addresses and portmap).
tasks_network=stevedore
tasks_bridge=${STEVEDORE_TASKS_BRIDGE:-stevedore-tasks}
tasks_subnet=${STEVEDORE_TASKS_SUBNET:-10.213.16.0/24}

# local-up's own address, on a dummy interface (a bridge without ports where the kernel has no dummy module): where
# the API server reaches the operator's aggregated API, as Endpoints may not point at loopback.
local_interface=${STEVEDORE_LOCAL_INTERFACE:-stevedore-local}
local_ip=${STEVEDORE_LOCAL_IP:-10.213.1.1}

add_local_interface() {
  if ! ip link show "$local_interface" >/dev/null 2>&1; then
    ip link add "$local_interface" type dummy 2>/dev/null || ip link add "$local_interface" type bridge
  fi
  ip addr replace "$local_ip/32" dev "$local_interface"
  ip link set "$local_interface" up
}
