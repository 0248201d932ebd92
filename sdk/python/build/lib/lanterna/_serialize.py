"""Turning arbitrary Python values into bounded attribute text.

Captured values are serialized when the span records them, not later on the
export thread: the application may mutate an argument right after the call,
and a background thread must never iterate a container the app is changing.
"""

from __future__ import annotations

import dataclasses
import json

JSON_MIME = "application/json"
TEXT_MIME = "text/plain"


def _default(o):
    # Pydantic v2, then v1 (the OpenAI and Anthropic clients return these).
    dump = getattr(o, "model_dump", None)
    if callable(dump):
        try:
            return dump(mode="json", exclude_none=True)
        except Exception:
            pass
    d = getattr(o, "dict", None)
    if callable(d) and hasattr(o, "__fields__"):
        try:
            return d()
        except Exception:
            pass
    if dataclasses.is_dataclass(o) and not isinstance(o, type):
        try:
            return dataclasses.asdict(o)
        except Exception:
            pass
    if isinstance(o, (set, frozenset)):
        return list(o)
    if isinstance(o, (bytes, bytearray, memoryview)):
        return f"<{len(o)} bytes>"
    page = getattr(o, "page_content", None)  # retriever documents
    if isinstance(page, str):
        return {"page_content": page, "metadata": getattr(o, "metadata", None)}
    r = repr(o)
    return r if len(r) <= 500 else r[:500] + "..."


_ENC = json.JSONEncoder(default=_default, ensure_ascii=False, separators=(",", ":"))
_encode = _ENC.encode


def truncate(s: str, limit: int) -> str:
    if limit and len(s) > limit:
        return s[:limit] + f"...[truncated {len(s) - limit} chars]"
    return s


def to_text(value, limit: int):
    """(text, mime) for an input or output value; strings stay as they are."""
    if type(value) is str:
        return (value if len(value) <= limit else truncate(value, limit)), TEXT_MIME
    try:
        s = _encode(value)
    except Exception:  # circular references, a failing __repr__, ...
        try:
            s = repr(value)
        except Exception:
            s = f"<unserializable {type(value).__name__}>"
        return truncate(s, limit), TEXT_MIME
    if len(s) > limit:
        # Cut JSON is no longer JSON: say so through the mime type.
        return truncate(s, limit), TEXT_MIME
    return s, JSON_MIME


def to_json(value, limit: int = 0) -> str:
    try:
        s = _encode(value)
    except Exception:
        s = json.dumps(repr(value))
    return truncate(s, limit) if limit else s


def plain(value):
    """Converts pydantic models and the like into plain dicts/lists (for reading
    fields out of client request and response objects)."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    try:
        return json.loads(_encode(value))
    except Exception:
        return repr(value)
