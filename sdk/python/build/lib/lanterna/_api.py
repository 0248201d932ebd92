"""The public functions re-exported by `lanterna`."""

from __future__ import annotations

import re
import uuid

from . import _core
from ._core import _CURRENT, OTEL_CLIENT, RemoteParent, S, Span, _kind, _UNSET, current_span, log, \
    parse_traceparent

_HEX32 = re.compile(r"^[0-9a-f]{32}$")
_HEX16 = re.compile(r"^[0-9a-f]{16}$")


def _parent(parent):
    if parent is None or isinstance(parent, (Span, RemoteParent)):
        return parent
    if isinstance(parent, str):
        return parse_traceparent(parent)
    if isinstance(parent, dict):
        return extract(parent)
    raise TypeError("parent must be a Span, a context from extract(), a traceparent string or a header dict")


def start_span(name: str, *, kind="chain", parent=None, input=_UNSET, metadata=None,
               attributes=None) -> Span:
    """Starts a span that is not made current; call `.end()` when done."""
    sp = Span(str(name), _kind(kind), OTEL_CLIENT if _kind(kind) == "LLM" else 1, _parent(parent))
    if sp.recording and (input is not _UNSET or metadata or attributes):
        sp.update(input=input, metadata=metadata, attributes=attributes)
    return sp


def span(name: str, *, kind="chain", parent=None, input=_UNSET, metadata=None, attributes=None) -> Span:
    """`with lanterna.span("step", kind="tool", input=x) as s: ... s.update(output=y)`"""
    return start_span(name, kind=kind, parent=parent, input=input, metadata=metadata, attributes=attributes)


def generation(name: str = None, *, model=None, provider=None, input=_UNSET, parameters=None, metadata=None,
               parent=None) -> Span:
    """An LLM call: `with lanterna.generation("answer", model="gpt-4o-mini", input=messages) as g:
    ... g.update(output=text, usage={"input_tokens": 12, "output_tokens": 30})`."""
    sp = Span(str(name or (f"chat {model}" if model else "generation")), "LLM", OTEL_CLIENT, _parent(parent))
    if sp.recording:
        sp.attrs["gen_ai.operation.name"] = "chat"
        sp.update(model=model, provider=provider, input=input, parameters=parameters, metadata=metadata)
    return sp


def retrieval(name: str = "retrieve", *, query=_UNSET, documents=None, parent=None, metadata=None) -> Span:
    """A RETRIEVER span: `with lanterna.retrieval("search", query=q) as r: r.set_documents(docs)`."""
    sp = Span(str(name), "RETRIEVER", 1, _parent(parent))
    if sp.recording:
        sp.update(input=query, metadata=metadata)
        if documents is not None:
            sp.set_documents(documents)
    return sp


def record_documents(documents) -> None:
    """Records retrieved documents on the current span (making it a RETRIEVER span)."""
    sp = current_span()
    if sp is not None:
        sp.set_documents(documents)


def update_current_span(**fields) -> None:
    """`Span.update(...)` on the current span; does nothing outside a span."""
    sp = current_span()
    if sp is not None:
        sp.update(**fields)


def update_current_trace(*, user_id=None, session_id=None, tags=None, metadata=None, name=None) -> None:
    """Sets trace-level fields: they are put on every span of the current trace
    that ends from now on in this process (the root span included, so the
    trace list shows them). `name` renames the trace's root span when it
    was started in this process."""
    cur = _CURRENT.get()
    if cur is None or not cur.recording:
        return
    tr = cur._trace
    a = dict(tr.attrs or {})
    if user_id is not None:
        a["user.id"] = str(user_id)
    if session_id is not None:
        a["session.id"] = str(session_id)
    if tags:
        a["tag.tags"] = list(dict.fromkeys(list(a.get("tag.tags") or []) + [str(t) for t in tags]))
    tr.attrs = a
    if metadata:
        tr.metadata = {**(tr.metadata or {}), **metadata}
    if name:
        tr.name = str(name)


def get_current_trace_id():
    cur = _CURRENT.get()
    if cur is None:
        cur = _core._otel_parent()
    return None if cur is None else cur.trace_id


def get_current_span_id():
    cur = _CURRENT.get()
    return None if cur is None else cur.span_id


# ---- W3C trace context


def inject(headers=None) -> dict:
    """Adds a `traceparent` header for the current span to `headers` (a new
    dict when None) and returns it, for calls to other services."""
    headers = {} if headers is None else headers
    cur = _CURRENT.get()
    if cur is not None:
        headers["traceparent"] = cur.traceparent
    return headers


def extract(headers):
    """The remote parent named by a `traceparent` header (any key case), or None."""
    if not headers:
        return None
    try:
        items = headers.items()
    except AttributeError:
        return None
    for k, v in items:
        if isinstance(k, str) and k.lower() == "traceparent":
            return parse_traceparent(v)
    return None


class _NoParent:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def continue_trace(headers):
    """`with lanterna.continue_trace(request.headers): ...` — spans started
    inside become children of the caller's span (from its `traceparent`)."""
    ctx = extract(headers) if not isinstance(headers, str) else parse_traceparent(headers)
    return ctx if ctx is not None else _NoParent()


# ---- scores


def _target(trace_id, span_id):
    if trace_id is None:
        trace_id = get_current_trace_id()
    if trace_id is None:
        log.warning("lanterna: score/feedback outside a trace and without trace_id; ignored")
        return None
    trace_id = str(trace_id).lower()
    if not _HEX32.match(trace_id) or (span_id is not None and not _HEX16.match(str(span_id).lower())):
        log.warning("lanterna: score/feedback with an invalid trace_id or span_id; ignored")
        return None
    return trace_id


def score(name: str, value=None, *, trace_id=None, span_id=None, comment=None, string_value=None,
          data_type=None, source=None, idempotency_key=None) -> None:
    """Attaches a score to a trace (default: the current one) or one of its
    spans. Sent in the background; retries never duplicate it (each score
    carries an idempotency key). `value`: a number, a bool, or a label."""
    ex = _core._exporter()
    if ex is None:
        return
    tid = _target(trace_id, span_id)
    if tid is None or not name:
        return
    b = {"trace_id": tid, "name": str(name), "idempotency_key": idempotency_key or "lt-" + uuid.uuid4().hex}
    if span_id is not None:
        b["span_id"] = str(span_id).lower()
    if value is not None:
        b["value"] = value
    if string_value is not None:
        b["string_value"] = str(string_value)
    for k, v in (("comment", comment), ("data_type", data_type), ("source", source)):
        if v is not None:
            b[k] = v
    ex.add_item("score", b)


def feedback(trace_id=None, value: int = 1, comment=None, *, span_id=None, idempotency_key=None) -> None:
    """An end user's thumbs up (1) or down (-1) on a trace."""
    if value not in (1, -1):
        log.warning("lanterna: feedback value must be 1 or -1; ignored")
        return
    ex = _core._exporter()
    if ex is None:
        return
    tid = _target(trace_id, span_id)
    if tid is None:
        return
    b = {"trace_id": tid, "value": value, "idempotency_key": idempotency_key or "lt-" + uuid.uuid4().hex}
    if comment is not None:
        b["comment"] = str(comment)
    if span_id is not None:
        b["span_id"] = str(span_id).lower()
    ex.add_item("feedback", b)


# ---- lifecycle


def flush(timeout: float = 10.0) -> bool:
    """Blocks until every span and score recorded so far has been sent (or
    given up on); True when everything was handled within `timeout`."""
    ex = S.exporter
    return True if ex is None else ex.flush(timeout)


def shutdown(timeout: float = 5.0) -> bool:
    """Flushes and stops the exporter (also done automatically at exit)."""
    ex = S.exporter
    # The closed exporter stays in place: later spans are dropped, not sent
    # to a freshly started one. init() starts again.
    return True if ex is None else ex.shutdown(timeout)


def stats() -> dict:
    """Exporter counters: queued, exported_spans, failed_spans, dropped_spans
    (queue full), sent_scores, failed_scores, export_requests, retries."""
    ex = S.exporter
    return ex.stats() if ex is not None else {}
