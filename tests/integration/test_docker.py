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

  readme  deploy/README.md's commands, verbatim: each block marked
          `docker.readme: run` runs as written, in a copy of the checkout,
          under a pty, with the .env edits the text asks for (and checks)
          done between its lines (HOOKS): the images, Compose on one
          machine, the CURVE keys, a swarm stack on a one-node swarm this
          test makes and leaves. Blocks not run say why in their marker.

Skipped, saying so, when `docker info` fails. Only containers, networks and
volumes of the compose project this test names are touched, and a swarm
only when this test made it (a node label marks it).
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
    scripts/test.sh empties before the suite and shows after it (ctest hides
    a passing test's output)."""
    print(line)
    os.makedirs(os.path.join(BUILD, "test-logs"), exist_ok=True)
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
    say(f"docker.stack: images: base {base} {t1 - t0:.0f} s; nicheflow:latest {size / 1e6:.0f} MB built in {t2 - t1:.0f} s "
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
                  "-f", os.path.join(SRC, "docker-compose.override.yml"), "-f", self.override, "--project-directory", SRC, "--env-file", self.env, *prof, *args,
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
        """compose down -v; its result (a test names its output when something stays)."""
        return self.compose("down", "-v", "--remove-orphans", timeout=300, ok=False, profiles=("sim", "tools"))


def test_stack():
    if not have_docker():
        sys.exit(77)  # ctest: skipped (SKIP_RETURN_CODE)
    os.makedirs(os.path.join(BUILD, "test-logs"), exist_ok=True)
    base, pg = images()
    s = Stack("stack", base, pg)
    services = ("postgres", "broker", *WORKERS, "monitor", "web", "ytsim")
    try:
        t0 = time.time()
        s.compose("up", "-d", timeout=900)
        wait_for(lambda: s.healthy(services), 240, "every service running and healthy")
        say(f"docker.stack: up -d: healthy in {time.time() - t0:.0f} s")
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
        say(f"docker.stack: faults: killed {len(kills)} containers (restarts {restarts}), network cut 12 s past an 8 s lease, "
              f"PostgreSQL restarted, {len(WORKERS)} worker services restarted in turn; late replies fenced: "
              f"{fenced}; videos lost: {lost}; duplicate transitions: 0")
    finally:
        down = s.down()
    said = f"down -v exited {down.returncode}: {down.stderr[-2000:]}{down.stdout[-1000:]}"
    left = s.ids(all_=True)
    check(left == [], "down -v leaves no container", left, said)
    vols = sh("docker", "volume", "ls", "-q", "--filter", f"label=com.docker.compose.project={s.project}").stdout.split()
    # (one CI run of four kept the pgdata volume, with a creation time at the
    # test's end and compose's labels; down's own words were not kept then)
    check(vols == [], "down -v leaves no volume", vols, said)
    nets = sh("docker", "network", "ls", "-q", "--filter", f"label=com.docker.compose.project={s.project}").stdout.split()
    eq(nets, [], "down -v leaves no network")


# --- docker.readme: deploy/README.md's commands, verbatim -----------------

README = os.path.join(SRC, "deploy", "README.md")
MARK = re.compile(r"^<!-- docker\.readme: (run|not run: .+) -->$")
SWARM_LABEL = "nicheflow.docker-readme"


def readme_blocks(text):
    """[(line, marker, [command lines])]: each indented code block of the
    guide with the marker comment just before it (None without one)."""
    lines = text.split("\n")
    blocks, marker, i = [], None, 0
    while i < len(lines):
        m = MARK.match(lines[i])
        if m:
            marker = (m.group(1), i + 1)
        elif lines[i].startswith("    ") and i > 0 and not lines[i - 1].strip():
            body, j = [], i
            while j < len(lines) and (lines[j].startswith("    ") or
                                      (not lines[j].strip() and j + 1 < len(lines) and lines[j + 1].startswith("    "))):
                body.append(lines[j][4:])
                j += 1
            blocks.append((i + 1, marker[0] if marker else None, body))
            marker, i = None, j
            continue
        elif lines[i].strip() and marker:
            raise AssertionError(f"deploy/README.md:{marker[1]}: a docker.readme marker not followed by a block")
        i += 1
    return blocks


def commands(body):
    """The block's logical lines (a trailing backslash joins the next),
    each as (its text as written, the command without its comment)."""
    out, cur = [], ""
    for line in body:
        cur += line + "\n"
        if line.endswith("\\"):
            continue
        text = cur.rstrip("\n")
        bare = " ".join(re.sub(r"\s+#.*$", "", re.sub(r"\\\n", " ", text)).split())
        out.append((text, "" if bare.startswith("#") else bare))
        cur = ""
    return out


# What the test does between the guide's lines: the edits of .env the text
# asks for, and the checks. Keyed on the command (its comment left out):
# ("before"|"after", hook). A key that is no longer in the guide fails the
# test: the guide and the test move together.
HOOKS = {
    'cp .env.example .env': ("after", "env-compose"),
    'docker-compose up -d': ("after", "compose-healthy"),
    'docker-compose up -d --scale nf-scraper=4 --scale nf-architect=2': ("after", "compose-scaled"),
    'docker-compose run --rm submit "budget travel" --count 200 --wait -o /out/budget.xlsx':
        ("after", "compose-workbook"),
    'docker attach "$(docker-compose ps -q monitor)"': ("after", "monitor-detached"),
    'docker-compose down -v': ("after", "compose-gone"),
    'docker swarm init --advertise-addr 127.0.0.1 --listen-addr 127.0.0.1:2377': ("after", "swarm-ours"),
    'set -a; . ./.env; set +a': ("before", "env-stack"),
    'docker stack deploy -c docker-compose.yml -c deploy/stack.yml -c deploy/stack-sim.yml nicheflow':
        ("after", "stack-healthy"),
    'docker service scale nicheflow_nf-scraper=4 nicheflow_nf-architect=2': ("after", "stack-scaled"),
    'NF_CURVE_CERT=deploy/keys/operator.cert_secret NF_CURVE_BROKER_CERT=deploy/keys/public/broker.cert '
    'nf-submit "budget travel" --count 200 --wait -o out/budget-stack.xlsx': ("after", "stack-workbook"),
    'docker stack rm nicheflow': ("after", "stack-gone"),
    'docker swarm leave --force': ("after", "swarm-left"),
}
ATTACH = "== docker.readme: attaching"
# A command's exit code other than 0: docker attach ends with 1 when it is
# detached by its escape keys ("read escape sequence").
EXIT = {'docker attach "$(docker-compose ps -q monitor)"': 1}


def set_env(path, values):
    """KEY=VALUE into the .env at PATH: the line (or its commented-out
    example) replaced, else appended, as a user following the text would."""
    lines = open(path).read().split("\n")
    for k, v in values.items():
        for n, line in enumerate(lines):
            if re.match(rf"^#? ?{re.escape(k)}=", line):
                lines[n] = f"{k}={v}"
                break
        else:
            lines.append(f"{k}={v}")
    with open(path, "w") as f:
        f.write("\n".join(lines))


def project_ids(*labels, all_=False):
    """Ids of the containers that carry every one of LABELS (docker ps ANDs them)."""
    argv = ["docker", "ps", "-q", "--no-trunc"] + [a for l in labels for a in ("--filter", f"label={l}")]
    return sh(*argv, *(["-a"] if all_ else [])).stdout.split()


def all_healthy(ids):
    if not ids:
        return False
    for cid in ids:
        st = sh("docker", "inspect", "-f", "{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}",
                cid, ok=False).stdout.split()
        if not st or st[0] != "running" or (len(st) > 1 and st[1] != "healthy"):
            return False
    return True


def outliers(path):
    import openpyxl
    ws = openpyxl.load_workbook(path)["Outliers"]
    head = [c.value for c in ws[1]]
    return [r for r in ws.iter_rows(min_row=2, values_only=True) if r[head.index("Rank")] is not None]


def hook(name):
    """One of HOOKS, run by the block's script (cwd: the checkout's copy)."""
    work = os.getcwd()
    project = os.path.basename(work)
    plabel = f"com.docker.compose.project={project}"
    slabel = "com.docker.stack.namespace=nicheflow"
    services = ("postgres", "broker", *WORKERS, "monitor", "web", "ytsim")
    if name == "env-compose":
        base = sh("bash", "deploy/base-image.sh").stdout.split()[-1]
        pg = ("postgres:15-bookworm" if sh("docker", "image", "inspect", "postgres:15-bookworm", ok=False).returncode == 0
              else "nicheflow/postgres:15")
        set_env(".env", {"POSTGRES_PASSWORD": uuid.uuid4().hex, "NF_WEB_TOKEN_SECRET": "./deploy/secrets/web_token",
                         "NF_DEBIAN_IMAGE": base, "NF_POSTGRES_IMAGE": pg, "COMPOSE_PROFILES": "sim",
                         "NF_YOUTUBE_API_URL": "http://ytsim:8089/youtube/v3", "NF_YOUTUBE_WEB_URL": "http://ytsim:8089",
                         "NF_YOUTUBE_IMG_URL": "http://ytsim:8089", "NF_YOUTUBE_API_KEY_SECRET": "./deploy/ytsim-api-key",
                         "NF_HTTP_RATE": "0", "NF_HTTP_DELAY_MS": "0"})
    elif name == "compose-healthy":
        wait_for(lambda: all(all_healthy(project_ids(plabel, f"com.docker.compose.service={s}"))
                             for s in services), 300, "every compose service running and healthy", step=2)
    elif name == "compose-scaled":
        count = lambda s: project_ids(plabel, f"com.docker.compose.service={s}")
        wait_for(lambda: len(count("nf-scraper")) == 4 and len(count("nf-architect")) == 2
                 and all_healthy(count("nf-scraper") + count("nf-architect")), 180, "4 scrapers and 2 architects healthy")
    elif name == "compose-workbook":
        eq(len(outliers("out/budget.xlsx")), 10, "ten outliers in out/budget.xlsx")
        import urllib.request
        with urllib.request.urlopen("http://127.0.0.1:8090/", timeout=10) as r:
            check('name="token"' in r.read().decode(), "nf-web on 127.0.0.1:8090 asks for its token")
    elif name == "monitor-detached":
        mon = project_ids(plabel, "com.docker.compose.service=monitor")
        check(all_healthy(mon), "the monitor still runs after Ctrl-P Ctrl-Q", mon)
    elif name == "compose-gone":
        eq(project_ids(plabel, all_=True), [], "down -v leaves no container")
        for kind in ("volume", "network"):
            left = sh("docker", kind, "ls", "-q", "--filter", f"label={plabel}").stdout.split()
            eq(left, [], f"down -v leaves no {kind}")
    elif name == "swarm-ours":
        node = sh("docker", "info", "-f", "{{.Swarm.NodeID}}").stdout.strip()
        sh("docker", "node", "update", "--label-add", f"{SWARM_LABEL}=1", node)
    elif name == "env-stack":
        with open("deploy/secrets/llm_api_key", "w") as f:
            f.write("unused: NF_LLM_URL is empty, the built-in generator\n")
        set_env(".env", {"NF_KEYS_DIR": os.path.join(work, "deploy", "keys"), "NF_OUT_DIR": os.path.join(work, "out"),
                         "NF_INSECURE": "0", "NF_LLM_API_KEY_SECRET": "./deploy/secrets/llm_api_key",
                         **{k: v for k, v in re.findall(r"^# (NF_(?:CURVE_\w+|\w+_CURVE_(?:SECRET|CERT)))=(.*)$",
                                                        open(".env.example").read(), re.M)}})
    elif name == "stack-healthy":
        def up():
            rows = sh("docker", "stack", "services", "nicheflow", "--format", "{{.Name}} {{.Replicas}}").stdout.split("\n")
            reps = dict(r.split()[:2] for r in rows if r.strip())
            return (len(reps) == len(services) and all(v.startswith("1/1") for v in reps.values())
                    and all_healthy(project_ids(slabel)))
        wait_for(up, 300, "every stack service 1/1 and healthy", step=2)
        # Each service holds exactly the secrets the file gives it.
        import yaml
        spec = yaml.safe_load(open("docker-compose.yml"))["services"]
        for svc, conf in spec.items():
            got = json.loads(sh("docker", "service", "inspect", "-f",
                                "{{json .Spec.TaskTemplate.ContainerSpec.Secrets}}", f"nicheflow_{svc}").stdout or "null")
            eq(sorted(x["File"]["Name"].split("/")[-1] for x in got or []), sorted(conf.get("secrets") or []),
               f"the secrets of the stack's {svc}")
    elif name == "stack-scaled":
        count = lambda s: project_ids(slabel, f"com.docker.swarm.service.name=nicheflow_{s}")
        wait_for(lambda: len(count("nf-scraper")) == 4 and len(count("nf-architect")) == 2
                 and all_healthy(count("nf-scraper") + count("nf-architect")), 180, "4 scrapers and 2 architects healthy")
    elif name == "stack-workbook":
        eq(len(outliers("out/budget-stack.xlsx")), 10, "ten outliers in out/budget-stack.xlsx")
        # The routing mesh publishes on every address: CURVE is what keeps
        # it closed. A client without a key is refused.
        env = {k: v for k, v in os.environ.items() if not k.startswith("NF_CURVE")}
        r = sh(os.path.join(BUILD, "tools", "nf-submit"), "list", ok=False, env={**env, "NF_TIMEOUT_MS": "1500"})
        check(r.returncode != 0, "the stack's broker refuses a client without CURVE", r.stdout, r.stderr)
    elif name == "stack-gone":
        wait_for(lambda: not project_ids(slabel, all_=True) and not sh(
            "docker", "network", "ls", "-q", "--filter", "label=com.docker.stack.namespace=nicheflow").stdout.split(),
                 120, "the stack's containers and networks gone")
    elif name == "swarm-left":
        eq(sh("docker", "info", "-f", "{{.Swarm.LocalNodeState}}").stdout.strip(), "inactive", "the swarm left")
        sh("docker", "volume", "rm", "nicheflow_pgdata")
    else:
        raise AssertionError(f"no hook {name}")
    print(f"== docker.readme: {name}: ok", flush=True)


def run_block(script, cwd, env, log, seconds):
    """bash SCRIPT under a pseudo-terminal (the guide's `docker attach`
    needs one), its output to LOG; after ATTACH, once the dashboard is on
    the screen, Ctrl-P Ctrl-Q, as the guide says. Returns the exit code."""
    import fcntl, pty, select, signal, struct, termios
    master, slave = pty.openpty()
    # A terminal's size, as a user's has: a curses program on a 0x0 one
    # (the size of a new pty) draws nothing.
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    p = subprocess.Popen(["bash", script], stdin=slave, stdout=slave, stderr=slave, cwd=cwd, env=env,
                         start_new_session=True)
    os.close(slave)
    seen, detached, deadline = b"", False, time.time() + seconds
    with open(log, "ab", buffering=0) as out:
        while True:
            if time.time() > deadline:
                os.killpg(p.pid, signal.SIGKILL)
                raise AssertionError(f"{script}: still running after {seconds} s (see {log})")
            ready = select.select([master], [], [], 0.5)[0]
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:
                    data = b""
                if not data and p.poll() is not None:
                    break
                out.write(data)
                seen = (seen + data)[-200000:]
                at = seen.rfind(ATTACH.encode())
                if not detached and at >= 0 and b"SERVICES" in seen[at:]:
                    os.write(master, b"\x10\x11")
                    detached = True
            elif p.poll() is not None:
                break
    os.close(master)
    return p.wait()


def test_readme():
    if not have_docker():
        sys.exit(77)
    blocks = readme_blocks(open(README).read())
    unmarked = [line for line, marker, _ in blocks if marker is None]
    eq(unmarked, [], "deploy/README.md blocks without a docker.readme marker (their lines)")
    logdir = os.path.join(BUILD, "test-logs", "docker-readme")
    shutil.rmtree(logdir, ignore_errors=True)
    os.makedirs(logdir)
    # A copy of the checkout, as a user has one: its folder's name is the
    # compose project's, so it is this run's own.
    work = os.path.join(logdir, f"nfreadme{uuid.uuid4().hex[:8]}")
    shutil.copytree(SRC, work, ignore=shutil.ignore_patterns("build*", ".git", ".nf-run", "out", ".env"), symlinks=True)
    hook_sh = os.path.join(logdir, "hook.sh")
    with open(hook_sh, "w") as f:
        f.write(f"#!/bin/sh\nexec env NF_BUILD_DIR={BUILD} NF_SOURCE_DIR={SRC} PYTHONPATH={os.path.dirname(__file__)} "
                f"/usr/bin/python3 {os.path.abspath(__file__)} --hook \"$@\"\n")
    os.chmod(hook_sh, 0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NF_", "COMPOSE_", "POSTGRES_"))}
    env.update(PATH=f"{BUILD}/tools:{env.get('PATH', '/usr/bin:/bin')}", NFR_HOOK=hook_sh, TERM="xterm")
    state = sh("docker", "info", "-f", "{{.Swarm.LocalNodeState}}").stdout.strip()
    if state == "active" and SWARM_LABEL in sh("docker", "node", "inspect", "self", "-f", "{{json .Spec.Labels}}",
                                               ok=False).stdout:
        sh("docker", "swarm", "leave", "--force")   # this test's own swarm, left by a run that was killed
        state = "inactive"
    gwbridge = sh("docker", "network", "inspect", "docker_gwbridge", ok=False).returncode == 0
    used, ran, t_all, swarm_tried = set(), [], time.time(), False
    try:
        for n, (line, marker, body) in enumerate(blocks):
            if marker != "run":
                print(f"deploy/README.md:{line}: {marker}")
                continue
            cmds = commands(body)
            if any(c.startswith("docker swarm init") for _, c in cmds) and state != "inactive":
                print(f"SKIP deploy/README.md:{line}: this engine is already in a swarm (not this test's)")
                continue
            swarm_tried |= any(c.startswith("docker swarm init") for _, c in cmds)
            # Each command as written, then its exit code checked (not
            # set -e, which would stop at docker attach's 1 after a detach).
            script = ["set -uo pipefail"]
            for k, (text, bare) in enumerate(cmds):
                when, name = HOOKS.get(bare, (None, None))
                if bare.startswith("docker attach"):
                    script.append(f"echo '{ATTACH}'")
                if when == "before":
                    script.append(f'"$NFR_HOOK" {name} || exit 1')
                script.append(text)
                if bare:
                    want = EXIT.get(bare, 0)
                    script.append(f'rc=$?; [ $rc -eq {want} ] || {{ echo "== docker.readme: command {k + 1} '
                                  f'of the block exited $rc, not {want}"; exit 1; }}')
                if when == "after":
                    script.append(f'"$NFR_HOOK" {name} || exit 1')
                if name:
                    used.add(bare)
            path = os.path.join(logdir, f"block-{line}.sh")
            with open(path, "w") as f:
                f.write("\n".join(script) + "\n")
            t0 = time.time()
            rc = run_block(path, work, env, os.path.join(logdir, f"block-{line}.log"), 1800)
            eq(rc, 0, f"deploy/README.md:{line}'s block (script {path}, output block-{line}.log)")
            ran.append(f"{line} ({time.time() - t0:.0f} s)")
        eq(sorted(set(HOOKS) - used), [], "commands this test expects in deploy/README.md")
        say(f"docker.readme: ran the blocks at deploy/README.md lines {', '.join(ran)}; "
            f"{len(blocks) - len(ran)} blocks not run, each saying why; {time.time() - t_all:.0f} s")
    finally:
        # Whatever a failed block left of this run's own project and swarm.
        project = os.path.basename(work)
        if project_ids(f"com.docker.compose.project={project}", all_=True):
            sh("docker-compose", "down", "-v", "--remove-orphans", cwd=work, env=env, ok=False, timeout=300)
        # The swarm: this test's when marked, or when there was none before
        # the block that makes one.
        if SWARM_LABEL in sh("docker", "node", "inspect", "self", "-f", "{{json .Spec.Labels}}", ok=False).stdout \
                or (swarm_tried and sh("docker", "info", "-f", "{{.Swarm.LocalNodeState}}").stdout.strip() != "inactive"):
            sh("docker", "stack", "rm", "nicheflow", ok=False)
            sh("docker", "swarm", "leave", "--force", ok=False)
            sh("docker", "volume", "rm", "-f", "nicheflow_pgdata", ok=False)
        # The bridge a swarm makes on its first init stays after it is left.
        if not gwbridge and sh("docker", "info", "-f", "{{.Swarm.LocalNodeState}}").stdout.strip() == "inactive":
            sh("docker", "network", "rm", "docker_gwbridge", ok=False)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--hook"]:
        hook(sys.argv[2])
    else:
        run({"stack": test_stack, "readme": test_readme})
