#!/usr/bin/env bash
# Regenerates the CRD YAML under crds/ from the model classes in crds/src/main/java.
set -euo pipefail
cd "$(dirname "$0")/.."
mvn -B -q -pl crds -am test -Dtest=CrdManifestsTest -Dsurefire.failIfNoSpecifiedTests=false -Dstevedore.crds.update=true
ls crds/*.yaml
