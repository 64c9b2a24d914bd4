#!/usr/bin/python3
"""Discovery: a 50-video niche with nf-ytsim answering every request after
50 ms (about the Data API's round trip), the discover worker with the
production politeness defaults (NF_HTTP_RATE=2, NF_HTTP_DELAY_MS=200-800,
which hold pages, not Data API calls) and its channels' uploads read on
NF_BASELINE_LANES=4 lanes, against the same worker with one lane, in the
same run: two brokers, one discover worker each, jobs in turn. A run is
the seconds from the job's creation to its discovery reply (the last
`discover` row of nf_video_history); each run a new niche, so no channel
is read twice. RUNS (default 3) of each; prints the medians and the ratio.
    bench/discovery.py [RUNS]            (ports 27480..27491)"""
import os, statistics, sys

from nfbench import Bench, machine, median_spread, sim_env

RUNS = int(sys.argv[1]) if len(sys.argv) > 1 else 3
PORT = int(os.environ.get("NF_BENCH_PORT", "27480"))

b = Bench("discovery", PORT)
base = b.ytsim(PORT + 1, "--latency-ms", "50")
polite = {"NF_HTTP_RATE": "2", "NF_HTTP_BURST": "4", "NF_HTTP_DELAY_MS": "200-800"}
lanes = {}
for k, n in enumerate((1, 4)):
    c = b.cluster(PORT + 2 + 5 * k, NF_LOG_LEVEL="warn")
    env = sim_env(base, NF_BASELINE_LANES=str(n), **polite)
    c.start_broker(env)
    c.real_worker("nf-scraper", "discover", extra=env)
    c.wait(lambda: c.mmi("discover") == "200", 30, "the discover worker")
    lanes[n] = c
print(f"machine: {machine()}; ytsim 50 ms a request")

secs = {1: [], 4: []}
for run in range(RUNS):
    for n, c in lanes.items():
        job = c.submit(f"discovery niche {run} lanes {n}", count=50)
        c.wait(lambda: c.query1("SELECT phase FROM nf_jobs WHERE id = %s", job) != "discover"
               or c.job_status(job) == "failed", 120, f"job {job}'s discovery")
        if c.job_status(job) == "failed":
            sys.exit(f"job {job} failed: {c.query1('SELECT status_reason FROM nf_jobs WHERE id = %s', job)}")
        dt, chans, reqs = c.query(
            "SELECT extract(epoch FROM max(h.at) - j.created_at), count(DISTINCT v.channel_id), j.http_requests "
            "FROM nf_jobs j JOIN nf_video_history h ON h.job_id = j.id AND h.service = 'discover' "
            "JOIN nf_videos v ON v.job_id = j.id WHERE j.id = %s GROUP BY j.id", job)[0]
        secs[n].append(float(dt))
        print(f"  run {run + 1}, {n} lane{'s' if n > 1 else ''}: job {job}, {chans} channels, "
              f"{reqs} requests, {float(dt):.2f} s")

one, four = statistics.median(secs[1]), statistics.median(secs[4])
print(f"discovery of 50 videos at 50 ms a request: 1 lane {median_spread(secs[1])} s, "
      f"4 lanes {median_spread(secs[4])} s; ratio {one / four:.2f}")
