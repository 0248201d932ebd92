"""Every attribute dialect, as the real instrumentation libraries send it.

tests/fixtures/dialects/<dialect>/ holds the OTLP/HTTP requests captured
from each library (scripts/gen-dialect-fixtures.sh) and expected.json, the
canonical record every span must map to (docs/semconv.md). Each request is
posted byte for byte, with its recorded content type and encoding, and
every span read back through the query API is compared field by field.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ltlib import poll

DIALECTS = Path(__file__).resolve().parents[1] / "fixtures" / "dialects"
NAMES = sorted(p.name for p in DIALECTS.iterdir() if (p / "expected.json").exists())

TOKENS = ("input_tokens", "output_tokens", "total_tokens", "cache_read_tokens", "cache_write_tokens",
          "reasoning_tokens")
# Read from the API only when the store renders them.
OPTIONAL = ("feature", "usage_rollup", "scores")


def post_fixtures(server, d: Path) -> None:
    for m in json.loads((d / "manifest.json").read_text()):
        headers = {"Content-Type": m["content_type"]}
        if m["content_encoding"]:
            headers["Content-Encoding"] = m["content_encoding"]
        r = server.post("/v1/" + m["signal"], data=(d / m["file"]).read_bytes(), headers=headers)
        assert r.status_code == 200, f"{d.name}/{m['file']}: {r.status_code} {r.text}"


def first_text(msgs):
    if not msgs:
        return None
    c = msgs[0].get("content")
    if isinstance(c, list):
        c = next((p.get("text") for p in c if isinstance(p, dict) and p.get("type") == "text"), None)
    return c


def canonical(span: dict) -> dict:
    """The API span reduced to the fields expected.json pins."""
    ins, outs = span.get("input_messages") or [], span.get("output_messages") or []
    got = {k: span.get(k) for k in ("name", "kind", "provider", "request_model", "response_model", *TOKENS,
                                    "cost_source", "session_id", "user_id", "finish_reason")}
    got.update({
        "ttft": span.get("ttft_ms") is not None,
        "input_roles": [m.get("role") for m in ins],
        "input_first": first_text(ins),
        "output_roles": [m.get("role") for m in outs],
        "output_first": first_text(outs),
        "tool_calls": [c.get("name") for m in outs for c in (m.get("tool_calls") or [])],
        "documents": len(span.get("documents") or []),
    })
    for k in OPTIONAL:
        if k in span:
            got[k] = span[k]
    return got


@pytest.fixture(scope="module")
def loaded(module_lanterna):
    server = module_lanterna()
    for name in NAMES:
        post_fixtures(server, DIALECTS / name)
    return server


@pytest.mark.parametrize("dialect", NAMES)
def test_dialect_maps_every_span(loaded, dialect):
    exp = json.loads((DIALECTS / dialect / "expected.json").read_text())
    traces = {}
    for t in sorted({s["trace_id"] for s in exp["spans"]}):
        want = sum(1 for s in exp["spans"] if s["trace_id"] == t)
        traces[t] = poll(lambda t=t, want=want: (lambda d: d if len(d["spans"]) >= want else None)(
            loaded.trace(t)), what=f"{dialect} trace {t}")
    by_id = {s["span_id"]: s for t in traces.values() for s in t["spans"]}
    problems = []
    for e in exp["spans"]:
        span = by_id.get(e["span_id"])
        if span is None:
            problems.append(f"{e['span_id']} ({e['name']}): missing")
            continue
        got = canonical(span)
        for k, want in e.items():
            if k in ("trace_id", "span_id") or k not in got:
                continue
            have = got[k]
            if k == "cost_source" and want == "unknown" and have == "computed":
                continue  # priced from the price table after mapping
            if k == "scores":
                have = [{f: s.get(f) for f in w} for s, w in zip(have, want)] if len(have) == len(want) else have
            if have != want:
                problems.append(f"{e['span_id']} ({e['name']}) {k}: got {have!r}, want {want!r}")
    for sid in exp["dropped"]:
        if sid in by_id:
            problems.append(f"{sid}: a pending-span placeholder was stored")
    assert not problems, f"{dialect}:\n" + "\n".join(problems)


def test_every_dialect_has_fixtures():
    want = {"openinference", "openllmetry", "otel-genai", "langfuse", "pydantic-ai", "vercel-ai-v4", "vercel-ai-v6",
            "vercel-ai-v7"}
    assert want <= set(NAMES)
