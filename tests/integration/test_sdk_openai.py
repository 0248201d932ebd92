"""`lanterna.openai`: the real `openai` client against the fake upstream,
recorded as generation spans without changing what the app sees."""

from __future__ import annotations

import asyncio
import json

import pytest

from fake_openai import expected_reply, prompt_tokens
from sdk_util import by_name, lanterna, sdk, sdk_init, wait_trace  # noqa: F401

MSGS = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Name a prime number"}]
TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather for a city",
    "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}}}


@pytest.fixture
def oai(sdk):
    from lanterna import openai as lt_openai
    lt_openai.instrument()
    yield lt_openai
    # Other test modules use the plain client in this process.
    lt_openai.uninstrument()


def llm_spans(t):
    return [s for s in t["spans"] if s["kind"] == "LLM"]


def test_sync_calls_plain_streamed_and_tool(server, fake_openai, oai):
    sdk_init(server)
    openai = oai.openai
    client = oai.OpenAI(base_url=fake_openai.base_url, api_key="sk-test", max_retries=0)
    assert isinstance(client, openai.OpenAI)

    with lanterna.span("chat-app") as root:
        r = client.chat.completions.create(model="gpt-4o-mini", messages=MSGS, temperature=0.3, max_tokens=50,
                                           user="end-user-1")
        assert type(r) is openai.types.chat.ChatCompletion
        assert r.choices[0].message.content == expected_reply(MSGS)

        stream = client.chat.completions.create(model="gpt-4o", messages=MSGS, stream=True,
                                                stream_options={"include_usage": True})
        assert isinstance(stream, openai.Stream)
        chunks = list(stream)
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text == expected_reply(MSGS) and chunks[-1].usage.completion_tokens == 5

        tool_msgs = [{"role": "user", "content": "What is the weather in Paris?"}]
        with client.chat.completions.create(model="gpt-4.1", messages=tool_msgs, tools=[TOOL],
                                            stream=True) as s2:
            calls = [c for c in s2 if c.choices and c.choices[0].delta.tool_calls]
        assert calls

        follow = tool_msgs + [
            {"role": "assistant", "tool_calls": [{"id": "call_9", "type": "function",
                                                  "function": {"name": "get_weather",
                                                               "arguments": '{"location":"Paris"}'}}]},
            {"role": "tool", "tool_call_id": "call_9", "content": "18C and sunny"},
            {"role": "user", "content": [{"type": "text", "text": "Summarise"},
                                         {"type": "image_url", "image_url": {"url": "https://x.test/a.png"}}]}]
        client.chat.completions.create(model="gpt-4o-mini", messages=follow)
    lanterna.flush()
    t = wait_trace(server, root.trace_id, 5)
    plain, streamed, tool, multi = llm_spans(t)
    for s in (plain, streamed, tool, multi):
        assert s["parent_span_id"] == root.span_id and s["provider"] == "openai" and s["operation"] == "chat"
        assert s["status"] == "unset" and s["otel_kind"] == 3

    assert plain["name"] == "chat gpt-4o-mini" and plain["request_model"] == "gpt-4o-mini"
    assert plain["response_model"] == "gpt-4o-mini-2024-07-18"
    assert plain["input_tokens"] == prompt_tokens(MSGS) and plain["output_tokens"] == 5
    assert plain["cache_read_tokens"] == 2 and plain["reasoning_tokens"] == 0
    assert plain["cost_source"] == "computed" and plain["cost_usd"] > 0
    assert plain["finish_reason"] == "stop" and plain["ttft_ms"] is None
    assert plain["input_messages"] == MSGS
    assert plain["output_messages"] == [{"role": "assistant", "content": expected_reply(MSGS)}]
    attrs = plain["attributes"]
    assert attrs["gen_ai.request.temperature"] == pytest.approx(0.3) and attrs["gen_ai.request.max_tokens"] == 50
    assert json.loads(attrs["llm.invocation_parameters"]) == {"temperature": 0.3, "max_tokens": 50,
                                                              "user": "end-user-1"}
    assert attrs["gen_ai.response.id"] == r.id

    assert streamed["response_model"] == "gpt-4o-2024-08-06" and streamed["output_tokens"] == 5
    assert streamed["output_messages"] == [{"role": "assistant", "content": expected_reply(MSGS)}]
    # Time to first token: from the first content chunk, before the end of the stream.
    assert 0 < streamed["ttft_ms"] < streamed["duration_ms"]

    assert tool["finish_reason"] == "tool_calls" and tool["input_tokens"] is None  # no include_usage asked
    call = tool["output_messages"][0]["tool_calls"][0]
    assert call["name"] == "get_weather" and json.loads(call["arguments"]) == {"location": "Paris"}
    assert call["id"].startswith("call_") and tool["ttft_ms"] is not None
    assert json.loads(tool["attributes"]["llm.tools.0.tool.json_schema"]) == TOOL

    im = multi["input_messages"]
    assert im[1]["tool_calls"] == [{"id": "call_9", "name": "get_weather", "arguments": '{"location":"Paris"}'}]
    assert im[2] == {"role": "tool", "content": "18C and sunny", "tool_call_id": "call_9"}
    assert im[3]["content"] == [{"type": "text", "text": "Summarise"}, {"type": "image", "url": "https://x.test/a.png"}]


def test_async_client_and_async_stream(server, fake_openai, oai):
    sdk_init(server)
    client = oai.AsyncOpenAI(base_url=fake_openai.base_url, api_key="sk-test", max_retries=0)

    @lanterna.observe
    async def ask(q):
        msgs = [{"role": "user", "content": q}]
        r = await client.chat.completions.create(model="gpt-4o-mini", messages=msgs)
        s = await client.chat.completions.create(model="gpt-4o-mini", messages=msgs, stream=True,
                                                 stream_options={"include_usage": True})
        assert isinstance(s, oai.openai.AsyncStream)
        text = "".join([c.choices[0].delta.content or "" async for c in s if c.choices])
        return r.choices[0].message.content, text

    @lanterna.observe
    async def main():
        return await asyncio.gather(ask("one two"), ask("three")), lanterna.get_current_trace_id()

    (a, b), tid = asyncio.run(main())
    assert a == ("Echo: one two", "Echo: one two") and b == ("Echo: three", "Echo: three")
    lanterna.flush()
    t = wait_trace(server, tid, 7)
    ids = {s["span_id"]: s for s in t["spans"]}
    llm = llm_spans(t)
    assert len(llm) == 4
    for s in llm:
        parent = ids[s["parent_span_id"]]
        assert parent["name"] == "ask"
        question = json.loads(parent["input"])["q"]
        assert s["input_messages"] == [{"role": "user", "content": question}]
        assert s["output_messages"][0]["content"] == f"Echo: {question}" and s["output_tokens"] is not None
    assert sum(1 for s in llm if s["ttft_ms"] is not None) == 2


def test_errors_and_early_close(server, fake_openai, oai):
    sdk_init(server)
    openai = oai.openai
    client = oai.OpenAI(base_url=fake_openai.base_url, api_key="sk-test", max_retries=0)
    with lanterna.span("errors") as root:
        with pytest.raises(openai.BadRequestError):
            client.chat.completions.create(model="gpt-4o-mini", messages=[])
        with pytest.raises(openai.NotFoundError):
            client.embeddings.create(model="text-embedding-3-small", input="hello")
        s = client.chat.completions.create(model="gpt-4o-mini", messages=MSGS, stream=True)
        first = next(iter(s))
        assert first.choices[0].delta.role == "assistant"
        s.close()  # the app stops reading
        raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MSGS)
        assert raw.parse().choices[0].message.content == expected_reply(MSGS)
    lanterna.flush()
    t = wait_trace(server, root.trace_id, 5)
    spans = t["spans"][1:]
    bad, emb, closed, rawspan = spans
    assert bad["status"] == "error" and "BadRequestError" in bad["status_message"]
    assert bad["attributes"]["http.response.status_code"] == 400
    assert bad["events"][0]["attributes"]["exception.type"] == "openai.BadRequestError"
    assert emb["kind"] == "EMBEDDING" and emb["status"] == "error" and emb["request_model"] == "text-embedding-3-small"
    assert emb["attributes"]["http.response.status_code"] == 404
    # Closed after the first chunk: ended there, with what had arrived (the role, no text yet).
    assert closed["status"] == "unset" and closed["output_messages"] == [{"role": "assistant"}]
    assert closed["end_ns"] < rawspan["start_ns"]
    assert rawspan["status"] == "unset" and rawspan["input_messages"] == MSGS


def test_uninstrument_restores_the_client(server, fake_openai, oai):
    sdk_init(server)
    oai.uninstrument()
    client = oai.OpenAI(base_url=fake_openai.base_url, api_key="sk-test", max_retries=0)
    with lanterna.span("quiet") as root:
        client.chat.completions.create(model="gpt-4o-mini", messages=MSGS)
    oai.instrument()
    with lanterna.span("loud") as root2:
        client.chat.completions.create(model="gpt-4o-mini", messages=MSGS)
    oai.instrument()  # idempotent: one span per call, not two
    with lanterna.span("loud-again") as root3:
        client.chat.completions.create(model="gpt-4o-mini", messages=MSGS)
    lanterna.flush()
    assert len(wait_trace(server, root.trace_id, 1)["spans"]) == 1
    assert len(wait_trace(server, root2.trace_id, 2)["spans"]) == 2
    assert len(wait_trace(server, root3.trace_id, 2)["spans"]) == 2


def test_rag_example_shows_up_fully(server):
    """examples/rag_app.py, offline (its own fake upstream), end to end."""
    from ltlib import REPO
    from sdk_util import run_script
    p = run_script(f"""
        import runpy, sys
        sys.argv = ["rag_app.py", "--lanterna", "{server.url}", "--user", "u-42", "--session", "s-42",
                    "--thumbs", "down", "Which planet has the most moons?"]
        try:
            runpy.run_path("{REPO / 'examples' / 'rag_app.py'}", run_name="__main__")
        except SystemExit as e:
            assert e.code == 0, e.code
    """, env={"OPENAI_API_KEY": ""})
    assert "A: Echo: Which planet has the most moons?" in p.stdout
    tid = p.stdout.split("trace: ")[1].split()[0]
    t = wait_trace(server, tid, 5)
    s = by_name(t)
    assert set(s) == {"rag request", "answer", "retrieve", "generate", "chat gpt-4o-mini"}
    row = t["trace"]
    assert (row["user_id"], row["session_id"], row["tags"], row["service"], row["environment"]) == \
        ("u-42", "s-42", ["rag-demo"], "rag-demo", "dev")
    docs = s["retrieve"]["documents"]
    assert s["retrieve"]["kind"] == "RETRIEVER" and [d["id"] for d in docs][0] == "kb-1"
    assert docs[0]["score"] > docs[-1]["score"] and docs[0]["metadata"]["source"] == "astronomy-faq"
    llm = s["chat gpt-4o-mini"]
    assert llm["parent_span_id"] == s["generate"]["span_id"]
    assert llm["input_tokens"] > 0 and llm["output_tokens"] > 0 and llm["cost_usd"] > 0
    assert llm["ttft_ms"] is not None and "kb-1" in llm["input_messages"][0]["content"]
    assert s["answer"]["feature"] == "kb-answer"
    names = sorted(x["name"] for x in t["scores"])
    assert names == ["groundedness", "user_feedback"]
    assert next(x for x in t["scores"] if x["name"] == "user_feedback")["value"] == -1
