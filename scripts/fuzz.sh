#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/, clang), makes their seed corpora from
# nf-ytsim's answers, and runs each target for SECONDS (default 60), two at a
# time. Prints executions and crashes per target; exits 1 when any target
# found a crash (the input is kept in build-fuzz/artifacts/TARGET/).
#   bash scripts/fuzz.sh [SECONDS] [TARGET...]
# The working corpora in build-fuzz/corpus/ grow from run to run.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
secs=${1:-60}; shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(proto youtube timedtext template sanitize llm)
bash scripts/deps.sh
build=$root/build-fuzz
port=${NF_FUZZ_PORT:-27190}

echo "== build $build (clang, -DNF_FUZZ=ON)"
cmake -S . -B "$build" -DCMAKE_C_COMPILER=clang -DNF_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$(nproc)" --target fuzz_all nf-ytsim >/dev/null

echo "== seeds from nf-ytsim (127.0.0.1:$port)"
rm -rf "$build/seeds"
# --legacy: the old YouTube answers unsigned timed text and ungated watch pages,
# which gives the parsers real bodies to start from (today's answers them empty).
ASAN_OPTIONS=detect_leaks=0 "$build/tools/nf-ytsim" --port "$port" --seed 3 --catalog 500 --legacy \
  >"$build/ytsim.log" 2>&1 &
sim=$!
trap 'kill "$sim" 2>/dev/null || true; wait "$sim" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.1
done
/usr/bin/python3 fuzz/seeds.py "http://127.0.0.1:$port" "$build/seeds"
kill "$sim"; wait "$sim" 2>/dev/null || true
trap - EXIT

run_one() {   # run_one TARGET: the fuzzer's log goes to build-fuzz/logs/TARGET.log
  local t=$1
  rm -rf "$build/artifacts/$t"
  mkdir -p "$build/corpus/$t" "$build/artifacts/$t" "$build/logs"
  local rc=0
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    "$build/fuzz/fuzz_$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$build/artifacts/$t/" \
    "$build/corpus/$t" "$build/seeds/$t" >"$build/logs/$t.log" 2>&1 || rc=$?
  echo "$rc" >"$build/logs/$t.rc"
}

echo "== fuzz ${targets[*]}: ${secs}s each, $(nproc) at a time"
running=0
for t in "${targets[@]}"; do
  run_one "$t" &
  running=$((running + 1))
  if [ "$running" -ge "$(nproc)" ]; then wait -n; running=$((running - 1)); fi
done
wait

fail=0
printf '%-12s %12s %8s %8s %s\n' target execs "exec/s" crashes corpus
for t in "${targets[@]}"; do
  log=$build/logs/$t.log
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  crashes=$(find "$build/artifacts/$t" -type f | wc -l)
  rc=$(cat "$build/logs/$t.rc")
  corpus=$(find "$build/corpus/$t" -type f | wc -l)
  printf '%-12s %12s %8s %8s %s\n' "$t" "${execs:-?}" "${rate:-?}" "$crashes" "$corpus"
  if [ "$rc" != 0 ] || [ "$crashes" != 0 ] || [ -z "$execs" ]; then
    fail=1
    echo "fuzz_$t: exit $rc; the end of its log ($log):" >&2
    tail -30 "$log" >&2
  fi
done
exit $fail
