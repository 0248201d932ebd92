"""Messages, usage and documents as flat OpenInference / GenAI attributes,
the keys the Lanterna server maps into structured fields."""

from __future__ import annotations

from ._serialize import plain, to_json, truncate

MAX_MESSAGES = 1000  # the server ignores list indexes above 1000


def _get(o, key, default=None):
    if isinstance(o, dict):
        return o.get(key, default)
    # Pydantic models (the clients' response types) raise a costly
    # AttributeError for absent fields; look in their field dict first.
    d = getattr(o, "__dict__", None)
    if d is not None:
        if key in d:
            return d[key]
        if hasattr(type(o), "model_fields"):
            extra = getattr(o, "__pydantic_extra__", None)
            return extra.get(key, default) if extra else default
    return getattr(o, key, default)


def norm_tool_calls(calls):
    out = []
    for c in calls or ():
        fn = _get(c, "function")
        if fn is not None:
            name, args = _get(fn, "name"), _get(fn, "arguments")
        else:
            name, args = _get(c, "name"), _get(c, "arguments", _get(c, "input"))
        if args is not None and not isinstance(args, str):
            args = to_json(args)
        out.append({"id": _get(c, "id"), "name": name, "arguments": args})
    return out


def norm_message(m):
    # Client response objects are read attribute by attribute: dumping a
    # pydantic model whole costs more than everything else we do per call.
    if not isinstance(m, dict) and not hasattr(m, "role"):
        return {"role": "user", "content": str(m)}
    msg = {"role": _get(m, "role") or "user"}
    content = _get(m, "content")
    if content is not None:
        msg["content"] = content if isinstance(content, (str, list)) else to_json(content)
    calls = _get(m, "tool_calls")
    if calls:
        msg["tool_calls"] = norm_tool_calls(calls)
    fc = _get(m, "function_call")
    if fc and not msg.get("tool_calls"):
        msg["tool_calls"] = norm_tool_calls([{"function": fc}])
    for k in ("tool_call_id", "name"):
        v = _get(m, k)
        if v:
            msg[k] = str(v)
    return msg


def as_messages(value, output=False):
    """A message list for a generation's input or output, or None when the
    value is not message-shaped (it is then captured as plain input/output)."""
    if isinstance(value, str):
        return [{"role": "assistant" if output else "user", "content": value}]
    if isinstance(value, dict) and "role" in value:
        return [norm_message(value)]
    if isinstance(value, dict) and isinstance(value.get("messages"), list):
        value = value["messages"]
    if isinstance(value, (list, tuple)) and value:
        first = value[0]
        if isinstance(first, dict) and "role" in first or hasattr(first, "role"):
            return [norm_message(m) for m in value]
    if hasattr(value, "role") and hasattr(value, "content"):
        return [norm_message(value)]
    return None


def set_messages(attrs, prefix, msgs, limit):
    for i, m in enumerate(msgs[:MAX_MESSAGES]):
        p = f"{prefix}.{i}.message."
        attrs[p + "role"] = str(m.get("role") or "user")
        content = m.get("content")
        if isinstance(content, str):
            attrs[p + "content"] = truncate(content, limit)
        elif isinstance(content, list):
            for j, part in enumerate(content):
                set_part(attrs, f"{p}contents.{j}.message_content.", part, limit)
        for j, c in enumerate(m.get("tool_calls") or ()):
            q = f"{p}tool_calls.{j}.tool_call."
            if c.get("id"):
                attrs[q + "id"] = str(c["id"])
            if c.get("name"):
                attrs[q + "function.name"] = str(c["name"])
            if c.get("arguments") is not None:
                attrs[q + "function.arguments"] = truncate(str(c["arguments"]), limit)
        for k in ("tool_call_id", "name"):
            if m.get(k):
                attrs[p + k] = m[k]


def set_part(attrs, q, part, limit):
    part = plain(part) if not isinstance(part, (dict, str)) else part
    if isinstance(part, str):
        attrs[q + "type"], attrs[q + "text"] = "text", truncate(part, limit)
        return
    t = part.get("type") or "text"
    if t in ("text", "input_text", "output_text"):
        attrs[q + "type"], attrs[q + "text"] = "text", truncate(str(part.get("text") or ""), limit)
    elif t in ("image_url", "image", "input_image"):
        url = part.get("image_url")
        url = url.get("url") if isinstance(url, dict) else url
        if url is None and isinstance(part.get("source"), dict):  # Anthropic
            src = part["source"]
            url = src.get("url") or (f"data:{src.get('media_type')};base64,..." if src.get("data") else None)
        attrs[q + "type"] = "image"
        if url:
            if url.startswith("data:"):  # never ship inline image bytes
                url = url.split(",", 1)[0] + ",..."
            attrs[q + "image.image.url"] = truncate(url, limit)
    else:
        attrs[q + "type"] = str(t)
        if part.get("text"):
            attrs[q + "text"] = truncate(str(part["text"]), limit)


_USAGE = (
    ("gen_ai.usage.input_tokens", ("input_tokens", "prompt_tokens", "input")),
    ("gen_ai.usage.output_tokens", ("output_tokens", "completion_tokens", "output")),
    ("gen_ai.usage.total_tokens", ("total_tokens", "total")),
    ("gen_ai.usage.cache_read.input_tokens", ("cache_read_tokens", "cache_read_input_tokens",
                                              "prompt_tokens_details.cached_tokens",
                                              "input_tokens_details.cached_tokens")),
    ("gen_ai.usage.cache_creation.input_tokens", ("cache_write_tokens", "cache_creation_input_tokens")),
    ("gen_ai.usage.reasoning.output_tokens", ("reasoning_tokens", "completion_tokens_details.reasoning_tokens",
                                              "output_tokens_details.reasoning_tokens")),
)


def _path(u, dotted):
    for k in dotted.split("."):
        u = _get(u, k)
        if u is None:
            return None
    return u


def set_usage(attrs, usage):
    if not isinstance(usage, dict) and hasattr(type(usage), "model_fields"):
        usage = {**usage.__dict__, **(getattr(usage, "__pydantic_extra__", None) or {})}
    for key, names in _USAGE:
        for n in names:
            v = _path(usage, n)
            if isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0:
                attrs[key] = int(v)
                break


def _doc(d):
    if isinstance(d, str):
        return None, d, None, None
    if isinstance(d, (tuple, list)):
        d = list(d) + [None] * 3
        return d[0], d[1], d[2], None
    if isinstance(d, dict):
        content = d.get("content", d.get("page_content", d.get("text")))
        meta = d.get("metadata")
        return d.get("id", (meta or {}).get("id") if isinstance(meta, dict) else None), content, \
            d.get("score"), meta
    meta = getattr(d, "metadata", None)
    did = getattr(d, "id", None)
    if did is None and isinstance(meta, dict):
        did = meta.get("id")
    content = getattr(d, "page_content", None)
    if content is None:
        content = getattr(d, "content", None)
    return did, content, getattr(d, "score", None), meta


def set_documents(attrs, documents, limit, capture):
    for i, d in enumerate(list(documents)[:MAX_MESSAGES]):
        did, content, score, meta = _doc(d)
        p = f"retrieval.documents.{i}.document."
        if did is not None:
            attrs[p + "id"] = str(did)
        if content is not None and capture:
            attrs[p + "content"] = truncate(content if isinstance(content, str) else to_json(content), limit)
        if isinstance(score, (int, float)) and not isinstance(score, bool):
            attrs[p + "score"] = float(score)
        if meta:
            attrs[p + "metadata"] = to_json(meta, limit)
