#!/usr/bin/env bash
# How many requests per second nf-ytsim answers on loopback, so we know it is
# not the bottleneck of the other benchmarks. Starts its own simulator,
# loads it with bench/nf-httpload (libcurl multi, keep-alive) for a mix of the
# scraper's requests (watch pages, timed text, videos.list of 50 ids,
# channels.list, search pages), 3 runs of 5 s, and prints the median last.
#   bench/ytsim.sh [BUILD_DIR] [CONNS]       (defaults: build, 16)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
conns=${2:-16}
port=${NF_BENCH_PORT:-27300}
cmake --build "$build" --target nf-ytsim nf-httpload -j"$(nproc)" >/dev/null
"$build/tools/nf-ytsim" --port "$port" --catalog 5000 --threads "$(nproc)" 2>/dev/null &
sim=$!
trap 'kill $sim 2>/dev/null; wait $sim 2>/dev/null || true' EXIT
base="http://127.0.0.1:$port"
for _ in $(seq 1 50); do curl -sf "$base/_sim/stats" >/dev/null && break; sleep 0.1; done
search=$(curl -sf "$base/youtube/v3/search?q=bench+niche&maxResults=50")
ids=$(printf '%s' "$search" | /usr/bin/python3 -c 'import json,sys; print(",".join(i["id"]["videoId"] for i in json.load(sys.stdin)["items"]))')
chans=$(curl -sf "$base/youtube/v3/videos?id=$ids" | /usr/bin/python3 -c 'import json,sys; print(",".join(sorted({i["snippet"]["channelId"] for i in json.load(sys.stdin)["items"]})))')
urls=("$base/youtube/v3/search?q=bench+niche&maxResults=50" "$base/youtube/v3/videos?id=$ids"
      "$base/youtube/v3/channels?id=$chans")
for id in $(printf '%s' "$ids" | tr , ' ' | cut -d' ' -f1-30); do
  for u in "$base/watch?v=$id" "$base/api/timedtext?v=$id&lang=en&kind=asr"; do
    curl -sf -o /dev/null "$u" && urls+=("$u")   # videos without English captions: left out
  done
done
echo "nf-ytsim on loopback: $(nproc) threads, $conns connections, ${#urls[@]} URLs (watch, timedtext, search, videos, channels)"
rps=()
for run in 1 2 3; do
  line=$("$build/bench/nf-httpload" 5 "$conns" "${urls[@]}")
  echo "  run $run: $line"
  rps+=("$(printf '%s' "$line" | sed -n 's/.* rps \([0-9]*\) .*/\1/p')")
done
median=$(printf '%s\n' "${rps[@]}" | sort -n | sed -n 2p)
echo "nf-ytsim: median ${median} requests/s (3 runs of 5 s)"
