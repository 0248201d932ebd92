"""Unit tests of the SDK without a server: spans are captured by a recording
exporter. (The tests against the real server are in the repository's
tests/integration/test_sdk*.py.)"""

from __future__ import annotations

import asyncio
import json
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import lanterna  # noqa: E402
from lanterna import _core, _export, _llm  # noqa: E402
from lanterna._serialize import to_text  # noqa: E402


class RecordingExporter:
    def __init__(self):
        self.spans = []

    def add_span(self, s):
        self.spans.append(s)

    def add_item(self, kind, body):
        self.spans.append((kind, body))


@pytest.fixture
def rec(monkeypatch):
    exporter = RecordingExporter()
    monkeypatch.setattr(_core.S, "exporter", exporter)
    monkeypatch.setattr(_core.S, "enabled", True)
    monkeypatch.setattr(_core.S, "sample_rate", 1.0)
    monkeypatch.setattr(_core.S, "capture", True)
    monkeypatch.setattr(_core.S, "max_chars", 1000)
    return exporter


def test_observe_keeps_function_identity_and_skips_self(rec):
    class Svc:
        @lanterna.observe
        def run(self, a, *rest, flag=False):
            """doc"""
            return a

    assert Svc.run.__name__ == "run" and Svc.run.__doc__ == "doc"
    assert Svc().run(1, 2, 3, flag=True) == 1
    (s,) = rec.spans
    assert s.name == "Svc.run"
    assert json.loads(s.attrs["input.value"]) == {"a": 1, "rest": [2, 3], "flag": True}


def test_generator_send_and_throw_are_forwarded(rec):
    @lanterna.observe
    def echo():
        got = []
        try:
            while True:
                x = yield len(got)
                got.append(x)
        except KeyError:
            yield "caught"
        return got

    g = echo()
    assert next(g) == 0 and g.send("a") == 1 and g.send("b") == 2
    assert g.throw(KeyError("k")) == "caught"
    with pytest.raises(StopIteration) as stop:
        next(g)
    assert stop.value.value == ["a", "b"]
    (s,) = rec.spans
    assert json.loads(s.attrs["output.value"]) == [0, 1, 2, "caught", ["a", "b"]]


def test_async_generator_closed_early_ends_span(rec):
    @lanterna.observe
    async def count():
        i = 0
        while True:
            yield i
            i += 1

    async def main():
        g = count()
        assert [await g.__anext__() for _ in range(3)] == [0, 1, 2]
        await g.aclose()

    asyncio.run(main())
    (s,) = rec.spans
    assert s.ended and json.loads(s.attrs["output.value"]) == [0, 1, 2]


def test_traceparent_roundtrip_and_rejects():
    p = _core.parse_traceparent("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
    assert p.trace_id == "0af7651916cd43dd8448eb211c80319c" and p.span_id == "b7ad6b7169203331" and p.recording
    assert p.traceparent == "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    for bad in ("", "00-xyz", "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
                "00-00000000000000000000000000000000-b7ad6b7169203331-01",
                "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
                "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra", None):
        assert _core.parse_traceparent(bad) is None, bad
    # A future version may append fields.
    assert _core.parse_traceparent("01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00-x") is not None


def test_inject_extract_parent_child(rec):
    with lanterna.span("a") as a:
        h = lanterna.inject({"other": "1"})
    assert h["traceparent"] == a.traceparent and h["other"] == "1"
    with lanterna.continue_trace(h):
        with lanterna.span("b") as b:
            pass
    assert b.trace_id == a.trace_id and b.parent_span_id == a.span_id
    with lanterna.continue_trace({}):  # no header: a new trace
        with lanterna.span("c") as c:
            pass
    assert c.parent_span_id is None and c.trace_id != a.trace_id


def test_to_text_caps_and_mime():
    assert to_text("hi", 10) == ("hi", "text/plain")
    assert to_text({"a": [1, 2]}, 100) == ('{"a":[1,2]}', "application/json")
    t, m = to_text({"a": "x" * 50}, 20)
    assert m == "text/plain" and t.startswith('{"a":"xxxxxxxxxxxxxx') and "truncated" in t
    loop = []
    loop.append(loop)
    t, m = to_text(loop, 100)
    assert m == "text/plain" and t == "[[...]]"

    class Weird:
        def __repr__(self):
            return "<weird>"
    assert to_text({"w": Weird(), "b": b"abc", "s": {1}}, 100)[0] == '{"w":"<weird>","b":"<3 bytes>","s":[1]}'


def test_update_rejects_unknown_fields_and_ignores_after_end(rec):
    s = lanterna.start_span("x")
    with pytest.raises(TypeError):
        s.update(outptu="typo")
    s.end()
    s.update(output="late")
    s.end()
    assert rec.spans == [s] and "output.value" not in s.attrs


def test_trace_fields_reach_spans_ending_later(rec):
    with lanterna.span("root") as root:
        with lanterna.span("early"):
            pass
        lanterna.update_current_trace(user_id=7, session_id="s", tags=["t1"], metadata={"k": 1}, name="renamed")
        with lanterna.span("late", metadata={"own": True}) as late:
            late.set_attribute("tag.tags", ["t0"])
    early = rec.spans[0]
    assert "user.id" not in early.attrs
    assert late.attrs["user.id"] == "7" and late.attrs["tag.tags"] == ["t0", "t1"]
    assert json.loads(late.attrs["metadata"]) == {"k": 1, "own": True}
    assert root.name == "renamed" and root.attrs["session.id"] == "s"


def test_messages_are_flattened_as_openinference():
    a = {}
    msgs = _llm.as_messages([{"role": "user", "content": [{"type": "text", "text": "hi"},
                                                          {"type": "image_url",
                                                           "image_url": {"url": "data:image/png;base64,AAAA"}}]},
                             {"role": "assistant", "tool_calls": [{"id": "c1", "function": {
                                 "name": "f", "arguments": {"x": 1}}}]}])
    _llm.set_messages(a, "llm.input_messages", msgs, 100)
    assert a == {
        "llm.input_messages.0.message.role": "user",
        "llm.input_messages.0.message.contents.0.message_content.type": "text",
        "llm.input_messages.0.message.contents.0.message_content.text": "hi",
        "llm.input_messages.0.message.contents.1.message_content.type": "image",
        # Inline image bytes are never exported.
        "llm.input_messages.0.message.contents.1.message_content.image.image.url": "data:image/png;base64,...",
        "llm.input_messages.1.message.role": "assistant",
        "llm.input_messages.1.message.tool_calls.0.tool_call.id": "c1",
        "llm.input_messages.1.message.tool_calls.0.tool_call.function.name": "f",
        "llm.input_messages.1.message.tool_calls.0.tool_call.function.arguments": '{"x":1}',
    }


def test_json_encoder_output_is_otlp_json(rec):
    with lanterna.span("enc", attributes={"i": 3, "f": 1.5, "b": True, "l": ["a", "b"], "nan": float("nan")}) as s:
        s.record_exception(ValueError("bad"))
    enc = _export._JsonEncoder()
    body = json.loads(enc.encode({"service.name": "x"}, [(s, s.attrs, s.events, s.status_message)]))
    sp = body["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    assert sp["traceId"] == s.trace_id and sp["spanId"] == s.span_id and "parentSpanId" not in sp
    attrs = {kv["key"]: kv["value"] for kv in sp["attributes"]}
    assert attrs["i"] == {"intValue": "3"} and attrs["f"] == {"doubleValue": 1.5}
    assert attrs["b"] == {"boolValue": True} and attrs["nan"] == {"stringValue": "nan"}
    assert attrs["l"] == {"arrayValue": {"values": [{"stringValue": "a"}, {"stringValue": "b"}]}}
    assert sp["status"] == {"code": 2, "message": "ValueError: bad"} and sp["events"][0]["name"] == "exception"


def test_retry_after_parsing():
    assert _export._parse_retry_after("2") == 2.0
    assert _export._parse_retry_after("1000") == 60.0
    assert _export._parse_retry_after("garbage") is None and _export._parse_retry_after(None) is None
    assert _export._parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0


def test_bad_configuration_is_rejected_at_init_not_later():
    with pytest.raises(ValueError):
        lanterna.Config(sample_rate=2)
    with pytest.raises(TypeError):
        lanterna.Config(redact="not callable")
    with pytest.raises(ValueError):
        lanterna.observe(kind="nonsense")
    # A misspelt or foreign option name is an error, with the name to use.
    with pytest.raises(TypeError, match="did you mean 'base_url'"):
        lanterna.Config(endpoint="http://127.0.0.1:4318")
    with pytest.raises(TypeError, match="did you mean 'service_name'"):
        lanterna.Config(servce_name="x")
    with pytest.raises(TypeError, match="options: base_url"):
        lanterna.Config(zzzzzz=1)
    assert lanterna.Config(base_url="http://h:1/", batch_size=3).base_url == "http://h:1"


def test_sdk_code_never_raises_into_the_app(rec, monkeypatch):
    def broken(*a, **k):
        raise RuntimeError("sdk bug")

    monkeypatch.setattr(_core, "to_text", broken)
    monkeypatch.setattr(rec, "add_span", broken)

    @lanterna.observe
    def f(x):
        return x * 2

    assert f(21) == 42
