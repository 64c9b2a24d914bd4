#!/usr/bin/python3
"""Broker memory and claim cost as the database grows: 10,000, 100,000 and
1,000,000 videos (each in a database of its own), of which a tenth are
due: DISCOVERED videos of 'processing' jobs; the rest belong to completed
jobs, in final states (EXPORTED, REJECTED, FAILED), as in a database that
has served many niches. Jobs hold 1,000 videos each.

For each size: a fresh nf-broker starts on the filled database, four
nf-testworker scrape workers (they answer at once) take TASKS due videos
(default 900: fewer than the 1,000 due at
10,000 videos, so no size ends with claims that find nothing), and then the figures:
the broker's resident memory (VmRSS, and its peak VmHWM), the claim
statement's latency (nf_claim_seconds: mean, and the bucket holding the
median) and the commit's. Target: RSS under 64 MiB; claim latency flat.
    bench/memory.py [TASKS] [SIZE...]    (ports 27430..27438)"""
import os, sys, time

from nfbench import Bench, machine, metric, rss_kib

TASKS = int(sys.argv[1]) if len(sys.argv) > 1 else 900
SIZES = [int(a) for a in sys.argv[2:]] or [10_000, 100_000, 1_000_000]
PORT = int(os.environ.get("NF_BENCH_PORT", "27430"))

b = Bench("memory", PORT)
print(f"machine: {machine()}")


def hist(text, name, labels):
    """(mean, bucket bound holding the median) of a histogram, in ms."""
    n = metric(text, f"{name}_count", labels)
    total = metric(text, f"{name}_sum", labels)
    median = None
    for line in text.splitlines():
        if line.startswith(f"{name}_bucket{{") and (not labels or labels in line):
            le = line.split('le="')[1].split('"')[0]
            if float(line.split()[-1]) >= n / 2:
                median = le
                break
    return 1000 * total / n, median


def fill(c, size):
    jobs = size // 1000
    live = max(1, jobs // 10)
    t0 = time.monotonic()
    c.query("INSERT INTO nf_jobs (id, niche, status, phase, options, target) SELECT g, 'memory ' || g, "
            "CASE WHEN g <= %s THEN 'processing' ELSE 'completed' END, CASE WHEN g <= %s THEN 'analyze' "
            "ELSE 'done' END, '{\"count\": 1000}', 10 FROM generate_series(1, %s) g", live, live, jobs)
    c.query("SELECT setval('nf_jobs_id_seq', %s)", jobs)
    c.query("INSERT INTO nf_videos (job_id, video_id, state, meta, next_attempt_at) SELECT 1 + (g - 1) / 1000, "
            "'v' || g, CASE WHEN g <= %s THEN 'DISCOVERED' ELSE (ARRAY['EXPORTED', 'REJECTED', "
            "'FAILED'])[1 + g %% 3] END, jsonb_build_object('title', 'video ' || g, 'views', g, "
            "'channel_title', 'channel ' || g %% 500), now() - interval '1 minute' FROM generate_series(1, %s) g",
            live * 1000, size)
    conn = b.harness.psycopg2.connect(host="127.0.0.1", port=c.pg_port, user="postgres", dbname=c.db)
    conn.autocommit = True
    conn.cursor().execute("VACUUM ANALYZE nf_videos, nf_jobs")
    conn.close()
    return live * 1000, time.monotonic() - t0


rows = []
for size in SIZES:
    # Two port sets taken in turn, so a size never binds what the last one just closed.
    c = b.cluster(PORT + 1 + 4 * (len(rows) % 2), NF_HEARTBEAT_MS="1000", NF_LOG_LEVEL="warn")
    c.start_broker()   # the schema
    b.harness.stop_procs([c.broker])
    due, secs = fill(c, size)
    broker = c.start_broker()
    rss0 = rss_kib(broker.pid)
    want = min(TASKS, due)
    t0 = time.monotonic()
    workers = [c.worker("scrape", tag=f"w{i}") for i in range(4)]
    c.wait(lambda: (metric(c.metrics_text(), "nf_tasks_completed_total", 'service="scrape"') or 0) >= want, 300,
           f"{want} tasks")
    took = time.monotonic() - t0
    time.sleep(1.2)   # metrics are rendered once a second
    text = c.metrics_text()
    with open(f"/proc/{broker.pid}/status") as f:
        hwm = int([line for line in f if line.startswith("VmHWM:")][0].split()[1])
    rss = rss_kib(broker.pid)
    claim = hist(text, "nf_claim_seconds", 'service="scrape"')
    commit = hist(text, "nf_commit_seconds", "")
    claims = int(metric(text, "nf_claim_seconds_count", 'service="scrape"'))
    claimed = metric(text, "nf_tasks_dispatched_total", 'service="scrape"') + \
        metric(text, "nf_queue_claimed", 'service="scrape"')
    per_task = claim[0] * claims / claimed
    print(f"  {size:>9,} videos ({due:,} due; filled in {secs:.0f} s): RSS {rss0 / 1024:.1f} MiB at start, "
          f"{rss / 1024:.1f} MiB after {want:,} tasks in {took:.1f} s (peak {hwm / 1024:.1f} MiB); {claims} claims, "
          f"mean {claim[0]:.2f} ms (median <= {claim[1]} s), {per_task * 1000:.0f} us per task claimed; "
          f"commits mean {commit[0]:.2f} ms")
    rows.append((size, rss, hwm, claim[0], per_task))
    b.harness.stop_procs([broker] + workers)
    b.clusters.remove(c)

print("   videos  RSS MiB  peak MiB  claim ms  us/task")
for size, rss, hwm, claim, per_task in rows:
    print(f"{size:>9,} {rss / 1024:8.1f} {hwm / 1024:9.1f} {claim:9.2f} {per_task * 1000:8.0f}")
worst = max(r[2] for r in rows) / 1024
print(f"broker memory: peak RSS {worst:.1f} MiB (target < 64 MiB); claim latency {rows[0][3]:.2f} ms at "
      f"{rows[0][0]:,} rows, {rows[-1][3]:.2f} ms at {rows[-1][0]:,} rows (ratio {rows[-1][3] / rows[0][3]:.2f}; "
      f"per task claimed {rows[-1][4] / rows[0][4]:.2f})")
