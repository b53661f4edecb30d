#!/usr/bin/env bash
# Renders the Helm chart into manifests/stevedore.yaml: the plain-YAML install (kubectl apply -f), in the
# namespace stevedore-system, labelled for the Pod Security level the privileged node agent needs. e2e's
# InstallManifestsIT fails when the file is stale.
set -euo pipefail
cd "$(dirname "$0")/.."
tools=$(hack/build-tools.sh)
render() {
  cat <<'YAML'
# Rendered from charts/stevedore by hack/update-manifests.sh; do not edit.
apiVersion: v1
kind: Namespace
metadata:
  name: stevedore-system
  labels:
    pod-security.kubernetes.io/enforce: privileged
YAML
  # The chart's minimum (Chart.yaml kubeVersion); nothing in it depends on the version beyond that.
  "$tools/helm" template stevedore charts/stevedore --namespace stevedore-system --include-crds --kube-version 1.31.0 \
    2>/dev/null
}
if [ "${1:-}" = --stdout ]; then render; else render > manifests/stevedore.yaml; fi
