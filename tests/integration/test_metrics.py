"""GET /api/v1/metrics against the real server: totals and per-bucket
figures checked against answers computed here from the spans sent (counts,
errors, tokens, cost, per-request means), every grouping, filters, group
limits, intervals, figure selection, the 400 answers, and the accuracy of
the latency / TTFT / TPS percentiles on several distributions."""

from __future__ import annotations

import math
import random
import time

import pytest

from ltlib import assert_error, make_span, poll, span_id, trace_id, traces_request

S = 1_000_000_000
MS = 1_000_000
MIN = 60 * S
HOUR = 3600 * S
DAY = 86400 * S
# Twelve whole hours ago: every seeded span is in the past, in known buckets.
B = (time.time_ns() // HOUR - 12) * HOUR
RANGE = {"from": str(B), "to": str(B + 4 * HOUR), "interval": "1h"}
QS = {"p50": 0.5, "p90": 0.9, "p95": 0.95, "p99": 0.99}

ROLLUP_GROUPS = ("model", "provider", "name", "kind", "status", "environment", "feature")


# --------------------------------------------------------------------------
# the seeded spans, described once: sent to the server and used for the
# expected answers


def sp(trace, start, dur_ms, name="chat", kind="LLM", model=None, provider=None, status="unset",
       tin=None, tout=None, cache_read=None, cost=None, ttft_s=None, feature=None, wrapper=False):
    return {"trace": trace, "start": start, "end": start + int(dur_ms * MS), "name": name, "kind": kind,
            "model": model, "provider": provider, "status": status, "in": tin, "out": tout,
            "cache_read": cache_read, "cost": cost, "ttft_s": ttft_s, "feature": feature, "wrapper": wrapper}


# Trace-level context: user, session, tags, environment (resource).
TRACES = {
    "t1": ("alice", "s1", ["prod"], "prod"),
    "t2": ("bob", "s1", ["prod", "beta"], "prod"),
    "t3": ("alice", "s2", ["beta"], "prod"),
    "t4": ("carol", None, [], "prod"),
    "t5": ("bob", "s2", ["prod"], "prod"),
    "t6": ("dave", "s3", ["batch"], "staging"),
    "t7": ("erin", None, [], "staging"),
}

# Model names that no price entry matches, so every cost here is the one
# reported (or none).
SPANS = [
    sp("t1", B + 5 * MIN, 100, model="acme-small", provider="openai", status="ok", tin=100, tout=20,
       cost=0.001, ttft_s=0.02, feature="support"),
    sp("t2", B + 10 * MIN, 300, model="acme-small", provider="openai", status="error", tin=200, tout=40,
       cache_read=50, cost=0.002, feature="support"),
    # exactly on the hour edge: hour 1
    sp("t3", B + HOUR, 500, model="acme-large", provider="anthropic", status="ok", tin=300, tout=60,
       cost=0.003, ttft_s=0.1),
    # tokens, no reported cost, no price: unpriced
    sp("t4", B + HOUR + 30 * MIN, 700, model="acme-large", provider="anthropic", tin=400, tout=80),
    # the last millisecond of hour 2
    sp("t5", B + 3 * HOUR - 1 * MS, 0.9, model="acme-small", provider="openai", status="error", tin=500,
       tout=100, cost=0.005, feature="summarize"),
    # a chain with an LLM call and a tool call
    sp("t6", B + 3 * HOUR + 1 * MIN, 2000, name="pipeline", kind="CHAIN"),
    sp("t6", B + 3 * HOUR + 1 * MIN + 100 * MS, 1500, model="acme-small", provider="openai", status="ok",
       tin=1000, tout=200, cost=0.01, ttft_s=0.3, feature="summarize"),
    # a paid web search: a cost, no tokens
    sp("t6", B + 3 * HOUR + 1 * MIN + 1700 * MS, 100, name="search", kind="TOOL", cost=0.0002),
    # an agent whose token counts are its child's (a wrapper)
    sp("t7", B + 3 * HOUR + 2 * MIN, 1200, name="agent", kind="AGENT", tin=50, tout=10, wrapper=True),
    sp("t7", B + 3 * HOUR + 2 * MIN + 10 * MS, 1000, model="acme-small", provider="openai", tin=50, tout=10,
       cost=0.0005),
]


def otlp_attrs(s, trace_ctx, root):
    user, session, tags, _ = trace_ctx
    a = {}
    if s["kind"] == "LLM":
        a["gen_ai.operation.name"] = "chat"
    else:
        a["openinference.span.kind"] = s["kind"]
    if s["model"]:
        a["gen_ai.request.model"] = s["model"]
    if s["provider"]:
        a["gen_ai.provider.name"] = s["provider"]
    if s["in"] is not None:
        a["gen_ai.usage.input_tokens"] = s["in"]
    if s["out"] is not None:
        a["gen_ai.usage.output_tokens"] = s["out"]
    if s["cache_read"] is not None:
        a["gen_ai.usage.cache_read.input_tokens"] = s["cache_read"]
    if s["cost"] is not None:
        a["gen_ai.usage.cost"] = s["cost"]
    if s["ttft_s"] is not None:
        a["gen_ai.response.time_to_first_chunk"] = s["ttft_s"]
    if s["feature"]:
        a["lanterna.feature"] = s["feature"]
    if root:
        a["user.id"] = user
        if session:
            a["session.id"] = session
        if tags:
            a["tag.tags"] = tags
    return a


def send(server, spans, traces, headers=None):
    """One request per trace; the first span of a trace is its root."""
    by_trace = {}
    for s in spans:
        by_trace.setdefault(s["trace"], []).append(s)
    for key, group in by_trace.items():
        tid, root_sid = trace_id(), span_id()
        out = []
        for i, s in enumerate(group):
            sid = root_sid if i == 0 else span_id()
            s["_tid"], s["_sid"] = tid, sid
            out.append(make_span(tid, sid, s["name"], s["start"], s["end"], parent=None if i == 0 else root_sid,
                                 attrs=otlp_attrs(s, traces[key], i == 0),
                                 kind="client" if s["kind"] == "LLM" else "internal", status=s["status"]))
        server.export_ok(traces_request(out, resource={"service.name": "metrics-it",
                                                       "deployment.environment.name": traces[key][3]}), "json")


def wait_count(server, n, params, headers=None):
    poll(lambda: server.api("/api/v1/metrics", params={**params, "metrics": "count"},
                            headers=headers)["totals"]["count"] == n, what=f"{n} spans in the rollups")


# --------------------------------------------------------------------------
# expected answers


def exact_q(values, q):
    v = sorted(values)
    return v[int(math.floor(q * (len(v) - 1)))]


def tps_of(s):
    dur = s["end"] - s["start"]
    ttft = round(s["ttft_s"] * S) if s["ttft_s"] is not None else None
    gen = dur - ttft if ttft is not None and 0 <= ttft < dur else dur
    if s["wrapper"] or not s["out"] or gen <= 0:
        return None
    return s["out"] * S / gen


def expect(spans):
    """The figures of a set of spans, by the rules of docs/rollups.md."""
    counted = [s for s in spans if not s["wrapper"]]
    tok = [s for s in counted if s["in"] is not None or s["out"] is not None]
    priced = [s for s in counted if s["cost"] is not None]
    unpriced = [s for s in tok if s["cost"] is None]
    totals = [s["in"] + s["out"] for s in counted if s["in"] is not None and s["out"] is not None]
    cost = sum(round(s["cost"] * 1e9) for s in priced)
    n = len(spans)
    e = {
        "count": n,
        "errors": sum(s["status"] == "error" for s in spans),
        "error_rate": (sum(s["status"] == "error" for s in spans) / n) if n else None,
        "input_tokens": sum(s["in"] or 0 for s in counted),
        "output_tokens": sum(s["out"] or 0 for s in counted),
        "cache_read_tokens": sum(s["cache_read"] or 0 for s in counted),
        "cache_write_tokens": 0,
        "reasoning_tokens": 0,
        "total_tokens": sum(totals),
        "tokens_per_request": sum(totals) / len(totals) if totals else None,
        "cost_usd": cost / 1e9 if priced else None,
        "cost_per_request": cost / 1e9 / len(priced) if priced else None,
        "unpriced_spans": len(unpriced),
        "_lat": [(s["end"] - s["start"]) / MS for s in spans],
        "_ttft": [round(s["ttft_s"] * S) / MS for s in spans if s["ttft_s"] is not None],
        "_tps": [t for t in (tps_of(s) for s in spans) if t is not None],
        "_tok": totals,
    }
    return e


def pct_ok(got, values, q, what):
    if not values:
        assert got is None, f"{what}: expected null (no values), got {got}"
        return
    want = exact_q(values, q)
    assert got is not None, f"{what}: null, expected about {want}"
    assert abs(got - want) <= 0.01 * want + 0.0005 + 1e-9, \
        f"{what}: got {got}, exact order statistic {want} (more than 1% off)"


def check_figures(got, e, what=""):
    for k in ("count", "errors", "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens",
              "reasoning_tokens", "total_tokens", "unpriced_spans"):
        assert got[k] == e[k], f"{what} {k}: got {got[k]}, want {e[k]}"
    for k in ("error_rate", "tokens_per_request", "cost_usd", "cost_per_request"):
        if k == "tokens_per_request" and e[k] is None:
            continue  # test_tokens_per_request_without_tokens_is_null
        if e[k] is None:
            assert got[k] is None, f"{what} {k}: got {got[k]}, want null"
        else:
            # money is whole nano-dollars, a mean of it too
            tol = 1e-9 if k == "cost_per_request" else 1e-15
            assert got[k] == pytest.approx(e[k], rel=1e-9, abs=tol), f"{what} {k}: got {got[k]}, want {e[k]}"
    for name, q in QS.items():
        pct_ok(got[f"latency_{name}_ms"], e["_lat"], q, f"{what} latency_{name}_ms")
        if name != "p90":
            pct_ok(got[f"ttft_{name}_ms"], e["_ttft"], q, f"{what} ttft_{name}_ms")
    pct_ok(got["tps_p50"], e["_tps"], 0.5, f"{what} tps_p50")
    pct_ok(got["tokens_per_request_p50"], e["_tok"], 0.5, f"{what} tokens_per_request_p50")


def in_bucket(spans, start, width):
    return [s for s in spans if start <= s["start"] < start + width]


def group_key(s, by):
    return {"model": s["model"] or "", "provider": s["provider"] or "", "name": s["name"], "kind": s["kind"],
            "status": s["status"], "environment": TRACES[s["trace"]][3], "feature": s["feature"] or ""}[by]


def series_map(body):
    groups = [se["group"] for se in body["series"]]
    assert len(groups) == len(set(groups)), f"a group is listed twice: {groups}"
    return {se["group"]: se for se in body["series"]}


# --------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="module")
def seeded(module_lanterna):
    server = module_lanterna()
    send(server, SPANS, TRACES)
    wait_count(server, len(SPANS), RANGE)
    return server


def metrics(server, **params):
    return server.api("/api/v1/metrics", params=params)


# --------------------------------------------------------------------------
# totals, buckets, groups


def test_totals_and_hourly_points(seeded):
    body = metrics(seeded, **RANGE)
    assert body["interval"] == "1h" and body["group_by"] is None and body["source"] == "rollups"
    assert body["from"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(B // S))
    assert body["to"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime((B + 4 * HOUR) // S))
    e = expect(SPANS)
    check_figures(body["totals"], e, "totals")
    # spot values, written out
    assert body["totals"]["count"] == 10 and body["totals"]["errors"] == 2
    assert body["totals"]["input_tokens"] == 100 + 200 + 300 + 400 + 500 + 1000 + 50
    assert body["totals"]["cost_usd"] == pytest.approx(0.0217)
    assert body["totals"]["cost_per_request"] == pytest.approx(0.0217 / 7, abs=1e-9)
    # the mean over the 7 spans that reported tokens (not the 7 priced ones)
    assert body["totals"]["tokens_per_request"] == pytest.approx((100 + 200 + 300 + 400 + 500 + 1000 + 50 + 20 + 40
                                                                  + 60 + 80 + 100 + 200 + 10) / 7)
    assert body["totals"]["unpriced_spans"] == 1
    assert len(body["series"]) == 1 and body["series"][0]["group"] is None
    assert body["series"][0]["totals"] == body["totals"]
    points = body["series"][0]["points"]
    assert [p["time"] for p in points] == [time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime((B + h * HOUR) // S))
                                           for h in range(4)]
    assert [p["count"] for p in points] == [2, 2, 1, 5]
    for h, p in enumerate(points):
        check_figures(p, expect(in_bucket(SPANS, B + h * HOUR, HOUR)), f"hour {h}")
    # hour 1 had one priced and one unpriced span; hour 2 no TTFT
    assert points[1]["cost_usd"] == pytest.approx(0.003) and points[1]["unpriced_spans"] == 1
    assert points[2]["ttft_p50_ms"] is None and points[2]["error_rate"] == 1.0


def test_burn_over_a_past_range(seeded):
    body = metrics(seeded, **RANGE)
    days = 4 / 24
    total = expect(SPANS)["total_tokens"]
    assert body["burn"]["days"] == pytest.approx(days)
    assert body["burn"]["tokens_per_day"] == pytest.approx(total / days)
    assert body["burn"]["projected_tokens_30d"] == pytest.approx(total / days * 30)
    assert body["burn"]["cost_per_day_usd"] == pytest.approx(0.0217 / days)
    assert body["burn"]["projected_cost_30d_usd"] == pytest.approx(0.0217 / days * 30)


def test_burn_counts_from_the_first_data(seeded):
    """Two empty days before the data do not dilute the daily rate: the burn
    runs from the first bucket with data (and is named in `since`)."""
    body = metrics(seeded, **{**RANGE, "from": str(B - 2 * DAY)})
    days = 4 / 24
    total = expect(SPANS)["total_tokens"]
    assert body["burn"]["since"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(B // S))
    assert body["burn"]["days"] == pytest.approx(days)
    assert body["burn"]["tokens_per_day"] == pytest.approx(total / days)
    assert body["burn"]["projected_cost_30d_usd"] == pytest.approx(0.0217 / days * 30)
    # Data 11 minutes before the end of a 30-minute range: at least an hour,
    # here the whole range, so a fresh start is not multiplied by 130.
    frm, to = B + 2 * HOUR + 40 * MIN, B + 3 * HOUR + 10 * MIN
    body = metrics(seeded, **{"from": str(frm), "to": str(to), "interval": "1m"})
    assert body["burn"]["since"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(frm // S))
    assert body["burn"]["days"] == pytest.approx(30 / 1440)


@pytest.mark.parametrize("by", ROLLUP_GROUPS)
def test_group_by_rollup_dimension(seeded, by):
    body = metrics(seeded, group_by=by, **RANGE)
    assert body["group_by"] == by and body["source"] == "rollups"
    groups = {}
    for s in SPANS:
        groups.setdefault(group_key(s, by), []).append(s)
    got = series_map(body)
    assert set(got) == set(groups), f"group_by={by}: groups {sorted(got)}, want {sorted(groups)}"
    for g, members in groups.items():
        check_figures(got[g]["totals"], expect(members), f"{by}={g!r}")
        for h, p in enumerate(got[g]["points"]):
            check_figures(p, expect(in_bucket(members, B + h * HOUR, HOUR)), f"{by}={g!r} hour {h}")
    # largest group first
    counts = [se["totals"]["count"] for se in body["series"]]
    assert counts == sorted(counts, reverse=True)
    check_figures(body["totals"], expect(SPANS), f"group_by={by} totals")


def test_group_by_known_values(seeded):
    m = series_map(metrics(seeded, group_by="model", **RANGE))
    assert m["acme-small"]["totals"]["count"] == 5 and m["acme-small"]["totals"]["errors"] == 2
    assert m["acme-small"]["totals"]["cost_usd"] == pytest.approx(0.0185)
    assert m["acme-large"]["totals"]["unpriced_spans"] == 1
    assert m["acme-large"]["totals"]["cost_usd"] == pytest.approx(0.003)
    k = series_map(metrics(seeded, group_by="kind", **RANGE))
    assert {g: se["totals"]["count"] for g, se in k.items()} == {"LLM": 7, "CHAIN": 1, "TOOL": 1, "AGENT": 1}
    # the wrapper counts, with its latency, but none of its tokens
    assert k["AGENT"]["totals"]["total_tokens"] == 0 and k["AGENT"]["totals"]["cost_usd"] is None
    assert k["AGENT"]["totals"]["latency_p50_ms"] == pytest.approx(1200, rel=0.01)
    st = series_map(metrics(seeded, group_by="status", **RANGE))
    assert {g: se["totals"]["count"] for g, se in st.items()} == {"ok": 3, "error": 2, "unset": 5}
    assert st["error"]["totals"]["error_rate"] == 1.0


def per_trace(by):
    """Traces per user / session / tag, from the seeded spans."""
    out = {}
    for key, (user, session, tags, _) in TRACES.items():
        values = {"user": [user], "session": [session] if session else [], "tag": tags}[by]
        spans = [s for s in SPANS if s["trace"] == key]
        for v in values:
            out.setdefault(v, []).append(spans)
    return out


def trace_fig(traces):
    """Per-trace figures: count traces, trace duration, non-wrapper sums."""
    n = len(traces)
    errors = sum(any(s["status"] == "error" for s in t) for t in traces)
    sums = {k: sum(s[k] or 0 for t in traces for s in t if not s["wrapper"]) for k in ("in", "out")}
    costs = [sum(round(s["cost"] * 1e9) for s in t if s["cost"] is not None and not s["wrapper"])
             for t in traces if any(s["cost"] is not None and not s["wrapper"] for s in t)]
    lat = [(max(s["end"] for s in t) - min(s["start"] for s in t)) / MS for t in traces]
    return {"count": n, "errors": errors, "input_tokens": sums["in"], "output_tokens": sums["out"],
            "total_tokens": sums["in"] + sums["out"], "cost_usd": sum(costs) / 1e9 if costs else None,
            "_lat": lat}


@pytest.mark.parametrize("by", ("user", "session", "tag"))
def test_group_by_trace_dimension(seeded, by):
    body = metrics(seeded, group_by=by, **RANGE)
    assert body["group_by"] == by and body["source"] == "traces"
    want = per_trace(by)
    got = series_map(body)
    assert set(got) == set(want), f"group_by={by}: {sorted(got)} != {sorted(want)}"
    for g, traces in want.items():
        e, t = trace_fig(traces), got[g]["totals"]
        for k in ("count", "errors", "input_tokens", "output_tokens", "total_tokens"):
            assert t[k] == e[k], f"{by}={g} {k}: got {t[k]}, want {e[k]}"
        if e["cost_usd"] is None:
            assert t["cost_usd"] is None, f"{by}={g}: cost {t['cost_usd']}, want null"
        else:
            assert t["cost_usd"] == pytest.approx(e["cost_usd"]), f"{by}={g} cost"
        pct_ok(t["latency_p50_ms"], e["_lat"], 0.5, f"{by}={g} latency_p50_ms")
        pct_ok(t["latency_p99_ms"], e["_lat"], 0.99, f"{by}={g} latency_p99_ms")
        assert t["ttft_p50_ms"] is None and t["tps_p50"] is None, "TTFT/TPS are null per trace"
        starts = [min(s["start"] for s in tr) for tr in traces]
        assert [p["count"] for p in got[g]["points"]] == \
               [sum(B + h * HOUR <= st < B + (h + 1) * HOUR for st in starts) for h in range(4)]


def test_group_by_user_known_values(seeded):
    u = series_map(metrics(seeded, group_by="user", **RANGE))
    assert u["alice"]["totals"]["count"] == 2 and u["alice"]["totals"]["cost_usd"] == pytest.approx(0.004)
    assert u["bob"]["totals"]["errors"] == 2
    assert u["carol"]["totals"]["cost_usd"] is None
    assert u["dave"]["totals"]["latency_p50_ms"] == pytest.approx(2000, rel=0.01)
    # the wrapper's tokens are not added to the child's
    assert u["erin"]["totals"]["input_tokens"] == 50 and u["erin"]["totals"]["cost_usd"] == pytest.approx(0.0005)
    t = series_map(metrics(seeded, group_by="tag", **RANGE))
    assert {g: se["totals"]["count"] for g, se in t.items()} == {"prod": 3, "beta": 2, "batch": 1}


@pytest.mark.parametrize("params,keep", [
    ({"model": "acme-small"}, lambda s: s["model"] == "acme-small"),
    ({"provider": "anthropic"}, lambda s: s["provider"] == "anthropic"),
    ({"status": "error"}, lambda s: s["status"] == "error"),
    ({"status": "unset"}, lambda s: s["status"] == "unset"),
    ({"kind": "LLM"}, lambda s: s["kind"] == "LLM"),
    ({"kind": "llm"}, lambda s: s["kind"] == "LLM"),
    ({"kind": "TOOL"}, lambda s: s["kind"] == "TOOL"),
    ({"name": "pipeline"}, lambda s: s["name"] == "pipeline"),
    ({"environment": "staging"}, lambda s: TRACES[s["trace"]][3] == "staging"),
    ({"feature": "summarize"}, lambda s: s["feature"] == "summarize"),
    ({"model": "acme-small", "status": "error"}, lambda s: s["model"] == "acme-small" and s["status"] == "error"),
    ({"model": "acme-small", "environment": "prod"},
     lambda s: s["model"] == "acme-small" and TRACES[s["trace"]][3] == "prod"),
    ({"model": "nope"}, lambda s: False),
])
def test_filters(seeded, params, keep):
    body = metrics(seeded, **RANGE, **params)
    members = [s for s in SPANS if keep(s)]
    check_figures(body["totals"], expect(members), str(params))
    for h, p in enumerate(body["series"][0]["points"]):
        check_figures(p, expect(in_bucket(members, B + h * HOUR, HOUR)), f"{params} hour {h}")
    # and grouped
    body = metrics(seeded, group_by="provider", **RANGE, **params)
    want = {}
    for s in members:
        want.setdefault(s["provider"] or "", []).append(s)
    got = series_map(body)
    assert set(got) == set(want)
    for g, ms in want.items():
        check_figures(got[g]["totals"], expect(ms), f"{params} provider={g!r}")


def test_tokens_per_request_without_tokens_is_null(seeded):
    """Tokens per request is the mean over the spans that reported tokens:
    a group where none did (a chain, a priced tool call, a wrapper) has no
    mean, which is null, not 0."""
    k = series_map(metrics(seeded, group_by="kind", **RANGE))
    assert k["LLM"]["totals"]["tokens_per_request"] == pytest.approx(3060 / 7)
    for g in ("TOOL", "CHAIN", "AGENT"):
        assert k[g]["totals"]["tokens_per_request"] is None, f"kind {g}: {k[g]['totals']['tokens_per_request']}"
    body = metrics(seeded, name="search", **RANGE)
    assert body["totals"]["cost_usd"] == pytest.approx(0.0002)
    assert body["totals"]["tokens_per_request"] is None


def test_limit_groups_folds_the_rest_into_other(seeded):
    body = metrics(seeded, group_by="name", limit_groups="1", **RANGE)
    got = series_map(body)
    assert list(got) == ["chat", "(other)"]
    assert got["chat"]["totals"]["count"] == 7
    check_figures(got["(other)"]["totals"], expect([s for s in SPANS if s["name"] != "chat"]), "(other)")
    for h, p in enumerate(got["(other)"]["points"]):
        check_figures(p, expect(in_bucket([s for s in SPANS if s["name"] != "chat"], B + h * HOUR, HOUR)),
                      f"(other) hour {h}")
    check_figures(body["totals"], expect(SPANS), "totals with a group limit")
    body = metrics(seeded, group_by="user", limit_groups="2", **RANGE)
    got = series_map(body)
    # alice and bob have two traces each; the three others fold
    assert list(got) == ["alice", "bob", "(other)"]
    assert got["(other)"]["totals"]["count"] == 3
    assert got["(other)"]["totals"]["input_tokens"] == 400 + 1000 + 50
    # no fold when everything fits
    body = metrics(seeded, group_by="model", limit_groups="100", **RANGE)
    assert "(other)" not in series_map(body)


def test_intervals(seeded):
    # minutes: each span in its minute
    body = metrics(seeded, **{**RANGE, "interval": "1m"})
    assert body["interval"] == "1m"
    pts = body["series"][0]["points"]
    assert len(pts) == 240
    want = [len(in_bucket(SPANS, B + i * MIN, MIN)) for i in range(240)]
    assert [p["count"] for p in pts] == want
    for i in (5, 10, 60, 179, 181, 182):
        check_figures(pts[i], expect(in_bucket(SPANS, B + i * MIN, MIN)), f"minute {i}")
    check_figures(body["totals"], expect(SPANS), "minute totals")
    # days: the range widens to whole days
    body = metrics(seeded, **{**RANGE, "interval": "1d"})
    assert body["interval"] == "1d"
    d0 = B // DAY * DAY
    assert body["from"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(d0 // S))
    days = body["series"][0]["points"]
    assert sum(p["count"] for p in days) == len(SPANS)
    for i, p in enumerate(days):
        check_figures(p, expect(in_bucket(SPANS, d0 + i * DAY, DAY)), f"day {i}")
    # a range inside hours widens to whole hours
    body = metrics(seeded, **{"from": str(B + 30 * MIN), "to": str(B + 3 * HOUR + 1), "interval": "1h"})
    assert body["from"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(B // S))
    assert body["to"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime((B + 4 * HOUR) // S))
    assert body["totals"]["count"] == len(SPANS)
    # RFC 3339 bounds
    body = metrics(seeded, **{"from": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(B // S)),
                              "to": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime((B + HOUR) // S)),
                              "interval": "1h"})
    assert body["totals"]["count"] == 2


def test_default_interval_follows_the_range(seeded):
    assert metrics(seeded, **{"from": str(B), "to": str(B + 6 * HOUR)})["interval"] == "1m"
    assert metrics(seeded, **{"from": str(B), "to": str(B + 6 * HOUR + MIN)})["interval"] == "1h"
    assert metrics(seeded, **{"from": str(B - 13 * DAY), "to": str(B + DAY)})["interval"] == "1h"
    assert metrics(seeded, **{"from": str(B - 15 * DAY), "to": str(B + DAY)})["interval"] == "1d"
    # no bounds: the last 24 hours, hourly; every seeded span is in it
    body = metrics(seeded)
    assert body["interval"] == "1h"
    assert body["totals"]["count"] == len(SPANS)


def test_metrics_selection(seeded):
    body = metrics(seeded, metrics="count,cost_usd,latency_p95_ms", **RANGE)
    assert set(body["totals"]) == {"count", "cost_usd", "latency_p95_ms"}
    assert body["totals"]["count"] == len(SPANS)
    assert body["totals"]["cost_usd"] == pytest.approx(0.0217)
    assert set(body["series"][0]["points"][0]) == {"time", "count", "cost_usd", "latency_p95_ms"}
    assert "scores" not in body
    body = metrics(seeded, metrics="scores,errors", **RANGE)
    assert set(body["totals"]) == {"errors"} and "scores" in body
    assert "scores" in metrics(seeded, **RANGE)
    # each figure alone gives what it gives among all the figures
    full = metrics(seeded, group_by="model", **RANGE)
    names = [k for k in full["totals"]]
    for name in names:
        one = metrics(seeded, group_by="model", metrics=name, **RANGE)
        assert one["totals"] == {name: full["totals"][name]}, f"metrics={name}"
        for g, se in series_map(one).items():
            assert se["totals"] == {name: series_map(full)[g]["totals"][name]}, f"metrics={name} group {g}"


@pytest.mark.parametrize("params,needle", [
    ({"interval": "5m"}, "interval"),
    ({"interval": "1H"}, "interval"),
    ({"metrics": "count,latency_p42_ms"}, "latency_p42_ms"),
    ({"metrics": "bogus"}, "bogus"),
    ({"from": str(B + HOUR), "to": str(B)}, "from must be before to"),
    ({"from": str(B), "to": str(B)}, "from must be before to"),
    ({"from": str(B - 3 * DAY), "to": str(B), "interval": "1m"}, "2000"),
    ({"from": str(B - 90 * DAY), "to": str(B), "interval": "1h"}, "2000"),
    ({"group_by": "user", "model": "acme-small"}, "group_by=user"),
    ({"group_by": "session", "status": "error"}, "do not apply"),
    ({"group_by": "tag", "kind": "LLM"}, "do not apply"),
    ({"group_by": "colour"}, "group_by"),
    ({"limit_groups": "0"}, "limit_groups"),
    ({"limit_groups": "101"}, "limit_groups"),
    ({"limit_groups": "ten"}, "limit_groups"),
    ({"kind": "SPACESHIP"}, "kind"),
    ({"status": "fine"}, "status"),
    ({"from": "yesterday"}, "from"),
    ({"to": "2026-13-45"}, "to"),
])
def test_bad_parameters(seeded, params, needle):
    r = seeded.get("/api/v1/metrics", params=params)
    body = assert_error(r, 400, "bad_request")
    assert needle in body["error"]["message"], f"{params}: message {body['error']['message']!r} lacks {needle!r}"


def test_exactly_2000_buckets_is_fine(seeded):
    body = metrics(seeded, **{"from": str(B - 2000 * MIN + 4 * HOUR), "to": str(B + 4 * HOUR), "interval": "1m"})
    assert len(body["series"][0]["points"]) == 2000
    assert body["totals"]["count"] == len(SPANS)


def test_duplicates_are_not_counted_twice(lanterna):
    server = lanterna()
    spans = [sp("d1", B + 5 * MIN, 100, model="acme-small", provider="openai", tin=10, tout=5, cost=0.001)]
    send(server, spans, {"d1": ("u", None, [], "prod")})
    wait_count(server, 1, RANGE)
    # the same trace and span ids again (an SDK retry)
    tid, root = spans[0]["_tid"], spans[0]["_sid"]
    again = make_span(tid, root, "chat", spans[0]["start"], spans[0]["end"],
                      attrs=otlp_attrs(spans[0], ("u", None, [], "prod"), True), kind="client")
    server.export_ok(traces_request([again]), "json")
    server.export_ok(traces_request([again]), "pb")
    body = metrics(server, **RANGE)
    assert body["totals"]["count"] == 1 and body["totals"]["input_tokens"] == 10
    assert body["totals"]["cost_usd"] == pytest.approx(0.001)


# --------------------------------------------------------------------------
# percentile accuracy


def dist_spans(name, rng, n, draw):
    """n LLM spans whose latency (ms), TTFT (ms) and output tokens come from
    draw(rng), spread over four hours."""
    out = []
    for i in range(n):
        lat_ms, ttft_ms, tokens = draw(rng)
        start = B + rng.randrange(4) * HOUR + rng.randrange(HOUR - 10 * S)
        s = sp(f"{name}-{i}", start, 0, model=f"dist-{name}", provider="openai", tin=rng.randrange(1, 5000),
               tout=tokens, ttft_s=round(ttft_ms * 1000) / 1e6)
        s["end"] = start + round(lat_ms * MS)
        out.append(s)
    return out


def draw_uniform(rng):
    lat = rng.uniform(10, 2000)
    return lat, rng.uniform(9, lat * 0.9), rng.randrange(1, 2000)


def draw_lognormal(rng):
    lat = min(10 + rng.lognormvariate(math.log(300), 1.3), 3_000_000)
    return lat, 10 + rng.lognormvariate(math.log(80), 1.0), int(1 + rng.lognormvariate(math.log(200), 1.5))


def draw_bimodal(rng):
    if rng.random() < 0.7:
        lat = max(10, rng.gauss(60, 8))
        return lat, max(10, rng.gauss(20, 2)), rng.randrange(5, 50)
    lat = max(10, rng.gauss(4000, 400))
    return lat, max(10, rng.gauss(900, 100)), rng.randrange(500, 4000)


DISTS = {"uniform": draw_uniform, "lognormal": draw_lognormal, "bimodal": draw_bimodal}


def test_percentiles_within_one_percent(lanterna):
    server = lanterna()
    rng = random.Random(20261127)
    spans = {name: dist_spans(name, rng, 2500 if name == "bimodal" else 2000, draw) for name, draw in DISTS.items()}
    everything = [s for v in spans.values() for s in v]
    for i in range(0, len(everything), 500):
        chunk = everything[i:i + 500]
        req = []
        for s in chunk:
            tid = trace_id()
            s["_tid"] = tid
            req.append(make_span(tid, span_id(), s["name"], s["start"], s["end"], kind="client",
                                 attrs=otlp_attrs(s, ("u", None, [], "prod"), False)))
        server.export_ok(traces_request(req), "json")
    wait_count(server, len(everything), RANGE)

    def check(got, members, what):
        e = expect(members)
        assert got["count"] == len(members), what
        for name, q in QS.items():
            pct_ok(got[f"latency_{name}_ms"], e["_lat"], q, f"{what} latency_{name}_ms")
            if name != "p90":
                pct_ok(got[f"ttft_{name}_ms"], e["_ttft"], q, f"{what} ttft_{name}_ms")
        pct_ok(got["tps_p50"], e["_tps"], 0.5, f"{what} tps_p50")
        pct_ok(got["tokens_per_request_p50"], e["_tok"], 0.5, f"{what} tokens_per_request_p50")

    body = metrics(server, group_by="model", **RANGE)
    got = series_map(body)
    for name, members in spans.items():
        se = got[f"dist-{name}"]
        check(se["totals"], members, f"{name} over 4 hours")
        for h, p in enumerate(se["points"]):
            check(p, in_bucket(members, B + h * HOUR, HOUR), f"{name} hour {h}")
    # all three merged, from minute rollups and from day rollups
    check(body["totals"], everything, "all distributions")
    check(metrics(server, **{**RANGE, "interval": "1m"})["totals"], everything, "all, from minutes")
    d0 = B // DAY * DAY
    day = metrics(server, **{"from": str(d0), "to": str(d0 + 2 * DAY), "interval": "1d"})
    check(day["totals"], everything, "all, from days")
    # one distribution through a filter
    check(metrics(server, model="dist-lognormal", **RANGE)["totals"], spans["lognormal"], "lognormal filtered")
