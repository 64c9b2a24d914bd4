"""Integration-test harness: starts the real nf-broker and workers against a
real PostgreSQL, talks to the broker over real ZeroMQ sockets, and ends only
the processes it started, by pid. Every wait is bounded."""
import json, os, re, shutil, signal, subprocess, sys, time, urllib.request, uuid

import msgpack
import psycopg2
import zmq

BUILD = os.environ["NF_BUILD_DIR"]
SRC = os.environ["NF_SOURCE_DIR"]
PG_PORT = int(os.environ.get("NF_TEST_PG_PORT", "25433"))


def check(cond, what, *values):
    """An assertion that survives python -O and prints the values."""
    if not cond:
        raise AssertionError(what + (": " + repr(values) if values else ""))


def eq(actual, expected, what):
    check(actual == expected, f"{what}: expected {expected!r}, got {actual!r}")


def make_keys(folder, *names):
    """nf-keygen NAME... into FOLDER; {name: (public, secret)} as Z85 bytes."""
    subprocess.run([f"{BUILD}/tools/nf-keygen", "-d", folder, *names], check=True,
                   capture_output=True, timeout=30)
    keys = {}
    for n in names:
        text = open(os.path.join(folder, n + ".cert_secret")).read()
        pub = re.search(r'public-key = "(.{40})"', text).group(1)
        sec = re.search(r'secret-key = "(.{40})"', text).group(1)
        keys[n] = (pub.encode(), sec.encode())
    return keys


def stop_procs(procs, seconds=10):
    """SIGTERM each of PROCS (ours, by pid) still running; SIGKILL what has
    not exited after SECONDS."""
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    deadline = time.time() + seconds
    for p in procs:
        try:
            p.wait(max(0.1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def check_sanitizer_logs(procs):
    """Under ASan/UBSan a report in any process's log (p.log) fails the
    test, even when the job itself went through."""
    for p in procs:
        with open(p.log, "rb") as f:
            text = f.read().decode("utf-8", "replace")
        check("ERROR: AddressSanitizer" not in text and "ERROR: LeakSanitizer" not in text
              and "runtime error:" not in text, f"sanitizer report in {p.log}")


class Cluster:
    """A broker and its workers on loopback. CURVE=True: keys by nf-keygen in
    logdir/keys; the broker admits 'member' as a worker and an operator
    (every worker and client the harness starts, and its own requests) and
    not 'intruder'."""

    def __init__(self, name, port_base, pg_port=PG_PORT, curve=False, **broker_env):
        self.name = name
        self.pg_port = pg_port
        self.db = f"nf_{name}_{uuid.uuid4().hex[:8]}"
        self.ports = (port_base, port_base + 1, port_base + 2)
        self.metrics_port = port_base + 3
        self.procs = []
        self.logdir = os.path.join(BUILD, "test-logs", name)
        os.makedirs(self.logdir, exist_ok=True)
        self.broker = None
        self.broker_env = {"NF_HEARTBEAT_MS": "200", "NF_LIVENESS": "3",
                           "NF_RETRY_BASE_MS": "50", "NF_RETRY_MAX_MS": "200",
                           "NF_LOG_LEVEL": "info",
                           "NF_METRICS_BIND": f"127.0.0.1:{port_base + 3}", **broker_env}
        admin = psycopg2.connect(host="127.0.0.1", port=pg_port, user="postgres", dbname="postgres")
        admin.autocommit = True
        admin.cursor().execute(f'CREATE DATABASE "{self.db}"')
        admin.close()
        self.ctx = zmq.Context.instance()
        self.curve = None
        if curve:
            self.keydir = os.path.join(self.logdir, "keys")
            shutil.rmtree(self.keydir, ignore_errors=True)
            self.curve = make_keys(self.keydir, "broker", "member", "intruder")
            self.allowdir = os.path.join(self.keydir, "allow")
            for role in ("workers", "operators", "viewers"):
                os.makedirs(os.path.join(self.allowdir, role))
            # The harness's own key serves as worker and operator alike.
            for role in ("workers", "operators"):
                shutil.copy(os.path.join(self.keydir, "member.cert"), os.path.join(self.allowdir, role))

    def key(self, name):
        return os.path.join(self.keydir, name + ".cert_secret")

    # -- processes ---------------------------------------------------------
    def env(self, extra=None):
        e = dict(os.environ)
        e.update({"NF_DATABASE_URL": f"postgresql://postgres@127.0.0.1:{self.pg_port}/{self.db}",
                  "NF_WORKERS_BIND": f"tcp://127.0.0.1:{self.ports[0]}",
                  "NF_CLIENTS_BIND": f"tcp://127.0.0.1:{self.ports[1]}",
                  "NF_PUB_BIND": f"tcp://127.0.0.1:{self.ports[2]}",
                  "NF_BROKER": f"tcp://127.0.0.1:{self.ports[0]}",
                  "NF_BROKER_CLIENTS": f"tcp://127.0.0.1:{self.ports[1]}",
                  "NF_BROKER_PUB": f"tcp://127.0.0.1:{self.ports[2]}",
                  "NF_BROKER_ID": f"test-{self.name}",
                  # Tests reach only loopback: no thumbnails from i.ytimg.com
                  # (Sim.env points them at the simulator).
                  "NF_YOUTUBE_IMG_URL": ""})
        if self.curve:
            e.update({"NF_CURVE_CERT": self.key("member"),
                      "NF_CURVE_BROKER_CERT": os.path.join(self.keydir, "broker.cert")})
        e.update(self.broker_env)
        e.update(extra or {})
        return e

    def spawn(self, argv, log, extra=None):
        f = open(os.path.join(self.logdir, log), "ab")
        p = subprocess.Popen(argv, env=self.env(extra), stdout=f, stderr=subprocess.STDOUT)
        p.log = os.path.join(self.logdir, log)
        self.procs.append(p)
        return p

    def start_broker(self, extra=None):
        if self.curve:
            extra = {"NF_CURVE_CERT": self.key("broker"), "NF_CURVE_ALLOW": self.allowdir,
                     "NF_CURVE_BROKER_CERT": "", **(extra or {})}
        self.broker = self.spawn([f"{BUILD}/broker/nf-broker"], "broker.log", extra)
        self.wait(lambda: self.query1("SELECT count(*) FROM pg_tables WHERE tablename = 'nf_jobs'") == 1
                  and self.mmi("nf.status") == "200", 30, "broker up")
        return self.broker

    def worker(self, service, *args, tag=None):
        argv = [f"{BUILD}/tests/nf-testworker", service, *args]
        if tag:
            argv += ["--tag", tag]
        return self.spawn(argv, f"worker-{service}-{tag or 'x'}.log")

    def real_worker(self, exe, *args, extra=None):
        """A stage executable of workers/ (nf-sanitizer, ...)."""
        return self.spawn([f"{BUILD}/workers/{exe}", *args], f"{exe}.log", extra)

    def real_pipeline(self, sim):
        """Every real stage executable, the scrapers and the exporter pointed at SIM."""
        env = sim.env()
        self.real_worker("nf-scraper", "discover", extra=env)
        self.real_worker("nf-scraper", "scrape", extra=env)
        for exe in ("nf-sanitizer", "nf-geo-validator", "nf-analyst", "nf-architect"):
            self.real_worker(exe)
        self.real_worker("nf-exporter", extra=env)

    def fixture_workers(self, fixture, discover=(), scrape=()):
        """discover and scrape served from FIXTURE (nf-testworker --fixture),
        each with more nf-testworker arguments; answers the two processes."""
        path = os.path.join(self.logdir, "fixture.json")
        with open(path, "w") as f:
            json.dump(fixture, f)
        return (self.worker("discover", "--fixture", path, *discover),
                self.worker("scrape", "--fixture", path, *scrape))

    def all_workers(self, skip=()):
        for s in ("discover", "scrape", "sanitize", "geo", "analyze", "architect", "export"):
            if s not in skip:
                self.worker(s)

    def kill9(self, p):
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
            p.wait(10)

    def stop(self):
        stop_procs(self.procs)
        check_sanitizer_logs(self.procs)

    # -- database ------------------------------------------------------------
    def query(self, sql, *args):
        conn = psycopg2.connect(host="127.0.0.1", port=self.pg_port, user="postgres", dbname=self.db)
        try:
            cur = conn.cursor()
            cur.execute(sql, args)
            rows = cur.fetchall() if cur.description else []
            conn.commit()
            return rows
        finally:
            conn.close()

    def query1(self, sql, *args):
        try:
            rows = self.query(sql, *args)
        except psycopg2.Error:
            return None
        return rows[0][0] if rows else None

    def wait(self, cond, seconds, what):
        deadline = time.time() + seconds
        while time.time() < deadline:
            try:
                if cond():
                    return
            except psycopg2.Error:
                pass
            time.sleep(0.1)
        self.dump()
        raise AssertionError(f"timed out after {seconds}s waiting for {what}")

    def dump(self):
        try:
            print("jobs:", self.query("SELECT id, status, phase, status_reason, last_error FROM nf_jobs"))
            print("states:", self.query("SELECT state, count(*) FROM nf_videos GROUP BY 1"))
        except Exception as e:  # the database itself may be the problem
            print("dump failed:", e)

    # -- client protocol -----------------------------------------------------
    def metrics_text(self):
        """The broker's GET /metrics (rendered once a second)."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as r:
            return r.read().decode()

    def metric(self, name):
        """One unlabelled counter or gauge of metrics_text(), or -1 when absent."""
        m = re.search(rf"^{re.escape(name)} (\d+)$", self.metrics_text(), re.M)
        return int(m.group(1)) if m else -1

    def curve_socket(self, kind, key="member"):
        """A pyzmq socket of KIND with this cluster's CURVE keys (if any)."""
        s = self.ctx.socket(kind)
        s.setsockopt(zmq.LINGER, 0)
        if self.curve:
            s.curve_publickey, s.curve_secretkey = self.curve[key]
            s.curve_serverkey = self.curve["broker"][0]
        return s

    def request(self, service, body, timeout=5000):
        s = self.curve_socket(zmq.DEALER)
        s.connect(f"tcp://127.0.0.1:{self.ports[1]}")
        try:
            payload = body if isinstance(body, bytes) else msgpack.packb(body)
            s.send_multipart([b"", b"MDPC01", service.encode(), payload])
            if not s.poll(timeout):
                raise AssertionError(f"no reply to {service} within {timeout} ms")
            frames = s.recv_multipart()
            eq(frames[:3], [b"", b"MDPC01", service.encode()], "reply envelope")
            return frames[3] if service.startswith("mmi.") else msgpack.unpackb(frames[3], raw=False)
        finally:
            s.close()

    def mmi(self, service):
        try:
            return self.request("mmi.service", service.encode(), timeout=500).decode()
        except AssertionError:
            return None

    def submit(self, niche="test niche", priority=None, **options):
        body = {"v": 1, "niche": niche, "options": options}
        if priority:
            body["priority"] = priority
        r = self.request("nf.submit", body)
        check(r.get("ok"), "submit accepted", r)
        return r["job_id"]

    def job_status(self, job):
        return self.query1("SELECT status FROM nf_jobs WHERE id = %s", job)

    def count_state(self, job, state):
        return self.query1("SELECT count(*) FROM nf_videos WHERE job_id = %s AND state = %s", job, state)

    def duplicate_transitions(self):
        return self.query1("SELECT count(*) FROM (SELECT job_id, video_id, to_state, count(*) "
                           "FROM nf_video_history GROUP BY 1, 2, 3 HAVING count(*) > 1) d")


class Sim:
    """nf-ytsim started by the test, on PORT; WRAP: a command it runs under
    (valgrind ...), which is given a minute to start it."""
    def __init__(self, cluster, port, *args, wrap=()):
        self.port = port
        self.proc = cluster.spawn([*wrap, f"{BUILD}/tools/nf-ytsim", "--port", str(port), "--seed", "3",
                                   "--now", "2026-06-01", *args], f"ytsim-{port}.log")
        deadline = time.time() + (60 if wrap else 10)
        while time.time() < deadline:
            try:
                self.stats()
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("nf-ytsim did not start")

    def stats(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/_sim/stats", timeout=5) as r:
            return json.load(r)

    def env(self, **extra):
        e = {"NF_YOUTUBE_API_URL": f"http://127.0.0.1:{self.port}/youtube/v3",
             "NF_YOUTUBE_WEB_URL": f"http://127.0.0.1:{self.port}",
             "NF_YOUTUBE_IMG_URL": f"http://127.0.0.1:{self.port}",
             "NF_YOUTUBE_API_KEY": "test-key", "NF_HTTP_RATE": "0", "NF_HTTP_DELAY_MS": "0",
             "NF_HTTP_MAX_WAIT_MS": "100", "NF_HTTP_TIMEOUT_MS": "3000"}
        e.update({k: str(v) for k, v in extra.items()})
        return e


def run(tests):
    """Run the test named by argv[1] from TESTS (a dict name -> fn)."""
    name = sys.argv[1]
    t0 = time.time()
    tests[name]()
    print(f"PASS {name} ({time.time() - t0:.1f}s)")
