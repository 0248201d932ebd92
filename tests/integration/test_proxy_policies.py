"""The logging proxy's policies (docs/proxy.md): the response cache, rate
limits and budgets, retries and fallbacks, upstream timeouts and HTTPS
upstreams with a private CA. The real `openai` and `anthropic` clients (and
raw httpx where bytes matter) call a local fake OpenAI upstream through the
real server; the fake counts what reached it, and each test checks what the
caller got and the span stored for the call."""

from __future__ import annotations

import datetime
import ipaddress
import json
import re
import secrets
import socket
import ssl
import threading
import time

import anthropic
import httpx
import openai
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from fake_openai import count_tokens, expected_reply, stream_chunks
from fake_openai_ext import FakeOpenAIExt, _ExtHandler
from ltlib import HTTP_TIMEOUT, SLOW, free_port, poll, run_cli, trace_id

KEY = "sk-proj-" + secrets.token_hex(20)
OTHER_KEY = "sk-proj-" + secrets.token_hex(20)
GPT = "gpt-4o-mini"
CHAT = "/v1/chat/completions"


# --------------------------------------------------------------------------
# the fake upstream


def fail_body(status: int) -> bytes:
    """What the fake answers when told to fail: the bytes a caller must get
    verbatim when the proxy passes the failure on."""
    return json.dumps({"error": {"message": f"fake upstream failure (HTTP {status})", "type": "server_error",
                                 "param": None, "code": f"fake_{status}"}}).encode()


class _PolicyHandler(_ExtHandler):
    """fake_openai_ext's handler, which records every POST (path, headers,
    raw body) and adds controls for misbehaving on purpose:

    - a base URL path starting with /always503 answers every call with 503;
    - `x-policy-fail: KEY:K:STATUS[:RETRY_AFTER]` — the first K calls
      carrying KEY fail with STATUS (and that Retry-After), later ones work;
    - `x-policy-header-delay-ms: N` — wait N ms before answering at all;
    - `x-policy-stall: N:MS` — a chat stream that pauses MS ms after its
      first N events, then goes on.
    """

    server_version = "fake-openai-policy/1.0"
    _pending = None

    def _read_body(self) -> bytes:
        raw, self._pending = self._pending, None
        return raw if raw is not None else super()._read_body()

    def do_POST(self):  # noqa: N802
        raw = super()._read_body()
        with self.server.lock:
            self.server.seen.append({"path": self.path, "headers": dict(self.headers), "raw": raw,
                                     "t": time.monotonic()})
        try:
            if not self._policy(raw):
                self._pending = raw
                super().do_POST()
        except OSError:  # the proxy gave up on this call (a timeout): nobody to answer
            self.close_connection = True

    def _policy(self, raw: bytes) -> bool:
        h = self.headers
        if self.path.startswith("/always503/"):
            self._fail(503)
            return True
        spec = h.get("x-policy-fail")
        if spec:
            key, k, status, *retry_after = spec.split(":")
            with self.server.lock:
                n = self.server.fail_counts[key] = self.server.fail_counts.get(key, 0) + 1
            if n <= int(k):
                self._fail(int(status), retry_after[0] if retry_after else None)
                return True
        if h.get("x-policy-header-delay-ms"):
            time.sleep(int(h["x-policy-header-delay-ms"]) / 1000)
        if h.get("x-policy-stall"):
            after, ms = (int(x) for x in h["x-policy-stall"].split(":"))
            self._stalling_stream(json.loads(raw), after, ms / 1000)
            return True
        return False

    def _fail(self, status: int, retry_after: str | None = None) -> None:
        data = fail_body(status)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if retry_after:
            self.send_header("Retry-After", retry_after)
        self.end_headers()
        self.wfile.write(data)

    def _stalling_stream(self, body: dict, after: int, pause: float) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()
        self.close_connection = True
        frames = [b"data: " + json.dumps(c).encode() + b"\n\n" for c in stream_chunks(body)]
        frames.append(b"data: [DONE]\n\n")
        for i, frame in enumerate(frames):
            if i == after:
                time.sleep(pause)
            self._chunk(frame)
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


class PolicyFake(FakeOpenAIExt):
    """The fake OpenAI upstream with the controls above; over TLS when given
    a server-side SSLContext."""

    def __init__(self, tls: ssl.SSLContext | None = None):
        super().__init__()
        self.httpd.RequestHandlerClass = _PolicyHandler
        self.httpd.seen = []
        self.httpd.fail_counts = {}
        self.httpd.lock = threading.Lock()
        self.scheme = "http"
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
            self.scheme = "https"

    @property
    def origin(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def seen(self, marker: str) -> list:
        """The requests whose raw body contains marker, in arrival order."""
        with self.httpd.lock:
            return [r for r in self.httpd.seen if marker.encode() in r["raw"]]

    def calls(self, marker: str) -> int:
        return len(self.seen(marker))


@pytest.fixture(scope="module")
def fake():
    with PolicyFake() as f:
        yield f


# --------------------------------------------------------------------------
# helpers


def closed_port() -> int:
    """A loopback port nothing listens on."""
    return free_port()


class Px:
    """A running server and the ways to call its proxy."""

    def __init__(self, server, fake=None):
        self.server, self.fake = server, fake

    def url(self, upstream: str, path: str = CHAT) -> str:
        return f"{self.server.url}/proxy/{upstream}{path}"

    def post(self, upstream: str, body, headers=None, path: str = CHAT, key: str = KEY) -> httpx.Response:
        h = {"Content-Type": "application/json", "Authorization": "Bearer " + key}
        h.update(headers or {})
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        return httpx.post(self.url(upstream, path), content=data, headers=h, timeout=HTTP_TIMEOUT)

    def oai(self, upstream: str, key: str = KEY, headers=None, **kw) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.url(upstream, "/v1"), api_key=key, max_retries=0,
                             default_headers=headers or {}, **kw)

    def span(self, tid: str, timeout: float = 10) -> dict:
        """The proxy's span in trace tid (waiting for the writer)."""
        def get():
            r = self.server.get(f"/api/v1/traces/{tid}")
            if r.status_code != 200:
                return None
            mine = [s for s in r.json()["spans"] if s["service"] == "lanterna-proxy"]
            assert len(mine) <= 1, json.dumps(mine)[:2000]
            return mine[0] if mine else None
        return poll(get, timeout=timeout, what=f"the proxy span of trace {tid}")

    def rss_kib(self) -> int:
        with open(f"/proc/{self.server.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise AssertionError("no VmRSS line")


def chat(text: str, **kw) -> dict:
    return dict({"model": GPT, "messages": [{"role": "user", "content": text}]}, **kw)


def marker() -> str:
    return "m" + secrets.token_hex(6)


def sse_events(body: bytes) -> list:
    return [e for e in re.split(rb"(?<=\n\n)", body) if e]


def cache_state(r) -> str:
    return r.headers.get("lanterna-cache", "<none>")


def where(s: dict) -> str:
    return json.dumps(s)[:2500]


# --------------------------------------------------------------------------
# the cache


@pytest.fixture(scope="module")
def cpx(module_lanterna, fake):
    """`plain` caches only on request, `cached` every call (--cache-upstream);
    both are the fake."""
    server = module_lanterna(args=["--upstream", f"plain={fake.origin}", "--upstream", f"cached={fake.origin}",
                                   "--cache-upstream", "cached=60"])
    return Px(server, fake)


@pytest.mark.parametrize("opt_in", ["Lanterna-Cache-Enabled", "Helicone-Cache-Enabled", "--cache-upstream"])
def test_cache_miss_then_hit_same_bytes_upstream_called_once(cpx, opt_in):
    m = marker()
    upstream, headers = ("cached", {}) if opt_in == "--cache-upstream" else ("plain", {opt_in: "true"})
    body = chat(f"cache me {m}", temperature=0)
    first = cpx.post(upstream, body, headers)
    second = cpx.post(upstream, body, headers)
    assert first.status_code == second.status_code == 200, first.text
    assert (cache_state(first), cache_state(second)) == ("MISS", "HIT")
    assert second.content == first.content
    assert second.headers["content-type"] == first.headers["content-type"]
    assert cpx.fake.calls(m) == 1, "a cache hit still reached the upstream"
    # Each call is its own span, in its own trace.
    assert first.headers["lanterna-trace-id"] != second.headers["lanterna-trace-id"]

    # The real client reads the hit like any answer.
    raw = cpx.oai(upstream, headers=headers).chat.completions.with_raw_response.create(**body)
    assert cache_state(raw) == "HIT"
    assert raw.parse().choices[0].message.content == expected_reply(body["messages"])
    assert cpx.fake.calls(m) == 1


def test_no_opt_in_is_not_cached(cpx):
    m = marker()
    body = chat(f"do not cache {m}")
    rs = [cpx.post("plain", body), cpx.post("plain", body, {"Lanterna-Cache-Enabled": "false"})]
    assert [r.status_code for r in rs] == [200, 200]
    assert [cache_state(r) for r in rs] == ["OFF", "OFF"]
    assert cpx.fake.calls(m) == 2


def test_stream_hit_replays_the_same_events(cpx):
    m = marker()
    body = chat(f"stream this one from the cache {m}", stream=True)
    on = {"Lanterna-Cache-Enabled": "true"}
    first = cpx.post("plain", body, on)
    second = cpx.post("plain", body, on)
    assert first.status_code == second.status_code == 200
    assert (cache_state(first), cache_state(second)) == ("MISS", "HIT")
    assert second.headers["content-type"].startswith("text/event-stream")
    assert first.content.endswith(b"data: [DONE]\n\n")
    # Event by event, byte for byte; the usage chunk the proxy asked for on
    # the caller's behalf is not in the replay either.
    assert sse_events(second.content) == sse_events(first.content)
    assert second.content == first.content
    assert b'"usage": {' not in second.content
    assert cpx.fake.calls(m) == 1

    # The replay arrives as a stream the real client parses.
    with httpx.stream("POST", cpx.url("plain"), json=body, timeout=HTTP_TIMEOUT,
                      headers=dict(on, Authorization="Bearer " + KEY)) as r:
        assert cache_state(r) == "HIT"
        assert r.headers.get("transfer-encoding") == "chunked"
        streamed = b"".join(r.iter_raw())
    assert streamed == first.content
    chunks = list(cpx.oai("plain", headers=on).chat.completions.create(**body))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == expected_reply(body["messages"])
    assert cpx.fake.calls(m) == 1


def test_cache_key_credential_seed_ignored_keys_and_key_order(cpx):
    on = {"Lanterna-Cache-Enabled": "true"}

    # Another credential is another caller: no sharing of answers.
    m = marker()
    body = chat(f"whose answer {m}")
    assert cache_state(cpx.post("plain", body, on)) == "MISS"
    assert cache_state(cpx.post("plain", body, on, key=OTHER_KEY)) == "MISS"
    assert cache_state(cpx.post("plain", body, on, key=OTHER_KEY)) == "HIT"
    assert cache_state(cpx.post("plain", body, on)) == "HIT"
    assert cpx.fake.calls(m) == 2
    # The same credential in x-api-key / api-key form is fingerprinted too.
    assert cache_state(cpx.post("plain", body, dict(on, **{"api-key": OTHER_KEY}), key=KEY)) == "MISS"

    # A seed keeps several answers apart.
    m = marker()
    body = chat(f"seeded {m}")
    states = [cache_state(cpx.post("plain", body, dict(on, **{"Lanterna-Cache-Seed": s})))
              for s in ("a", "a", "b", "b")]
    states.append(cache_state(cpx.post("plain", body, on)))
    assert states == ["MISS", "HIT", "MISS", "HIT", "MISS"]
    assert cpx.fake.calls(m) == 3

    # Ignored keys: calls differing only in them are the same call.
    m = marker()
    ign = dict(on, **{"Lanterna-Cache-Ignore-Keys": "user"})
    a = cpx.post("plain", chat(f"ignore the user {m}", user="alice"), ign)
    b = cpx.post("plain", chat(f"ignore the user {m}", user="bob"), ign)
    assert (cache_state(a), cache_state(b)) == ("MISS", "HIT")
    assert b.content == a.content
    # ...but without the header the user is part of the call.
    assert cache_state(cpx.post("plain", chat(f"ignore the user {m}", user="carol"), on)) == "MISS"
    assert cpx.fake.calls(m) == 2

    # JSON is compared canonically: key order and spacing do not matter.
    m = marker()
    one = (b'{"model":"gpt-4o-mini","temperature":0.5,"messages":[{"role":"user","content":"order '
           + m.encode() + b'"}]}')
    two = (b'{ "messages" : [ { "content" : "order ' + m.encode() + b'", "role" : "user" } ],\n'
           b'  "temperature" : 0.5, "model" : "gpt-4o-mini" }')
    r1, r2 = cpx.post("plain", one, on), cpx.post("plain", two, on)
    assert (cache_state(r1), cache_state(r2)) == ("MISS", "HIT")
    assert r2.content == r1.content
    # ...but values do.
    three = one.replace(b"0.5", b"0.6")
    assert cache_state(cpx.post("plain", three, on)) == "MISS"
    assert cpx.fake.calls(m) == 2


def lifetimes_after(cpx, cases: dict, wait: float) -> dict:
    """Stores one answer per case (its headers), checks it is a hit, waits,
    and says which are still there."""
    on = {"Lanterna-Cache-Enabled": "true"}
    ms = {name: marker() for name in cases}
    for name, h in cases.items():
        body = chat(f"lifetime {name} {ms[name]}")
        assert cache_state(cpx.post("plain", body, dict(on, **h))) == "MISS", name
        assert cache_state(cpx.post("plain", body, dict(on, **h))) == "HIT", name
    time.sleep(wait)
    return {name: cache_state(cpx.post("plain", chat(f"lifetime {name} {ms[name]}"), dict(on, **h)))
            for name, h in cases.items()}


def test_cache_lifetime_expires(cpx):
    after = lifetimes_after(cpx, {"max-age": {"Cache-Control": "max-age=1"},
                                  "ttl": {"Lanterna-Cache-Ttl": "1"},
                                  "long": {"Lanterna-Cache-Ttl": "60"},
                                  "default": {}}, 1.3)
    assert after == {"max-age": "MISS", "ttl": "MISS", "long": "HIT", "default": "HIT"}


def test_cache_max_age_wins_over_lanterna_ttl(cpx):
    """docs/proxy.md: the request's Cache-Control max-age, else
    Lanterna-Cache-Ttl — whatever order the headers come in."""
    after = lifetimes_after(cpx, {"ttl-after": {"Cache-Control": "max-age=1", "Lanterna-Cache-Ttl": "60"},
                                  "ttl-before": {"Lanterna-Cache-Ttl": "60", "Cache-Control": "max-age=1"}}, 1.3)
    assert after == {"ttl-after": "MISS", "ttl-before": "MISS"}


def test_no_store_is_never_stored(cpx):
    m = marker()
    body = chat(f"never keep this {m}")
    on = {"Lanterna-Cache-Enabled": "true"}
    for _ in range(2):
        r = cpx.post("plain", body, dict(on, **{"Cache-Control": "no-store"}))
        assert r.status_code == 200 and cache_state(r) != "HIT"
    # Nothing was stored by those: the next opted-in call is a miss.
    assert cache_state(cpx.post("plain", body, on)) == "MISS"
    assert cpx.fake.calls(m) == 3
    # The same on an upstream that caches every call.
    m = marker()
    body = chat(f"never keep this either {m}")
    for _ in range(2):
        assert cache_state(cpx.post("cached", body, {"Cache-Control": "no-store"})) != "HIT"
    assert cache_state(cpx.post("cached", body)) == "MISS"
    assert cpx.fake.calls(m) == 3


def test_errors_are_not_cached(cpx):
    on = {"Lanterna-Cache-Enabled": "true"}
    m = marker()
    body = chat(f"fails first {m}")
    h = dict(on, **{"x-policy-fail": f"{m}:1:500"})
    r1 = cpx.post("plain", body, h)
    assert r1.status_code == 500 and r1.content == fail_body(500)
    r2 = cpx.post("plain", body, h)
    assert r2.status_code == 200 and cache_state(r2) == "MISS", "the 500 was served from the cache"
    r3 = cpx.post("plain", body, h)
    assert r3.status_code == 200 and cache_state(r3) == "HIT" and r3.content == r2.content
    assert cpx.fake.calls(m) == 2
    # A client error is not kept either.
    m = marker()
    for _ in range(2):
        r = cpx.post("plain", chat(f"bad request {m}"), dict(on, **{"x-fake-status": "400"}))
        assert r.status_code == 400 and cache_state(r) != "HIT"
    assert cpx.fake.calls(m) == 2


def test_hit_span_costs_nothing_and_records_the_saving(cpx):
    m = marker()
    on = {"Lanterna-Cache-Enabled": "true"}
    body = chat(f"what does a hit save {m}")
    t1, t2 = trace_id(), trace_id()
    r1 = cpx.post("plain", body, dict(on, **{"Lanterna-Trace-Id": t1}))
    r2 = cpx.post("plain", body, dict(on, **{"Lanterna-Trace-Id": t2}))
    assert (cache_state(r1), cache_state(r2)) == ("MISS", "HIT")
    miss, hit = cpx.span(t1), cpx.span(t2)
    assert miss["status"] == "ok" and miss["cost_source"] == "computed" and miss["cost_usd"] > 0, where(miss)
    assert miss["attributes"]["lanterna.proxy.cache"] == "MISS", where(miss)
    assert "lanterna.proxy.cache_saved_usd" not in miss["attributes"], where(miss)
    assert hit["status"] == "ok", where(hit)
    assert hit["cost_usd"] == 0 and hit["cost_source"] == "computed", where(hit)
    a = hit["attributes"]
    assert a["lanterna.proxy.cache"] == "HIT", where(hit)
    assert a["lanterna.proxy.cache_saved_usd"] == pytest.approx(miss["cost_usd"], rel=1e-6), where(hit)
    # The call itself is traced as fully as the miss.
    for k in ("request_model", "response_model", "input_tokens", "output_tokens", "input_messages",
              "output_messages", "finish_reason"):
        assert hit[k] == miss[k], f"{k}: {where(hit)}"
    assert hit["span_id"] == r2.headers["lanterna-request-id"]
    assert a["http.response.status_code"] == 200 and a["lanterna.proxy.upstream_ms"] == 0, where(hit)
    assert hit["ttft_ms"] is None, where(hit)


def test_cache_is_bounded_lru(lanterna, fake):
    """64 KiB of cache and answers of about 10 KiB: the oldest entries go
    first, a recently used one stays."""
    px = Px(lanterna(args=["--upstream", f"up={fake.origin}", "--proxy-cache-size", "64KiB"]), fake)
    on = {"Lanterna-Cache-Enabled": "true", "x-fake-fill": "4:2500", "x-fake-delay-ms": "0"}
    m = marker()
    bodies = [chat(f"big answer {i} {m}", stream=True) for i in range(12)]
    first = px.post("up", bodies[0], on)
    assert cache_state(first) == "MISS" and 10_000 < len(first.content) < 16_000
    assert cache_state(px.post("up", bodies[0], on)) == "HIT"
    for i in range(1, 12):
        assert cache_state(px.post("up", bodies[i], on)) == "MISS", i
        # keep entry 1 in use: the least recently used go first, not the oldest stored
        if i >= 2:
            assert cache_state(px.post("up", bodies[1], on)) == "HIT", f"entry 1 was evicted at {i}"
    assert cache_state(px.post("up", bodies[11], on)) == "HIT"
    assert cache_state(px.post("up", bodies[0], on)) == "MISS", "the cache kept more than its size"
    assert cache_state(px.post("up", bodies[2], on)) == "MISS"


def test_cache_memory_stays_bounded(lanterna, fake):
    """Thirty distinct 800 KB answers through a 4 MiB cache: over 20 MiB
    more if the entries were all kept, next to nothing when the bound holds."""
    # Under AddressSanitizer freed memory sits in its quarantine (256 MiB by
    # default) before being reused, which is not what this test measures.
    env = {"ASAN_OPTIONS": "quarantine_size_mb=1:detect_leaks=1"} if SLOW > 1 else None
    px = Px(lanterna(args=["--upstream", f"up={fake.origin}", "--proxy-cache-size", "4MiB"], env=env), fake)
    h = {"Lanterna-Cache-Enabled": "true", "x-fake-fill": "4:200000", "x-fake-delay-ms": "0",
         "Lanterna-Omit-Request": "true", "Lanterna-Omit-Response": "true"}
    m = marker()

    def call(i):
        r = px.post("up", chat(f"large {i} {m}", stream=True), h)
        assert r.status_code == 200 and len(r.content) > 800_000 and cache_state(r) == "MISS"
    for i in range(10):
        call(i)
    before = px.rss_kib()
    for i in range(10, 40):
        call(i)
    grown = px.rss_kib() - before
    assert grown < 12 * 1024, f"RSS grew by {grown // 1024} MiB over 30 cached answers of 800 KB"
    # the newest are there, the oldest are gone
    assert cache_state(px.post("up", chat(f"large 39 {m}", stream=True), h)) == "HIT"
    assert cache_state(px.post("up", chat(f"large 10 {m}", stream=True), h)) == "MISS"


def test_answers_over_the_capture_size_are_not_cached(lanterna, fake):
    px = Px(lanterna(args=["--upstream", f"up={fake.origin}", "--proxy-capture", "8KiB"]), fake)
    on = {"Lanterna-Cache-Enabled": "true", "x-fake-fill": "4:4000", "x-fake-delay-ms": "0"}
    m = marker()
    body = chat(f"too big to keep {m}", stream=True)
    rs = [px.post("up", body, on) for _ in range(2)]
    assert [cache_state(r) for r in rs] == ["MISS", "MISS"]
    assert rs[0].content == rs[1].content and rs[0].content.endswith(b"data: [DONE]\n\n")
    assert len(rs[0].content) > 16_000, "the caller must get the whole answer all the same"
    assert fake.calls(m) == 2
    # a small one on the same server is kept
    small = chat(f"small enough {m}")
    assert [cache_state(px.post("up", small, {"Lanterna-Cache-Enabled": "true"})) for _ in range(2)] == ["MISS", "HIT"]


def test_cache_off(lanterna, fake):
    px = Px(lanterna(args=["--upstream", f"up={fake.origin}", "--proxy-cache-size", "0"]), fake)
    m = marker()
    rs = [px.post("up", chat(f"no cache at all {m}"), {"Lanterna-Cache-Enabled": "true"}) for _ in range(2)]
    assert [r.status_code for r in rs] == [200, 200] and "HIT" not in [cache_state(r) for r in rs]
    assert fake.calls(m) == 2


# --------------------------------------------------------------------------
# rate limits and budgets


def ratelimit_headers(r) -> tuple:
    h = r.headers
    return (h.get("ratelimit-limit"), h.get("ratelimit-remaining"), h.get("ratelimit-reset"))


def assert_refused(px: Px, r, tid: str, what: str) -> dict:
    """A 429 of Lanterna's own: headers, OpenAI error shape, the error span."""
    assert r.status_code == 429, r.text
    lim, rem, reset = ratelimit_headers(r)
    assert lim is not None and rem == "0" and reset is not None and int(reset) >= 1, dict(r.headers)
    assert r.headers.get("retry-after") and int(r.headers["retry-after"]) >= 1, dict(r.headers)
    err = r.json()["error"]
    assert err["type"] == "rate_limit_error" and err["code"] == "lanterna_rate_limit", r.text
    assert what in err["message"], r.text
    s = px.span(tid)
    assert s["status"] == "error", where(s)
    assert "rate limit" in s["status_message"] and "refused" in s["status_message"], where(s)
    assert s["attributes"]["http.response.status_code"] == 429, where(s)
    assert s["attributes"].get("lanterna.proxy.rate_limited") is True, where(s)
    assert s["cost_usd"] in (None, 0), where(s)
    return s


@pytest.fixture(scope="module")
def lpx(module_lanterna, fake):
    """Rules that each apply only to calls carrying their header: per user,
    per feature, a token budget per team, a dollar budget per project, and a
    2 s window per `win`."""
    args = ["--upstream", f"fake={fake.origin}", "--upstream", f"anthropic=http://127.0.0.1:{closed_port()}",
            "--limit", "scope=user,requests=3/1m",
            "--limit", "scope=property:feature,requests=2/1m",
            "--limit", "scope=property:team,tokens=25/1m",
            "--limit", "scope=property:project,usd=0.000006/1m",
            "--limit", "scope=property:win,requests=2/2s"]
    return Px(module_lanterna(args=args), fake)


def test_requests_per_user(lpx):
    user, m = "user-" + secrets.token_hex(4), marker()
    h = {"Lanterna-User-Id": user}
    for i in range(3):
        r = lpx.post("fake", chat(f"user call {i} {m}"), h)
        assert r.status_code == 200, r.text
        assert ratelimit_headers(r)[:2] == ("3", str(2 - i)), dict(r.headers)
        assert 1 <= int(r.headers["ratelimit-reset"]) <= 60
    tid = trace_id()
    r = lpx.post("fake", chat(f"user call 3 {m}"), dict(h, **{"Lanterna-Trace-Id": tid}))
    s = assert_refused(lpx, r, tid, "requests")
    assert s["user_id"] == user and s["request_model"] == GPT, where(s)
    assert lpx.fake.calls(m) == 3, "a refused call reached the upstream"

    # The real client raises its RateLimitError, with the message.
    with pytest.raises(openai.RateLimitError) as e:
        lpx.oai("fake", headers=h).chat.completions.create(**chat(f"user call 4 {m}"))
    assert e.value.status_code == 429 and "rate limit" in str(e.value)
    assert e.value.response.headers.get("retry-after")

    # Another user, and a call without a user, are not affected.
    other = lpx.post("fake", chat(f"other user {m}"), {"Lanterna-User-Id": user + "-2"})
    assert other.status_code == 200 and ratelimit_headers(other)[:2] == ("3", "2")
    anon = lpx.post("fake", chat(f"no user {m}"))
    assert anon.status_code == 200 and ratelimit_headers(anon) == (None, None, None)


def test_tightest_rule_is_reported(lpx):
    """A call under two rules (user: 3/1m, feature: 2/1m) carries the
    headers of the one closest to its limit and is refused by it."""
    h = {"Lanterna-User-Id": "tight-" + secrets.token_hex(4),
         "Lanterna-Property-Feature": "tight-" + secrets.token_hex(4)}
    r = lpx.post("fake", chat("tight"), h)
    assert r.status_code == 200 and ratelimit_headers(r)[:2] == ("2", "1"), dict(r.headers)
    r = lpx.post("fake", chat("tight"), h)
    assert r.status_code == 200 and ratelimit_headers(r)[:2] == ("2", "0"), dict(r.headers)
    r = lpx.post("fake", chat("tight"), h)
    assert r.status_code == 429 and "property:feature" in r.json()["error"]["message"], r.text
    # the user's own count went up only for the admitted calls: one left
    r = lpx.post("fake", chat("tight"), {"Lanterna-User-Id": h["Lanterna-User-Id"]})
    assert r.status_code == 200 and ratelimit_headers(r)[:2] == ("3", "0"), dict(r.headers)


def test_refusal_in_anthropic_shape(lpx):
    """A refused call to an Anthropic upstream gets Anthropic's error object
    (the upstream is never reached, so here it does not even exist)."""
    user = "claude-user-" + secrets.token_hex(4)
    c = anthropic.Anthropic(base_url=lpx.url("anthropic", ""), api_key="sk-ant-" + secrets.token_hex(8),
                            max_retries=0, default_headers={"Lanterna-User-Id": user})
    kw = dict(model="claude-haiku-4-5", max_tokens=8, messages=[{"role": "user", "content": "hi"}])
    for _ in range(3):  # admitted, then 502: nothing listens there
        with pytest.raises(anthropic.APIStatusError) as e:
            c.messages.create(**kw)
        assert e.value.status_code == 502
    with pytest.raises(anthropic.RateLimitError) as e:
        c.messages.create(**kw)
    body = e.value.response.json()
    assert body["type"] == "error" and body["error"]["type"] == "rate_limit_error", body
    assert "rate limit" in body["error"]["message"]
    assert e.value.response.headers.get("retry-after")


def test_requests_per_feature(lpx):
    feat, m = "feat-" + secrets.token_hex(4), marker()
    h = {"Lanterna-Property-Feature": feat}
    assert [lpx.post("fake", chat(f"f{i} {m}"), h).status_code for i in range(2)] == [200, 200]
    tid = trace_id()
    s = assert_refused(lpx, lpx.post("fake", chat(f"f2 {m}"), dict(h, **{"Lanterna-Trace-Id": tid})), tid,
                       "property:feature")
    assert s["feature"] == feat, where(s)
    # Helicone-Property-Feature is the same property.
    assert lpx.post("fake", chat(f"f3 {m}"), {"Helicone-Property-Feature": feat}).status_code == 429
    assert lpx.post("fake", chat(f"f4 {m}"), {"Lanterna-Property-Feature": feat + "-b"}).status_code == 200
    assert lpx.fake.calls(m) == 3


@pytest.mark.parametrize("budget,stream", [("tokens", False), ("usd", False), ("tokens", True)],
                         ids=["tokens", "usd", "tokens-stream"])
def test_budget_the_crossing_call_completes_the_next_is_refused(lpx, budget, stream):
    header, limit = {"tokens": ("Lanterna-Property-Team", 25), "usd": ("Lanterna-Property-Project", 0.000006)}[budget]
    h = {header: f"{budget}-{secrets.token_hex(4)}"}
    spent = []
    for i in range(10):
        tid = trace_id()
        r = lpx.post("fake", chat(f"hi {i}", stream=stream), dict(h, **{"Lanterna-Trace-Id": tid}))
        if r.status_code == 429:
            assert_refused(lpx, r, tid, budget)
            break
        assert r.status_code == 200, r.text
        s = lpx.span(tid)
        spent.append(s["total_tokens"] if budget == "tokens" else s["cost_usd"])
    else:
        raise AssertionError(f"never refused; spent {spent}")
    assert len(spent) >= 2, spent
    # Every call started under the budget; the last one took the total over it.
    assert sum(spent[:-1]) < limit <= sum(spent), spent
    # It stays refused.
    assert lpx.post("fake", chat("hi again", stream=stream), h).status_code == 429


def test_window_slides(lpx):
    """requests=2/2s: the third call is refused; calls are admitted again
    once the window has moved on (the previous window counts in proportion
    to its overlap, so within one and a half to two windows)."""
    h = {"Lanterna-Property-Win": "slide-" + secrets.token_hex(4)}
    t0 = time.monotonic()
    assert [lpx.post("fake", chat("w"), h).status_code for _ in range(2)] == [200, 200]
    assert lpx.post("fake", chat("w"), h).status_code == 429
    time.sleep(0.5)
    assert lpx.post("fake", chat("w"), h).status_code == 429
    r = poll(lambda: (lambda x: x if x.status_code == 200 else None)(lpx.post("fake", chat("w"), h)),
             timeout=5, interval=0.2, what="a call admitted again")
    took = time.monotonic() - t0
    assert 2.0 <= took <= 4.5 * SLOW, f"admitted again after {took:.2f} s"
    assert r.headers.get("ratelimit-limit") == "2"


def test_retry_after_is_long_enough(lpx):
    """A caller that waits the Retry-After it was given is admitted."""
    h = {"Lanterna-Property-Win": "honour-" + secrets.token_hex(4)}
    assert [lpx.post("fake", chat("w"), h).status_code for _ in range(2)] == [200, 200]
    r = lpx.post("fake", chat("w"), h)
    assert r.status_code == 429
    wait = int(r.headers["retry-after"])
    time.sleep(wait + 0.05)
    again = lpx.post("fake", chat("w"), h)
    assert again.status_code == 200, \
        f"refused again after waiting Retry-After: {wait} s: {again.status_code} {dict(again.headers)}"


def test_limit_per_key(lanterna, fake):
    px = Px(lanterna(args=["--upstream", f"fake={fake.origin}", "--limit", "scope=key,requests=2/1m"]), fake)
    m = marker()
    for key in (KEY, OTHER_KEY):
        assert [px.post("fake", chat(f"k {m}"), key=key).status_code for _ in range(2)] == [200, 200]
    tid = trace_id()
    assert_refused(px, px.post("fake", chat(f"k {m}"), {"Lanterna-Trace-Id": tid}, key=KEY), tid, "scope=key")
    with pytest.raises(openai.RateLimitError):
        px.oai("fake", key=OTHER_KEY).chat.completions.create(**chat(f"k {m}"))
    # a third key starts from zero, whatever its user
    third = "sk-proj-" + secrets.token_hex(20)
    r = px.post("fake", chat(f"k {m}"), {"Lanterna-User-Id": "someone"}, key=third)
    assert r.status_code == 200 and ratelimit_headers(r)[:2] == ("2", "1")
    assert fake.calls(m) == 5


def test_limit_global(lanterna, fake):
    px = Px(lanterna(args=["--upstream", f"fake={fake.origin}", "--limit", "scope=global,requests=3/1m"]), fake)
    m = marker()
    codes = [px.post("fake", chat(f"g {m}"), {"Lanterna-User-Id": f"u{i}"}, key=f"sk-{i}").status_code
             for i in range(3)]
    assert codes == [200, 200, 200]
    tid = trace_id()
    assert_refused(px, px.post("fake", chat(f"g {m}"), {"Lanterna-Trace-Id": tid}, key="sk-new"), tid, "global")
    assert fake.calls(m) == 3


@pytest.mark.parametrize("spec,must", [
    ("scope=user", "needs a scope"),
    ("requests=5/1m", "needs a scope"),
    ("scope=planet,requests=1/1m", "planet"),
    ("scope=property:,requests=1/1m", "property:"),
    ("scope=user,requests=abc/1m", "requests=abc/1m"),
    ("scope=user,requests=5/1fortnight", "1fortnight"),
    ("scope=user,requests=0/1m", "requests=0/1m"),
    ("scope=user,requests=-3/1m", "requests=-3/1m"),
    ("scope=user,requests=5", "requests=5"),
    ("scope=user,dollars=5/1d", "dollars"),
    ("scope=user,requests", "requests"),
])
def test_bad_limit_spec_fails_startup(tmp_path, spec, must):
    p = run_cli("serve", "--listen", f"127.0.0.1:{free_port()}", "--data", str(tmp_path / "d"), "--limit", spec,
                timeout=10)
    out = p.stdout + p.stderr
    assert p.returncode != 0, f"--limit {spec!r} was accepted:\n{out}"
    assert "--limit" in out and must in out, out


def test_bad_limit_in_environment_fails_startup(tmp_path):
    p = run_cli("serve", "--listen", f"127.0.0.1:{free_port()}", "--data", str(tmp_path / "d"), timeout=10,
                env={"LANTERNA_LIMIT": "scope=user,requests=60/1m;scope=nobody,requests=1/1m"})
    out = p.stdout + p.stderr
    assert p.returncode != 0 and "nobody" in out, out


@pytest.mark.parametrize("args,must", [
    (["--fallback", "nowhere=openai"], "--fallback"),
    (["--fallback", "openai=openai"], "--fallback"),
    (["--cache-upstream", "nowhere=60"], "--cache-upstream"),
    (["--cache-upstream", "openai=0"], "--cache-upstream"),
    (["--cache-upstream", "openai=60", "--proxy-cache-size", "0"], "--cache-upstream"),
    (["--proxy-retries", "11"], "--proxy-retries"),
    (["--proxy-first-byte-timeout", "soon"], "--proxy-first-byte-timeout"),
    (["--upstream-ca", "/nonexistent/ca.pem"], "--upstream-ca"),
])
def test_bad_policy_flags_fail_startup(tmp_path, args, must):
    p = run_cli("serve", "--listen", f"127.0.0.1:{free_port()}", "--data", str(tmp_path / "d"), *args, timeout=10)
    out = p.stdout + p.stderr
    assert p.returncode != 0, f"{args} accepted:\n{out}"
    assert must in out, out


# --------------------------------------------------------------------------
# retries and fallbacks


@pytest.fixture(scope="module")
def rpx(module_lanterna, fake):
    dead = closed_port()
    args = ["--proxy-retries", "2",
            "--upstream", f"fake={fake.origin}",
            "--upstream", f"bad={fake.origin}/always503", "--upstream", f"good={fake.origin}",
            "--fallback", "bad=good:gpt-4o-mini",
            "--upstream", f"dead=http://127.0.0.1:{dead}", "--fallback", "dead=good",
            "--upstream", f"gone=http://127.0.0.1:{dead}"]
    return Px(module_lanterna(args=args), fake)


@pytest.fixture(scope="module")
def npx(module_lanterna, fake):
    """No retries (the default)."""
    dead = closed_port()
    return Px(module_lanterna(args=["--upstream", f"fake={fake.origin}", "--upstream", f"gone=http://127.0.0.1:{dead}",
                                    "--upstream", f"anthropic=http://127.0.0.1:{dead}"]), fake)


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_retries_until_success(rpx, stream):
    m, tid = marker(), trace_id()
    body = chat(f"flaky {m}", stream=stream)
    r = rpx.post("fake", body, {"x-policy-fail": f"{m}:2:503", "Lanterna-Trace-Id": tid})
    assert r.status_code == 200, r.text
    if stream:
        assert r.content.endswith(b"data: [DONE]\n\n") and fail_body(503) not in r.content
    else:
        assert r.json()["choices"][0]["message"]["content"] == expected_reply(body["messages"])
    assert rpx.fake.calls(m) == 3
    s = rpx.span(tid)
    assert s["status"] == "ok" and s["attributes"].get("lanterna.proxy.retries") == 2, where(s)
    assert "lanterna.proxy.fallback" not in s["attributes"], where(s)
    assert s["output_tokens"] == count_tokens(expected_reply(body["messages"])), where(s)


def test_backoff_starts_at_250ms_and_doubles(rpx):
    m = marker()
    r = rpx.post("fake", chat(f"back off {m}"), {"x-policy-fail": f"{m}:2:503"})
    assert r.status_code == 200
    seen = rpx.fake.seen(m)
    assert len(seen) == 3
    gaps = [b["t"] - a["t"] for a, b in zip(seen, seen[1:])]
    assert 0.2 <= gaps[0] < 0.4 * SLOW and 0.45 <= gaps[1] < 0.7 * SLOW, \
        f"waits between attempts: {[round(g, 3) for g in gaps]} s, want about [0.25, 0.5]"


def test_retry_honours_retry_after(rpx):
    m, tid = marker(), trace_id()
    t = time.monotonic()
    raw = rpx.oai("fake", headers={"x-policy-fail": f"{m}:1:429:1", "Lanterna-Trace-Id": tid}) \
        .chat.completions.with_raw_response.create(**chat(f"slow down {m}"))
    took = time.monotonic() - t
    assert raw.parse().choices[0].message.content == f"Echo: slow down {m}"
    assert took >= 0.95, f"retried after {took:.2f} s despite Retry-After: 1"
    assert took < 3 * SLOW
    assert rpx.fake.calls(m) == 2
    assert rpx.span(tid)["attributes"].get("lanterna.proxy.retries") == 1


@pytest.mark.parametrize("waiting", ["backoff", "first-byte"])
def test_client_gone_before_the_answer_started(rpx, waiting):
    """The caller hangs up while the proxy waits — out the upstream's
    Retry-After: 1 before a retry, or for a slow upstream's first byte. The
    call ends then: no retry for nobody, and its span says the client left."""
    m, tid = marker(), trace_id()
    control = f"x-policy-fail: {m}:1:429:1" if waiting == "backoff" else "x-policy-header-delay-ms: 2500"
    data = json.dumps(chat(f"leaving early {m}")).encode()
    head = (f"POST /proxy/fake{CHAT} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {KEY}\r\n{control}\r\nLanterna-Trace-Id: {tid}\r\n"
            f"Content-Length: {len(data)}\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", rpx.server.port), timeout=HTTP_TIMEOUT) as sock:
        sock.sendall(head + data)
        poll(lambda: rpx.fake.calls(m) == 1, timeout=5, interval=0.02, what="the first attempt")
        time.sleep(0.2)
    gone = time.monotonic()
    time.sleep(1.2)
    assert rpx.fake.calls(m) == 1, "retried for a caller that was gone"
    # (the slow upstream would answer only 2.3 s after the client left)
    s = rpx.span(tid, timeout=0.5)
    assert s["status"] == "error" and "client" in (s["status_message"] or ""), \
        f"span {time.monotonic() - gone:.1f} s after the client left: {where(s)}"
    assert rpx.post("fake", chat("still serving")).status_code == 200


def test_retries_exhausted_pass_the_last_answer_on(rpx):
    m, tid = marker(), trace_id()
    r = rpx.post("fake", chat(f"always failing {m}"), {"x-policy-fail": f"{m}:9:503", "Lanterna-Trace-Id": tid})
    assert r.status_code == 503 and r.content == fail_body(503)
    assert rpx.fake.calls(m) == 3
    s = rpx.span(tid)
    assert s["status"] == "error" and "503" in s["status_message"], where(s)
    assert s["attributes"].get("lanterna.proxy.retries") == 2, where(s)


def test_client_errors_are_not_retried(rpx):
    m = marker()
    r = rpx.post("fake", chat(f"bad request {m}"), {"x-policy-fail": f"{m}:1:400"})
    assert r.status_code == 400 and r.content == fail_body(400)
    assert rpx.fake.calls(m) == 1


def test_without_retries_the_error_passes_verbatim(npx):
    m, tid = marker(), trace_id()
    r = npx.post("fake", chat(f"one shot {m}"), {"x-policy-fail": f"{m}:1:503", "Lanterna-Trace-Id": tid})
    assert r.status_code == 503 and r.content == fail_body(503)
    assert r.headers["content-type"] == "application/json"
    assert npx.fake.calls(m) == 1
    s = npx.span(tid)
    assert s["status"] == "error" and "503" in s["status_message"], where(s)
    assert "lanterna.proxy.retries" not in s["attributes"], where(s)
    with pytest.raises(openai.InternalServerError) as e:
        npx.oai("fake", headers={"x-policy-fail": f"{m}-again:1:503"}).chat.completions.create(**chat(f"again {m}"))
    assert e.value.status_code == 503 and e.value.response.content == fail_body(503)


def test_fallback_to_another_upstream_and_model(rpx):
    m, tid = marker(), trace_id()
    raw = rpx.oai("bad", headers={"Lanterna-Trace-Id": tid}).chat.completions.with_raw_response.create(
        model="gpt-4o", messages=[{"role": "user", "content": f"fall back {m}"}])
    res = raw.parse()
    assert res.choices[0].message.content == f"Echo: fall back {m}"
    assert res.model == "gpt-4o-mini-2024-07-18"
    seen = rpx.fake.seen(m)
    paths = [x["path"] for x in seen]
    # the bad upstream three times (retries first), then the fallback once
    assert paths == ["/always503/v1/chat/completions"] * 3 + ["/v1/chat/completions"], paths
    models = [json.loads(x["raw"])["model"] for x in seen]
    assert models == ["gpt-4o"] * 3 + ["gpt-4o-mini"], models
    # the rest of the request is the caller's, untouched
    assert json.loads(seen[-1]["raw"])["messages"] == [{"role": "user", "content": f"fall back {m}"}]
    assert {k.lower(): v for k, v in seen[-1]["headers"].items()}.get("authorization") == "Bearer " + KEY
    s = rpx.span(tid)
    assert s["status"] == "ok" and s["attributes"].get("lanterna.proxy.fallback") is True, where(s)
    assert s["response_model"] == "gpt-4o-mini-2024-07-18", where(s)


def test_fallback_span_keeps_the_retries(rpx):
    """Retried twice on `bad`, then sent to `good`: the span says both."""
    m, tid = marker(), trace_id()
    r = rpx.post("bad", chat(f"retried then fell back {m}"), {"Lanterna-Trace-Id": tid})
    assert r.status_code == 200 and rpx.fake.calls(m) == 4
    a = rpx.span(tid)["attributes"]
    assert a.get("lanterna.proxy.fallback") is True, a
    assert a.get("lanterna.proxy.retries") == 2, f"the two retries on the first upstream are not recorded: {a}"


def test_retry_waits_are_not_counted_as_proxy_overhead(rpx):
    """Lanterna-Overhead-Ms is the time spent in Lanterna before the request
    left for the upstream, not the failed attempts and the backoff."""
    m, tid = marker(), trace_id()
    t = time.monotonic()
    r = rpx.post("fake", chat(f"overhead {m}"), {"x-policy-fail": f"{m}:2:503", "Lanterna-Trace-Id": tid})
    took = time.monotonic() - t
    assert r.status_code == 200 and took >= 0.7
    a = rpx.span(tid)["attributes"]
    overhead = a["lanterna.proxy.overhead_ms"]
    assert overhead < 200 * SLOW, f"overhead {overhead} ms of a {took:.2f} s call"
    assert float(r.headers["lanterna-overhead-ms"]) < 200 * SLOW, r.headers["lanterna-overhead-ms"]


def test_fallback_from_an_unreachable_upstream(rpx):
    m, tid = marker(), trace_id()
    body = chat(f"from the dead {m}", stream=True)
    r = rpx.post("dead", body, {"Lanterna-Trace-Id": tid})
    assert r.status_code == 200 and r.content.endswith(b"data: [DONE]\n\n"), r.text[:500]
    seen = rpx.fake.seen(m)
    assert len(seen) == 1 and json.loads(seen[0]["raw"])["model"] == GPT  # no model given: kept
    s = rpx.span(tid)
    assert s["status"] == "ok" and s["attributes"].get("lanterna.proxy.fallback") is True, where(s)


@pytest.mark.parametrize("which", ["retries", "no-retries"])
def test_unreachable_upstream_is_502_openai_shaped(rpx, npx, which):
    px = rpx if which == "retries" else npx
    tid = trace_id()
    t = time.monotonic()
    r = px.post("gone", chat("anyone home?"), {"Lanterna-Trace-Id": tid})
    took = time.monotonic() - t
    assert r.status_code == 502, r.text
    assert r.headers["content-type"].startswith("application/json")
    err = r.json()["error"]
    assert set(err) >= {"message", "type", "code"}, err
    assert err["code"] == "lanterna_upstream_unreachable" and "gone" in err["message"], err
    s = px.span(tid)
    assert s["status"] == "error" and s["status_message"], where(s)
    assert s["attributes"]["lanterna.proxy.upstream"] == "gone", where(s)
    assert s["input_messages"] == [{"role": "user", "content": "anyone home?"}], where(s)
    if which == "retries":
        # 250 ms, then 500 ms between the three attempts
        assert s["attributes"].get("lanterna.proxy.retries") == 2, where(s)
        assert took >= 0.7, took
    else:
        with pytest.raises(openai.InternalServerError) as e:
            px.oai("gone").chat.completions.create(**chat("x"))
        assert e.value.status_code == 502


@pytest.mark.parametrize("status", [429, 502, 504])
def test_replies_of_lanterna_own_name_their_span(request, status):
    """docs/proxy.md: every proxied response carries Lanterna-Request-Id (the
    span id) and Lanterna-Trace-Id — the refusals and failures Lanterna
    answers itself too, since each is traced."""
    tid = trace_id()
    if status == 429:
        px, upstream, h = request.getfixturevalue("lpx"), "fake", {"Lanterna-User-Id": "ids-" + secrets.token_hex(4)}
        for _ in range(3):
            assert px.post(upstream, chat("ids"), h).status_code == 200
    elif status == 502:
        px, upstream, h = request.getfixturevalue("npx"), "gone", {}
    else:
        px, upstream, h = request.getfixturevalue("tpx"), "fake", {"x-policy-header-delay-ms": "3000"}
    r = px.post(upstream, chat("ids"), dict(h, **{"Lanterna-Trace-Id": tid}))
    assert r.status_code == status, r.text
    s = px.span(tid)
    assert r.headers.get("lanterna-trace-id") == tid, dict(r.headers)
    assert r.headers.get("lanterna-request-id") == s["span_id"], dict(r.headers)


def test_unreachable_anthropic_upstream_is_502_anthropic_shaped(npx):
    tid = trace_id()
    c = anthropic.Anthropic(base_url=npx.url("anthropic", ""), api_key="sk-ant-" + secrets.token_hex(8),
                            max_retries=0, default_headers={"Lanterna-Trace-Id": tid})
    with pytest.raises(anthropic.APIStatusError) as e:
        c.messages.create(model="claude-haiku-4-5", max_tokens=8, messages=[{"role": "user", "content": "hello?"}])
    assert e.value.status_code == 502
    body = e.value.response.json()
    assert body["type"] == "error" and body["error"]["type"] == "api_error", body
    assert "anthropic" in body["error"]["message"], body
    assert set(body) == {"type", "error"} and set(body["error"]) == {"type", "message"}, body
    s = npx.span(tid)
    assert s["status"] == "error" and s["provider"] == "anthropic", where(s)


def test_stream_is_not_retried_once_bytes_were_sent(rpx):
    """Two events, then the upstream connection drops: the caller keeps what
    it got, the stream is not restarted, and the span is an error."""
    m, tid = marker(), trace_id()
    body = chat(f"cut short after two {m}", stream=True)
    got = b""
    with httpx.stream("POST", rpx.url("fake"), json=body, timeout=HTTP_TIMEOUT,
                      headers={"Authorization": "Bearer " + KEY, "x-fake-cut-after": "2",
                               "Lanterna-Trace-Id": tid}) as r:
        assert r.status_code == 200
        try:
            for piece in r.iter_raw():
                got += piece
        except httpx.HTTPError:
            pass  # an abrupt end is an acceptable way to say the stream broke
    events = sse_events(got)
    assert len(events) == 2 and all(e.startswith(b"data: {") for e in events), got
    assert b"[DONE]" not in got
    assert rpx.fake.calls(m) == 1, "the stream was retried"
    s = rpx.span(tid)
    assert s["status"] == "error", where(s)
    assert "lanterna.proxy.retries" not in s["attributes"], where(s)
    # the real client sees a short stream or an error, never a second answer
    text = ""
    try:
        for c in rpx.oai("fake", headers={"x-fake-cut-after": "3"}).chat.completions.create(**body):
            text += "".join(ch.delta.content or "" for ch in c.choices)
    except (openai.APIError, httpx.HTTPError):
        pass
    assert expected_reply(body["messages"]).startswith(text) and text != expected_reply(body["messages"])


# --------------------------------------------------------------------------
# timeouts


@pytest.fixture(scope="module")
def tpx(module_lanterna, fake):
    return Px(module_lanterna(args=["--upstream", f"fake={fake.origin}", "--proxy-first-byte-timeout", "1s",
                                    "--proxy-idle-timeout", "1s"]), fake)


def test_first_byte_timeout_is_504(tpx):
    m, tid = marker(), trace_id()
    t = time.monotonic()
    r = tpx.post("fake", chat(f"take your time {m}"),
                 {"x-policy-header-delay-ms": "3000", "Lanterna-Trace-Id": tid})
    took = time.monotonic() - t
    assert r.status_code == 504, r.text
    assert 0.9 <= took <= 2.0 * SLOW, f"answered after {took:.2f} s"
    err = r.json()["error"]
    assert err["code"] == "lanterna_upstream_timeout" and "timed out" in err["message"], err
    s = tpx.span(tid)
    assert s["status"] == "error" and "timed out" in s["status_message"], where(s)
    with pytest.raises(openai.InternalServerError) as e:
        tpx.oai("fake", headers={"x-policy-header-delay-ms": "3000"}).chat.completions.create(**chat(f"x {m}"))
    assert e.value.status_code == 504
    # a quick answer on the same server is fine
    assert tpx.post("fake", chat("quick")).status_code == 200


def test_idle_timeout_ends_a_stalled_stream(tpx):
    m, tid = marker(), trace_id()
    body = chat(f"stall in the middle of this {m}", stream=True)
    got, times = b"", []
    t = time.monotonic()
    with httpx.stream("POST", tpx.url("fake"), json=body, timeout=HTTP_TIMEOUT,
                      headers={"Authorization": "Bearer " + KEY, "x-policy-stall": "3:3000",
                               "Lanterna-Trace-Id": tid}) as r:
        assert r.status_code == 200
        try:
            for piece in r.iter_raw():
                got += piece
                times.append(time.monotonic() - t)
        except httpx.HTTPError:
            pass
    ended = time.monotonic() - t
    events = sse_events(got)
    assert len(events) == 3 and b"[DONE]" not in got, got
    # it ended about a second after the last event, not when the upstream went on
    assert 0.8 <= ended - times[-1] <= 2.0 * SLOW, f"last event at {times[-1]:.2f} s, end at {ended:.2f} s"
    s = tpx.span(tid)
    assert s["status"] == "error" and "timed out" in s["status_message"], where(s)
    # A stream that keeps talking is not cut however long it takes.
    r = tpx.post("fake", chat("steady", stream=True), {"x-fake-delay-ms": "300"})
    assert r.status_code == 200 and r.content.endswith(b"data: [DONE]\n\n")


# --------------------------------------------------------------------------
# HTTPS upstreams with a private CA


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A CA and a server certificate for 127.0.0.1 (IP SAN), as PEM files."""
    d = tmp_path_factory.mktemp("pki")
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Lanterna test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    (d / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (d / "server.pem").write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    (d / "server.key").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                     serialization.PrivateFormat.PKCS8,
                                                     serialization.NoEncryption()))
    return d


@pytest.fixture(scope="module")
def tls_fake(pki):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki / "server.pem", pki / "server.key")
    with PolicyFake(tls=ctx) as f:
        yield f


def test_https_upstream_with_private_ca(lanterna, tls_fake, pki):
    # the fake really is TLS, with our CA
    direct = httpx.post(tls_fake.origin + CHAT, json=chat("direct"), headers={"Authorization": "Bearer " + KEY},
                        verify=ssl.create_default_context(cafile=str(pki / "ca.pem")), timeout=HTTP_TIMEOUT)
    assert direct.status_code == 200
    px = Px(lanterna(args=["--upstream", f"secure={tls_fake.origin}", "--upstream-ca", str(pki / "ca.pem")]),
            tls_fake)
    m, tid = marker(), trace_id()
    raw = px.oai("secure", headers={"Lanterna-Trace-Id": tid}).chat.completions.with_raw_response.create(
        **chat(f"over tls {m}"))
    assert raw.parse().choices[0].message.content == f"Echo: over tls {m}"
    s = px.span(tid)
    assert s["status"] == "ok" and s["cost_source"] == "computed", where(s)
    chunks = list(px.oai("secure").chat.completions.create(**chat(f"tls stream {m}", stream=True)))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == f"Echo: tls stream {m}"
    assert tls_fake.calls(m) == 2


def test_https_upstream_unknown_ca_is_refused(lanterna, tls_fake):
    px = Px(lanterna(args=["--upstream", f"secure={tls_fake.origin}"]), tls_fake)
    m, tid = marker(), trace_id()
    r = px.post("secure", chat(f"should not pass {m}"), {"Lanterna-Trace-Id": tid})
    assert r.status_code == 502, r.text
    err = r.json()["error"]
    assert "certificate" in err["message"].lower() and "secure" in err["message"], err
    assert tls_fake.calls(m) == 0, "a request went to an upstream whose certificate did not verify"
    s = px.span(tid)
    assert s["status"] == "error" and "certificate" in s["status_message"].lower(), where(s)
    with pytest.raises(openai.InternalServerError) as e:
        px.oai("secure").chat.completions.create(**chat(f"x {m}"))
    assert e.value.status_code == 502
