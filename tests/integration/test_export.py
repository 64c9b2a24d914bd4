"""Export integration tests (issues: architect, exporter). Real broker,
Postgres and stage workers; discover and scrape come from nf-testworker
--fixture. Every format is read back with a real reader: openpyxl (Debian's
python3-openpyxl) for xlsx, the csv and json modules. Run one:
test_export.py NAME."""
import csv, datetime, io, json, os, random, re, shutil, subprocess

import openpyxl
from openpyxl.utils.escape import unescape

from harness import Cluster, Sim, check, eq, run

LONG = "A" * 40000 + "END"
HOSTILE = ['=HYPERLINK("http://evil.example","click")', "+1 555 0100", "-2+3", "@SUM(A1:A9)",
           "\tTabbed title", "Rocket \U0001F680 fire \U0001F525 travel", "bell\x07 and \x01 controls",
           LONG]
WORDS = ("travel budget hostel train ticket city museum street food market night morning beach "
         "river bridge castle walk bus map coffee plan money save cheap flight bag pack light").split()


def fixture(n, titles=(), fail=(), now=None):
    """N good videos on one US channel; TITLES replace the first titles; ids in FAIL end in -fail."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    rng = random.Random(n)
    videos = []
    for i in range(n):
        vid = f"v{i:02d}" + ("-fail" if i in fail else "")
        views = 10000 * (n - i) + rng.randint(0, 999)
        words = " ".join(rng.choice(WORDS) for _ in range(500))
        videos.append({"video_id": vid, "channel_id": "UCus",
                       "meta": {"title": titles[i] if i < len(titles) else f"Budget trip {i}",
                                "views": views, "likes": views // 20, "comments": views // 200,
                                "duration_s": 600 + i,
                                "published_at": (now - datetime.timedelta(days=10 + i)).strftime("%Y-%m-%dT%H:%M:%SZ")},
                       "transcript": words})
    return {"videos": videos,
            "channels": [{"channel_id": "UCus", "title": "Budget Nomad", "country": "US",
                          "subscribers": 50000, "view_count": 5000000, "video_count": 250}]}


def start(c, fx, architect=None, extra_env=None):
    c.fixture_workers(fx)
    for exe in ("nf-sanitizer", "nf-geo-validator", "nf-analyst"):
        c.real_worker(exe)
    arch = architect or c.real_worker("nf-architect")
    exporter = c.real_worker("nf-exporter", extra=extra_env)
    return arch, exporter


def fetch(c, job, fmt):
    r = c.request("nf.export", {"v": 1, "job_id": job, "format": fmt}, timeout=10000)
    check(r.get("ok"), f"nf.export {fmt}", r)
    return r["content"]


def workbook():
    """A job to a workbook: sheets, formats, hyperlinks, ranks, hostile titles; CSV and JSON agree."""
    c = Cluster("workbook", 26240)
    outdir = os.path.join(c.logdir, "out")
    shutil.rmtree(outdir, ignore_errors=True)
    os.makedirs(outdir)
    # An earlier run's file of the same name (a fresh database numbers jobs from 1 again):
    # never overwritten; this run's files take the next free copy number.
    earlier = os.path.join(outdir, "budget-travel-solo-1.csv")
    with open(earlier, "w") as f:
        f.write("an earlier run\n")
    try:
        c.start_broker()
        start(c, fixture(10, HOSTILE), extra_env={"NF_OUTPUT_DIR": outdir})
        job = c.submit("Budget Travel / Solo?", count=10, top_n=10)
        eq(job, 1, "a fresh database's first job")
        c.wait(lambda: c.job_status(job) in ("completed", "partial", "failed"), 90, "job finished")
        eq(c.job_status(job), "completed", "job status")
        db = {r[0]: r for r in c.query("SELECT video_id, rank, composite, quality, meta, ai FROM nf_videos "
                                       "WHERE job_id = %s AND state = 'EXPORTED'", job)}
        eq(len(db), 10, "exported videos")
        by_rank = sorted(db.values(), key=lambda r: r[1])

        raw = fetch(c, job, "xlsx")
        eq(raw, open(os.path.join(outdir, f"budget-travel-solo-{job}-2.xlsx"), "rb").read(),
           "NF_OUTPUT_DIR file equals the stored export")
        eq(open(earlier).read(), "an earlier run\n", "the earlier run's file untouched")
        check(not os.path.exists(os.path.join(outdir, f"budget-travel-solo-{job}.xlsx")),
              "no format of the copy takes a name the earlier run holds")
        umask = os.umask(0)
        os.umask(umask)
        for ext in ("xlsx", "csv", "json"):
            mode = os.stat(os.path.join(outdir, f"budget-travel-solo-{job}-2.{ext}")).st_mode & 0o777
            eq(oct(mode), oct(0o666 & ~umask), f"mode of the .{ext} file (0666 less the umask)")
        wb = openpyxl.load_workbook(io.BytesIO(raw))
        eq(wb.sheetnames, ["Outliers", "Charts", "Chart data", "AI Content", "Metadata"], "sheets")
        eq(wb["Chart data"].sheet_state, "hidden", "the charts' data sheet is hidden")
        ws = wb["Outliers"]
        header = [cell.value for cell in ws[1]]
        eq(header[:7], ["Rank", "Thumbnail", "Title", "Channel", "Outlier (x baseline)", "Baseline views",
                        "Baseline"], "header")
        check(all(cell.font.b for cell in ws[1]), "bold header")
        eq(ws.freeze_panes, "D2", "frozen header, rank, picture and title")
        check(ws.auto_filter.ref and ws.auto_filter.ref.startswith("A1:"), "autofilter", ws.auto_filter.ref)
        col = {h: i for i, h in enumerate(header)}
        rows = list(ws.iter_rows(min_row=2, values_only=False))
        eq(len(rows), 10, "outlier rows")
        for row, want in zip(rows, by_rank):
            vid, rank, composite, quality, meta, ai = want
            eq(row[col["Rank"]].value, rank, "rank order")
            eq(row[col["Video ID"]].value, vid, "video id in rank order")
            eq(row[col["Link"]].hyperlink.target, f"https://www.youtube.com/watch?v={vid}", "hyperlink")
            title = row[col["Title"]]
            eq(title.data_type, "s", f"title of {vid} is text, never a formula")
            # Control characters are stored in OOXML's _xHHHH_ form, which Excel and
            # LibreOffice decode; openpyxl leaves that to its unescape().
            eq(unescape(title.value), meta["title"][:32767], f"title of {vid} intact (capped at 32,767)")
            eq(row[col["Views"]].value, meta["views"], "views")
            eq(row[col["Views"]].number_format, "#,##0", "views format")
            eq(row[col["Engagement"]].number_format, "0.00%", "engagement format")
            check(isinstance(row[col["Published"]].value, datetime.datetime), "published is a date",
                  row[col["Published"]].value)
            eq(row[col["Published"]].number_format, "yyyy-mm-dd", "date format")
            check(abs(row[col["Composite score"]].value - composite) < 1e-3, "composite", row[col["Composite score"]].value, composite)
            check(abs(row[col["Quality score"]].value - quality) < 1e-3, "quality")
            eq(row[col["Channel"]].value, "Budget Nomad", "channel")
            eq(row[col["Channel"]].hyperlink.target, "https://www.youtube.com/channel/UCus", "the channel's link")
            eq(row[col["Baseline"]].value, "channel lifetime mean (too few recent uploads)",
               "no recent uploads in the fixture: the lifetime mean, said so")
            eq(row[col["Outlier (x baseline)"]].number_format, '0.0"x"', "the outlier figure as 4.2x")
            eq(row[col["Country"]].value, "US", "country")
        check(ws.column_dimensions["C"].width >= 40, "title column wide", ws.column_dimensions["C"].width)

        ai_ws = wb["AI Content"]
        ai_rows = list(ai_ws.iter_rows(min_row=2, values_only=True))
        eq(len(ai_rows), 10, "AI rows")
        for r, want in zip(ai_rows, by_rank):
            ai = want[5]
            eq(r[1], want[0], "AI row order")
            eq(r[3], "\n".join(ai["titles"]), "title variants")
            eq(len(ai["titles"]), 5, "5 titles")
            eq(r[4], ai["hook"], "hook")
            eq(r[5].count("\n"), 4, "5-point outline")
            eq(ai["source"], "builtin", "built-in generator")
            check(ai_ws.cell(row=2, column=5).alignment.wrap_text, "wrapped text")

        meta_ws = wb["Metadata"]
        kv = {r[0]: r[1] for r in meta_ws.iter_rows(min_row=2, values_only=True) if r[0]}
        eq(kv["Niche"], "Budget Travel / Solo?", "niche")
        eq(kv["Job ID"], job, "job id")
        eq(kv["Funnel: discovered"], 10, "funnel discovered")
        eq(kv["Funnel: ready"], 10, "funnel ready")
        check(kv["nicheflow version"], "version")
        check("Stage" in kv and "Failed video" in kv, "timings and failures sections", list(kv))

        rows_csv = list(csv.DictReader(io.StringIO(fetch(c, job, "csv").decode("utf-8"), newline="")))
        eq([r["video_id"] for r in rows_csv], [r[0] for r in by_rank], "CSV rank order")
        for r, want in zip(rows_csv, by_rank):
            t = want[4]["title"]
            if t[0] in "=+-@\t\r":
                eq(r["title"], "'" + t, "dangerous CSV cell prefixed")
            else:
                eq(r["title"], t, "CSV title intact")
        doc = json.loads(fetch(c, job, "json"))
        eq([o["video_id"] for o in doc["outliers"]], [r[0] for r in by_rank], "JSON rank order")
        eq({o["title"] for o in doc["outliers"]}, {r[4]["title"] for r in by_rank}, "JSON titles intact")
        eq(doc["metadata"]["Funnel: ready"], 10, "JSON funnel")
        check(os.path.exists(os.path.join(outdir, f"budget-travel-solo-{job}-2.csv")), "CSV in NF_OUTPUT_DIR")
        eq(c.query1("SELECT count(*) FROM nf_exports WHERE job_id = %s", job), 3, "three formats stored")
    finally:
        c.stop()


def partial():
    """7 READY of a target of 10: exported, job partial."""
    c = Cluster("partial", 26250)
    try:
        c.start_broker()
        fx = fixture(7)
        start(c, fx)
        job = c.submit("budget travel", count=10, top_n=10)   # only 7 exist
        c.wait(lambda: c.job_status(job) in ("completed", "partial", "failed"), 90, "job finished")
        eq(c.job_status(job), "partial", "job status")
        eq(c.count_state(job, "EXPORTED"), 7, "exported")
        wb = openpyxl.load_workbook(io.BytesIO(fetch(c, job, "xlsx")))
        eq(wb["Outliers"].max_row, 8, "7 rows and the header")
    finally:
        c.stop()


def failed_then_retry():
    """3 READY (7 architect failures): job failed; nf.retry with a working architect completes it."""
    c = Cluster("retry", 26260, NF_MAX_ATTEMPTS="2")
    try:
        c.start_broker()
        fx = fixture(10, fail=range(3, 10))
        bad = c.worker("architect", "--mode", "permanent", "--match", "-fail")
        start(c, fx, architect=bad)
        job = c.submit("budget travel", count=10, top_n=10)
        c.wait(lambda: c.job_status(job) == "failed", 90, "job failed")
        eq(c.count_state(job, "READY"), 3, "READY before retry")
        eq(c.count_state(job, "FAILED"), 7, "FAILED before retry")
        reason = c.query1("SELECT status_reason FROM nf_jobs WHERE id = %s", job)
        check(reason and "READY" in reason, "failure reason names READY", reason)
        r = c.request("nf.export", {"v": 1, "job_id": job, "format": "xlsx"})
        check(not r.get("ok"), "no export for a failed job", r)
        c.kill9(bad)
        c.real_worker("nf-architect")
        r = c.request("nf.retry", {"v": 1, "job_id": job})
        check(r.get("ok"), "nf.retry accepted", r)
        eq(r.get("restored"), 7, "FAILED videos put back")
        c.wait(lambda: c.job_status(job) == "completed", 90, "job completed after retry")
        eq(c.count_state(job, "EXPORTED"), 10, "all exported")
        wb = openpyxl.load_workbook(io.BytesIO(fetch(c, job, "xlsx")))
        eq(wb["Outliers"].max_row, 11, "10 rows and the header")
    finally:
        c.stop()


def rendered():
    """Issue 25, through nf-ytsim and every real worker: each outlier measured
    against the median of its channel's recent uploads, the quota of those
    lookups equal to the simulator's count and spent once a day per channel;
    the workbook read back by openpyxl (thumbnails, charts, row heights, print
    setup) and rendered by LibreOffice headless to PDF and PNG (the Outliers
    sheet on one page, every outlier on it)."""
    import glob
    c = Cluster("rendered", 26890)
    out = os.path.join(c.logdir, "render")
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    try:
        sim = Sim(c, 26895, "--catalog", "400")
        c.start_broker()
        c.real_pipeline(sim)
        job = c.submit("home espresso", count=120, top_n=10)
        c.wait(lambda: c.job_status(job) in ("completed", "partial"), 120, "the job exported")
        s1 = sim.stats()
        units, baseline = c.query("SELECT quota_units, baseline_units FROM nf_jobs WHERE id = %s", job)[0]
        lists = s1["requests"]["videos"] + s1["requests"]["channels"] + s1["requests"]["playlistItems"]
        eq(units, s1["quota_used"], "the job's quota units equal the simulator's")
        eq(units, lists, "one unit per list call")
        chans = c.query1("SELECT count(DISTINCT channel_id) FROM nf_videos WHERE job_id = %s", job)
        eq(s1["requests"]["playlistItems"], chans, "one uploads page per channel")
        eq(baseline, 2 * chans, "two units per channel's baseline (its uploads and their statistics)")
        srcs = dict(c.query("SELECT scores->>'baseline_source', count(*) FROM nf_videos WHERE job_id = %s "
                            "AND scores IS NOT NULL GROUP BY 1", job))
        check(srcs.get("recent_median", 0) > 0, "outliers measured against recent medians", srcs)
        # An independent check of one outlier's figure from the stored uploads.
        vid, views, x, ch = c.query("SELECT v.video_id, (v.meta->>'views')::float8, (v.scores->>'outlier_x')::float8, "
                                    "c.data FROM nf_videos v JOIN nf_channels c USING (channel_id) WHERE v.job_id = %s "
                                    "AND v.rank = 1", job)[0]
        created = c.query1("SELECT created_at FROM nf_jobs WHERE id = %s", job)
        ok = []
        for u in ch["recent"]:
            pub = datetime.datetime.strptime(u["published_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
            if u["video_id"] != vid and "views" in u and (created - pub).total_seconds() / 86400 >= 7 \
                    and not (0 < u.get("duration_s", 0) <= 180):
                ok.append(u["views"])
        ok = sorted(ok[:30])
        median = (ok[len(ok) // 2] if len(ok) % 2 else (ok[len(ok) // 2 - 1] + ok[len(ok) // 2]) / 2) if len(ok) >= 5 \
            else ch["view_count"] / ch["video_count"]
        check(abs(x - views / median) < 1e-6 * max(1, x), "rank 1's outlier figure by hand", x, views / median)
        # A second job the same day: the channels' uploads are not asked again.
        job2 = c.submit("home espresso", count=120, top_n=10)
        c.wait(lambda: c.job_status(job2) in ("completed", "partial"), 120, "the second job exported")
        s2 = sim.stats()
        eq(s2["requests"]["playlistItems"] - s1["requests"]["playlistItems"], 0, "no uploads asked again")
        eq(c.query1("SELECT baseline_units FROM nf_jobs WHERE id = %s", job2), 0, "no baseline units spent")
        eq(c.query1("SELECT count(*) FROM nf_videos WHERE job_id = %s AND scores->>'baseline_source' = "
                    "'recent_median'", job2),
           c.query1("SELECT count(*) FROM nf_videos WHERE job_id = %s AND scores->>'baseline_source' = "
                    "'recent_median'", job), "the same medians from the stored uploads")

        # The built-in generator read each video: its own opening quoted in
        # the hook, no sentence frame shared by two outliers, articles agree.
        ais = c.query("SELECT ai, clean_text FROM nf_videos WHERE job_id = %s AND state = 'EXPORTED'", job)
        eq(len(ais), 10, "ten outliers written")
        frames = [tuple(a["frames"]) for a, _ in ais]
        for k in range(7):
            column = [f[k] for f in frames]
            eq(len(set(column)), len(column), f"frame {k} differs across the outliers")
        titles = [t for a, _ in ais for t in a["titles"]]
        eq(len(set(titles)), len(titles), "no title twice")
        for a, text in ais:
            quote = re.search(r'"([^"]+)"', a["hook"])
            check(quote and quote.group(1).rstrip("\u2026").lower() in " ".join(text.split()).lower(),
                  "the hook quotes its own transcript", a["hook"], text[:200])
            for field in a["titles"] + [a["hook"], a["thumbnail"], a["why"]] + a["outline"]:
                check(not re.search(r"\ba [aeioAEIO]", field) and not re.search(r"\ban [bcdfgjklmnpqrstvwxyz]", field),
                      "articles agree", field)
        path = os.path.join(out, "outliers.xlsx")
        with open(path, "wb") as f:
            f.write(fetch(c, job, "xlsx"))
        check(s1["thumbnails"] >= 10, "the thumbnails fetched from the simulator", s1["thumbnails"])
        wb = openpyxl.load_workbook(path)
        ws = wb["Outliers"]
        n = ws.max_row - 1
        eq(n, 10, "ten outliers")
        eq(len(ws._images), n, "a picture in every outlier row")
        check(all(img.anchor._from.col == 1 for img in ws._images), "in the Thumbnail column")
        eq(len(wb["Charts"]._charts), 2, "the scatter of every candidate and the funnel")
        check(all(ws.row_dimensions[r].height for r in range(1, n + 2)), "every Outliers row has a height")
        ai = wb["AI Content"]
        check(all(ai.row_dimensions[r].height and ai.row_dimensions[r].height > 15 for r in range(2, n + 2)),
              "every wrapped AI row has a height that fits it", [ai.row_dimensions[r].height for r in range(2, n + 2)])
        for sheet in ("Outliers", "Charts", "AI Content", "Metadata"):
            w = wb[sheet]
            # fitToWidth left out means 1 (OOXML's default); fitToHeight 0: as many as it takes
            eq((w.page_setup.orientation, w.page_setup.fitToWidth or 1, w.page_setup.fitToHeight,
                w.sheet_properties.pageSetUpPr.fitToPage), ("landscape", 1, 0, True),
               f"{sheet}: landscape, one page wide")
        eq(ws.print_title_rows.replace("$", ""), "1:1", "the header repeated on every page")
        meta = wb["Metadata"]
        widths = {col: meta.column_dimensions[col].width for col in "ABC"}
        for row in meta.iter_rows(values_only=True):
            for col, v in zip("ABC", row):
                if isinstance(v, str) and re.match(r"\d{4}-\d\d-\d\dT", v):
                    check(widths[col] >= len(v), f"timestamp {v} visible (column {col} is {widths[col]} wide)")
        header = [cell.value for cell in ws[1]]
        xcol = header.index("Outlier (x baseline)")
        figures = [row[xcol].value for row in ws.iter_rows(min_row=2)]
        eq(ws.cell(row=2, column=xcol + 1).number_format, '0.0"x"', "shown as 4.2x")
        # LibreOffice reads and renders it.
        r = subprocess.run(["soffice", "--headless", "--norestore", f"-env:UserInstallation=file://{out}/lo",
                            "--convert-to", "pdf", "--outdir", out, path], capture_output=True, text=True, timeout=180)
        pdf = os.path.join(out, "outliers.pdf")
        check(r.returncode == 0 and os.path.exists(pdf), "LibreOffice rendered the workbook", r.stderr[-500:])
        pages = [subprocess.run(["pdftotext", "-layout", "-f", str(p), "-l", str(p), pdf, "-"], capture_output=True,
                                text=True, timeout=60).stdout for p in range(1, 4)]
        first = pages[0]
        for word in ("Rank", "Thumbnail", "Title", "Outlier (x", "Quality score"):
            check(word in first, f"page 1 holds the Outliers header {word!r}: one page wide")
        for fig in figures:
            check(f"{fig:.1f}x" in first, f"page 1 shows {fig:.1f}x", first[:2000])
        check("Every candidate" in pages[1] and "Rank" not in pages[1].split("\n")[0],
              "the Charts sheet starts page 2: the Outliers sheet took one page")
        subprocess.run(["pdftoppm", "-png", "-r", "110", "-f", "1", "-l", "1", pdf, os.path.join(out, "outliers")],
                       check=True, timeout=60)
        png = glob.glob(os.path.join(out, "outliers*.png"))
        check(png and os.path.getsize(png[0]) > 20000, "page 1 as a PNG", png)
        print(f"rendered: {png[0]} ({os.path.getsize(png[0])} bytes); baselines {srcs}; "
              f"{baseline} baseline units for {chans} channels")
    finally:
        c.stop()


if __name__ == "__main__":
    run({"workbook": workbook, "partial": partial, "failed_then_retry": failed_then_retry,
         "rendered": rendered})
