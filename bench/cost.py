#!/usr/bin/python3
"""Cost per video: HTTP requests, search.list calls and YouTube API quota units per discovered
video for a 500-video niche, counted by nf-ytsim itself (/_sim/stats, per
path) and by the job (nf_jobs.http_requests, quota_units), on a first run
with an empty cache and on a re-run of the same niche within the cache's
TTL (NF_CACHE_DIR). Counts, not times: the same on every machine.
Target: at most 1.1 requests per video on the first run, far fewer on the
re-run.
    bench/cost.py [VIDEOS]      (default 500; ports 27440..27443)"""
import json, os, sys, urllib.request

from nfbench import Bench, sim_env, sim_stats, start_pipeline, wait_job

VIDEOS = int(sys.argv[1]) if len(sys.argv) > 1 else 500
PORT = int(os.environ.get("NF_BENCH_PORT", "27440"))

b = Bench("cost", PORT)
base = b.ytsim(PORT + 1, "--catalog", str(2 * VIDEOS))
c = b.cluster(PORT + 2, NF_HEARTBEAT_MS="1000", NF_LOG_LEVEL="warn")
env = sim_env(base, NF_CACHE_DIR=os.path.join(b.dir, "cache"))
start_pipeline(c, env)

figures = []
for run in ("first run", "cached re-run"):
    urllib.request.urlopen(base + "/_sim/reset", timeout=5).read()
    job = c.submit("cost niche", count=VIDEOS)
    status = wait_job(c, job, 600)
    stats = sim_stats(base)
    videos = c.query1("SELECT count(*) FROM nf_videos WHERE job_id = %s", job)
    http, quota, calls = c.query1("SELECT json_build_array(http_requests, quota_units, search_calls) FROM nf_jobs "
                                  "WHERE id = %s", job)
    paths = {k: v for k, v in stats["requests"].items() if v}
    print(f"  {run}: job {job} {status}, {videos} videos; nf-ytsim served {stats['total']} requests {json.dumps(paths)}, "
          f"{stats['search_calls']} search calls, {stats['quota_used']} units; the job counted {http} requests, "
          f"{calls} search calls, {quota} units")
    if stats["total"] != http:
        print(f"  note: the job's count ({http}) and the simulator's ({stats['total']}) differ")
    figures.append((run, stats["total"] / videos, stats["quota_used"] / videos, stats["search_calls"]))

for run, req, quota, calls in figures:
    print(f"  {run}: {req:.3f} requests and {quota:.2f} quota units per video, {calls} search calls")
print(f"cost per video (today's YouTube, nf-ytsim's default): {figures[0][1]:.3f} requests first run, "
      f"{figures[1][1]:.3f} cached; {figures[0][2]:.2f} and {figures[1][2]:.2f} units, "
      f"{figures[0][3]} and {figures[1][3]} search calls")
