"""Rollup benchmark: a 30-day dashboard query over 10 million spans.

Seeds a store with SPANS spans over the last 30 days (RAG traces of five
spans: chain, retriever, two LLM calls, tool) through the store's real write
path, starts the real server on it, and times the dashboard query

    GET /api/v1/metrics?interval=1h&group_by=model&kind=LLM
        &metrics=latency p50/p95/p99, TTFT p50/p95/p99, cost

answered from rollups, against the same answer computed exactly from the
raw spans (a scan of the spans table plus sorting, in C: the best a
raw-span query can do). Then checks every percentile the API returned
against the exact one: at most 1% relative error.

    python bench/rollup_bench.py            # make bench runs it
    ROLLUP_BENCH_SPANS=1000000 python bench/rollup_bench.py

The seeded store is cached under bench/results/ (keyed by span count and
the schema) since seeding takes minutes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from ingest_bench import machine_info, machine_line  # noqa: E402

BIN = os.environ.get("LANTERNA_BIN", os.path.join(ROOT, "build", "lanterna"))
TOOL = os.path.join(ROOT, "build", "bench", "rollup_tool")
SPANS = int(os.environ.get("ROLLUP_BENCH_SPANS", "10000000"))
RUNS = 30
RAW_RUNS = 3
FIGS = ["latency_p50_ms", "latency_p95_ms", "latency_p99_ms", "ttft_p50_ms", "ttft_p95_ms", "ttft_p99_ms"]


def schema_key() -> str:
    h = hashlib.sha256()
    for p in ("src/store/sqlite.c", "src/store/sqlite_rollup.c", "bench/rollup_tool.c", "src/pipeline/sketch.c"):
        h.update(open(os.path.join(ROOT, p), "rb").read())
    return h.hexdigest()[:12]


def seed() -> tuple[str, dict]:
    data = os.path.join(HERE, "results", f"rollup-{SPANS}")
    marker = os.path.join(data, f"seeded-{schema_key()}.json")
    if os.path.exists(marker):
        return data, json.load(open(marker))
    shutil.rmtree(data, ignore_errors=True)
    print(f"seeding {SPANS:,} spans over 30 days (cached for later runs) ...", flush=True)
    out = subprocess.run([TOOL, "seed", data, str(SPANS)], check=True, capture_output=True, text=True)
    info = json.loads(out.stdout)
    info["seeded_at_ns"] = time.time_ns()
    json.dump(info, open(marker, "w"))
    return data, info


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str) -> tuple[float, dict]:
    t0 = time.perf_counter()
    with urllib.request.urlopen(url, timeout=120) as r:
        body = r.read()
    dt = time.perf_counter() - t0
    return dt, json.loads(body)


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * (len(xs) - 1) + 0.5))]


def main() -> None:
    if not os.path.exists(TOOL):
        sys.exit("bench: build/bench/rollup_tool is missing (run `make bench`)")
    data, info = seed()
    # The range: the 30 days the seed covered, in whole hours.
    to_ns = (info["seeded_at_ns"] // 3_600_000_000_000 + 1) * 3_600_000_000_000
    from_ns = to_ns - 31 * 86400 * 1_000_000_000
    port = free_port()
    log = open(os.path.join(HERE, "results", "rollup-server.log"), "w")
    proc = subprocess.Popen([BIN, "serve", "--data", data, "--listen", f"127.0.0.1:{port}"], stdout=log,
                            stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                get(base + "/healthz")
                break
            except OSError:
                time.sleep(0.1)
        url = (f"{base}/api/v1/metrics?from={from_ns}&to={to_ns}&interval=1h&group_by=model&kind=LLM"
               f"&metrics={','.join(FIGS)},cost_usd,count")
        for _ in range(3):
            get(url)  # warm the page cache
        times, answer = [], None
        for _ in range(RUNS):
            dt, answer = get(url)
            times.append(dt)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    raw_times, exact = [], None
    for _ in range(RAW_RUNS):
        out = subprocess.run([TOOL, "raw", data, str(from_ns), str(to_ns)], check=True, capture_output=True,
                             text=True)
        exact = json.loads(out.stdout)
        raw_times.append(exact["seconds"])

    # Accuracy: every (model, hour) percentile against the exact one.
    got = {}
    for s in answer["series"]:
        for p in s["points"]:
            if p["count"]:
                hour = int(time.mktime(time.strptime(p["time"], "%Y-%m-%dT%H:%M:%SZ")) - time.timezone)
                got[(s["group"], hour)] = p
    checked, worst, bad, count_mismatch, cost_mismatch = 0, 0.0, 0, 0, 0
    for c in exact["cells"]:
        p = got.get((c["model"], c["hour"]))
        if p is None or p["count"] != c["count"]:
            count_mismatch += 1
            continue
        for f in FIGS:
            if c[f] is None:
                continue
            err = abs(p[f] - c[f]) / c[f] if c[f] else abs(p[f])
            checked += 1
            worst = max(worst, err)
            # Reported values are rounded to 0.001 ms; allow that on top of 1%.
            if abs(p[f] - c[f]) > 0.01 * c[f] + 0.0005:
                bad += 1
        if (c["cost_usd"] is None) != (p["cost_usd"] is None) or (
                c["cost_usd"] is not None and abs(c["cost_usd"] - p["cost_usd"]) > 1e-6):
            cost_mismatch += 1
    res = {
        "machine": machine_info(data),
        "spans": info["spans"], "seed_seconds": info["seconds"],
        "db_bytes": os.path.getsize(os.path.join(data, "lanterna.db")),
        "query": url.split("?", 1)[1].replace(str(from_ns), "FROM").replace(str(to_ns), "TO"),
        "rollup_ms": {"p50": pct(times, 0.5) * 1e3, "p95": pct(times, 0.95) * 1e3, "max": max(times) * 1e3,
                      "runs": RUNS},
        "raw_ms": {"median": statistics.median(raw_times) * 1e3, "min": min(raw_times) * 1e3, "runs": RAW_RUNS,
                   "rows": exact["rows"]},
        "cells": len(exact["cells"]),
        "percentiles_checked": checked, "max_relative_error": worst, "over_1pct": bad,
        "count_mismatches": count_mismatch, "cost_mismatches": cost_mismatch,
    }
    res["speedup_p95"] = res["raw_ms"]["median"] / res["rollup_ms"]["p95"]
    json.dump(res, open(os.path.join(HERE, "results", "rollup_bench.json"), "w"), indent=1)
    print(f"\nMachine: {machine_line(res['machine'])}")
    print(f"Store: {res['spans']:,} spans over 30 days, {res['db_bytes'] / 2**30:.2f} GiB; "
          f"{res['cells']:,} (model, hour) cells")
    print(f"Query: {res['query']}")
    print(f"| path | p50 | p95 | note |\n|---|---|---|---|")
    print(f"| rollups (HTTP API) | {res['rollup_ms']['p50']:.1f} ms | {res['rollup_ms']['p95']:.1f} ms | "
          f"{RUNS} runs, warm |")
    print(f"| raw spans (exact, C) | {res['raw_ms']['median']:.0f} ms (median) | - | {res['raw_ms']['rows']:,} rows, "
          f"{RAW_RUNS} runs |")
    print(f"speed-up (raw median / rollup p95): {res['speedup_p95']:.0f}x")
    print(f"accuracy: {checked:,} percentiles checked, max relative error {worst * 100:.3f}%, "
          f"{bad} over 1%; count mismatches {count_mismatch}, cost mismatches {cost_mismatch}")
    ok = res["rollup_ms"]["p95"] < 100 and res["speedup_p95"] >= 50 and bad == 0 and count_mismatch == 0
    print("targets (<100 ms p95, >=50x, <=1% error):", "met" if ok else "NOT met")


if __name__ == "__main__":
    main()
