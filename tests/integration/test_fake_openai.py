"""The fake upstream itself speaks the wire format of the real API (checked
with raw HTTP and with the `openai` client), so the instrumentation tests
exercise what they would in production. Needs no lanterna binary."""

from __future__ import annotations

import json

import openai
import requests

from fake_openai import expected_reply, prompt_tokens

MSGS = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Name a prime number"}]


def test_non_streaming(fake_openai):
    r = requests.post(fake_openai.base_url + "/chat/completions", json={"model": "gpt-4o-mini", "messages": MSGS})
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/json"
    b = r.json()
    assert b["object"] == "chat.completion" and b["id"].startswith("chatcmpl-") and isinstance(b["created"], int)
    assert b["model"] == "gpt-4o-mini-2024-07-18"
    assert b["choices"] == [{"index": 0, "logprobs": None, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": "Echo: Name a prime number",
                                         "refusal": None, "annotations": []}}]
    u = b["usage"]
    assert u["prompt_tokens"] == prompt_tokens(MSGS) and u["completion_tokens"] == 5
    assert u["total_tokens"] == u["prompt_tokens"] + 5 and u["prompt_tokens_details"]["cached_tokens"] == 2


def test_streaming_sse(fake_openai):
    body = {"model": "gpt-4o-mini", "messages": MSGS, "stream": True, "stream_options": {"include_usage": True}}
    r = requests.post(fake_openai.base_url + "/chat/completions", json=body, stream=True)
    assert r.headers["Content-Type"].startswith("text/event-stream")
    raw = b"".join(r.iter_content(None)).decode()
    events = raw.split("\n\n")
    assert events[-1] == "" and events[-2] == "data: [DONE]"
    chunks = [json.loads(e[len("data: "):]) for e in events[:-2]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == expected_reply(MSGS)
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 5
    assert all(c["usage"] is None for c in chunks[:-1])
    # Without include_usage: no usage chunk, no usage key.
    body.pop("stream_options")
    raw = requests.post(fake_openai.base_url + "/chat/completions", json=body).text
    chunks = [json.loads(e[6:]) for e in raw.split("\n\n") if e.startswith("data: {")]
    assert all(c["choices"] and "usage" not in c for c in chunks)


def test_openai_client(fake_openai):
    client = openai.OpenAI(base_url=fake_openai.base_url, api_key="sk-test", max_retries=0)
    r = client.chat.completions.create(model="gpt-4o", messages=MSGS)
    assert r.choices[0].message.content == "Echo: Name a prime number" and r.model == "gpt-4o-2024-08-06"
    text = "".join(c.choices[0].delta.content or "" for c in
                   client.chat.completions.create(model="gpt-4o", messages=MSGS, stream=True) if c.choices)
    assert text == "Echo: Name a prime number"
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
    r = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "weather in Rome?"}],
                                       tools=tools)
    assert r.choices[0].finish_reason == "tool_calls"
    assert r.choices[0].message.tool_calls[0].function.name == "get_weather"
    assert json.loads(r.choices[0].message.tool_calls[0].function.arguments) == {"location": "Paris"}
    try:
        client.chat.completions.create(model="gpt-4o", messages=[])
        raise AssertionError("empty messages accepted")
    except openai.BadRequestError:
        pass
