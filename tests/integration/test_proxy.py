"""The logging proxy (docs/proxy.md) end to end: the real `openai` and
`anthropic` clients call local fakes of both APIs through
/proxy/<upstream>/..., and each test checks what the client got (the same
bytes as calling the fake directly) and the span stored for the call."""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import anthropic
import httpx
import openai
import pytest

from fake_anthropic import FakeAnthropic
from fake_anthropic import response_model as claude_snapshot
from fake_openai import cached_tokens, expected_reply, prompt_tokens
from fake_openai_ext import AZURE_DEPLOYMENT_MODEL, FakeOpenAIExt
from ltlib import (HTTP_TIMEOUT, SLOW, assert_error, bearer, cli_ok, create_key, free_port, make_span, now_ns,
                   poll, span_id, trace_id, traces_request)

OPENAI_KEY = "sk-proj-" + secrets.token_hex(20)
ANTHROPIC_KEY = "sk-ant-api03-" + secrets.token_hex(20)
GPT = "gpt-4o-mini"
CLAUDE = "claude-haiku-4-5"
# USD per million tokens (data/prices.json)
GPT_PRICE = {"input": 0.15, "cache_read": 0.075, "output": 0.60}
CLAUDE_PRICE = {"input": 1.00, "cache_write": 1.25, "cache_read": 0.10, "output": 5.00}
WEATHER_TOOL = {"type": "function", "function": {"name": "get_weather", "description": "Current weather",
                                                 "parameters": {"type": "object", "properties": {
                                                     "location": {"type": "string"}}}}}
CLAUDE_TOOL = {"name": "get_weather", "description": "Current weather",
               "input_schema": {"type": "object", "properties": {"location": {"type": "string"}}}}


# --------------------------------------------------------------------------
# fixtures and helpers


@pytest.fixture(scope="module")
def fakes():
    with FakeOpenAIExt() as fo, FakeAnthropic() as fa:
        yield fo, fa


def upstream_args(fo, fa, dead_port):
    return ["--upstream", f"openai={fo.origin}", "--upstream", f"fake={fo.origin}", "--upstream", f"azure={fo.origin}",
            "--upstream", f"anthropic={fa.base_url}", "--upstream", f"dead=http://127.0.0.1:{dead_port}"]


@pytest.fixture(scope="module")
def px(module_lanterna, fakes):
    """One server for the module, with the fakes as `openai` and `anthropic`
    (replacing the built-in ones), as `fake`, and a `dead` upstream that
    nothing listens on."""
    fo, fa = fakes
    server = module_lanterna(args=upstream_args(fo, fa, free_port()))
    return Proxy(server, fo, fa)


class Proxy:
    def __init__(self, server, fo, fa):
        self.server, self.fo, self.fa = server, fo, fa

    def url(self, upstream: str, path: str = "") -> str:
        return f"{self.server.url}/proxy/{upstream}{path}"

    def oai(self, upstream: str = "openai", **kw) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.url(upstream, "/v1"), api_key=OPENAI_KEY, max_retries=0, **kw)

    def direct_oai(self) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.fo.base_url, api_key=OPENAI_KEY, max_retries=0)

    def claude(self, **kw) -> anthropic.Anthropic:
        return anthropic.Anthropic(base_url=self.url("anthropic"), api_key=ANTHROPIC_KEY, max_retries=0, **kw)

    def direct_claude(self) -> anthropic.Anthropic:
        return anthropic.Anthropic(base_url=self.fa.base_url, api_key=ANTHROPIC_KEY, max_retries=0)

    def trace(self, tid: str, spans: int = 1, headers=None, timeout: float = 10) -> dict:
        def get():
            r = self.server.get(f"/api/v1/traces/{tid}", headers=headers)
            if r.status_code == 200 and len(r.json()["spans"]) >= spans:
                return r.json()
            return None
        return poll(get, timeout=timeout, what=f"trace {tid} with {spans} span(s)")

    def span(self, tid: str, headers=None, timeout: float = 10) -> dict:
        """The proxy's span in trace tid."""
        d = self.trace(tid, headers=headers, timeout=timeout)
        mine = [s for s in d["spans"] if s["service"] == "lanterna-proxy"]
        assert len(mine) == 1, f"want one proxy span in {tid}: {json.dumps(d['spans'])[:1500]}"
        return mine[0]


def hget(headers: dict, name: str):
    """A header the fake received, whatever its case."""
    return next((v for k, v in headers.items() if k.lower() == name.lower()), None)


def ids_of(headers) -> tuple[str, str]:
    tid, sid = headers.get("lanterna-trace-id"), headers.get("lanterna-request-id")
    assert tid and re.fullmatch(r"[0-9a-f]{32}", tid), f"Lanterna-Trace-Id: {tid!r}"
    assert sid and re.fullmatch(r"[0-9a-f]{16}", sid), f"Lanterna-Request-Id: {sid!r}"
    return tid, sid


def gpt_cost(prompt: int, completion: int, cached: int) -> float:
    return ((prompt - cached) * GPT_PRICE["input"] + cached * GPT_PRICE["cache_read"]
            + completion * GPT_PRICE["output"]) / 1e6


def claude_cost(u) -> float:
    return (u["input_tokens"] * CLAUDE_PRICE["input"] + u["cache_creation_input_tokens"] * CLAUDE_PRICE["cache_write"]
            + u["cache_read_input_tokens"] * CLAUDE_PRICE["cache_read"]
            + u["output_tokens"] * CLAUDE_PRICE["output"]) / 1e6


def sse_events(body: bytes) -> list[bytes]:
    return [e for e in re.split(rb"(?<=\n\n)", body) if e]


def first_difference(a: bytes, b: bytes) -> str:
    ea, eb = sse_events(a), sse_events(b)
    for i, (x, y) in enumerate(zip(ea, eb)):
        if x != y:
            return f"event {i} differs:\n  direct:  {x[:400]!r}\n  proxied: {y[:400]!r}"
    return f"direct has {len(ea)} events, proxied {len(eb)}; last direct {ea[-1:]!r}, last proxied {eb[-1:]!r}"


def post_raw(url: str, body, headers=None) -> httpx.Response:
    h = {"Content-Type": "application/json", "Authorization": "Bearer " + OPENAI_KEY}
    h.update(headers or {})
    h = {k: v for k, v in h.items() if v is not None}
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(url, content=data, headers=h, timeout=HTTP_TIMEOUT)


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def raw_request(port: int, path: str, body: dict, headers: dict) -> socket.socket:
    """Sends a POST on a fresh socket and returns the socket, unread."""
    data = json.dumps(body).encode()
    head = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json",
            f"Authorization: Bearer {OPENAI_KEY}", f"Content-Length: {len(data)}", "Connection: close"]
    head += [f"{k}: {v}" for k, v in headers.items()]
    s = socket.create_connection(("127.0.0.1", port), timeout=HTTP_TIMEOUT)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    s.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + data)
    return s


def chat_body(text: str, **kw) -> dict:
    return dict({"model": GPT, "messages": [{"role": "user", "content": text}]}, **kw)


# --------------------------------------------------------------------------
# OpenAI chat


def test_chat_non_streaming(px):
    msgs = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "hello through the proxy"}]
    raw = px.oai().chat.completions.with_raw_response.create(model=GPT, messages=msgs, temperature=0.2)
    res = raw.parse()
    direct = px.direct_oai().chat.completions.create(model=GPT, messages=msgs, temperature=0.2)
    assert res.model_dump() == direct.model_dump()
    assert float(raw.headers["lanterna-overhead-ms"]) >= 0
    assert hget(px.fo.requests[-2]["headers"], "Authorization") == "Bearer " + OPENAI_KEY
    tid, sid = ids_of(raw.headers)
    s = px.span(tid)
    where = json.dumps(s)[:3000]
    assert s["span_id"] == sid, where
    assert (s["kind"], s["provider"], s["operation"], s["otel_kind"]) == ("LLM", "openai", "chat", 3), where
    assert (s["request_model"], s["response_model"]) == (GPT, res.model), where
    u = res.usage
    assert (s["input_tokens"], s["output_tokens"], s["total_tokens"]) == \
        (u.prompt_tokens, u.completion_tokens, u.total_tokens), where
    assert s["cache_read_tokens"] == u.prompt_tokens_details.cached_tokens == cached_tokens(msgs) > 0, where
    assert s["cost_source"] == "computed", where
    assert s["cost_usd"] == pytest.approx(gpt_cost(u.prompt_tokens, u.completion_tokens,
                                                   u.prompt_tokens_details.cached_tokens), rel=1e-6), where
    assert s["status"] == "ok" and s["finish_reason"] == "stop", where
    assert s["input_messages"] == msgs, where
    assert s["output_messages"] == [{"role": "assistant", "content": expected_reply(msgs),
                                     "finish_reason": "stop"}], where
    assert s["metadata"].get("temperature") == 0.2, where
    a = s["attributes"]
    assert a["lanterna.proxy.upstream"] == "openai" and a["url.path"] == "/v1/chat/completions", where
    assert a["http.request.method"] == "POST" and a["http.response.status_code"] == 200, where
    assert a["gen_ai.response.id"] == res.id, where
    assert s["name"] == f"chat {res.model}", where


def test_chat_streaming_real_client(px):
    msgs = [{"role": "user", "content": "stream me some words please"}]
    raw = px.oai().chat.completions.with_raw_response.create(model=GPT, messages=msgs, stream=True,
                                                             extra_headers={"x-fake-first-delay-ms": "300"})
    tid, _ = ids_of(raw.headers)
    chunks = list(raw.parse())
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == expected_reply(msgs)
    assert all(c.usage is None for c in chunks), "the caller did not ask for usage but got it"
    # The upstream was asked for usage on the caller's behalf.
    assert px.fo.requests[-1]["body"].get("stream_options") == {"include_usage": True}
    s = px.span(tid)
    where = json.dumps(s)[:3000]
    n_out = len(expected_reply(msgs).split())
    assert (s["input_tokens"], s["output_tokens"]) == (prompt_tokens(msgs), n_out), where
    assert s["cost_usd"] == pytest.approx(gpt_cost(prompt_tokens(msgs), n_out, 0), rel=1e-6), where
    assert s["cost_source"] == "computed", where
    assert s["output_messages"] == [{"role": "assistant", "content": text, "finish_reason": "stop"}], where
    assert s["attributes"].get("lanterna.proxy.stream_usage_added") is True, where
    # The first content came after the 300 ms pause; TTFT counts it.
    assert s["ttft_ms"] is not None and 300 <= s["ttft_ms"] <= s["duration_ms"], where
    assert s["tokens_per_second"] and s["tokens_per_second"] > 0, where
    assert s["status"] == "ok", where


AZURE_KEY = secrets.token_hex(16)


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_azure_openai_deployment(px, stream):
    """Azure OpenAI as a configured upstream, through the real AzureOpenAI
    client: the deployment path and api-version reach Azure as sent, the
    api-key header is the credential (passed on, never stored), and the span
    is priced by the model Azure answers with."""
    az = openai.AzureOpenAI(azure_endpoint=px.url("azure"), api_key=AZURE_KEY, api_version="2024-10-21",
                            max_retries=0)
    msgs = [{"role": "user", "content": "hello from an azure deployment"}]
    raw = az.chat.completions.with_raw_response.create(model="prod-gpt4o", messages=msgs, stream=stream)
    tid, _ = ids_of(raw.headers)
    res = raw.parse()
    if stream:
        text = "".join(c.choices[0].delta.content or "" for c in res if c.choices)
    else:
        text = res.choices[0].message.content
    assert text == expected_reply(msgs)
    sent = [e for e in px.fo.log if e["path"].startswith("/openai/deployments/prod-gpt4o/")][-1]
    assert sent["path"] == "/openai/deployments/prod-gpt4o/chat/completions?api-version=2024-10-21"
    assert hget(sent["headers"], "api-key") == AZURE_KEY and hget(sent["headers"], "Authorization") is None
    s = px.span(tid)
    where = json.dumps(s)[:3000]
    assert (s["kind"], s["operation"], s["request_model"]) == ("LLM", "chat", "prod-gpt4o"), where
    assert s["response_model"].startswith(AZURE_DEPLOYMENT_MODEL), where
    assert s["attributes"]["url.path"] == "/openai/deployments/prod-gpt4o/chat/completions", where
    n_out = len(expected_reply(msgs).split())
    assert (s["input_tokens"], s["output_tokens"]) == (prompt_tokens(msgs), n_out), where
    assert s["cost_source"] == "computed", where
    assert s["cost_usd"] == pytest.approx(gpt_cost(prompt_tokens(msgs), n_out, s["cache_read_tokens"] or 0),
                                          rel=1e-6), where
    assert s["input_messages"] == msgs and s["status"] == "ok", where
    for f in px.server.data.iterdir():
        if f.is_file():
            assert AZURE_KEY.encode() not in f.read_bytes(), f"the Azure key is in {f.name}"


def test_azure_openai_without_key_passes_azure_error(px):
    """Azure's own 401 reaches the caller as Azure sent it and is an error span."""
    r = post_raw(px.url("azure", "/openai/deployments/prod-gpt4o/chat/completions?api-version=2024-10-21"),
                 chat_body("no key"), headers={"Authorization": None})
    assert r.status_code == 401 and r.json()["error"]["code"] == "401"
    s = px.span(r.headers["lanterna-trace-id"])
    assert s["status"] == "error" and s["attributes"]["http.response.status_code"] == 401, json.dumps(s)[:2000]


@pytest.mark.parametrize("include_usage", [False, True], ids=["usage-not-asked", "usage-asked"])
def test_stream_bytes_identical_to_direct(px, include_usage):
    """The SSE body the caller gets through the proxy is byte-for-byte the one
    it gets from the upstream directly: the usage chunk the proxy asked for
    on the caller's behalf is stripped, and the one the caller asked for is
    kept."""
    body = chat_body("compare these bytes exactly", stream=True)
    if include_usage:
        body["stream_options"] = {"include_usage": True}
    direct = post_raw(px.fo.base_url + "/chat/completions", body)
    proxied = post_raw(px.url("fake", "/v1/chat/completions"), body)
    assert direct.status_code == proxied.status_code == 200
    assert proxied.headers["content-type"] == direct.headers["content-type"]
    assert proxied.content.endswith(b"data: [DONE]\n\n")
    assert (b'"usage": {' in proxied.content) == include_usage
    assert proxied.content == direct.content, first_difference(direct.content, proxied.content)
    s = px.span(ids_of(proxied.headers)[0])
    assert s["input_tokens"] == prompt_tokens(body["messages"]) and s["output_tokens"] > 0, json.dumps(s)[:2000]


def test_stream_without_usage_is_unknown_cost_not_zero(px):
    """A caller that explicitly turns usage off decides: no usage reaches
    anyone, and the span's tokens and cost are unknown, not 0."""
    r = post_raw(px.url("fake", "/v1/chat/completions"),
                 chat_body("no usage for me", stream=True, stream_options={"include_usage": False}))
    assert r.status_code == 200 and b'"usage"' not in r.content
    s = px.span(ids_of(r.headers)[0])
    where = json.dumps(s)[:2000]
    assert s["input_tokens"] is None and s["output_tokens"] is None, where
    assert s["cost_usd"] is None and s["cost_source"] != "computed", where
    assert s["output_messages"][0]["content"] == expected_reply(chat_body("no usage for me")["messages"]), where


def test_chat_tool_calls(px):
    msgs = [{"role": "user", "content": "What is the weather in Paris?"}]
    res = px.oai().chat.completions.with_raw_response.create(model=GPT, messages=msgs, tools=[WEATHER_TOOL])
    tc = res.parse().choices[0].message.tool_calls[0]
    s = px.span(ids_of(res.headers)[0])
    where = json.dumps(s)[:3000]
    assert s["finish_reason"] == "tool_calls", where
    assert s["output_messages"] == [{"role": "assistant", "finish_reason": "tool_calls", "tool_calls": [
        {"id": tc.id, "name": "get_weather", "arguments": tc.function.arguments}]}], where
    assert s["metadata"].get("tools") == 1, where

    # Streamed: the arguments arrive in pieces and are joined.
    raw = px.oai().chat.completions.with_raw_response.create(model=GPT, messages=msgs, tools=[WEATHER_TOOL],
                                                             stream=True)
    chunks = list(raw.parse())
    streamed_id = chunks[0].choices[0].delta.tool_calls[0].id
    s = px.span(ids_of(raw.headers)[0])
    where = json.dumps(s)[:3000]
    calls = s["output_messages"][0]["tool_calls"]
    assert calls == [{"id": streamed_id, "name": "get_weather", "arguments": tc.function.arguments}], where
    assert s["finish_reason"] == "tool_calls" and s["ttft_ms"] is not None, where
    assert chunks[-1].choices[0].finish_reason == "tool_calls"

    # The round trip: the assistant's tool call and the tool's answer as input.
    history = msgs + [{"role": "assistant", "content": None, "tool_calls": [
        {"id": tc.id, "type": "function", "function": {"name": "get_weather", "arguments": tc.function.arguments}}]},
        {"role": "tool", "tool_call_id": tc.id, "content": "18 C and sunny"}]
    raw = px.oai().chat.completions.with_raw_response.create(model=GPT, messages=history, tools=[WEATHER_TOOL])
    s = px.span(ids_of(raw.headers)[0])
    assert s["input_messages"] == [
        msgs[0],
        {"role": "assistant", "tool_calls": [{"id": tc.id, "name": "get_weather", "arguments": tc.function.arguments}]},
        {"role": "tool", "content": "18 C and sunny", "tool_call_id": tc.id}], json.dumps(s)[:3000]


# --------------------------------------------------------------------------
# completions, embeddings, responses


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_completions(px, stream):
    kw = dict(model="gpt-3.5-turbo-instruct", prompt="Say this is a test", max_tokens=7)
    raw = px.oai().completions.with_raw_response.create(stream=stream, **kw)
    out = raw.parse()
    text = "".join(c.choices[0].text for c in out if c.choices) if stream else out.choices[0].text
    assert text == "Echo: Say this is a test"
    s = px.span(ids_of(raw.headers)[0])
    where = json.dumps(s)[:2000]
    assert (s["kind"], s["operation"], s["request_model"]) == ("LLM", "text_completion", kw["model"]), where
    assert s["input"] == kw["prompt"] and s["output"] == text, where
    # the fake counts words: the prompt's plus one, the answer's
    assert (s["input_tokens"], s["output_tokens"], s["total_tokens"]) == (6, 6, 12), where
    assert s["finish_reason"] == "stop" and s["cost_source"] == "computed", where
    if stream:
        assert s["ttft_ms"] is not None, where


def test_embeddings(px):
    raw = px.oai().embeddings.with_raw_response.create(model="text-embedding-3-small",
                                                        input="the quick brown fox")
    res = raw.parse()
    direct = px.direct_oai().embeddings.create(model="text-embedding-3-small", input="the quick brown fox")
    assert res.data[0].embedding == direct.data[0].embedding and len(res.data[0].embedding) == 8
    s = px.span(ids_of(raw.headers)[0])
    where = json.dumps(s)[:2000]
    assert (s["kind"], s["operation"], s["request_model"]) == ("EMBEDDING", "embeddings", "text-embedding-3-small")
    assert s["input"] == "the quick brown fox", where
    assert s["input_tokens"] == 4 and s["output_tokens"] in (0, None), where
    assert s["cost_usd"] == pytest.approx(4 * 0.02 / 1e6, rel=1e-6) and s["cost_source"] == "computed", where
    assert s["output_messages"] is None, where


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_responses_api(px, stream):
    kw = dict(model=GPT, instructions="Answer briefly.",
              input=[{"role": "user", "content": [{"type": "input_text", "text": "hello responses"}]}])
    raw = px.oai().responses.with_raw_response.create(stream=stream, **kw)
    out = raw.parse()
    if stream:
        events = list(out)
        assert events[-1].type == "response.completed"
        final = events[-1].response
    else:
        final = out
    assert final.output_text == "Echo: hello responses"
    s = px.span(ids_of(raw.headers)[0])
    where = json.dumps(s)[:3000]
    assert (s["kind"], s["operation"], s["request_model"], s["response_model"]) == \
        ("LLM", "chat", GPT, final.model), where
    assert s["input_messages"] == [{"role": "system", "content": "Answer briefly."},
                                   {"role": "user", "content": "hello responses"}], where
    assert s["output_messages"][0]["role"] == "assistant", where
    assert s["output_messages"][0]["content"] == "Echo: hello responses", where
    u = final.usage
    assert (s["input_tokens"], s["output_tokens"], s["total_tokens"]) == \
        (u.input_tokens, u.output_tokens, u.total_tokens), where
    assert s["finish_reason"] == "completed" and s["cost_source"] == "computed", where
    assert s["attributes"]["gen_ai.response.id"] == final.id, where
    if stream:
        assert s["ttft_ms"] is not None and s["tokens_per_second"], where


def test_responses_api_tool_call(px):
    tools = [{"type": "function", "name": "get_weather", "parameters": WEATHER_TOOL["function"]["parameters"]}]
    raw = px.oai().responses.with_raw_response.create(model=GPT, input="What's the weather in Paris?", tools=tools)
    fc = raw.parse().output[0]
    s = px.span(ids_of(raw.headers)[0])
    assert s["output_messages"] == [{"role": "assistant", "tool_calls": [
        {"id": fc.call_id, "name": "get_weather", "arguments": fc.arguments}]}], json.dumps(s)[:2000]


# --------------------------------------------------------------------------
# Anthropic


def claude_kw(text="What is the weather in Paris?", system="You are a weather bot with a long cached prompt.",
              **kw):
    return dict({"model": CLAUDE, "max_tokens": 256,
                 "system": [{"type": "text", "text": system, "cache_control": {"type": "ephemeral"}}],
                 "messages": [{"role": "user", "content": text}], "tools": [CLAUDE_TOOL]}, **kw)


def check_claude_span(s, usage: dict, msg):
    where = json.dumps(s)[:3000]
    assert (s["kind"], s["provider"], s["operation"]) == ("LLM", "anthropic", "chat"), where
    assert (s["request_model"], s["response_model"]) == (CLAUDE, claude_snapshot(CLAUDE)), where
    assert s["input_tokens"] == usage["input_tokens"], where
    assert s["output_tokens"] == usage["output_tokens"], where
    assert s["cache_read_tokens"] == usage["cache_read_input_tokens"], where
    assert s["cache_write_tokens"] == usage["cache_creation_input_tokens"], where
    assert s["cost_source"] == "computed", where
    assert s["cost_usd"] == pytest.approx(claude_cost(usage), rel=1e-6), where
    assert s["finish_reason"] == "tool_use" and s["status"] == "ok", where
    assert s["input_messages"] == [{"role": "system", "content": msg["system"][0]["text"]},
                                   {"role": "user", "content": msg["messages"][0]["content"]}], where
    text = [b for b in usage["_content"] if b["type"] == "text"][0]["text"]
    tool = [b for b in usage["_content"] if b["type"] == "tool_use"][0]
    out = s["output_messages"]
    assert len(out) == 1 and out[0]["role"] == "assistant" and out[0]["content"] == text, where
    calls = out[0]["tool_calls"]
    assert [(c["id"], c["name"]) for c in calls] == [(tool["id"], "get_weather")], \
        f"want exactly the one tool_use block as a tool call: {calls}"
    assert json.loads(calls[0]["arguments"]) == tool["input"], where


def test_anthropic_messages_non_streaming_with_cache(px):
    kw = claude_kw(system="Non-streaming system prompt that the fake caches.")
    usages = []
    for _ in range(2):  # the first call writes the prompt cache, the second reads it
        raw = px.claude().messages.with_raw_response.create(**kw)
        msg = raw.parse()
        assert msg.stop_reason == "tool_use" and msg.content[1].type == "tool_use"
        u = msg.usage.model_dump()
        u["_content"] = [b.model_dump() for b in msg.content]
        usages.append(u)
        check_claude_span(px.span(ids_of(raw.headers)[0]), u, kw)
    assert usages[0]["cache_creation_input_tokens"] > 0 and usages[0]["cache_read_input_tokens"] == 0
    assert usages[1]["cache_read_input_tokens"] > 0 and usages[1]["cache_creation_input_tokens"] == 0
    hdrs = px.fa.requests[-1]["headers"]
    assert ANTHROPIC_KEY in (hget(hdrs, "x-api-key"), (hget(hdrs, "Authorization") or "")[7:])
    assert hget(hdrs, "anthropic-version")


def test_anthropic_messages_streaming_with_cache(px):
    kw = claude_kw(system="Streaming system prompt that the fake caches.")
    usages = []
    for _ in range(2):
        tid = trace_id()
        with px.claude().messages.stream(**kw, extra_headers={"Lanterna-Trace-Id": tid}) as st:
            for _ in st:
                pass
            msg = st.get_final_message()
            assert ids_of(st.response.headers)[0] == tid
        u = msg.usage.model_dump()
        u["_content"] = [b.model_dump() for b in msg.content]
        usages.append(u)
        s = px.span(tid)
        check_claude_span(s, u, kw)
        assert s["ttft_ms"] is not None and 0 < s["ttft_ms"] <= s["duration_ms"], json.dumps(s)[:2000]
        assert s["tokens_per_second"] and s["tokens_per_second"] > 0
    assert usages[0]["cache_creation_input_tokens"] > 0 and usages[1]["cache_read_input_tokens"] > 0


def test_anthropic_tool_use_without_input(lanterna, fakes):
    """A tool_use block with no `input` (as some clients replay history) is a
    tool call with empty arguments, and parsing it leaks nothing: under a
    sanitizer build the server's clean exit proves it."""
    fo, fa = fakes
    server = lanterna(args=upstream_args(fo, fa, free_port()))
    p = Proxy(server, fo, fa)
    body = {"model": CLAUDE, "max_tokens": 32, "messages": [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_weather"}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "18 C"}]}]}
    r = post_raw(p.url("anthropic", "/v1/messages"), body, {"x-api-key": ANTHROPIC_KEY,
                                                             "anthropic-version": "2023-06-01"})
    assert r.status_code == 200, r.text
    s = p.span(ids_of(r.headers)[0])
    msgs = s["input_messages"]
    assert msgs[1]["tool_calls"] == [{"id": "toolu_1", "name": "get_weather", "arguments": "{}"}], msgs
    assert msgs[2] == {"role": "tool", "tool_call_id": "toolu_1", "content": "18 C"}, msgs
    rc = server.stop()
    assert rc == 0, f"exit {rc} (a sanitizer report?):\n{server.log_tail()}"


def test_anthropic_stream_bytes_identical_to_direct(px):
    body = {"model": CLAUDE, "max_tokens": 64, "stream": True, "messages": [{"role": "user", "content": "bytes?"}]}
    h = {"x-api-key": ANTHROPIC_KEY, "anthropic-version": "2023-06-01"}
    direct = post_raw(px.fa.base_url + "/v1/messages", body, h)
    proxied = post_raw(px.url("anthropic", "/v1/messages"), body, h)
    assert direct.status_code == proxied.status_code == 200
    assert b"event: message_delta" in proxied.content
    assert proxied.content == direct.content, first_difference(direct.content, proxied.content)


def test_anthropic_slow_first_token(px):
    with px.claude().messages.with_streaming_response.create(
            model=CLAUDE, max_tokens=64, stream=True, messages=[{"role": "user", "content": "slowly"}],
            extra_headers={"x-fake-first-delay-ms": "300"}) as raw:
        tid, _ = ids_of(raw.headers)
        body = raw.read()
    assert body.count(b"event: content_block_delta") >= 2
    s = px.span(tid)
    assert s["ttft_ms"] is not None and s["ttft_ms"] >= 300, json.dumps(s)[:2000]
    assert s["output_messages"][0]["content"] == "Claude says: slowly", json.dumps(s)[:2000]


@pytest.mark.parametrize("code,exc", [(400, anthropic.BadRequestError), (401, anthropic.AuthenticationError),
                                      (429, anthropic.RateLimitError), (529, anthropic.OverloadedError)])
def test_anthropic_errors_pass_through(px, code, exc):
    kw = dict(model=CLAUDE, max_tokens=16, messages=[{"role": "user", "content": "err"}],
              extra_headers={"x-fake-error": str(code)})
    with pytest.raises(exc) as proxied:
        px.claude().messages.create(**kw)
    with pytest.raises(exc) as direct:
        px.direct_claude().messages.create(**kw)
    pr, dr = proxied.value.response, direct.value.response
    assert pr.status_code == code
    assert pr.content == dr.content, "the upstream's error body must pass through verbatim"
    assert pr.json()["error"]["type"] == dr.json()["error"]["type"]
    if code == 429:
        assert pr.headers.get("retry-after") == "7"
        assert pr.headers.get("anthropic-ratelimit-requests-remaining") == "0"
    s = px.span(ids_of(pr.headers)[0])
    where = json.dumps(s)[:2000]
    assert s["status"] == "error" and str(code) in (s["status_message"] or ""), where
    assert s["attributes"]["http.response.status_code"] == code, where
    assert s["cost_usd"] is None or s["cost_usd"] == 0, where


def test_anthropic_error_event_mid_stream_is_an_error(px):
    """Anthropic ends an overloaded stream with an `error` event (HTTP 200):
    the call failed, and its span must say so."""
    with px.claude().messages.with_streaming_response.create(
            model=CLAUDE, max_tokens=64, stream=True, messages=[{"role": "user", "content": "break soon"}],
            extra_headers={"x-fake-stream-error": "4"}) as raw:
        tid, _ = ids_of(raw.headers)
        body = raw.read()
    assert b"event: error" in body
    s = px.span(tid)
    where = json.dumps(s)[:2000]
    assert s["status"] == "error", where
    assert "overloaded" in (s["status_message"] or "").lower(), where


# --------------------------------------------------------------------------
# errors, routing, limits


def test_openai_error_status_passes_through(px):
    kw = dict(model=GPT, messages=[{"role": "user", "content": "x"}], extra_headers={"x-fake-status": "429"})
    with pytest.raises(openai.RateLimitError) as proxied:
        px.oai().chat.completions.create(**kw)
    with pytest.raises(openai.RateLimitError) as direct:
        px.direct_oai().chat.completions.create(**kw)
    pr = proxied.value.response
    assert pr.content == direct.value.response.content
    assert pr.headers.get("retry-after") == "2" and pr.headers.get("x-ratelimit-remaining-requests") == "0"
    s = px.span(ids_of(pr.headers)[0])
    assert s["status"] == "error" and "429" in s["status_message"], json.dumps(s)[:2000]
    with pytest.raises(openai.InternalServerError):
        px.oai().chat.completions.create(**dict(kw, extra_headers={"x-fake-status": "500"}))


def test_upstream_unreachable_is_502_and_traced(px):
    tid = trace_id()
    r = post_raw(px.url("dead", "/v1/chat/completions"), chat_body("anyone?"), {"Lanterna-Trace-Id": tid})
    assert r.status_code == 502, r.text
    assert r.headers["content-type"].startswith("application/json") and "dead" in json.dumps(r.json()), r.text
    s = px.span(tid)
    where = json.dumps(s)[:2000]
    assert s["status"] == "error" and s["status_message"], where
    assert s["attributes"]["lanterna.proxy.upstream"] == "dead", where
    # the request side is still known
    assert s["request_model"] == GPT and s["input_messages"] == [{"role": "user", "content": "anyone?"}], where
    with pytest.raises(openai.InternalServerError) as e:
        px.oai("dead").chat.completions.create(model=GPT, messages=[{"role": "user", "content": "x"}])
    assert e.value.status_code == 502


def test_upstream_breaking_mid_stream_is_an_error(px):
    tid = trace_id()
    r = post_raw(px.url("fake", "/v1/chat/completions"), chat_body("cut me off", stream=True),
                 {"x-fake-cut-after": "3", "Lanterna-Trace-Id": tid})
    assert b"[DONE]" not in r.content
    s = px.span(tid)
    where = json.dumps(s)[:2000]
    assert s["status"] == "error", where
    assert s["input_tokens"] is None and s["cost_usd"] is None, where  # no usage arrived: unknown, not $0


def test_unknown_upstream_is_404_listing_configured(px):
    r = px.server.get("/proxy/nope/v1/models")
    body = assert_error(r, 404, "unknown_upstream")
    msg = body["error"]["message"]
    for name in ("openai", "anthropic", "fake", "dead"):
        assert name in msg, msg
    assert "nope" in msg


def test_configured_upstream_overrides_builtin(px):
    """`--upstream openai=...` and `anthropic=...` replace the built-in
    hosts: the calls of the other tests reached the fakes."""
    n = len(px.fo.log)
    raw = px.oai().chat.completions.with_raw_response.create(model=GPT, messages=[{"role": "user", "content": "o"}])
    assert len(px.fo.log) == n + 1 and px.fo.log[-1]["path"] == "/v1/chat/completions"
    assert px.span(ids_of(raw.headers)[0])["provider"] == "openai"
    n = len(px.fa.log)
    raw = px.claude().messages.with_raw_response.create(model=CLAUDE, max_tokens=8,
                                                        messages=[{"role": "user", "content": "a"}])
    assert len(px.fa.log) == n + 1
    assert px.span(ids_of(raw.headers)[0])["provider"] == "anthropic"


def test_non_llm_path_passes_through(px):
    raw = px.oai("fake").models.with_raw_response.list()
    assert [m.id for m in raw.parse()] == [m.id for m in px.direct_oai().models.list()]
    r = httpx.get(px.url("fake", "/v1/models?limit=2&after=x"), headers={"Authorization": "Bearer " + OPENAI_KEY})
    assert r.status_code == 200 and px.fo.log[-1]["path"] == "/v1/models?limit=2&after=x"
    s = px.span(ids_of(raw.headers)[0])
    where = json.dumps(s)[:2000]
    assert s["kind"] not in ("LLM", "EMBEDDING") and s["status"] == "ok", where
    assert s["name"] == "fake GET /v1/models", where
    assert s["attributes"]["http.request.method"] == "GET", where
    assert s["input_tokens"] is None and s["cost_usd"] is None, where


def test_malformed_json_forwarded_as_is_and_traced_plain(px):
    bad = b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "unterminated'
    direct = post_raw(px.fo.base_url + "/chat/completions", bad)
    r = post_raw(px.url("fake", "/v1/chat/completions"), bad)
    assert px.fo.log[-1]["raw"] == bad, "the body must reach the upstream byte for byte"
    assert r.status_code == direct.status_code == 400 and r.content == direct.content
    s = px.span(ids_of(r.headers)[0])
    where = json.dumps(s)[:2000]
    assert s["status"] == "error", where
    assert s["kind"] not in ("LLM", "EMBEDDING"), f"a body that is not JSON is traced as a plain span: {where}"
    assert s["name"] == "fake POST /v1/chat/completions", where


def test_invalid_trace_header_is_rejected_clearly(px):
    """A Lanterna-Trace-Id that is not 32 hex digits is a 400 that names the
    header, not a call silently traced elsewhere."""
    n = len(px.fo.log)
    r = post_raw(px.url("fake", "/v1/chat/completions"), chat_body("x"), {"Lanterna-Trace-Id": "not-a-trace-id"})
    assert r.status_code == 400, f"{r.status_code} {r.text[:300]}"
    assert "Lanterna-Trace-Id" in r.text
    assert len(px.fo.log) == n


def test_body_over_max_body_is_413(lanterna, fakes):
    fo, fa = fakes
    server = lanterna(args=upstream_args(fo, fa, free_port()) + ["--max-body", "4096"])
    n = len(fo.log)
    big = chat_body("x " * 5000)
    r = post_raw(f"{server.url}/proxy/fake/v1/chat/completions", big)
    assert r.status_code == 413, r.text[:300]
    assert len(fo.log) == n, "an oversized body must not reach the upstream"
    r = post_raw(f"{server.url}/proxy/fake/v1/chat/completions", chat_body("small"))
    assert r.status_code == 200


# --------------------------------------------------------------------------
# request headers


@pytest.mark.parametrize("family", ["Lanterna", "Helicone"])
def test_context_headers(px, family):
    tag = secrets.token_hex(4)
    h = {f"{family}-User-Id": f"user-{tag}", f"{family}-Session-Id": f"sess-{tag}",
         f"{family}-Property-Feature": "checkout", f"{family}-Property-Team-Name": "growth"}
    if family == "Lanterna":
        h.update({"Lanterna-Prompt-Name": "greeter", "Lanterna-Prompt-Version": "3"})
    else:
        h["Helicone-Prompt-Id"] = "greeter"
    raw = px.oai().chat.completions.with_raw_response.create(model=GPT, messages=[{"role": "user", "content": "hi"}],
                                                             extra_headers=h)
    fwd = {k.lower() for k in px.fo.requests[-1]["headers"]}
    assert not [k for k in fwd if k.startswith(("lanterna-", "helicone-"))], f"forwarded upstream: {fwd}"
    s = px.span(ids_of(raw.headers)[0])
    where = json.dumps(s)[:2000]
    assert (s["user_id"], s["session_id"], s["feature"]) == (f"user-{tag}", f"sess-{tag}", "checkout"), where
    assert s["metadata"].get("feature") == "checkout" and s["metadata"].get("team-name") == "growth", where
    assert s["prompt_name"] == "greeter", where
    if family == "Lanterna":
        assert s["prompt_version"] == "3", where
    row = px.server.api(f"/api/v1/traces/{s['trace_id']}")["trace"]
    assert (row["user_id"], row["session_id"]) == (f"user-{tag}", f"sess-{tag}")


def test_traceparent_joins_existing_trace_as_child(px):
    tid, root, t = trace_id(), span_id(), now_ns()
    px.server.export_ok(traces_request([make_span(tid, root, "app request", t, t + 5_000_000_000)]))
    raw = px.oai().chat.completions.with_raw_response.create(
        model=GPT, messages=[{"role": "user", "content": "child"}],
        extra_headers={"traceparent": f"00-{tid}-{root}-01"})
    assert raw.headers["lanterna-trace-id"] == tid
    d = px.trace(tid, spans=2)
    s = [x for x in d["spans"] if x["service"] == "lanterna-proxy"][0]
    assert s["parent_span_id"] == root and s["depth"] == 1, json.dumps(d)[:2000]
    assert d["trace"]["span_count"] == 2 and d["trace"]["name"] == "app request"


def test_lanterna_trace_id_joins_trace(px):
    tid = trace_id()
    raw = px.oai().chat.completions.with_raw_response.create(
        model=GPT, messages=[{"role": "user", "content": "same trace"}], extra_headers={"Lanterna-Trace-Id": tid})
    assert raw.headers["lanterna-trace-id"] == tid
    raw2 = px.oai().chat.completions.with_raw_response.create(
        model=GPT, messages=[{"role": "user", "content": "same trace 2"}], extra_headers={"Lanterna-Trace-Id": tid})
    assert raw2.headers["lanterna-trace-id"] == tid
    d = px.trace(tid, spans=2)
    assert {s["span_id"] for s in d["spans"]} == {raw.headers["lanterna-request-id"],
                                                  raw2.headers["lanterna-request-id"]}


@pytest.mark.parametrize("family", ["Lanterna", "Helicone"])
def test_omit_request_and_response(px, family):
    msgs = [{"role": "user", "content": f"private words {family}"}]
    raw = px.oai().chat.completions.with_raw_response.create(
        model=GPT, messages=msgs, extra_headers={f"{family}-Omit-Request": "true", f"{family}-Omit-Response": "true"})
    assert raw.parse().choices[0].message.content == expected_reply(msgs)
    s = px.span(ids_of(raw.headers)[0])
    where = json.dumps(s)[:2000]
    assert s["input_messages"] is None and s["output_messages"] is None, where
    assert s["input"] is None and s["output"] is None, where
    assert "private words" not in json.dumps(s), where
    assert s["input_tokens"] == prompt_tokens(msgs) and s["cost_source"] == "computed", where
    # one side only
    raw = px.oai().chat.completions.with_raw_response.create(
        model=GPT, messages=msgs, extra_headers={f"{family}-Omit-Response": "true"})
    s = px.span(ids_of(raw.headers)[0])
    assert s["input_messages"] == msgs and s["output_messages"] is None, json.dumps(s)[:2000]


def test_credentials_reach_upstream_but_are_never_stored(lanterna, fakes, tmp_path):
    fo, fa = fakes
    server = lanterna(data=tmp_path / "secret-data", args=upstream_args(fo, fa, free_port()))
    p = Proxy(server, fo, fa)
    okey, akey = "sk-proj-NEVERSTORE" + secrets.token_hex(16), "sk-ant-NEVERSTORE" + secrets.token_hex(16)
    tids = []
    c = openai.OpenAI(base_url=p.url("openai", "/v1"), api_key=okey, max_retries=0)
    raw = c.chat.completions.with_raw_response.create(model=GPT, messages=[{"role": "user", "content": "k"}])
    tids.append(raw.headers["lanterna-trace-id"])
    raw = c.chat.completions.with_raw_response.create(model=GPT, messages=[{"role": "user", "content": "k"}],
                                                      stream=True)
    list(raw.parse())
    tids.append(raw.headers["lanterna-trace-id"])
    assert hget(fo.requests[-1]["headers"], "Authorization") == "Bearer " + okey
    a = anthropic.Anthropic(base_url=p.url("anthropic"), api_key=akey, max_retries=0)
    raw = a.messages.with_raw_response.create(model=CLAUDE, max_tokens=8, messages=[{"role": "user", "content": "k"}])
    tids.append(raw.headers["lanterna-trace-id"])
    got = fa.requests[-1]["headers"]
    assert akey in (hget(got, "x-api-key"), (hget(got, "Authorization") or "")[7:])
    # the x-api-key form too
    r = post_raw(p.url("anthropic", "/v1/messages"), {"model": CLAUDE, "max_tokens": 8, "messages": [
        {"role": "user", "content": "k"}]}, {"x-api-key": akey, "anthropic-version": "2023-06-01", "Authorization": None})
    assert r.status_code == 200 and hget(fa.requests[-1]["headers"], "x-api-key") == akey
    tids.append(r.headers["lanterna-trace-id"])
    with pytest.raises(openai.RateLimitError):  # an error reply too
        c.chat.completions.create(model=GPT, messages=[{"role": "user", "content": "k"}],
                                  extra_headers={"x-fake-status": "429"})
    for t in tids:
        p.span(t)
    found = []
    for root, _, files in os.walk(server.data):
        for f in files:
            path = os.path.join(root, f)
            data = open(path, "rb").read()
            for key in (okey, akey, okey[8:], akey[7:]):
                if key.encode() in data:
                    found.append((path, key[:12]))
    assert not found, f"a caller's credential was stored: {found}"
    assert okey[8:] not in server.log_text() and akey[7:] not in server.log_text()


# --------------------------------------------------------------------------
# streaming behaviour under load, slowness and failure


def test_chunks_arrive_as_the_upstream_sends_them(px):
    tag = "arrival-" + secrets.token_hex(4)
    arrivals = []
    with httpx.stream("POST", px.url("fake", "/v1/chat/completions"),
                      json=chat_body("one two three four five six", stream=True,
                                     stream_options={"include_usage": True}),
                      headers={"Authorization": "Bearer k", "x-fake-delay-ms": "200", "x-fake-tag": tag},
                      timeout=HTTP_TIMEOUT) as r:
        buf = b""
        for piece in r.iter_raw():
            buf += piece
            while b"\n\n" in buf:
                _, buf = buf.split(b"\n\n", 1)
                arrivals.append(time.monotonic())
    sent = px.fo.sent[tag]
    assert len(arrivals) == len(sent) >= 9
    # Each event reached the client soon after the upstream wrote it, long
    # before the upstream wrote the last one.
    lags = [a - s for a, s in zip(arrivals, sent)]
    assert max(lags) < 0.5 * SLOW, f"events were held back: lags {lags}"
    assert sent[-1] - arrivals[0] > 1.2, "the first event arrived only when the stream was over"


def dechunk(b: bytes) -> bytes:
    """The payload of an HTTP/1.1 chunked body (through its last chunk)."""
    out, i = [], 0
    while True:
        j = b.index(b"\r\n", i)
        n = int(b[i:j].split(b";")[0], 16)
        if n == 0:
            return b"".join(out)
        out.append(b[j + 2:j + 2 + n])
        assert b[j + 2 + n:j + 4 + n] == b"\r\n", "chunk without its CRLF"
        i = j + 4 + n


def test_slow_reader_keeps_memory_bounded(lanterna, fakes):
    """64 MiB streamed to a client that stops reading: the proxy stops
    reading the upstream instead of buffering (RSS stays bounded and the
    upstream is held back), and everything arrives once the client reads."""
    # A server of its own: under AddressSanitizer freed memory sits in its
    # quarantine (256 MiB by default), so what earlier tests freed on a
    # shared server would count here, which is not what this test measures.
    fo, fa = fakes
    env = {"ASAN_OPTIONS": "quarantine_size_mb=1:detect_leaks=1"} if SLOW > 1 else None
    px = Proxy(lanterna(args=upstream_args(fo, fa, free_port()), env=env), fo, fa)
    tag, tid = "bp-" + secrets.token_hex(4), trace_id()
    count, size = 1024, 64 * 1024
    pid = px.server.proc.pid
    before = rss_kib(pid)
    s = raw_request(px.server.port, "/proxy/fake/v1/chat/completions", chat_body("big", stream=True),
                    {"x-fake-fill": f"{count}:{size}", "x-fake-delay-ms": "0", "x-fake-tag": tag,
                     "Lanterna-Trace-Id": tid})
    got = s.recv(4096)
    assert got.startswith(b"HTTP/1.1 200"), got[:200]
    peak, deadline = before, time.monotonic() + 3
    while time.monotonic() < deadline:
        peak = max(peak, rss_kib(pid))
        time.sleep(0.05)
    sent_while_stalled = len(px.fo.sent.get(tag, []))
    parts = [got]
    total = len(got)
    while True:
        b = s.recv(1 << 20)
        if not b:
            break
        parts.append(b)
        total += len(b)
        peak = max(peak, rss_kib(pid)) if total % 64 == 0 else peak
    s.close()
    raw = b"".join(parts)
    # Every byte arrived in order, whether written at once or queued behind
    # a full socket: the chunked body decodes, and every event is whole.
    body = dechunk(raw[raw.index(b"\r\n\r\n") + 4:])
    events = [e for e in body.split(b"\n\n") if e]
    assert events[-1] == b"data: [DONE]"
    pieces = [json.loads(e[len(b"data: "):]) for e in events[:-1]]
    content = [c["choices"][0]["delta"].get("content") for c in pieces if c["choices"]]
    assert content.count(("lorem ipsum " * (size // 12 + 1))[:size]) == count
    assert sent_while_stalled < count // 2, \
        f"the upstream sent {sent_while_stalled}/{count} chunks to a client that read nothing"
    assert peak - before < 32 * 1024, f"RSS grew by {(peak - before) // 1024} MiB (from {before // 1024} MiB)"
    # The stored copy is capped and says so; the usage at the very end still counts.
    span = px.span(tid)
    where = json.dumps(span)[:1500]
    assert span["status"] == "ok" and span["attributes"]["lanterna.proxy.truncated"] is True, where
    assert span["output_tokens"] == count * 2, where


def test_stream_outlasts_idle_timeout(lanterna, fakes):
    """A stream that keeps sending is not cut by --idle-timeout: chunks
    written straight to the socket restart the connection's timer as
    evhttp's own chunk calls do. 3 s of events against a 1 s timeout."""
    fo, fa = fakes
    px = Proxy(lanterna(args=upstream_args(fo, fa, free_port()) + ["--idle-timeout", "1s"]), fo, fa)
    tid = trace_id()
    s = raw_request(px.server.port, "/proxy/fake/v1/chat/completions", chat_body("slow", stream=True),
                    {"x-fake-fill": "30:16", "x-fake-delay-ms": "100", "Lanterna-Trace-Id": tid})
    parts = []
    while True:
        b = s.recv(1 << 16)
        if not b:
            break
        parts.append(b)
    s.close()
    raw = b"".join(parts)
    assert raw.startswith(b"HTTP/1.1 200"), raw[:200]
    assert raw.endswith(b"0\r\n\r\n"), f"the stream was cut: ...{raw[-300:]!r}"
    events = [e for e in dechunk(raw[raw.index(b"\r\n\r\n") + 4:]).split(b"\n\n") if e]
    assert events[-1] == b"data: [DONE]"
    content = [json.loads(e[6:])["choices"][0]["delta"].get("content") for e in events[:-1]
               if json.loads(e[6:])["choices"]]
    assert content.count(("lorem ipsum " * 2)[:16]) == 30
    span = px.span(tid)
    assert span["status"] == "ok", json.dumps(span)[:1000]


def test_client_disconnect_mid_stream(lanterna, fakes):
    """A client gone mid-stream: the upstream transfer is cancelled, the span
    says what happened, the server stays healthy, and nothing of the call is
    left behind (under a sanitizer build the clean exit proves it)."""
    fo, fa = fakes
    server = lanterna(args=upstream_args(fo, fa, free_port()))
    px = Proxy(server, fo, fa)
    tag, tid = "gone-" + secrets.token_hex(4), trace_id()
    s = raw_request(server.port, "/proxy/fake/v1/chat/completions",
                    chat_body(" ".join(["word"] * 30), stream=True),
                    {"x-fake-delay-ms": "100", "x-fake-tag": tag, "Lanterna-Trace-Id": tid})
    buf = b""
    while buf.count(b"\n\n") < 3:  # the headers' end and two events
        buf += s.recv(4096)
    s.close()
    span = px.span(tid)
    where = json.dumps(span)[:2000]
    assert span["status"] == "error", where
    assert "client" in (span["status_message"] or "").lower(), where
    # The upstream transfer was cancelled, not read to its end.
    poll(lambda: tag in fo.aborted, timeout=5, what="the upstream request to be cancelled")
    assert len(fo.sent[tag]) < 30
    assert server.get("/healthz").status_code == 200
    r = post_raw(px.url("fake", "/v1/chat/completions"), chat_body("still fine"))
    assert r.status_code == 200
    rc = server.stop()
    assert rc == 0, f"exit {rc} (a sanitizer report?):\n{server.log_tail()}"


def test_client_leaving_right_after_done_is_not_an_abort(px):
    """Clients may hang up as soon as they have read `data: [DONE]`, before
    the upstream (slow here by 500 ms) has ended the body: the call was
    whole, so its span is ok, not a client abort."""
    tid = trace_id()
    s = raw_request(px.server.port, "/proxy/fake/v1/chat/completions", chat_body("short and done", stream=True),
                    {"x-fake-end-delay-ms": "500", "Lanterna-Trace-Id": tid})
    buf = b""
    while b"data: [DONE]" not in buf:
        got = s.recv(65536)
        assert got, buf[-300:]
        buf += got
    s.close()
    span = px.span(tid)
    where = json.dumps(span)[:2000]
    assert span["status"] == "ok", where
    assert span["output_messages"][0]["content"] == expected_reply([{"role": "user", "content": "short and done"}])


def test_fifty_concurrent_streams_all_traced(px):
    def one(i):
        tid = trace_id()
        r = post_raw(px.url("fake", "/v1/chat/completions"), chat_body(f"parallel call number {i}", stream=True),
                     {"x-fake-delay-ms": "20", "Lanterna-Trace-Id": tid})
        return tid, r
    with ThreadPoolExecutor(50) as ex:
        results = list(ex.map(one, range(50)))
    for i, (tid, r) in enumerate(results):
        assert r.status_code == 200 and r.content.endswith(b"data: [DONE]\n\n"), r.content[-200:]
        assert f'"content": " {i}"'.encode() in r.content
    for i, (tid, _) in enumerate(results):
        s = px.span(tid, timeout=20)
        assert s["status"] == "ok" and s["output_tokens"] == 5, json.dumps(s)[:1000]
        assert s["input_messages"][0]["content"] == f"parallel call number {i}"


def test_sigterm_while_streaming(lanterna, fakes):
    fo, fa = fakes
    server = lanterna(args=upstream_args(fo, fa, free_port()))
    tid = trace_id()
    events, done = [], threading.Event()

    def read():
        with httpx.stream("POST", f"{server.url}/proxy/fake/v1/chat/completions",
                          json=chat_body("a b c d e f g", stream=True),
                          headers={"Authorization": "Bearer k", "x-fake-delay-ms": "200",
                                   "Lanterna-Trace-Id": tid}, timeout=HTTP_TIMEOUT) as r:
            for line in r.iter_lines():
                if line.startswith("data: "):
                    events.append(line)
        done.set()
    t = threading.Thread(target=read, daemon=True)
    t.start()
    poll(lambda: events, timeout=10, what="the first event")
    server.proc.send_signal(signal.SIGTERM)
    rc = server.proc.wait(timeout=20 * SLOW)
    t.join(5)
    assert rc == 0, server.log_tail()
    assert done.is_set() and events[-1] == "data: [DONE]", f"the stream was cut: {events[-3:]}"
    server.start()
    s = Proxy(server, fo, fa).span(tid)
    assert s["status"] == "ok" and s["output_tokens"] == 8, json.dumps(s)[:2000]


# --------------------------------------------------------------------------
# with API keys required


def test_proxy_with_auth(lanterna, fakes, tmp_path):
    fo, fa = fakes
    data = tmp_path / "auth"
    cli_ok("projects", "create", "acme", data=data)
    key = create_key(data, "acme")
    server = lanterna(data=data, host="0.0.0.0", args=upstream_args(fo, fa, free_port()))
    p = Proxy(server, fo, fa)
    n = len(fo.log)
    r = post_raw(p.url("fake", "/v1/chat/completions"), chat_body("no key"))
    body = assert_error(r, 401, "unauthorized")
    assert "Lanterna-Api-Key" in body["error"]["message"]
    r = post_raw(p.url("fake", "/v1/chat/completions"), chat_body("bad key"),
                 {"Lanterna-Api-Key": "sk-lt-" + "0" * 48})
    assert_error(r, 401, "unauthorized")
    assert len(fo.log) == n, "an unauthenticated call reached the upstream"

    c = openai.OpenAI(base_url=p.url("fake", "/v1"), api_key=OPENAI_KEY, max_retries=0,
                      default_headers={"Lanterna-Api-Key": key["secret_key"]})
    raw = c.chat.completions.with_raw_response.create(model=GPT, messages=[{"role": "user", "content": "with key"}])
    assert raw.parse().choices[0].message.content == "Echo: with key"
    fwd = fo.requests[-1]["headers"]
    assert hget(fwd, "Authorization") == "Bearer " + OPENAI_KEY
    assert not any(k.lower() == "lanterna-api-key" for k in fwd)
    tid = raw.headers["lanterna-trace-id"]
    s = p.span(tid, headers=bearer(key))
    assert s["request_model"] == GPT
    listed = server.traces(headers=bearer(key))
    assert tid in [t["trace_id"] for t in listed]


@pytest.mark.parametrize("header,value", [("Lanterna-Cache-Enabled", "maybe"), ("Helicone-Omit-Request", "perhaps"),
                                          ("Lanterna-Omit-Response", "2"), ("Lanterna-Cache-Ttl", "soon"),
                                          ("Lanterna-Cache-Ttl", "-5")])
def test_invalid_option_headers_are_rejected_clearly(px, header, value):
    """A yes/no or seconds header with a value it cannot be is a 400 naming
    the header and the value, before anything reaches the upstream, rather
    than an opt-in silently read as 'no'."""
    n = len(px.fo.log)
    r = post_raw(px.url("fake", "/v1/chat/completions"), chat_body("x"), {header: value})
    assert r.status_code == 400, f"{r.status_code} {r.text[:300]}"
    assert header in r.json()["error"]["message"] and value in r.json()["error"]["message"]
    assert len(px.fo.log) == n
    for ok in ("true", "FALSE", "1", "0", "yes", "No") if "Ttl" not in header else ("0", "60"):
        assert post_raw(px.url("fake", "/v1/chat/completions"), chat_body("x"), {header: ok}).status_code == 200
