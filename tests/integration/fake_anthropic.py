"""The fake Anthropic Messages API of the SDK tests (sdk_fake_anthropic.py),
extended with what the proxy tests need, closer still to the real API:

- the request must carry `x-api-key` (or `Authorization`) and
  `anthropic-version`, else 401 `authentication_error` / 400
  `invalid_request_error`, as the real API answers;
- prompt caching: the text of the `system` blocks marked `cache_control` is
  written to the cache the first time this fake sees it
  (`cache_creation_input_tokens`) and read from it afterwards
  (`cache_read_input_tokens`); `input_tokens` counts the rest only;
- a weather question with `tools` gets a text block *and* a `tool_use` block
  (index 1), as Claude usually answers;
- streams: `message_start` (usage so far, `output_tokens` 1),
  `content_block_start`, `ping`, `content_block_delta` (`text_delta`,
  `input_json_delta`), `content_block_stop`, `message_delta` with the
  cumulative usage (input, cache and output tokens) and the stop reason,
  `message_stop`;
- the reported model is the dated snapshot of an alias.

Controls (request headers):
- `x-fake-error: CODE` — Anthropic's error object for 400, 401, 403, 404,
  413, 429 (with `retry-after` and rate-limit headers), 500 or 529;
- `x-fake-delay-ms: N` — pause before each stream event (default 2);
- `x-fake-first-delay-ms: N` — pause before the first event;
- `x-fake-stream-error: N` — after N events, an `error` event
  (`overloaded_error`) ends the stream, as the real API does when it is
  overloaded mid-answer.

Every request's method, path, headers and raw body are kept in `fake.log`.
"""

from __future__ import annotations

import hashlib
import json
import time

from sdk_fake_anthropic import FakeAnthropic as _SdkFakeAnthropic
from sdk_fake_anthropic import _Handler as _SdkHandler
from sdk_fake_anthropic import count_tokens, expected_reply, input_tokens, last_user_text

SNAPSHOTS = {
    "claude-sonnet-4-5": "claude-sonnet-4-5-20250929",
    "claude-haiku-4-5": "claude-haiku-4-5-20251001",
    "claude-3-5-haiku-latest": "claude-3-5-haiku-20241022",
}
TOOL_PREAMBLE = "Let me look up the weather for you."

ERRORS = {
    400: ("invalid_request_error", "messages: at least one message is required"),
    401: ("authentication_error", "invalid x-api-key"),
    403: ("permission_error", "Your API key does not have permission to use the specified resource."),
    404: ("not_found_error", "The requested resource could not be found."),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit."),
    500: ("api_error", "An unexpected error has occurred internal to Anthropic's systems."),
    529: ("overloaded_error", "Overloaded"),
}


def response_model(model: str) -> str:
    return SNAPSHOTS.get(model, model)


def cached_prefix_tokens(body: dict) -> int:
    """Tokens of the system blocks marked for caching."""
    system = body.get("system")
    if not isinstance(system, list):
        return 0
    return sum(count_tokens(b.get("text", "")) for b in system if isinstance(b, dict) and b.get("cache_control"))


def wants_tool(body: dict) -> bool:
    return bool(body.get("tools")) and "weather" in last_user_text(body.get("messages", [])).lower()


def _ids(body: dict):
    h = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    return "msg_01" + h[:22], "toolu_01" + h[22:44], "req_011C" + h[44:64]


def output_tokens(body: dict) -> int:
    text = expected_reply(body.get("messages", []))
    return count_tokens(TOOL_PREAMBLE) + 14 if wants_tool(body) else count_tokens(text)


def content_blocks(body: dict) -> list:
    _, tid, _ = _ids(body)
    if wants_tool(body):
        return [{"type": "text", "text": TOOL_PREAMBLE},
                {"type": "tool_use", "id": tid, "name": body["tools"][0]["name"], "input": {"location": "Paris"}}]
    return [{"type": "text", "text": expected_reply(body.get("messages", []))}]


class _Handler(_SdkHandler):
    def _send(self, status: int, obj, headers=None) -> None:
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("request-id", "req_011C" + hashlib.md5(data).hexdigest()[:20])
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _fail(self, status: int, etype: str | None = None, message: str | None = None) -> None:
        et, msg = ERRORS.get(status, ("api_error", f"HTTP {status}"))
        headers = {}
        if status == 429:
            headers = {"retry-after": "7", "anthropic-ratelimit-requests-limit": "50",
                       "anthropic-ratelimit-requests-remaining": "0",
                       "anthropic-ratelimit-requests-reset": "2026-01-01T00:00:07Z"}
        if status == 529:
            headers = {"x-should-retry": "true"}
        self._send(status, {"type": "error", "error": {"type": etype or et, "message": message or msg},
                            "request_id": "req_011C" + hashlib.md5(self.path.encode()).hexdigest()[:20]}, headers)

    def _usage(self, body: dict, output: int) -> dict:
        cached = cached_prefix_tokens(body)
        key = json.dumps(body.get("system"), sort_keys=True)
        seen = key in self.server.cache if cached else False
        if cached:
            self.server.cache.add(key)
        return {"input_tokens": input_tokens(body) - cached,
                "cache_creation_input_tokens": 0 if seen else cached,
                "cache_read_input_tokens": cached if seen else 0,
                "output_tokens": output}

    def do_GET(self):  # noqa: N802
        self.server.log.append({"method": "GET", "path": self.path, "headers": dict(self.headers), "raw": b""})
        if self.path.split("?")[0].rstrip("/") == "/v1/models":
            self._send(200, {"data": [{"type": "model", "id": m, "display_name": m,
                                       "created_at": "2025-09-29T00:00:00Z"} for m in SNAPSHOTS.values()],
                             "has_more": False, "first_id": None, "last_id": None})
        else:
            self._fail(404)

    def do_POST(self):  # noqa: N802
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.log.append({"method": "POST", "path": self.path, "headers": dict(self.headers), "raw": raw})
        if self.path.split("?")[0].rstrip("/") != "/v1/messages":
            self._fail(404)
            return
        if not self.headers.get("x-api-key") and not self.headers.get("authorization"):
            self._fail(401, message="x-api-key header is required")
            return
        if not self.headers.get("anthropic-version"):
            self._fail(400, message="anthropic-version: header is required")
            return
        if self.headers.get("x-fake-error"):
            self._fail(int(self.headers["x-fake-error"]))
            return
        try:
            body = json.loads(raw)
        except ValueError:
            self._fail(400, message="There was an issue with your request body: invalid JSON")
            return
        for field in ("model", "messages", "max_tokens"):
            if not isinstance(body, dict) or not body.get(field):
                self._fail(400, message=f"{field}: Field required")
                return
        self.server.requests.append({"headers": dict(self.headers), "body": body})
        if body.get("stream"):
            self._stream(body)
            return
        mid, _, _ = _ids(body)
        self._send(200, {"id": mid, "type": "message", "role": "assistant", "model": response_model(body["model"]),
                         "content": content_blocks(body), "stop_reason": "tool_use" if wants_tool(body) else "end_turn",
                         "stop_sequence": None, "usage": self._usage(body, output_tokens(body))})

    def _stream(self, body: dict) -> None:
        mid, _, _ = _ids(body)
        usage = self._usage(body, output_tokens(body))
        start = {"id": mid, "type": "message", "role": "assistant", "model": response_model(body["model"]),
                 "content": [], "stop_reason": None, "stop_sequence": None, "usage": dict(usage, output_tokens=1)}
        ev = [("message_start", {"type": "message_start", "message": start})]
        for i, block in enumerate(content_blocks(body)):
            if block["type"] == "text":
                ev.append(("content_block_start", {"type": "content_block_start", "index": i,
                                                   "content_block": {"type": "text", "text": ""}}))
                if i == 0:
                    ev.append(("ping", {"type": "ping"}))
                for k, w in enumerate(block["text"].split(" ")):
                    ev.append(("content_block_delta", {"type": "content_block_delta", "index": i, "delta": {
                        "type": "text_delta", "text": w if k == 0 else " " + w}}))
            else:
                ev.append(("content_block_start", {"type": "content_block_start", "index": i, "content_block": {
                    "type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}}))
                args = json.dumps(block["input"])
                ev.append(("content_block_delta", {"type": "content_block_delta", "index": i, "delta": {
                    "type": "input_json_delta", "partial_json": ""}}))
                for k in range(0, len(args), 5):
                    ev.append(("content_block_delta", {"type": "content_block_delta", "index": i, "delta": {
                        "type": "input_json_delta", "partial_json": args[k:k + 5]}}))
            ev.append(("content_block_stop", {"type": "content_block_stop", "index": i}))
        ev.append(("message_delta", {"type": "message_delta", "delta": {
            "stop_reason": "tool_use" if wants_tool(body) else "end_turn", "stop_sequence": None}, "usage": usage}))
        ev.append(("message_stop", {"type": "message_stop"}))
        cut = self.headers.get("x-fake-stream-error")
        if cut:
            ev = ev[:int(cut)] + [("error", {"type": "error", "error": {"type": "overloaded_error",
                                                                        "message": "Overloaded"}})]
        delay = float(self.headers.get("x-fake-delay-ms") or 2) / 1000
        first = float(self.headers.get("x-fake-first-delay-ms") or 0) / 1000
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("request-id", _ids(body)[2])
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()
        try:
            for i, (name, data) in enumerate(ev):
                time.sleep(first if i == 0 and first else delay)
                self._chunk(f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode())
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except OSError:
            self.close_connection = True


class FakeAnthropic(_SdkFakeAnthropic):
    """`with FakeAnthropic() as fake: Anthropic(base_url=fake.base_url, api_key="x")`"""

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        super().__init__(host, port)
        self.httpd.RequestHandlerClass = _Handler
        self.httpd.log = []
        self.httpd.cache = set()

    @property
    def log(self) -> list:
        return self.httpd.log
