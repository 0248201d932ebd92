"""Fixtures: the real `lanterna` binary on a free loopback port with a fresh
data directory, stopped with SIGTERM at the end of the test (which must exit
0: under ASan that also means nothing leaked); the fake OpenAI upstream."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fake_openai import FakeOpenAI
from ltlib import LANTERNA_BIN, Server


def pytest_report_header(config):
    return f"lanterna binary: {LANTERNA_BIN}"


def pytest_collection_modifyitems(config, items):
    if not os.access(LANTERNA_BIN, os.X_OK):
        if os.environ.get("CI") or os.environ.get("LANTERNA_REQUIRE_BIN"):
            raise pytest.UsageError(f"LANTERNA_BIN {LANTERNA_BIN} does not exist or is not executable")
        skip = pytest.mark.skip(reason=f"{LANTERNA_BIN} not built (run `make` or set LANTERNA_BIN)")
        for item in items:
            if item.module.__name__ != "test_fake_openai":
                item.add_marker(skip)


class _Servers:
    """Starts servers for one test (or module) and stops them all at the end,
    asserting that each exits 0 on SIGTERM."""

    def __init__(self, base: Path):
        self.base = base
        self.servers: list[Server] = []

    def __call__(self, data: Path | None = None, host: str = "127.0.0.1", args=(), env=None,
                 start: bool = True) -> Server:
        n = len(self.servers)
        if data is None:
            data = self.base / f"data{n}"
        s = Server(data=data, logdir=self.base, host=host, args=args, env=env)
        self.servers.append(s)
        if start:
            s.start()
        return s

    def close(self):
        failures = []
        for s in self.servers:
            if s.running:
                rc = s.stop()
                if rc != 0:
                    failures.append(f"{' '.join(s.command())} exited {rc} on SIGTERM:\n{s.log_tail()}")
        if failures:
            pytest.fail("\n\n".join(failures), pytrace=False)


@pytest.fixture
def lanterna(tmp_path):
    """A factory: lanterna(data=None, host=..., args=[], env={}, start=True) -> Server."""
    servers = _Servers(tmp_path)
    yield servers
    servers.close()


@pytest.fixture
def server(lanterna) -> Server:
    """A running server with a fresh data directory."""
    return lanterna()


@pytest.fixture(scope="module")
def module_lanterna(tmp_path_factory):
    servers = _Servers(tmp_path_factory.mktemp("lanterna"))
    yield servers
    servers.close()


@pytest.fixture(scope="module")
def shared_server(module_lanterna) -> Server:
    """One server for a module's tests that do not depend on an empty store."""
    return module_lanterna()


@pytest.fixture(scope="session")
def fake_openai():
    with FakeOpenAI() as fake:
        yield fake
