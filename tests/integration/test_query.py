"""The query API over a seeded store: filters, sorting, cursor pagination,
spans, sessions, errors."""

from __future__ import annotations

import datetime as dt
import re
import time

import pytest

from ltlib import assert_error, make_span, span_id, trace_id, traces_request

# All seeded traces start in the last hour, on whole seconds from T0.
T0 = (time.time_ns() // 1_000_000_000 - 3600) * 1_000_000_000
S = 1_000_000_000
MS = 1_000_000
LONG_INPUT = "Summarize the quarterly report about zebras. " + "lorem ipsum " * 250

# name, user, session, model, status, tags, duration ms, start offset s, cost, input, output
FILTER_TRACES = {
    "f1": ("support-chat", "alice", "sess-A", "gpt-4o-mini", "ok", ["prod"], 50, 1, 0.002,
           "How do I reset my password?", "Click on forgot password."),
    "f2": ("support-chat", "bob", "sess-A", "claude-3-5-sonnet", "error", ["prod", "escalated"], 1500, 2, 0.05,
           "My invoice is wrong", "Let me check the invoice."),
    "f3": ("summarize", "alice", None, "gpt-4o", "ok", ["batch"], 800, 3, None,
           LONG_INPUT, "Zebras did well this quarter."),
    "f4": ("summarize", "carol", "sess-B", "gpt-4o-mini", "unset", [], 10, 4, 0.0001,
           "Summarize this tweet", "A short tweet."),
}
TOKENS = {"f1": (100, 20), "f2": (300, 40), "f3": (1000, 60), "f4": (50, 5)}
WINDOW = {"from": T0, "to": T0 + 10 * S}
PAGE_T0 = T0 + 100 * S


def seed(server):
    ids = {}
    for key, (name, user, session, model, status, tags, dur, off, cost, inp, out) in FILTER_TRACES.items():
        tid, root, llm = trace_id(), span_id(), span_id()
        start = T0 + off * S
        root_attrs = {"openinference.span.kind": "CHAIN", "user.id": user, "input.value": inp,
                      "output.value": out}
        if session:
            root_attrs["session.id"] = session
        if tags:
            root_attrs["tag.tags"] = tags
        llm_attrs = {"gen_ai.operation.name": "chat", "gen_ai.request.model": model,
                     "gen_ai.usage.input_tokens": TOKENS[key][0], "gen_ai.usage.output_tokens": TOKENS[key][1],
                     "gen_ai.input.messages": f'[{{"role":"user","parts":[{{"type":"text","content":"{key}"}}]}}]'}
        if cost is not None:
            llm_attrs["llm.cost.total"] = cost
        spans = [make_span(tid, root, name, start, start + dur * MS, attrs=root_attrs, status=status,
                           status_message="boom" if status == "error" else ""),
                 make_span(tid, llm, f"llm {key}", start + MS, start + dur * MS - MS // 2, parent=root,
                           attrs=llm_attrs, kind="client", status=status)]
        server.export_ok(traces_request(spans, resource={"service.name": "query-it",
                                                         "deployment.environment.name": "prod"}))
        ids[key] = tid
    # 120 traces for pagination: 1 ms apart, durations with many ties.
    page_ids = []
    batch = []
    for i in range(120):
        tid = trace_id()
        start = PAGE_T0 + i * MS
        batch.append(make_span(tid, span_id(), "page", start, start + (i % 7) * MS + 100,
                               attrs={"user.id": "pager"}))
        page_ids.append(tid)
        if len(batch) == 40:
            server.export_ok(traces_request(batch))
            batch = []
    return ids, page_ids


@pytest.fixture(scope="module")
def seeded(module_lanterna):
    server = module_lanterna()
    ids, page_ids = seed(server)
    return server, ids, page_ids


def keys_of(rows, ids):
    rev = {v: k for k, v in ids.items()}
    return [rev.get(r["trace_id"], r["trace_id"]) for r in rows]


def q(server, ids, **params):
    return keys_of(server.traces(**{**WINDOW, **params}), ids)


def test_default_sort_is_start_desc(seeded):
    server, ids, _ = seeded
    assert q(server, ids) == ["f4", "f3", "f2", "f1"]
    assert q(server, ids, order="asc") == ["f1", "f2", "f3", "f4"]


def test_row_fields(seeded):
    server, ids, _ = seeded
    rows = {r["trace_id"]: r for r in server.traces(**WINDOW)}
    r = rows[ids["f2"]]
    assert r["name"] == "support-chat" and r["user_id"] == "bob" and r["session_id"] == "sess-A"
    assert r["status"] == "error" and r["error_count"] == 2 and r["span_count"] == 2
    assert r["models"] == ["claude-3-5-sonnet"]
    assert (r["input_tokens"], r["output_tokens"], r["total_tokens"]) == (300, 40, 340)
    assert r["cost_usd"] == pytest.approx(0.05)
    assert r["start_ns"] == T0 + 2 * S and r["end_ns"] == T0 + 2 * S + 1500 * MS
    assert r["duration_ms"] == pytest.approx(1500.0)
    assert r["start_time"].startswith(
        dt.datetime.fromtimestamp((T0 + 2 * S) // S, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S"))
    assert r["start_time"].endswith("Z")
    assert sorted(r["tags"]) == ["escalated", "prod"]
    assert r["service"] == "query-it" and r["environment"] == "prod"
    r = rows[ids["f3"]]
    assert r["cost_usd"] is None or r["cost_usd"] > 0, "an unknown cost is null, never 0"
    assert rows[ids["f4"]]["status"] == "unset" and rows[ids["f1"]]["status"] == "ok"


@pytest.mark.parametrize("params,expected", [
    ({"name": "support-chat"}, ["f2", "f1"]),
    ({"name": "summarize"}, ["f4", "f3"]),
    ({"name": "nope"}, []),
    ({"user": "alice"}, ["f3", "f1"]),
    ({"session": "sess-A"}, ["f2", "f1"]),
    ({"model": "gpt-4o-mini"}, ["f4", "f1"]),
    ({"model": "gpt-4o"}, ["f3"]),
    ({"status": "error"}, ["f2"]),
    ({"status": "ok"}, ["f3", "f1"]),
    ({"status": "unset"}, ["f4"]),
    ({"tag": "prod"}, ["f2", "f1"]),
    ({"tag": "escalated"}, ["f2"]),
    ({"min_duration_ms": 500}, ["f3", "f2"]),
    ({"min_duration_ms": 50}, ["f3", "f2", "f1"]),
    ({"user": "alice", "name": "summarize"}, ["f3"]),
    ({"sort": "duration"}, ["f2", "f3", "f1", "f4"]),
    ({"sort": "duration", "order": "asc"}, ["f4", "f1", "f3", "f2"]),
])
def test_filters(seeded, params, expected):
    server, ids, _ = seeded
    assert q(server, ids, **params) == expected


def test_time_range(seeded):
    server, ids, _ = seeded
    # ns integers; `to` is exclusive.
    assert keys_of(server.traces(**{"from": T0 + 2 * S, "to": T0 + 4 * S}), ids) == ["f3", "f2"]
    # RFC 3339.
    rfc = lambda ns: dt.datetime.fromtimestamp(ns // S, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert keys_of(server.traces(**{"from": rfc(T0 + 2 * S), "to": rfc(T0 + 4 * S)}), ids) == ["f3", "f2"]
    assert keys_of(server.traces(**{"from": rfc(T0 + 3 * S), "to": rfc(T0 + 3 * S + 1)}), ids) == []
    assert keys_of(server.traces(**{"from": T0 + 3 * S, "to": T0 + 3 * S + 1}), ids) == ["f3"]


def test_time_range_small_integers(seeded):
    """Integer nanoseconds of any size: from=0 means the epoch."""
    server, ids, _ = seeded
    assert keys_of(server.traces(**{"from": 0, "to": T0 + 10 * S}), ids) == ["f4", "f3", "f2", "f1"]
    assert keys_of(server.traces(**{"from": T0, "to": 1}), ids) == []


def test_sort_by_cost(seeded):
    server, ids, _ = seeded
    got = q(server, ids, sort="cost")
    assert [k for k in got if k != "f3"] == ["f2", "f1", "f4"]
    assert sorted(got) == ["f1", "f2", "f3", "f4"]
    got = q(server, ids, sort="cost", order="asc")
    assert [k for k in got if k != "f3"] == ["f4", "f1", "f2"]


def test_full_text_search(seeded):
    """FTS is eventually consistent: poll."""
    server, ids, _ = seeded

    def search(term):
        deadline = time.monotonic() + 15
        while True:
            got = q(server, ids, q=term)
            if got or time.monotonic() > deadline:
                return got
            time.sleep(0.2)

    assert search("zebras") == ["f3"]
    assert search("invoice") == ["f2"]
    assert search("password") == ["f1"]
    assert q(server, ids, q="quokka") == []
    # Everything is indexed now: lists with q say so; lists without q do not.
    for path in ("/api/v1/traces", "/api/v1/spans"):
        body = server.get(path, params={"q": "quokka"}).json()
        assert body["data"] == [] and body["search_complete"] is True
        assert "search_complete" not in server.get(path).json()


def test_pagination_by_start(seeded):
    server, _, page_ids = seeded
    pages = server.all_pages("/api/v1/traces", name="page", limit=50)
    assert [len(p) for p in pages] == [50, 50, 20]
    got = [r["trace_id"] for p in pages for r in p]
    assert got == page_ids[::-1], "pages must be in start-desc order with no duplicates or gaps"
    pages = server.all_pages("/api/v1/traces", name="page", limit=50, order="asc")
    assert [r["trace_id"] for p in pages for r in p] == page_ids


def test_pagination_with_ties(seeded):
    """Durations repeat every 7 traces: the cursor must break ties."""
    server, _, page_ids = seeded
    pages = server.all_pages("/api/v1/traces", name="page", limit=50, sort="duration")
    rows = [r for p in pages for r in p]
    assert len(rows) == 120
    assert sorted(r["trace_id"] for r in rows) == sorted(page_ids)
    durs = [r["duration_ms"] for r in rows]
    assert durs == sorted(durs, reverse=True)


def test_limit(seeded):
    server, _, page_ids = seeded
    body = server.api("/api/v1/traces", params={"name": "page", "limit": 7})
    assert len(body["data"]) == 7 and body["next_cursor"]
    body = server.api("/api/v1/traces", params={"name": "page", "limit": 1000})
    assert len(body["data"]) == 120 and body["next_cursor"] is None
    assert len(server.traces(name="page")) == 50, "default limit is 50"


@pytest.mark.parametrize("params", [
    {"cursor": "not-a-cursor"}, {"cursor": "eyJ4IjoxfQ"}, {"limit": "abc"}, {"limit": 0}, {"limit": 1001},
    {"sort": "bogus"}, {"order": "sideways"}, {"status": "maybe"}, {"from": "yesterday"},
    {"min_duration_ms": "long"},
])
def test_bad_parameters_are_400(seeded, params):
    server, _, _ = seeded
    assert_error(server.get("/api/v1/traces", params=params), 400, "bad_request")


def test_unknown_trace_is_404(seeded):
    server, _, _ = seeded
    assert_error(server.get("/api/v1/traces/" + trace_id()), 404, "not_found")
    assert_error(server.get("/api/v1/sessions/no-such-session"), 404, "not_found")


def test_trace_detail_long_input(seeded):
    server, ids, _ = seeded
    d = server.trace(ids["f3"])
    assert d["spans"][0]["input"] == LONG_INPUT
    rows = server.spans(name="summarize", user="alice", **WINDOW)
    assert [r["trace_id"] for r in rows] == [ids["f3"]]
    assert rows[0]["input"] == LONG_INPUT[:1000] or (len(rows[0]["input"]) <= 1003
                                                     and LONG_INPUT.startswith(rows[0]["input"][:990]))


def test_numbers_read_back_as_sent(server):
    """Doubles come back in their shortest form: 0.7, not 0.69999999999999996
    (which json_dumps would print), in every answer that carries them."""
    tid, sid = trace_id(), span_id()
    start = time.time_ns()
    attrs = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini",
             "gen_ai.request.temperature": 0.7, "gen_ai.request.top_p": 0.1,
             "gen_ai.usage.input_tokens": 42, "gen_ai.usage.output_tokens": 7}
    server.export_ok(traces_request([make_span(tid, sid, "chat", start, start + 850 * MS, attrs=attrs,
                                               kind="client")]))
    cost = 10500 / 1e9  # gpt-4o-mini: 42 x 0.15 + 7 x 0.60 USD per million tokens
    texts = [server.get(f"/api/v1/traces/{tid}").text, server.get("/api/v1/traces").text,
             server.get("/api/v1/spans").text]
    for text in texts:
        assert "0.69999999999999996" not in text and "0.10000000000000001" not in text
        costs = re.findall(r'"cost_usd":([-+0-9.eE]+)', text)
        assert costs, text[:300]
        for c in costs:
            assert float(c) == pytest.approx(cost) and len(c) <= len(repr(cost)), c
    assert '"gen_ai.request.temperature":0.7,' in texts[0] and '"gen_ai.request.top_p":0.1' in texts[0]


def test_spans_endpoint(seeded):
    server, ids, _ = seeded
    llm = server.spans(kind="LLM", **WINDOW)
    assert sorted(s["name"] for s in llm) == ["llm f1", "llm f2", "llm f3", "llm f4"]
    assert all(s["kind"] == "LLM" for s in llm)
    for s in llm:
        for hidden in ("attributes", "resource", "events", "links", "logs", "input_messages",
                       "output_messages", "documents"):
            assert hidden not in s, f"/api/v1/spans row carries {hidden}"
    f2 = [s for s in llm if s["name"] == "llm f2"][0]
    assert f2["request_model"] == "claude-3-5-sonnet" and f2["input_tokens"] == 300
    assert f2["trace_id"] == ids["f2"] and f2["status"] == "error"
    assert f2["cost_usd"] == pytest.approx(0.05) and f2["cost_source"] == "reported"
    assert sorted(s["name"] for s in server.spans(kind="CHAIN", **WINDOW)) == \
        ["summarize", "summarize", "support-chat", "support-chat"]
    assert [s["name"] for s in server.spans(name="llm f3", **WINDOW)] == ["llm f3"]
    assert sorted(s["name"] for s in server.spans(status="error", **WINDOW)) == ["llm f2", "support-chat"]
    assert sorted(s["name"] for s in server.spans(model="gpt-4o-mini", **WINDOW)) == ["llm f1", "llm f4"]
    assert sorted(s["name"] for s in server.spans(min_duration_ms=700, kind="LLM", **WINDOW)) == \
        ["llm f2", "llm f3"]
    assert server.spans(kind="TOOL", **WINDOW) == []
    pages = server.all_pages("/api/v1/spans", name="page", limit=50)
    assert [len(p) for p in pages] == [50, 50, 20]
    assert len({s["span_id"] for p in pages for s in p}) == 120


def test_spans_trace_id_filter(seeded):
    server, ids, _ = seeded
    rows = server.spans(trace_id=ids["f2"])
    assert sorted(s["name"] for s in rows) == ["llm f2", "support-chat"], [s["trace_id"] for s in rows][:5]
    assert server.spans(trace_id=trace_id()) == []


def test_trace_over_the_span_cap_says_truncated(server):
    """A trace view holds at most 10,000 spans, the earliest: past that it says
    truncated, and the span list pages through every one of them."""
    tid, root = trace_id(), span_id()
    t0 = time.time_ns()
    spans = [make_span(tid, root, "agent", t0, t0 + 20_000 * MS)]
    spans += [make_span(tid, span_id(), f"step {i}", t0 + i * MS, t0 + i * MS + 1, parent=root) for i in range(1, 10_005)]
    for k in range(0, len(spans), 2500):
        server.export_ok(traces_request(spans[k:k + 2500]))
    d = server.trace(tid)
    assert d["trace"]["span_count"] == 10_005 and len(d["spans"]) == 10_000 and d["truncated"] is True
    assert d["spans"][0]["name"] == "agent"
    seen, cursor = set(), None
    while True:
        page = server.get("/api/v1/spans", params={"trace_id": tid, "limit": 1000, "from": t0 - S,
                                                  **({"cursor": cursor} if cursor else {})}).json()
        seen |= {s["span_id"] for s in page["data"]}
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == 10_005
    small, small_root = trace_id(), span_id()
    server.export_ok(traces_request([make_span(small, small_root, "one", t0, t0 + MS)]))
    assert server.trace(small)["truncated"] is False


def test_sessions(seeded):
    server, ids, _ = seeded
    body = server.api("/api/v1/sessions", params=WINDOW)
    sessions = [s["session_id"] for s in body["data"]]
    assert sessions == ["sess-B", "sess-A"], "newest first"
    a = body["data"][1]
    assert a["trace_count"] == 2
    assert a["first_start_ns"] == T0 + 1 * S
    assert a["last_end_ns"] == T0 + 2 * S + 1500 * MS
    assert a["total_tokens"] == 120 + 340
    assert a["error_count"] >= 1
    assert a["cost_usd"] == pytest.approx(0.052)
    assert [s["session_id"] for s in server.api("/api/v1/sessions", params={"user": "carol"})["data"]] == ["sess-B"]
    one = server.api("/api/v1/sessions/sess-A")
    assert one["session_id"] == "sess-A"
    assert [t["trace_id"] for t in one["traces"]] == [ids["f1"], ids["f2"]], "oldest first"
    assert one["traces"][1]["status"] == "error"
    pages = server.all_pages("/api/v1/sessions", limit=1, **WINDOW)
    assert [s["session_id"] for p in pages for s in p] == ["sess-B", "sess-A"]


def test_search_box_text_is_never_refused(seeded):
    """What people type in a search box ("invoice?", "it's", a stray quote)
    is searched as words rather than refused as bad FTS5 syntax."""
    server, ids, _ = seeded
    poll_until = time.monotonic() + 15
    while q(server, ids, q="invoice") != ["f2"] and time.monotonic() < poll_until:
        time.sleep(0.2)
    for typed in ('invoice"', "-invoice", "my:invoice", "wrong invoice?"):
        r = server.get("/api/v1/traces", params={**WINDOW, "q": typed})
        assert r.status_code == 200, (typed, r.text)
        assert keys_of(r.json()["data"], ids) == ["f2"], typed
    assert q(server, ids, q="*") == []
    assert len(q(server, ids, q="   ")) == 4
