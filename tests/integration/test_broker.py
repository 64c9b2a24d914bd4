"""Broker integration tests (issue: Foundation). Run one: test_broker.py NAME."""
import os, random, re, shutil, subprocess, tempfile, threading, time, uuid

import msgpack
import zmq

from harness import BUILD, SRC, Cluster, check, eq, run

STAGES3 = ("RAW", "CLEANED", "VALIDATED")


def full_pipeline():
    """A job through every stage with the test worker, then nf-submit reads it back."""
    c = Cluster("full", 26100)
    try:
        log = os.path.join(c.logdir, "broker.log")
        since = os.path.getsize(log) if os.path.exists(log) else 0   # the log of earlier runs stays
        c.start_broker()
        c.all_workers()
        job = c.submit("budget travel", count=30, top_n=10)
        c.wait(lambda: c.job_status(job) == "completed", 30, "job completed")
        eq(c.count_state(job, "EXPORTED"), 10, "exported outliers")
        eq(c.count_state(job, "VALIDATED"), 20, "non-outliers stay VALIDATED")
        eq(c.duplicate_transitions(), 0, "duplicate transitions")
        # Migration 008: the long texts are stored with lz4 (Debian's PostgreSQL 15 has it).
        eq(sorted(c.query("SELECT attname, attcompression FROM pg_attribute WHERE attrelid = 'nf_videos'::regclass "
                          "AND attname IN ('transcript', 'clean_text')")),
           [("clean_text", "l"), ("transcript", "l")], "transcript and clean_text compressed with lz4")
        statuses = [r[0] for r in c.query("SELECT to_status FROM nf_job_history WHERE job_id = %s ORDER BY id", job)]
        eq(statuses, ["pending", "queued", "running", "processing", "completed"], "job history")
        eq(c.query1("SELECT quota_units FROM nf_jobs WHERE id = %s", job), 100, "quota counted")
        env = c.env()
        out = os.path.join(c.logdir, "export.json")
        st = subprocess.run([f"{BUILD}/tools/nf-submit", "status", str(job), "--json"], env=env, capture_output=True, text=True, timeout=10)
        eq(st.returncode, 0, "nf-submit status exit code")
        check('"completed"' in st.stdout, "status output names the state", st.stdout)
        ex = subprocess.run([f"{BUILD}/tools/nf-submit", "export", str(job), "-o", out, "--format", "json"], env=env, capture_output=True, text=True, timeout=10)
        eq(ex.returncode, 0, "nf-submit export exit code")
        eq(open(out).read(), '{"videos":10}', "exported file content")
        # libpq prints a notice on stderr for a result column read out of
        # range (a claim's text column read for a stage without one).
        with open(log, "rb") as f:
            f.seek(since)
            notices = [l for l in f.read().decode(errors="replace").splitlines() if "out of range" in l]
        eq(notices[:3], [], "no libpq notices in the broker's log")
    finally:
        c.stop()


def thousand_tasks():
    """1,000 videos through three stages with 4 workers: each transition exactly once."""
    c = Cluster("thousand", 26110)
    try:
        c.start_broker()
        c.worker("discover")
        c.worker("scrape", tag="s1")
        c.worker("scrape", tag="s2")
        c.worker("sanitize")
        c.worker("geo")
        job = c.submit(count=1000, top_n=10)
        c.wait(lambda: c.count_state(job, "VALIDATED") == 1000, 120, "1000 VALIDATED")
        for state in STAGES3:
            eq(c.query1("SELECT count(*) FROM nf_video_history WHERE job_id = %s AND to_state = %s", job, state), 1000, f"history rows to {state}")
        eq(c.duplicate_transitions(), 0, "duplicate transitions")
        by = dict(c.query("SELECT meta->>'scrape_by', count(*) FROM nf_videos WHERE job_id = %s GROUP BY 1", job))
        check(by.get("s1", 0) > 0 and by.get("s2", 0) > 0, "both scrape workers served", by)
    finally:
        c.stop()


def kill_worker():
    """kill -9 of a worker holding a task: re-dispatched, done, attempt 2 recorded."""
    c = Cluster("killworker", 26120)
    try:
        c.start_broker()
        c.worker("discover")
        slow = c.worker("scrape", "--delay-ms", "5000", tag="slow")
        job = c.submit(count=5, top_n=5)
        c.wait(lambda: c.query1("SELECT count(*) FROM nf_videos WHERE job_id = %s AND state = 'DISCOVERED' AND lease_token IS NOT NULL", job) == 1, 20, "a leased task")
        held = c.query1("SELECT video_id FROM nf_videos WHERE job_id = %s AND lease_token IS NOT NULL", job)
        c.kill9(slow)
        c.wait(lambda: c.query1("SELECT lease_token IS NULL FROM nf_videos WHERE job_id = %s AND video_id = %s", job, held), 10, "lease released on worker death")
        eq(c.query1("SELECT last_error FROM nf_videos WHERE job_id = %s AND video_id = %s", job, held), "worker lost while holding the task", "last error")
        c.worker("scrape", tag="fast")
        c.wait(lambda: c.count_state(job, "RAW") == 5, 20, "all scraped")
        eq(c.query1("SELECT attempt FROM nf_video_history WHERE job_id = %s AND video_id = %s AND to_state = 'RAW'", job, held), 2, "attempt of the re-dispatched task")
        eq(c.query1("SELECT meta->>'scrape_by' FROM nf_videos WHERE job_id = %s AND video_id = %s", job, held), "fast", "done by the survivor")
        eq(c.duplicate_transitions(), 0, "duplicate transitions")
    finally:
        c.stop()


def always_fails():
    """A task that always fails ends FAILED after max_attempts with its error; others complete."""
    c = Cluster("alwaysfails", 26130, NF_MAX_ATTEMPTS="3")
    try:
        c.start_broker()
        c.worker("discover")
        c.worker("scrape", "--mode", "fail", "--match", "v00007")
        c.worker("sanitize")
        c.worker("geo")
        job = c.submit(count=12, top_n=5)
        c.wait(lambda: c.count_state(job, "VALIDATED") == 11 and c.count_state(job, "FAILED") == 1, 30, "11 validated, 1 failed")
        row = c.query("SELECT state, failed_from, last_error, attempts FROM nf_videos WHERE job_id = %s AND video_id = 'v00007'", job)[0]
        eq(row, ("FAILED", "DISCOVERED", "scripted failure on attempt 3", 3), "failed video")
        eq(c.query1("SELECT count(*) FROM nf_processing_log WHERE job_id = %s AND video_id = 'v00007'", job), 3, "processing_log rows")
        eq(c.query1("SELECT count(*) FROM nf_video_history WHERE job_id = %s AND video_id = 'v00007' AND to_state = 'FAILED'", job), 1, "FAILED once in history")
    finally:
        c.stop()


def crash_poison():
    """A task that crashes its worker every time ends FAILED after max_attempts, not in a loop."""
    c = Cluster("poison", 26140, NF_MAX_ATTEMPTS="2", NF_MIN_READY="1")
    try:
        c.start_broker()
        c.worker("discover")
        c.worker("scrape")
        job = c.submit(count=4, top_n=4)
        c.wait(lambda: c.count_state(job, "RAW") == 4, 20, "scraped")
        crashers = []
        def respawn():
            live = [p for p in crashers if p.poll() is None]
            if not live:
                crashers.append(c.worker("sanitize", "--mode", "crash", "--match", "v00002"))
            return c.query1("SELECT state FROM nf_videos WHERE job_id = %s AND video_id = 'v00002'", job) == "FAILED"
        c.wait(respawn, 40, "poison task FAILED")
        check(len(crashers) <= 4, "bounded crash loop", len(crashers))
        eq(c.query1("SELECT failed_from FROM nf_videos WHERE job_id = %s AND video_id = 'v00002'", job), "RAW", "failed_from")
    finally:
        c.stop()


def kill_broker():
    """kill -9 of the broker mid-run and a restart: completes, nothing twice, nothing lost."""
    c = Cluster("killbroker", 26150)
    try:
        broker = c.start_broker()
        for s in ("discover", "analyze", "architect", "export"):
            c.worker(s)
        for s in ("scrape", "sanitize", "geo"):
            c.worker(s, "--delay-ms", "5")
        job = c.submit(count=300, top_n=10)
        c.wait(lambda: (c.query1("SELECT count(*) FROM nf_video_history WHERE job_id = %s", job) or 0) > 400, 60, "progress")
        c.kill9(broker)
        before = c.query1("SELECT count(*) FROM nf_video_history WHERE job_id = %s", job)
        time.sleep(0.5)
        c.start_broker()
        c.wait(lambda: c.job_status(job) == "completed", 90, "job completed after restart")
        eq(c.query1("SELECT count(*) FROM nf_videos WHERE job_id = %s", job), 300, "videos")
        eq(c.duplicate_transitions(), 0, "duplicate transitions")
        eq(c.query1("SELECT count(*) FROM nf_video_history WHERE job_id = %s", job), 300 * 4 + 30, "history rows")
        check(before < 300 * 4 + 30, "the kill happened mid-run", before)
    finally:
        c.stop()


def busy_restart():
    """The broker restarted while a worker is mid-task: the worker does not
    register again until its task is done, so it is never sent a second
    task it would refuse ("worker busy"), and no video pays an attempt for
    the restart (issue 23)."""
    c = Cluster("busyrestart", 26790, NF_MIN_READY="1")
    try:
        broker = c.start_broker()
        for s in ("discover", "sanitize", "geo", "analyze", "architect", "export"):
            c.worker(s)
        c.worker("scrape", "--delay-ms", "3000", tag="slow")
        job = c.submit("busy restart", count=4, top_n=1)
        c.wait(lambda: c.query1("SELECT count(*) FROM nf_videos WHERE job_id = %s AND state = 'DISCOVERED' "
                                "AND lease_token IS NOT NULL", job) >= 1, 20, "a scrape task in hand")
        c.kill9(broker)
        c.start_broker()
        c.wait(lambda: c.job_status(job) == "completed", 90, "job completed after the restart")
        logs = "".join(open(os.path.join(c.logdir, f), errors="replace").read()
                       for f in os.listdir(c.logdir) if f.startswith("worker-"))
        check("worker busy" not in logs, "no task refused as 'worker busy'")
        eq(c.query1("SELECT count(*) FROM nf_video_history WHERE job_id = %s AND attempt > 1", job), 0,
           "no attempt paid for the restart")
        eq(c.duplicate_transitions(), 0, "duplicate transitions")
    finally:
        c.stop()


def late_reply():
    """A reply arriving after its lease expired (its task past its deadline)
    changes nothing."""
    # The slow worker's task runs past its deadline (NF_TASK_TIMEOUTS), so
    # its lease is not renewed and runs out: the task is claimed again.
    c = Cluster("latereply", 26160, NF_LEASE_MS="1500", NF_MIN_READY="1",
                NF_TASK_TIMEOUTS="scrape=1000")
    try:
        c.start_broker()
        c.worker("discover")
        c.worker("scrape", "--delay-ms", "3000", tag="late")
        job = c.submit(count=3, top_n=3)
        c.wait(lambda: c.query1("SELECT count(*) FROM nf_videos WHERE job_id = %s AND lease_token IS NOT NULL", job) == 1, 20, "late worker holds a task")
        held = c.query1("SELECT video_id FROM nf_videos WHERE job_id = %s AND lease_token IS NOT NULL", job)
        c.worker("scrape", tag="prompt")
        c.wait(lambda: c.count_state(job, "RAW") == 3, 30, "all scraped")
        # The late worker's reply arrives after its lease expired: wait until it was fenced.
        c.wait(lambda: c.metric("nf_fenced_total") >= 1, 15, "the late reply fenced")
        rows = dict(c.query("SELECT video_id, meta->>'scrape_by' FROM nf_videos WHERE job_id = %s", job))
        eq(rows[held], "prompt", "the expired lease's reply did not apply")
        eq(set(rows.values()), {"prompt"}, "no late reply applied")
        eq(c.duplicate_transitions(), 0, "duplicate transitions")
        log = open(c.broker.log).read()
        check("fenced" in log, "broker logged the fenced reply")
    finally:
        c.stop()


def long_task():
    """A task three times longer than NF_LEASE_MS, its worker alive: the
    lease is renewed while it runs, so the task is claimed once and its
    reply applied, not fenced (issue 23)."""
    c = Cluster("longtask", 26730, NF_LEASE_MS="1500", NF_MIN_READY="1")
    try:
        c.start_broker()
        for s in ("discover", "sanitize", "geo", "analyze", "architect", "export"):
            c.worker(s)
        c.worker("scrape", "--delay-ms", "4500", tag="slow")
        job = c.submit("long task", count=1, top_n=1)
        c.wait(lambda: c.job_status(job) == "completed", 40, "job completed")
        eq(c.query1("SELECT count(*) FROM nf_video_history WHERE job_id = %s AND service = 'scrape'", job), 1,
           "scraped once")
        eq(c.query1("SELECT attempt FROM nf_video_history WHERE job_id = %s AND service = 'scrape'", job), 1,
           "on the first attempt (claimed once)")
        eq(c.metric("nf_fenced_total"), 0, "nothing fenced")
        check(c.metric("nf_leases_renewed_total") >= 2, "the lease was renewed while the task ran",
              c.metric("nf_leases_renewed_total"))
    finally:
        c.stop()


def replay_usage():
    """A reply whose lease ran out and whose task was done again by another
    worker is fenced, and its usage is not added: the job's counters equal
    a clean run's (issue 23; before, a fenced or replayed reply still
    counted its quota units and requests)."""
    c = Cluster("replayusage", 26750, NF_LEASE_MS="1000", NF_MIN_READY="1",
                NF_TASK_TIMEOUTS="scrape=300")
    fake = None
    try:
        c.start_broker()
        c.worker("discover")  # reports 100 quota units and 3 requests
        fake = c.ctx.socket(zmq.DEALER)
        fake.setsockopt(zmq.LINGER, 0)
        fake.connect(f"tcp://127.0.0.1:{c.ports[0]}")
        fake.send_multipart([b"", b"MDPW01", b"\x01", b"scrape"])
        job = c.submit("replay usage", count=1, top_n=1)
        got, deadline = None, time.time() + 10
        while got is None and time.time() < deadline:
            if fake.poll(100):
                f = fake.recv_multipart()
                got = f if f[2] == b"\x02" else None
        check(got is not None, "the fake worker got the task")
        for s in ("scrape", "sanitize", "geo", "analyze", "architect", "export"):
            c.worker(s)
        # The fake keeps heartbeating (it stays registered, holding the task)
        # while its lease runs out and a real worker does the task again.
        deadline = time.time() + 30
        while c.job_status(job) != "completed" and time.time() < deadline:
            fake.send_multipart([b"", b"MDPW01", b"\x04"])
            while fake.poll(0):
                fake.recv_multipart()
            time.sleep(0.1)
        eq(c.job_status(job), "completed", "the job completed without the fake")
        clean = c.query("SELECT quota_units, http_requests FROM nf_jobs WHERE id = %s", job)[0]
        eq(clean, (100, 3), "a clean run's usage")
        fenced = c.metric("nf_fenced_total")
        body = msgpack.packb({"v": 1, "token": got[3].decode(), "status": "ok",
                              "output": {"transcript": "late"},
                              "usage": {"quota_units": 1000, "http_requests": 1000}})
        fake.send_multipart([b"", b"MDPW01", b"\x03", got[3], b"", body])
        c.wait(lambda: c.metric("nf_fenced_total") > fenced, 10, "the late reply fenced")
        eq(c.query("SELECT quota_units, http_requests FROM nf_jobs WHERE id = %s", job)[0], clean,
           "its usage not added")
    finally:
        if fake is not None:
            fake.close()
        c.stop()


def garbage_frames():
    """Garbage at both ROUTERs: logged, dropped, and the broker keeps serving."""
    c = Cluster("garbage", 26170, NF_MIN_READY="1")
    try:
        broker = c.start_broker()
        ctx = zmq.Context.instance()
        rnd = random.Random(7)
        for port in c.ports[:2]:
            s = ctx.socket(zmq.DEALER)
            s.setsockopt(zmq.LINGER, 5000)  # deliver everything before close
            s.connect(f"tcp://127.0.0.1:{port}")
            for _ in range(200):
                n = rnd.randint(1, 5)
                s.send_multipart([bytes(rnd.getrandbits(8) for _ in range(rnd.randint(0, 64))) for _ in range(n)])
            s.send_multipart([b"", b"MDPW99", b"\x01", b"scrape"])           # wrong header
            s.send_multipart([b"", b"MDPW01", b"\x03", b"tok", b"", b"\x85"])  # reply from a stranger
            s.send_multipart([b"", b"MDPC01", b"nf.status", b"\x85\xa1v"])     # truncated msgpack
            s.send_multipart([b"", b"MDPC01", b"nf.status", b"\xdd\xff\xff\xff\xff"])  # huge array claim
            s.close()
        big = ctx.socket(zmq.DEALER)
        big.setsockopt(zmq.LINGER, 0)
        big.connect(f"tcp://127.0.0.1:{c.ports[1]}")
        big.send_multipart([b"", b"MDPC01", b"nf.status", b"\0" * (100 * 1024 * 1024)])
        time.sleep(1)
        big.close()
        r = c.request("nf.status", b"\x85\xa1v")
        check(r["ok"] is False and "malformed request" in r["error"], "truncated msgpack answered with an error", r)
        r = c.request("nf.status", msgpack.packb({"v": 1, "job_id": 12345}))
        eq(r, {"v": 1, "ok": False, "error": "no such job"}, "status of a missing job")
        # A worker that answers its task with garbage: a retryable error, then done by a real worker.
        c.worker("discover")
        job = c.submit(count=2, top_n=2)
        fake = ctx.socket(zmq.DEALER)
        fake.setsockopt(zmq.LINGER, 0)
        fake.connect(f"tcp://127.0.0.1:{c.ports[0]}")
        fake.send_multipart([b"", b"MDPW01", b"\x01", b"scrape"])
        got = None
        deadline = time.time() + 10
        while time.time() < deadline and got is None:
            if fake.poll(200):
                f = fake.recv_multipart()
                if f[2] == b"\x02":
                    got = f
        check(got is not None, "fake worker got a task")
        fake.send_multipart([b"", b"MDPW01", b"\x03", got[3], b"", b"\xc1garbage"])
        time.sleep(0.3)
        fake.send_multipart([b"", b"MDPW01", b"\x05"])
        fake.close()
        c.worker("scrape")
        c.wait(lambda: c.count_state(job, "RAW") == 2, 20, "scraped after garbage")
        check(c.query1("SELECT count(*) FROM nf_processing_log WHERE message LIKE 'malformed reply%%'") >= 1, "malformed reply logged")
        check(broker.poll() is None, "broker still running")
        log = open(c.broker.log).read()
        check(log.count("malformed message") >= 100, "garbage logged", log.count("malformed message"))
        check("wrong header" in log or "malformed message" in log, "wrong header logged")
    finally:
        c.stop()


def bad_envelope():
    """A registered worker that answers with a malformed REPLY envelope is
    told DISCONNECT (RFC 7) and forgotten, and its task goes to another
    worker at once, without costing an attempt's timeout (issue 23)."""
    c = Cluster("badenv", 26700, NF_MIN_READY="1")
    fake = None
    try:
        c.start_broker()
        c.worker("discover")
        fake = c.ctx.socket(zmq.DEALER)
        fake.setsockopt(zmq.LINGER, 0)
        fake.connect(f"tcp://127.0.0.1:{c.ports[0]}")
        fake.send_multipart([b"", b"MDPW01", b"\x01", b"scrape"])
        job = c.submit(count=1, top_n=1)

        def next_command(want, seconds):
            deadline = time.time() + seconds
            while time.time() < deadline:
                if fake.poll(200):
                    f = fake.recv_multipart()
                    if f[2] == want:
                        return f
            return None
        got = next_command(b"\x02", 10)
        check(got is not None, "the fake worker got a task")
        fake.send_multipart([b"", b"MDPW01", b"\x03", got[3]])  # no empty frame, no body
        check(next_command(b"\x05", 5) is not None, "DISCONNECT after the malformed REPLY")
        c.worker("scrape")
        c.wait(lambda: c.count_state(job, "RAW") + c.count_state(job, "CLEANED") + c.count_state(job, "EXPORTED") >= 1
               or c.job_status(job) == "completed", 20, "the task served by the real worker")
        eq(c.query1("SELECT count(*) FROM nf_videos WHERE job_id = %s AND state = 'FAILED'", job), 0, "nothing FAILED")
        log = open(c.broker.log).read()
        check("malformed REPLY envelope; disconnecting it" in log, "the log names the peer and what it did")
        check(re.search(r"worker [0-9A-F]+ \(scrape\): malformed REPLY", log, re.I), "peer id and service in the log")
    finally:
        if fake is not None:
            fake.close()
        c.stop()


def slow_database():
    """The main loop never waits on PostgreSQL (issue 23). A lock holds the
    table the client services read (nf_exports) for 4 s while clients send
    nf.status requests: heartbeats keep their period, MMI answers at once;
    the office thread takes 16 requests of one client and 256 in all, the
    rest are refused as busy at once; the 256 are answered when the lock
    goes."""
    import psycopg2
    c = Cluster("slowdb", 26840)
    fake, clients, locker = None, [], None
    try:
        c.start_broker()
        locker = psycopg2.connect(host="127.0.0.1", port=c.pg_port, user="postgres", dbname=c.db)
        # A: 40 requests (16 taken, 24 busy); B: 15 clients of 16 (all taken,
        # 256 in all); C: 10 more (busy: the office is full).
        plan = [40] + [16] * 15 + [10]
        for _ in plan:
            s = c.ctx.socket(zmq.DEALER)
            s.setsockopt(zmq.LINGER, 0)
            s.connect(f"tcp://127.0.0.1:{c.ports[1]}")
            clients.append(s)
        locker.cursor().execute("LOCK TABLE nf_exports IN ACCESS EXCLUSIVE MODE")
        status = msgpack.packb({"v": 1, "job_id": 1})
        for s, n in zip(clients, plan):
            for _ in range(n):
                s.send_multipart([b"", b"MDPC01", b"nf.status", status])
            time.sleep(0.05)  # in this order at the broker
        fake = c.ctx.socket(zmq.DEALER)
        fake.setsockopt(zmq.LINGER, 0)
        fake.connect(f"tcp://127.0.0.1:{c.ports[0]}")
        fake.send_multipart([b"", b"MDPW01", b"\x01", b"scrape"])
        check(fake.poll(3000), "a first heartbeat while the office waits")
        fake.recv_multipart()
        fake.send_multipart([b"", b"MDPW01", b"\x04"])
        beats, mmi_ms, sent = [time.time()], None, time.time()
        busy, answered = [0] * len(plan), [0] * len(plan)
        poller = zmq.Poller()
        for s in [fake] + clients:
            poller.register(s, zmq.POLLIN)

        def take(sock, frames):
            body = msgpack.unpackb(frames[3], raw=False)
            k = clients.index(sock)
            if "broker busy" in body.get("error", ""):
                busy[k] += 1
            elif "no such job" in body.get("error", ""):
                answered[k] += 1
        t0 = time.time()
        while time.time() - t0 < 4.0:
            if mmi_ms is None and time.time() - t0 > 1.0:
                m0 = time.time()
                eq(c.mmi("nf.status"), "200", "MMI answers while the office waits on the lock")
                mmi_ms = (time.time() - m0) * 1000
            for sock, _ in poller.poll(50):
                frames = sock.recv_multipart()
                if sock is fake:
                    if frames[2] == b"\x04":
                        beats.append(time.time())
                else:
                    take(sock, frames)
            if time.time() - sent > 0.15:  # the worker's own heartbeats
                fake.send_multipart([b"", b"MDPW01", b"\x04"])
                sent = time.time()
        beats.append(time.time())
        gap = max(b - a for a, b in zip(beats, beats[1:]))
        print(f"slow_database: {len(beats) - 2} heartbeats in 4 s, longest gap {gap * 1000:.0f} ms, "
              f"MMI {mmi_ms:.0f} ms, {sum(busy)} refused as busy, {sum(answered)} answered during the lock")
        check(gap < 0.6, "heartbeats kept their period (200 ms, liveness 3) during the lock", gap)
        eq((busy[0], sum(busy[1:-1]), busy[-1]), (24, 0, 10),
           "busy at once: one client's 17th request on, and every request beyond 256")
        eq(sum(answered), 0, "none answered while the lock held")
        locker.rollback()
        deadline = time.time() + 15
        while sum(answered) < 256 and time.time() < deadline:
            for sock, _ in poller.poll(500):
                frames = sock.recv_multipart()
                if sock is not fake:
                    take(sock, frames)
        eq(answered, [16] * 16 + [0], "every request at the office answered once the lock went")
        eq(c.metric("nf_dead_workers_total"), 0, "no worker declared dead")
    finally:
        for s in [fake] + clients:
            if s is not None:
                s.close()
        if locker is not None:
            locker.close()
        c.stop()


def heartbeat_watch(c, service, until, seconds):
    """A raw MDP worker for SERVICE that heartbeats every 150 ms and times the
    broker's heartbeats until UNTIL() holds (checked every 0.5 s) or SECONDS
    pass. Answers (held, the longest gap between the broker's heartbeats, s)."""
    w = c.ctx.socket(zmq.DEALER)
    w.setsockopt(zmq.LINGER, 0)
    w.connect(f"tcp://127.0.0.1:{c.ports[0]}")
    try:
        w.send_multipart([b"", b"MDPW01", b"\x01", service.encode()])
        check(w.poll(3000), "a first heartbeat")
        w.recv_multipart()
        beats, sent, checked, t0 = [time.time()], 0.0, time.time(), time.time()
        held = False
        while time.time() - t0 < seconds:
            if w.poll(50):
                if w.recv_multipart()[2] == b"\x04":
                    beats.append(time.time())
            if time.time() - sent > 0.15:
                w.send_multipart([b"", b"MDPW01", b"\x04"])
                sent = time.time()
            if time.time() - checked > 0.5:
                checked = time.time()
                if until():
                    held = True
                    break
        beats.append(time.time())
        return held, max(b - a for a, b in zip(beats, beats[1:]))
    finally:
        w.close()


def retention():
    """Retention (issue 24, NF_RETAIN_DAYS=30): a job finished 40 days ago loses
    its transcripts, video history and log lines and keeps its results and
    exports; a job finished 10 days ago, a live one and the log lines of no
    job within the retention keep everything; a pruned job is not retried;
    nf-submit purge deletes a finished job and all of it and refuses a live
    one; a 10,000-video job is pruned off the loop (heartbeats keep their
    period)."""
    c = Cluster("retention", 26860, NF_RETAIN_DAYS="30")
    try:
        c.start_broker()
        procs = {}
        for s in ("discover", "scrape", "sanitize", "geo", "analyze", "architect", "export"):
            procs[s] = c.worker(s)
        old, recent, doomed = (c.submit(f"retention {n}", count=20, top_n=5) for n in ("old", "recent", "doomed"))
        for job in (old, recent, doomed):
            c.wait(lambda: c.job_status(job) == "completed", 60, f"job {job} completed")
        c.kill9(procs["sanitize"])
        live = c.submit("retention live", count=20, top_n=5)
        c.wait(lambda: c.count_state(live, "RAW") == 20, 30, "the live job's videos scraped")
        jobs = (old, recent, doomed, live)
        for job in jobs:
            for i in range(3):
                c.query("INSERT INTO nf_processing_log (module, job_id, level, message, at) VALUES "
                        "('test', %s, 'warn', 'line', now() - interval '45 days')", job)
        c.query("INSERT INTO nf_processing_log (module, level, message, at) VALUES ('test', 'warn', 'old', "
                "now() - interval '40 days'), ('test', 'warn', 'recent', now() - interval '2 days')")
        c.query("UPDATE nf_jobs SET finished_at = now() - interval '40 days' WHERE id = %s", old)
        c.query("UPDATE nf_jobs SET finished_at = now() - interval '10 days' WHERE id = %s", recent)
        c.query("UPDATE nf_jobs SET created_at = now() - interval '90 days' WHERE id = %s", live)

        def counts(job):
            return c.query("SELECT (SELECT count(*) FROM nf_videos WHERE job_id = %s AND transcript IS NOT NULL), "
                           "(SELECT count(*) FROM nf_videos WHERE job_id = %s AND clean_text IS NOT NULL), "
                           "(SELECT count(*) FROM nf_video_history WHERE job_id = %s), "
                           "(SELECT count(*) FROM nf_processing_log WHERE job_id = %s), "
                           "(SELECT count(*) FROM nf_exports WHERE job_id = %s), "
                           "(SELECT count(*) FROM nf_videos WHERE job_id = %s)", *([job] * 6))[0]
        before = {job: counts(job) for job in jobs}
        results = c.query("SELECT video_id, state, rank, scores, ai, meta FROM nf_videos WHERE job_id = %s "
                          "ORDER BY video_id", old)
        check(before[old][0] == 20 and before[old][2] > 40 and before[old][3] == 3 and before[old][4] > 0,
              "the old job has transcripts, history, log lines and exports", before[old])
        c.wait(lambda: c.query1("SELECT pruned FROM nf_jobs WHERE id = %s", old), 30, "the old job pruned")
        eq(counts(old), (0, 0, 0, 0, before[old][4], 20),
           "the old job: no transcript, clean text, history or log line; its exports and videos stay")
        eq(c.query("SELECT video_id, state, rank, scores, ai, meta FROM nf_videos WHERE job_id = %s "
                   "ORDER BY video_id", old), results, "its results unchanged")
        for job in (recent, doomed, live):
            eq(counts(job), before[job], f"job {job} (within the retention, or live) untouched")
        eq(sorted(r[0] for r in c.query("SELECT message FROM nf_processing_log WHERE job_id IS NULL")), ["recent"],
           "the log lines of no job: the one past the retention gone")
        c.wait(lambda: c.metric('nf_pruned_total{what="jobs"}') == 1, 5, "one job pruned (metric)")
        r = c.request("nf.retry", {"v": 1, "job_id": old})
        check(r.get("ok") is False and "was pruned" in r.get("error", ""), "nf.retry refuses a pruned job", r)
        # nf-submit purge
        submit = f"{BUILD}/tools/nf-submit"
        p = subprocess.run([submit, "purge", str(live)], env=c.env(), capture_output=True, text=True, timeout=30)
        check(p.returncode == 1 and "is processing; cancel it first" in p.stderr, "purge refuses a live job", p.stderr)
        eq(counts(live), before[live], "the live job untouched by the refused purge")
        p = subprocess.run([submit, "purge", str(doomed)], env=c.env(), capture_output=True, text=True, timeout=30)
        check(p.returncode == 0 and f"job {doomed}: purged (20 videos, {before[doomed][4]} export files" in p.stdout,
              "nf-submit purge", p.stdout, p.stderr)
        eq(counts(doomed), (0, 0, 0, 0, 0, 0), "the purged job's videos, history, log lines and exports gone")
        eq(c.query1("SELECT count(*) FROM nf_jobs WHERE id = %s", doomed), 0, "and its job row")
        eq(c.query1("SELECT count(*) FROM nf_job_history WHERE job_id = %s", doomed), 0, "and its status history")
        eq(counts(recent), before[recent], "the other jobs untouched by the purge")
        # A 10,000-video job past the retention, pruned while the loop goes on.
        big = c.query1("INSERT INTO nf_jobs (niche, status, phase, finished_at) VALUES ('big', 'completed', "
                       "'done', now() - interval '60 days') RETURNING id")
        c.query("INSERT INTO nf_videos (job_id, video_id, state, transcript, clean_text) SELECT %s, 'b' || g, "
                "'VALIDATED', repeat('word ', 400), repeat('word ', 300) FROM generate_series(1, 10000) g", big)
        c.query("INSERT INTO nf_video_history (job_id, video_id, to_state, service, attempt) SELECT %s, "
                "'b' || (g %% 10000), 'RAW', 'scrape', 1 FROM generate_series(1, 40000) g", big)
        t0 = time.time()
        # The bound is generous: on a loaded machine (the fresh root, chromium
        # beside it) the ~100 ms turns took 60 s; what must hold is the heartbeat.
        held, gap = heartbeat_watch(c, "geo", lambda: c.query1("SELECT pruned FROM nf_jobs WHERE id = %s", big), 180)
        print(f"retention: a 10,000-video job pruned in {time.time() - t0:.1f} s (including up to 10 s "
              f"before its turn); longest heartbeat gap meanwhile {gap * 1000:.0f} ms")
        check(held, "the 10,000-video job pruned")
        check(gap < 0.6, "heartbeats kept their period (200 ms, liveness 3) during the prune", gap)
        eq(counts(big)[:4], (0, 0, 0, 0), "its texts and history gone")
        c.wait(lambda: c.metric('nf_pruned_total{what="texts"}') == 10020, 5, "texts pruned (metric)")
    finally:
        c.stop()


def pg_restart():
    """PostgreSQL restarted mid-run: the broker reconnects and the run completes."""
    d = tempfile.mkdtemp(prefix="nfpg-restart-")
    pg = f"{SRC}/tests/pg.sh"
    subprocess.run([pg, "start", d, "25490"], check=True, timeout=120)
    c = None
    try:
        c = Cluster("pgrestart", 26180, pg_port=25490)
        c.start_broker()
        for s in ("discover", "analyze", "architect", "export"):
            c.worker(s)
        for s in ("scrape", "sanitize", "geo"):
            c.worker(s, "--delay-ms", "5")
        job = c.submit(count=300, top_n=10)
        c.wait(lambda: (c.query1("SELECT count(*) FROM nf_video_history WHERE job_id = %s", job) or 0) > 300, 60, "progress")
        subprocess.run([pg, "restart", d], check=True, timeout=120)
        c.wait(lambda: c.job_status(job) == "completed", 90, "job completed after the restart")
        eq(c.duplicate_transitions(), 0, "duplicate transitions")
        eq(c.query1("SELECT count(*) FROM nf_video_history WHERE job_id = %s", job), 300 * 4 + 30, "history rows")
        log = open(c.broker.log).read()
        check("database reconnected" in log, "broker reconnected", log[-2000:])
    finally:
        if c:
            c.stop()
        subprocess.run([pg, "destroy", d], timeout=120)


def submit_validation():
    """nf.submit names every invalid field and stores nothing."""
    c = Cluster("validation", 26190)
    try:
        c.start_broker()
        r = c.request("nf.submit", {"v": 1, "niche": "x" * 4096, "priority": "urgent",
                                    "options": {"count": 0, "since": "2024-02-30", "region": "uk", "bogus": 1}})
        check(r["ok"] is False, "refused", r)
        for part in ("niche: 4096 bytes long", "priority: 'urgent'", "options.count", "options.since",
                     "options.region", 'unknown option "bogus"'):
            check(part in r["error"], f"error names {part}", r["error"])
        r = c.request("nf.submit", {"v": 1, "niche": "   "})
        check(r["ok"] is False and "niche: empty" in r["error"], "empty niche refused", r)
        eq(c.query1("SELECT count(*) FROM nf_jobs"), 0, "nothing stored")
        job = c.submit("it's \"quoted\"; DROP TABLE nf_jobs; -- ☕ 🎬", count=5, top_n=5)
        eq(c.query1("SELECT niche FROM nf_jobs WHERE id = %s", job), "it's \"quoted\"; DROP TABLE nf_jobs; -- ☕ 🎬", "hostile niche stored verbatim")
        p = subprocess.run([f"{BUILD}/tools/nf-submit", "niche", "--count", "abc"], env=c.env(), capture_output=True, text=True, timeout=10)
        eq(p.returncode, 2, "bad arguments exit code")
        p = subprocess.run([f"{BUILD}/tools/nf-submit", "niche", "--count", "0"], env=c.env(), capture_output=True, text=True, timeout=10)
        eq(p.returncode, 2, "a value out of range is refused by nf-submit itself")
        p = subprocess.run([f"{BUILD}/tools/nf-submit", "niche", "--count", "5", "--top-n", "3"], env=c.env(),
                           capture_output=True, text=True, timeout=10)
        eq(p.returncode, 1, "refused (by the broker: top N below NF_MIN_READY) exit code")
        env = c.env({"NF_BROKER_CLIENTS": "tcp://127.0.0.1:1", "NF_TIMEOUT_MS": "300"})
        p = subprocess.run([f"{BUILD}/tools/nf-submit", "list"], env=env, capture_output=True, text=True, timeout=10)
        eq(p.returncode, 3, "unreachable exit code")
    finally:
        c.stop()


def state_checks():
    """The state machine of shared/nf_states.c as CHECK constraints: made at
    start-up, left alone by a restart, made again when the list changed;
    an unknown state, status or phase is refused by the database."""
    import psycopg2
    c = Cluster("states", 26670)
    made = lambda: (open(c.broker.log).read().count("must be one of")  # noqa: E731
                    if c.broker and os.path.exists(c.broker.log) else 0)
    try:
        log = os.path.join(c.logdir, "broker.log")
        before = open(log).read().count("must be one of") if os.path.exists(log) else 0
        c.start_broker()
        rows = dict(c.query("SELECT conname, obj_description(oid, 'pg_constraint') FROM pg_constraint "
                            "WHERE conname LIKE 'nf_%%_known'"))
        eq(sorted(rows), ["nf_jobs_phase_known", "nf_jobs_status_known", "nf_videos_failed_from_known",
                          "nf_videos_state_known"], "the four constraints")
        eq(rows["nf_jobs_status_known"],
           "{pending,queued,running,processing,completed,partial,failed,cancelling,cancelled}", "job statuses")
        eq(rows["nf_jobs_phase_known"], "{discover,analyze,export,done}", "job phases: the job stages, then done")
        check(rows["nf_videos_state_known"].startswith("{DISCOVERED,RAW,") and "FAILED" in rows["nf_videos_state_known"],
              "video states", rows["nf_videos_state_known"])
        job = c.submit("checks", count=5, top_n=5)
        for sql in ("UPDATE nf_jobs SET status = 'paused' WHERE id = %s",
                    "UPDATE nf_jobs SET phase = 'polish' WHERE id = %s",
                    "INSERT INTO nf_videos (job_id, video_id, state) VALUES (%s, 'v1', 'LIMBO')",
                    "INSERT INTO nf_videos (job_id, video_id, state, failed_from) VALUES (%s, 'v2', 'FAILED', 'LIMBO')"):
            try:
                c.query(sql, job)
                raise AssertionError(f"accepted: {sql}")
            except psycopg2.errors.CheckViolation:
                pass
        c.query("INSERT INTO nf_videos (job_id, video_id, state) VALUES (%s, 'v3', 'RAW')", job)
        eq(c.query1("SELECT count(*) FROM nf_videos WHERE job_id = %s", job), 1, "a known state is accepted")
        c.stop()
        eq(made() - before, 4, "the first start made the four constraints")
        # A stale list (as after a stage was added): the next start replaces it.
        c.query("ALTER TABLE nf_jobs DROP CONSTRAINT nf_jobs_phase_known")
        c.query("ALTER TABLE nf_jobs ADD CONSTRAINT nf_jobs_phase_known CHECK (phase = ANY ('{discover,done}'::text[]))")
        c.query("COMMENT ON CONSTRAINT nf_jobs_phase_known ON nf_jobs IS '{discover,done}'")
        c.procs = []
        c.start_broker()
        c.wait(lambda: c.query1("SELECT obj_description(oid, 'pg_constraint') FROM pg_constraint "
                                "WHERE conname = 'nf_jobs_phase_known'") == "{discover,analyze,export,done}",
               10, "the stale constraint replaced")
        c.stop()
        eq(made() - before, 5, "only the stale one was made again")
    finally:
        c.stop()


def added_stage():
    """A job through the test build of tests/added_stage.sh, whose table has
    one more stage ('tag', VALIDATED -> TAGGED, before analyze): the broker
    claims, applies and checks it from the row alone."""
    table = subprocess.run([f"{BUILD}/broker/nf-broker", "states-table"], capture_output=True,
                           text=True, timeout=10).stdout
    check("| tag | video | VALIDATED | TAGGED |" in table, "a build with the extra stage (NF_EXTRA_STAGE)", table)
    c = Cluster("added_stage", 26680)
    try:
        c.start_broker()
        for s in ("discover", "scrape", "sanitize", "geo", "tag", "analyze", "architect", "export"):
            c.worker(s)
        job = c.submit("added stage", count=30, top_n=10)
        c.wait(lambda: c.job_status(job) == "completed", 60, "job completed")
        eq(c.query1("SELECT count(DISTINCT video_id) FROM nf_video_history WHERE job_id = %s "
                    "AND service = 'tag' AND to_state = 'TAGGED'", job), 30, "every video through 'tag'")
        eq(c.count_state(job, "EXPORTED"), 10, "exported outliers")
        eq(c.count_state(job, "TAGGED"), 20, "non-outliers stay in analyze's input state, TAGGED")
        eq(c.duplicate_transitions(), 0, "duplicate transitions")
        check("TAGGED" in c.query1("SELECT obj_description(oid, 'pg_constraint') FROM pg_constraint "
                                   "WHERE conname = 'nf_videos_state_known'"), "the CHECK constraint knows TAGGED")
    finally:
        c.stop()


def deaf_client():
    """A client that sends and never reads while a 1,000-video job runs:
    the broker's sends to it fail instead of blocking (issue 23), so the job
    completes, no worker misses a heartbeat (200 ms, liveness 3) and the
    replies it could not deliver are counted."""
    c = Cluster("deaf", 26690)
    deaf = None
    try:
        c.start_broker()
        deaf = c.ctx.socket(zmq.DEALER)
        deaf.setsockopt(zmq.RCVHWM, 1)
        deaf.setsockopt(zmq.RCVBUF, 4096)
        deaf.setsockopt(zmq.LINGER, 0)
        deaf.connect(f"tcp://127.0.0.1:{c.ports[1]}")
        request = [b"", b"MDPC01", b"nf.nothing", msgpack.packb({"v": 1})]
        # Small requests until their answers overflow the broker's queue for
        # this peer and the socket buffers between (about 70,000 on
        # loopback), checked every 5,000; bounded by 60 s and 2,000,000.
        sent, deadline = 0, time.time() + 60
        while sent < 2000000 and time.time() < deadline:
            for _ in range(5000):
                try:
                    deaf.send_multipart(request, zmq.NOBLOCK)
                    sent += 1
                except zmq.Again:
                    time.sleep(0.001)
            if sent >= 100000 and c.metric("nf_client_drops_total") > 0:
                break
        c.all_workers()
        job = c.submit("deaf client", count=1000, top_n=10)
        for _ in range(20):  # and it keeps sending while the job runs
            for _ in range(2000):
                try:
                    deaf.send_multipart(request, zmq.NOBLOCK)
                except zmq.Again:
                    break
            time.sleep(0.05)
        c.wait(lambda: c.job_status(job) == "completed", 120, "job completed")
        c.wait(lambda: c.metric("nf_client_drops_total") > 0, 5, "the undelivered replies counted")
        eq(c.metric("nf_dead_workers_total"), 0, "no worker declared dead (heartbeats kept their period)")
        eq(c.count_state(job, "EXPORTED"), 10, "exported outliers")
        eq(c.mmi("nf.status"), "200", "another client is answered")
    finally:
        if deaf is not None:
            deaf.close()
        c.stop()


def same_id():
    """A second broker with the same NF_BROKER_ID on the same database
    refuses to start, naming the id, and touches nothing of the first's
    leases (issue 23)."""
    c = Cluster("sameid", 26710)
    try:
        c.start_broker()
        c.worker("discover", "--mode", "hang")  # holds the job's discovery lease
        job = c.submit("same id", count=5, top_n=5)
        c.wait(lambda: c.query1("SELECT count(*) FROM nf_jobs WHERE id = %s AND lease_token IS NOT NULL", job) == 1,
               10, "discovery claimed")
        held = c.query1("SELECT lease_token::text FROM nf_jobs WHERE id = %s", job)
        other = {"NF_WORKERS_BIND": "tcp://127.0.0.1:26714", "NF_CLIENTS_BIND": "tcp://127.0.0.1:26715",
                 "NF_PUB_BIND": "tcp://127.0.0.1:26716", "NF_METRICS_BIND": "127.0.0.1:26717"}
        second = subprocess.run([f"{BUILD}/broker/nf-broker"], env=c.env(other), capture_output=True,
                                text=True, timeout=60)
        check(second.returncode != 0, "the second broker did not start", second.returncode)
        check("another broker with NF_BROKER_ID 'test-sameid' is running" in second.stderr,
              "it names the id", second.stderr[-2000:])
        eq(c.query1("SELECT lease_token::text FROM nf_jobs WHERE id = %s", job), held,
           "the first broker's lease untouched")
        eq(c.mmi("nf.status"), "200", "the first broker still serves")
    finally:
        c.stop()


class ZguideWorker(threading.Thread):
    """A Majordomo worker as the zguide's reference mdwrkapi.py behaves: one
    thread, a heartbeat every 2.5 s, liveness 3, and nothing sent while it
    works. It serves SERVICE, each task taking WORK_S seconds, with OUTPUT
    as the reply's columns."""

    def __init__(self, endpoint, service, work_s, output):
        super().__init__(daemon=True)
        self.endpoint, self.service, self.work_s, self.output = endpoint, service, work_s, output
        self.done = self.disconnects = self.reconnects = 0
        self.stop = threading.Event()

    def _connect(self):
        self.sock = zmq.Context.instance().socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(self.endpoint)
        self.sock.send_multipart([b"", b"MDPW01", b"\x01", self.service.encode()])
        self.liveness, self.heartbeat_at = 3, time.time() + 2.5

    def run(self):
        self._connect()
        while not self.stop.is_set():
            if self.sock.poll(2500):
                frames = self.sock.recv_multipart()
                self.liveness = 3
                if frames[2] == b"\x02":
                    time.sleep(self.work_s)  # busy: no heartbeats (single-threaded)
                    body = msgpack.packb({"v": 1, "token": frames[3].decode(), "status": "ok",
                                          "output": self.output})
                    self.sock.send_multipart([b"", b"MDPW01", b"\x03", frames[3], b"", body])
                    self.done += 1
                elif frames[2] == b"\x05":
                    self.disconnects += 1
                    self.sock.close()
                    self._connect()
            else:
                self.liveness -= 1
                if self.liveness == 0:
                    self.reconnects += 1
                    self.sock.close()
                    time.sleep(2.5)
                    self._connect()
            if time.time() > self.heartbeat_at:
                self.sock.send_multipart([b"", b"MDPW01", b"\x04"])
                self.heartbeat_at = time.time() + 2.5
        self.sock.close()


def zguide_worker():
    """The zguide-style worker above (2.5 s heartbeats, 10 s tasks, silent
    while busy) serves the sanitize stage of a whole job, with the broker's
    default heartbeat and liveness: no loss, no retry, nothing FAILED
    (issue 23)."""
    c = Cluster("zguide", 26720, NF_MIN_READY="1")
    for key in ("NF_HEARTBEAT_MS", "NF_LIVENESS"):  # the defaults, as a user runs it
        c.broker_env.pop(key)
    w = ZguideWorker(f"tcp://127.0.0.1:{c.ports[0]}", "sanitize", 10.0,
                     {"quality": 80.0, "clean_text": "clean"})
    try:
        c.start_broker()
        w.start()
        for s in ("discover", "scrape", "geo", "analyze", "architect", "export"):
            c.worker(s)
        job = c.submit("zguide worker", count=2, top_n=1)
        c.wait(lambda: c.job_status(job) == "completed", 90, "job completed")
        eq(w.done, 2, "the zguide worker did both tasks, once each")
        eq((w.disconnects, w.reconnects), (0, 0), "it was never disconnected, nor lost the broker")
        eq(c.metric("nf_dead_workers_total"), 0, "no worker declared dead")
        eq(c.query1("SELECT count(*) FROM nf_video_history WHERE job_id = %s AND service = 'sanitize' "
                    "AND attempt > 1", job), 0, "no sanitize task retried")
        eq(c.query1("SELECT count(*) FROM nf_videos WHERE job_id = %s AND state = 'FAILED'", job), 0, "nothing FAILED")
    finally:
        w.stop.set()
        w.join(10)
        c.stop()


def exposure():
    """Secure by default (issue 24): the broker binds loopback unless told;
    an address other than loopback without CURVE is refused at start,
    naming the setting, and allowed with NF_INSECURE=1 (with a warning)."""
    c = Cluster("exposure", 26760)
    try:
        env = c.env({"NF_WORKERS_BIND": "tcp://0.0.0.0:26760"})
        env.pop("NF_INSECURE", None)
        r = subprocess.run([f"{BUILD}/broker/nf-broker"], env=env, capture_output=True, text=True, timeout=30)
        eq(r.returncode, 1, "refused")
        check("NF_WORKERS_BIND is tcp://0.0.0.0:26760, an address other than loopback, and CURVE is off"
              in r.stderr and "NF_INSECURE=1" in r.stderr, "the message names the setting and the way out",
              r.stderr[-1500:])
        eq(c.query1("SELECT count(*) FROM pg_tables WHERE tablename = 'nf_jobs'"), 0,
           "refused before touching the database")
        c.start_broker({"NF_WORKERS_BIND": "tcp://0.0.0.0:26760", "NF_INSECURE": "1"})
        eq(c.mmi("nf.status"), "200", "NF_INSECURE=1: it starts")
        check("NF_INSECURE=1: NF_WORKERS_BIND is tcp://0.0.0.0:26760 without CURVE" in open(c.broker.log).read(),
              "and warns")
        defaults = subprocess.run([f"{BUILD}/broker/nf-broker", "config-table"], capture_output=True,
                                  text=True, timeout=10).stdout
        for var, port in (("NF_WORKERS_BIND", 5555), ("NF_CLIENTS_BIND", 5556), ("NF_PUB_BIND", 5557)):
            check(f"| `{var}` | `--{var[3:].lower().replace('_', '-')}` | `tcp://127.0.0.1:{port}` |" in defaults,
                  f"{var} defaults to loopback")
    finally:
        c.stop()


def oversized_input():
    """A task body larger than NF_MAX_FRAME is never sent (the worker would
    drop the connection: "worker lost" on every attempt): the job fails at
    once with the reason, naming the stage and the sizes (issue 23)."""
    c = Cluster("oversized", 26780, NF_MAX_FRAME="20000", NF_MIN_READY="1")
    try:
        c.start_broker()
        c.all_workers()
        job = c.submit("oversized input", count=200, top_n=5)
        c.wait(lambda: c.job_status(job) == "failed", 60, "job failed")
        reason = c.query1("SELECT status_reason FROM nf_jobs WHERE id = %s", job)
        check(re.search(r"stage analyze failed: task input cannot be built: its body of \d+ bytes is over "
                        r"NF_MAX_FRAME \(20000\)", reason or ""), "the reason names the stage and the sizes", reason)
        eq(c.metric("nf_dead_workers_total"), 0, "no worker lost over it")
        eq(c.query1("SELECT count(*) FROM nf_job_history WHERE job_id = %s AND to_status = 'failed'", job), 1,
           "failed once")
    finally:
        c.stop()


def revoked_grant():
    """A revoked grant mid-job (every apply fails alike: the database's
    state, not a reply's data) fails no video: the broker keeps the batch,
    reports nf_database_up 0, and the job completes once the grant returns
    (issue 23; before, batch isolation stored each reply as a permanent
    error and the videos ended FAILED)."""
    role = "nf_limited_" + uuid.uuid4().hex[:8]
    c = Cluster("revoked", 26800, NF_MIN_READY="1")
    try:
        c.query(f'CREATE ROLE "{role}" LOGIN')
        c.query(f'ALTER DATABASE "{c.db}" OWNER TO "{role}"')
        url = f"postgresql://{role}@127.0.0.1:{c.pg_port}/{c.db}"
        c.start_broker({"NF_DATABASE_URL": url})
        for s in ("discover", "sanitize", "geo", "analyze", "architect", "export"):
            c.worker(s)
        c.worker("scrape", "--delay-ms", "200")  # 40 videos: about 8 s of scraping
        job = c.submit("revoked grant", count=40, top_n=5)
        c.wait(lambda: c.query1("SELECT count(*) FROM nf_video_history WHERE job_id = %s AND to_state = 'RAW'",
                                job) >= 3, 30, "scraping under way")
        c.query(f'REVOKE UPDATE ON nf_videos FROM "{role}"')
        c.wait(lambda: c.metric("nf_database_up") == 0, 15, "nf_database_up 0 while the grant is gone")
        c.wait(lambda: "refuses the cycle's statements" in open(c.broker.log).read(), 10,
               "replies refused for the database's state")
        eq(c.query1("SELECT count(*) FROM nf_videos WHERE job_id = %s AND state = 'FAILED'", job), 0,
           "no video FAILED while the grant is gone")
        c.query(f'GRANT UPDATE ON nf_videos TO "{role}"')
        c.wait(lambda: c.job_status(job) in ("completed", "partial", "failed"), 60, "job finished after the grant")
        eq(c.job_status(job), "completed", "job completed")
        eq(c.query1("SELECT count(*) FROM nf_videos WHERE job_id = %s AND state = 'FAILED'", job), 0, "nothing FAILED")
        c.wait(lambda: c.metric("nf_database_up") == 1, 10, "nf_database_up 1 again")
        check("refuses the cycle's statements (SQLSTATE 42501" in open(c.broker.log).read(), "said once, with its cause")
    finally:
        c.stop()


def cancel_and_retry():
    """Cancel drops in-flight work; a job below min-ready fails, nf.retry brings it home."""
    c = Cluster("cancelretry", 26200)
    try:
        c.start_broker()
        c.worker("discover")
        c.worker("scrape", "--delay-ms", "2000")
        job = c.submit(count=10, top_n=5)
        c.wait(lambda: c.query1("SELECT count(*) FROM nf_videos WHERE job_id = %s AND lease_token IS NOT NULL", job) == 1, 20, "work in flight")
        r = c.request("nf.cancel", {"v": 1, "job_id": job})
        eq(r.get("status"), "cancelling", "cancel answer")
        c.wait(lambda: c.job_status(job) == "cancelled", 10, "cancelled")
        # The in-flight reply comes back and is fenced (cancel released its lease).
        c.wait(lambda: c.metric("nf_fenced_total") >= 1, 15, "the in-flight reply fenced")
        eq(c.count_state(job, "RAW"), 0, "no in-flight result applied after cancel")
        r = c.request("nf.cancel", {"v": 1, "job_id": job})
        check(r["ok"] is False and "cancelled" in r["error"], "second cancel refused", r)

        bad = c.worker("architect", "--mode", "permanent")
        for s in ("sanitize", "geo", "analyze", "export"):
            c.worker(s)
        c.worker("scrape")
        job2 = c.submit(count=12, top_n=10)
        c.wait(lambda: c.job_status(job2) == "failed", 30, "job failed below min-ready")
        reason = c.query1("SELECT status_reason FROM nf_jobs WHERE id = %s", job2)
        check("only 0 videos reached READY" in reason, "reason says why", reason)
        eq(c.count_state(job2, "FAILED"), 10, "outliers FAILED")
        c.kill9(bad)
        c.worker("architect")
        r = c.request("nf.retry", {"v": 1, "job_id": job2})
        eq((r.get("ok"), r.get("restored")), (True, 10), "retry answer")
        c.wait(lambda: c.job_status(job2) == "completed", 30, "completed after retry")
        eq(c.count_state(job2, "EXPORTED"), 10, "exported after retry")
        r = c.request("nf.retry", {"v": 1, "job_id": job2})
        check(r["ok"] is False and "nothing to retry" in r["error"], "nothing left to retry", r)
    finally:
        c.stop()


def retry_running_refused():
    """nf.retry and nf.resume refuse a job that is still running, naming its status; its
    discovery lease stays (a retry used to clear it, and discovery ran twice)."""
    c = Cluster("retryrunning", 26830)
    try:
        c.start_broker()
        hang = c.worker("discover", "--mode", "hang")
        job = c.submit(count=10)
        c.wait(lambda: c.job_status(job) == "running" and c.query1(
            "SELECT lease_token FROM nf_jobs WHERE id = %s", job) is not None, 20, "discovery running")
        token = c.query1("SELECT lease_token FROM nf_jobs WHERE id = %s", job)
        for service in ("nf.retry", "nf.resume"):
            r = c.request(service, {"v": 1, "job_id": job})
            check(r.get("ok") is False and f"job {job} is running" in r.get("error", ""),
                  f"{service} refuses a running job", r)
        eq(c.query1("SELECT lease_token FROM nf_jobs WHERE id = %s", job), token, "the lease is kept")
        eq(c.job_status(job), "running", "still running")
        c.kill9(hang)
    finally:
        c.stop()


def sigterm_drain():
    """SIGTERM: a worker finishes the task in hand; the broker drains and exits 0."""
    c = Cluster("drain", 26210, NF_MIN_READY="1")
    try:
        broker = c.start_broker()
        c.worker("discover")
        w = c.worker("scrape", "--delay-ms", "1500")
        job = c.submit(count=3, top_n=3)
        c.wait(lambda: c.query1("SELECT count(*) FROM nf_videos WHERE job_id = %s AND lease_token IS NOT NULL", job) == 1, 20, "task in hand")
        w.send_signal(15)
        eq(w.wait(10), 0, "worker exit code after drain")
        # The reply left before the worker exited; the broker commits it in its next cycle.
        c.wait(lambda: c.count_state(job, "RAW") == 1, 10, "the task in hand was finished and applied")
        broker.send_signal(15)
        eq(broker.wait(40), 0, "broker exit code after drain")
    finally:
        c.stop()


def s_collect(sub, seconds, until):
    """Read (topic, body) pairs from SUB until UNTIL(events) or SECONDS pass."""
    events, deadline = [], time.time() + seconds
    while time.time() < deadline and not until(events):
        if sub.poll(100):
            topic, body = sub.recv_multipart()
            events.append((topic.decode(), msgpack.unpackb(body, raw=False)))
    return events


def pub_events():
    """PUB: every transition of a job is published once on its own topic (video and job
    events match the history tables), a job's topic carries no other job's events, and
    nf.stats arrives every second with the services and their workers."""
    c = Cluster("pub", 26400, NF_MIN_READY="1")
    try:
        c.start_broker()
        pub = f"tcp://127.0.0.1:{c.ports[2]}"
        every = c.ctx.socket(zmq.SUB)
        every.setsockopt(zmq.LINGER, 0)
        every.connect(pub)
        every.setsockopt(zmq.SUBSCRIBE, b"nf.job.")
        every.setsockopt(zmq.SUBSCRIBE, b"nf.stats.")
        # Jobs are submitted before any worker exists, so the second
        # subscriber can name the first job's topic before anything moves.
        a = c.submit("pub a", count=12, top_n=5)
        b = c.submit("pub b", count=8, top_n=3)
        one = c.ctx.socket(zmq.SUB)
        one.setsockopt(zmq.LINGER, 0)
        one.connect(pub)
        one.setsockopt(zmq.SUBSCRIBE, f"nf.job.{a}.".encode())
        time.sleep(0.5)   # ZeroMQ's slow joiner: let both subscriptions reach the broker
        c.all_workers()
        done = ("completed", "partial", "failed")

        def finished(evs):
            ends = {e["job_id"] for t, e in evs if e.get("type") == "job" and e.get("to") in done}
            return ends >= {a, b}
        events = s_collect(every, 60, finished)
        check(finished(events), "both jobs' final events received", [e for t, e in events if e.get("type") == "job"])
        events += s_collect(every, 2.5, lambda evs: False)   # the jobs take under a second: wait for stats
        for job in (a, b):
            mine = [(t, e) for t, e in events if t.startswith("nf.job.") and e["job_id"] == job]
            for t, e in mine:
                eq(t, f"nf.job.{job}.", "topic of a job event")
                eq(e["v"], 1, "event version")
            jobs = [(e["from"], e["to"]) for t, e in mine if e["type"] == "job"]
            hist = c.query("SELECT from_status, to_status FROM nf_job_history WHERE job_id = %s "
                           "ORDER BY id", job)
            eq(jobs, [tuple(r) for r in hist], f"job {job} events = job history")
            vids = sorted((e["video_id"], e["from"] or "", e["to"]) for t, e in mine
                          if e["type"] == "video" and e["from"] != e["to"])
            vhist = sorted((r[0], r[1] or "", r[2]) for r in c.query(
                "SELECT video_id, from_state, to_state FROM nf_video_history WHERE job_id = %s", job))
            check(len(vhist) > 0, "video history rows exist")
            eq(vids, vhist, f"job {job} video events = video history")
        stats = [e for t, e in events if t == "nf.stats."]
        check(len(stats) >= 2, "stats published every second", len(stats), sorted({t for t, e in events}))
        last = stats[-1]
        eq((last["v"], last["type"], last["database"]), (1, "stats", True), "stats header")
        for svc in ("discover", "scrape", "sanitize", "geo", "analyze", "architect", "export"):
            eq(last["services"][svc]["workers"], 1, f"workers of {svc} in stats")
        check(last["applied"] > 0, "stats count applied results", last)
        only = s_collect(one, 2, lambda evs: False)
        check(len(only) > 0, "the job-topic subscriber received events")
        eq({e["job_id"] for t, e in only}, {a}, "a job's topic carries only that job")
        # It subscribed after the submission (and the admission, which follows
        # it at once), before any worker existed: every event from the first
        # stage's dispatch on, in order.
        all_a = [e for t, e in events if t.startswith("nf.job.") and e["job_id"] == a]
        first = all_a.index(only[0][1])
        dispatched = next(i for i, e in enumerate(all_a) if e["type"] == "job" and e["to"] == "running")
        check(first <= dispatched, "the job-topic subscriber was there before work moved", all_a[:first + 1])
        eq([e for t, e in only], all_a[first:], "the job-topic subscriber saw every later event of its job")
        every.close()
        one.close()
    finally:
        c.stop()


def priority_admission():
    """NF_MAX_ACTIVE_JOBS=1: one job active at a time, the waiting ones admitted high,
    standard, bulk, background (then by age); with room for all, claims serve the
    high-priority job's videos before the bulk job's."""
    c = Cluster("prio", 26410, NF_MAX_ACTIVE_JOBS="1")
    try:
        c.start_broker()
        first = c.submit("first", count=12, top_n=5, priority="background")
        c.wait(lambda: c.job_status(first) == "queued", 10, "the first job admitted at once")
        bg = c.submit("bg", count=12, top_n=5, priority="background")
        bulk = c.submit("bulk", count=12, top_n=5, priority="bulk")
        std = c.submit("std", count=12, top_n=5)
        high = c.submit("high", count=12, top_n=5, priority="high")
        time.sleep(1.5)   # a few broker ticks: nobody else is admitted while one is active
        eq([c.job_status(j) for j in (bg, bulk, std, high)], ["pending"] * 4, "the others wait")
        c.all_workers()
        jobs = (first, bg, bulk, std, high)
        c.wait(lambda: all(c.job_status(j) == "completed" for j in jobs), 60, "all five completed")
        order = [r[0] for r in c.query("SELECT job_id FROM nf_job_history WHERE to_status = 'queued' ORDER BY id")]
        eq(order, [first, high, std, bulk, bg], "admission order")
        spans = c.query("SELECT job_id, min(at) FILTER (WHERE to_status = 'queued'), "
                        "max(at) FILTER (WHERE to_status = 'completed') FROM nf_job_history GROUP BY 1")
        spans = sorted(spans, key=lambda r: order.index(r[0]))
        for prev, nxt in zip(spans, spans[1:]):
            check(nxt[1] >= prev[2], "a job is admitted only after the previous one ended", prev, nxt)
    finally:
        c.stop()

    c = Cluster("prio_claim", 26420)
    try:
        c.start_broker()
        c.worker("discover")
        bulk = c.submit("bulk", count=30, top_n=5, priority="bulk")
        high = c.submit("high", count=30, top_n=5, priority="high")
        c.wait(lambda: c.count_state(bulk, "DISCOVERED") == 30 and c.count_state(high, "DISCOVERED") == 30,
               20, "both jobs discovered")
        c.worker("scrape", "--delay-ms", "5")
        c.wait(lambda: c.count_state(bulk, "RAW") + c.count_state(high, "RAW") == 60, 30, "60 RAW")
        last_high = c.query1("SELECT max(id) FROM nf_video_history WHERE job_id = %s AND to_state = 'RAW'", high)
        first_bulk = c.query1("SELECT min(id) FROM nf_video_history WHERE job_id = %s AND to_state = 'RAW'", bulk)
        check(last_high < first_bulk, "every high-priority video scraped before any bulk one", last_high, first_bulk)
    finally:
        c.stop()


def roles():
    """CURVE roles (issue 24): a key's role is the NF_CURVE_ALLOW folder it
    is in (nf-keygen --role puts it there). A viewer reads status, lists,
    downloads exports, runs nf-monitor and gets events, and is refused
    submit, cancel, retry and resume; a worker's key is refused at the
    client and event sockets; an operator's or viewer's key cannot register
    as a worker; an unknown key is refused at every socket."""
    import openpyxl
    c = Cluster("roles", 26850, curve=True)
    try:
        keygen = f"{BUILD}/tools/nf-keygen"
        for role, name in (("viewer", "viewer1"), ("worker", "worker1"), ("operator", "operator1")):
            r = subprocess.run([keygen, "-d", c.keydir, "--role", role, "--allow", c.allowdir, name],
                               capture_output=True, text=True, timeout=10)
            eq(r.returncode, 0, f"nf-keygen --role {role}: {r.stderr}")
            check(os.path.exists(os.path.join(c.allowdir, role + "s", name + ".cert")), f"{name} listed as a {role}")
        r = subprocess.run([keygen, "-d", c.keydir, "--role", "admin", "--allow", c.allowdir, "x"],
                           capture_output=True, text=True, timeout=10)
        eq(r.returncode, 2, "an unknown role is a usage error")
        c.start_broker()
        c.all_workers(skip=("export",))
        c.real_worker("nf-exporter")
        job = c.submit("roles", count=20, top_n=5)
        c.wait(lambda: c.job_status(job) == "completed", 60, "job completed")
        submit = f"{BUILD}/tools/nf-submit"

        def as_key(name, *args, exe=submit):
            return subprocess.run([exe, *args], env=c.env({"NF_CURVE_CERT": c.key(name), "NF_TIMEOUT_MS": "1500"}),
                                  capture_output=True, text=True, timeout=30)
        # The viewer reads...
        r = as_key("viewer1", "status", str(job))
        check(r.returncode == 0 and "completed" in r.stdout, "a viewer reads a job's status", r.stdout, r.stderr)
        r = as_key("viewer1", "list")
        check(r.returncode == 0 and "roles" in r.stdout, "a viewer lists the jobs", r.stdout, r.stderr)
        out = os.path.join(c.logdir, "viewer.xlsx")
        r = as_key("viewer1", "export", str(job), "-o", out)
        eq(r.returncode, 0, f"a viewer downloads the export: {r.stderr}")
        eq(openpyxl.load_workbook(out)["Outliers"].max_row, 6, "the viewer's workbook: 5 outliers and the header")
        r = as_key("viewer1", "--once", exe=f"{BUILD}/tools/nf-monitor")
        check(r.returncode == 0 and "roles" in r.stdout, "nf-monitor needs only a viewer's key", r.stdout, r.stderr)
        # ...and changes nothing.
        for args, service in ((["viewer niche", "--count", "5"], "nf.submit"), (["cancel", str(job)], "nf.cancel"),
                              (["retry", str(job)], "nf.retry"), (["resume", str(job)], "nf.resume")):
            r = as_key("viewer1", *args)
            check(r.returncode == 1 and f"{service} needs an operator's key; this key is a viewer's" in r.stderr,
                  f"a viewer is refused {service}", r.returncode, r.stderr)
        eq(c.query1("SELECT count(*) FROM nf_jobs"), 1, "the viewer submitted nothing")
        r = as_key("operator1", "retry", str(job))
        check("nothing to retry" in r.stderr, "an operator's key reaches nf.retry", r.stderr)
        # A worker's key is no client...
        r = as_key("worker1", "list")
        check(r.returncode == 3 and "refused this program's CURVE key" in r.stderr,
              "a worker's key is refused every client service", r.returncode, r.stderr)
        # ...and only a worker's key serves.
        for name in ("viewer1", "operator1", "intruder"):
            w = c.spawn([f"{BUILD}/tests/nf-testworker", "geo", "--tag", name], f"worker-as-{name}.log",
                        {"NF_CURVE_CERT": c.key(name)})
            c.wait(lambda: "refused this program's CURVE key" in open(w.log).read(), 20,
                   f"a worker with {name}'s key is refused")
        w = c.spawn([f"{BUILD}/tests/nf-testworker", "geo", "--tag", "worker1"], "worker-as-worker1.log",
                    {"NF_CURVE_CERT": c.key("worker1")})
        c.wait(lambda: 'nf_workers{service="geo"} 2' in c.metrics_text(), 20, "the worker's key registers")
        check("as 'worker:worker1'" in open(c.broker.log).read(), "the log names the role and the key")
        # Events: operators and viewers, not workers, not strangers.
        subs = {}
        for name in ("viewer1", "operator1", "worker1", "intruder"):
            sock = c.ctx.socket(zmq.SUB)
            sock.setsockopt(zmq.LINGER, 0)
            sock.curve_publickey, sock.curve_secretkey = make_keys_read(c.key(name))
            sock.curve_serverkey = c.curve["broker"][0]
            sock.setsockopt(zmq.SUBSCRIBE, b"nf.stats.")
            sock.connect(f"tcp://127.0.0.1:{c.ports[2]}")
            subs[name] = sock
        for name, admitted in (("viewer1", True), ("operator1", True), ("worker1", False), ("intruder", False)):
            got = subs[name].poll(3000)
            eq(bool(got), admitted, f"events reach {name}")
            subs[name].close()
    finally:
        c.stop()


def make_keys_read(secret_file):
    """(public, secret) Z85 bytes of an nf-keygen NAME.cert_secret file."""
    text = open(secret_file).read()
    pub = re.search(r'public-key = "([^"]+)"', text).group(1)
    sec = re.search(r'secret-key = "([^"]+)"', text).group(1)
    return pub.encode(), sec.encode()


def curve():
    """CURVE on: workers, clients and subscribers with allowed keys work; a peer
    with another key, or without CURVE, is refused at the handshake and the
    broker logs and counts it; a key added to the allow folder is admitted;
    incomplete settings are refused at start. And nf-keygen itself."""
    c = Cluster("curve", 26470, curve=True)
    try:
        c.start_broker()          # its readiness check is a CURVE request
        c.all_workers()
        job = c.submit("budget travel", count=30, top_n=10)
        c.wait(lambda: c.job_status(job) == "completed", 60, "job completed over CURVE")
        eq(c.duplicate_transitions(), 0, "duplicate transitions")
        submit = f"{BUILD}/tools/nf-submit"

        def nf_submit(*args, **env):
            return subprocess.run([submit, *args], env=c.env({"NF_TIMEOUT_MS": "1500", **env}),
                                  capture_output=True, text=True, timeout=30)
        r = nf_submit("status", str(job))
        eq(r.returncode, 0, "nf-submit with the member key")
        check("completed" in r.stdout, "status over CURVE", r.stdout)
        # Subscribers: the member key gets the stats, the intruder nothing.
        good, bad = c.curve_socket(zmq.SUB), c.curve_socket(zmq.SUB, "intruder")
        for sock in (good, bad):
            sock.setsockopt(zmq.SUBSCRIBE, b"nf.stats.")
            sock.connect(f"tcp://127.0.0.1:{c.ports[2]}")
        check(good.poll(3000), "stats reach a subscriber with an allowed key")
        check(not bad.poll(2500), "no events reach a subscriber with an unknown key")
        good.close()
        bad.close()
        # A client with an unknown key: refused, and told so.
        r = nf_submit("list", NF_CURVE_CERT=c.key("intruder"))
        eq(r.returncode, 3, "nf-submit with an unknown key: unreachable")
        check("refused this program's CURVE key" in r.stderr, "the refusal is named", r.stderr)
        # A client without CURVE gets no answer at all.
        plain = c.ctx.socket(zmq.DEALER)
        plain.setsockopt(zmq.LINGER, 0)
        plain.connect(f"tcp://127.0.0.1:{c.ports[1]}")
        plain.send_multipart([b"", b"MDPC01", b"mmi.service", b"nf.status"])
        check(not plain.poll(1500), "a plain client gets no reply from a CURVE broker")
        plain.close()
        # A worker with an unknown key never registers and logs why.
        intruder = c.spawn([f"{BUILD}/tests/nf-testworker", "sanitize", "--tag", "intruder"],
                           "worker-intruder.log", {"NF_CURVE_CERT": c.key("intruder")})
        c.wait(lambda: "refused this program's CURVE key" in open(intruder.log).read(), 20,
               "the intruder worker logs the refusal")
        def counter(name):
            return int(re.search(rf"^{name} (\d+)$", c.metrics_text(), re.M).group(1))
        c.wait(lambda: counter("nf_curve_refused_total") >= 3, 10, "refusals counted")
        check(counter("nf_curve_admitted_total") >= 8, "admissions counted (7 workers, clients)")
        check('nf_workers{service="sanitize"} 1' in c.metrics_text(), "only the member sanitizer registered")
        log = open(c.broker.log).read()
        check("CURVE: refused a peer from 127.0.0.1: key not in NF_CURVE_ALLOW/operators or /viewers, key "
              + c.curve["intruder"][0].decode() in log, "the broker logs the refused key")
        check("ready for 'scrape' (1 serving) from 127.0.0.1 as 'worker:member'" in log,
              "the broker logs each worker's address, role and certificate name")
        # Allowing the key needs no restart: the folders are re-read.
        for role in ("workers", "operators"):
            shutil.copy(os.path.join(c.keydir, "intruder.cert"), os.path.join(c.allowdir, role))
        r = nf_submit("list", NF_CURVE_CERT=c.key("intruder"))
        eq(r.returncode, 0, "admitted once its certificate is in the allow folder")
        c.wait(lambda: 'nf_workers{service="sanitize"} 2' in c.metrics_text(), 40,
               "the reconnecting intruder worker admitted too")
        # Incomplete or wrong settings: refused at start, naming the setting.
        for argv, env, rc, words in (
                ([f"{BUILD}/broker/nf-broker"], {"NF_CURVE_CERT": c.key("broker"), "NF_CURVE_ALLOW": "",
                                                 "NF_WORKERS_BIND": "tcp://127.0.0.1:26479"}, 1, "NF_CURVE_ALLOW"),
                ([f"{BUILD}/broker/nf-broker"], {"NF_CURVE_CERT": c.key("broker"),
                                                 "NF_CURVE_ALLOW": c.key("member")}, 1, "is not a folder"),
                ([f"{BUILD}/broker/nf-broker"], {"NF_CURVE_CERT": c.key("broker"), "NF_CURVE_ALLOW": c.keydir},
                 1, "certificate(s) at its top; a key's role is the folder it is in"),
                ([f"{BUILD}/broker/nf-broker"], {"NF_CURVE_CERT": c.key("broker"),
                                                 "NF_CURVE_ALLOW": os.path.join(c.allowdir, "viewers")},
                 1, "has no folder workers/"),
                ([f"{BUILD}/tests/nf-testworker", "geo"], {"NF_CURVE_BROKER_CERT": ""}, 1, "NF_CURVE_BROKER_CERT"),
                ([submit, "list"], {"NF_CURVE_CERT": "/nonexistent.cert"}, 2, "no certificate file"),
                ([submit, "list"], {"NF_CURVE_CERT": os.path.join(c.keydir, "member.cert"),
                                    "NF_CURVE_BROKER_CERT": "/etc/hostname"}, 2, "not a certificate")):
            r = subprocess.run(argv, env=c.env(env), capture_output=True, text=True, timeout=60)
            eq(r.returncode, rc, f"exit code of {argv[0]} with {env}")
            check(words in r.stdout + r.stderr, f"{argv[0]} names the problem", words, r.stderr)
    finally:
        c.stop()
    # nf-keygen: 0600 secrets, no silent overwrite, --show, names checked.
    with tempfile.TemporaryDirectory() as d:
        keygen = f"{BUILD}/tools/nf-keygen"
        r = subprocess.run([keygen, "-d", d, "alpha"], capture_output=True, text=True)
        eq(r.returncode, 0, "nf-keygen exit code")
        pub = r.stdout.split()[0]
        eq(len(pub), 40, "a Z85 public key printed")
        eq(oct(os.stat(os.path.join(d, "alpha.cert_secret")).st_mode & 0o777), "0o600", "secret file mode")
        check("secret-key" not in open(os.path.join(d, "alpha.cert")).read(), "the public file has no secret")
        r = subprocess.run([keygen, "-d", d, "alpha"], capture_output=True, text=True)
        eq(r.returncode, 1, "an existing certificate is kept")
        r = subprocess.run([keygen, "--show", os.path.join(d, "alpha.cert")], capture_output=True, text=True)
        eq(r.stdout.split(), [pub, "alpha"], "--show prints the key and name")
        r = subprocess.run([keygen, "-d", d, "../evil"], capture_output=True, text=True)
        eq(r.returncode, 2, "a name with a slash is refused")


run({f.__name__: f for f in (full_pipeline, thousand_tasks, kill_worker, always_fails, crash_poison,
                             kill_broker, busy_restart, late_reply, long_task, replay_usage, garbage_frames, bad_envelope, pg_restart, submit_validation, state_checks, added_stage, deaf_client, same_id, zguide_worker, exposure, oversized_input, revoked_grant,
                             cancel_and_retry, retry_running_refused, slow_database, sigterm_drain, pub_events, priority_admission, roles, retention, curve)})
