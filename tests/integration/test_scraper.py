"""nf-scraper against nf-ytsim over loopback: discovery to target with
batching, transcripts, every fault class, quota, the cache, the generic
template source, template fallbacks and required fields, proxies."""
import json, math, os, re, shutil, subprocess, sys, time, urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from harness import BUILD, Cluster, Sim, check, eq, run

TIMESTAMP = re.compile(r"^\[\d+:\d\d\] \S")


def scrapers(c, sim, discover=True, scrape=True, **extra):
    if discover:
        c.real_worker("nf-scraper", "discover", extra=sim.env(**extra))
    if scrape:
        c.real_worker("nf-scraper", "scrape", extra=sim.env(**extra))


def discovered(c, job):
    c.wait(lambda: c.query1("SELECT phase FROM nf_jobs WHERE id = %s", job) != "discover"
           or c.job_status(job) == "failed", 60, "discovery done")
    return c.query("SELECT video_id, channel_id, meta FROM nf_videos WHERE job_id = %s", job)


def scraped(c, job):
    # Status first: "processing" means discovery's videos exist (one transaction).
    # Counting first raced: 0 DISCOVERED before discovery, "processing" just after.
    c.wait(lambda: c.job_status(job) == "processing" and c.count_state(job, "DISCOVERED") == 0,
           120, "every video scraped")
    return {r[0]: r[1:] for r in c.query(
        "SELECT video_id, state, transcript, meta, attempts, last_error FROM nf_videos "
        "WHERE job_id = %s", job)}


def test_discover_batching():
    c = Cluster("scr_batch", 26300)
    try:
        sim = Sim(c, 26305, "--catalog", "500")
        c.start_broker()
        scrapers(c, sim, scrape=False)
        job = c.submit("home gym", count=120)
        rows = discovered(c, job)
        eq(len(rows), 120, "videos discovered to the target")
        eq(len({r[0] for r in rows}), 120, "no duplicate videos")
        s = sim.stats()
        req = s["requests"]
        # Each channel's baseline is two more calls: its uploads page and their videos.list.
        channels = c.query1("SELECT count(DISTINCT channel_id) FROM nf_videos WHERE job_id = %s", job)
        eq(req["playlistItems"], channels, "one uploads page per channel")
        metadata = req["search"] + req["videos"] - req["playlistItems"] + req["channels"]
        check(metadata <= 3 * math.ceil(120 / 50), "at most 3 metadata requests per 50 videos", req)
        eq(c.query1("SELECT baseline_units FROM nf_jobs WHERE id = %s", job), 2 * channels,
           "the baselines' units counted apart")
        check(req["search"] >= 3, "discovery went across pages", req)
        eq(req["watch"] + req["timedtext"], 0, "discover fetches no pages")
        q, h = c.query("SELECT quota_units, http_requests FROM nf_jobs WHERE id = %s", job)[0]
        eq(q, s["quota_used"], "quota units counted per job (as the API charged them)")
        eq(h, s["total"], "HTTP requests counted per job")
        missing = c.query1("SELECT count(*) FROM nf_videos v LEFT JOIN nf_channels ch USING "
                           "(channel_id) WHERE v.job_id = %s AND ch.channel_id IS NULL", job)
        eq(missing, 0, "every video's channel statistics stored")
        data = c.query("SELECT data FROM nf_channels")
        check(all("view_count" in d[0] and "video_count" in d[0] for d in data), "channel stats")
        check(any(d[0].get("hidden_subscribers") for d in data) or len(data) < 20,
              "hidden subscriber counts arrive as such")
        meta = rows[0][2]
        for k in ("title", "views", "published_at", "duration_s", "url"):
            check(k in meta, f"meta has {k}", meta)
    finally:
        c.stop()


def test_discover_lanes():
    """The channels' recent uploads read on NF_BASELINE_LANES lanes at once: the same
    baselines, requests and units as one lane, and the simulator (5 ms a request, a
    thread per connection) saw them overlap; one lane never does."""
    c1, c4 = Cluster("scr_lanes1", 26320), Cluster("scr_lanes4", 26330)
    try:
        sim = Sim(c1, 26325, "--catalog", "300", "--latency-ms", "5")
        seen = {}
        for c, lanes in ((c1, 1), (c4, 4)):
            c.start_broker()
            urllib.request.urlopen(f"http://127.0.0.1:{sim.port}/_sim/reset", timeout=5).read()
            c.real_worker("nf-scraper", "discover", extra=sim.env(NF_BASELINE_LANES=lanes))
            job = c.submit("trail running", count=60)
            eq(len(discovered(c, job)), 60, f"{lanes} lane(s): videos discovered")
            st = sim.stats()
            recent = {ch: d.get("recent") for ch, d in c.query("SELECT channel_id, data FROM nf_channels")}
            check(len(recent) > 20 and all(recent.values()), f"{lanes} lane(s): every channel's uploads",
                  [k for k, v in recent.items() if not v])
            units = c.query("SELECT quota_units, baseline_units, http_requests FROM nf_jobs WHERE id = %s", job)[0]
            seen[lanes] = (recent, st["requests"], units, st["concurrent_max"])
        eq(seen[4][0], seen[1][0], "the same recent uploads for every channel")
        eq(seen[4][1], seen[1][1], "the same requests of each kind")
        eq(seen[4][2], seen[1][2], "the same quota units, baseline units and HTTP requests")
        eq(seen[1][3], 1, "one lane: one request at a time")
        check(2 <= seen[4][3] <= 4, "four lanes: requests at once, never more than four", seen[4][3])
    finally:
        c4.stop()
        c1.stop()


def test_politeness():
    """NF_HTTP_DELAY_MS pauses before every request for the player and timed text, and
    not before a Data API call (the key and its quota limit those): the simulator's
    smallest gap between two page requests is at least the pause, and between two
    API calls (about 25 for 10 videos, most for the channels' baselines) below it."""
    c = Cluster("scr_polite", 26480)
    try:
        sim = Sim(c, 26485, "--catalog", "300")
        c.start_broker()
        scrapers(c, sim, NF_HTTP_DELAY_MS="150", NF_BASELINE_LANES="1")
        job = c.submit("kayak fishing", count=10)
        v = scraped(c, job)
        eq(len(v), 10, "videos scraped")
        st = sim.stats()
        check(st["requests"]["player"] + st["requests"]["timedtext"] >= 10, "pages asked", st["requests"])
        check(st["gap_min_ms"]["pages"] >= 145, "every page request waited its pause", st["gap_min_ms"])
        check(0 <= st["gap_min_ms"]["api"] < 150, "the Data API calls did not", st["gap_min_ms"])
    finally:
        c.stop()


def rejected(c, job):
    return dict(c.query("SELECT video_id, rejected_reason FROM nf_videos WHERE job_id = %s AND state = 'REJECTED'", job))


def test_transcripts():
    """Today's YouTube (nf-ytsim's default): tracks from the innertube player API as the
    first client of the chain; every transcript from a signed, unexpired URL (the
    simulator counts the unsigned, gated and expired ones it answered empty: none);
    age gates, removals, unplayable videos and tracks in another language each end
    REJECTED with their own reason; videos without captions arrive RAW without text."""
    c = Cluster("scr_tt", 26310)
    try:
        sim = Sim(c, 26315, "--catalog", "300")
        c.start_broker()
        scrapers(c, sim)
        job = c.submit("sourdough baking", count=80, lang="en")
        v = scraped(c, job)
        eq(len(v), 80, "videos")
        with_text = [k for k, r in v.items() if r[0] == "RAW" and r[1]]
        no_caps = [k for k, r in v.items() if r[0] == "RAW" and not r[1]]
        check(len(with_text) > 50, "most videos have a transcript", len(with_text))
        check(len(no_caps) > 0, "videos without captions arrive RAW without transcript")
        eq([k for k, r in v.items() if r[0] == "FAILED"], [], "no video FAILED")
        for k in with_text:
            state, text, meta, attempts, err = v[k]
            lines = text.splitlines()
            check(all(TIMESTAMP.match(l) for l in lines), "every line is [m:ss] text", lines[:3])
            check("&amp;" not in text and "&#39;" not in text, "entities decoded", text[:200])
            check(meta.get("captions") in ("manual", "asr"), "track kind kept", meta)
            eq(meta.get("caption_kind"), meta.get("captions"), "caption_kind")
            eq(meta.get("caption_client"), "VISIONOS", "the first client of the chain gave it")
            eq(meta.get("caption_lang"), "en", "an en job gets English")
            eq(meta.get("caption_segments"), len(lines), "segments counted")
        for k in no_caps:
            eq(v[k][2].get("captions"), "none", "no captions noted")
        reasons = rejected(c, job)
        check(set(reasons.values()) <= {"age_restricted", "unavailable", "unplayable",
                                        "no_transcript_in_language"}, "rejection reasons", reasons)
        check("no_transcript_in_language" in reasons.values(), "a video with French tracks only is refused for en", reasons)
        eq(len(with_text) + len(no_caps) + len(reasons), 80, "every video accounted for")
        s = sim.stats()
        h = c.query1("SELECT http_requests FROM nf_jobs WHERE id = %s", job)
        eq(h, s["total"], "every request counted")
        eq(s["timedtext"], {"signed": len(with_text), "unsigned": 0, "gated": 0, "expired": 0},
           "every transcript from a signed URL; none asked unsigned, gated or expired")
        eq(s["requests"]["timedtext"], len(with_text), "one timed-text fetch per transcript")
        # An unplayable video is asked of every step of the chain (VISIONOS, ANDROID, watch)
        # before it is REJECTED unplayable; every other video of its first client.
        unplayable = sum(1 for r in reasons.values() if r == "unplayable")
        eq(s["requests"]["player"], 80 + unplayable, "a player request per video, two per unplayable one")
        eq(s["requests"].get("watch", 0), unplayable, "the watch page only for the unplayable ones")
        # --translate: the French-only videos get an English translation (tlang=en).
        job2 = c.submit("sourdough baking", count=80, lang="en", translate=1)
        v2 = scraped(c, job2)
        translated = [r[2] for r in v2.values() if r[2].get("caption_translated_from")]
        check(translated, "translated tracks", len(translated))
        check(all(m["caption_lang"] == "en" and m["caption_translated_from"] != "en" for m in translated),
              "translated into en from another language", translated[:2])
        check("no_transcript_in_language" not in rejected(c, job2).values(), "none refused for language")
    finally:
        c.stop()


def test_legacy():
    """nf-ytsim --legacy (the YouTube of before 2025: no player API, ungated watch-page
    tracks): the chain falls through to the watch page and every transcript comes
    from there; removed videos are REJECTED unavailable."""
    c = Cluster("scr_legacy", 26390)
    try:
        sim = Sim(c, 26395, "--catalog", "300", "--legacy")
        c.start_broker()
        scrapers(c, sim)
        job = c.submit("sourdough baking", count=80)
        v = scraped(c, job)
        eq(len(v), 80, "videos")
        with_text = [k for k, r in v.items() if r[0] == "RAW" and r[1]]
        check(len(with_text) > 50, "most videos have a transcript", len(with_text))
        for k in with_text:
            eq(v[k][2].get("caption_client"), "watch", "from the watch page")
        fallback = [k for k in with_text if v[k][2].get("watch_matched", {}).get("player") == 1]
        check(fallback, "the template fallback selector read the alternate markup")
        check(set(rejected(c, job).values()) <= {"unavailable"}, "only removals rejected", rejected(c, job))
        eq([k for k, r in v.items() if r[0] == "FAILED"], [], "no video FAILED")
        s = sim.stats()
        eq(c.query1("SELECT http_requests FROM nf_jobs WHERE id = %s", job), s["total"], "every request counted")
    finally:
        c.stop()


def test_today():
    """The outcomes of today's YouTube, injected: a consent page on every watch page
    (answered once with CONSENT=YES+, then transcripts), a bot-check and captcha burst
    on the player API (backoff, new identity, transcripts in the end, nothing FAILED),
    and a chain whose clients only get gated tracks: FAILED transcript_gated after the
    attempts, with no gated or unsigned URL ever fetched."""
    # Consent, on the legacy watch page (the only path whose tracks it serves).
    c = Cluster("scr_consent", 26600 + 20)
    tdir = os.path.join(c.logdir, "templates")
    os.makedirs(tdir, exist_ok=True)
    try:
        sim = Sim(c, 26625, "--catalog", "100", "--legacy", "--fault", "consent:1:watch")
        c.start_broker()
        scrapers(c, sim)
        job = c.submit("sourdough baking", count=20)
        v = scraped(c, job)
        check(sum(1 for r in v.values() if r[0] == "RAW" and r[1]) > 10, "transcripts behind consent")
        eq([k for k, r in v.items() if r[0] == "FAILED"], [], "no video FAILED")
        check(sim.stats()["faults"]["consent"] > 0, "consent pages served")
        log = open(os.path.join(c.logdir, "nf-scraper.log"), errors="replace").read()
        check("answered YouTube's consent form" in log, "the form answered", log[-1500:])
    finally:
        c.stop()
    # A bot-check and captcha burst.
    c = Cluster("scr_botcheck", 26630, NF_MAX_ATTEMPTS="12", NF_RETRY_BASE_MS="20", NF_RETRY_MAX_MS="100")
    try:
        sim = Sim(c, 26635, "--catalog", "100", "--fault", "botcheck:0.3:player", "--fault", "captcha:0.1:player")
        c.start_broker()
        scrapers(c, sim, NF_HTTP_MAX_WAIT_MS="50")
        job = c.submit("sourdough baking", count=30)
        v = scraped(c, job)
        eq([k for k, r in v.items() if r[0] == "FAILED"], [], "no video FAILED after the burst")
        check(sum(1 for r in v.values() if r[0] == "RAW" and r[1]) > 15, "transcripts after backoff")
        s = sim.stats()
        check(s["faults"]["botcheck"] > 0 and s["faults"]["captcha"] > 0, "the burst was injected", s["faults"])
        retried = c.query1("SELECT count(*) FROM nf_processing_log WHERE job_id = %s AND message LIKE 'blocked:%%'", job)
        check(retried > 0, "bot checks were retried as blocks", retried)
    finally:
        c.stop()
    # Only gated tracks: a chain of WEB (gated) and the watch page (gated since 2025).
    c = Cluster("scr_gated", 26640, NF_MAX_ATTEMPTS="2")
    tdir = os.path.join(c.logdir, "templates")
    os.makedirs(tdir, exist_ok=True)
    src = os.path.join(os.environ["NF_SOURCE_DIR"], "workers/scraper/templates")
    prof = json.load(open(os.path.join(src, "youtube_clients.json")))
    prof["chain"] = ["WEB", "watch"]
    json.dump(prof, open(os.path.join(tdir, "youtube_clients.json"), "w"))
    try:
        sim = Sim(c, 26645, "--catalog", "100")
        c.start_broker()
        scrapers(c, sim, NF_TEMPLATE_DIR=tdir)
        job = c.submit("sourdough baking", count=20)
        scraped(c, job)
        rows = c.query("SELECT state, last_error FROM nf_videos WHERE job_id = %s AND state = 'FAILED'", job)
        check(len(rows) > 5, "captioned videos FAILED", rows)
        check(all(r[1].startswith("transcript_gated: WEB: ") and "tracks gated (exp=xpe)" in r[1] for r in rows),
              "FAILED with the reason transcript_gated", rows[:2])
        eq(sim.stats()["timedtext"], {"signed": 0, "unsigned": 0, "gated": 0, "expired": 0},
           "no gated or unsigned URL fetched")
    finally:
        c.stop()


def run_job(name, port, sim_args, env, count=60, max_attempts="3"):
    """A job through discover and scrape; the videos and the simulator's counters."""
    c = Cluster(name, port, NF_MAX_ATTEMPTS=max_attempts)
    try:
        sim = Sim(c, port + 5, "--catalog", "300", *sim_args)
        c.start_broker()
        scrapers(c, sim, **env)
        job = c.submit("urban gardening", count=count)
        v = scraped(c, job)
        return v, sim.stats(), c
    finally:
        c.stop()


def test_faults():
    clean, _, _ = run_job("scr_clean", 26320, [], {})
    faults = ["500:0.12", "503:0.05", "429:0.08", "truncate:0.05", "malformed:0.03",
              "block:0.05", "consent-redirect:0.03", "reset:0.04", "giant:0.02",
              "captcha:0.03", "botcheck:0.03:player"]
    args = [a for f in faults for a in ("--fault", f)] + ["--retry-after", "1"]
    dirty, s, c = run_job("scr_faults", 26330, args, {"NF_HTTP_MAX_BYTES": 1 << 20},
                          max_attempts="12")
    for kind in ("500", "503", "429", "truncate", "malformed", "block", "consent-redirect", "reset", "giant",
                 "captcha", "botcheck"):
        check(s["faults"][kind] > 0, f"fault {kind} injected", s["faults"])
    eq(set(dirty), set(clean), "the same videos discovered")
    for k in clean:
        eq(dirty[k][0], clean[k][0], f"state of {k}")
        eq(dirty[k][1], clean[k][1], f"transcript of {k}")
    logs = open(os.path.join(c.logdir, "nf-scraper.log"), encoding="utf-8", errors="replace").read()
    check("blocked (HTTP 429)" in logs and "captcha page" in logs and "consent page" in logs,
          "blocks were logged", logs[-2000:])


def test_quota():
    """Google's quota model: search.list calls in a bucket of their own, list calls in
    units. A job that one day's budget cannot reach is refused with the arithmetic;
    one that meets the simulator's own limit stops discovery with what it found."""
    c = Cluster("scr_quota", 26340, NF_YOUTUBE_SEARCH_CALLS="4")
    try:
        sim = Sim(c, 26345, "--catalog", "500", "--search-calls", "2")
        c.start_broker()
        scrapers(c, sim, scrape=False)
        r = c.request("nf.submit", {"v": 1, "niche": "vanlife", "options": {"count": 250}})
        check(r["ok"] is False and "options.count: 250 videos need at least 5 search.list calls (50 "
              "results a call) and the daily budget NF_YOUTUBE_SEARCH_CALLS is 4, enough for 200 videos "
              "a day" in r["error"], "refused with the arithmetic", r)
        job = c.submit("vanlife", count=200)
        rows = discovered(c, job)
        check(0 < len(rows) < 200, "discovery stopped early with what it had", len(rows))
        eq(c.job_status(job), "processing", "the job goes on")
        reason = c.query1("SELECT reason FROM nf_job_history WHERE job_id = %s AND to_status = "
                          "'processing'", job)
        check("quotaExceeded" in reason, "the job says why", reason)
        check(c.query1("SELECT count(*) FROM nf_processing_log WHERE job_id = %s AND message "
                       "LIKE 'quotaExceeded%%'", job) == 1, "logged once")
        eq(c.query1("SELECT attempts FROM nf_jobs WHERE id = %s", job), 0, "no retries burnt")
        s = sim.stats()
        check(s["quota_refused"] >= 1, "the simulator refused a request")
        eq(c.query("SELECT search_calls, quota_units FROM nf_jobs WHERE id = %s", job)[0],
           (s["search_calls"], s["quota_used"]), "search calls and units counted apart, as the API did")
        eq(s["search_calls"], 2, "two search calls, the simulator's budget")
    finally:
        c.stop()


def test_cache():
    c = Cluster("scr_cache", 26350)
    cache = os.path.join(c.logdir, "cache")
    shutil.rmtree(cache, ignore_errors=True)
    try:
        sim = Sim(c, 26355, "--catalog", "300")
        c.start_broker()
        scrapers(c, sim, NF_CACHE_DIR=cache)
        job1 = c.submit("film photography", count=50)
        v1 = scraped(c, job1)
        s1 = sim.stats()
        job2 = c.submit("film photography", count=50)
        v2 = scraped(c, job2)
        s2 = sim.stats()
        api = ("search", "videos", "channels")
        eq([s2["requests"][p] for p in api], [s1["requests"][p] for p in api], "a cached re-run asks the API nothing")
        eq(c.query1("SELECT quota_units FROM nf_jobs WHERE id = %s", job2), 0, "and costs no quota")
        # Player answers and timed text carry signed URLs that expire: never cached,
        # asked afresh, and no expired, unsigned or gated URL is ever asked.
        eq(s2["requests"]["player"] - s1["requests"]["player"], 50, "player asked again")
        eq({k: v for k, v in s2["timedtext"].items() if k != "signed"}, {"unsigned": 0, "gated": 0, "expired": 0},
           "no timed text asked from an expired URL")
        eq({k: r[1] for k, r in v2.items()}, {k: r[1] for k, r in v1.items()}, "same transcripts")
        # Stale entries are revalidated with their ETag: 304, no body.
        for p in list(c.procs):
            if "nf-scraper" in " ".join(p.args):
                p.terminate()
                p.wait(10)
        scrapers(c, sim, NF_CACHE_DIR=cache, NF_CACHE_TTL_S=0)
        job3 = c.submit("film photography", count=50)
        v3 = scraped(c, job3)
        s3 = sim.stats()
        api_delta = sum(s3["requests"][p] - s2["requests"][p] for p in api)
        check(s3["not_modified"] - s2["not_modified"] == api_delta > 0,
              "every stale API entry revalidated with a 304", s2, s3)
        eq({k: r[1] for k, r in v3.items()}, {k: r[1] for k, r in v1.items()}, "same transcripts")
        check(all(".tmp" not in f for f in os.listdir(cache)), "no temporary files left")
        check(not any("test-key" in open(os.path.join(cache, f), errors="replace").read()
                      for f in os.listdir(cache)), "the API key is not cached")
    finally:
        c.stop()


def folder_bytes(path):
    total = 0
    for f in os.listdir(path):
        try:
            total += os.path.getsize(os.path.join(path, f))
        except FileNotFoundError:   # evicted meanwhile
            pass
    return total


def test_cache_cap():
    """The cache (issue 24): a discovery of 2,500 videos writes over 2 MiB of
    API answers; with NF_CACHE_MAX_MB=1 the folder never holds more than
    1 MiB while the same discovery runs (least recently used evicted); an
    entry holding another URL's answer is not used for the URL whose file
    it is in; file names are SHA-256 of the URL without its key."""
    import hashlib
    c = Cluster("scr_cachecap", 26870)
    free, capped = os.path.join(c.logdir, "cache-free"), os.path.join(c.logdir, "cache-capped")
    for d in (free, capped):
        shutil.rmtree(d, ignore_errors=True)
    try:
        sim = Sim(c, 26875, "--catalog", "6000")
        c.start_broker()
        disc = c.real_worker("nf-scraper", "discover", extra=sim.env(NF_CACHE_DIR=free))
        job1 = c.submit("home gym", count=2500)
        v1 = discovered(c, job1)
        written = folder_bytes(free)
        names = os.listdir(free)
        print(f"cache_cap: an uncapped discovery of 2,500 videos left {written} bytes in {len(names)} entries")
        check(written > 2 * 1024 * 1024, "the discovery writes over twice the cap", written)
        for name in names:
            url = open(os.path.join(free, name), errors="replace").read().split("\n")[1]
            eq(hashlib.sha256(url.encode()).hexdigest(), name, "the file name is the SHA-256 of its URL")
            check("key=" not in url, "no key in a stored URL", url)
        c.kill9(disc)
        disc = c.real_worker("nf-scraper", "discover", extra=sim.env(NF_CACHE_DIR=capped, NF_CACHE_MAX_MB="1"))
        job2 = c.submit("home gym", count=2500)
        most = 0
        deadline = time.time() + 120
        while c.query1("SELECT phase FROM nf_jobs WHERE id = %s", job2) == "discover" and time.time() < deadline:
            if os.path.isdir(capped):
                most = max(most, folder_bytes(capped))
            time.sleep(0.02)
        v2 = discovered(c, job2)
        most = max(most, folder_bytes(capped))
        print(f"cache_cap: with NF_CACHE_MAX_MB=1 the folder held at most {most} bytes")
        eq(len(v2), len(v1), "the capped discovery found as many videos")
        check(0 < most <= 1024 * 1024, "the capped folder stayed under 1 MiB", most)
        # An entry in the wrong file: its URL says whose it is, and it is not used.
        c.kill9(disc)
        entries = sorted(names)
        urls = {n: open(os.path.join(free, n), errors="replace").read().split("\n")[1] for n in entries}
        vids = [n for n in entries if "/videos?" in urls[n]]
        check(len(vids) >= 2, "two videos.list entries to swap", len(vids))
        with open(os.path.join(free, vids[0]), "rb") as f:
            foreign = f.read()
        with open(os.path.join(free, vids[1]), "wb") as f:
            f.write(foreign)
        before = sim.stats()["requests"]
        c.real_worker("nf-scraper", "discover", extra=sim.env(NF_CACHE_DIR=free))
        job3 = c.submit("home gym", count=2500)
        v3 = discovered(c, job3)
        after = sim.stats()["requests"]
        eq({k: after[k] - before[k] for k in ("search", "videos", "channels")}, {"search": 0, "videos": 1, "channels": 0},
           "only the URL whose file held another URL's answer was asked again")
        eq(sorted(r[0] for r in v3), sorted(r[0] for r in v1), "and the answers are the right ones")
    finally:
        c.stop()


def test_template_source():
    # The broker accepts only the sources it is told of (NF_SOURCES).
    c = Cluster("scr_tpl", 26360, NF_SOURCES="youtube template:simsite template:mysite")
    tdir = os.path.join(c.logdir, "templates")
    os.makedirs(tdir, exist_ok=True)
    src = os.path.join(os.environ["NF_SOURCE_DIR"], "workers/scraper/templates")
    site = json.load(open(os.path.join(src, "simsite.json")))
    site["name"] = "mysite"
    for f in site["fields"]:   # the primary title selector no longer matches: the fallback must
        if f["name"] == "title":
            f["selectors"][0]["xpath"] = "//h1[@class='renamed']"
    json.dump(site, open(os.path.join(tdir, "mysite.json"), "w"))
    try:
        sim = Sim(c, 26365, "--catalog", "300")
        c.start_broker()
        scrapers(c, sim, NF_TEMPLATE_DIR=tdir)
        job = c.submit("knife sharpening", count=30, source="template:mysite")
        v = scraped(c, job)
        eq(len(v), 30, "items discovered from the listing across pages")
        check(sim.stats()["requests"]["site"] >= 30 + 2, "listing pages and item pages fetched")
        metas = [r[2] for r in v.values()]
        check(all(m.get("source") == "template:mysite" for m in metas), "source kept")
        check(all(m.get("template_matched", {}).get("title") == 1 for m in metas),
              "the title came from the fallback selector")
        check(all(isinstance(m.get("views"), int) and m.get("title") for m in metas), "fields")
        texts = [r[1] for r in v.values() if r[0] == "RAW" and r[1]]
        check(len(texts) > 15, "transcripts from the item pages", len(texts),
              sorted((r[0], r[2].get("captions"), r[4]) for r in v.values())[:5])
        missing = c.query1("SELECT count(*) FROM nf_videos v LEFT JOIN nf_channels ch USING "
                           "(channel_id) WHERE v.job_id = %s AND ch.channel_id IS NULL", job)
        eq(missing, 0, "channel facts from the item pages")
    finally:
        c.stop()


def test_required_field():
    c = Cluster("scr_req", 26370, NF_MAX_ATTEMPTS="2")
    tdir = os.path.join(c.logdir, "templates")
    os.makedirs(tdir, exist_ok=True)
    src = os.path.join(os.environ["NF_SOURCE_DIR"], "workers/scraper/templates")
    t = json.load(open(os.path.join(src, "youtube_watch.json")))
    t["fields"][0]["selectors"] = [{"xpath": "//script[@id='gone']"}]
    json.dump(t, open(os.path.join(tdir, "youtube_watch.json"), "w"))
    prof = json.load(open(os.path.join(src, "youtube_clients.json")))
    prof["chain"] = ["watch"]   # the watch page alone, on the legacy simulator that serves its tracks
    json.dump(prof, open(os.path.join(tdir, "youtube_clients.json"), "w"))
    try:
        sim = Sim(c, 26375, "--catalog", "100", "--legacy")
        c.start_broker()
        scrapers(c, sim, NF_TEMPLATE_DIR=tdir)
        job = c.submit("chess openings", count=10)
        c.wait(lambda: c.count_state(job, "FAILED") == 10, 60, "every video FAILED")
        errs = {r[0] for r in c.query("SELECT last_error FROM nf_videos WHERE job_id = %s", job)}
        eq(errs, {"no client answered: watch: template youtube_watch: required field 'player' not "
                  "found (1 selector tried)"}, "a clear error naming the field")
    finally:
        c.stop()


def test_secret_file():
    """A secret is never a flag (flags show in ps): --youtube-api-key is
    refused, naming the way; the key read from NF_YOUTUBE_API_KEY_FILE works
    (the simulator accepts only that key) and is found in no process's
    command line, no log and no database row (issue 24)."""
    c = Cluster("scr_secret", 26770)
    key = "sekrit-yt-4f9c1a"
    try:
        sim = Sim(c, 26775, "--catalog", "200", "--api-key", key)
        path = os.path.join(c.logdir, "youtube.key")
        with open(path, "w") as f:
            f.write(key + "\n")
        os.chmod(path, 0o600)
        r = subprocess.run([f"{BUILD}/workers/nf-scraper", "discover", "--youtube-api-key", key],
                           env=c.env(sim.env()), capture_output=True, text=True, timeout=10)
        eq(r.returncode, 2, "a key as a flag: bad arguments")
        check("a secret is never a flag" in r.stderr and "NF_YOUTUBE_API_KEY_FILE" in r.stderr,
              "the message names the way", r.stderr)
        env = sim.env()
        del env["NF_YOUTUBE_API_KEY"]
        env["NF_YOUTUBE_API_KEY_FILE"] = path
        c.start_broker()
        p = c.real_worker("nf-scraper", "discover", extra=env)
        job = c.submit("secret file", count=20)
        rows = discovered(c, job)
        eq(len(rows), 20, "discovered with the key from the file")
        cmdline = open(f"/proc/{p.pid}/cmdline", "rb").read()
        check(key.encode() not in cmdline, "the key is not on the command line (ps)")
        for log in os.listdir(c.logdir):
            if log.endswith(".log") and not log.startswith("ytsim"):
                check(key not in open(os.path.join(c.logdir, log), errors="replace").read(),
                      f"the key is in no log ({log})")
        dump = c.query("SELECT concat_ws(' ', j.options::text, j.status_reason, j.last_error, "
                       "(SELECT string_agg(v.meta::text || coalesce(v.last_error, ''), ' ') FROM nf_videos v "
                       "WHERE v.job_id = j.id), (SELECT string_agg(message, ' ') FROM nf_processing_log l "
                       "WHERE l.job_id = j.id)) FROM nf_jobs j")
        check(all(key not in (row[0] or "") for row in dump), "the key is in no database row")
        env["NF_YOUTUBE_API_KEY"] = key
        r = subprocess.run([f"{BUILD}/workers/nf-scraper", "discover"], env=c.env(env),
                           capture_output=True, text=True, timeout=10)
        eq(r.returncode, 2, "both the variable and the file: refused")
        check("not both" in r.stderr, "and said", r.stderr)
    finally:
        c.stop()


def test_keys_nowhere():
    """After a whole run with a Data API key and an LLM key, each from a file
    (issue 24): neither key is on any process's command line or in its
    environment (what ps and /proc show), in any log, in any row of the
    database (pg_dump, and the exports decoded), in any cache file, or in any
    workbook (every part of the zip), CSV or JSON, in the output folder or
    downloaded."""
    import io, zipfile
    from fake_llm import FakeLLM
    yt_key, llm_key = "AIzaFAKEyt-9d1e2f3a4b5c", "sk-FAKEllm-7a8b9c0d1e2f"
    c = Cluster("scr_keys", 26880, NF_MIN_READY="1")
    llm = None
    try:
        sim = Sim(c, 26885, "--catalog", "300", "--api-key", yt_key)
        llm = FakeLLM(26889, key=llm_key)
        files = {}
        for name, key in (("youtube.key", yt_key), ("llm.key", llm_key)):
            files[name] = os.path.join(c.logdir, name)
            with open(files[name], "w") as f:
                f.write(key + "\n")
            os.chmod(files[name], 0o600)
        cache, out = os.path.join(c.logdir, "cache"), os.path.join(c.logdir, "out")
        for d in (cache, out):
            shutil.rmtree(d, ignore_errors=True)
        os.makedirs(out)
        c.start_broker()
        env = sim.env(NF_CACHE_DIR=cache)
        del env["NF_YOUTUBE_API_KEY"]
        env["NF_YOUTUBE_API_KEY_FILE"] = files["youtube.key"]
        c.real_worker("nf-scraper", "discover", extra=env)
        c.real_worker("nf-scraper", "scrape", extra=env)
        for exe in ("nf-sanitizer", "nf-geo-validator", "nf-analyst"):
            c.real_worker(exe)
        c.real_worker("nf-architect", extra={"NF_LLM_URL": llm.url, "NF_LLM_MODEL": "fake-model",
                                             "NF_LLM_API_KEY_FILE": files["llm.key"]})
        c.real_worker("nf-exporter", extra={"NF_OUTPUT_DIR": out})
        job = c.submit("keys nowhere", count=30, top_n=5)
        c.wait(lambda: c.job_status(job) in ("completed", "partial"), 90, "the job exported")
        eq(llm.problems, [], "the LLM got well-formed requests with its key")
        check(len(llm.requests) >= 5, "the LLM wrote the outliers' content", len(llm.requests))
        keys = (yt_key.encode(), llm_key.encode())

        def clean(what, data):
            for k in keys:
                check(k not in data, f"no key in {what}")
            return 1
        seen = 0
        for p in c.procs:   # what ps shows, and the environment (the simulator plays YouTube)
            if p.poll() is None and "nf-ytsim" not in p.args[0]:
                seen += clean(f"the command line of {p.args[0]}", open(f"/proc/{p.pid}/cmdline", "rb").read())
                seen += clean(f"the environment of {p.args[0]}", open(f"/proc/{p.pid}/environ", "rb").read())
        ps = subprocess.run(["ps", "-eww", "-o", "args"], capture_output=True, timeout=10).stdout
        seen += clean("ps -eww", b"\n".join(line for line in ps.split(b"\n") if b"nf-ytsim" not in line))
        for name in os.listdir(c.logdir):
            if name.endswith(".log") and not name.startswith("ytsim"):   # the simulator plays YouTube
                seen += clean(f"log {name}", open(os.path.join(c.logdir, name), "rb").read())
        dump = subprocess.run(["pg_dump", "-h", "127.0.0.1", "-p", str(c.pg_port), "-U", "postgres",
                               "--data-only", c.db], capture_output=True, timeout=60)
        eq(dump.returncode, 0, f"pg_dump: {dump.stderr[-300:]}")
        check(b"nf_videos" in dump.stdout and len(dump.stdout) > 10000, "the dump has the data")
        seen += clean("the database dump", dump.stdout)
        for name in os.listdir(cache):
            seen += clean(f"cache file {name}", open(os.path.join(cache, name), "rb").read())
        check(len(os.listdir(cache)) > 0, "the cache was used")

        def export_parts(name, data):
            if name.endswith(".xlsx"):
                with zipfile.ZipFile(io.BytesIO(data)) as z:
                    return [(f"{name}:{m}", z.read(m)) for m in z.namelist()]
            return [(name, data)]
        parts = []
        for name in os.listdir(out):
            parts += export_parts(name, open(os.path.join(out, name), "rb").read())
        for fmt in ("xlsx", "csv", "json"):
            r = c.request("nf.export", {"v": 1, "job_id": job, "format": fmt}, timeout=10000)
            check(r.get("ok"), f"nf.export {fmt}", r)
            parts += export_parts(f"nf.export.{fmt}", r["content"])
        check(len(parts) > 10 and any("sheet" in n for n, _ in parts), "every part of the workbooks", len(parts))
        for name, data in parts:
            seen += clean(name, data)
        print(f"keys_nowhere: {seen} artefacts searched, neither key in any")
    finally:
        if llm:
            llm.stop()
        c.stop()


def test_proxies():
    c = Cluster("scr_proxy", 26380)
    try:
        sim = Sim(c, 26385, "--catalog", "100")
        c.start_broker()
        dead = "http://127.0.0.1:26389"   # nothing listens there
        scrapers(c, sim, NF_PROXIES=f"{dead},http://127.0.0.1:{sim.port}")
        job = c.submit("bonsai", count=20)
        v = scraped(c, job)
        eq(len(v), 20, "videos")
        check(all(r[0] in ("RAW", "REJECTED") for r in v.values()), "scraped through the proxy",
              sorted((r[0], r[4]) for r in v.values()))
        s = sim.stats()
        eq(s["proxied"], s["total"], "every request went through the live proxy")
        check(not any("failed" in (r[4] or "") and "connect" in (r[4] or "") for r in v.values()),
              "the dead proxy cost no video")
    finally:
        c.stop()


run({"discover_batching": test_discover_batching, "discover_lanes": test_discover_lanes, "politeness": test_politeness, "transcripts": test_transcripts, "legacy": test_legacy,
     "today": test_today,
     "faults": test_faults, "quota": test_quota, "cache": test_cache, "cache_cap": test_cache_cap, "keys_nowhere": test_keys_nowhere,
     "template_source": test_template_source, "required_field": test_required_field,
     "proxies": test_proxies, "secret_file": test_secret_file})
