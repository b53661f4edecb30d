#!/usr/bin/env bash
# Builds Stevedore's two container images as OCI image archives, with no container engine and no registry: the
# Debian base images (hack/build-base-images.sh, cached), then Maven's profile images (Jib) on top of them. Prints
# the paths of the two archives, the operator's first:
#   operator/target/stevedore-operator-image.tar           stevedore/operator:<version>
#   runtime-node-agent/target/stevedore-agent-image.tar    stevedore/runtime-node-agent:<version>
# docs/images.md tells how to push them to a registry or import them into a node's containerd.
#
# Settings (environment): STEVEDORE_SKIP_BUILD=1 reuses both archives when target/ has them; those of
# hack/build-base-images.sh (STEVEDORE_CACHE, STEVEDORE_DEBIAN_MIRROR). Extra arguments go to Maven.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
log() { echo "$(date +%H:%M:%S) $*" >&2; }
archives=(operator/target/stevedore-operator-image.tar runtime-node-agent/target/stevedore-agent-image.tar)

if [ "${STEVEDORE_SKIP_BUILD:-}" = 1 ] && [ -f "${archives[0]}" ] && [ -f "${archives[1]}" ]; then
  log "reusing the images in target/ (STEVEDORE_SKIP_BUILD=1)"
else
  hack/install-prereqs.sh
  log "building the base images"
  base=$(hack/build-base-images.sh)
  log "building the images (mvn -Pimages)"
  mvn -B -q -Dstyle.color=never -Pimages -DskipTests -Dstevedore.baseImages="$base" \
    package -pl operator,runtime-node-agent -am "$@" >&2
fi
for archive in "${archives[@]}"; do
  echo "$repo/$archive"
done
