"""A local fake of the Anthropic Messages API, for driving the real
`anthropic` client without a network.

`POST /v1/messages` answers like the real API: a `message` object, or with
`"stream": true` a `text/event-stream` of named events — `message_start`
(with the input token usage), `content_block_start`, `ping`,
`content_block_delta` (`text_delta`, or `input_json_delta` for tool use),
`content_block_stop`, `message_delta` (stop reason and output token usage)
and `message_stop`. When the request offers `tools` and the last user
message mentions the weather, the answer is a `tool_use` block. The reply
and the token counts are deterministic (see `expected_reply`,
`input_tokens`). A message whose text contains "please fail" gets a 529
`overloaded_error`, as the real API sends when it is busy.
"""

from __future__ import annotations

import hashlib
import json
import time

from fake_http import FakeHandler, FakeServer

CACHED = 3  # pretend this many input tokens were read from the prompt cache


def count_tokens(text: str) -> int:
    return len(text.split())


def _text(content) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(b.get("text", "") for b in content if isinstance(b, dict))
    return ""


def last_user_text(messages: list) -> str:
    for m in reversed(messages):
        if m.get("role") == "user":
            return _text(m.get("content"))
    return ""


def expected_reply(messages: list) -> str:
    return f"Claude says: {last_user_text(messages)}"


def input_tokens(body: dict) -> int:
    """Uncached input tokens, as the real API reports them (cache reads apart)."""
    n = sum(3 + count_tokens(_text(m.get("content"))) for m in body.get("messages", []))
    n += count_tokens(_text(body.get("system") or ""))
    return n


def _wants_tool(body: dict) -> bool:
    return bool(body.get("tools")) and "weather" in last_user_text(body.get("messages", [])).lower()


def _ids(body: dict):
    h = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    return "msg_" + h[:24], "toolu_" + h[24:48]


def _usage(body, output):
    return {"input_tokens": input_tokens(body), "output_tokens": output, "cache_read_input_tokens": CACHED,
            "cache_creation_input_tokens": 0}


def message_response(body: dict) -> dict:
    mid, tid = _ids(body)
    if _wants_tool(body):
        tool = body["tools"][0]["name"]
        content = [{"type": "tool_use", "id": tid, "name": tool, "input": {"location": "Paris"}}]
        stop, out = "tool_use", 12
    else:
        text = expected_reply(body.get("messages", []))
        content = [{"type": "text", "text": text}]
        stop, out = "end_turn", count_tokens(text)
    return {"id": mid, "type": "message", "role": "assistant", "model": body["model"], "content": content,
            "stop_reason": stop, "stop_sequence": None, "usage": _usage(body, out)}


def stream_events(body: dict) -> list:
    """(event name, data) pairs of a streamed answer."""
    mid, tid = _ids(body)
    start = {"id": mid, "type": "message", "role": "assistant", "model": body["model"], "content": [],
             "stop_reason": None, "stop_sequence": None, "usage": _usage(body, 1)}
    ev = [("message_start", {"type": "message_start", "message": start})]
    if _wants_tool(body):
        tool = body["tools"][0]["name"]
        ev.append(("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {
            "type": "tool_use", "id": tid, "name": tool, "input": {}}}))
        args = json.dumps({"location": "Paris"})
        for i in range(0, len(args), 6):
            ev.append(("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {
                "type": "input_json_delta", "partial_json": args[i:i + 6]}}))
        stop, out = "tool_use", 12
    else:
        ev.append(("content_block_start", {"type": "content_block_start", "index": 0,
                                           "content_block": {"type": "text", "text": ""}}))
        ev.append(("ping", {"type": "ping"}))
        text = expected_reply(body.get("messages", []))
        for i, w in enumerate(text.split(" ")):
            ev.append(("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {
                "type": "text_delta", "text": w if i == 0 else " " + w}}))
        stop, out = "end_turn", count_tokens(text)
    ev.append(("content_block_stop", {"type": "content_block_stop", "index": 0}))
    ev.append(("message_delta", {"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None},
                                 "usage": {"output_tokens": out}}))
    ev.append(("message_stop", {"type": "message_stop"}))
    return ev


class _Handler(FakeHandler):
    request_id_header = "request-id"

    def do_POST(self):  # noqa: N802
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path.split("?")[0].rstrip("/") != "/v1/messages":
            self._json(404, {"type": "error", "error": {"type": "not_found_error", "message": "Not found"}})
            return
        try:
            body = json.loads(raw)
        except ValueError:
            self._json(400, {"type": "error", "error": {"type": "invalid_request_error", "message": "bad JSON"}})
            return
        if not body.get("model") or not body.get("messages") or not body.get("max_tokens"):
            self._json(400, {"type": "error", "error": {"type": "invalid_request_error",
                                                        "message": "model, messages, max_tokens: required"}})
            return
        self.server.requests.append({"headers": dict(self.headers), "body": body})
        if "please fail" in last_user_text(body["messages"]):
            self._json(529, {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
            return
        if not body.get("stream"):
            self._json(200, message_response(body))
            return
        self._start_events()
        for name, data in stream_events(body):
            self._chunk(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())
            time.sleep(0.002)
        self._end_chunks()


class FakeAnthropic(FakeServer):
    """`with FakeAnthropic() as fake: Anthropic(base_url=fake.base_url, api_key="x")`"""

    handler = _Handler
    thread_name = "fake-anthropic"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"
