/* The canonical records every source is mapped into: spans, log records and
 * metric data points. Whatever the dialect or transport (OTLP protobuf or
 * JSON, the proxy, the SDK), the store only ever sees these. Slices point
 * into the arena of the batch that carries the record (pipeline/batch.h).
 * Unknown numbers are -1, never 0: "no tokens reported" and "zero tokens"
 * are different facts. JSON-valued fields hold a complete JSON document
 * (or are empty when there is nothing). */
#ifndef LT_SPAN_H
#define LT_SPAN_H
#include <stdbool.h>
#include <stdint.h>
#include "core/slice.h"

#define LT_SPAN_KINDS(X) \
  X(UNKNOWN) X(LLM) X(CHAIN) X(RETRIEVER) X(EMBEDDING) X(TOOL) X(AGENT) \
  X(RERANKER) X(GUARDRAIL) X(EVALUATOR) X(PROMPT)

typedef enum {
#define LT_KIND_ENUM_(k) LT_KIND_##k,
  LT_SPAN_KINDS(LT_KIND_ENUM_)
#undef LT_KIND_ENUM_
  LT_KIND__COUNT
} lt_kind_t;

/* "LLM", "CHAIN", ...; lt_kind_parse is case-insensitive and returns
 * LT_KIND_UNKNOWN for anything it does not know. */
const char *lt_kind_name(lt_kind_t k);
lt_kind_t lt_kind_parse(lt_str_t s);

typedef enum { LT_STATUS_UNSET = 0, LT_STATUS_OK = 1, LT_STATUS_ERROR = 2 } lt_status_t;
const char *lt_status_name(lt_status_t s); /* "unset", "ok", "error" */

typedef enum {
  LT_TOK_INPUT = 0,   /* prompt tokens, as the source reported them */
  LT_TOK_OUTPUT,      /* completion tokens */
  LT_TOK_TOTAL,
  LT_TOK_CACHE_READ,
  LT_TOK_CACHE_WRITE,
  LT_TOK_REASONING,
  LT_TOK__COUNT
} lt_tok_t;

typedef enum {
  LT_COST_UNKNOWN = 0, /* never shown as $0 */
  LT_COST_REPORTED,    /* the source sent a cost */
  LT_COST_COMPUTED,    /* we priced the tokens */
  LT_COST_NONE         /* a wrapper span (agent, chain): its children carry the cost */
} lt_cost_source_t;
const char *lt_cost_source_name(lt_cost_source_t s);

/* Money is integer nano-dollars (1e-9 USD): no float drift in sums, and a
 * single token of the cheapest model is still representable. */
typedef int64_t lt_nusd_t;

typedef struct lt_span {
  uint8_t trace_id[16], span_id[8], parent_span_id[8];
  bool has_parent;
  lt_str_t name;
  lt_kind_t kind;
  int otel_kind;           /* OTLP SpanKind, kept for export */
  int64_t start_ns, end_ns;
  lt_status_t status;
  lt_str_t status_message;
  lt_str_t service, environment, release, scope;
  /* LLM */
  lt_str_t provider, request_model, response_model, operation;
  int64_t tokens[LT_TOK__COUNT]; /* -1 = unknown */
  /* Whether tokens[LT_TOK_INPUT] already contains the cache-read tokens,
   * as the dialect defines it: 1 yes (OpenAI-style, Vercel v6+), 0 no
   * (Anthropic-style, reported apart), -1 not known (the price table's
   * per-model default decides). */
  int8_t input_includes_cache;
  lt_nusd_t cost_input, cost_output, cost_total; /* valid unless cost_source is UNKNOWN */
  lt_cost_source_t cost_source;
  int64_t ttft_ns;                /* -1 = unknown */
  lt_str_t finish_reason;
  lt_str_t prompt_name, prompt_version;
  /* Token counts that summarise child spans (an agent or workflow wrapper,
   * Vercel's outer ai.generateText): shown on the span, never added to
   * trace totals, rollups or cost, so nothing is counted twice. */
  bool usage_rollup;
  /* The product feature the call serves (lanterna.feature, or the
   * configured metadata key): a rollup dimension. */
  lt_str_t feature;
  /* Context */
  lt_str_t session_id, user_id;
  lt_str_t tags;      /* JSON array of strings, or empty */
  lt_str_t metadata;  /* JSON object, or empty */
  /* Payloads */
  lt_str_t input, output;                 /* generic text (input.value ...), may be JSON text */
  lt_str_t input_messages, output_messages; /* JSON arrays of {role, content, tool_calls?...} */
  lt_str_t documents;                     /* JSON array of {id, content, score, metadata} */
  /* Inline evaluations carried by the span (OpenInference annotations,
   * gen_ai.evaluation.result events ...): JSON array of
   * {name, value?, string_value?, comment?, source?}, or empty. Stored as
   * scores on the span. */
  lt_str_t scores;
  /* Raw, so nothing is lost */
  lt_str_t attributes, resource, events, links; /* JSON */
  /* Text attributes of 64+ bytes that were exactly the span's input or
   * output (OpenInference input.value, ...) are left out of attributes and
   * named here, so the largest texts are escaped, compressed and stored
   * once: a JSON object {"input.value":"input","output.value":"output"},
   * or empty. Whoever shows attributes puts them back (the store's read
   * path does). */
  lt_str_t elided;
} lt_span_t;

/* Sets every numeric field to "unknown" and everything else to empty. */
void lt_span_init(lt_span_t *s);

/* True when cost_input/output/total hold money (reported or computed). */
static inline bool lt_span_has_cost(const lt_span_t *s) {
  return s->cost_source == LT_COST_REPORTED || s->cost_source == LT_COST_COMPUTED;
}

/* A canonical log record. */
typedef struct {
  uint8_t trace_id[16], span_id[8];
  bool has_trace, has_span;
  int64_t time_ns;
  int severity_number;
  lt_str_t severity_text;
  lt_str_t event_name;   /* event.name attribute or LogRecord.event_name */
  lt_str_t body;         /* JSON value */
  lt_str_t attributes;   /* JSON object */
  lt_str_t resource;     /* JSON object */
  lt_str_t service, scope;
  /* GenAI content carried by the record (gen_ai.user.message, gen_ai.choice,
   * gen_ai.client.inference.operation.details ...), normalised like span
   * messages: JSON arrays, or empty. The query layer gives them to the
   * span the record belongs to when the span has no messages of its own. */
  lt_str_t input_messages, output_messages;
} lt_log_t;

/* A canonical metric data point. */
typedef struct {
  lt_str_t name, unit, service, scope;
  int type;              /* lt_metric_type_t (model/otlp.h) */
  int temporality;
  int64_t start_ns, time_ns;
  double value;          /* GAUGE/SUM value; HISTOGRAM sum */
  int64_t count;         /* HISTOGRAM/SUMMARY count, else -1 */
  lt_str_t attributes;   /* JSON object */
  lt_str_t data;         /* JSON: buckets/bounds/min/max for histograms, else empty */
} lt_point_t;

#endif
