"""nf-submit end to end and the broker's metrics endpoint (issue: the tools
people drive nicheflow with). Run one: test_tools.py NAME."""
import os, re, shutil, signal, socket, subprocess, tempfile, time, urllib.error, urllib.request

from harness import BUILD, SRC, Cluster, check, eq, run


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
        # A top N below NF_MIN_READY (5) could never export: refused, with the reason.
        p = nf_submit(c, "tiny", "--count", "4", "--top-n", "2")
        eq(p.returncode, 1, "exit code of a top N below NF_MIN_READY")
        check("options.top_n: 2 is fewer than NF_MIN_READY 5" in p.stderr, "the reason", p.stderr)
        # Status for people and for programs.
        p = nf_submit(c, "status", str(job))
        eq(p.returncode, 0, "status exit code")
        check("architect [########################] 5/5" in p.stdout and "reason: 5 of 5" in p.stdout, "status bars", p.stdout)
        check(f"job {job}  budget travel  completed" in p.stdout, "the header names the niche", p.stdout)
        p = nf_submit(c, "list", "--json")
        check('"status":"completed"' in p.stdout, "list --json", p.stdout)
        # export -o without an extension: the format's is added, and said.
        bare = os.path.join(c.logdir, "bare")
        p = nf_submit(c, "export", str(job), "--format", "json", "-o", bare)   # (the test worker exports json)
        eq(p.returncode, 0, "export to a name without an extension")
        check(f"writing {bare}.json" in p.stderr and os.path.exists(bare + ".json"), "extension added, said", p.stderr)
        umask = os.umask(0)
        os.umask(umask)
        eq(oct(os.stat(bare + ".json").st_mode & 0o777), oct(0o666 & ~umask), "downloaded file's mode")
        for args, code, text in ((["x", "--count", "abc"], 2, "is not a whole number"),
                                 (["status", "nope"], 2, "is not a job id"),
                                 (["export", "1"], 2, "needs -o FILE"),
                                 (["x", "--bogus", "1"], 2, "unknown option '--bogus'"),
                                 (["x", "--bogus"], 2, "unknown option '--bogus'"),
                                 (["status", "--count", "3"], 2, "unknown option '--count'"),
                                 (["x", "--count"], 2, "--count needs a value"),
                                 (["x", "--lang", "klingon"], 2, "--lang: 'klingon' must be a BCP 47 language tag"),
                                 (["x", "--lang", "en,xx-GB"], 2, "--lang: 'en,xx-GB' must be"),
                                 (["x", "--lang", "en-QQ"], 2, "--lang: 'en-QQ' must be"),
                                 (["x", "--region", "XX"], 2, "--region: 'XX' must be an ISO 3166-1 alpha-2"),
                                 (["x", "--region", "UK"], 2, "--region: 'UK' must be"),
                                 (["x", "--count", "0"], 2, "--count: '0' must be a whole number from 1 to 10000"),
                                 (["x", "--priority", "urgent"], 2, "--priority: 'urgent' must be"),
                                 (["x", "--timeout", "soon"], 2, "--timeout: 'soon' is not a number"),
                                 (["export", str(job), "--format", "json", "-o", "x.xlsx"], 2,
                                  "-o x.xlsx names a .xlsx file but --format is json"),
                                 (["export", "99", "-o", os.path.join(c.logdir, "99.xlsx")], 1, "no such job"),
                                 (["x", "--since", "2026-02-30x", "--source", "template:nope"], 2,
                                  "--since: '2026-02-30x' must be a date YYYY-MM-DD")):
            p = nf_submit(c, *args)
            eq(p.returncode, code, f"exit code of {args}")
            check(text in p.stderr, f"message of {args}", p.stderr)
        p = nf_submit(c, "x", "--since", "2026-05-01", "--until", "2026-04-01", "--source", "template:nope")
        check("options.since: 2026-05-01 is after until 2026-04-01" in p.stderr
              and "options.source: unknown source 'template:nope'" in p.stderr, "each invalid option named", p.stderr)
        eq(c.query1("SELECT count(*) FROM nf_jobs"), 1, "nothing invalid stored")
        for flag in ("--help", "--version"):
            p = nf_submit(c, flag)
            eq(p.returncode, 0, f"{flag} exit code")
        check("Exit codes" in nf_submit(c, "--help").stdout, "--help shows the exit codes")
        env = c.env({"NF_BROKER_CLIENTS": "tcp://127.0.0.1:1", "NF_TIMEOUT_MS": "300"})
        eq(nf_submit(c, "x", env=env).returncode, 3, "unreachable exit code")
    finally:
        c.stop()

    # Too few READY for NF_MIN_READY (5): failed, exit 5, nothing downloaded.
    c = Cluster("tools_fail", 26600)
    try:
        c.start_broker()
        c.all_workers(skip=("geo",))
        c.worker("geo", "--mode", "reject", "--match", "v0000")   # v00000..v00009
        bad = os.path.join(c.logdir, "bad.json")
        p = nf_submit(c, "tiny", "--count", "12", "--top-n", "5", "--wait", "-o", bad)
        eq(p.returncode, 5, "exit code of a failed job")
        check("failed: only" in p.stderr, "failure reason shown", p.stderr)
        check(not os.path.exists(bad), "no file for a failed job")
        check('"status":"failed"' in nf_submit(c, "list", "--json").stdout, "list --json shows it failed")
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
        url = f"http://127.0.0.1:{c.metrics_port}/metrics"
        # Rendered once a second: wait for the rendering that has the whole job.
        def rendered():
            m = parse_metrics(c.metrics_text())
            return (m.get(("nf_tasks_failed_total", 'service="sanitize"')) == 10
                    and m.get(("nf_tasks_completed_total", 'service="sanitize"')) == 20)
        c.wait(rendered, 10, "metrics rendered after the job")
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
        # `wait JOB` names the job by its niche in the header, as --wait does.
        job = c.query1("SELECT id FROM nf_jobs")
        term.stop()
        term = Tmux(c, "w2", f"{BUILD}/tools/nf-submit wait {job}; echo EXIT=$?; sleep 60", 140, 40)
        deadline, shot = time.time() + 30, ""
        while time.time() < deadline and "EXIT=" not in shot:
            shot = term.screen()
            time.sleep(0.1)
        check(re.search(rf"^job {job}  terminal niche  completed", shot, re.M), "wait's header names the niche", shot)
    finally:
        if term:
            term.stop()
        c.stop()


def by_hand():
    """README's "Running the pieces by hand", as written (less its first line, the build,
    and with this build's folder): the job completes, the export is a workbook, the
    services log to logs/ and the last line stops everything the block started."""
    readme = open(os.path.join(SRC, "README.md")).read()
    section = readme.split("## Running the pieces by hand\n", 1)[1].splitlines()
    start = next(i for i, l in enumerate(section) if l.startswith("    "))
    lines = []
    for l in section[start:]:
        if not l.startswith("    "):
            break
        lines.append(l[4:])
    check(lines[0].startswith("bash scripts/deps.sh"), "the block starts with the build", lines[0])
    work = tempfile.mkdtemp(prefix="nf-byhand-")
    pgdir = os.path.join(work, "pg")
    # Free ports in place of the README's 55432 and 8089, so a server someone left
    # on those cannot fail the test (it failed once so in CI).
    def free_port():
        with socket.socket() as so:
            so.bind(("127.0.0.1", 0))
            return so.getsockname()[1]
    pg_port, sim_port = str(free_port()), str(free_port())
    script = "\n".join(l.replace("build/", f"{BUILD}/").replace("tests/pg.sh", f"{SRC}/tests/pg.sh")
                       .replace("/tmp/nfpg", pgdir).replace("55432", pg_port).replace("8089", sim_port)
                       for l in lines[1:])
    env = {k: v for k, v in os.environ.items() if not k.startswith("NF_")}
    # Its own process group, so that whatever a failed run leaves behind is ended.
    p = subprocess.Popen(["bash", "-c", "set -e\n" + script], cwd=work, env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        p.stdout, p.stderr = p.communicate(timeout=240)
        eq(p.returncode, 0, f"the recipe's exit code (stderr: {p.stderr[-2000:]})")
        check(re.search(r"^job 1 .*completed", p.stdout, re.M), "status 1 says completed", p.stdout)
        check(p.stdout.rstrip().endswith("outliers.xlsx"), "export printed the file", p.stdout)
        import openpyxl
        ws = openpyxl.load_workbook(os.path.join(work, "outliers.xlsx"))["Outliers"]
        check(ws.max_row > 1, "the exported workbook has outlier rows", ws.max_row)
        for name in ("broker", "ytsim", "discover", "scrape", "nf-exporter"):
            check(os.path.getsize(os.path.join(work, "logs", name + ".log")) > 0, f"logs/{name}.log written")
        check(not os.path.exists(pgdir), "the database was destroyed")
    finally:
        try:
            os.killpg(p.pid, signal.SIGKILL)   # the group we started; gone already when all went well
        except ProcessLookupError:
            pass
        p.wait()
        subprocess.run(["bash", f"{SRC}/tests/pg.sh", "destroy", pgdir], capture_output=True, timeout=60)
        shutil.rmtree(work, ignore_errors=True)


run({f.__name__: f for f in (submit_wait, submit_file, resume, metrics, monitor, terminal, by_hand)})
