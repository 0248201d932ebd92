// Seeds a running server with real OTLP/JSON traces (the shapes common
// instrumentations send), scores and feedback, for the browser tests.
// Returns the ids the tests look for.
import { randomBytes } from "node:crypto";

const hex = (n) => randomBytes(n).toString("hex");
const str = (key, v) => ({ key, value: { stringValue: String(v) } });
const int = (key, v) => ({ key, value: { intValue: String(v) } });
const dbl = (key, v) => ({ key, value: { doubleValue: v } });
const strs = (key, vs) => ({ key, value: { arrayValue: { values: vs.map((v) => ({ stringValue: v })) } } });

function span(traceId, { id = hex(8), parent, name, start, durMs, attrs = [], error, kind = 1 }) {
  const s = {
    traceId, spanId: id, name, kind,
    startTimeUnixNano: String(BigInt(Math.round(start * 1e6))),
    endTimeUnixNano: String(BigInt(Math.round((start + durMs) * 1e6))),
    attributes: attrs,
    status: error ? { code: 2, message: error } : { code: 1 },
  };
  if (parent) s.parentSpanId = parent;
  return s;
}

function body(spans, service = "rag-app") {
  return {
    resourceSpans: [{
      resource: { attributes: [str("service.name", service), str("deployment.environment", "test")] },
      scopeSpans: [{ scope: { name: "openinference.instrumentation.langchain", version: "0.1.0" }, spans }],
    }],
  };
}

async function post(base, path, payload) {
  const res = await fetch(base + path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(payload) });
  if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`);
  return res.json().catch(() => ({}));
}

const ctx = (user, session, tags = []) => [str("user.id", user), str("session.id", session), ...(tags.length ? [strs("tag.tags", tags)] : [])];

function llm(model, inTok, outTok, extra = []) {
  return [str("openinference.span.kind", "LLM"), str("llm.model_name", model), str("llm.provider", "openai"),
    int("llm.token_count.prompt", inTok), int("llm.token_count.completion", outTok), int("llm.token_count.total", inTok + outTok), ...extra];
}

// The RAG turn the span-panel tests inspect: chain → retriever, LLM with a
// tool call, tool, final LLM.
function ragTrace(t0, user, session, question, ids) {
  const tid = hex(16);
  const root = hex(8);
  const sp = [
    span(tid, { id: root, name: "answer question", start: t0, durMs: 2400, attrs: [
      str("openinference.span.kind", "CHAIN"), str("input.value", question), str("output.value", "It is 18°C and sunny in Lisbon today."),
      str("lanterna.feature", "qa"), ...ctx(user, session, ["docs", "beta"])] }),
    span(tid, { id: ids.retriever, parent: root, name: "VectorStoreRetriever", start: t0 + 20, durMs: 290, attrs: [
      str("openinference.span.kind", "RETRIEVER"), str("input.value", question),
      str("retrieval.documents.0.document.id", "kb-142"), str("retrieval.documents.0.document.content", "Lisbon weather is served by the get_weather tool."),
      dbl("retrieval.documents.0.document.score", 0.873),
      str("retrieval.documents.1.document.id", "kb-009"), str("retrieval.documents.1.document.content", "Temperatures are reported in Celsius."),
      dbl("retrieval.documents.1.document.score", 0.791), ...ctx(user, session)] }),
    span(tid, { id: ids.llm, parent: root, name: "ChatOpenAI", start: t0 + 320, durMs: 900, attrs: [
      ...llm("gpt-4o-mini", 420, 35), str("lanterna.feature", "qa"),
      str("llm.input_messages.0.message.role", "system"), str("llm.input_messages.0.message.content", "You are a helpful weather assistant."),
      str("llm.input_messages.1.message.role", "user"), str("llm.input_messages.1.message.content", question),
      str("llm.output_messages.0.message.role", "assistant"),
      str("llm.output_messages.0.message.tool_calls.0.tool_call.id", "call_1"),
      str("llm.output_messages.0.message.tool_calls.0.tool_call.function.name", "get_weather"),
      str("llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments", '{"city":"Lisbon","unit":"celsius"}'),
      ...ctx(user, session)] }),
    span(tid, { id: ids.tool, parent: root, name: "get_weather", start: t0 + 1230, durMs: 150, attrs: [
      str("openinference.span.kind", "TOOL"), str("tool.name", "get_weather"),
      str("input.value", '{"city":"Lisbon","unit":"celsius"}'), str("output.value", '{"temp_c":18,"sky":"sunny"}'), ...ctx(user, session)] }),
    span(tid, { parent: root, name: "ChatOpenAI", start: t0 + 1390, durMs: 1000, attrs: [
      ...llm("gpt-4o-mini", 480, 22), str("lanterna.feature", "qa"),
      str("llm.input_messages.0.message.role", "user"), str("llm.input_messages.0.message.content", question),
      str("llm.input_messages.1.message.role", "tool"), str("llm.input_messages.1.message.tool_call_id", "call_1"),
      str("llm.input_messages.1.message.content", '{"temp_c":18,"sky":"sunny"}'),
      str("llm.output_messages.0.message.role", "assistant"), str("llm.output_messages.0.message.content", "It is 18°C and sunny in Lisbon today."),
      ...ctx(user, session)] }),
  ];
  return { tid, spans: sp };
}

export async function seed(base) {
  const now = Date.now();
  const out = {};
  const ids = { retriever: hex(8), llm: hex(8), tool: hex(8) };
  const rag = ragTrace(now - 30 * 60e3, "alice", "sess-1", "What is the weather in Lisbon?", ids);
  out.rag = { traceId: rag.tid, ...ids };
  const turns = [rag.spans];
  // Two more turns of the same conversation.
  for (let i = 1; i <= 2; i++) {
    const t = ragTrace(now - (30 - i * 5) * 60e3, "alice", "sess-1", `Follow-up question ${i}?`, { retriever: hex(8), llm: hex(8), tool: hex(8) });
    turns.push(t.spans);
  }
  for (const s of turns) await post(base, "/v1/traces", body(s));

  // A failed call.
  const errTid = hex(16);
  const errRoot = hex(8);
  await post(base, "/v1/traces", body([
    span(errTid, { id: errRoot, name: "summarise ticket", start: now - 20 * 60e3, durMs: 3100, error: "upstream timed out", attrs: [
      str("openinference.span.kind", "CHAIN"), str("input.value", "Summarise ticket #4411"), str("lanterna.feature", "support"), ...ctx("bob", "sess-2")] }),
    span(errTid, { parent: errRoot, name: "ChatAnthropic", start: now - 20 * 60e3 + 50, durMs: 3000, error: "rate limited (429)", attrs: [
      ...llm("claude-3-5-sonnet-20241022", 1200, 0), ...ctx("bob", "sess-2")] }),
  ]));
  out.errorTraceId = errTid;

  // A model without a price, and an output too big to show whole.
  const hugeTid = hex(16);
  await post(base, "/v1/traces", body([
    span(hugeTid, { name: "bulk export", start: now - 15 * 60e3, durMs: 5000, attrs: [
      ...llm("my-finetune-x", 900, 12000), str("input.value", "Export everything"),
      str("output.value", "row,value\n" + "x".repeat(50000)), ...ctx("carol", "sess-3")] }),
  ]));
  out.hugeTraceId = hugeTid;

  // 120 small traces for the list (more than one page of 100).
  const models = ["gpt-4o-mini", "gpt-4o", "claude-3-5-sonnet-20241022"];
  const batch = [];
  for (let i = 0; i < 120; i++) {
    const tid = hex(16);
    const root = hex(8);
    const t = now - (10 * 60e3 + i * 20e3);
    batch.push(
      span(tid, { id: root, name: `batch job ${i}`, start: t, durMs: 200 + i * 7, attrs: [
        str("openinference.span.kind", "CHAIN"), str("input.value", `item ${i}`), str("lanterna.feature", "batch"), ...ctx(`user-${i % 7}`, `batch-${i % 11}`)] }),
      span(tid, { parent: root, name: "ChatOpenAI", start: t + 10, durMs: 150 + i * 6, attrs: [...llm(models[i % 3], 100 + i, 20 + i), ...ctx(`user-${i % 7}`, `batch-${i % 11}`)] }),
    );
  }
  await post(base, "/v1/traces", body(batch, "batch-worker"));

  // One agent run with 2,000 spans, nested a few levels deep.
  const bigTid = hex(16);
  const bigRoot = hex(8);
  const t0 = now - 5 * 60e3;
  const big = [span(bigTid, { id: bigRoot, name: "big agent run", start: t0, durMs: 60000, attrs: [str("openinference.span.kind", "AGENT"), ...ctx("dave", "sess-4")] })];
  let parents = [bigRoot];
  for (let i = 1; i < 2000; i++) {
    const id = hex(8);
    const parent = parents[Math.floor(Math.random() * parents.length)];
    const kind = ["LLM", "TOOL", "RETRIEVER", "CHAIN"][i % 4];
    const attrs = [str("openinference.span.kind", kind)];
    if (kind === "LLM") attrs.push(...llm("gpt-4o-mini", 50, 10));
    big.push(span(bigTid, { id, parent, name: i === 1999 ? "final step 1999" : `step ${i}`, start: t0 + i * 25, durMs: 20, attrs }));
    if (i % 50 === 0) parents = [id, ...parents.slice(0, 3)];
  }
  await post(base, "/v1/traces", body(big, "agent"));
  out.bigTraceId = bigTid;

  // More spans than a trace view holds (10,000): the view says so.
  const longTid = hex(16);
  const longRoot = hex(8);
  const long = [span(longTid, { id: longRoot, name: "agent with many steps", start: t0, durMs: 11000 })];
  for (let i = 1; i <= 10000; i++) long.push(span(longTid, { parent: longRoot, name: `tick ${i}`, start: t0 + i, durMs: 1 }));
  await post(base, "/v1/traces", body(long, "agent"));
  out.longTraceId = longTid;

  // Scores and feedback.
  await post(base, "/api/v1/scores", { trace_id: rag.tid, name: "faithfulness", value: 0.87, source: "evaluator", comment: "one claim unsupported" });
  await post(base, "/api/v1/scores", { trace_id: rag.tid, span_id: ids.llm, name: "valid_json", value: true });
  await post(base, "/api/v1/feedback", { trace_id: rag.tid, value: 1 });
  await post(base, "/api/v1/feedback", { trace_id: errTid, value: -1, comment: "no answer" });
  return out;
}

export async function sendTrace(base, name) {
  const tid = hex(16);
  await post(base, "/v1/traces", body([span(tid, { name, start: Date.now() - 1000, durMs: 500, attrs: [str("openinference.span.kind", "CHAIN")] })]));
  return tid;
}
