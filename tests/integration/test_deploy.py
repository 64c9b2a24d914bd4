"""Deployment tests (issue 8): nicheflow across hosts made of network
namespaces. Run one: test_deploy.py NAME (as root: it makes namespaces).

multihost: five namespaces made here and deleted always. A switch holds a
bridge; hosts A to D each have one veth link to it, and no other way out:
  A 10.231.0.1  PostgreSQL
  B 10.231.0.2  nf-broker (CURVE on)
  C 10.231.0.3  one of each worker, nf-ytsim on its own loopback, nf-submit
  D 10.231.0.4  one of each worker, nf-ytsim on its own loopback
A niche runs to its workbook. While D's workers are busy, D's link is taken
off the bridge for longer than the lease (packets vanish: D sees no link
error). D's tasks move to C; when the link returns, D's workers reconnect and
resend the replies they finished in the dark, and the broker fences them.
The result has every video exactly once. A worker and a client with a key
the broker does not know are refused."""
import json, os, re, shutil, subprocess, time

import openpyxl
import psycopg2

from harness import BUILD, SRC, check, check_sanitizer_logs, eq, make_keys, run, stop_procs

NET = "10.231.0"
HOSTS = {"a": 1, "b": 2, "c": 3, "d": 4}
LEASE_MS = 3000
CUT_S = 6.0   # > lease, > the broker's 0.6 s worker liveness
STAGES = (("discover", "nf-scraper", "discover"), ("scrape", "nf-scraper", "scrape"),
          ("sanitize", "nf-sanitizer"), ("geo", "nf-geo-validator"), ("analyze", "nf-analyst"),
          ("architect", "nf-architect"), ("export", "nf-exporter"))


def sh(*argv, check_rc=True):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    if check_rc and r.returncode != 0:
        raise AssertionError(f"{' '.join(argv)}: exit {r.returncode}: {r.stderr.strip()}")
    return r


class Net:
    """The switch and the four hosts. Names carry our pid: two runs never meet."""

    def __init__(self, logdir):
        self.tag = f"nf{os.getpid() % 100000}"
        self.sw = f"{self.tag}sw"
        self.ns = {h: f"{self.tag}{h}" for h in HOSTS}
        self.logdir = logdir
        self.procs = []

    def up(self):
        check(os.geteuid() == 0, "the multi-host test makes network namespaces: run it as root")
        check(shutil.which("ip"), "iproute2's ip is needed (scripts/deps.sh installs it)")
        sh("ip", "netns", "add", self.sw)
        # A Docker engine loads br_netfilter, which hands bridged frames to
        # the netfilter hooks of every namespace's bridge (and they stalled
        # this switch's traffic once docker.stack had run): our switch is a
        # plain switch, whatever else runs on the machine.
        for knob in ("iptables", "ip6tables", "arptables"):
            subprocess.run(["ip", "netns", "exec", self.sw, "sysctl", "-qw",
                            f"net.bridge.bridge-nf-call-{knob}=0"], capture_output=True)
        sh("ip", "-n", self.sw, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", self.sw, "link", "set", "br0", "up")
        for h, n in HOSTS.items():
            ns = self.ns[h]
            sh("ip", "netns", "add", ns)
            sh("ip", "-n", self.sw, "link", "add", f"p{h}", "type", "veth", "peer", "name", "eth0",
               "netns", ns)
            sh("ip", "-n", self.sw, "link", "set", f"p{h}", "master", "br0", "up")
            sh("ip", "-n", ns, "addr", "add", f"{NET}.{n}/24", "dev", "eth0")
            sh("ip", "-n", ns, "link", "set", "eth0", "up")
            sh("ip", "-n", ns, "link", "set", "lo", "up")

    def cut(self, h):
        sh("ip", "-n", self.sw, "link", "set", f"p{h}", "nomaster")

    def mend(self, h):
        sh("ip", "-n", self.sw, "link", "set", f"p{h}", "master", "br0")

    def spawn(self, host, argv, log, env):
        f = open(os.path.join(self.logdir, log), "ab")
        p = subprocess.Popen(["ip", "netns", "exec", self.ns[host], *argv], env=env, stdout=f,
                             stderr=subprocess.STDOUT)
        p.log = os.path.join(self.logdir, log)   # ip execs the program: p.pid is its pid
        self.procs.append(p)
        return p

    def run_in(self, host, argv, env, timeout=60):
        return subprocess.run(["ip", "netns", "exec", self.ns[host], *argv], env=env,
                              capture_output=True, text=True, timeout=timeout)

    def fetch(self, host, url):
        r = self.run_in(host, ["/usr/bin/python3", "-c",
                               "import sys, urllib.request; sys.stdout.write(urllib.request.urlopen("
                               f"{url!r}, timeout=3).read().decode())"], os.environ, 15)
        return r.stdout if r.returncode == 0 else ""

    def stop(self):
        stop_procs(self.procs, 15)

    def delete(self):
        for ns in [*self.ns.values(), self.sw]:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def s_counter(text, name):
    m = re.search(rf"^{re.escape(name)} (\d+)$", text, re.M)
    return int(m.group(1)) if m else -1


def multihost():
    logdir = os.path.join(BUILD, "test-logs", "multihost")
    shutil.rmtree(logdir, ignore_errors=True)
    os.makedirs(logdir)
    net = Net(logdir)
    pgdir = os.path.join(logdir, "pg")
    keys = os.path.join(logdir, "keys")
    try:
        net.up()
        # Keys: the broker's, one per worker host, the operator's, an intruder's.
        make_keys(keys, "broker", "host-c", "host-d", "operator", "intruder")
        allow = os.path.join(keys, "allow")
        for role, names in (("workers", ("host-c", "host-d")), ("operators", ("operator",)), ("viewers", ())):
            os.makedirs(os.path.join(allow, role))
            for k in names:
                shutil.copy(os.path.join(keys, k + ".cert"), os.path.join(allow, role))
        base = {k: v for k, v in os.environ.items() if not k.startswith("NF_")}
        base.update({"NF_HEARTBEAT_MS": "200", "NF_LIVENESS": "3", "NF_LOG_LEVEL": "info"})

        # Host A: PostgreSQL on its link address only.
        r = net.run_in("a", ["bash", f"{SRC}/tests/pg.sh", "start", pgdir, "5432"],
                       {**base, "PG_LISTEN": f"{NET}.1", "PG_TRUST_NET": f"{NET}.0/24"}, 120)
        eq(r.returncode, 0, f"postgres on host A: {r.stderr}")
        pgsock = subprocess.run(["bash", f"{SRC}/tests/pg.sh", "where", pgdir], check=True,
                                capture_output=True, text=True).stdout.strip()
        admin = psycopg2.connect(host=pgsock, port=5432, user="postgres", dbname="postgres")
        admin.autocommit = True     # over its unix socket: a file, not the network
        admin.cursor().execute("CREATE DATABASE nicheflow")
        admin.close()
        db = psycopg2.connect(host=pgsock, port=5432, user="postgres", dbname="nicheflow")
        db.autocommit = True

        def q(sql, *args):
            cur = db.cursor()
            cur.execute(sql, args)
            return cur.fetchall()

        # Host B: the broker, CURVE on.
        b = f"tcp://{NET}.2"
        broker = net.spawn("b", [f"{BUILD}/broker/nf-broker"], "broker.log", {
            **base, "NF_DATABASE_URL": f"postgresql://postgres@{NET}.1:5432/nicheflow",
            "NF_WORKERS_BIND": f"{b}:5555", "NF_CLIENTS_BIND": f"{b}:5556",
            "NF_PUB_BIND": f"{b}:5557", "NF_METRICS_BIND": f"{NET}.2:9464",
            "NF_LEASE_MS": str(LEASE_MS), "NF_RETRY_BASE_MS": "200",
            "NF_CURVE_CERT": os.path.join(keys, "broker.cert_secret"), "NF_CURVE_ALLOW": allow})
        member = {**base, "NF_BROKER": f"{b}:5555", "NF_BROKER_CLIENTS": f"{b}:5556",
                  "NF_BROKER_PUB": f"{b}:5557",
                  "NF_CURVE_BROKER_CERT": os.path.join(keys, "broker.cert")}
        operator = {**member, "NF_CURVE_CERT": os.path.join(keys, "operator.cert_secret"),
                    "NF_TIMEOUT_MS": "2000"}
        deadline = time.time() + 60
        while net.run_in("c", [f"{BUILD}/tools/nf-submit", "list"], operator).returncode != 0:
            check(time.time() < deadline and broker.poll() is None, "broker up on host B")
            time.sleep(0.3)

        # Hosts C and D: a simulator on each host's own loopback (the same
        # seed: the same world), and one of each worker.
        for h in ("c", "d"):
            net.spawn(h, [f"{BUILD}/tools/nf-ytsim", "--port", "8089", "--seed", "7",
                          "--catalog", "2000", "--latency-ms", "40"], f"ytsim-{h}.log", base)
            env = {**member, "NF_CURVE_CERT": os.path.join(keys, f"host-{h}.cert_secret"),
                   "NF_YOUTUBE_API_URL": "http://127.0.0.1:8089/youtube/v3",
                   "NF_YOUTUBE_WEB_URL": "http://127.0.0.1:8089", "NF_YOUTUBE_API_KEY": "k",
                   "NF_YOUTUBE_IMG_URL": "http://127.0.0.1:8089",
                   "NF_HTTP_RATE": "0",
                   "NF_CACHE_DIR": os.path.join(logdir, f"cache-{h}")}
            for stage in STAGES:
                # The cut is timed on D's simulator answering a player request:
                # D's scraper is the slow one, a scrape there takes over 0.6 s.
                # Only the scraper: a discovery that lands on D would make its
                # hundreds of requests at 0.3 s each and outlast the wait below
                # (seen under ASan with chromium beside it).
                slow = h == "d" and stage[0] == "scrape"
                net.spawn(h, [f"{BUILD}/workers/{stage[1]}", *stage[2:]], f"{h}-{stage[0]}.log",
                          {**env, "NF_HEALTH_FILE": os.path.join(logdir, f"health-{h}-{stage[0]}"),
                           "NF_HTTP_DELAY_MS": "300" if slow else "0"})
        # An intruder on D: a worker and a client with a key the broker lacks.
        bad = {**member, "NF_CURVE_CERT": os.path.join(keys, "intruder.cert_secret"),
               "NF_TIMEOUT_MS": "1500"}
        intruder = net.spawn("d", [f"{BUILD}/workers/nf-sanitizer"], "d-intruder.log", bad)
        r = net.run_in("d", [f"{BUILD}/tools/nf-submit", "list"], bad)
        eq(r.returncode, 3, "a client with an unknown key: unreachable")
        check("refused this program's CURVE key" in r.stderr, "the client is told why", r.stderr)

        def metrics():
            return net.fetch("b", f"http://{NET}.2:9464/metrics")
        deadline = time.time() + 30
        while not all(f'nf_workers{{service="{s[0]}"}} 2' in metrics() for s in STAGES):
            check(time.time() < deadline, "14 workers registered (7 on C, 7 on D)", metrics())
            time.sleep(0.3)
        check("refused this program's CURVE key" in open(intruder.log).read(),
              "the intruder worker is refused and logs why")
        log = open(broker.log).read()
        for h in ("c", "d"):
            check(f"from {NET}.{HOSTS[h]}" in log and f"as 'worker:host-{h}'" in log,
                  f"the broker logs host {h.upper()}'s workers by address and certificate")
        check("intruder'" not in log and "key not in NF_CURVE_ALLOW" in log,
              "the intruder never registered; its refusal is logged")

        # The niche, from host C, waited on and downloaded there.
        out = os.path.join(logdir, "multi-host.xlsx")
        submit = net.spawn("c", [f"{BUILD}/tools/nf-submit", "multi host", "--count", "120",
                                 "--top-n", "10", "--wait", "-o", out, "--timeout", "240"],
                           "submit.log", {**operator, "NF_TIMEOUT_MS": "5000"})

        def sim_requests(h, kind=None):
            stats = json.loads(net.fetch(h, "http://127.0.0.1:8089/_sim/stats") or "{}")
            return stats.get("requests", {}).get(kind, 0) if kind else stats.get("total", 0)
        # Cut D just after its simulator answered a player request: D's scraper
        # is then 0.3 s from its next request (the timed text), mid-task.
        deadline, before = time.time() + 60, sim_requests("d", "player")
        while True:
            seen = sim_requests("d", "player")
            if seen > before >= 3:
                break
            before = seen
            check(time.time() < deadline and submit.poll() is None, "host D scraping",
                  {"player requests on D": seen, "nf-submit exit": submit.poll()})
            time.sleep(0.05)
        d_at_cut = sim_requests("d")
        t_cut = time.time()
        net.cut("d")
        time.sleep(CUT_S)
        done_in_dark = sim_requests("d") - d_at_cut

        def healthy(h, what="worker"):   # the compose health check, deploy/healthcheck.sh
            env = {**base, "NF_HEALTH_FILE": os.path.join(logdir, f"health-{h}-sanitize"),
                   "NF_METRICS_BIND": f"{NET}.2:9464"}
            return net.run_in(h, ["bash", f"{SRC}/deploy/healthcheck.sh", what], env).returncode == 0
        # The check allows 10 s of silence; D has been cut for CUT_S: age the
        # file by the difference, as if the cut had lasted 10 s.
        d_file = os.path.join(logdir, "health-d-sanitize")
        st = os.stat(d_file)
        os.utime(d_file, (st.st_atime, st.st_mtime - (10 - CUT_S) - 0.5))
        check(not healthy("d"), "D's workers unhealthy after 10 s without their broker")
        check(healthy("c") and healthy("b", "broker"), "C's workers and the broker healthy")
        net.mend("d")
        t_mend = time.time()
        eq(submit.wait(240), 0, "nf-submit --wait exit code (completed)")
        # D's workers come back after their reconnect backoff (up to 3.2 s
        # here), perhaps after the job ended: wait for them and for what they
        # resend, then check that it changed nothing.
        deadline = time.time() + 30
        while (len(re.findall(rf"from {NET}\.4 as 'worker:host-d'", open(broker.log).read())) < 14
               or "; fenced" not in open(broker.log).read()):
            check(time.time() < deadline, "D's workers registered again and their late replies fenced")
            time.sleep(0.2)
        time.sleep(0.5)
        check(healthy("d"), "D's workers healthy again")

        # The result: every video once, every transition once, the workbook.
        job = q("SELECT max(id) FROM nf_jobs")[0][0]
        eq(q("SELECT status FROM nf_jobs WHERE id = %s", job)[0][0], "completed", "job status")
        states = dict(q("SELECT state, count(*) FROM nf_videos WHERE job_id = %s GROUP BY 1", job))
        eq(sum(states.values()), 120, "videos of the job")
        check(set(states) <= {"EXPORTED", "VALIDATED", "REJECTED", "FAILED"}, "final states only", states)
        eq(states.get("EXPORTED"), 10, "exported outliers")
        eq(q("SELECT count(*) FROM (SELECT video_id, to_state FROM nf_video_history WHERE job_id = %s "
             "GROUP BY 1, 2 HAVING count(*) > 1) d", job)[0][0], 0, "transitions applied twice")
        wb = openpyxl.load_workbook(out)
        header = [cell.value for cell in wb["Outliers"][1]]
        ids = [row[header.index("Video ID")] for row in wb["Outliers"].iter_rows(min_row=2, values_only=True)]
        eq(len(ids), 10, "outlier rows in the workbook")
        eq(len(set(ids)), 10, "each outlier once in the workbook")
        eq(set(ids), {r[0] for r in q("SELECT video_id FROM nf_videos WHERE job_id = %s AND state = "
                                       "'EXPORTED'", job)}, "the workbook's outliers are the EXPORTED videos")

        # D's tasks moved to C during the cut; D's late replies were fenced.
        log = open(broker.log).read()
        d_ids = set(re.findall(rf"worker (\w+) ready for '\w+' \(\d+ serving\) from {NET}\.4 as 'worker:host-d'", log))
        lost = re.findall(r"worker (\w+) \(\w+\) lost while holding task ([\w-]+) \(job \d+, video ([\w-]+)\)", log)
        lost_d = [(w, t, v) for w, t, v in lost if w in d_ids]
        check(lost_d, "D's workers were declared dead holding tasks", lost)
        moved = 0
        for _, _, video in lost_d:
            if video == "-":
                continue
            rows = q("SELECT extract(epoch FROM at) FROM nf_video_history WHERE job_id = %s AND video_id = %s",
                     job, video)
            moved += any(t_cut < at < t_mend for (at,) in rows)
        check(moved >= 1, "a video D held reached its next state during the cut (host C did it)", lost_d)
        resent = set()
        for stage in STAGES:
            resent |= set(re.findall(r"resending the reply for task ([\w-]+)",
                                     open(os.path.join(logdir, f"d-{stage[0]}.log")).read()))
        fenced = set(re.findall(r"late reply for task ([\w-]+): its lease was released; fenced", log))
        # A task D held when the cut came: D finished it in the dark, its lease
        # was released, D resent the reply when the link came back: fenced.
        check(resent & fenced & {t for _, t, _ in lost_d},
              "a reply D finished in the dark was resent after the cut and fenced", resent, fenced)
        deadline = time.time() + 5      # /metrics is rendered once a second
        while s_counter(metrics(), "nf_fenced_total") < len(fenced):
            check(time.time() < deadline, "fenced replies counted", len(fenced), metrics())
            time.sleep(0.2)
        print(f"multihost: job {job}: {states}; D lost {len(lost_d)} tasks at the cut, {moved} moved to C "
              f"during it; {done_in_dark} requests to D's simulator in the dark; {len(resent)} replies resent, "
              f"{len(fenced)} fenced")
        db.close()
    finally:
        net.stop()
        subprocess.run(["bash", f"{SRC}/tests/pg.sh", "destroy", pgdir], capture_output=True)
        net.delete()
        check_sanitizer_logs(net.procs)


def lint_secrets():
    """deploy/lint.py passes the compose file, and fails a copy that gives the
    monitor the broker's CURVE key, the sanitizer the whole keys folder, or
    the scraper the LLM key, naming each (issue 24)."""
    lint = ["/usr/bin/python3", f"{SRC}/deploy/lint.py", BUILD]
    r = subprocess.run(lint, capture_output=True, text=True, timeout=300)
    # Only the secrets check: under ASan the runtime check rightly finds the
    # sanitizer runtimes, which no image ships (scripts/test.sh lints the plain build).
    check(re.search(r"^ok +secrets: ", r.stdout, re.M), "the compose file passes", r.stdout)
    text = open(f"{SRC}/docker-compose.yml").read()
    bad = text.replace("secrets: [nf_viewer_curve]", "secrets: [nf_viewer_curve, nf_broker_curve]", 1)
    bad = bad.replace('    command: ["nf-sanitizer"]\n',
                      '    command: ["nf-sanitizer"]\n    volumes:\n      - ./deploy/keys:/etc/nicheflow/keys:ro\n', 1)
    bad = bad.replace('    command: ["nf-scraper", "scrape"]\n',
                      '    command: ["nf-scraper", "scrape"]\n    secrets: [nf_worker_curve, nf_llm_api_key]\n'
                      '    environment:\n      NF_LLM_API_KEY_FILE: /run/secrets/nf_llm_api_key\n', 1)
    check(bad.count("nf_llm_api_key") - text.count("nf_llm_api_key") == 2 and "- ./deploy/keys:/etc" in bad
          and "[nf_viewer_curve, nf_broker_curve]" in bad, "the copy has the three faults")
    path = os.path.join(BUILD, "test-logs", "bad-compose.yml")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(bad)
    r = subprocess.run(lint + [path], capture_output=True, text=True, timeout=300)
    eq(r.returncode, 1, "the lint fails the copy")
    check(re.search(r"^FAIL secrets$", r.stdout, re.M), "in its secrets check", r.stdout)
    for words in ("service monitor mounts the secrets ['nf_broker_curve', 'nf_viewer_curve']; it needs ['nf_viewer_curve']",
                  "service nf-sanitizer mounts", "only the public certificates",
                  "service nf-scraper (nf-scraper scrape) is given NF_LLM_API_KEY"):
        check(words in r.stdout, f"the lint names: {words}", r.stdout[-2000:])


run({"multihost": multihost, "lint_secrets": lint_secrets})
