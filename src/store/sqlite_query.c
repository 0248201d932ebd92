/* Queries over the SQLite store, producing the JSON shapes of docs/api.md.
 *
 * List queries are built from fixed SQL fragments with a `?` for every
 * value, so no user input ever becomes SQL text. Pagination is keyset on
 * (sort value, row id); the cursor is those two numbers (plus which sort
 * they belong to) in hex. Full-text search (`q`) goes through the FTS5
 * index, which the writer fills shortly after each commit. */
#include "store/sqlite_internal.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- JSON helpers ------------------------------------------------------- */

/* Values are built bottom-up; the first allocation failure is remembered
 * in *rc and the object is thrown away at the end. */
static void put(json_t *o, const char *key, json_t *v, int *rc) {
  if (!v || json_object_set_new(o, key, v) != 0) *rc = LT_ENOMEM;
}

/* A JSON string from bytes that should be UTF-8; invalid sequences become
 * U+FFFD rather than losing the field. */
static json_t *jstr(const char *p, size_t n) {
  json_t *v = json_stringn(p ? p : "", n);
  if (v) return v;
  lt_buf_t b;
  lt_buf_init(&b, n * 6 + 16);
  if (lt_buf_json_str(&b, p, n) == 0) v = json_loadb(b.ptr, b.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
  lt_buf_free(&b);
  return v;
}

static json_t *jstr_or_null(lt_str_t s) { return s.len ? jstr(s.ptr, s.len) : json_null(); }

static json_t *jcol_str(sqlite3_stmt *st, int col) {
  if (sqlite3_column_type(st, col) == SQLITE_NULL) return json_null();
  return jstr((const char *)sqlite3_column_text(st, col), (size_t)sqlite3_column_bytes(st, col));
}

static json_t *jcol_known(sqlite3_stmt *st, int col) {
  if (sqlite3_column_type(st, col) == SQLITE_NULL) return json_null();
  return json_integer(sqlite3_column_int64(st, col));
}

static json_t *jnusd(int64_t nusd) { return json_real((double)nusd / 1e9); }

static json_t *jcol_cost(sqlite3_stmt *st, int col) {
  if (sqlite3_column_type(st, col) == SQLITE_NULL) return json_null();
  return jnusd(sqlite3_column_int64(st, col));
}

typedef enum { EMPTY_NULL, EMPTY_OBJECT, EMPTY_ARRAY } empty_t;

/* A stored JSON document; empty → the given empty value; text that does
 * not parse is returned as a string so nothing is lost. */
static json_t *jdoc(const char *p, size_t n, empty_t empty) {
  if (!p || n == 0) return empty == EMPTY_OBJECT ? json_object() : empty == EMPTY_ARRAY ? json_array() : json_null();
  json_t *v = json_loadb(p, n, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
  return v ? v : jstr(p, n);
}

static json_t *jcol_doc(sqlite3_stmt *st, int col, empty_t empty) {
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

static json_t *jhex(const void *p, size_t n) {
  char hex[65];
  if (n > 32) n = 32;
  lt_hex_encode(hex, p, n);
  return json_string(hex);
}

static json_t *jspan_id(int64_t v) {
  uint8_t id[8];
  lt__sq_int_to_id8(v, id);
  return jhex(id, 8);
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

/* ---- statements ---------------------------------------------------------- */

static int fail(sqlite3 *db, int src, const char *what) { return lt__sq_fail(db, src, what); }

/* A query under construction: SQL from fixed fragments, values kept aside
 * and bound in order. */
typedef struct {
  enum { V_INT, V_TEXT, V_BLOB } type;
  int64_t i;
  const void *p;
  size_t n;
} qval_t;

#define QB_MAX_VALUES 32

typedef struct {
  lt_buf_t sql;
  qval_t v[QB_MAX_VALUES];
  int n;
  int rc;
} qb_t;

static void qb_init(qb_t *b) {
  memset(b, 0, sizeof *b);
  lt_buf_init(&b->sql, 1 << 16);
}

static void qb_sql(qb_t *b, const char *fragment) {
  if (b->rc == 0) b->rc = lt_buf_puts(&b->sql, fragment);
}

static void qb_val(qb_t *b, qval_t v) {
  if (b->n == QB_MAX_VALUES) {
    b->rc = LT_EINVAL;
    return;
  }
  b->v[b->n++] = v;
  qb_sql(b, "?");
}

static void qb_int(qb_t *b, int64_t i) { qb_val(b, (qval_t){.type = V_INT, .i = i}); }
static void qb_text(qb_t *b, lt_str_t s) { qb_val(b, (qval_t){.type = V_TEXT, .p = s.ptr ? s.ptr : "", .n = s.len}); }
static void qb_blob(qb_t *b, const void *p, size_t n) { qb_val(b, (qval_t){.type = V_BLOB, .p = p, .n = n}); }

static int qb_prepare(qb_t *b, sqlite3 *db, sqlite3_stmt **out) {
  *out = NULL;
  if (b->rc) return b->rc;
  int src = sqlite3_prepare_v2(db, b->sql.ptr, (int)b->sql.len, out, NULL);
  if (src != SQLITE_OK) return fail(db, src, "preparing a query");
  for (int i = 0; i < b->n && src == SQLITE_OK; i++) {
    const qval_t *v = &b->v[i];
    if (v->type == V_INT) src = sqlite3_bind_int64(*out, i + 1, v->i);
    else if (v->type == V_TEXT) src = sqlite3_bind_text64(*out, i + 1, v->p, v->n, SQLITE_STATIC, SQLITE_UTF8);
    else src = sqlite3_bind_blob64(*out, i + 1, v->p, v->n, SQLITE_STATIC);
  }
  return src == SQLITE_OK ? 0 : fail(db, src, "binding a query");
}

static void qb_free(qb_t *b) { lt_buf_free(&b->sql); }

/* Checks an FTS5 query before it is used: a syntax error is the caller's
 * mistake (LT_EINVAL), not a database failure. */
static int check_fts(sqlite3 *db, lt_str_t q) {
  sqlite3_stmt *st = NULL;
  int src = sqlite3_prepare_v2(db, "SELECT rowid FROM span_fts WHERE span_fts MATCH ?1 LIMIT 1", -1, &st, NULL);
  if (src == SQLITE_OK) src = sqlite3_bind_text64(st, 1, q.ptr, q.len, SQLITE_STATIC, SQLITE_UTF8);
  if (src == SQLITE_OK) src = sqlite3_step(st);
  int rc = 0;
  if ((src & 0xff) == SQLITE_ERROR) {
    lt_debug("sqlite: rejected search query: %s", sqlite3_errmsg(db));
    rc = LT_EINVAL;
  } else if (src != SQLITE_ROW && src != SQLITE_DONE) {
    rc = fail(db, src, "checking a search query");
  }
  sqlite3_finalize(st);
  return rc;
}

/* ---- cursors ------------------------------------------------------------- */

/* Which ordering a cursor belongs to, so one page's cursor cannot be
 * replayed against another ordering. */
static int cursor_tag(int what, const lt_query_t *q) { return what * 16 + (int)q->sort * 2 + (q->ascending ? 1 : 0); }

enum { CUR_TRACES = 1, CUR_SPANS = 2, CUR_SESSIONS = 3 };
#define CURSOR_VERSION 1

static json_t *cursor_encode(int tag, int64_t key, int64_t id) {
  uint8_t raw[18];
  raw[0] = CURSOR_VERSION;
  raw[1] = (uint8_t)tag;
  lt__sq_int_to_id8(key, raw + 2);
  lt__sq_int_to_id8(id, raw + 10);
  return jhex(raw, sizeof raw);
}

static int cursor_decode(lt_str_t c, int tag, int64_t *key, int64_t *id) {
  uint8_t raw[18];
  if (lt_hex_decode(raw, sizeof raw, c.ptr, c.len) != 0) return LT_EINVAL;
  if (raw[0] != CURSOR_VERSION || raw[1] != tag) return LT_EINVAL;
  *key = lt__sq_id8_to_int(raw + 2);
  *id = lt__sq_id8_to_int(raw + 10);
  return 0;
}

/* ---- rows ---------------------------------------------------------------- */

#define TRACE_COLS                                                                                        \
  "t.id, t.trace_id, t.name, t.start_ns, t.end_ns, t.status, t.error_count, t.span_count, t.user_id,"   \
  " t.session_id, t.models, t.input_tokens, t.output_tokens, t.total_tokens, t.cost_nusd, t.service,"   \
  " t.environment, t.tags"
#define TRACE_NCOLS 18

static json_t *trace_row(sqlite3_stmt *st, int *rc) {
  json_t *o = json_object();
  if (!o) {
    *rc = LT_ENOMEM;
    return NULL;
  }
  int64_t start = sqlite3_column_int64(st, 3), end = sqlite3_column_int64(st, 4);
  put(o, "trace_id", jhex(sqlite3_column_blob(st, 1), (size_t)sqlite3_column_bytes(st, 1)), rc);
  put(o, "name", jcol_str(st, 2), rc);
  put(o, "start_time", jtime(start), rc);
  put(o, "start_ns", json_integer(start), rc);
  put(o, "end_ns", json_integer(end), rc);
  put(o, "duration_ms", jduration_ms(start, end), rc);
  put(o, "status", json_string(lt_status_name((lt_status_t)sqlite3_column_int(st, 5))), rc);
  put(o, "user_id", jcol_str(st, 8), rc);
  put(o, "session_id", jcol_str(st, 9), rc);
  put(o, "models", jcol_doc(st, 10, EMPTY_ARRAY), rc);
  put(o, "input_tokens", jcol_known(st, 11), rc);
  put(o, "output_tokens", jcol_known(st, 12), rc);
  put(o, "total_tokens", jcol_known(st, 13), rc);
  put(o, "cost_usd", jcol_cost(st, 14), rc);
  put(o, "span_count", json_integer(sqlite3_column_int64(st, 7)), rc);
  put(o, "error_count", json_integer(sqlite3_column_int64(st, 6)), rc);
  put(o, "tags", jcol_doc(st, 17, EMPTY_ARRAY), rc);
  put(o, "service", jcol_str(st, 15), rc);
  put(o, "environment", jcol_str(st, 16), rc);
  return o;
}

#define SPAN_COLS                                                                                         \
  "s.id, t.trace_id, s.span_id, s.parent_id, s.name, s.kind, s.otel_kind, s.start_ns, s.end_ns,"        \
  " s.status, s.service, s.request_model, s.response_model, s.input_tokens, s.output_tokens,"           \
  " s.total_tokens, s.cost_nusd, s.cost_source, s.ttft_ns, s.user_id, s.session_id, s.tags, s.payload"
#define SPAN_NCOLS 23

/* Characters of input/output a span list row carries. */
#define LIST_TEXT_CHARS 1000

/* A span object; full adds the tree fields (filled in by the caller), the
 * heavy payload fields and an empty logs array. */
static json_t *span_row(lt__sq_reader_t *r, sqlite3_stmt *st, bool full, int *rc) {
  lt__sq_payload_t p;
  int drc = lt__sq_payload_decode(r->dz, sqlite3_column_blob(st, 22), (size_t)sqlite3_column_bytes(st, 22),
                                  &r->scratch, &p);
  if (drc) {
    /* One damaged row should not hide the rest of the trace. */
    lt_warn("sqlite: span %lld has an undecodable payload", (long long)sqlite3_column_int64(st, 0));
    lt__sq_payload_decode(NULL, NULL, 0, NULL, &p);
  }
  json_t *o = json_object();
  if (!o) {
    *rc = LT_ENOMEM;
    return NULL;
  }
  int64_t start = sqlite3_column_int64(st, 7), end = sqlite3_column_int64(st, 8);
  int cost_source = sqlite3_column_int(st, 17);
  put(o, "trace_id", jhex(sqlite3_column_blob(st, 1), (size_t)sqlite3_column_bytes(st, 1)), rc);
  put(o, "span_id", jspan_id(sqlite3_column_int64(st, 2)), rc);
  put(o, "parent_span_id",
      sqlite3_column_type(st, 3) == SQLITE_NULL ? json_null() : jspan_id(sqlite3_column_int64(st, 3)), rc);
  if (full) {
    put(o, "depth", json_integer(0), rc);
    put(o, "orphan", json_false(), rc);
  }
  put(o, "name", jcol_str(st, 4), rc);
  put(o, "kind", json_string(lt_kind_name((lt_kind_t)sqlite3_column_int(st, 5))), rc);
  put(o, "otel_kind", json_integer(sqlite3_column_int(st, 6)), rc);
  put(o, "start_time", jtime(start), rc);
  put(o, "start_ns", json_integer(start), rc);
  put(o, "end_ns", json_integer(end), rc);
  put(o, "duration_ms", jduration_ms(start, end), rc);
  put(o, "status", json_string(lt_status_name((lt_status_t)sqlite3_column_int(st, 9))), rc);
  put(o, "status_message", jstr_or_null(p.f[LT__P_STATUS_MESSAGE]), rc);
  put(o, "service", jcol_str(st, 10), rc);
  put(o, "environment", jstr_or_null(p.f[LT__P_ENVIRONMENT]), rc);
  put(o, "release", jstr_or_null(p.f[LT__P_RELEASE]), rc);
  put(o, "scope", jstr_or_null(p.f[LT__P_SCOPE]), rc);
  put(o, "provider", jstr_or_null(p.f[LT__P_PROVIDER]), rc);
  put(o, "request_model", jcol_str(st, 11), rc);
  put(o, "response_model", jcol_str(st, 12), rc);
  put(o, "operation", jstr_or_null(p.f[LT__P_OPERATION]), rc);
  put(o, "input_tokens", jcol_known(st, 13), rc);
  put(o, "output_tokens", jcol_known(st, 14), rc);
  put(o, "total_tokens", jcol_known(st, 15), rc);
  put(o, "cache_read_tokens", p.cache_read < 0 ? json_null() : json_integer(p.cache_read), rc);
  put(o, "cache_write_tokens", p.cache_write < 0 ? json_null() : json_integer(p.cache_write), rc);
  put(o, "reasoning_tokens", p.reasoning < 0 ? json_null() : json_integer(p.reasoning), rc);
  put(o, "cost_usd", cost_source == LT_COST_UNKNOWN ? json_null() : jcol_cost(st, 16), rc);
  put(o, "cost_source", json_string(lt_cost_source_name((lt_cost_source_t)cost_source)), rc);
  put(o, "ttft_ms",
      sqlite3_column_type(st, 18) == SQLITE_NULL ? json_null()
                                                 : json_real((double)sqlite3_column_int64(st, 18) / 1e6),
      rc);
  put(o, "finish_reason", jstr_or_null(p.f[LT__P_FINISH_REASON]), rc);
  put(o, "prompt_name", jstr_or_null(p.f[LT__P_PROMPT_NAME]), rc);
  put(o, "prompt_version", jstr_or_null(p.f[LT__P_PROMPT_VERSION]), rc);
  put(o, "session_id", jcol_str(st, 20), rc);
  put(o, "user_id", jcol_str(st, 19), rc);
  put(o, "tags", jcol_doc(st, 21, EMPTY_ARRAY), rc);
  put(o, "metadata", jdoc(p.f[LT__P_METADATA].ptr, p.f[LT__P_METADATA].len, EMPTY_OBJECT), rc);
  lt_str_t in = p.f[LT__P_INPUT], out = p.f[LT__P_OUTPUT];
  if (!full) {
    in = cut_chars(in, LIST_TEXT_CHARS);
    out = cut_chars(out, LIST_TEXT_CHARS);
  }
  put(o, "input", jstr_or_null(in), rc);
  put(o, "output", jstr_or_null(out), rc);
  if (full) {
    static const struct {
      const char *key;
      int field;
      empty_t empty;
    } heavy[] = {
      {"input_messages", LT__P_INPUT_MESSAGES, EMPTY_NULL},
      {"output_messages", LT__P_OUTPUT_MESSAGES, EMPTY_NULL},
      {"documents", LT__P_DOCUMENTS, EMPTY_NULL},
      {"attributes", LT__P_ATTRIBUTES, EMPTY_OBJECT},
      {"resource", LT__P_RESOURCE, EMPTY_OBJECT},
      {"events", LT__P_EVENTS, EMPTY_ARRAY},
      {"links", LT__P_LINKS, EMPTY_ARRAY},
    };
    for (size_t i = 0; i < sizeof heavy / sizeof heavy[0]; i++)
      put(o, heavy[i].key, jdoc(p.f[heavy[i].field].ptr, p.f[heavy[i].field].len, heavy[i].empty), rc);
    put(o, "logs", json_array(), rc);
  }
  return o;
}

/* Runs a prepared list query whose rows are (row columns..., sort key) and
 * wraps them as {"data":[...],"next_cursor":...}. One extra row was asked
 * for: its presence means there is a next page. */
typedef json_t *(*row_fn)(lt__sq_reader_t *r, sqlite3_stmt *st, int *rc);

static int list_page(lt__sq_reader_t *r, sqlite3_stmt *st, int limit, int key_col, int id_col, int tag,
                     row_fn row, json_t **out) {
  int rc = 0, src, n = 0;
  int64_t last_key = 0, last_id = 0;
  bool more = false;
  json_t *data = json_array();
  if (!data) return LT_ENOMEM;
  while (rc == 0 && (src = sqlite3_step(st)) == SQLITE_ROW) {
    if (n == limit) {
      more = true;
      break;
    }
    json_t *o = row(r, st, &rc);
    if (o && json_array_append_new(data, o) != 0) rc = LT_ENOMEM;
    last_key = sqlite3_column_int64(st, key_col);
    last_id = sqlite3_column_int64(st, id_col);
    n++;
  }
  if (rc == 0 && !more && src != SQLITE_DONE) rc = fail(r->db, src, "running a list query");
  json_t *res = NULL;
  if (rc == 0) {
    res = json_object();
    if (!res) rc = LT_ENOMEM;
    else {
      put(res, "data", data, &rc);
      data = NULL;
      put(res, "next_cursor", more ? cursor_encode(tag, last_key, last_id) : json_null(), &rc);
    }
  }
  json_decref(data);
  if (rc) json_decref(res);
  else *out = res;
  return rc;
}

static json_t *trace_row_fn(lt__sq_reader_t *r, sqlite3_stmt *st, int *rc) {
  (void)r;
  return trace_row(st, rc);
}

static json_t *span_list_row_fn(lt__sq_reader_t *r, sqlite3_stmt *st, int *rc) {
  return span_row(r, st, false, rc);
}

/* The sort expression over table alias a ("t" or "s"). */
static const char *sort_expr(lt_sort_t sort, bool spans) {
  switch (sort) {
  case LT_SORT_DURATION: return spans ? "(s.end_ns - s.start_ns)" : "(t.end_ns - t.start_ns)";
  /* Unknown cost sorts below every known cost (which is >= 0). */
  case LT_SORT_COST: return spans ? "coalesce(s.cost_nusd, -1)" : "coalesce(t.cost_nusd, -1)";
  default: return spans ? "s.start_ns" : "t.start_ns";
  }
}

/* Appends the keyset condition and ORDER BY/LIMIT for a list. */
static void page_clause(qb_t *b, const lt_query_t *q, const char *key, const char *id, bool has_cursor,
                        int64_t ckey, int64_t cid) {
  const char *dir = q->ascending ? " ASC" : " DESC";
  if (has_cursor) {
    qb_sql(b, " AND (");
    qb_sql(b, key);
    qb_sql(b, ", ");
    qb_sql(b, id);
    qb_sql(b, q->ascending ? ") > (" : ") < (");
    qb_int(b, ckey);
    qb_sql(b, ", ");
    qb_int(b, cid);
    qb_sql(b, ")");
  }
  qb_sql(b, " ORDER BY ");
  qb_sql(b, key);
  qb_sql(b, dir);
  qb_sql(b, ", ");
  qb_sql(b, id);
  qb_sql(b, dir);
  qb_sql(b, " LIMIT ");
  qb_int(b, q->limit + 1);
}

static int clamp_limit(int limit) { return limit < 1 ? 1 : limit > 1000 ? 1000 : limit; }

/* ---- traces -------------------------------------------------------------- */

int lt__sq_traces_list(lt_store_t *st, const lt_query_t *qin, json_t **out) {
  lt__sq_t *s = LT__SQ(st);
  lt_query_t q = *qin;
  q.limit = clamp_limit(q.limit);
  int tag = cursor_tag(CUR_TRACES, &q);
  int64_t ckey = 0, cid = 0;
  if (q.cursor.len && cursor_decode(q.cursor, tag, &ckey, &cid)) return LT_EINVAL;
  lt__sq_reader_t *r = lt__sq_reader_get(s);
  sqlite3_stmt *stmt = NULL;
  qb_t b;
  qb_init(&b);
  int rc = q.q.len ? check_fts(r->db, q.q) : 0;
  if (rc) goto out;
  const char *key = sort_expr(q.sort, false);
  qb_sql(&b, "SELECT " TRACE_COLS ", ");
  qb_sql(&b, key);
  qb_sql(&b, " FROM traces t WHERE t.project_id = ");
  qb_int(&b, q.project_id);
  if (q.from_ns) {
    qb_sql(&b, " AND t.start_ns >= ");
    qb_int(&b, q.from_ns);
  }
  if (q.to_ns) {
    qb_sql(&b, " AND t.start_ns < ");
    qb_int(&b, q.to_ns);
  }
  if (q.name.len) {
    qb_sql(&b, " AND t.name = ");
    qb_text(&b, q.name);
  }
  if (q.user_id.len) {
    qb_sql(&b, " AND t.user_id = ");
    qb_text(&b, q.user_id);
  }
  if (q.session_id.len) {
    qb_sql(&b, " AND t.session_id = ");
    qb_text(&b, q.session_id);
  }
  if (q.model.len) {
    qb_sql(&b, " AND t.id IN (SELECT m.trace_ref FROM trace_models m WHERE m.project_id = ");
    qb_int(&b, q.project_id);
    qb_sql(&b, " AND m.model = ");
    qb_text(&b, q.model);
    qb_sql(&b, ")");
  }
  if (q.status >= 0) {
    qb_sql(&b, " AND t.status = ");
    qb_int(&b, q.status);
  }
  if (q.tag.len) {
    qb_sql(&b, " AND EXISTS (SELECT 1 FROM json_each(t.tags) j WHERE j.value = ");
    qb_text(&b, q.tag);
    qb_sql(&b, ")");
  }
  if (q.min_duration_ns >= 0) {
    qb_sql(&b, " AND t.end_ns - t.start_ns >= ");
    qb_int(&b, q.min_duration_ns);
  }
  if (q.q.len) {
    qb_sql(&b, " AND t.id IN (SELECT s.trace_ref FROM spans s WHERE s.project_id = ");
    qb_int(&b, q.project_id);
    qb_sql(&b, " AND s.id IN (SELECT rowid FROM span_fts WHERE span_fts MATCH ");
    qb_text(&b, q.q);
    qb_sql(&b, "))");
  }
  page_clause(&b, &q, key, "t.id", q.cursor.len > 0, ckey, cid);
  if ((rc = qb_prepare(&b, r->db, &stmt))) goto out;
  rc = list_page(r, stmt, q.limit, TRACE_NCOLS, 0, tag, trace_row_fn, out);
out:
  sqlite3_finalize(stmt);
  qb_free(&b);
  lt__sq_reader_put(s, r);
  return rc;
}

/* ---- spans --------------------------------------------------------------- */

int lt__sq_spans_list(lt_store_t *st, const lt_query_t *qin, json_t **out) {
  lt__sq_t *s = LT__SQ(st);
  lt_query_t q = *qin;
  q.limit = clamp_limit(q.limit);
  int tag = cursor_tag(CUR_SPANS, &q);
  int64_t ckey = 0, cid = 0;
  if (q.cursor.len && cursor_decode(q.cursor, tag, &ckey, &cid)) return LT_EINVAL;
  lt__sq_reader_t *r = lt__sq_reader_get(s);
  sqlite3_stmt *stmt = NULL;
  qb_t b;
  qb_init(&b);
  int rc = q.q.len ? check_fts(r->db, q.q) : 0;
  if (rc) goto out;
  const char *key = sort_expr(q.sort, true);
  qb_sql(&b, "SELECT " SPAN_COLS ", ");
  qb_sql(&b, key);
  qb_sql(&b, " FROM spans s JOIN traces t ON t.id = s.trace_ref WHERE s.project_id = ");
  qb_int(&b, q.project_id);
  if (q.has_trace_id) {
    qb_sql(&b, " AND s.trace_ref = (SELECT x.id FROM traces x WHERE x.project_id = ");
    qb_int(&b, q.project_id);
    qb_sql(&b, " AND x.trace_id = ");
    qb_blob(&b, qin->trace_id, 16);
    qb_sql(&b, ")");
  }
  if (q.from_ns) {
    qb_sql(&b, " AND s.start_ns >= ");
    qb_int(&b, q.from_ns);
  }
  if (q.to_ns) {
    qb_sql(&b, " AND s.start_ns < ");
    qb_int(&b, q.to_ns);
  }
  if (q.name.len) {
    qb_sql(&b, " AND s.name = ");
    qb_text(&b, q.name);
  }
  if (q.user_id.len) {
    qb_sql(&b, " AND s.user_id = ");
    qb_text(&b, q.user_id);
  }
  if (q.session_id.len) {
    qb_sql(&b, " AND s.session_id = ");
    qb_text(&b, q.session_id);
  }
  if (q.model.len) {
    qb_sql(&b, " AND (s.request_model = ");
    qb_text(&b, q.model);
    qb_sql(&b, " OR s.response_model = ");
    qb_text(&b, q.model);
    qb_sql(&b, ")");
  }
  if (q.status >= 0) {
    qb_sql(&b, " AND s.status = ");
    qb_int(&b, q.status);
  }
  if (q.kind >= 0) {
    qb_sql(&b, " AND s.kind = ");
    qb_int(&b, q.kind);
  }
  if (q.tag.len) {
    qb_sql(&b, " AND EXISTS (SELECT 1 FROM json_each(s.tags) j WHERE j.value = ");
    qb_text(&b, q.tag);
    qb_sql(&b, ")");
  }
  if (q.min_duration_ns >= 0) {
    qb_sql(&b, " AND s.end_ns - s.start_ns >= ");
    qb_int(&b, q.min_duration_ns);
  }
  if (q.q.len) {
    qb_sql(&b, " AND s.id IN (SELECT rowid FROM span_fts WHERE span_fts MATCH ");
    qb_text(&b, q.q);
    qb_sql(&b, ")");
  }
  page_clause(&b, &q, key, "s.id", q.cursor.len > 0, ckey, cid);
  if ((rc = qb_prepare(&b, r->db, &stmt))) goto out;
  rc = list_page(r, stmt, q.limit, SPAN_NCOLS, 0, tag, span_list_row_fn, out);
out:
  sqlite3_finalize(stmt);
  qb_free(&b);
  lt__sq_reader_put(s, r);
  return rc;
}

/* ---- one trace ----------------------------------------------------------- */

typedef struct {
  int64_t span_id, parent_id;
  bool has_parent;
  json_t *obj;
  json_t *logs;
} node_t;

typedef struct {
  int64_t span_id;
  int idx;
} by_id_t;

static int cmp_by_id(const void *a, const void *b) {
  const by_id_t *x = a, *y = b;
  return x->span_id < y->span_id ? -1 : x->span_id > y->span_id;
}

static int find_span(const by_id_t *ids, int n, int64_t span_id) {
  by_id_t key = {span_id, 0};
  const by_id_t *hit = bsearch(&key, ids, (size_t)n, sizeof *ids, cmp_by_id);
  return hit ? hit->idx : -1;
}

/* Appends nodes[start] and its subtree, depth first with children in start
 * order (nodes are sorted by start; kids lists follow that order). */
static int emit_tree(node_t *nodes, const int *kid_off, const int *kids, bool *seen, int *stack, int start,
                     bool orphan, json_t *arr) {
  int rc = 0, sp = 0;
  stack[sp++] = start;
  seen[start] = true;
  /* depth rides along in the object: children get parent depth + 1. */
  json_object_set_new(nodes[start].obj, "depth", json_integer(0));
  while (sp > 0 && rc == 0) {
    int i = stack[--sp];
    json_t *o = nodes[i].obj;
    if (i == start && orphan) json_object_set_new(o, "orphan", json_true());
    json_int_t depth = json_integer_value(json_object_get(o, "depth"));
    if (json_array_append(arr, o) != 0) rc = LT_ENOMEM;
    for (int k = kid_off[i + 1] - 1; k >= kid_off[i]; k--) {
      int c = kids[k];
      if (seen[c]) continue;
      seen[c] = true;
      json_object_set_new(nodes[c].obj, "depth", json_integer(depth + 1));
      stack[sp++] = c;
    }
  }
  return rc;
}

static int attach_logs(lt__sq_reader_t *r, int64_t project_id, const uint8_t trace_id[16], node_t *nodes,
                       const by_id_t *ids, int n) {
  sqlite3_stmt *st = NULL;
  int src = sqlite3_prepare_v2(r->db,
                               "SELECT span_id, time_ns, event_name, severity, body, attributes FROM logs"
                               " WHERE project_id = ?1 AND trace_id = ?2 ORDER BY time_ns, id",
                               -1, &st, NULL);
  if (src == SQLITE_OK) src = sqlite3_bind_int64(st, 1, project_id);
  if (src == SQLITE_OK) src = sqlite3_bind_blob(st, 2, trace_id, 16, SQLITE_STATIC);
  int rc = 0;
  while (rc == 0 && src == SQLITE_OK && (src = sqlite3_step(st)) == SQLITE_ROW) {
    if (sqlite3_column_type(st, 0) == SQLITE_NULL) {
      src = SQLITE_OK;
      continue;
    }
    int i = find_span(ids, n, sqlite3_column_int64(st, 0));
    src = SQLITE_OK;
    if (i < 0) continue;
    json_t *lg = json_object();
    if (!lg) {
      rc = LT_ENOMEM;
      break;
    }
    put(lg, "time_ns", json_integer(sqlite3_column_int64(st, 1)), &rc);
    put(lg, "event_name", jcol_str(st, 2), &rc);
    put(lg, "severity_number", json_integer(sqlite3_column_int(st, 3)), &rc);
    put(lg, "body", jcol_doc(st, 4, EMPTY_NULL), &rc);
    put(lg, "attributes", jcol_doc(st, 5, EMPTY_OBJECT), &rc);
    if (json_array_append_new(json_object_get(nodes[i].obj, "logs"), lg) != 0) rc = LT_ENOMEM;
  }
  if (rc == 0 && src != SQLITE_DONE && src != SQLITE_OK) rc = fail(r->db, src, "reading logs");
  sqlite3_finalize(st);
  return rc;
}

int lt__sq_trace_get(lt_store_t *st, int64_t project_id, const uint8_t trace_id[16], json_t **out) {
  lt__sq_t *s = LT__SQ(st);
  lt__sq_reader_t *r = lt__sq_reader_get(s);
  sqlite3_stmt *tq = NULL, *sq = NULL;
  node_t *nodes = NULL;
  by_id_t *ids = NULL;
  int *kid_off = NULL, *kids = NULL, *stack = NULL;
  bool *seen = NULL;
  json_t *trace = NULL, *spans = NULL, *res = NULL;
  int n = 0, cap = 0, rc = lt__sq_exec(r->db, "BEGIN");
  if (rc) goto out;

  int src = sqlite3_prepare_v2(r->db, "SELECT " TRACE_COLS " FROM traces t WHERE t.project_id = ?1 AND t.trace_id = ?2",
                               -1, &tq, NULL);
  if (src == SQLITE_OK) src = sqlite3_bind_int64(tq, 1, project_id);
  if (src == SQLITE_OK) src = sqlite3_bind_blob(tq, 2, trace_id, 16, SQLITE_STATIC);
  if (src == SQLITE_OK) src = sqlite3_step(tq);
  if (src == SQLITE_DONE) {
    rc = LT_ENOTFOUND;
    goto out;
  }
  if (src != SQLITE_ROW) {
    rc = fail(r->db, src, "reading a trace");
    goto out;
  }
  if (!(trace = trace_row(tq, &rc)) || rc) goto out;
  int64_t trace_ref = sqlite3_column_int64(tq, 0);

  src = sqlite3_prepare_v2(r->db,
                           "SELECT " SPAN_COLS " FROM spans s JOIN traces t ON t.id = s.trace_ref"
                           " WHERE s.trace_ref = ?1 ORDER BY s.start_ns, s.id LIMIT ?2",
                           -1, &sq, NULL);
  if (src == SQLITE_OK) src = sqlite3_bind_int64(sq, 1, trace_ref);
  if (src == SQLITE_OK) src = sqlite3_bind_int(sq, 2, LT__SQ_TRACE_MAX_SPANS);
  while (rc == 0 && src == SQLITE_OK && (src = sqlite3_step(sq)) == SQLITE_ROW) {
    src = SQLITE_OK;
    if (n == cap) {
      int nc = cap ? cap * 2 : 64;
      node_t *p = lt_realloc(nodes, (size_t)nc * sizeof *p);
      if (!p) {
        rc = LT_ENOMEM;
        break;
      }
      nodes = p;
      cap = nc;
    }
    node_t *nd = &nodes[n];
    nd->span_id = sqlite3_column_int64(sq, 2);
    nd->has_parent = sqlite3_column_type(sq, 3) != SQLITE_NULL;
    nd->parent_id = sqlite3_column_int64(sq, 3);
    nd->obj = span_row(r, sq, true, &rc);
    if (nd->obj) n++;
  }
  if (rc == 0 && src != SQLITE_DONE && src != SQLITE_OK) rc = fail(r->db, src, "reading spans");
  if (rc) goto out;

  ids = lt_malloc(((size_t)n + 1) * sizeof *ids);
  kid_off = lt_calloc((size_t)n + 2, sizeof *kid_off);
  kids = lt_malloc(((size_t)n + 1) * sizeof *kids);
  stack = lt_malloc(((size_t)n + 1) * sizeof *stack);
  seen = lt_calloc((size_t)n + 1, sizeof *seen);
  int *parent = lt_malloc(((size_t)n + 1) * sizeof *parent);
  if (!ids || !kid_off || !kids || !stack || !seen || !parent) {
    lt_free(parent);
    rc = LT_ENOMEM;
    goto out;
  }
  for (int i = 0; i < n; i++) ids[i] = (by_id_t){nodes[i].span_id, i};
  qsort(ids, (size_t)n, sizeof *ids, cmp_by_id);
  /* Children lists in start order (compressed rows: kids[kid_off[p]..]). */
  for (int i = 0; i < n; i++) {
    parent[i] = nodes[i].has_parent ? find_span(ids, n, nodes[i].parent_id) : -1;
    if (parent[i] == i) parent[i] = -1;
    if (parent[i] >= 0) kid_off[parent[i] + 1]++;
  }
  for (int i = 0; i < n; i++) kid_off[i + 1] += kid_off[i];
  int *fill = stack; /* borrowed until the walk */
  for (int i = 0; i < n; i++) fill[i] = kid_off[i];
  for (int i = 0; i < n; i++)
    if (parent[i] >= 0) kids[fill[parent[i]]++] = i;
  kid_off[n + 1] = kid_off[n];

  if (!(spans = json_array())) rc = LT_ENOMEM;
  /* Real roots first, then spans whose parent is not in the trace, then
   * anything left (only reachable through a parent cycle). */
  for (int pass = 0; pass < 3 && rc == 0; pass++)
    for (int i = 0; i < n && rc == 0; i++) {
      if (seen[i]) continue;
      bool take = pass == 0 ? !nodes[i].has_parent : pass == 1 ? parent[i] < 0 : true;
      if (take) rc = emit_tree(nodes, kid_off, kids, seen, stack, i, pass > 0, spans);
    }
  lt_free(parent);
  if (rc == 0) rc = attach_logs(r, project_id, trace_id, nodes, ids, n);
  if (rc) goto out;
  if (!(res = json_object())) {
    rc = LT_ENOMEM;
    goto out;
  }
  put(res, "trace", trace, &rc);
  trace = NULL;
  put(res, "spans", spans, &rc);
  spans = NULL;
out:
  sqlite3_finalize(tq);
  sqlite3_finalize(sq);
  if (!sqlite3_get_autocommit(r->db)) sqlite3_exec(r->db, "COMMIT", NULL, NULL, NULL);
  lt__sq_reader_put(s, r);
  for (int i = 0; i < n; i++) json_decref(nodes[i].obj);
  lt_free(nodes);
  lt_free(ids);
  lt_free(kid_off);
  lt_free(kids);
  lt_free(stack);
  lt_free(seen);
  json_decref(trace);
  json_decref(spans);
  if (rc) json_decref(res);
  else *out = res;
  return rc;
}

/* ---- sessions ------------------------------------------------------------ */

static json_t *session_row(lt__sq_reader_t *r, sqlite3_stmt *st, int *rc) {
  (void)r;
  json_t *o = json_object();
  if (!o) {
    *rc = LT_ENOMEM;
    return NULL;
  }
  put(o, "session_id", jcol_str(st, 0), rc);
  put(o, "trace_count", json_integer(sqlite3_column_int64(st, 1)), rc);
  put(o, "first_start_ns", json_integer(sqlite3_column_int64(st, 2)), rc);
  put(o, "last_end_ns", json_integer(sqlite3_column_int64(st, 3)), rc);
  put(o, "user_id", jcol_str(st, 4), rc);
  put(o, "total_tokens", jcol_known(st, 5), rc);
  put(o, "cost_usd", jcol_cost(st, 6), rc);
  put(o, "error_count", json_integer(sqlite3_column_int64(st, 7)), rc);
  return o;
}

int lt__sq_sessions_list(lt_store_t *st, const lt_query_t *qin, json_t **out) {
  lt__sq_t *s = LT__SQ(st);
  lt_query_t q = *qin;
  q.limit = clamp_limit(q.limit);
  /* Sessions have one order: newest first session start. */
  q.sort = LT_SORT_START;
  q.ascending = false;
  int tag = cursor_tag(CUR_SESSIONS, &q);
  int64_t ckey = 0, cid = 0;
  if (q.cursor.len && cursor_decode(q.cursor, tag, &ckey, &cid)) return LT_EINVAL;
  lt__sq_reader_t *r = lt__sq_reader_get(s);
  sqlite3_stmt *stmt = NULL;
  qb_t b;
  qb_init(&b);
  qb_sql(&b,
         "SELECT t.session_id, count(*), min(t.start_ns), max(t.end_ns), max(t.user_id), sum(t.total_tokens),"
         " sum(t.cost_nusd), sum(t.error_count), min(t.id) AS first_id, min(t.start_ns) AS first_start"
         " FROM traces t WHERE t.project_id = ");
  qb_int(&b, q.project_id);
  qb_sql(&b, " AND t.session_id IS NOT NULL");
  if (q.from_ns) {
    qb_sql(&b, " AND t.start_ns >= ");
    qb_int(&b, q.from_ns);
  }
  if (q.to_ns) {
    qb_sql(&b, " AND t.start_ns < ");
    qb_int(&b, q.to_ns);
  }
  if (q.user_id.len) {
    qb_sql(&b, " AND t.user_id = ");
    qb_text(&b, q.user_id);
  }
  qb_sql(&b, " GROUP BY t.session_id");
  if (q.cursor.len) {
    qb_sql(&b, " HAVING (min(t.start_ns), min(t.id)) < (");
    qb_int(&b, ckey);
    qb_sql(&b, ", ");
    qb_int(&b, cid);
    qb_sql(&b, ")");
  }
  qb_sql(&b, " ORDER BY first_start DESC, first_id DESC LIMIT ");
  qb_int(&b, q.limit + 1);
  int rc = qb_prepare(&b, r->db, &stmt);
  if (rc == 0) rc = list_page(r, stmt, q.limit, 9, 8, tag, session_row, out);
  sqlite3_finalize(stmt);
  qb_free(&b);
  lt__sq_reader_put(s, r);
  return rc;
}

int lt__sq_session_get(lt_store_t *st, int64_t project_id, lt_str_t session_id, json_t **out) {
  lt__sq_t *s = LT__SQ(st);
  if (session_id.len == 0) return LT_ENOTFOUND;
  lt__sq_reader_t *r = lt__sq_reader_get(s);
  sqlite3_stmt *stmt = NULL;
  json_t *traces = json_array(), *res = NULL;
  int rc = traces ? 0 : LT_ENOMEM, n = 0;
  int src = sqlite3_prepare_v2(r->db,
                               "SELECT " TRACE_COLS " FROM traces t WHERE t.project_id = ?1 AND t.session_id = ?2"
                               " ORDER BY t.start_ns, t.id LIMIT ?3",
                               -1, &stmt, NULL);
  if (src == SQLITE_OK) src = sqlite3_bind_int64(stmt, 1, project_id);
  if (src == SQLITE_OK) src = sqlite3_bind_text64(stmt, 2, session_id.ptr, session_id.len, SQLITE_STATIC, SQLITE_UTF8);
  if (src == SQLITE_OK) src = sqlite3_bind_int(stmt, 3, LT__SQ_SESSION_MAX_TRACES);
  while (rc == 0 && src == SQLITE_OK && (src = sqlite3_step(stmt)) == SQLITE_ROW) {
    src = SQLITE_OK;
    json_t *o = trace_row(stmt, &rc);
    if (o && json_array_append_new(traces, o) != 0) rc = LT_ENOMEM;
    n++;
  }
  if (rc == 0 && src != SQLITE_DONE && src != SQLITE_OK) rc = fail(r->db, src, "reading a session");
  if (rc == 0 && n == 0) rc = LT_ENOTFOUND;
  if (rc == 0 && !(res = json_object())) rc = LT_ENOMEM;
  if (rc == 0) {
    put(res, "session_id", jstr(session_id.ptr, session_id.len), &rc);
    put(res, "traces", traces, &rc);
    traces = NULL;
  }
  sqlite3_finalize(stmt);
  lt__sq_reader_put(s, r);
  json_decref(traces);
  if (rc) json_decref(res);
  else *out = res;
  return rc;
}
