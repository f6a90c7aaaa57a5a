#!/usr/bin/env bash
# Builds grayzone's container image offline and writes it as an OCI archive.
#
#   deploy/image/build.sh OUT.tar     build, write OUT.tar, print its tag and size
#   deploy/image/build.sh --tag       print the tag it would give the image
#
# 1. `go build` of ./cmd/grayzone: static (CGO_ENABLED=0), trimmed, linux;
#    its CA roots are compiled in (golang.org/x/crypto/x509roots/fallback).
# 2. The repository's Dockerfile (FROM scratch, uid 65532) on a build context
#    of the binary and a few directories laid out here: nothing is pulled.
# 3. buildah where installed (vfs storage, chroot isolation: no daemon, no
#    privileges beyond root), else docker; the image goes to OUT.tar as an
#    OCI archive, tagged with the Helm chart's default image: the
#    chart's image.repository and appVersion (deploy/helm/grayzone).
#
# buildah keeps its storage in a temporary directory removed on exit, so
# repeated runs (CI) leave nothing behind. Runs as root with no standard
# input. Load the archive elsewhere with, e.g.:
#   skopeo copy oci-archive:OUT.tar docker://REGISTRY/grayzone:TAG
#   podman load -i OUT.tar
#
# Env: IMAGE (the tag, default as above), GOARCH (default: go env GOARCH),
#      BUILDER (buildah or docker; default: buildah when installed).
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
chart="$root/deploy/helm/grayzone"

# The chart's default image: image.repository in values.yaml, and the tag
# the chart defaults to, its appVersion.
default_tag() {
  local repo version
  repo=$(awk '/^image:/ {in_image=1; next} in_image && /^[^ #]/ {in_image=0} in_image && $1 == "repository:" {print $2; exit}' "$chart/values.yaml")
  version=$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\} *$/\1/p' "$chart/Chart.yaml")
  if [ -z "$repo" ] || [ -z "$version" ]; then
    echo "build.sh: cannot read image.repository from $chart/values.yaml or appVersion from $chart/Chart.yaml" >&2
    exit 2
  fi
  echo "$repo:$version"
}

usage() {
  echo "usage: deploy/image/build.sh OUT.tar | --tag" >&2
  exit 2
}

[ $# -eq 1 ] || usage
tag=${IMAGE:-$(default_tag)}
case "$1" in
  --tag) echo "$tag"; exit 0 ;;
  -*) usage ;;
esac
out=$1
case "$out" in /*) ;; *) out="$PWD/$out" ;; esac
[ -d "$(dirname "$out")" ] || { echo "build.sh: $(dirname "$out"): no such directory" >&2; exit 2; }

builder=${BUILDER:-}
if [ -z "$builder" ]; then
  if command -v buildah >/dev/null 2>&1; then
    builder=buildah
  elif command -v docker >/dev/null 2>&1; then
    builder=docker
  else
    echo "build.sh: neither buildah nor docker is installed (apt-get install buildah)" >&2
    exit 1
  fi
fi
arch=${GOARCH:-$(go env GOARCH)}

work=$(mktemp -d "${TMPDIR:-/tmp}/grayzone-image.XXXXXX")
trap 'rm -rf "$work"' EXIT

# The build context: the Dockerfile, the binary, rootfs/ and empty/.
ctx="$work/context"
mkdir -p "$ctx/rootfs/etc" "$ctx/rootfs/tmp" "$ctx/empty"
chmod 1777 "$ctx/rootfs/tmp"
echo 'nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin' > "$ctx/rootfs/etc/passwd"
echo 'nonroot:x:65532:' > "$ctx/rootfs/etc/group"
cp "$root/Dockerfile" "$ctx/Dockerfile"

start=$(date +%s)
echo "build.sh: go build ./cmd/grayzone (linux/$arch, static)" >&2
(cd "$root" && CGO_ENABLED=0 GOOS=linux GOARCH="$arch" go build -trimpath -ldflags="-s -w" -o "$ctx/grayzone" ./cmd/grayzone)
built=$(date +%s)

echo "build.sh: $builder: $tag" >&2
case "$builder" in
  buildah)
    # Storage, run state and temporary files all under $work.
    mkdir -p "$work/tmp"
    b=(env TMPDIR="$work/tmp" buildah --root "$work/storage" --runroot "$work/run" --storage-driver vfs)
    "${b[@]}" bud --quiet --isolation chroot --arch "$arch" --pull=never -t "$tag" -f "$ctx/Dockerfile" "$ctx" </dev/null >/dev/null
    rm -f "$out"
    "${b[@]}" push --quiet "$tag" "oci-archive:$out:$tag" </dev/null
    ;;
  docker)
    if docker buildx version >/dev/null 2>&1; then
      docker buildx build --platform "linux/$arch" -t "$tag" --output "type=oci,dest=$out" "$ctx" </dev/null
    else
      # docker save writes an OCI image layout (with Docker's manifest.json
      # beside it) from Docker 25 on.
      docker build --platform "linux/$arch" -t "$tag" "$ctx" </dev/null
      docker save -o "$out" "$tag"
    fi
    ;;
  *)
    echo "build.sh: BUILDER=$builder: want buildah or docker" >&2
    exit 2
    ;;
esac

bin=$(stat -c %s "$ctx/grayzone")
tarsz=$(stat -c %s "$out")
mib() { awk -v b="$1" 'BEGIN {printf "%.1f MiB", b / 1048576}'; }
echo "build.sh: $tag -> $out: archive $(mib "$tarsz") (binary $(mib "$bin")); go build $((built - start))s, image $(( $(date +%s) - built ))s" >&2
