#!/usr/bin/env bash
# stages.added: adding a stage is one row of shared/nf_states.c and one
# worker. Builds nf-broker, nf-testworker and nf-submit again with
# -DNF_EXTRA_STAGE=ON (one more row: 'tag', VALIDATED -> TAGGED, between
# geo and analyze) in a build folder of its own, then runs a job through
# every stage of that build (tests/integration/test_broker.py added_stage).
# Uses the suite's PostgreSQL (the pg fixture); the folder is kept for the
# next run (an incremental build) and its logs.
set -euo pipefail
src=$1 build=$2 pg_port=$3; shift 3
dir=$build/extra-stage
cmake -S "$src" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNF_WERROR=ON -DNF_EXTRA_STAGE=ON \
  -DNF_TEST_PG_PORT="$pg_port" "$@" >"$build/extra-stage.log" 2>&1 \
  || { tail -n 30 "$build/extra-stage.log" >&2; exit 1; }
cmake --build "$dir" -j"$(nproc)" --target nf-broker nf-testworker nf-submit >>"$build/extra-stage.log" 2>&1 \
  || { tail -n 30 "$build/extra-stage.log" >&2; exit 1; }
NF_BUILD_DIR=$dir NF_SOURCE_DIR=$src NF_TEST_PG_PORT=$pg_port PYTHONPATH=$src/tests/integration \
  exec /usr/bin/python3 "$src/tests/integration/test_broker.py" added_stage
