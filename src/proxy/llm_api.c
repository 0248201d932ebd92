/* OpenAI and Anthropic request/response bodies → canonical span fields
 * (llm_api.h). Messages come out in the schema of docs/semconv.md:
 * [{role, content (string or parts), tool_calls [{id, name, arguments}],
 * tool_call_id, name}]. Bodies are parsed into arena trees (core/jdom.h);
 * the span's JSON is written straight into a buffer, strings copied from
 * the input as they were escaped there. */
#include "proxy/llm_api.h"
#include <stdio.h>
#include <string.h>
#include "core/err.h"
#include "core/mem.h"

/* Streamed text kept for the span (the capture cap applies to the wire
 * copy; this bounds what one call can hold in memory). */
#define MAX_TEXT (4u << 20)
#define MAX_TOOL_CALLS 128
#define MAX_TOOL_ID (64u << 10)
/* The call's arena holds the request copy, its tree and the response's
 * tree: room for trees 8× their text on top of a response. */
#define ARENA_BASE (16u << 20)
/* Stream events' trees are thrown away after each event; their arena is
 * renewed once it holds this much, and caps one event's tree. */
#define EV_ARENA_RENEW (256u << 10)
#define EV_ARENA_CAP (16u << 20)
/* The first event trees of a call go to its main arena, up to this much:
 * most streams need nothing more. */
#define EV_IN_CALL_ARENA (16u << 10)
/* Written span JSON (messages can hold the whole streamed text, escaped). */
#define SCRATCH_CAP (64u << 20)

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
  for (int i = 0; i < LT_U__COUNT; i++) c->usage[i] = -1;
}

void lt_llm_use_arena(lt_llm_call_t *c, lt_arena_t *a) {
  c->arena = a;
  c->own_arena = false;
}

void lt_llm_free(lt_llm_call_t *c) {
  if (c->own_arena) lt_arena_destroy(c->arena);
  lt_arena_destroy(c->ev_arena);
  c->arena = c->ev_arena = NULL;
  c->req = c->resp = NULL;
  for (size_t i = 0; i < c->n_tools; i++) {
    lt_buf_free(&c->tools[i].id);
    lt_buf_free(&c->tools[i].name);
    lt_buf_free(&c->tools[i].arguments);
  }
  lt_free(c->tools);
  c->tools = NULL;
  c->n_tools = 0;
  lt_buf_free(&c->text);
  lt_buf_free(&c->reasoning);
}

/* The call's arena, made on first use; its cap leaves room for trees of
 * the request (extra: its length) and of a response. */
static lt_arena_t *call_arena(lt_llm_call_t *c, size_t extra) {
  if (!c->arena) {
    c->arena = lt_arena_create(ARENA_BASE + (extra < (64u << 20) ? 8 * extra : (512u << 20)));
    c->own_arena = true;
  }
  return c->arena;
}

static bool str_is(lt_str_t s, const char *lit) { return lt_str_eq_lit(s, lit); }

/* Copies a string value into a fixed field; empty values leave it as it was. */
static void copy_str(char *dst, size_t cap, lt_str_t s) {
  if (!s.len) return;
  size_t n = s.len < cap ? s.len : cap - 1;
  memcpy(dst, s.ptr, n);
  dst[n] = '\0';
}

/* ---- request ---------------------------------------------------------- */

static int splice(const lt_str_t body, const char *at, size_t cut, const char *ins, const char *ins2, char **out,
                  size_t *out_len) {
  lt_buf_t b;
  lt_buf_init(&b, body.len + strlen(ins) + strlen(ins2) + 1);
  size_t off = (size_t)(at - body.ptr);
  int rc = lt_buf_append(&b, body.ptr, off);
  if (!rc) rc = lt_buf_puts(&b, ins);
  if (!rc) rc = lt_buf_puts(&b, ins2);
  if (!rc) rc = lt_buf_append(&b, at + cut, body.len - off - cut);
  if (rc) {
    lt_buf_free(&b);
    return rc;
  }
  *out = lt_buf_steal(&b, out_len);
  return 0;
}

int lt_llm_request(lt_llm_call_t *c, const char *body, size_t len, bool add_stream_usage, char **out,
                   size_t *out_len) {
  *out = NULL;
  *out_len = 0;
  if (!len) return 0;
  lt_arena_t *a = call_arena(c, len);
  if (!a || !(c->body = lt_arena_strdup(a, body, len)).ptr) return LT_ENOMEM;
  if (c->api == LT_API_OTHER) return 0;
  lt_jd_t *req = NULL;
  int rc = lt_jd_parse(a, c->body.ptr, c->body.len, NULL, &req, NULL);
  if (rc || !lt_jd_is(req, LT_JD_OBJECT)) {
    /* Not an API call we can read: forwarded as is, traced as a plain span. */
    c->api = LT_API_OTHER;
    return 0;
  }
  c->req = req;
  c->stream = lt_jd_is(lt_jd_get(req, "stream"), LT_JD_TRUE);
  copy_str(c->model, sizeof c->model, lt_jd_gets(req, "model"));
  bool chatlike = c->api == LT_API_OPENAI_CHAT || c->api == LT_API_OPENAI_COMPLETIONS;
  if (!add_stream_usage || !chatlike || !c->stream) return 0;
  lt_jd_t *so = lt_jd_get(req, "stream_options");
  if (lt_jd_is(so, LT_JD_OBJECT) && lt_jd_get(so, "include_usage")) return 0; /* the caller decided */
  /* Ask for usage by inserting the member: the rest of the body is the
   * caller's, byte for byte (and the tree still describes what was sent). */
  if (lt_jd_is(so, LT_JD_OBJECT))
    rc = splice(c->body, so->raw.ptr + 1, 0, "\"include_usage\":true", so->n ? "," : "", out, out_len);
  else if (so)
    rc = splice(c->body, so->raw.ptr, so->raw.len, "{\"include_usage\":true}", "", out, out_len);
  else
    rc = splice(c->body, req->raw.ptr + 1, 0, "\"stream_options\":{\"include_usage\":true}", req->n ? "," : "", out,
                out_len);
  if (rc) return LT_ENOMEM;
  c->usage_added = true;
  return 0;
}

int lt_llm_set_model(const char *body, size_t len, const char *model, lt_buf_t *out) {
  lt_arena_t *a = lt_arena_create(ARENA_BASE + 8 * (size_t)len);
  if (!a) return LT_ENOMEM;
  lt_jd_t *j = NULL;
  int rc = lt_jd_parse(a, body, len, NULL, &j, NULL);
  if (rc == 0 && !lt_jd_is(j, LT_JD_OBJECT)) rc = LT_EDECODE;
  if (rc == 0) {
    lt_jd_t *m = lt_jd_get(j, "model");
    /* Replace the value in place, or insert the member first. */
    const char *at = m ? m->raw.ptr : j->raw.ptr + 1;
    size_t cut = m ? m->raw.len : 0, off = (size_t)(at - body);
    lt_buf_reset(out);
    rc = lt_buf_append(out, body, off);
    if (!rc && !m) rc = lt_buf_puts(out, "\"model\":");
    if (!rc) rc = lt_buf_json_str(out, model, strlen(model));
    if (!rc && !m && j->n) rc = lt_buf_puts(out, ",");
    if (!rc) rc = lt_buf_append(out, at + cut, len - off - cut);
    if (rc) rc = LT_ENOMEM;
  }
  lt_arena_destroy(a);
  return rc;
}

/* ---- usage ------------------------------------------------------------- */

static const struct {
  const char *key, *sub;
  int slot;
} usage_keys[] = {
  {"prompt_tokens", NULL, LT_U_PROMPT},
  {"completion_tokens", NULL, LT_U_COMPLETION},
  {"total_tokens", NULL, LT_U_TOTAL},
  {"input_tokens", NULL, LT_U_INPUT},
  {"output_tokens", NULL, LT_U_OUTPUT},
  {"cache_read_input_tokens", NULL, LT_U_CACHE_READ},
  {"cache_creation_input_tokens", NULL, LT_U_CACHE_CREATION},
  {"prompt_tokens_details", "cached_tokens", LT_U_PROMPT_CACHED},
  {"completion_tokens_details", "reasoning_tokens", LT_U_COMPLETION_REASONING},
  {"input_tokens_details", "cached_tokens", LT_U_INPUT_CACHED},
  {"output_tokens_details", "reasoning_tokens", LT_U_OUTPUT_REASONING},
};

static int64_t count_of(const lt_jd_t *v) {
  int64_t n;
  return lt_jd_int(v, &n) && n >= 0 ? n : -1;
}

/* A usage object: replaces what was kept, or (merge) overrides the members
 * it has, a nested object as a whole (Anthropic's cumulative message_delta). */
static void keep_usage(lt_llm_call_t *c, const lt_jd_t *u, bool merge) {
  if (!lt_jd_is(u, LT_JD_OBJECT)) return;
  if (!merge || !c->has_usage)
    for (int i = 0; i < LT_U__COUNT; i++) c->usage[i] = -1;
  c->has_usage = true;
  LT_JD_EACH(m, u) {
    for (size_t k = 0; k < sizeof usage_keys / sizeof usage_keys[0]; k++) {
      if (!str_is(m->key, usage_keys[k].key)) continue;
      c->usage[usage_keys[k].slot] = count_of(usage_keys[k].sub ? lt_jd_get(m, usage_keys[k].sub) : m);
      break;
    }
  }
}

/* ---- streams ------------------------------------------------------------ */

static void first_token(lt_llm_call_t *c, int64_t now) {
  if (c->first_token_ns < 0) c->first_token_ns = now;
}

static void append(lt_buf_t *b, lt_str_t s) {
  if (s.len) lt_buf_append(b, s.ptr, s.len);
}

static lt_llm_tool_t *tool_at(lt_llm_call_t *c, size_t idx) {
  if (idx >= MAX_TOOL_CALLS) return NULL;
  if (idx >= c->n_tools) {
    lt_llm_tool_t *t = lt_realloc(c->tools, (idx + 1) * sizeof *t);
    if (!t) return NULL;
    c->tools = t;
    for (size_t i = c->n_tools; i <= idx; i++) {
      lt_buf_init(&t[i].id, MAX_TOOL_ID);
      lt_buf_init(&t[i].name, MAX_TOOL_ID);
      lt_buf_init(&t[i].arguments, MAX_TEXT);
    }
    c->n_tools = idx + 1;
  }
  return &c->tools[idx];
}

static void set_buf(lt_buf_t *b, lt_str_t s) {
  lt_buf_reset(b);
  append(b, s);
}

/* An "index" member: 0 when it is not an integer. */
static int64_t index_of(const lt_jd_t *v) {
  int64_t i;
  return lt_jd_int(v, &i) ? i : 0;
}

/* j when it is an array, else NULL (iterating an object's members is not
 * what a list of items means). */
static const lt_jd_t *arr(const lt_jd_t *j) { return lt_jd_is(j, LT_JD_ARRAY) ? j : NULL; }

static void openai_chunk(lt_llm_call_t *c, const lt_jd_t *j, int64_t now, bool *drop) {
  copy_str(c->model, sizeof c->model, lt_jd_gets(j, "model"));
  copy_str(c->response_id, sizeof c->response_id, lt_jd_gets(j, "id"));
  const lt_jd_t *choices = lt_jd_get(j, "choices"), *usage = lt_jd_get(j, "usage");
  keep_usage(c, usage, false);
  /* The usage-only chunk we asked for: the caller never sees it. */
  bool no_choices = !lt_jd_is(choices, LT_JD_ARRAY) || !choices->n;
  if (c->usage_added && lt_jd_is(usage, LT_JD_OBJECT) && no_choices) *drop = true;
  const lt_jd_t *ch = lt_jd_at(choices, 0);
  if (!ch) return;
  copy_str(c->finish, sizeof c->finish, lt_jd_gets(ch, "finish_reason"));
  if (c->api == LT_API_OPENAI_COMPLETIONS) {
    lt_str_t t = lt_jd_gets(ch, "text");
    if (t.len) {
      first_token(c, now);
      append(&c->text, t);
    }
    return;
  }
  const lt_jd_t *d = lt_jd_get(ch, "delta");
  lt_str_t t = lt_jd_gets(d, "content");
  if (t.len) {
    first_token(c, now);
    append(&c->text, t);
  }
  append(&c->reasoning, lt_jd_gets(d, "reasoning_content"));
  LT_JD_EACH(tc, arr(lt_jd_get(d, "tool_calls"))) {
    int64_t idx = index_of(lt_jd_get(tc, "index"));
    lt_llm_tool_t *slot = tool_at(c, idx >= 0 ? (size_t)idx : 0);
    if (!slot) continue;
    first_token(c, now);
    const lt_jd_t *fn = lt_jd_get(tc, "function");
    lt_str_t id = lt_jd_gets(tc, "id"), name = lt_jd_gets(fn, "name");
    if (id.len) set_buf(&slot->id, id);
    if (name.len) set_buf(&slot->name, name);
    append(&slot->arguments, lt_jd_gets(fn, "arguments"));
  }
}

static void responses_event(lt_llm_call_t *c, const lt_jd_t *j, int64_t now) {
  lt_str_t type = lt_jd_gets(j, "type");
  if (str_is(type, "response.output_text.delta")) {
    lt_str_t t = lt_jd_gets(j, "delta");
    if (t.len) {
      first_token(c, now);
      append(&c->text, t);
    }
  } else if (str_is(type, "response.completed") || str_is(type, "response.incomplete") ||
             str_is(type, "response.failed")) {
    c->saw_end = true;
    const lt_jd_t *resp = lt_jd_get(j, "response");
    copy_str(c->model, sizeof c->model, lt_jd_gets(resp, "model"));
    copy_str(c->response_id, sizeof c->response_id, lt_jd_gets(resp, "id"));
    copy_str(c->finish, sizeof c->finish, lt_jd_gets(resp, "status"));
    keep_usage(c, lt_jd_get(resp, "usage"), false);
  }
}

static void anthropic_event(lt_llm_call_t *c, const lt_jd_t *j, int64_t now) {
  lt_str_t type = lt_jd_gets(j, "type");
  if (str_is(type, "error")) {
    const lt_jd_t *e = lt_jd_get(j, "error");
    lt_str_t et = lt_jd_gets(e, "type"), em = lt_jd_gets(e, "message");
    snprintf(c->stream_error, sizeof c->stream_error, "%.*s: %.*s", (int)(et.len < 255 ? et.len : 255),
             et.ptr ? et.ptr : "", (int)(em.len < 255 ? em.len : 255), em.ptr ? em.ptr : "");
  } else if (str_is(type, "message_stop")) {
    c->saw_end = true;
  } else if (str_is(type, "message_start")) {
    const lt_jd_t *m = lt_jd_get(j, "message");
    copy_str(c->model, sizeof c->model, lt_jd_gets(m, "model"));
    copy_str(c->response_id, sizeof c->response_id, lt_jd_gets(m, "id"));
    keep_usage(c, lt_jd_get(m, "usage"), false);
  } else if (str_is(type, "content_block_start")) {
    const lt_jd_t *b = lt_jd_get(j, "content_block");
    if (str_is(lt_jd_gets(b, "type"), "tool_use")) {
      int64_t idx = index_of(lt_jd_get(j, "index"));
      /* Tool calls are numbered apart from text blocks. */
      size_t slot_no = c->n_tools;
      lt_llm_tool_t *slot = tool_at(c, slot_no);
      if (slot && idx >= 0 && idx < LT_LLM_TOOL_BLOCKS) c->tool_of_block[idx] = (int)slot_no + 1;
      if (slot) {
        first_token(c, now);
        set_buf(&slot->id, lt_jd_gets(b, "id"));
        set_buf(&slot->name, lt_jd_gets(b, "name"));
      }
    }
  } else if (str_is(type, "content_block_delta")) {
    const lt_jd_t *d = lt_jd_get(j, "delta");
    lt_str_t dt = lt_jd_gets(d, "type");
    if (str_is(dt, "text_delta")) {
      lt_str_t t = lt_jd_gets(d, "text");
      if (t.len) {
        first_token(c, now);
        append(&c->text, t);
      }
    } else if (str_is(dt, "thinking_delta")) {
      append(&c->reasoning, lt_jd_gets(d, "thinking"));
    } else if (str_is(dt, "input_json_delta")) {
      int64_t idx = index_of(lt_jd_get(j, "index"));
      int slot = idx >= 0 && idx < LT_LLM_TOOL_BLOCKS ? c->tool_of_block[idx] : 0;
      if (slot > 0) append(&c->tools[slot - 1].arguments, lt_jd_gets(d, "partial_json"));
    }
  } else if (str_is(type, "message_delta")) {
    const lt_jd_t *d = lt_jd_get(j, "delta");
    copy_str(c->finish, sizeof c->finish, lt_jd_gets(d, "stop_reason"));
    /* Usage here is cumulative: merged over message_start's. */
    keep_usage(c, lt_jd_get(j, "usage"), true);
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
 * are recognised by their exact shape and their text read directly, in
 * one look at the bytes instead of a tree (a parse costs about three times
 * as much). Anything unusual — another key order, a second choice, tool
 * calls, usage, an error, non-ASCII text, escapes beyond the simple ones —
 * takes the full parse, so the result is the same either way. */

bool lt_llm_fast_path = true;

static bool has(const char *p, size_t n, const char *needle) { return memmem(p, n, needle, strlen(needle)) != NULL; }

/* Decodes the JSON string whose text starts at p (after its opening quote)
 * into out; ASCII and the one-letter escapes only. Returns the byte after
 * the closing quote, or NULL to leave the event to the full parse. */
static const char *ascii_string(const char *p, const char *end, lt_buf_t *out) {
  while (p < end) {
    const char *run = p; /* plain characters: appended together */
    while (p < end && (unsigned char)*p >= 0x20 && (unsigned char)*p < 0x80 && *p != '"' && *p != '\\') p++;
    if (p > run && lt_buf_append(out, run, (size_t)(p - run))) return NULL;
    if (p >= end || (unsigned char)*p < 0x20 || (unsigned char)*p >= 0x80) return NULL;
    if (*p == '"') return p + 1;
    if (++p >= end) return NULL; /* a backslash */
    char e;
    switch (*p++) {
    case '"': e = '"'; break;
    case '\\': e = '\\'; break;
    case '/': e = '/'; break;
    case 'n': e = '\n'; break;
    case 't': e = '\t'; break;
    case 'r': e = '\r'; break;
    case 'b': e = '\b'; break;
    case 'f': e = '\f'; break;
    default: return NULL; /* a \u escape: left to the full parse, which decodes it */
    }
    if (lt_buf_append(out, &e, 1)) return NULL;
  }
  return NULL;
}

/* Keeps the text a fast path appended to c->text since mark when the
 * event had the expected shape (ok), counting a first token if there was
 * any; else takes it back. Returns ok. */
static bool keep_text(lt_llm_call_t *c, size_t mark, bool ok, int64_t now) {
  if (!ok) c->text.len = mark;
  else if (c->text.len > mark) first_token(c, now);
  return ok;
}

/* The text of an event shaped `...<prefix>TEXT"<suffix>...`, appended to
 * c->text; false (nothing appended) when the shape does not hold. */
static bool fast_text(lt_llm_call_t *c, const char *p, size_t n, const char *prefix, const char *suffix, int64_t now) {
  const char *end = p + n, *at = memmem(p, n, prefix, strlen(prefix));
  if (!at) return false;
  size_t mark = c->text.len, sl = strlen(suffix);
  const char *after = ascii_string(at + strlen(prefix), end, &c->text);
  return keep_text(c, mark, after && (size_t)(end - after) >= sl && !memcmp(after, suffix, sl), now);
}

/* The closing quote of the string whose text starts at p, or end. Eight
 * bytes at a time while none is a quote or a backslash. */
static const char *string_end(const char *p, const char *end) {
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ /* the lowest match is the first byte */
  const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
  while (end - p >= 8) {
    uint64_t w, q, b;
    memcpy(&w, p, 8);
    q = w ^ (ones * '"');
    b = w ^ (ones * '\\');
    uint64_t hit = (((q - ones) & ~q) | ((b - ones) & ~b)) & high;
    if (!hit) {
      p += 8;
      continue;
    }
    p += __builtin_ctzll(hit) / 8; /* the first match is exact */
    if (*p == '"') return p;
    p += 2; /* an escape */
  }
#endif
  while (p < end && *p != '"') p += *p == '\\' ? 2 : 1;
  return p < end ? p : end;
}

/* Walks the members of a compact top-level object from p (just after its
 * '{') while they are scalars, to the member that starts with prefix.
 * Returns where that member starts, or NULL when a value is an object or
 * an array (usage, error, anything the full parse would read), a member
 * is named usage, or the bytes are not that simple. */
static const char *scalar_members_to(const char *p, const char *end, const char *prefix, size_t pl) {
  for (;;) {
    if ((size_t)(end - p) >= pl && !memcmp(p, prefix, pl)) return p;
    if (p >= end || *p != '"') return NULL;
    const char *key = ++p;
    p = string_end(p, end);
    if (p >= end || (p - key == 5 && !memcmp(key, "usage", 5))) return NULL;
    if (++p >= end || *p++ != ':' || p >= end) return NULL;
    if (*p == '"') { /* a string value */
      if ((p = string_end(p + 1, end)) >= end) return NULL;
      p++;
    } else { /* a number, true, false or null */
      while (p < end && *p != ',' && *p != '}' && *p != '{' && *p != '[' && *p != '"') p++;
    }
    if (p >= end || *p++ != ',') return NULL;
  }
}

/* What may follow the text of an OpenAI chunk: the rest of a lone choice
 * that has not finished, then the end or a null usage. */
static bool openai_tail(const char *p, const char *end, bool *null_usage) {
  static const char *const ends[] = {"}", ",\"usage\":null}"};
  if (p < end && *p == '}') p++;
  else return false;
  static const char lp[] = ",\"logprobs\":null", fr[] = ",\"finish_reason\":null}]";
  if ((size_t)(end - p) >= sizeof lp - 1 && !memcmp(p, lp, sizeof lp - 1)) p += sizeof lp - 1;
  if ((size_t)(end - p) < sizeof fr - 1 || memcmp(p, fr, sizeof fr - 1)) return false;
  p += sizeof fr - 1;
  for (size_t i = 0; i < 2; i++) {
    size_t l = strlen(ends[i]);
    if ((size_t)(end - p) == l && !memcmp(p, ends[i], l)) {
      *null_usage = i == 1;
      return true;
    }
  }
  return false;
}

static bool fast_event(lt_llm_call_t *c, const lt_sse_event_t *ev, int64_t now, bool *null_usage) {
  const char *p = ev->data.ptr;
  size_t n = ev->data.len;
  *null_usage = false;
  if (!lt_llm_fast_path || n < 2 || p[0] != '{' || p[n - 1] != '}') return false;
  if (c->api == LT_API_OPENAI_CHAT) {
    /* The model and ids come from the first chunk, read in full (c->model
     * may hold the request's model already, so it cannot tell). The
     * shape: {<scalar members>,"choices":[{"index":0,"delta":{"content":
     * "TEXT"}[,"logprobs":null],"finish_reason":null}][,"usage":null]} */
    static const char prefix[] = "\"choices\":[{\"index\":0,\"delta\":{\"content\":\"";
    const char *end = p + n, *at = c->saw_event ? scalar_members_to(p + 1, end, prefix, sizeof prefix - 1) : NULL;
    if (!at) return false;
    size_t mark = c->text.len;
    const char *after = ascii_string(at + sizeof prefix - 1, end, &c->text);
    return keep_text(c, mark, after && openai_tail(after, end, null_usage), now);
  }
  if (c->api == LT_API_ANTHROPIC_MESSAGES) {
    if (!has(p, n, "\"type\":\"content_block_delta\"")) return false;
    return fast_text(c, p, n, "\"delta\":{\"type\":\"text_delta\",\"text\":\"", "}}", now);
  }
  return false;
}

/* A stream event's tree, in the event arena (renewed when it has grown:
 * nothing refers to an event's tree once the event is read). */
static lt_jd_t *parse_event(lt_llm_call_t *c, const char *p, size_t n) {
  lt_jd_t *j = NULL;
  if (c->ev_bytes < EV_IN_CALL_ARENA && n <= EV_IN_CALL_ARENA / 4 && call_arena(c, 0)) {
    size_t before = lt_arena_used(c->arena);
    int rc = lt_jd_parse(c->arena, p, n, NULL, &j, NULL);
    c->ev_bytes += lt_arena_used(c->arena) - before;
    return rc == 0 ? j : NULL;
  }
  if (c->ev_arena && lt_arena_used(c->ev_arena) > EV_ARENA_RENEW) {
    lt_arena_destroy(c->ev_arena);
    c->ev_arena = NULL;
  }
  if (!c->ev_arena && !(c->ev_arena = lt_arena_create(EV_ARENA_CAP))) return NULL;
  return lt_jd_parse(c->ev_arena, p, n, NULL, &j, NULL) == 0 ? j : NULL;
}

void lt_llm_event(lt_llm_call_t *c, const lt_sse_event_t *ev, int64_t now_ns, bool *drop, lt_buf_t *scratch,
                  const char **out, size_t *out_len) {
  *drop = false;
  *out = ev->raw.ptr;
  *out_len = ev->raw.len;
  if (!ev->ok || !ev->data.len || c->api == LT_API_OTHER) return;
  if (ev->data.len == 6 && !memcmp(ev->data.ptr, "[DONE]", 6)) {
    c->saw_end = true;
    return;
  }
  bool null_usage;
  if (fast_event(c, ev, now_ns, &null_usage)) {
    c->saw_event = true;
    c->fast_events++;
    if (c->usage_added && scratch && null_usage) strip_null_usage(ev, scratch, out, out_len);
    return;
  }
  const lt_jd_t *j = parse_event(c, ev->data.ptr, ev->data.len);
  if (!lt_jd_is(j, LT_JD_OBJECT)) return;
  c->saw_event = true;
  if (c->usage_added && scratch && lt_jd_is(lt_jd_get(j, "usage"), LT_JD_NULL))
    strip_null_usage(ev, scratch, out, out_len);
  const lt_jd_t *err = lt_jd_get(j, "error");
  if (lt_jd_is(err, LT_JD_OBJECT) && !c->stream_error[0]) {
    lt_str_t m = lt_jd_gets(err, "message");
    if (m.len) copy_str(c->stream_error, sizeof c->stream_error, m);
    else snprintf(c->stream_error, sizeof c->stream_error, "error event in the stream");
  }
  switch (c->api) {
  case LT_API_OPENAI_CHAT:
  case LT_API_OPENAI_COMPLETIONS: openai_chunk(c, j, now_ns, drop); break;
  case LT_API_OPENAI_RESPONSES: responses_event(c, j, now_ns); break;
  case LT_API_ANTHROPIC_MESSAGES: anthropic_event(c, j, now_ns); break;
  default: break;
  }
}

void lt_llm_response(lt_llm_call_t *c, const char *body, size_t len) {
  if (c->api == LT_API_OTHER || !len) return;
  lt_arena_t *a = call_arena(c, 0);
  lt_jd_t *j = NULL;
  if (!a || lt_jd_parse(a, body, len, NULL, &j, NULL) || !lt_jd_is(j, LT_JD_OBJECT)) return;
  c->resp = j;
  copy_str(c->model, sizeof c->model, lt_jd_gets(j, "model"));
  copy_str(c->response_id, sizeof c->response_id, lt_jd_gets(j, "id"));
  keep_usage(c, lt_jd_get(j, "usage"), false);
  if (c->api == LT_API_OPENAI_CHAT || c->api == LT_API_OPENAI_COMPLETIONS)
    copy_str(c->finish, sizeof c->finish, lt_jd_gets(lt_jd_at(lt_jd_get(j, "choices"), 0), "finish_reason"));
  else if (c->api == LT_API_ANTHROPIC_MESSAGES)
    copy_str(c->finish, sizeof c->finish, lt_jd_gets(j, "stop_reason"));
  else if (c->api == LT_API_OPENAI_RESPONSES)
    copy_str(c->finish, sizeof c->finish, lt_jd_gets(j, "status"));
}

/* ---- writing the span's JSON ----------------------------------------------
 * Straight into a buffer: strings taken from a body are copied as they were
 * escaped there (the parser checked them), our own text is escaped here. */

typedef struct {
  lt_buf_t *b;
  lt_buf_t tmp; /* a value built apart (tool inputs, joined tool results) */
  int rc;
  bool first;   /* no element written yet in the list being written */
} jw_t;

static void w_raw(jw_t *w, const char *s, size_t n) {
  if (!w->rc) w->rc = lt_buf_append(w->b, s, n);
}
static void w_lit(jw_t *w, const char *s) { w_raw(w, s, strlen(s)); }
static void w_text(jw_t *w, const char *s, size_t n) {
  if (!w->rc) w->rc = lt_buf_json_str(w->b, s ? s : "", n);
}
/* A string value from a body, or "" when v is not a string. */
static void w_jstr(jw_t *w, const lt_jd_t *v) {
  if (lt_jd_is(v, LT_JD_STRING)) w_raw(w, v->raw.ptr, v->raw.len);
  else w_raw(w, "\"\"", 2);
}
/* `,"key":` then a body's string value, when it is a non-empty string. */
static void w_opt(jw_t *w, const char *key, const lt_jd_t *v) {
  if (!lt_jd_str(v).len) return;
  w_raw(w, ",\"", 2);
  w_lit(w, key);
  w_raw(w, "\":", 2);
  w_jstr(w, v);
}
/* The separator before a list element. */
static void w_next(jw_t *w) {
  if (!w->first) w_raw(w, ",", 1);
  w->first = false;
}

static bool text_type(lt_str_t t) { return str_is(t, "text") || str_is(t, "input_text") || str_is(t, "output_text"); }

/* {"type":<type, or "unknown">} */
static void w_other_part(jw_t *w, const lt_jd_t *type) {
  w_lit(w, "{\"type\":");
  if (lt_jd_str(type).len) w_jstr(w, type);
  else w_lit(w, "\"unknown\"");
  w_raw(w, "}", 1);
}

/* OpenAI content (a string, or parts) → ours; a single text part is just
 * its text. */
static void w_openai_content(jw_t *w, const lt_jd_t *content) {
  if (lt_jd_is(content, LT_JD_STRING)) {
    w_jstr(w, content);
    return;
  }
  if (content->n == 1 && text_type(lt_jd_gets(content->first, "type"))) {
    w_jstr(w, lt_jd_get(content->first, "text"));
    return;
  }
  w_raw(w, "[", 1);
  LT_JD_EACH(p, content) {
    if (p != content->first) w_raw(w, ",", 1);
    const lt_jd_t *type = lt_jd_get(p, "type");
    lt_str_t t = lt_jd_str(type);
    if (text_type(t)) {
      w_lit(w, "{\"type\":\"text\",\"text\":");
      w_jstr(w, lt_jd_get(p, "text"));
      w_raw(w, "}", 1);
    } else if (str_is(t, "image_url") || str_is(t, "input_image")) {
      w_lit(w, "{\"type\":\"image\",\"url\":");
      w_jstr(w, str_is(t, "image_url") ? lt_jd_get(lt_jd_get(p, "image_url"), "url") : lt_jd_get(p, "image_url"));
      w_raw(w, "}", 1);
    } else {
      w_other_part(w, type);
    }
  }
  w_raw(w, "]", 1);
}

/* One OpenAI message (chat, or a responses API input/output item) → ours;
 * finish, when non-empty, is added as its finish_reason. */
static void w_openai_message(jw_t *w, const lt_jd_t *m, const lt_jd_t *finish) {
  w_next(w);
  const lt_jd_t *role = lt_jd_get(m, "role"), *content = lt_jd_get(m, "content"), *tcs = lt_jd_get(m, "tool_calls");
  w_lit(w, "{\"role\":");
  if (lt_jd_str(role).len) w_jstr(w, role);
  else w_lit(w, "\"user\"");
  if (lt_jd_is(content, LT_JD_STRING) || lt_jd_is(content, LT_JD_ARRAY)) {
    w_lit(w, ",\"content\":");
    w_openai_content(w, content);
  }
  if (lt_jd_is(tcs, LT_JD_ARRAY) && tcs->n) {
    w_lit(w, ",\"tool_calls\":[");
    LT_JD_EACH(tc, tcs) {
      const lt_jd_t *fn = lt_jd_get(tc, "function");
      w_lit(w, tc == tcs->first ? "{\"id\":" : ",{\"id\":");
      w_jstr(w, lt_jd_get(tc, "id"));
      w_lit(w, ",\"name\":");
      w_jstr(w, lt_jd_get(fn, "name"));
      w_lit(w, ",\"arguments\":");
      w_jstr(w, lt_jd_get(fn, "arguments"));
      w_raw(w, "}", 1);
    }
    w_raw(w, "]", 1);
  }
  w_opt(w, "tool_call_id", lt_jd_get(m, "tool_call_id"));
  w_opt(w, "name", lt_jd_get(m, "name"));
  w_opt(w, "finish_reason", finish);
  w_raw(w, "}", 1);
}

/* A role: a body's string, or our literal. */
static void w_role(jw_t *w, const lt_jd_t *role, const char *lit) {
  w_lit(w, "{\"role\":");
  if (role) w_jstr(w, role);
  else w_text(w, lit, strlen(lit));
}

/* An Anthropic tool_use block → a tool call; its input object becomes the
 * arguments string. */
static void w_tool_use(jw_t *w, const lt_jd_t *b) {
  w_lit(w, "{\"id\":");
  w_jstr(w, lt_jd_get(b, "id"));
  w_lit(w, ",\"name\":");
  w_jstr(w, lt_jd_get(b, "name"));
  w_lit(w, ",\"arguments\":");
  const lt_jd_t *input = lt_jd_get(b, "input");
  lt_buf_reset(&w->tmp);
  if (!input) {
    w_lit(w, "\"{}\"");
  } else if (!w->rc && !(w->rc = lt_jd_write(&w->tmp, input))) {
    w_text(w, w->tmp.ptr, w->tmp.len);
  }
  w_raw(w, "}", 1);
}

/* An Anthropic content block that is a part of the message. */
static void w_anthropic_part(jw_t *w, const lt_jd_t *b) {
  const lt_jd_t *type = lt_jd_get(b, "type");
  lt_str_t t = lt_jd_str(type);
  if (str_is(t, "text") || str_is(t, "thinking")) {
    w_lit(w, str_is(t, "text") ? "{\"type\":\"text\",\"text\":" : "{\"type\":\"reasoning\",\"text\":");
    w_jstr(w, lt_jd_get(b, str_is(t, "text") ? "text" : "thinking"));
    w_raw(w, "}", 1);
  } else if (str_is(t, "image")) {
    const lt_jd_t *src = lt_jd_get(b, "source");
    w_lit(w, "{\"type\":\"image\",\"url\":");
    w_jstr(w, str_is(lt_jd_gets(src, "type"), "url") ? lt_jd_get(src, "url") : NULL);
    w_raw(w, "}", 1);
  } else {
    w_other_part(w, type);
  }
}

/* Anthropic content (string or blocks) → the messages of one turn: text,
 * thinking and images in the role's message, tool_use blocks as its tool
 * calls, each tool_result as a tool message of its own after it. */
static void w_anthropic_turn(jw_t *w, const lt_jd_t *role, const char *role_lit, const lt_jd_t *content) {
  if (lt_jd_is(content, LT_JD_STRING)) {
    w_next(w);
    w_role(w, role, role_lit);
    w_lit(w, ",\"content\":");
    w_jstr(w, content);
    w_raw(w, "}", 1);
    return;
  }
  const lt_jd_t *blocks = arr(content), *first_part = NULL;
  size_t n_parts = 0, n_calls = 0;
  LT_JD_EACH(b, blocks) {
    lt_str_t t = lt_jd_gets(b, "type");
    if (str_is(t, "tool_use")) n_calls++;
    else if (!str_is(t, "tool_result") && !n_parts++) first_part = b;
  }
  if (n_parts || n_calls) {
    w_next(w);
    w_role(w, role, role_lit);
    if (n_parts == 1 && str_is(lt_jd_gets(first_part, "type"), "text")) {
      w_lit(w, ",\"content\":");
      w_jstr(w, lt_jd_get(first_part, "text"));
    } else if (n_parts) {
      w_lit(w, ",\"content\":[");
      LT_JD_EACH(b, blocks) {
        lt_str_t t = lt_jd_gets(b, "type");
        if (str_is(t, "tool_use") || str_is(t, "tool_result")) continue;
        if (b != first_part) w_raw(w, ",", 1);
        w_anthropic_part(w, b);
      }
      w_raw(w, "]", 1);
    }
    if (n_calls) {
      w_lit(w, ",\"tool_calls\":[");
      bool first = true;
      LT_JD_EACH(b, blocks) {
        if (!str_is(lt_jd_gets(b, "type"), "tool_use")) continue;
        if (!first) w_raw(w, ",", 1);
        first = false;
        w_tool_use(w, b);
      }
      w_raw(w, "]", 1);
    }
    w_raw(w, "}", 1);
  }
  LT_JD_EACH(b, blocks) {
    if (!str_is(lt_jd_gets(b, "type"), "tool_result")) continue;
    w_next(w);
    w_lit(w, "{\"role\":\"tool\",\"tool_call_id\":");
    w_jstr(w, lt_jd_get(b, "tool_use_id"));
    const lt_jd_t *rc = lt_jd_get(b, "content");
    if (lt_jd_is(rc, LT_JD_STRING)) {
      w_lit(w, ",\"content\":");
      w_jstr(w, rc);
    } else if (lt_jd_is(rc, LT_JD_ARRAY)) {
      /* blocks: their text, one per line */
      lt_buf_reset(&w->tmp);
      LT_JD_EACH(cb, rc) {
        lt_str_t t = lt_jd_gets(cb, "text");
        if (w->tmp.len && !w->rc) w->rc = lt_buf_append(&w->tmp, "\n", 1);
        if (t.len && !w->rc) w->rc = lt_buf_append(&w->tmp, t.ptr, t.len);
      }
      w_lit(w, ",\"content\":");
      w_text(w, w->tmp.ptr, w->tmp.len);
    }
    w_raw(w, "}", 1);
  }
}

static void w_input_messages(jw_t *w, const lt_llm_call_t *c) {
  const lt_jd_t *req = c->req;
  switch (c->api) {
  case LT_API_OPENAI_CHAT:
    LT_JD_EACH(m, arr(lt_jd_get(req, "messages"))) w_openai_message(w, m, NULL);
    break;
  case LT_API_ANTHROPIC_MESSAGES: {
    const lt_jd_t *sys = lt_jd_get(req, "system");
    if (lt_jd_is(sys, LT_JD_STRING) || lt_jd_is(sys, LT_JD_ARRAY)) w_anthropic_turn(w, NULL, "system", sys);
    LT_JD_EACH(m, arr(lt_jd_get(req, "messages"))) {
      const lt_jd_t *role = lt_jd_get(m, "role");
      w_anthropic_turn(w, lt_jd_str(role).len ? role : NULL, "user", lt_jd_get(m, "content"));
    }
    break;
  }
  case LT_API_OPENAI_RESPONSES: {
    const lt_jd_t *in = lt_jd_get(req, "input"), *ins = lt_jd_get(req, "instructions");
    if (lt_jd_str(ins).len) {
      w_next(w);
      w_lit(w, "{\"role\":\"system\",\"content\":");
      w_jstr(w, ins);
      w_raw(w, "}", 1);
    }
    if (lt_jd_is(in, LT_JD_STRING)) {
      w_next(w);
      w_lit(w, "{\"role\":\"user\",\"content\":");
      w_jstr(w, in);
      w_raw(w, "}", 1);
    } else {
      LT_JD_EACH(m, arr(in)) if (lt_jd_gets(m, "role").len) w_openai_message(w, m, NULL);
    }
    break;
  }
  default: break;
  }
}

static void w_output_messages(jw_t *w, const lt_llm_call_t *c) {
  if (c->resp) {
    switch (c->api) {
    case LT_API_OPENAI_CHAT:
      LT_JD_EACH(x, arr(lt_jd_get(c->resp, "choices")))
        w_openai_message(w, lt_jd_get(x, "message"), lt_jd_get(x, "finish_reason"));
      break;
    case LT_API_ANTHROPIC_MESSAGES:
      w_anthropic_turn(w, NULL, "assistant", lt_jd_get(c->resp, "content"));
      break;
    case LT_API_OPENAI_RESPONSES:
      LT_JD_EACH(x, arr(lt_jd_get(c->resp, "output"))) {
        lt_str_t t = lt_jd_gets(x, "type");
        if (str_is(t, "message")) {
          w_openai_message(w, x, NULL);
        } else if (str_is(t, "function_call")) {
          w_next(w);
          w_lit(w, "{\"role\":\"assistant\",\"tool_calls\":[{\"id\":");
          w_jstr(w, lt_jd_get(x, "call_id"));
          w_lit(w, ",\"name\":");
          w_jstr(w, lt_jd_get(x, "name"));
          w_lit(w, ",\"arguments\":");
          w_jstr(w, lt_jd_get(x, "arguments"));
          w_lit(w, "}]}");
        }
      }
      break;
    default: break;
    }
    return;
  }
  if (c->stream && (c->text.len || c->n_tools) && c->api != LT_API_OPENAI_COMPLETIONS) {
    w_next(w);
    w_lit(w, "{\"role\":\"assistant\"");
    if (c->text.len) {
      w_lit(w, ",\"content\":");
      w_text(w, c->text.ptr, c->text.len);
    }
    if (c->n_tools) {
      w_lit(w, ",\"tool_calls\":[");
      for (size_t i = 0; i < c->n_tools; i++) {
        const lt_llm_tool_t *t = &c->tools[i];
        w_lit(w, i ? ",{\"id\":" : "{\"id\":");
        w_text(w, t->id.ptr, t->id.len);
        w_lit(w, ",\"name\":");
        w_text(w, t->name.ptr, t->name.len);
        w_lit(w, ",\"arguments\":");
        w_text(w, t->arguments.ptr, t->arguments.len);
        w_raw(w, "}", 1);
      }
      w_raw(w, "]", 1);
    }
    if (*c->finish) {
      w_lit(w, ",\"finish_reason\":");
      w_text(w, c->finish, strlen(c->finish));
    }
    w_raw(w, "}", 1);
  }
}

/* ---- the span ------------------------------------------------------------ */

lt_str_t lt_llm_arena_str(lt_arena_t *a, const char *s, size_t n, int *rc) {
  if (!n) return LT_STR_NULL;
  lt_str_t r = lt_arena_strdup(a, s, n);
  if (!r.ptr) *rc = LT_ENOMEM;
  return r;
}

/* What the writer wrote since mark, copied into the arena; nothing when it
 * wrote nothing, or failed on a size limit (the field is left out rather
 * than the span lost). */
static lt_str_t w_take(jw_t *w, lt_arena_t *a, size_t mark, int *rc) {
  lt_str_t r = LT_STR_NULL;
  if (w->rc == LT_ENOMEM) *rc = LT_ENOMEM;
  else if (!w->rc && w->b->len > mark) r = lt_llm_arena_str(a, w->b->ptr + mark, w->b->len - mark, rc);
  w->rc = 0;
  w->b->len = mark;
  return r;
}

/* A list of messages; nothing when there are none. */
static lt_str_t messages(jw_t *w, lt_arena_t *a, const lt_llm_call_t *c, bool input, int *rc) {
  size_t mark = w->b->len;
  w_raw(w, "[", 1);
  w->first = true;
  if (input) w_input_messages(w, c);
  else w_output_messages(w, c);
  if (w->first) w->b->len = mark; /* none */
  else w_raw(w, "]", 1);
  return w_take(w, a, mark, rc);
}

static void tokens(const lt_llm_call_t *c, lt_span_t *sp) {
  if (!c->has_usage) return;
  const int64_t *u = c->usage;
  int64_t *t = sp->tokens;
  switch (c->api) {
  case LT_API_ANTHROPIC_MESSAGES:
    t[LT_TOK_INPUT] = u[LT_U_INPUT];
    t[LT_TOK_OUTPUT] = u[LT_U_OUTPUT];
    t[LT_TOK_CACHE_READ] = u[LT_U_CACHE_READ];
    t[LT_TOK_CACHE_WRITE] = u[LT_U_CACHE_CREATION];
    sp->input_includes_cache = 0; /* reported apart */
    if (t[LT_TOK_INPUT] >= 0 && t[LT_TOK_OUTPUT] >= 0) {
      t[LT_TOK_TOTAL] = t[LT_TOK_INPUT] + t[LT_TOK_OUTPUT];
      if (t[LT_TOK_CACHE_READ] > 0) t[LT_TOK_TOTAL] += t[LT_TOK_CACHE_READ];
      if (t[LT_TOK_CACHE_WRITE] > 0) t[LT_TOK_TOTAL] += t[LT_TOK_CACHE_WRITE];
    }
    break;
  case LT_API_OPENAI_RESPONSES:
    t[LT_TOK_INPUT] = u[LT_U_INPUT];
    t[LT_TOK_OUTPUT] = u[LT_U_OUTPUT];
    t[LT_TOK_TOTAL] = u[LT_U_TOTAL];
    t[LT_TOK_CACHE_READ] = u[LT_U_INPUT_CACHED];
    t[LT_TOK_REASONING] = u[LT_U_OUTPUT_REASONING];
    sp->input_includes_cache = 1;
    break;
  default: /* chat, completions, embeddings */
    t[LT_TOK_INPUT] = u[LT_U_PROMPT];
    t[LT_TOK_OUTPUT] = c->api == LT_API_OPENAI_EMBEDDINGS ? 0 : u[LT_U_COMPLETION];
    t[LT_TOK_TOTAL] = u[LT_U_TOTAL];
    t[LT_TOK_CACHE_READ] = u[LT_U_PROMPT_CACHED];
    t[LT_TOK_REASONING] = u[LT_U_COMPLETION_REASONING];
    sp->input_includes_cache = 1;
    break;
  }
  if (t[LT_TOK_TOTAL] < 0 && t[LT_TOK_INPUT] >= 0 && t[LT_TOK_OUTPUT] >= 0) t[LT_TOK_TOTAL] = t[LT_TOK_INPUT] + t[LT_TOK_OUTPUT];
}

static bool prop_has(const lt_llm_fill_opts_t *o, size_t from, const char *key, size_t kl) {
  for (size_t i = from; i < o->n_props; i++)
    if (strlen(o->props[i].key) == kl && !memcmp(o->props[i].key, key, kl)) return true;
  return false;
}

/* The span's metadata: the request's generation parameters, then the
 * caller's props (which win over a parameter of the same name). */
static lt_str_t metadata(jw_t *w, lt_arena_t *a, const lt_llm_call_t *c, const lt_llm_fill_opts_t *o, int *rc) {
  static const char *const keys[] = {"temperature", "top_p", "max_tokens", "max_completion_tokens",
                                     "max_output_tokens", "frequency_penalty", "presence_penalty", "seed",
                                     "stop", "n", "response_format", "tool_choice", "reasoning_effort",
                                     "top_k", "stream"};
  size_t mark = w->b->len;
  bool first = true;
  w_raw(w, "{", 1);
  for (size_t i = 0; c->req && i < sizeof keys / sizeof keys[0]; i++) {
    const lt_jd_t *v = lt_jd_get(c->req, keys[i]);
    if (!v || prop_has(o, 0, keys[i], strlen(keys[i]))) continue;
    w_lit(w, first ? "\"" : ",\"");
    w_lit(w, keys[i]);
    w_raw(w, "\":", 2);
    if (!w->rc) w->rc = lt_jd_write(w->b, v);
    first = false;
  }
  const lt_jd_t *tools = lt_jd_get(c->req, "tools");
  if (lt_jd_is(tools, LT_JD_ARRAY) && !prop_has(o, 0, "tools", 5)) {
    char n[32];
    w_lit(w, first ? "\"tools\":" : ",\"tools\":");
    w_raw(w, n, (size_t)snprintf(n, sizeof n, "%u", tools->n));
    first = false;
  }
  for (size_t i = 0; i < o->n_props; i++) {
    const char *k = o->props[i].key, *v = o->props[i].value;
    if (prop_has(o, i + 1, k, strlen(k))) continue; /* a later one wins */
    if (!first) w_raw(w, ",", 1);
    w_text(w, k, strlen(k));
    w_raw(w, ":", 1);
    w_text(w, v, strlen(v));
    first = false;
  }
  if (first) w->b->len = mark; /* empty */
  else w_raw(w, "}", 1);
  return w_take(w, a, mark, rc);
}

static const char *operation(lt_llm_api_t api) {
  switch (api) {
  case LT_API_OPENAI_CHAT: case LT_API_ANTHROPIC_MESSAGES: case LT_API_OPENAI_RESPONSES: return "chat";
  case LT_API_OPENAI_COMPLETIONS: return "text_completion";
  case LT_API_OPENAI_EMBEDDINGS: return "embeddings";
  default: return "";
  }
}

int lt_llm_fill_ex(lt_llm_call_t *c, lt_arena_t *a, const lt_llm_fill_opts_t *o, lt_span_t *sp) {
  int rc = 0;
  lt_buf_t own;
  lt_buf_init(&own, SCRATCH_CAP);
  jw_t w = {.b = o->scratch ? o->scratch : &own};
  lt_buf_init(&w.tmp, SCRATCH_CAP);
  size_t base = w.b->len;
  lt_str_t md = metadata(&w, a, c, o, &rc);
  if (md.len) sp->metadata = md;
  if (c->api != LT_API_OTHER) {
    sp->kind = c->api == LT_API_OPENAI_EMBEDDINGS ? LT_KIND_EMBEDDING : LT_KIND_LLM;
    const char *op = operation(c->api);
    sp->operation = lt_llm_arena_str(a, op, strlen(op), &rc);
    lt_str_t req_model = lt_jd_gets(c->req, "model");
    sp->request_model = lt_llm_arena_str(a, req_model.ptr, req_model.len, &rc);
    sp->response_model = lt_llm_arena_str(a, c->model, strlen(c->model), &rc);
    sp->finish_reason = lt_llm_arena_str(a, c->finish, strlen(c->finish), &rc);
    tokens(c, sp);
    if (c->first_token_ns >= 0 && c->first_token_ns >= o->start_ns) sp->ttft_ns = c->first_token_ns - o->start_ns;
    if (!o->omit_request) {
      if (c->api == LT_API_OPENAI_COMPLETIONS || c->api == LT_API_OPENAI_EMBEDDINGS) {
        const lt_jd_t *in = lt_jd_get(c->req, c->api == LT_API_OPENAI_COMPLETIONS ? "prompt" : "input");
        if (lt_jd_is(in, LT_JD_STRING)) {
          sp->input = lt_llm_arena_str(a, in->str.ptr, in->str.len, &rc);
        } else if (in && !(lt_jd_is(in, LT_JD_ARRAY) && !in->n)) {
          size_t mark = w.b->len;
          if (!w.rc) w.rc = lt_jd_write(w.b, in);
          sp->input = w_take(&w, a, mark, &rc);
        }
      } else {
        sp->input_messages = messages(&w, a, c, true, &rc);
      }
    }
    if (!o->omit_response) {
      if (c->api == LT_API_OPENAI_COMPLETIONS) {
        if (c->resp) {
          lt_str_t t = lt_jd_gets(lt_jd_at(lt_jd_get(c->resp, "choices"), 0), "text");
          sp->output = lt_llm_arena_str(a, t.ptr, t.len, &rc);
        } else if (c->text.len) {
          sp->output = lt_llm_arena_str(a, c->text.ptr, c->text.len, &rc);
        }
      } else if (c->api != LT_API_OPENAI_EMBEDDINGS) {
        sp->output_messages = messages(&w, a, c, false, &rc);
      }
    }
  }
  w.b->len = base;
  lt_buf_free(&own);
  lt_buf_free(&w.tmp);
  return rc;
}

int lt_llm_fill(lt_llm_call_t *c, lt_arena_t *a, int64_t start_ns, bool omit_request, bool omit_response,
                lt_span_t *sp) {
  lt_llm_fill_opts_t o = {.start_ns = start_ns, .omit_request = omit_request, .omit_response = omit_response};
  return lt_llm_fill_ex(c, a, &o, sp);
}
