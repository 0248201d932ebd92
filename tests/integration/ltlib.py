"""Helpers for the integration tests: run the real `lanterna` binary (server
and CLI), build OTLP requests with the official protobuf classes, and talk to
the query API.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import random
import re
import signal
import socket
import subprocess
import time
import zlib
from pathlib import Path

import requests
from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest, ExportLogsServiceResponse)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest, ExportMetricsServiceResponse)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest, ExportTraceServiceResponse)
from opentelemetry.proto.common.v1.common_pb2 import (
    AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList)
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

REPO = Path(__file__).resolve().parents[2]
LANTERNA_BIN = os.environ.get("LANTERNA_BIN") or str(REPO / "build" / "lanterna")
# Sanitizer builds are several times slower: scale every wait.
SLOW = 4 if ("asan" in LANTERNA_BIN or os.environ.get("LANTERNA_SLOW")) else 1
HTTP_TIMEOUT = 30 * SLOW

PB = "application/x-protobuf"
JSON = "application/json"


# --------------------------------------------------------------------------
# processes


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env(extra: dict | None = None) -> dict:
    """The environment for a lanterna process: none of the caller's LANTERNA_*."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LANTERNA_")}
    env.update(extra or {})
    return env


def run_cli(*args, data: Path | str | None = None, env: dict | None = None,
            timeout: float = 30) -> subprocess.CompletedProcess:
    cmd = [LANTERNA_BIN, *map(str, args)]
    if data is not None:
        cmd += ["--data", str(data)]
    return subprocess.run(cmd, capture_output=True, text=True, env=clean_env(env), timeout=timeout * SLOW)


def cli_ok(*args, data=None, env=None) -> str:
    p = run_cli(*args, data=data, env=env)
    assert p.returncode == 0, f"lanterna {' '.join(map(str, args))} -> rc={p.returncode}\n" \
                              f"stdout: {p.stdout}\nstderr: {p.stderr}"
    return p.stdout


def create_key(data, project: str) -> dict:
    """`lanterna keys create --project NAME` -> {"project", "public_key", "secret_key"}."""
    out = cli_ok("keys", "create", "--project", project, data=data)
    pk = re.search(r"^\s*public_key:\s*(pk-lt-\S+)\s*$", out, re.M)
    sk = re.search(r"^\s*secret_key:\s*(sk-lt-\S+)\s*$", out, re.M)
    pr = re.search(r"^\s*project:\s*(\S+)\s*$", out, re.M)
    assert pk and sk, f"keys create printed no public_key/secret_key lines:\n{out}"
    assert pr and pr.group(1) == project, f"keys create did not print 'project: {project}':\n{out}"
    return {"project": project, "public_key": pk.group(1), "secret_key": sk.group(1)}


def bearer(key: dict) -> dict:
    return {"Authorization": "Bearer " + key["secret_key"]}


def basic(key: dict) -> dict:
    raw = f"{key['public_key']}:{key['secret_key']}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


class Server:
    """One `lanterna serve` process on a loopback port with its own data dir."""

    def __init__(self, data: Path, logdir: Path, host: str = "127.0.0.1", port: int | None = None,
                 args=(), env: dict | None = None):
        self.data = Path(data)
        self.logdir = Path(logdir)
        self.host = host
        self.port = port or free_port()
        self.args = list(args)
        self.env = env or {}
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        self.logfile: Path | None = None

    # ---- lifecycle

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"  # always talk over loopback

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def command(self) -> list:
        return [LANTERNA_BIN, "serve", "--listen", f"{self.host}:{self.port}", "--data", str(self.data),
                *self.args]

    def start(self, timeout: float = 20) -> "Server":
        assert not self.running
        self.logfile = self.logdir / f"lanterna-{self.port}-{self.starts}.log"
        self.starts += 1
        log = open(self.logfile, "wb")
        self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                     env=clean_env(self.env), start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout * SLOW
        while True:
            rc = self.proc.poll()
            if rc is not None:
                raise AssertionError(f"lanterna serve exited with {rc} before /healthz answered:\n"
                                     f"{' '.join(self.command())}\n{self.log_tail()}")
            try:
                r = requests.get(self.url + "/healthz", timeout=2)
                if r.status_code == 200:
                    return self
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                self.kill()
                raise AssertionError(f"lanterna serve did not answer /healthz in {timeout * SLOW}s:\n"
                                     f"{self.log_tail()}")
            time.sleep(0.05)

    def stop(self, sig=signal.SIGTERM, timeout: float = 30) -> int:
        """Signals the server and waits for it to exit; returns the exit code."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=timeout * SLOW)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"lanterna did not exit within {timeout * SLOW}s of signal {sig}:\n"
                                 f"{self.log_tail()}")
        return rc

    def kill(self) -> None:
        """`kill -9`: no chance to flush anything."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def restart(self) -> "Server":
        rc = self.stop()
        assert rc == 0, f"lanterna exited with {rc} on SIGTERM:\n{self.log_tail()}"
        return self.start()

    def log_text(self) -> str:
        try:
            return self.logfile.read_text(errors="replace") if self.logfile else ""
        except OSError:
            return ""

    def log_tail(self, n: int = 40) -> str:
        """The log's last lines; a sanitizer report's head first, if any."""
        lines = self.log_text().splitlines()
        head = []
        for i, ln in enumerate(lines):
            if "ERROR: AddressSanitizer" in ln or "ERROR: LeakSanitizer" in ln or "runtime error:" in ln:
                head = lines[i:i + 25] + ["..."]
                break
        return "\n".join(head + lines[-n:])

    # ---- HTTP

    def get(self, path: str, params=None, headers=None, **kw) -> requests.Response:
        return requests.get(self.url + path, params=params, headers=headers, timeout=HTTP_TIMEOUT, **kw)

    def post(self, path: str, data=None, headers=None, **kw) -> requests.Response:
        return requests.post(self.url + path, data=data, headers=headers, timeout=HTTP_TIMEOUT, **kw)

    def api(self, path: str, params=None, headers=None, status: int = 200):
        """GET a query-API path and return its JSON, asserting the status."""
        r = self.get(path, params=params, headers=headers)
        assert r.status_code == status, f"GET {path} {params} -> {r.status_code} {r.text[:500]}"
        return r.json()

    def traces(self, headers=None, **params) -> list:
        return self.api("/api/v1/traces", params=params, headers=headers)["data"]

    def trace(self, trace_id: str, headers=None) -> dict:
        return self.api(f"/api/v1/traces/{trace_id}", headers=headers)

    def spans(self, headers=None, **params) -> list:
        return self.api("/api/v1/spans", params=params, headers=headers)["data"]

    def stats(self) -> dict:
        return self.api("/api/v1/stats")

    def all_pages(self, path: str, headers=None, max_pages: int = 1000, **params) -> list:
        """Follows next_cursor to the end; returns the pages' `data` lists."""
        pages, cursor = [], None
        for _ in range(max_pages):
            p = dict(params)
            if cursor:
                p["cursor"] = cursor
            body = self.api(path, params=p, headers=headers)
            pages.append(body["data"])
            cursor = body.get("next_cursor")
            if not cursor:
                return pages
        raise AssertionError(f"{path}: more than {max_pages} pages")

    def export(self, req, fmt: str = "pb", path: str | None = None, headers=None,
               encoding: str | None = None) -> requests.Response:
        """POSTs an OTLP request (traces, logs or metrics) as protobuf or JSON."""
        if path is None:
            path = {ExportTraceServiceRequest: "/v1/traces", ExportLogsServiceRequest: "/v1/logs",
                    ExportMetricsServiceRequest: "/v1/metrics"}[type(req)]
        body = req.SerializeToString() if fmt == "pb" else to_otlp_json(req).encode()
        h = {"Content-Type": PB if fmt == "pb" else JSON}
        if encoding == "gzip":
            body = gzip.compress(body)
            h["Content-Encoding"] = "gzip"
        elif encoding == "deflate":
            body = zlib.compress(body)
            h["Content-Encoding"] = "deflate"
        elif encoding == "zstd":
            import zstandard
            body = zstandard.ZstdCompressor().compress(body)
            h["Content-Encoding"] = "zstd"
        h.update(headers or {})
        return self.post(path, data=body, headers=h)

    def export_ok(self, req, fmt: str = "pb", **kw) -> requests.Response:
        r = self.export(req, fmt, **kw)
        assert r.status_code == 200, f"export -> {r.status_code} {r.text[:500]}"
        return r


def poll(fn, timeout: float = 10, interval: float = 0.1, what: str = "condition"):
    """Calls fn until it returns a truthy value; returns that value."""
    deadline = time.monotonic() + timeout * SLOW
    last = None
    while True:
        last = fn()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout * SLOW}s waiting for {what}; last: {last!r}")
        time.sleep(interval)


def assert_error(r: requests.Response, status: int, code: str) -> dict:
    """Asserts the documented error shape {"error":{"code","message"}}."""
    assert r.status_code == status, f"expected {status}, got {r.status_code}: {r.text[:300]}"
    assert r.headers.get("Content-Type", "").startswith("application/json"), \
        f"error response Content-Type is {r.headers.get('Content-Type')!r}, want application/json"
    body = r.json()
    assert isinstance(body.get("error"), dict), f"error body is not {{'error':{{...}}}}: {body}"
    assert body["error"].get("code") == code, f"error code {body['error'].get('code')!r}, want {code!r}"
    assert isinstance(body["error"].get("message"), str) and body["error"]["message"], \
        f"error message missing: {body}"
    return body


# --------------------------------------------------------------------------
# OTLP builders

_rng = random.Random()


def trace_id() -> str:
    return "%032x" % _rng.getrandbits(128)


def span_id() -> str:
    return "%016x" % _rng.getrandbits(64)


def now_ns() -> int:
    return time.time_ns()


def any_value(v) -> AnyValue:
    if isinstance(v, AnyValue):
        return v
    if isinstance(v, bool):
        return AnyValue(bool_value=v)
    if isinstance(v, int):
        return AnyValue(int_value=v)
    if isinstance(v, float):
        return AnyValue(double_value=v)
    if isinstance(v, str):
        return AnyValue(string_value=v)
    if isinstance(v, bytes):
        return AnyValue(bytes_value=v)
    if isinstance(v, (list, tuple)):
        return AnyValue(array_value=ArrayValue(values=[any_value(x) for x in v]))
    if isinstance(v, dict):
        return AnyValue(kvlist_value=KeyValueList(values=kvs(v)))
    raise TypeError(type(v))


def kvs(d: dict | None) -> list:
    return [KeyValue(key=k, value=any_value(v)) for k, v in (d or {}).items()]


STATUS = {"unset": Status.STATUS_CODE_UNSET, "ok": Status.STATUS_CODE_OK, "error": Status.STATUS_CODE_ERROR}
KIND = {"internal": Span.SPAN_KIND_INTERNAL, "server": Span.SPAN_KIND_SERVER, "client": Span.SPAN_KIND_CLIENT,
        "producer": Span.SPAN_KIND_PRODUCER, "consumer": Span.SPAN_KIND_CONSUMER}


def make_span(tid: str, sid: str, name: str, start_ns: int, end_ns: int, parent: str | None = None,
              attrs: dict | None = None, kind: str = "internal", status: str = "unset",
              status_message: str = "", events: list | None = None, links: list | None = None) -> Span:
    s = Span(trace_id=bytes.fromhex(tid), span_id=bytes.fromhex(sid), name=name, kind=KIND[kind],
             start_time_unix_nano=start_ns, end_time_unix_nano=end_ns, attributes=kvs(attrs),
             status=Status(code=STATUS[status], message=status_message))
    if parent:
        s.parent_span_id = bytes.fromhex(parent)
    for ev in events or []:
        s.events.add(time_unix_nano=ev.get("time_ns", start_ns), name=ev["name"],
                     attributes=kvs(ev.get("attributes")))
    for ln in links or []:
        s.links.add(trace_id=bytes.fromhex(ln["trace_id"]), span_id=bytes.fromhex(ln["span_id"]),
                    attributes=kvs(ln.get("attributes")))
    return s


def traces_request(spans, resource: dict | None = None, scope: str = "lanterna-it",
                   scope_version: str = "1.0") -> ExportTraceServiceRequest:
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add(resource=Resource(attributes=kvs(
        resource if resource is not None else {"service.name": "it-service"})))
    rs.scope_spans.add(scope=InstrumentationScope(name=scope, version=scope_version), spans=list(spans))
    return req


def make_log(tid: str | None, sid: str | None, body=None, event_name: str = "", attrs: dict | None = None,
             time_ns: int | None = None, severity: int = 9, severity_text: str = "INFO") -> LogRecord:
    t = time_ns or now_ns()
    lr = LogRecord(time_unix_nano=t, observed_time_unix_nano=t, severity_number=severity,
                   severity_text=severity_text, attributes=kvs(attrs), event_name=event_name)
    if body is not None:
        lr.body.CopyFrom(any_value(body))
    if tid:
        lr.trace_id = bytes.fromhex(tid)
    if sid:
        lr.span_id = bytes.fromhex(sid)
    return lr


def logs_request(records, resource: dict | None = None, scope: str = "lanterna-it") -> ExportLogsServiceRequest:
    req = ExportLogsServiceRequest()
    rl = req.resource_logs.add(resource=Resource(attributes=kvs(resource or {"service.name": "it-service"})))
    rl.scope_logs.add(scope=InstrumentationScope(name=scope), log_records=list(records))
    return req


_ID_KEYS = {"traceId", "spanId", "parentSpanId"}


def _hexify(o):
    if isinstance(o, dict):
        return {k: (base64.b64decode(v).hex() if k in _ID_KEYS and isinstance(v, str) else _hexify(v))
                for k, v in o.items()}
    if isinstance(o, list):
        return [_hexify(x) for x in o]
    return o


def to_otlp_json(req) -> str:
    """OTLP/JSON per the spec: camelCase names, enums as integers, trace and
    span ids as hex (protobuf's canonical JSON would give base64), 64-bit
    integers as strings (allowed)."""
    d = MessageToDict(req, use_integers_for_enums=True)
    return json.dumps(_hexify(d))


def parse_export_response(r: requests.Response, kind: str = "traces") -> dict:
    """The Export*ServiceResponse as {"rejected": int, "error_message": str,
    "has_partial": bool}, whatever the content type."""
    ct = r.headers.get("Content-Type", "")
    rejected_key = {"traces": "rejected_spans", "logs": "rejected_log_records",
                    "metrics": "rejected_data_points"}[kind]
    if ct.startswith(PB):
        cls = {"traces": ExportTraceServiceResponse, "logs": ExportLogsServiceResponse,
               "metrics": ExportMetricsServiceResponse}[kind]
        msg = cls.FromString(r.content)
        has = msg.HasField("partial_success")
        ps = msg.partial_success
        return {"rejected": int(getattr(ps, rejected_key)), "error_message": ps.error_message, "has_partial": has}
    assert ct.startswith(JSON), f"export response has Content-Type {ct!r}"
    body = r.json() if r.content.strip() else {}
    ps = body.get("partialSuccess") or body.get("partial_success") or {}
    camel = re.sub(r"_(\w)", lambda m: m.group(1).upper(), rejected_key)
    return {"rejected": int(ps.get(camel, ps.get(rejected_key, 0)) or 0),
            "error_message": ps.get("errorMessage", ps.get("error_message", "")) or "",
            "has_partial": bool(ps)}


def text_of(o) -> str:
    """Every string inside a JSON value, joined: for asserting that message
    content made it somewhere into a structure whose exact shape is free."""
    if isinstance(o, str):
        try:
            inner = json.loads(o)
            if isinstance(inner, (dict, list)):
                return text_of(inner)
        except ValueError:
            pass
        return o
    if isinstance(o, dict):
        return " ".join(text_of(v) for v in o.values())
    if isinstance(o, list):
        return " ".join(text_of(v) for v in o)
    return ""
