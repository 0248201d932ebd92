"""A local fake of the OpenAI chat completions API, for driving the real
`openai` client (and the instrumentations wrapped around it) without a
network.

`POST /v1/chat/completions` answers like the real API: a `chat.completion`
JSON object, or with `"stream": true` a `text/event-stream` of
`chat.completion.chunk` objects (chunked transfer encoding, one `data:` line
per event, a final `data: [DONE]`), honouring
`stream_options.include_usage` (a last chunk with empty `choices` and the
usage). When the request offers `tools` and the last user message mentions
the weather, the answer is a tool call instead of text.

Everything is deterministic: the reply is derived from the request, so a test
can compute the expected content and token counts with `expected_reply()`
and `count_tokens()`.

Run it in-process (`FakeOpenAI().start()`, a `ThreadingHTTPServer` on a
thread) or as a script: `python fake_openai.py [PORT]`.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time

from fake_http import FakeHandler, FakeServer

# Request model -> the dated model the real API reports back.
MODEL_SNAPSHOTS = {
    "gpt-4o-mini": "gpt-4o-mini-2024-07-18",
    "gpt-4o": "gpt-4o-2024-08-06",
    "gpt-4.1": "gpt-4.1-2025-04-14",
    "gpt-3.5-turbo": "gpt-3.5-turbo-0125",
}


def response_model(model: str) -> str:
    return MODEL_SNAPSHOTS.get(model, model)


def count_tokens(text: str) -> int:
    """A stand-in tokenizer: one token per whitespace-separated word."""
    return len(text.split())


def _message_text(msg: dict) -> str:
    content = msg.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def prompt_tokens(messages: list) -> int:
    # Like the real API: a few tokens of framing per message plus the content.
    return sum(4 + count_tokens(_message_text(m)) for m in messages) + 3


def last_user_text(messages: list) -> str:
    for m in reversed(messages):
        if m.get("role") == "user":
            return _message_text(m)
    return ""


def expected_reply(messages: list) -> str:
    """The assistant text the fake answers to these messages."""
    return f"Echo: {last_user_text(messages)}"


def cached_tokens(messages: list) -> int:
    # Pretend the system prompt was served from the prompt cache.
    sys_text = " ".join(_message_text(m) for m in messages if m.get("role") == "system")
    return count_tokens(sys_text)


def _wants_tool(body: dict) -> bool:
    return bool(body.get("tools")) and "weather" in last_user_text(body.get("messages", [])).lower()


def _ids(body: dict) -> tuple[str, str, str]:
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    return "chatcmpl-" + digest[:29], "call_" + digest[29:53], "fp_" + digest[53:63]


def _tool_call(body: dict, call_id: str) -> dict:
    tool = body["tools"][0]["function"]["name"]
    return {"id": call_id, "type": "function",
            "function": {"name": tool, "arguments": json.dumps({"location": "Paris"})}}


def _usage(body: dict, completion: int) -> dict:
    msgs = body.get("messages", [])
    p = prompt_tokens(msgs)
    return {
        "prompt_tokens": p,
        "completion_tokens": completion,
        "total_tokens": p + completion,
        "prompt_tokens_details": {"cached_tokens": cached_tokens(msgs), "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                      "accepted_prediction_tokens": 0,
                                      "rejected_prediction_tokens": 0},
    }


def completion_response(body: dict, created: int | None = None) -> dict:
    cid, call_id, fp = _ids(body)
    msgs = body.get("messages", [])
    message = {"role": "assistant", "content": None, "refusal": None, "annotations": []}
    if _wants_tool(body):
        tc = _tool_call(body, call_id)
        message["tool_calls"] = [tc]
        finish, completion = "tool_calls", count_tokens(tc["function"]["arguments"]) + 5
    else:
        message["content"] = expected_reply(msgs)
        finish, completion = "stop", count_tokens(message["content"])
    return {
        "id": cid,
        "object": "chat.completion",
        "created": created if created is not None else int(time.time()),
        "model": response_model(body.get("model", "")),
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
        "usage": _usage(body, completion),
        "service_tier": "default",
        "system_fingerprint": fp,
    }


def stream_chunks(body: dict, created: int | None = None) -> list[dict]:
    """The chunk objects of a streamed answer, in order (without [DONE])."""
    cid, call_id, fp = _ids(body)
    created = created if created is not None else int(time.time())
    model = response_model(body.get("model", ""))
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))

    def chunk(delta, finish=None, choices=True):
        c = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
             "service_tier": "default", "system_fingerprint": fp,
             "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
             if choices else []}
        if include_usage:
            c["usage"] = None
        return c

    out = []
    if _wants_tool(body):
        tc = _tool_call(body, call_id)
        args = tc["function"]["arguments"]
        out.append(chunk({"role": "assistant", "content": None, "refusal": None,
                          "tool_calls": [{"index": 0, "id": tc["id"], "type": "function",
                                          "function": {"name": tc["function"]["name"],
                                                       "arguments": ""}}]}))
        for i in range(0, len(args), 8):
            out.append(chunk({"tool_calls": [{"index": 0, "function": {"arguments": args[i:i + 8]}}]}))
        out.append(chunk({}, "tool_calls"))
        completion = count_tokens(args) + 5
    else:
        text = expected_reply(body.get("messages", []))
        out.append(chunk({"role": "assistant", "content": "", "refusal": None}))
        words = text.split(" ")
        for i, w in enumerate(words):
            out.append(chunk({"content": w if i == 0 else " " + w}))
        out.append(chunk({}, "stop"))
        completion = count_tokens(text)
    if include_usage:
        last = chunk(None, choices=False)
        last["usage"] = _usage(body, completion)
        out.append(last)
    return out


class _Handler(FakeHandler):
    server_version = "fake-openai/1.0"

    def _error(self, status: int, message: str, etype: str = "invalid_request_error") -> None:
        self._json(status, {"error": {"message": message, "type": etype, "param": None,
                                      "code": None}})

    def _read_body(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def do_GET(self):  # noqa: N802
        if self.path.rstrip("/") == "/v1/models":
            self._json(200, {"object": "list", "data": [
                {"id": m, "object": "model", "created": 1700000000, "owned_by": "system"}
                for m in MODEL_SNAPSHOTS]})
        else:
            self._error(404, f"Unknown request URL: GET {self.path}.")

    def do_POST(self):  # noqa: N802
        raw = self._read_body()
        path = self.path.split("?")[0].rstrip("/")
        if path != "/v1/chat/completions":
            self._error(404, f"Unknown request URL: POST {self.path}.")
            return
        try:
            body = json.loads(raw)
        except ValueError:
            self._error(400, "We could not parse the JSON body of your request.")
            return
        if not isinstance(body, dict) or not body.get("model") or not isinstance(body.get("messages"), list) \
                or not body["messages"]:
            self._error(400, "Missing required parameter: 'model' and non-empty 'messages'.")
            return
        self.server.requests.append({"headers": dict(self.headers), "body": body})
        if not body.get("stream"):
            self._json(200, completion_response(body))
            return
        self._start_events()
        for c in stream_chunks(body):
            self._chunk(b"data: " + json.dumps(c).encode() + b"\n\n")
            time.sleep(0.002)  # so time-to-first-token differs from the duration
        self._chunk(b"data: [DONE]\n\n")
        self._end_chunks()


class FakeOpenAI(FakeServer):
    """`with FakeOpenAI() as fake: OpenAI(base_url=fake.base_url, api_key="x")`"""

    handler = _Handler
    thread_name = "fake-openai"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"


if __name__ == "__main__":
    fake = FakeOpenAI(port=int(sys.argv[1]) if len(sys.argv) > 1 else 0)
    print(f"fake openai listening on {fake.base_url}", flush=True)
    try:
        fake.httpd.serve_forever()
    except KeyboardInterrupt:
        pass
