"""Scores and feedback against the real binary: the three data types, the
batch form (all or nothing), idempotency keys, thumbs-up/down feedback,
every validation rule with its message, isolation between projects, scores
in the trace detail, the score filters of the trace and span lists, and
scores surviving a restart."""

from __future__ import annotations

import json

import pytest

from ltlib import (assert_error, bearer, cli_ok, create_key, make_span, now_ns, span_id, trace_id,
                   traces_request)


def post(server, path, body, headers=None, raw: bytes | None = None):
    data = raw if raw is not None else json.dumps(body).encode()
    h = {"Content-Type": "application/json", **(headers or {})}
    return server.post(path, data=data, headers=h)


def add(server, body, headers=None, status=201) -> dict:
    r = post(server, "/api/v1/scores", body, headers)
    assert r.status_code == status, f"POST /api/v1/scores {body} -> {r.status_code} {r.text[:300]}"
    return r.json()


def scores(server, headers=None, **params) -> list:
    return server.api("/api/v1/scores", params=params, headers=headers)["data"]


def export_trace(server, headers=None):
    """One stored trace (root + child); returns (trace_id, root_id, child_id)."""
    tid, root, child, t = trace_id(), span_id(), span_id(), now_ns()
    server.export_ok(traces_request([
        make_span(tid, root, "answer", t, t + 10_000_000),
        make_span(tid, child, "chat", t + 1_000_000, t + 9_000_000, parent=root,
                  attrs={"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini"})]),
        headers=headers)
    return tid, root, child


def test_each_data_type_round_trips(server):
    tid = trace_id()
    a = add(server, {"trace_id": tid, "name": "accuracy", "value": 0.87, "comment": "judged by gpt-4o"})
    b = add(server, {"trace_id": tid, "name": "correct", "value": True, "source": "human"})
    c = add(server, {"session_id": "conv-1", "name": "tone", "value": "polite", "source": "evaluator"})
    d = add(server, {"trace_id": tid, "name": "tone", "data_type": "categorical", "string_value": "curt"})
    e = add(server, {"trace_id": tid, "name": "passed", "data_type": "boolean", "value": 0,
                     "time": "2026-01-02T03:04:05Z"})
    assert a == {"id": a["id"], "duplicate": False}
    assert a["id"] < b["id"] < c["id"] < d["id"] < e["id"]

    rows = {r["id"]: r for r in scores(server)}
    assert rows[a["id"]]["data_type"] == "numeric" and rows[a["id"]]["value"] == 0.87
    assert rows[a["id"]]["source"] == "api" and rows[a["id"]]["comment"] == "judged by gpt-4o"
    assert rows[a["id"]]["trace_id"] == tid and rows[a["id"]]["span_id"] is None
    assert rows[b["id"]]["data_type"] == "boolean" and rows[b["id"]]["value"] == 1
    assert rows[b["id"]]["source"] == "human"
    assert rows[c["id"]]["data_type"] == "categorical" and rows[c["id"]]["string_value"] == "polite"
    assert rows[c["id"]]["value"] is None and rows[c["id"]]["session_id"] == "conv-1"
    assert rows[c["id"]]["trace_id"] is None
    assert rows[d["id"]]["string_value"] == "curt"
    assert rows[e["id"]]["value"] == 0 and rows[e["id"]]["time"] == "2026-01-02T03:04:05.000Z"
    assert rows[e["id"]]["time_ns"] == 1767323045_000_000_000


def test_scores_may_arrive_before_their_trace(server):
    tid = trace_id()
    add(server, {"trace_id": tid, "name": "early", "value": 1})
    assert server.get(f"/api/v1/traces/{tid}").status_code == 404
    assert [s["name"] for s in scores(server, trace_id=tid)] == ["early"]


def test_batch_is_all_or_nothing(server):
    tid = trace_id()
    items = [{"trace_id": tid, "name": f"s{i}", "value": i} for i in range(5)]
    body = add(server, items)
    assert len(body["ids"]) == 5 and body["duplicate"] == [False] * 5
    assert len(scores(server)) == 5

    bad = [{"trace_id": tid, "name": "fine", "value": 1}, {"trace_id": tid, "name": "fine", "value": 2},
           {"trace_id": tid, "name": "", "value": 3}]
    r = post(server, "/api/v1/scores", bad)
    err = assert_error(r, 400, "bad_request")
    assert err["error"]["message"].startswith("item 2: name:")
    assert len(scores(server)) == 5

    big = [{"trace_id": tid, "name": "x", "value": 1}] * 1001
    r = post(server, "/api/v1/scores", big)
    assert "at most 1000 scores" in assert_error(r, 400, "bad_request")["error"]["message"]
    r = post(server, "/api/v1/scores", [])
    assert "empty" in assert_error(r, 400, "bad_request")["error"]["message"]


def test_idempotency_key_returns_the_first_score(server):
    tid = trace_id()
    first = add(server, {"trace_id": tid, "name": "acc", "value": 0.5, "idempotency_key": "run-7/acc"})
    again = add(server, {"trace_id": tid, "name": "acc", "value": 0.9, "idempotency_key": "run-7/acc"}, status=200)
    assert again == {"id": first["id"], "duplicate": True}
    body = add(server, [{"trace_id": tid, "name": "acc", "value": 1, "idempotency_key": "run-7/acc"},
                        {"trace_id": tid, "name": "other", "value": 1, "idempotency_key": "run-7/other"}])
    assert body["ids"][0] == first["id"] and body["duplicate"] == [True, False]
    rows = scores(server, name="acc")
    assert len(rows) == 1 and rows[0]["value"] == 0.5 and rows[0]["idempotency_key"] == "run-7/acc"


def test_feedback(server):
    tid, root, _ = export_trace(server)
    r = post(server, "/api/v1/feedback", {"trace_id": tid, "value": 1, "comment": "great answer"})
    assert r.status_code == 201, r.text
    r = post(server, "/api/v1/feedback", {"trace_id": tid, "span_id": root, "value": -1})
    assert r.status_code == 201, r.text
    r = post(server, "/api/v1/feedback", {"trace_id": tid, "value": -1, "idempotency_key": "click-1"})
    assert r.status_code == 201
    r = post(server, "/api/v1/feedback", {"trace_id": tid, "value": -1, "idempotency_key": "click-1"})
    assert r.status_code == 200 and r.json()["duplicate"] is True
    rows = scores(server, name="user_feedback")
    assert len(rows) == 3
    assert {(x["value"], x["span_id"]) for x in rows} == {(1, None), (-1, root), (-1, None)}
    assert all(x["source"] == "human" and x["data_type"] == "numeric" for x in rows)

    for value in (0, 2, "1", True, None):
        r = post(server, "/api/v1/feedback", {"trace_id": tid, "value": value})
        assert "feedback is 1" in assert_error(r, 400, "bad_request")["error"]["message"], value
    r = post(server, "/api/v1/feedback", {"value": 1})
    assert "trace_id: required" in assert_error(r, 400, "bad_request")["error"]["message"]
    r = post(server, "/api/v1/feedback", {"trace_id": tid, "value": 1, "name": "x"})
    assert "unknown field 'name'" in assert_error(r, 400, "bad_request")["error"]["message"]


TID = "5b8efff798038103d269b633813fc60c"


@pytest.mark.parametrize("body, message", [
    ({"name": "x", "value": 1}, "a score needs a target"),
    ({"trace_id": TID, "session_id": "s", "name": "x", "value": 1}, "either trace_id or session_id"),
    ({"span_id": "eee19b7ec3c1b174", "name": "x", "value": 1}, "span_id needs the trace_id"),
    ({"trace_id": "abc", "name": "x", "value": 1}, "trace_id: expected 32 hexadecimal characters"),
    ({"trace_id": TID, "span_id": "xyz", "name": "x", "value": 1}, "span_id: expected 16 hexadecimal"),
    ({"trace_id": TID, "value": 1}, "name: required"),
    ({"trace_id": TID, "name": "n" * 201, "value": 1}, "name: at most 200 characters"),
    ({"trace_id": TID, "name": "x", "value": 1, "comment": "c" * 10001}, "comment: at most 10000 characters"),
    ({"trace_id": TID, "name": "x"}, "value: required"),
    ({"trace_id": TID, "name": "x", "value": [1]}, "value: expected a number"),
    ({"trace_id": TID, "name": "x", "value": 1, "data_type": "percent"}, "data_type: expected numeric"),
    ({"trace_id": TID, "name": "x", "value": "good", "data_type": "numeric"}, "numeric score needs a number"),
    ({"trace_id": TID, "name": "x", "value": 2, "data_type": "boolean"}, "boolean score needs true, false, 0 or 1"),
    ({"trace_id": TID, "name": "x", "data_type": "categorical"}, "categorical score needs a label"),
    ({"trace_id": TID, "name": "x", "value": 3, "data_type": "categorical"}, "takes a string label"),
    ({"trace_id": TID, "name": "x", "value": "l" * 201}, "at most 200 characters"),
    ({"trace_id": TID, "name": "x", "string_value": "l" * 201}, "string_value: at most 200 characters"),
    ({"trace_id": TID, "name": "x", "value": 1, "string_value": "a"}, "only categorical scores"),
    ({"trace_id": TID, "name": "x", "value": 1, "source": "robot"}, "source: expected api, human or evaluator"),
    ({"trace_id": TID, "name": "x", "value": 1, "time": "yesterday"}, "time: expected an RFC 3339 time"),
    ({"trace_id": TID, "name": "x", "value": 1, "idempotency_key": ""}, "idempotency_key: must not be empty"),
    ({"trace_id": TID, "name": "x", "value": 1, "trace": "t"}, "unknown field 'trace'"),
    ("just a string", "expected a JSON object"),
    ([1], "item 0: expected a JSON object"),
])
def test_validation_messages(server, body, message):
    r = post(server, "/api/v1/scores", body)
    got = assert_error(r, 400, "bad_request")["error"]["message"]
    assert message in got, got


def test_bad_bodies(server):
    r = post(server, "/api/v1/scores", None, raw=b'{"trace_id": ')
    assert "not valid JSON" in assert_error(r, 400, "bad_request")["error"]["message"]
    r = post(server, "/api/v1/scores", None, raw=b"")
    assert "empty" in assert_error(r, 400, "bad_request")["error"]["message"]
    r = post(server, "/api/v1/scores", None, raw=b'{"trace_id":"%s","name":"x","value":1e999}' % TID.encode())
    assert_error(r, 400, "bad_request")  # not a finite number
    big = {"trace_id": TID, "name": "x", "value": 1, "comment": "c" * (1 << 20)}
    assert_error(post(server, "/api/v1/scores", big), 413, "payload_too_large")
    assert scores(server) == []


def test_list_filters_and_pages(server):
    t1, t2 = trace_id(), trace_id()
    sp = span_id()
    add(server, [{"trace_id": t1, "name": "acc", "value": v / 10, "time": 1767323045_000_000_000 + v}
                 for v in range(10)])
    add(server, {"trace_id": t2, "span_id": sp, "name": "rel", "value": 1, "source": "evaluator"})
    add(server, {"session_id": "s-9", "name": "tone", "value": "ok"})
    assert len(scores(server, trace_id=t1)) == 10
    assert [s["name"] for s in scores(server, trace_id=t2, span_id=sp)] == ["rel"]
    assert [s["name"] for s in scores(server, session_id="s-9")] == ["tone"]
    assert [s["name"] for s in scores(server, source="evaluator")] == ["rel"]
    assert [s["name"] for s in scores(server, data_type="categorical")] == ["tone"]
    assert [s["value"] for s in scores(server, name="acc", min_value=0.35, max_value=0.6)] == [0.6, 0.5, 0.4]
    assert len(scores(server, name="acc", **{"from": "1767323045000000005", "to": "2026-01-02T03:04:06Z"})) == 5

    pages = server.all_pages("/api/v1/scores", name="acc", limit=3)
    assert [len(p) for p in pages] == [3, 3, 3, 1]
    times = [s["time_ns"] for p in pages for s in p]
    assert times == sorted(times, reverse=True) and len(set(times)) == 10

    for params, message in [({"trace_id": "zz"}, "trace_id"), ({"source": "x"}, "source"),
                            ({"limit": "0"}, "limit"), ({"min_value": "abc"}, "min_value"),
                            ({"cursor": "nonsense"}, "cursor"), ({"data_type": "x"}, "data_type")]:
        r = server.get("/api/v1/scores", params=params)
        assert message in assert_error(r, 400, "bad_request")["error"]["message"], params


def test_trace_detail_and_list_filters(server):
    tid, root, child = export_trace(server)
    other, _, other_child = export_trace(server)
    plain, _, _ = export_trace(server)
    add(server, {"trace_id": tid, "name": "quality", "value": 0.9})
    add(server, {"trace_id": tid, "span_id": child, "name": "relevance", "value": 0.4})
    add(server, {"trace_id": other, "span_id": other_child, "name": "quality", "value": 0.2})
    assert post(server, "/api/v1/feedback", {"trace_id": tid, "value": 1}).status_code == 201
    assert post(server, "/api/v1/feedback", {"trace_id": other, "value": -1}).status_code == 201

    d = server.trace(tid)
    assert sorted(s["name"] for s in d["scores"]) == ["quality", "user_feedback"]
    by_span = {s["span_id"]: s for s in d["spans"]}
    assert [s["name"] for s in by_span[child]["scores"]] == ["relevance"]
    assert by_span[root]["scores"] == []
    assert server.trace(plain)["scores"] == []

    def ids(**params):
        return sorted(t["trace_id"] for t in server.traces(**params))

    assert ids(score_name="quality") == sorted([tid, other])
    assert ids(score_name="quality", score_min="0.5") == [tid]
    assert ids(score_name="quality", score_max="0.5") == [other]
    assert ids(score_name="relevance", score_min="0.3", score_max="0.5") == [tid]
    assert ids(score_name="nothing") == []
    assert ids(feedback="up") == [tid]
    assert ids(feedback="down") == [other]
    assert [s["span_id"] for s in server.spans(score_name="relevance")] == [child]
    assert [s["span_id"] for s in server.spans(score_name="quality")] == [other_child]
    assert_error(server.get("/api/v1/traces", params={"feedback": "meh"}), 400, "bad_request")
    assert_error(server.get("/api/v1/traces", params={"score_min": "1"}), 400, "bad_request")
    assert_error(server.get("/api/v1/traces", params={"score_name": "q", "score_max": "x"}), 400, "bad_request")


def test_projects_are_isolated(lanterna, tmp_path):
    data = tmp_path / "scores-data"
    cli_ok("projects", "create", "acme", data=data)
    cli_ok("projects", "create", "globex", data=data)
    acme, globex = create_key(data, "acme"), create_key(data, "globex")
    server = lanterna(data=data)
    tid, _, _ = export_trace(server, headers=bearer(acme))
    add(server, {"trace_id": tid, "name": "acme-score", "value": 1, "idempotency_key": "k"}, headers=bearer(acme))
    # The same key in another project is another score, and it is invisible to acme.
    g = add(server, {"trace_id": tid, "name": "globex-score", "value": 1, "idempotency_key": "k"},
            headers=bearer(globex))
    assert g["duplicate"] is False
    assert post(server, "/api/v1/feedback", {"trace_id": tid, "value": 1}, headers=bearer(globex)).status_code == 201

    assert [s["name"] for s in scores(server, headers=bearer(acme))] == ["acme-score"]
    assert sorted(s["name"] for s in scores(server, headers=bearer(globex))) == ["globex-score", "user_feedback"]
    assert scores(server) == []  # the default project
    assert [s["name"] for s in server.trace(tid, headers=bearer(acme))["scores"]] == ["acme-score"]
    assert server.traces(headers=bearer(acme), feedback="up") == []
    assert_error(server.get(f"/api/v1/traces/{tid}", headers=bearer(globex)), 404, "not_found")
    r = post(server, "/api/v1/scores", {"trace_id": tid, "name": "x", "value": 1},
             headers={"Authorization": "Bearer sk-lt-wrong"})
    assert_error(r, 401, "unauthorized")


def test_restart_keeps_scores(server):
    tid, _, child = export_trace(server)
    add(server, [{"trace_id": tid, "name": "acc", "value": 0.5},
                 {"trace_id": tid, "span_id": child, "name": "label", "value": "good", "idempotency_key": "k"}])
    server.restart()
    assert sorted(s["name"] for s in scores(server)) == ["acc", "label"]
    assert [s["name"] for s in server.trace(tid)["scores"]] == ["acc"]
    # The idempotency key still holds after the restart.
    again = add(server, {"trace_id": tid, "span_id": child, "name": "label", "value": "good",
                         "idempotency_key": "k"}, status=200)
    assert again["duplicate"] is True
