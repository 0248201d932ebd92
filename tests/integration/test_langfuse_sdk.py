"""A team moving from Langfuse points its SDK at Lanterna: the real
`langfuse` package from PyPI checks its keys (GET /api/public/projects),
sends its observations over OTLP (/api/public/otel/v1/traces) and its
scores to POST /api/public/scores (SDK v5) or as score-create events to
POST /api/public/ingestion (v3, v4). Everything lands in the key's project."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ltlib import SLOW, assert_error, basic, bearer, cli_ok, create_key, poll

CLIENT = Path(__file__).with_name("langfuse_client.py")


def scores(server, key, **params):
    return server.api("/api/v1/scores", params=params, headers=bearer(key))["data"]


@pytest.fixture
def lf_server(lanterna, tmp_path):
    data = tmp_path / "data"
    server = lanterna(data=data)
    for name in ("lf", "other"):
        cli_ok("projects", "create", name, data=data)
    return server, create_key(data, "lf"), create_key(data, "other")


def test_langfuse_sdk_traces_and_scores(lf_server):
    server, key, other = lf_server
    p = subprocess.run([sys.executable, str(CLIENT), server.url, key["public_key"], key["secret_key"]],
                       capture_output=True, text=True, timeout=60 * SLOW)
    assert p.returncode == 0, p.stderr
    # The SDK logs what the server refused (e.g. "API error: ..."); nothing may be.
    assert "error" not in p.stderr.lower(), p.stderr
    run = json.loads(p.stdout.strip().splitlines()[-1])
    assert run["auth_check"] is True
    tid, gen = run["trace_id"], run["generation_id"]

    rows = poll(lambda: server.traces(headers=bearer(key), q=None) or None, what="the trace")
    t = next(r for r in rows if r["trace_id"] == tid)
    assert t["name"] == "answer"
    assert (t["user_id"], t["session_id"], t["tags"]) == ("u-42", "s-7", ["migrated"])
    assert t["models"] == ["gpt-4o-mini"] and t["total_tokens"] == 51
    assert t["environment"] == "staging"
    spans = {s["name"]: s for s in server.trace(tid, headers=bearer(key))["spans"]}
    assert spans["generate"]["kind"] == "LLM" and spans["generate"]["span_id"] == gen
    assert spans["retrieve"]["kind"] == "RETRIEVER"

    on_trace = {s["name"]: s for s in poll(lambda: len(scores(server, key, trace_id=tid)) == 3
                                           and scores(server, key, trace_id=tid), what="three trace scores")}
    assert on_trace["helpful"]["data_type"] == "numeric" and on_trace["helpful"]["value"] == 1
    assert on_trace["helpful"]["comment"] == "the user said thanks"
    assert on_trace["helpful"]["source"] == "api"
    assert on_trace["relevance"]["span_id"] == gen and on_trace["relevance"]["value"] == 0.25
    assert on_trace["tone"]["data_type"] == "categorical" and on_trace["tone"]["string_value"] == "polite"
    (resolved,) = scores(server, key, session_id="s-7")
    assert (resolved["name"], resolved["data_type"], resolved["value"]) == ("resolved", "boolean", 1)

    # The key's project only.
    assert not [r for r in server.traces(headers=bearer(other)) if r["trace_id"] == tid]
    assert scores(server, other, trace_id=tid) == []
    assert scores(server, other, session_id="s-7") == []


def test_langfuse_projects_endpoint(lf_server):
    server, key, other = lf_server
    for k in (key, other):
        r = server.get("/api/public/projects", headers=basic(k))
        assert r.status_code == 200, r.text
        (proj,) = r.json()["data"]
        assert proj["name"] == k["project"] and isinstance(proj["id"], str)
        assert proj["organization"]["name"] == "Lanterna" and proj["metadata"] == {}
    bad = {**key, "secret_key": key["secret_key"][:-2] + "xx"}
    assert_error(server.get("/api/public/projects", headers=basic(bad)), 401, "unauthorized")


def test_langfuse_scores_api_shapes(lf_server):
    server, key, _ = lf_server
    tid = "0af7651916cd43dd8448eb211c80319c"
    post = lambda body: server.post("/api/public/scores", data=json.dumps(body),
                                    headers={**basic(key), "Content-Type": "application/json"})

    # One object (Langfuse SDKs before v5): {"id": "<string>"}.
    r = post({"name": "accuracy", "value": 0.9, "traceId": tid, "id": "acc-1", "metadata": {"run": 3},
              "environment": "prod", "configId": "cfg"})
    assert r.status_code == 200, r.text
    first = r.json()["id"]
    assert isinstance(first, str) and first
    # The same id again is the same score, stored once.
    assert post({"name": "accuracy", "value": 0.9, "traceId": tid, "id": "acc-1"}).json()["id"] == first

    # A list (v5): all good -> {"message": "Accepted"}.
    r = post([{"name": "a", "value": 1, "traceId": tid}, {"name": "b", "value": "ok", "dataType": "CATEGORICAL",
                                                         "traceId": tid, "source": "ANNOTATION"}])
    assert r.status_code == 200 and r.json() == {"message": "Accepted"}, r.text

    # Bad items are named and skipped; the rest are stored.
    r = post([{"name": "c", "value": 2, "traceId": tid},
              {"name": "t", "value": "free text", "dataType": "TEXT", "traceId": tid},
              {"name": "d", "value": 1, "traceId": "cdef-1234-5678-90ab"},
              {"name": "e", "value": 3, "dataType": "BOOLEAN", "traceId": tid},
              {"name": "f", "value": 1, "traceId": tid, "source": "ROBOT"}])
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["accepted"], body["rejected"]) == (1, 4)
    msgs = [e["message"] for e in body["errors"]]
    assert msgs[0].startswith("item 1: dataType: 'TEXT' is not supported")
    assert msgs[1].startswith("item 2: traceId: expected 32 hexadecimal characters")
    assert msgs[2] == "item 3: value: a boolean score needs true, false, 0 or 1"
    assert msgs[3].startswith("item 4: source: 'ROBOT' is not supported")

    got = {s["name"]: s for s in scores(server, key, trace_id=tid)}
    assert sorted(got) == ["a", "accuracy", "b", "c"]
    assert got["b"]["source"] == "human" and got["b"]["string_value"] == "ok"
    assert got["accuracy"]["idempotency_key"] == "acc-1"

    # A single bad object, an empty list, and a body that is not JSON: 400.
    assert "needs a target" in assert_error(post({"name": "x", "value": 1}), 400, "bad_request")["error"]["message"]
    assert_error(post([]), 400, "bad_request")
    r = server.post("/api/public/scores", data="{nope", headers={**basic(key), "Content-Type": "application/json"})
    assert_error(r, 400, "bad_request")


def test_langfuse_ingestion_score_events(lf_server):
    """What Langfuse SDKs v3 and v4 send for scores (the body shape of their
    ScoreIngestionConsumer): score-create events, 207 per event."""
    server, key, _ = lf_server
    tid = "4bf92f3577b34da6a3ce929d0e0e4736"
    batch = {"batch": [
        {"id": "ev-1", "type": "score-create", "timestamp": "2026-03-01T10:00:00.000Z",
         "body": {"id": "s-1", "traceId": tid, "name": "quality", "value": 0.5, "environment": "default"}},
        {"id": "ev-2", "type": "trace-create", "timestamp": "2026-03-01T10:00:00.000Z", "body": {"id": tid}},
        {"id": "ev-3", "type": "score-create", "timestamp": "2026-03-01T10:00:01.000Z",
         "body": {"id": "s-3", "sessionId": "chat-9", "name": "solved", "value": 0, "dataType": "BOOLEAN",
                  "timestamp": "2026-03-01T09:59:00.000Z"}},
        {"id": "ev-4", "type": "score-create", "timestamp": "2026-03-01T10:00:02.000Z",
         "body": {"id": "s-4", "name": "orphan", "value": 1}},
    ], "metadata": {"batch_size": 4, "sdk_name": "python", "sdk_version": "3.15.0"}}
    r = server.post("/api/public/ingestion", data=json.dumps(batch),
                    headers={**basic(key), "Content-Type": "application/json"})
    assert r.status_code == 207, r.text
    body = r.json()
    assert body["successes"] == [{"id": "ev-1", "status": 201}, {"id": "ev-3", "status": 201}]
    errs = {e["id"]: e for e in body["errors"]}
    assert sorted(errs) == ["ev-2", "ev-4"] and all(e["status"] == 400 for e in errs.values())
    assert "trace-create" in errs["ev-2"]["message"] and "OpenTelemetry" in errs["ev-2"]["message"]
    assert "needs a target" in errs["ev-4"]["message"]

    (q,) = scores(server, key, trace_id=tid)
    # The event's timestamp is the score's time when the body has none.
    assert (q["name"], q["value"], q["time"], q["idempotency_key"]) == \
        ("quality", 0.5, "2026-03-01T10:00:00.000Z", "s-1")
    (s,) = scores(server, key, session_id="chat-9")
    assert (s["data_type"], s["value"], s["time"]) == ("boolean", 0, "2026-03-01T09:59:00.000Z")

    r = server.post("/api/public/ingestion", data=json.dumps([{"type": "score-create"}]),
                    headers={**basic(key), "Content-Type": "application/json"})
    assert "batch" in assert_error(r, 400, "bad_request")["error"]["message"]
