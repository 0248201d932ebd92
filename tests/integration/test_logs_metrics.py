"""POST /v1/logs (log records attach to their span, whichever arrives
first) and POST /v1/metrics (GenAI histograms accepted and stored)."""

from __future__ import annotations

import json

import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope
from opentelemetry.proto.metrics.v1.metrics_pb2 import (AggregationTemporality, Histogram, HistogramDataPoint,
                                                        Metric, NumberDataPoint, Sum)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from ltlib import (kvs, logs_request, make_log, make_span, now_ns, parse_export_response, span_id, text_of,
                   trace_id, traces_request)

TOKEN_BOUNDS = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864]


def llm_trace():
    tid, root, llm, t = trace_id(), span_id(), span_id(), now_ns()
    req = traces_request([
        make_span(tid, root, "agent", t, t + 30_000_000),
        make_span(tid, llm, "chat gpt-4o-mini", t + 1_000_000, t + 20_000_000, parent=root, kind="client",
                  attrs={"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini"})])
    return tid, root, llm, t, req


def content_logs(tid, sid, t):
    return [
        make_log(tid, sid, body={"content": "What is the boiling point of water?"},
                 event_name="gen_ai.user.message", attrs={"gen_ai.system": "openai"}, time_ns=t + 2_000_000),
        make_log(tid, sid, body={"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": "100 degrees Celsius at sea level."}},
                 event_name="gen_ai.choice", attrs={"gen_ai.system": "openai"}, time_ns=t + 19_000_000,
                 severity=9),
    ]


def check_logs(server, tid, root, llm):
    spans = {s["span_id"]: s for s in server.trace(tid)["spans"]}
    assert spans[root]["logs"] == []
    logs = spans[llm]["logs"]
    assert [lg["event_name"] for lg in logs] == ["gen_ai.user.message", "gen_ai.choice"], json.dumps(logs)
    assert logs[0]["severity_number"] == 9
    assert logs[0]["time_ns"] < logs[1]["time_ns"]
    assert "What is the boiling point of water?" in text_of(logs[0]["body"])
    assert "100 degrees Celsius at sea level." in text_of(logs[1]["body"])
    assert logs[0]["attributes"]["gen_ai.system"] == "openai"
    return spans[llm]


@pytest.mark.parametrize("fmt", ["pb", "json"])
def test_logs_after_span(server, fmt):
    tid, root, llm, t, req = llm_trace()
    server.export_ok(req)
    r = server.export_ok(logs_request(content_logs(tid, llm, t)), fmt)
    res = parse_export_response(r, "logs")
    assert res["rejected"] == 0 and not res["has_partial"], res
    check_logs(server, tid, root, llm)
    assert server.stats()["store"]["logs"] == 2


def test_logs_before_span(server):
    tid, root, llm, t, req = llm_trace()
    server.export_ok(logs_request(content_logs(tid, llm, t)))
    server.export_ok(req)
    check_logs(server, tid, root, llm)


def test_log_content_events_map_to_messages(server):
    """SEMCONV: gen_ai.user.message / gen_ai.choice events, including those
    that arrive as log records, fill the span's input and output messages."""
    tid, root, llm, t, req = llm_trace()
    server.export_ok(req)
    server.export_ok(logs_request(content_logs(tid, llm, t)))
    s = check_logs(server, tid, root, llm)
    assert "What is the boiling point of water?" in text_of(s["input_messages"]), s["input_messages"]
    assert "100 degrees Celsius at sea level." in text_of(s["output_messages"]), s["output_messages"]


def test_logs_without_span_context_are_stored(server):
    before = server.stats()["store"]["logs"]
    r = server.export_ok(logs_request([make_log(None, None, body="plain application log line"),
                                       make_log(None, None, body="another", severity=17, severity_text="ERROR")]))
    assert parse_export_response(r, "logs")["rejected"] == 0
    assert server.stats()["store"]["logs"] == before + 2


def test_logs_idempotent_and_undecodable(server):
    tid, root, llm, t, req = llm_trace()
    server.export_ok(req)
    lreq = logs_request(content_logs(tid, llm, t))
    server.export_ok(lreq)
    r = server.post("/v1/logs", data=b"\x0a\xff\x01", headers={"Content-Type": "application/x-protobuf"})
    assert r.status_code == 400
    r = server.post("/v1/logs", data=b'{"resourceLogs":[', headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    assert len(server.trace(tid)["spans"][1]["logs"]) == 2


def metrics_request(t):
    req = ExportMetricsServiceRequest()
    rm = req.resource_metrics.add(resource=Resource(attributes=kvs({"service.name": "metrics-it"})))
    sm = rm.scope_metrics.add(scope=InstrumentationScope(name="opentelemetry.instrumentation.openai_v2"))
    start = t - 60_000_000_000
    common = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
              "gen_ai.request.model": "gpt-4o-mini", "gen_ai.response.model": "gpt-4o-mini-2024-07-18"}
    tok = Metric(name="gen_ai.client.token.usage", unit="{token}",
                 description="Measures number of input and output tokens used",
                 histogram=Histogram(aggregation_temporality=AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA))
    for ttype, n in (("input", 22), ("output", 7)):
        counts = [0] * (len(TOKEN_BOUNDS) + 1)
        counts[next(i for i, b in enumerate(TOKEN_BOUNDS) if n <= b)] = 1
        tok.histogram.data_points.append(HistogramDataPoint(
            start_time_unix_nano=start, time_unix_nano=t, count=1, sum=n, min=n, max=n,
            bucket_counts=counts, explicit_bounds=TOKEN_BOUNDS,
            attributes=kvs({**common, "gen_ai.token.type": ttype})))
    dur = Metric(name="gen_ai.client.operation.duration", unit="s",
                 histogram=Histogram(aggregation_temporality=AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA))
    bounds = [0.01 * 2 ** i for i in range(14)]
    dur.histogram.data_points.append(HistogramDataPoint(
        start_time_unix_nano=start, time_unix_nano=t, count=2, sum=0.75, bucket_counts=[0] * 6 + [2] + [0] * 8,
        explicit_bounds=bounds, attributes=kvs(common)))
    calls = Metric(name="app.requests", unit="1", sum=Sum(
        aggregation_temporality=AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE, is_monotonic=True,
        data_points=[NumberDataPoint(start_time_unix_nano=start, time_unix_nano=t, as_int=5)]))
    sm.metrics.extend([tok, dur, calls])
    return req, 4


@pytest.mark.parametrize("fmt", ["pb", "json"])
def test_metrics(server, fmt):
    req, points = metrics_request(now_ns())
    r = server.export_ok(req, fmt)
    assert r.headers["Content-Type"].startswith("application/x-protobuf" if fmt == "pb" else "application/json")
    res = parse_export_response(r, "metrics")
    assert res["rejected"] == 0 and not res["has_partial"], res
    stored = server.stats()["store"]["points"]
    assert stored >= 3, f"the GenAI histogram points were not stored (store.points={stored})"
    assert stored <= points


def test_metrics_undecodable(server):
    r = server.post("/v1/metrics", data=b"\x0a\x05\x0a\x03", headers={"Content-Type": "application/x-protobuf"})
    assert r.status_code == 400
    assert server.stats()["store"]["points"] == 0
