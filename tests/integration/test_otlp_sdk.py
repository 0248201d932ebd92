"""The OpenTelemetry Python SDK and its OTLP/HTTP exporter, over protobuf and
over JSON, sending a chain -> retriever -> LLM trace; read back through the
query API."""

from __future__ import annotations

import json
import time

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

from ltlib import JSON, text_of, to_otlp_json

QUESTION = "Which rivers flow through Lyon?"
ANSWER = "The Rhone and the Saone flow through Lyon."
DOCS = [("doc-17", "Lyon lies at the confluence of the Rhone and the Saone.", 0.92),
        ("doc-4", "Lyon is the third-largest city of France.", 0.71)]
IN_MSGS = [{"role": "system", "parts": [{"type": "text", "content": "Answer from the context."}]},
           {"role": "user", "parts": [{"type": "text", "content": QUESTION}]}]
OUT_MSGS = [{"role": "assistant", "parts": [{"type": "text", "content": ANSWER}], "finish_reason": "stop"}]


class RecordingExporter(OTLPSpanExporter):
    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.results = []

    def export(self, spans):
        r = super().export(spans)
        self.results.append(r)
        return r


def rag_trace(span_processor) -> dict:
    """Emits the RAG tree through the real SDK; returns the ids it used."""
    tp = TracerProvider(resource=Resource.create({
        "service.name": "rag-app", "service.version": "1.4.2", "deployment.environment.name": "staging"}))
    tp.add_span_processor(span_processor)
    tracer = tp.get_tracer("rag-app.pipeline", "0.3.0")
    ids = {}
    with tracer.start_as_current_span("rag.answer", attributes={
            "openinference.span.kind": "CHAIN", "input.value": QUESTION,
            "session.id": "sess-sdk-1", "user.id": "user-sdk-1", "tag.tags": ["sdk", "rag"]}) as root:
        time.sleep(0.002)
        with tracer.start_as_current_span("vector.search", attributes={
                "gen_ai.operation.name": "retrieval",
                **{f"retrieval.documents.{i}.document.{k}": v
                   for i, d in enumerate(DOCS) for k, v in zip(("id", "content", "score"), d)}}) as ret:
            ret.add_event("cache.miss", {"index": "wiki-fr"})
            time.sleep(0.002)
        time.sleep(0.002)
        with tracer.start_as_current_span("chat gpt-4o-mini", kind=SpanKind.CLIENT, attributes={
                "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-4o-mini", "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
                "gen_ai.usage.input_tokens": 120, "gen_ai.usage.output_tokens": 30,
                "gen_ai.response.finish_reasons": ["stop"], "gen_ai.request.temperature": 0.1,
                "gen_ai.input.messages": json.dumps(IN_MSGS),
                "gen_ai.output.messages": json.dumps(OUT_MSGS)}) as llm:
            time.sleep(0.005)
        root.set_attribute("output.value", ANSWER)
        root.set_status(Status(StatusCode.OK))
    for name, s in (("root", root), ("retriever", ret), ("llm", llm)):
        ids[name] = format(s.get_span_context().span_id, "016x")
        ids[name + "_span"] = s
    ids["trace_id"] = format(root.get_span_context().trace_id, "032x")
    tp.force_flush()
    tp.shutdown()
    return ids


def check_rag_trace(server, ids: dict) -> None:
    tid = ids["trace_id"]
    rows = server.traces(limit=10)
    assert [r["trace_id"] for r in rows] == [tid]
    row = rows[0]
    root, llm = ids["root_span"], ids["llm_span"]
    assert row["name"] == "rag.answer"
    assert row["span_count"] == 3
    assert row["error_count"] == 0
    assert row["status"] == "ok"
    assert row["start_ns"] == root.start_time and row["end_ns"] == root.end_time
    assert row["duration_ms"] == pytest.approx((root.end_time - root.start_time) / 1e6, abs=0.01)
    assert row["start_time"].startswith(time.strftime("%Y-%m-%dT", time.gmtime(root.start_time / 1e9)))
    assert row["start_time"].endswith("Z")
    assert "gpt-4o-mini" in row["models"]
    assert (row["input_tokens"], row["output_tokens"], row["total_tokens"]) == (120, 30, 150)
    assert row["user_id"] == "user-sdk-1" and row["session_id"] == "sess-sdk-1"
    assert row["service"] == "rag-app" and row["environment"] == "staging"
    assert sorted(row["tags"]) == ["rag", "sdk"]
    assert row["cost_usd"] is None or row["cost_usd"] > 0  # unknown is null, never 0

    detail = server.trace(tid)
    assert detail["trace"]["trace_id"] == tid and detail["trace"]["span_count"] == 3
    spans = detail["spans"]
    assert [s["name"] for s in spans] == ["rag.answer", "vector.search", "chat gpt-4o-mini"]
    assert [s["span_id"] for s in spans] == [ids["root"], ids["retriever"], ids["llm"]]
    assert [s["parent_span_id"] for s in spans] == [None, ids["root"], ids["root"]]
    assert [s["depth"] for s in spans] == [0, 1, 1]
    assert [s["orphan"] for s in spans] == [False, False, False]
    assert [s["kind"] for s in spans] == ["CHAIN", "RETRIEVER", "LLM"]
    assert [s["otel_kind"] for s in spans] == [1, 1, 3]  # INTERNAL, INTERNAL, CLIENT
    assert all(s["trace_id"] == tid for s in spans)
    c, r, l = spans

    assert c["input"] == QUESTION and c["output"] == ANSWER
    assert c["status"] == "ok"
    assert c["session_id"] == "sess-sdk-1" and c["user_id"] == "user-sdk-1"
    assert c["service"] == "rag-app" and c["environment"] == "staging" and c["release"] == "1.4.2"
    assert c["scope"] == "rag-app.pipeline"
    assert c["resource"]["service.name"] == "rag-app"
    assert c["input_tokens"] is None and c["cost_usd"] is None  # unknown stays null on a chain

    assert [d.get("id") for d in r["documents"]] == ["doc-17", "doc-4"]
    assert r["documents"][0]["content"] == DOCS[0][1]
    assert r["documents"][0]["score"] == pytest.approx(0.92)
    assert [e["name"] for e in r["events"]] == ["cache.miss"]
    assert "wiki-fr" in json.dumps(r["events"])

    assert l["provider"] == "openai" and l["operation"] == "chat"
    assert l["request_model"] == "gpt-4o-mini" and l["response_model"] == "gpt-4o-mini-2024-07-18"
    assert (l["input_tokens"], l["output_tokens"], l["total_tokens"]) == (120, 30, 150)
    assert l["cache_read_tokens"] is None and l["reasoning_tokens"] is None
    assert l["finish_reason"] == "stop"
    assert l["start_ns"] == llm.start_time and l["end_ns"] == llm.end_time
    assert l["start_ns"] >= r["end_ns"], "children are not in start-time order"
    assert l["cost_source"] in ("computed", "unknown")
    assert (l["cost_usd"] is None) == (l["cost_source"] == "unknown")
    assert QUESTION in text_of(l["input_messages"]) and "Answer from the context." in text_of(l["input_messages"])
    assert "user" in text_of(l["input_messages"]) and "system" in text_of(l["input_messages"])
    assert ANSWER in text_of(l["output_messages"])
    assert l["attributes"]["gen_ai.request.model"] == "gpt-4o-mini"
    assert l["attributes"]["gen_ai.usage.input_tokens"] in (120, "120")
    assert l["attributes"]["gen_ai.request.temperature"] == pytest.approx(0.1)
    assert l["attributes"]["gen_ai.response.finish_reasons"] == ["stop"]


def test_sdk_protobuf_rag_tree(server):
    exporter = RecordingExporter(endpoint=server.url + "/v1/traces", timeout=30)
    ids = rag_trace(BatchSpanProcessor(exporter))
    assert exporter.results == [SpanExportResult.SUCCESS], "the three spans went in one acknowledged export"
    check_rag_trace(server, ids)


def test_sdk_protobuf_gzip_one_request_per_span(server):
    """SimpleSpanProcessor: children arrive (and are stored) before their parent."""
    exporter = RecordingExporter(endpoint=server.url + "/v1/traces", timeout=30, compression=Compression.Gzip)
    ids = rag_trace(SimpleSpanProcessor(exporter))
    assert exporter.results == [SpanExportResult.SUCCESS] * 3
    check_rag_trace(server, ids)


def test_sdk_spans_as_otlp_json(server):
    """The SDK's own encoding of the spans, sent as OTLP/JSON (hex ids,
    camelCase, integer enums, 64-bit integers as strings)."""
    memory = InMemorySpanExporter()
    ids = rag_trace(SimpleSpanProcessor(memory))
    body = to_otlp_json(encode_spans(memory.get_finished_spans()))
    doc = json.loads(body)
    span0 = doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    assert len(span0["traceId"]) == 32 and len(span0["spanId"]) == 16 and "startTimeUnixNano" in span0
    r = server.post("/v1/traces", data=body, headers={"Content-Type": JSON})
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith(JSON)
    assert r.json().get("partialSuccess") in (None, {})
    check_rag_trace(server, ids)


def test_handwritten_otlp_json(server):
    """OTLP/JSON as people write it by hand (README example style): intValue
    as a number and as a string, unknown fields ignored, kind as integer."""
    now = time.time_ns()
    tid, root, child = "5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174", "aaa19b7ec3c1b175"
    doc = {"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "demo"}}],
                     "someFutureField": 1},
        "scopeSpans": [{"scope": {"name": "handmade"}, "spans": [
            {"traceId": tid, "spanId": root, "name": "answer", "kind": 2,
             "startTimeUnixNano": str(now), "endTimeUnixNano": str(now + 900_000_000),
             "status": {"code": 2, "message": "upstream timeout"},
             "attributes": [{"key": "openinference.span.kind", "value": {"stringValue": "AGENT"}}]},
            {"traceId": tid, "spanId": child, "parentSpanId": root, "name": "chat gpt-4o-mini", "kind": 3,
             "startTimeUnixNano": now + 100_000_000, "endTimeUnixNano": str(now + 850_000_000),
             "unknownSpanField": {"x": [1, 2]},
             "attributes": [
                 {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
                 {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o-mini"}},
                 {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "42"}},
                 {"key": "gen_ai.usage.output_tokens", "value": {"intValue": 7}},
                 {"key": "session.id", "value": {"stringValue": "conversation-1"}}]}]}]}]}
    r = server.post("/v1/traces", data=json.dumps(doc), headers={"Content-Type": "application/json"})
    assert r.status_code == 200, r.text
    d = server.trace(tid)
    assert d["trace"]["status"] == "error" and d["trace"]["error_count"] == 1
    assert d["trace"]["duration_ms"] == pytest.approx(900.0)
    assert d["trace"]["service"] == "demo"
    a, llm = d["spans"]
    assert (a["span_id"], a["kind"], a["otel_kind"], a["status"]) == (root, "AGENT", 2, "error")
    assert a["status_message"] == "upstream timeout"
    assert (llm["parent_span_id"], llm["kind"], llm["depth"]) == (root, "LLM", 1)
    assert (llm["input_tokens"], llm["output_tokens"], llm["total_tokens"]) == (42, 7, 49)
    assert llm["session_id"] == "conversation-1"
    assert llm["scope"] == "handmade"
    assert llm["duration_ms"] == pytest.approx(750.0)


def test_grpc_exporter_gets_a_hint_in_the_log(server):
    """Lanterna takes OTLP over HTTP only. The real OTLP/gRPC exporter
    pointed at it fails (libevent answers HTTP/2's preface with a 400), and
    the server's log says what to change on the client."""
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
    mem = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(mem))
    with provider.get_tracer("grpc-test").start_as_current_span("over grpc"):
        pass
    exporter = GrpcSpanExporter(endpoint=f"127.0.0.1:{server.port}", insecure=True, timeout=3)
    assert exporter.export(mem.get_finished_spans()) != SpanExportResult.SUCCESS
    exporter.shutdown()
    deadline = time.monotonic() + 10
    while "OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf" not in server.log_text():
        assert time.monotonic() < deadline, server.log_tail()
        time.sleep(0.1)
    assert server.stats()["store"]["spans"] == 0
