"""Helpers for the Python SDK tests: import the SDK from the source tree,
point it at a test server, run SDK scripts in their own interpreter, and
wait for traces to arrive."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ltlib import REPO, SLOW, poll

SDK_PATH = str(REPO / "sdk" / "python")
if SDK_PATH not in sys.path:
    sys.path.insert(0, SDK_PATH)

import lanterna  # noqa: E402
from lanterna import _core  # noqa: E402


def sdk_init(server, **kw):
    """init() against a test server, exporting quickly."""
    opts = dict(base_url=server.url, flush_interval=0.05, service_name="sdk-test", max_retries=2)
    opts.update(kw)
    return lanterna.init(**opts)


@pytest.fixture
def sdk():
    """Leaves the SDK shut down (spans then go nowhere) after each test, so
    nothing from one test reaches another's server."""
    yield lanterna
    lanterna.shutdown(5)
    _core.S.enabled = True


def wait_trace(server, trace_id: str, spans: int, timeout: float = 15) -> dict:
    """GET /api/v1/traces/{id} until it has at least `spans` spans."""
    def get():
        r = server.get(f"/api/v1/traces/{trace_id}")
        if r.status_code == 200 and len(r.json()["spans"]) >= spans:
            return r.json()
        return None
    return poll(get, timeout=timeout, what=f"trace {trace_id} with {spans} spans")


def by_name(trace: dict) -> dict:
    return {s["name"]: s for s in trace["spans"]}


def run_script(code: str, env: dict | None = None, timeout: float = 60, args=()) -> subprocess.CompletedProcess:
    """Runs `code` in a fresh interpreter with the SDK importable; fails the
    test on a non-zero exit."""
    e = {k: v for k, v in os.environ.items() if not k.startswith("LANTERNA_")}
    e["PYTHONPATH"] = os.pathsep.join([SDK_PATH, str(Path(__file__).parent), e.get("PYTHONPATH", "")])
    e.update(env or {})
    p = subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args], env=e, capture_output=True,
                       text=True, timeout=timeout * SLOW)
    assert p.returncode == 0, f"script failed rc={p.returncode}\nstdout:\n{p.stdout[-3000:]}\n" \
                              f"stderr:\n{p.stderr[-3000:]}"
    return p
