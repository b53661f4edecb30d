#!/usr/bin/env bash
# Runs Stevedore on this machine, end to end: installs what it needs, builds the project, starts a real control
# plane (etcd, kube-apiserver, kube-controller-manager), a registry on loopback with a busybox image built here,
# installs the CRDs, applies the hello-world example and prints its outcome. Everything keeps running in the
# background; state, logs and PID files live in .local/. Safe to run again while up. Stop with hack/local-down.sh.
#
# Settings (environment): STEVEDORE_LOCAL_DIR (default .local), STEVEDORE_APISERVER_PORT (6443),
# STEVEDORE_ETCD_PORT (2379), STEVEDORE_ETCD_PEER_PORT (2380), STEVEDORE_REGISTRY_PORT (5000),
# STEVEDORE_PULL_CREDENTIALS_PORT (8443, the operator's pull-credentials endpoint),
# STEVEDORE_OPERATOR_METRICS_PORT (8080) and STEVEDORE_AGENT_METRICS_PORT (9441): their /metrics on 127.0.0.1,
# STEVEDORE_SUBRESOURCES_PORT (8444, the operator's aggregated API), STEVEDORE_AGENT_ENDPOINT_PORT (10350, the agent's
# endpoint for the operator), STEVEDORE_LOCAL_INTERFACE (stevedore-local) and STEVEDORE_LOCAL_IP (10.213.1.1): the
# dummy interface and address the API server reaches the operator's aggregated API on, STEVEDORE_TASKS_BRIDGE
# (stevedore-tasks) and STEVEDORE_TASKS_SUBNET (10.213.16.0/24): the tasks' CNI network,
# STEVEDORE_SKIP_BUILD=1 to use the build already in target/.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$repo"

pull_credentials_port=${STEVEDORE_PULL_CREDENTIALS_PORT:-8443}
operator_metrics_port=${STEVEDORE_OPERATOR_METRICS_PORT:-8080}
agent_metrics_port=${STEVEDORE_AGENT_METRICS_PORT:-9441}
subresources_port=${STEVEDORE_SUBRESOURCES_PORT:-8444}
agent_endpoint_port=${STEVEDORE_AGENT_ENDPOINT_PORT:-10350}

ensure_prerequisites
if [ "${STEVEDORE_SKIP_BUILD:-}" != 1 ]; then
  log "building Stevedore"
  mvn -B -q -DskipTests install
fi
ensure_control_plane
ensure_registry

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
metadata: {name: stevedore-agent, namespace: stevedore-system, labels: {app.kubernetes.io/managed-by: stevedore-local-up}}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: stevedore-operator, namespace: stevedore-system, labels: {app.kubernetes.io/managed-by: stevedore-local-up}}
---
apiVersion: v1
kind: Node
metadata: {name: $node, labels: {app.kubernetes.io/managed-by: stevedore-local-up}}
---
apiVersion: v1
kind: Pod
metadata:
  name: stevedore-agent-$node
  namespace: stevedore-system
  labels: {app.kubernetes.io/managed-by: stevedore-local-up}
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
# The operator's identity at the agent's endpoint, as the chart mounts it: a token of its ServiceAccount for the
# agents' audience.
mkdir -p "$state/operator"
kubectl create token stevedore-operator -n stevedore-system --audience stevedore.dev/agent-api --duration 8760h \
  > "$state/operator/agent-endpoint-token"

# The operator's aggregated API (kubectl stevedore logs, exec, ps, top), as the chart registers it; the API server
# reaches the operator process through hand-made Endpoints. Endpoints may not be loopback, and no traffic should go
# to the machine's own network: the address is on a dummy interface of local-up's own (local-down removes it).
log "registering the aggregated API subresources.stevedore.dev"
add_local_interface
kubectl apply --server-side --field-manager=stevedore-local-up -f - >/dev/null <<YAML
apiVersion: v1
kind: Service
metadata: {name: stevedore-operator, namespace: stevedore-system, labels: {app.kubernetes.io/managed-by: stevedore-local-up}}
spec:
  ports: [{name: subresources, port: 8444, targetPort: $subresources_port}]
---
apiVersion: v1
kind: Endpoints
metadata: {name: stevedore-operator, namespace: stevedore-system, labels: {app.kubernetes.io/managed-by: stevedore-local-up}}
subsets: [{addresses: [{ip: "$local_ip"}], ports: [{name: subresources, port: $subresources_port}]}]
---
apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata: {name: v1alpha1.subresources.stevedore.dev, labels: {app.kubernetes.io/managed-by: stevedore-local-up}}
spec:
  group: subresources.stevedore.dev
  version: v1alpha1
  groupPriorityMinimum: 1000
  versionPriority: 15
  service: {namespace: stevedore-system, name: stevedore-operator, port: 8444}
YAML
# Restarted on every run, so a rebuilt operator is what runs. -Dstevedore.state marks the process as ours.
log "starting the operator"
stop_pidfile "$state/run/operator.pid"
# Its serving certificate is made anew for the names below (an older run's may lack the Service's name).
kubectl delete secret -n stevedore-system stevedore-operator-serving --ignore-not-found >/dev/null
KUBECONFIG="$state/kubeconfig" setsid java -Dstevedore.state="$state" \
  -cp "operator/target/classes:operator/target/lib/*" dev.stevedore.operator.StevedoreOperator --no-leader-elect \
  --lease-namespace stevedore-system --pull-credentials-port "$pull_credentials_port" \
  --metrics-address "127.0.0.1:$operator_metrics_port" \
  --subresources-port "$subresources_port" --agent-endpoint-token "$state/operator/agent-endpoint-token" \
  --serving-name 127.0.0.1,stevedore-operator.stevedore-system.svc \
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

# The node's CNI network, a bridge of local-up's own: tasks get an address on it, which the host reaches, and
# hostPorts. No route leads beyond it: tasks reach each other and this host's address on the bridge only.
log "installing the CNI network $tasks_network ($tasks_bridge, $tasks_subnet)"
mkdir -p "$state/cni/net.d"
# The bridge plugin turns IP forwarding on, as under containerd: local-down puts back what the first local-up found.
[ -e "$state/cni/ip_forward.before" ] || cp /proc/sys/net/ipv4/ip_forward "$state/cni/ip_forward.before"
cat > "$state/cni/net.d/10-$tasks_network.conflist" <<JSON
{"cniVersion": "1.0.0", "name": "$tasks_network", "plugins": [
  {"type": "bridge", "bridge": "$tasks_bridge", "isGateway": true, "ipMasq": false, "hairpinMode": true,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "$tasks_subnet"}]], "dataDir": "$state/cni/ipam"}},
  {"type": "portmap", "capabilities": {"portMappings": true}}]}
JSON

log "starting the node agent for node $node"
stop_pidfile "$state/run/agent.pid"
KUBECONFIG="$state/kubeconfig" setsid "$state/bin/stevedore-agent" \
  --node-name "$node" --root "$state/agent" --heartbeat-interval 10s \
  --metrics-address "127.0.0.1:$agent_metrics_port" --endpoint-address "127.0.0.1:$agent_endpoint_port" \
  --pull-credentials-url "https://127.0.0.1:$pull_credentials_port" \
  --pull-credentials-ca "$state/pull-credentials/ca.crt" --pull-credentials-token "$state/pull-credentials/token" \
  --cni-conf-dir "$state/cni/net.d" --cni-bin-dir /opt/cni/bin,/usr/lib/cni \
  </dev/null >>"$state/logs/agent.log" 2>&1 &
echo $! > "$state/run/agent.pid"
kubectl wait --for=create --timeout=60s "runtimenode/$node" >/dev/null
kubectl wait --for=condition=Ready --timeout=60s "runtimenode/$node" >/dev/null

kubectl wait --for=condition=Available --timeout=90s apiservice/v1alpha1.subresources.stevedore.dev >/dev/null

# kubectl stevedore (logs, ps, top): a kubectl plugin, found on PATH as kubectl-stevedore.
install -D -m 0755 kubectl-plugin/src/main/sh/kubectl-stevedore "$state/bin/kubectl-stevedore"
mkdir -p "$state/lib/stevedore-kubectl"
echo "$repo/kubectl-plugin/target/classes:$repo/kubectl-plugin/target/lib/*" > "$state/lib/stevedore-kubectl/classpath"

run_hello_world "$state/agent"

write_env
cat <<USAGE

Stevedore is up: API server https://127.0.0.1:$apiserver_port, registry $registry (image $image).
The operator and the node agent (node $node) run; their logs are in $state/logs/, their metrics at
http://127.0.0.1:$operator_metrics_port/metrics and http://127.0.0.1:$agent_metrics_port/metrics.
Use it with:
  export KUBECONFIG=$state/kubeconfig
  export PATH=$state/bin:\$PATH        # or: . $state/env
  kubectl get ctr,tk,rn
  kubectl stevedore logs hello-world     # a Task's log through the API server; exec, ps and top for a running one
  kubectl apply -f manifests/examples/web-server.yaml   # a server on the tasks' network ($tasks_subnet):
  curl http://\$(kubectl get tk web-server -o jsonpath='{.status.ips[0]}'):8080/
  stevedore-agent import --root $state/agent IMAGE.tar   # an OCI image archive into the node's images
Logs are in $state/logs and $state/control-plane/logs. Stop everything with hack/local-down.sh.
USAGE
