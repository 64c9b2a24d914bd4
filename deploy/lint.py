#!/usr/bin/python3
"""Lint of the deployment files against the build (no Docker engine needed).

    deploy/lint.py BUILD_DIR [COMPOSE_FILE]      (default: docker-compose.yml)

Checks, each printed with its result; exit 1 if any fails:
  compose      `docker-compose config` accepts docker-compose.yml and
               docker-compose.override.yml with .env.example
  stack        `docker stack config` accepts docker-compose.yml with
               deploy/stack.yml and deploy/stack-sim.yml (the swarm's
               format: no profiles, depends_on a list), given
               .env.example's settings and a file for every secret; skipped,
               saying so, where the docker command lacks `stack config`
  packages     every package the Dockerfile installs exists in Debian's index
  build stage  it installs the -dev package of every pkg-config module CMake
               requires (found through the .pc file's owner), and the tools
  runtime      no compiler or -dev package; every shared library that a
               shipped program links (ldd) comes from a package the stage
               installs, one those depend on, or one the base image has
               (Priority: required); and no package is there for nothing
  programs     the shipped programs (cmake --install) are the ones the
               services run; every COPY source exists; scripts parse
  settings     every NF_* variable a service sets is a nicheflow setting of
               the program that service runs (nf-broker config-table)
  secrets      each service mounts only its own compose secrets (its CURVE
               key; the API key of the stage it runs, named by NF_..._FILE)
               and only the public certificates; no API key in the
               environment
"""
import os, re, shutil, subprocess, sys, tempfile

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build"))
COMPOSE = os.path.abspath(sys.argv[2]) if len(sys.argv) > 2 else os.path.join(ROOT, "docker-compose.yml")
OVERRIDE = os.path.join(ROOT, "docker-compose.override.yml")
failures = []


def report(name, problems, detail=""):
    print(f"{'ok  ' if not problems else 'FAIL'} {name}{': ' + detail if detail and not problems else ''}")
    for p in problems:
        print(f"       {p}")
    failures.extend(problems)


def sh(*argv, **kw):
    return subprocess.run(argv, capture_output=True, text=True, **kw)


def dockerfile_stages(path):
    """{stage: {"packages": [...], "copies": [(src, from)], "lines": text}} of PATH."""
    text = re.sub(r"\\\n", " ", open(path).read())
    stages, cur = {}, None
    for line in text.splitlines():
        line = line.strip()
        m = re.match(r"FROM\s+\S+\s+AS\s+(\S+)", line, re.I)
        if m:
            cur = stages.setdefault(m.group(1), {"packages": [], "copies": [], "lines": ""})
            continue
        if cur is None or not line or line.startswith("#"):
            continue
        cur["lines"] += line + "\n"
        for cmd in re.findall(r"apt-get install ([^&;]*)", line):
            cur["packages"] += [w for w in cmd.split() if not w.startswith("-") and "=" not in w]
        m = re.match(r"COPY\s+(--from=(\S+)\s+)?(\S+)\s+(\S+)", line, re.I)
        if m:
            cur["copies"].append((m.group(3), m.group(2)))
    return stages


_owners = None


def owner(path):
    """Debian package owning PATH (usrmerge: /lib and /usr/lib both tried),
    from dpkg's file lists, read once."""
    global _owners
    if _owners is None:
        _owners = {}
        info = "/var/lib/dpkg/info"
        for f in os.listdir(info):
            if f.endswith(".list"):
                pkg = f[:-5].split(":")[0]
                for line in open(os.path.join(info, f), errors="replace"):
                    _owners[line.rstrip("\n")] = pkg
    real = os.path.realpath(path)
    for cand in (path, real, real.replace("/usr/lib/", "/lib/", 1), real.replace("/lib/", "/usr/lib/", 1)):
        if cand in _owners:
            return _owners[cand]
    return None


def closure(pkgs):
    """PKGS and everything they depend on (Depends, PreDepends), from apt's cache."""
    r = sh("apt-cache", "depends", "--recurse", "--no-recommends", "--no-suggests", "--no-conflicts",
           "--no-breaks", "--no-replaces", "--no-enhances", *pkgs)
    out = set(pkgs)
    for line in r.stdout.splitlines():
        m = re.match(r"\s*(?:\|?(?:Pre)?Depends: )?<?([a-z0-9][a-z0-9+.-]+)(?::\w+)?>?$", line)
        if m:
            out.add(m.group(1))
    return out


def main():
    os.chdir(ROOT)
    # compose
    r = sh("docker-compose", "-f", COMPOSE, "-f", OVERRIDE, "--project-directory", ROOT,
           "--env-file", ".env.example", "--profile", "sim", "--profile", "tools", "config")
    report("compose", [] if r.returncode == 0 else [r.stderr.strip()], "docker-compose config")
    compose = yaml.safe_load(r.stdout) if r.returncode == 0 else {"services": {}}

    # stack: the same file as a swarm stack. A swarm reads the settings from
    # the environment and refuses an empty secret: .env.example's values,
    # and this file itself standing in for every secret's file.
    if not shutil.which("docker") or sh("docker", "stack", "config", "--help").returncode != 0:
        print("skip stack: no `docker stack config` here")
    else:
        env = dict(os.environ)
        for line in open(".env.example"):
            m = re.match(r"^(\w+)=(.*)$", line.strip())
            if m:
                env[m.group(1)] = m.group(2)
        for var in set(re.findall(r"\$\{(NF_\w+_SECRET):-/dev/null\}", open(COMPOSE).read())):
            env[var] = COMPOSE
        r = sh("docker", "stack", "config", "-c", COMPOSE, "-c", "deploy/stack.yml", "-c", "deploy/stack-sim.yml",
               env=env)
        report("stack", [] if r.returncode == 0 else [r.stderr.strip()], "docker stack config")

    stages = dockerfile_stages("deploy/Dockerfile")
    build, runtime = stages.get("build"), stages.get("runtime")
    report("stages", [] if build and runtime else ["deploy/Dockerfile needs stages 'build' and 'runtime'"],
           ", ".join(stages))
    if not (build and runtime):
        return

    # packages exist
    names = sorted(set(build["packages"] + runtime["packages"]))
    known = set(re.findall(r"^Package: (\S+)$", sh("apt-cache", "show", "--no-all-versions", *names).stdout, re.M))
    missing = [p for p in names if p not in known]
    report("packages", [f"no Debian package '{p}'" for p in missing],
           f"{len(build['packages'])} build, {len(runtime['packages'])} runtime")

    # build stage: the -dev package of every pkg-config module CMake requires
    cmake_text = "".join(open(os.path.join(d, f)).read() for d, _, fs in os.walk(ROOT)
                         if not os.path.relpath(d, ROOT).startswith(("build", ".git"))
                         for f in fs if f == "CMakeLists.txt")
    modules = set(re.findall(r"pkg_check_modules\(\w+ (?:REQUIRED )?IMPORTED_TARGET ([\w.+-]+)\)", cmake_text))
    problems, needed = [], {"build-essential", "cmake", "pkg-config"}
    for mod in sorted(modules):
        r = sh("pkg-config", "--path", mod)
        if r.returncode != 0:
            continue            # an alternative name (msgpack-c vs msgpack): the other one is found
        pkg = owner(r.stdout.strip())
        if pkg:
            needed.add(pkg)
    problems += [f"build stage lacks {p} (needed by the build)" for p in sorted(needed - set(build["packages"]))]
    report("build stage", problems, f"{len(modules)} pkg-config modules -> {len(needed)} packages")

    # runtime stage
    entry = []
    with tempfile.TemporaryDirectory() as prefix:
        r = sh("cmake", "--install", BUILD, "--prefix", prefix)
        shipped = sorted(os.listdir(os.path.join(prefix, "bin"))) if r.returncode == 0 else []
        # The entrypoint runs a shipped program and refuses anything else.
        env = {**os.environ, "PATH": os.path.join(prefix, "bin") + ":/usr/bin:/bin"}
        r = sh("sh", "deploy/entrypoint.sh", "nf-keygen", "--version", env=env)
        if r.returncode != 0 or not r.stdout.startswith("nf-keygen "):
            entry.append(f"entrypoint did not run nf-keygen --version: {r.returncode} {r.stderr.strip()}")
        r = sh("sh", "deploy/entrypoint.sh", "bash", "-c", "true", env=env)
        if r.returncode != 2:
            entry.append("entrypoint ran a program that is not nicheflow's")
    problems = [f"runtime stage installs build tool {p}" for p in runtime["packages"]
                if p.endswith("-dev") or p in ("build-essential", "gcc", "cc", "cmake", "clang", "make")]
    have = closure(runtime["packages"])
    required = set(sh("dpkg-query", "-W", "-f", "${Package} ${Priority}\n").stdout.split("\n"))
    required = {line.split()[0] for line in required if line.endswith(" required")}
    used = set()
    for prog in shipped:
        for m in re.finditer(r"=> (/\S+)", sh("ldd", os.path.join(BUILD, s_where(prog))).stdout):
            pkg = owner(m.group(1))
            if not pkg:
                problems.append(f"{prog}: no package owns {m.group(1)}")
                continue
            used.add(pkg)
            if pkg not in have and pkg not in required:
                problems.append(f"{prog} links {os.path.basename(m.group(1))} from {pkg}: not in the runtime stage")
    direct = closure(sorted(used))
    for p in runtime["packages"]:
        if p != "ca-certificates" and p not in direct:
            problems.append(f"runtime stage installs {p}, which no shipped program links")
    report("runtime stage", problems, f"{len(shipped)} programs link {len(used)} packages")

    # programs, copies, scripts
    problems = entry
    if not shipped:
        problems.append(f"cmake --install {BUILD} shipped nothing")
    for src, frm in build["copies"] + runtime["copies"]:
        if frm is None and src != "." and not os.path.exists(src):
            problems.append(f"COPY source {src} does not exist")
    for script in ("deploy/entrypoint.sh", "deploy/healthcheck.sh"):
        shell = "bash" if open(script).readline().endswith("bash\n") else "sh"
        r = sh(shell, "-n", script)
        if r.returncode != 0:
            problems.append(f"{script}: {r.stderr.strip()}")
    image_tools = set(shipped) | {"nf-entrypoint", "nf-healthcheck"}
    programs = {}
    for name, svc in compose.get("services", {}).items():
        if not str(svc.get("image", "")).startswith("nicheflow"):
            continue
        argv = (svc.get("entrypoint") or [])[1:] + (svc.get("command") or [])
        prog = argv[0] if argv and argv[0] != "nf-entrypoint" else None
        if prog not in shipped:
            problems.append(f"service {name} runs '{prog}', which the build does not ship")
        programs[name] = prog
        test = (svc.get("healthcheck") or {}).get("test") or []
        if len(test) > 1 and test[0] == "CMD" and test[1] not in image_tools:
            problems.append(f"service {name}: health check runs '{test[1]}', not in the image")
    report("programs", problems, f"{len(programs)} services run {len(set(programs.values()))} programs")

    # settings
    table = sh(os.path.join(BUILD, "broker", "nf-broker"), "config-table").stdout
    used_by = {m.group(1): m.group(2) for m in re.finditer(r"^\| `(NF_\w+)` \|[^|]*\|[^|]*\| ([^|]*) \|", table, re.M)}
    problems = []
    kind = {"nf-broker": "broker", "nf-submit": "client", "nf-monitor": "client", "nf-web": "nf-web"}
    for name, prog in programs.items():
        env = compose["services"][name].get("environment") or {}
        for var in env:
            if not var.startswith("NF_"):
                continue
            who = used_by.get(var)
            if who is None and var.endswith("_FILE"):  # a secret's file (NF_..._KEY_FILE)
                who = used_by.get(var[:-5])
            k = kind.get(prog, "worker")
            if who is None:
                problems.append(f"service {name}: {var} is not a nicheflow setting")
            elif "all" not in who and k not in who and not (k == "nf-web" and "client" in who):
                problems.append(f"service {name} ({prog}): {var} is a setting of {who.strip()} only")
    report("settings", problems, f"{len(used_by)} settings known")

    # secrets: a setting the table marks "never a flag" (an API key) goes
    # only to the services whose stage uses it (issue 24).
    stage_of = {"nf-sanitizer": "sanitize", "nf-geo-validator": "geo", "nf-analyst": "analyze",
                "nf-architect": "architect", "nf-exporter": "export"}
    secrets = {m.group(1): m.group(2) for m in re.finditer(
        r"^\| `(NF_\w+)` \| none \(or the file[^|]*\|[^|]*\| ([^|]*) \|", table, re.M)}
    problems = []
    given = 0
    curve_of = {"nf-broker": "nf_broker_curve", "nf-submit": "nf_operator_curve",
                "nf-monitor": "nf_viewer_curve", "nf-web": "nf_operator_curve"}
    for name, prog in programs.items():
        svc = compose["services"][name]
        env = svc.get("environment") or {}
        argv = (svc.get("entrypoint") or [])[1:] + (svc.get("command") or [])
        stage = argv[1] if prog == "nf-scraper" and len(argv) > 1 else stage_of.get(prog)
        # Compose secrets: its own CURVE key, and the API keys its stage uses
        # (as NF_..._FILE naming the mounted file), nothing else.
        want = set() if prog == "nf-ytsim" else {curve_of.get(prog, "nf_worker_curve")}
        # A secret's owner in the table: a worker's stage, or a program (nf-web).
        mine = f"`{stage}`" if stage else prog
        for var, who in secrets.items():
            if mine and mine in who:
                want.add(var.lower())
                if env.get(var + "_FILE") != f"/run/secrets/{var.lower()}":
                    problems.append(f"service {name}: {var}_FILE must name /run/secrets/{var.lower()}")
            if var in env:
                problems.append(f"service {name}: {var} in the environment (a secret belongs in a file)")
            if var + "_FILE" in env:
                given += 1
                if not mine or mine not in who:
                    problems.append(f"service {name} ({prog} {stage or ''}) is given {var}, "
                                    f"a secret of {who.strip()} only")
        have = {s["source"] if isinstance(s, dict) else s for s in svc.get("secrets") or []}
        if have != want:
            problems.append(f"service {name} mounts the secrets {sorted(have)}; it needs {sorted(want)}")
        for vol in svc.get("volumes") or []:
            src = vol.get("source", "") if isinstance(vol, dict) else str(vol).split(":")[0]
            if "keys" in src and not src.rstrip("/").endswith("/public"):
                problems.append(f"service {name} mounts {src}: only the public certificates (keys/public) "
                                "are shared; secret keys go as compose secrets")
    if not secrets:
        problems.append("the settings table marks no secret (none (or the file ...) rows)")
    report("secrets", problems, f"{len(secrets)} API keys and 4 CURVE keys, each mounted into its "
                                f"own services only ({given} API keys given)")


def s_where(prog):
    """Build-tree path of PROG."""
    for sub in ("broker", "workers", "tools"):
        if os.path.exists(os.path.join(BUILD, sub, prog)):
            return os.path.join(sub, prog)
    return prog


main()
print("deploy lint:", "FAILED" if failures else "passed")
sys.exit(1 if failures else 0)
