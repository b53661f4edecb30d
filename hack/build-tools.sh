#!/usr/bin/env bash
# Builds the pinned tools of hack/tools/go.mod (control plane, kubelet, helm, the kstatus test helper) once into a
# per-user cache and prints the directory that holds them. A no-op when that directory is already complete.
# Usage: bin=$(hack/build-tools.sh)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tools="$here/tools"

k8s_version=$(awk '$1 == "k8s.io/kubernetes" { print $2 }' "$tools/go.mod")
# Key the cache by the pinned versions, the helper's source and this script: a bump, an edit or new flags build afresh.
key="$k8s_version-$(cat "$tools/go.mod" "$tools/go.sum" "$tools"/kstatus/*.go "$0" | sha256sum | cut -c1-12)"
dest="${STEVEDORE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/stevedore}/bin/$key"
binaries=(etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl helm kstatus)

complete() { for b in "${binaries[@]}"; do [ -x "$dest/$b" ] || return 1; done; }
if complete; then echo "$dest"; exit 0; fi

command -v go >/dev/null || { echo "build-tools: Go is needed to build the control-plane tools" >&2; exit 1; }
mkdir -p "$(dirname "$dest")"
tmp=$(mktemp -d "$dest.partial.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# The release's version stamp, as Kubernetes' own build sets it: clients and skew checks read it.
minor=$(echo "$k8s_version" | cut -d. -f2)
stamp=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  stamp+=" -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
done

echo "build-tools: building ${binaries[*]} ($key) into $dest; a cold build takes a while" >&2
start=$(date +%s)
(cd "$tools" && CGO_ENABLED=0 GOBIN="$tmp" go install -trimpath -ldflags "-s -w $stamp" tool)
mv "$tmp/server" "$tmp/etcd"   # go names the etcd binary after its module path's last element before /v3
chmod 755 "$tmp"
rm -rf "$dest"
mv "$tmp" "$dest"
trap - EXIT
echo "build-tools: done in $(( $(date +%s) - start ))s" >&2
echo "$dest"
