"""The Python SDK (`sdk/python`, package `lanterna`) against the real server:
every field it records must come back from GET /api/v1/traces/{id} mapped
into the canonical span, nesting must follow the call structure across
async tasks, threads and generators, and nothing it does may hurt the
application (server down, exit, fork, bad hooks)."""

from __future__ import annotations

import asyncio
import contextvars
import gzip
import json
import os
import threading
import tracemalloc
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ltlib import bearer, cli_ok, create_key, free_port, poll
from sdk_util import by_name, lanterna, run_script, sdk, sdk_init, wait_trace  # noqa: F401

observe = lanterna.observe


# --------------------------------------------------------------------------
# nesting and every field, both wire formats


@pytest.mark.parametrize("protocol", ["protobuf", "json"])
def test_nested_spans_roundtrip_every_field(server, sdk, protocol):
    sdk_init(server, protocol=protocol, environment="staging", release="2.1.0", service_name="rag-svc")

    @observe(kind="retriever")
    def retrieve(query, k=2):
        return [{"id": "doc-1", "content": "Paris is the capital of France.", "score": 0.92,
                 "metadata": {"source": "wiki"}},
                {"id": "doc-2", "content": "France is in Europe.", "score": 0.41}]

    @observe(name="tool:lookup", kind="tool")
    def lookup(city):
        return {"city": city, "population": 2_100_000}

    @observe
    def answer(question, *, user):
        lanterna.update_current_trace(user_id=user, session_id="sess-9", tags=["rag", "beta"],
                                      metadata={"feature": "qa", "tier": "pro"})
        docs = retrieve(question)
        lookup("Paris")
        with lanterna.generation("llm call", model="gpt-4o-mini", provider="openai",
                                 input=[{"role": "system", "content": "Be brief."},
                                        {"role": "user", "content": question}],
                                 parameters={"temperature": 0.1}) as g:
            g.update(output="Paris.", usage={"input_tokens": 31, "output_tokens": 2, "cache_read_tokens": 4},
                     finish_reason="stop", ttft=0.25, response_model="gpt-4o-mini-2024-07-18")
        with lanterna.span("post-process", metadata={"step": 3}) as s:
            s.update(input="Paris.", output="PARIS")
        return {"answer": "Paris", "sources": [d["id"] for d in docs]}

    with lanterna.span("request") as root:
        out = answer("What is the capital of France?", user="alice")
        tid = lanterna.get_current_trace_id()
        assert tid == root.trace_id and lanterna.get_current_span_id() == root.span_id
    assert out == {"answer": "Paris", "sources": ["doc-1", "doc-2"]}
    assert lanterna.get_current_trace_id() is None
    assert lanterna.flush(10)

    t = wait_trace(server, tid, 6)
    s = by_name(t)
    assert set(s) == {"request", "answer", "retrieve", "tool:lookup", "llm call", "post-process"}
    # Tree: request > answer > (retrieve, lookup, llm call, post-process)
    assert s["request"]["parent_span_id"] is None and s["request"]["depth"] == 0
    assert s["answer"]["parent_span_id"] == s["request"]["span_id"]
    for child in ("retrieve", "tool:lookup", "llm call", "post-process"):
        assert s[child]["parent_span_id"] == s["answer"]["span_id"], child
        assert s[child]["depth"] == 2
    # Trace row: root carries the trace-level fields set from a child span.
    row = t["trace"]
    assert row["user_id"] == "alice" and row["session_id"] == "sess-9"
    assert sorted(row["tags"]) == ["beta", "rag"]
    assert row["service"] == "rag-svc" and row["environment"] == "staging"
    assert row["span_count"] == 6 and row["input_tokens"] == 31 and row["output_tokens"] == 2
    # Kinds
    assert [s[n]["kind"] for n in ("request", "answer", "retrieve", "tool:lookup", "llm call")] == \
        ["CHAIN", "CHAIN", "RETRIEVER", "TOOL", "LLM"]
    # Input / output of a decorated function
    assert json.loads(s["answer"]["input"]) == {"question": "What is the capital of France?", "user": "alice"}
    assert json.loads(s["answer"]["output"]) == {"answer": "Paris", "sources": ["doc-1", "doc-2"]}
    assert json.loads(s["tool:lookup"]["output"]) == {"city": "Paris", "population": 2100000}
    assert s["post-process"]["input"] == "Paris." and s["post-process"]["output"] == "PARIS"
    # Metadata: the span's own over the trace's
    assert s["answer"]["metadata"] == {"feature": "qa", "tier": "pro"}
    assert s["answer"]["feature"] == "qa"
    assert s["post-process"]["metadata"] == {"feature": "qa", "tier": "pro", "step": 3}
    for name in s:
        assert s[name]["session_id"] == "sess-9" and s[name]["user_id"] == "alice", name
        assert s[name]["release"] == "2.1.0" and s[name]["environment"] == "staging"
        assert s[name]["scope"] == "lanterna"
    # Retrieved documents
    docs = s["retrieve"]["documents"]
    assert [d["id"] for d in docs] == ["doc-1", "doc-2"]
    assert docs[0]["content"] == "Paris is the capital of France." and docs[0]["score"] == pytest.approx(0.92)
    assert docs[0]["metadata"] == {"source": "wiki"}
    assert json.loads(s["retrieve"]["input"]) == {"query": "What is the capital of France?"}
    # The generation
    g = s["llm call"]
    assert g["request_model"] == "gpt-4o-mini" and g["response_model"] == "gpt-4o-mini-2024-07-18"
    assert g["provider"] == "openai" and g["operation"] == "chat" and g["otel_kind"] == 3
    assert (g["input_tokens"], g["output_tokens"], g["cache_read_tokens"]) == (31, 2, 4)
    assert g["total_tokens"] == 33 and g["cost_source"] == "computed" and g["cost_usd"] > 0
    assert g["ttft_ms"] == pytest.approx(250.0) and g["finish_reason"] == "stop"
    assert g["input_messages"] == [{"role": "system", "content": "Be brief."},
                                   {"role": "user", "content": "What is the capital of France?"}]
    assert g["output_messages"] == [{"role": "assistant", "content": "Paris."}]
    assert g["attributes"]["gen_ai.request.temperature"] == pytest.approx(0.1)
    assert json.loads(g["attributes"]["llm.invocation_parameters"]) == {"temperature": 0.1}
    assert g["resource"]["telemetry.sdk.name"] == "lanterna"
    st = lanterna.stats()
    assert st["exported_spans"] == 6 and st["failed_spans"] == 0 and st["dropped_spans"] == 0


def test_manual_spans_tool_calls_and_events(server, sdk):
    sdk_init(server)
    sp = lanterna.start_span("manual", kind="agent", input={"goal": "weather"})
    g = lanterna.generation(model="gpt-4o", parent=sp,
                            input=[{"role": "user", "content": "Weather in Paris?"}])
    g.update(output={"role": "assistant", "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}]},
        usage={"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19}, finish_reason="tool_calls")
    g.end()
    tool = lanterna.start_span("get_weather", kind="tool", parent=sp, input={"city": "Paris"})
    tool.add_event("cache miss", {"key": "paris"})
    tool.update(output="18C")
    tool.end()
    sp.update(output="It is 18C in Paris.")
    sp.end()
    sp.update(output="ignored after end")
    lanterna.flush()
    t = wait_trace(server, sp.trace_id, 3)
    s = by_name(t)
    assert s["manual"]["kind"] == "AGENT" and s["manual"]["output"] == "It is 18C in Paris."
    assert s["chat gpt-4o"]["parent_span_id"] == sp.span_id and s["get_weather"]["parent_span_id"] == sp.span_id
    assert s["chat gpt-4o"]["output_messages"] == [{"role": "assistant", "tool_calls": [
        {"id": "call_1", "name": "get_weather", "arguments": '{"city":"Paris"}'}]}]
    assert s["chat gpt-4o"]["total_tokens"] == 19 and s["chat gpt-4o"]["finish_reason"] == "tool_calls"
    assert [e["name"] for e in s["get_weather"]["events"]] == ["cache miss"]
    assert s["get_weather"]["events"][0]["attributes"] == {"key": "paris"}


# --------------------------------------------------------------------------
# async, threads, generators


def test_async_tasks_nest_under_their_caller(server, sdk):
    sdk_init(server)

    @observe
    async def leaf(i):
        await asyncio.sleep(0.01 * (3 - i))
        return i * 10

    @observe
    async def branch(i):
        return await leaf(i) + 1

    @observe
    async def root():
        # gather runs the branches as concurrent tasks; each keeps its own parent.
        return await asyncio.gather(*(branch(i) for i in range(3)))

    async def main():
        r = await root()
        return r, lanterna.get_current_trace_id()

    results = []

    @observe
    async def outer():
        results.append(lanterna.get_current_trace_id())
        return await root()

    r, none_tid = asyncio.run(main())
    assert r == [1, 11, 21] and none_tid is None
    asyncio.run(outer())
    lanterna.flush()
    t = wait_trace(server, results[0], 8)
    spans = t["spans"]
    ids = {s["span_id"]: s for s in spans}
    roots = [s for s in spans if s["name"] == "root"]
    assert len(roots) == 1 and ids[roots[0]["parent_span_id"]]["name"] == "outer"
    branches = [s for s in spans if s["name"] == "branch"]
    leaves = [s for s in spans if s["name"] == "leaf"]
    assert len(branches) == 3 and len(leaves) == 3
    assert all(b["parent_span_id"] == roots[0]["span_id"] for b in branches)
    # Each leaf's parent is the branch with the same argument.
    for lf in leaves:
        parent = ids[lf["parent_span_id"]]
        assert parent["name"] == "branch" and json.loads(parent["input"]) == json.loads(lf["input"])
        assert json.loads(parent["output"]) == json.loads(lf["output"]) + 1


def test_threads_keep_separate_traces_and_follow_copied_context(server, sdk):
    sdk_init(server)
    barrier = threading.Barrier(4)
    seen = {}

    @observe
    def step(n):
        barrier.wait(timeout=10)  # all four threads inside a span at once
        return n

    @observe
    def work(n):
        seen[n] = lanterna.get_current_trace_id()
        return step(n)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(set(seen.values())) == 4  # no thread joined another's trace

    @observe
    def fan_out():
        with ThreadPoolExecutor(2) as pool:
            # Executors do not carry contextvars by themselves: copy them.
            futs = [pool.submit(contextvars.copy_context().run, step_nobarrier, i) for i in range(3)]
            plain = pool.submit(step_nobarrier, 99).result()
            return [f.result() for f in futs] + [plain], lanterna.get_current_trace_id()

    @observe
    def step_nobarrier(n):
        return lanterna.get_current_trace_id()

    res, tid = fan_out()
    assert res[:3] == [tid] * 3 and res[3] != tid
    lanterna.flush()
    for n, t_id in seen.items():
        t = wait_trace(server, t_id, 2)
        s = by_name(t)
        assert s["step"]["parent_span_id"] == s["work"]["span_id"] and json.loads(s["step"]["output"]) == n
    t = wait_trace(server, tid, 4)
    kids = [s for s in t["spans"] if s["name"] == "step_nobarrier"]
    root = by_name(t)["fan_out"]
    assert len(kids) == 3 and all(k["parent_span_id"] == root["span_id"] for k in kids)


def test_generators_sync_and_async(server, sdk):
    sdk_init(server)

    @observe
    def inner(x):
        return x.upper()

    @observe
    def tokens(n):
        for i in range(n):
            yield inner(f"t{i}") + " "  # a span inside the generator body nests under it

    @observe
    async def atokens(n):
        for i in range(n):
            await asyncio.sleep(0)
            yield i

    @observe
    def consume():
        parts = []
        for tok in tokens(3):
            # Between items the caller's span is current, not the generator's.
            assert lanterna.get_current_span().name == "consume"
            parts.append(tok)
        g = tokens(10)
        first = next(g)
        g.close()  # closed early: the span still ends
        async def run():
            return [i async for i in atokens(3)]
        return "".join(parts), first, asyncio.run(run())

    with lanterna.span("top") as top:
        out = consume()
    assert out == ("T0 T1 T2 ", "T0 ", [0, 1, 2])
    lanterna.flush()
    t = wait_trace(server, top.trace_id, 9)
    spans = t["spans"]
    ids = {s["span_id"]: s for s in spans}
    gens = [s for s in spans if s["name"] == "tokens"]
    assert len(gens) == 2
    full = next(g for g in gens if json.loads(g["input"]) == {"n": 3})
    early = next(g for g in gens if json.loads(g["input"]) == {"n": 10})
    assert full["output"] == "T0 T1 T2 " and early["output"] == "T0 "
    assert full["status"] == "unset" and early["status"] == "unset"
    inners = [s for s in spans if s["name"] == "inner"]
    assert len(inners) == 4 and all(ids[s["parent_span_id"]]["name"] == "tokens" for s in inners)
    ag = by_name(t)["atokens"]
    assert json.loads(ag["output"]) == [0, 1, 2] and ids[ag["parent_span_id"]]["name"] == "consume"


# --------------------------------------------------------------------------
# exceptions


def test_exceptions_are_recorded_and_reraised(server, sdk):
    sdk_init(server)

    class Boom(RuntimeError):
        pass

    err = Boom("the tool broke")

    @observe(kind="tool")
    def tool():
        raise err

    @observe
    def agent():
        try:
            tool()
        except Boom:
            pass
        return "recovered"

    @observe
    def gen():
        yield 1
        raise ValueError("mid-stream")

    @observe
    async def afail():
        raise KeyError("k")

    with lanterna.span("root") as root:
        assert agent() == "recovered"
        with pytest.raises(ValueError, match="mid-stream"):
            list(gen())
        with pytest.raises(KeyError):
            asyncio.run(afail())
        with pytest.raises(Boom) as ei:
            tool()
        assert ei.value is err  # the very same exception object
        assert lanterna.get_current_span() is root  # context restored after each failure
    lanterna.flush()
    t = wait_trace(server, root.trace_id, 6)
    assert t["trace"]["status"] == "error" and t["trace"]["error_count"] == 4
    tools = [s for s in t["spans"] if s["name"].endswith("tool")]
    assert len(tools) == 2
    for s in tools:
        assert s["status"] == "error" and s["status_message"] == "Boom: the tool broke"
        ev = s["events"][0]
        assert ev["name"] == "exception" and ev["attributes"]["exception.message"] == "the tool broke"
        assert ev["attributes"]["exception.type"].endswith("Boom")
        assert "raise err" in ev["attributes"]["exception.stacktrace"]
    s = by_name(t)
    assert s["agent"]["status"] == "unset" and s["agent"]["output"] == "recovered"
    assert s["gen"]["status"] == "error" and s["gen"]["status_message"] == "ValueError: mid-stream"
    assert s["afail"]["status"] == "error" and s["afail"]["status_message"] == "KeyError: 'k'"


# --------------------------------------------------------------------------
# sampling, redaction, capture settings


def test_sampling_keeps_whole_traces(server, sdk):
    sdk_init(server, sample_rate=0.0)

    @observe
    def child(i):
        return i

    @observe
    def parent(i):
        return child(i) + child(i)

    assert [parent(i) for i in range(50)] == [2 * i for i in range(50)]
    lanterna.flush()
    assert lanterna.stats()["exported_spans"] == 0

    sdk_init(server, sample_rate=0.5)
    kept = []
    for i in range(200):
        with lanterna.span("sampled-root") as r:
            parent(i)
            if r.recording:
                kept.append(r.trace_id)
    lanterna.flush()
    assert 50 < len(kept) < 150, len(kept)  # binomial(200, .5): outside this is < 1e-12
    traces = server.all_pages("/api/v1/traces", limit=1000, name="sampled-root")
    got = {t["trace_id"]: t["span_count"] for page in traces for t in page}
    assert set(got) == set(kept)
    assert set(got.values()) == {4}  # never a partial trace


def test_redaction_hook(server, sdk):
    import re
    email = re.compile(r"[\w.]+@[\w.]+")

    def scrub(attrs):
        return {k: email.sub("<email>", v) if isinstance(v, str) else v for k, v in attrs.items()}

    sdk_init(server, redact=scrub)

    @observe
    def signup(address):
        with lanterna.generation(model="gpt-4o-mini", input=f"welcome {address}") as g:
            g.update(output=f"Hi {address}!")
        raise ValueError(f"duplicate {address}")

    with pytest.raises(ValueError):
        signup("jane.doe@example.com")
    tid = [None]

    def bad_hook(attrs):
        raise RuntimeError("hook bug")

    sdk_init(server, redact=bad_hook)

    @observe
    def other(secret):
        tid[0] = lanterna.get_current_trace_id()
        return secret

    assert other("top-secret") == "top-secret"  # the app is unaffected
    lanterna.flush()
    traces = server.traces(name="signup")
    t = wait_trace(server, traces[0]["trace_id"], 2)
    text = json.dumps(t)
    assert "jane.doe@example.com" not in text and "<email>" in text
    s = by_name(t)
    assert s["signup"]["input"] == '{"address":"<email>"}'
    assert s["chat gpt-4o-mini"]["output_messages"][0]["content"] == "Hi <email>!"
    assert s["signup"]["events"][0]["attributes"]["exception.message"] == "duplicate <email>"
    # A failing hook fails closed: the span arrives without its content.
    t2 = wait_trace(server, tid[0], 1)
    assert "top-secret" not in json.dumps(t2) and t2["spans"][0]["name"] == "other"


def test_capture_opt_out_and_size_caps(server, sdk):
    sdk_init(server, max_field_chars=50)

    @observe(capture_input=False)
    def private(password):
        return "ok"

    @observe(capture_output=False)
    def secret_out():
        return "classified"

    @observe
    def big(text):
        return text

    with lanterna.span("caps") as root:
        private("hunter2")
        secret_out()
        big("x" * 500)
    sdk_init(server, capture_content=False)
    with lanterna.span("nocontent") as root2:
        big("hello")
        with lanterna.generation(model="gpt-4o", input="question") as g:
            g.update(output="answer", usage={"input_tokens": 3, "output_tokens": 1})
    lanterna.flush()
    s = by_name(wait_trace(server, root.trace_id, 4))
    assert s["private"]["input"] is None and s["private"]["output"] == "ok"
    assert s["secret_out"]["output"] is None and s["secret_out"]["input"] == "{}"
    assert len(s["big"]["output"]) < 100 and s["big"]["output"].startswith("x" * 50)
    assert "truncated 450 chars" in s["big"]["output"]
    assert s["big"]["attributes"]["input.mime_type"] == "text/plain"  # cut JSON is not JSON
    s2 = by_name(wait_trace(server, root2.trace_id, 3))
    assert s2["big"]["input"] is None and s2["big"]["output"] is None
    g = s2["chat gpt-4o"]
    assert g["input_messages"] is None and g["output_messages"] is None and g["input_tokens"] == 3


def test_disabled_sdk_is_transparent(server, sdk):
    sdk_init(server, enabled=False)

    @observe
    def f(x):
        assert lanterna.get_current_trace_id() is None
        return x + 1

    @observe
    def g():
        yield from (1, 2)

    assert f(1) == 2 and list(g()) == [1, 2]
    with lanterna.span("nothing") as s:
        s.update(output="x")
    lanterna.score("s", 1, trace_id=s.trace_id)
    assert lanterna.flush() is True
    assert server.traces() == []


# --------------------------------------------------------------------------
# scores and feedback


def test_scores_and_feedback(server, sdk):
    sdk_init(server)
    with lanterna.span("scored") as root:
        with lanterna.span("step") as step:
            step.score("valid_json", True)
        lanterna.score("faithfulness", 0.75, comment="one claim unsupported", source="evaluator")
        lanterna.score("tone", "polite")
        lanterna.feedback(value=-1, comment="wrong city")
    lanterna.score("not-hex", 1, trace_id="nope")  # ignored, no exception
    lanterna.feedback(root.trace_id, 3)             # ignored, no exception
    lanterna.feedback(root.trace_id, 1)
    assert lanterna.flush()
    assert lanterna.stats()["sent_scores"] == 5 and lanterna.stats()["failed_scores"] == 0
    t = wait_trace(server, root.trace_id, 2)
    by = {x["name"]: x for x in t["scores"]}
    assert by["faithfulness"]["value"] == 0.75 and by["faithfulness"]["comment"] == "one claim unsupported"
    assert by["faithfulness"]["source"] == "evaluator"
    assert by["tone"]["data_type"] == "categorical" and by["tone"]["string_value"] == "polite"
    step_scores = by_name(t)["step"]["scores"]
    assert [(x["name"], x["data_type"], x["value"]) for x in step_scores] == [("valid_json", "boolean", 1)]
    fb = server.api("/api/v1/scores", params={"trace_id": root.trace_id, "name": "user_feedback"})["data"]
    assert sorted(x["value"] for x in fb) == [-1, 1]
    assert server.traces(feedback="down")[0]["trace_id"] == root.trace_id


# --------------------------------------------------------------------------
# the exporter under failure


def test_server_down_no_exception_bounded_memory(sdk):
    port = free_port()  # nothing listens here
    lanterna.init(base_url=f"http://127.0.0.1:{port}", max_queue=300, max_retries=1, flush_interval=0.05,
                  timeout=1)

    @observe
    def work(i):
        return {"i": i, "payload": "p" * 200}

    work(0)
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    for i in range(20000):
        assert work(i)["i"] == i
    lanterna.score("s", 1, trace_id="a" * 32)
    grown = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    st = lanterna.stats()
    assert st["queued"] <= 300 and st["exported_spans"] == 0
    # Every span is accounted for (one batch of at most max_queue may be in
    # flight), and the excess was dropped and counted, not kept.
    assert st["dropped_spans"] + st["failed_spans"] + st["queued"] >= 20001 - 300
    assert st["dropped_spans"] > 0
    # 20,000 spans of ~1 KB each would be ~20 MB if kept.
    assert grown < 3_000_000, grown
    assert lanterna.flush(1) in (True, False)  # returns, does not raise


def test_server_down_exit_is_bounded_and_quiet():
    port = free_port()
    p = run_script(f"""
        import lanterna
        lanterna.init(base_url="http://127.0.0.1:{port}", shutdown_timeout=1, max_retries=50)
        @lanterna.observe
        def f(): return 1
        for _ in range(100): f()
        print("done")
    """, timeout=30)
    assert p.stdout.strip() == "done"
    assert "Traceback" not in p.stderr


class _Flaky(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        srv = self.server
        srv.seen.append({"time": __import__("time").monotonic(), "headers": dict(self.headers), "body": body})
        if len(srv.seen) <= srv.fail:
            self.send_response(503)
            self.send_header("Retry-After", "1")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", self.headers["Content-Type"])
        self.send_header("Content-Length", "0")
        self.end_headers()


def test_retry_after_is_honoured_and_body_is_gzipped_protobuf(sdk):
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Flaky)
    httpd.seen, httpd.fail = [], 2
    th = threading.Thread(target=httpd.serve_forever, daemon=True)
    th.start()
    try:
        lanterna.init(base_url=f"http://127.0.0.1:{httpd.server_address[1]}", api_key="sk-lt-test",
                      flush_interval=0.05, max_retries=5)
        with lanterna.span("retried") as s:
            s.update(input="x" * 2000)  # big enough to be compressed
        assert lanterna.flush(20)
        assert lanterna.stats()["exported_spans"] == 1 and lanterna.stats()["retries"] == 2
    finally:
        httpd.shutdown()
        httpd.server_close()
    seen = httpd.seen
    assert len(seen) == 3
    assert seen[1]["time"] - seen[0]["time"] >= 0.95 and seen[2]["time"] - seen[1]["time"] >= 0.95
    h = seen[2]["headers"]
    assert h["Content-Type"] == "application/x-protobuf" and h["Content-Encoding"] == "gzip"
    assert h["Authorization"] == "Bearer sk-lt-test"
    req = ExportTraceServiceRequest.FromString(gzip.decompress(seen[2]["body"]))
    span = req.resource_spans[0].scope_spans[0].spans[0]
    assert span.name == "retried" and span.trace_id.hex() == s.trace_id


# --------------------------------------------------------------------------
# process boundaries


def test_flush_at_interpreter_exit(server):
    p = run_script(f"""
        import lanterna
        lanterna.init(base_url="{server.url}", flush_interval=3600)  # only the exit flush sends
        @lanterna.observe
        def step(i): return i
        @lanterna.observe
        def main():
            for i in range(25): step(i)
            print(lanterna.get_current_trace_id())
        main()
    """)
    tid = p.stdout.strip()
    t = wait_trace(server, tid, 26)
    assert len(t["spans"]) == 26


def test_configuration_from_environment(server):
    p = run_script("""
        import lanterna
        with lanterna.span("from-env") as s:
            print(s.trace_id)
    """, env={"LANTERNA_BASE_URL": server.url, "LANTERNA_ENVIRONMENT": "prod", "LANTERNA_RELEASE": "9.9",
              "LANTERNA_SERVICE_NAME": "env-svc"})
    t = wait_trace(server, p.stdout.strip(), 1)
    sp = t["spans"][0]
    assert (sp["environment"], sp["release"], sp["service"]) == ("prod", "9.9", "env-svc")


def test_traceparent_across_two_processes(server, sdk):
    """A calls B over HTTP with inject(); B continues the trace from the
    request headers. Both export to the same server."""
    sdk_init(server)
    service = run_script_bg(f"""
        import json, sys, lanterna
        from http.server import BaseHTTPRequestHandler, HTTPServer
        lanterna.init(base_url="{server.url}", flush_interval=0.05)

        @lanterna.observe(kind="tool")
        def handle(q):
            return q[::-1]

        class H(BaseHTTPRequestHandler):
            def do_GET(self):
                with lanterna.continue_trace(self.headers):
                    out = handle(self.path[1:])
                body = out.encode()
                self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
                self.wfile.write(body)
            def log_message(self, *a): pass

        srv = HTTPServer(("127.0.0.1", 0), H)
        print(srv.server_address[1], flush=True)
        srv.handle_request()
    """)
    try:
        port = int(service.stdout.readline())
        import urllib.request

        @observe
        def client():
            req = urllib.request.Request(f"http://127.0.0.1:{port}/olleh", headers=lanterna.inject())
            return urllib.request.urlopen(req, timeout=30).read().decode()

        with lanterna.span("frontend") as root:
            assert client() == "hello"
        assert service.wait(timeout=60) == 0, service.stderr.read()
    finally:
        if service.poll() is None:
            service.kill()
    lanterna.flush()
    t = wait_trace(server, root.trace_id, 3)
    s = by_name(t)
    assert s["handle"]["parent_span_id"] == s["client"]["span_id"]
    assert s["handle"]["kind"] == "TOOL" and s["handle"]["output"] == "hello"
    assert t["trace"]["name"] == "frontend" and not any(x["orphan"] for x in t["spans"])
    # Unsampled upstream: the callee records nothing either.
    assert lanterna.extract({"TraceParent": root.traceparent}).trace_id == root.trace_id
    assert lanterna.extract({"traceparent": "00-" + "0" * 32 + "-" + "1" * 16 + "-01"}) is None
    off = lanterna.extract({"traceparent": f"00-{'ab' * 16}-{'cd' * 8}-00"})
    with off:
        with lanterna.span("not recorded") as x:
            assert not x.recording and x.trace_id == "ab" * 16


def run_script_bg(code):
    import subprocess
    import sys
    import textwrap
    from sdk_util import SDK_PATH
    env = {k: v for k, v in os.environ.items() if not k.startswith("LANTERNA_")}
    env["PYTHONPATH"] = SDK_PATH
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_fork_safety(server):
    """Queued spans are sent once (by the parent), the child exports its own
    spans with fresh ids, and neither process hangs."""
    p = run_script(f"""
        import os, lanterna
        lanterna.init(base_url="{server.url}", flush_interval=3600)
        with lanterna.span("before-fork") as b:
            pass
        tid = b.trace_id
        assert lanterna.stats()["queued"] == 1
        pid = os.fork()
        if pid == 0:
            try:
                assert lanterna.stats()["queued"] == 0  # the parent's span is the parent's to send
                with lanterna.span("in-child") as c:
                    pass
                ok = lanterna.flush(20)
                print("child", c.trace_id, ok, flush=True)
            finally:
                os._exit(0)
        os.waitpid(pid, 0)
        with lanterna.span("in-parent") as p:
            pass
        print("parent", tid, p.trace_id, lanterna.flush(20), flush=True)
    """)
    lines = dict(ln.split(" ", 1) for ln in p.stdout.strip().splitlines())
    child_tid, child_ok = lines["child"].split()
    before_tid, parent_tid, parent_ok = lines["parent"].split()
    assert child_ok == "True" and parent_ok == "True"
    assert len({child_tid, before_tid, parent_tid}) == 3  # the child did not replay the parent's ids
    for tid, name in ((child_tid, "in-child"), (before_tid, "before-fork"), (parent_tid, "in-parent")):
        t = wait_trace(server, tid, 1)
        assert [s["name"] for s in t["spans"]] == [name]
    assert server.stats()["store"]["spans"] == 3


# --------------------------------------------------------------------------
# OpenTelemetry interplay and auth


def test_joins_active_opentelemetry_trace(server, sdk):
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=server.url + "/v1/traces")))
    tracer = provider.get_tracer("otel-app")
    sdk_init(server)

    @observe
    def ours():
        return lanterna.get_current_trace_id()

    with tracer.start_as_current_span("otel-root") as o:
        tid = ours()
        otel_tid = format(o.get_span_context().trace_id, "032x")
        otel_sid = format(o.get_span_context().span_id, "016x")
    provider.shutdown()
    lanterna.flush()
    assert tid == otel_tid
    s = by_name(wait_trace(server, tid, 2))
    assert s["ours"]["parent_span_id"] == otel_sid and s["otel-root"]["parent_span_id"] is None


def test_api_keys_select_the_project(lanterna_bin_key_server, sdk):
    server, key = lanterna_bin_key_server
    for creds in ({"api_key": key["secret_key"]},
                  {"public_key": key["public_key"], "secret_key": key["secret_key"]}):
        sdk_init(server, **creds)
        with lanterna.span("keyed") as s:
            pass
        lanterna.flush()
        poll(lambda: server.get(f"/api/v1/traces/{s.trace_id}", headers=bearer(key)).status_code == 200,
             what="trace in the key's project")
        assert server.get(f"/api/v1/traces/{s.trace_id}").status_code == 404  # not in the default project
    sdk_init(server, api_key="sk-lt-wrong")
    with lanterna.span("rejected"):
        pass
    lanterna.flush()
    assert lanterna.stats()["failed_spans"] == 1


@pytest.fixture
def lanterna_bin_key_server(lanterna, tmp_path):
    srv = lanterna(start=False)
    cli_ok("projects", "create", "acme", data=srv.data)
    key = create_key(srv.data, "acme")
    srv.start()
    return srv, key
