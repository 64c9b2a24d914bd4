"""nf-submit end to end and the broker's metrics endpoint (issue: the tools
people drive nicheflow with). Run one: test_tools.py NAME."""
import os, re, shutil, subprocess, time, urllib.error, urllib.request

from harness import BUILD, Cluster, check, eq, run


def nf_submit(c, *args, timeout=60, env=None):
    return subprocess.run([f"{BUILD}/tools/nf-submit", *args], env=env or c.env(), capture_output=True,
                          text=True, timeout=timeout)


class Tmux:
    """A terminal for one command, on a tmux server of its own (ended by stop()). The
    command runs with the cluster's NF_* environment."""

    def __init__(self, c, name, command, width, height):
        check(shutil.which("tmux") is not None, "tmux installed")
        self.tmux = ["tmux", "-L", f"nf-{name}-{os.getpid()}"]
        script = os.path.join(c.logdir, f"{name}.sh")
        with open(script, "w") as f:
            f.write("".join(f"export {k}='{v}'\n" for k, v in c.env().items() if k.startswith("NF_")))
            f.write(command + "\n")
        subprocess.run(self.tmux + ["new-session", "-d", "-s", name, "-x", str(width), "-y", str(height),
                                    f"bash {script}"], check=True, timeout=10)
        self.name = name

    def screen(self):
        return subprocess.run(self.tmux + ["capture-pane", "-p", "-t", self.name], capture_output=True, text=True,
                              timeout=10).stdout

    def keys(self, k):
        subprocess.run(self.tmux + ["send-keys", "-t", self.name, k], check=True, timeout=10)

    def alive(self):
        return subprocess.run(self.tmux + ["has-session", "-t", self.name], capture_output=True, timeout=10).returncode == 0

    def stop(self):
        subprocess.run(self.tmux + ["kill-server"], capture_output=True, timeout=10)


def submit_wait():
    """--wait prints plain progress lines off a terminal, exits 0 on completed and downloads
    the export to -o; a job that fails exits 5, a cancelled one 6; bad arguments exit 2 with
    the usage, refused 1, unreachable 3; --help and --version exit 0."""
    c = Cluster("tools_wait", 26430)
    try:
        c.start_broker()
        c.all_workers()
        out = os.path.join(c.logdir, "job.json")
        p = nf_submit(c, "budget travel", "--count", "30", "--top-n", "5", "--wait", "-o", out)
        eq(p.returncode, 0, "exit code of a completed job")
        lines = p.stdout.splitlines()
        job = int(lines[0])
        eq(lines[-1], out, "the downloaded file's path printed last")
        eq(open(out).read(), '{"videos":5}', "downloaded export")
        check(not os.path.exists(out + ".part"), "no partial file left")
        check(re.search(rf"^job {job} completed VALIDATED=25 EXPORTED=5$", p.stderr, re.M), "final plain line", p.stderr)
        check(f"job {job} completed: 5 of 5 outliers delivered" in p.stderr, "final status with reason", p.stderr)
        eq(c.job_status(job), "completed", "job status")
        # Too few READY for NF_MIN_READY (5): failed, exit 5, nothing downloaded.
        bad = os.path.join(c.logdir, "bad.json")
        p = nf_submit(c, "tiny", "--count", "4", "--top-n", "2", "--wait", "-o", bad)
        eq(p.returncode, 5, "exit code of a failed job")
        check("failed: only" in p.stderr, "failure reason shown", p.stderr)
        check(not os.path.exists(bad), "no file for a failed job")
        # Status for people and for programs.
        p = nf_submit(c, "status", str(job))
        eq(p.returncode, 0, "status exit code")
        check("architect [########################] 5/5" in p.stdout and "reason: 5 of 5" in p.stdout, "status bars", p.stdout)
        p = nf_submit(c, "list", "--json")
        check('"status":"failed"' in p.stdout and '"status":"completed"' in p.stdout, "list --json", p.stdout)
        for args, code, text in ((["x", "--count", "abc"], 2, "is not a whole number"),
                                 (["status", "nope"], 2, "is not a job id"),
                                 (["export", "1"], 2, "needs -o FILE"),
                                 (["x", "--bogus", "1"], 2, "unexpected argument '--bogus'"),
                                 (["x", "--count", "0", "--since", "2026-02-30x", "--source", "template:nope"], 1,
                                  "options.count: must be a whole number from 1 to 10000")):
            p = nf_submit(c, *args)
            eq(p.returncode, code, f"exit code of {args}")
            check(text in p.stderr, f"message of {args}", p.stderr)
        p = nf_submit(c, "x", "--since", "2026-05-01", "--until", "2026-04-01", "--source", "template:nope")
        check("options.since: 2026-05-01 is after until 2026-04-01" in p.stderr
              and "options.source: unknown source 'template:nope'" in p.stderr, "each invalid option named", p.stderr)
        eq(c.query1("SELECT count(*) FROM nf_jobs"), 2, "nothing invalid stored")
        for flag in ("--help", "--version"):
            p = nf_submit(c, flag)
            eq(p.returncode, 0, f"{flag} exit code")
        check("Exit codes" in nf_submit(c, "--help").stdout, "--help shows the exit codes")
        env = c.env({"NF_BROKER_CLIENTS": "tcp://127.0.0.1:1", "NF_TIMEOUT_MS": "300"})
        eq(nf_submit(c, "x", env=env).returncode, 3, "unreachable exit code")
    finally:
        c.stop()

    # Cancelled while waited for: exit 6.
    c = Cluster("tools_cancel", 26435)
    try:
        c.start_broker()
        c.all_workers(skip=("scrape",))
        w = subprocess.Popen([f"{BUILD}/tools/nf-submit", "slow", "--count", "12", "--top-n", "5", "--wait"],
                             env=c.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        c.wait(lambda: c.query1("SELECT count(*) FROM nf_videos") == 12, 20, "discovered")
        job = c.query1("SELECT id FROM nf_jobs")
        eq(nf_submit(c, "cancel", str(job)).returncode, 0, "cancel exit code")
        _, err = w.communicate(timeout=30)
        eq(w.returncode, 6, "exit code of a cancelled job")
        check(f"job {job} cancelled" in err, "cancelled shown", err)
    finally:
        c.stop()


def submit_file():
    """--file: one job per line ('niche | sub-niche', comments and blank lines skipped), each
    id printed; --wait -o DIR downloads every job's export into DIR."""
    c = Cluster("tools_file", 26440)
    try:
        c.start_broker()
        c.all_workers()
        niches = os.path.join(c.logdir, "niches.txt")
        with open(niches, "w") as f:
            f.write("# niches for this week\nhome gym | small spaces\n\n  van life  \nbudget travel|solo # trailing\n")
        out = os.path.join(c.logdir, "exports")
        p = nf_submit(c, "--file", niches, "--count", "20", "--top-n", "5", "--wait", "-o", out)
        eq(p.returncode, 0, "exit code")
        ids = [l.split("\t") for l in p.stdout.splitlines() if "\t" in l]
        eq([n for _, n in ids], ["home gym", "van life", "budget travel"], "one job per niche line")
        rows = c.query("SELECT niche, sub_niche, status FROM nf_jobs ORDER BY id")
        eq(rows, [("home gym", "small spaces", "completed"), ("van life", "", "completed"),
                  ("budget travel", "solo", "completed")], "jobs stored with their sub-niches")
        files = sorted(os.listdir(out))
        eq(files, sorted([f"home-gym-{ids[0][0]}.json", f"van-life-{ids[1][0]}.json",
                          f"budget-travel-{ids[2][0]}.json"]), "one export per job")
        empty = os.path.join(c.logdir, "empty.txt")
        open(empty, "w").write("# nothing\n\n")
        p = nf_submit(c, "--file", empty)
        eq(p.returncode, 2, "a file with no niche is bad arguments")
    finally:
        c.stop()


def resume():
    """A cancelled job keeps its videos; nf-submit resume puts it back in the queue and
    discovery finds only what is missing to reach count (known ids skipped); it completes
    with every video once."""
    c = Cluster("tools_resume", 26445)
    try:
        c.start_broker()
        short = c.worker("discover", "--max-videos", "12", tag="quota")
        job = c.submit("resume me", count=30, top_n=5)
        c.wait(lambda: c.count_state(job, "DISCOVERED") == 12, 20, "12 discovered (as if the quota ran out)")
        eq(nf_submit(c, "cancel", str(job)).returncode, 0, "cancel")
        c.wait(lambda: c.job_status(job) == "cancelled", 10, "cancelled")
        p = nf_submit(c, "resume", "999")
        eq(p.returncode, 1, "resume of no job is refused")
        c.kill9(short)
        c.all_workers()
        p = nf_submit(c, "resume", str(job), "--wait", timeout=60)
        eq(p.returncode, 0, "resume --wait exit code")
        eq(c.query1("SELECT count(*) FROM nf_videos WHERE job_id = %s", job), 30, "30 videos: 12 kept, 18 new")
        eq(c.count_state(job, "EXPORTED"), 5, "outliers exported")
        eq(c.duplicate_transitions(), 0, "duplicate transitions")
        hist = [r[0] for r in c.query("SELECT to_status FROM nf_job_history WHERE job_id = %s ORDER BY id", job)]
        eq(hist[hist.index("cancelled"):], ["cancelled", "pending", "queued", "running", "processing", "completed"],
           "history after the cancel")
        p = nf_submit(c, "resume", str(job))
        eq(p.returncode, 1, "a completed job cannot be resumed")
        check("only cancelled, failed or partial jobs can be resumed" in p.stderr, "why", p.stderr)
    finally:
        c.stop()


def parse_metrics(text):
    """Prometheus text format 0.0.4: {(name, labels): value}; every sample line must parse and
    every family must have HELP and TYPE."""
    samples, typed = {}, set()
    line_re = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="[^"]*"(,[a-zA-Z_][a-zA-Z0-9_]*="[^"]*")*)?\})? (\S+)$')
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            typed.add(line.split()[2])
            continue
        if line.startswith("#") or not line:
            continue
        m = line_re.match(line)
        check(m is not None, "metric line parses", line)
        name, labels, value = m.group(1), m.group(3) or "", float(m.group(5))
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        check(name in typed or base in typed, "family has a TYPE", name)
        samples[(name, labels)] = value
    return samples


def metrics():
    """GET /metrics: Prometheus text that parses; the counters match what the job did (30
    scrape tasks dispatched and completed, retries and failures of a scripted worker), workers
    per service, claim and commit histograms; other paths 404, other methods 405."""
    c = Cluster("tools_metrics", 26450, NF_MAX_ATTEMPTS="2")
    try:
        c.start_broker()
        c.all_workers(skip=("sanitize",))
        c.worker("sanitize", "--mode", "fail", "--match", "v0000")   # v00000..v00009 fail twice
        job = c.submit("metrics", count=30, top_n=5)
        c.wait(lambda: c.job_status(job) in ("completed", "partial"), 30, "job done")
        time.sleep(1.5)   # rendered once a second
        url = f"http://127.0.0.1:{c.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as r:
            eq(r.status, 200, "status")
            check(r.headers["Content-Type"].startswith("text/plain; version=0.0.4"), "content type", r.headers["Content-Type"])
            m = parse_metrics(r.read().decode())
        s = lambda name, svc: m[(name, f'service="{svc}"')]
        eq(s("nf_tasks_dispatched_total", "scrape"), 30, "scrape tasks dispatched")
        eq(s("nf_tasks_completed_total", "scrape"), 30, "scrape transitions")
        eq(s("nf_tasks_failed_total", "sanitize"), 10, "sanitize failures (max_attempts 2)")
        eq(s("nf_tasks_retried_total", "sanitize"), 10, "sanitize retries")
        eq(s("nf_tasks_completed_total", "sanitize"), 20, "sanitize transitions")
        eq(s("nf_tasks_dispatched_total", "sanitize"), 40, "sanitize dispatches: 20 + 10 x 2")
        eq(s("nf_workers", "geo"), 1, "workers of geo")
        eq(s("nf_tasks_in_flight", "scrape"), 0, "nothing in flight")
        eq(s("nf_lease_expiries_total", "scrape"), 0, "no lease expired")
        eq(m[("nf_database_up", "")], 1, "database up")
        check(m[('nf_claim_seconds_count', 'service="scrape"')] > 0, "claim latency observed")
        check(m[('nf_commit_seconds_count', '')] > 0, "commit latency observed")
        check(m[('nf_claim_seconds_bucket', 'service="scrape",le="+Inf"')] == m[('nf_claim_seconds_count', 'service="scrape"')],
              "+Inf bucket equals the count")
        for path, method, code in (("/nope", "GET", 404), ("/metrics", "POST", 405)):
            try:
                urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{c.metrics_port}{path}", method=method,
                                                              data=b"" if method == "POST" else None), timeout=5)
                check(False, f"{method} {path} answered 200")
            except urllib.error.HTTPError as e:
                eq(e.code, code, f"{method} {path}")
    finally:
        c.stop()


def monitor():
    """nf-monitor in tmux: the job, its counts, the services and the error feed grouped by
    class on screen; p pauses; it says the broker is unreachable while it restarts and comes
    back; q quits. --json lines parse and follow the job to its end; --once prints a snapshot
    and exits 0, or 3 when no broker answers."""
    import json, signal
    c = Cluster("tools_monitor", 26455, NF_MAX_ATTEMPTS="2")
    term = js = None
    try:
        c.start_broker()
        c.all_workers(skip=("sanitize",))
        c.worker("sanitize", "--mode", "fail", "--match", "v0000")
        term = Tmux(c, "mon", f"exec {BUILD}/tools/nf-monitor", 160, 48)
        screen = term.screen
        js = subprocess.Popen([f"{BUILD}/tools/nf-monitor", "--json"], env=c.env(), stdout=subprocess.PIPE, text=True)
        time.sleep(0.8)
        job = c.submit("monitor niche", count=30, top_n=5)
        c.wait(lambda: re.search(rf"^ +{job} completed +done +monitor niche +0 +0 +0 +15 +0 +0 +5 +0 +10 *$", screen(), re.M),
               30, "the job's final row on screen")
        # The job's row follows its events; the services come with nf.stats, once
        # a second, so they may show the work of a second ago: wait for idle.
        c.wait(lambda: re.search(r"^sanitize +1 +1 ", screen(), re.M), 5, "services with idle workers")
        shot = screen()
        check(re.search(r"FAILURES 10, RETRIES 10 in the last minute", shot), "failures and retries", shot)
        check(re.search(r"^ +20 in the last minute: scripted failure on attempt #$", shot, re.M), "error feed grouped by class", shot)
        term.keys("p")
        c.wait(lambda: "[PAUSED" in screen(), 5, "paused shown")
        term.keys("p")
        c.broker.send_signal(signal.SIGTERM)
        c.broker.wait(15)
        c.wait(lambda: "UNREACHABLE" in screen(), 15, "unreachable shown")
        c.start_broker()
        c.wait(lambda: "connected" in screen() and "UNREACHABLE" not in screen(), 15, "reconnected")
        term.keys("q")
        c.wait(lambda: not term.alive(), 10, "q quits")
        js.terminate()
        lines = js.communicate(timeout=10)[0].splitlines()
        events = [json.loads(l) for l in lines]
        mine = [e for e in events if e.get("job_id") == job]
        check(any(e["type"] == "job" and e["to"] == "completed" for e in mine), "--json followed the job to its end")
        failed = sorted((e["video_id"], e["from"], e["service"], e["reason"]) for e in mine
                        if e["type"] == "video" and e["to"] == "FAILED")
        eq(len(failed), 10, f"--json FAILED events {failed}")
        check(any(e["topic"] == "nf.stats." for e in events), "--json stats events")
        p = subprocess.run([f"{BUILD}/tools/nf-monitor", "--once"], env=c.env(), capture_output=True, text=True, timeout=20)
        eq(p.returncode, 0, "--once exit code")
        check(re.search(rf"^ +{job} completed ", p.stdout, re.M) and "SERVICES" in p.stdout, "--once snapshot", p.stdout)
        p = subprocess.run([f"{BUILD}/tools/nf-monitor", "--once", "--json"], env=c.env(), capture_output=True, text=True, timeout=20)
        snap = json.loads(p.stdout)
        eq(snap["jobs"][0]["counts"]["EXPORTED"], 5, "--once --json counts")
        env = c.env({"NF_BROKER_CLIENTS": "tcp://127.0.0.1:1", "NF_BROKER_PUB": "tcp://127.0.0.1:2", "NF_TIMEOUT_MS": "300"})
        p = subprocess.run([f"{BUILD}/tools/nf-monitor", "--once"], env=env, capture_output=True, text=True, timeout=20)
        eq(p.returncode, 3, "--once with no broker")
        eq(subprocess.run([f"{BUILD}/tools/nf-monitor", "--bogus"], env=env, capture_output=True).returncode, 2, "bad argument")
    finally:
        if term:
            term.stop()
        if js and js.poll() is None:  # ours, and it holds ctest's stderr open
            js.kill()
            js.wait(10)
        c.stop()


def terminal():
    """nf-submit --wait on a terminal (tmux): bars per stage redrawn in place, the funnel, an
    ETA while running, exit 0; and every program answers --help and --version."""
    for exe in ("broker/nf-broker", "workers/nf-scraper", "workers/nf-sanitizer", "workers/nf-geo-validator",
                "workers/nf-analyst", "workers/nf-architect", "workers/nf-exporter", "tools/nf-submit",
                "tools/nf-monitor", "tools/nf-ytsim"):
        name = os.path.basename(exe)
        v = subprocess.run([f"{BUILD}/{exe}", "--version"], capture_output=True, text=True, timeout=10)
        check(v.returncode == 0 and v.stdout.startswith(name + " "), f"{name} --version", v.stdout, v.stderr)
        h = subprocess.run([f"{BUILD}/{exe}", "--help"], capture_output=True, text=True, timeout=10)
        check(h.returncode == 0 and h.stdout.strip(), f"{name} --help", h.stderr)
    c = Cluster("tools_term", 26465)
    term = None
    try:
        c.start_broker()
        c.all_workers(skip=("scrape",))
        c.worker("scrape", "--delay-ms", "60")
        term = Tmux(c, "w", f"{BUILD}/tools/nf-submit 'terminal niche' --count 30 --top-n 5 --wait; echo EXIT=$?; sleep 60",
                    140, 40)
        seen_eta, deadline, shot = False, time.time() + 60, ""
        while time.time() < deadline and "EXIT=" not in shot:
            shot = term.screen()
            seen_eta = seen_eta or re.search(r"ETA \d+s", shot) is not None
            time.sleep(0.1)
        check("EXIT=0" in shot, "exit code 0 on the terminal", shot)
        check(seen_eta, "an ETA shown while running")
        for stage in ("discover", "scrape", "sanitize", "geo"):
            check(re.search(rf"^  {stage} +\[#{{24}}\] 30/30$", shot, re.M), f"full bar for {stage}", shot)
        check(re.search(r"^  architect \[#{24}\] 5/5$", shot, re.M), "architect bar", shot)
        check("funnel: DISCOVERED 0 RAW 0 CLEANED 0 VALIDATED 25 OUTLIER 0 READY 0 EXPORTED 5" in shot, "funnel", shot)
        eq(shot.count("  scrape    ["), 1, "redrawn in place, not scrolled")
    finally:
        if term:
            term.stop()
        c.stop()


run({f.__name__: f for f in (submit_wait, submit_file, resume, metrics, monitor, terminal)})
