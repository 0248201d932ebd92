"""A 200 means stored: persistence across restart, SIGTERM during a burst,
and `kill -9` right after (and during) a burst of acknowledged requests."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time

import pytest
import requests

from ltlib import HTTP_TIMEOUT, PB, make_span, now_ns, poll, span_id, trace_id, traces_request

SPANS_PER_REQUEST = 200


BURST_BASE = now_ns() - 3_600 * 10**9  # an hour ago: clear of the other tests' spans in the rollups


def burst_payloads(n_requests: int, name: str = "burst"):
    """One trace of SPANS_PER_REQUEST spans per request (a root and its
    children), so a partly stored request shows up as a short trace."""
    out = []
    base = BURST_BASE
    for i in range(n_requests):
        tid = trace_id()
        ids = [span_id() for _ in range(SPANS_PER_REQUEST)]
        t = base + i * 1_000_000
        spans = [make_span(tid, ids[0], name, t, t + 900_000,
                           attrs={"openinference.span.kind": "CHAIN", "input.value": f"request {i}"})]
        for j, sid in enumerate(ids[1:], 1):
            spans.append(make_span(tid, sid, f"step-{j % 10}", t + j * 1000, t + j * 1000 + 500, parent=ids[0],
                                   attrs={"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini",
                                          "gen_ai.usage.input_tokens": j, "gen_ai.usage.output_tokens": 1,
                                          "input.value": f"prompt {i}/{j} " + "x" * 64}))
        out.append((tid, set(ids), traces_request(spans).SerializeToString()))
    return out


class Burst:
    """Sends payloads from several threads, each with its own keep-alive
    connection; records which requests were acknowledged with a 200."""

    def __init__(self, url: str, payloads, threads: int = 4):
        self.url = url + "/v1/traces"
        self.payloads = payloads
        self.next = 0
        self.lock = threading.Lock()
        self.acked: list[str] = []
        self.other: list = []
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _take(self):
        with self.lock:
            if self.next >= len(self.payloads):
                return None
            self.next += 1
            return self.payloads[self.next - 1]

    def _run(self):
        s = requests.Session()
        while (p := self._take()) is not None:
            tid, _, body = p
            try:
                r = s.post(self.url, data=body, headers={"Content-Type": PB}, timeout=HTTP_TIMEOUT)
            except requests.RequestException as e:
                with self.lock:
                    self.other.append(type(e).__name__)
                s = requests.Session()
                continue
            with self.lock:
                if r.status_code == 200:
                    self.acked.append(tid)
                else:
                    self.other.append(r.status_code)

    def start(self) -> "Burst":
        for t in self.threads:
            t.start()
        return self

    def wait_acked(self, n: int, timeout: float = 60):
        deadline = time.monotonic() + timeout
        while len(self.acked) < n and any(t.is_alive() for t in self.threads):
            assert time.monotonic() < deadline, f"only {len(self.acked)} of {n} acknowledged"
            time.sleep(0.002)

    def join(self, timeout: float = 120):
        for t in self.threads:
            t.join(timeout)
            assert not t.is_alive()
        return self


def verify(server, payloads, acked):
    """Every acknowledged request's spans are all there; no request is
    stored partly; nothing else was stored."""
    by_id = {tid: ids for tid, ids, _ in payloads}
    rows = server.traces(name="burst", limit=1000)
    present = {r["trace_id"]: r["span_count"] for r in rows}
    assert len(rows) < 1000
    missing = [t for t in acked if t not in present]
    assert not missing, f"{len(missing)} of {len(acked)} acknowledged requests lost after restart"
    partial = {t: n for t, n in present.items() if n != SPANS_PER_REQUEST}
    assert not partial, f"requests stored partly: {partial}"
    assert set(present) <= set(by_id)
    for tid in acked:
        got = {s["span_id"] for s in server.trace(tid)["spans"]}
        assert got == by_id[tid], f"trace {tid}: {len(got)} spans, {len(got ^ by_id[tid])} differ"
    assert server.stats()["store"]["spans"] == len(present) * SPANS_PER_REQUEST
    # The rollups count the same spans: under a backlog their flush waits
    # for a later commit, and a kill -9 in between is made good from the
    # spans table after the restart (one maintenance slice).
    n = len(present) * SPANS_PER_REQUEST
    want_in = len(present) * sum(range(1, SPANS_PER_REQUEST))
    rng = {"from": str(BURST_BASE - 10**9), "to": str(BURST_BASE + 3_600 * 10**9), "interval": "1h",
           "metrics": "count,input_tokens"}
    poll(lambda: server.stats()["store"]["rollup_lag"] == 0, what="the rollups to catch up")
    # The session and user keys catch up in the background as well.
    poll(lambda: server.stats()["store"]["keys_lag"] == 0, what="the trace keys to catch up")
    assert server.api("/api/v1/metrics", params=rng)["totals"]["count"] == n
    assert server.api("/api/v1/metrics", params=rng)["totals"]["input_tokens"] == want_in
    return present


def test_persistence_across_restart(server):
    tid, root, child, t = trace_id(), span_id(), span_id(), now_ns()
    req = traces_request([
        make_span(tid, root, "persisted", t, t + 5_000_000, attrs={"session.id": "p-1", "user.id": "u",
                                                                    "input.value": "durable words"}),
        make_span(tid, child, "chat", t + 1000, t + 4_000_000, parent=root, kind="client",
                  attrs={"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini",
                         "gen_ai.usage.input_tokens": 9, "gen_ai.usage.output_tokens": 4})])
    server.export_ok(req)
    before = server.trace(tid)
    before_list = server.traces()
    server.restart()
    assert server.trace(tid) == before
    assert server.traces() == before_list
    assert server.api("/api/v1/sessions/p-1")["traces"][0]["trace_id"] == tid
    # Idempotency survives the restart too.
    server.export_ok(req)
    assert server.trace(tid)["trace"]["span_count"] == 2


def test_sigterm_during_burst(server):
    payloads = burst_payloads(60)
    burst = Burst(server.url, payloads, threads=4).start()
    burst.wait_acked(15)
    rc = server.stop(signal.SIGTERM)
    burst.join()
    assert rc == 0, f"exit code {rc} on SIGTERM during a burst:\n{server.log_tail()}"
    acked = list(burst.acked)
    assert len(acked) >= 15
    print(f"sigterm: {len(acked)} acked, refused: {burst.other}")
    # What was refused was refused cleanly (503 while draining, or no connection).
    assert all(o in (503, "ConnectionError") for o in burst.other), burst.other
    server.start()
    verify(server, payloads, acked)


@pytest.mark.parametrize("durability,codec", [("full", "lz4"), ("process", "lz4"), ("full", "zstd")])
def test_kill_9_after_acknowledged_burst(lanterna, durability, codec):
    """20,000 spans from 4 threads; kill -9 the moment the last of them was
    acknowledged: after a restart every acknowledged span is there."""
    server = lanterna(args=["--durability", durability, "--compression", codec])
    payloads = burst_payloads(100)
    burst = Burst(server.url, payloads, threads=4).start().join()
    server.kill()
    assert len(burst.acked) == 100, f"not all requests were acknowledged: {burst.other}"
    server.start()
    present = verify(server, payloads, burst.acked)
    assert len(present) == 100


def test_kill_9_during_burst(lanterna):
    """kill -9 while requests are in flight: acknowledged ones survive,
    unacknowledged ones are either whole or absent."""
    server = lanterna()
    payloads = burst_payloads(100)
    burst = Burst(server.url, payloads, threads=4).start()
    burst.wait_acked(40)
    server.kill()
    burst.join()
    acked = list(burst.acked)
    print(f"kill -9: {len(acked)} acked, failed: {burst.other}")
    server.start()
    verify(server, payloads, acked)


def test_full_queue_is_503_with_retry_after(lanterna):
    """With a small write queue, concurrent large requests are refused with
    503 + Retry-After (never stored partly); a client that retries them gets
    everything stored."""
    server = lanterna(args=["--queue-bytes", "1MiB"])
    payloads = []
    refused = []
    for _round in range(5):  # bounded: stop at the first round that saw a 503
        # Fresh traces every round: a round without any 503 stored all of
        # its requests, and resending them could not tell "refused" apart
        # from "stored earlier".
        this_round = burst_payloads(48)
        payloads += this_round
        results = {}

        def send(p, results=results):
            r = requests.post(server.url + "/v1/traces", data=p[2], headers={"Content-Type": PB},
                              timeout=HTTP_TIMEOUT)
            results[p[0]] = r

        threads = [threading.Thread(target=lambda chunk=this_round[i::8]: [send(p) for p in chunk]) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        busy = [(tid, r) for tid, r in results.items() if r.status_code == 503]
        assert all(r.status_code in (200, 503) for r in results.values()), \
            {r.status_code for r in results.values()}
        if busy:
            for _tid, r in busy:
                assert r.headers.get("Retry-After") == "1", dict(r.headers)
                assert r.json()["error"]["code"] == "overloaded"
            refused = [tid for tid, _ in busy]
            break
    else:
        pytest.fail("no request was refused with 503 although the queue holds only one request")
    present = {r["trace_id"]: r["span_count"] for r in server.traces(name="burst", limit=1000)}
    assert not set(refused) & set(present), "a refused request was stored"
    assert all(n == SPANS_PER_REQUEST for n in present.values())
    # The client retries what was refused.
    for tid, _, body in payloads:
        if tid in refused:
            for _ in range(50):
                r = requests.post(server.url + "/v1/traces", data=body, headers={"Content-Type": PB},
                                  timeout=HTTP_TIMEOUT)
                if r.status_code == 200:
                    break
                time.sleep(0.05)
            assert r.status_code == 200
    verify(server, payloads, [p[0] for p in payloads])


@pytest.fixture
def small_disk(tmp_path):
    """A 16 MiB tmpfs that the test can grow: a real full disk, no fakes.
    Needs root (mount); skipped otherwise."""
    mnt = tmp_path / "small-disk"
    mnt.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_full_disk_refuses_then_recovers(lanterna, small_disk):
    """When the disk fills: every request is answered 503 insufficient_storage
    with Retry-After (nothing from it stored), every acknowledged span stays
    readable, /readyz and the stats say disk_full, the log says it once rather
    than per commit; once space is freed, the refused requests go in."""
    server = lanterna(data=small_disk / "data", args=["--log-level", "info"])
    payloads = burst_payloads(300)  # 60,000 spans: well over 16 MiB
    burst = Burst(server.url, payloads, threads=2).start().join()
    refused = [p for p in payloads if p[0] not in set(burst.acked)]
    assert burst.acked and refused, f"the disk never filled: {len(burst.acked)} acknowledged"
    assert set(burst.other) == {503}, burst.other

    r = requests.post(server.url + "/v1/traces", data=refused[0][2], headers={"Content-Type": PB},
                      timeout=HTTP_TIMEOUT)
    assert r.status_code == 503 and r.headers.get("Retry-After")
    assert r.json()["error"]["code"] == "insufficient_storage" and "disk is full" in r.json()["error"]["message"]
    ready = requests.get(server.url + "/readyz", timeout=HTTP_TIMEOUT)
    assert ready.status_code == 503 and ready.json()["status"] == "disk_full"
    w = server.stats()["writer"]
    assert w["disk_full"] is True and 1 <= w["disk_full_refused"] <= w["failed_commits"]
    assert "lanterna_disk_full 1" in requests.get(server.url + "/metrics", timeout=HTTP_TIMEOUT).text
    # Reads go on; what was acknowledged is all there, nothing partly.
    rows = {t["trace_id"]: t["span_count"] for t in server.traces(name="burst", limit=1000)}
    assert set(rows) == set(burst.acked) and set(rows.values()) == {SPANS_PER_REQUEST}

    subprocess.run(["mount", "-o", "remount,size=256m", str(small_disk)], check=True)
    # Ready again with no traffic (a balancer sends none to a server that is
    # not ready): the writer looks at the free space itself.
    poll(lambda: requests.get(server.url + "/readyz", timeout=HTTP_TIMEOUT).status_code == 200, timeout=20,
         what="/readyz once space is back")
    assert server.stats()["writer"]["disk_full"] is False
    s = requests.Session()
    for tid, _, body in refused:
        r = s.post(server.url + "/v1/traces", data=body, headers={"Content-Type": PB}, timeout=HTTP_TIMEOUT)
        assert r.status_code == 200, r.text
    assert requests.get(server.url + "/readyz", timeout=HTTP_TIMEOUT).status_code == 200
    assert server.stats()["writer"]["disk_full"] is False
    verify(server, payloads, [p[0] for p in payloads])
    log = server.log_text()
    assert log.count("the disk holding the data directory is full") == 1, log[-3000:]
    assert log.count("disk is full") <= 3 and "maintenance failed" not in log, log[-3000:]
    assert "MiB free again: accepting writes" in log
