#!/usr/bin/env bash
# Refreshes the vendored uPlot in assets/vendor from the npm registry. The
# dashboard embeds these files so that it works with no network at all; run
# this only to move to another version, then review the diff and update the
# version in assets/vendor/README.md.
#
#   server/dashboard/vendor.sh            # the version pinned below
#   server/dashboard/vendor.sh 1.6.32     # another version
set -euo pipefail
version="${1:-1.6.32}"
dest="$(cd "$(dirname "$0")" && pwd)/assets/vendor"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
npm pack --silent "uplot@${version}" >/dev/null
tar -xzf "uplot-${version}.tgz"
cp package/dist/uPlot.iife.min.js package/dist/uPlot.min.css "$dest/"
cp package/LICENSE "$dest/LICENSE"
echo "uPlot ${version} copied to ${dest}"
