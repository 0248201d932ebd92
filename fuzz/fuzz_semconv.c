/* libFuzzer target for the semantic-convention mapping: the input is read
 * as a recipe for a span (attributes with keys from every dialect or
 * random, values of every type including broken JSON, span events) that
 * is mapped with lt_semconv_span and, as a log record, lt_semconv_log.
 * Mapping must never crash, token counts must be unknown or in range, and
 * every JSON field it produces must parse. */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/arena.h"
#include "core/err.h"
#include "model/semconv.h"

static const char *const keys[] = {
  "langfuse.observation.type", "langfuse.observation.usage_details", "langfuse.observation.cost_details",
  "langfuse.observation.completion_start_time", "langfuse.observation.input", "langfuse.observation.output",
  "langfuse.observation.model.name", "langfuse.observation.metadata", "langfuse.observation.metadata.feature",
  "langfuse.trace.metadata.feature", "langfuse.trace.tags", "langfuse.session.id", "langfuse.user.id",
  "langfuse.environment", "langfuse.release", "langfuse.observation.prompt.name",
  "langfuse.observation.prompt.version", "openinference.span.kind", "input.value", "output.value", "metadata",
  "tag.tags", "session.id", "user.id", "llm.model_name", "llm.token_count.prompt", "llm.token_count.total",
  "llm.cost.total", "llm.input_messages.0.message.role", "llm.input_messages.0.message.content",
  "llm.input_messages.1.message.contents.0.message_content.text",
  "llm.output_messages.0.message.tool_calls.0.tool_call.function.name", "retrieval.documents.0.document.content",
  "retrieval.documents.0.document.metadata", "annotations.0.annotation.name", "annotations.0.annotation.score",
  "annotations.0.annotation.label", "annotations.1000.annotation.name", "evaluations.0.evaluation.name",
  "evaluations.0.evaluation.score", "gen_ai.operation.name", "gen_ai.provider.name", "gen_ai.system",
  "gen_ai.request.model", "gen_ai.response.model", "gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens",
  "gen_ai.usage.cache_read.input_tokens", "gen_ai.response.finish_reasons", "gen_ai.input.messages",
  "gen_ai.output.messages", "gen_ai.system_instructions", "gen_ai.prompt.0.role", "gen_ai.prompt.0.content",
  "gen_ai.completion.0.tool_calls.0.name", "gen_ai.tool.name", "gen_ai.tool.call.arguments",
  "gen_ai.response.time_to_first_chunk", "gen_ai.client.operation.time_to_first_chunk", "gen_ai.conversation.id",
  "gen_ai.aggregated_usage.input_tokens", "traceloop.span.kind", "llm.request.type", "traceloop.entity.input",
  "traceloop.association.properties.session_id", "traceloop.association.properties.feature",
  "traceloop.prompt.key", "ai.operationId", "ai.model.id", "ai.model.provider", "ai.prompt", "ai.prompt.messages",
  "ai.response.text", "ai.response.toolCalls", "ai.response.object", "ai.response.msToFirstChunk",
  "ai.stream.msToFirstChunk", "ai.usage.inputTokens", "ai.usage.promptTokens", "ai.usage.tokens",
  "ai.usage.outputTokenDetails.reasoningTokens", "ai.telemetry.metadata.sessionId", "ai.telemetry.metadata.feature",
  "ai.settings.context.userId", "ai.toolCall.name", "ai.toolCall.args", "ai.toolCall.result",
  "pydantic_ai.all_messages", "final_result", "operation.cost", "logfire.span_type", "logfire.tags",
  "lanterna.feature", "lanterna.warnings", "deployment.environment.name", "event.name",
  "gen_ai.evaluation.name", "gen_ai.evaluation.score.value", "gen_ai.evaluation.score.label",
  "gen_ai.evaluation.explanation", "gen_ai.event.content", "gen_ai.prompt", "gen_ai.completion", "content",
  "message", "finish_reason", "role",
};

static const char *const strings[] = {
  "generation", "SPAN", "agent", "LLM", "chat", "invoke_agent", "agent_step", "workflow", "pending_span",
  "ai.generateText", "ai.streamText.doStream", "ai.toolCall", "openai.chat", ".chat", "",
  "\"2026-11-27T08:14:41.573192Z\"", "1970-01-01T00:00:00+01:00", "2026-02-30T25:61:61.Z", "\"",
  "{\"input\":5,\"output\":-1,\"total\":1e99,\"prompt_tokens_details\":{\"cached_tokens\":\"7\"}}",
  "{\"total\":0.5,\"input\":null}", "{\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":\"x\"}]}",
  "[{\"role\":\"user\",\"content\":[{\"type\":\"tool-call\",\"toolName\":1,\"input\":{}},"
  "{\"type\":\"tool-result\",\"output\":{\"type\":\"json\",\"value\":[1]}},{\"type\":\"file\",\"data\":2}]}]",
  "[{\"role\":\"user\",\"parts\":[{\"type\":\"tool_call_response\",\"response\":{}}]}]",
  "{\"messages\":[{\"role\":\"user\"},3,null]}", "[{\"toolCallId\":\"c\",\"args\":\"{}\"}]", "[", "{", "[{]",
  "{\"feature\":{\"x\":1}}", "{\"feature\":\"f\"}", "[\"stop\"]", "nan", "-0", "1e308", "18446744073709551616",
};

/* Strings given to the mapping are exactly as long as they say, with no
 * NUL after them (as the protobuf decoder's views of the body are), each
 * in its own allocation: ASan then catches any read past a length. */
#define MAX_EXACT 4096

typedef struct {
  const uint8_t *p;
  size_t n;
  lt_arena_t *a;
  void *exact[MAX_EXACT];
  size_t n_exact;
} rd_t;

static lt_str_t exact(rd_t *r, const char *p, size_t len) {
  if (len == 0 || r->n_exact == MAX_EXACT) return len ? (lt_str_t){p, len} : LT_STR_NULL;
  char *d = malloc(len);
  if (!d) abort();
  memcpy(d, p, len);
  r->exact[r->n_exact++] = d;
  return (lt_str_t){d, len};
}

static uint8_t byte(rd_t *r) {
  if (!r->n) return 0;
  r->n--;
  return *r->p++;
}

static lt_str_t rand_str(rd_t *r) {
  size_t len = byte(r) % 48;
  if (len > r->n) len = r->n;
  lt_str_t s = exact(r, (const char *)r->p, len);
  r->p += len;
  r->n -= len;
  return s;
}

static lt_str_t lit(rd_t *r, const char *s) { return exact(r, s, strlen(s)); }

static lt_val_t value(rd_t *r, int depth) {
  lt_val_t v = {.type = LT_VAL_EMPTY};
  uint8_t t = byte(r);
  switch (t % 9) {
  case 0: v.type = LT_VAL_STR; v.u.s = lit(r, strings[byte(r) % (sizeof strings / sizeof strings[0])]); break;
  case 1: v.type = LT_VAL_STR; v.u.s = rand_str(r); break;
  case 2: {
    v.type = LT_VAL_INT;
    uint64_t x = 0;
    for (int i = 0; i < 8; i++) x = x << 8 | byte(r);
    v.u.i = (int64_t)x;
    break;
  }
  case 3: {
    v.type = LT_VAL_DOUBLE;
    uint64_t x = 0;
    for (int i = 0; i < 8; i++) x = x << 8 | byte(r);
    memcpy(&v.u.d, &x, sizeof v.u.d);
    break;
  }
  case 4: v.type = LT_VAL_BOOL; v.u.b = byte(r) & 1; break;
  case 5:
  case 6:
    if (depth < 3) {
      size_t n = byte(r) % 4;
      if (t % 9 == 5) {
        lt_val_t *items = lt_arena_alloc(r->a, (n ? n : 1) * sizeof *items);
        if (!items) break;
        for (size_t i = 0; i < n; i++) items[i] = value(r, depth + 1);
        v.type = LT_VAL_ARRAY;
        v.u.arr.items = items;
        v.u.arr.n = n;
      } else {
        lt_kv_t *kv = lt_arena_alloc(r->a, (n ? n : 1) * sizeof *kv);
        if (!kv) break;
        for (size_t i = 0; i < n; i++) {
          kv[i].key = lit(r, keys[byte(r) % (sizeof keys / sizeof keys[0])]);
          kv[i].val = value(r, depth + 1);
        }
        v.type = LT_VAL_KVLIST;
        v.u.kv.items = kv;
        v.u.kv.n = n;
      }
    }
    break;
  case 7: v.type = LT_VAL_BYTES; v.u.s = rand_str(r); break;
  default: break; /* EMPTY */
  }
  return v;
}

static lt_attrs_t attrs(rd_t *r, size_t max) {
  size_t n = byte(r) % max;
  lt_kv_t *kv = lt_arena_alloc(r->a, (n ? n : 1) * sizeof *kv);
  if (!kv) return (lt_attrs_t){NULL, 0};
  for (size_t i = 0; i < n; i++) {
    uint8_t k = byte(r);
    kv[i].key = k >= 0xf0 ? rand_str(r) : lit(r, keys[k % (sizeof keys / sizeof keys[0])]);
    kv[i].val = value(r, 0);
  }
  return (lt_attrs_t){kv, n};
}

static void json_ok(lt_str_t s) {
  if (!s.len) return;
  json_error_t err;
  json_t *t = json_loadb(s.ptr, s.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
  /* valid JSON jansson cannot hold: a \u0000 inside an object key, an
   * unsigned 64-bit time */
  if (!t && (strstr(err.text, "NUL byte in object key") || strstr(err.text, "too big integer"))) return;
  if (!t) {
    fprintf(stderr, "bad JSON (%s): %.*s\n", err.text, (int)(s.len > 2000 ? 2000 : s.len), s.ptr);
    abort();
  }
  json_decref(t);
}

static const char *const event_names[] = {
  "gen_ai.evaluation.result", "gen_ai.user.message", "gen_ai.choice", "gen_ai.content.prompt",
  "ai.stream.firstChunk", "First Token Stream Event", "exception", "gen_ai.client.inference.operation.details",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  lt_arena_t *a = lt_arena_create(64u << 20);
  if (!a) return 0;
  static rd_t r;
  r = (rd_t){.p = data, .n = size, .a = a};
  lt_semconv_set_feature_key(byte(&r) & 1 ? "feature" : "sessionId");
  lt_otlp_span_t in;
  memset(&in, 0, sizeof in);
  in.trace_id[0] = in.span_id[0] = 1;
  in.start_ns = (uint64_t)(byte(&r) & 0x7f) << 56 | 1000;
  in.end_ns = in.start_ns + 5000;
  in.attrs = attrs(&r, 48);
  size_t ne = byte(&r) % 4;
  lt_otlp_event_t *evs = lt_arena_alloc(a, (ne ? ne : 1) * sizeof *evs);
  if (evs) {
    for (size_t i = 0; i < ne; i++) {
      evs[i].time_ns = in.start_ns + byte(&r);
      evs[i].name = lit(&r, event_names[byte(&r) % (sizeof event_names / sizeof event_names[0])]);
      evs[i].attrs = attrs(&r, 6);
    }
    in.events = evs;
    in.n_events = ne;
  }
  lt_semconv_resource_t res;
  lt_attrs_t rattrs = attrs(&r, 4);
  if (lt_semconv_resource(a, &rattrs, &res) != 0) goto out;
  lt_span_t s;
  int rc = lt_semconv_span(a, &res, NULL, &in, &s);
  if (rc == 0) {
    for (int i = 0; i < LT_TOK__COUNT; i++)
      if (s.tokens[i] < -1 || s.tokens[i] > 1000000000) abort();
    lt_str_t docs[] = {s.input_messages, s.output_messages, s.documents, s.scores, s.metadata, s.tags,
                       s.attributes, s.events, s.links};
    for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) json_ok(docs[i]);
  } else if (rc != LT_SEMCONV_DROP && rc != LT_ETOOBIG && rc != LT_ENOMEM) {
    abort();
  }
  lt_otlp_log_t log;
  memset(&log, 0, sizeof log);
  log.attrs = in.attrs;
  log.event_name = lit(&r, event_names[byte(&r) % (sizeof event_names / sizeof event_names[0])]);
  log.body = value(&r, 0);
  lt_log_t l;
  rc = lt_semconv_log(a, &res, NULL, &log, &l);
  if (rc == 0) {
    json_ok(l.input_messages);
    json_ok(l.output_messages);
    json_ok(l.attributes);
  } else if (rc != LT_ETOOBIG && rc != LT_ENOMEM) {
    abort();
  }
out:
  lt_semconv_set_feature_key(NULL);
  lt_arena_destroy(a);
  for (size_t i = 0; i < r.n_exact; i++) free(r.exact[i]);
  return 0;
}
