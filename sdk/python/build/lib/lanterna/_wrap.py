"""Shared plumbing for the client drop-ins: wrap a resource method so each
call becomes a generation span, and streams are observed in place.

Streams keep their class: the client's `Stream` reads items from its
`_iterator` attribute, so we replace that attribute with a generator that
watches the items go by. `isinstance`, `with stream:`, `.response`,
`.close()` all behave as before.
"""

from __future__ import annotations

import functools
import inspect

from ._core import OTEL_CLIENT, S, Span, log
from ._llm import _get


class Recorder:
    """Per-provider hooks: `request(span, args, kwargs)` (args[0] is the
    client resource), `response(span, result)`,
    and `stream()` returning an accumulator with `add(span, item)` and
    `finish(span)`."""

    provider = ""
    kind = "LLM"

    def request(self, span, args, kwargs):
        raise NotImplementedError

    def response(self, span, result):
        raise NotImplementedError

    def stream(self):
        raise NotImplementedError


def _begin(rec, args, kwargs):
    if not S.enabled:
        return None
    try:
        sp = Span("chat", rec.kind, OTEL_CLIENT)
        if not sp.recording:
            return None
        rec.request(sp, args, kwargs)
        return sp
    except Exception as e:
        log.debug("lanterna: request capture failed: %r", e)
        return None


def _error(sp, e):
    try:
        sp.record_exception(e)
        status = getattr(e, "status_code", None)
        if isinstance(status, int):
            sp.attrs["http.response.status_code"] = status
        sp.end()
    except Exception:
        pass


def _done(rec, sp, result):
    try:
        if hasattr(result, "_iterator"):
            _observe_stream(rec, sp, result)
            return
        rec.response(sp, result)
    except Exception as e:
        log.debug("lanterna: response capture failed: %r", e)
    sp.end()


def _observe_stream(rec, sp, stream):
    acc = rec.stream()
    inner = stream._iterator
    if inspect.isasyncgen(inner) or hasattr(inner, "__anext__"):
        stream._iterator = _aiter(rec, sp, acc, inner)
        orig_close = stream.close

        async def close():
            try:
                await orig_close()
            finally:
                _finish_stream(sp, acc)
        stream.close = close
    else:
        stream._iterator = _iter(rec, sp, acc, inner)
        orig_close = stream.close

        def close():
            try:
                orig_close()
            finally:
                _finish_stream(sp, acc)
        stream.close = close


def _finish_stream(sp, acc):
    if sp.ended:
        return
    try:
        acc.finish(sp)
    except Exception as e:
        log.debug("lanterna: stream capture failed: %r", e)
    sp.end()


def _add(sp, acc, item):
    try:
        acc.add(sp, item)
    except Exception as e:
        log.debug("lanterna: stream item capture failed: %r", e)


def _iter(rec, sp, acc, inner):
    try:
        for item in inner:
            _add(sp, acc, item)
            yield item
    except GeneratorExit:
        raise
    except BaseException as e:
        _finish_stream_error(sp, acc, e)
        raise
    finally:
        _finish_stream(sp, acc)


async def _aiter(rec, sp, acc, inner):
    try:
        async for item in inner:
            _add(sp, acc, item)
            yield item
    except GeneratorExit:
        raise
    except BaseException as e:
        _finish_stream_error(sp, acc, e)
        raise
    finally:
        _finish_stream(sp, acc)


def _finish_stream_error(sp, acc, e):
    try:
        acc.finish(sp)
    except Exception:
        pass
    _error(sp, e)


def wrap_sync(rec, orig):
    @functools.wraps(orig)
    def wrapper(*args, **kwargs):
        sp = _begin(rec, args, kwargs)
        if sp is None:
            return orig(*args, **kwargs)
        try:
            result = orig(*args, **kwargs)
        except BaseException as e:
            _error(sp, e)
            raise
        _done(rec, sp, result)
        return result
    wrapper.__lanterna_wrapped__ = orig
    return wrapper


def wrap_async(rec, orig):
    @functools.wraps(orig)
    async def wrapper(*args, **kwargs):
        sp = _begin(rec, args, kwargs)
        if sp is None:
            return await orig(*args, **kwargs)
        try:
            result = await orig(*args, **kwargs)
        except BaseException as e:
            _error(sp, e)
            raise
        _done(rec, sp, result)
        return result
    wrapper.__lanterna_wrapped__ = orig
    return wrapper


def patch(cls, name, rec, is_async):
    orig = cls.__dict__.get(name)
    if orig is None or hasattr(orig, "__lanterna_wrapped__"):
        return False
    setattr(cls, name, (wrap_async if is_async else wrap_sync)(rec, orig))
    return True


def unpatch(cls, name):
    cur = cls.__dict__.get(name)
    orig = getattr(cur, "__lanterna_wrapped__", None)
    if orig is not None:
        setattr(cls, name, orig)


get = _get  # attribute or key, cheap on pydantic models


def instrumenter(targets):
    """The instrument/uninstrument pair of a drop-in module: targets() lists
    its (class, method name, recorder, is_async) patch points."""
    def instrument():
        for cls, name, rec, is_async in targets():
            patch(cls, name, rec, is_async)

    def uninstrument():
        for cls, name, _, _ in targets():
            unpatch(cls, name)
    return instrument, uninstrument


def given(v) -> bool:
    """False for None and the clients' NOT_GIVEN / omit sentinels."""
    return v is not None and type(v).__name__ not in ("NotGiven", "Omit")


def params(kwargs, skip):
    return {k: v for k, v in kwargs.items() if k not in skip and not k.startswith("extra_") and given(v)
            and isinstance(v, (str, int, float, bool, list, dict))}
