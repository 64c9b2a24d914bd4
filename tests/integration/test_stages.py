"""Stage integration tests (issue: sanitizer, geo, analyst). The real
nf-sanitizer, nf-geo-validator and nf-analyst run against the real broker
and Postgres; discover and scrape come from nf-testworker --fixture, so the
test knows every input. Run one: test_stages.py NAME."""
import datetime, json, math, os, random, subprocess

from harness import BUILD, Cluster, check, eq, run

WORDS = ("travel budget hostel train ticket city museum street food market night morning "
         "beach river bridge castle walk bus map coffee plan money save cheap flight bag "
         "pack light week month trip route guide local hidden view tour free pass card "
         "bank cash phone data room bed kitchen friend solo safe lisbon porto paris rome").split()
WEIGHTS = (0.40, 0.20, 0.25, 0.15)


def transcript(rng, n):
    lines, t = [], 0
    for i in range(0, n, 8):
        words = " ".join(rng.choice(WORDS) for _ in range(8))
        lines.append(f"[{t // 60:02d}:{t % 60:02d}] {words}")
        t += 4
    return "\n".join(lines)


def make_fixture(now):
    """40 videos over 8 channels, with every case the stages must handle."""
    rng = random.Random(42)
    channels = []
    for i in range(8):
        ch = {"channel_id": f"UC{i}", "title": f"Channel {i}", "view_count": rng.randint(10**5, 10**8),
              "video_count": rng.randint(20, 2000), "subscribers": rng.randint(1000, 10**6)}
        if i == 5:
            ch["hidden_subscribers"] = True
            del ch["subscribers"]
        country = {0: "US", 1: "GB", 2: "CA", 3: "AU", 4: "NZ", 5: "US", 6: None, 7: "DE"}[i]
        if country:
            ch["country"] = country
        if i == 4:   # a channel without statistics
            del ch["view_count"], ch["video_count"]
        channels.append(ch)
    videos = []
    for i in range(40):
        ch = i % 8
        age = rng.uniform(1, 300)
        views = int(math.exp(rng.uniform(5, 14)))
        meta = {"title": f"Video {i}", "views": views, "likes": int(views * rng.uniform(0.005, 0.08)),
                "comments": int(views * rng.uniform(0.0, 0.01)), "duration_s": rng.choice([45, 300, 900]),
                "published_at": (now - datetime.timedelta(days=age)).strftime("%Y-%m-%dT%H:%M:%SZ")}
        if i % 8 == 6:   # channel without a country: the language decides
            meta["default_audio_language"] = "en-GB" if i < 20 else "fr"
        if i == 9:
            del meta["likes"]
        v = {"video_id": f"vid{i:03d}", "channel_id": f"UC{ch}", "meta": meta,
             "transcript": transcript(rng, 400)}
        if i % 2 == 0:   # a phrase half the job says: the niche's, not the video's
            v["transcript"] = ("[00:00] hostel dorms first\n[00:02] then hostel dorms\n[00:04] hostel dorms "
                               "again\n[00:06] more hostel dorms\n[00:08] hostel dorms rule\n" + v["transcript"])
        if i == 1:
            v.pop("transcript")                       # no captions: no_transcript
        if i == 2:
            v["transcript"] = "[Music]\num uh\nsubscribe subscribe subscribe\n[Applause]"   # low_quality
        if i == 3:
            v["transcript"] = "\u00ff\u00fe odd <b>markup</b> &amp; " + transcript(rng, 400)   # cleaned, passes
        videos.append(v)
    return {"videos": videos, "channels": channels}


def percentiles(values):
    """Mid-rank percentile of each present value (None = absent), as the brief defines."""
    present = sorted(v for v in values if v is not None)
    m = len(present)
    out = []
    for v in values:
        if v is None:
            out.append(None)
            continue
        below = sum(1 for x in present if x < v)
        equal = sum(1 for x in present if x == v)
        out.append(1.0 if m == 1 else (below + (equal - 1) / 2) / (m - 1))
    return out


def expected_ranking(rows, created):
    """An independent implementation of the analyst's formulas."""
    comps = []
    for vid, meta, ch in rows:
        views = meta["views"]
        avg = ch["view_count"] / ch["video_count"] if ch and "view_count" in ch and "video_count" in ch else None
        subs = ch.get("subscribers") if ch and not ch.get("hidden_subscribers") else None
        pub = datetime.datetime.strptime(meta["published_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
        age = max(0.0, (created - pub).total_seconds() / 86400)
        eng = None
        if "likes" in meta or "comments" in meta:
            eng = (meta.get("likes", 0) + meta.get("comments", 0)) / views if views else 0.0
        comps.append((vid, views, [views / avg if avg else None, views / subs if subs else None,
                                   views / max(age, 1), eng]))
    pcts = list(zip(*[percentiles([c[2][k] for c in comps]) for k in range(4)]))
    scored = []
    for (vid, views, _), p in zip(comps, pcts):
        w = sum(WEIGHTS[k] for k in range(4) if p[k] is not None)
        s = sum(WEIGHTS[k] * p[k] for k in range(4) if p[k] is not None)
        scored.append((round(100 * s / w, 4) if w else 0.0, views, vid))
    scored.sort(key=lambda x: (-x[0], -x[1], x[2]))
    return scored


def raw_to_outlier():
    """A job from RAW through OUTLIER: rejections with reasons, ranks as computed by hand."""
    c = Cluster("stages", 26220)
    try:
        c.start_broker()
        c.fixture_workers(make_fixture(datetime.datetime.now(datetime.timezone.utc)))
        c.real_worker("nf-sanitizer")
        c.real_worker("nf-geo-validator")
        c.real_worker("nf-analyst")
        job = c.submit("budget travel", count=40, top_n=10)
        c.wait(lambda: c.count_state(job, "OUTLIER") == 10, 60, "10 OUTLIER")
        rejected = dict(c.query("SELECT video_id, rejected_reason FROM nf_videos WHERE job_id = %s "
                                "AND state = 'REJECTED'", job))
        eq(rejected.get("vid001"), "no_transcript", "no captions")
        eq(rejected.get("vid002"), "low_quality", "noise-only transcript")
        for i in range(40):
            vid = f"vid{i:03d}"
            if i % 8 == 7:
                eq(rejected.get(vid), "not_tier1", f"{vid} (DE channel)")
            if i % 8 == 6 and i >= 20:
                eq(rejected.get(vid), "unknown_country", f"{vid} (no country, French audio)")
        q3 = c.query1("SELECT quality FROM nf_videos WHERE job_id = %s AND video_id = 'vid003'", job)
        check(q3 is not None and q3 >= 50, "invalid UTF-8 repaired and scored", q3)
        src = dict(c.query("SELECT video_id, meta->>'country_source' FROM nf_videos WHERE job_id = %s "
                           "AND video_id IN ('vid006', 'vid014', 'vid000')", job))
        eq(src, {"vid000": "channel", "vid006": "language", "vid014": "language"}, "country sources")
        eq(c.query1("SELECT count(*) FROM nf_videos WHERE job_id = %s AND state IN ('OUTLIER', 'VALIDATED') "
                    "AND tier1_validated <> 1", job), 0, "every candidate is tier1_validated")

        created = c.query1("SELECT created_at FROM nf_jobs WHERE id = %s", job)
        rows = c.query("SELECT v.video_id, v.meta, c.data FROM nf_videos v LEFT JOIN nf_channels c "
                       "USING (channel_id) WHERE v.job_id = %s AND v.state IN ('OUTLIER', 'VALIDATED')", job)
        want = expected_ranking(rows, created)
        got = c.query("SELECT video_id, rank, composite, state FROM nf_videos WHERE job_id = %s AND "
                      "rank IS NOT NULL ORDER BY rank", job)
        eq([r[0] for r in got], [w[2] for w in want], "ranking (video ids in rank order)")
        eq([r[1] for r in got], list(range(1, len(want) + 1)), "ranks 1..n")
        for (vid, _, comp, state), (wcomp, _, _) in zip(got, want):
            check(abs(comp - wcomp) < 1e-3, f"composite of {vid}", comp, wcomp)
        eq([r[3] for r in got[:10]], ["OUTLIER"] * 10, "top 10 are OUTLIER")
        check(all(r[3] == "VALIDATED" for r in got[10:]), "the rest stay VALIDATED")
        # Each video's distinct phrases: its own (the sanitizer's meta.key_phrases)
        # that at most a quarter of the job's transcripts (and at least 2) say.
        kp = c.query("SELECT video_id, meta->'key_phrases', scores->'key_phrases' FROM nf_videos WHERE "
                     "job_id = %s AND state IN ('OUTLIER', 'VALIDATED')", job)
        df = {}
        for _, mine, _ in kp:
            for p in set(mine):
                df[p] = df.get(p, 0) + 1
        common = max(len(kp) // 4, 2)
        for vid, mine, distinct in kp:
            eq(distinct, [p for p in mine if df[p] <= common][:5], f"the distinct phrases of {vid}")
        check(sum(len(d) for _, _, d in kp) > 0 and df.get("hostel dorms", 0) > common,
              "some phrases are distinct; the one half the job says is left out", df.get("hostel dorms"))
        check(not any("hostel dorms" in d for _, _, d in kp), "no video's distinct phrases hold it")
        scores = c.query1("SELECT scores FROM nf_videos WHERE job_id = %s AND rank = 1", job)
        check(set(scores) >= {"multiplier", "views_per_sub", "velocity", "engagement", "percentiles",
                              "age_days", "weights"}, "components kept for the export", scores)
        hidden = c.query1("SELECT scores FROM nf_videos WHERE job_id = %s AND video_id = 'vid005'", job)
        eq(hidden["views_per_sub"], None, "hidden subscribers: component skipped")
        nostats = c.query1("SELECT scores FROM nf_videos WHERE job_id = %s AND video_id = 'vid004'", job)
        eq(nostats["multiplier"], None, "missing channel statistics: component skipped")
    finally:
        c.stop()


def filters_and_settings():
    """Job filters reject with reasons; bad worker settings exit 2 with a message."""
    c = Cluster("filters", 26230)
    try:
        c.start_broker()
        c.fixture_workers(make_fixture(datetime.datetime.now(datetime.timezone.utc)))
        c.real_worker("nf-sanitizer")
        c.real_worker("nf-geo-validator", "--tier1", "extended")
        c.real_worker("nf-analyst")
        job = c.submit("budget travel", count=40, top_n=5, min_views=2000, max_age_days=150, format="long")
        c.wait(lambda: c.query1("SELECT phase FROM nf_jobs WHERE id = %s", job) not in ("discover", "analyze", None), 60, "analysis done")
        reasons = dict(c.query("SELECT rejected_reason, count(*) FROM nf_videos WHERE job_id = %s AND "
                               "state = 'REJECTED' GROUP BY 1", job))
        check(reasons.get("below_min_views", 0) > 0 and reasons.get("too_old", 0) > 0
              and reasons.get("format_excluded", 0) > 0, "each filter rejected something", reasons)
        check("not_tier1" not in reasons, "DE is Tier-1 in the extended preset", reasons)
        bad = c.query1("SELECT count(*) FROM nf_videos WHERE job_id = %s AND state IN ('OUTLIER', 'VALIDATED') "
                       "AND ((meta->>'views')::bigint < 2000 OR (meta->>'duration_s')::int <= 60)", job)
        eq(bad, 0, "no filtered video among the candidates")
        eq(c.count_state(job, "OUTLIER"), 5, "top_n outliers")
        import subprocess
        for argv, needle in (([f"{BUILD}/workers/nf-geo-validator", "--tier1", "US,Narnia"], "Narnia"),
                             ([f"{BUILD}/workers/nf-analyst", "--weights", "1,2"], "NF_WEIGHTS"),
                             ([f"{BUILD}/workers/nf-sanitizer", "--quality-min", "101"], "quality-min"),
                             ([f"{BUILD}/workers/nf-sanitizer", "stray"], "unknown argument")):
            p = subprocess.run(argv, env=c.env(), capture_output=True, text=True, timeout=10)
            eq(p.returncode, 2, f"exit code of {argv}")
            check(needle in p.stderr, f"message of {argv} names the problem", p.stderr)
        h = subprocess.run([f"{BUILD}/workers/nf-analyst", "--help"], capture_output=True, text=True, timeout=10)
        check("--weights" in h.stdout and "--tier1" not in h.stdout, "help lists this stage's settings", h.stdout)
    finally:
        c.stop()


def candidates(c, job):
    """The job's candidate set (past geo, not rejected) as expected_ranking wants it."""
    return c.query("SELECT v.video_id, v.meta, c.data FROM nf_videos v LEFT JOIN nf_channels c "
                   "USING (channel_id) WHERE v.job_id = %s AND v.state IN ('VALIDATED', 'OUTLIER', "
                   "'READY', 'EXPORTED')", job)


def export_ids(c, job, version=None):
    """(version, [(rank, video_id)]) of the job's json export (the newest, or VERSION)."""
    body = {"v": 1, "job_id": job, "format": "json"}
    if version:
        body["version"] = version
    r = c.request("nf.export", body, timeout=10000)
    check(r.get("ok"), f"json export version {version or 'newest'} downloadable", r.get("error"))
    doc = json.loads(r["content"])
    return r["version"], sorted((o["rank"], o["video_id"]) for o in doc["outliers"])


def check_whole_ranking(c, job, top_n, what):
    """Every candidate ranked once, as a clean run ranks the same set; the
    top N and only they exported. Answers the expected top N ids."""
    created = c.query1("SELECT created_at FROM nf_jobs WHERE id = %s", job)
    want = [w[2] for w in expected_ranking(candidates(c, job), created)]
    got = c.query("SELECT video_id, rank, state FROM nf_videos WHERE job_id = %s AND rank IS NOT "
                  "NULL AND state NOT IN ('REJECTED', 'FAILED') ORDER BY rank, video_id", job)
    eq([r[1] for r in got], list(range(1, len(want) + 1)), f"{what}: ranks 1..n, each once")
    eq([r[0] for r in got], want, f"{what}: the clean run's ranking of the whole candidate set")
    eq({r[0]: r[2] for r in got[:top_n]}, {v: "EXPORTED" for v in want[:top_n]}, f"{what}: top {top_n} exported")
    check(all(r[2] == "VALIDATED" for r in got[top_n:]), f"{what}: the rest are candidates again",
          [r for r in got[top_n:] if r[2] != "VALIDATED"])
    arch = c.query1("SELECT count(*) FROM (SELECT video_id FROM nf_video_history WHERE job_id = %s "
                    "AND service = 'architect' AND to_state = 'READY' GROUP BY 1 HAVING count(*) > 1) d", job)
    eq(arch, 0, f"{what}: no outlier written twice (content kept across runs)")
    return want[:top_n]


def full_pipeline(c, fx, **fixture_args):
    procs = c.fixture_workers(fx, **fixture_args)
    for exe in ("nf-sanitizer", "nf-geo-validator", "nf-analyst", "nf-architect", "nf-exporter"):
        c.real_worker(exe)
    return procs


def retry_reranks():
    """nf.retry after early FAILED videos of a completed job: the whole set is ranked again,
    ranks stay unique and equal a clean run's, both exports stay downloadable; a job still
    running is refused."""
    c = Cluster("rerank", 26810, NF_MAX_ATTEMPTS="2")
    try:
        c.start_broker()
        fx = make_fixture(datetime.datetime.now(datetime.timezone.utc))
        # vid010..vid019 fail their scrape for good on the first run.
        _, scrape = c.fixture_workers(fx, scrape=("--mode", "permanent", "--match", "vid01"))
        job = c.submit("budget travel", count=40, top_n=10)
        c.wait(lambda: c.count_state(job, "RAW") > 0 and c.job_status(job) == "processing", 30, "videos scraped")
        r = c.request("nf.retry", {"v": 1, "job_id": job})
        check(r.get("ok") is False and "is processing" in r.get("error", ""), "a processing job is not retried", r)
        for exe in ("nf-sanitizer", "nf-geo-validator", "nf-analyst", "nf-architect", "nf-exporter"):
            c.real_worker(exe)
        c.wait(lambda: c.job_status(job) == "completed", 90, "first run completed")
        eq(c.count_state(job, "FAILED"), 10, "scrape failures")
        first = check_whole_ranking(c, job, 10, "first run")
        v1, out1 = export_ids(c, job)
        eq((v1, [i for _, i in out1]), (1, first), "export version 1 holds the first top 10")

        c.kill9(scrape)
        c.worker("scrape", "--fixture", f"{c.logdir}/fixture.json", tag="retry")
        r = c.request("nf.retry", {"v": 1, "job_id": job})
        eq((r.get("ok"), r.get("restored")), (True, 10), "retry answer")
        c.wait(lambda: c.job_status(job) == "completed" and c.count_state(job, "FAILED") == 0, 90,
               "completed after retry")
        top = check_whole_ranking(c, job, 10, "after retry")
        check(top != first, "the retried videos changed the top 10", top)
        v2, out2 = export_ids(c, job)
        eq((v2, [i for _, i in out2], [k for k, _ in out2]), (2, top, list(range(1, 11))), "version 2: the new top 10, ranks 1..10")
        eq(export_ids(c, job, 1), (1, out1), "version 1 still downloadable, unchanged")
        r = c.request("nf.export", {"v": 1, "job_id": job, "format": "xlsx", "version": 3})
        check(r.get("ok") is False and "version 3" in r.get("error", ""), "no version 3", r)
        st = c.request("nf.status", {"v": 1, "job_id": job})
        eq(sorted({(e["version"], e["format"]) for e in st["export_versions"]}),
           [(v, f) for v in (1, 2) for f in ("csv", "json", "xlsx")], "nf.status lists both versions")
        # nf-submit: status names the version, export --version fetches an earlier one.
        submit = [f"{BUILD}/tools/nf-submit"]
        p = subprocess.run(submit + ["status", str(job)], env=c.env(), capture_output=True, text=True, timeout=10)
        check(p.returncode == 0 and "version 2; earlier" in p.stdout, "status says version 2", p.stdout, p.stderr)
        out = os.path.join(c.logdir, "v1.json")
        p = subprocess.run(submit + ["export", str(job), "-o", out, "--export-version", "1"], env=c.env(),
                           capture_output=True, text=True, timeout=10)
        check(p.returncode == 0 and "version 1 of 2" in p.stderr, "nf-submit export --export-version 1", p.stdout, p.stderr)
        with open(out) as f:
            eq(sorted((o["rank"], o["video_id"]) for o in json.load(f)["outliers"]), out1, "the file is version 1")
        p = subprocess.run(submit + ["export", str(job), "-o", out, "--export-version", "0"], env=c.env(),
                           capture_output=True, text=True, timeout=10)
        check(p.returncode == 2 and "--export-version" in p.stderr, "--export-version 0 is a usage error", p.stderr)
    finally:
        c.stop()


def resume_reranks():
    """nf.resume of a partial job: discovery adds videos, the ranking covers old and new
    candidates alike, version 2 of the export holds the new top N."""
    c = Cluster("resume", 26820)
    try:
        c.start_broker()
        fx = make_fixture(datetime.datetime.now(datetime.timezone.utc))
        disc, _ = full_pipeline(c, fx, discover=("--max-videos", "20"))
        job = c.submit("budget travel", count=40, top_n=25)
        c.wait(lambda: c.job_status(job) == "partial", 90, "partial: 20 videos found")
        first = check_whole_ranking(c, job, c.count_state(job, "EXPORTED"), "first run")
        eq(len(first) < 25, True, "fewer outliers than asked")
        c.kill9(disc)
        c.worker("discover", "--fixture", f"{c.logdir}/fixture.json", tag="resume")
        r = c.request("nf.resume", {"v": 1, "job_id": job})
        check(r.get("ok"), "resume accepted", r)
        c.wait(lambda: c.job_status(job) == "completed", 90, "completed after resume")
        eq(c.query1("SELECT count(*) FROM nf_videos WHERE job_id = %s", job), 40, "all 40 found")
        top = check_whole_ranking(c, job, 25, "after resume")
        eq(export_ids(c, job)[0], 2, "resume exported version 2")
        eq([i for _, i in export_ids(c, job)[1]], top, "version 2 holds the new top 25")
        eq([i for _, i in export_ids(c, job, 1)[1]], first, "version 1 kept")
    finally:
        c.stop()


if __name__ == "__main__":
    run({"raw_to_outlier": raw_to_outlier, "filters_and_settings": filters_and_settings,
         "retry_reranks": retry_reranks, "resume_reranks": resume_reranks})
