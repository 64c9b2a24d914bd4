#!/usr/bin/python3
"""Latency: submit to workbook for a 50-video niche, nf-ytsim without
injected latency, one of each real worker, the built-in architect. Each run
is `nf-submit NICHE --count 50 --wait -o FILE.xlsx` timed from start to
exit (the workbook is on disk when it exits); a new niche each run so no
work is shared. One warm-up run, then RUNS (default 10); prints the median.
Goal: under 0.2 s (issue 28).
    bench/latency.py [RUNS]            (ports 27400..27406)"""
import os, statistics, subprocess, sys, time

from nfbench import BUILD, Bench, median_spread, sim_env, start_pipeline

RUNS = int(sys.argv[1]) if len(sys.argv) > 1 else 10
PORT = int(os.environ.get("NF_BENCH_PORT", "27400"))

b = Bench("latency", PORT)
base = b.ytsim(PORT + 1)
# The production defaults, not the tests' short heartbeats.
c = b.cluster(PORT + 2, NF_HEARTBEAT_MS="1000", NF_RETRY_BASE_MS="1000", NF_RETRY_MAX_MS="60000",
              NF_LOG_LEVEL="warn")
start_pipeline(c, sim_env(base))

times, stages = [], {}
for run in range(RUNS + 1):
    out = os.path.join(b.dir, f"run{run}.xlsx")
    t0 = time.monotonic()
    p = subprocess.run([f"{BUILD}/tools/nf-submit", f"latency niche {run}", "--count", "50", "--wait", "-o", out],
                       env=c.env(), capture_output=True, text=True, timeout=120)
    dt = time.monotonic() - t0
    if p.returncode != 0 or not os.path.getsize(out):
        sys.exit(f"run {run}: nf-submit exited {p.returncode}\n{p.stderr}")
    job = int(p.stdout.split()[0])
    ready = c.query1("SELECT count(*) FROM nf_videos WHERE job_id = %s AND state = 'EXPORTED'", job)
    label = "warm-up" if run == 0 else f"run {run}"
    print(f"  {label}: job {job}, {ready} outliers exported, {dt:.3f} s")
    if run > 0:
        times.append(dt)
        # Where the time went: seconds from the job's creation to the last
        # transition of each stage, then to the workbook and to finished_at.
        rows = c.query("SELECT h.service, extract(epoch FROM max(h.at) - j.created_at) FROM nf_video_history h "
                       "JOIN nf_jobs j ON j.id = h.job_id WHERE h.job_id = %s GROUP BY 1, j.created_at", job)
        rows += c.query("SELECT 'workbook', extract(epoch FROM e.created_at - j.created_at) FROM nf_exports e "
                        "JOIN nf_jobs j ON j.id = e.job_id WHERE e.job_id = %s AND e.format = 'xlsx'", job)
        rows += c.query("SELECT 'finished', extract(epoch FROM finished_at - created_at) FROM nf_jobs "
                        "WHERE id = %s", job)
        for service, secs in rows:
            stages.setdefault(service, []).append(float(secs))

print("  median seconds from submission to the last transition of each stage:")
for service, secs in sorted(stages.items(), key=lambda kv: statistics.median(kv[1])):
    print(f"    {service:10} {statistics.median(secs):.3f}")
print(f"latency, submit to workbook, 50 videos: median {median_spread(times)} s; goal < 0.2 s")
