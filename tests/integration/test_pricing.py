"""Computed cost against the real server. The expected cost of every span is
worked out here from data/prices.json (and the override files the tests
write) by the rules of docs/prices.md: which entry applies, which rate each
token type gets, integer nano-dollars rounded half up per token type. Also:
unpriced models, reported costs, wrapper spans, --prices files (good and
bad), per-project overrides through POST/DELETE /api/v1/prices, and the
price lookup endpoint."""

from __future__ import annotations

import calendar
import json
import re
import subprocess
import time

import pytest
import requests

from ltlib import (LANTERNA_BIN, REPO, SLOW, assert_error, bearer, clean_env, cli_ok, create_key, free_port,
                   make_span, now_ns, span_id, trace_id, traces_request)

S = 1_000_000_000
HOUR = 3600 * S
TABLE = json.loads((REPO / "data" / "prices.json").read_text())
NOW = now_ns() - HOUR  # spans start an hour ago: today's prices apply


# --------------------------------------------------------------------------
# an independent reading of the price rules


def day_ns(s: str) -> int:
    y, m, d = map(int, s.split("-"))
    return calendar.timegm((y, m, d, 0, 0, 0)) * S


def date_ns(s: str) -> int:
    return day_ns(s) + 12 * HOUR


def globs(entry) -> list:
    return entry["match"] if isinstance(entry["match"], list) else [entry["match"]]


def glob_matches(glob: str, name: str) -> bool:
    rx = "^" + ".*".join(re.escape(part) for part in glob.lower().split("*")) + "$"
    return re.match(rx, name.lower(), re.S) is not None


def resolve(layers, model: str, provider: str = "", at_ns: int = NOW):
    """The entry that prices (model, provider) at at_ns; layers[0] is the
    shipped table, later layers are override files in order."""
    best, best_key = None, None
    for li, entries in enumerate(layers):
        for e in entries:
            eff = day_ns(e["effective_from"]) if e.get("effective_from") else None
            if eff is not None and eff > at_ns:
                continue
            ranks = [("*" not in g, len(g.split("*")[0]), len(g.replace("*", "")))
                     for g in globs(e) if glob_matches(g, model)]
            if not ranks:
                continue
            exact, prefix, literal = max(ranks)
            same_provider = "provider" not in e or not provider or e["provider"].lower() == provider.lower()
            key = (exact, prefix, literal, same_provider, li, eff if eff is not None else float("-inf"))
            if best_key is None or key >= best_key:  # a full tie: the later entry
                best, best_key = e, key
    return best


def nusd_rate(usd: float) -> int:
    return int(round(usd * 1e9))


def rates(e) -> dict:
    return {"input": nusd_rate(e["input"]), "output": nusd_rate(e["output"]),
            "cache_read": nusd_rate(e.get("cache_read", e["input"])),
            "cache_write": nusd_rate(e.get("cache_write", e["input"])),
            "reasoning": nusd_rate(e.get("reasoning", e["output"]))}


def price_tokens(n: int, per_million_nusd: int) -> int:
    return (n * per_million_nusd + 500_000) // 1_000_000 if n > 0 else 0


def cost_nusd(e, tin=0, tout=0, cache_read=0, cache_write=0, reasoning=0) -> int:
    r = rates(e)
    fresh = max(tin - cache_read, 0) if e.get("input_includes_cache_read") else tin
    reasoning = min(reasoning, tout)
    return (price_tokens(fresh, r["input"]) + price_tokens(cache_read, r["cache_read"])
            + price_tokens(cache_write, r["cache_write"])
            + price_tokens(tout - reasoning, r["output"]) + price_tokens(reasoning, r["reasoning"]))


def usd_to_nusd(v) -> int:
    return int(round(v * 1e9))


# --------------------------------------------------------------------------
# sending spans


def llm_attrs(model, provider, tin=None, tout=None, cache_read=None, cache_write=None, reasoning=None,
              cost=None, cost_key="gen_ai.usage.cost", kind=None):
    a = {"gen_ai.request.model": model}
    if kind:
        a["openinference.span.kind"] = kind
    else:
        a["gen_ai.operation.name"] = "chat"
    if provider:
        a["gen_ai.provider.name"] = provider
    for k, v in (("gen_ai.usage.input_tokens", tin), ("gen_ai.usage.output_tokens", tout),
                 ("gen_ai.usage.cache_read.input_tokens", cache_read),
                 ("gen_ai.usage.cache_creation.input_tokens", cache_write),
                 ("gen_ai.usage.reasoning.output_tokens", reasoning), (cost_key, cost)):
        if v is not None:
            a[k] = v
    return a


def send_one(server, attrs, start=None, headers=None, name="chat"):
    """One single-span trace; returns its trace id."""
    start = start or NOW
    tid = trace_id()
    server.export_ok(traces_request([make_span(tid, span_id(), name, start, start + 800_000_000, attrs=attrs,
                                               kind="client")]), "json", headers=headers)
    return tid


def span_of(server, tid, headers=None) -> dict:
    spans = server.trace(tid, headers=headers)["spans"]
    assert len(spans) == 1, spans
    return spans[0]


def assert_computed(server, tid, want_nusd, what, headers=None):
    s = span_of(server, tid, headers)
    assert s["cost_source"] == "computed", f"{what}: cost_source {s['cost_source']}"
    assert s["cost_usd"] is not None, f"{what}: no cost"
    assert usd_to_nusd(s["cost_usd"]) == want_nusd, \
        f"{what}: cost {s['cost_usd']} USD, expected {want_nusd / 1e9} USD"


def assert_unpriced(server, tid, what, headers=None):
    s = span_of(server, tid, headers)
    assert s["cost_usd"] is None and s["cost_source"] == "unknown", f"{what}: {s['cost_usd']} {s['cost_source']}"


def prices(server, headers=None, status=200, **params):
    return server.api("/api/v1/prices", params=params, headers=headers, status=status)


# --------------------------------------------------------------------------
# the shipped table

# (what, model, provider, token counts, start)
TABLE_CASES = [
    ("OpenAI, cached input inside input", "gpt-4o-mini-2024-07-18", "openai",
     dict(tin=12000, tout=800, cache_read=5000), NOW),
    ("OpenAI, upper case name", "GPT-4o-Mini", "openai", dict(tin=1000, tout=1000), NOW),
    ("OpenAI through a gateway", "gpt-4o", "azure.ai.openai", dict(tin=3000, tout=700, cache_read=1024), NOW),
    ("Anthropic, cache read and write reported apart", "claude-sonnet-4-5-20250929", "anthropic",
     dict(tin=3000, tout=500, cache_read=20000, cache_write=4000), NOW),
    ("Anthropic Haiku 3.5 on Bedrock", "us.anthropic.claude-3-5-haiku-20241022-v1:0", "aws.bedrock",
     dict(tin=2500, tout=333, cache_read=100, cache_write=77), NOW),
    ("o-series with reasoning", "o4-mini", "openai", dict(tin=2000, tout=3000, reasoning=2500), NOW),
    ("gpt-5 with reasoning and cache", "gpt-5", "openai", dict(tin=40000, tout=9000, reasoning=7000,
                                                               cache_read=30000), NOW),
    ("Gemini", "gemini-2.5-flash", "gcp.gemini", dict(tin=10000, tout=1000, cache_read=2000), NOW),
    ("Gemini lite beats the flash family", "gemini-2.5-flash-lite", "gcp.gemini", dict(tin=10000, tout=1000), NOW),
    ("output only", "gpt-4.1-nano", "openai", dict(tout=123457), NOW),
    ("input only (embedding)", "text-embedding-3-small", "openai", dict(tin=99999), NOW),
    ("o3 before its price cut", "o3", "openai", dict(tin=100000, tout=20000), date_ns("2025-06-01")),
    ("o3 after its price cut", "o3", "openai", dict(tin=100000, tout=20000), date_ns("2025-06-20")),
    ("gpt-4o alias before it moved", "gpt-4o", "openai", dict(tin=100000, tout=20000), date_ns("2024-06-01")),
    ("DeepSeek V3.2", "deepseek-chat", "deepseek", dict(tin=50000, tout=4000, cache_read=20000), NOW),
    ("DeepSeek V3.1", "deepseek-chat", "deepseek", dict(tin=50000, tout=4000, cache_read=20000),
     date_ns("2025-09-10")),
    ("Mistral without cache rates", "mistral-small-latest", "mistral_ai", dict(tin=7000, tout=300, cache_read=500),
     NOW),
    # rates that are not whole nano-dollars per token: each token type is
    # rounded half up on its own
    ("half a nano-dollar rounds up", "command-r7b-12-2024", "cohere", dict(tin=3, tout=1), NOW),
    ("fractions per token type", "gemini-1.5-flash-002", "gcp.gemini", dict(tin=5, tout=3, cache_read=2), NOW),
    ("fractions per token type, odd", "gemini-1.5-flash-8b", "gcp.gemini", dict(tin=7, tout=1, cache_read=1), NOW),
]


def test_table_cases_are_distinct():
    """The dated cases really pick different entries (else they test nothing)."""
    pick = {c[0]: resolve([TABLE["models"]], c[1], c[2], c[4]) for c in TABLE_CASES}
    assert pick["o3 before its price cut"] is not pick["o3 after its price cut"]
    assert pick["DeepSeek V3.2"] is not pick["DeepSeek V3.1"]
    assert pick["gpt-4o alias before it moved"] is not resolve([TABLE["models"]], "gpt-4o", "openai")
    assert globs(pick["OpenAI, cached input inside input"])[0] == "gpt-4o-mini*"
    assert pick["Anthropic, cache read and write reported apart"]["input_includes_cache_read"] is False
    for what, *_ in TABLE_CASES:
        assert pick[what] is not None, what
    # the rounding cases do round: 3 x 37.5 nano-dollars is 112.5
    e = pick["half a nano-dollar rounds up"]
    assert cost_nusd(e, tin=3) == 113 and (3 * rates(e)["input"]) % 1_000_000 == 500_000


def test_cost_from_the_shipped_table(server):
    sent = []
    for what, model, provider, tokens, start in TABLE_CASES:
        tid = send_one(server, llm_attrs(model, provider, **tokens), start=start)
        sent.append((what, model, provider, tokens, start, tid))
    total = 0
    for what, model, provider, tokens, start, tid in sent:
        entry = resolve([TABLE["models"]], model, provider, start)
        want = cost_nusd(entry, **tokens)
        assert want > 0, what
        assert_computed(server, tid, want, what)
        # the trace carries the same cost
        assert usd_to_nusd(server.trace(tid)["trace"]["cost_usd"]) == want, what
        if start == NOW:
            total += want
    # and the rollups add them up
    body = server.api("/api/v1/metrics", params={"from": str(NOW - HOUR), "to": str(NOW + HOUR), "interval": "1h",
                                                 "metrics": "count,cost_usd,unpriced_spans"})
    n_now = sum(1 for c in TABLE_CASES if c[4] == NOW)
    assert body["totals"]["count"] == n_now
    assert usd_to_nusd(body["totals"]["cost_usd"]) == total
    assert body["totals"]["unpriced_spans"] == 0


def test_gemini_cost_by_hand(server):
    """One case written out, as a check on the reading of the rules above."""
    e = resolve([TABLE["models"]], "gemini-2.5-flash", "gcp.gemini")
    tid = send_one(server, llm_attrs("gemini-2.5-flash", "gcp.gemini", tin=10000, tout=1000, cache_read=2000))
    want = (8000 * e["input"] + 2000 * e["cache_read"] + 1000 * e["output"]) / 1e6
    assert span_of(server, tid)["cost_usd"] == pytest.approx(want, rel=1e-9)


def test_unpriced_model(server):
    t1 = send_one(server, llm_attrs("my-finetune-7", "openai", tin=1200, tout=300))
    t2 = send_one(server, llm_attrs("my-finetune-7", "openai", tin=800, tout=100))
    t3 = send_one(server, llm_attrs("my-finetune-7", "openai"))  # no tokens: nothing to price
    assert resolve([TABLE["models"]], "my-finetune-7", "openai") is None
    for tid in (t1, t2, t3):
        assert_unpriced(server, tid, "my-finetune-7")
        assert server.trace(tid)["trace"]["cost_usd"] is None
    # a model family whose new members are not guessed
    t4 = send_one(server, llm_attrs("gpt-5.9-turbo", "openai", tin=10, tout=10))
    assert_unpriced(server, t4, "gpt-5.9-turbo")
    rows = {(r["provider"], r["model"]): r for r in server.api("/api/v1/models/unpriced")["data"]}
    r = rows[("openai", "my-finetune-7")]
    assert (r["spans"], r["input_tokens"], r["output_tokens"]) == (2, 2000, 400)
    assert r["priced_now"] is False
    assert ("openai", "gpt-5.9-turbo") in rows
    assert list(rows)[0] == ("openai", "my-finetune-7"), "most spans first"
    body = server.api("/api/v1/metrics", params={"from": str(NOW - HOUR), "to": str(NOW + HOUR), "interval": "1h",
                                                 "group_by": "model"})
    ft = {se["group"]: se for se in body["series"]}["my-finetune-7"]["totals"]
    assert ft["count"] == 3 and ft["unpriced_spans"] == 2 and ft["cost_usd"] is None
    # a range before the spans lists nothing
    assert server.api("/api/v1/models/unpriced", params={"from": "2020-01-01T00:00:00Z",
                                                         "to": "2020-02-01T00:00:00Z"})["data"] == []


def test_reported_cost_wins(server):
    t1 = send_one(server, llm_attrs("gpt-4o-mini", "openai", tin=100000, tout=100000, cost=0.5))
    t2 = send_one(server, llm_attrs("gpt-4o-mini", "openai", tin=100000, tout=100000, cost=0.25,
                                    cost_key="llm.cost.total"))
    t3 = send_one(server, llm_attrs("my-finetune-7", "openai", tin=10, tout=10, cost=0.001))
    t4 = send_one(server, llm_attrs("gpt-4o-mini", "openai", tin=100000, tout=100000, cost=0.0))
    for tid, usd in ((t1, 0.5), (t2, 0.25), (t3, 0.001), (t4, 0.0)):
        s = span_of(server, tid)
        assert s["cost_source"] == "reported" and s["cost_usd"] == pytest.approx(usd), s
    assert "my-finetune-7" not in {r["model"] for r in server.api("/api/v1/models/unpriced")["data"]}


def test_agent_wrapper_is_not_billed(server):
    """An agent span whose token counts sum its LLM child's: the trace costs
    what the child costs, and the wrapper is not priced (source none)."""
    entry = resolve([TABLE["models"]], "gpt-4o-mini", "openai")
    child_cost = cost_nusd(entry, tin=5000, tout=1000)
    for wrapper_cost in (None, 0.75):
        tid, agent, llm = trace_id(), span_id(), span_id()
        spans = [
            make_span(tid, agent, "agent run", NOW, NOW + 3 * S,
                      attrs=llm_attrs("gpt-4o-mini", "openai", tin=5000, tout=1000, kind="AGENT",
                                      cost=wrapper_cost)),
            make_span(tid, llm, "chat", NOW + S // 10, NOW + 2 * S, parent=agent, kind="client",
                      attrs=llm_attrs("gpt-4o-mini", "openai", tin=5000, tout=1000)),
        ]
        server.export_ok(traces_request(spans), "json")
        t = server.trace(tid)
        by_id = {s["span_id"]: s for s in t["spans"]}
        w, c = by_id[agent], by_id[llm]
        assert w["usage_rollup"] is True and w["kind"] == "AGENT"
        assert w["cost_source"] == "none" and w["cost_usd"] is None, w
        assert w["input_tokens"] == 5000, "the wrapper still shows its counts"
        assert c["cost_source"] == "computed" and usd_to_nusd(c["cost_usd"]) == child_cost
        assert usd_to_nusd(t["trace"]["cost_usd"]) == child_cost
        assert (t["trace"]["input_tokens"], t["trace"]["output_tokens"], t["trace"]["total_tokens"]) == \
               (5000, 1000, 6000)


# --------------------------------------------------------------------------
# --prices files


OVERRIDE = {"version": 1, "checked": "2026-11-27", "models": [
    {"match": "gpt-4o-mini*", "provider": "openai", "input": 1.0, "cache_read": 0.5, "output": 2.0,
     "input_includes_cache_read": True, "note": "our contract"},
    {"match": ["my-finetune-*", "ft:*"], "provider": "openai", "input": 3.0, "output": 12.0},
]}


def test_prices_file_overrides_the_table(lanterna, tmp_path):
    f = tmp_path / "ours.json"
    f.write_text(json.dumps(OVERRIDE))
    server = lanterna(args=["--prices", str(f)])
    layers = [TABLE["models"], OVERRIDE["models"]]
    cases = [("gpt-4o-mini", dict(tin=12000, tout=800, cache_read=5000)),
             ("gpt-4o-mini-2024-07-18", dict(tin=1000, tout=10)),
             ("my-finetune-3", dict(tin=4444, tout=555)),
             ("ft:gpt-4o:acme:1", dict(tin=10, tout=10)),
             ("gpt-4o", dict(tin=1000, tout=1000))]  # untouched by the file
    for model, tokens in cases:
        tid = send_one(server, llm_attrs(model, "openai", **tokens))
        entry = resolve(layers, model, "openai")
        assert_computed(server, tid, cost_nusd(entry, **tokens), f"{model} with --prices")
    assert resolve(layers, "gpt-4o-mini", "openai") is OVERRIDE["models"][0]
    got = prices(server, model="gpt-4o-mini", provider="openai")
    assert got["entries"] == len(TABLE["models"]) + len(OVERRIDE["models"])
    assert got["price"]["input"] == 1.0 and got["price"]["output"] == 2.0 and got["price"]["cache_read"] == 0.5
    assert got["price"]["cache_write"] == 1.0, "an absent cache_write bills at the input rate"
    assert got["price"]["reasoning"] == 2.0, "an absent reasoning rate is the output rate"


# Each entry is named by its note; the comment says which rule it is for.
RANKING = {"version": 1, "models": [
    {"match": "house-*", "input": 1, "output": 1, "note": "glob"},
    {"match": "house-model", "input": 2, "output": 2, "note": "exact"},              # 1: exact beats a glob
    {"match": "house-model", "provider": "openai", "input": 3, "output": 3,           # 4/7: same rank, later
     "note": "exact-openai"},
    {"match": "house-model", "provider": "anthropic", "effective_from": "2020-01-01",  # 6: latest date
     "input": 4, "output": 4, "note": "exact-anthropic-2020"},
    {"match": "house-model-v2*", "input": 5, "output": 5, "note": "v2"},              # 2: longer prefix
    {"match": "house-model-v2*", "effective_from": "2099-01-01", "input": 99, "output": 99,
     "note": "v2-future"},                                                            # not yet
    {"match": "*house-x*", "input": 6, "output": 6, "note": "x"},
    {"match": "*house-x-pro*", "input": 7, "output": 7, "note": "x-pro"},             # 3: more literals
    {"match": "solo-model", "provider": "openai", "input": 8, "output": 8,            # 4: still used when
     "note": "solo-openai"},                                                          #    nothing else matches
    {"match": "reasoner*", "input": 1, "output": 4, "reasoning": 10, "cache_read": 0.25, "cache_write": 2,
     "input_includes_cache_read": True, "note": "reasoner"},
    {"match": "later-model", "effective_from": "2099-01-01", "input": 1, "output": 1, "note": "later"},
]}

RANKING_CASES = [
    ("house-model", "", "exact-anthropic-2020"),  # no provider: every entry is a candidate
    ("house-model", "openai", "exact-openai"),
    ("house-model", "anthropic", "exact-anthropic-2020"),
    ("house-model", "mistral_ai", "exact"),
    ("HOUSE-MODEL", "mistral_ai", "exact"),
    ("house-other", "openai", "glob"),
    ("house-model-v2-mini", "openai", "v2"),
    ("us.house-x-pro-1", "aws.bedrock", "x-pro"),
    ("us.house-x-lite", "aws.bedrock", "x"),
    ("solo-model", "groq", "solo-openai"),
    ("reasoner-1", "openai", "reasoner"),
]


def test_prices_file_ranking_rules(lanterna, tmp_path):
    f = tmp_path / "ranking.json"
    f.write_text(json.dumps(RANKING))
    server = lanterna(args=["--prices", str(f)])
    layers = [TABLE["models"], RANKING["models"]]
    tokens = dict(tin=1_000_003, tout=200_001, cache_read=300_000, cache_write=50_001, reasoning=150_000)
    sent = [(model, provider, note, send_one(server, llm_attrs(model, provider, **tokens)))
            for model, provider, note in RANKING_CASES]
    # reasoning beyond the output count is clamped to it
    t_clamp = send_one(server, llm_attrs("reasoner-2", "openai", tin=10, tout=100, reasoning=1000))
    for model, provider, note, tid in sent:
        entry = resolve(layers, model, provider)
        assert entry["note"] == note, f"{model}/{provider}: the rules give {entry['note']}, the table says {note}"
        assert_computed(server, tid, cost_nusd(entry, **tokens), f"{model} via {provider or 'no provider'}")
    reasoner = resolve(layers, "reasoner-2", "openai")
    assert cost_nusd(reasoner, tin=10, tout=100, reasoning=1000) == 10 * 1000 + 100 * 10000
    assert_computed(server, t_clamp, 10 * 1000 + 100 * 10000, "reasoning clamped to output")
    # the lookup endpoint agrees (at the spans' start time)
    at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(NOW // S))
    for model, provider, note, _ in sent:
        entry = resolve(layers, model, provider)
        got = prices(server, model=model, provider=provider, at=at)["price"]
        assert got["match"] == globs(entry)[0] and got["input"] == entry["input"], (model, provider, got)

    # Without `at`, the entry that prices the model now: not one whose
    # effective_from is still in the future.
    t_later = send_one(server, llm_attrs("later-model", "openai", tin=10, tout=10))
    assert_unpriced(server, t_later, "a price that starts in 2099")
    assert resolve(layers, "later-model", "openai") is None
    rows = {r["model"]: r for r in server.api("/api/v1/models/unpriced")["data"]}
    got = prices(server, model="house-model-v2-mini", provider="openai")["price"]
    assert got["input"] == 5.0, \
        f"GET /api/v1/prices without at= returned an entry effective 2099-01-01: {got}"
    assert prices(server, model="later-model", provider="openai")["price"] is None
    assert rows["later-model"]["priced_now"] is False, "its only price starts in 2099"


def test_later_prices_file_wins(lanterna, tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps({"version": 1, "models": [{"match": "my-model", "input": 1.0, "output": 1.0}]}))
    b.write_text(json.dumps({"version": 1, "models": [{"match": "my-model", "input": 7.0, "output": 9.0}]}))
    server = lanterna(env={"LANTERNA_PRICES": f"{a},{b}"})
    tid = send_one(server, llm_attrs("my-model", "acme", tin=1_000_000, tout=1_000_000))
    assert span_of(server, tid)["cost_usd"] == pytest.approx(16.0)
    assert server.stop() == 0
    server.env = {}
    server.args = ["--prices", str(b), "--prices", str(a)]
    server.start()
    tid = send_one(server, llm_attrs("my-model", "acme", tin=1_000_000, tout=1_000_000))
    assert span_of(server, tid)["cost_usd"] == pytest.approx(2.0)


def bad_entry(**fields):
    e = {"match": "gpt-x*", "provider": "openai", "input": 1.0, "output": 2.0}
    e.update(fields)
    return {"version": 1, "models": [{"match": "fine-*", "input": 1, "output": 1}, e]}


def without(d, key):
    d = dict(d)
    d.pop(key)
    return d


BAD_FILES = [
    (bad_entry(input="cheap"), ['models[1]', '"gpt-x*"', 'field "input"', "number"]),
    (bad_entry(cache_raed=0.1), ['models[1]', '"gpt-x*"', '"cache_raed"']),
    (bad_entry(output=-1), ['models[1]', 'field "output"']),
    (bad_entry(input=20000), ['models[1]', 'field "input"']),
    (bad_entry(effective_from="2025-02-30"), ['models[1]', 'field "effective_from"']),
    (bad_entry(input_includes_cache_read="yes"), ['models[1]', 'field "input_includes_cache_read"']),
    (bad_entry(provider=""), ['models[1]', 'field "provider"']),
    (bad_entry(match=[]), ['models[1]', 'field "match"']),
    ({"version": 1, "models": [without(bad_entry()["models"][1], "output")]}, ['models[0]', 'field "output"']),
    ({"version": 2, "models": []}, ['"version"']),
    ({"version": 1, "models": {}}, ['"models"']),
    ("{not json", ["line 1"]),
]


def run_serve(args, tmp_path):
    port = free_port()
    try:
        return subprocess.run([LANTERNA_BIN, "serve", "--listen", f"127.0.0.1:{port}", "--data",
                               str(tmp_path / "d"), *args], capture_output=True, text=True, env=clean_env(),
                              timeout=15 * SLOW)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"lanterna serve {' '.join(args)} started with a bad price file\n{e.stderr}") from None


@pytest.mark.parametrize("content,needles", BAD_FILES, ids=[f"bad{i}" for i in range(len(BAD_FILES))])
def test_bad_prices_file_stops_startup(tmp_path, content, needles):
    f = tmp_path / "prices-bad.json"
    f.write_text(content if isinstance(content, str) else json.dumps(content))
    p = run_serve(["--prices", str(f)], tmp_path)
    out = p.stdout + p.stderr
    assert p.returncode != 0, out
    assert "prices-bad.json" in out, out
    for n in needles:
        assert n in out, f"the message does not say {n!r}:\n{out}"


def test_missing_prices_file_stops_startup(tmp_path):
    p = run_serve(["--prices", str(tmp_path / "nowhere.json")], tmp_path)
    assert p.returncode != 0
    assert "nowhere.json" in p.stdout + p.stderr


# --------------------------------------------------------------------------
# per-project overrides


@pytest.fixture
def two_projects(lanterna, tmp_path):
    data = tmp_path / "pricing-data"
    cli_ok("projects", "create", "acme", data=data)
    cli_ok("projects", "create", "globex", data=data)
    acme, globex = create_key(data, "acme"), create_key(data, "globex")
    return lanterna(data=data), bearer(acme), bearer(globex)


ACME_LAYER = {"version": 1, "models": [{"match": "my-finetune-*", "provider": "openai", "input": 3.0, "output": 12.0}]}
ACME_LAYER_2 = {"version": 1, "models": [{"match": "my-finetune-*", "provider": "openai", "input": 4.0,
                                          "output": 16.0, "cache_read": 0.4, "input_includes_cache_read": True}]}


def post_prices(server, body, headers=None):
    h = {"Content-Type": "application/json", **(headers or {})}
    return server.post("/api/v1/prices", data=body if isinstance(body, (str, bytes)) else json.dumps(body), headers=h)


def test_post_prices_is_per_project_and_survives_a_restart(two_projects):
    server, acme, globex = two_projects
    before = send_one(server, llm_attrs("my-finetune-2", "openai", tin=1000, tout=100), headers=acme)
    assert_unpriced(server, before, "before the POST", headers=acme)

    r = post_prices(server, ACME_LAYER, acme)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["entries"] == len(TABLE["models"]) + 1
    assert body["overrides"] == [ACME_LAYER]

    tokens = dict(tin=123456, tout=7890)
    t_acme = send_one(server, llm_attrs("my-finetune-2", "openai", **tokens), headers=acme)
    t_glob = send_one(server, llm_attrs("my-finetune-2", "openai", **tokens), headers=globex)
    t_dflt = send_one(server, llm_attrs("my-finetune-2", "openai", **tokens))
    want = cost_nusd(resolve([TABLE["models"], ACME_LAYER["models"]], "my-finetune-2", "openai"), **tokens)
    assert_computed(server, t_acme, want, "acme after the POST", headers=acme)
    assert_unpriced(server, t_glob, "globex", headers=globex)
    assert_unpriced(server, t_dflt, "default project")
    # spans stored before keep their unknown cost; the list says a price exists now
    assert_unpriced(server, before, "stored before the POST", headers=acme)
    rows = server.api("/api/v1/models/unpriced", headers=acme)["data"]
    assert [(r["model"], r["priced_now"]) for r in rows] == [("my-finetune-2", True)]
    rows = server.api("/api/v1/models/unpriced", headers=globex)["data"]
    assert [(r["model"], r["priced_now"]) for r in rows] == [("my-finetune-2", False)]

    got = prices(server, acme, model="my-finetune-2", provider="openai")
    assert got["price"]["match"] == "my-finetune-*" and got["price"]["input"] == 3.0
    assert got["overrides"] == [ACME_LAYER]
    assert prices(server, globex, model="my-finetune-2", provider="openai")["price"] is None
    assert prices(server, globex)["overrides"] == []
    assert prices(server, globex)["entries"] == len(TABLE["models"])

    # a second layer on top: the latest POST wins
    r = post_prices(server, ACME_LAYER_2, acme)
    assert r.status_code == 201, r.text
    assert r.json()["overrides"] == [ACME_LAYER, ACME_LAYER_2]
    layers = [TABLE["models"], ACME_LAYER["models"], ACME_LAYER_2["models"]]
    tokens2 = dict(tin=50000, tout=5000, cache_read=20000)
    t2 = send_one(server, llm_attrs("my-finetune-2", "openai", **tokens2), headers=acme)
    assert_computed(server, t2, cost_nusd(resolve(layers, "my-finetune-2", "openai"), **tokens2), "two layers",
                    headers=acme)

    server.restart()
    got = prices(server, acme, model="my-finetune-2", provider="openai")
    assert got["price"]["input"] == 4.0 and got["overrides"] == [ACME_LAYER, ACME_LAYER_2]
    t3 = send_one(server, llm_attrs("my-finetune-2", "openai", **tokens2), headers=acme)
    assert_computed(server, t3, cost_nusd(resolve(layers, "my-finetune-2", "openai"), **tokens2),
                    "after a restart", headers=acme)
    t4 = send_one(server, llm_attrs("my-finetune-2", "openai", **tokens2), headers=globex)
    assert_unpriced(server, t4, "globex after a restart", headers=globex)

    # DELETE drops acme's layers, and only acme's
    post_prices(server, ACME_LAYER, globex)
    r = requests.delete(server.url + "/api/v1/prices", headers=acme, timeout=30 * SLOW)
    assert r.status_code == 200, r.text
    assert r.json()["overrides"] == []
    assert prices(server, acme, model="my-finetune-2", provider="openai")["price"] is None
    t5 = send_one(server, llm_attrs("my-finetune-2", "openai", **tokens), headers=acme)
    assert_unpriced(server, t5, "after DELETE", headers=acme)
    t6 = send_one(server, llm_attrs("my-finetune-2", "openai", **tokens), headers=globex)
    assert_computed(server, t6, want, "globex's own layer", headers=globex)
    server.restart()
    assert prices(server, acme)["overrides"] == []
    assert prices(server, globex)["overrides"] == [ACME_LAYER]


def test_override_of_a_table_model_for_one_project(two_projects):
    server, acme, globex = two_projects
    layer = {"version": 1, "models": [{"match": "gpt-4o-mini*", "provider": "openai", "input": 0.1, "output": 0.2}]}
    assert post_prices(server, layer, acme).status_code == 201
    tokens = dict(tin=100000, tout=10000, cache_read=40000)
    ta = send_one(server, llm_attrs("gpt-4o-mini", "openai", **tokens), headers=acme)
    tg = send_one(server, llm_attrs("gpt-4o-mini", "openai", **tokens), headers=globex)
    # the override has no cache_read rate and no input_includes_cache_read:
    # cached tokens at the input rate, on top of the input count
    assert_computed(server, ta, cost_nusd(resolve([TABLE["models"], layer["models"]], "gpt-4o-mini", "openai"),
                                          **tokens), "acme's gpt-4o-mini", headers=acme)
    assert_computed(server, tg, cost_nusd(resolve([TABLE["models"]], "gpt-4o-mini", "openai"), **tokens),
                    "globex's gpt-4o-mini", headers=globex)


INVALID_BODIES = [
    ("", ["price file"]),
    ("{not json", ["line 1"]),
    ({"version": 2, "models": []}, ['"version"']),
    ({"version": 1}, ['"models"']),
    ({"version": 1, "models": [{"match": "m*", "input": 1, "output": 1, "cache_raed": 1}]},
     ['models[0]', '"m*"', '"cache_raed"']),
    ({"version": 1, "models": [{"match": "m*", "input": "1", "output": 1}]}, ['models[0]', 'field "input"']),
    ({"version": 1, "models": [{"match": "m*", "input": 1, "output": -2}]}, ['models[0]', 'field "output"']),
    ({"version": 1, "models": [{"input": 1, "output": 1}]}, ['models[0]', 'field "match"']),
    ({"version": 1, "models": [{"match": "ok*", "input": 1, "output": 1},
                               {"match": "m*", "input": 1, "output": 1, "effective_from": "soon"}]},
     ['models[1]', 'field "effective_from"']),
    ([1, 2], ["top level"]),
]


@pytest.mark.parametrize("body,needles", INVALID_BODIES, ids=[f"invalid{i}" for i in range(len(INVALID_BODIES))])
def test_post_prices_rejects_invalid_bodies(server, body, needles):
    r = post_prices(server, body)
    err = assert_error(r, 400, "bad_request")
    for n in needles:
        assert n in err["error"]["message"], f"message {err['error']['message']!r} lacks {n!r}"
    assert prices(server)["overrides"] == [], "an invalid body must not be stored"


# --------------------------------------------------------------------------
# GET /api/v1/prices


def expect_price(entry):
    r = {k: v / 1e9 for k, v in rates(entry).items()}
    r["match"] = globs(entry)[0]
    r["provider"] = entry.get("provider")
    r["input_includes_cache_read"] = bool(entry.get("input_includes_cache_read", False))
    return r


@pytest.mark.parametrize("model,provider,at", [
    ("gpt-4o", "openai", None),
    ("gpt-4o", "openai", "2024-06-01T00:00:00Z"),
    ("gpt-4o-2024-08-06", "openai", None),
    ("gpt-4o-mini-2024-07-18", "openai", None),
    ("gpt-4o", "", None),
    ("GPT-4O", "azure.ai.openai", None),
    ("claude-opus-4-1-20250805", "anthropic", None),
    ("claude-opus-4-5-20251101", "anthropic", None),
    ("us.anthropic.claude-opus-4-1-20250805-v1:0", "aws.bedrock", None),
    ("o3", "openai", "2025-06-09T23:59:59Z"),
    ("o3", "openai", "2025-06-10T00:00:00Z"),
    ("mistral-large-latest", "mistral_ai", "2025-12-01T00:00:00Z"),
    ("mistral-large-latest", "mistral_ai", None),
    ("gemini-2.5-pro", "gcp.gemini", None),
])
def test_get_prices_resolves(shared_server, model, provider, at):
    params = {"model": model, "provider": provider}
    at_ns = NOW
    if at:
        params["at"] = at
        at_ns = calendar.timegm(time.strptime(at, "%Y-%m-%dT%H:%M:%SZ")) * S
    entry = resolve([TABLE["models"]], model, provider, at_ns)
    assert entry is not None
    got = prices(shared_server, **params)
    assert got["entries"] == len(TABLE["models"]) and got["model"] == model
    want = expect_price(entry)
    p = got["price"]
    assert p["match"] == want["match"] and p["provider"] == want["provider"], (p, want)
    for k in ("input", "output", "cache_read", "cache_write", "reasoning"):
        assert p[k] == pytest.approx(want[k], rel=1e-12), f"{k}: {p[k]} != {want[k]}"
    assert p["input_includes_cache_read"] == want["input_includes_cache_read"]


def test_get_prices_without_a_match_or_model(shared_server):
    got = prices(shared_server, model="no-such-model-xyz", provider="openai")
    assert got["price"] is None and got["entries"] == len(TABLE["models"])
    got = prices(shared_server, model="gpt-5.9-turbo")  # a new family member is not guessed
    assert got["price"] is None
    got = prices(shared_server)
    assert got["entries"] == len(TABLE["models"]) and got["overrides"] == [] and "price" not in got
    r = shared_server.get("/api/v1/prices", params={"model": "gpt-4o", "at": "last tuesday"})
    assert_error(r, 400, "bad_request")
