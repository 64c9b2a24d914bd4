"""A fake OpenAI-compatible chat-completions server on loopback for the
architect's tests. It checks the request's shape and answers by MODE:
good, malformed (content is not JSON), missing (fields missing), 429
(Retry-After: 1, then good), 500, hang (never answers in time), 401."""
import json, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

GOOD = {"titles": ["Night Trains Beat Flights", "I Slept on 5 Night Trains", "Hostel Dorms, Ranked",
                   "Portugal on $30 a Day", "The Cheapest Way Across Europe"],
        "hook": "I crossed Portugal for thirty dollars a day. Here is the one booking trick that made it possible.",
        "outline": ["The $30 budget", "Night trains", "Hostel dorms", "Food", "What I'd change"],
        "thumbnail": "Backpacker on a night-train bunk, caption '$30/DAY', yellow background",
        "why": "6.4x the channel's average views at 6,133 views a day: a concrete budget promise."}


class FakeLLM:
    def __init__(self, port, key="sekrit"):
        self.mode, self.key, self.requests, self.problems = "good", key, [], []
        self.delay = 0.0   # seconds before each answer (the benchmarks' slow LLM)
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.requests.append((self.path, dict(self.headers), body))
                outer.check_shape(self.path, self.headers, body)
                if outer.delay:
                    time.sleep(outer.delay)
                mode = outer.mode
                if mode == "429" and len(outer.requests) == 1:
                    return self.answer(429, {"error": "slow down"}, {"Retry-After": "1"})
                if mode == "500":
                    return self.answer(500, {"error": "boom"})
                if mode == "401":
                    return self.answer(401, {"error": "bad key"})
                if mode == "hang":
                    time.sleep(3)
                    return self.answer(200, {})
                content = {"good": GOOD, "429": GOOD, "missing": {"titles": GOOD["titles"][:2], "hook": "x"}}.get(mode)
                text = json.dumps(content) if content else "Sure! Here are your titles: ..."
                self.answer(200, {"id": "x", "object": "chat.completion", "model": "fake",
                                  "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                               "finish_reason": "stop"}],
                                  "usage": {"prompt_tokens": 300, "completion_tokens": 90, "total_tokens": 390}})

            def answer(self, code, doc, headers=None):
                data = json.dumps(doc).encode()
                try:
                    self.send_response(code)
                    for k, v in (headers or {}).items():
                        self.send_header(k, v)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass   # the client gave up (the hang case)

        ThreadingHTTPServer.request_queue_size = 128   # 32 architects connect at once
        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{port}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def check_shape(self, path, headers, body):
        def need(cond, what):
            if not cond:
                self.problems.append(what)
        need(path == "/v1/chat/completions", f"path {path}")
        need(headers.get("Authorization") == f"Bearer {self.key}", "auth header")
        need(headers.get("Content-Type", "").startswith("application/json"), "content type")
        try:
            req = json.loads(body)
        except ValueError:
            return need(False, "body is not JSON")
        need(req.get("model") == "fake-model", f"model {req.get('model')}")
        need([m.get("role") for m in req.get("messages", [])] == ["system", "user"], "message roles")
        need(req.get("response_format") == {"type": "json_object"}, "response_format")

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
