"""Drop-in for the `anthropic` package: swap the import and every
`messages.create` call (sync, async, `stream=True`) is recorded as a
generation span — model, system prompt and messages, parameters, usage
(cache reads and writes included), tool use, errors, and time to first
token on streams.

    from lanterna.anthropic import anthropic    # instead of `import anthropic`
    from lanterna.anthropic import Anthropic, AsyncAnthropic

Importing this module instruments the `anthropic` package in place; the
classes and return types are the real ones. `uninstrument()` undoes it.
Anthropic reports cached input tokens apart from `input_tokens`; the span's
input token count is their sum, as the GenAI conventions define it.
The `messages.stream()` helper is not recorded; use
`messages.create(..., stream=True)`.
"""

from __future__ import annotations

import anthropic  # noqa: F401  (re-exported)
from anthropic import Anthropic, AsyncAnthropic  # noqa: F401

from . import _llm
from ._core import S
from ._serialize import plain, to_json, truncate
from ._wrap import Recorder, get, given, instrumenter, params

_SKIP = {"messages", "model", "stream", "system", "tools", "timeout", "metadata"}


def _blocks_text(content):
    if isinstance(content, str):
        return content
    out = []
    for b in content or ():
        if isinstance(b, dict) and b.get("type") == "text":
            out.append(b.get("text") or "")
    return "".join(out)


def messages_in(system, messages):
    """Anthropic request messages as the SDK's normalized message list."""
    out = []
    if given(system) and system:
        out.append({"role": "system", "content": _blocks_text(plain(system))})
    for m in messages or ():
        m = plain(m)
        role, content = m.get("role", "user"), m.get("content")
        if isinstance(content, str) or content is None:
            out.append({"role": role, "content": content or ""})
            continue
        parts, calls = [], []
        for b in content:
            t = b.get("type") if isinstance(b, dict) else None
            if t == "tool_result":
                c = b.get("content")
                out.append({"role": "tool", "tool_call_id": b.get("tool_use_id"),
                            "content": c if isinstance(c, str) else _blocks_text(c)})
            elif t == "tool_use":
                calls.append({"id": b.get("id"), "name": b.get("name"), "arguments": to_json(b.get("input") or {})})
            elif t == "thinking":
                parts.append({"type": "reasoning", "text": b.get("thinking") or ""})
            elif t is not None:
                parts.append(b)
        if parts or calls:
            msg = {"role": role}
            if parts:
                msg["content"] = parts[0]["text"] if len(parts) == 1 and parts[0].get("type") == "text" else parts
            if calls:
                msg["tool_calls"] = calls
            out.append(msg)
    return out


def _set_usage(a, u):
    u = plain(u) or {}
    inp = u.get("input_tokens")
    cr = u.get("cache_read_input_tokens") or 0
    cw = u.get("cache_creation_input_tokens") or 0
    if isinstance(inp, int):
        a["gen_ai.usage.input_tokens"] = inp + cr + cw
    if isinstance(u.get("output_tokens"), int):
        a["gen_ai.usage.output_tokens"] = u["output_tokens"]
    if isinstance(u.get("cache_read_input_tokens"), int):
        a["gen_ai.usage.cache_read.input_tokens"] = cr
    if isinstance(u.get("cache_creation_input_tokens"), int):
        a["gen_ai.usage.cache_creation.input_tokens"] = cw


class _Messages(Recorder):
    def request(self, sp, args, kwargs):
        a = sp.attrs
        model = kwargs.get("model")
        sp.name = f"chat {model}" if model else "chat"
        a["gen_ai.operation.name"] = "chat"
        a["gen_ai.provider.name"] = "anthropic"
        if model:
            a["gen_ai.request.model"] = str(model)
        p = params(kwargs, _SKIP)
        if p:
            sp.update(parameters=p)
        if S.capture:
            msgs = messages_in(kwargs.get("system"), kwargs.get("messages"))
            _llm.set_messages(a, "llm.input_messages", msgs, S.max_chars)
            tools = kwargs.get("tools")
            if given(tools):
                for i, t in enumerate(tools):
                    a[f"llm.tools.{i}.tool.json_schema"] = to_json(t, S.max_chars)

    def response(self, sp, r):
        if get(r, "content") is None or get(r, "usage") is None:
            return  # a raw response wrapper: leave its body unread
        a = sp.attrs
        if get(r, "model"):
            a["gen_ai.response.model"] = str(r.model)
        if get(r, "id"):
            a["gen_ai.response.id"] = str(r.id)
        if get(r, "stop_reason"):
            a["gen_ai.response.finish_reasons"] = [str(r.stop_reason)]
        if S.capture:
            m = messages_in(None, [{"role": "assistant", "content": plain(r.content)}])
            _llm.set_messages(a, "llm.output_messages", m or [{"role": "assistant", "content": ""}], S.max_chars)
        _set_usage(a, r.usage)

    def stream(self):
        return _Stream()


class _Stream:
    def __init__(self):
        self.first = False
        self.model = self.id = self.stop = None
        self.usage = {}
        self.blocks = {}  # index -> {"type", "text": [...], "id", "name", "json": [...]}

    def add(self, sp, ev):
        t = get(ev, "type")
        if t == "message_start":
            msg = get(ev, "message")
            self.model, self.id = get(msg, "model"), get(msg, "id")
            self.usage.update({k: v for k, v in (plain(get(msg, "usage")) or {}).items() if v is not None})
        elif t == "content_block_start":
            b = get(ev, "content_block")
            self.blocks[get(ev, "index", 0)] = {"type": get(b, "type"), "text": [], "id": get(b, "id"),
                                                "name": get(b, "name"), "json": []}
        elif t == "content_block_delta":
            if not self.first:
                self.first = True
                sp.first_token()
            d = get(ev, "delta")
            blk = self.blocks.setdefault(get(ev, "index", 0), {"type": "text", "text": [], "id": None,
                                                                "name": None, "json": []})
            dt = get(d, "type")
            if dt == "text_delta":
                blk["text"].append(get(d, "text") or "")
            elif dt == "input_json_delta":
                blk["json"].append(get(d, "partial_json") or "")
            elif dt == "thinking_delta":
                blk["text"].append(get(d, "thinking") or "")
        elif t == "message_delta":
            d = get(ev, "delta")
            if get(d, "stop_reason"):
                self.stop = d.stop_reason
            self.usage.update({k: v for k, v in (plain(get(ev, "usage")) or {}).items() if v is not None})

    def finish(self, sp):
        a = sp.attrs
        if self.model:
            a["gen_ai.response.model"] = str(self.model)
        if self.id:
            a["gen_ai.response.id"] = str(self.id)
        if self.stop:
            a["gen_ai.response.finish_reasons"] = [str(self.stop)]
        if S.capture and self.blocks:
            text, calls = [], []
            for _, b in sorted(self.blocks.items()):
                if b["type"] == "tool_use":
                    calls.append({"id": b["id"], "name": b["name"], "arguments": "".join(b["json"]) or "{}"})
                elif b["type"] == "text":
                    text.append("".join(b["text"]))
            m = {"role": "assistant"}
            if text:
                m["content"] = truncate("".join(text), S.max_chars)
            if calls:
                m["tool_calls"] = calls
            _llm.set_messages(a, "llm.output_messages", [m], S.max_chars)
        if self.usage:
            _set_usage(a, self.usage)


_TARGETS = []


def _targets():
    if not _TARGETS:
        from anthropic.resources.messages import AsyncMessages, Messages
        rec = _Messages()
        _TARGETS.extend([(Messages, "create", rec, False), (AsyncMessages, "create", rec, True)])
    return _TARGETS


# Instruments the `anthropic` package (done on import; idempotent) and undoes it.
instrument, uninstrument = instrumenter(_targets)


__all__ = ["anthropic", "Anthropic", "AsyncAnthropic", "instrument", "uninstrument"]

instrument()
