#!/usr/bin/env python3
"""Pre-generate realistic OTLP/protobuf LLM traces for the ingest benchmark.

Each output file is one serialized ExportTraceServiceRequest of about 500
spans (whole traces only, so 500..519). A trace is a tree of 5-20 spans in
the OpenInference and OpenTelemetry GenAI dialects:

  CHAIN root (the RAG pipeline: question in, answer out, session/user ids)
  ├─ EMBEDDING          query embedding (sometimes)
  ├─ RETRIEVER          5 documents: retrieval.documents.{i}.document.id/content/score
  ├─ RERANKER           (sometimes)
  ├─ CHAIN "format_prompt" / "parse_output" and other small steps
  ├─ LLM × 1-3          openinference.span.kind=LLM + gen_ai.*: model, provider,
  │                     token counts, 1-4 KB prompt and response as input.value/
  │                     output.value and as flattened llm.input_messages/output_messages
  └─ TOOL × 0-n         tool.name/parameters, input/output (some fail with an
                        exception event and an ERROR status)

Resources look like real Python services (service.name, version, environment,
SDK, host). Ids are random and unique across all files; the load generator
also re-keys ids on every resend, so nothing is ever deduplicated.

Deterministic: the same --seed, --count and --base-time give byte-identical
files. Without --base-time the base time is the current hour, so timestamps
are recent (retention never sees them as old).

Writes DIR/req-00000.pb ... and DIR/manifest.json.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

GENERATOR_VERSION = 3  # bump when the payload shape changes (invalidates caches)

WORDS = (
    "the of and to in is for that with on as are be this by from it at or an was "
    "model data user query context document answer retrieval vector embedding index "
    "latency token prompt response system assistant function tool call search result "
    "customer order invoice refund policy shipping account password reset billing plan "
    "upgrade subscription error timeout database cluster node replica shard backup "
    "deploy release version rollback feature flag experiment metric dashboard alert "
    "incident report summary analysis revenue quarter forecast growth churn retention "
    "cohort segment region market product pricing discount contract renewal support "
    "ticket escalation priority engineer team manager review approve request access "
    "permission role group policy compliance audit security encryption key certificate "
    "network gateway proxy load balancer cache memory storage disk throughput batch "
    "stream queue worker scheduler job pipeline transform schema column table join "
    "please note however therefore because although while since unless until after "
    "before during between among within without about above below under over into "
    "can could should would will may might must shall need want know think see find "
    "use make take give get provide include contain describe explain show help ensure "
    "important relevant specific general detailed accurate complete correct recent "
    "first second third next last final initial previous current following new old"
).split()

MODELS = [
    ("openai", "gpt-4o-mini", "gpt-4o-mini-2024-07-18"),
    ("openai", "gpt-4o", "gpt-4o-2024-08-06"),
    ("anthropic", "claude-3-5-sonnet-latest", "claude-3-5-sonnet-20241022"),
    ("anthropic", "claude-3-5-haiku-latest", "claude-3-5-haiku-20241022"),
    ("openai", "gpt-4.1-mini", "gpt-4.1-mini-2025-04-14"),
]

SERVICES = [
    ("support-rag-api", "2.14.3", "prod"),
    ("docs-qa-worker", "0.9.1", "prod"),
    ("sales-assistant", "1.3.0", "staging"),
]

TOOLS = [
    ("search_web", "Search the public web and return the top results."),
    ("sql_query", "Run a read-only SQL query against the analytics warehouse."),
    ("get_order_status", "Look up the status of a customer order by id."),
    ("calculator", "Evaluate an arithmetic expression."),
    ("send_email", "Send an email to a customer."),
]

SCOPES = {
    "langchain": ("openinference.instrumentation.langchain", "0.1.29"),
    "openai": ("openinference.instrumentation.openai", "0.1.18"),
}


def kv(key: str, value) -> KeyValue:
    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    if isinstance(value, float):
        return KeyValue(key=key, value=AnyValue(double_value=value))
    if isinstance(value, (list, tuple)):
        return KeyValue(key=key, value=AnyValue(array_value=ArrayValue(
            values=[AnyValue(string_value=str(v)) for v in value])))
    return KeyValue(key=key, value=AnyValue(string_value=str(value)))


class Gen:
    def __init__(self, seed: int, base_ns: int):
        self.r = random.Random(seed)
        self.t = base_ns
        self.seen_ids: set[bytes] = set()

    # --- primitives -----------------------------------------------------
    def uid(self, n: int) -> bytes:
        while True:
            b = self.r.getrandbits(n * 8).to_bytes(n, "big")
            if any(b) and b not in self.seen_ids:
                self.seen_ids.add(b)
                return b

    def text(self, nbytes: int) -> str:
        r = self.r
        out, size = [], 0
        while size < nbytes:
            k = r.randint(8, 22)
            words = r.choices(WORDS, k=k)
            s = " ".join(words).capitalize() + r.choice((". ", ". ", ", and ", "? ", ".\n"))
            out.append(s)
            size += len(s)
        return "".join(out)[:nbytes]

    # --- spans ------------------------------------------------------------
    def span(self, trace_id, parent, name, kind_oi, start, dur, otel_kind=Span.SPAN_KIND_INTERNAL):
        s = Span(trace_id=trace_id, span_id=self.uid(8), name=name, kind=otel_kind,
                 start_time_unix_nano=start, end_time_unix_nano=start + dur)
        if parent is not None:
            s.parent_span_id = parent.span_id
        s.attributes.append(kv("openinference.span.kind", kind_oi))
        s.status.code = Status.STATUS_CODE_OK
        return s

    def trace(self, n_spans: int, svc_env: str):
        """Return (spans_by_scope dict, n) for one trace of exactly n_spans spans."""
        r = self.r
        tid = self.uid(16)
        self.t += r.randint(5_000_000, 400_000_000)  # traces arrive a few ms..0.4 s apart
        t0 = self.t
        session = f"sess-{r.getrandbits(40):010x}"
        user = f"user-{r.randint(1, 5000):05d}"
        question = self.text(r.randint(60, 300)).rstrip() + "?"
        lc, oa = [], []  # spans by instrumentation scope

        n_llm = r.randint(1, 3)
        fixed = 1 + 1 + n_llm  # root + retriever + llms
        rest = n_spans - fixed
        n_tool = min(rest, r.randint(0, 4))
        rest -= n_tool
        extras = []
        if rest > 0 and r.random() < 0.7:
            extras.append("EMBEDDING"); rest -= 1
        if rest > 0 and r.random() < 0.4:
            extras.append("RERANKER"); rest -= 1
        extras += ["CHAIN"] * rest

        total_dur = r.randint(800_000_000, 9_000_000_000)
        root = self.span(tid, None, r.choice(("rag_pipeline", "RetrievalQA", "support_agent")),
                         "CHAIN", t0, total_dur, Span.SPAN_KIND_SERVER)
        answer = self.text(r.randint(300, 1500))
        root.attributes.extend([
            kv("input.value", question), kv("input.mime_type", "text/plain"),
            kv("output.value", answer), kv("output.mime_type", "text/plain"),
            kv("session.id", session), kv("user.id", user),
            kv("metadata", json.dumps({"tenant": f"t{r.randint(1, 40)}", "channel": r.choice(("web", "slack", "email")), "env": svc_env})),
            kv("tag.tags", ["rag", r.choice(("beta", "ga")), svc_env]),
        ])
        lc.append(root)
        step = total_dur // (n_spans + 1)
        cur = t0 + step // 4

        def child(name, kind, otel_kind=Span.SPAN_KIND_INTERNAL, scope=lc):
            nonlocal cur
            dur = max(1_000_000, int(step * r.uniform(0.3, 0.95)))
            s = self.span(tid, root, name, kind, cur, dur, otel_kind)
            cur += step
            scope.append(s)
            return s

        for kind in extras:
            if kind == "EMBEDDING":
                s = child("OpenAIEmbeddings", "EMBEDDING", Span.SPAN_KIND_CLIENT, oa)
                s.attributes.extend([
                    kv("embedding.model_name", "text-embedding-3-small"),
                    kv("embedding.embeddings.0.embedding.text", question),
                    kv("llm.token_count.prompt", len(question) // 4),
                ])
            elif kind == "RERANKER":
                s = child("CohereRerank", "RERANKER")
                s.attributes.extend([kv("reranker.model_name", "rerank-english-v3.0"),
                                     kv("reranker.top_k", 3), kv("reranker.query", question)])
            else:
                s = child(r.choice(("format_prompt", "parse_output", "condense_question", "route_query")), "CHAIN")
                s.attributes.extend([kv("input.value", self.text(r.randint(80, 400))),
                                     kv("output.value", self.text(r.randint(80, 400)))])

        # Retriever with 5 documents.
        ret = child("VectorStoreRetriever", "RETRIEVER")
        ret.attributes.extend([kv("input.value", question), kv("input.mime_type", "text/plain")])
        docs = []
        for i in range(5):
            did = f"kb-{r.randint(1, 250000):07d}#chunk-{r.randint(0, 40)}"
            content = self.text(r.randint(200, 700))
            score = round(r.uniform(0.55, 0.95) - i * 0.03, 4)
            docs.append(content)
            ret.attributes.extend([
                kv(f"retrieval.documents.{i}.document.id", did),
                kv(f"retrieval.documents.{i}.document.content", content),
                kv(f"retrieval.documents.{i}.document.score", score),
                kv(f"retrieval.documents.{i}.document.metadata",
                   json.dumps({"source": f"s3://kb/{did.split('#')[0]}.md", "page": r.randint(1, 30)})),
            ])

        tools_left = n_tool
        for li in range(n_llm):
            provider, req_model, resp_model = r.choice(MODELS)
            llm = child("ChatOpenAI" if provider == "openai" else "ChatAnthropic", "LLM",
                        Span.SPAN_KIND_CLIENT, oa)
            system = "You are a helpful support assistant. Answer only from the context. " + self.text(r.randint(100, 300))
            prompt_len = r.randint(1024, 4096)
            ctx = "\n\n".join(docs)
            user_msg = ("Context:\n" + ctx + "\n\nQuestion: " + question + "\n")
            if len(user_msg) < prompt_len:
                user_msg += self.text(prompt_len - len(user_msg))
            user_msg = user_msg[:prompt_len]
            resp = self.text(r.randint(1024, 4096))
            in_tok, out_tok = (len(system) + len(user_msg)) // 4, len(resp) // 4
            temp = r.choice((0.0, 0.2, 0.7))
            params = {"model": req_model, "temperature": temp, "max_tokens": 1024}
            call_tool = tools_left > 0 and r.random() < 0.5
            finish = "tool_calls" if call_tool else "stop"
            resp_id = f"chatcmpl-{r.getrandbits(96):024x}"
            llm.attributes.extend([
                kv("llm.system", provider), kv("llm.provider", provider),
                kv("llm.model_name", resp_model),
                kv("llm.invocation_parameters", json.dumps(params)),
                kv("input.value", json.dumps({"messages": [{"role": "system", "content": system},
                                                           {"role": "user", "content": user_msg}], **params})),
                kv("input.mime_type", "application/json"),
                kv("output.value", json.dumps({"id": resp_id, "model": resp_model, "choices": [
                    {"index": 0, "finish_reason": finish, "message": {"role": "assistant", "content": resp}}],
                    "usage": {"prompt_tokens": in_tok, "completion_tokens": out_tok, "total_tokens": in_tok + out_tok}})),
                kv("output.mime_type", "application/json"),
                kv("llm.input_messages.0.message.role", "system"),
                kv("llm.input_messages.0.message.content", system),
                kv("llm.input_messages.1.message.role", "user"),
                kv("llm.input_messages.1.message.content", user_msg),
                kv("llm.output_messages.0.message.role", "assistant"),
                kv("llm.output_messages.0.message.content", resp),
                kv("llm.token_count.prompt", in_tok), kv("llm.token_count.completion", out_tok),
                kv("llm.token_count.total", in_tok + out_tok),
                kv("gen_ai.system", provider), kv("gen_ai.provider.name", provider),
                kv("gen_ai.operation.name", "chat"),
                kv("gen_ai.request.model", req_model), kv("gen_ai.response.model", resp_model),
                kv("gen_ai.request.temperature", float(temp)), kv("gen_ai.request.max_tokens", 1024),
                kv("gen_ai.response.id", resp_id), kv("gen_ai.response.finish_reasons", [finish]),
                kv("gen_ai.usage.input_tokens", in_tok), kv("gen_ai.usage.output_tokens", out_tok),
                kv("session.id", session), kv("user.id", user),
            ])
            if call_tool:
                tname, _ = r.choice(TOOLS)
                llm.attributes.extend([
                    kv("llm.output_messages.0.message.tool_calls.0.tool_call.id", f"call_{r.getrandbits(64):016x}"),
                    kv("llm.output_messages.0.message.tool_calls.0.tool_call.function.name", tname),
                    kv("llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments",
                       json.dumps({"query": question[:80]})),
                ])
            # Tool spans follow the LLM call that asked for them.
            n_here = tools_left if li == n_llm - 1 else (1 if call_tool else 0)
            for _ in range(min(n_here, tools_left)):
                tools_left -= 1
                tname, tdesc = r.choice(TOOLS)
                tool = child(tname, "TOOL")
                args = json.dumps({"query": question[:120], "limit": r.randint(1, 20)})
                tool.attributes.extend([
                    kv("tool.name", tname), kv("tool.description", tdesc),
                    kv("tool.parameters", json.dumps({"type": "object", "properties": {"query": {"type": "string"}, "limit": {"type": "integer"}}})),
                    kv("input.value", args), kv("input.mime_type", "application/json"),
                ])
                if r.random() < 0.03:
                    tool.status.code = Status.STATUS_CODE_ERROR
                    tool.status.message = "TimeoutError: upstream did not answer within 10s"
                    ev = tool.events.add()
                    ev.time_unix_nano = tool.end_time_unix_nano
                    ev.name = "exception"
                    ev.attributes.extend([
                        kv("exception.type", "TimeoutError"),
                        kv("exception.message", "upstream did not answer within 10s"),
                        kv("exception.stacktrace", "Traceback (most recent call last):\n  File \"app/tools.py\", line 88, in run\n    return client.get(url, timeout=10)\nTimeoutError: upstream did not answer within 10s\n"),
                    ])
                else:
                    tool.attributes.append(kv("output.value", self.text(r.randint(100, 800))))
        assert len(lc) + len(oa) == n_spans, (len(lc) + len(oa), n_spans)
        return lc, oa

    def request(self, target_spans: int) -> tuple[ExportTraceServiceRequest, int, int]:
        r = self.r
        req = ExportTraceServiceRequest()
        n_spans = n_traces = 0
        # One to three services per batch (a collector forwarding several apps).
        svcs = r.sample(SERVICES, r.randint(1, 3))
        rss = []
        for name, ver, env in svcs:
            rs = req.resource_spans.add()
            rs.resource.attributes.extend([
                kv("service.name", name), kv("service.version", ver),
                kv("deployment.environment.name", env),
                kv("telemetry.sdk.name", "opentelemetry"), kv("telemetry.sdk.language", "python"),
                kv("telemetry.sdk.version", "1.27.0"),
                kv("host.name", f"{name}-{r.getrandbits(32):08x}-{r.getrandbits(20):05x}"),
                kv("process.pid", r.randint(100, 60000)), kv("process.runtime.name", "cpython"),
                kv("process.runtime.version", "3.11.9"),
            ])
            scopes = {}
            for key, (sname, sver) in SCOPES.items():
                ss = rs.scope_spans.add()
                ss.scope.name, ss.scope.version = sname, sver
                scopes[key] = ss
            rss.append((env, scopes))
        while n_spans < target_spans:
            env, scopes = r.choice(rss)
            lc, oa = self.trace(r.randint(5, 20), env)
            scopes["langchain"].spans.extend(lc)
            scopes["openai"].spans.extend(oa)
            n_spans += len(lc) + len(oa)
            n_traces += 1
        return req, n_spans, n_traces


def generate(out: str, count: int, seed: int, spans_per_request: int, base_ns: int) -> dict:
    os.makedirs(out, exist_ok=True)
    g = Gen(seed, base_ns)
    files, total_spans, total_bytes, total_traces = [], 0, 0, 0
    for i in range(count):
        req, n, nt = g.request(spans_per_request)
        body = req.SerializeToString()
        name = f"req-{i:05d}.pb"
        with open(os.path.join(out, name), "wb") as f:
            f.write(body)
        files.append({"file": name, "spans": n, "traces": nt, "bytes": len(body)})
        total_spans += n
        total_bytes += len(body)
        total_traces += nt
    manifest = {
        "generator_version": GENERATOR_VERSION, "seed": seed, "count": count,
        "spans_per_request_target": spans_per_request, "base_time_ns": base_ns,
        "total_spans": total_spans, "total_traces": total_traces, "total_bytes": total_bytes,
        "mean_span_bytes": round(total_bytes / max(1, total_spans), 1),
        "files": files,
    }
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    return manifest


def ensure(out: str, count: int, seed: int, spans_per_request: int = 500) -> dict:
    """Generate into `out` unless a matching manifest is already there."""
    try:
        with open(os.path.join(out, "manifest.json")) as f:
            m = json.load(f)
        if (m.get("generator_version") == GENERATOR_VERSION and m.get("seed") == seed
                and m.get("count") == count and m.get("spans_per_request_target") == spans_per_request
                and all(os.path.exists(os.path.join(out, e["file"])) for e in m["files"])):
            return m
    except (OSError, ValueError, KeyError):
        pass
    base_ns = (int(time.time()) // 3600) * 3600 * 1_000_000_000
    return generate(out, count, seed, spans_per_request, base_ns)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="output directory")
    ap.add_argument("--count", type=int, default=100, help="number of requests (files)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--spans-per-request", type=int, default=500)
    ap.add_argument("--base-time", type=int, default=None,
                    help="first trace start, ns since epoch (default: the current hour)")
    a = ap.parse_args()
    base = a.base_time if a.base_time is not None else (int(time.time()) // 3600) * 3600 * 1_000_000_000
    t = time.time()
    m = generate(a.out, a.count, a.seed, a.spans_per_request, base)
    print(f"{m['count']} requests, {m['total_spans']} spans, {m['total_traces']} traces, "
          f"{m['total_bytes'] / 1e6:.1f} MB ({m['mean_span_bytes']:.0f} B/span) in {time.time() - t:.1f}s -> {a.out}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
