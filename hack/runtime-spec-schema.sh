#!/usr/bin/env bash
# Prints the directory of the OCI runtime-spec JSON schema (config-schema.json and the files it refers to) of the
# runtime-spec version pinned in hack/tools/go.mod (v1.2.0, the one runc implements), downloaded into the Go module
# cache and checked against hack/tools/go.sum. The tests validate every generated config.json against it.
set -euo pipefail
cd "$(dirname "$0")/tools"
dir=$(go mod download -json github.com/opencontainers/runtime-spec | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[ -f "$dir/schema/config-schema.json" ] || { echo "runtime-spec-schema: no schema/config-schema.json in '$dir'" >&2; exit 1; }
echo "$dir/schema"
