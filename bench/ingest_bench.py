#!/usr/bin/env python3
"""Ingest benchmark: Lanterna vs Arize Phoenix, same payloads, same load, one run.

Run through `make bench` or directly:

    bash scripts/deps-bench.sh && .venv-bench/bin/python bench/ingest_bench.py

Steps:
  1. Pre-generate the payloads (bench/gen_payloads.py; cached under
     bench/results/payloads-*) and build the Go load generator (bench/loadgen).
  2. Lanterna (build/lanterna, fresh data dir), once per durability mode
     (default, and `--durability process` when the binary has that flag):
       a. max throughput: closed loop, K keep-alive connections, fixed duration;
       b. latency at half that rate: open loop (scheduled sends, latency from
          the scheduled time);
       c. server peak RSS (VmHWM), CPU (utime+stime / wall) per phase;
       d. stored span count (sqlite3 on <data>/lanterna.db) == acknowledged;
       e. SIGTERM: clean exit, count again.
  3. Arize Phoenix (.venv-bench, default SQLite, fresh PHOENIX_WORKING_DIR):
       a. stored throughput: send a fixed batch as fast as it acknowledges,
          then wait until its span count stops growing; spans stored / time
          until stored (Phoenix answers 200 before it stores anything);
       b. acknowledged throughput and latency at half rate as for Lanterna;
       c. SIGTERM: how many acknowledged spans were never stored.
  4. Prints a table, writes bench/results/ingest-<date>.json and prints the
     markdown block for docs/benchmarks.md.

The whole run takes about 4-5 minutes with the defaults.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
import gen_payloads  # noqa: E402

RESULTS = os.path.join(ROOT, "bench", "results")
CLK_TCK = os.sysconf("SC_CLK_TCK")
TARGETS = {"spans_per_s": 100_000, "p99_half_ms": 50.0, "rss_mb": 150.0, "ratio_vs_phoenix": 50.0}


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# machine and tools

def sh(cmd: list[str], **kw) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30, **kw).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


def machine_info(data_dir: str) -> dict:
    cpu, fam, model, virt = "unknown", "?", "?", ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            k, _, v = line.partition(":")
            k, v = k.strip(), v.strip()
            if k == "model name" and cpu == "unknown":
                cpu = v
            elif k == "cpu family":
                fam = v
            elif k == "model":
                model = v
            elif k == "flags" and " hypervisor" in " " + v:
                virt = "virtual machine"
            elif k == "processor" and v != "0":
                break
    cpu = f"{cpu} (family {fam} model {model}{', ' + virt if virt else ''})"
    mem_kb = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    disk = {}
    try:
        src = sh(["df", "-h", "--output=source,fstype,size", data_dir]).splitlines()[-1].split()
        dev = os.path.basename(src[0])
        base = dev.rstrip("0123456789") if not dev.startswith("nvme") else dev.rsplit("p", 1)[0]
        rot = open(f"/sys/block/{base}/queue/rotational").read().strip() if os.path.exists(f"/sys/block/{base}/queue/rotational") else "?"
        model = ""
        for p in (f"/sys/block/{base}/device/model", f"/sys/block/{base}/device/vendor"):
            if os.path.exists(p):
                model = (model + " " + open(p).read().strip()).strip()
        if model == "0x1af4" or (not model and base.startswith("vd")):
            model = "virtio block device"
        disk = {"device": src[0], "fstype": src[1], "size": src[2], "model": model or "unknown",
                "rotational_flag": rot}
    except (IndexError, OSError):
        pass
    return {
        "cpu_model": cpu, "cores": os.cpu_count(), "ram_gib": round(mem_kb / 1024 / 1024, 1),
        "disk": disk, "kernel": platform.release(),
        "os": sh(["sh", "-c", ". /etc/os-release && echo $PRETTY_NAME"]),
        "sqlite": sh(["sqlite3", "--version"]).split(" ")[0],
        "python": platform.python_version(),
    }


def machine_line(m: dict) -> str:
    d = m.get("disk", {})
    return (f"{m['cpu_model']}, {m['cores']} cores, {m['ram_gib']} GiB RAM, "
            f"disk {d.get('device', '?')} ({d.get('model', '?')}, {d.get('fstype', '?')}, {d.get('size', '?')}), "
            f"{m['os']}, kernel {m['kernel']}")


def find_go() -> str:
    for g in (shutil.which("go"), "/usr/local/go/bin/go", "/usr/lib/go/bin/go"):
        if g and os.path.exists(g):
            return g
    sys.exit("bench: no Go toolchain (run scripts/deps-bench.sh)")


def build_loadgen() -> str:
    out = os.path.join(ROOT, "build", "bench", "loadgen")
    src = os.path.join(ROOT, "bench", "loadgen")
    newest = max(os.path.getmtime(os.path.join(src, f)) for f in os.listdir(src))
    if not os.path.exists(out) or os.path.getmtime(out) < newest:
        os.makedirs(os.path.dirname(out), exist_ok=True)
        env = dict(os.environ, CGO_ENABLED="0")
        env.setdefault("GOCACHE", os.path.join(ROOT, "build", "bench", "gocache"))
        r = subprocess.run([find_go(), "build", "-o", out, "."], cwd=src, env=env,
                           capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit("bench: go build failed:\n" + r.stderr)
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url: str, timeout: float = 2.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except (OSError, urllib.error.URLError):
        return 0, b""


# --------------------------------------------------------------------------
# process monitoring (/proc)

def _children(pid: int) -> list[int]:
    out = []
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            out = [int(x) for x in f.read().split()]
    except OSError:
        pass
    for c in list(out):
        out += _children(c)
    return out


def _status(pid: int, key: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _cpu_ticks(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat") as f:
            parts = f.read().rsplit(")", 1)[1].split()
        return int(parts[11]) + int(parts[12])  # utime, stime (fields 14, 15)
    except (OSError, IndexError, ValueError):
        return 0


class Monitor:
    """Samples RSS of a process tree; reads CPU and VmHWM on demand; optional
    counter sampled with timestamps (Phoenix's stored span count)."""

    def __init__(self, pid: int, counter=None, interval: float = 0.25, count_interval: float = 1.0):
        self.pid, self.counter = pid, counter
        self.interval, self.count_interval = interval, count_interval
        self.rss_max_kb = 0
        self.phase_rss_max_kb = 0
        self.counts: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def pids(self) -> list[int]:
        return [self.pid] + _children(self.pid)

    def _run(self) -> None:
        next_count = 0.0
        while not self._stop.is_set():
            rss = sum(_status(p, "VmRSS") for p in self.pids())
            self.rss_max_kb = max(self.rss_max_kb, rss)
            self.phase_rss_max_kb = max(self.phase_rss_max_kb, rss)
            now = time.time()
            if self.counter and now >= next_count:
                c = self.counter()
                if c is not None:
                    self.counts.append((now, c))
                next_count = now + self.count_interval
            self._stop.wait(self.interval)

    def cpu_s(self) -> float:
        return sum(_cpu_ticks(p) for p in self.pids()) / CLK_TCK

    def hwm_mb(self) -> float:
        return round(sum(_status(p, "VmHWM") for p in self.pids()) / 1024, 1)

    def stop(self) -> None:
        self._stop.set()
        self._t.join(timeout=5)


def sqlite_count(db: str, table: str = "spans") -> int | None:
    if not os.path.exists(db):
        return None
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
        try:
            return con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error:
        out = sh(["sqlite3", "-readonly", "-cmd", ".timeout 10000", db, f"SELECT count(*) FROM {table}"])
        return int(out) if out.isdigit() else None


def dir_bytes(path: str) -> int:
    total = 0
    for dp, _, fs in os.walk(path):
        for f in fs:
            try:
                total += os.path.getsize(os.path.join(dp, f))
            except OSError:
                pass
    return total


# --------------------------------------------------------------------------
# load phases

class Bench:
    def __init__(self, args, loadgen: str, payload_dir: str):
        self.args, self.loadgen, self.payload_dir = args, loadgen, payload_dir

    def run_loadgen(self, url: str, *, conns: int, duration: float = 0, rate: float = 0,
                    requests: int = 0, id_seed: int) -> dict:
        cmd = [self.loadgen, "-url", url, "-dir", self.payload_dir, "-conns", str(conns),
               "-duration", f"{duration}s", "-id-seed", str(id_seed),
               "-timeout", f"{self.args.request_timeout}s"]
        if rate:
            cmd += ["-rate", str(rate)]
        if requests:
            cmd += ["-requests", str(requests)]
        if self.args.quiet:
            cmd += ["-quiet"]
        r = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"loadgen failed ({r.returncode})")
        return json.loads(r.stdout)

    def phase(self, mon: Monitor, name: str, url: str, **kw) -> dict:
        mon.phase_rss_max_kb = 0
        c0, t0 = mon.cpu_s(), time.time()
        res = self.run_loadgen(url, **kw)
        c1, t1 = mon.cpu_s(), time.time()
        res["phase"] = name
        res["server_cpu_s"] = round(c1 - c0, 2)
        res["server_cpu_cores"] = round((c1 - c0) / (t1 - t0), 2)
        res["server_rss_max_mb"] = round(mon.phase_rss_max_kb / 1024, 1)
        return res


def summarize_phase(p: dict) -> str:
    lat = p["latency_ms"]
    return (f"{p['phase']}: {p['spans_per_s']:,.0f} spans/s acked, p50 {lat['p50']:.1f} ms, "
            f"p99 {lat['p99']:.1f} ms, max {lat['max']:.1f} ms, errors {p['errors'] or 'none'}, "
            f"server CPU {p['server_cpu_cores']:.2f} cores, RSS max {p['server_rss_max_mb']:.0f} MB")


def stop_process(proc: subprocess.Popen, timeout: float) -> dict:
    t0 = time.time()
    if proc.poll() is not None:
        return {"signal": None, "exit_code": proc.returncode, "note": "had already exited"}
    proc.send_signal(signal.SIGTERM)
    try:
        rc = proc.wait(timeout=timeout)
        return {"signal": "SIGTERM", "exit_code": rc, "shutdown_s": round(time.time() - t0, 2)}
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return {"signal": "SIGTERM then SIGKILL", "exit_code": proc.returncode,
                "shutdown_s": round(time.time() - t0, 2), "note": f"did not exit within {timeout}s"}


def log_tail(path: str, n: int = 15) -> list[str]:
    try:
        with open(path, errors="replace") as f:
            return [l.rstrip("\n") for l in f.readlines()[-n:]]
    except OSError:
        return []


# --------------------------------------------------------------------------
# Lanterna

def lanterna_modes(binary: str) -> list[tuple[str, list[str]]]:
    modes = [("lanterna", [])]  # the default: --durability full
    helptext = sh([binary, "serve", "--help"]) + sh([binary, "help", "serve"])
    if "--durability" in helptext:
        modes[0] = ("lanterna (durability full)", [])
        modes.append(("lanterna (durability process)", ["--durability", "process"]))
    return modes


def run_lanterna(b: Bench, label: str, extra: list[str]) -> dict:
    a = b.args
    binary = os.path.abspath(a.lanterna)
    data = tempfile.mkdtemp(prefix="lanterna-bench-", dir=a.tmp)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    url = base + "/v1/traces"
    logf = os.path.join(RESULTS, "logs", "".join(c if c.isalnum() else "_" for c in label).strip("_") + ".log")
    os.makedirs(os.path.dirname(logf), exist_ok=True)
    cmd = [binary, "serve", "--listen", f"127.0.0.1:{port}", "--data", data] + extra
    log(f"{label}: starting {' '.join(cmd)}")
    out = {"name": label, "command": " ".join(cmd), "log": os.path.relpath(logf, ROOT), "problems": []}
    with open(logf, "w") as lf:
        proc = subprocess.Popen(cmd, stdout=lf, stderr=subprocess.STDOUT, cwd=data)
    try:
        t0 = time.time()
        while time.time() - t0 < 30:
            if proc.poll() is not None:
                out["problems"].append(f"exited during start-up with code {proc.returncode}")
                out["log_tail"] = log_tail(logf)
                return out
            if http_get(base + "/readyz")[0] == 200:
                break
            time.sleep(0.1)
        else:
            out["problems"].append("not ready after 30 s")
            out["log_tail"] = log_tail(logf)
            stop_process(proc, 5)
            return out
        out["startup_s"] = round(time.time() - t0, 2)
        mon = Monitor(proc.pid)
        phases = []
        p1 = b.phase(mon, "max (closed loop)", url, conns=a.conns, duration=a.seconds, id_seed=1)
        phases.append(p1)
        log(f"{label}: " + summarize_phase(p1))
        if proc.poll() is not None:
            out["problems"].append(f"crashed during the max-throughput phase (exit {proc.returncode})")
        elif p1["spans_per_s"] > 0:
            half = p1["spans_per_s"] / 2
            p2 = b.phase(mon, f"half rate (open loop, {half:,.0f} spans/s)", url,
                         conns=a.open_conns, duration=a.rate_seconds, rate=half, id_seed=2)
            phases.append(p2)
            log(f"{label}: " + summarize_phase(p2))
            if proc.poll() is not None:
                out["problems"].append(f"crashed during the half-rate phase (exit {proc.returncode})")
        out["phases"] = phases
        acked = sum(p["spans_ok"] for p in phases)
        out["acked_spans"] = acked
        if proc.poll() is None:
            out["rss_peak_mb"] = mon.hwm_mb()
            out["cpu_total_s"] = round(mon.cpu_s(), 2)
        mon.stop()
        dbs = [os.path.join(data, "lanterna.db")] + [os.path.join(data, f) for f in sorted(os.listdir(data)) if f.endswith(".db")]
        db = next((d for d in dbs if os.path.exists(d)), None)
        out["db"] = db
        stored_live = sqlite_count(db) if db else None
        out["stored_spans_live"] = stored_live
        stop = stop_process(proc, 60)
        out["shutdown"] = stop
        if stop.get("exit_code") not in (0,):
            out["problems"].append(f"shutdown: {stop}")
        stored = sqlite_count(db) if db else None
        out["stored_spans_after_exit"] = stored
        out["data_bytes"] = dir_bytes(data)
        if stored is not None and acked:
            out["data_bytes_per_span"] = round(out["data_bytes"] / stored) if stored else None
        if stored is None:
            out["problems"].append(f"could not count stored spans in {db}")
        elif stored < acked:
            out["problems"].append(f"LOST: {acked - stored} acknowledged spans are not stored "
                                   f"(acked {acked}, stored {stored})")
        out["stored_equals_acked"] = stored == acked
        errs = {}
        for p in phases:
            for k, v in p["errors"].items():
                errs[k] = errs.get(k, 0) + v
        if errs:
            out["problems"].append(f"errors under load: {errs}")
        out["log_tail"] = log_tail(logf)
        return out
    finally:
        if proc.poll() is None:
            stop_process(proc, 10)
        if not a.keep_data:
            shutil.rmtree(data, ignore_errors=True)


# --------------------------------------------------------------------------
# Phoenix

class PhoenixInstance:
    """One Phoenix server on a fresh working dir (default SQLite storage)."""

    def __init__(self, b: Bench, tag: str):
        a = b.args
        self.phoenix = os.path.join(os.path.dirname(sys.executable), "phoenix")
        self.wd = tempfile.mkdtemp(prefix="phoenix-bench-", dir=a.tmp)
        port = a.phoenix_port or free_port()
        self.base = f"http://127.0.0.1:{port}"
        self.url = self.base + "/v1/traces"
        self.db = os.path.join(self.wd, "phoenix.db")
        self.logf = os.path.join(RESULTS, "logs", f"phoenix-{tag}.log")
        os.makedirs(os.path.dirname(self.logf), exist_ok=True)
        self.env = dict(os.environ, PHOENIX_WORKING_DIR=self.wd, PHOENIX_PORT=str(port),
                        PHOENIX_HOST="127.0.0.1", PHOENIX_GRPC_PORT=str(free_port()),
                        PHOENIX_TELEMETRY_ENABLED="false", PHOENIX_ALLOW_EXTERNAL_RESOURCES="false")
        self.keep = a.keep_data
        self.proc = None
        self.mon = None

    def start(self) -> str | None:
        log(f"phoenix: starting on {self.base} (PHOENIX_WORKING_DIR={self.wd})")
        with open(self.logf, "w") as lf:
            self.proc = subprocess.Popen([self.phoenix, "serve"], stdout=lf, stderr=subprocess.STDOUT,
                                         env=self.env, cwd=self.wd)
        t0 = time.time()
        while time.time() - t0 < 120:
            if self.proc.poll() is not None:
                return f"exited during start-up with code {self.proc.returncode}: {log_tail(self.logf, 5)}"
            if http_get(self.base + "/readyz")[0] == 200:
                self.startup_s = round(time.time() - t0, 2)
                self.mon = Monitor(self.proc.pid, counter=lambda: sqlite_count(self.db), count_interval=1.0)
                return None
            time.sleep(0.5)
        return "not ready after 120 s"

    def stop(self, acked: int) -> dict:
        out = {"stored_before_shutdown": sqlite_count(self.db) or 0}
        if self.mon:
            out["rss_peak_mb"] = self.mon.hwm_mb()
            out["cpu_s"] = round(self.mon.cpu_s(), 2)
            self.mon.stop()
        out["shutdown"] = stop_process(self.proc, 60)
        out["stored_after_exit"] = sqlite_count(self.db) or 0
        out["acked"] = acked
        out["acked_never_stored"] = acked - out["stored_after_exit"]
        out["data_bytes"] = dir_bytes(self.wd)
        out["log"] = os.path.relpath(self.logf, ROOT)
        out["log_tail"] = [l for l in log_tail(self.logf, 400) if "POST /v1/traces" not in l][-6:]
        return out

    def cleanup(self) -> None:
        if self.proc and self.proc.poll() is None:
            stop_process(self.proc, 10)
        if self.mon:
            self.mon.stop()
        if not self.keep:
            shutil.rmtree(self.wd, ignore_errors=True)


def run_phoenix(b: Bench) -> dict:
    """Instance 1: stored-throughput batch, then the max (closed-loop) phase.
    Instance 2 (fresh, so the backlog of instance 1 does not turn the whole
    phase into 503s): the half-rate open-loop phase."""
    a = b.args
    version = sh([sys.executable, "-c", "import importlib.metadata as m; print(m.version('arize-phoenix'))"])
    out = {"name": "phoenix", "version": version, "problems": [], "phases": [], "instances": []}
    if not os.path.exists(os.path.join(os.path.dirname(sys.executable), "phoenix")):
        out["problems"].append("phoenix not installed in this interpreter's env (run scripts/deps-bench.sh)")
        return out
    log(f"phoenix {version}")

    px = PhoenixInstance(b, "1")
    try:
        err = px.start()
        if err:
            out["problems"].append(err)
            return out
        out["startup_s"] = px.startup_s
        out["command"] = f"PHOENIX_WORKING_DIR=<fresh dir> {px.phoenix} serve"
        # (a) stored throughput: a fixed batch, then wait until all of it is stored.
        n_req = a.phoenix_store_requests
        t_start = time.time()
        p0 = b.phase(px.mon, f"stored throughput ({n_req} requests, closed loop)", px.url,
                     conns=a.conns, requests=n_req, id_seed=11)
        out["phases"].append(p0)
        log("phoenix: " + summarize_phase(p0) + "; waiting until its span count stops growing")
        target = p0["spans_ok"]
        last_c, last_change, deadline = -1, time.time(), t_start + a.phoenix_store_wait
        while time.time() < deadline and px.proc.poll() is None:
            c = sqlite_count(px.db) or 0
            if c != last_c:
                last_c, last_change = c, time.time()
            if c >= target or time.time() - last_change > 15:
                break
            time.sleep(0.5)
        stored = sqlite_count(px.db) or 0
        t_done = last_change if stored == last_c else time.time()
        elapsed = max(1e-6, t_done - t_start)
        out["store_test"] = {
            "acked_spans": target, "stored_spans": stored, "ack_window_s": p0["window_s"],
            "time_until_stored_s": round(elapsed, 1), "complete": stored >= target,
            "stored_spans_per_s": round(stored / elapsed, 1),
            "timeline": [(round(t - t_start, 1), c) for t, c in px.mon.counts if t >= t_start],
        }
        log(f"phoenix: stored {stored}/{target} spans in {elapsed:.1f}s = {stored / elapsed:,.0f} spans/s stored"
            + ("" if stored >= target else f" (stopped waiting after {a.phoenix_store_wait:.0f}s)"))
        if stored < target:
            out["problems"].append(f"stored-throughput batch: only {stored} of {target} spans stored "
                                   f"after {elapsed:.0f}s")
        # (b) acknowledged max.
        t_ack = time.time()
        p1 = b.phase(px.mon, "max (closed loop)", px.url, conns=a.conns, duration=a.seconds, id_seed=12)
        out["phases"].append(p1)
        log("phoenix: " + summarize_phase(p1))
        stored_after = sqlite_count(px.db) or 0
        out["stored_during_load_spans_per_s"] = round((stored_after - stored) / (time.time() - t_ack), 1)
        inst = px.stop(p0["spans_ok"] + p1["spans_ok"])
        out["instances"].append(inst)
    finally:
        px.cleanup()

    if p1["spans_per_s"] > 0:
        px = PhoenixInstance(b, "2")
        try:
            err = px.start()
            if err:
                out["problems"].append("second instance: " + err)
            else:
                half = p1["spans_per_s"] / 2
                p2 = b.phase(px.mon, f"half rate (open loop, {half:,.0f} spans/s)", px.url,
                             conns=a.open_conns, duration=a.rate_seconds, rate=half, id_seed=13)
                out["phases"].append(p2)
                log("phoenix: " + summarize_phase(p2))
                out["instances"].append(px.stop(p2["spans_ok"]))
        finally:
            px.cleanup()

    insts = out["instances"]
    out["acked_spans"] = sum(i["acked"] for i in insts)
    out["stored_spans_after_exit"] = sum(i["stored_after_exit"] for i in insts)
    out["acked_never_stored"] = out["acked_spans"] - out["stored_spans_after_exit"]
    out["stored_equals_acked"] = out["acked_never_stored"] == 0
    out["rss_peak_mb"] = max((i.get("rss_peak_mb", 0) for i in insts), default=None)
    out["data_bytes"] = sum(i["data_bytes"] for i in insts)
    if out["acked_never_stored"] > 0:
        out["problems"].append(
            f"{out['acked_never_stored']:,} of {out['acked_spans']:,} acknowledged spans were never stored "
            "(Phoenix answers 200 before storing; on SIGTERM it drains for 5 s and drops the rest)")
    return out

# --------------------------------------------------------------------------
# report

def fmt_n(x, d=0):
    if x is None:
        return "—"
    return f"{x:,.{d}f}"


def report(res: dict) -> tuple[str, str]:
    runs = res["runs"]
    cols = [r["name"] for r in runs]

    def ph(r, i):
        ps = r.get("phases") or []
        if r["name"] == "phoenix":
            i += 1  # phase 0 is the stored-throughput batch
        return ps[i] if len(ps) > i else None

    def row(label, f):
        vals = []
        for r in runs:
            try:
                vals.append(f(r))
            except (KeyError, TypeError, IndexError):
                vals.append("—")
        return [label] + vals

    def ms(p, *keys):
        v = [p["latency_ms"][k] for k in keys]
        return " / ".join("—" if x < 0 else f"{x:,.1f}" for x in v)

    def errs(p):
        return ", ".join(f"{k}: {v:,}" for k, v in sorted(p["errors"].items())) or "0"

    rows = [
        row("spans/s acknowledged (max, closed loop)", lambda r: fmt_n(ph(r, 0)["spans_per_s"])),
        row("spans/s stored", lambda r: fmt_n(r["store_test"]["stored_spans_per_s"]) if r["name"] == "phoenix"
            else fmt_n(ph(r, 0)["spans_per_s"]) + " (200 = committed)"),
        row("spans/s stored during the max phase", lambda r: fmt_n(r["stored_during_load_spans_per_s"], 1)
            if r["name"] == "phoenix" else "= acknowledged"),
        row("MB/s of OTLP protobuf accepted (max)", lambda r: fmt_n(ph(r, 0)["mb_per_s_sent"], 1)),
        row("request latency p50 / p99 / max at max rate (ms)", lambda r: ms(ph(r, 0), "p50", "p99", "max")),
        row("errors at max rate", lambda r: errs(ph(r, 0))),
        row("half-rate target (spans/s, open loop)", lambda r: fmt_n(ph(r, 1)["target_rate_spans_per_s"])),
        row("spans/s acknowledged at half rate", lambda r: fmt_n(ph(r, 1)["spans_per_s"])),
        row("request latency p50 / p99 / max at half rate (ms)", lambda r: ms(ph(r, 1), "p50", "p99", "max")),
        row("errors at half rate", lambda r: errs(ph(r, 1))),
        row("server CPU at max / half rate (cores of 2)",
            lambda r: f"{ph(r, 0)['server_cpu_cores']:.2f} / {ph(r, 1)['server_cpu_cores']:.2f}"),
        row("load generator CPU at max (cores, same machine)",
            lambda r: f"{ph(r, 0)['loadgen_cpu_s'] / ph(r, 0)['window_s']:.2f}"),
        row("server peak RSS (VmHWM, MB)", lambda r: fmt_n(r["rss_peak_mb"])),
        row("acknowledged / stored spans (after exit)",
            lambda r: f"{fmt_n(r['acked_spans'])} / {fmt_n(r['stored_spans_after_exit'])}"),
        row("disk per stored span (bytes)", lambda r: fmt_n(r["data_bytes"] / max(1, r["stored_spans_after_exit"]))),
    ]
    widths = [max(len(x[i]) for x in rows + [["metric"] + cols]) for i in range(len(cols) + 1)]

    def line(cells):
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"
    table = "\n".join([line(["metric"] + cols), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
                      + [line(r) for r in rows])

    t = res.get("targets", {})
    tl = []
    for k, v in t.items():
        tl.append(f"- {v['what']}: {v['measured']} — **{'met' if v['met'] else 'not met'}**"
                  if v.get("met") is not None else f"- {v['what']}: not measured")
    p = res["payloads"]
    md = "\n".join([
        f"Measured {res['date']} on {machine_line(res['machine'])}; Lanterna {res.get('lanterna_version') or '—'} "
        f"(git {res.get('git', '?')}), Arize Phoenix {res.get('phoenix_version') or '—'}.",
        "",
        f"Payloads: {p['count']} distinct requests, {p['total_spans']:,} spans in {p['total_traces']:,} traces, "
        f"{p['mean_span_bytes']:.0f} bytes of protobuf per span on average (~{p['total_bytes'] / p['count'] / 1e6:.1f} MB per request); "
        f"closed loop over {res['config']['conns']} connections for {res['config']['seconds']} s, "
        f"open loop over {res['config']['open_conns']} connections for {res['config']['rate_seconds']} s.",
        "",
        table, "", "Targets:", *tl,
    ])
    return table, md


def evaluate(res: dict) -> None:
    lant = next((r for r in res["runs"] if r["name"].startswith("lanterna") and r.get("phases")), None)
    phx = next((r for r in res["runs"] if r["name"] == "phoenix" and r.get("store_test")), None)
    t = {}
    if lant:
        mx = lant["phases"][0]["spans_per_s"]
        t["throughput"] = {"what": "≥ 100,000 spans/s acknowledged after commit",
                           "measured": f"{mx:,.0f} spans/s", "met": mx >= TARGETS["spans_per_s"] and lant.get("stored_equals_acked", False)}
        if len(lant["phases"]) > 1:
            p99 = lant["phases"][1]["latency_ms"]["p99"]
            t["p99"] = {"what": "p99 request latency < 50 ms at half the max rate",
                        "measured": f"{p99:.1f} ms at {lant['phases'][1]['target_rate_spans_per_s']:,.0f} spans/s",
                        "met": 0 <= p99 < TARGETS["p99_half_ms"] and not lant["phases"][1]["errors"]}
        if lant.get("rss_peak_mb") is not None:
            t["rss"] = {"what": "RSS < 150 MB", "measured": f"{lant['rss_peak_mb']:.0f} MB peak",
                        "met": lant["rss_peak_mb"] < TARGETS["rss_mb"]}
        if phx:
            ps = phx["store_test"]["stored_spans_per_s"]
            ratio = mx / ps if ps else None
            res["ratio_stored_vs_phoenix_stored"] = round(ratio, 1) if ratio else None
            pa = phx["phases"][1]["spans_per_s"] if len(phx["phases"]) > 1 else None
            res["ratio_acked_vs_phoenix_acked"] = round(mx / pa, 1) if pa else None
            t["ratio"] = {"what": "≥ 50× Phoenix (spans/s stored)",
                          "measured": f"{ratio:,.0f}× ({mx:,.0f} vs {ps:,.0f} spans/s stored); "
                                      f"{res['ratio_acked_vs_phoenix_acked'] or '—'}× on acknowledged spans/s",
                          "met": ratio is not None and ratio >= TARGETS["ratio_vs_phoenix"]}
        t["no_loss"] = {"what": "every acknowledged span stored",
                        "measured": f"acked {lant['acked_spans']:,}, stored {fmt_n(lant.get('stored_spans_after_exit'))}",
                        "met": bool(lant.get("stored_equals_acked"))}
    res["targets"] = t


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lanterna", default=os.path.join(ROOT, "build", "lanterna"))
    ap.add_argument("--seconds", type=float, default=20, help="closed-loop (max) phase length")
    ap.add_argument("--rate-seconds", type=float, default=15, help="open-loop (half rate) phase length")
    ap.add_argument("--conns", type=int, default=8, help="connections, closed loop")
    ap.add_argument("--open-conns", type=int, default=16, help="connections, open loop")
    ap.add_argument("--payloads", type=int, default=100, help="distinct pre-generated requests")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--request-timeout", type=float, default=60)
    ap.add_argument("--phoenix-store-requests", type=int, default=20,
                    help="requests (~500 spans each) in Phoenix's stored-throughput batch")
    ap.add_argument("--phoenix-store-wait", type=float, default=150,
                    help="longest wait for Phoenix to store that batch (s)")
    ap.add_argument("--phoenix-port", type=int, default=0, help="default: a free port")
    ap.add_argument("--skip-lanterna", action="store_true")
    ap.add_argument("--skip-phoenix", action="store_true")
    ap.add_argument("--tmp", default=None, help="where data dirs go (default: system temp dir)")
    ap.add_argument("--keep-data", action="store_true")
    ap.add_argument("--quiet", action="store_true", help="no per-second progress")
    ap.add_argument("--out", default=None, help="result JSON (default bench/results/ingest-<date>.json)")
    a = ap.parse_args()

    os.makedirs(RESULTS, exist_ok=True)
    started = time.time()
    now = dt.datetime.now().astimezone()
    pdir = os.path.join(RESULTS, f"payloads-s{a.seed}-n{a.payloads}")
    log(f"payloads: {pdir}")
    manifest = gen_payloads.ensure(pdir, a.payloads, a.seed)
    loadgen = build_loadgen()
    b = Bench(a, loadgen, pdir)
    res = {
        "date": now.strftime("%Y-%m-%d %H:%M %Z"),
        "machine": machine_info(a.tmp or tempfile.gettempdir()),
        "git": (sh(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"]) +
                ("+dirty" if sh(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"]) else "")),
        "config": {k: v for k, v in vars(a).items()},
        "payloads": {k: v for k, v in manifest.items() if k != "files"},
        "runs": [],
    }
    log("machine: " + machine_line(res["machine"]))

    if not a.skip_lanterna:
        if not os.access(a.lanterna, os.X_OK):
            log(f"{a.lanterna} not found: skipping Lanterna (build it with `make`)")
            res["lanterna_missing"] = True
        else:
            v = sh([a.lanterna, "version"])
            res["lanterna_version"] = v.splitlines()[0].replace("lanterna ", "") if v else ""
            for label, extra in lanterna_modes(a.lanterna):
                res["runs"].append(run_lanterna(b, label, extra))
    if not a.skip_phoenix:
        r = run_phoenix(b)
        res["phoenix_version"] = r.get("version")
        res["runs"].append(r)

    evaluate(res)
    res["wall_s"] = round(time.time() - started, 1)
    table, md = report(res)
    out = a.out or os.path.join(RESULTS, f"ingest-{now.strftime('%Y%m%d-%H%M%S')}.json")
    with open(out, "w") as f:
        json.dump(res, f, indent=1)
    print()
    print(table)
    print()
    for r in res["runs"]:
        for pr in r.get("problems", []):
            print(f"PROBLEM [{r['name']}]: {pr}")
    print(f"\nresults: {os.path.relpath(out, ROOT)} ({res['wall_s']:.0f} s)")
    print("\n---- markdown for docs/benchmarks.md ----\n")
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
