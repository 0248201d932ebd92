"""Python SDK overhead: Lanterna's `lanterna` package vs the Langfuse SDK, one run.

    bash scripts/deps-bench.sh && .venv-bench/bin/python bench/sdk_bench.py

What is measured, per SDK, each in its own fresh interpreter (both SDKs
patch the `openai` module globally, so they never share a process):

  1. `@observe` on a small function (two arguments, a dict result; input
     and output capture on, as both SDKs default): each call is timed alone
     with perf_counter_ns, alternating blocks of undecorated and decorated
     calls; overhead = median (and p99) of decorated minus undecorated.
     The exporter threads run meanwhile and their GIL time shows up in the
     samples. Also reported: the process's CPU time (all threads) for N
     decorated calls plus the flush that sends them, per call, less the
     undecorated calls': everything the SDK costs, export included.
     For the OpenAI call the p99s are shown side by side instead of
     subtracted: the client's own call (~0.5 ms) has GC pauses of several
     ms in its tail, so a difference of p99s is noise.
  2. A wrapped OpenAI chat completion (the real `openai` client, SDK
     drop-in vs plain client in the same process, alternating blocks), its
     request method answering at once with a parsed completion so that
     network jitter does not drown the difference; the real network path
     is covered by tests/integration/test_sdk_openai.py.

Both SDKs export to a real Lanterna server (build/lanterna, fresh data
dir; Langfuse through its OTLP endpoint path with a project key), and the
span counts stored are checked against the calls made.

Prints a table and the markdown block for docs/benchmarks.md and writes
bench/results/sdk-<date>.json. About a minute.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
RESULTS = os.path.join(ROOT, "bench", "results")
TARGET_US, TARGET_RATIO = 20.0, 5.0

COMPLETION = {
    "id": "chatcmpl-bench", "object": "chat.completion", "created": 1700000000, "model": "gpt-4o-mini-2024-07-18",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Paris is the capital of France.",
                                         "refusal": None, "annotations": []},
                 "logprobs": None, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 24, "completion_tokens": 7, "total_tokens": 31,
              "prompt_tokens_details": {"cached_tokens": 0}, "completion_tokens_details": {"reasoning_tokens": 0}},
}
MESSAGES = [{"role": "system", "content": "You are a terse assistant."},
            {"role": "user", "content": "What is the capital of France?"}]


def log(msg):
    print(f"[sdk-bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# child: measures one SDK


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def timed_blocks(plain, wrapped, calls, block, args=(), kwargs=None):
    """Alternating blocks so drift (frequency scaling, noisy neighbours)
    hits both sides alike. Returns per-call ns samples for each."""
    kwargs = kwargs or {}
    pn = time.perf_counter_ns
    a, b = [], []
    for _ in range(max(1, calls // block)):
        for f, out in ((plain, a), (wrapped, b)):
            for _ in range(block):
                t0 = pn()
                f(*args, **kwargs)
                out.append(pn() - t0)
    return a, b


def summary(plain_ns, wrapped_ns):
    pm, p99 = pct(plain_ns, 50), pct(plain_ns, 99)
    wm, w99 = pct(wrapped_ns, 50), pct(wrapped_ns, 99)
    return {"plain_median_us": pm / 1e3, "plain_p99_us": p99 / 1e3, "wrapped_median_us": wm / 1e3,
            "wrapped_p99_us": w99 / 1e3, "overhead_median_us": (wm - pm) / 1e3,
            "overhead_p99_us": (w99 - p99) / 1e3, "samples": len(wrapped_ns)}


def work(question, k=3):
    return {"answer": question.upper(), "k": k}


def canned_client(openai_mod):
    """The real client whose HTTP layer answers at once with a parsed
    completion: what is left of a call is the client's own argument
    handling plus whatever an SDK wraps around `create`. (Through an in-process
    HTTP transport the call takes ~1.5 ms here and its jitter swamps the
    difference being measured.)"""
    from openai.types.chat import ChatCompletion
    answer = ChatCompletion.model_validate(COMPLETION)
    client = openai_mod.OpenAI(api_key="sk-bench", base_url="http://mock.invalid/v1", max_retries=0)
    client.chat.completions._post = lambda *a, **kw: answer
    return client


def child(sdk, url, key, calls, oai_calls):
    import openai
    res = {"sdk": sdk}
    # The OpenAI baseline first, before any SDK patches the client.
    plain_client = canned_client(openai)

    def chat(c):
        return c.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, temperature=0.2)

    for _ in range(200):
        chat(plain_client)

    if sdk.startswith("lanterna"):
        sys.path.insert(0, os.path.join(ROOT, "sdk", "python"))
        import lanterna
        capture = sdk != "lanterna-nocapture"
        lanterna.init(base_url=url, service_name="sdk-bench", capture_content=capture)
        observe, flush = lanterna.observe, lanterna.flush
        res["version"] = lanterna.__version__
        from lanterna import openai as lt_openai  # patches the client classes in place
        wrapped_client = plain_client
        wrap_on, wrap_off = lt_openai.instrument, lt_openai.uninstrument
    else:
        from langfuse import Langfuse, observe
        import langfuse
        client = Langfuse(public_key=key["public_key"], secret_key=key["secret_key"], base_url=url)
        flush = client.flush
        res["version"] = langfuse.__version__
        from langfuse.openai import openai as lf_openai  # noqa: F401  (patches the client classes)
        from openai.resources.chat.completions import Completions
        wrapped_client = plain_client
        # Toggle its patch so plain and wrapped calls can alternate in one process.
        lf_create = Completions.__dict__["create"]
        orig = getattr(lf_create, "__wrapped__", None)
        if orig is None:
            raise SystemExit("langfuse.openai did not wrap Completions.create")
        wrap_on = lambda: setattr(Completions, "create", lf_create)  # noqa: E731
        wrap_off = lambda: setattr(Completions, "create", orig)  # noqa: E731

    decorated = observe(work)
    for _ in range(2000):  # warm-up: imports, caches, exporter thread start
        decorated("What is the capital of France?", k=3)
    flush()
    plain_ns, wrapped_ns = timed_blocks(work, decorated, calls, 500, ("What is the capital of France?",), {"k": 3})
    res["observe"] = summary(plain_ns, wrapped_ns)
    flush()

    # Everything the SDK costs, export included: CPU time of the whole
    # process (all threads) for N calls and the flush that sends them,
    # less the same for N undecorated calls.
    c0 = time.process_time_ns()
    for _ in range(calls):
        work("What is the capital of France?", k=3)
    base = time.process_time_ns() - c0
    c0 = time.process_time_ns()
    for _ in range(calls):
        decorated("What is the capital of France?", k=3)
    flush()
    res["observe"]["cpu_with_export_us"] = (time.process_time_ns() - c0 - base) / calls / 1e3

    # Wrapped OpenAI calls
    wrap_off()
    a = []
    b = []
    pn = time.perf_counter_ns
    for _ in range(max(1, oai_calls // 100)):
        wrap_off()
        for _ in range(100):
            t0 = pn()
            chat(plain_client)
            a.append(pn() - t0)
        wrap_on()
        for _ in range(100):
            t0 = pn()
            chat(wrapped_client)
            b.append(pn() - t0)
    res["openai"] = summary(a, b)
    flush()
    time.sleep(0.5)
    return res


# --------------------------------------------------------------------------
# driver


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stored_spans(url):
    with urllib.request.urlopen(url + "/api/v1/stats", timeout=10) as r:
        return json.load(r)["store"]["spans"]


def cli(binary, data, *args):
    p = subprocess.run([binary, *args, "--data", data], capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        raise SystemExit(f"lanterna {' '.join(args)} failed: {p.stderr}")
    return p.stdout


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=20000, help="decorated calls timed per SDK (default %(default)s)")
    ap.add_argument("--openai-calls", type=int, default=2000, help="wrapped OpenAI calls timed (default %(default)s)")
    ap.add_argument("--lanterna", default=os.path.join(ROOT, "build", "lanterna"), help="server binary")
    ap.add_argument("--skip-langfuse", action="store_true")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--url", help=argparse.SUPPRESS)
    ap.add_argument("--key", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        print(json.dumps(child(a.child, a.url, json.loads(a.key or "{}"), a.calls, a.openai_calls)))
        return 0

    from ingest_bench import machine_info, machine_line
    data = tempfile.mkdtemp(prefix="lanterna-sdk-bench-")
    cli(a.lanterna, data, "projects", "create", "bench")
    out = cli(a.lanterna, data, "keys", "create", "--project", "bench")
    key = {"public_key": re.search(r"public_key:\s*(\S+)", out).group(1),
           "secret_key": re.search(r"secret_key:\s*(\S+)", out).group(1)}
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    srv = subprocess.Popen([a.lanterna, "serve", "--listen", f"127.0.0.1:{port}", "--data", data],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    results = []
    try:
        for _ in range(100):
            try:
                stored_spans(url)
                break
            except OSError:
                time.sleep(0.05)
        sdks = ["lanterna", "lanterna-nocapture"] + ([] if a.skip_langfuse else ["langfuse"])
        for sdk in sdks:
            log(f"{sdk}: {a.calls} @observe calls, {a.openai_calls} OpenAI calls")
            before = stored_spans(url)
            p = subprocess.run([sys.executable, __file__, "--child", sdk, "--url", url, "--key", json.dumps(key),
                                "--calls", str(a.calls), "--openai-calls", str(a.openai_calls)],
                               capture_output=True, text=True, timeout=1800)
            if p.returncode != 0:
                raise SystemExit(f"{sdk} child failed:\n{p.stderr[-3000:]}")
            r = json.loads(p.stdout.strip().splitlines()[-1])
            expect = 2000 + 2 * a.calls + (a.openai_calls // 100) * 100
            got = 0
            for _ in range(100):  # the server stores what the last flush sent
                got = stored_spans(url) - before
                if got >= expect:
                    break
                time.sleep(0.1)
            r["spans_expected"], r["spans_stored"] = expect, got
            results.append(r)
            log(f"{sdk}: {r['observe']['overhead_median_us']:.1f} us median per @observe, "
                f"spans stored {got}/{expect}")
    finally:
        srv.terminate()
        srv.wait(timeout=30)

    m = machine_info(data)
    by = {r["sdk"]: r for r in results}
    lt, lf = by["lanterna"], by.get("langfuse")
    rows = []
    for r in results:
        o, c = r["observe"], r["openai"]
        rows.append(f"| {r['sdk']} {r['version']} | {o['overhead_median_us']:.1f} | {o['overhead_p99_us']:.1f} | "
                    f"{o['cpu_with_export_us']:.1f} | {c['overhead_median_us']:.1f} | "
                    f"{c['plain_p99_us']:.0f} → {c['wrapped_p99_us']:.0f} | "
                    f"{r['spans_stored']}/{r['spans_expected']} |")
    ratio = ratio_oai = None
    if lf:
        ratio = lf["observe"]["overhead_median_us"] / max(lt["observe"]["overhead_median_us"], 1e-9)
        ratio_oai = lf["openai"]["overhead_median_us"] / max(lt["openai"]["overhead_median_us"], 1e-9)
    md = [f"Machine: {machine_line(m)}; Python {m['python']}.", "",
          "| SDK | @observe overhead median (µs) | p99 (µs) | CPU per call incl. export (µs) | "
          "OpenAI call overhead median (µs) | OpenAI call p99, plain → wrapped (µs) | spans stored |",
          "|---|---|---|---|---|---|---|", *rows, ""]
    verdict = f"Lanterna @observe: {lt['observe']['overhead_median_us']:.1f} µs median " \
              f"(target < {TARGET_US:.0f} µs: {'met' if lt['observe']['overhead_median_us'] < TARGET_US else 'MISSED'})"
    if ratio:
        verdict += f"; Langfuse's is {ratio:.1f}× as much (target ≥ {TARGET_RATIO:.0f}×: " \
                   f"{'met' if ratio >= TARGET_RATIO else 'MISSED'}); wrapped OpenAI call: {ratio_oai:.1f}×."
    md.append(verdict)
    print("\n".join(md))
    os.makedirs(RESULTS, exist_ok=True)
    path = os.path.join(RESULTS, f"sdk-{dt.datetime.now().strftime('%Y%m%d-%H%M%S')}.json")
    with open(path, "w") as f:
        json.dump({"machine": m, "results": results, "ratio_observe": ratio, "ratio_openai": ratio_oai}, f, indent=1)
    log(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
