#!/usr/bin/env bash
# Runs Stevedore on this machine, end to end: installs what it needs, builds the project, starts a real control
# plane (etcd, kube-apiserver, kube-controller-manager), a registry on loopback with a busybox image built here,
# installs the CRDs, applies the hello-world example and prints its outcome. Everything keeps running in the
# background; state, logs and PID files live in .local/. Safe to run again while up. Stop with hack/local-down.sh.
#
# Settings (environment): STEVEDORE_LOCAL_DIR (default .local), STEVEDORE_APISERVER_PORT (6443),
# STEVEDORE_ETCD_PORT (2379), STEVEDORE_ETCD_PEER_PORT (2380), STEVEDORE_REGISTRY_PORT (5000),
# STEVEDORE_PULL_CREDENTIALS_PORT (8443, the operator's pull-credentials endpoint),
# STEVEDORE_SKIP_BUILD=1 to use the build already in target/.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$repo"

apiserver_port=${STEVEDORE_APISERVER_PORT:-6443}
registry_port=${STEVEDORE_REGISTRY_PORT:-5000}
registry="127.0.0.1:$registry_port"
pull_credentials_port=${STEVEDORE_PULL_CREDENTIALS_PORT:-8443}
mkdir -p "$state/run" "$state/logs" "$state/bin"

log "installing prerequisites"
hack/install-prereqs.sh
tools=$(hack/build-tools.sh)
ln -sfn "$tools/kubectl" "$state/bin/kubectl"
ln -sfn "$tools/helm" "$state/bin/helm"
kubectl() { "$tools/kubectl" --kubeconfig "$state/kubeconfig" "$@"; }

if [ "${STEVEDORE_SKIP_BUILD:-}" != 1 ]; then
  log "building Stevedore"
  mvn -B -q -DskipTests install
fi

log "starting the control plane"
java -cp "testing/target/classes:testing/target/lib/*" dev.stevedore.testing.LocalControlPlane \
  --bin "$tools" --dir "$state/control-plane" --apiserver-port "$apiserver_port" \
  --etcd-port "${STEVEDORE_ETCD_PORT:-2379}" --etcd-peer-port "${STEVEDORE_ETCD_PEER_PORT:-2380}" >/dev/null
ln -sfn "$state/control-plane/kubeconfig" "$state/kubeconfig"

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

image="$registry/stevedore/busybox:latest"
if ! skopeo inspect --tls-verify=false "docker://$image" >/dev/null 2>&1; then
  log "building and pushing $image"
  rm -rf "$state/images/busybox"
  hack/build-busybox-image.sh "$state/images/busybox" latest
  skopeo copy -q --dest-tls-verify=false "oci:$state/images/busybox:latest" "docker://$image"
fi

log "installing the CRDs"
kubectl apply --server-side --field-manager=stevedore-local-up -f crds/ >/dev/null
kubectl wait --for=condition=Established --timeout=60s -f crds/ >/dev/null

# The node agent is this machine's node: its state under .local/agent, its RuntimeNode named after the host.
node=${STEVEDORE_NODE_NAME:-$(hostname -s | tr '[:upper:]' '[:lower:]')}

# Pull Secrets flow as in a cluster: the agent gets them from the operator's endpoint with a token bound to a Pod
# on its node. No kubelet runs here, so that Pod (of the agent's ServiceAccount, on a Node object named after this
# machine) is only an object: it gives the token its node. The token lasts a year; local-up renews it on each run.
log "registering the local agent's identity (ServiceAccount, Node, Pod)"
kubectl apply --server-side --field-manager=stevedore-local-up -f - >/dev/null <<YAML
apiVersion: v1
kind: Namespace
metadata: {name: stevedore-system}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: stevedore-agent, namespace: stevedore-system}
---
apiVersion: v1
kind: Node
metadata: {name: $node}
---
apiVersion: v1
kind: Pod
metadata: {name: stevedore-agent-$node, namespace: stevedore-system}
spec:
  nodeName: $node
  serviceAccountName: stevedore-agent
  automountServiceAccountToken: false
  tolerations: [{operator: Exists}]  # the Node never turns Ready: nothing may evict the Pod
  containers: [{name: agent, image: stevedore/runtime-node-agent, command: ["/not-run-here"]}]
YAML
mkdir -p "$state/pull-credentials"
kubectl create token stevedore-agent -n stevedore-system --audience stevedore.dev/pull-credentials \
  --bound-object-kind Pod --bound-object-name "stevedore-agent-$node" --duration 8760h \
  > "$state/pull-credentials/token"

# Restarted on every run, so a rebuilt operator is what runs. -Dstevedore.state marks the process as ours.
log "starting the operator"
stop_pidfile "$state/run/operator.pid"
KUBECONFIG="$state/kubeconfig" setsid java -Dstevedore.state="$state" \
  -cp "operator/target/classes:operator/target/lib/*" dev.stevedore.operator.StevedoreOperator --no-leader-elect \
  --lease-namespace stevedore-system --pull-credentials-port "$pull_credentials_port" --serving-name 127.0.0.1 \
  </dev/null >>"$state/logs/operator.log" 2>&1 &
echo $! > "$state/run/operator.pid"
kubectl wait --for=create --timeout=60s -n stevedore-system configmap/stevedore-pull-credentials-ca >/dev/null
kubectl get -n stevedore-system configmap/stevedore-pull-credentials-ca -o jsonpath='{.data.ca\.crt}' \
  > "$state/pull-credentials/ca.crt"

# The stevedore-agent command, as in the agent's image: the agent and its subcommands (import), run from target/.
install -D -m 0755 runtime-node-agent/src/main/sh/stevedore-agent "$state/bin/stevedore-agent"
install -D -m 0644 runtime-node-agent/jvm.options "$state/lib/stevedore-agent/jvm.options"
echo "$repo/runtime-node-agent/target/classes:$repo/runtime-node-agent/target/lib/*" \
  > "$state/lib/stevedore-agent/classpath"

log "starting the node agent for node $node"
stop_pidfile "$state/run/agent.pid"
KUBECONFIG="$state/kubeconfig" setsid "$state/bin/stevedore-agent" \
  --node-name "$node" --root "$state/agent" --heartbeat-interval 10s \
  --pull-credentials-url "https://127.0.0.1:$pull_credentials_port" \
  --pull-credentials-ca "$state/pull-credentials/ca.crt" --pull-credentials-token "$state/pull-credentials/token" \
  </dev/null >>"$state/logs/agent.log" 2>&1 &
echo $! > "$state/run/agent.pid"
kubectl wait --for=create --timeout=60s "runtimenode/$node" >/dev/null
kubectl wait --for=condition=Ready --timeout=60s "runtimenode/$node" >/dev/null

log "applying manifests/examples/hello-world.yaml"
sed "s#127.0.0.1:5000/#$registry/#" manifests/examples/hello-world.yaml | kubectl apply --server-side -f - >/dev/null
# A Task ends Deleted when its process exits; a re-run of local-up re-creates the example to run it again.
if [ "$(kubectl get tk hello-world -o jsonpath='{.status.phase}')" = Deleted ]; then
  kubectl delete tk hello-world --wait >/dev/null
  sed "s#127.0.0.1:5000/#$registry/#" manifests/examples/hello-world.yaml | kubectl apply --server-side -f - >/dev/null
fi
kubectl wait --for=jsonpath='{.status.phase}'=Deleted --timeout=120s tk/hello-world >/dev/null || true
kubectl get runtimenodes,containers,tasks
uid=$(kubectl get tk hello-world -o jsonpath='{.metadata.uid}')
echo "hello-world: $(kubectl get tk hello-world -o jsonpath='{.status.phase} exitCode={.status.exitCode} reason={.status.reason}')"
echo "its log ($state/agent/tasks/$uid/task.log):"
sed 's/^/  /' "$state/agent/tasks/$uid/task.log" 2>/dev/null || true

cat > "$state/env" <<ENV
export KUBECONFIG=$state/kubeconfig
export PATH=$state/bin:\$PATH
ENV
cat <<USAGE

Stevedore is up: API server https://127.0.0.1:$apiserver_port, registry $registry (image $image).
The operator and the node agent (node $node) run; their logs are in $state/logs/.
Use it with:
  export KUBECONFIG=$state/kubeconfig
  export PATH=$state/bin:\$PATH        # or: . $state/env
  kubectl get ctr,tk,rn
  stevedore-agent import --root $state/agent IMAGE.tar   # an OCI image archive into the node's images
Logs are in $state/logs and $state/control-plane/logs. Stop everything with hack/local-down.sh.
USAGE
