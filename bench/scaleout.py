#!/usr/bin/python3
"""Scale-out: nf-ytsim answering every request after 50 ms, and the
architect against the test LLM server (tests/integration/fake_llm.py)
answering after 200 ms. For N = 1, 2, 4, 8, 16, 32 scraper and architect
processes: scrape throughput (videos/s) and architect throughput
(outliers/s), and the efficiency against linear, rate(N) / (N x rate(1)).
Goal: at least 0.9 at 16 (issue 28).

Each round starts N scrapers and N architects and waits until the broker
has registered them all, then submits its jobs (20 videos per scraper,
10 outliers per architect, top_n being at most 100 a job). The scrape
window runs from discovery to the last scrape transition. The analyst is
started only when every video has left the per-video stages, so the
architect window runs from the first analyze transition to the last
architect transition. Sanitizer (2), geo validator, discoverer and exporter
stay up.
    bench/scaleout.py [RUNS] [N...]      (defaults 1; 1 2 4 8 16 32; ports 27420..27426)"""
import math, os, statistics, sys, time

from nfbench import SRC, Bench, machine, metric, sim_env

RUNS = int(sys.argv[1]) if len(sys.argv) > 1 else 1
COUNTS = [int(a) for a in sys.argv[2:]] or [1, 2, 4, 8, 16, 32]
PORT = int(os.environ.get("NF_BENCH_PORT", "27420"))

b = Bench("scaleout", PORT)
sys.path.insert(0, os.path.join(SRC, "tests", "integration"))
from fake_llm import FakeLLM   # noqa: E402

llm = FakeLLM(PORT + 1)
llm.delay = 0.2
base = b.ytsim(PORT + 2, "--latency-ms", "50", "--catalog", "4000")
c = b.cluster(PORT + 3, NF_HEARTBEAT_MS="1000", NF_RETRY_BASE_MS="1000", NF_RETRY_MAX_MS="60000",
              NF_LOG_LEVEL="warn")
env = sim_env(base, NF_LLM_URL=llm.url, NF_LLM_MODEL="fake-model", NF_LLM_API_KEY="sekrit")
c.start_broker(env)
for exe, *args in (("nf-scraper", "discover"), ("nf-sanitizer",), ("nf-sanitizer",), ("nf-geo-validator",),
                   ("nf-exporter",)):
    c.real_worker(exe, *args, extra=env)
print(f"machine: {machine()}; ytsim 50 ms a request, LLM 200 ms a request")


def registered(service):
    return metric(c.metrics_text(), "nf_workers", f'service="{service}"') or 0


def window(jobs, start_service, end_service):
    ids = list(jobs)
    t0 = c.query1("SELECT extract(epoch FROM min(at)) FROM nf_video_history WHERE job_id = ANY(%s) "
                  "AND service = %s", ids, start_service)
    t1 = c.query1("SELECT extract(epoch FROM max(at)) FROM nf_video_history WHERE job_id = ANY(%s) "
                  "AND service = %s", ids, end_service)
    return float(t1) - float(t0)


def round_(n, tag):
    scrapers = [c.real_worker("nf-scraper", "scrape", extra=env) for _ in range(n)]
    architects = [c.real_worker("nf-architect", extra=env) for _ in range(n)]
    c.wait(lambda: registered("scrape") == n and registered("architect") == n, 30, f"{n} scrapers and architects")
    njobs = math.ceil(10 * n / 100)
    # A discover worker per job: one would discover the jobs one after
    # another, and the window below (from the first discovery) would time
    # the later jobs' discovery (its channel baselines, 50 ms a request)
    # instead of the scrapers.
    discoverers = [c.real_worker("nf-scraper", "discover", extra=env) for _ in range(njobs - 1)]
    top = 10 * n // njobs
    count = max(20 * n // njobs, 2 * top)
    jobs = [c.submit(f"scaleout {tag} job {j}", count=count, top_n=top) for j in range(njobs)]
    per_video = ("DISCOVERED", "RAW", "CLEANED")
    c.wait(lambda: all(c.query1("SELECT phase FROM nf_jobs WHERE id = %s", j) == "analyze" and
                       c.query1("SELECT count(*) FROM nf_videos WHERE job_id = %s AND state = ANY(%s)", j,
                                list(per_video)) == 0 for j in jobs), 300, "scraping done")
    scraped = c.query1("SELECT count(*) FROM nf_video_history WHERE job_id = ANY(%s) AND service = 'scrape'", jobs)
    scrape_rate = scraped / window(jobs, "discover", "scrape")
    analyst = c.real_worker("nf-analyst", extra=env)
    c.wait(lambda: all(c.job_status(j) in ("completed", "partial", "failed") for j in jobs), 300, "jobs done")
    written = c.query1("SELECT count(*) FROM nf_video_history WHERE job_id = ANY(%s) AND service = 'architect' "
                       "AND to_state = 'READY'", jobs)
    arch_rate = written / window(jobs, "analyze", "architect")
    b.harness.stop_procs(scrapers + architects + discoverers + [analyst])
    c.wait(lambda: registered("scrape") == 0 and registered("architect") == 0, 30, "workers gone")
    print(f"  N={n:2}: {scraped} videos scraped at {scrape_rate:.1f}/s, {written} outliers written at "
          f"{arch_rate:.2f}/s ({njobs} jobs)")
    return scrape_rate, arch_rate


results = {}
for run in range(RUNS):
    for n in COUNTS:
        s, a = round_(n, f"r{run}n{n}")
        results.setdefault(n, ([], []))
        results[n][0].append(s)
        results[n][1].append(a)
if llm.problems:
    sys.exit(f"the LLM server saw malformed requests: {llm.problems[:3]}")
llm.stop()

one = [statistics.median(results[COUNTS[0]][k]) / COUNTS[0] for k in (0, 1)]
print(f"{'N':>3} {'scrape/s':>9} {'eff':>5} {'arch/s':>7} {'eff':>5}")
for n in COUNTS:
    s, a = (statistics.median(results[n][k]) for k in (0, 1))
    print(f"{n:3} {s:9.1f} {s / (n * one[0]):5.2f} {a:7.2f} {a / (n * one[1]):5.2f}")
if 16 in results:
    s, a = (statistics.median(results[16][k]) for k in (0, 1))
    print(f"scale-out at 16: scrape efficiency {s / (16 * one[0]):.2f}, architect efficiency "
          f"{a / (16 * one[1]):.2f}; goal >= 0.9")
