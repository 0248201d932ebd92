"""Hostile bodies that are small on the wire but large once parsed are
refused with 413, stay within memory bounds, and leave the server working."""

from __future__ import annotations

import gzip

from ltlib import LANTERNA_BIN, assert_error

# Sanitizer builds use about 3x the memory for the same allocations.
MEM_FACTOR = 3 if "/asan/" in str(LANTERNA_BIN) else 1

JSON = {"Content-Type": "application/json"}


def rss_kb(server) -> int:
    with open(f"/proc/{server.proc.pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_json_parse_tree_is_bounded(server):
    """[0,0,0,...] costs jansson ~20x its size as a tree; the server caps the
    tree by the body size and answers 413 instead of growing without bound."""
    body = b'{"resourceSpans":[{"x":[' + b"0," * (5 << 20) + b'0]}]}'  # 10 MiB
    before = rss_kb(server)
    r = server.post("/v1/traces", data=gzip.compress(body, 1), headers={**JSON, "Content-Encoding": "gzip"})
    assert_error(r, 413, "payload_too_large")
    # Bounded: the body (10 MiB) plus a tree capped at 8x of it, far below
    # the ~220 MB an unbounded tree takes.
    assert rss_kb(server) - before < 160 * 1024 * MEM_FACTOR
    assert server.get("/healthz").status_code == 200


def test_bad_time_offset_is_400(server):
    r = server.get("/api/v1/traces", params={"from": "2024-01-01T00:00:00+1:2"})
    assert_error(r, 400, "bad_request")
