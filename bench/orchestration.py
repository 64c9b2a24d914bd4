#!/usr/bin/python3
"""Orchestration alone: the broker dispatching a VIDEOS-video job through
every stage to nf-testworker processes that answer at once (one per stage,
two scrapers), on a durable PostgreSQL. Transitions/s (rows of
nf_video_history) from submission to the job's finished_at, and the CPU
seconds the broker and PostgreSQL spent per 1,000 transitions. In the same
run, on the same PostgreSQL, bench/floor.py's ceiling (the broker's own
per-video statements with no broker and no workers), and the peer: River
(bench/peer_river, Go, from the Go module proxy), chains of no-op jobs
through as many stages on the same PostgreSQL. Every run of each of the
three has a database of its own. The ratios orchestration :
floor (goal >= 0.8) and orchestration : River (goal >= 1.5) are printed
last.

    bench/orchestration.py [RUNS] [VIDEOS]     (defaults 3, 5000; ports 27470..27478)"""
import os, re, shutil, statistics, subprocess, sys, time

from floor import floor_runs
from nfbench import SRC, Bench, machine, median_spread, metric, wait_job

RUNS = int(sys.argv[1]) if len(sys.argv) > 1 else 3
VIDEOS = int(sys.argv[2]) if len(sys.argv) > 2 else 5000
PORT = int(os.environ.get("NF_BENCH_PORT", "27470"))
HZ = os.sysconf("SC_CLK_TCK")


def cpu_s(pids):
    """User + system CPU seconds of PIDS (and their threads) so far."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except OSError:
            pass
    return total / HZ


def postgres_pids(pgdir):
    """The PostgreSQL server of the bench (its postmaster and backends)."""
    with open(os.path.join(pgdir, "data", "postmaster.pid")) as f:
        master = int(f.readline())
    kids = [int(p) for p in os.listdir("/proc") if p.isdigit() and _ppid(int(p)) == master]
    return [master, *kids]


def _ppid(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except OSError:
        return None


b = Bench("orchestration", PORT)
workers = ["discover", "scrape", "scrape", "sanitize", "geo", "analyze", "architect", "export"]
print(f"machine: {machine()}; {len(workers)} nf-testworker processes")

# Each run (the broker's, the floor's and River's) on a database of its
# own: a run on the tables of the runs before it pays for their rows, and
# the three would pay unequally.
rates, cpu_broker, cpu_pg, per_commit = [], [], [], []
for run in range(1, RUNS + 1):
    c = b.cluster(PORT + 1, NF_HEARTBEAT_MS="1000", NF_LOG_LEVEL="warn")
    c.start_broker()
    for i, s in enumerate(workers):
        c.worker(s, tag=f"w{i}")
    c.wait(lambda: all(c.mmi(s) == "200" for s in set(workers)), 30, "a worker of every stage")
    pg = postgres_pids(b.pgdir)
    b0, p0 = cpu_s([c.broker.pid]), cpu_s(pg)
    time.sleep(1.1)   # the metrics are rendered once a second
    k0 = metric(c.metrics_text(), "nf_commit_seconds_count")
    job = c.submit(f"orchestration {run}", count=VIDEOS, top_n=10)
    status = wait_job(c, job, 600)
    pg = postgres_pids(b.pgdir)   # backends come and go: count the ones there now
    b1, p1 = cpu_s([c.broker.pid]), cpu_s(pg)
    time.sleep(1.1)
    commits = metric(c.metrics_text(), "nf_commit_seconds_count") - k0
    n = c.query1("SELECT count(*) FROM nf_video_history WHERE job_id = %s", job)
    secs = float(c.query1("SELECT extract(epoch FROM finished_at - created_at) FROM nf_jobs WHERE id = %s", job))
    if status != "completed":
        sys.exit(f"run {run}: job {job} ended {status}")
    rates.append(n / secs)
    cpu_broker.append((b1 - b0) / n * 1000)
    cpu_pg.append((p1 - p0) / n * 1000)
    per_commit.append(n / commits)
    print(f"  orchestration run {run}: job {job} {status}, {n} transitions in {secs:.2f} s, {commits:.0f} cycles "
          f"({n / commits:.0f} transitions per commit): {n / secs:.0f} transitions/s; CPU per 1,000 transitions: "
          f"broker {cpu_broker[-1]:.3f} s, PostgreSQL {cpu_pg[-1]:.3f} s", flush=True)
    b.harness.stop_procs(c.procs)

# The floor with the broker's own batching: as many transitions a commit as
# its cycles held in the runs above.
floor = floor_runs(b, PORT + 5, RUNS, VIDEOS, round(statistics.median(per_commit)))


def river(runs, videos):
    """bench/peer_river on a database of its own on the same server: its
    runs' transitions/s, or None without a Go toolchain."""
    go = shutil.which("go") or ("/usr/local/go/bin/go" if os.path.exists("/usr/local/go/bin/go") else None)
    if not go:
        print("  river: skipped, no Go toolchain here (the Go module proxy serves River)")
        return None
    exe = os.path.join(b.dir, "peer_river")
    subprocess.run([go, "build", "-o", exe, "."], cwd=os.path.join(SRC, "bench", "peer_river"), check=True)
    got = []
    for run in range(1, runs + 1):
        db = f"river{run}"
        subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(PORT), "-U", "postgres", "-qc",
                        f"CREATE DATABASE {db}"], check=True)
        p = subprocess.run([exe, "-db", f"postgres://postgres@127.0.0.1:{PORT}/{db}?sslmode=disable",
                            "-videos", str(videos), "-runs", "1"], capture_output=True, text=True,
                           timeout=1800)
        if p.returncode != 0:
            sys.exit(f"river run {run}: peer_river exited {p.returncode}\n{p.stdout[-2000:]}{p.stderr[-2000:]}")
        rate = [float(m) for m in re.findall(r"^  river run \d+: .*: (\d+) transitions/s$", p.stdout, re.M)]
        print(f"  river run {run}: {rate[0]:.0f} transitions/s", flush=True)
        got += rate
    return got


peer = river(RUNS, VIDEOS)
o, f = statistics.median(rates), statistics.median(floor)
print(f"orchestration: transitions/s {median_spread(rates)}; floor {median_spread(floor)}; "
      f"CPU per 1,000 transitions: broker {median_spread(cpu_broker)} s, PostgreSQL {median_spread(cpu_pg)} s")
if peer:
    r = statistics.median(peer)
    print(f"orchestration : River = {o:.0f} : {r:.0f} (River {median_spread(peer)}) = ratio {o / r:.2f}; "
          f"goal >= 1.5")
print(f"orchestration : floor = {o:.0f} : {f:.0f} = ratio {o / f:.2f}; goal >= 0.8")
