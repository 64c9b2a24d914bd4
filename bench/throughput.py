#!/usr/bin/python3
"""Pipeline throughput: a 5,000-video niche from nf-ytsim (no injected
latency) through every stage with the built-in architect, on a durable
PostgreSQL (fsync and synchronous_commit on). Videos/s and video state
transitions/s (rows of nf_video_history) from submission to the job's
finished_at. In the same run, pgbench -N (one commit per single-row update
transaction) against the same server with 8 clients and 2 threads
(-c 8 -j 2), where PostgreSQL groups commits as it does for the broker's
batches: the figure printed last is the ratio transitions/s : that TPS
(goal >= 1.0). The single-client TPS is printed as a note only: it moves
with the disk's flush latency more than with anything nicheflow does.
    bench/throughput.py [RUNS] [VIDEOS]      (defaults 3, 5000; ports 27410..27416)
Workers: NF_BENCH_SCRAPERS scrapers (default 4), 2 sanitizers, 2 geo
validators, one of each other stage."""
import os, statistics, sys, time

from nfbench import Bench, machine, median_spread, sim_env, start_pipeline, wait_job

RUNS = int(sys.argv[1]) if len(sys.argv) > 1 else 3
VIDEOS = int(sys.argv[2]) if len(sys.argv) > 2 else 5000
PORT = int(os.environ.get("NF_BENCH_PORT", "27410"))
SCRAPERS = int(os.environ.get("NF_BENCH_SCRAPERS", "4"))

b = Bench("throughput", PORT)
base = b.ytsim(PORT + 1, "--catalog", str(VIDEOS + VIDEOS // 5))
c = b.cluster(PORT + 2, NF_HEARTBEAT_MS="1000", NF_RETRY_BASE_MS="1000", NF_RETRY_MAX_MS="60000",
              NF_LOG_LEVEL="warn")
env = sim_env(base)
nworkers = start_pipeline(c, env, scrapers=SCRAPERS, sanitizers=2, geos=2)
print(f"machine: {machine()}; {nworkers} worker processes ({SCRAPERS} scrapers)")

vps, tps = [], []
for run in range(1, RUNS + 1):
    t0 = time.monotonic()
    job = c.submit(f"throughput niche {run}", count=VIDEOS)
    status = wait_job(c, job, 900)
    wall = time.monotonic() - t0
    videos = c.query1("SELECT count(*) FROM nf_videos WHERE job_id = %s", job)
    transitions = c.query1("SELECT count(*) FROM nf_video_history WHERE job_id = %s", job)
    secs = float(c.query1("SELECT extract(epoch FROM finished_at - created_at) FROM nf_jobs WHERE id = %s", job))
    states = dict(c.query("SELECT state, count(*) FROM nf_videos WHERE job_id = %s GROUP BY 1", job))
    if status != "completed" or videos < VIDEOS:
        sys.exit(f"run {run}: job {job} ended {status} with {videos} videos: {states}")
    vps.append(videos / secs)
    tps.append(transitions / secs)
    print(f"  run {run}: job {job} {status}, {videos} videos, {transitions} transitions in {secs:.2f} s "
          f"(wall {wall:.2f} s): {videos / secs:.0f} videos/s, {transitions / secs:.0f} transitions/s; {states}")

pg = {}
for clients in (1, 8):
    pg[clients] = [b.pgbench(10, clients) for _ in range(RUNS)]
    print(f"  pgbench -N -c {clients}, {RUNS} x 10 s: TPS {median_spread(pg[clients])}")
one, eight = statistics.median(pg[1]), statistics.median(pg[8])
t = statistics.median(tps)
print(f"pipeline: videos/s {median_spread(vps)}; transitions/s {median_spread(tps)}")
print(f"  note: against pgbench -N with 1 client (its default; it follows the disk's flush latency): "
      f"{t / one:.2f}")
print(f"throughput: {t:.0f} transitions/s : {eight:.0f} TPS of pgbench -N -c 8 -j 2 = ratio {t / eight:.2f}; "
      f"goal >= 1.0")
