#!/usr/bin/env python3
"""Writes the OTLP/protobuf test fixtures and fuzz seed corpora.

The messages are built with the official `opentelemetry-proto` Python
package rather than with our own .proto files, so the bytes are what a real
exporter sends and the fixtures double as a check of our field numbers.
Output is deterministic (fixed ids and timestamps); rerun it after changing
what it writes and commit the result.

  tests/data/otlp_pb/llm_trace.pb    a RAG request: chain, retriever and LLM
  tests/data/otlp_pb/llm_trace.json  the same request as OTLP/JSON
  tests/data/otlp_pb/genai_logs.pb   gen_ai event log records
  tests/data/otlp_pb/genai_metrics.pb  gen_ai client metrics
  fuzz/corpus/{traces,logs,metrics}_pb/*  seeds for the fuzz targets

Usage: gen-pb-fixtures.py [repo root]   (default: the parent of this script's folder)
"""
import base64
import json
import os
import sys

from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

T0 = 1732017600000000000  # 2024-11-19T12:00:00Z
MS = 1000000
TRACE_ID = bytes.fromhex("4bf92f3577b34da6a3ce929d0e0e4736")
CHAIN_ID = bytes.fromhex("00f067aa0ba902b7")
RETRIEVER_ID = bytes.fromhex("53995c3f42cd8ad8")
LLM_ID = bytes.fromhex("a2fb4a1d1a96d312")


def val(v):
    """An AnyValue from a Python value (lists and dicts nest)."""
    if isinstance(v, AnyValue):
        return v
    if isinstance(v, bool):
        return AnyValue(bool_value=v)
    if isinstance(v, int):
        return AnyValue(int_value=v)
    if isinstance(v, float):
        return AnyValue(double_value=v)
    if isinstance(v, bytes):
        return AnyValue(bytes_value=v)
    if isinstance(v, list):
        a = AnyValue()
        a.array_value.values.extend(val(x) for x in v)
        return a
    if isinstance(v, dict):
        a = AnyValue()
        a.kvlist_value.values.extend(attrs(v))
        return a
    return AnyValue(string_value=str(v))


def attrs(d):
    return [KeyValue(key=k, value=val(v)) for k, v in d.items()]


RESOURCE = {
    "service.name": "support-bot",
    "service.version": "2.4.1",
    "deployment.environment.name": "production",
    "telemetry.sdk.language": "python",
    "telemetry.sdk.name": "opentelemetry",
    "telemetry.sdk.version": "1.27.0",
}


def llm_trace():
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.extend(attrs(RESOURCE))
    rs.schema_url = "https://opentelemetry.io/schemas/1.27.0"
    ss = rs.scope_spans.add()
    ss.scope.name = "openinference.instrumentation.langchain"
    ss.scope.version = "0.1.28"

    chain = ss.spans.add(
        trace_id=TRACE_ID, span_id=CHAIN_ID, name="RetrievalQA", kind=Span.SPAN_KIND_INTERNAL,
        start_time_unix_nano=T0, end_time_unix_nano=T0 + 2840 * MS, flags=0x301)
    chain.attributes.extend(attrs({
        "openinference.span.kind": "CHAIN",
        "input.value": "How do I reset my router?",
        "output.value": "Hold the reset button for 10 seconds, then wait for the lights to settle.",
        "session.id": "conv_9f2c1e",
        "user.id": "u-1842",
    }))
    chain.status.code = Status.STATUS_CODE_OK

    retriever = ss.spans.add(
        trace_id=TRACE_ID, span_id=RETRIEVER_ID, parent_span_id=CHAIN_ID, name="VectorStoreRetriever",
        kind=Span.SPAN_KIND_INTERNAL, start_time_unix_nano=T0 + 12 * MS, end_time_unix_nano=T0 + 310 * MS)
    retriever.attributes.extend(attrs({
        "openinference.span.kind": "RETRIEVER",
        "input.value": "How do I reset my router?",
        "retrieval.documents": [
            {"document.id": "kb-112", "document.score": 0.91,
             "document.content": "To reset the router, hold the reset button for 10 seconds."},
            {"document.id": "kb-087", "document.score": 0.77,
             "document.content": "The status lights blink amber while the router restarts."},
        ],
        "db.system": "chroma",
    }))
    ev = retriever.events.add(time_unix_nano=T0 + 300 * MS, name="retrieval.complete")
    ev.attributes.extend(attrs({"retrieval.count": 2}))

    llm = ss.spans.add(
        trace_id=TRACE_ID, span_id=LLM_ID, parent_span_id=CHAIN_ID, name="chat gpt-4o-mini",
        kind=Span.SPAN_KIND_CLIENT, start_time_unix_nano=T0 + 320 * MS, end_time_unix_nano=T0 + 2810 * MS,
        trace_state="vendor=lanterna")
    llm.attributes.extend(attrs({
        "openinference.span.kind": "LLM",
        "gen_ai.operation.name": "chat",
        "gen_ai.system": "openai",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.request.temperature": 0.2,
        "gen_ai.request.max_tokens": 512,
        "gen_ai.request.stop_sequences": ["\n\nUser:"],
        "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
        "gen_ai.response.id": "chatcmpl-AVb7rXj2Ql0",
        "gen_ai.response.finish_reasons": ["stop"],
        "gen_ai.usage.input_tokens": 412,
        "gen_ai.usage.output_tokens": 38,
        "server.address": "api.openai.com",
        "server.port": 443,
        "gen_ai.input.messages": json.dumps([
            {"role": "system", "parts": [{"type": "text", "content": "Answer from the context."}]},
            {"role": "user", "parts": [{"type": "text", "content": "How do I reset my router?"}]},
        ]),
        "gen_ai.output.messages": json.dumps([
            {"role": "assistant", "finish_reason": "stop", "parts": [
                {"type": "text", "content": "Hold the reset button for 10 seconds."}]},
        ]),
        "llm.is_streaming": False,
    }))
    ev = llm.events.add(time_unix_nano=T0 + 800 * MS, name="gen_ai.content.first_token")
    ev.attributes.extend(attrs({"gen_ai.response.time_to_first_token": 0.48}))
    link = llm.links.add(trace_id=bytes.fromhex("0af7651916cd43dd8448eb211c80319c"),
                         span_id=bytes.fromhex("b7ad6b7169203331"), trace_state="p=1")
    link.attributes.extend(attrs({"link.reason": "prompt-cache"}))
    llm.status.code = Status.STATUS_CODE_OK
    return req


def to_otlp_json(msg):
    """OTLP/JSON: protobuf's JSON mapping, except ids are hex, not base64,
    and enums are integers."""
    d = json_format.MessageToDict(msg, use_integers_for_enums=True)

    def fix(o):
        if isinstance(o, dict):
            for k, v in o.items():
                if k in ("traceId", "spanId", "parentSpanId") and isinstance(v, str):
                    o[k] = base64.b64decode(v).hex()
                else:
                    fix(v)
        elif isinstance(o, list):
            for x in o:
                fix(x)
    fix(d)
    return json.dumps(d, indent=1, sort_keys=True) + "\n"


def genai_logs():
    req = ExportLogsServiceRequest()
    rl = req.resource_logs.add()
    rl.resource.attributes.extend(attrs(RESOURCE))
    sl = rl.scope_logs.add()
    sl.scope.name = "opentelemetry.instrumentation.openai_v2"
    sl.scope.version = "2.0b0"
    recs = [
        ("gen_ai.system.message", {"content": "Answer from the context."}),
        ("gen_ai.user.message", {"content": "How do I reset my router?"}),
        ("gen_ai.choice", {"index": 0, "finish_reason": "stop",
                           "message": {"role": "assistant", "content": "Hold the reset button for 10 seconds."}}),
    ]
    for i, (name, body) in enumerate(recs):
        r = sl.log_records.add(
            time_unix_nano=T0 + (400 + i) * MS, observed_time_unix_nano=T0 + (401 + i) * MS,
            severity_number=9, severity_text="INFO", trace_id=TRACE_ID, span_id=LLM_ID, flags=1,
            event_name=name)
        r.body.CopyFrom(val(body))
        r.attributes.extend(attrs({"gen_ai.system": "openai", "event.name": name}))
    r = sl.log_records.add(time_unix_nano=T0 + 2900 * MS, severity_number=17, severity_text="ERROR")
    r.body.string_value = "rate limited by upstream; retrying in 2s"
    r.attributes.extend(attrs({"http.response.status_code": 429, "retry.attempt": 1}))
    return req


def genai_metrics():
    req = ExportMetricsServiceRequest()
    rm = req.resource_metrics.add()
    rm.resource.attributes.extend(attrs(RESOURCE))
    sm = rm.scope_metrics.add()
    sm.scope.name = "opentelemetry.instrumentation.openai_v2"
    common = {"gen_ai.operation.name": "chat", "gen_ai.system": "openai",
              "gen_ai.request.model": "gpt-4o-mini"}

    m = sm.metrics.add(name="gen_ai.client.token.usage", description="Measures number of input and output tokens used",
                       unit="{token}")
    m.histogram.aggregation_temporality = 2
    bounds = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536]
    for typ, total, counts, lo, hi in (("input", 412, [0, 0, 0, 0, 0, 1, 0, 0, 0, 0], 412, 412),
                                       ("output", 38, [0, 0, 0, 1, 0, 0, 0, 0, 0, 0], 38, 38)):
        p = m.histogram.data_points.add(start_time_unix_nano=T0, time_unix_nano=T0 + 60000 * MS, count=1,
                                        sum=total, min=lo, max=hi)
        p.bucket_counts.extend(counts)
        p.explicit_bounds.extend(bounds)
        p.attributes.extend(attrs(dict(common, **{"gen_ai.token.type": typ})))

    m = sm.metrics.add(name="gen_ai.client.operation.duration", description="GenAI operation duration", unit="s")
    m.histogram.aggregation_temporality = 2
    p = m.histogram.data_points.add(start_time_unix_nano=T0, time_unix_nano=T0 + 60000 * MS, count=3, sum=5.91,
                                    min=0.31, max=2.49)
    p.bucket_counts.extend([0, 0, 0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0])
    p.explicit_bounds.extend([0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92])
    p.attributes.extend(attrs(common))

    m = sm.metrics.add(name="lanterna.requests", unit="{request}")
    m.sum.aggregation_temporality = 2
    m.sum.is_monotonic = True
    m.sum.data_points.add(start_time_unix_nano=T0, time_unix_nano=T0 + 60000 * MS, as_int=3).attributes.extend(
        attrs({"http.route": "/v1/chat/completions"}))

    m = sm.metrics.add(name="process.cpu.utilization", unit="1")
    m.gauge.data_points.add(time_unix_nano=T0 + 60000 * MS, as_double=0.125)

    m = sm.metrics.add(name="gen_ai.server.time_per_output_token", unit="s")
    m.exponential_histogram.aggregation_temporality = 1
    p = m.exponential_histogram.data_points.add(start_time_unix_nano=T0, time_unix_nano=T0 + 60000 * MS, count=38,
                                                sum=0.95, scale=3, zero_count=0, min=0.012, max=0.061)
    p.positive.offset = -51
    p.positive.bucket_counts.extend([2, 5, 11, 12, 6, 2])

    m = sm.metrics.add(name="http.server.duration.summary", unit="ms")
    p = m.summary.data_points.add(start_time_unix_nano=T0, time_unix_nano=T0 + 60000 * MS, count=10, sum=1234.5)
    for q, v in ((0.5, 101.0), (0.99, 380.0)):
        p.quantile_values.add(quantile=q, value=v)
    return req


def trace_seeds():
    seeds = {"llm_trace": llm_trace(), "empty": ExportTraceServiceRequest()}

    r = ExportTraceServiceRequest()
    s = r.resource_spans.add().scope_spans.add().spans.add(
        trace_id=TRACE_ID, span_id=CHAIN_ID, name="GET /health", kind=Span.SPAN_KIND_SERVER,
        start_time_unix_nano=T0, end_time_unix_nano=T0 + MS)
    s.status.code = Status.STATUS_CODE_ERROR
    s.status.message = "upstream timeout"
    seeds["minimal_span"] = r

    r = ExportTraceServiceRequest()
    ss = r.resource_spans.add().scope_spans.add()
    ss.spans.add(trace_id=TRACE_ID[:15], span_id=CHAIN_ID, name="short trace id")
    ss.spans.add(trace_id=TRACE_ID, span_id=CHAIN_ID + b"\0", name="long span id")
    ss.spans.add(trace_id=TRACE_ID, span_id=CHAIN_ID, parent_span_id=bytes(8), name="zero parent")
    ss.spans.add(trace_id=bytes(16), span_id=bytes(8), name="zero ids")
    seeds["bad_ids"] = r

    r = ExportTraceServiceRequest()
    s = r.resource_spans.add().scope_spans.add().spans.add(trace_id=TRACE_ID, span_id=LLM_ID, name="nested")
    deep = "leaf"
    for i in range(10):
        deep = [deep, {"level": i, "blob": bytes([i, 0, 255])}] if i % 2 else {"k%d" % i: deep, "ok": True}
    s.attributes.extend(attrs({"nested": deep, "empty": AnyValue(), "pi": 3.14159, "neg": -42}))
    seeds["nested_values"] = r

    r = ExportTraceServiceRequest()
    for svc in ("frontend", "rag-worker"):
        rs = r.resource_spans.add()
        rs.resource.attributes.extend(attrs({"service.name": svc}))
        for scope in ("http", "db"):
            ss = rs.scope_spans.add()
            ss.scope.name = scope
            ss.scope.attributes.extend(attrs({"scope.attr": scope}))
            for k in range(3):
                ss.spans.add(trace_id=TRACE_ID, span_id=bytes([k + 1] * 8), parent_span_id=CHAIN_ID,
                             name="%s %s %d" % (svc, scope, k), kind=k, start_time_unix_nano=T0 + k,
                             end_time_unix_nano=T0 + 10 * k, dropped_attributes_count=k)
    seeds["multi_resource"] = r
    return seeds


def log_seeds():
    seeds = {"genai_logs": genai_logs(), "empty": ExportLogsServiceRequest()}
    r = ExportLogsServiceRequest()
    sl = r.resource_logs.add().scope_logs.add()
    for body in ("plain text", 7, 2.5, True, b"\x00\x01binary", ["a", 1], {"k": {"n": [0, "x"]}}):
        sl.log_records.add(time_unix_nano=T0, severity_number=5).body.CopyFrom(val(body))
    sl.log_records.add(trace_id=b"\x01" * 3, span_id=b"\x02" * 8, severity_number=30)
    seeds["body_types"] = r

    r = ExportLogsServiceRequest()
    for svc in ("gateway", "worker"):
        rl = r.resource_logs.add()
        rl.resource.attributes.extend(attrs({"service.name": svc, "host.name": "node-7"}))
        sl = rl.scope_logs.add()
        sl.scope.name = "app.logger"
        for i in range(20):
            rec = sl.log_records.add(time_unix_nano=T0 + i * MS, severity_number=1 + i % 24,
                                     severity_text="L%d" % i, trace_id=TRACE_ID if i % 3 else b"",
                                     span_id=bytes([i] * 8))
            rec.body.string_value = "request %d handled in %d ms" % (i, 3 * i)
    seeds["many_records"] = r

    r = ExportLogsServiceRequest()
    body = {"leaf": "x"}
    for i in range(28):  # the Python library refuses messages nested past 100
        body = {"k%d" % i: body}
    rec = r.resource_logs.add().scope_logs.add().log_records.add(event_name="deep.body")
    rec.body.CopyFrom(val(body))
    seeds["deep_kvlist"] = r
    return seeds


def metric_seeds():
    seeds = {"genai_metrics": genai_metrics(), "empty": ExportMetricsServiceRequest()}
    r = ExportMetricsServiceRequest()
    sm = r.resource_metrics.add().scope_metrics.add()
    sm.metrics.add(name="no.data")
    g = sm.metrics.add(name="queue.depth").gauge
    g.data_points.add(as_int=-5).exemplars.add(as_int=1, span_id=LLM_ID, trace_id=TRACE_ID)
    g.data_points.add(as_double=float("nan"))
    h = sm.metrics.add(name="bare.histogram").histogram
    h.data_points.add(count=0)
    seeds["edge_metrics"] = r

    r = ExportMetricsServiceRequest()
    sm = r.resource_metrics.add().scope_metrics.add()
    e = sm.metrics.add(name="latency.exp", unit="ms").exponential_histogram
    e.aggregation_temporality = 2
    p = e.data_points.add(count=9, scale=-2, zero_count=1, zero_threshold=1e-9, sum=-3.5)
    p.negative.offset = 2
    p.negative.bucket_counts.extend([1, 3, 4])
    p.positive.bucket_counts.extend([])
    su = sm.metrics.add(name="rpc.summary").summary
    su.data_points.add(count=0).quantile_values.add(quantile=1.0, value=float("inf"))
    seeds["exp_and_summary"] = r

    r = ExportMetricsServiceRequest()
    for k in range(4):
        rm = r.resource_metrics.add()
        rm.resource.attributes.extend(attrs({"service.name": "svc-%d" % k}))
        sm = rm.scope_metrics.add()
        for j in range(5):
            m = sm.metrics.add(name="counter.%d" % j, unit="1")
            m.sum.aggregation_temporality = 1 + (j % 2)
            m.sum.is_monotonic = j % 2 == 0
            for t in range(3):
                m.sum.data_points.add(time_unix_nano=T0 + t, as_double=t * 1.5).attributes.extend(
                    attrs({"shard": t}))
    seeds["many_sums"] = r
    return seeds


def wrap(field, payload):
    """A length-delimited field, encoded by hand."""
    n, out = len(payload), bytearray([field << 3 | 2])
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out) + payload


def deep_value(levels):
    """An ExportTraceServiceRequest whose one resource attribute nests
    `levels` arrays, built by hand because the library would recurse."""
    v = b""
    for _ in range(levels):
        v = wrap(5, wrap(1, v))  # AnyValue.array_value -> ArrayValue.values
    kv = wrap(1, b"") + wrap(2, v)  # KeyValue.key (empty), KeyValue.value
    return wrap(1, wrap(1, wrap(1, kv)))  # request -> ResourceSpans.resource -> Resource.attributes


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    data = os.path.join(root, "tests", "data", "otlp_pb")
    trace = llm_trace()
    write(os.path.join(data, "llm_trace.pb"), trace.SerializeToString())
    write(os.path.join(data, "llm_trace.json"), to_otlp_json(trace).encode())
    write(os.path.join(data, "genai_logs.pb"), genai_logs().SerializeToString())
    write(os.path.join(data, "genai_metrics.pb"), genai_metrics().SerializeToString())
    for target, seeds in (("traces_pb", trace_seeds()), ("logs_pb", log_seeds()), ("metrics_pb", metric_seeds())):
        for name, msg in seeds.items():
            write(os.path.join(root, "fuzz", "corpus", target, name + ".pb"), msg.SerializeToString())
    # Near and past the decoders' nesting limits, and a truncated body.
    traces = os.path.join(root, "fuzz", "corpus", "traces_pb")
    write(os.path.join(traces, "deep_64.pb"), deep_value(64))
    write(os.path.join(traces, "deep_400.pb"), deep_value(400))
    write(os.path.join(traces, "truncated.pb"), llm_trace().SerializeToString()[:-7])
    write(os.path.join(traces, "json_body.pb"), to_otlp_json(llm_trace()).encode())


if __name__ == "__main__":
    main()
