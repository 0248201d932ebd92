"""GET /metrics scraped by a real Prometheus server: LLM spans with known
durations, time to first token, tokens and reported costs go in through
OTLP; Prometheus' own PromQL (histogram_quantile over increase, rate,
sums) must land where the sent values say. The exposition also passes
`promtool check metrics`, and the route follows the API's project rules.

Prometheus and promtool come from Debian's `prometheus` package, installed
by scripts/deps-prometheus.sh. When they are missing the tests fail (they
are not skipped)."""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import requests

from ltlib import (HTTP_TIMEOUT, REPO, SLOW, bearer, cli_ok, create_key, free_port, make_span, now_ns, poll, span_id,
                   trace_id, traces_request)

PROMETHEUS = shutil.which("prometheus")
PROMTOOL = shutil.which("promtool")
MISSING = ("Prometheus is not installed (the `prometheus` and `promtool` commands come from Debian's "
           "`prometheus` package): run `bash scripts/deps-prometheus.sh`")

CHAT, EMBED = "it-chat-model", "it-embed-model"
S = 1_000_000_000


def require_prometheus():
    if not (PROMETHEUS and PROMTOOL):
        pytest.fail(MISSING, pytrace=False)


class Prometheus:
    """A Prometheus server on a free loopback port scraping one target every
    second, with its storage in a temporary directory."""

    def __init__(self, base: Path, target: str):
        self.base = base
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        base.mkdir(parents=True, exist_ok=True)
        self.config = base / "prometheus.yml"
        self.config.write_text(
            "global:\n"
            "  scrape_interval: 1s\n"
            "  scrape_timeout: 1s\n"
            "  evaluation_interval: 1s\n"
            "scrape_configs:\n"
            "  - job_name: lanterna\n"
            "    static_configs:\n"
            f"      - targets: ['{target}']\n")
        self.log = base / "prometheus.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Prometheus":
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [PROMETHEUS, f"--config.file={self.config}", f"--storage.tsdb.path={self.base / 'tsdb'}",
                 f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 30 * SLOW
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"prometheus exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                if requests.get(self.url + "/-/ready", timeout=2).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"prometheus was not ready within {30 * SLOW}s:\n{self.log_tail()}")
            time.sleep(0.1)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log_tail(self) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-30:])
        except OSError:
            return ""

    def query(self, promql: str, at: float | None = None) -> list:
        params = {"query": promql}
        if at is not None:
            params["time"] = f"{at:.3f}"
        r = requests.get(self.url + "/api/v1/query", params=params, timeout=HTTP_TIMEOUT)
        assert r.status_code == 200, f"query {promql!r} -> {r.status_code} {r.text[:500]}"
        body = r.json()
        assert body["status"] == "success", body
        return body["data"]["result"]

    def scalar(self, promql: str, at: float | None = None) -> float | None:
        """The value of a query returning one sample, or None when empty."""
        res = self.query(promql, at)
        if not res:
            return None
        assert len(res) == 1, f"{promql} returned {len(res)} series: {res}"
        return float(res[0]["value"][1])


@pytest.fixture
def prometheus(tmp_path):
    require_prometheus()
    started = []

    def start(target: str) -> Prometheus:
        p = Prometheus(tmp_path / f"prometheus{len(started)}", target)
        started.append(p)
        return p.start()

    yield start
    for p in started:
        p.stop()


def llm_span(tid, parent, name, start, dur_s, model, *, status="ok", ttft=None, tokens=(None, None),
             cost=None, cost_key="gen_ai.usage.cost", operation="chat"):
    attrs = {"gen_ai.operation.name": operation, "gen_ai.provider.name": "openai",
             "gen_ai.request.model": model}
    if tokens[0] is not None:
        attrs["gen_ai.usage.input_tokens"] = tokens[0]
    if tokens[1] is not None:
        attrs["gen_ai.usage.output_tokens"] = tokens[1]
    if ttft is not None:
        attrs["gen_ai.response.time_to_first_chunk"] = ttft
    if cost is not None:
        attrs[cost_key] = cost
    return make_span(tid, span_id(), name, start, start + int(dur_s * S), parent=parent, attrs=attrs,
                     kind="client", status=status)


def warmup_request():
    """One span for every label set the measured request uses: a series
    must exist before the data that increase() should see."""
    tid, t = trace_id(), now_ns()
    return traces_request([
        llm_span(tid, None, "chat", t, 0.03, CHAT, tokens=(10, 1), ttft=0.002, cost=0.001),
        llm_span(tid, None, "chat", t, 0.03, CHAT, status="error", tokens=(10, 1), ttft=0.002, cost=0.002),
        llm_span(tid, None, "embed", t, 0.03, EMBED, tokens=(10, None), operation="embeddings"),
    ])


# The measured request: 15 fast chats, 5 slow failing ones, 4 embeddings,
# under an agent span that must not count.
N_OK, N_ERR, N_EMB = 15, 5, 4
OK_DUR, ERR_DUR, TTFT = 0.7, 5.0, 0.3
OK_COST, ERR_COST = 0.0125, 0.02
MEASURED_COST = N_OK * OK_COST + N_ERR * ERR_COST
MEASURED_INPUT = (N_OK + N_ERR) * 1000 + N_EMB * 200


def measured_request():
    tid, root, t = trace_id(), span_id(), now_ns()
    spans = [make_span(tid, root, "agent run", t, t + 6 * S, attrs={
        "openinference.span.kind": "AGENT", "llm.token_count.prompt": 99999})]
    spans += [llm_span(tid, root, "chat", t, OK_DUR, CHAT, ttft=TTFT, tokens=(1000, 50), cost=OK_COST)
              for _ in range(N_OK)]
    spans += [llm_span(tid, root, "chat", t, ERR_DUR, CHAT, status="error", ttft=TTFT, tokens=(1000, 50),
                       cost=ERR_COST, cost_key="llm.cost.total") for _ in range(N_ERR)]
    spans += [llm_span(tid, root, "embed", t, 0.05, EMBED, tokens=(200, None), operation="embeddings")
              for _ in range(N_EMB)]
    return traces_request(spans)


def promtool_check(text: str):
    p = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and not p.stdout.strip() and not p.stderr.strip(), \
        f"promtool check metrics -> rc={p.returncode}\n{p.stdout}\n{p.stderr}"


def samples(prom: Prometheus, promql: str) -> list:
    """[(ms timestamp, value)] of a range-vector query's one series."""
    res = prom.query(promql)
    assert len(res) == 1, f"{promql} returned {len(res)} series"
    return [(round(float(ts) * 1000), float(v)) for ts, v in res[0]["values"]]


def test_prometheus_scrapes_genai_metrics(server, prometheus):
    require_prometheus()
    prom = prometheus(f"127.0.0.1:{server.port}")
    poll(lambda: prom.scalar('up{job="lanterna"}') == 1, timeout=30, what="Prometheus to scrape Lanterna")

    server.export_ok(warmup_request())
    poll(lambda: prom.scalar("sum(lanterna_llm_spans_total)") == 3, timeout=30,
         what="Prometheus to see the warm-up spans")
    server.export_ok(measured_request())
    total = 3 + N_OK + N_ERR + N_EMB
    poll(lambda: prom.scalar("sum(lanterna_llm_spans_total)") == total, timeout=30,
         what="Prometheus to see the measured spans")
    # Nothing else arrives: wait for one more scrape so the samples bracket it.
    time.sleep(1.5)

    # The scrape just before the measured request (t0) and the first one
    # after it (t1): increase() over exactly (t0, t1] sees only that request.
    seen = samples(prom, "lanterna_spans_accepted_total[5m]")
    t0 = max(ts for ts, v in seen if v == 3)
    t1 = min(ts for ts, v in seen if v == 3 + 1 + N_OK + N_ERR + N_EMB)
    assert t0 < t1
    at = t1 / 1000
    # One millisecond more than the gap, so the t0 sample is inside the range
    # whether the range is closed or left-open; extrapolating over that
    # millisecond changes a value by about 0.1 %.
    w = f"[{t1 - t0 + 1}ms]"

    p50 = prom.scalar("histogram_quantile(0.5, sum by (le) (increase("
                      f"gen_ai_client_operation_duration_seconds_bucket{{gen_ai_operation_name=\"chat\"}}{w})))", at)
    assert p50 is not None and 0.64 < p50 <= 1.28, f"p50 {p50}: 15 of 20 chats took {OK_DUR}s (bucket 0.64-1.28)"
    p95 = prom.scalar("histogram_quantile(0.95, sum by (le) (increase("
                      f"gen_ai_client_operation_duration_seconds_bucket{{gen_ai_operation_name=\"chat\"}}{w})))", at)
    assert p95 is not None and 2.56 < p95 <= 5.12, f"p95 {p95}: 5 of 20 chats took {ERR_DUR}s (bucket 2.56-5.12)"
    ttft = prom.scalar("histogram_quantile(0.5, sum by (le) (increase("
                       f"gen_ai_server_time_to_first_token_seconds_bucket{w})))", at)
    assert ttft is not None and 0.25 < ttft <= 0.5, f"TTFT p50 {ttft}, sent {TTFT}s (bucket 0.25-0.5)"

    cost = prom.scalar(f"sum(increase(lanterna_cost_usd_total{w}))", at)
    assert cost == pytest.approx(MEASURED_COST, rel=0.01), f"increase(cost) {cost}, sent {MEASURED_COST}"
    per_s = prom.scalar(f"sum(rate(lanterna_cost_usd_total{w}))", at)
    assert per_s * (t1 - t0 + 1) / 1000 == pytest.approx(MEASURED_COST, rel=0.01)
    # The counters themselves are exact.
    assert prom.scalar("sum(lanterna_cost_usd_total)", at) == pytest.approx(MEASURED_COST + 0.003, rel=1e-9)
    assert prom.scalar("sum(lanterna_cost_usd_total)", t0 / 1000) == pytest.approx(0.003, rel=1e-9)
    err_cost = prom.scalar('sum(lanterna_cost_usd_total{status="error"})', at)
    assert err_cost == pytest.approx(N_ERR * ERR_COST + 0.002, rel=1e-9)
    assert prom.scalar('sum(gen_ai_client_token_usage_sum{gen_ai_token_type="input"})', at) == \
        MEASURED_INPUT + 30
    assert prom.scalar(f'sum(increase(gen_ai_client_token_usage_sum{{gen_ai_token_type="input"}}{w}))', at) == \
        pytest.approx(MEASURED_INPUT, rel=0.01)
    assert prom.scalar('sum(lanterna_llm_spans_total{status="error"})', at) == N_ERR + 1
    assert prom.scalar(f'sum(lanterna_unpriced_spans_total{{gen_ai_request_model="{EMBED}"}})', at) == N_EMB + 1
    assert prom.scalar("sum(lanterna_spans_accepted_total)", at) == 3 + 1 + N_OK + N_ERR + N_EMB
    assert prom.scalar('lanterna_build_info{job="lanterna"}', at) == 1
    assert prom.scalar("lanterna_spans_stored", at) == 3 + 1 + N_OK + N_ERR + N_EMB
    assert prom.scalar("lanterna_commits_total", at) >= 2

    # A retried export stores nothing twice and counts nothing twice.
    again = measured_request()
    server.export_ok(again)
    server.export_ok(again)
    dup_line = f"\nlanterna_spans_duplicate_total {1 + N_OK + N_ERR + N_EMB}\n"
    text = poll(lambda: (lambda t: t if dup_line in t else None)(server.get("/metrics").text),
                what="the retry to be counted as duplicates")
    llm_total = sum(float(ln.rsplit(" ", 1)[1]) for ln in text.splitlines()
                    if ln.startswith("lanterna_llm_spans_total{"))
    assert llm_total == total + N_OK + N_ERR + N_EMB  # the first copy only
    promtool_check(text)


def test_exposition_passes_promtool(server):
    require_prometheus()
    r = server.get("/metrics")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    promtool_check(r.text)  # empty registry
    tid, t = trace_id(), now_ns()
    odd = 'model "with" \\ quotes\nand a newline ' + "é" * 100
    server.export_ok(traces_request([
        llm_span(tid, None, "chat", t, 0.2, odd, tokens=(5, 5), ttft=0.01, cost=0.5),
        llm_span(tid, None, "chat", t, 0.2, CHAT, status="error", tokens=(5, None)),
    ]))
    text = poll(lambda: (lambda x: x if "lanterna_llm_spans_total{" in x else None)(server.get("/metrics").text),
                what="the spans in /metrics")
    promtool_check(text)
    # Escaped, and cut to 128 bytes without splitting a character.
    line = next(ln for ln in text.splitlines() if ln.startswith("lanterna_llm_spans_total{") and "quotes" in ln)
    value = line.split('gen_ai_request_model="', 1)[1].split('",gen_ai_operation_name', 1)[0]
    assert value.startswith('model \\"with\\" \\\\ quotes\\nand a newline é')
    raw = re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), value)
    assert raw == odd.encode()[:128].decode("utf-8", "ignore")


def test_metrics_follow_project_rules(lanterna, tmp_path):
    data = tmp_path / "data"
    cli_ok("projects", "create", "acme", data=data)
    server = lanterna(data=data)
    tid, t = trace_id(), now_ns()
    server.export_ok(traces_request([llm_span(tid, None, "chat", t, 0.1, CHAT, tokens=(1, 1))]))
    # No key exists: an anonymous scrape sees every project.
    poll(lambda: 'project="default"' in server.get("/metrics").text, what="the default project's series")

    key = create_key(data, "acme")
    server.export_ok(traces_request([llm_span(trace_id(), None, "chat", t, 0.1, CHAT, tokens=(1, 1))]),
                     headers=bearer(key))
    acme = poll(lambda: (lambda x: x if 'project="acme"' in x else None)(
        server.get("/metrics", headers=bearer(key)).text), what="acme's series for acme's key")
    assert 'project="default"' not in acme
    assert "lanterna_spans_stored " in acme  # server health is server-wide
    # Once a key exists, anonymous callers get the default project only.
    anon = server.get("/metrics").text
    assert 'project="default"' in anon and 'project="acme"' not in anon
    assert server.get("/metrics", headers={"Authorization": "Bearer sk-lt-nope"}).status_code == 401


def test_computed_cost_is_counted(server):
    """A span that reports tokens but no cost is priced from the shipped
    table (data/prices.json), and that cost is what the counter adds."""
    table = json.loads((REPO / "data" / "prices.json").read_text())
    entry = next(m for m in table["models"] if m["match"] == "gpt-4o-mini*")
    tid, t = trace_id(), now_ns()
    server.export_ok(traces_request([
        llm_span(tid, None, "chat", t, 0.4, "gpt-4o-mini", tokens=(1000, 1000))]))
    want = (1000 * entry["input"] + 1000 * entry["output"]) / 1e6
    text = poll(lambda: (lambda x: x if "lanterna_llm_spans_total{" in x else None)(server.get("/metrics").text),
                what="the span in /metrics")
    line = next(ln for ln in text.splitlines()
                if ln.startswith("lanterna_cost_usd_total{") and 'gen_ai_request_model="gpt-4o-mini"' in ln)
    assert float(line.rsplit(" ", 1)[1]) == pytest.approx(want, rel=1e-6)
    unpriced = next(ln for ln in text.splitlines() if ln.startswith("lanterna_unpriced_spans_total{"))
    assert unpriced.endswith(" 0")
