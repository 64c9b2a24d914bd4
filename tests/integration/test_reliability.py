"""Reliability suite (issue 10), the real broker and workers against nf-ytsim:
a chaos run compared with a clean run of the same seed, a poison task, hostile
niche names to a workbook, hostile peers at every socket, valgrind on the
long-running programs. Run one: test_reliability.py NAME. Figures go to
stdout; RELIABILITY.md quotes them."""
import os, random, shutil, signal, socket, struct, subprocess, tempfile, threading, time, urllib.request

import msgpack
import openpyxl
import zmq

from harness import BUILD, SRC, Cluster, Sim, check, eq, run

FINAL = ("completed", "partial", "failed", "cancelled")
# Every stage, one process each, and two scrapers: name -> (executable, args).
ROLES = {"discover": ("nf-scraper", ("discover",)), "scrape-1": ("nf-scraper", ("scrape",)),
         "scrape-2": ("nf-scraper", ("scrape",)), "sanitize": ("nf-sanitizer", ()),
         "geo": ("nf-geo-validator", ()), "analyze": ("nf-analyst", ()),
         "architect": ("nf-architect", ()), "export": ("nf-exporter", ())}
FAULTS = ["500:0.05", "503:0.03", "429:0.03", "reset:0.02", "truncate:0.02"]


def export_rows(c, job):
    """The workbook of JOB, as nf-submit exports it: the Outliers sheet as
    dicts, the Metadata sheet as a key -> value map, and the workbook."""
    path = os.path.join(c.logdir, f"job-{job}.xlsx")
    p = subprocess.run([f"{BUILD}/tools/nf-submit", "export", str(job), "-o", path], env=c.env(),
                       capture_output=True, text=True, timeout=30)
    eq(p.returncode, 0, f"nf-submit export {job}: {p.stderr}")
    wb = openpyxl.load_workbook(path)
    ws = wb["Outliers"]
    header = [cell.value for cell in ws[1]]
    rows = [dict(zip(header, r)) for r in ws.iter_rows(min_row=2, values_only=True)]
    meta = {r[0]: r[1] for r in wb["Metadata"].iter_rows(min_row=2, values_only=True) if r[0]}
    return rows, meta, wb


def role(c, name, extra):
    """A worker of role NAME (ROLES) with settings EXTRA."""
    exe, args = ROLES[name]
    return c.real_worker(exe, *args, extra=extra)


def pipeline(c, sim, env):
    """The broker and one process of every role; {role: Popen}."""
    c.start_broker(env)
    return {name: role(c, name, {**sim.env(), **env}) for name in ROLES}


def s_snapshot(c, job):
    videos = {r[0]: r[1:] for r in c.query(
        "SELECT video_id, state, quality, rejected_reason, rank, md5(coalesce(clean_text, '')) "
        "FROM nf_videos WHERE job_id = %s", job)}
    paths = {}
    for vid, to_state in c.query("SELECT video_id, to_state FROM nf_video_history WHERE job_id = %s "
                                 "ORDER BY id", job):
        paths.setdefault(vid, []).append(to_state)
    return videos, paths


def chaos():
    """1,000 videos with injected 5xx, 429, resets, truncation and latency, while
    workers of every kind and the broker are kill -9'ed at random moments and
    PostgreSQL restarts once: the same videos, states, history paths, outliers
    and scores as a clean run of the same seed; nothing lost, nothing twice."""
    count = int(os.environ.get("NF_CHAOS_VIDEOS", "1000"))
    seed = int(os.environ.get("NF_CHAOS_SEED", "10"))
    max_kills = int(os.environ.get("NF_CHAOS_KILLS", "40"))
    d = tempfile.mkdtemp(prefix="nfpg-chaos-")
    pg = f"{SRC}/tests/pg.sh"
    subprocess.run([pg, "start", d, "25491"], check=True, timeout=120)
    env = {"NF_MAX_ATTEMPTS": "12", "NF_RECONNECT_MAX_MS": "1000", "NF_LEASE_MS": "10000"}
    latency = ["--latency-ms", "5", "--jitter-ms", "15", "--catalog", str(count + 200)]
    try:
        # The clean run.
        c = Cluster("chaos-clean", 26500, pg_port=25491)
        try:
            sim = Sim(c, 26505, *latency)
            pipeline(c, sim, env)
            t0 = time.time()
            job = c.submit("sourdough baking", count=count, top_n=10)
            c.wait(lambda: c.job_status(job) in FINAL, 240, "clean job finished")
            clean_s = time.time() - t0
            eq(c.job_status(job), "completed", "clean job status")
            clean_videos, clean_paths = s_snapshot(c, job)
            clean_rows, _, _ = export_rows(c, job)
            clean_hist = sum(len(p) for p in clean_paths.values())
        finally:
            c.stop()
        eq(len(clean_videos), count, "clean run discovered COUNT videos")

        # The same niche and seed with faults, kills and a PostgreSQL restart.
        rng = random.Random(seed)
        c = Cluster("chaos", 26510, pg_port=25491)
        try:
            faults = [a for f in FAULTS for a in ("--fault", f)] + ["--retry-after", "0"]
            sim = Sim(c, 26515, *latency, *faults)
            procs = pipeline(c, sim, env)
            procs["broker"] = c.broker
            t0 = time.time()
            job = c.submit("sourdough baking", count=count, top_n=10)
            kills, pending, pg_restarted = {}, [], False
            next_kill = time.time() + rng.uniform(0.3, 1.0)
            deadline = time.time() + 300
            while time.time() < deadline:
                status = c.job_status(job)  # None while PostgreSQL is down
                if status in FINAL:
                    break
                now = time.time()
                for item in [p for p in pending if p[0] <= now]:  # restart what was killed
                    pending.remove(item)
                    name = item[1]
                    if name == "broker":
                        procs[name] = c.broker = c.spawn([f"{BUILD}/broker/nf-broker"], "broker.log", env)
                    else:
                        procs[name] = role(c, name, {**sim.env(), **env})
                done = c.query1("SELECT count(*) FROM nf_video_history WHERE job_id = %s", job) or 0
                if not pg_restarted and done > 0.4 * clean_hist:
                    subprocess.run([pg, "restart", d], check=True, timeout=120)
                    pg_restarted = True
                    print(f"chaos: PostgreSQL restarted at {done} of ~{clean_hist} transitions")
                if now >= next_kill and sum(kills.values()) < max_kills:
                    live = [n for n in procs if procs[n].poll() is None and n != "broker"]
                    # The broker one kill in five, a worker of a random role otherwise.
                    name = "broker" if procs["broker"].poll() is None and rng.random() < 0.2 \
                        else rng.choice(live) if live else None
                    if name:
                        c.kill9(procs[name])
                        kills[name] = kills.get(name, 0) + 1
                        pending.append((now + rng.uniform(0.1, 0.8), name))
                    next_kill = now + rng.uniform(0.2, 1.0)
                time.sleep(0.05)
            chaos_s = time.time() - t0
            c.wait(lambda: c.job_status(job) in FINAL, 5, "chaos job finished")
            eq((c.job_status(job), c.query1("SELECT status_reason FROM nf_jobs WHERE id = %s", job)),
               ("completed", c.query1("SELECT status_reason FROM nf_jobs WHERE id = %s", job)),
               "chaos job status (and its reason)")
            check(pg_restarted, "PostgreSQL was restarted during the run")
            videos, paths = s_snapshot(c, job)
            rows, _, _ = export_rows(c, job)
            lost = len(set(clean_videos) - set(videos))
            extra = len(set(videos) - set(clean_videos))
            dups = c.duplicate_transitions()
            # A job-scope stage's attempt is on each of its rows: count it once.
            by_service = c.query("SELECT service, CASE WHEN service IN ('discover', 'analyze', 'export') "
                                 "THEN max(attempt) - 1 ELSE sum(attempt - 1) END, max(attempt) "
                                 "FROM nf_video_history WHERE job_id = %s GROUP BY 1 ORDER BY 1", job)
            retries = sum(n for _, n, _ in by_service)
            errors = c.query1("SELECT count(*) FROM nf_processing_log WHERE job_id = %s", job)
            stats = sim.stats()
            survived = sum(kills.values())
            print(f"chaos: {count} videos, clean {clean_s:.1f} s, chaos {chaos_s:.1f} s")
            print(f"chaos: kills survived {survived} ({', '.join(f'{k} {v}' for k, v in sorted(kills.items()))})")
            print(f"chaos: faults injected {stats['faults']}")
            print(f"chaos: retries {retries} (extra attempts of the tasks that applied), "
                  f"failed attempts logged {errors}")
            print("chaos: retries and most attempts, by stage: "
                  + ", ".join(f"{svc} {n} {m}" for svc, n, m in by_service))
            print(f"chaos: videos lost {lost}, extra {extra}, duplicate transitions {dups}")
            eq(lost, 0, "videos lost")
            eq(extra, 0, "videos not in the clean run")
            eq(dups, 0, "duplicate transitions")
            check(kills.get("broker", 0) >= 1, "the broker was killed", kills)
            check(len(kills) >= 5, "workers of several kinds were killed", kills)
            check(sum(stats["faults"].values()) > 0, "faults were injected", stats["faults"])
            for vid, want in clean_videos.items():
                eq(videos[vid], want, f"state, quality, reason, rank, clean text of {vid}")
                eq(paths[vid], clean_paths[vid], f"history path of {vid}")
            eq([r["Video ID"] for r in rows], [r["Video ID"] for r in clean_rows], "outliers in rank order")
            drift = max(abs(r["Composite score"] / w["Composite score"] - 1) for r, w in zip(rows, clean_rows))
            print(f"chaos: outliers equal; largest relative composite difference {drift:.1e}")
            for r, want in zip(rows, clean_rows):
                eq(r["Quality score"], want["Quality score"], f"quality of {r['Video ID']}")
                # Velocity is views per day at the job's creation, so the composite
                # moves by the seconds between the two jobs: well under 1e-4.
                check(abs(r["Composite score"] - want["Composite score"]) <= 1e-4 * abs(want["Composite score"]),
                      f"composite of {r['Video ID']}", r["Composite score"], want["Composite score"])
            check(c.broker.poll() is None, "the last broker is running")
        finally:
            c.stop()
    finally:
        subprocess.run([pg, "destroy", d], timeout=120)


def poison():
    """A video whose transcript crashes the real sanitizer every time (NF_CRASH_ON):
    a supervisor restarts it, the video ends FAILED after max_attempts, the job
    completes and its workbook lists the failure."""
    c = Cluster("poison-real", 26520, NF_MAX_ATTEMPTS="3")
    try:
        sim = Sim(c, 26525, "--catalog", "100")
        c.start_broker()
        for name in ROLES:
            if name not in ("sanitize", "scrape-2"):
                role(c, name, sim.env())
        job = c.submit("knife sharpening", count=40, top_n=10)
        c.wait(lambda: c.query1("SELECT phase FROM nf_jobs WHERE id = %s", job) != "discover"
               and c.count_state(job, "DISCOVERED") == 0, 60, "every video scraped")
        texts = dict(c.query("SELECT video_id, transcript FROM nf_videos WHERE job_id = %s "
                             "AND state = 'RAW' AND transcript IS NOT NULL ORDER BY video_id", job))
        victim, phrase = None, None
        for vid, text in texts.items():  # 48 bytes of one transcript and of no other
            cut = text.encode()[len(text.encode()) // 2:][:48].decode("utf-8", "ignore")
            if len(cut) > 20 and sum(cut in t for t in texts.values()) == 1:
                victim, phrase = vid, cut
                break
        check(victim, "a transcript with a phrase of its own", len(texts))
        crashes, live = [], None
        deadline = time.time() + 90
        while time.time() < deadline and c.job_status(job) not in FINAL:
            if live is None or live.poll() is not None:  # a restart policy
                if live is not None:
                    crashes.append(live.returncode)
                live = c.real_worker("nf-sanitizer", extra={"NF_CRASH_ON": phrase})
            time.sleep(0.1)
        print(f"poison: {victim} crashed the sanitizer {len(crashes)} times: exit {crashes}")
        eq(c.job_status(job), "completed", "job status")
        eq(crashes, [-signal.SIGABRT] * 3, "one crash per attempt, max_attempts = 3")
        row = c.query("SELECT state, failed_from, attempts, last_error FROM nf_videos "
                      "WHERE job_id = %s AND video_id = %s", job, victim)[0]
        eq(row, ("FAILED", "RAW", 3, "worker lost while holding the task"), "the poison video")
        eq(c.query1("SELECT count(*) FROM nf_videos WHERE job_id = %s AND state = 'FAILED'", job), 1,
           "nothing else failed")
        rows, _, wb = export_rows(c, job)
        eq(len(rows), 10, "outliers exported")
        check(victim not in {r["Video ID"] for r in rows}, "the poison video is not an outlier")
        failed = [r for r in wb["Metadata"].iter_rows(values_only=True) if r[0] == victim]
        eq(len(failed), 1, "the failure is listed once")
        eq(failed[0][1:3], ("RAW", "worker lost while holding the task"), "its state and error")
    finally:
        c.stop()


HOSTILE_NICHES = [
    "'; DROP TABLE nf_jobs; --",
    '"quoted" \\back\\slash %s %n %99999d {{title}} ${HOME} $(id)',
    "../../../etc/passwd",
    "☕ café 東京 🎬 مرحبا עברית",
    '=HYPERLINK("http://evil.example/","click")',
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\u202eevil\u200b zero\ufeffwidth",
    "x" * 198 + "é",  # 200 bytes: the longest niche accepted
]


def hostile_niches():
    """Niche names with SQL, quotes, format strings, paths, formulas, bidi and
    Unicode through the real pipeline to workbooks named safely; 4 KiB, invalid
    UTF-8 and control characters refused with a clear error."""
    c = Cluster("hostile-niches", 26530)
    outdir = os.path.join(c.logdir, "out")
    shutil.rmtree(outdir, ignore_errors=True)
    os.makedirs(outdir)
    try:
        sim = Sim(c, 26535, "--catalog", "60")
        c.start_broker()
        for name in ROLES:
            role(c, name, {**sim.env(), "NF_OUTPUT_DIR": outdir})
        jobs = {n: c.submit(n, count=20, top_n=5) for n in HOSTILE_NICHES}
        refused = [("x" * 4096, "niche: 4096 bytes long, at most 200 allowed"),
                   (b"bad \xff\xfe utf-8", "niche: not valid UTF-8"),
                   ("two\nlines", "niche: contains control characters"),
                   ("tab\there", "niche: contains control characters")]
        for niche, error in refused:
            body = msgpack.packb({"v": 1, "niche": niche}, use_bin_type=False)
            r = c.request("nf.submit", body)
            check(r["ok"] is False and error in r["error"], f"refused: {error}", r)
        p = subprocess.run([f"{BUILD}/tools/nf-submit", "x" * 4096], env=c.env(), capture_output=True,
                           text=True, timeout=10)
        check(p.returncode == 1 and "at most 200 allowed" in p.stderr, "nf-submit prints the refusal",
              p.returncode, p.stderr)
        for niche, job in jobs.items():
            c.wait(lambda: c.job_status(job) in FINAL, 120, f"job of {niche[:30]!r}")
            eq(c.job_status(job), "completed", f"status of {niche[:30]!r}")
            eq(c.query1("SELECT niche FROM nf_jobs WHERE id = %s", job), niche, "stored verbatim")
            rows, meta, wb = export_rows(c, job)
            eq(len(rows), 5, f"outliers of {niche[:30]!r}")
            eq(meta["Niche"], niche, "the workbook names the niche verbatim")
            for ws in wb:
                check(not any(cell.data_type == "f" for row in ws.iter_rows() for cell in row),
                      f"no formula cell in {ws.title} of job {job}")
        eq(c.query1("SELECT count(*) FROM nf_jobs"), len(HOSTILE_NICHES), "jobs (nothing refused stored)")
        # Every file the exporter wrote is inside NF_OUTPUT_DIR, with a plain name.
        names = sorted(os.listdir(outdir))
        check(len(names) == 3 * len(HOSTILE_NICHES), "three files per job", names)
        for n in names:
            check(all(ch.isalnum() or ch in "-._" for ch in n) and not n.startswith("."),
                  "a plain file name", n)
        wb = openpyxl.load_workbook(os.path.join(outdir, [n for n in names if n.endswith(".xlsx")][0]))
        for r in wb["Metadata"].iter_rows():
            for cell in r:
                check(cell.data_type != "f", "no formula in the Metadata sheet", cell.value)
    finally:
        c.stop()


def s_http_junk(port, rnd):
    """Random bytes, a request line of 1 MiB, a 100 MB body: the peer may answer
    or close, and must still be there afterwards."""
    payloads = [bytes(rnd.getrandbits(8) for _ in range(rnd.randint(1, 4096))) for _ in range(20)]
    payloads += [b"GET /" + b"A" * (1 << 20) + b" HTTP/1.1\r\nHost: x\r\n\r\n",
                 b"GET / HTTP/1.1\r\n" + b"X-Junk: " + b"B" * 200000 + b"\r\n\r\n",
                 b"GET /\x00\xff HTTP/9.9\r\n\r\n"]
    for data in payloads:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            try:
                s.sendall(data)
                s.shutdown(socket.SHUT_WR)  # then an answer, or the peer closes
                s.recv(4096)
            except OSError:
                pass  # reset by the peer: a fine answer to garbage
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"POST /youtube/v3/search HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n")
        sent = 0
        chunk = b"\0" * (1 << 20)
        try:
            while sent < 100 * (1 << 20):
                s.sendall(chunk)
                sent += len(chunk)
        except OSError:
            pass  # the peer stopped reading and closed: refused
    return len(payloads) + 1


def s_tcp_junk(port, rnd):
    """Raw random bytes at a ZeroMQ port (a bad ZMTP greeting), then 100 MB."""
    for _ in range(20):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            try:
                s.sendall(bytes(rnd.getrandbits(8) for _ in range(rnd.randint(1, 2048))))
            except OSError:
                pass
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        chunk = b"\xff" + b"\0" * (1 << 20)
        try:
            for _ in range(100):
                s.sendall(chunk)
        except OSError:
            pass  # the peer closed the connection: refused
    return 21


def s_zmtp_subscribe(port, topic):
    """A SUB peer in raw ZMTP 3.0 (NULL security) that sends one subscription."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"\xff" + b"\0" * 8 + b"\x7f\x03\x00" + b"NULL".ljust(20, b"\0") + b"\0" * 32)
        greeting = b""
        while len(greeting) < 64:
            part = s.recv(64 - len(greeting))
            check(part, "the PUB socket's ZMTP greeting")
            greeting += part
        ready = b"\x05READY\x0bSocket-Type" + struct.pack(">I", 3) + b"SUB"
        body = b"\x01" + topic
        try:
            s.sendall(b"\x04" + bytes([len(ready)]) + ready + b"\x02" + struct.pack(">Q", len(body)) + body)
        except OSError:
            pass  # reset by the broker: over its limit
    return 1


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024


def s_slowloris(port, n, stop, source="127.0.0.1"):
    """N connections from SOURCE that each send a header line every second and
    never finish."""
    socks = []
    for _ in range(n):
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(source, 0))
            s.sendall(b"GET /_sim/stats HTTP/1.1\r\nHost: x\r\n")
            socks.append(s)
        except OSError:
            break
    while not stop.wait(1.0):
        for s in socks:
            try:
                s.sendall(b"X-a: b\r\n")
            except OSError:
                pass
    for s in socks:
        s.close()
    return len(socks)


class Trickle(threading.Thread):
    """A slow-loris server: accepts, then sends a valid HTTP response one byte a
    second, forever (until STOP)."""
    def __init__(self, port, body=b'{"items":[]}'):
        super().__init__(daemon=True)
        self.stop = threading.Event()
        self.srv = socket.create_server(("127.0.0.1", port))
        self.srv.settimeout(0.2)
        self.data = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " \
                    + str(len(body)).encode() + b"\r\n\r\n" + body
        self.accepted = 0

    def run(self):
        conns = []
        while not self.stop.is_set():
            try:
                conn, _ = self.srv.accept()
                conns.append([conn, 0])
                self.accepted += 1
            except socket.timeout:
                pass
            for cn in conns:
                if cn[1] < len(self.data):
                    try:
                        cn[0].sendall(self.data[cn[1]:cn[1] + 1])
                        cn[1] += 1
                    except OSError:
                        cn[1] = len(self.data)
            self.stop.wait(0.5)
        for cn in conns:
            cn[0].close()
        self.srv.close()


def sockets():
    """Random frames and a 100 MB frame at the broker's three sockets, junk and
    100 MB bodies and a slow-loris at the metrics port and nf-ytsim, and a
    slow-loris *server* in front of the scraper: every process stays up, a job
    completes while the attacks go on, and the stalled requests fail with a
    timeout."""
    c = Cluster("sockets", 26540, NF_MAX_ATTEMPTS="2")
    rnd = random.Random(11)
    stop = threading.Event()
    try:
        sim = Sim(c, 26545, "--catalog", "60")
        broker = c.start_broker()
        ctx = zmq.Context.instance()
        frames = 0
        for port in c.ports:  # not ZMTP at all: random greetings and a 100 MB stream
            frames += s_tcp_junk(port, rnd)
        for port in c.ports[:2]:  # ZMTP with random frames, then a 100 MB frame
            s = ctx.socket(zmq.DEALER)
            s.setsockopt(zmq.LINGER, 5000)
            s.connect(f"tcp://127.0.0.1:{port}")
            for _ in range(300):
                s.send_multipart([bytes(rnd.getrandbits(8) for _ in range(rnd.randint(0, 300)))
                                  for _ in range(rnd.randint(1, 6))])
                frames += 1
            s.send_multipart([b"", b"MDPW01", b"\x01", b"\0" * (100 * 1024 * 1024)])
            frames += 1
            s.close()
        # The PUB socket reads only subscriptions: random ones, then one of 100 MB.
        s = ctx.socket(zmq.SUB)
        s.setsockopt(zmq.LINGER, 5000)
        s.connect(f"tcp://127.0.0.1:{c.ports[2]}")
        for _ in range(300):
            s.setsockopt(rnd.choice((zmq.SUBSCRIBE, zmq.UNSUBSCRIBE)),
                         bytes(rnd.getrandbits(8) for _ in range(rnd.randint(0, 300))))
            frames += 1
        s.close()
        # One of 100 MB, spoken in raw ZMTP: libzmq's own SUB would keep it in a
        # trie of a node per byte and overflow its stack freeing it. The broker
        # kept it too, at 1.4 GiB, until its PUB socket got a message size limit.
        frames += s_zmtp_subscribe(c.ports[2], b"\0" * (100 * 1024 * 1024))
        time.sleep(2)
        check(broker.poll() is None, "the broker survived the garbage", broker.returncode)
        rss = rss_mib(broker.pid)
        check(rss < 64, "the broker did not keep the 100 MB messages (RSS MiB)", rss)
        http = s_http_junk(c.metrics_port, rnd) + s_http_junk(sim.port, rnd)
        # 70 slow-loris connections from 127.0.0.3 at the metrics port (it takes 64
        # in all, 8 from one address), 50 from 127.0.0.1 at nf-ytsim.
        loris = []
        for port, n, src in ((c.metrics_port, 70, "127.0.0.3"), (sim.port, 50, "127.0.0.1")):
            t = threading.Thread(target=lambda p=port, n=n, src=src: loris.append(s_slowloris(p, n, stop, src)),
                                 daemon=True)
            t.start()
        time.sleep(1)
        check("nf_" in c.metrics_text(), "metrics answer another address during the slow-loris")
        # The pipeline, while the slow-loris connections hold their sockets.
        discover = {name: role(c, name, sim.env()) for name in ROLES}["discover"]
        job = c.submit("pottery wheel", count=30, top_n=5)
        c.wait(lambda: c.job_status(job) in FINAL, 90, "job finished under attack")
        eq(c.job_status(job), "completed", "job status under attack")
        with urllib.request.urlopen(f"http://127.0.0.1:{sim.port}/_sim/stats", timeout=5) as r:
            eq(r.status, 200, "nf-ytsim answers beside the slow-loris connections")
        stop.set()
        time.sleep(1.5)
        check(len(loris) == 2 and all(n > 0 for n in loris), "slow-loris connections were held", loris)
        text = c.metrics_text()
        check("nf_" in text, "metrics answer after the attacks", text[:200])
        print(f"sockets: {frames} random ZeroMQ messages and connections (six of 100 MB), broker RSS "
              f"{rss:.1f} MiB after them; {http} junk HTTP requests and two 100 MB bodies, "
              f"{sum(loris)} slow-loris connections")

        # A slow-loris server in place of the YouTube API.
        yt = Trickle(26548)
        yt.start()
        def seen_gone():  # by its silence, or at once when ZeroMQ reports the connection closed
            log = open(broker.log).read()
            return log.count("(discover) missed its heartbeats") + log.count("(discover): its connection is gone")
        gone = seen_gone()
        c.kill9(discover)
        c.wait(lambda: seen_gone() > gone, 10, "the broker saw the discover worker go")
        c.real_worker("nf-scraper", "discover", extra=sim.env(
            NF_YOUTUBE_API_URL="http://127.0.0.1:26548/youtube/v3", NF_HTTP_TIMEOUT_MS=1500,
            NF_HTTP_RETRIES=0))
        job2 = c.submit("slow loris niche", count=10, top_n=5)
        c.wait(lambda: c.job_status(job2) in FINAL, 60, "the stalled job finished")
        eq(c.job_status(job2), "failed", "a job whose discovery always stalls fails")
        reason = c.query1("SELECT coalesce(last_error, '') || ' ' || coalesce(status_reason, '') "
                          "FROM nf_jobs WHERE id = %s", job2)
        check("timed out" in reason.lower() or "timeout" in reason.lower(), "a timeout error", reason)
        check(yt.accepted >= 2, "the scraper met the slow server on every attempt", yt.accepted)
        yt.stop.set()
        for p in c.procs:  # the broker, nf-ytsim and every worker but the one killed
            if p is not discover:
                check(p.poll() is None, f"{os.path.basename(p.args[0])} is still running", p.returncode)
    finally:
        stop.set()
        c.stop()


def valgrind():
    """The broker, every worker and nf-ytsim under valgrind for a short job with
    injected 500s, truncated and malformed bodies, through the watch pages: no
    memory error and no definite leak in any of them."""
    c = Cluster("valgrind", 26550, NF_HEARTBEAT_MS="500", NF_LIVENESS="10")
    vg = ["valgrind", "--error-exitcode=99", "--leak-check=full", "--errors-for-leak-kinds=definite",
          "--show-leak-kinds=definite", "--track-origins=no", "--child-silent-after-fork=yes"]
    try:
        sim = Sim(c, 26555, "--catalog", "60", "--fault", "500:0.1", "--fault", "truncate:0.05",
                  "--fault", "malformed:0.05", wrap=vg)
        ys = sim.proc
        c.broker = c.spawn([*vg, f"{BUILD}/broker/nf-broker"], "vg-broker.log")
        c.wait(lambda: c.mmi("nf.status") == "200", 120, "broker up under valgrind")
        env = sim.env(NF_HTTP_TIMEOUT_MS=20000)
        workers = [c.spawn([*vg, f"{BUILD}/workers/{exe}", *args], f"vg-{name}.log", env)
                   for name, (exe, args) in ROLES.items() if name != "scrape-2"]
        job = c.submit("valgrind niche", count=40, top_n=5)
        c.wait(lambda: c.job_status(job) in FINAL, 240, "job finished under valgrind")
        eq(c.job_status(job), "completed", "job status under valgrind")
        for p in [*workers, c.broker, ys]:
            p.send_signal(signal.SIGTERM)
        for p in [*workers, c.broker, ys]:
            p.wait(60)
        for p in [*workers, c.broker, ys]:
            text = open(p.log, errors="replace").read()
            name = os.path.basename(p.log)
            summary = text[text.rfind("ERROR SUMMARY"):].splitlines()[0]  # this run's: logs append
            check(summary.startswith("ERROR SUMMARY: 0 errors"), f"{name}: valgrind found errors", text[-3000:])
            eq(p.returncode, 0, f"{name}: exit status")
            in_use = text[text.rfind("in use at exit:"):].splitlines()[0]
            print(f"valgrind: {name}: {in_use}; {summary}")
    finally:
        c.stop()


run({f.__name__: f for f in (chaos, poison, hostile_niches, sockets, valgrind)})
