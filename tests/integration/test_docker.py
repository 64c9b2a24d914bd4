"""The deployment on a real Docker engine (issue 27): the images built
without a registry, the compose file run as deploy/README.md writes it, and
faults injected through Docker during a job.

  stack   base image (deploy/base-image.sh) and images built, their size and
          build time printed; docker-compose up -d: PostgreSQL, the broker, a
          worker per stage, the monitor, nf-web and the simulator healthy;
          --scale nf-scraper=4 --scale nf-architect=2; a job through the
          submit service writes its workbook to ./out (read back); nf-web
          answers with its login page; then, during a second job of the same
          niche: docker kill of two workers and the broker (the restart policy
          brings them back), a scraper's network cut for longer than its lease
          and restored (its late reply fenced), the PostgreSQL container
          restarted, every worker service restarted one after another; the job
          completes with the outliers of the clean run, every video once,
          every transition once; down -v leaves no container, volume or network.

Skipped, saying so, when `docker info` fails. Only containers, networks and
volumes of the compose project this test names are touched.
"""
import json, os, re, shutil, subprocess, sys, time, uuid

from harness import BUILD, SRC, check, eq, run

WORKERS = ("nf-discover", "nf-scraper", "nf-sanitizer", "nf-geo-validator", "nf-analyst",
           "nf-architect", "nf-exporter")


def sh(*argv, timeout=900, ok=True, **kw):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)
    if ok and r.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} exited {r.returncode}: {r.stderr[-2000:]}{r.stdout[-1000:]}")
    return r


def wait_for(fn, seconds, what, step=0.5):
    deadline = time.time() + seconds
    last = None
    while time.time() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(step)
    raise AssertionError(f"timed out after {seconds}s waiting for {what} (last: {last!r})")


def have_docker():
    if not shutil.which("docker"):
        print("SKIP: no docker command here (no Docker engine)")
        return False
    r = subprocess.run(["docker", "info"], capture_output=True, text=True)
    if r.returncode != 0:
        print("SKIP: docker info failed (no Docker engine here): " + (r.stderr.strip().splitlines() or [""])[-1])
        return False
    if not shutil.which("docker-compose"):
        print("SKIP: no docker-compose (scripts/deps.sh installs Debian's)")
        return False
    return True


def say(line):
    """Print LINE and keep it in test-logs/docker-summary.txt, which
    scripts/test.sh shows after the suite (ctest hides a passing test's output)."""
    print(line)
    with open(os.path.join(BUILD, "test-logs", "docker-summary.txt"), "a") as f:
        f.write(line + "\n")


def images():
    """The base, the nicheflow image and a PostgreSQL image; prints size and build time."""
    t0 = time.time()
    base = sh("bash", os.path.join(SRC, "deploy", "base-image.sh"), timeout=1800).stdout.strip().splitlines()[-1]
    t1 = time.time()
    sh("docker", "build", "-q", "-f", "deploy/Dockerfile", "--build-arg", f"DEBIAN={base}", "-t", "nicheflow:latest",
       ".", cwd=SRC, timeout=1800)
    t2 = time.time()
    if sh("docker", "image", "inspect", "postgres:15-bookworm", ok=False).returncode == 0:
        pg = "postgres:15-bookworm"
    else:
        pg = "nicheflow/postgres:15"
        sh("docker", "build", "-q", "-f", "deploy/postgres/Dockerfile", "--build-arg", f"DEBIAN={base}", "-t", pg,
           "deploy/postgres", cwd=SRC, timeout=1800)
    t3 = time.time()
    size = int(sh("docker", "image", "inspect", "-f", "{{.Size}}", "nicheflow:latest").stdout.strip())
    say(f"images: base {base} {t1 - t0:.0f} s; nicheflow:latest {size / 1e6:.0f} MB built in {t2 - t1:.0f} s "
          f"(cached layers reused when the sources are unchanged); {pg} {t3 - t2:.0f} s")
    return base, pg


class Stack:
    def __init__(self, name, base, pg):
        self.project = f"nf{name}{uuid.uuid4().hex[:6]}"
        self.dir = os.path.join(BUILD, "test-logs", "docker-" + name)
        shutil.rmtree(self.dir, ignore_errors=True)
        self.out = os.path.join(self.dir, "out")
        os.makedirs(os.path.join(self.dir, "keys", "public"))
        os.makedirs(self.out)
        os.chmod(self.out, 0o777)   # the containers run as uid 10001
        token = os.path.join(self.dir, "web_token")
        with open(token, "w") as f:
            f.write(uuid.uuid4().hex + "\n")
        os.chmod(token, 0o644)      # read by uid 10001 in the web container; a test token
        self.env = os.path.join(self.dir, "env")
        with open(self.env, "w") as f:
            f.write("\n".join([
                f"POSTGRES_PASSWORD={uuid.uuid4().hex}", "NF_IMAGE=nicheflow:latest", f"NF_DEBIAN_IMAGE={base}",
                f"NF_POSTGRES_IMAGE={pg}", "NF_YOUTUBE_API_URL=http://ytsim:8089/youtube/v3",
                "NF_YOUTUBE_WEB_URL=http://ytsim:8089", "NF_YOUTUBE_IMG_URL=http://ytsim:8089",
                "NF_YOUTUBE_API_KEY_SECRET=./deploy/ytsim-api-key", "NF_HTTP_RATE=0", "NF_HTTP_DELAY_MS=0",
                f"NF_WEB_TOKEN_SECRET={token}", f"NF_OUT_DIR={self.out}", f"NF_KEYS_DIR={self.dir}/keys",
                "NF_LEASE_MS=8000", "NF_BROKER_PUBLISH=127.0.0.1", "NF_METRICS_PUBLISH=127.0.0.1",
                "NF_WEB_PUBLISH=127.0.0.1:8090", "NF_LLM_URL=", ""]))
        # The simulator answers slowly enough that a task is in flight when
        # the network is cut (the only change to the shipped file).
        self.override = os.path.join(self.dir, "override.yml")
        with open(self.override, "w") as f:
            f.write('services:\n  ytsim:\n    command: ["nf-ytsim", "--bind", "0.0.0.0", "--port", "8089", '
                    '"--seed", "7", "--latency-ms", "100"]\n')

    def compose(self, *args, timeout=600, ok=True, profiles=("sim",)):
        prof = [a for p in profiles for a in ("--profile", p)]
        return sh("docker-compose", "-p", self.project, "-f", os.path.join(SRC, "docker-compose.yml"),
                  "-f", self.override, "--project-directory", SRC, "--env-file", self.env, *prof, *args,
                  timeout=timeout, ok=ok, cwd=SRC)

    def ids(self, service=None, all_=False):
        argv = ["docker", "ps", "-q", "--no-trunc", "--filter", f"label=com.docker.compose.project={self.project}"]
        if service:
            argv += ["--filter", f"label=com.docker.compose.service={service}"]
        if all_:
            argv.append("-a")
        return sorted(sh(*argv).stdout.split())

    def state(self, cid):
        r = sh("docker", "inspect", "-f", "{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}} "
               "{{.RestartCount}}", cid, ok=False)
        return r.stdout.split() if r.returncode == 0 else ["gone"]

    def healthy(self, services):
        for s in services:
            ids = self.ids(s)
            if not ids:
                return False
            for cid in ids:
                st = self.state(cid)
                if st[0] != "running" or (len(st) > 2 and st[1] != "healthy"):
                    return False
        return True

    def psql(self, sql):
        r = self.compose("exec", "-T", "postgres", "psql", "-U", "nicheflow", "-d", "nicheflow", "-Atc", sql,
                         timeout=60, ok=False)
        return r.stdout.strip() if r.returncode == 0 else None

    def down(self):
        self.compose("down", "-v", "--remove-orphans", timeout=300, ok=False, profiles=("sim", "tools"))


def test_stack():
    if not have_docker():
        sys.exit(77)  # ctest: skipped (SKIP_RETURN_CODE)
    os.makedirs(os.path.join(BUILD, "test-logs"), exist_ok=True)
    open(os.path.join(BUILD, "test-logs", "docker-summary.txt"), "w").close()
    base, pg = images()
    s = Stack("stack", base, pg)
    services = ("postgres", "broker", *WORKERS, "monitor", "web", "ytsim")
    try:
        t0 = time.time()
        s.compose("up", "-d", timeout=900)
        wait_for(lambda: s.healthy(services), 240, "every service running and healthy")
        say(f"up -d: healthy in {time.time() - t0:.0f} s")
        s.compose("up", "-d", "--scale", "nf-scraper=4", "--scale", "nf-architect=2", timeout=600)
        wait_for(lambda: len(s.ids("nf-scraper")) == 4 and len(s.ids("nf-architect")) == 2
                 and s.healthy(("nf-scraper", "nf-architect")), 120, "4 scrapers and 2 architects healthy")
        # nf-web on the host's loopback: the login page (it binds every address
        # of its container, so it asks for the token).
        import urllib.request
        with urllib.request.urlopen("http://127.0.0.1:8090/", timeout=10) as r:
            page = r.read().decode()
        check('name="token"' in page, "nf-web answers with its login page", page[:200])

        # A job through the submit service, its workbook in ./out.
        r = s.compose("run", "--rm", "submit", "budget travel", "--count", "300", "--top-n", "10", "--wait",
                      "-o", "/out/clean.xlsx", timeout=600, ok=False, profiles=("sim", "tools"))
        eq(r.returncode, 0, f"submit --wait ({r.stderr[-500:]})")
        import openpyxl
        wb = openpyxl.load_workbook(os.path.join(s.out, "clean.xlsx"))
        head = [c.value for c in wb["Outliers"][1]]
        clean = [(row[head.index("Rank")], row[head.index("Title")]) for row in
                 wb["Outliers"].iter_rows(min_row=2, values_only=True) if row[head.index("Rank")] is not None]
        eq(len(clean), 10, "ten outliers in the workbook")
        job1 = int(s.psql("SELECT max(id) FROM nf_jobs"))

        # The same job again, with faults.
        r = s.compose("run", "--rm", "submit", "budget travel", "--count", "300", "--top-n", "10",
                      timeout=120, profiles=("sim", "tools"))
        job = int(re.search(r"(\d+)", r.stdout).group(1))
        check(job != job1, "a second job", job, job1)
        wait_for(lambda: (s.psql(f"SELECT count(*) FROM nf_videos WHERE job_id = {job} AND state <> 'DISCOVERED'")
                          or "0") != "0", 180, "the second job's videos moving")
        # A crash: SIGKILL to each container's program (PID 1). `docker kill`
        # itself marks a container as stopped by hand, which its restart
        # policy then leaves alone (Docker 20.10 and later), so it is the
        # process that is killed, as the kernel's OOM killer or a crash would.
        kills = [s.ids("nf-scraper")[0], s.ids("nf-sanitizer")[0], s.ids("broker")[0]]
        for cid in kills:
            pid = int(sh("docker", "inspect", "-f", "{{.State.Pid}}", cid).stdout.strip())
            check(pid > 1, "the container's program runs", cid, pid)
            os.kill(pid, 9)
        wait_for(lambda: all(s.state(c)[0] == "running" for c in kills) and s.healthy(("broker",)), 120,
                 "the killed containers back (restart policy)")
        restarts = [int(s.state(c)[-1]) for c in kills]
        check(all(n >= 1 for n in restarts), "each was restarted by Docker", restarts)
        # A scraper cut off mid-task for longer than the 8 s lease.
        net = f"{s.project}_pipeline"
        victim = s.ids("nf-scraper")[1]
        metrics = lambda: urllib.request.urlopen("http://127.0.0.1:9464/metrics", timeout=5).read().decode()
        fenced0 = int(re.search(r"^nf_fenced_total (\d+)", metrics(), re.M).group(1))
        sh("docker", "network", "disconnect", net, victim)
        time.sleep(12)  # the fault's length, not a wait for a state: longer than the lease
        sh("docker", "network", "connect", net, victim)
        s.compose("restart", "postgres", timeout=120)
        wait_for(lambda: s.healthy(("postgres", "broker")), 120, "PostgreSQL and the broker healthy again")
        for svc in WORKERS:   # a rolling restart, one service after another
            s.compose("restart", svc, timeout=300)
            wait_for(lambda: s.healthy((svc,)), 120, f"{svc} healthy after its restart")
        status = wait_for(lambda: s.psql(f"SELECT status FROM nf_jobs WHERE id = {job} AND finished_at IS NOT NULL"),
                          400, "the job finished", step=2)
        eq(status, "completed", "the faulted job completed")
        fenced = int(re.search(r"^nf_fenced_total (\d+)", metrics(), re.M).group(1)) - fenced0
        # The outliers equal the clean run's; every video once; every transition once.
        same = s.psql(f"SELECT string_agg(video_id || ':' || rank, ',' ORDER BY rank) FROM nf_videos WHERE "
                      f"job_id IN ({job1}) AND rank IS NOT NULL AND rank <= 10")
        again = s.psql(f"SELECT string_agg(video_id || ':' || rank, ',' ORDER BY rank) FROM nf_videos WHERE "
                       f"job_id IN ({job}) AND rank IS NOT NULL AND rank <= 10")
        eq(again, same, "the same outliers as the clean run")
        eq(s.psql(f"SELECT count(*) FROM nf_videos WHERE job_id = {job}"), "300", "every video once")
        eq(s.psql("SELECT count(*) FROM (SELECT job_id, video_id, to_state FROM nf_video_history GROUP BY 1, 2, 3 "
                  "HAVING count(*) > 1) d"), "0", "every transition once")
        lost = 300 - int(s.psql(f"SELECT count(*) FROM nf_videos WHERE job_id = {job} AND state IN "
                                "('VALIDATED', 'EXPORTED', 'REJECTED', 'READY', 'OUTLIER')"))
        eq(lost, 0, "no video left behind")
        say(f"faults: killed {len(kills)} containers (restarts {restarts}), network cut 12 s past an 8 s lease, "
              f"PostgreSQL restarted, {len(WORKERS)} worker services restarted in turn; late replies fenced: "
              f"{fenced}; videos lost: {lost}; duplicate transitions: 0")
    finally:
        s.down()
    left = s.ids(all_=True)
    eq(left, [], "down -v leaves no container")
    vols = sh("docker", "volume", "ls", "-q", "--filter", f"label=com.docker.compose.project={s.project}").stdout.split()
    eq(vols, [], "down -v leaves no volume")
    nets = sh("docker", "network", "ls", "-q", "--filter", f"label=com.docker.compose.project={s.project}").stdout.split()
    eq(nets, [], "down -v leaves no network")


if __name__ == "__main__":
    run({"stack": test_stack})
