#!/usr/bin/env bash
# Renders the Helm chart into manifests/stevedore.yaml: the plain-YAML install (kubectl apply -f), in the
# namespace stevedore-system. e2e's InstallManifestsIT fails when the file is stale.
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
YAML
  "$tools/helm" template stevedore charts/stevedore --namespace stevedore-system --include-crds 2>/dev/null
}
if [ "${1:-}" = --stdout ]; then render; else render > manifests/stevedore.yaml; fi
