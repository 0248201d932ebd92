"""The real `openai` client, instrumented by OpenInference, OpenLLMetry and
the official OpenTelemetry instrumentation, talking to the fake upstream and
exporting to Lanterna; each test reads the stored LLM spans back."""

from __future__ import annotations

import json

import pytest

import instrumented_client
from fake_openai import response_model
from ltlib import text_of


@pytest.fixture(scope="module")
def runs(module_lanterna, fake_openai):
    """One server per module and one client run per instrumentation (each in
    its own interpreter), shared by the assertions below."""
    server = module_lanterna()
    cache = {}

    def get(lib):
        if lib not in cache:
            cache[lib] = instrumented_client.run(lib, server.url, fake_openai.base_url)
        return server, cache[lib]
    return get


def llm_span(server, call):
    d = server.trace(call["trace_id"])
    match = [s for s in d["spans"] if s["span_id"] == call["span_id"]]
    assert match, f"span {call['span_id']} not in trace {call['trace_id']}: {[s['name'] for s in d['spans']]}"
    return d, match[0]


def check_common(server, out, expected_request_model):
    assert all(out["exports"]["traces"]), f"an export was not acknowledged: {out['exports']}"
    assert [c["mode"] for c in out["calls"]] == ["plain", "stream", "tools"]
    for call in out["calls"]:
        u = call["usage"]
        assert u and u["prompt_tokens"] > 0, f"the client saw no usage for {call['mode']}"
        d, s = llm_span(server, call)
        where = f"{out['lib']} {call['mode']} span {json.dumps(s)[:1500]}"
        assert s["kind"] == "LLM", where
        assert s["provider"] == "openai", where
        assert s["request_model"] == expected_request_model, where
        assert s["response_model"] == response_model("gpt-4o-mini") == call["model"], where
        assert s["input_tokens"] == u["prompt_tokens"], where
        assert s["output_tokens"] == u["completion_tokens"], where
        assert s["total_tokens"] == u["total_tokens"], where
        assert s["otel_kind"] in (1, 3), where
        assert s["service"] == f"it-{out['lib']}" and s["environment"] == "test", where
        row = d["trace"]
        assert row["input_tokens"] == u["prompt_tokens"] and row["output_tokens"] == u["completion_tokens"]
        assert any(m in row["models"] for m in ("gpt-4o-mini", call["model"])), row
        # The model filter of the list finds the trace by request or response model.
        assert call["trace_id"] in [t["trace_id"] for t in server.traces(model=call["model"], limit=1000)]
    return [llm_span(server, c)[1] for c in out["calls"]]


def check_messages(out, spans):
    for call, s in zip(out["calls"], spans):
        where = f"{out['lib']} {call['mode']} span {json.dumps(s)[:2000]}"
        user = call["messages"][-1]["content"]
        system = call["messages"][0]["content"]
        assert user in text_of(s["input_messages"]), where
        assert system in text_of(s["input_messages"]), where
        if call["mode"] == "tools":
            assert call["tool_call"]["name"] == "get_weather"
            assert "get_weather" in text_of(s["output_messages"]), where
            assert "Paris" in text_of(s["output_messages"]), where
        else:
            assert call["reply"] in text_of(s["output_messages"]), where


def test_openinference(runs):
    server, out = runs("openinference")
    # OpenInference reports only llm.model_name (the response's model).
    spans = check_common(server, out, expected_request_model=response_model("gpt-4o-mini"))
    check_messages(out, spans)
    for call, s in zip(out["calls"], spans):
        assert s["cache_read_tokens"] == call["usage"]["prompt_tokens_details"]["cached_tokens"] == 5
        assert s["finish_reason"] == ("tool_calls" if call["mode"] == "tools" else "stop")
        assert s["attributes"]["openinference.span.kind"] == "LLM"
        # input.value / output.value are the raw request and response JSON.
        assert call["messages"][-1]["content"] in s["input"]
        assert (call["reply"] or "get_weather") in s["output"]


def test_openllmetry(runs):
    server, out = runs("openllmetry")
    spans = check_common(server, out, expected_request_model="gpt-4o-mini")
    check_messages(out, spans)
    for call, s in zip(out["calls"], spans):
        assert s["name"] == "openai.chat"
        assert s["operation"] == "chat"
        # OpenLLMetry normalizes OpenAI's "tool_calls" to the semconv "tool_call".
        assert s["finish_reason"] == ("tool_call" if call["mode"] == "tools" else "stop")
        assert s["cache_read_tokens"] == 5
        assert s["attributes"]["gen_ai.request.model"] == "gpt-4o-mini"


def test_otel_v2_spans_and_log_content(runs):
    """opentelemetry-instrumentation-openai-v2: the span carries model and
    tokens; with OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=event_only
    the prompt and completion arrive only as a log record
    (gen_ai.client.inference.operation.details, sent to /v1/logs before the
    span), which must be listed under the span's `logs`."""
    server, out = runs("otel-v2")
    assert all(out["exports"]["logs"]) and out["exports"]["logs"], out["exports"]
    assert len(out["logs"]) == 3, "the instrumentation emitted no content log records (package changed?)"
    spans = check_common(server, out, expected_request_model="gpt-4o-mini")
    for call, s in zip(out["calls"], spans):
        assert s["name"] == "chat gpt-4o-mini"
        logs = s["logs"]
        where = f"{call['mode']} logs {json.dumps(logs)[:2000]}"
        assert [lg["event_name"] for lg in logs] == ["gen_ai.client.inference.operation.details"], where
        content = text_of(logs[0].get("attributes")) + " " + text_of(logs[0].get("body"))
        assert call["messages"][-1]["content"] in content, where
        assert call["messages"][0]["content"] in content, where
        assert (call["reply"] or "get_weather") in content, where
        assert isinstance(logs[0]["time_ns"], int) and logs[0]["time_ns"] > 0


def test_otel_v2_log_content_mapped_to_messages(runs):
    """SEMCONV: input/output messages also come from GenAI events, including
    those that arrive as OTLP log records."""
    server, out = runs("otel-v2")
    spans = [llm_span(server, c)[1] for c in out["calls"]]
    check_messages(out, spans)


def test_otel_v2_metrics_accepted(runs):
    server, out = runs("otel-v2")
    assert out["exports"]["metrics"] and all(out["exports"]["metrics"]), out["exports"]
    assert server.stats()["store"]["points"] > 0
