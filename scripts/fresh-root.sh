#!/usr/bin/env bash
# The README's two commands on a fresh Debian 12, as a new user runs them:
# a minimal root made by debootstrap (kept as a tarball in NF_FRESH_CACHE,
# default /var/cache/nicheflow, so later runs skip the download), this
# checkout cloned into its /root (0700, as on any Debian), the fixtures of
# ../shared beside the clone when they are here, then, as root with no
# terminal and CI=true:
#     bash scripts/demo.sh        then        bash scripts/test.sh
# exactly as README.md writes them. Prints the time each took.
#
# Root only (debootstrap, chroot, mounts). The root runs in a mount
# namespace of its own (unshare -m), so its /proc, /sys, /dev and /run
# mounts vanish with it; the folder is deleted afterwards, also on failure.
# Services inside run on the host's loopback, like the host's own tests,
# so run this when the host's suite is done (scripts/test.sh runs it last).
# NF_FRESH_KEEP=1 keeps the folder for a look.
set -euo pipefail
cd "$(dirname "$0")/.."
src=$PWD
[ "$(id -u)" -eq 0 ] || { echo "fresh-root: needs root (debootstrap, chroot)" >&2; exit 2; }
t0=$(date +%s)

tarball=$(bash scripts/bookworm-tarball.sh)
t_base=$(date +%s)

root=$(mktemp -d /var/tmp/nf-fresh.XXXXXX)
cleanup() {
  local rc=$?
  # The mounts lived in unshare's namespace; make sure none is left before deleting.
  if findmnt -rn -o TARGET | grep -q "^$root/"; then
    echo "fresh-root: mounts left under $root; not deleting it" >&2
  elif [ "${NF_FRESH_KEEP:-0}" = 1 ]; then
    echo "fresh-root: kept $root"
  else
    rm -rf "$root"
  fi
  exit $rc
}
trap cleanup EXIT
tar -C "$root" -xzf "$tarball"
chmod 755 "$root"   # it is /: every user must be able to enter it (mktemp and tar left 0700)
# What a fresh install has: the same apt sources as this machine, DNS, and no
# service started by a package's install (the Debian convention for chroots).
if cp /etc/apt/sources.list.d/debian.sources "$root/etc/apt/sources.list.d/" 2>/dev/null; then
  rm -f "$root/etc/apt/sources.list"   # debootstrap's own would list the mirror twice
else
  cp /etc/apt/sources.list "$root/etc/apt/sources.list"
fi
cp -L /etc/resolv.conf "$root/etc/resolv.conf"
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 755 "$root/usr/sbin/policy-rc.d"
chmod 700 "$root/root"
# The clone, as a user makes it, of what is committed here.
git clone -q "$src" "$root/root/nicheflow"
[ -d "$src/../shared" ] && cp -a "$src/../shared" "$root/root/shared"
echo "== fresh-root: a fresh Debian 12 in $root, the clone in /root/nicheflow"
echo "   (base image $((t_base - t0)) s)"

# git is what a user has to clone with; the README's commands bring the rest.
inner='set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq && apt-get install -y -qq --no-install-recommends git ca-certificates >/dev/null
cd /root/nicheflow
t=$(date +%s)
bash scripts/demo.sh
echo "fresh-root: demo.sh took $(( $(date +%s) - t )) s"
t=$(date +%s)
bash scripts/test.sh
echo "fresh-root: test.sh took $(( $(date +%s) - t )) s"'
unshare -m --propagation private bash -c '
  set -e
  root=$1
  mount --bind "$root" "$root"   # / a mount point of its own, as ip netns needs (make-rslave /)
  mount -t proc proc "$root/proc"
  mount --rbind /sys "$root/sys"
  mount --rbind /dev "$root/dev"
  mount -t tmpfs tmpfs "$root/run"
  mkdir -p "$root/run/netns"
  exec chroot "$root" /usr/bin/env -i HOME=/root TERM=dumb CI=true NF_FRESH_ROOT=1 \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
    bash -c "$2" </dev/null' fresh "$root" "$inner"
echo "fresh-root: both README commands passed in a fresh Debian 12 ($(( $(date +%s) - t0 )) s in all)"
