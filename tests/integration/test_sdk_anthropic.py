"""`lanterna.anthropic`: the real `anthropic` client against a fake Messages
API that streams like the real one, recorded as generation spans."""

from __future__ import annotations

import asyncio
import json

import pytest

from sdk_fake_anthropic import CACHED, FakeAnthropic, expected_reply, input_tokens
from sdk_util import lanterna, sdk, sdk_init, wait_trace  # noqa: F401

MODEL = "claude-sonnet-4-6"
TOOL = {"name": "get_weather", "description": "Current weather for a city",
        "input_schema": {"type": "object", "properties": {"location": {"type": "string"}}}}


@pytest.fixture(scope="module")
def fake_anthropic():
    with FakeAnthropic() as fake:
        yield fake


@pytest.fixture
def ant(sdk):
    from lanterna import anthropic as lt_anthropic
    lt_anthropic.instrument()
    yield lt_anthropic
    lt_anthropic.uninstrument()


def test_messages_plain_streamed_tool_and_error(server, fake_anthropic, ant):
    sdk_init(server)
    anthropic = ant.anthropic
    client = ant.Anthropic(base_url=fake_anthropic.base_url, api_key="sk-ant-test", max_retries=0)
    msgs = [{"role": "user", "content": "Hello there"}]
    with lanterna.span("claude-app") as root:
        r = client.messages.create(model=MODEL, max_tokens=64, system="Be brief.", messages=msgs,
                                   stop_sequences=["END"])
        assert type(r) is anthropic.types.Message and r.content[0].text == expected_reply(msgs)

        stream = client.messages.create(model=MODEL, max_tokens=64, messages=msgs, stream=True)
        assert isinstance(stream, anthropic.Stream)
        events = list(stream)
        assert [e.type for e in events][0] == "message_start" and events[-1].type == "message_stop"
        text = "".join(e.delta.text for e in events if e.type == "content_block_delta")
        assert text == expected_reply(msgs)

        tmsgs = [{"role": "user", "content": "What's the weather in Paris?"}]
        with client.messages.create(model=MODEL, max_tokens=64, messages=tmsgs, tools=[TOOL], stream=True) as s:
            for _ in s:
                pass
        follow = tmsgs + [
            {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_weather",
                                               "input": {"location": "Paris"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"},
                                         {"type": "text", "text": "And tomorrow?"}]}]
        client.messages.create(model=MODEL, max_tokens=64, messages=follow)
        with pytest.raises(anthropic.APIStatusError) as ei:
            client.messages.create(model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "please fail"}])
        assert ei.value.status_code == 529
    lanterna.flush()
    t = wait_trace(server, root.trace_id, 6)
    plain, streamed, tool, follow_span, failed = [s for s in t["spans"] if s["kind"] == "LLM"]
    for s in (plain, streamed, tool, follow_span, failed):
        assert s["provider"] == "anthropic" and s["request_model"] == MODEL and s["parent_span_id"] == root.span_id

    body = {"model": MODEL, "max_tokens": 64, "system": "Be brief.", "messages": msgs}
    # Input tokens include the cache reads (Anthropic reports them apart).
    assert plain["input_tokens"] == input_tokens(body) + CACHED and plain["cache_read_tokens"] == CACHED
    assert plain["output_tokens"] == len(expected_reply(msgs).split()) and plain["finish_reason"] == "end_turn"
    assert plain["input_messages"] == [{"role": "system", "content": "Be brief."},
                                       {"role": "user", "content": "Hello there"}]
    assert plain["output_messages"] == [{"role": "assistant", "content": expected_reply(msgs)}]
    assert plain["cost_source"] == "computed" and plain["cost_usd"] > 0
    assert plain["attributes"]["gen_ai.request.max_tokens"] == 64
    assert json.loads(plain["attributes"]["llm.invocation_parameters"]) == {"max_tokens": 64,
                                                                            "stop_sequences": ["END"]}

    assert streamed["output_messages"] == [{"role": "assistant", "content": expected_reply(msgs)}]
    assert streamed["output_tokens"] == len(expected_reply(msgs).split())  # from message_delta
    assert streamed["input_tokens"] == input_tokens({"messages": msgs}) + CACHED  # from message_start
    assert 0 < streamed["ttft_ms"] < streamed["duration_ms"]

    call = tool["output_messages"][0]["tool_calls"][0]
    assert call["name"] == "get_weather" and json.loads(call["arguments"]) == {"location": "Paris"}
    assert tool["finish_reason"] == "tool_use"

    im = follow_span["input_messages"]
    assert im[1]["tool_calls"][0]["name"] == "get_weather"
    assert im[2] == {"role": "tool", "content": "18C", "tool_call_id": "toolu_1"}
    assert im[3] == {"role": "user", "content": "And tomorrow?"}

    assert failed["status"] == "error" and failed["attributes"]["http.response.status_code"] == 529


def test_async_stream(server, fake_anthropic, ant):
    sdk_init(server)
    client = ant.AsyncAnthropic(base_url=fake_anthropic.base_url, api_key="sk-ant-test", max_retries=0)

    @lanterna.observe
    async def ask(q):
        s = await client.messages.create(model=MODEL, max_tokens=32, stream=True,
                                         messages=[{"role": "user", "content": q}])
        assert isinstance(s, ant.anthropic.AsyncStream)
        return "".join([e.delta.text async for e in s if e.type == "content_block_delta"])

    @lanterna.observe
    async def main():
        return await asyncio.gather(ask("alpha"), ask("beta")), lanterna.get_current_trace_id()

    answers, tid = asyncio.run(main())
    assert answers == ["Claude says: alpha", "Claude says: beta"]
    lanterna.flush()
    t = wait_trace(server, tid, 5)
    ids = {s["span_id"]: s for s in t["spans"]}
    llm = [s for s in t["spans"] if s["kind"] == "LLM"]
    assert len(llm) == 2
    for s in llm:
        q = json.loads(ids[s["parent_span_id"]]["input"])["q"]
        assert s["output_messages"][0]["content"] == f"Claude says: {q}" and s["ttft_ms"] is not None
