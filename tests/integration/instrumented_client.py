"""Runs the real `openai` client, instrumented by one of the three OpenAI
instrumentations, against the fake upstream, exporting to Lanterna over
OTLP/HTTP protobuf. Each instrumentation patches the `openai` module
globally, so every run is its own process (tests call `run()` below).

    python instrumented_client.py LIB LANTERNA_URL OPENAI_BASE_URL [HEADERS_JSON]

LIB is `openinference`, `openllmetry` or `otel-v2`. Prints one JSON object:
the calls made (with the trace and span id of the span the instrumentation
created for each), whether every export was acknowledged, and the spans and
log records as the SDK saw them (for debugging a failing assertion).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

SYSTEM = "You are a terse assistant."
PLAIN_USER = "What is the capital of France?"
STREAM_USER = "Tell me a short joke about ducks"
TOOL_USER = "What is the weather in Paris right now?"
TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather for a city",
    "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}}}


def run(lib: str, lanterna_url: str, openai_base: str, headers: dict | None = None,
        timeout: float = 120) -> dict:
    """Runs this script in a fresh interpreter and returns its JSON output."""
    env = dict(os.environ)
    env.pop("OTEL_SEMCONV_STABILITY_OPT_IN", None)
    if lib == "otel-v2":
        # Content only as log records (event_only), so the test proves /v1/logs attaches it.
        env["OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"] = "event_only"
    if lib == "openllmetry":
        env["TRACELOOP_TRACE_CONTENT"] = "true"
    env["OTEL_PYTHON_DISABLED_INSTRUMENTATIONS"] = ""
    args = [sys.executable, os.path.join(HERE, "instrumented_client.py"), lib, lanterna_url, openai_base,
            json.dumps(headers or {})]
    p = subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise AssertionError(f"instrumented client ({lib}) failed rc={p.returncode}\n"
                             f"stdout:\n{p.stdout[-4000:]}\nstderr:\n{p.stderr[-4000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def _attr_value(v):
    if isinstance(v, tuple):
        return list(v)
    return v


def main() -> None:
    lib, lanterna_url, openai_base = sys.argv[1], sys.argv[2].rstrip("/"), sys.argv[3]
    headers = json.loads(sys.argv[4]) if len(sys.argv) > 4 else {}

    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    results = {"traces": [], "logs": [], "metrics": []}

    class Recording(OTLPSpanExporter):
        def export(self, spans):
            r = super().export(spans)
            results["traces"].append(r == SpanExportResult.SUCCESS)
            return r

    resource = Resource.create({"service.name": f"it-{lib}", "deployment.environment.name": "test"})
    tp = TracerProvider(resource=resource)
    memory = InMemorySpanExporter()
    tp.add_span_processor(SimpleSpanProcessor(memory))
    tp.add_span_processor(SimpleSpanProcessor(Recording(endpoint=lanterna_url + "/v1/traces", headers=headers,
                                                        timeout=30)))
    kwargs = {"tracer_provider": tp}

    lp = mp = None
    mem_logs = None
    if lib == "otel-v2":
        from opentelemetry.sdk._logs import LoggerProvider
        from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor, LogRecordExportResult
        from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader, MetricExportResult
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

        class RecordingLogs(OTLPLogExporter):
            def export(self, batch):
                r = super().export(batch)
                results["logs"].append(r == LogRecordExportResult.SUCCESS)
                return r

        class RecordingMetrics(OTLPMetricExporter):
            def export(self, metrics_data, timeout_millis: float = 10_000, **kw):
                r = super().export(metrics_data, timeout_millis=timeout_millis, **kw)
                results["metrics"].append(r == MetricExportResult.SUCCESS)
                return r

        lp = LoggerProvider(resource=resource)
        mem_logs = InMemoryLogRecordExporter()
        lp.add_log_record_processor(SimpleLogRecordProcessor(mem_logs))
        lp.add_log_record_processor(SimpleLogRecordProcessor(
            RecordingLogs(endpoint=lanterna_url + "/v1/logs", headers=headers, timeout=30)))
        reader = PeriodicExportingMetricReader(
            RecordingMetrics(endpoint=lanterna_url + "/v1/metrics", headers=headers, timeout=30),
            export_interval_millis=3_600_000)
        mp = MeterProvider(resource=resource, metric_readers=[reader])
        kwargs.update(logger_provider=lp, meter_provider=mp)
        from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
    elif lib == "openinference":
        from openinference.instrumentation.openai import OpenAIInstrumentor
    elif lib == "openllmetry":
        from opentelemetry.instrumentation.openai import OpenAIInstrumentor
    else:
        raise SystemExit(f"unknown instrumentation {lib}")

    OpenAIInstrumentor().instrument(**kwargs)

    import openai
    client = openai.OpenAI(base_url=openai_base, api_key="sk-fake-test", max_retries=0, timeout=30)

    calls = []

    def newest_llm_span(before: int):
        spans = memory.get_finished_spans()[before:]
        assert spans, f"{lib} created no span"
        s = spans[-1]
        return s

    # Non-streaming.
    n = len(memory.get_finished_spans())
    msgs = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": PLAIN_USER}]
    r = client.chat.completions.create(model="gpt-4o-mini", messages=msgs, temperature=0.2, max_tokens=64)
    s = newest_llm_span(n)
    calls.append({"mode": "plain", "trace_id": format(s.context.trace_id, "032x"),
                  "span_id": format(s.context.span_id, "016x"), "reply": r.choices[0].message.content,
                  "usage": r.usage.model_dump(), "model": r.model, "messages": msgs})

    # Streaming, with usage in the last chunk.
    n = len(memory.get_finished_spans())
    msgs = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": STREAM_USER}]
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=msgs, stream=True,
                                            stream_options={"include_usage": True})
    text, usage, model = "", None, None
    for chunk in stream:
        model = chunk.model
        if chunk.choices and chunk.choices[0].delta.content:
            text += chunk.choices[0].delta.content
        if chunk.usage:
            usage = chunk.usage.model_dump()
    if hasattr(stream, "close"):
        stream.close()
    s = newest_llm_span(n)
    calls.append({"mode": "stream", "trace_id": format(s.context.trace_id, "032x"),
                  "span_id": format(s.context.span_id, "016x"), "reply": text, "usage": usage,
                  "model": model, "messages": msgs})

    # A tool call.
    n = len(memory.get_finished_spans())
    msgs = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": TOOL_USER}]
    r = client.chat.completions.create(model="gpt-4o-mini", messages=msgs, tools=[TOOL])
    s = newest_llm_span(n)
    tc = r.choices[0].message.tool_calls[0]
    calls.append({"mode": "tools", "trace_id": format(s.context.trace_id, "032x"),
                  "span_id": format(s.context.span_id, "016x"), "reply": None,
                  "tool_call": {"id": tc.id, "name": tc.function.name, "arguments": tc.function.arguments},
                  "finish_reason": r.choices[0].finish_reason,
                  "usage": r.usage.model_dump(), "model": r.model, "messages": msgs})

    if mp is not None:
        mp.force_flush()
        mp.shutdown()
    if lp is not None:
        lp.force_flush()
        lp.shutdown()
    tp.force_flush()
    tp.shutdown()

    out = {
        "lib": lib,
        "calls": calls,
        "exports": results,
        "spans": [{"name": s.name, "trace_id": format(s.context.trace_id, "032x"),
                   "span_id": format(s.context.span_id, "016x"),
                   "parent": format(s.parent.span_id, "016x") if s.parent else None,
                   "attributes": {k: _attr_value(v) for k, v in (s.attributes or {}).items()},
                   "events": [{"name": e.name, "attributes": dict(e.attributes or {})} for e in s.events]}
                  for s in memory.get_finished_spans()],
        "logs": [],
    }
    if mem_logs is not None:
        for ld in mem_logs.get_finished_logs():
            rec = ld.log_record
            out["logs"].append({"event_name": getattr(rec, "event_name", None),
                                "trace_id": format(rec.trace_id or 0, "032x"),
                                "span_id": format(rec.span_id or 0, "016x"),
                                "body": rec.body, "attributes": dict(rec.attributes or {})})
    print(json.dumps(out, default=str))


if __name__ == "__main__":
    main()
