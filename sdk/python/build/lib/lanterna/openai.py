"""Drop-in for the `openai` package: swap the import and every chat
completion (sync, async, streamed) and embedding call is recorded as a
generation span — model, messages, parameters, usage, tool calls, errors,
and time to first token on streams — nested under the current span.

    from lanterna.openai import openai          # instead of `import openai`
    from lanterna.openai import OpenAI, AsyncOpenAI

Importing this module instruments the `openai` package in place (the
classes are the real ones, so return types and streaming behaviour are
unchanged). `uninstrument()` undoes it. Usage on streams is only known when
the request asks for it (`stream_options={"include_usage": True}`); we do
not add that option ourselves, because it changes the chunks the app sees.
"""

from __future__ import annotations

import openai  # noqa: F401  (re-exported)
from openai import AsyncOpenAI, OpenAI  # noqa: F401

from . import _llm
from ._core import S
from ._serialize import to_json, truncate
from ._wrap import Recorder, get, given, instrumenter, params

try:
    from openai import AsyncAzureOpenAI, AzureOpenAI  # noqa: F401
except ImportError:  # pragma: no cover
    pass

_SKIP = {"messages", "model", "stream", "stream_options", "tools", "timeout", "input"}


def _provider(resource):
    client = getattr(resource, "_client", None)
    return "azure.ai.openai" if type(client).__name__.endswith("AzureOpenAI") else "openai"


class _Chat(Recorder):
    def request(self, sp, args, kwargs):
        a = sp.attrs
        model = kwargs.get("model")
        sp.name = f"chat {model}" if model else "chat"
        a["gen_ai.operation.name"] = "chat"
        a["gen_ai.provider.name"] = _provider(args[0] if args else None)
        if model:
            a["gen_ai.request.model"] = str(model)
        p = params(kwargs, _SKIP)
        if p:
            sp.update(parameters=p)
        if S.capture:
            msgs = kwargs.get("messages")
            if msgs:
                _llm.set_messages(a, "llm.input_messages", [_llm.norm_message(m) for m in msgs], S.max_chars)
            tools = kwargs.get("tools")
            if given(tools):
                for i, t in enumerate(tools):
                    a[f"llm.tools.{i}.tool.json_schema"] = to_json(t, S.max_chars)

    def response(self, sp, r):
        choices = get(r, "choices")
        if choices is None:  # a raw response wrapper: leave its body unread
            return
        a = sp.attrs
        if get(r, "model"):
            a["gen_ai.response.model"] = str(r.model)
        if get(r, "id"):
            a["gen_ai.response.id"] = str(r.id)
        reasons = [str(get(c, "finish_reason")) for c in choices if get(c, "finish_reason")]
        if reasons:
            a["gen_ai.response.finish_reasons"] = reasons
        if S.capture:
            msgs = [_llm.norm_message(get(c, "message")) for c in choices if get(c, "message") is not None]
            _llm.set_messages(a, "llm.output_messages", msgs, S.max_chars)
        usage = get(r, "usage")
        if usage is not None:
            _llm.set_usage(a, usage)

    def stream(self):
        return _ChatStream()


class _ChatStream:
    def __init__(self):
        self.first = False
        self.model = self.id = self.usage = None
        self.choices = {}  # index -> {"content": [...], "tool_calls": {index: {...}}, "finish": str}

    def add(self, sp, chunk):
        if self.model is None and get(chunk, "model"):
            self.model, self.id = chunk.model, get(chunk, "id")
        u = get(chunk, "usage")
        if u is not None:
            self.usage = u
        for c in get(chunk, "choices") or ():
            st = self.choices.setdefault(get(c, "index", 0) or 0, {"content": [], "tool_calls": {}, "finish": None,
                                                                     "role": "assistant"})
            d = get(c, "delta")
            if d is not None:
                text = get(d, "content")
                if text:
                    if not self.first:
                        self.first = True
                        sp.first_token()
                    st["content"].append(text)
                for tc in get(d, "tool_calls") or ():
                    if not self.first:
                        self.first = True
                        sp.first_token()
                    slot = st["tool_calls"].setdefault(get(tc, "index", 0) or 0, {"id": None, "name": None,
                                                                                   "arguments": []})
                    if get(tc, "id"):
                        slot["id"] = tc.id
                    fn = get(tc, "function")
                    if fn is not None:
                        if get(fn, "name"):
                            slot["name"] = fn.name
                        if get(fn, "arguments"):
                            slot["arguments"].append(fn.arguments)
            if get(c, "finish_reason"):
                st["finish"] = c.finish_reason

    def finish(self, sp):
        a = sp.attrs
        if self.model:
            a["gen_ai.response.model"] = str(self.model)
        if self.id:
            a["gen_ai.response.id"] = str(self.id)
        reasons = [st["finish"] for _, st in sorted(self.choices.items()) if st["finish"]]
        if reasons:
            a["gen_ai.response.finish_reasons"] = reasons
        if S.capture and self.choices:
            msgs = []
            for _, st in sorted(self.choices.items()):
                m = {"role": st["role"]}
                if st["content"]:
                    m["content"] = truncate("".join(st["content"]), S.max_chars)
                if st["tool_calls"]:
                    m["tool_calls"] = [{"id": t["id"], "name": t["name"], "arguments": "".join(t["arguments"])}
                                       for _, t in sorted(st["tool_calls"].items())]
                msgs.append(m)
            _llm.set_messages(a, "llm.output_messages", msgs, S.max_chars)
        if self.usage:
            _llm.set_usage(a, self.usage)


class _Embeddings(Recorder):
    kind = "EMBEDDING"

    def request(self, sp, args, kwargs):
        a = sp.attrs
        model = kwargs.get("model")
        sp.name = f"embeddings {model}" if model else "embeddings"
        a["gen_ai.operation.name"] = "embeddings"
        a["gen_ai.provider.name"] = _provider(args[0] if args else None)
        if model:
            a["gen_ai.request.model"] = str(model)
        inp = kwargs.get("input")
        if S.capture and given(inp):
            sp._set_io("input", inp)

    def response(self, sp, r):
        if get(r, "model"):
            sp.attrs["gen_ai.response.model"] = str(r.model)
        usage = get(r, "usage")
        if usage is not None:
            _llm.set_usage(sp.attrs, usage)
        data = get(r, "data")
        if data:
            sp.attrs["gen_ai.embeddings.count"] = len(data)

    def stream(self):  # embeddings never stream
        raise TypeError


_TARGETS = []


def _targets():
    if not _TARGETS:
        from openai.resources.chat.completions import AsyncCompletions, Completions
        from openai.resources.embeddings import AsyncEmbeddings, Embeddings
        chat, emb = _Chat(), _Embeddings()
        _TARGETS.extend([(Completions, "create", chat, False), (AsyncCompletions, "create", chat, True),
                         (Embeddings, "create", emb, False), (AsyncEmbeddings, "create", emb, True)])
    return _TARGETS


# Instruments the `openai` package (done on import; idempotent) and undoes it.
instrument, uninstrument = instrumenter(_targets)


__all__ = ["openai", "OpenAI", "AsyncOpenAI", "AzureOpenAI", "AsyncAzureOpenAI", "instrument", "uninstrument"]

instrument()
