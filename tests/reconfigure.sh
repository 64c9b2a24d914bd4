#!/usr/bin/env bash
# build.reconfigure: configuring a build directory a second time, with the
# same flags or with the defaults spelt out (as scripts/demo.sh and
# scripts/test.sh do), must leave every object's compile flags as they were,
# or the next build recompiles everything (issue 20). Configures only (a few
# seconds), in a folder of its own that it deletes.
set -euo pipefail
src=$1
dir=$(mktemp -d /tmp/nf-reconf.XXXXXX)
trap 'rm -rf "$dir"' EXIT
cmake -S "$src" -B "$dir/b" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
(cd "$dir/b" && find . -name flags.make | sort | xargs cat) >"$dir/first"
[ -s "$dir/first" ] || { echo "no flags.make written by the first configure" >&2; exit 1; }
cmake -S "$src" -B "$dir/b" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNF_WERROR=ON >/dev/null
(cd "$dir/b" && find . -name flags.make | sort | xargs cat) >"$dir/second"
if ! diff -u "$dir/first" "$dir/second"; then
  echo "the second configure changed the compile flags (above): every object would rebuild" >&2
  exit 1
fi
echo "reconfigure: $(grep -c '^C_FLAGS' "$dir/first") targets, flags unchanged"
