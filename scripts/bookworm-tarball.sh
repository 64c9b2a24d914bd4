#!/usr/bin/env bash
# A minimal Debian 12 root made by debootstrap from the Debian mirror this
# machine's apt already uses, kept as a tarball in NF_FRESH_CACHE (default
# /var/cache/nicheflow) so that later runs skip the download; prints its
# path. Used by scripts/fresh-root.sh (a fresh machine for the README's
# commands) and deploy/base-image.sh (a base image for an engine with no
# registry). Root only.
set -euo pipefail
[ "$(id -u)" -eq 0 ] || { echo "bookworm-tarball: needs root (debootstrap)" >&2; exit 2; }
cache=${NF_FRESH_CACHE:-/var/cache/nicheflow}
tarball=$cache/debootstrap-bookworm-minbase.tar.gz
[ -s "$tarball" ] && { echo "$tarball"; exit 0; }

# The Debian mirror this machine already uses (its apt sources), never a
# host of our own choosing.
uri=$(sed -n 's/^URIs: *\([^ ]*\).*/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n1)
[ -n "$uri" ] || uri=$(awk '$1 == "deb" && $3 ~ /^bookworm$/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null)
[ -n "$uri" ] || { echo "bookworm-tarball: no Debian mirror in /etc/apt sources" >&2; exit 1; }
if ! command -v debootstrap >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
fi
echo "== bookworm-tarball: debootstrap bookworm (minbase) from $uri into a tarball in $cache" >&2
mkdir -p "$cache"
build=$(mktemp -d /var/tmp/nf-debootstrap.XXXXXX)
trap 'rm -rf "$build" "$build.log"' EXIT
debootstrap --variant=minbase bookworm "$build" "$uri" >"$build.log" 2>&1 \
  || { tail -n 30 "$build.log" >&2; exit 1; }
tar -C "$build" -czf "$tarball.part" . && mv "$tarball.part" "$tarball"
echo "$tarball"
