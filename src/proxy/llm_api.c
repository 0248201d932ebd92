/* OpenAI and Anthropic request/response bodies → canonical span fields
 * (llm_api.h). Messages come out in the schema of docs/semconv.md:
 * [{role, content (string or parts), tool_calls [{id, name, arguments}],
 * tool_call_id, name}]. */
#include "proxy/llm_api.h"
#include <string.h>
#include "core/err.h"
#include "core/mem.h"

/* Streamed text kept for the span (the capture cap applies to the wire
 * copy; this bounds what one call can hold in memory). */
#define MAX_TEXT (4u << 20)
#define MAX_TOOL_CALLS 128

static bool ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), m = strlen(suffix);
  return n >= m && !strcmp(s + n - m, suffix);
}

lt_llm_api_t lt_llm_api_of(const char *path, bool anthropic) {
  /* Trailing slashes and a version prefix do not matter. */
  char p[512];
  size_t n = strlen(path);
  if (n >= sizeof p) return LT_API_OTHER;
  memcpy(p, path, n + 1);
  while (n && p[n - 1] == '/') p[--n] = '\0';
  if (anthropic) return ends_with(p, "messages") ? LT_API_ANTHROPIC_MESSAGES : LT_API_OTHER;
  if (ends_with(p, "chat/completions")) return LT_API_OPENAI_CHAT;
  if (ends_with(p, "completions")) return LT_API_OPENAI_COMPLETIONS;
  if (ends_with(p, "embeddings")) return LT_API_OPENAI_EMBEDDINGS;
  if (ends_with(p, "responses")) return LT_API_OPENAI_RESPONSES;
  return LT_API_OTHER;
}

void lt_llm_init(lt_llm_call_t *c, lt_llm_api_t api) {
  memset(c, 0, sizeof *c);
  c->api = api;
  c->first_token_ns = -1;
  lt_buf_init(&c->text, MAX_TEXT);
  lt_buf_init(&c->reasoning, MAX_TEXT);
}

void lt_llm_free(lt_llm_call_t *c) {
  json_decref(c->req);
  json_decref(c->resp);
  json_decref(c->tools);
  json_decref(c->usage);
  lt_buf_free(&c->text);
  lt_buf_free(&c->reasoning);
}

static const char *jstr(json_t *o, const char *k) {
  const char *s = json_string_value(json_object_get(o, k));
  return s ? s : "";
}

static void copy_str(char *dst, size_t cap, const char *s) {
  if (!s || !*s) return;
  size_t n = strlen(s);
  if (n >= cap) n = cap - 1;
  memcpy(dst, s, n);
  dst[n] = '\0';
}

/* ---- request ---------------------------------------------------------- */

int lt_llm_request(lt_llm_call_t *c, const char *body, size_t len, bool add_stream_usage, char **out,
                   size_t *out_len) {
  *out = NULL;
  *out_len = 0;
  if (c->api == LT_API_OTHER || !len) return 0;
  c->req = json_loadb(body, len, 0, NULL);
  if (!json_is_object(c->req)) {
    /* Not an API call we can read: forwarded as is, traced as a plain span. */
    json_decref(c->req);
    c->req = NULL;
    c->api = LT_API_OTHER;
    return 0;
  }
  c->stream = json_is_true(json_object_get(c->req, "stream"));
  copy_str(c->model, sizeof c->model, jstr(c->req, "model"));
  bool chatlike = c->api == LT_API_OPENAI_CHAT || c->api == LT_API_OPENAI_COMPLETIONS;
  if (!add_stream_usage || !chatlike || !c->stream) return 0;
  json_t *so = json_object_get(c->req, "stream_options");
  if (json_is_object(so) && json_object_get(so, "include_usage")) return 0; /* the caller decided */
  /* Ask for usage on a copy: the parsed request stays as the caller sent it. */
  json_t *copy = json_deep_copy(c->req);
  if (!copy) return LT_ENOMEM;
  json_t *nso = json_object_get(copy, "stream_options");
  if (!json_is_object(nso)) {
    nso = json_object();
    json_object_set_new(copy, "stream_options", nso);
  }
  json_object_set_new(nso, "include_usage", json_true());
  char *text = json_dumps(copy, JSON_COMPACT);
  json_decref(copy);
  if (!text) return LT_ENOMEM;
  *out = text; /* jansson allocates through lt_malloc */
  *out_len = strlen(text);
  c->usage_added = true;
  return 0;
}

/* ---- streams ------------------------------------------------------------ */

static void first_token(lt_llm_call_t *c, int64_t now) {
  if (c->first_token_ns < 0) c->first_token_ns = now;
}

static void keep_usage(lt_llm_call_t *c, json_t *u) {
  if (!json_is_object(u)) return;
  json_decref(c->usage);
  c->usage = json_incref(u);
}

static json_t *tool_at(lt_llm_call_t *c, size_t idx) {
  if (idx >= MAX_TOOL_CALLS) return NULL;
  if (!c->tools && !(c->tools = json_array())) return NULL;
  while (json_array_size(c->tools) <= idx) json_array_append_new(c->tools, json_pack("{s:s,s:s,s:s}", "id", "", "name", "", "arguments", ""));
  return json_array_get(c->tools, idx);
}

static void str_append(json_t *o, const char *k, const char *more) {
  if (!o || !more || !*more) return;
  const char *old = jstr(o, k);
  size_t a = strlen(old), b = strlen(more);
  if (a + b > MAX_TEXT) return;
  char *s = lt_malloc(a + b + 1);
  if (!s) return;
  memcpy(s, old, a);
  memcpy(s + a, more, b + 1);
  json_object_set_new(o, k, json_string(s));
  lt_free(s);
}

static void openai_chunk(lt_llm_call_t *c, json_t *j, int64_t now, bool *drop) {
  copy_str(c->model, sizeof c->model, jstr(j, "model"));
  copy_str(c->response_id, sizeof c->response_id, jstr(j, "id"));
  json_t *choices = json_object_get(j, "choices");
  json_t *usage = json_object_get(j, "usage");
  if (json_is_object(usage)) keep_usage(c, usage);
  /* The usage-only chunk we asked for: the caller never sees it. */
  if (c->usage_added && json_is_object(usage) && json_array_size(choices) == 0) *drop = true;
  json_t *ch = json_array_get(choices, 0);
  if (!ch) return;
  if (json_is_string(json_object_get(ch, "finish_reason"))) copy_str(c->finish, sizeof c->finish, jstr(ch, "finish_reason"));
  if (c->api == LT_API_OPENAI_COMPLETIONS) {
    const char *t = jstr(ch, "text");
    if (*t) {
      first_token(c, now);
      lt_buf_append(&c->text, t, strlen(t));
    }
    return;
  }
  json_t *d = json_object_get(ch, "delta");
  const char *t = jstr(d, "content");
  if (*t) {
    first_token(c, now);
    lt_buf_append(&c->text, t, strlen(t));
  }
  const char *r = jstr(d, "reasoning_content");
  if (*r) lt_buf_append(&c->reasoning, r, strlen(r));
  size_t i;
  json_t *tc;
  json_array_foreach(json_object_get(d, "tool_calls"), i, tc) {
    json_int_t idx = json_integer_value(json_object_get(tc, "index"));
    json_t *slot = tool_at(c, idx >= 0 ? (size_t)idx : 0);
    if (!slot) continue;
    first_token(c, now);
    json_t *fn = json_object_get(tc, "function");
    if (*jstr(tc, "id")) json_object_set_new(slot, "id", json_string(jstr(tc, "id")));
    if (*jstr(fn, "name")) json_object_set_new(slot, "name", json_string(jstr(fn, "name")));
    str_append(slot, "arguments", jstr(fn, "arguments"));
  }
}

static void responses_event(lt_llm_call_t *c, json_t *j, int64_t now) {
  const char *type = jstr(j, "type");
  if (!strcmp(type, "response.output_text.delta")) {
    const char *t = jstr(j, "delta");
    if (*t) {
      first_token(c, now);
      lt_buf_append(&c->text, t, strlen(t));
    }
  } else if (!strcmp(type, "response.completed") || !strcmp(type, "response.incomplete") ||
             !strcmp(type, "response.failed")) {
    json_t *resp = json_object_get(j, "response");
    copy_str(c->model, sizeof c->model, jstr(resp, "model"));
    copy_str(c->response_id, sizeof c->response_id, jstr(resp, "id"));
    copy_str(c->finish, sizeof c->finish, jstr(resp, "status"));
    keep_usage(c, json_object_get(resp, "usage"));
  }
}

static void anthropic_event(lt_llm_call_t *c, json_t *j, int64_t now) {
  const char *type = jstr(j, "type");
  if (!strcmp(type, "error")) {
    json_t *e = json_object_get(j, "error");
    snprintf(c->stream_error, sizeof c->stream_error, "%s: %s", jstr(e, "type"), jstr(e, "message"));
  } else if (!strcmp(type, "message_start")) {
    json_t *m = json_object_get(j, "message");
    copy_str(c->model, sizeof c->model, jstr(m, "model"));
    copy_str(c->response_id, sizeof c->response_id, jstr(m, "id"));
    keep_usage(c, json_object_get(m, "usage"));
  } else if (!strcmp(type, "content_block_start")) {
    json_t *b = json_object_get(j, "content_block");
    if (!strcmp(jstr(b, "type"), "tool_use")) {
      json_int_t idx = json_integer_value(json_object_get(j, "index"));
      /* Tool calls are numbered apart from text blocks. */
      size_t slot_no = c->tools ? json_array_size(c->tools) : 0;
      json_t *slot = tool_at(c, slot_no);
      if (slot && idx >= 0 && idx < 128) c->tool_of_block[idx] = (int)slot_no + 1;
      if (slot) {
        first_token(c, now);
        json_object_set_new(slot, "id", json_string(jstr(b, "id")));
        json_object_set_new(slot, "name", json_string(jstr(b, "name")));
      }
    }
  } else if (!strcmp(type, "content_block_delta")) {
    json_t *d = json_object_get(j, "delta");
    const char *dt = jstr(d, "type");
    if (!strcmp(dt, "text_delta")) {
      const char *t = jstr(d, "text");
      if (*t) {
        first_token(c, now);
        lt_buf_append(&c->text, t, strlen(t));
      }
    } else if (!strcmp(dt, "thinking_delta")) {
      const char *t = jstr(d, "thinking");
      if (*t) lt_buf_append(&c->reasoning, t, strlen(t));
    } else if (!strcmp(dt, "input_json_delta")) {
      json_int_t idx = json_integer_value(json_object_get(j, "index"));
      int slot = idx >= 0 && idx < 128 ? c->tool_of_block[idx] : 0;
      if (slot > 0) str_append(json_array_get(c->tools, (size_t)slot - 1), "arguments", jstr(d, "partial_json"));
    }
  } else if (!strcmp(type, "message_delta")) {
    json_t *d = json_object_get(j, "delta");
    if (json_is_string(json_object_get(d, "stop_reason"))) copy_str(c->finish, sizeof c->finish, jstr(d, "stop_reason"));
    /* Usage here is cumulative: merge it over message_start's. */
    json_t *u = json_object_get(j, "usage");
    if (json_is_object(u)) {
      if (!c->usage) c->usage = json_object();
      json_object_update(c->usage, u);
    }
  }
}

/* The event without the `"usage":null` members the upstream added because
 * we asked for usage. Inside a JSON string a quote is escaped, so the
 * literal text can only be the member itself. */
static bool strip_null_usage(const lt_sse_event_t *ev, lt_buf_t *scratch, const char **out, size_t *out_len) {
  static const char *const forms[] = {",\"usage\":null", ", \"usage\": null", "\"usage\":null,", "\"usage\": null, "};
  const char *p = ev->raw.ptr;
  size_t n = ev->raw.len;
  for (size_t f = 0; f < sizeof forms / sizeof forms[0]; f++) {
    size_t fl = strlen(forms[f]);
    const char *hit = n >= fl ? memmem(p, n, forms[f], fl) : NULL;
    if (!hit) continue;
    lt_buf_reset(scratch);
    /* One chunk carries the member once: remove that occurrence. */
    if (lt_buf_append(scratch, p, (size_t)(hit - p)) || lt_buf_append(scratch, hit + fl, n - (size_t)(hit - p) - fl))
      return false;
    *out = scratch->ptr;
    *out_len = scratch->len;
    return true;
  }
  return false;
}

/* ---- the fast path for text deltas ---------------------------------------
 * Most events of a stream carry one piece of text and nothing else. They
 * are recognised by their shape and their text read directly, without
 * building a JSON tree (which, with its allocations, was half the proxy's
 * CPU on streams). Anything unusual — another key order, a second choice,
 * tool calls, usage, an error, non-ASCII text, escapes beyond the simple
 * ones — takes the full parse, so the result is the same either way. */

bool lt_llm_fast_path = true;

static bool has(const char *p, size_t n, const char *needle) { return memmem(p, n, needle, strlen(needle)) != NULL; }

/* Decodes the JSON string whose text starts at p (after its opening quote)
 * into out; ASCII and the one-letter escapes only. Returns the byte after
 * the closing quote, or NULL to leave the event to the full parse. */
static const char *ascii_string(const char *p, const char *end, lt_buf_t *out) {
  while (p < end) {
    unsigned char ch = (unsigned char)*p;
    if (ch == '"') return p + 1;
    if (ch < 0x20 || ch >= 0x80) return NULL;
    if (ch == '\\') {
      if (++p >= end) return NULL;
      char e;
      switch (*p) {
      case '"': e = '"'; break;
      case '\\': e = '\\'; break;
      case '/': e = '/'; break;
      case 'n': e = '\n'; break;
      case 't': e = '\t'; break;
      case 'r': e = '\r'; break;
      case 'b': e = '\b'; break;
      case 'f': e = '\f'; break;
      default: return NULL; /* \uXXXX: the full parse knows Unicode */
      }
      if (lt_buf_append(out, &e, 1)) return NULL;
    } else if (lt_buf_append(out, p, 1)) {
      return NULL;
    }
    p++;
  }
  return NULL;
}

/* The text of an event shaped `...<prefix>TEXT"<suffix>...`, appended to
 * c->text; false (nothing appended) when the shape does not hold. */
static bool fast_text(lt_llm_call_t *c, const char *p, size_t n, const char *prefix, const char *suffix, int64_t now) {
  const char *end = p + n, *at = memmem(p, n, prefix, strlen(prefix));
  if (!at) return false;
  size_t mark = c->text.len;
  const char *after = ascii_string(at + strlen(prefix), end, &c->text);
  size_t sl = strlen(suffix);
  if (!after || (size_t)(end - after) < sl || memcmp(after, suffix, sl)) {
    c->text.len = mark;
    return false;
  }
  if (c->text.len > mark) first_token(c, now);
  return true;
}

static bool fast_event(lt_llm_call_t *c, const lt_sse_event_t *ev, int64_t now) {
  const char *p = ev->data.ptr;
  size_t n = ev->data.len;
  if (!lt_llm_fast_path || n < 2 || p[0] != '{' || p[n - 1] != '}') return false;
  if (c->api == LT_API_OPENAI_CHAT) {
    /* The model and ids come from the first chunk, read in full. */
    if (!c->model[0] || has(p, n, "\"tool_calls\"") || has(p, n, "\"usage\":{") || has(p, n, "\"error\"") ||
        has(p, n, "reasoning") || has(p, n, "\"refusal\":\""))
      return false;
    /* One choice, index 0, not finished: `{"index":0,"delta":{"content":"..."}` and no other index. */
    const char *first = memmem(p, n, "\"index\":", 8);
    if (!first || memmem(first + 8, (size_t)(p + n - first - 8), "\"index\":", 8)) return false;
    if (!has(p, n, "\"finish_reason\":null")) return false;
    return fast_text(c, p, n, "\"choices\":[{\"index\":0,\"delta\":{\"content\":\"", "}", now);
  }
  if (c->api == LT_API_ANTHROPIC_MESSAGES) {
    if (!has(p, n, "\"type\":\"content_block_delta\"")) return false;
    return fast_text(c, p, n, "\"delta\":{\"type\":\"text_delta\",\"text\":\"", "}}", now);
  }
  return false;
}

void lt_llm_event(lt_llm_call_t *c, const lt_sse_event_t *ev, int64_t now_ns, bool *drop, lt_buf_t *scratch,
                  const char **out, size_t *out_len) {
  *drop = false;
  *out = ev->raw.ptr;
  *out_len = ev->raw.len;
  if (!ev->ok || !ev->data.len || c->api == LT_API_OTHER) return;
  if (ev->data.len == 6 && !memcmp(ev->data.ptr, "[DONE]", 6)) return;
  if (fast_event(c, ev, now_ns)) {
    c->saw_event = true;
    c->fast_events++;
    if (c->usage_added && scratch && has(ev->data.ptr, ev->data.len, "\"usage\":null"))
      strip_null_usage(ev, scratch, out, out_len);
    return;
  }
  json_t *j = json_loadb(ev->data.ptr, ev->data.len, 0, NULL);
  if (!json_is_object(j)) {
    json_decref(j);
    return;
  }
  c->saw_event = true;
  if (c->usage_added && scratch && json_is_null(json_object_get(j, "usage")))
    strip_null_usage(ev, scratch, out, out_len);
  json_t *err = json_object_get(j, "error");
  if (json_is_object(err) && !c->stream_error[0])
    snprintf(c->stream_error, sizeof c->stream_error, "%s", *jstr(err, "message") ? jstr(err, "message") : "error event in the stream");
  switch (c->api) {
  case LT_API_OPENAI_CHAT:
  case LT_API_OPENAI_COMPLETIONS: openai_chunk(c, j, now_ns, drop); break;
  case LT_API_OPENAI_RESPONSES: responses_event(c, j, now_ns); break;
  case LT_API_ANTHROPIC_MESSAGES: anthropic_event(c, j, now_ns); break;
  default: break;
  }
  json_decref(j);
}

void lt_llm_response(lt_llm_call_t *c, const char *body, size_t len) {
  if (c->api == LT_API_OTHER || !len) return;
  json_t *j = json_loadb(body, len, 0, NULL);
  if (!json_is_object(j)) {
    json_decref(j);
    return;
  }
  c->resp = j;
  copy_str(c->model, sizeof c->model, jstr(j, "model"));
  copy_str(c->response_id, sizeof c->response_id, jstr(j, "id"));
  keep_usage(c, json_object_get(j, "usage"));
  if (c->api == LT_API_OPENAI_CHAT || c->api == LT_API_OPENAI_COMPLETIONS)
    copy_str(c->finish, sizeof c->finish, jstr(json_array_get(json_object_get(j, "choices"), 0), "finish_reason"));
  else if (c->api == LT_API_ANTHROPIC_MESSAGES)
    copy_str(c->finish, sizeof c->finish, jstr(j, "stop_reason"));
  else if (c->api == LT_API_OPENAI_RESPONSES)
    copy_str(c->finish, sizeof c->finish, jstr(j, "status"));
}

/* ---- messages ---------------------------------------------------------- */

/* OpenAI content (string or parts) → our content. */
static json_t *openai_content(json_t *content) {
  if (json_is_string(content)) return json_incref(content);
  if (!json_is_array(content)) return NULL;
  json_t *parts = json_array();
  size_t i;
  json_t *p;
  json_array_foreach(content, i, p) {
    const char *type = jstr(p, "type");
    if (!strcmp(type, "text") || !strcmp(type, "input_text") || !strcmp(type, "output_text"))
      json_array_append_new(parts, json_pack("{s:s,s:s}", "type", "text", "text", jstr(p, "text")));
    else if (!strcmp(type, "image_url"))
      json_array_append_new(parts, json_pack("{s:s,s:s}", "type", "image", "url", jstr(json_object_get(p, "image_url"), "url")));
    else if (!strcmp(type, "input_image"))
      json_array_append_new(parts, json_pack("{s:s,s:s}", "type", "image", "url", jstr(p, "image_url")));
    else
      json_array_append_new(parts, json_pack("{s:s}", "type", *type ? type : "unknown"));
  }
  /* A single text part is just text. */
  if (json_array_size(parts) == 1 && !strcmp(jstr(json_array_get(parts, 0), "type"), "text")) {
    json_t *t = json_incref(json_object_get(json_array_get(parts, 0), "text"));
    json_decref(parts);
    return t;
  }
  return parts;
}

static json_t *openai_tool_calls(json_t *tcs) {
  if (!json_is_array(tcs) || !json_array_size(tcs)) return NULL;
  json_t *out = json_array();
  size_t i;
  json_t *tc;
  json_array_foreach(tcs, i, tc) {
    json_t *fn = json_object_get(tc, "function");
    json_array_append_new(out, json_pack("{s:s,s:s,s:s}", "id", jstr(tc, "id"), "name", jstr(fn, "name"),
                                         "arguments", jstr(fn, "arguments")));
  }
  return out;
}

static json_t *openai_message(json_t *m) {
  json_t *o = json_pack("{s:s}", "role", *jstr(m, "role") ? jstr(m, "role") : "user");
  if (!o) return NULL;
  json_t *content = openai_content(json_object_get(m, "content"));
  if (content) json_object_set_new(o, "content", content);
  json_t *tcs = openai_tool_calls(json_object_get(m, "tool_calls"));
  if (tcs) json_object_set_new(o, "tool_calls", tcs);
  if (*jstr(m, "tool_call_id")) json_object_set_new(o, "tool_call_id", json_string(jstr(m, "tool_call_id")));
  if (*jstr(m, "name")) json_object_set_new(o, "name", json_string(jstr(m, "name")));
  return o;
}

/* Anthropic content (string or blocks) → messages of one turn: text and
 * images in the role's message, tool_use as its tool calls, each
 * tool_result as a tool message of its own. */
static void anthropic_turn(json_t *out, const char *role, json_t *content) {
  if (json_is_string(content)) {
    json_array_append_new(out, json_pack("{s:s,s:O}", "role", role, "content", content));
    return;
  }
  json_t *parts = json_array(), *tcs = json_array(), *tools = json_array();
  size_t i;
  json_t *b;
  json_array_foreach(content, i, b) {
    const char *type = jstr(b, "type");
    if (!strcmp(type, "text")) {
      json_array_append_new(parts, json_pack("{s:s,s:s}", "type", "text", "text", jstr(b, "text")));
    } else if (!strcmp(type, "thinking")) {
      json_array_append_new(parts, json_pack("{s:s,s:s}", "type", "reasoning", "text", jstr(b, "thinking")));
    } else if (!strcmp(type, "image")) {
      json_t *src = json_object_get(b, "source");
      json_array_append_new(parts, json_pack("{s:s,s:s}", "type", "image", "url",
                                             !strcmp(jstr(src, "type"), "url") ? jstr(src, "url") : ""));
    } else if (!strcmp(type, "tool_use")) {
      json_t *input = json_object_get(b, "input");
      char *args = input ? json_dumps(input, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
      json_array_append_new(tcs, json_pack("{s:s,s:s,s:s}", "id", jstr(b, "id"), "name", jstr(b, "name"), "arguments",
                                           args ? args : "{}"));
      lt_free(args);
    } else if (!strcmp(type, "tool_result")) {
      json_t *tm = json_pack("{s:s,s:s}", "role", "tool", "tool_call_id", jstr(b, "tool_use_id"));
      json_t *c = json_object_get(b, "content");
      if (json_is_string(c)) json_object_set(tm, "content", c);
      else if (json_is_array(c)) {
        /* blocks: keep their text */
        lt_buf_t t;
        lt_buf_init(&t, MAX_TEXT);
        size_t k;
        json_t *cb;
        json_array_foreach(c, k, cb) {
          if (t.len) lt_buf_append(&t, "\n", 1);
          lt_buf_append(&t, jstr(cb, "text"), strlen(jstr(cb, "text")));
        }
        json_object_set_new(tm, "content", json_stringn(t.ptr ? t.ptr : "", t.len));
        lt_buf_free(&t);
      }
      json_array_append_new(tools, tm);
    } else {
      json_array_append_new(parts, json_pack("{s:s}", "type", *type ? type : "unknown"));
    }
  }
  if (json_array_size(parts) || json_array_size(tcs)) {
    json_t *m = json_pack("{s:s}", "role", role);
    if (json_array_size(parts) == 1 && !strcmp(jstr(json_array_get(parts, 0), "type"), "text"))
      json_object_set(m, "content", json_object_get(json_array_get(parts, 0), "text"));
    else if (json_array_size(parts))
      json_object_set(m, "content", parts);
    if (json_array_size(tcs)) json_object_set(m, "tool_calls", tcs);
    json_array_append_new(out, m);
  }
  json_array_extend(out, tools);
  json_decref(parts);
  json_decref(tcs);
  json_decref(tools);
}

static json_t *input_messages(lt_llm_call_t *c) {
  json_t *req = c->req, *out = json_array();
  if (!req || !out) return out;
  size_t i;
  json_t *m;
  switch (c->api) {
  case LT_API_OPENAI_CHAT:
    json_array_foreach(json_object_get(req, "messages"), i, m) json_array_append_new(out, openai_message(m));
    break;
  case LT_API_ANTHROPIC_MESSAGES: {
    json_t *sys = json_object_get(req, "system");
    if (json_is_string(sys)) json_array_append_new(out, json_pack("{s:s,s:O}", "role", "system", "content", sys));
    else if (json_is_array(sys)) anthropic_turn(out, "system", sys);
    json_array_foreach(json_object_get(req, "messages"), i, m) anthropic_turn(out, *jstr(m, "role") ? jstr(m, "role") : "user", json_object_get(m, "content"));
    break;
  }
  case LT_API_OPENAI_RESPONSES: {
    json_t *in = json_object_get(req, "input");
    if (*jstr(req, "instructions")) json_array_append_new(out, json_pack("{s:s,s:s}", "role", "system", "content", jstr(req, "instructions")));
    if (json_is_string(in)) json_array_append_new(out, json_pack("{s:s,s:O}", "role", "user", "content", in));
    else json_array_foreach(in, i, m) if (*jstr(m, "role")) json_array_append_new(out, openai_message(m));
    break;
  }
  default: break;
  }
  return out;
}

static json_t *output_messages(lt_llm_call_t *c) {
  json_t *out = json_array();
  if (!out) return NULL;
  if (c->resp) {
    size_t i;
    json_t *x;
    switch (c->api) {
    case LT_API_OPENAI_CHAT:
      json_array_foreach(json_object_get(c->resp, "choices"), i, x) {
        json_t *m = openai_message(json_object_get(x, "message"));
        if (m && *jstr(x, "finish_reason")) json_object_set_new(m, "finish_reason", json_string(jstr(x, "finish_reason")));
        if (m) json_array_append_new(out, m);
      }
      break;
    case LT_API_ANTHROPIC_MESSAGES:
      anthropic_turn(out, "assistant", json_object_get(c->resp, "content"));
      break;
    case LT_API_OPENAI_RESPONSES:
      json_array_foreach(json_object_get(c->resp, "output"), i, x) {
        if (!strcmp(jstr(x, "type"), "message")) json_array_append_new(out, openai_message(x));
        else if (!strcmp(jstr(x, "type"), "function_call"))
          json_array_append_new(out, json_pack("{s:s,s:[{s:s,s:s,s:s}]}", "role", "assistant", "tool_calls", "id",
                                               jstr(x, "call_id"), "name", jstr(x, "name"), "arguments", jstr(x, "arguments")));
      }
      break;
    default: break;
    }
    return out;
  }
  if (c->stream && (c->text.len || c->tools) && c->api != LT_API_OPENAI_COMPLETIONS) {
    json_t *m = json_pack("{s:s}", "role", "assistant");
    if (c->text.len) json_object_set_new(m, "content", json_stringn(c->text.ptr, c->text.len));
    if (json_array_size(c->tools)) json_object_set(m, "tool_calls", c->tools);
    if (*c->finish) json_object_set_new(m, "finish_reason", json_string(c->finish));
    json_array_append_new(out, m);
  }
  return out;
}

/* ---- the span ------------------------------------------------------------ */

lt_str_t lt_llm_arena_str(lt_arena_t *a, const char *s, size_t n, int *rc) {
  if (!n) return LT_STR_NULL;
  lt_str_t r = lt_arena_strdup(a, s, n);
  if (!r.ptr) *rc = LT_ENOMEM;
  return r;
}

lt_str_t lt_llm_arena_json(lt_arena_t *a, json_t *j, int *rc) {
  if (!j || (json_is_array(j) && !json_array_size(j))) return LT_STR_NULL;
  char *t = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
  if (!t) {
    *rc = LT_ENOMEM;
    return LT_STR_NULL;
  }
  lt_str_t r = lt_llm_arena_str(a, t, strlen(t), rc);
  lt_free(t);
  return r;
}

static int64_t uget(json_t *u, const char *k) {
  json_t *v = json_object_get(u, k);
  return json_is_integer(v) && json_integer_value(v) >= 0 ? (int64_t)json_integer_value(v) : -1;
}

static int64_t uget2(json_t *u, const char *obj, const char *k) { return uget(json_object_get(u, obj), k); }

static void tokens(lt_llm_call_t *c, lt_span_t *sp) {
  json_t *u = c->usage;
  if (!u) return;
  int64_t *t = sp->tokens;
  switch (c->api) {
  case LT_API_ANTHROPIC_MESSAGES:
    t[LT_TOK_INPUT] = uget(u, "input_tokens");
    t[LT_TOK_OUTPUT] = uget(u, "output_tokens");
    t[LT_TOK_CACHE_READ] = uget(u, "cache_read_input_tokens");
    t[LT_TOK_CACHE_WRITE] = uget(u, "cache_creation_input_tokens");
    sp->input_includes_cache = 0; /* reported apart */
    if (t[LT_TOK_INPUT] >= 0 && t[LT_TOK_OUTPUT] >= 0) {
      t[LT_TOK_TOTAL] = t[LT_TOK_INPUT] + t[LT_TOK_OUTPUT];
      if (t[LT_TOK_CACHE_READ] > 0) t[LT_TOK_TOTAL] += t[LT_TOK_CACHE_READ];
      if (t[LT_TOK_CACHE_WRITE] > 0) t[LT_TOK_TOTAL] += t[LT_TOK_CACHE_WRITE];
    }
    break;
  case LT_API_OPENAI_RESPONSES:
    t[LT_TOK_INPUT] = uget(u, "input_tokens");
    t[LT_TOK_OUTPUT] = uget(u, "output_tokens");
    t[LT_TOK_TOTAL] = uget(u, "total_tokens");
    t[LT_TOK_CACHE_READ] = uget2(u, "input_tokens_details", "cached_tokens");
    t[LT_TOK_REASONING] = uget2(u, "output_tokens_details", "reasoning_tokens");
    sp->input_includes_cache = 1;
    break;
  default: /* chat, completions, embeddings */
    t[LT_TOK_INPUT] = uget(u, "prompt_tokens");
    t[LT_TOK_OUTPUT] = c->api == LT_API_OPENAI_EMBEDDINGS ? 0 : uget(u, "completion_tokens");
    t[LT_TOK_TOTAL] = uget(u, "total_tokens");
    t[LT_TOK_CACHE_READ] = uget2(u, "prompt_tokens_details", "cached_tokens");
    t[LT_TOK_REASONING] = uget2(u, "completion_tokens_details", "reasoning_tokens");
    sp->input_includes_cache = 1;
    break;
  }
  if (t[LT_TOK_TOTAL] < 0 && t[LT_TOK_INPUT] >= 0 && t[LT_TOK_OUTPUT] >= 0) t[LT_TOK_TOTAL] = t[LT_TOK_INPUT] + t[LT_TOK_OUTPUT];
}

/* The request's generation parameters, for the span's metadata. */
static json_t *params(lt_llm_call_t *c) {
  static const char *const keys[] = {"temperature", "top_p", "max_tokens", "max_completion_tokens",
                                     "max_output_tokens", "frequency_penalty", "presence_penalty", "seed",
                                     "stop", "n", "response_format", "tool_choice", "reasoning_effort",
                                     "top_k", "stream"};
  json_t *o = json_object();
  for (size_t i = 0; c->req && o && i < sizeof keys / sizeof keys[0]; i++) {
    json_t *v = json_object_get(c->req, keys[i]);
    if (v) json_object_set(o, keys[i], v);
  }
  json_t *tools = json_object_get(c->req, "tools");
  if (json_is_array(tools)) json_object_set_new(o, "tools", json_integer((json_int_t)json_array_size(tools)));
  return o;
}

static const char *operation(lt_llm_api_t api) {
  switch (api) {
  case LT_API_OPENAI_CHAT: case LT_API_ANTHROPIC_MESSAGES: case LT_API_OPENAI_RESPONSES: return "chat";
  case LT_API_OPENAI_COMPLETIONS: return "text_completion";
  case LT_API_OPENAI_EMBEDDINGS: return "embeddings";
  default: return "";
  }
}

int lt_llm_fill(lt_llm_call_t *c, lt_arena_t *a, int64_t start_ns, bool omit_request, bool omit_response,
                lt_span_t *sp) {
  int rc = 0;
  if (c->api == LT_API_OTHER) return 0;
  sp->kind = c->api == LT_API_OPENAI_EMBEDDINGS ? LT_KIND_EMBEDDING : LT_KIND_LLM;
  const char *op = operation(c->api);
  sp->operation = lt_llm_arena_str(a, op, strlen(op), &rc);
  const char *req_model = jstr(c->req, "model");
  sp->request_model = lt_llm_arena_str(a, req_model, strlen(req_model), &rc);
  sp->response_model = lt_llm_arena_str(a, c->model, strlen(c->model), &rc);
  sp->finish_reason = lt_llm_arena_str(a, c->finish, strlen(c->finish), &rc);
  tokens(c, sp);
  if (c->first_token_ns >= 0 && c->first_token_ns >= start_ns) sp->ttft_ns = c->first_token_ns - start_ns;
  json_t *p = params(c);
  if (p && json_object_size(p)) sp->metadata = lt_llm_arena_json(a, p, &rc);
  json_decref(p);
  if (!omit_request) {
    if (c->api == LT_API_OPENAI_COMPLETIONS || c->api == LT_API_OPENAI_EMBEDDINGS) {
      json_t *in = json_object_get(c->req, c->api == LT_API_OPENAI_COMPLETIONS ? "prompt" : "input");
      if (json_is_string(in)) sp->input = lt_llm_arena_str(a, json_string_value(in), json_string_length(in), &rc);
      else if (in) sp->input = lt_llm_arena_json(a, in, &rc);
    } else {
      json_t *msgs = input_messages(c);
      sp->input_messages = lt_llm_arena_json(a, msgs, &rc);
      json_decref(msgs);
    }
  }
  if (!omit_response) {
    if (c->api == LT_API_OPENAI_COMPLETIONS) {
      if (c->resp) {
        const char *t = jstr(json_array_get(json_object_get(c->resp, "choices"), 0), "text");
        sp->output = lt_llm_arena_str(a, t, strlen(t), &rc);
      } else if (c->text.len) {
        sp->output = lt_llm_arena_str(a, c->text.ptr, c->text.len, &rc);
      }
    } else if (c->api != LT_API_OPENAI_EMBEDDINGS) {
      json_t *msgs = output_messages(c);
      sp->output_messages = lt_llm_arena_json(a, msgs, &rc);
      json_decref(msgs);
    }
  }
  return rc;
}
