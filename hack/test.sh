#!/usr/bin/env bash
# The project's test command: installs what the tests need (Debian packages, the control-plane tools, the images'
# Debian base images), then builds every module and both images (Maven profile images) and tests them against a
# real control plane and a real kubelet node. Extra arguments go to Maven.
set -euo pipefail
cd "$(dirname "$0")/.."
hack/install-prereqs.sh
bin=$(hack/build-tools.sh)
base=$(hack/build-base-images.sh)
exec mvn -B verify -Pimages -Dstevedore.baseImages="$base" -Dstevedore.tools.dir="$bin" "$@"
