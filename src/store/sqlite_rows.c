/* JSON for stored rows: the trace list row and the span object of
 * docs/api.md, built from the columns of LT__SQ_TRACE_COLS / LT__SQ_SPAN_COLS
 * and the decoded span payload, plus the small JSON helpers the query
 * files share. */
#include "store/sqlite_internal.h"
#include "core/err.h"
#include "core/log.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- JSON helpers ------------------------------------------------------- */

/* Values are built bottom-up; the first allocation failure is remembered
 * in *rc and the object is thrown away at the end. */
void lt__sq_put(json_t *o, const char *key, json_t *v, int *rc) {
  if (!v || json_object_set_new(o, key, v) != 0) *rc = LT_ENOMEM;
}

/* A JSON string from bytes that should be UTF-8; invalid sequences become
 * U+FFFD rather than losing the field. */
json_t *lt__sq_jstr(const char *p, size_t n) {
  json_t *v = json_stringn(p ? p : "", n);
  if (v) return v;
  lt_buf_t b;
  lt_buf_init(&b, n * 6 + 16);
  if (lt_buf_json_str(&b, p, n) == 0) v = json_loadb(b.ptr, b.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
  lt_buf_free(&b);
  return v;
}

static json_t *jstr_or_null(lt_str_t s) { return s.len ? lt__sq_jstr(s.ptr, s.len) : json_null(); }

json_t *lt__sq_jcol_str(sqlite3_stmt *st, int col) {
  if (sqlite3_column_type(st, col) == SQLITE_NULL) return json_null();
  return lt__sq_jstr((const char *)sqlite3_column_text(st, col), (size_t)sqlite3_column_bytes(st, col));
}

json_t *lt__sq_jcol_known(sqlite3_stmt *st, int col) {
  if (sqlite3_column_type(st, col) == SQLITE_NULL) return json_null();
  return json_integer(sqlite3_column_int64(st, col));
}

static json_t *jnusd(int64_t nusd) { return json_real((double)nusd / 1e9); }

json_t *lt__sq_jcol_cost(sqlite3_stmt *st, int col) {
  if (sqlite3_column_type(st, col) == SQLITE_NULL) return json_null();
  return jnusd(sqlite3_column_int64(st, col));
}

/* A stored JSON document; empty → the given empty value; text that does
 * not parse is returned as a string so nothing is lost. */
static json_t *jdoc(const char *p, size_t n, lt__sq_empty_t empty) {
  if (!p || n == 0) {
    if (empty == LT__SQ_EMPTY_OBJECT) return json_object();
    return empty == LT__SQ_EMPTY_ARRAY ? json_array() : json_null();
  }
  json_t *v = json_loadb(p, n, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
  return v ? v : lt__sq_jstr(p, n);
}

json_t *lt__sq_jcol_doc(sqlite3_stmt *st, int col, lt__sq_empty_t empty) {
  return jdoc((const char *)sqlite3_column_text(st, col), (size_t)sqlite3_column_bytes(st, col), empty);
}

/* RFC 3339 in UTC with milliseconds; exact nanoseconds are in *_ns. */
static json_t *jtime(int64_t ns) {
  int64_t sec = ns / 1000000000, rem = ns % 1000000000;
  if (rem < 0) {
    rem += 1000000000;
    sec--;
  }
  time_t t = (time_t)sec;
  struct tm tm;
  char out[64];
  if (!gmtime_r(&t, &tm)) return json_null();
  size_t k = strftime(out, sizeof out, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(out + k, sizeof out - k, ".%03dZ", (int)(rem / 1000000));
  return json_string(out);
}

json_t *lt__sq_jhex(const void *p, size_t n) {
  char hex[65];
  if (n > 32) n = 32;
  lt_hex_encode(hex, p, n);
  return json_string(hex);
}

static json_t *jspan_id(int64_t v) {
  uint8_t id[8];
  lt__sq_int_to_id8(v, id);
  return lt__sq_jhex(id, 8);
}

static json_t *jduration_ms(int64_t start, int64_t end) { return json_real((double)(end - start) / 1e6); }

/* The first max_chars characters of UTF-8 text (whole sequences only). */
static lt_str_t cut_chars(lt_str_t s, size_t max_chars) {
  size_t chars = 0;
  for (size_t i = 0; i < s.len; i++) {
    if (((unsigned char)s.ptr[i] & 0xC0) == 0x80) continue;
    if (chars++ == max_chars) return (lt_str_t){s.ptr, i};
  }
  return s;
}

/* ---- rows ---------------------------------------------------------------- */

json_t *lt__sq_trace_row(sqlite3_stmt *st, int *rc) {
  json_t *o = json_object();
  if (!o) {
    *rc = LT_ENOMEM;
    return NULL;
  }
  int64_t start = sqlite3_column_int64(st, 3), end = sqlite3_column_int64(st, 4);
  lt__sq_put(o, "trace_id", lt__sq_jhex(sqlite3_column_blob(st, 1), (size_t)sqlite3_column_bytes(st, 1)), rc);
  lt__sq_put(o, "name", lt__sq_jcol_str(st, 2), rc);
  lt__sq_put(o, "start_time", jtime(start), rc);
  lt__sq_put(o, "start_ns", json_integer(start), rc);
  lt__sq_put(o, "end_ns", json_integer(end), rc);
  lt__sq_put(o, "duration_ms", jduration_ms(start, end), rc);
  lt__sq_put(o, "status", json_string(lt_status_name((lt_status_t)sqlite3_column_int(st, 5))), rc);
  lt__sq_put(o, "user_id", lt__sq_jcol_str(st, 8), rc);
  lt__sq_put(o, "session_id", lt__sq_jcol_str(st, 9), rc);
  lt__sq_put(o, "models", lt__sq_jcol_doc(st, 10, LT__SQ_EMPTY_ARRAY), rc);
  lt__sq_put(o, "input_tokens", lt__sq_jcol_known(st, 11), rc);
  lt__sq_put(o, "output_tokens", lt__sq_jcol_known(st, 12), rc);
  lt__sq_put(o, "total_tokens", lt__sq_jcol_known(st, 13), rc);
  lt__sq_put(o, "cost_usd", lt__sq_jcol_cost(st, 14), rc);
  lt__sq_put(o, "span_count", json_integer(sqlite3_column_int64(st, 7)), rc);
  lt__sq_put(o, "error_count", json_integer(sqlite3_column_int64(st, 6)), rc);
  lt__sq_put(o, "tags", lt__sq_jcol_doc(st, 17, LT__SQ_EMPTY_ARRAY), rc);
  lt__sq_put(o, "service", lt__sq_jcol_str(st, 15), rc);
  lt__sq_put(o, "environment", lt__sq_jcol_str(st, 16), rc);
  return o;
}


/* The value at a JSON pointer made of object keys and array indexes
 * ("/input_messages/1/content"), or NULL. */
static json_t *at_pointer(json_t *v, const char *ptr) {
  while (v && *ptr == '/') {
    const char *seg = ++ptr;
    size_t n = strcspn(seg, "/");
    char key[64];
    if (n >= sizeof key) return NULL;
    memcpy(key, seg, n);
    key[n] = '\0';
    if (json_is_array(v)) {
      char *end;
      unsigned long i = strtoul(key, &end, 10);
      v = *key && !*end ? json_array_get(v, i) : NULL;
    } else {
      v = json_object_get(v, key);
    }
    ptr = seg + n;
  }
  return *ptr ? NULL : v;
}

/* Puts back the attributes that were stored once, as part of another
 * field of the span (see lt_span_t.elided): o is the span object, with its
 * input, output, messages and documents in place. */
static void restore_elided(json_t *o, const lt__sq_payload_t *p, int *rc) {
  lt_str_t e = p->f[LT__P_ELIDED];
  json_t *attrs = json_object_get(o, "attributes");
  if (!e.len || !json_is_object(attrs)) return;
  json_t *map = json_loadb(e.ptr, e.len, 0, NULL);
  const char *key;
  json_t *ptr;
  json_object_foreach(map, key, ptr) {
    json_t *v = json_is_string(ptr) ? at_pointer(o, json_string_value(ptr)) : NULL;
    if (json_is_string(v)) lt__sq_put(attrs, key, json_incref(v), rc);
  }
  json_decref(map);
}

/* Characters of input/output a span list row carries. */
#define LIST_TEXT_CHARS 1000

/* A span object; full adds the tree fields (filled in by the caller), the
 * heavy payload fields and an empty logs array. */
json_t *lt__sq_span_row(lt__sq_reader_t *r, sqlite3_stmt *st, bool full, int *rc) {
  lt__sq_payload_t p;
  int drc = lt__sq_payload_decode(&r->up, sqlite3_column_blob(st, 22), (size_t)sqlite3_column_bytes(st, 22), &p);
  if (drc) {
    /* One damaged row should not hide the rest of the trace. */
    lt_warn("sqlite: span %lld has an undecodable payload", (long long)sqlite3_column_int64(st, 0));
    lt__sq_payload_decode(NULL, NULL, 0, &p);
  }
  json_t *o = json_object();
  if (!o) {
    *rc = LT_ENOMEM;
    return NULL;
  }
  int64_t start = sqlite3_column_int64(st, 7), end = sqlite3_column_int64(st, 8);
  int cost_source = sqlite3_column_int(st, 17);
  lt__sq_put(o, "trace_id", lt__sq_jhex(sqlite3_column_blob(st, 1), (size_t)sqlite3_column_bytes(st, 1)), rc);
  lt__sq_put(o, "span_id", jspan_id(sqlite3_column_int64(st, 2)), rc);
  lt__sq_put(o, "parent_span_id",
      sqlite3_column_type(st, 3) == SQLITE_NULL ? json_null() : jspan_id(sqlite3_column_int64(st, 3)), rc);
  if (full) {
    lt__sq_put(o, "depth", json_integer(0), rc);
    lt__sq_put(o, "orphan", json_false(), rc);
  }
  lt__sq_put(o, "name", lt__sq_jcol_str(st, 4), rc);
  lt__sq_put(o, "kind", json_string(lt_kind_name((lt_kind_t)sqlite3_column_int(st, 5))), rc);
  lt__sq_put(o, "otel_kind", json_integer(sqlite3_column_int(st, 6)), rc);
  lt__sq_put(o, "start_time", jtime(start), rc);
  lt__sq_put(o, "start_ns", json_integer(start), rc);
  lt__sq_put(o, "end_ns", json_integer(end), rc);
  lt__sq_put(o, "duration_ms", jduration_ms(start, end), rc);
  lt__sq_put(o, "status", json_string(lt_status_name((lt_status_t)sqlite3_column_int(st, 9))), rc);
  lt__sq_put(o, "status_message", jstr_or_null(p.f[LT__P_STATUS_MESSAGE]), rc);
  lt__sq_put(o, "service", lt__sq_jcol_str(st, 10), rc);
  lt__sq_put(o, "environment", jstr_or_null(p.f[LT__P_ENVIRONMENT]), rc);
  lt__sq_put(o, "release", jstr_or_null(p.f[LT__P_RELEASE]), rc);
  lt__sq_put(o, "scope", jstr_or_null(p.f[LT__P_SCOPE]), rc);
  lt__sq_put(o, "provider", jstr_or_null(p.f[LT__P_PROVIDER]), rc);
  lt__sq_put(o, "request_model", lt__sq_jcol_str(st, 11), rc);
  lt__sq_put(o, "response_model", lt__sq_jcol_str(st, 12), rc);
  lt__sq_put(o, "operation", jstr_or_null(p.f[LT__P_OPERATION]), rc);
  lt__sq_put(o, "input_tokens", lt__sq_jcol_known(st, 13), rc);
  lt__sq_put(o, "output_tokens", lt__sq_jcol_known(st, 14), rc);
  lt__sq_put(o, "total_tokens", lt__sq_jcol_known(st, 15), rc);
  lt__sq_put(o, "cache_read_tokens", p.cache_read < 0 ? json_null() : json_integer(p.cache_read), rc);
  lt__sq_put(o, "cache_write_tokens", p.cache_write < 0 ? json_null() : json_integer(p.cache_write), rc);
  lt__sq_put(o, "reasoning_tokens", p.reasoning < 0 ? json_null() : json_integer(p.reasoning), rc);
  lt__sq_put(o, "usage_rollup", json_boolean(p.usage_rollup), rc);
  lt__sq_put(o, "cost_usd",
      cost_source == LT_COST_REPORTED || cost_source == LT_COST_COMPUTED ? lt__sq_jcol_cost(st, 16) : json_null(),
      rc);
  lt__sq_put(o, "cost_source", json_string(lt_cost_source_name((lt_cost_source_t)cost_source)), rc);
  lt__sq_put(o, "ttft_ms",
      sqlite3_column_type(st, 18) == SQLITE_NULL ? json_null()
                                                 : json_real((double)sqlite3_column_int64(st, 18) / 1e6),
      rc);
  /* Derived timings: generation time is the duration after the first
   * token when TTFT is known, else the whole duration. */
  {
    int64_t outp = sqlite3_column_type(st, 14) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 14);
    int64_t ttft = sqlite3_column_type(st, 18) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 18);
    int64_t gen = end - start;
    if (ttft >= 0 && ttft < gen) gen -= ttft;
    bool ok = outp > 0 && gen > 0 && !p.usage_rollup;
    lt__sq_put(o, "tokens_per_second", ok ? json_real((double)outp * 1e9 / (double)gen) : json_null(), rc);
    lt__sq_put(o, "time_per_output_token_ms", ok ? json_real((double)gen / 1e6 / (double)outp) : json_null(), rc);
  }
  lt__sq_put(o, "finish_reason", jstr_or_null(p.f[LT__P_FINISH_REASON]), rc);
  lt__sq_put(o, "prompt_name", jstr_or_null(p.f[LT__P_PROMPT_NAME]), rc);
  lt__sq_put(o, "prompt_version", jstr_or_null(p.f[LT__P_PROMPT_VERSION]), rc);
  lt__sq_put(o, "feature", jstr_or_null(p.f[LT__P_FEATURE]), rc);
  lt__sq_put(o, "session_id", lt__sq_jcol_str(st, 20), rc);
  lt__sq_put(o, "user_id", lt__sq_jcol_str(st, 19), rc);
  lt__sq_put(o, "tags", lt__sq_jcol_doc(st, 21, LT__SQ_EMPTY_ARRAY), rc);
  lt__sq_put(o, "metadata", jdoc(p.f[LT__P_METADATA].ptr, p.f[LT__P_METADATA].len, LT__SQ_EMPTY_OBJECT), rc);
  lt_str_t in = p.f[LT__P_INPUT], out = p.f[LT__P_OUTPUT];
  if (!full) {
    in = cut_chars(in, LIST_TEXT_CHARS);
    out = cut_chars(out, LIST_TEXT_CHARS);
  }
  lt__sq_put(o, "input", jstr_or_null(in), rc);
  lt__sq_put(o, "output", jstr_or_null(out), rc);
  if (full) {
    static const struct {
      const char *key;
      int field;
      lt__sq_empty_t empty;
    } heavy[] = {
      {"input_messages", LT__P_INPUT_MESSAGES, LT__SQ_EMPTY_NULL},
      {"output_messages", LT__P_OUTPUT_MESSAGES, LT__SQ_EMPTY_NULL},
      {"documents", LT__P_DOCUMENTS, LT__SQ_EMPTY_NULL},
      {"attributes", LT__P_ATTRIBUTES, LT__SQ_EMPTY_OBJECT},
      {"resource", LT__P_RESOURCE, LT__SQ_EMPTY_OBJECT},
      {"events", LT__P_EVENTS, LT__SQ_EMPTY_ARRAY},
      {"links", LT__P_LINKS, LT__SQ_EMPTY_ARRAY},
    };
    for (size_t i = 0; i < sizeof heavy / sizeof heavy[0]; i++)
      lt__sq_put(o, heavy[i].key, jdoc(p.f[heavy[i].field].ptr, p.f[heavy[i].field].len, heavy[i].empty), rc);
    restore_elided(o, &p, rc);
    lt__sq_put(o, "logs", json_array(), rc);
  }
  return o;
}
