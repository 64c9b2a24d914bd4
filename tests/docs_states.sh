#!/usr/bin/env bash
# docs.states: the README's pipeline and job status tables are what
# `nf-broker states-table` prints from shared/nf_states.c, line for line.
set -euo pipefail
build=$1 readme=$2
missing=0
while IFS= read -r line; do
  [ -n "$line" ] || continue
  if ! grep -qF -- "  $line" "$readme"; then
    echo "README.md lacks: $line" >&2
    missing=$((missing + 1))
  fi
done < <("$build/broker/nf-broker" states-table)
[ "$missing" -eq 0 ] || { echo "update README.md from: nf-broker states-table" >&2; exit 1; }
echo "docs.states: $("$build/broker/nf-broker" states-table | grep -c '^| ') table lines in README.md"
