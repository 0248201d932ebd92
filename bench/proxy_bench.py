#!/usr/bin/env python3
"""Proxy benchmark: what an LLM proxy adds in front of an OpenAI-compatible
upstream. Direct, through a bare byte relay (the hop alone), through
Lanterna and through the LiteLLM proxy, against the same local fake upstream,
in one run.

Run through `make bench` or directly:

    bash scripts/deps-bench.sh && .venv-bench/bin/python bench/proxy_bench.py

Steps:
  1. Build the fake upstream (bench/fakellm) and the load generator
     (bench/loadgen, `loadgen llm` mode). Start two fakes: "fast" (answers at
     once; streams send every chunk back to back) and "paced" (streams send a
     content delta every --token-delay, like a model generating).
  2. Start Lanterna (build/lanterna serve --durability process, fresh data
     dir, both fakes as upstreams) and the LiteLLM proxy (.venv-bench, a
     config.yaml mapping two model names to the two fakes, no database, no
     callbacks, telemetry off), both on loopback; and bench/relay (C, built
     here): a relay that copies bytes between each client connection and one
     upstream connection of its own, on two epoll threads like Lanterna's two
     HTTP loops. It parses nothing and stores nothing, so what it adds is the
     least any proxy on this machine can add: the floor under every column.
  3. Maximum throughput (closed loop, --max-conns connections), non-streaming
     and streaming (fast fake), for direct, the relay, Lanterna and LiteLLM.
  4. Constant rate (open loop, --rate req/s, latency from each request's due
     time: no coordinated omission), non-streaming (fast fake) and streaming
     (paced fake; TTFT = time to the first content delta), for each target.
     A target that cannot sustain --rate is measured at the highest rate it
     sustains (stepping down from 80% of its maximum), and Lanterna and
     direct are measured at that rate too, for a like-for-like ratio.
  5. Peak RSS (VmHWM) of each proxy, CPU of every process per phase, the
     machine's other load per phase, spans stored by Lanterna vs requests
     sent (GET /api/v1/stats), requests seen by the fakes.
  6. Prints a table, writes bench/results/proxy_bench.json and prints the
     markdown block for docs/benchmarks.md.

About 6-8 minutes with the defaults (LiteLLM takes ~30-60 s to start).
"""
from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from ingest_bench import (  # noqa: E402
    Monitor, build_loadgen, find_go, free_port, http_get, log, log_tail, machine_info, machine_line, sh,
    stop_process,
)

RESULTS = os.path.join(ROOT, "bench", "results")
TARGETS = {"added_p50_ms": 0.3, "added_p99_ms": 2.0, "max_rps": 10_000, "ttft_added_ms": 1.0, "rss_mb": 100.0,
           "ratio_vs_litellm": 20.0}
PCTS = ("p50", "p90", "p99", "p999", "max")


# --------------------------------------------------------------------------
# pieces

def build_relay() -> str:
    out = os.path.join(ROOT, "build", "bench", "relay")
    src = os.path.join(ROOT, "bench", "relay", "relay.c")
    if not os.path.exists(out) or os.path.getmtime(out) < os.path.getmtime(src):
        os.makedirs(os.path.dirname(out), exist_ok=True)
        r = subprocess.run(["cc", "-O2", "-Wall", "-Wextra", "-Werror", "-o", out, src, "-lpthread"],
                           capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit("bench: build of bench/relay failed:\n" + r.stderr)
    return out


def build_fakellm() -> str:
    out = os.path.join(ROOT, "build", "bench", "fakellm")
    src = os.path.join(ROOT, "bench", "fakellm")
    newest = max(os.path.getmtime(os.path.join(src, f)) for f in os.listdir(src))
    if not os.path.exists(out) or os.path.getmtime(out) < newest:
        os.makedirs(os.path.dirname(out), exist_ok=True)
        env = dict(os.environ, CGO_ENABLED="0")
        env.setdefault("GOCACHE", os.path.join(ROOT, "build", "bench", "gocache"))
        r = subprocess.run([find_go(), "build", "-o", out, "."], cwd=src, env=env, capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit("bench: go build of bench/fakellm failed:\n" + r.stderr)
    return out


def logfile(name: str) -> str:
    p = os.path.join(RESULTS, "logs", f"proxy-{name}.log")
    os.makedirs(os.path.dirname(p), exist_ok=True)
    return p


def wait_ready(proc: subprocess.Popen, url: str, timeout: float, logf: str) -> float:
    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"exited during start-up (code {proc.returncode}): {log_tail(logf, 8)}")
        if http_get(url, timeout=2)[0] == 200:
            return round(time.time() - t0, 1)
        time.sleep(0.2)
    raise RuntimeError(f"not ready after {timeout:.0f} s: {log_tail(logf, 8)}")


class Proc:
    """A started server: process, monitor, log."""

    def __init__(self, name: str, cmd: list[str], ready_url: str, env=None, cwd=None):
        self.name, self.cmd, self.ready_url = name, cmd, ready_url
        self.logf = logfile(name)
        with open(self.logf, "w") as lf:
            self.proc = subprocess.Popen(cmd, stdout=lf, stderr=subprocess.STDOUT, env=env, cwd=cwd)
        self.mon = None
        self.startup_s = None

    def ready(self, timeout: float) -> None:
        self.startup_s = wait_ready(self.proc, self.ready_url, timeout, self.logf)
        self.mon = Monitor(self.proc.pid)

    def stop(self) -> dict:
        if self.mon:
            self.mon.stop()
        return stop_process(self.proc, 20)


def proc_tree_hwm(mon: Monitor) -> dict:
    """VmHWM per process of a tree (LiteLLM: parent plus workers)."""
    from ingest_bench import _status
    per = {p: round(_status(p, "VmHWM") / 1024, 1) for p in mon.pids()}
    return {"total_mb": round(sum(per.values()), 1), "largest_process_mb": max(per.values(), default=0),
            "processes": len(per)}


def machine_busy() -> tuple[float, float]:
    """(busy jiffies, total jiffies) from /proc/stat, all CPUs."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]
    return sum(v) - idle, sum(v)


# --------------------------------------------------------------------------
# the run

class Run:
    def __init__(self, a, loadgen: str):
        self.a, self.loadgen = a, loadgen
        self.phases: list[dict] = []
        self.procs: dict[str, Proc] = {}
        self.targets: dict[str, dict] = {}  # name -> {url_fast, url_paced, model_fast, model_paced, auth}

    def ours_cpu(self) -> dict:
        return {n: p.mon.cpu_s() for n, p in self.procs.items() if p.mon}

    def settle(self) -> None:
        """Wait until every server is idle (a proxy may still be working off
        the previous phase's backlog: LiteLLM keeps serving requests whose
        client has gone) and Lanterna's writer has nothing queued, so one
        phase's leftovers do not load the next. At most 90 s."""
        t0 = time.time()
        prev = self.ours_cpu()
        while time.time() - t0 < 90:
            time.sleep(0.5)
            cur = self.ours_cpu()
            busy = max((cur[n] - prev.get(n, 0)) / 0.5 for n in cur) if cur else 0
            prev = cur
            q = (self.lanterna_stats().get("writer") or {}).get("queue_records", 0)
            if busy < 0.1 and not q:
                return
        log("settle: servers still busy after 90 s")

    def lanterna_stats(self) -> dict:
        lt = self.targets.get("lanterna")
        if not lt:
            return {}
        code, body = http_get(lt["base"] + "/api/v1/stats", timeout=5)
        try:
            return json.loads(body) if code == 200 else {}
        except ValueError:
            return {}

    def phase(self, target: str, kind: str, *, stream: bool, rate: float = 0, conns: int,
              seconds: float | None = None) -> dict:
        a, t = self.a, self.targets[target]
        paced = stream and rate > 0
        url = t["url_paced"] if paced else t["url_fast"]
        model = t["model_paced"] if paced else t["model_fast"]
        seconds = seconds or a.seconds
        cmd = [self.loadgen, "llm", "-url", url, "-model", model, "-conns", str(conns),
               "-duration", f"{seconds}s", "-warmup", f"{a.warmup}s", "-auth", t["auth"],
               "-timeout", "30s", "-drain", "20s", "-quiet", "-label", f"{target} {kind}"]
        if stream:
            cmd.append("-stream")
        if rate:
            cmd += ["-rate", str(rate)]
        self.settle()
        c0, b0, t0 = self.ours_cpu(), machine_busy(), time.time()
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        c1, b1, t1 = self.ours_cpu(), machine_busy(), time.time()
        if r.returncode != 0:
            raise RuntimeError(f"loadgen failed ({r.returncode}): {r.stderr[-500:]}")
        res = json.loads(r.stdout)
        wall = t1 - t0
        res.update({"target": target, "kind": kind, "paced_upstream": paced})
        res["cpu_cores"] = {n: round((c1[n] - c0.get(n, 0)) / wall, 2) for n in c1}
        res["cpu_cores"]["loadgen"] = round(res["loadgen_cpu_s"] / wall, 2)
        ncpu = os.cpu_count() or 1
        busy_cores = (b1[0] - b0[0]) / max(1, b1[1] - b0[1]) * ncpu
        ours = sum(res["cpu_cores"].values())
        res["machine_busy_cores"] = round(busy_cores, 2)
        res["other_load_cores"] = round(max(0.0, busy_cores - ours), 2)
        self.phases.append(res)
        lat = res["latency_ms"]
        extra = f", TTFT p50 {res['ttft_ms']['p50']:.3f} p99 {res['ttft_ms']['p99']:.3f}" if stream else ""
        log(f"{target:8s} {kind:34s} {res['requests_per_s']:9,.0f} req/s  p50 {lat['p50']:8.3f}  p99 {lat['p99']:8.3f}  "
            f"max {lat['max']:8.3f} ms{extra}; errors {res['errors'] or 0}; CPU {res['cpu_cores']}; "
            f"other load {res['other_load_cores']:.2f} cores")
        return res


def sustained(p: dict, rate: float) -> bool:
    return (p["requests_failed"] == 0 and p["requests_per_s"] >= 0.98 * rate
            and 0 <= p["latency_ms"]["p99"] < 1000)


def nice_rate(x: float) -> int:
    for step in (1000, 500, 100, 50, 10, 5, 1):
        if x >= 4 * step:
            return int(x // step * step)
    return max(1, int(x))


def start_all(a, run: Run, tmp: str) -> dict:
    fake = build_fakellm()
    info = {}
    # The fakes.
    fp, pp = free_port(), free_port()
    base = [fake, "-tokens", str(a.tokens)]
    run.procs["fake"] = Proc("fake", base + ["-listen", f"127.0.0.1:{fp}"], f"http://127.0.0.1:{fp}/health")
    run.procs["fake-paced"] = Proc("fake-paced", base + ["-listen", f"127.0.0.1:{pp}", "-ttft", f"{a.ttft}ms",
                                                         "-token-delay", f"{a.token_delay}ms"],
                                   f"http://127.0.0.1:{pp}/health")
    for n in ("fake", "fake-paced"):
        run.procs[n].ready(10)
    info["fake"] = {"fast": " ".join(run.procs["fake"].cmd), "paced": " ".join(run.procs["fake-paced"].cmd)}
    fast, paced = f"http://127.0.0.1:{fp}", f"http://127.0.0.1:{pp}"
    run.targets["direct"] = {"base": fast, "url_fast": fast + "/v1/chat/completions",
                             "url_paced": paced + "/v1/chat/completions", "model_fast": a.model,
                             "model_paced": a.model, "auth": "sk-bench-not-a-real-key"}

    # The bare relay in front of each fake (it has one upstream each).
    relay = build_relay()
    rf, rp = free_port(), free_port()
    for n, port, up in (("relay", rf, fp), ("relay-paced", rp, pp)):
        run.procs[n] = Proc(n, [relay, "-listen", f"127.0.0.1:{port}", "-upstream", f"127.0.0.1:{up}"],
                            f"http://127.0.0.1:{port}/health")
        run.procs[n].ready(10)
    run.targets["relay"] = {"base": f"http://127.0.0.1:{rf}", "url_fast": f"http://127.0.0.1:{rf}/v1/chat/completions",
                            "url_paced": f"http://127.0.0.1:{rp}/v1/chat/completions", "model_fast": a.model,
                            "model_paced": a.model, "auth": "sk-bench-not-a-real-key"}

    # LiteLLM first: it takes longest to start.
    if not a.skip_litellm:
        exe = os.path.join(os.path.dirname(sys.executable), "litellm")
        if not os.path.exists(exe):
            info["litellm_problem"] = "litellm not installed in this interpreter's env (run scripts/deps-bench.sh)"
        else:
            lport = free_port()
            cfg = os.path.join(tmp, "litellm-config.yaml")
            with open(cfg, "w") as f:
                f.write(litellm_config(a.model, fast, paced))
            key = "sk-bench-" + secrets.token_hex(16)
            env = dict(os.environ, LITELLM_MASTER_KEY=key, LITELLM_MODE="PRODUCTION", LITELLM_LOG="ERROR",
                       LITELLM_LOCAL_MODEL_COST_MAP="True", DISABLE_SCHEMA_UPDATE="true")
            for k in ("DATABASE_URL", "DIRECT_URL", "REDIS_HOST", "REDIS_URL"):
                env.pop(k, None)
            cmd = [exe, "--config", cfg, "--host", "127.0.0.1", "--port", str(lport),
                   "--num_workers", str(a.litellm_workers)]
            if a.litellm_server == "gunicorn":
                cmd.append("--run_gunicorn")
            run.procs["litellm"] = Proc("litellm", cmd, f"http://127.0.0.1:{lport}/health/readiness", env=env, cwd=tmp)
            lb = f"http://127.0.0.1:{lport}"
            run.targets["litellm"] = {"base": lb, "url_fast": lb + "/v1/chat/completions",
                                      "url_paced": lb + "/v1/chat/completions", "model_fast": a.model,
                                      "model_paced": a.model + "-paced", "auth": key}
            info["litellm"] = {
                "version": sh([sys.executable, "-c", "import importlib.metadata as m; print(m.version('litellm'))"]),
                "command": "LITELLM_MASTER_KEY=<random> LITELLM_MODE=PRODUCTION LITELLM_LOG=ERROR "
                           "LITELLM_LOCAL_MODEL_COST_MAP=True litellm " + " ".join(cmd[1:]).replace(cfg, "config.yaml"),
                "config_yaml": litellm_config(a.model, "http://127.0.0.1:<fast>", "http://127.0.0.1:<paced>"),
            }

    # Lanterna.
    if not a.skip_lanterna:
        binary = os.path.abspath(a.lanterna)
        if not os.access(binary, os.X_OK):
            info["lanterna_problem"] = f"{a.lanterna} not found (build it with `make`)"
        else:
            data = os.path.join(tmp, "lanterna-data")
            os.makedirs(data)
            port = free_port()
            cmd = [binary, "serve", "--data", data, "--listen", f"127.0.0.1:{port}",
                   "--upstream", f"fake={fast}", "--upstream", f"fake-paced={paced}", "--durability", "process"]
            with open(binary, "rb") as f:
                digest = hashlib.sha256(f.read()).hexdigest()[:16]
            run.procs["lanterna"] = Proc("lanterna", cmd, f"http://127.0.0.1:{port}/readyz", cwd=data)
            run.procs["lanterna"].ready(30)
            lb = f"http://127.0.0.1:{port}"
            run.targets["lanterna"] = {"base": lb, "url_fast": lb + "/proxy/fake/v1/chat/completions",
                                       "url_paced": lb + "/proxy/fake-paced/v1/chat/completions",
                                       "model_fast": a.model, "model_paced": a.model, "auth": "sk-bench-not-a-real-key"}
            v = sh([binary, "version"])
            info["lanterna"] = {"version": v.splitlines()[0].replace("lanterna ", "") if v else "",
                                "binary_sha256_16": digest,
                                "command": " ".join(cmd).replace(data, "<fresh dir>").replace(binary, "build/lanterna")}

    if "litellm" in run.procs:
        try:
            run.procs["litellm"].ready(a.litellm_start_timeout)
            info["litellm"]["startup_s"] = run.procs["litellm"].startup_s
        except RuntimeError as e:
            info["litellm_problem"] = f"LiteLLM: {e}"
            run.procs.pop("litellm").stop()
            run.targets.pop("litellm", None)
    return info


def litellm_config(model: str, fast: str, paced: str) -> str:
    return f"""model_list:
  - model_name: {model}
    litellm_params:
      model: openai/{model}
      api_base: {fast}/v1
      api_key: sk-bench-not-a-real-key
  - model_name: {model}-paced
    litellm_params:
      model: openai/{model}
      api_base: {paced}/v1
      api_key: sk-bench-not-a-real-key
general_settings:
  disable_spend_logs: true
  disable_error_logs: true
litellm_settings:
  set_verbose: false
  telemetry: false
  request_timeout: 60
"""


def check_streams(run: Run) -> dict:
    """One stream through each target: what the client receives."""
    out = {}
    for name, t in run.targets.items():
        for inc in (False, True):
            cmd = [run.loadgen, "llm", "-url", t["url_fast"], "-model", t["model_fast"], "-conns", "1",
                   "-duration", "0.3s", "-warmup", "0s", "-stream", "-auth", t["auth"], "-quiet"]
            if inc:
                cmd.append("-include-usage")
            r = subprocess.run(cmd, capture_output=True, text=True)
            try:
                j = json.loads(r.stdout)
                out[f"{name}{' include_usage' if inc else ''}"] = {
                    "content_chunks": j.get("content_chunks_per_stream"),
                    "usage_chunk": j.get("streams_with_usage_chunk", 0) > 0, "errors": j.get("errors"),
                    "requests_sent": j.get("requests_sent", 0)}
            except ValueError:
                out[name] = {"error": r.stderr[-300:]}
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lanterna", default=os.path.join(ROOT, "build", "lanterna"))
    ap.add_argument("--rate", type=float, default=1000, help="constant-rate phases: requests/s")
    ap.add_argument("--seconds", type=float, default=15, help="measured time per phase")
    ap.add_argument("--max-seconds", type=float, default=10, help="measured time per max-throughput phase")
    ap.add_argument("--warmup", type=float, default=2, help="unmeasured load before each phase")
    ap.add_argument("--open-conns", type=int, default=128,
                    help="connections, constant-rate phases (a paced stream holds one for ~30 ms)")
    ap.add_argument("--max-conns", type=int, default=32, help="connections, max-throughput phases")
    ap.add_argument("--tokens", type=int, default=24, help="content deltas per answer")
    ap.add_argument("--ttft", type=float, default=0, help="paced fake: ms before the first content delta")
    ap.add_argument("--token-delay", type=float, default=1, help="paced fake: ms between content deltas")
    ap.add_argument("--model", default="gpt-4o-mini", help="model name in the requests (priced by both proxies)")
    ap.add_argument("--litellm-workers", type=int, default=2)
    ap.add_argument("--litellm-server", choices=("uvicorn", "gunicorn"), default="uvicorn")
    ap.add_argument("--litellm-start-timeout", type=float, default=180)
    ap.add_argument("--skip-litellm", action="store_true")
    ap.add_argument("--skip-lanterna", action="store_true")
    ap.add_argument("--tmp", default=None, help="where data dirs go (default: system temp dir)")
    ap.add_argument("--out", default=os.path.join(RESULTS, "proxy_bench.json"))
    a = ap.parse_args()
    # SIGTERM ends the run through the cleanup below (servers stopped).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))

    os.makedirs(RESULTS, exist_ok=True)
    started = time.time()
    now = dt.datetime.now().astimezone()
    loadgen = build_loadgen()
    tmp = tempfile.mkdtemp(prefix="proxy-bench-", dir=a.tmp)
    run = Run(a, loadgen)
    res = {
        "date": now.strftime("%Y-%m-%d %H:%M %Z"),
        "machine": machine_info(tmp),
        "git": (sh(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"]) +
                ("+dirty" if sh(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"]) else "")),
        "config": dict(vars(a)),
        "loadavg_start": os.getloadavg(),
    }
    log("machine: " + machine_line(res["machine"]))
    try:
        res["servers"] = start_all(a, run, tmp)
        log(f"targets: {', '.join(run.targets)}; " + "; ".join(f"{k}: {v}" for k, v in res["servers"].items()
                                                               if k.endswith("problem")))
        res["stream_check"] = check_streams(run)
        names = [n for n in ("direct", "relay", "lanterna", "litellm") if n in run.targets]

        # Maximum throughput.
        mx = {}
        for stream in (False, True):
            kind = "max, streaming" if stream else "max, non-streaming"
            for n in names:
                mx[(n, stream)] = run.phase(n, kind, stream=stream, conns=a.max_conns, seconds=a.max_seconds)

        # Constant rate: every target at --rate when it can; one that cannot
        # at the highest rate it sustains, and the others at that rate too.
        rates = {}
        for stream in (False, True):
            s = "streaming" if stream else "non-streaming"
            shared_rates = [a.rate]
            for n in names:
                r = a.rate
                if mx[(n, stream)]["requests_per_s"] < 1.05 * a.rate:
                    r = nice_rate(0.8 * mx[(n, stream)]["requests_per_s"])
                for attempt in range(5):
                    p = run.phase(n, f"{r:,.0f} req/s, {s}", stream=stream, rate=r, conns=a.open_conns)
                    p["sustained"] = sustained(p, r)
                    if p["sustained"] or r <= 1:
                        break
                    r = nice_rate(r * 0.75)
                rates[(n, stream)] = r
                if r != a.rate and r not in shared_rates:
                    shared_rates.append(r)
            for r in shared_rates[1:]:
                for n in names:
                    # Only targets that sustained a higher rate (the others
                    # were measured at their own, lower, rate already).
                    if rates[(n, stream)] > r:
                        p = run.phase(n, f"{r:,.0f} req/s, {s}", stream=stream, rate=r, conns=a.open_conns)
                        p["sustained"] = sustained(p, r)

        # Memory, spans, upstream counts.
        for n, p in run.procs.items():
            if p.mon and p.proc.poll() is None:
                res.setdefault("rss", {})[n] = proc_tree_hwm(p.mon)
        if "lanterna" in run.targets:
            run.settle()
            st = run.lanterna_stats()
            sent = sum(p.get("requests_sent", 0) for p in run.phases if p["target"] == "lanterna")
            sent += sum(v.get("requests_sent", 0) for k, v in res["stream_check"].items() if k.startswith("lanterna"))
            res["lanterna_spans"] = {"stored": (st.get("store") or {}).get("spans"),
                                     "requests_sent": sent, "writer": st.get("writer")}
        fakes = {}
        for n in ("fake", "fake-paced"):
            code, body = http_get(run.procs[n].ready_url.replace("/health", "/stats"))
            fakes[n] = json.loads(body) if code == 200 else None
        res["fake_stats"] = fakes
    finally:
        for n, p in list(run.procs.items()):
            st = p.stop()
            res.setdefault("shutdown", {})[n] = st
        if "lanterna" in run.procs:
            res["lanterna_log_tail"] = log_tail(run.procs["lanterna"].logf, 8)
        if "litellm" in run.procs:
            res["litellm_log_tail"] = [l for l in log_tail(run.procs["litellm"].logf, 40) if l.strip()][-8:]
        shutil.rmtree(tmp, ignore_errors=True)

    res["phases"] = run.phases
    res["loadavg_end"] = os.getloadavg()
    summarize(res)
    res["wall_s"] = round(time.time() - started, 1)
    with open(a.out, "w") as f:
        json.dump(res, f, indent=1)
    table, md = report(res)
    print()
    print(table)
    print(f"\nresults: {os.path.relpath(a.out, ROOT)} ({res['wall_s']:.0f} s)")
    print("\n---- markdown for docs/benchmarks.md ----\n")
    print(md)
    return 0


# --------------------------------------------------------------------------
# summary and report

def find(res, target, kind_prefix):
    for p in res["phases"]:
        if p["target"] == target and p["kind"].startswith(kind_prefix):
            return p
    return None


def added(p, d, key="latency_ms"):
    if not p or not d:
        return None
    return {k: round(p[key][k] - d[key][k], 3) for k in PCTS}


def summarize(res: dict) -> None:
    a = res["config"]
    rate = a["rate"]
    s = {"rate": rate, "added": {}, "max_rps": {}, "ratio": {}}
    kinds = sorted({p["kind"] for p in res["phases"] if "req/s" in p["kind"]},
                   key=lambda k: (("streaming" in k and "non-" not in k), -float(k.split()[0].replace(",", ""))))
    for kind in kinds:
        d = find(res, "direct", kind)
        for n in ("relay", "lanterna", "litellm"):
            p = find(res, n, kind)
            if p and d:
                e = {"latency": added(p, d), "service": added(p, d, "service_ms"), "sustained": p.get("sustained"),
                     "requests_per_s": p["requests_per_s"], "errors": p["errors"]}
                if "ttft_ms" in p:
                    e["ttft"] = added(p, d, "ttft_ms")
                s["added"].setdefault(kind, {})[n] = e
    for p in res["phases"]:
        if p["kind"].startswith("max"):
            s["max_rps"].setdefault(p["kind"], {})[p["target"]] = p["requests_per_s"]
    # Like-for-like p99 ratios LiteLLM/Lanterna at each rate both were run at.
    for kind, e in s["added"].items():
        if "lanterna" in e and "litellm" in e:
            key = "ttft" if "ttft" in e["lanterna"] else "latency"
            for k in (key,) if key == "latency" else ("latency", "ttft"):
                lp, ll = e["lanterna"][k]["p99"], e["litellm"][k]["p99"]
                s["ratio"][f"{kind} ({k})"] = {"lanterna_p99_added_ms": lp, "litellm_p99_added_ms": ll,
                                               "ratio": round(ll / lp, 1) if lp > 0.005 else None,
                                               "litellm_sustained": e["litellm"]["sustained"]}
    res["summary"] = s


def fmt(x, d=3):
    return "—" if x is None else f"{x:,.{d}f}"


def report(res: dict) -> tuple[str, str]:
    s = res["summary"]
    rows = []
    hdr = ["", "direct", "relay (floor)", "Lanterna", "LiteLLM"]

    def ph(target, kind):
        return find(res, target, kind)

    def lat_row(label, kind, key, pct):
        r = [label]
        for t in ("direct", "relay", "lanterna", "litellm"):
            p = ph(t, kind)
            if not p or key not in p:
                r.append("—")
                continue
            v = p[key][pct]
            if t == "direct":
                r.append(fmt(v))
            else:
                d = ph("direct", kind)
                r.append(f"{fmt(v)} (+{fmt(v - d[key][pct])})" if d else fmt(v))
        return r

    kinds = [k for k in s["added"]] or []
    for kind in kinds:
        stream = "streaming" in kind and "non-" not in kind
        for pct in ("p50", "p90", "p99", "p999"):
            rows.append(lat_row(f"{kind}: latency {pct} ms (added)", kind, "latency_ms", pct))
        if stream:
            for pct in ("p50", "p99"):
                rows.append(lat_row(f"{kind}: TTFT {pct} ms (added)", kind, "ttft_ms", pct))
        r = [f"{kind}: achieved req/s, errors"]
        for t in ("direct", "relay", "lanterna", "litellm"):
            p = ph(t, kind)
            r.append("—" if not p else f"{p['requests_per_s']:,.0f}, {sum(p['errors'].values()) if p['errors'] else 0}"
                     + ("" if p.get("sustained", True) else " (not sustained)"))
        rows.append(r)
    for kind in ("max, non-streaming", "max, streaming"):
        r = [f"{kind}: req/s (proxy CPU cores)"]
        for t in ("direct", "relay", "lanterna", "litellm"):
            p = ph(t, kind)
            if not p:
                r.append("—")
                continue
            cpu = p["cpu_cores"].get({"direct": "fake"}.get(t, t), 0)
            r.append(f"{p['requests_per_s']:,.0f} ({cpu:.2f})")
        rows.append(r)
        r = [f"{kind}: latency p50 / p99 ms"]
        for t in ("direct", "relay", "lanterna", "litellm"):
            p = ph(t, kind)
            r.append("—" if not p else f"{fmt(p['latency_ms']['p50'], 2)} / {fmt(p['latency_ms']['p99'], 2)}")
        rows.append(r)
    rss = res.get("rss", {})
    rows.append(["peak RSS (VmHWM, MB)", f"{rss.get('fake', {}).get('total_mb', '—')} (fake)",
                 str(rss.get("relay", {}).get("total_mb", "—")),
                 str(rss.get("lanterna", {}).get("total_mb", "—")),
                 (f"{rss['litellm']['total_mb']} ({rss['litellm']['processes']} processes)" if "litellm" in rss else "—")])
    widths = [max(len(r[i]) for r in rows + [hdr]) for i in range(len(hdr))]

    def line(c):
        return "| " + " | ".join(x.ljust(w) for x, w in zip(c, widths)) + " |"
    table = "\n".join([line(hdr), "|" + "|".join("-" * (w + 2) for w in widths) + "|"] + [line(r) for r in rows])

    tl = targets(res)
    res["targets"] = tl
    srv = res.get("servers", {})
    md = [f"Measured {res['date']} on {machine_line(res['machine'])}; Lanterna "
          f"{srv.get('lanterna', {}).get('version', '—')} (git {res.get('git')}), LiteLLM "
          f"{srv.get('litellm', {}).get('version', '—')}. Load average at start "
          f"{res['loadavg_start'][0]:.1f}.", "", table, "", "Ratios of added p99 (LiteLLM / Lanterna):", ""]
    for k, v in s["ratio"].items():
        md.append(f"- {k}: {fmt(v['litellm_p99_added_ms'])} / {fmt(v['lanterna_p99_added_ms'])} ms = "
                  f"{v['ratio'] if v['ratio'] is not None else 'n/a'}×"
                  + ("" if v["litellm_sustained"] else " (LiteLLM did not sustain this rate)"))
    ls = res.get("lanterna_spans")
    if ls:
        md += ["", f"Lanterna spans stored at the end: {ls['stored']:,} for {ls['requests_sent']:,} requests sent "
               "through it (warm-up included)."]
    md += ["", "Targets:", ""] + [f"- {t['what']}: {t['measured']} — **{'met' if t['met'] else 'not met'}**"
                                  + (f" ({t['floor']})" if t.get("floor") else "") for t in tl]
    return table, "\n".join(md)


def targets(res: dict) -> list[dict]:
    s, out = res["summary"], []
    rate = s["rate"]
    ns = s["added"].get(f"{rate:,.0f} req/s, non-streaming", {}).get("lanterna")
    st = s["added"].get(f"{rate:,.0f} req/s, streaming", {}).get("lanterna")
    if ns:
        out.append({"what": f"added latency p50 < 0.3 ms at {rate:,.0f} req/s (non-streaming)",
                    "measured": f"{ns['latency']['p50']:+.3f} ms", "met": ns["latency"]["p50"] < TARGETS["added_p50_ms"]})
        out.append({"what": f"added latency p99 < 2 ms at {rate:,.0f} req/s (non-streaming)",
                    "measured": f"{ns['latency']['p99']:+.3f} ms", "met": ns["latency"]["p99"] < TARGETS["added_p99_ms"]})
    fl = s["added"].get(f"{rate:,.0f} req/s, streaming", {}).get("relay")
    if st:
        out.append({"what": f"TTFT added < 1 ms at {rate:,.0f} req/s (streaming; p50 / p99)",
                    "measured": f"{st['ttft']['p50']:+.3f} / {st['ttft']['p99']:+.3f} ms",
                    "met": st["ttft"]["p99"] < TARGETS["ttft_added_ms"],
                    "floor": (f"a bare relay adds {fl['ttft']['p50']:+.3f} / {fl['ttft']['p99']:+.3f} ms" if fl else None)})
    m = s["max_rps"].get("max, non-streaming", {}).get("lanterna")
    if m is not None:
        out.append({"what": "≥ 10,000 non-streaming req/s", "measured": f"{m:,.0f} req/s",
                    "met": m >= TARGETS["max_rps"]})
    r = res.get("rss", {}).get("lanterna")
    if r:
        out.append({"what": "RSS < 100 MB", "measured": f"{r['total_mb']:.0f} MB peak",
                    "met": r["total_mb"] < TARGETS["rss_mb"]})
    ratios = [v for v in s["ratio"].values() if v["ratio"] is not None and v["litellm_sustained"]]
    if ratios:
        worst = min(ratios, key=lambda v: v["ratio"])
        out.append({"what": "p99 overhead ≥ 20× lower than LiteLLM (worst like-for-like ratio)",
                    "measured": f"{worst['ratio']}×", "met": worst["ratio"] >= TARGETS["ratio_vs_litellm"]})
    return out


if __name__ == "__main__":
    sys.exit(main())
