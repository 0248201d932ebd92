"""The background exporter: a bounded queue drained by one daemon thread
that sends batched OTLP/HTTP (protobuf when `opentelemetry-proto` is
installed, JSON otherwise, gzip either way), and scores and feedback to the
query API. Nothing here ever raises into application code: failures are
counted (see `stats()`) and logged on the `lanterna` logger.
"""

from __future__ import annotations

import atexit
import email.utils
import gzip
import http.client
import json
import logging
import math
import os
import threading
import time
import weakref
from collections import deque
from urllib.parse import urlsplit

from . import _core

log = logging.getLogger("lanterna")

RETRYABLE = (429, 502, 503, 504)
_CONTENT_PREFIXES = ("input.value", "output.value", "llm.input_messages.", "llm.output_messages.",
                     "llm.invocation_parameters", "metadata")

_exporters = weakref.WeakSet()


class Exporter:
    def __init__(self, cfg):
        self.cfg = cfg
        u = urlsplit(cfg.base_url if "://" in cfg.base_url else "http://" + cfg.base_url)
        self.https = u.scheme == "https"
        self.host = u.hostname or "localhost"
        self.port = u.port or (443 if self.https else 80)
        self.prefix = u.path.rstrip("/")
        self.headers = cfg.auth_headers()
        self.resource = cfg.resource()
        self.redact = cfg.redact
        self.max_queue = cfg.max_queue
        self.batch = max(1, cfg.batch_size)
        self.encoder = None
        self.deadline = None
        self.closed = False
        self.counts = {"exported_spans": 0, "failed_spans": 0, "dropped_spans": 0, "sent_scores": 0,
                       "failed_scores": 0, "export_requests": 0, "retries": 0}
        self._warned = {}
        self._reset_runtime()
        _exporters.add(self)

    def _reset_runtime(self):
        """Fresh queue, locks and thread state (at creation and in a forked child:
        a lock held by the parent's exporter thread at fork time would stay
        held forever in the child)."""
        self.q = deque()
        self.wake = threading.Event()
        self.stop = threading.Event()
        self.start_lock = threading.Lock()
        self.count_lock = threading.Lock()
        self.thread = None
        self.conn = None
        self.pid = os.getpid()

    # ---- producer side (application threads)

    def add_span(self, span):
        q = self.q
        if len(q) >= self.max_queue or self.closed:
            self._count("dropped_spans")
            return
        q.append(span)
        if self.thread is None:
            self._start()
        elif len(q) >= self.batch and not self.wake.is_set():
            self.wake.set()

    def add_item(self, kind: str, body: dict):
        if len(self.q) >= self.max_queue or self.closed:
            self._count("failed_scores")
            return
        self.q.append((kind, body))
        if self.thread is None:
            self._start()
        self.wake.set()  # scores are rare; send them soon

    def _count(self, key, n=1):
        with self.count_lock:
            self.counts[key] += n

    def _start(self):
        with self.start_lock:
            if self.thread is not None:
                return
            t = threading.Thread(target=self._run, name="lanterna-exporter", daemon=True)
            try:
                t.start()
            except RuntimeError:  # interpreter shutting down: shutdown() drains inline
                return
            self.thread = t

    def stats(self) -> dict:
        with self.count_lock:
            d = dict(self.counts)
        d["queued"] = sum(1 for i in list(self.q) if isinstance(i, _core.Span))
        return d

    def flush(self, timeout=None) -> bool:
        """Sends everything queued so far; True when done within `timeout`."""
        if not self.q:
            return True
        t = self.thread
        if t is None or not t.is_alive():
            self._start()
            t = self.thread
            if t is None or not t.is_alive():
                return self._drain_inline(timeout)
        marker = threading.Event()
        self.q.append(marker)
        self.wake.set()
        return marker.wait(timeout)

    def shutdown(self, timeout=5.0) -> bool:
        if self.closed:
            return True
        self.deadline = time.monotonic() + (timeout or 0)
        ok = self.flush(timeout)
        self.closed = True
        self.stop.set()
        self.wake.set()
        self._close_conn()
        return ok

    def _drain_inline(self, timeout):
        if self.deadline is None and timeout is not None:
            self.deadline = time.monotonic() + timeout
        try:
            self._drain()
        except Exception as e:
            log.debug("lanterna: inline drain failed: %r", e)
        return not self.q

    # ---- the exporter thread

    def _run(self):
        interval = self.cfg.flush_interval
        while True:
            try:
                self.wake.wait(interval)
                self.wake.clear()
                self._drain()
            except Exception as e:  # keep the thread alive whatever happens
                log.debug("lanterna: exporter error: %r", e)
            if self.stop.is_set() and (not self.q or self._past_deadline()):
                return

    def _past_deadline(self):
        return self.deadline is not None and time.monotonic() >= self.deadline

    def _drain(self):
        q = self.q
        Span = _core.Span
        while q:
            spans, items, markers = [], [], []
            while q and len(spans) < self.batch:
                it = q.popleft()
                if isinstance(it, Span):
                    spans.append(it)
                elif isinstance(it, threading.Event):
                    markers.append(it)
                    break  # everything before the marker is in this round
                else:
                    items.append(it)
            if spans:
                self._send_spans(spans)
            if items:
                self._send_items(items)
            for m in markers:
                m.set()

    # ---- spans

    def _attrs(self, span):
        attrs = span.attrs
        if self.redact is None:
            return attrs
        copy = dict(attrs)
        try:
            out = self.redact(copy)
            return out if isinstance(out, dict) else copy
        except Exception as e:
            self._warn("redact", "lanterna: the redact hook raised %r; content attributes dropped", e)
            return {k: v for k, v in attrs.items() if not k.startswith(_CONTENT_PREFIXES)
                    and not k.endswith(".document.content")}

    def _redact_text(self, key, value):
        """Runs the hook over one free-text field (a status or exception
        message may hold the very data being redacted); fails closed."""
        try:
            r = self.redact({key: value})
            return r.get(key, "") if isinstance(r, dict) else value
        except Exception:
            return ""

    def _events(self, span):
        evs = span.events or ()
        if self.redact is None:
            return evs
        out = []
        for name, t, a in evs:
            a = dict(a)
            for k in ("exception.message", "exception.stacktrace"):
                if isinstance(a.get(k), str):
                    a[k] = self._redact_text(k, a[k])
            out.append((name, t, a))
        return out

    def _encoder(self):
        if self.encoder is None:
            enc = None
            if self.cfg.protocol in ("auto", "protobuf"):
                try:
                    enc = _PbEncoder()
                except Exception as e:
                    if self.cfg.protocol == "protobuf":
                        log.warning("lanterna: protobuf export needs the opentelemetry-proto package (%s); "
                                    "sending JSON", e)
            self.encoder = enc or _JsonEncoder()
        return self.encoder

    def _send_spans(self, spans):
        enc = self._encoder()
        rows = []
        for s in spans:
            try:
                msg = s.status_message
                if msg and self.redact is not None:
                    msg = self._redact_text("status.message", msg)
                rows.append((s, self._attrs(s), self._events(s), msg))
            except Exception as e:
                log.debug("lanterna: dropping unencodable span: %r", e)
        try:
            body = enc.encode(self.resource, rows)
        except Exception as e:
            self._warn("encode", "lanterna: could not encode spans: %r", e)
            self._count("failed_spans", len(spans))
            return
        ok = self._send("/v1/traces", body, enc.content_type)
        self._count("exported_spans" if ok else "failed_spans", len(spans))

    # ---- scores and feedback

    def _send_items(self, items):
        scores = [b for k, b in items if k == "score"]
        for i in range(0, len(scores), 100):
            chunk = scores[i:i + 100]
            status = self._send("/api/v1/scores", json.dumps(chunk).encode(), "application/json",
                                want_status=True)
            if status == 400 and len(chunk) > 1:
                # One bad score rejects the whole array: send them one by one.
                for s in chunk:
                    self._score_result(self._send("/api/v1/scores", json.dumps(s).encode(),
                                                  "application/json", want_status=True), 1)
            else:
                self._score_result(status, len(chunk))
        for k, b in items:
            if k == "feedback":
                self._score_result(self._send("/api/v1/feedback", json.dumps(b).encode(), "application/json",
                                              want_status=True), 1)

    def _score_result(self, status, n):
        self._count("sent_scores" if isinstance(status, int) and 200 <= status < 300 else "failed_scores", n)

    # ---- HTTP with retries

    def _conn_get(self):
        if self.conn is None:
            cls = http.client.HTTPSConnection if self.https else http.client.HTTPConnection
            self.conn = cls(self.host, self.port, timeout=self.cfg.timeout)
        return self.conn

    def _close_conn(self):
        c, self.conn = self.conn, None
        if c is not None:
            try:
                c.close()
            except Exception:
                pass

    def _post(self, path, body, ctype):
        headers = dict(self.headers)
        headers["Content-Type"] = ctype
        if len(body) > 1024:
            body = gzip.compress(body, compresslevel=5)
            headers["Content-Encoding"] = "gzip"
        headers["Content-Length"] = str(len(body))
        try:
            c = self._conn_get()
            c.request("POST", self.prefix + path, body=body, headers=headers)
            r = c.getresponse()
            data = r.read()
            if r.getheader("Connection", "").lower() == "close":
                self._close_conn()
            return r.status, r.getheader("Retry-After"), data
        except BaseException:
            self._close_conn()
            raise

    def _send(self, path, body, ctype, want_status=False):
        attempt = 0
        while True:
            retry_after = None
            try:
                self.counts["export_requests"] += 1
                status, ra, data = self._post(path, body, ctype)
                if 200 <= status < 300:
                    return status if want_status else True
                if status not in RETRYABLE:
                    self._warn(f"http{status}", "lanterna: %s answered %s: %s", path, status,
                               data[:300].decode("utf-8", "replace"))
                    return status if want_status else False
                retry_after = _parse_retry_after(ra)
                err = f"HTTP {status}"
            except (OSError, http.client.HTTPException) as e:
                err = repr(e)
            attempt += 1
            if attempt > self.cfg.max_retries or self.stop.is_set() and self._past_deadline():
                self._warn("giveup", "lanterna: giving up on %s after %d attempts (%s); is the server at %s up?",
                           path, attempt, err, self.cfg.base_url)
                return None if want_status else False
            delay = retry_after if retry_after is not None else \
                min(30.0, 0.25 * (2 ** (attempt - 1))) * (0.5 + _core._rand() / 2)
            if self.deadline is not None:
                left = self.deadline - time.monotonic()
                if left <= 0:
                    return None if want_status else False
                delay = min(delay, left)
            self.counts["retries"] += 1
            if self.stop.wait(delay) and self._past_deadline():
                return None if want_status else False

    def _warn(self, key, msg, *args):
        # At most one line per kind of problem per minute: a dead server must
        # not flood the application's logs.
        now = time.monotonic()
        if now - self._warned.get(key, -1e9) >= 60:
            self._warned[key] = now
            log.warning(msg, *args)


def _parse_retry_after(v):
    if not v:
        return None
    try:
        return max(0.0, min(60.0, float(v)))
    except ValueError:
        pass
    try:
        t = email.utils.parsedate_to_datetime(v).timestamp()
        return max(0.0, min(60.0, t - time.time()))
    except Exception:
        return None


# --------------------------------------------------------------------------
# OTLP encoders


def _status(span, msg):
    return span.status, (msg or "")[:4000]


class _JsonEncoder:
    content_type = "application/json"

    @staticmethod
    def value(v):
        t = type(v)
        if t is str:
            return {"stringValue": v}
        if t is bool:
            return {"boolValue": v}
        if t is int:
            return {"intValue": str(v)}
        if t is float:
            return {"doubleValue": v} if math.isfinite(v) else {"stringValue": str(v)}
        if t in (list, tuple):
            return {"arrayValue": {"values": [_JsonEncoder.value(x) for x in v]}}
        if t is dict:
            return {"kvlistValue": {"values": [{"key": str(k), "value": _JsonEncoder.value(x)}
                                               for k, x in v.items()]}}
        return {"stringValue": str(v)}

    def kvs(self, d):
        val = self.value
        return [{"key": k, "value": val(v)} for k, v in d.items() if v is not None]

    def encode(self, resource, rows):
        spans = []
        for s, attrs, events, msg in rows:
            code, msg = _status(s, msg)
            d = {"traceId": "%032x" % s._tid, "spanId": "%016x" % s._sid, "name": s.name, "kind": s.otel_kind,
                 "startTimeUnixNano": str(s.start_ns), "endTimeUnixNano": str(s.end_ns),
                 "attributes": self.kvs(attrs), "status": {"code": code, "message": msg}}
            if s._pid is not None:
                d["parentSpanId"] = "%016x" % s._pid
            if events:
                d["events"] = [{"name": n, "timeUnixNano": str(t), "attributes": self.kvs(a)}
                               for n, t, a in events]
            spans.append(d)
        from . import __version__
        req = {"resourceSpans": [{"resource": {"attributes": self.kvs(resource)},
                                  "scopeSpans": [{"scope": {"name": "lanterna", "version": __version__},
                                                  "spans": spans}]}]}
        return json.dumps(req, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass")


class _PbEncoder:
    content_type = "application/x-protobuf"

    def __init__(self):
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
        self.Request = ExportTraceServiceRequest

    @staticmethod
    def set_value(av, v):
        t = type(v)
        if t is str:
            av.string_value = v
        elif t is bool:
            av.bool_value = v
        elif t is int:
            if -(2 ** 63) <= v < 2 ** 63:
                av.int_value = v
            else:
                av.string_value = str(v)
        elif t is float:
            av.double_value = v
        elif t in (list, tuple):
            arr = av.array_value
            arr.SetInParent()
            for x in v:
                _PbEncoder.set_value(arr.values.add(), x)
        elif t is dict:
            kvl = av.kvlist_value
            kvl.SetInParent()
            for k, x in v.items():
                kv = kvl.values.add(key=str(k))
                _PbEncoder.set_value(kv.value, x)
        else:
            av.string_value = str(v)

    def kvs(self, repeated, d):
        sv = self.set_value
        for k, v in d.items():
            if v is not None:
                sv(repeated.add(key=k).value, v)

    def encode(self, resource, rows):
        from . import __version__
        req = self.Request()
        rs = req.resource_spans.add()
        self.kvs(rs.resource.attributes, resource)
        ss = rs.scope_spans.add()
        ss.scope.name = "lanterna"
        ss.scope.version = __version__
        for s, attrs, events, msg in rows:
            code, msg = _status(s, msg)
            p = ss.spans.add(trace_id=s._tid.to_bytes(16, "big"), span_id=s._sid.to_bytes(8, "big"),
                             name=s.name, kind=s.otel_kind, start_time_unix_nano=s.start_ns,
                             end_time_unix_nano=s.end_ns)
            if s._pid is not None:
                p.parent_span_id = s._pid.to_bytes(8, "big")
            self.kvs(p.attributes, attrs)
            p.status.code = code
            if msg:
                p.status.message = msg
            for n, t, a in events or ():
                ev = p.events.add(name=n, time_unix_nano=t)
                self.kvs(ev.attributes, a)
        return req.SerializeToString()


# --------------------------------------------------------------------------
# process lifecycle


def _at_exit():
    ex = _core.S.exporter
    if ex is not None and os.getpid() == ex.pid:
        try:
            ex.shutdown(ex.cfg.shutdown_timeout)
        except Exception:
            pass


def _after_fork_child():
    # The child inherits the parent's queue (the parent sends those spans)
    # and a dead exporter thread; start over with empty state.
    _core._rng.seed()
    for ex in list(_exporters):
        try:
            ex._reset_runtime()
        except Exception:
            pass


atexit.register(_at_exit)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_child)
