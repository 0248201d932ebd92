/* Semantic-convention mapping: decoded OTLP records → canonical records.
 *
 * Every scalar canonical field is a row of a table: the field (by offset)
 * and its ordered list of source attributes, each with the conversion its
 * value needs. The first source that is present and converts cleanly
 * wins; a source that is present but unusable (a negative token count, a
 * string where a number belongs, malformed JSON) is skipped and noted in
 * the stored attributes under "lanterna.warnings". The order of each list
 * is the precedence column of docs/semconv.md. Payloads (messages,
 * documents) follow the same first-source-wins rule in semconv_msgs.c.
 * Attribute lookups go through a per-span sorted index (semconv_attr.c).
 *
 * Adding a dialect is adding rows here (and layouts or sources in
 * semconv_msgs.c), plus a test. */
#include "model/semconv.h"
#include "core/err.h"
#include "model/json_out.h"
#include "model/semconv_int.h"
#include <inttypes.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

/* ---- the tables ------------------------------------------------------------ */

typedef enum {
  CV_TEXT,        /* string; numbers and booleans as their text */
  CV_PAYLOAD,     /* string as is; structured values as JSON text */
  CV_PROVIDER,    /* text, less a Vercel API suffix ("openai.chat" is "openai") */
  CV_COUNT,       /* token count: integer in [0, 1e9] */
  CV_USD,         /* float USD → integer nano-dollars */
  CV_SECONDS,     /* float seconds → ns */
  CV_MILLIS,      /* float milliseconds → ns */
  CV_ABS_TIME,    /* ISO 8601 timestamp (maybe JSON-quoted) → ns after the span start */
  CV_JSON_COUNT,  /* a count inside a JSON object, at the first of src_t.paths present */
  CV_JSON_USD,    /* a USD amount inside a JSON object, likewise */
  CV_KIND_NAME,   /* a kind name (LLM, CHAIN, ...), any case */
  CV_KIND_MAP,    /* a string mapped to a kind through src_t.map, any case */
  CV_IS_TOOL,     /* present → TOOL */
  CV_IS_LLM,      /* present → LLM */
  CV_IS_EMBEDDING,/* present → EMBEDDING */
  CV_FIRST,       /* first string of an array (or of a JSON array string) */
  CV_STR_LIST,    /* array of strings (or a JSON array string) → JSON array */
  CV_JSON_OBJECT, /* map, or JSON object string → JSON object */
  CV_PREFIX_OBJECT, /* every `<key><k>` attribute → JSON object {k: value} */
} conv_t;

typedef struct {
  const char *value;
  lt_kind_t kind;
} kind_map_t;

typedef struct {
  const char *key;
  conv_t conv;
  const kind_map_t *map;     /* CV_KIND_MAP only */
  const char *const *paths;  /* CV_JSON_*: dotted paths tried in order, NULL-terminated */
  size_t klen;               /* strlen(key) */
} src_t;

typedef struct {
  const char *field; /* the canonical field, for docs and debugging */
  size_t off;        /* where it lives in the record */
  const src_t *srcs; /* ordered, NULL-key terminated */
} rule_t;

#define SRCS(...) ((const src_t[]){__VA_ARGS__, {NULL, CV_TEXT, NULL, NULL, 0}})
#define SRC(k, cv) {k, cv, NULL, NULL, sizeof(k) - 1}
#define KMAP(k, map) {k, CV_KIND_MAP, map, NULL, sizeof(k) - 1}
#define JSRC(k, cv, paths) {k, cv, NULL, paths, sizeof(k) - 1}
#define PATHS(...) ((const char *const[]){__VA_ARGS__, NULL})
#define SPAN(f) #f, offsetof(lt_span_t, f)
#define TOK(t) #t, offsetof(lt_span_t, tokens[t])

/* langfuse.observation.type (any case). SPAN and EVENT are generic units of
 * work, not a LANGCHAIN-style "chain" link: they leave the kind to the next
 * source (often UNKNOWN). */
static const kind_map_t langfuse_kinds[] = {
  {"generation", LT_KIND_LLM},
  {"agent", LT_KIND_AGENT},
  {"tool", LT_KIND_TOOL},
  {"chain", LT_KIND_CHAIN},
  {"retriever", LT_KIND_RETRIEVER},
  {"evaluator", LT_KIND_EVALUATOR},
  {"embedding", LT_KIND_EMBEDDING},
  {"guardrail", LT_KIND_GUARDRAIL},
  {NULL, LT_KIND_UNKNOWN},
};

/* gen_ai.operation.name well-known values (GenAI registry), plus the AI
 * SDK v7 step span that wraps each model call of an agent loop. Others
 * (plan, memory operations, custom names) leave the kind to the next source. */
static const kind_map_t genai_operation_kinds[] = {
  {"chat", LT_KIND_LLM},
  {"text_completion", LT_KIND_LLM},
  {"generate_content", LT_KIND_LLM},
  {"embeddings", LT_KIND_EMBEDDING},
  {"retrieval", LT_KIND_RETRIEVER},
  {"execute_tool", LT_KIND_TOOL},
  {"invoke_agent", LT_KIND_AGENT},
  {"create_agent", LT_KIND_AGENT},
  {"invoke_workflow", LT_KIND_CHAIN},
  {"agent_step", LT_KIND_CHAIN},
  {NULL, LT_KIND_UNKNOWN},
};

/* traceloop.span.kind (OpenLLMetry). */
static const kind_map_t traceloop_kinds[] = {
  {"workflow", LT_KIND_CHAIN},
  {"task", LT_KIND_CHAIN},
  {"agent", LT_KIND_AGENT},
  {"tool", LT_KIND_TOOL},
  {NULL, LT_KIND_UNKNOWN},
};

/* llm.request.type (OpenLLMetry model calls). */
static const kind_map_t llm_request_kinds[] = {
  {"chat", LT_KIND_LLM},
  {"completion", LT_KIND_LLM},
  {"embedding", LT_KIND_EMBEDDING},
  {"rerank", LT_KIND_RERANKER},
  {NULL, LT_KIND_UNKNOWN},
};

/* Vercel AI SDK ai.operationId: the provider calls (`.do*`) are the model
 * calls; the outer calls wrap them (and their tool calls). */
static const kind_map_t vercel_operation_kinds[] = {
  {"ai.generateText.doGenerate", LT_KIND_LLM},
  {"ai.streamText.doStream", LT_KIND_LLM},
  {"ai.generateObject.doGenerate", LT_KIND_LLM},
  {"ai.streamObject.doStream", LT_KIND_LLM},
  {"ai.embed.doEmbed", LT_KIND_EMBEDDING},
  {"ai.embedMany.doEmbed", LT_KIND_EMBEDDING},
  {"ai.rerank.doRerank", LT_KIND_RERANKER},
  {"ai.toolCall", LT_KIND_TOOL},
  {"ai.generateText", LT_KIND_CHAIN},
  {"ai.streamText", LT_KIND_CHAIN},
  {"ai.generateObject", LT_KIND_CHAIN},
  {"ai.streamObject", LT_KIND_CHAIN},
  {"ai.embed", LT_KIND_CHAIN},
  {"ai.embedMany", LT_KIND_CHAIN},
  {"ai.rerank", LT_KIND_CHAIN},
  {NULL, LT_KIND_UNKNOWN},
};

/* Vercel outer calls whose usage is the sum of their provider calls. */
static const char *const vercel_rollup_operations[] = {
  "ai.generateText", "ai.streamText", "ai.generateObject", "ai.streamObject", "ai.embed", "ai.embedMany",
};

/* Langfuse usage_details / cost_details keys: Langfuse's own names, then
 * the provider usage objects its integrations pass through unchanged. */
#define LF_USAGE "langfuse.observation.usage_details"
#define LF_COST "langfuse.observation.cost_details"
static const char *const lf_input[] = {"input", "prompt_tokens", "input_tokens", NULL};
static const char *const lf_output[] = {"output", "completion_tokens", "output_tokens", NULL};
static const char *const lf_total[] = {"total", "total_tokens", NULL};
static const char *const lf_cache_read[] = {"input_cache_read", "input_cached_tokens", "cache_read_input_tokens",
                                           "prompt_tokens_details.cached_tokens",
                                           "input_tokens_details.cached_tokens", NULL};
static const char *const lf_cache_write[] = {"input_cache_creation", "input_cache_write",
                                            "cache_creation_input_tokens", NULL};
static const char *const lf_reasoning[] = {"output_reasoning", "output_reasoning_tokens",
                                          "completion_tokens_details.reasoning_tokens",
                                          "output_tokens_details.reasoning_tokens", NULL};

static const rule_t span_rules[] = {
  {SPAN(kind), SRCS(KMAP("langfuse.observation.type", langfuse_kinds),
                    SRC("openinference.span.kind", CV_KIND_NAME),
                    KMAP("gen_ai.operation.name", genai_operation_kinds),
                    KMAP("traceloop.span.kind", traceloop_kinds),
                    KMAP("llm.request.type", llm_request_kinds),
                    KMAP("ai.operationId", vercel_operation_kinds),
                    SRC("gen_ai.tool.name", CV_IS_TOOL),
                    SRC("ai.toolCall.name", CV_IS_TOOL),
                    SRC("gen_ai.request.model", CV_IS_LLM),
                    SRC("gen_ai.response.model", CV_IS_LLM),
                    SRC("llm.request.model_name", CV_IS_LLM),
                    SRC("llm.response.model_name", CV_IS_LLM),
                    SRC("llm.model_name", CV_IS_LLM),
                    SRC("ai.model.id", CV_IS_LLM),
                    SRC("langfuse.observation.model.name", CV_IS_LLM),
                    SRC("embedding.model_name", CV_IS_EMBEDDING))},
  {SPAN(request_model), SRCS(SRC("gen_ai.request.model", CV_TEXT),
                             SRC("llm.request.model_name", CV_TEXT),
                             SRC("llm.model_name", CV_TEXT),
                             SRC("ai.model.id", CV_TEXT),
                             SRC("embedding.model_name", CV_TEXT),
                             SRC("langfuse.observation.model.name", CV_TEXT))},
  {SPAN(response_model), SRCS(SRC("gen_ai.response.model", CV_TEXT),
                              SRC("llm.response.model_name", CV_TEXT),
                              SRC("ai.response.model", CV_TEXT),
                              SRC("llm.model_name", CV_TEXT))},
  {SPAN(provider), SRCS(SRC("gen_ai.provider.name", CV_PROVIDER),
                        SRC("gen_ai.system", CV_PROVIDER),
                        SRC("llm.provider", CV_PROVIDER),
                        SRC("llm.system", CV_PROVIDER),
                        SRC("ai.model.provider", CV_PROVIDER))},
  {SPAN(operation), SRCS(SRC("gen_ai.operation.name", CV_TEXT))},
  {TOK(LT_TOK_INPUT), SRCS(JSRC(LF_USAGE, CV_JSON_COUNT, lf_input),
                           SRC("gen_ai.usage.input_tokens", CV_COUNT),
                           SRC("gen_ai.usage.prompt_tokens", CV_COUNT),
                           SRC("llm.token_count.prompt", CV_COUNT),
                           SRC("ai.usage.inputTokens", CV_COUNT),
                           SRC("ai.usage.promptTokens", CV_COUNT),
                           SRC("ai.usage.tokens", CV_COUNT),
                           SRC("gen_ai.aggregated_usage.input_tokens", CV_COUNT))},
  {TOK(LT_TOK_OUTPUT), SRCS(JSRC(LF_USAGE, CV_JSON_COUNT, lf_output),
                            SRC("gen_ai.usage.output_tokens", CV_COUNT),
                            SRC("gen_ai.usage.completion_tokens", CV_COUNT),
                            SRC("llm.token_count.completion", CV_COUNT),
                            SRC("ai.usage.outputTokens", CV_COUNT),
                            SRC("ai.usage.completionTokens", CV_COUNT),
                            SRC("gen_ai.aggregated_usage.output_tokens", CV_COUNT))},
  {TOK(LT_TOK_TOTAL), SRCS(JSRC(LF_USAGE, CV_JSON_COUNT, lf_total),
                           SRC("llm.token_count.total", CV_COUNT),
                           SRC("gen_ai.usage.total_tokens", CV_COUNT),
                           SRC("llm.usage.total_tokens", CV_COUNT),
                           SRC("ai.usage.totalTokens", CV_COUNT))},
  {TOK(LT_TOK_CACHE_READ), SRCS(JSRC(LF_USAGE, CV_JSON_COUNT, lf_cache_read),
                                SRC("gen_ai.usage.cache_read.input_tokens", CV_COUNT),
                                SRC("gen_ai.usage.cache_read_input_tokens", CV_COUNT),
                                SRC("llm.token_count.prompt_details.cache_read", CV_COUNT),
                                SRC("ai.usage.inputTokenDetails.cacheReadTokens", CV_COUNT),
                                SRC("ai.usage.cachedInputTokens", CV_COUNT),
                                SRC("gen_ai.aggregated_usage.cache_read.input_tokens", CV_COUNT))},
  {TOK(LT_TOK_CACHE_WRITE), SRCS(JSRC(LF_USAGE, CV_JSON_COUNT, lf_cache_write),
                                 SRC("gen_ai.usage.cache_creation.input_tokens", CV_COUNT),
                                 SRC("gen_ai.usage.cache_creation_input_tokens", CV_COUNT),
                                 SRC("llm.token_count.prompt_details.cache_write", CV_COUNT),
                                 SRC("ai.usage.inputTokenDetails.cacheWriteTokens", CV_COUNT),
                                 SRC("gen_ai.aggregated_usage.cache_creation.input_tokens", CV_COUNT))},
  {TOK(LT_TOK_REASONING), SRCS(JSRC(LF_USAGE, CV_JSON_COUNT, lf_reasoning),
                               SRC("gen_ai.usage.reasoning.output_tokens", CV_COUNT),
                               SRC("llm.token_count.completion_details.reasoning", CV_COUNT),
                               SRC("gen_ai.usage.reasoning_tokens", CV_COUNT),
                               SRC("llm.usage.reasoning_tokens", CV_COUNT),
                               SRC("ai.usage.reasoningTokens", CV_COUNT),
                               SRC("ai.usage.outputTokenDetails.reasoningTokens", CV_COUNT))},
  {SPAN(cost_total), SRCS(JSRC(LF_COST, CV_JSON_USD, PATHS("total")),
                          SRC("llm.cost.total", CV_USD),
                          SRC("gen_ai.usage.cost", CV_USD),
                          SRC("operation.cost", CV_USD))},
  {SPAN(cost_input), SRCS(JSRC(LF_COST, CV_JSON_USD, PATHS("input")), SRC("llm.cost.prompt", CV_USD))},
  {SPAN(cost_output), SRCS(JSRC(LF_COST, CV_JSON_USD, PATHS("output")), SRC("llm.cost.completion", CV_USD))},
  {SPAN(ttft_ns), SRCS(SRC("langfuse.observation.completion_start_time", CV_ABS_TIME),
                       SRC("gen_ai.response.time_to_first_chunk", CV_SECONDS),
                       SRC("gen_ai.client.operation.time_to_first_chunk", CV_SECONDS),
                       SRC("ai.response.msToFirstChunk", CV_MILLIS),
                       SRC("ai.stream.msToFirstChunk", CV_MILLIS))},
  {SPAN(finish_reason), SRCS(SRC("gen_ai.response.finish_reasons", CV_FIRST),
                             SRC("llm.finish_reason", CV_TEXT),
                             SRC("ai.response.finishReason", CV_TEXT))},
  {SPAN(prompt_name), SRCS(SRC("langfuse.observation.prompt.name", CV_TEXT),
                           SRC("langfuse.prompt.name", CV_TEXT),
                           SRC("gen_ai.prompt.name", CV_TEXT),
                           SRC("traceloop.prompt.key", CV_TEXT))},
  {SPAN(prompt_version), SRCS(SRC("langfuse.observation.prompt.version", CV_TEXT),
                              SRC("langfuse.prompt.version", CV_TEXT),
                              SRC("llm.prompt_template.version", CV_TEXT),
                              SRC("traceloop.prompt.version", CV_TEXT))},
  {SPAN(session_id), SRCS(SRC("langfuse.session.id", CV_TEXT),
                          SRC("session.id", CV_TEXT),
                          SRC("gen_ai.conversation.id", CV_TEXT),
                          SRC("ai.telemetry.metadata.sessionId", CV_TEXT),
                          SRC("ai.settings.context.sessionId", CV_TEXT),
                          SRC("traceloop.association.properties.session_id", CV_TEXT))},
  {SPAN(user_id), SRCS(SRC("langfuse.user.id", CV_TEXT),
                       SRC("user.id", CV_TEXT),
                       SRC("ai.telemetry.metadata.userId", CV_TEXT),
                       SRC("ai.settings.context.userId", CV_TEXT),
                       SRC("traceloop.association.properties.user_id", CV_TEXT),
                       SRC("gen_ai.user", CV_TEXT),
                       SRC("llm.user", CV_TEXT))},
  {SPAN(tags), SRCS(SRC("langfuse.trace.tags", CV_STR_LIST),
                    SRC("tag.tags", CV_STR_LIST),
                    SRC("logfire.tags", CV_STR_LIST))},
  {SPAN(metadata), SRCS(SRC("langfuse.observation.metadata", CV_JSON_OBJECT),
                        SRC("langfuse.observation.metadata.", CV_PREFIX_OBJECT),
                        SRC("langfuse.trace.metadata", CV_JSON_OBJECT),
                        SRC("langfuse.trace.metadata.", CV_PREFIX_OBJECT),
                        SRC("metadata", CV_JSON_OBJECT),
                        SRC("ai.telemetry.metadata.", CV_PREFIX_OBJECT),
                        SRC("ai.settings.context.", CV_PREFIX_OBJECT),
                        SRC("traceloop.association.properties.", CV_PREFIX_OBJECT))},
  {SPAN(feature), SRCS(SRC("lanterna.feature", CV_TEXT))},
  /* span first; the resource's value is the fallback (lt_semconv_span) */
  {SPAN(environment), SRCS(SRC("langfuse.environment", CV_TEXT),
                           SRC("deployment.environment.name", CV_TEXT),
                           SRC("deployment.environment", CV_TEXT))},
  {SPAN(release), SRCS(SRC("langfuse.release", CV_TEXT))},
  {SPAN(input), SRCS(SRC("langfuse.observation.input", CV_PAYLOAD),
                     SRC("input.value", CV_PAYLOAD),
                     SRC("traceloop.entity.input", CV_PAYLOAD),
                     SRC("ai.prompt", CV_PAYLOAD),
                     SRC("gen_ai.tool.call.arguments", CV_PAYLOAD),
                     SRC("ai.toolCall.args", CV_PAYLOAD))},
  {SPAN(output), SRCS(SRC("langfuse.observation.output", CV_PAYLOAD),
                      SRC("output.value", CV_PAYLOAD),
                      SRC("traceloop.entity.output", CV_PAYLOAD),
                      SRC("ai.response.text", CV_PAYLOAD),
                      SRC("ai.response.object", CV_PAYLOAD),
                      SRC("gen_ai.tool.call.result", CV_PAYLOAD),
                      SRC("ai.toolCall.result", CV_PAYLOAD),
                      SRC("final_result", CV_PAYLOAD))},
};

#define RES(f) #f, offsetof(lt_semconv_resource_t, f)
static const rule_t resource_rules[] = {
  {RES(service), SRCS(SRC("service.name", CV_TEXT))},
  {RES(environment), SRCS(SRC("langfuse.environment", CV_TEXT),
                          SRC("deployment.environment.name", CV_TEXT),
                          SRC("deployment.environment", CV_TEXT))},
  {RES(release), SRCS(SRC("langfuse.release", CV_TEXT), SRC("service.version", CV_TEXT))},
};

#define LOG(f) #f, offsetof(lt_log_t, f)
static const rule_t log_rules[] = {
  {LOG(event_name), SRCS(SRC("event.name", CV_TEXT))},
};

/* Where the feature is looked up when lanterna.feature is absent: the
 * configured key inside each metadata source, flattened (`<prefix><key>`)
 * or a JSON object attribute. */
static const struct {
  const char *key;
  bool flat;
} feature_srcs[] = {
  {"langfuse.observation.metadata.", true},
  {"langfuse.observation.metadata", false},
  {"langfuse.trace.metadata.", true},
  {"langfuse.trace.metadata", false},
  {"metadata", false},
  {"ai.telemetry.metadata.", true},
  {"ai.settings.context.", true},
  {"traceloop.association.properties.", true},
};

/* Provider suffixes the Vercel AI SDK appends to name the API used. */
static const char *const provider_suffixes[] = {
  ".chat", ".responses", ".completion", ".embedding", ".image", ".transcription", ".speech",
};

/* Span events whose time marks the first streamed token. */
static const char *const first_token_events[] = {
  "First Token Stream Event",        /* OpenInference */
  "gen_ai.content.completion.chunk",
  "llm.content.completion.chunk",
  "ai.stream.firstChunk",            /* Vercel AI SDK */
};

/* Bounds beyond which a reported number is an instrumentation bug. */
#define MAX_TOKENS 1000000000LL   /* 10^9 per span */
#define MAX_USD 1e6               /* per span */
#define MAX_SECONDS 1e6           /* time to first token */

/* ---- applying rules ------------------------------------------------------------ */

typedef union {
  lt_str_t s;
  int64_t i;
  lt_kind_t k;
} conv_out_t;

typedef enum { OUT_STR, OUT_I64, OUT_KIND } out_type_t;

static out_type_t out_type(conv_t cv) {
  switch (cv) {
  case CV_COUNT: case CV_USD: case CV_SECONDS: case CV_MILLIS: case CV_ABS_TIME: case CV_JSON_COUNT:
  case CV_JSON_USD: return OUT_I64;
  case CV_KIND_NAME: case CV_KIND_MAP: case CV_IS_TOOL: case CV_IS_LLM: case CV_IS_EMBEDDING: return OUT_KIND;
  default: return OUT_STR;
  }
}

/* A non-empty string value, else NULL. */
static bool str_val(const lt_val_t *v, lt_str_t *s) {
  if (v->type != LT_VAL_STR || v->u.s.len == 0) return false;
  *s = v->u.s;
  return true;
}

static int render_to_arena(lt__sc_t *c, const json_t *t, lt_str_t *out) {
  lt_buf_reset(&c->buf);
  int rc = lt__json_tree(&c->buf, t);
  return rc ? rc : lt__buf_to_arena(c->a, &c->buf, out);
}

/* CV_FIRST: gen_ai.response.finish_reasons is a string array, but arrives
 * as a JSON string or a bare string from some SDKs. */
static int conv_first(lt__sc_t *c, const lt_val_t *v, lt_str_t *out, const char **why) {
  if (v->type == LT_VAL_ARRAY) {
    if (v->u.arr.n == 0) return LT__CV_BAD; /* nothing to say, nothing wrong */
    if (v->u.arr.items[0].type != LT_VAL_STR) {
      *why = "not an array of strings";
      return LT__CV_BAD;
    }
    return lt__cv_text(c, &v->u.arr.items[0], out, why);
  }
  lt_str_t s;
  if (!str_val(v, &s)) {
    *why = "not an array of strings";
    return LT__CV_BAD;
  }
  if (s.ptr[0] != '[') return lt__cv_text(c, v, out, why);
  json_t *t = lt__json_parse(s.ptr, s.len);
  json_t *e = json_array_get(t, 0);
  int rc = LT__CV_BAD;
  if (json_is_string(e)) {
    *out = lt_arena_strdup(c->a, json_string_value(e), json_string_length(e));
    rc = out->ptr ? LT__CV_OK : LT_ETOOBIG;
  } else if (!json_is_array(t)) {
    *why = "malformed JSON";
  } else if (json_array_size(t)) {
    *why = "not an array of strings";
  }
  json_decref(t);
  return rc;
}

/* CV_STR_LIST: a JSON array of strings; scalars in the list become text. */
static int conv_str_list(lt__sc_t *c, const lt_val_t *v, lt_str_t *out, const char **why) {
  json_t *list = NULL;
  lt_str_t s;
  int rc = LT__CV_BAD;
  if (v->type == LT_VAL_ARRAY) {
    list = lt__val_tree(v);
    if (!list) return LT_ENOMEM;
  } else if (str_val(v, &s) && s.ptr[0] == '[') {
    list = lt__json_parse(s.ptr, s.len);
    if (!json_is_array(list)) {
      *why = "malformed JSON";
      goto out;
    }
  } else if (str_val(v, &s)) {
    list = json_pack("[s#]", s.ptr, (int)(s.len > INT32_MAX ? INT32_MAX : s.len));
    if (!list) { /* invalid UTF-8 is refused by json_pack: say so, keep going */
      *why = "not valid UTF-8";
      goto out;
    }
  } else {
    *why = "not a list of strings";
    goto out;
  }
  json_t *clean = json_array();
  if (!clean) {
    rc = LT_ENOMEM;
    goto out;
  }
  size_t i;
  json_t *e;
  rc = 0;
  json_array_foreach(list, i, e) {
    if (json_is_string(e)) {
      if (json_array_append(clean, e)) rc = LT_ENOMEM;
    } else if (json_is_number(e) || json_is_boolean(e)) { /* tags: [2024] means "2024" */
      lt_buf_reset(&c->buf);
      rc = lt__json_tree(&c->buf, e);
      if (rc == 0 && json_array_append_new(clean, json_stringn_nocheck(c->buf.ptr, c->buf.len))) rc = LT_ENOMEM;
    }
    if (rc) break;
  }
  if (rc == 0) rc = render_to_arena(c, clean, out);
  json_decref(clean);
out:
  json_decref(list);
  return rc;
}

/* CV_JSON_OBJECT: metadata arrives as a JSON string (OpenInference) or as
 * a structured map. */
static int conv_json_object(lt__sc_t *c, const lt_val_t *v, lt_str_t *out, const char **why) {
  if (v->type == LT_VAL_KVLIST) {
    lt_buf_reset(&c->buf);
    int rc = lt__json_val(&c->buf, v);
    return rc ? rc : lt__buf_to_arena(c->a, &c->buf, out);
  }
  lt_str_t s;
  if (!str_val(v, &s)) {
    *why = "not a JSON object";
    return LT__CV_BAD;
  }
  json_t *t = lt__json_parse(s.ptr, s.len);
  int rc = LT__CV_BAD;
  if (json_is_object(t)) rc = render_to_arena(c, t, out);
  else *why = t ? "not a JSON object" : "malformed JSON";
  json_decref(t);
  return rc;
}

/* Float in [0, max] scaled to an integer (nano-units). */
static int conv_scaled(const lt_val_t *v, double max, double scale, int64_t *out, const char **why) {
  double d;
  int rc = lt__cv_double(v, &d, why);
  if (rc != LT__CV_OK) return rc;
  if (d < 0) {
    *why = "negative";
    return LT__CV_BAD;
  }
  if (d > max) {
    *why = "out of range";
    return LT__CV_BAD;
  }
  *out = llround(d * scale);
  return LT__CV_OK;
}

/* A token count: an integer in [0, 10^9]. */
static int conv_count(const lt_val_t *v, int64_t *out, const char **why) {
  int rc = lt__cv_int(v, out, why);
  if (rc != LT__CV_OK) return rc;
  if (*out < 0) *why = "negative";
  else if (*out > MAX_TOKENS) *why = "above 10^9";
  else return LT__CV_OK;
  return LT__CV_BAD;
}

/* CV_PROVIDER: the AI SDK names the API after the provider
 * ("openai.chat", "openai.responses"); the provider is the part before. */
static int conv_provider(lt__sc_t *c, const lt_val_t *v, lt_str_t *out, const char **why) {
  int rc = lt__cv_text(c, v, out, why);
  if (rc != LT__CV_OK) return rc;
  for (size_t i = 0; i < sizeof provider_suffixes / sizeof provider_suffixes[0]; i++) {
    size_t n = strlen(provider_suffixes[i]);
    if (out->len > n && memcmp(out->ptr + out->len - n, provider_suffixes[i], n) == 0) {
      out->len -= n;
      break;
    }
  }
  return LT__CV_OK;
}

/* Reads exactly n decimal digits at *p. */
static bool digits(const char **p, const char *end, int n, int *out) {
  int v = 0;
  for (int i = 0; i < n; i++, (*p)++) {
    if (*p >= end || **p < '0' || **p > '9') return false;
    v = v * 10 + (**p - '0');
  }
  *out = v;
  return true;
}

/* Days since 1970-01-01 of a proleptic Gregorian date. */
static int64_t days_from_civil(int64_t y, int m, int d) {
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t yoe = y - era * 400;
  int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

/* RFC 3339 timestamp ("2026-11-27T08:14:41.573192Z", offsets allowed) →
 * Unix ns. Langfuse sends it JSON-encoded, quotes included. */
static bool parse_rfc3339(lt_str_t s, int64_t *ns) {
  const char *p = s.ptr, *end = s.ptr + s.len;
  if (p < end && *p == '"') {
    p++;
    if (end - p < 1 || end[-1] != '"') return false;
    end--;
  }
  int y, mo, d, h, mi, sec;
  if (!digits(&p, end, 4, &y) || p >= end || *p++ != '-' || !digits(&p, end, 2, &mo) || p >= end || *p++ != '-' ||
      !digits(&p, end, 2, &d) || p >= end || (*p != 'T' && *p != 't' && *p != ' ') || !(++p) ||
      !digits(&p, end, 2, &h) || p >= end || *p++ != ':' || !digits(&p, end, 2, &mi) || p >= end || *p++ != ':' ||
      !digits(&p, end, 2, &sec))
    return false;
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60) return false;
  int64_t frac = 0, scale = 1000000000;
  if (p < end && *p == '.') {
    p++;
    const char *f = p;
    while (p < end && *p >= '0' && *p <= '9') {
      if (scale > 1) {
        scale /= 10;
        frac += (*p - '0') * scale;
      }
      p++;
    }
    if (p == f) return false;
  }
  int64_t off = 0;
  if (p < end && (*p == 'Z' || *p == 'z')) {
    p++;
  } else if (p < end && (*p == '+' || *p == '-')) {
    int sign = *p++ == '-' ? -1 : 1, oh, om;
    if (!digits(&p, end, 2, &oh) || p >= end || *p++ != ':' || !digits(&p, end, 2, &om)) return false;
    off = sign * (oh * 3600 + om * 60);
  }
  if (p != end) return false;
  int64_t secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - off;
  if (secs < 0 || secs > INT64_MAX / 1000000000 - 1) return false;
  *ns = secs * 1000000000 + frac;
  return true;
}

/* CV_ABS_TIME: an absolute time → ns after the span start. */
static int conv_abs_time(lt__sc_t *c, const lt_val_t *v, int64_t *out, const char **why) {
  int64_t t;
  if (v->type != LT_VAL_STR || !parse_rfc3339(v->u.s, &t)) {
    *why = "not an RFC 3339 timestamp";
    return LT__CV_BAD;
  }
  if (t < c->start_ns || t - c->start_ns > (int64_t)(MAX_SECONDS * 1e9)) {
    *why = "out of range";
    return LT__CV_BAD;
  }
  *out = t - c->start_ns;
  return LT__CV_OK;
}

/* The value at a dotted path inside a JSON object, or NULL. */
static const json_t *json_path(const json_t *t, const char *path) {
  char part[64];
  while (t && *path) {
    size_t n = strcspn(path, ".");
    if (n >= sizeof part) return NULL;
    memcpy(part, path, n);
    part[n] = '\0';
    t = json_object_get(t, part);
    path += n + (path[n] == '.');
  }
  return t;
}

/* CV_JSON_COUNT / CV_JSON_USD: a number inside a JSON object attribute
 * (Langfuse usage_details, cost_details). *sub names the path used, for
 * warnings. */
static int conv_json_number(lt__sc_t *c, const src_t *s, const lt_val_t *v, int64_t *out, const char **why,
                            const char **sub) {
  bool bad;
  const json_t *t = lt__sc_json(c, v, &bad);
  if (!json_is_object(t)) {
    *why = bad || v->type == LT_VAL_STR ? "malformed JSON" : "not a JSON object";
    return LT__CV_BAD;
  }
  for (const char *const *p = s->paths; *p; p++) {
    const json_t *e = json_path(t, *p);
    if (!e || json_is_null(e)) continue;
    *sub = *p;
    lt_val_t num = {.type = LT_VAL_DOUBLE};
    if (json_is_integer(e)) {
      num.type = LT_VAL_INT;
      num.u.i = json_integer_value(e);
    } else if (json_is_real(e)) {
      num.u.d = json_real_value(e);
    } else if (json_is_string(e)) {
      num.type = LT_VAL_STR;
      num.u.s = (lt_str_t){json_string_value(e), json_string_length(e)};
    } else {
      *why = "not a number";
      return LT__CV_BAD;
    }
    if (s->conv == CV_JSON_USD) return conv_scaled(&num, MAX_USD, 1e9, out, why);
    return conv_count(&num, out, why);
  }
  return LT__CV_BAD; /* none of the keys: nothing said, nothing wrong */
}

/* CV_PREFIX_OBJECT: flattened metadata (`ai.telemetry.metadata.<k>`) as
 * one JSON object, values typed as sent. */
static int conv_prefix_object(lt__sc_t *c, const char *prefix, lt_str_t *out) {
  size_t plen = strlen(prefix), first, end;
  lt__idx_prefix(&c->ix, prefix, plen, &first, &end);
  if (first == end) return LT__CV_BAD;
  lt_buf_t *b = &c->buf;
  lt_buf_reset(b);
  int rc = lt_buf_append(b, "{", 1);
  size_t n = 0;
  for (size_t i = first; rc == 0 && i < end; i++) {
    const lt_kv_t *kv = c->ix.kv[i];
    if (kv->key.len == plen) continue;
    /* a repeated key (invalid OTLP) keeps its first value, as lookups do */
    if (i > first && kv->key.len == c->ix.kv[i - 1]->key.len &&
        memcmp(kv->key.ptr, c->ix.kv[i - 1]->key.ptr, kv->key.len) == 0)
      continue;
    if (n++) rc = lt_buf_append(b, ",", 1);
    if (rc == 0) rc = lt_buf_json_str(b, kv->key.ptr + plen, kv->key.len - plen);
    if (rc == 0) rc = lt_buf_append(b, ":", 1);
    if (rc == 0) rc = lt__json_val(b, &kv->val);
  }
  if (rc == 0) rc = lt_buf_append(b, "}", 1);
  if (rc) return rc;
  return n ? lt__buf_to_arena(c->a, b, out) : LT__CV_BAD;
}

/* Converts v as s says. LT__CV_BAD with *why NULL means "not a match"
 * (an unknown enum value, an empty string): skipped without a warning. */
static int convert(lt__sc_t *c, const src_t *s, const lt_val_t *v, conv_out_t *o, const char **why,
                   const char **sub) {
  lt_str_t str;
  int rc;
  switch (s->conv) {
  case CV_TEXT:
  case CV_PAYLOAD:
    if (v->type == LT_VAL_STR && v->u.s.len == 0) return LT__CV_BAD;
    rc = s->conv == CV_TEXT ? lt__cv_text(c, v, &o->s, why) : lt__cv_payload(c, v, &o->s, why);
    return rc == LT__CV_OK && o->s.len == 0 ? LT__CV_BAD : rc;
  case CV_PROVIDER:
    if (v->type == LT_VAL_STR && v->u.s.len == 0) return LT__CV_BAD;
    rc = conv_provider(c, v, &o->s, why);
    return rc == LT__CV_OK && o->s.len == 0 ? LT__CV_BAD : rc;
  case CV_COUNT: return conv_count(v, &o->i, why);
  case CV_ABS_TIME: return conv_abs_time(c, v, &o->i, why);
  case CV_JSON_COUNT:
  case CV_JSON_USD: return conv_json_number(c, s, v, &o->i, why, sub);
  case CV_PREFIX_OBJECT: return conv_prefix_object(c, s->key, &o->s);
  case CV_USD: return conv_scaled(v, MAX_USD, 1e9, &o->i, why);
  case CV_SECONDS: return conv_scaled(v, MAX_SECONDS, 1e9, &o->i, why);
  case CV_MILLIS: return conv_scaled(v, MAX_SECONDS * 1e3, 1e6, &o->i, why);
  case CV_KIND_NAME:
    if (!str_val(v, &str)) {
      *why = "not a string";
      return LT__CV_BAD;
    }
    o->k = lt_kind_parse(str);
    if (o->k != LT_KIND_UNKNOWN) return LT__CV_OK;
    if (!lt_str_eq_lit(str, "UNKNOWN") && !lt_str_eq_lit(str, "unknown")) *why = "unknown span kind";
    return LT__CV_BAD;
  case CV_KIND_MAP:
    if (!str_val(v, &str)) return LT__CV_BAD;
    for (const kind_map_t *m = s->map; m && m->value; m++) {
      if (str.len == strlen(m->value) && strncasecmp(str.ptr, m->value, str.len) == 0) {
        o->k = m->kind;
        return LT__CV_OK;
      }
    }
    return LT__CV_BAD;
  case CV_IS_TOOL:
  case CV_IS_LLM:
  case CV_IS_EMBEDDING:
    if (v->type == LT_VAL_EMPTY || (v->type == LT_VAL_STR && v->u.s.len == 0)) return LT__CV_BAD;
    o->k = s->conv == CV_IS_TOOL ? LT_KIND_TOOL : s->conv == CV_IS_LLM ? LT_KIND_LLM : LT_KIND_EMBEDDING;
    return LT__CV_OK;
  case CV_FIRST: return conv_first(c, v, &o->s, why);
  case CV_STR_LIST: return conv_str_list(c, v, &o->s, why);
  case CV_JSON_OBJECT: return conv_json_object(c, v, &o->s, why);
  }
  return LT__CV_BAD;
}

static void store(void *rec, size_t off, conv_t cv, const conv_out_t *o) {
  char *p = (char *)rec + off;
  switch (out_type(cv)) {
  case OUT_STR: memcpy(p, &o->s, sizeof o->s); break;
  case OUT_I64: memcpy(p, &o->i, sizeof o->i); break;
  case OUT_KIND: memcpy(p, &o->k, sizeof o->k); break;
  }
}

/* Warns about "key: why", or "key.sub: why" for a value inside a JSON
 * attribute. */
static int warn_src(lt__sc_t *c, const char *key, const char *sub, const char *why) {
  char k[LT_SC_MAX_KEY];
  int n = snprintf(k, sizeof k, "%s%s%s", key, sub ? "." : "", sub ? sub : "");
  if (n < 0) return 0;
  return lt__sc_warn(c, k, (size_t)n >= sizeof k ? sizeof k - 1 : (size_t)n, why);
}

static int apply_rules(lt__sc_t *c, const rule_t *rules, size_t n, void *rec) {
  static const lt_val_t present = {.type = LT_VAL_EMPTY};
  for (size_t r = 0; r < n; r++) {
    for (const src_t *s = rules[r].srcs; s->key; s++) {
      /* a prefix source has no value of its own: the converter walks the run */
      const lt_val_t *v = s->conv == CV_PREFIX_OBJECT ? &present : lt__idx_get(&c->ix, s->key, s->klen);
      if (!v) continue;
      conv_out_t o;
      const char *why = NULL, *sub = NULL;
      int rc = convert(c, s, v, &o, &why, &sub);
      if (rc < 0) return rc;
      if (rc == LT__CV_OK) {
        store(rec, rules[r].off, s->conv, &o);
        break;
      }
      if (why && (rc = warn_src(c, s->key, sub, why))) return rc;
    }
  }
  return 0;
}

/* ---- raw JSON fields --------------------------------------------------------------- */

int lt__sc_elide(lt__sc_t *c, const char *s, size_t n, const char *ptr_fmt, ...) {
  if (!c->skip || n < LT__SC_ELIDE_MIN) return 0;
  for (size_t i = 0; i < c->attrs->n; i++) {
    const lt_kv_t *kv = &c->attrs->items[i];
    if (c->skip[i] || kv->val.type != LT_VAL_STR || kv->val.u.s.len != n || memcmp(kv->val.u.s.ptr, s, n) != 0)
      continue;
    char ptr[96];
    va_list ap;
    va_start(ap, ptr_fmt);
    int pn = vsnprintf(ptr, sizeof ptr, ptr_fmt, ap);
    va_end(ap);
    if (pn < 0 || (size_t)pn >= sizeof ptr) return 0;
    lt_buf_t *b = &c->elided;
    int rc = lt_buf_append(b, c->n_elided++ ? "," : "{", 1);
    if (rc == 0) rc = lt_buf_json_str(b, kv->key.ptr, kv->key.len);
    if (rc == 0) rc = lt_buf_append(b, ":", 1);
    if (rc == 0) rc = lt_buf_json_str(b, ptr, (size_t)pn);
    if (rc == 0) c->skip[i] = true;
    return rc;
  }
  return 0;
}

int lt__sc_elide_contents(lt__sc_t *c, const json_t *arr, const char *field) {
  int rc = 0;
  for (size_t i = 0; rc == 0 && c->skip && i < json_array_size(arr); i++) {
    const json_t *v = json_object_get(json_array_get(arr, i), "content");
    if (json_is_string(v)) rc = lt__sc_elide(c, json_string_value(v), json_string_length(v), "/%s/%zu/content", field, i);
  }
  return rc;
}

/* Starts elision for a span whose attributes hold any text long enough. */
static int elide_begin(lt__sc_t *c, const lt_attrs_t *attrs) {
  c->attrs = attrs;
  for (size_t i = 0; i < attrs->n; i++) {
    if (attrs->items[i].val.type == LT_VAL_STR && attrs->items[i].val.u.s.len >= LT__SC_ELIDE_MIN) {
      c->skip = lt_arena_alloc(c->a, attrs->n * sizeof *c->skip);
      if (!c->skip) return LT_ETOOBIG;
      memset(c->skip, 0, attrs->n * sizeof *c->skip);
      lt_buf_init(&c->elided, (size_t)1 << 30);
      return 0;
    }
  }
  return 0;
}

/* The attributes as a JSON object, with the mapping's warnings appended
 * as "lanterna.warnings" (replacing a source attribute of that name).
 * Attributes marked in skip (may be NULL) are left out. */
static int attributes_json(lt__sc_t *c, const lt_attrs_t *attrs, const bool *skip, lt_str_t *out) {
  static const char wkey[] = "lanterna.warnings";
  lt_buf_t *b = &c->buf;
  size_t n = 0;
  int rc = 0;
  *out = LT_STR_NULL;
  if (!attrs->n && !c->n_warn) return 0;
  lt_buf_reset(b);
  rc = lt_buf_append(b, "{", 1);
  for (size_t i = 0; rc == 0 && i < attrs->n; i++) {
    const lt_kv_t *kv = &attrs->items[i];
    if (skip && skip[i]) continue;
    if (c->n_warn && lt_str_eq_lit(kv->key, wkey)) continue;
    if (n++) rc = lt_buf_append(b, ",", 1);
    if (rc == 0) rc = lt_buf_json_str(b, kv->key.ptr, kv->key.len);
    if (rc == 0) rc = lt_buf_append(b, ":", 1);
    if (rc == 0) rc = lt__json_val(b, &kv->val);
  }
  if (rc == 0 && c->n_warn) {
    if (n) rc = lt_buf_append(b, ",", 1);
    if (rc == 0) rc = lt_buf_printf(b, "\"%s\":[", wkey);
    for (size_t i = 0; rc == 0 && i < c->n_warn; i++) {
      if (i) rc = lt_buf_append(b, ",", 1);
      if (rc == 0) rc = lt_buf_json_str(b, c->warn[i].ptr, c->warn[i].len);
    }
    if (rc == 0 && c->n_warn_dropped) rc = lt_buf_printf(b, ",\"%zu more warnings\"", c->n_warn_dropped);
    if (rc == 0) rc = lt_buf_append(b, "]", 1);
  }
  if (rc == 0) rc = lt_buf_append(b, "}", 1);
  if (rc == 0) rc = lt__buf_to_arena(c->a, b, out);
  return rc;
}

static int events_json(lt__sc_t *c, const lt_otlp_span_t *in, lt_str_t *out) {
  lt_buf_t *b = &c->buf;
  int rc = 0;
  *out = LT_STR_NULL;
  if (!in->n_events) return 0;
  lt_buf_reset(b);
  rc = lt_buf_append(b, "[", 1);
  for (size_t i = 0; rc == 0 && i < in->n_events; i++) {
    const lt_otlp_event_t *ev = &in->events[i];
    if (i) rc = lt_buf_append(b, ",", 1);
    if (rc == 0) rc = lt_buf_puts(b, "{\"name\":");
    if (rc == 0) rc = lt_buf_json_str(b, ev->name.ptr, ev->name.len);
    if (rc == 0) rc = lt_buf_printf(b, ",\"time_ns\":%" PRIu64 ",\"attributes\":", ev->time_ns);
    if (rc == 0) rc = lt__json_attrs(b, &ev->attrs);
    if (rc == 0) rc = lt_buf_append(b, "}", 1);
  }
  if (rc == 0) rc = lt_buf_append(b, "]", 1);
  if (rc == 0) rc = lt__buf_to_arena(c->a, b, out);
  return rc;
}

static int links_json(lt__sc_t *c, const lt_otlp_span_t *in, lt_str_t *out) {
  lt_buf_t *b = &c->buf;
  int rc = 0;
  *out = LT_STR_NULL;
  if (!in->n_links) return 0;
  lt_buf_reset(b);
  rc = lt_buf_append(b, "[", 1);
  for (size_t i = 0; rc == 0 && i < in->n_links; i++) {
    const lt_otlp_link_t *l = &in->links[i];
    if (i) rc = lt_buf_append(b, ",", 1);
    if (rc == 0) rc = lt_buf_puts(b, "{\"trace_id\":\"");
    if (rc == 0) rc = lt_buf_hex(b, l->trace_id, sizeof l->trace_id);
    if (rc == 0) rc = lt_buf_puts(b, "\",\"span_id\":\"");
    if (rc == 0) rc = lt_buf_hex(b, l->span_id, sizeof l->span_id);
    if (rc == 0) rc = lt_buf_puts(b, "\",");
    if (rc == 0 && l->trace_state.len) {
      rc = lt_buf_puts(b, "\"trace_state\":");
      if (rc == 0) rc = lt_buf_json_str(b, l->trace_state.ptr, l->trace_state.len);
      if (rc == 0) rc = lt_buf_append(b, ",", 1);
    }
    if (rc == 0) rc = lt_buf_puts(b, "\"attributes\":");
    if (rc == 0) rc = lt__json_attrs(b, &l->attrs);
    if (rc == 0) rc = lt_buf_append(b, "}", 1);
  }
  if (rc == 0) rc = lt_buf_append(b, "]", 1);
  if (rc == 0) rc = lt__buf_to_arena(c->a, b, out);
  return rc;
}

/* ---- helpers ----------------------------------------------------------------------- */

static int64_t clamp_ns(uint64_t v) { return v > INT64_MAX ? INT64_MAX : (int64_t)v; }

static int copy_str(lt_arena_t *a, lt_str_t s, lt_str_t *out) {
  *out = LT_STR_NULL;
  if (!s.len) return 0;
  *out = lt_arena_strdup(a, s.ptr, s.len);
  return out->ptr ? 0 : LT_ETOOBIG;
}

/* The first event named name, or NULL. */
static const lt_otlp_event_t *find_event(const lt_otlp_span_t *in, const char *name) {
  for (size_t i = 0; i < in->n_events; i++)
    if (lt_str_eq_lit(in->events[i].name, name)) return &in->events[i];
  return NULL;
}

/* Time to first token from the earliest first-chunk event. */
static int64_t ttft_from_events(const lt_otlp_span_t *in) {
  uint64_t best = 0;
  for (size_t i = 0; i < in->n_events; i++) {
    const lt_otlp_event_t *ev = &in->events[i];
    for (size_t k = 0; k < sizeof first_token_events / sizeof first_token_events[0]; k++) {
      if (lt_str_eq_lit(ev->name, first_token_events[k]) && ev->time_ns >= in->start_ns &&
          (best == 0 || ev->time_ns < best))
        best = ev->time_ns;
    }
  }
  return best ? clamp_ns(best - in->start_ns) : -1;
}

/* ---- public API ------------------------------------------------------------------------ */

int lt_semconv_resource(lt_arena_t *a, const lt_attrs_t *resource, lt_semconv_resource_t *out) {
  static const lt_attrs_t none = {NULL, 0};
  lt__sc_t c;
  memset(out, 0, sizeof *out);
  if (!resource) resource = &none;
  out->resource = resource;
  int rc = lt__sc_init(&c, a, resource);
  if (rc == 0) rc = apply_rules(&c, resource_rules, sizeof resource_rules / sizeof resource_rules[0], out);
  if (rc == 0) rc = lt_attrs_json(a, resource, &out->resource_json);
  lt__sc_free(&c);
  return rc;
}

/* ---- process-wide settings ------------------------------------------------------ */

#define DEFAULT_FEATURE_KEY "feature"
static char feature_key[LT_SC_MAX_KEY / 2] = DEFAULT_FEATURE_KEY;

void lt_semconv_set_feature_key(const char *key) {
  size_t n = key ? strlen(key) : 0;
  if (n == 0 || n >= sizeof feature_key) key = DEFAULT_FEATURE_KEY, n = strlen(DEFAULT_FEATURE_KEY);
  memcpy(feature_key, key, n + 1);
}

/* ---- span-level derivations ----------------------------------------------------- */

/* Logfire sends a placeholder when a long span starts and the real span
 * when it ends; the placeholder has its own span id, so keeping it would
 * show the work twice. */
static bool is_pending_placeholder(const lt_otlp_span_t *in) {
  const lt_val_t *v = lt_attrs_get(&in->attrs, "logfire.span_type");
  return v && v->type == LT_VAL_STR && lt_str_eq_lit(v->u.s, "pending_span");
}

/* The configured metadata key in the span's metadata sources. */
static int feature_from_metadata(lt__sc_t *c, lt_str_t *out) {
  for (size_t i = 0; i < sizeof feature_srcs / sizeof feature_srcs[0]; i++) {
    const lt_val_t *v;
    lt_val_t tmp;
    if (feature_srcs[i].flat) {
      v = lt__idx_get2(&c->ix, feature_srcs[i].key, feature_key);
    } else {
      bool bad;
      const json_t *t = lt__sc_json(c, lt__idx_get(&c->ix, feature_srcs[i].key, strlen(feature_srcs[i].key)), &bad);
      const json_t *e = json_object_get(t, feature_key);
      if (!json_is_string(e)) continue;
      tmp = (lt_val_t){.type = LT_VAL_STR};
      tmp.u.s = (lt_str_t){json_string_value(e), json_string_length(e)};
      v = &tmp;
    }
    if (!v || (v->type == LT_VAL_STR && v->u.s.len == 0)) continue;
    const char *why = NULL;
    int rc = lt__cv_text(c, v, out, &why);
    if (rc < 0) return rc;
    if (rc == LT__CV_OK && out->len) return 0;
  }
  return 0;
}

/* Token counts that summarise child spans: Vercel's outer calls, and any
 * agent or workflow wrapper that reports usage. */
static bool is_usage_rollup(lt__sc_t *c, const lt_span_t *out) {
  bool any = false;
  for (int i = 0; i < LT_TOK__COUNT; i++) any |= out->tokens[i] >= 0;
  if (!any) return false;
  if (out->kind == LT_KIND_AGENT || out->kind == LT_KIND_CHAIN) return true;
  const lt_val_t *op = lt__idx_get(&c->ix, "ai.operationId", strlen("ai.operationId"));
  if (!op || op->type != LT_VAL_STR) return false;
  for (size_t i = 0; i < sizeof vercel_rollup_operations / sizeof vercel_rollup_operations[0]; i++)
    if (lt_str_eq_lit(op->u.s, vercel_rollup_operations[i])) return true;
  return false;
}

int lt_semconv_span(lt_arena_t *a, const lt_semconv_resource_t *res, const lt_otlp_scope_t *scope,
                    const lt_otlp_span_t *in, lt_span_t *out) {
  lt__sc_t c;
  lt_span_init(out);
  if (is_pending_placeholder(in)) return LT_SEMCONV_DROP;
  memcpy(out->trace_id, in->trace_id, sizeof out->trace_id);
  memcpy(out->span_id, in->span_id, sizeof out->span_id);
  memcpy(out->parent_span_id, in->parent_span_id, sizeof out->parent_span_id);
  out->has_parent = in->has_parent;
  out->otel_kind = in->kind;
  out->start_ns = clamp_ns(in->start_ns);
  out->end_ns = clamp_ns(in->end_ns);
  out->status = in->status_code == 2 ? LT_STATUS_ERROR : in->status_code == 1 ? LT_STATUS_OK : LT_STATUS_UNSET;
  /* costs start unknown so the rules can tell "reported" from "absent" */
  out->cost_input = out->cost_output = out->cost_total = -1;

  int rc = lt__sc_init(&c, a, &in->attrs);
  /* An end before the start (an end never set, or clocks that disagree)
   * would be a negative duration in every list and latency percentile (a
   * missing end read as -56 years): the span ends where it starts and
   * says why in its warnings. */
  if (rc == 0 && out->end_ns < out->start_ns) {
    rc = lt__sc_warn(&c, "endTimeUnixNano", strlen("endTimeUnixNano"),
                     in->end_ns ? "before the start time; set to the start time" : "missing; set to the start time");
    out->end_ns = out->start_ns;
  }
  c.events = in->events;
  c.n_events = in->n_events;
  c.start_ns = out->start_ns;
  if (rc == 0) rc = copy_str(a, in->name, &out->name);
  if (rc == 0) rc = copy_str(a, in->status_message, &out->status_message);
  if (rc == 0 && scope) rc = copy_str(a, scope->name, &out->scope);
  if (rc == 0) rc = apply_rules(&c, span_rules, sizeof span_rules / sizeof span_rules[0], out);
  if (rc == 0 && !out->feature.len) rc = feature_from_metadata(&c, &out->feature);
  if (rc) goto out;

  /* derived and fallback values */
  int64_t *tok = out->tokens;
  if (tok[LT_TOK_TOTAL] < 0 && tok[LT_TOK_INPUT] >= 0 && tok[LT_TOK_OUTPUT] >= 0)
    tok[LT_TOK_TOTAL] = tok[LT_TOK_INPUT] + tok[LT_TOK_OUTPUT];
  if (out->cost_total < 0 && out->cost_input >= 0 && out->cost_output >= 0)
    out->cost_total = out->cost_input + out->cost_output;
  out->usage_rollup = is_usage_rollup(&c, out);
  if (out->cost_total >= 0 || out->cost_input >= 0 || out->cost_output >= 0) {
    out->cost_source = LT_COST_REPORTED; /* parts not reported stay -1 */
  } else {
    /* a wrapper's usage is its children's: they carry the cost */
    out->cost_source = out->usage_rollup ? LT_COST_NONE : LT_COST_UNKNOWN;
    out->cost_input = out->cost_output = out->cost_total = 0;
  }
  if (out->ttft_ns < 0) out->ttft_ns = ttft_from_events(in);
  if (!out->status_message.len && out->status != LT_STATUS_OK) {
    const lt_otlp_event_t *ex = find_event(in, "exception");
    const lt_val_t *msg = ex ? lt_attrs_get(&ex->attrs, "exception.message") : NULL;
    if (msg && msg->type == LT_VAL_STR) rc = copy_str(a, msg->u.s, &out->status_message);
  }
  if (res) {
    out->service = res->service;
    out->resource = res->resource_json;
    if (!out->release.len) out->release = res->release;
    if (!out->environment.len) out->environment = res->environment;
  }

  /* payloads; long attribute texts they hold verbatim are stored once */
  lt_str_t text;
  if (rc == 0) rc = elide_begin(&c, &in->attrs);
  if (rc == 0) rc = lt__sc_messages(&c, false, &out->input_messages, &text);
  if (rc == 0 && !out->input.len) out->input = text;
  if (rc == 0) rc = lt__sc_messages(&c, true, &out->output_messages, &text);
  if (rc == 0 && !out->output.len) out->output = text;
  if (rc == 0 && !out->finish_reason.len) out->finish_reason = c.out_finish_reason;
  if (rc == 0) rc = lt__sc_documents(&c, &out->documents);
  if (rc == 0) rc = lt__sc_scores(&c, &out->scores);

  /* raw, last: the attributes carry the warnings of everything above */
  if (rc == 0) rc = lt__sc_elide(&c, out->input.ptr, out->input.len, "/input");
  if (rc == 0) rc = lt__sc_elide(&c, out->output.ptr, out->output.len, "/output");
  if (rc == 0 && c.n_elided) {
    rc = lt_buf_append(&c.elided, "}", 1);
    if (rc == 0) rc = lt__buf_to_arena(a, &c.elided, &out->elided);
  }
  if (rc == 0) rc = attributes_json(&c, &in->attrs, c.skip, &out->attributes);
  if (rc == 0) rc = events_json(&c, in, &out->events);
  if (rc == 0) rc = links_json(&c, in, &out->links);
out:
  lt__sc_free(&c);
  return rc;
}

/* A GenAI event sent as a log record carries its message in the body (or,
 * for the operation-details event, message lists in its attributes). The
 * body is presented to the message normaliser as a one-event span, so the
 * same tables serve span events and log records. */
static int log_messages(lt__sc_t *c, const lt_otlp_log_t *in, lt_log_t *out) {
  if (!lt_str_starts(out->event_name, "gen_ai.")) return 0;
  lt_otlp_event_t ev = {.time_ns = in->time_ns, .name = out->event_name};
  if (in->body.type == LT_VAL_KVLIST) {
    ev.attrs.items = in->body.u.kv.items;
    ev.attrs.n = in->body.u.kv.n;
  }
  c->events = &ev;
  c->n_events = 1;
  lt_str_t text;
  int rc = lt__sc_messages(c, false, &out->input_messages, &text);
  if (rc == 0) rc = lt__sc_messages(c, true, &out->output_messages, &text);
  c->events = NULL;
  c->n_events = 0;
  return rc;
}

int lt_semconv_log(lt_arena_t *a, const lt_semconv_resource_t *res, const lt_otlp_scope_t *scope,
                   const lt_otlp_log_t *in, lt_log_t *out) {
  lt__sc_t c;
  memset(out, 0, sizeof *out);
  memcpy(out->trace_id, in->trace_id, sizeof out->trace_id);
  memcpy(out->span_id, in->span_id, sizeof out->span_id);
  out->has_trace = in->has_trace;
  out->has_span = in->has_span;
  /* OTLP: when the event time is unknown, the observed time stands in */
  out->time_ns = clamp_ns(in->time_ns ? in->time_ns : in->observed_ns);
  out->severity_number = in->severity_number;

  int rc = lt__sc_init(&c, a, &in->attrs);
  if (rc == 0) rc = copy_str(a, in->severity_text, &out->severity_text);
  if (rc == 0 && scope) rc = copy_str(a, scope->name, &out->scope);
  if (rc == 0 && in->event_name.len) rc = copy_str(a, in->event_name, &out->event_name);
  else if (rc == 0) rc = apply_rules(&c, log_rules, sizeof log_rules / sizeof log_rules[0], out);
  if (rc == 0) rc = lt_val_json(a, &in->body, &out->body);
  if (rc == 0) rc = attributes_json(&c, &in->attrs, NULL, &out->attributes);
  if (rc == 0 && out->event_name.len) rc = log_messages(&c, in, out);
  if (res) {
    out->resource = res->resource_json;
    out->service = res->service;
  }
  lt__sc_free(&c);
  return rc;
}

int lt_semconv_point(lt_arena_t *a, const lt_semconv_resource_t *res, const lt_otlp_scope_t *scope,
                     const lt_otlp_metric_t *m, const lt_otlp_point_t *in, lt_point_t *out) {
  memset(out, 0, sizeof *out);
  out->type = (int)m->type;
  out->temporality = m->temporality;
  out->start_ns = clamp_ns(in->start_ns);
  out->time_ns = clamp_ns(in->time_ns);
  out->count = -1;
  switch (m->type) {
  case LT_METRIC_GAUGE:
  case LT_METRIC_SUM: out->value = in->value; break;
  default:
    out->value = in->has_sum ? in->sum : 0;
    out->count = in->count > INT64_MAX ? INT64_MAX : (int64_t)in->count;
  }
  int rc = copy_str(a, m->name, &out->name);
  if (rc == 0) rc = copy_str(a, m->unit, &out->unit);
  if (rc == 0 && scope) rc = copy_str(a, scope->name, &out->scope);
  if (rc == 0) rc = lt_attrs_json(a, &in->attrs, &out->attributes);
  if (res) out->service = res->service;
  if (rc == 0 && m->type == LT_METRIC_HISTOGRAM) {
    lt_buf_t b;
    lt_buf_init(&b, (size_t)1 << 30);
    rc = lt_buf_puts(&b, "{\"bucket_counts\":[");
    for (size_t i = 0; rc == 0 && i < in->n_buckets; i++)
      rc = lt_buf_printf(&b, "%s%" PRIu64, i ? "," : "", in->bucket_counts[i]);
    if (rc == 0) rc = lt_buf_puts(&b, "],\"explicit_bounds\":[");
    for (size_t i = 0; rc == 0 && i < in->n_bounds; i++) {
      if (i) rc = lt_buf_append(&b, ",", 1);
      if (rc == 0) rc = lt__json_double(&b, in->explicit_bounds[i]);
    }
    if (rc == 0) rc = lt_buf_append(&b, "]", 1);
    if (rc == 0 && in->has_min) rc = lt_buf_puts(&b, ",\"min\":");
    if (rc == 0 && in->has_min) rc = lt__json_double(&b, in->min);
    if (rc == 0 && in->has_max) rc = lt_buf_puts(&b, ",\"max\":");
    if (rc == 0 && in->has_max) rc = lt__json_double(&b, in->max);
    if (rc == 0 && in->has_sum) rc = lt_buf_puts(&b, ",\"sum\":");
    if (rc == 0 && in->has_sum) rc = lt__json_double(&b, in->sum);
    if (rc == 0) rc = lt_buf_append(&b, "}", 1);
    if (rc == 0) rc = lt__buf_to_arena(a, &b, &out->data);
    lt_buf_free(&b);
  }
  return rc;
}
