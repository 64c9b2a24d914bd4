#!/usr/bin/env bash
# The main job of the README: one niche through the whole pipeline against
# the built-in YouTube simulator, ending in a workbook in ./out/.
#
#   scripts/demo.sh ["NICHE"] [nf-submit options...]
#       default: "budget travel" --sub-niche "solo female backpacking" --count 200
#       Installs what is missing (apt-get), builds, starts a throwaway
#       PostgreSQL, nf-ytsim, nf-broker and one of each worker, submits the
#       niche, shows the progress, writes out/<niche>-<job>.xlsx (and .csv,
#       .json; -<job>-2.xlsx and so on when an earlier run left that name),
#       prints the path and the time taken, and stops everything it
#       started (by pid), also on Ctrl-C or failure.
#   scripts/demo.sh up
#       The same services and nf-web, left running for trying the web page,
#       nf-submit and nf-monitor by hand: prints the page's address and the
#       settings to source (.nf-run/env) and returns.
#   scripts/demo.sh down
#       Stops what `up` started (by the pids it recorded), drops the database.
#
# Environment: NF_DEMO_PORT (first of 7 loopback ports, default 27100),
# NF_DEMO_BUILD (build folder, default build), NF_DEMO_TIMEOUT (seconds, 600),
# NF_DEMO_KEEP=1 keeps the run folder (logs, database) for a look afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
base=${NF_DEMO_PORT:-27100}
build=${NF_DEMO_BUILD:-build}
timeout=${NF_DEMO_TIMEOUT:-600}
state=$root/.nf-run   # `up` keeps its run folder's name and pids here
t0=$(date +%s)

# stop_all RUN PID...: workers first (each finishes its task in hand), then
# the broker and the simulator; then the database. Only our own pids, and
# only while they still run the program we started.
stop_all() {
  local run=$1; shift
  local pids=("$@") i pid
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    pid=${pids[i]}
    grep -qa 'nf-' "/proc/$pid/cmdline" 2>/dev/null || continue
    kill -TERM "$pid" 2>/dev/null || true
    [ "$i" -le 1 ] || continue   # wait for the broker and simulator one by one
    for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  done
  for pid in "${pids[@]}"; do
    for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  done
  bash tests/pg.sh destroy "$run/pg" >/dev/null 2>&1 || true
}

if [ "${1:-}" = down ]; then
  [ -f "$state/pids" ] || { echo "demo: nothing is up (no $state/pids)"; exit 0; }
  run=$(cat "$state/run")
  mapfile -t pids < "$state/pids"
  stop_all "$run" "${pids[@]}"
  echo "demo: stopped ${#pids[@]} processes; logs were in $run"
  [ "${NF_DEMO_KEEP:-0}" = 1 ] || rm -rf "$run"
  rm -rf "$state"
  exit 0
fi
mode=once
if [ "${1:-}" = up ]; then
  mode=up
  shift
  if [ -f "$state/pids" ]; then
    echo "demo: already up (see $state/env); scripts/demo.sh down first" >&2
    exit 1
  fi
fi

bash scripts/deps.sh
echo "== build ($build)"
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$(nproc)" >/dev/null
t_built=$(date +%s)

run=$(mktemp -d /tmp/nicheflow-demo.XXXXXX)
chmod 755 "$run"
pids=()
cleanup() {
  local rc=$?
  stop_all "$run" "${pids[@]}"
  if [ "${NF_DEMO_KEEP:-0}" = 1 ]; then echo "demo: logs kept in $run"; else rm -rf "$run"; fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

pg=$base; sim=$((base + 1)); wk=$((base + 2)); cl=$((base + 3)); pub=$((base + 4))
echo "== postgres on 127.0.0.1:$pg (throwaway, $run/pg)"
bash tests/pg.sh start "$run/pg" "$pg"
psql -h 127.0.0.1 -p "$pg" -U postgres -d postgres -qc "CREATE DATABASE nicheflow"

cat >"$run/env" <<ENV
export NF_DATABASE_URL="postgresql://postgres@127.0.0.1:$pg/nicheflow"
export NF_WORKERS_BIND="tcp://127.0.0.1:$wk" NF_CLIENTS_BIND="tcp://127.0.0.1:$cl"
export NF_PUB_BIND="tcp://127.0.0.1:$pub" NF_BROKER="tcp://127.0.0.1:$wk"
export NF_BROKER_CLIENTS="tcp://127.0.0.1:$cl" NF_BROKER_PUB="tcp://127.0.0.1:$pub"
export NF_YOUTUBE_API_URL="http://127.0.0.1:$sim/youtube/v3" NF_YOUTUBE_WEB_URL="http://127.0.0.1:$sim"
export NF_YOUTUBE_IMG_URL="http://127.0.0.1:$sim"
export NF_YOUTUBE_API_KEY=demo-key NF_HTTP_RATE=0 NF_HTTP_DELAY_MS=0
export NF_CACHE_DIR="$run/cache" NF_OUTPUT_DIR="$root/out" NF_RETRY_BASE_MS=200
export NF_METRICS_BIND="127.0.0.1:$((base + 5))" NF_WEB_BIND="127.0.0.1:$((base + 6))"
export PATH="$root/$build/tools:\$PATH"
ENV
# shellcheck disable=SC1091
. "$run/env"
mkdir -p "$root/out"

start() {   # start NAME CMD...: log to $run/NAME.log, remember the pid
  local name=$1; shift
  "$@" >"$run/$name.log" 2>&1 </dev/null &
  pids+=($!)
}
start ytsim "$build/tools/nf-ytsim" --port "$sim" --seed 7 --catalog 2000
start broker "$build/broker/nf-broker"
start discover "$build/workers/nf-scraper" discover
start scrape "$build/workers/nf-scraper" scrape
start sanitize "$build/workers/nf-sanitizer"
start geo "$build/workers/nf-geo-validator"
start analyze "$build/workers/nf-analyst"
start architect "$build/workers/nf-architect"
start export "$build/workers/nf-exporter"
submit="$build/tools/nf-submit"
for _ in $(seq 1 50); do   # the broker applies its migrations first
  "$submit" list >/dev/null 2>&1 && break
  sleep 0.2
done

if [ "$mode" = up ]; then
  "$submit" list >/dev/null || { echo "demo: the broker did not come up; see $run/broker.log" >&2; exit 1; }
  start web "$build/tools/nf-web"
  for _ in $(seq 1 50); do grep -q 'listening on' "$run/web.log" && break; sleep 0.1; done
  grep -q 'listening on' "$run/web.log" || { echo "demo: nf-web did not start; see $run/web.log" >&2; exit 1; }
  mkdir -p "$state"
  printf '%s\n' "${pids[@]}" >"$state/pids"
  echo "$run" >"$state/run"
  cp "$run/env" "$state/env"
  trap - EXIT INT TERM
  echo "demo: up (${#pids[@]} processes, logs in $run, metrics on 127.0.0.1:$((base + 5)))"
  echo "  web page: http://$NF_WEB_BIND/   (nf-web; loopback only)"
  echo "  . .nf-run/env                      # the settings nf-submit and nf-monitor need"
  echo "  nf-submit \"budget travel\" --count 100 --wait -o out/budget.xlsx"
  echo "  nf-monitor"
  echo "  scripts/demo.sh down               # stops everything up started"
  exit 0
fi

if [ $# -eq 0 ]; then
  set -- "budget travel" --sub-niche "solo female backpacking" --count 200
fi
echo "== submit: $*"
# --wait shows the progress (bars on a terminal, plain lines otherwise),
# re-reading nf.status every second, and exits 0 completed, 4 partial,
# 5 failed, 6 cancelled, 3 broker unreachable or --timeout.
rc=0
job=$("$submit" "$@" --wait --timeout "$timeout") || rc=$?
job=${job%%$'\n'*}
[ -n "$job" ] || { echo "demo: the broker did not accept the job; see $run/broker.log" >&2; NF_DEMO_KEEP=1; exit 1; }
case $rc in
  0|4) ;;
  *) echo "demo: job $job ended with exit code $rc; see the logs in $run" >&2; NF_DEMO_KEEP=1; exit 1 ;;
esac
# The exporter never overwrites: out/<niche>-<job>.xlsx, or -<job>-<n>.xlsx
# when an earlier run (whose database also numbered from 1) left that name.
file=$(grep -ho "wrote $root/out/[^ ]*\.xlsx" "$run/export.log" | tail -n1 | sed 's/^wrote //' || true)
[ -n "$file" ] || { echo "demo: no workbook for job $job in out/" >&2; exit 1; }
t_end=$(date +%s)
echo "workbook: $file"
echo "demo: pipeline $((t_end - t_built)) s, total $((t_end - t0)) s"
