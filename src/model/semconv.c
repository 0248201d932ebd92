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

/* ---- the tables ------------------------------------------------------------ */

typedef enum {
  CV_TEXT,        /* string; numbers and booleans as their text */
  CV_PAYLOAD,     /* string as is; structured values as JSON text */
  CV_COUNT,       /* token count: integer in [0, 1e9] */
  CV_USD,         /* float USD → integer nano-dollars */
  CV_SECONDS,     /* float seconds → ns */
  CV_MILLIS,      /* float milliseconds → ns */
  CV_KIND_NAME,   /* a kind name (LLM, CHAIN, ...), any case */
  CV_KIND_MAP,    /* a string mapped to a kind through src_t.map */
  CV_IS_TOOL,     /* present → TOOL */
  CV_IS_LLM,      /* present → LLM */
  CV_IS_EMBEDDING,/* present → EMBEDDING */
  CV_FIRST,       /* first string of an array (or of a JSON array string) */
  CV_STR_LIST,    /* array of strings (or a JSON array string) → JSON array */
  CV_JSON_OBJECT, /* map, or JSON object string → JSON object */
} conv_t;

typedef struct {
  const char *value;
  lt_kind_t kind;
} kind_map_t;

typedef struct {
  const char *key;
  conv_t conv;
  const kind_map_t *map; /* CV_KIND_MAP only */
} src_t;

typedef struct {
  const char *field; /* the canonical field, for docs and debugging */
  size_t off;        /* where it lives in the record */
  const src_t *srcs; /* ordered, NULL-key terminated */
} rule_t;

#define SRCS(...) ((const src_t[]){__VA_ARGS__, {NULL, CV_TEXT, NULL}})
#define SPAN(f) #f, offsetof(lt_span_t, f)
#define TOK(t) #t, offsetof(lt_span_t, tokens[t])

/* gen_ai.operation.name well-known values (GenAI registry). Others (plan,
 * memory operations, custom names) leave the kind to the next source. */
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

/* Token sources other than OpenInference and GenAI are here already where
 * they are plain renames (Vercel AI `ai.usage.*`); the rest of those
 * dialects comes with their own tests. */
static const rule_t span_rules[] = {
  {SPAN(kind), SRCS({"openinference.span.kind", CV_KIND_NAME, NULL},
                    {"gen_ai.operation.name", CV_KIND_MAP, genai_operation_kinds},
                    {"traceloop.span.kind", CV_KIND_MAP, traceloop_kinds},
                    {"gen_ai.tool.name", CV_IS_TOOL, NULL},
                    {"gen_ai.request.model", CV_IS_LLM, NULL},
                    {"gen_ai.response.model", CV_IS_LLM, NULL},
                    {"llm.request.model_name", CV_IS_LLM, NULL},
                    {"llm.response.model_name", CV_IS_LLM, NULL},
                    {"llm.model_name", CV_IS_LLM, NULL},
                    {"embedding.model_name", CV_IS_EMBEDDING, NULL})},
  {SPAN(request_model), SRCS({"gen_ai.request.model", CV_TEXT, NULL},
                             {"llm.request.model_name", CV_TEXT, NULL},
                             {"llm.model_name", CV_TEXT, NULL},
                             {"ai.model.id", CV_TEXT, NULL},
                             {"embedding.model_name", CV_TEXT, NULL})},
  {SPAN(response_model), SRCS({"gen_ai.response.model", CV_TEXT, NULL},
                              {"llm.response.model_name", CV_TEXT, NULL},
                              {"ai.response.model", CV_TEXT, NULL},
                              {"llm.model_name", CV_TEXT, NULL})},
  {SPAN(provider), SRCS({"gen_ai.provider.name", CV_TEXT, NULL},
                        {"gen_ai.system", CV_TEXT, NULL},
                        {"llm.provider", CV_TEXT, NULL},
                        {"llm.system", CV_TEXT, NULL})},
  {SPAN(operation), SRCS({"gen_ai.operation.name", CV_TEXT, NULL})},
  {TOK(LT_TOK_INPUT), SRCS({"gen_ai.usage.input_tokens", CV_COUNT, NULL},
                           {"gen_ai.usage.prompt_tokens", CV_COUNT, NULL},
                           {"llm.token_count.prompt", CV_COUNT, NULL},
                           {"ai.usage.inputTokens", CV_COUNT, NULL},
                           {"ai.usage.promptTokens", CV_COUNT, NULL},
                           {"ai.usage.tokens", CV_COUNT, NULL})},
  {TOK(LT_TOK_OUTPUT), SRCS({"gen_ai.usage.output_tokens", CV_COUNT, NULL},
                            {"gen_ai.usage.completion_tokens", CV_COUNT, NULL},
                            {"llm.token_count.completion", CV_COUNT, NULL},
                            {"ai.usage.outputTokens", CV_COUNT, NULL},
                            {"ai.usage.completionTokens", CV_COUNT, NULL})},
  {TOK(LT_TOK_TOTAL), SRCS({"llm.token_count.total", CV_COUNT, NULL},
                           {"gen_ai.usage.total_tokens", CV_COUNT, NULL},
                           {"llm.usage.total_tokens", CV_COUNT, NULL},
                           {"ai.usage.totalTokens", CV_COUNT, NULL})},
  {TOK(LT_TOK_CACHE_READ), SRCS({"gen_ai.usage.cache_read.input_tokens", CV_COUNT, NULL},
                                {"gen_ai.usage.cache_read_input_tokens", CV_COUNT, NULL},
                                {"llm.token_count.prompt_details.cache_read", CV_COUNT, NULL},
                                {"ai.usage.inputTokenDetails.cacheReadTokens", CV_COUNT, NULL},
                                {"ai.usage.cachedInputTokens", CV_COUNT, NULL})},
  {TOK(LT_TOK_CACHE_WRITE), SRCS({"gen_ai.usage.cache_creation.input_tokens", CV_COUNT, NULL},
                                 {"gen_ai.usage.cache_creation_input_tokens", CV_COUNT, NULL},
                                 {"llm.token_count.prompt_details.cache_write", CV_COUNT, NULL},
                                 {"ai.usage.inputTokenDetails.cacheWriteTokens", CV_COUNT, NULL})},
  {TOK(LT_TOK_REASONING), SRCS({"gen_ai.usage.reasoning.output_tokens", CV_COUNT, NULL},
                               {"llm.token_count.completion_details.reasoning", CV_COUNT, NULL},
                               {"gen_ai.usage.reasoning_tokens", CV_COUNT, NULL},
                               {"llm.usage.reasoning_tokens", CV_COUNT, NULL},
                               {"ai.usage.reasoningTokens", CV_COUNT, NULL})},
  {SPAN(cost_total), SRCS({"llm.cost.total", CV_USD, NULL}, {"gen_ai.usage.cost", CV_USD, NULL})},
  {SPAN(cost_input), SRCS({"llm.cost.prompt", CV_USD, NULL})},
  {SPAN(cost_output), SRCS({"llm.cost.completion", CV_USD, NULL})},
  {SPAN(ttft_ns), SRCS({"gen_ai.response.time_to_first_chunk", CV_SECONDS, NULL},
                       {"ai.response.msToFirstChunk", CV_MILLIS, NULL},
                       {"ai.stream.msToFirstChunk", CV_MILLIS, NULL})},
  {SPAN(finish_reason), SRCS({"gen_ai.response.finish_reasons", CV_FIRST, NULL},
                             {"llm.finish_reason", CV_TEXT, NULL},
                             {"ai.response.finishReason", CV_TEXT, NULL})},
  {SPAN(prompt_name), SRCS({"gen_ai.prompt.name", CV_TEXT, NULL})},
  {SPAN(prompt_version), SRCS({"llm.prompt_template.version", CV_TEXT, NULL})},
  {SPAN(session_id), SRCS({"session.id", CV_TEXT, NULL},
                          {"gen_ai.conversation.id", CV_TEXT, NULL},
                          {"ai.telemetry.metadata.sessionId", CV_TEXT, NULL},
                          {"traceloop.association.properties.session_id", CV_TEXT, NULL})},
  {SPAN(user_id), SRCS({"user.id", CV_TEXT, NULL},
                       {"ai.telemetry.metadata.userId", CV_TEXT, NULL},
                       {"traceloop.association.properties.user_id", CV_TEXT, NULL},
                       {"gen_ai.user", CV_TEXT, NULL},
                       {"llm.user", CV_TEXT, NULL})},
  {SPAN(tags), SRCS({"tag.tags", CV_STR_LIST, NULL})},
  {SPAN(metadata), SRCS({"metadata", CV_JSON_OBJECT, NULL})},
  /* span first; the resource's value is the fallback (lt_semconv_span) */
  {SPAN(environment), SRCS({"deployment.environment.name", CV_TEXT, NULL},
                           {"deployment.environment", CV_TEXT, NULL})},
  {SPAN(input), SRCS({"input.value", CV_PAYLOAD, NULL},
                     {"traceloop.entity.input", CV_PAYLOAD, NULL},
                     {"gen_ai.tool.call.arguments", CV_PAYLOAD, NULL})},
  {SPAN(output), SRCS({"output.value", CV_PAYLOAD, NULL},
                      {"traceloop.entity.output", CV_PAYLOAD, NULL},
                      {"gen_ai.tool.call.result", CV_PAYLOAD, NULL})},
};

#define RES(f) #f, offsetof(lt_semconv_resource_t, f)
static const rule_t resource_rules[] = {
  {RES(service), SRCS({"service.name", CV_TEXT, NULL})},
  {RES(environment), SRCS({"deployment.environment.name", CV_TEXT, NULL},
                          {"deployment.environment", CV_TEXT, NULL})},
  {RES(release), SRCS({"service.version", CV_TEXT, NULL})},
};

#define LOG(f) #f, offsetof(lt_log_t, f)
static const rule_t log_rules[] = {
  {LOG(event_name), SRCS({"event.name", CV_TEXT, NULL})},
};

/* Span events whose time marks the first streamed token. */
static const char *const first_token_events[] = {
  "First Token Stream Event",        /* OpenInference */
  "gen_ai.content.completion.chunk",
  "llm.content.completion.chunk",
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
  case CV_COUNT: case CV_USD: case CV_SECONDS: case CV_MILLIS: return OUT_I64;
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

/* Converts v as s says. LT__CV_BAD with *why NULL means "not a match"
 * (an unknown enum value, an empty string): skipped without a warning. */
static int convert(lt__sc_t *c, const src_t *s, const lt_val_t *v, conv_out_t *o, const char **why) {
  lt_str_t str;
  int rc;
  switch (s->conv) {
  case CV_TEXT:
  case CV_PAYLOAD:
    if (v->type == LT_VAL_STR && v->u.s.len == 0) return LT__CV_BAD;
    rc = s->conv == CV_TEXT ? lt__cv_text(c, v, &o->s, why) : lt__cv_payload(c, v, &o->s, why);
    return rc == LT__CV_OK && o->s.len == 0 ? LT__CV_BAD : rc;
  case CV_COUNT:
    rc = lt__cv_int(v, &o->i, why);
    if (rc != LT__CV_OK) return rc;
    if (o->i < 0) *why = "negative";
    else if (o->i > MAX_TOKENS) *why = "above 10^9";
    else return LT__CV_OK;
    return LT__CV_BAD;
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
      if (lt_str_eq_lit(str, m->value)) {
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

static int apply_rules(lt__sc_t *c, const rule_t *rules, size_t n, void *rec) {
  for (size_t r = 0; r < n; r++) {
    for (const src_t *s = rules[r].srcs; s->key; s++) {
      size_t klen = strlen(s->key);
      const lt_val_t *v = lt__idx_get(&c->ix, s->key, klen);
      if (!v) continue;
      conv_out_t o;
      const char *why = NULL;
      int rc = convert(c, s, v, &o, &why);
      if (rc < 0) return rc;
      if (rc == LT__CV_OK) {
        store(rec, rules[r].off, s->conv, &o);
        break;
      }
      if (why && (rc = lt__sc_warn(c, s->key, klen, why))) return rc;
    }
  }
  return 0;
}

/* ---- raw JSON fields --------------------------------------------------------------- */

/* The attributes as a JSON object, with the mapping's warnings appended
 * as "lanterna.warnings" (replacing a source attribute of that name). */
static int attributes_json(lt__sc_t *c, const lt_attrs_t *attrs, lt_str_t *out) {
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

int lt_semconv_span(lt_arena_t *a, const lt_semconv_resource_t *res, const lt_otlp_scope_t *scope,
                    const lt_otlp_span_t *in, lt_span_t *out) {
  lt__sc_t c;
  lt_span_init(out);
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
  c.events = in->events;
  c.n_events = in->n_events;
  if (rc == 0) rc = copy_str(a, in->name, &out->name);
  if (rc == 0) rc = copy_str(a, in->status_message, &out->status_message);
  if (rc == 0 && scope) rc = copy_str(a, scope->name, &out->scope);
  if (rc == 0) rc = apply_rules(&c, span_rules, sizeof span_rules / sizeof span_rules[0], out);
  if (rc) goto out;

  /* derived and fallback values */
  int64_t *tok = out->tokens;
  if (tok[LT_TOK_TOTAL] < 0 && tok[LT_TOK_INPUT] >= 0 && tok[LT_TOK_OUTPUT] >= 0)
    tok[LT_TOK_TOTAL] = tok[LT_TOK_INPUT] + tok[LT_TOK_OUTPUT];
  if (out->cost_total < 0 && out->cost_input >= 0 && out->cost_output >= 0)
    out->cost_total = out->cost_input + out->cost_output;
  if (out->cost_total >= 0 || out->cost_input >= 0 || out->cost_output >= 0) {
    out->cost_source = LT_COST_REPORTED; /* parts not reported stay -1 */
  } else {
    out->cost_source = LT_COST_UNKNOWN;
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
    out->release = res->release;
    out->resource = res->resource_json;
    if (!out->environment.len) out->environment = res->environment;
  }

  /* payloads */
  lt_str_t text;
  if (rc == 0) rc = lt__sc_messages(&c, false, &out->input_messages, &text);
  if (rc == 0 && !out->input.len) out->input = text;
  if (rc == 0) rc = lt__sc_messages(&c, true, &out->output_messages, &text);
  if (rc == 0 && !out->output.len) out->output = text;
  if (rc == 0 && !out->finish_reason.len) out->finish_reason = c.out_finish_reason;
  if (rc == 0) rc = lt__sc_documents(&c, &out->documents);

  /* raw, last: the attributes carry the warnings of everything above */
  if (rc == 0) rc = attributes_json(&c, &in->attrs, &out->attributes);
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
  if (rc == 0) rc = attributes_json(&c, &in->attrs, &out->attributes);
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
