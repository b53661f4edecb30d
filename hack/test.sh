#!/usr/bin/env bash
# The project's test command: installs what the tests need (Debian packages, the control-plane tools), then
# builds and tests every module against a real control plane. Extra arguments go to Maven.
set -euo pipefail
cd "$(dirname "$0")/.."
hack/install-prereqs.sh
bin=$(hack/build-tools.sh)
exec mvn -B verify -Dstevedore.tools.dir="$bin" "$@"
