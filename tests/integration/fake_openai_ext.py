"""The fake OpenAI upstream (fake_openai.py) with what the proxy tests need
on top: the other endpoints and a few ways to misbehave on request.

Endpoints, answered like the real API (chat reuses fake_openai's objects):
- `POST /v1/chat/completions` — as in fake_openai, plus the controls below;
- `POST /v1/completions` — `text_completion` objects, streamed or not;
- `POST /v1/embeddings` — float or base64 (`encoding_format`) vectors;
- `POST /v1/responses` — a `response` object, or its typed event stream
  (`response.created` … `response.output_text.delta` … `response.completed`),
  with a `function_call` output item for weather questions when tools are
  offered;
- `GET /v1/models` — as in fake_openai.

Ids and `created` depend only on the request as the caller wrote it
(`stream_options` left out), so a call made directly and the same call made
through a proxy that adds `stream_options.include_usage` produce the same
bytes unless the usage option itself changes them.

Controls (request headers, forwarded by a proxy like any other header):
- `x-fake-status: CODE` — answer with an OpenAI error object and that status
  (429 also sends `retry-after`);
- `x-fake-delay-ms: N` — pause N ms before each stream event (default 2);
- `x-fake-first-delay-ms: N` — pause N ms before the first stream event (the
  headers go out at once: a slow first token);
- `x-fake-fill: COUNT:SIZE` — a chat stream of COUNT content chunks of SIZE
  bytes each, for large-response tests;
- `x-fake-cut-after: N` — a chat stream that stops after N events without
  ending the chunked body (the upstream connection just closes);
- `x-fake-end-delay-ms: N` — pause N ms after the last event before ending
  the chunked body (a server slow to finish after `[DONE]`);
- `x-fake-tag: NAME` — record, under `fake.sent[NAME]`, the monotonic time
  at which each stream event was written, and in `fake.aborted` the tags
  whose client went away before the end.

Every request's method, path, headers and raw body are kept in `fake.log`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import struct
import time

from fake_openai import (FakeOpenAI, _Handler, _ids, completion_response, count_tokens, last_user_text,
                         response_model, stream_chunks)

CREATED = 1767225600  # 2026-01-01: a fixed `created`, so replies are byte-for-byte reproducible


def _without_stream_options(body: dict) -> dict:
    return {k: v for k, v in body.items() if k != "stream_options"}


def _renamed(obj, real: dict, want: dict):
    """obj with the ids derived from `real` replaced by those of `want`."""
    text = json.dumps(obj)
    for a, b in zip(_ids(real), _ids(want)):
        text = text.replace(a, b)
    return json.loads(text)


def _include_usage(body: dict) -> bool:
    return bool((body.get("stream_options") or {}).get("include_usage"))


def _prompt_text(prompt) -> str:
    if isinstance(prompt, list):
        return " ".join(p for p in prompt if isinstance(p, str))
    return prompt if isinstance(prompt, str) else ""


def embedding_vector(text: str, dims: int = 8) -> list:
    h = hashlib.sha256(text.encode()).digest()
    return [round((h[i] - 128) / 128.0, 6) for i in range(dims)]


# ---- /v1/completions


def text_completion(body: dict) -> dict:
    cid = "cmpl-" + _ids(_without_stream_options(body))[0][9:]
    prompt = _prompt_text(body.get("prompt"))
    text = "Echo: " + prompt
    p, c = count_tokens(prompt) + 1, count_tokens(text)
    return {"id": cid, "object": "text_completion", "created": CREATED,
            "model": response_model(body.get("model", "")),
            "choices": [{"text": text, "index": 0, "logprobs": None, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}}


def text_completion_chunks(body: dict) -> list:
    full = text_completion(body)
    usage = _include_usage(body)

    def chunk(text, finish=None):
        c = {"id": full["id"], "object": "text_completion", "created": CREATED,
             "choices": [{"text": text, "index": 0, "logprobs": None, "finish_reason": finish}],
             "model": full["model"]}
        if usage:
            c["usage"] = None
        return c
    words = full["choices"][0]["text"].split(" ")
    out = [chunk(w if i == 0 else " " + w) for i, w in enumerate(words)]
    out.append(chunk("", "stop"))
    if usage:
        last = chunk("")
        last["choices"] = []
        last["usage"] = full["usage"]
        out.append(last)
    return out


# ---- /v1/embeddings


def embeddings_response(body: dict) -> dict:
    inputs = body.get("input")
    inputs = inputs if isinstance(inputs, list) else [inputs]
    b64 = body.get("encoding_format") == "base64"
    data = []
    for i, x in enumerate(inputs):
        vec = embedding_vector(x if isinstance(x, str) else json.dumps(x), int(body.get("dimensions") or 8))
        emb = base64.b64encode(struct.pack("<%df" % len(vec), *vec)).decode() if b64 else vec
        data.append({"object": "embedding", "index": i, "embedding": emb})
    n = sum(count_tokens(x) if isinstance(x, str) else len(x) for x in inputs)
    return {"object": "list", "data": data, "model": body.get("model", ""),
            "usage": {"prompt_tokens": n, "total_tokens": n}}


# ---- /v1/responses


def _responses_user_text(body: dict) -> str:
    inp = body.get("input")
    if isinstance(inp, str):
        return inp
    msgs = []
    for item in inp or []:
        if isinstance(item, dict) and item.get("role"):
            content = item.get("content")
            if isinstance(content, list):
                content = " ".join(p.get("text", "") for p in content if isinstance(p, dict))
            msgs.append({"role": item["role"], "content": content or ""})
    return last_user_text(msgs)


def _responses_tool(body: dict):
    tools = [t for t in body.get("tools") or [] if t.get("type") == "function"]
    if tools and "weather" in _responses_user_text(body).lower():
        return tools[0]["name"]
    return None


def responses_object(body: dict, status: str = "completed") -> dict:
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    user = _responses_user_text(body)
    tool = _responses_tool(body)
    if tool:
        args = json.dumps({"location": "Paris"})
        output = [{"type": "function_call", "id": "fc_" + digest[:24], "call_id": "call_" + digest[24:48],
                   "name": tool, "arguments": args, "status": "completed"}]
        out_tokens = count_tokens(args) + 5
    else:
        text = "Echo: " + user
        output = [{"type": "message", "id": "msg_" + digest[:24], "status": "completed", "role": "assistant",
                   "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]}]
        out_tokens = count_tokens(text)
    in_tokens = count_tokens(user) + count_tokens(body.get("instructions") or "") + 7
    return {"id": "resp_" + digest[:40], "object": "response", "created_at": CREATED, "status": status,
            "error": None, "incomplete_details": None, "instructions": body.get("instructions"),
            "max_output_tokens": body.get("max_output_tokens"), "model": response_model(body.get("model", "")),
            "output": output if status == "completed" else [], "parallel_tool_calls": True,
            "previous_response_id": None, "reasoning": {"effort": None, "summary": None}, "store": True,
            "temperature": 1.0, "text": {"format": {"type": "text"}}, "tool_choice": "auto",
            "tools": body.get("tools") or [], "top_p": 1.0, "truncation": "disabled",
            "usage": {"input_tokens": in_tokens, "input_tokens_details": {"cached_tokens": 0},
                      "output_tokens": out_tokens, "output_tokens_details": {"reasoning_tokens": 0},
                      "total_tokens": in_tokens + out_tokens} if status == "completed" else None,
            "user": None, "metadata": {}}


def responses_events(body: dict) -> list:
    """(event name, data) pairs of a streamed response."""
    final = responses_object(body)
    start = responses_object(body, "in_progress")
    ev = [("response.created", {"response": start}), ("response.in_progress", {"response": start})]
    item = final["output"][0]
    if item["type"] == "message":
        text = item["content"][0]["text"]
        part0 = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
        ev.append(("response.output_item.added", {"output_index": 0, "item": dict(item, status="in_progress",
                                                                                   content=[])}))
        ev.append(("response.content_part.added", {"item_id": item["id"], "output_index": 0, "content_index": 0,
                                                   "part": part0}))
        for i, w in enumerate(text.split(" ")):
            ev.append(("response.output_text.delta", {"item_id": item["id"], "output_index": 0, "content_index": 0,
                                                      "delta": w if i == 0 else " " + w, "logprobs": []}))
        ev.append(("response.output_text.done", {"item_id": item["id"], "output_index": 0, "content_index": 0,
                                                 "text": text, "logprobs": []}))
        ev.append(("response.content_part.done", {"item_id": item["id"], "output_index": 0, "content_index": 0,
                                                  "part": item["content"][0]}))
    else:
        ev.append(("response.output_item.added", {"output_index": 0, "item": dict(item, arguments="",
                                                                                   status="in_progress")}))
        args = item["arguments"]
        for i in range(0, len(args), 6):
            ev.append(("response.function_call_arguments.delta", {"item_id": item["id"], "output_index": 0,
                                                                  "delta": args[i:i + 6]}))
        ev.append(("response.function_call_arguments.done", {"item_id": item["id"], "output_index": 0,
                                                             "arguments": args}))
    ev.append(("response.output_item.done", {"output_index": 0, "item": item}))
    ev.append(("response.completed", {"response": final}))
    return [(name, dict({"type": name, "sequence_number": i}, **data)) for i, (name, data) in enumerate(ev)]


# ---- chat extras


def fill_chunks(body: dict, count: int, size: int) -> list:
    cid = _ids(_without_stream_options(body))[0]
    model = response_model(body.get("model", ""))

    def chunk(delta, finish=None):
        return {"id": cid, "object": "chat.completion.chunk", "created": CREATED, "model": model,
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
    piece = ("lorem ipsum " * (size // 12 + 1))[:size]
    out = [chunk({"role": "assistant", "content": ""})]
    out += [chunk({"content": piece}) for _ in range(count)]
    out.append(chunk({}, "stop"))
    if _include_usage(body):
        last = chunk(None)
        last["choices"] = []
        last["usage"] = {"prompt_tokens": 10, "completion_tokens": count * 2, "total_tokens": 10 + count * 2}
        out.append(last)
    return out


def chat_chunks(body: dict) -> list:
    plain = _without_stream_options(body)
    return [_renamed(c, body, plain) for c in stream_chunks(body, created=CREATED)]


OPENAI_ERRORS = {
    400: ("invalid_request_error", "Invalid value for 'messages'."),
    401: ("invalid_request_error", "Incorrect API key provided."),
    403: ("invalid_request_error", "Project does not have access to this model."),
    404: ("invalid_request_error", "The model does not exist or you do not have access to it."),
    429: ("rate_limit_exceeded", "Rate limit reached for gpt-4o-mini on requests per min (RPM): Limit 3."),
    500: ("server_error", "The server had an error while processing your request. Sorry about that!"),
    503: ("server_error", "The engine is currently overloaded, please try again later."),
}


# The model behind every Azure deployment of the fake.
AZURE_DEPLOYMENT_MODEL = "gpt-4o-mini"


class _ExtHandler(_Handler):
    server_version = "fake-openai-ext/1.0"

    def _send_error(self, status: int) -> None:
        etype, msg = OPENAI_ERRORS.get(status, ("server_error", f"HTTP {status}"))
        data = json.dumps({"error": {"message": msg, "type": etype, "param": None,
                                     "code": etype if status == 429 else None}}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if status == 429:
            self.send_header("retry-after", "2")
            self.send_header("x-ratelimit-limit-requests", "3")
            self.send_header("x-ratelimit-remaining-requests", "0")
        self.end_headers()
        self.wfile.write(data)

    def _events(self, events, done: bool = True, cut_after: int | None = None) -> None:
        """Streams (name or None, object) pairs as SSE with the controls' pauses."""
        delay = float(self.headers.get("x-fake-delay-ms") or 2) / 1000
        first = float(self.headers.get("x-fake-first-delay-ms") or 0) / 1000
        tag = self.headers.get("x-fake-tag")
        sent = self.server.sent.setdefault(tag, []) if tag else []
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()
        frames = [(b"event: %s\n" % name.encode() if name else b"") + b"data: " + json.dumps(obj).encode()
                  + b"\n\n" for name, obj in events]
        if done:
            frames.append(b"data: [DONE]\n\n")
        try:
            for i, frame in enumerate(frames):
                if cut_after is not None and i == cut_after:
                    self.close_connection = True
                    return
                time.sleep(first if i == 0 and first else delay)
                self._chunk(frame)
                sent.append(time.monotonic())
            time.sleep(float(self.headers.get("x-fake-end-delay-ms") or 0) / 1000)
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except OSError:
            if tag:
                self.server.aborted.add(tag)
            self.close_connection = True

    def _log(self, raw: bytes) -> None:
        self.server.log.append({"method": self.command, "path": self.path, "headers": dict(self.headers),
                                "raw": raw})

    def do_GET(self):  # noqa: N802
        self._log(b"")
        full, self.path = self.path, self.path.split("?")[0]  # the base fake ignores no query string
        try:
            super().do_GET()
        finally:
            self.path = full

    def do_POST(self):  # noqa: N802
        raw = self._read_body()
        self._log(raw)
        path = self.path.split("?")[0].rstrip("/")
        m = re.fullmatch(r"/openai/deployments/[^/]+(/chat/completions|/completions|/embeddings)", path)
        if m:
            # Azure OpenAI: the deployment in the path, an api-version in the
            # query, the key in an api-key header; errors in its own shape.
            if "api-version=" not in self.path:
                self._json(404, {"error": {"code": "404", "message": "Resource not found"}})
                return
            if not self.headers.get("api-key") and not self.headers.get("Authorization"):
                self._json(401, {"error": {"code": "401", "message": "Access denied due to invalid subscription "
                                           "key or wrong API endpoint. Make sure to provide a valid key for an "
                                           "active subscription and use a correct regional API endpoint for your "
                                           "resource."}})
                return
            path = "/v1" + m.group(1)
            azure = True
        else:
            azure = False
        if self.headers.get("x-fake-status"):
            self._send_error(int(self.headers["x-fake-status"]))
            return
        try:
            body = json.loads(raw)
        except ValueError:
            self._error(400, "We could not parse the JSON body of your request. (HINT: This likely means you "
                             "aren't using your HTTP library correctly.)")
            return
        if azure and isinstance(body, dict):
            # Azure answers with the deployment's model, whatever the body says.
            body = dict(body, model=AZURE_DEPLOYMENT_MODEL)
        if not isinstance(body, dict) or not body.get("model"):
            self._error(400, "you must provide a model parameter")
            return
        self.server.requests.append({"headers": dict(self.headers), "body": body})
        stream = bool(body.get("stream"))
        cut = int(self.headers["x-fake-cut-after"]) if self.headers.get("x-fake-cut-after") else None
        if path == "/v1/chat/completions":
            if not isinstance(body.get("messages"), list) or not body["messages"]:
                self._error(400, "Missing required parameter: 'messages'.")
            elif not stream:
                self._json(200, _renamed(completion_response(body, created=CREATED), body,
                                         _without_stream_options(body)))
            elif self.headers.get("x-fake-fill"):
                count, size = (int(x) for x in self.headers["x-fake-fill"].split(":"))
                self._events([(None, c) for c in fill_chunks(body, count, size)], cut_after=cut)
            else:
                self._events([(None, c) for c in chat_chunks(body)], cut_after=cut)
        elif path == "/v1/completions":
            if stream:
                self._events([(None, c) for c in text_completion_chunks(body)], cut_after=cut)
            else:
                self._json(200, text_completion(body))
        elif path == "/v1/embeddings":
            if body.get("input") in (None, "", []):
                self._error(400, "'input' : input cannot be an empty string.")
            else:
                self._json(200, embeddings_response(body))
        elif path == "/v1/responses":
            if stream:
                self._events(responses_events(body), done=False, cut_after=cut)
            else:
                self._json(200, responses_object(body))
        else:
            self._error(404, f"Unknown request URL: POST {self.path}. Please check the URL for typos.")


class FakeOpenAIExt(FakeOpenAI):
    """`with FakeOpenAIExt() as fake: ...` — FakeOpenAI with the extras above."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        super().__init__(host, port)
        self.httpd.RequestHandlerClass = _ExtHandler
        self.httpd.log = []
        self.httpd.sent = {}
        self.httpd.aborted = set()

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> list:
        return self.httpd.log

    @property
    def sent(self) -> dict:
        return self.httpd.sent

    @property
    def aborted(self) -> set:
        return self.httpd.aborted

