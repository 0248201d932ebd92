"""Spans, the current-span context, `@observe`, configuration.

The per-call path (`observe` wrappers, `Span.__init__`, `Span.end`) is kept
short on purpose: it only allocates the span, reads the clock, serializes
what it must capture and appends to the export queue. Everything else
(attribute encoding, redaction, HTTP) happens on the exporter thread.
"""

from __future__ import annotations

import base64
import contextvars
import functools
import inspect
import logging
import os
import random
import sys
import time
import traceback

from ._serialize import to_json, to_text, truncate

log = logging.getLogger("lanterna")

_time_ns = time.time_ns
# Our own generator: an application calling random.seed() must not make ids
# repeat across processes. Reseeded after fork (see _export.after_fork).
_rng = random.Random()
_bits = _rng.getrandbits
_rand = _rng.random

KINDS = {"chain": "CHAIN", "span": "CHAIN", "llm": "LLM", "generation": "LLM", "tool": "TOOL",
         "retriever": "RETRIEVER", "retrieval": "RETRIEVER", "embedding": "EMBEDDING", "agent": "AGENT",
         "reranker": "RERANKER", "guardrail": "GUARDRAIL", "evaluator": "EVALUATOR", "unknown": "UNKNOWN"}

OTEL_INTERNAL, OTEL_CLIENT = 1, 3
_UNSET = object()


def _kind(kind) -> str:
    k = KINDS.get(str(kind).lower())
    if k is None:
        raise ValueError(f"unknown span kind {kind!r}; one of {', '.join(sorted(KINDS))}")
    return k


def _env(name, default=None):
    v = os.environ.get("LANTERNA_" + name)
    return default if v is None or v == "" else v


def _env_bool(name, default: bool) -> bool:
    v = _env(name)
    if v is None:
        return default
    return v.strip().lower() not in ("0", "false", "no", "off")


class Config:
    """Everything `init()` sets; see `init` for the meaning of each field."""

    def __init__(self, **kw):
        g = kw.get
        self.base_url = (g("base_url") or _env("BASE_URL") or _env("HOST") or "http://localhost:4318").rstrip("/")
        self.api_key = g("api_key") or _env("API_KEY")
        self.public_key = g("public_key") or _env("PUBLIC_KEY")
        self.secret_key = g("secret_key") or _env("SECRET_KEY")
        self.project = g("project") or _env("PROJECT")
        self.environment = g("environment") or _env("ENVIRONMENT")
        self.release = g("release") or _env("RELEASE")
        self.service_name = (g("service_name") or _env("SERVICE_NAME") or os.environ.get("OTEL_SERVICE_NAME")
                             or "unknown_service:python")
        sr = g("sample_rate")
        self.sample_rate = float(sr if sr is not None else _env("SAMPLE_RATE", 1.0))
        if not 0.0 <= self.sample_rate <= 1.0:
            raise ValueError("sample_rate must be between 0 and 1")
        self.redact = g("redact")
        if self.redact is not None and not callable(self.redact):
            raise TypeError("redact must be a callable taking and returning an attribute dict")
        en = g("enabled")
        self.enabled = bool(en) if en is not None else _env_bool("ENABLED", True)
        cc = g("capture_content")
        self.capture_content = bool(cc) if cc is not None else _env_bool("CAPTURE_CONTENT", True)
        self.max_field_chars = int(g("max_field_chars") or _env("MAX_FIELD_CHARS", 32000))
        self.max_queue = int(g("max_queue") or _env("MAX_QUEUE", 20000))
        self.batch_size = int(g("batch_size") or _env("BATCH_SIZE", 512))
        self.flush_interval = float(g("flush_interval") or _env("FLUSH_INTERVAL", 1.0))
        self.timeout = float(g("timeout") or _env("TIMEOUT", 10.0))
        self.max_retries = int(g("max_retries") if g("max_retries") is not None else _env("MAX_RETRIES", 5))
        self.shutdown_timeout = float(g("shutdown_timeout") if g("shutdown_timeout") is not None
                                      else _env("SHUTDOWN_TIMEOUT", 5.0))
        self.protocol = (g("protocol") or _env("PROTOCOL", "auto")).lower()
        if self.protocol not in ("auto", "protobuf", "json"):
            raise ValueError("protocol must be 'auto', 'protobuf' or 'json'")
        self.headers = dict(g("headers") or {})

    def auth_headers(self) -> dict:
        h = dict(self.headers)
        if self.api_key:
            h["Authorization"] = "Bearer " + self.api_key
        elif self.public_key and self.secret_key:
            raw = f"{self.public_key}:{self.secret_key}".encode()
            h["Authorization"] = "Basic " + base64.b64encode(raw).decode()
        if self.project:
            h["x-lanterna-project"] = self.project
        return h

    def resource(self) -> dict:
        from . import __version__
        r = {"service.name": self.service_name, "telemetry.sdk.name": "lanterna",
             "telemetry.sdk.language": "python", "telemetry.sdk.version": __version__}
        if self.environment:
            r["deployment.environment.name"] = self.environment
        if self.release:
            r["service.version"] = self.release
        if self.project:
            r["openinference.project.name"] = self.project
        return r


class _State:
    """Module-wide settings read on every call, flattened for speed."""
    __slots__ = ("config", "exporter", "enabled", "sample_rate", "capture", "max_chars")

    def __init__(self):
        self.config = None
        self.exporter = None
        self.enabled = _env_bool("ENABLED", True)
        try:
            self.sample_rate = float(_env("SAMPLE_RATE", 1.0))
        except ValueError:
            self.sample_rate = 1.0
        self.capture = _env_bool("CAPTURE_CONTENT", True)
        try:
            self.max_chars = int(_env("MAX_FIELD_CHARS", 32000))
        except ValueError:
            self.max_chars = 32000


S = _State()


def init(base_url=None, api_key=None, public_key=None, secret_key=None, project=None, environment=None,
         release=None, sample_rate=None, redact=None, enabled=None, **options):
    """Configures the SDK (any argument left out comes from the matching
    `LANTERNA_*` environment variable, then the default) and starts the
    exporter. Calling it again replaces the configuration; spans already
    queued are flushed to the previous destination first.

    Options: service_name, capture_content, max_field_chars, max_queue,
    batch_size, flush_interval (s), timeout (s), max_retries,
    shutdown_timeout (s), protocol ('auto', 'protobuf', 'json'), headers.
    """
    from ._export import Exporter
    cfg = Config(base_url=base_url, api_key=api_key, public_key=public_key, secret_key=secret_key,
                 project=project, environment=environment, release=release, sample_rate=sample_rate,
                 redact=redact, enabled=enabled, **options)
    old = S.exporter
    S.exporter = None
    if old is not None:
        old.shutdown(cfg.shutdown_timeout)
    S.config = cfg
    S.sample_rate = cfg.sample_rate
    S.capture = cfg.capture_content
    S.max_chars = cfg.max_field_chars
    S.exporter = Exporter(cfg) if cfg.enabled else None
    S.enabled = cfg.enabled
    return cfg


def _exporter():
    ex = S.exporter
    if ex is None and S.enabled:
        # First span without an explicit init(): configure from the environment.
        try:
            if S.config is None:
                init()
            ex = S.exporter
        except Exception as e:  # a bad LANTERNA_* value must not break the app
            log.warning("lanterna: disabled, bad configuration: %s", e)
            S.enabled = False
            return None
    return ex


# --------------------------------------------------------------------------
# context

_CURRENT: contextvars.ContextVar = contextvars.ContextVar("lanterna_current_span", default=None)


class _Trace:
    """Trace-level attributes set by update_current_trace(), shared by every
    span of the trace in this process and copied onto each span as it ends
    (the root ends last, so it always carries the final values)."""
    __slots__ = ("attrs", "metadata", "name")

    def __init__(self):
        self.attrs = None
        self.metadata = None
        self.name = None


class RemoteParent:
    """A parent span that lives elsewhere: another process (from a W3C
    `traceparent` header) or an active OpenTelemetry span."""
    __slots__ = ("_tid", "_sid", "recording", "_trace", "_token")

    def __init__(self, trace_id: int, span_id: int, sampled: bool):
        self._tid = trace_id
        self._sid = span_id
        self.recording = sampled
        self._trace = _Trace()
        self._token = None

    @property
    def trace_id(self) -> str:
        return "%032x" % self._tid

    @property
    def span_id(self) -> str:
        return "%016x" % self._sid

    @property
    def traceparent(self) -> str:
        return "00-%032x-%016x-%s" % (self._tid, self._sid, "01" if self.recording else "00")

    def __enter__(self):
        self._token = _CURRENT.set(self)
        return self

    def __exit__(self, *exc):
        tok, self._token = self._token, None
        if tok is not None:
            try:
                _CURRENT.reset(tok)
            except ValueError:  # exited in another context
                pass
        return False


def _otel_parent():
    """The active OpenTelemetry span, if the app uses OpenTelemetry: our root
    spans join its trace instead of starting their own."""
    mod = sys.modules.get("opentelemetry.trace")
    if mod is None:
        return None
    try:
        sc = mod.get_current_span().get_span_context()
        if sc.is_valid:
            return RemoteParent(sc.trace_id, sc.span_id, bool(sc.trace_flags & 1))
    except Exception:
        pass
    return None


def parse_traceparent(value):
    """A RemoteParent from a W3C traceparent value, or None if it is invalid."""
    if not isinstance(value, str):
        return None
    parts = value.strip().split("-")
    if len(parts) < 4 or len(parts[0]) != 2 or parts[0] == "ff" or len(parts[1]) != 32 \
            or len(parts[2]) != 16 or len(parts[3]) != 2 or (parts[0] == "00" and len(parts) != 4):
        return None
    try:
        tid, sid, flags = int(parts[1], 16), int(parts[2], 16), int(parts[3], 16)
        int(parts[0], 16)
    except ValueError:
        return None
    if tid == 0 or sid == 0:
        return None
    return RemoteParent(tid, sid, bool(flags & 1))


# --------------------------------------------------------------------------
# spans


class Span:
    """One unit of work. Created by `span()`, `generation()`, `start_span()`
    or `@observe`; use as a context manager or call `end()`. Every method is
    a no-op once the span has ended, and when the span is not recorded
    (SDK disabled, or the trace was not sampled)."""

    __slots__ = ("name", "_tid", "_sid", "_pid", "start_ns", "end_ns", "attrs", "status", "status_message",
                 "events", "recording", "otel_kind", "_trace", "_token", "_meta", "_out_items")

    def __init__(self, name: str, kind: str = "CHAIN", otel_kind: int = OTEL_INTERNAL, parent=None):
        if parent is None:
            parent = _CURRENT.get()
            if parent is None:
                parent = _otel_parent()
        if parent is None:
            self._tid = _bits(128) or 1
            self._pid = None
            self.recording = S.enabled and (_rand() < S.sample_rate)
            self._trace = _Trace()
        else:
            self._tid = parent._tid
            self._pid = parent._sid
            self.recording = parent.recording and S.enabled
            self._trace = parent._trace
        self._sid = _bits(64) or 1
        self.name = name
        self.start_ns = _time_ns()
        self.end_ns = 0
        self.attrs = {"openinference.span.kind": kind} if self.recording else None
        self.status = 0
        self.status_message = None
        self.events = None
        self.otel_kind = otel_kind
        self._token = None
        self._meta = None
        self._out_items = None

    # ---- identity

    @property
    def trace_id(self) -> str:
        return "%032x" % self._tid

    @property
    def span_id(self) -> str:
        return "%016x" % self._sid

    @property
    def parent_span_id(self):
        return None if self._pid is None else "%016x" % self._pid

    @property
    def traceparent(self) -> str:
        return "00-%032x-%016x-%s" % (self._tid, self._sid, "01" if self.recording else "00")

    @property
    def ended(self) -> bool:
        return self.end_ns != 0

    def __repr__(self):
        return f"<lanterna.Span {self.name!r} trace={self.trace_id} span={self.span_id}>"

    # ---- context manager

    def __enter__(self):
        self._token = _CURRENT.set(self)
        return self

    def __exit__(self, et, ev, tb):
        tok, self._token = self._token, None
        if tok is not None:
            try:
                _CURRENT.reset(tok)
            except ValueError:
                pass
        if ev is not None and not isinstance(ev, GeneratorExit):
            self.record_exception(ev)
        self.end()
        return False

    # ---- recording

    def _live(self) -> bool:
        return self.recording and not self.end_ns

    def set_attribute(self, key: str, value) -> "Span":
        if self._live() and value is not None:
            self.attrs[key] = value
        return self

    def set_attributes(self, attributes: dict) -> "Span":
        if self._live() and attributes:
            for k, v in attributes.items():
                if v is not None:
                    self.attrs[k] = v
        return self

    def _set_io(self, key: str, value) -> None:
        if not S.capture:
            return
        text, mime = to_text(value, S.max_chars)
        self.attrs[key + ".value"] = text
        self.attrs[key + ".mime_type"] = mime

    def update(self, *, input=_UNSET, output=_UNSET, metadata=None, name=None, kind=None, attributes=None,
               documents=None, model=None, response_model=None, provider=None, usage=None, cost=None,
               finish_reason=None, parameters=None, ttft=None, level=None, status_message=None,
               **unknown) -> "Span":
        """Sets fields of this span. `input`/`output` are captured (as text,
        or JSON for other values; message lists on generations become
        structured messages). Generation fields: model, response_model,
        provider, usage ({input_tokens, output_tokens, total_tokens,
        cache_read_tokens, cache_write_tokens, reasoning_tokens}; OpenAI's
        prompt_tokens/completion_tokens also accepted), cost (USD),
        finish_reason, parameters (dict), ttft (seconds). `level="ERROR"`
        marks the span failed with `status_message`."""
        if unknown:
            raise TypeError(f"update() got unexpected keyword arguments: {', '.join(unknown)}")
        if not self._live():
            return self
        try:
            self._update(input, output, metadata, name, kind, attributes, documents, model, response_model,
                         provider, usage, cost, finish_reason, parameters, ttft, level, status_message)
        except Exception as e:  # never let bookkeeping break the caller
            log.debug("lanterna: update failed: %r", e)
        return self

    def _update(self, input, output, metadata, name, kind, attributes, documents, model, response_model,
                provider, usage, cost, finish_reason, parameters, ttft, level, status_message):
        from . import _llm
        a = self.attrs
        if name:
            self.name = str(name)
        if kind:
            a["openinference.span.kind"] = _kind(kind)
        is_llm = a.get("openinference.span.kind") == "LLM"
        if model:
            a["gen_ai.request.model"] = str(model)
        if response_model:
            a["gen_ai.response.model"] = str(response_model)
        if provider:
            a["gen_ai.provider.name"] = str(provider)
        if input is not _UNSET and S.capture:
            msgs = _llm.as_messages(input) if is_llm else None
            if msgs is not None:
                _llm.set_messages(a, "llm.input_messages", msgs, S.max_chars)
            else:
                self._set_io("input", input)
        if output is not _UNSET and S.capture:
            msgs = _llm.as_messages(output, output=True) if is_llm else None
            if msgs is not None:
                _llm.set_messages(a, "llm.output_messages", msgs, S.max_chars)
                if isinstance(output, str):
                    self._set_io("output", output)
            else:
                self._set_io("output", output)
        if metadata:
            self._meta = {**(self._meta or {}), **metadata}
        if attributes:
            for k, v in attributes.items():
                if v is not None:
                    a[k] = v
        if documents is not None:
            self.set_documents(documents)
        if usage:
            _llm.set_usage(a, usage)
        if cost is not None:
            a["gen_ai.usage.cost"] = float(cost)
        if finish_reason:
            a["gen_ai.response.finish_reasons"] = [str(finish_reason)]
        if parameters:
            a["llm.invocation_parameters"] = to_json(parameters, S.max_chars)
            for k in ("temperature", "top_p", "max_tokens", "frequency_penalty", "presence_penalty", "seed"):
                v = parameters.get(k)
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    a["gen_ai.request." + k] = v
        if ttft is not None:
            a["gen_ai.response.time_to_first_chunk"] = float(ttft)
        if level and str(level).upper() == "ERROR":
            self.status = 2
            self.status_message = status_message or self.status_message or "error"
        elif status_message:
            self.status_message = str(status_message)

    def first_token(self) -> "Span":
        """Marks now as the time the first token arrived (for streamed generations)."""
        if self._live() and "gen_ai.response.time_to_first_chunk" not in self.attrs:
            self.attrs["gen_ai.response.time_to_first_chunk"] = (_time_ns() - self.start_ns) / 1e9
        return self

    def set_documents(self, documents) -> "Span":
        """Records retrieved documents on this span (which becomes a
        RETRIEVER span): dicts with id, content, score, metadata; objects
        with `page_content` (and `metadata`, `id`); (id, content, score)
        tuples; or plain strings."""
        if not self._live():
            return self
        try:
            from ._llm import set_documents
            set_documents(self.attrs, documents, S.max_chars, S.capture)
            self.attrs["openinference.span.kind"] = "RETRIEVER"
        except Exception as e:
            log.debug("lanterna: set_documents failed: %r", e)
        return self

    def set_status(self, status: str, message=None) -> "Span":
        if self._live():
            self.status = {"ok": 1, "error": 2}.get(str(status).lower(), 0)
            if message:
                self.status_message = str(message)
        return self

    def add_event(self, name: str, attributes=None) -> "Span":
        if self._live():
            if self.events is None:
                self.events = []
            self.events.append((name, _time_ns(), dict(attributes or {})))
        return self

    def record_exception(self, exc: BaseException) -> "Span":
        """Marks the span failed and adds an `exception` event (type, message, stack)."""
        if not self._live():
            return self
        try:
            et = type(exc)
            tname = et.__qualname__ if et.__module__ in ("builtins", None) else f"{et.__module__}.{et.__qualname__}"
            msg = str(exc)
            self.status = 2
            self.status_message = f"{et.__name__}: {msg}" if msg else et.__name__
            stack = "".join(traceback.format_exception(et, exc, exc.__traceback__))
            self.add_event("exception", {"exception.type": tname, "exception.message": truncate(msg, 4000),
                                         "exception.stacktrace": truncate(stack, 16000)})
            self.attrs["error.type"] = tname
        except Exception:
            self.status = 2
        return self

    def score(self, name: str, value, comment=None, **kw) -> None:
        """Sends a score for this span (see `lanterna.score`)."""
        from . import _api
        _api.score(trace_id=self.trace_id, span_id=self.span_id, name=name, value=value, comment=comment, **kw)

    def end(self, end_ns=None) -> None:
        if self.end_ns:
            return
        self.end_ns = end_ns or _time_ns()
        if not self.recording:
            return
        try:
            tr = self._trace
            a = self.attrs
            if tr.name and self._pid is None:
                self.name = tr.name
            if tr.attrs:
                for k, v in dict(tr.attrs).items():
                    if k == "tag.tags" and k in a:
                        a[k] = list(dict.fromkeys(list(a[k]) + list(v)))
                    else:
                        a.setdefault(k, v)
            meta = self._meta
            if tr.metadata:
                meta = {**tr.metadata, **(meta or {})}
            if meta:
                a["metadata"] = to_json(meta, S.max_chars)
            ex = S.exporter or _exporter()
            if ex is not None:
                ex.add_span(self)
        except Exception as e:
            log.debug("lanterna: end failed: %r", e)


def current_span():
    """The span `@observe`/`with span(...)` made current here, or None."""
    cur = _CURRENT.get()
    return cur if isinstance(cur, Span) else None


# --------------------------------------------------------------------------
# @observe


def _arg_names(fn):
    """Parameter names for capturing arguments, decided once per decorated
    function (binding a Signature on every call would cost microseconds)."""
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return (), None, False
    skip_first = bool(params) and params[0].name in ("self", "cls")
    pos, var = [], None
    for p in params:
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            pos.append(p.name)
        elif p.kind == p.VAR_POSITIONAL:
            var = p.name
    return tuple(pos), var, skip_first


def _capture_args(names, var, skip_first, args, kwargs):
    if skip_first and args:
        args = args[1:]
        names = names[1:]
    n = len(names)
    if len(args) <= n:
        d = dict(zip(names, args))
    else:
        d = dict(zip(names, args[:n]))
        d[var or "args"] = list(args[n:])
    if kwargs:
        d.update(kwargs)
    return d


def _is_docs(result) -> bool:
    if not isinstance(result, (list, tuple)) or not result:
        return False
    r = result[0]
    return (isinstance(r, dict) and ("content" in r or "page_content" in r or "text" in r)) \
        or hasattr(r, "page_content")


class _Opts:
    __slots__ = ("name", "kind", "cin", "cout", "names", "var", "skip", "otel_kind")


def observe(func=None, *, name=None, kind="chain", as_type=None, capture_input=True, capture_output=True):
    """Traces every call of the decorated function as a span (sync, async,
    generators and async generators). Arguments become the span's input and
    the return value its output (unless `capture_input` / `capture_output`
    is False, or content capture is off); exceptions are recorded and
    re-raised. `kind`: chain (default), llm, tool, retriever, embedding,
    agent, reranker, guardrail, evaluator. A retriever whose return value is
    a list of documents gets them recorded as retrieved documents.

    Use as `@observe`, `@observe()` or `@observe(name="...", kind="tool")`.
    """
    o = _Opts()
    o.kind = _kind(as_type or kind)
    o.cin, o.cout = capture_input, capture_output
    o.otel_kind = OTEL_CLIENT if o.kind == "LLM" else OTEL_INTERNAL

    def deco(fn):
        # Class.method reads well; a function defined inside another would be
        # "outer.<locals>.inner", so keep what follows the last "<locals>".
        o.name = name or (getattr(fn, "__qualname__", None) or getattr(fn, "__name__", "call")).rsplit("<locals>.", 1)[-1]
        o.names, o.var, o.skip = _arg_names(fn)
        if inspect.isasyncgenfunction(fn):
            w = _wrap_asyncgen(fn, o)
        elif inspect.iscoroutinefunction(fn):
            w = _wrap_async(fn, o)
        elif inspect.isgeneratorfunction(fn):
            w = _wrap_gen(fn, o)
        else:
            w = _wrap_sync(fn, o)
        return functools.wraps(fn)(w)

    return deco(func) if func is not None else deco


def _start(o, args, kwargs):
    try:
        sp = Span(o.name, o.kind, o.otel_kind)
        if sp.recording and o.cin and S.capture:
            sp._set_io("input", _capture_args(o.names, o.var, o.skip, args, kwargs))
        return sp
    except Exception as e:
        log.debug("lanterna: span start failed: %r", e)
        return None


def _finish(sp, o, result):
    try:
        if sp.recording and not sp.end_ns:
            if o.cout and S.capture and result is not None:
                sp._set_io("output", result)
            if o.kind == "RETRIEVER" and _is_docs(result):
                sp.set_documents(result)
        sp.end()
    except Exception as e:
        log.debug("lanterna: span end failed: %r", e)


def _fail(sp, exc):
    try:
        sp.record_exception(exc)
        sp.end()
    except Exception:
        pass


def _wrap_sync(fn, o):
    def wrapper(*args, **kwargs):
        if not S.enabled:
            return fn(*args, **kwargs)
        sp = _start(o, args, kwargs)
        if sp is None:
            return fn(*args, **kwargs)
        token = _CURRENT.set(sp)
        try:
            result = fn(*args, **kwargs)
        except BaseException as e:
            _CURRENT.reset(token)
            _fail(sp, e)
            raise
        _CURRENT.reset(token)
        _finish(sp, o, result)
        return result
    return wrapper


def _wrap_async(fn, o):
    async def wrapper(*args, **kwargs):
        if not S.enabled:
            return await fn(*args, **kwargs)
        sp = _start(o, args, kwargs)
        if sp is None:
            return await fn(*args, **kwargs)
        token = _CURRENT.set(sp)
        try:
            result = await fn(*args, **kwargs)
        except BaseException as e:
            _CURRENT.reset(token)
            _fail(sp, e)
            raise
        _CURRENT.reset(token)
        _finish(sp, o, result)
        return result
    return wrapper


_MAX_ITEMS = 1000


def _collect(sp, item):
    items = sp._out_items
    if items is None:
        items = sp._out_items = []
    if len(items) < _MAX_ITEMS:
        items.append(item)


def _items_output(sp):
    items = sp._out_items or []
    if items and all(type(i) is str for i in items):
        return "".join(items)  # a token stream reads best as its text
    return items


def _wrap_gen(fn, o):
    # The span opens when the generator is created (its parent is the
    # caller's span) and closes when it is exhausted, fails or is closed.
    # The span is current only while the generator body runs, so the
    # caller's own context is untouched between items.
    def wrapper(*args, **kwargs):
        gen = fn(*args, **kwargs)
        if not S.enabled:
            return gen
        sp = _start(o, args, kwargs)
        if sp is None:
            return gen
        return _traced_gen(gen, sp, o)
    return wrapper


def _traced_gen(gen, sp, o):
    capture = o.cout and S.capture and sp.recording
    send, exc, result = None, None, None
    try:
        while True:
            token = _CURRENT.set(sp)
            try:
                item = gen.send(send) if exc is None else gen.throw(exc)
            except StopIteration as stop:
                result = stop.value  # the generator's return value, passed on
                if result is not None and capture:
                    _collect(sp, result)
                break
            finally:
                _CURRENT.reset(token)
            send = exc = None
            if capture:
                _collect(sp, item)
            try:
                send = yield item
            except GeneratorExit:
                gen.close()
                raise
            except BaseException as e:  # throw(): forward into the wrapped generator
                exc = e
    except GeneratorExit:
        _finish_items(sp, o, capture)
        raise
    except BaseException as e:
        _fail(sp, e)
        raise
    _finish_items(sp, o, capture)
    return result


def _finish_items(sp, o, capture):
    try:
        if capture and sp._live():
            sp._set_io("output", _items_output(sp))
        sp._out_items = None
        sp.end()
    except Exception:
        pass


def _wrap_asyncgen(fn, o):
    def wrapper(*args, **kwargs):
        agen = fn(*args, **kwargs)
        if not S.enabled:
            return agen
        sp = _start(o, args, kwargs)
        if sp is None:
            return agen
        return _traced_agen(agen, sp, o)
    return wrapper


async def _traced_agen(agen, sp, o):
    capture = o.cout and S.capture and sp.recording
    send, exc = None, None
    try:
        while True:
            token = _CURRENT.set(sp)
            try:
                item = await (agen.asend(send) if exc is None else agen.athrow(exc))
            except StopAsyncIteration:
                break
            finally:
                _CURRENT.reset(token)
            send = exc = None
            if capture:
                _collect(sp, item)
            try:
                send = yield item
            except GeneratorExit:
                await agen.aclose()
                raise
            except BaseException as e:
                exc = e
    except GeneratorExit:
        _finish_items(sp, o, capture)
        raise
    except BaseException as e:
        _fail(sp, e)
        raise
    _finish_items(sp, o, capture)
