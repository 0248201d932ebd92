"""OTLP/HTTP receiver rules: encodings, content types, limits, bad input,
partial success, idempotency, tree order and orphans, error shape."""

from __future__ import annotations

import gzip
import json
import zlib

import pytest

from ltlib import (JSON, PB, assert_error, logs_request, make_log, make_span, now_ns, parse_export_response, poll,
                   span_id, to_otlp_json, trace_id, traces_request)


def three_spans(tid=None, base=None, names=("root", "child-a", "child-b")):
    tid = tid or trace_id()
    base = base or now_ns()
    ids = [span_id() for _ in names]
    spans = [make_span(tid, ids[0], names[0], base, base + 50_000_000, attrs={"openinference.span.kind": "CHAIN"}),
             make_span(tid, ids[1], names[1], base + 1_000_000, base + 20_000_000, parent=ids[0],
                       attrs={"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini",
                              "gen_ai.usage.input_tokens": 11, "gen_ai.usage.output_tokens": 3}),
             make_span(tid, ids[2], names[2], base + 21_000_000, base + 40_000_000, parent=ids[0])]
    return tid, ids, traces_request(spans)


def assert_empty(server):
    assert server.traces() == []
    assert server.stats()["store"]["spans"] == 0


@pytest.mark.parametrize("fmt", ["pb", "json"])
@pytest.mark.parametrize("encoding", [None, "gzip", "deflate", "zstd"])
def test_encodings(server, fmt, encoding):
    tid, ids, req = three_spans()
    r = server.export(req, fmt, encoding=encoding)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith(PB if fmt == "pb" else JSON), r.headers
    res = parse_export_response(r)
    assert res["rejected"] == 0 and not res["has_partial"], res
    d = server.trace(tid)
    assert [s["span_id"] for s in d["spans"]] == ids
    assert d["spans"][1]["input_tokens"] == 11


def test_alias_path_and_content_type_parameters(server):
    tid, ids, req = three_spans()
    r = server.post("/api/public/otel/v1/traces", data=to_otlp_json(req),
                    headers={"Content-Type": "application/json; charset=utf-8"})
    assert r.status_code == 200, r.text
    assert server.trace(tid)["trace"]["span_count"] == 3


def test_undecodable_protobuf_is_400_and_stores_nothing(server):
    _, _, req = three_spans()
    good = req.SerializeToString()
    # A valid first ResourceSpans, then a field 1 that claims 200 bytes and has 3.
    trailing_garbage = good + b"\x0a\xc8\x01abc"
    for body in (b"\xff\xff\xff\xff", good[: len(good) // 2], trailing_garbage):
        r = server.post("/v1/traces", data=body, headers={"Content-Type": PB})
        assert_error(r, 400, "bad_request")
    assert_empty(server)


def test_undecodable_json_is_400_and_stores_nothing(server):
    _, _, req = three_spans()
    good = to_otlp_json(req)
    for body in ('{"resourceSpans":[{', "not json at all", good[:-5], good + "garbage"):
        r = server.post("/v1/traces", data=body, headers={"Content-Type": JSON})
        assert_error(r, 400, "bad_request")
    assert_empty(server)


def test_undecodable_gzip_is_400(server):
    r = server.post("/v1/traces", data=b"\x1f\x8b\x08\x00garbage-not-gzip",
                    headers={"Content-Type": PB, "Content-Encoding": "gzip"})
    assert_error(r, 400, "bad_request")
    assert_empty(server)


def test_zstd_frames_and_limits(server):
    """zstd as the Collector sends it: frames back to back decode as one
    body; a truncated frame, garbage, or a frame that asks for a window
    over 16 MiB are 400 with nothing stored."""
    import zstandard
    _, _, req = three_spans()
    body = req.SerializeToString()
    half = len(body) // 2
    two = zstandard.ZstdCompressor().compress(body[:half]) + zstandard.ZstdCompressor().compress(body[half:])
    h = {"Content-Type": PB, "Content-Encoding": "zstd"}
    one = zstandard.ZstdCompressor().compress(body)
    # Streamed with no content size, the frame keeps its 64 MiB window.
    wide = zstandard.ZstdCompressor(compression_params=zstandard.ZstdCompressionParameters(
        window_log=26, write_content_size=False)).compressobj()
    big_window = wide.compress(body) + wide.flush()
    assert zstandard.get_frame_parameters(big_window).window_size == 64 << 20
    for bad in (one[:-4], b"garbage, not zstd", big_window):
        assert_error(server.post("/v1/traces", data=bad, headers=h), 400, "bad_request")
    assert_empty(server)
    r = server.post("/v1/traces", data=two, headers=h)
    assert r.status_code == 200, r.text
    assert server.stats()["store"]["spans"] == 3


def test_unsupported_content_type_is_415(server):
    _, _, req = three_spans()
    for ct in ("text/plain", "application/xml"):
        r = server.post("/v1/traces", data=req.SerializeToString(), headers={"Content-Type": ct})
        assert_error(r, 415, "unsupported_media_type")
    assert_empty(server)


def test_gzip_bomb_is_413(server):
    # 65 MiB of zeros in ~65 KB: past the 64 MiB decompressed limit.
    bomb = gzip.compress(b"\0" * (65 << 20), compresslevel=9)
    assert len(bomb) < 200_000
    r = server.post("/v1/traces", data=bomb, headers={"Content-Type": PB, "Content-Encoding": "gzip"})
    assert_error(r, 413, "payload_too_large")
    bomb = zlib.compress(b"\0" * (65 << 20), 9)
    r = server.post("/v1/traces", data=bomb, headers={"Content-Type": PB, "Content-Encoding": "deflate"})
    assert_error(r, 413, "payload_too_large")
    assert_empty(server)
    # The server is still healthy and ingests afterwards.
    tid, _, req = three_spans()
    server.export_ok(req)
    assert server.trace(tid)["trace"]["span_count"] == 3


def test_unknown_path_is_404_json(server):
    assert_error(server.get("/nope"), 404, "not_found")
    assert_error(server.post("/v1/nothing", data=b"{}", headers={"Content-Type": JSON}), 404, "not_found")
    assert_error(server.get("/api/v1/nothing"), 404, "not_found")


def test_wrong_method_is_405(server):
    assert_error(server.get("/v1/traces"), 405, "method_not_allowed")
    assert_error(server.get("/v1/logs"), 405, "method_not_allowed")
    assert_error(server.post("/api/v1/traces", data=b"{}", headers={"Content-Type": JSON}),
                 405, "method_not_allowed")


def test_health(server):
    assert server.api("/healthz") == {"status": "ok"}
    assert server.api("/readyz")["status"] == "ready"


@pytest.mark.parametrize("fmt", ["pb", "json"])
@pytest.mark.parametrize("zero", ["span_id", "trace_id"])
def test_partial_success_for_zero_ids(server, fmt, zero):
    tid, ids, req = three_spans()
    bad = req.resource_spans[0].scope_spans[0].spans[2]
    if zero == "span_id":
        bad.span_id = b"\0" * 8
    else:
        bad.trace_id = b"\0" * 16
    r = server.export(req, fmt)
    assert r.status_code == 200, r.text
    res = parse_export_response(r)
    assert res["has_partial"] and res["rejected"] == 1, res
    assert res["error_message"], "partial_success without an error_message"
    d = server.trace(tid)
    assert [s["span_id"] for s in d["spans"]] == ids[:2]
    assert d["trace"]["span_count"] == 2
    assert server.stats()["store"]["spans"] == 2


def test_idempotent_retry(server):
    tid, ids, req = three_spans()
    for fmt in ("pb", "pb", "json"):
        r = server.export_ok(req, fmt)
        res = parse_export_response(r)
        assert res["rejected"] == 0 and not res["has_partial"], f"a retry is a plain success: {res}"
    d = server.trace(tid)
    assert d["trace"]["span_count"] == 3 and len(d["spans"]) == 3
    assert server.stats()["store"]["spans"] == 3
    assert len(server.traces()) == 1
    # A retry that adds a new span to the same trace stores only the new one.
    extra = make_span(tid, span_id(), "late", now_ns(), now_ns() + 1000, parent=ids[0])
    req.resource_spans[0].scope_spans[0].spans.append(extra)
    server.export_ok(req)
    assert server.trace(tid)["trace"]["span_count"] == 4
    assert server.stats()["store"]["spans"] == 4


def test_tree_order_and_orphans(server):
    """Depth first, children by start time whatever the arrival order;
    spans whose parent never arrived follow the tree as orphan roots."""
    tid, base = trace_id(), now_ns()
    root, a, b, a1, a2, orphan, missing = (span_id() for _ in range(7))
    spans = [
        make_span(tid, a2, "a2", base + 30, base + 40, parent=a),
        make_span(tid, orphan, "orphan", base + 5, base + 6, parent=missing),
        make_span(tid, b, "b", base + 50, base + 60, parent=root),
        make_span(tid, a1, "a1", base + 20, base + 25, parent=a),
        make_span(tid, root, "root", base, base + 100),
        make_span(tid, a, "a", base + 10, base + 45, parent=root),
    ]
    server.export_ok(traces_request(spans[:3]))
    server.export_ok(traces_request(spans[3:]))
    d = server.trace(tid)
    got = [(s["name"], s["depth"], s["orphan"]) for s in d["spans"]]
    assert got == [("root", 0, False), ("a", 1, False), ("a1", 2, False), ("a2", 2, False), ("b", 1, False),
                   ("orphan", 0, True)]
    assert d["spans"][-1]["parent_span_id"] == missing
    assert d["trace"]["name"] == "root" and d["trace"]["span_count"] == 6


def test_attribute_types_and_links(server):
    tid, sid, other_t, other_s = trace_id(), span_id(), trace_id(), span_id()
    attrs = {"s": "x", "i": -5, "big": 2 ** 62, "d": 1.5, "b": True, "arr": ["a", "b"], "ints": [1, 2],
             "kv": {"k": "v", "n": 1}, "unicode": "żółw 🐢"}
    t = now_ns()
    sp = make_span(tid, sid, "typed", t, t + 10, attrs=attrs,
                   links=[{"trace_id": other_t, "span_id": other_s, "attributes": {"why": "retry-of"}}])
    server.export_ok(traces_request([sp], resource={"service.name": "typed-svc", "host.name": "h1"}))
    s = server.trace(tid)["spans"][0]
    a = s["attributes"]
    assert a["s"] == "x" and a["d"] == 1.5 and a["b"] is True
    assert int(a["i"]) == -5 and int(a["big"]) == 2 ** 62
    assert a["arr"] == ["a", "b"] and [int(x) for x in a["ints"]] == [1, 2]
    assert a["kv"]["k"] == "v"
    assert a["unicode"] == "żółw 🐢"
    assert s["resource"]["host.name"] == "h1"
    assert len(s["links"]) == 1 and json.dumps(s["links"]).count(other_t) == 1 and other_s in json.dumps(s["links"])
    assert s["kind"] == "UNKNOWN"


def test_retention_deletes_old_traces(lanterna):
    """--retention 30d: a trace stored when there was no retention, now 40
    days old, goes in the periodic retention pass; a fresh one stays."""
    server = lanterna()
    day = 86_400 * 10**9
    old_tid, _, old = three_spans(base=now_ns() - 40 * day)
    new_tid, _, new = three_spans()
    server.export_ok(old)
    server.export_ok(new)
    assert server.stats()["store"]["spans"] == 6
    server.stop()
    server.args = ["--retention", "30d"]
    server.start()
    poll(lambda: server.get(f"/api/v1/traces/{old_tid}").status_code == 404, timeout=15,
         what="retention to delete the 40-day-old trace")
    assert [t["trace_id"] for t in server.traces(**{"from": now_ns() - 365 * day})] == [new_tid]
    assert server.trace(new_tid)["trace"]["span_count"] == 3
    poll(lambda: server.stats()["store"]["spans"] == 3, timeout=15, what="old spans to be deleted")


@pytest.mark.parametrize("fmt", ["pb", "json"])
def test_records_older_than_retention_are_refused(lanterna, fmt):
    """With --retention, what is already older than it would be deleted right
    after its 200: it is refused through partial_success instead, so the
    exporter's log says so, and the rest of the request is stored."""
    server = lanterna(args=["--retention", "1d"])
    day = 86_400 * 10**9
    tid = trace_id()
    spans = [make_span(tid, span_id(), "fresh", now_ns(), now_ns() + 1000),
             make_span(tid, span_id(), "two days old", now_ns() - 2 * day, now_ns() - 2 * day + 1000),
             make_span(tid, span_id(), "epoch", 1000, 2000)]
    res = parse_export_response(server.export_ok(traces_request(spans), fmt))
    assert res["rejected"] == 2 and "retention" in res["error_message"], res
    assert [s["name"] for s in server.trace(tid)["spans"]] == ["fresh"]
    logs = [make_log(None, None, body="now"), make_log(None, None, body="old", time_ns=now_ns() - 3 * day)]
    res = parse_export_response(server.export_ok(logs_request(logs), fmt), "logs")
    assert res["rejected"] == 1 and "retention" in res["error_message"], res
    assert server.stats()["store"]["logs"] == 1 and server.stats()["store"]["spans"] == 1


@pytest.mark.parametrize("fmt", ["pb", "json"])
def test_large_request_is_mapped_in_halves_and_committed_together(server, fmt):
    """A request of 200+ spans is mapped in two halves on two threads; the
    halves commit in one transaction, rejects from both halves are counted,
    and a half with nothing valid is simply not sent."""
    base = now_ns()
    traces = [trace_id() for _ in range(30)]
    spans, want = [], {t: 0 for t in traces}
    for i in range(600):
        tid = traces[i % 30]  # each trace has spans in both halves
        s = make_span(tid, span_id(), f"step-{i}", base + i, base + i + 1000,
                      attrs={"input.value": f"question {i} " + "context " * 20})
        if i in (10, 450):  # one bad span in each half
            s.span_id = b"\0" * 8
        else:
            want[tid] += 1
        spans.append(s)
    before = server.stats()["writer"]["commits"]
    r = server.export(traces_request(spans), fmt)
    assert r.status_code == 200, r.text
    res = parse_export_response(r)
    assert res["has_partial"] and res["rejected"] == 2, res
    assert server.stats()["store"]["spans"] == 598
    assert server.stats()["writer"]["commits"] - before == 1, "both halves in one transaction"
    for tid in traces[:3]:
        d = server.trace(tid)
        assert d["trace"]["span_count"] == want[tid] == len(d["spans"])
        assert all(s["attributes"]["input.value"] == s["input"] for s in d["spans"])
    # Every span of the second half invalid: the first half alone is stored.
    tid = trace_id()
    spans = [make_span(tid, span_id(), f"ok-{i}", base, base + 1) for i in range(150)]
    for i in range(150):
        s = make_span(tid, span_id(), f"bad-{i}", base, base + 1)
        s.span_id = b"\0" * 8
        spans.append(s)
    res = parse_export_response(server.export_ok(traces_request(spans), fmt))
    assert res["rejected"] == 150, res
    assert server.trace(tid)["trace"]["span_count"] == 150


def test_large_bodies_off_the_loop(server):
    """Bodies of 64 KB and more are decoded and mapped on the ingest
    workers: an undecodable one is still a 400 with nothing stored, a
    gzip-compressed one is inflated there, and a client that hangs up
    before its answer leaves the server serving (its spans are stored, since
    the request was whole)."""
    import socket

    base = now_ns()
    tid = trace_id()
    spans = [make_span(tid, span_id(), f"big-{i}", base + i, base + i + 1000,
                       attrs={"input.value": f"question {i} " + "context " * 40}) for i in range(300)]
    good = traces_request(spans).SerializeToString()
    assert len(good) >= 64 * 1024

    def offloaded():
        return server.stats()["ingest"]["offloaded_requests"]

    r = server.post("/v1/traces", data=good[:-7] + b"\x0a\xc8\x01abc", headers={"Content-Type": PB})
    assert_error(r, 400, "bad_request")
    assert_empty(server)
    assert offloaded() == 1, "a 64 KB+ body is decoded on an ingest worker"
    r = server.post("/v1/traces", data=gzip.compress(good + b"\x0a\xc8\x01abc"),
                    headers={"Content-Type": PB, "Content-Encoding": "gzip"})
    assert_error(r, 400, "bad_request")
    assert_empty(server)
    # Sent whole, then the client leaves at once.
    host, port = server.url.split("//")[1].split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
                  + f"Content-Length: {len(good)}\r\n\r\n".encode() + good)
    poll(lambda: server.stats()["store"]["spans"] == 300, what="the abandoned request's spans stored")
    assert offloaded() >= 2
    # And the server goes on answering; a small body stays on the loop.
    before = offloaded()
    tid2, _, req = three_spans()
    server.export_ok(req)
    assert server.trace(tid2)["trace"]["span_count"] == 3
    assert offloaded() == before


def test_threads_are_named(server):
    """Each thread carries its role's name, so `top -H` shows where the CPU
    goes (docs/design.md, Threads)."""
    import glob
    names = set()
    for comm in glob.glob(f"/proc/{server.proc.pid}/task/*/comm"):
        with open(comm) as f:
            names.add(f.read().strip())
    want = {"lt-http-0", "lt-ingest", "lt-writer", "lt-checkpoint", "lt-query"}
    assert want <= names, f"thread names: {sorted(names)}"
