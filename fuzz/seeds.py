"""Writes the seed corpora of the fuzz targets into OUT/<target>/.

Usage: seeds.py YTSIM_URL OUT

The YouTube, timed-text, template and sanitizer seeds are nf-ytsim's own
answers (fetched from YTSIM_URL), plus a cut copy of some of them; the
template seeds also hold the shipped templates; the proto seeds are task,
reply and client bodies as proto/README.md describes them; the LLM seeds
are answers of the shape the test LLM server gives."""
import json, os, re, sys, urllib.request

import msgpack

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "tests", "integration"))
from fake_llm import GOOD  # noqa: E402

base, out = sys.argv[1].rstrip("/"), sys.argv[2]
counts = {}


def put(target, data):
    if isinstance(data, str):
        data = data.encode()
    os.makedirs(os.path.join(out, target), exist_ok=True)
    n = counts.get(target, 0)
    counts[target] = n + 1
    with open(os.path.join(out, target, f"seed-{n:03d}"), "wb") as f:
        f.write(data)


def get(path):
    with urllib.request.urlopen(base + path, timeout=10) as r:
        return r.read()


def put_cut(target, data):
    put(target, data)
    if len(data) > 64 and counts[target] % 4 == 1:
        put(target, data[: len(data) // 2])


# YouTube Data API answers.
search = get("/youtube/v3/search?part=snippet&type=video&maxResults=50&q=budget+travel")
put_cut("youtube", search)
ids = [i["id"]["videoId"] for i in json.loads(search)["items"]]
nxt = json.loads(search).get("nextPageToken")
if nxt:
    put("youtube", get(f"/youtube/v3/search?part=snippet&type=video&maxResults=5&q=budget+travel&pageToken={nxt}"))
videos = get("/youtube/v3/videos?part=snippet,statistics,contentDetails&id=" + ",".join(ids[:50]))
put_cut("youtube", videos)
put("youtube", get("/youtube/v3/videos?part=snippet,statistics,contentDetails&id=" + ",".join(ids[:3])))
chans = sorted({v["snippet"]["channelId"] for v in json.loads(videos)["items"]})
put_cut("youtube", get("/youtube/v3/channels?part=snippet,statistics&id=" + ",".join(chans[:50])))
put("youtube", json.dumps({"error": {"code": 403, "message": "quota", "errors": [
    {"domain": "youtube.quota", "reason": "quotaExceeded", "message": "The request cannot be completed"}]}}))

# Watch pages, timed text, and the listing site.
for vid in ids[:12]:
    put_cut("template", get(f"/watch?v={vid}"))
    for fmt in ("", "&fmt=srv3", "&fmt=json3"):
        try:
            tt = get(f"/api/timedtext?v={vid}&lang=en{fmt}")
        except OSError:
            continue   # a video without captions
        if tt:
            put_cut("timedtext", tt)
            if fmt == "":
                text = "\n".join(f"[0:{i:02d}] {t}" for i, t in
                                 enumerate(re.findall(rb"<text[^>]*>([^<]*)</text>", tt)[:60]) for t in [t.decode()])
                put("sanitize", text)
                put("sanitize", tt)
site = get("/site/search?q=budget+travel&page=1")
put_cut("template", site)
for href in re.findall(rb"/site/item/[A-Za-z0-9_-]+", site)[:4]:
    put("template", get(href.decode()))
for name in ("youtube_watch.json", "simsite.json"):
    with open(os.path.join(here, "..", "workers", "scraper", "templates", name), "rb") as f:
        put("template", f.read())
put("sanitize", "um so [Music] uh today we we we go to Lisbon &amp; Porto &#39;cheap&#39; \u00e9t\u00e9 \U0001F600")

# LLM answers: good, fields missing, content not JSON, no usage.
def chat(content, usage=True):
    doc = {"id": "x", "object": "chat.completion", "model": "fake",
           "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}]}
    if usage:
        doc["usage"] = {"prompt_tokens": 300, "completion_tokens": 90, "total_tokens": 390}
    return json.dumps(doc)


put("llm", chat(json.dumps(GOOD)))
put("llm", chat(json.dumps({"titles": GOOD["titles"][:2], "hook": "x"})))
put("llm", chat("Sure! Here are your titles: ..."))
put("llm", chat(json.dumps(GOOD), usage=False))

# Wire bodies (proto/README.md).
tok = "6f1c2d3e-0000-4000-8000-000000000001"
job = {"niche": "budget travel", "sub_niche": "solo", "options": {"count": 50, "lang": "en"}}
for body in (
    {"v": 1, "service": "scrape", "token": tok, "job_id": 7, "video_id": ids[0], "attempt": 1,
     "job": job, "input": {"meta": {"title": "t", "views": 10}}},
    {"v": 1, "service": "analyze", "token": tok, "job_id": 7, "video_id": None, "attempt": 2, "job": job,
     "input": {"videos": [{"video_id": ids[1], "meta": {"views": 1.5}}], "known_ids": ids[:3],
               "funnel": {"states": {"RAW": 3}, "rejected": {}, "failed": 0}}},
    {"v": 1, "token": tok, "status": "ok", "output": {"transcript": "hi", "meta": {"x": [1, 2.5, None, True]}},
     "usage": {"quota_units": 1, "http_requests": 2, "tokens": 0}},
    {"v": 1, "token": tok, "status": "reject", "reason": "low_quality"},
    {"v": 1, "token": tok, "status": "error", "error": "HTTP 503", "retryable": True},
    {"v": 1, "token": tok, "status": "ok", "output": {"files": {"xlsx": b"PK\x03\x04"}, "note": "n"}},
    {"v": 1, "niche": "budget travel", "sub_niche": "", "options": {"count": 200, "priority": "high"}},
):
    put("proto", msgpack.packb(body, use_bin_type=True))

print(" ".join(f"{k}={v}" for k, v in sorted(counts.items())))
