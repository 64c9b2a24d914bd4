#!/usr/bin/python3
"""The ceiling of the broker's database work on this machine: nicheflow's
own per-video statements, as the broker prepares them (`nf-broker
statements`), run straight against a durable PostgreSQL with no broker and
no workers. Each transaction is one cycle as nf_cycle.c makes it: the
planner settings, the OK batch of every stage that has replies (the claims
of the transaction before, answered at once with no output), then a claim
of up to BATCH / 3 tasks for each of the three stages, so that a commit
holds about BATCH transitions (the broker's cycles hold 50 to 75); one
commit. VIDEOS videos of one
job are created (one transaction: the rows and their history, as
discovery's reply makes them), then go from DISCOVERED through scrape,
sanitize and geo to VALIDATED: four transitions each, every one a history
row, as in the pipeline (which adds about 30 a job for analyze, architect
and export).
Prints transitions/s per run, then the median last.

    bench/floor.py [RUNS] [VIDEOS] [BATCH]     (defaults 3, 5000, 50; ports 27460..27464)

bench/orchestration.py measures the broker against this floor in one run
(floor_runs below)."""
import json, os, statistics, subprocess, sys, time

from nfbench import BUILD, Bench, machine, median_spread

CHAIN = ("scrape", "sanitize", "geo")


def statements():
    """The broker's planner settings and its per-video statements by service."""
    doc = json.loads(subprocess.run([f"{BUILD}/broker/nf-broker", "statements"], check=True,
                                    capture_output=True, text=True).stdout)
    return doc["plan"], {s["service"]: s for s in doc["stages"]}


def schema(b, port):
    """A database with the broker's schema (the broker applies its
    migrations on PORT.., then stops); the harness cluster it belongs to."""
    c = b.cluster(port, NF_LOG_LEVEL="warn")
    c.start_broker()
    b.harness.stop_procs([c.broker])
    return c


def floor_run(c, videos, batch, plan, stmts, max_attempts=5, lease_ms=300000):
    """One run: a new job of VIDEOS videos through CHAIN in cycles of
    about BATCH transitions. (transitions, seconds, transactions)."""
    import psycopg2
    conn = psycopg2.connect(host="127.0.0.1", port=c.pg_port, user="postgres", dbname=c.db)
    cur = conn.cursor()
    cur.execute("INSERT INTO nf_jobs (niche, status, phase) VALUES ('floor', 'processing', 'analyze') "
                "RETURNING id")
    job = cur.fetchone()[0]
    for s in CHAIN:
        q = stmts[s]
        cur.execute(f"PREPARE {s}_claim AS {q['claim']}")
        cur.execute(f"PREPARE {s}_ok AS {q['ok']}")
    conn.commit()
    pending = {s: [] for s in CHAIN}
    owner = "floor"
    per_stage = max(1, -(-batch // len(CHAIN)))
    txns, t0 = 1, time.monotonic()
    # The creation, as discovery's reply makes it: the videos with columns
    # about the size a discovered video's are, and a history row each, in
    # one transaction.
    cur.execute("WITH i AS (INSERT INTO nf_videos (job_id, video_id, state, meta) SELECT %s, "
                "'v' || lpad(g::text, 10, '0'), 'DISCOVERED', jsonb_build_object('title', repeat('t', 60), "
                "'channel_id', 'UC' || g, 'views', g * 37, 'published', '2026-05-01T00:00:00Z') FROM "
                "generate_series(1, %s) g RETURNING video_id, state) INSERT INTO nf_video_history (job_id, "
                "video_id, from_state, to_state, service, attempt) SELECT %s, video_id, NULL, state, 'discover', 1 "
                "FROM i", (job, videos, job))
    conn.commit()
    while True:
        cur.execute(plan)
        for s in CHAIN:
            if pending[s]:
                rows = [{"job_id": j, "video_id": v, "token": t, "attempt": a} for t, j, v, a in pending[s]]
                q = stmts[s]
                cur.execute(f"EXECUTE {s}_ok (%s, %s, %s, %s)", (json.dumps(rows), q["state_in"], s, q["state_out"]))
                cur.fetchall()
        claimed = 0
        for s in CHAIN:
            cur.execute(f"EXECUTE {s}_claim (%s, %s, %s, %s, %s)",
                        (stmts[s]["state_in"], str(max_attempts), str(per_stage), owner, str(lease_ms)))
            pending[s] = [(r[0], r[1], r[2], r[3]) for r in cur.fetchall()]
            claimed += len(pending[s])
        conn.commit()
        txns += 1
        if not claimed:
            break
    secs = time.monotonic() - t0
    cur.execute("SELECT count(*) FROM nf_video_history WHERE job_id = %s", (job,))
    transitions = cur.fetchone()[0]
    cur.execute("SELECT count(*) FROM nf_videos WHERE job_id = %s AND state = 'VALIDATED'", (job,))
    done = cur.fetchone()[0]
    conn.close()
    if done != videos or transitions != videos * (len(CHAIN) + 1):
        raise RuntimeError(f"floor: {done} of {videos} videos VALIDATED, {transitions} transitions")
    return transitions, secs, txns


def floor_runs(b, port, runs, videos, batch, label="floor"):
    """RUNS floor runs on Bench B's PostgreSQL, each on a database of its
    own (a broker on PORT.. applies the schema), so that no run pays for
    the rows of the one before: the ceiling is the best case; prints each;
    the list of transitions/s."""
    plan, stmts = statements()
    rates = []
    for run in range(1, runs + 1):
        c = schema(b, port)
        n, secs, txns = floor_run(c, videos, batch, plan, stmts)
        rates.append(n / secs)
        print(f"  {label} run {run}: {n} transitions in {secs:.2f} s, {txns} transactions "
              f"({n / txns:.0f} transitions per commit): {n / secs:.0f} transitions/s", flush=True)
    return rates


if __name__ == "__main__":
    RUNS = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    VIDEOS = int(sys.argv[2]) if len(sys.argv) > 2 else 5000
    BATCH = int(sys.argv[3]) if len(sys.argv) > 3 else 50
    PORT = int(os.environ.get("NF_BENCH_PORT", "27460"))
    b = Bench("floor", PORT)
    print(f"machine: {machine()}; {VIDEOS} videos x {len(CHAIN)} stages, about {BATCH} transitions a commit")
    rates = floor_runs(b, PORT + 1, RUNS, VIDEOS, BATCH)
    print(f"floor: {statistics.median(rates):.0f} transitions/s ({min(rates):.0f}..{max(rates):.0f}, n={len(rates)})")
