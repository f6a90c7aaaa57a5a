#!/usr/bin/env bash
# Builds kube-apiserver from its Go module into a cache folder outside the
# clone, so CI runs on the same machine reuse it, and prints the binary's path.
#
# k8s.io/kubernetes cannot be `go install`ed: its go.mod replaces every
# staging module (k8s.io/api, k8s.io/apiserver, ...) with a local directory.
# So this writes a throwaway module that requires k8s.io/kubernetes vX.Y.Z and
# replaces each staging module with its published v0.Y.Z, then builds
# k8s.io/kubernetes/cmd/kube-apiserver from the module cache.
#
# Usage: .ci/kube-apiserver.sh            (build when missing; print the path)
# Env:   KUBE_VERSION (default below), GRAYZONE_CACHE (default
#        ${XDG_CACHE_HOME:-$HOME/.cache}/grayzone).
set -euo pipefail

version=${KUBE_VERSION:-v1.37.2}
cache=${GRAYZONE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/grayzone}
out="$cache/kube-apiserver-$version/kube-apiserver"
if [ -x "$out" ]; then
  echo "$out"
  exit 0
fi

staging=v0.${version#v1.}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
go mod init grayzone.local/kube-apiserver-build >/dev/null 2>&1

# The list of staging modules is whatever k8s.io/kubernetes's own go.mod
# replaces with ./staging/...; read it from the module rather than hard-coding.
gomod=$(go mod download -json "k8s.io/kubernetes@$version" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
mods=$(sed -n 's#^[[:space:]]*\(k8s.io/[^ ]*\) => ./staging/.*#\1#p' "$gomod" | sort -u)
if [ -z "$mods" ]; then
  echo "kube-apiserver.sh: found no staging replaces in $gomod" >&2
  exit 1
fi
# go.mod's go line: the build module must not be older than kubernetes's.
gover=$(sed -n 's/^go \([0-9.]*\)$/\1/p' "$gomod")
go mod edit -go="$gover" -require="k8s.io/kubernetes@$version"
for m in $mods; do
  go mod edit -replace="$m=$m@$staging"
done
cat > tools.go <<'GO'
//go:build tools

package tools

import _ "k8s.io/kubernetes/cmd/kube-apiserver"
GO
echo "kube-apiserver.sh: building k8s.io/kubernetes/cmd/kube-apiserver $version (staging $staging)" >&2
GOFLAGS=-mod=mod go mod tidy -e >/dev/null 2>&1 || true
start=$(date +%s)
mkdir -p "$(dirname "$out")"
CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -o "$out.tmp" k8s.io/kubernetes/cmd/kube-apiserver
mv "$out.tmp" "$out"
echo "kube-apiserver.sh: built in $(( $(date +%s) - start ))s" >&2
echo "$out"
