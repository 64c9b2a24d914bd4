"""What the pipeline benchmarks share: a build, a throwaway durable
PostgreSQL, nf-ytsim, a broker with real workers, and clean-up of exactly
what was started (by pid), also on failure or Ctrl-C. Every wait is bounded.

A benchmark is `bench/NAME.py`; it calls `Bench(name, port)` and uses the
harness of the integration tests (tests/integration/harness.py) for the
broker and its workers."""
import atexit, json, os, signal, statistics, subprocess, sys, tempfile, time, urllib.request

SRC = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.abspath(os.environ.get("NF_BENCH_BUILD", os.path.join(SRC, "build")))
PY = "/usr/bin/python3"   # Debian's, with psycopg2, pyzmq, msgpack, openpyxl


def build():
    subprocess.run(["bash", "scripts/deps.sh"], cwd=SRC, check=True)
    subprocess.run(["cmake", "-S", SRC, "-B", BUILD, "-DCMAKE_BUILD_TYPE=RelWithDebInfo"], check=True,
                   stdout=subprocess.DEVNULL)
    subprocess.run(["cmake", "--build", BUILD, f"-j{os.cpu_count()}"], check=True, stdout=subprocess.DEVNULL)


class Bench:
    """Builds, starts PostgreSQL on PORT (durable: fsync and
    synchronous_commit on, as tests/pg.sh sets them) and leaves ports
    PORT+1.. to the benchmark. Ends everything at exit."""

    def __init__(self, name, port):
        self.name, self.port = name, port
        build()
        self.dir = tempfile.mkdtemp(prefix=f"nf-bench-{name}.")
        os.chmod(self.dir, 0o755)
        self.pgdir = os.path.join(self.dir, "pg")
        self.clusters, self.procs = [], []
        atexit.register(self.cleanup)
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: sys.exit(130))
        subprocess.run(["bash", os.path.join(SRC, "tests/pg.sh"), "start", self.pgdir, str(port)], check=True)
        os.environ.update({"NF_BUILD_DIR": BUILD, "NF_SOURCE_DIR": SRC, "NF_TEST_PG_PORT": str(port)})
        sys.path.insert(0, os.path.join(SRC, "tests", "integration"))
        import harness   # reads the settings above when imported
        self.harness = harness

    def cluster(self, port_base, **broker_env):
        """A broker's database and ports (harness.Cluster); workers are
        started with c.real_worker."""
        c = self.harness.Cluster(f"bench_{self.name}", port_base, pg_port=self.port, **broker_env)
        self.clusters.append(c)
        return c

    def spawn(self, argv, log):
        f = open(os.path.join(self.dir, log), "ab")
        p = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT)
        p.log = os.path.join(self.dir, log)
        self.procs.append(p)
        return p

    def ytsim(self, port, *args):
        """nf-ytsim on PORT; returns its base URL once it answers."""
        self.spawn([f"{BUILD}/tools/nf-ytsim", "--port", str(port), "--seed", "7", "--now", "2026-06-01",
                    "--threads", str(max(2, os.cpu_count())), *args], f"ytsim-{port}.log")
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                sim_stats(base)
                return base
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("nf-ytsim did not start")

    def pgbench(self, seconds, clients):
        """pgbench -N (single-row updates, one commit each) on this
        PostgreSQL, in a database of its own; returns TPS."""
        db = "pgbench"
        env = dict(os.environ, PGHOST="127.0.0.1", PGPORT=str(self.port), PGUSER="postgres")
        subprocess.run(["psql", "-qc", f"CREATE DATABASE {db}"], env=env, stderr=subprocess.DEVNULL)
        subprocess.run(["pgbench", "-i", "-q", "-s", "10", db], env=env, check=True, capture_output=True)
        out = subprocess.run(["pgbench", "-N", "-n", "-c", str(clients), "-j", str(min(clients, 2)), "-T",
                              str(seconds), db], env=env, check=True, capture_output=True, text=True).stdout
        for line in out.splitlines():
            if line.startswith("tps = "):
                return float(line.split("=")[1].split()[0])
        raise RuntimeError("no tps in pgbench output:\n" + out)

    def cleanup(self):
        for c in self.clusters:
            self.harness.stop_procs(c.procs)
        if hasattr(self, "harness"):
            self.harness.stop_procs(self.procs)
        subprocess.run(["bash", os.path.join(SRC, "tests/pg.sh"), "destroy", self.pgdir], capture_output=True)
        if os.environ.get("NF_BENCH_KEEP") == "1":
            print(f"logs kept in {self.dir} and {BUILD}/test-logs", file=sys.stderr)
        else:
            subprocess.run(["rm", "-rf", self.dir])


SERVICES = ("discover", "scrape", "sanitize", "geo", "analyze", "architect", "export")


def start_pipeline(c, env, scrapers=1, sanitizers=1, geos=1):
    """The broker of cluster C, then real workers of every stage (one each,
    or as many scrapers, sanitizers and geo validators as asked), with ENV;
    returns once the broker has a worker of every stage. The number of
    worker processes."""
    c.start_broker(env)
    workers = [("nf-scraper", "discover")] + [("nf-scraper", "scrape")] * scrapers \
        + [("nf-sanitizer",)] * sanitizers + [("nf-geo-validator",)] * geos \
        + [("nf-analyst",), ("nf-architect",), ("nf-exporter",)]
    for exe, *args in workers:
        c.real_worker(exe, *args, extra=env)
    c.wait(lambda: all(c.mmi(s) == "200" for s in SERVICES), 30, "a worker of every stage")
    return len(workers)


def sim_stats(base):
    with urllib.request.urlopen(base + "/_sim/stats", timeout=5) as r:
        return json.load(r)


def sim_env(base, **extra):
    """The settings that point nf-scraper at nf-ytsim, without politeness pauses."""
    return {"NF_YOUTUBE_API_URL": base + "/youtube/v3", "NF_YOUTUBE_WEB_URL": base,
            "NF_YOUTUBE_API_KEY": "bench", "NF_HTTP_RATE": "0", "NF_HTTP_DELAY_MS": "0", **extra}


def wait_job(c, job, seconds, final=("completed", "partial", "failed", "cancelled")):
    c.wait(lambda: c.job_status(job) in final, seconds, f"job {job} to finish")
    return c.job_status(job)


def metric(text, name, labels=""):
    """The value of one sample in Prometheus text."""
    key = name + (("{" + labels + "}") if labels else "")
    for line in text.splitlines():
        if line.startswith(key + " "):
            return float(line.split()[-1])
    return None


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return None


def median_spread(values):
    """'median (min..max, n=K)'; whole numbers from 1,000 on (.3g wrote 8.31e+03)."""
    f = (lambda v: f"{v:,.0f}") if min(values) >= 1000 else (lambda v: f"{v:.3g}")
    return f"{f(statistics.median(values))} ({f(min(values))}..{f(max(values))}, n={len(values)})"


def machine():
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores ({cpu}), {mem:.0f} GiB"
