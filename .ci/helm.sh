#!/usr/bin/env bash
# Builds the helm CLI from its Go module into the cache folder (outside the
# clone, reused by later CI runs on the same machine) and prints its path.
# A helm already on $PATH is used as is.
# Env: HELM_VERSION (default below), GRAYZONE_CACHE (default
#      ${XDG_CACHE_HOME:-$HOME/.cache}/grayzone).
set -euo pipefail
if command -v helm >/dev/null 2>&1; then
  command -v helm
  exit 0
fi
version=${HELM_VERSION:-v3.22.0}
cache=${GRAYZONE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/grayzone}
dir="$cache/helm-$version"
if [ ! -x "$dir/helm" ]; then
  echo "helm.sh: building helm.sh/helm/v3/cmd/helm@$version" >&2
  start=$(date +%s)
  mkdir -p "$dir"
  CGO_ENABLED=0 GOBIN="$dir" go install -trimpath "helm.sh/helm/v3/cmd/helm@$version"
  echo "helm.sh: built in $(( $(date +%s) - start ))s" >&2
fi
echo "$dir/helm"
