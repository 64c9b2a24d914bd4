#!/usr/bin/python3
"""Where the time of the throughput benchmark goes: the same pipeline as
bench/throughput.py (nf-ytsim without latency, 4 scrapers, 2 sanitizers,
2 geo validators, one of each other stage, durable PostgreSQL), RUNS jobs
of VIDEOS videos, and for each job:

- transitions/s, from submission to the job's finished_at;
- CPU seconds by process name over the job (from /proc/PID/stat, the
  processes alive at its end);
- the broker's cycles (nf_commit_seconds: count and time) and claim
  statements (nf_claim_seconds, by service);
- with NF_PROFILE_SQL=1: PostgreSQL with pg_stat_statements and
  auto_explain, the 20 statements that took the most time, and the plans
  of statements over 3 ms in auto_explain.log next to the logs.

A profiling aid, not a benchmark figure: the pgbench ratio is
bench/throughput.py's. For CPU samples, run `perf record -a -g -- sleep 5`
while a job runs.
    bench/profile.py [RUNS] [VIDEOS]      (defaults 1, 5000; ports 27450..27455)"""
import collections, os, shutil, subprocess, sys, time

from nfbench import Bench, metric, sim_env, start_pipeline, wait_job

RUNS = int(sys.argv[1]) if len(sys.argv) > 1 else 1
VIDEOS = int(sys.argv[2]) if len(sys.argv) > 2 else 5000
PORT = int(os.environ.get("NF_BENCH_PORT", "27450"))
SQL = os.environ.get("NF_PROFILE_SQL") == "1"
HZ = os.sysconf("SC_CLK_TCK")


def cpu_by_pid():
    """pid -> (name, CPU seconds) of every process."""
    out = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        out[pid] = (name, (int(fields[11]) + int(fields[12])) / HZ)
    return out


b = Bench("profile", PORT)
admin = b.harness.psycopg2.connect(host="127.0.0.1", port=PORT, user="postgres", dbname="postgres")
admin.autocommit = True
if SQL:
    admin.cursor().execute("ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements', 'auto_explain'")
    admin.close()
    subprocess.run(["bash", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "pg.sh"),
                    "restart", b.pgdir], check=True)
    admin = b.harness.psycopg2.connect(host="127.0.0.1", port=PORT, user="postgres", dbname="postgres")
    admin.autocommit = True
    for key, value in (("auto_explain.log_min_duration", "'3ms'"), ("auto_explain.log_analyze", "on"),
                       ("auto_explain.log_nested_statements", "on")):
        admin.cursor().execute(f"ALTER SYSTEM SET {key} = {value}")
    admin.cursor().execute("SELECT pg_reload_conf()")
admin.close()
base = b.ytsim(PORT + 1, "--catalog", str(VIDEOS + VIDEOS // 5))
c = b.cluster(PORT + 2, NF_HEARTBEAT_MS="1000", NF_RETRY_BASE_MS="1000", NF_RETRY_MAX_MS="60000",
              NF_LOG_LEVEL="warn")
start_pipeline(c, sim_env(base), scrapers=4, sanitizers=2, geos=2)
if SQL:
    c.query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")

for run in range(1, RUNS + 1):
    if SQL:
        c.query("SELECT pg_stat_statements_reset()")
    before = cpu_by_pid()
    commits0 = metric(c.metrics_text(), "nf_commit_seconds_count") or 0
    job = c.submit(f"profile niche {run}", count=VIDEOS)
    wait_job(c, job, 900)
    after = cpu_by_pid()
    transitions = c.query1("SELECT count(*) FROM nf_video_history WHERE job_id = %s", job)
    secs = float(c.query1("SELECT extract(epoch FROM finished_at - created_at) FROM nf_jobs WHERE id = %s", job))
    cpu = collections.Counter()
    for pid, (name, t) in after.items():
        cpu[name] += t - (before[pid][1] if pid in before and before[pid][0] == name else 0)
    print(f"run {run}: job {job}, {transitions} transitions in {secs:.2f} s = {transitions / secs:.0f}/s; "
          f"CPU {sum(cpu.values()):.2f} s: " + ", ".join(f"{k} {v:.2f}" for k, v in cpu.most_common(8)))
    time.sleep(1.2)  # the metrics are rendered once a second
    text = c.metrics_text()
    cycles = metric(text, "nf_commit_seconds_count") - commits0
    print(f"  broker: {metric(text, 'nf_commit_seconds_count'):.0f} cycles so far "
          f"({cycles:.0f} this job), {metric(text, 'nf_commit_seconds_sum'):.2f} s in them")
    for line in text.splitlines():
        if line.startswith("nf_claim_seconds_sum{") or line.startswith("nf_claim_seconds_count{"):
            print("   ", line)
    if SQL:
        print("  statements by total time (calls, ms, ms a call, rows, text):")
        for row in c.query("SELECT calls, round(total_exec_time::numeric), round((total_exec_time / calls)"
                           "::numeric, 3), rows, left(regexp_replace(query, '\\s+', ' ', 'g'), 100) "
                           "FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT 20"):
            print("   ", *row)
if SQL:
    log = os.path.join(b.dir, "auto_explain.log")
    where = subprocess.run(["bash", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "pg.sh"),
                            "where", b.pgdir], check=True, capture_output=True, text=True).stdout.strip()
    shutil.copy(os.path.join(where, "server.log"), log)
    os.environ["NF_BENCH_KEEP"] = "1"
    print(f"plans of statements over 3 ms: {log}")
