"""nf-architect against a fake OpenAI-compatible server (issue: architect).
The test plays the broker's side of MDP/0.1 on a real ROUTER socket, hands
nf-architect one task per case and reads its reply, so each LLM behaviour
maps to an exact outcome. `tokens_per_job` runs the real broker too. Run
one: test_architect.py NAME."""
import json, os, subprocess, tempfile, time, uuid

import msgpack
import zmq

from fake_llm import FakeLLM
from harness import BUILD, Cluster, check, eq, run

PORT_LLM, PORT_MDP = 26270, 26271


def task_body(vid="vid1"):
    return msgpack.packb({
        "v": 1, "service": "architect", "token": str(uuid.uuid4()), "job_id": 1, "video_id": vid,
        "attempt": 1, "job": {"niche": "budget travel", "sub_niche": "", "options": {}},
        "input": {"meta": {"title": "Portugal on $30 a Day", "views": 184000},
                  "clean_text": "night trains save money " * 50, "quality": 88.0, "composite": 91.5,
                  "rank": 1, "scores": {"multiplier": 6.4, "velocity": 6133.0, "engagement": 0.052,
                                        "age_days": 30.0, "percentiles": {"multiplier": 1.0}},
                  "channel": {"channel_id": "UC1", "data": {"title": "Nomad Nina", "subscribers": 50000}}}})


class MiniBroker:
    """The broker's half of MDP/0.1 for one worker."""

    def __init__(self, port):
        self.ctx = zmq.Context.instance()
        self.sock = self.ctx.socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.bind(f"tcp://127.0.0.1:{port}")
        self.worker = None

    def recv(self, timeout):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.sock.poll(100):
                frames = self.sock.recv_multipart()
                if frames[2] != b"MDPW01":
                    continue
                if frames[3] == b"\x01":
                    self.worker = frames[0]
                elif frames[3] == b"\x04" and self.worker:
                    self.sock.send_multipart([self.worker, b"", b"MDPW01", b"\x04"])
                elif frames[3] == b"\x03":
                    return msgpack.unpackb(frames[6], raw=False)
            elif self.worker:
                self.sock.send_multipart([self.worker, b"", b"MDPW01", b"\x04"])
        raise AssertionError(f"no reply within {timeout}s")

    def ask(self, body, timeout=20):
        deadline = time.time() + 10
        while self.worker is None and time.time() < deadline:
            if self.sock.poll(100):
                frames = self.sock.recv_multipart()
                if frames[3:4] == [b"\x01"]:
                    self.worker = frames[0]
        check(self.worker is not None, "worker READY")
        token = msgpack.unpackb(body)["token"].encode()
        self.sock.send_multipart([self.worker, b"", b"MDPW01", b"\x02", token, b"", body])
        return self.recv(timeout)

    def close(self):
        self.sock.close()


def architect(env_extra, log):
    env = dict(os.environ, NF_BROKER=f"tcp://127.0.0.1:{PORT_MDP}", NF_HEARTBEAT_MS="500",
               NF_LIVENESS="20", NF_LLM_MODEL="fake-model", NF_LLM_API_KEY="sekrit",
               NF_LLM_TIMEOUT_MS="800", NF_LLM_RETRIES="1", **env_extra)
    f = open(log, "wb")
    return subprocess.Popen([f"{BUILD}/workers/nf-architect"], env=env, stdout=f, stderr=subprocess.STDOUT)


def cases():
    """Every LLM behaviour gives its documented outcome; the key is never logged."""
    logdir = os.path.join(BUILD, "test-logs", "architect")
    os.makedirs(logdir, exist_ok=True)
    llm = FakeLLM(PORT_LLM)
    broker = MiniBroker(PORT_MDP)
    log = os.path.join(logdir, "architect.log")
    p = architect({"NF_LLM_URL": llm.url + "/"}, log)
    try:
        expect = {  # mode: (status, retryable, requests, text in error)
            "good": ("ok", None, 1, None),
            "429": ("ok", None, 2, None),
            "malformed": ("error", False, 2, "answer is not a JSON object"),
            "missing": ("error", False, 2, "'outline' must be an array of 5 non-empty strings"),
            "500": ("error", True, 2, "HTTP 500"),
            "hang": ("error", True, 2, "imeout"),
            "401": ("error", False, 1, "HTTP 401"),
        }
        for mode, (status, retryable, requests, text) in expect.items():
            llm.mode, llm.requests = mode, []
            t0 = time.time()
            r = broker.ask(task_body(f"vid-{mode}"))
            elapsed = time.time() - t0
            eq(r["status"], status, f"{mode}: status ({r.get('error')})")
            eq(len(llm.requests), requests, f"{mode}: requests made")
            if retryable is not None:
                eq(r.get("retryable", True), retryable, f"{mode}: retryable")
            if text:
                check(text in r.get("error", ""), f"{mode}: error names the cause", r.get("error"))
            if mode == "429":
                check(elapsed >= 1.0, "429: Retry-After honoured", elapsed)
            if status == "ok":
                ai = r["output"]["ai"]
                eq(ai["source"], "llm", "source")
                eq(ai["model"], "fake-model", "model recorded")
                eq(len(ai["titles"]), 5, "titles")
                eq(ai["tokens"], 390, "tokens of the answer")
                eq(r["usage"]["tokens"], 390, "usage reported to the broker")
            if mode == "malformed":
                eq(r["usage"]["tokens"], 780, "tokens of failed answers still counted")
        eq(llm.problems, [], "request shape")
        req = json.loads(llm.requests[-1][2]) if llm.requests else None
        check(req and "Portugal on $30 a Day" in req["messages"][1]["content"], "title in the prompt")
    finally:
        p.terminate()
        p.wait(10)
        broker.close()
        llm.stop()
    text = open(log, encoding="utf-8", errors="replace").read()
    check("sekrit" not in text, "the API key never reaches the log")

    prompts = tempfile.mkdtemp(dir=logdir)   # fresh: no templates yet
    bad = subprocess.run([f"{BUILD}/workers/nf-architect", "--llm-url", "http://127.0.0.1:1/v1",
                          "--prompt-dir", prompts], capture_output=True, text=True, timeout=10)
    eq(bad.returncode, 2, "missing prompt templates: exit code")
    check("system.txt" in bad.stderr, "missing template named", bad.stderr)
    with open(os.path.join(prompts, "system.txt"), "w") as f:
        f.write("You write {{titel}}")
    with open(os.path.join(prompts, "user.txt"), "w") as f:
        f.write("{{title}}")
    bad = subprocess.run([f"{BUILD}/workers/nf-architect", "--llm-url", "http://127.0.0.1:1/v1",
                          "--prompt-dir", prompts], capture_output=True, text=True, timeout=10)
    eq(bad.returncode, 2, "unknown placeholder: exit code")
    check("{{titel}}" in bad.stderr, "unknown placeholder named", bad.stderr)


def tokens_per_job():
    """With the real broker: token usage stored per video and summed per job."""
    from test_export import fixture, start
    llm = FakeLLM(PORT_LLM + 2)
    c = Cluster("tokens", 26280)
    try:
        c.start_broker()
        arch = c.spawn([f"{BUILD}/workers/nf-architect"], "architect.log",
                       {"NF_LLM_URL": llm.url, "NF_LLM_MODEL": "fake-model", "NF_LLM_API_KEY": "sekrit"})
        start(c, fixture(6), architect=arch)
        job = c.submit("budget travel", count=6, top_n=6)
        c.wait(lambda: c.job_status(job) in ("completed", "partial", "failed"), 90, "job finished")
        eq(c.job_status(job), "completed", "job status")
        eq(c.query1("SELECT sum((ai->>'tokens')::int) FROM nf_videos WHERE job_id = %s", job), 6 * 390, "tokens per video")
        eq(c.query1("SELECT tokens FROM nf_jobs WHERE id = %s", job), 6 * 390, "tokens summed per job")
        eq(llm.problems, [], "request shape")
    finally:
        c.stop()
        llm.stop()


if __name__ == "__main__":
    run({"cases": cases, "tokens_per_job": tokens_per_job})
