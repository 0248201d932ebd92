/* List queries over the SQLite store (traces, spans, sessions) and one
 * session, in the JSON shapes of docs/api.md (trace_get is in
 * sqlite_trace.c, the row JSON in sqlite_rows.c).
 *
 * List queries are built from fixed SQL fragments with a `?` for every
 * value, so no user input ever becomes SQL text. Pagination is keyset on
 * (sort value, row id); the cursor is those two numbers (plus which sort
 * they belong to) in hex. Full-text search (`q`) goes through the FTS5
 * index, which the writer fills shortly after each commit. */
#include "store/sqlite_internal.h"
#include "core/err.h"
#include "core/mem.h"
#include "core/log.h"
#include <string.h>

/* ---- statements ---------------------------------------------------------- */

static int fail(sqlite3 *db, int src, const char *what) { return lt__sq_fail(db, src, what); }

/* A query under construction: SQL from fixed fragments, values kept aside
 * and bound in order. */
typedef struct {
  enum { V_INT, V_TEXT, V_BLOB, V_REAL } type;
  int64_t i;
  double d;
  const void *p;
  size_t n;
} qval_t;

#define QB_MAX_VALUES 176

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
static void qb_real(qb_t *b, double d) { qb_val(b, (qval_t){.type = V_REAL, .d = d}); }

static int qb_prepare(qb_t *b, sqlite3 *db, sqlite3_stmt **out) {
  *out = NULL;
  if (b->rc) return b->rc;
  int src = sqlite3_prepare_v2(db, b->sql.ptr, (int)b->sql.len, out, NULL);
  if (src != SQLITE_OK) return fail(db, src, "preparing a query");
  for (int i = 0; i < b->n && src == SQLITE_OK; i++) {
    const qval_t *v = &b->v[i];
    if (v->type == V_INT) src = sqlite3_bind_int64(*out, i + 1, v->i);
    else if (v->type == V_TEXT) src = sqlite3_bind_text64(*out, i + 1, v->p, v->n, SQLITE_STATIC, SQLITE_UTF8);
    else if (v->type == V_REAL) src = sqlite3_bind_double(*out, i + 1, v->d);
    else src = sqlite3_bind_blob64(*out, i + 1, v->p, v->n, SQLITE_STATIC);
  }
  return src == SQLITE_OK ? 0 : fail(db, src, "binding a query");
}

static void qb_free(qb_t *b) { lt_buf_free(&b->sql); }

/* Checks an FTS5 query before it is used: a syntax error is the caller's
 * mistake (LT_EINVAL), not a database failure. */
static int check_fts(sqlite3 *db, lt_str_t q) {
  sqlite3_stmt *st = NULL;
  int src = sqlite3_prepare_v2(db, "SELECT rowid FROM search.syntax WHERE syntax MATCH ?1 LIMIT 1", -1, &st, NULL);
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

/* A search box gets typed text, not FTS5 syntax: "C++", "it's", a stray
 * quote or "user:bob" are syntax errors to FTS5. Text that does not parse
 * is searched as its words instead: each whitespace-separated piece
 * becomes an FTS5 string ("piece", quotes doubled), all of them required.
 * A piece with no word characters ("*") matches nothing. */
static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

static int fts_words(lt_str_t q, lt_buf_t *out) {
  lt_buf_reset(out);
  int rc = 0;
  for (size_t i = 0; rc == 0 && i < q.len;) {
    while (i < q.len && is_space(q.ptr[i])) i++;
    if (i == q.len) break;
    if (out->len) rc = lt_buf_append(out, " ", 1);
    if (rc == 0) rc = lt_buf_append(out, "\"", 1);
    for (; rc == 0 && i < q.len && !is_space(q.ptr[i]); i++)
      rc = lt_buf_append(out, q.ptr[i] == '"' ? "\"\"" : &q.ptr[i], q.ptr[i] == '"' ? 2 : 1);
    if (rc == 0) rc = lt_buf_append(out, "\"", 1);
  }
  if (rc) return rc == LT_ENOMEM ? LT_ENOMEM : LT_EINVAL; /* too long: the caller's mistake */
  return out->len ? 0 : LT_EINVAL;
}

/* ---- cursors ------------------------------------------------------------- */

/* Which ordering a cursor belongs to, so one page's cursor cannot be
 * replayed against another ordering. */
static int cursor_tag(int what, const lt_query_t *q) { return what * 16 + (int)q->sort * 2 + (q->ascending ? 1 : 0); }

/* 4 is the score list (LT__SQ_CUR_SCORES, sqlite_scores.c). */
enum { CUR_TRACES = 1, CUR_SPANS = 2, CUR_SESSIONS = 3 };
#define CURSOR_VERSION 1

json_t *lt__sq_cursor_encode(int tag, int64_t key, int64_t id) {
  uint8_t raw[18];
  raw[0] = CURSOR_VERSION;
  raw[1] = (uint8_t)tag;
  lt__sq_int_to_id8(key, raw + 2);
  lt__sq_int_to_id8(id, raw + 10);
  return lt__sq_jhex(raw, sizeof raw);
}

int lt__sq_cursor_decode(lt_str_t c, int tag, int64_t *key, int64_t *id) {
  uint8_t raw[18];
  if (lt_hex_decode(raw, sizeof raw, c.ptr, c.len) != 0) return LT_EINVAL;
  if (raw[0] != CURSOR_VERSION || raw[1] != tag) return LT_EINVAL;
  *key = lt__sq_id8_to_int(raw + 2);
  *id = lt__sq_id8_to_int(raw + 10);
  return 0;
}

/* ---- lists ---------------------------------------------------------------- */

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
      lt__sq_put(res, "data", data, &rc);
      data = NULL;
      lt__sq_put(res, "next_cursor", more ? lt__sq_cursor_encode(tag, last_key, last_id) : json_null(), &rc);
    }
  }
  json_decref(data);
  if (rc) json_decref(res);
  else *out = res;
  return rc;
}

/* Full-text search is eventually consistent (docs/storage.md): a list
 * with q says whether the project has stored spans the index does not
 * hold yet, so a caller can tell "no match" from "not searchable yet".
 * On failure *out is released. */
static int mark_search_complete(lt__sq_reader_t *r, int64_t project_id, json_t **out) {
  sqlite3_stmt *st = NULL;
  int src = sqlite3_prepare_v2(r->db,
                               "SELECT EXISTS(SELECT 1 FROM spans WHERE id > coalesce((SELECT value FROM"
                               " search.meta WHERE key = 'hwm'), 0) AND project_id = ?1)",
                               -1, &st, NULL);
  if (src == SQLITE_OK) src = sqlite3_bind_int64(st, 1, project_id);
  if (src == SQLITE_OK) src = sqlite3_step(st);
  int rc = 0;
  if (src == SQLITE_ROW) lt__sq_put(*out, "search_complete", json_boolean(sqlite3_column_int(st, 0) == 0), &rc);
  else rc = fail(r->db, src, "checking the full-text index");
  sqlite3_finalize(st);
  if (rc) {
    json_decref(*out);
    *out = NULL;
  }
  return rc;
}

/* " AND <col> >= " the first span id that can start at or after from_ns
 * (span blocks hold each write's id range and start range). With param,
 * from_ns is bound the first time and *param names it after (a union over
 * full-text partitions repeats the bound in each). */
static void ids_from(qb_t *b, const char *col, int64_t from_ns, int *param) {
  qb_sql(b, " AND ");
  qb_sql(b, col);
  qb_sql(b, " >= coalesce((SELECT min(first_id) FROM span_blocks WHERE max_start >= ");
  if (param && *param) {
    char p[16];
    snprintf(p, sizeof p, "?%d", *param);
    qb_sql(b, p);
  } else {
    qb_int(b, from_ns);
    if (param) *param = b->n;
  }
  qb_sql(b, "), 9223372036854775807)");
}

/* Bounds for fts_in: the span ids that can start at or after a time, or
 * between two numbered parameters. */
typedef struct {
  int64_t from_ns;
  int param; /* its number once bound (it is bound once, for every partition) */
} from_bound_t;

static void bound_from(qb_t *b, void *arg) {
  from_bound_t *f = arg;
  ids_from(b, "rowid", f->from_ns, &f->param);
}

static void bound_params(qb_t *b, void *params) {
  const int *p = params;
  char bounds[64];
  snprintf(bounds, sizeof bounds, " AND rowid BETWEEN ?%d AND ?%d", p[0], p[1]);
  qb_sql(b, bounds);
}

static json_t *trace_row_fn(lt__sq_reader_t *r, sqlite3_stmt *st, int *rc) {
  (void)r;
  return lt__sq_trace_row(st, rc);
}

static json_t *span_list_row_fn(lt__sq_reader_t *r, sqlite3_stmt *st, int *rc) {
  return lt__sq_span_row(r, st, false, rc);
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

/* ---- list plumbing ---------------------------------------------------------- */

/* What every list query holds: the clamped query, its decoded cursor, a
 * pooled reader, the SQL being built and its statement. */
typedef struct {
  lt__sq_t *s;
  lt_query_t q;
  int tag;
  int64_t ckey, cid;
  lt__sq_reader_t *r;
  qb_t b;
  sqlite3_stmt *stmt;
  lt_buf_t words; /* q as plain words, when it is not FTS5 syntax */
  /* With q: the full-text index's partitions (sqlite_search.c), read in
   * the list's read transaction, so none of them can go before the list
   * is done with it. */
  int64_t *parts;
  int n_parts;
} list_t;

/* Reads the partition ids (a list with q, in its read transaction): with
 * a start bound, only those that can hold a span starting in the range
 * (span blocks give the first id that can). */
static int read_parts(list_t *l) {
  sqlite3_stmt *st = NULL;
  int src = sqlite3_prepare_v2(l->r->db,
                               "SELECT id FROM search.parts WHERE last_id >= coalesce((SELECT min(first_id)"
                               " FROM span_blocks WHERE max_start >= ?1), 9223372036854775807) ORDER BY id",
                               -1, &st, NULL);
  if (src == SQLITE_OK) src = sqlite3_bind_int64(st, 1, l->q.from_ns ? l->q.from_ns : INT64_MIN);
  int rc = 0, cap = 0;
  while (rc == 0 && src == SQLITE_OK && (src = sqlite3_step(st)) == SQLITE_ROW) {
    if (l->n_parts == cap) {
      int64_t *p = lt_realloc(l->parts, (size_t)(cap = cap ? 2 * cap : 8) * sizeof *p);
      if (!p) rc = LT_ENOMEM;
      else l->parts = p;
    }
    if (rc == 0) l->parts[l->n_parts++] = sqlite3_column_int64(st, 0);
    src = SQLITE_OK;
  }
  sqlite3_finalize(st);
  if (rc == 0 && src != SQLITE_DONE) rc = fail(l->r->db, src, "listing the full-text partitions");
  return rc;
}

/* " <col> IN (the span ids that match q)": a union over the partitions,
 * each bounded as bound() says (it appends to the partition's WHERE, the
 * rowid being the span id), in groups of PART_GROUP (SQLite allows 500
 * terms in one compound SELECT). No partition: no match. */
#define PART_GROUP 200
typedef void bound_fn(qb_t *b, void *arg);
static void fts_in(qb_t *b, const list_t *l, const char *col, bound_fn *bound, void *arg) {
  qb_sql(b, " AND ");
  qb_sql(b, col);
  qb_sql(b, " IN (");
  if (!l->n_parts) qb_sql(b, "SELECT NULL WHERE 0");
  bool grouped = l->n_parts > PART_GROUP;
  int qparam = 0; /* the query text is bound once, and numbered after */
  for (int i = 0; i < l->n_parts; i++) {
    if (grouped && i % PART_GROUP == 0) qb_sql(b, i ? ") UNION ALL SELECT rowid FROM (" : "SELECT rowid FROM (");
    char head[160];
    snprintf(head, sizeof head, "%sSELECT rowid FROM search.fts_%lld WHERE fts_%lld MATCH ",
             i % PART_GROUP ? " UNION ALL " : "", (long long)l->parts[i], (long long)l->parts[i]);
    qb_sql(b, head);
    if (qparam) {
      snprintf(head, sizeof head, "?%d", qparam);
      qb_sql(b, head);
    } else {
      qb_text(b, l->q.q);
      qparam = b->n;
    }
    if (bound) bound(b, arg);
  }
  if (grouped) qb_sql(b, ")");
  qb_sql(b, ")");
}

static void list_close(list_t *l);

/* Clamps the limit, decodes the cursor (LT_EINVAL before any reader is
 * taken), checks a full-text query's syntax (LT_EINVAL), then holds a
 * reader until list_close. On error nothing is held. */
static int list_open(list_t *l, lt_store_t *st, const lt_query_t *qin, int what) {
  memset(l, 0, sizeof *l);
  l->s = LT__SQ(st);
  l->q = *qin;
  l->q.limit = clamp_limit(l->q.limit);
  l->tag = cursor_tag(what, &l->q);
  if (l->q.cursor.len && lt__sq_cursor_decode(l->q.cursor, l->tag, &l->ckey, &l->cid)) return LT_EINVAL;
  l->r = lt__sq_reader_get(l->s);
  qb_init(&l->b);
  lt_buf_init(&l->words, 64 * 1024);
  size_t blank = 0; /* a q of spaces searches for nothing in particular: no filter */
  while (blank < l->q.q.len && is_space(l->q.q.ptr[blank])) blank++;
  if (blank == l->q.q.len) l->q.q = LT_STR_NULL;
  int rc = l->q.q.len ? check_fts(l->r->db, l->q.q) : 0;
  if (rc == LT_EINVAL && (rc = fts_words(l->q.q, &l->words)) == 0) {
    l->q.q = (lt_str_t){l->words.ptr, l->words.len};
    rc = check_fts(l->r->db, l->q.q);
  }
  /* One read transaction for the whole list (see list_t.parts). */
  if (rc == 0 && l->q.q.len && (rc = lt__sq_exec(l->r->db, "BEGIN")) == 0) rc = read_parts(l);
  if (rc) list_close(l);
  return rc;
}

static void list_close(list_t *l) {
  sqlite3_finalize(l->stmt);
  l->stmt = NULL;
  if (l->r && !sqlite3_get_autocommit(l->r->db)) sqlite3_exec(l->r->db, "COMMIT", NULL, NULL, NULL);
  lt_free(l->parts);
  l->parts = NULL;
  l->n_parts = 0;
  qb_free(&l->b);
  lt_buf_free(&l->words);
  if (l->r) lt__sq_reader_put(l->s, l->r);
  l->r = NULL;
}

/* Filters that traces and spans share, on the table aliased by `col`
 * ("t." or "s."): the column names are the same in both tables. Only
 * fixed SQL text is appended; every value is bound. */
static void col_cond(qb_t *b, const char *col, const char *field, const char *op) {
  qb_sql(b, " AND ");
  qb_sql(b, col);
  qb_sql(b, field);
  qb_sql(b, op);
}

/* " FROM traces t WHERE t.project_id = ?": with a session or user lookup
 * (key_in), NOT INDEXED, so SQLite looks up the ids key_in lists instead
 * of walking traces_start and testing every row (22 ms -> 2 ms for a
 * user's first page at 135,000 traces). */
static void traces_from(qb_t *b, int64_t project_id, bool keyed) {
  qb_sql(b, keyed ? " FROM traces t NOT INDEXED WHERE t.project_id = " : " FROM traces t WHERE t.project_id = ");
  qb_int(b, project_id);
}

/* " UNION ALL" the traces (alias n) of a project not keyed yet, for the
 * caller's test on n. The unary plus keeps SQLite on the rowid range, off
 * traces_start. */
static void above_mark(qb_t *b, int64_t project_id) {
  qb_sql(b, " UNION ALL SELECT n.id FROM traces n WHERE n.id > (SELECT value FROM meta WHERE key = '"
            LT__SQ_META_KEYS_HWM "') AND +n.project_id = ");
  qb_int(b, project_id);
}

/* The traces (alias t) of a session or user, by id: those keyed in
 * trace_keys (within the start range, which the keys carry), and those
 * above the keying mark, read directly (sqlite_write.c keys them in the
 * background). The caller keeps its test on the column. */
static void key_in(qb_t *b, int64_t project_id, int kind, lt_str_t key, int64_t from_ns, int64_t to_ns) {
  qb_sql(b, " AND t.id IN (SELECT k.trace_ref FROM trace_keys k WHERE k.project_id = ");
  qb_int(b, project_id);
  qb_sql(b, " AND k.kind = ");
  qb_int(b, kind);
  qb_sql(b, " AND k.key = ");
  qb_text(b, key);
  if (from_ns) {
    qb_sql(b, " AND k.start_ns >= ");
    qb_int(b, from_ns);
  }
  if (to_ns) {
    qb_sql(b, " AND k.start_ns < ");
    qb_int(b, to_ns);
  }
  above_mark(b, project_id);
  qb_sql(b, kind == LT__SQ_KEY_SESSION ? " AND n.session_id = " : " AND n.user_id = ");
  qb_text(b, key);
  qb_sql(b, ")");
}

/* The traces (alias t) with a model: trace_models for the keyed ones,
 * the model lists of those above the mark (keyed with them, as key_in). */
static void model_in(qb_t *b, int64_t project_id, lt_str_t model) {
  qb_sql(b, " AND t.id IN (SELECT m.trace_ref FROM trace_models m WHERE m.project_id = ");
  qb_int(b, project_id);
  qb_sql(b, " AND m.model = ");
  qb_text(b, model);
  above_mark(b, project_id);
  qb_sql(b, " AND EXISTS (SELECT 1 FROM json_each(n.models) j WHERE json_valid(n.models) AND j.type = 'text'"
            " AND j.value = ");
  qb_text(b, model);
  qb_sql(b, "))");
}

static void common_filters(qb_t *b, const lt_query_t *q, const char *col) {
  if (q->from_ns) {
    col_cond(b, col, "start_ns", " >= ");
    qb_int(b, q->from_ns);
  }
  if (q->to_ns) {
    col_cond(b, col, "start_ns", " < ");
    qb_int(b, q->to_ns);
  }
  if (q->name.len) {
    col_cond(b, col, "name", " = ");
    qb_text(b, q->name);
  }
  if (q->user_id.len) {
    col_cond(b, col, "user_id", " = ");
    qb_text(b, q->user_id);
  }
  if (q->session_id.len) {
    col_cond(b, col, "session_id", " = ");
    qb_text(b, q->session_id);
  }
}

static void status_filter(qb_t *b, const lt_query_t *q, const char *col) {
  if (q->status >= 0) {
    col_cond(b, col, "status", " = ");
    qb_int(b, q->status);
  }
}

static void tag_and_duration_filters(qb_t *b, const lt_query_t *q, const char *col) {
  if (q->tag.len) {
    qb_sql(b, " AND EXISTS (SELECT 1 FROM json_each(");
    qb_sql(b, col);
    qb_sql(b, "tags) j WHERE j.value = ");
    qb_text(b, q->tag);
    qb_sql(b, ")");
  }
  if (q->min_duration_ns >= 0) {
    qb_sql(b, " AND ");
    qb_sql(b, col);
    qb_sql(b, "end_ns - ");
    qb_sql(b, col);
    qb_sql(b, "start_ns >= ");
    qb_int(b, q->min_duration_ns);
  }
}

/* Score filters (lt_query_t): on traces, a score on the trace or on any of
 * its spans; on spans, a score on that span. SQLite builds the IN set once
 * from the scores_name_time index and tests each row of the ordered walk
 * against it (no per-row subquery). */
static void score_in(qb_t *b, const lt_query_t *q, bool spans, lt_str_t name) {
  qb_sql(b, spans ? " AND (t.trace_id, s.span_id) IN (SELECT sc.trace_id, sc.span_id"
                  : " AND t.trace_id IN (SELECT sc.trace_id");
  qb_sql(b, " FROM scores sc WHERE sc.project_id = ");
  qb_int(b, q->project_id);
  qb_sql(b, " AND sc.name = ");
  qb_text(b, name);
}

static void score_filters(qb_t *b, const lt_query_t *q, bool spans) {
  if (q->score_name.len) {
    score_in(b, q, spans, q->score_name);
    if (q->has_score_min) {
      qb_sql(b, " AND sc.value >= ");
      qb_real(b, q->score_min);
    }
    if (q->has_score_max) {
      qb_sql(b, " AND sc.value <= ");
      qb_real(b, q->score_max);
    }
    qb_sql(b, ")");
  }
  if (q->feedback) {
    score_in(b, q, spans, LT_STR(LT_SCORE_FEEDBACK));
    qb_sql(b, q->feedback > 0 ? " AND sc.value > 0)" : " AND sc.value < 0)");
  }
}

/* ---- traces -------------------------------------------------------------- */

int lt__sq_traces_list(lt_store_t *st, const lt_query_t *qin, json_t **out) {
  list_t l;
  int rc = list_open(&l, st, qin, CUR_TRACES);
  if (rc) return rc;
  const char *key = sort_expr(l.q.sort, false);
  qb_sql(&l.b, "SELECT " LT__SQ_TRACE_COLS ", ");
  qb_sql(&l.b, key);
  traces_from(&l.b, l.q.project_id, l.q.session_id.len || l.q.user_id.len);
  common_filters(&l.b, &l.q, "t.");
  if (l.q.session_id.len) key_in(&l.b, l.q.project_id, LT__SQ_KEY_SESSION, l.q.session_id, l.q.from_ns, l.q.to_ns);
  else if (l.q.user_id.len) key_in(&l.b, l.q.project_id, LT__SQ_KEY_USER, l.q.user_id, l.q.from_ns, l.q.to_ns);
  if (l.q.model.len) model_in(&l.b, l.q.project_id, l.q.model);
  status_filter(&l.b, &l.q, "t.");
  tag_and_duration_filters(&l.b, &l.q, "t.");
  score_filters(&l.b, &l.q, false);
  if (l.q.q.len) {
    qb_sql(&l.b, " AND t.id IN (SELECT s.trace_ref FROM spans s WHERE s.project_id = ");
    qb_int(&l.b, l.q.project_id);
    /* A trace that starts in the range has every span starting in it:
     * FTS5 skips the older matches. */
    from_bound_t fb = {l.q.from_ns, 0};
    fts_in(&l.b, &l, "s.id", l.q.from_ns ? bound_from : NULL, &fb);
    qb_sql(&l.b, ")");
  }
  page_clause(&l.b, &l.q, key, "t.id", l.q.cursor.len > 0, l.ckey, l.cid);
  if ((rc = qb_prepare(&l.b, l.r->db, &l.stmt))) goto out;
  rc = list_page(l.r, l.stmt, l.q.limit, LT__SQ_TRACE_NCOLS, 0, l.tag, trace_row_fn, out);
  if (rc == 0 && l.q.q.len) rc = mark_search_complete(l.r, l.q.project_id, out);
out:
  list_close(&l);
  return rc;
}

/* ---- spans --------------------------------------------------------------- */

/* Spans have no start-time index (schema 5): span_blocks holds, per write
 * transaction, the id range it stored and the range of its start times.
 * Time filters become id bounds through the blocks, and the start order
 * reads the blocks in order of their newest start (oldest, ascending),
 * each with the list's filters, until the next block cannot hold a row of
 * the page; the page is then read from those blocks' id ranges alone. */

/* Id ranges a span list is restricted to (none: the whole table), and
 * the most blocks a page may be looked for in. Filters that few rows pass
 * read many blocks before the page is full, and when blocks span a wide
 * time (long traces) many of them overlap the page; each costs a rebind
 * and a read of its rows. Past SPAN_BLOCKS_MAX blocks, or an eighth of
 * all spans, the walk gives up and the whole table is read, so a filter
 * nothing passes costs at most an eighth more than reading every row.
 * Adjacent blocks join into one range, so the ranges stay few. */
#define SPAN_RANGES_MAX 64
#define SPAN_BLOCKS_MAX 1024
typedef struct {
  int n;
  int64_t lo[SPAN_RANGES_MAX], hi[SPAN_RANGES_MAX];
} id_ranges_t;

/* The FROM and WHERE of a span list, with the cursor condition and the
 * ORDER BY/LIMIT, restricted to r's ranges when given. */
static void span_list_sql(qb_t *b, const list_t *l, const lt_query_t *qin, const char *key, const id_ranges_t *r,
                          int *range_param) {
  qb_sql(b, " FROM spans s JOIN traces t ON t.id = s.trace_ref WHERE s.project_id = ");
  qb_int(b, l->q.project_id);
  if (l->q.from_ns) ids_from(b, "s.id", l->q.from_ns, NULL);
  if (l->q.to_ns) {
    qb_sql(b, " AND s.id <= coalesce((SELECT max(last_id) FROM span_blocks WHERE min_start < ");
    qb_int(b, l->q.to_ns);
    qb_sql(b, "), -1)");
  }
  /* Bind indexes of the first range's lo and the last one's hi: the
   * ranges are sorted (ranges_merge), so they bound every id. */
  int lo_param = 0, hi_param = 0;
  for (int i = 0; r && i < r->n; i++) {
    qb_sql(b, i ? " OR s.id BETWEEN " : " AND (s.id BETWEEN ");
    if (i == 0) lo_param = b->n + 1;
    qb_int(b, r->lo[i]);
    qb_sql(b, " AND ");
    hi_param = b->n + 1;
    qb_int(b, r->hi[i]);
    if (i == r->n - 1) qb_sql(b, ")");
  }
  if (range_param) *range_param = lo_param; /* with one range, hi's is the next */
  if (l->q.has_trace_id) {
    /* The trace's spans through its runs (spans have no trace index). */
    qb_sql(b, " AND s.id IN (SELECT rs.id FROM traces x JOIN trace_runs r ON r.trace_ref = x.id"
              " JOIN spans rs ON rs.id BETWEEN r.first_id AND r.last_id AND rs.trace_ref = x.id"
              " WHERE x.project_id = ");
    qb_int(b, l->q.project_id);
    qb_sql(b, " AND x.trace_id = ");
    qb_blob(b, qin->trace_id, 16);
    qb_sql(b, ")");
  }
  common_filters(b, &l->q, "s.");
  if (l->q.model.len) {
    qb_sql(b, " AND (s.request_model = ");
    qb_text(b, l->q.model);
    qb_sql(b, " OR s.response_model = ");
    qb_text(b, l->q.model);
    qb_sql(b, ")");
  }
  status_filter(b, &l->q, "s.");
  if (l->q.kind >= 0) {
    qb_sql(b, " AND s.kind = ");
    qb_int(b, l->q.kind);
  }
  tag_and_duration_filters(b, &l->q, "s.");
  score_filters(b, &l->q, true);
  if (l->q.q.len) {
    /* The matches are gathered anew each time the statement runs (per
     * block in span_blocks_for_page): bounded by the ranges' ids, FTS5
     * reads only the matches that can count. */
    int params[2] = {lo_param, hi_param};
    if (lo_param) fts_in(b, l, "s.id", bound_params, params);
    else if (l->q.from_ns) {
      from_bound_t fb = {l->q.from_ns, 0};
      fts_in(b, l, "s.id", bound_from, &fb); /* a whole-table read keeps the start bound */
    }
    else fts_in(b, l, "s.id", NULL, NULL);
  }
  page_clause(b, &l->q, key, "s.id", l->q.cursor.len > 0, l->ckey, l->cid);
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

/* Joins the n id ranges in pairs (sorted first) that overlap or touch,
 * into r; false when they make more than SPAN_RANGES_MAX. */
static bool ranges_merge(int64_t (*pairs)[2], int n, id_ranges_t *r) {
  qsort(pairs, (size_t)n, sizeof pairs[0], cmp_i64); /* by each pair's first id */
  int m = 0;
  for (int i = 0; i < n; i++) {
    if (m && pairs[i][0] <= r->hi[m - 1] + 1) {
      if (pairs[i][1] > r->hi[m - 1]) r->hi[m - 1] = pairs[i][1];
      continue;
    }
    if (m == SPAN_RANGES_MAX) return false;
    r->lo[m] = pairs[i][0];
    r->hi[m] = pairs[i][1];
    m++;
  }
  r->n = m;
  return true;
}

/* The blocks a page in start order can come from; r->n == 0 when that
 * takes more than SPAN_BLOCKS_MAX blocks, or their ids more than
 * SPAN_RANGES_MAX ranges (the whole table is read). */
static int span_blocks_for_page(list_t *l, const lt_query_t *qin, id_ranges_t *r) {
  r->n = 0;
  bool asc = l->q.ascending;
  int need = l->q.limit + 1;
  qb_t b;
  qb_init(&b);
  qb_sql(&b, "SELECT first_id, last_id, min_start, max_start FROM span_blocks WHERE 1");
  if (l->q.from_ns) {
    qb_sql(&b, " AND max_start >= ");
    qb_int(&b, l->q.from_ns);
  }
  if (l->q.to_ns) {
    qb_sql(&b, " AND min_start < ");
    qb_int(&b, l->q.to_ns);
  }
  if (l->q.cursor.len) {
    qb_sql(&b, asc ? " AND max_start >= " : " AND min_start <= ");
    qb_int(&b, l->ckey);
  }
  qb_sql(&b, asc ? " ORDER BY min_start ASC" : " ORDER BY max_start DESC");
  sqlite3_stmt *blocks = NULL, *q = NULL;
  int rc = qb_prepare(&b, l->r->db, &blocks);
  qb_free(&b);
  /* One block's best rows under the list's filters: prepared once, its id
   * range bound per block. */
  int param = 0;
  id_ranges_t one = {.n = 1, .lo = {0}, .hi = {0}};
  qb_init(&b);
  qb_sql(&b, "SELECT s.start_ns");
  span_list_sql(&b, l, qin, "s.start_ns", &one, &param);
  if (rc == 0) rc = qb_prepare(&b, l->r->db, &q);
  qb_free(&b);
  /* The best `need` starts so far, then one block's rows after them. */
  int64_t *starts = rc ? NULL : lt_malloc((size_t)need * 2 * sizeof *starts);
  int64_t (*pairs)[2] = rc ? NULL : lt_malloc(SPAN_BLOCKS_MAX * sizeof *pairs);
  if (!rc && (!starts || !pairs)) rc = LT_ENOMEM;
  int n = 0, nb = 0, src = SQLITE_DONE;
  bool whole = false;
  int64_t budget = 0, spans = 0;
  if (rc == 0 && (rc = lt__sq_meta_get(l->r->db, LT__SQ_META_SPANS, &spans)) == 0) budget = spans / 8;
  while (rc == 0 && (src = sqlite3_step(blocks)) == SQLITE_ROW) {
    int64_t first = sqlite3_column_int64(blocks, 0), last = sqlite3_column_int64(blocks, 1);
    int64_t edge = sqlite3_column_int64(blocks, asc ? 2 : 3);
    if (n >= need) {
      /* Keep the page's best rows; the last of them bounds the page: rows
       * of a block wholly past it (ties sort by id, so an equal start could
       * still come first) stay off. */
      qsort(starts, (size_t)n, sizeof *starts, cmp_i64);
      if (!asc) memmove(starts, starts + (n - need), (size_t)need * sizeof *starts);
      n = need;
      int64_t kth = asc ? starts[need - 1] : starts[0];
      if (asc ? edge > kth : edge < kth) break;
    }
    if (nb == SPAN_BLOCKS_MAX || (nb >= SPAN_RANGES_MAX && (budget -= last - first + 1) < 0)) {
      whole = true;
      break;
    }
    pairs[nb][0] = first;
    pairs[nb][1] = last;
    nb++;
    sqlite3_reset(q);
    sqlite3_bind_int64(q, param, first);
    sqlite3_bind_int64(q, param + 1, last);
    while ((src = sqlite3_step(q)) == SQLITE_ROW) starts[n++] = sqlite3_column_int64(q, 0);
    if (src != SQLITE_DONE) rc = fail(l->r->db, src, "reading a span block");
    src = SQLITE_ROW;
  }
  if (rc == 0 && src != SQLITE_ROW && src != SQLITE_DONE) rc = fail(l->r->db, src, "reading span blocks");
  sqlite3_finalize(blocks);
  sqlite3_finalize(q);
  lt_free(starts);
  if (rc == 0 && !whole) {
    if (nb == 0) *r = (id_ranges_t){.n = 1, .lo = {1}, .hi = {0}}; /* no block can hold a row: an empty range */
    else if (!ranges_merge(pairs, nb, r)) r->n = 0;
  }
  lt_free(pairs);
  if (rc || whole) r->n = 0;
  return rc;
}

int lt__sq_spans_list(lt_store_t *st, const lt_query_t *qin, json_t **out) {
  list_t l;
  int rc = list_open(&l, st, qin, CUR_SPANS);
  if (rc) return rc;
  const char *key = sort_expr(l.q.sort, true);
  id_ranges_t ranges = {0};
  if (l.q.sort == LT_SORT_START && !l.q.has_trace_id && (rc = span_blocks_for_page(&l, qin, &ranges))) goto out;
  qb_sql(&l.b, "SELECT " LT__SQ_SPAN_COLS ", ");
  qb_sql(&l.b, key);
  span_list_sql(&l.b, &l, qin, key, ranges.n ? &ranges : NULL, NULL);
  if ((rc = qb_prepare(&l.b, l.r->db, &l.stmt))) goto out;
  rc = list_page(l.r, l.stmt, l.q.limit, LT__SQ_SPAN_NCOLS, 0, l.tag, span_list_row_fn, out);
  if (rc == 0 && l.q.q.len) rc = mark_search_complete(l.r, l.q.project_id, out);
out:
  list_close(&l);
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
  lt__sq_put(o, "session_id", lt__sq_jcol_str(st, 0), rc);
  lt__sq_put(o, "trace_count", json_integer(sqlite3_column_int64(st, 1)), rc);
  lt__sq_put(o, "first_start_ns", json_integer(sqlite3_column_int64(st, 2)), rc);
  lt__sq_put(o, "last_end_ns", json_integer(sqlite3_column_int64(st, 3)), rc);
  lt__sq_put(o, "user_id", lt__sq_jcol_str(st, 4), rc);
  lt__sq_put(o, "total_tokens", lt__sq_jcol_known(st, 5), rc);
  lt__sq_put(o, "cost_usd", lt__sq_jcol_cost(st, 6), rc);
  lt__sq_put(o, "error_count", json_integer(sqlite3_column_int64(st, 7)), rc);
  return o;
}

int lt__sq_sessions_list(lt_store_t *st, const lt_query_t *qin, json_t **out) {
  /* Sessions have one order: newest first session start. */
  lt_query_t qs = *qin;
  qs.sort = LT_SORT_START;
  qs.ascending = false;
  qs.q = LT_STR_NULL;
  list_t l;
  int rc = list_open(&l, st, &qs, CUR_SESSIONS);
  if (rc) return rc;
  qb_sql(&l.b,
         "SELECT t.session_id, count(*), min(t.start_ns), max(t.end_ns), max(t.user_id), sum(t.total_tokens),"
         " sum(t.cost_nusd), sum(t.error_count), min(t.id) AS first_id, min(t.start_ns) AS first_start");
  traces_from(&l.b, l.q.project_id, l.q.user_id.len > 0);
  qb_sql(&l.b, " AND t.session_id IS NOT NULL");
  if (l.q.from_ns) {
    qb_sql(&l.b, " AND t.start_ns >= ");
    qb_int(&l.b, l.q.from_ns);
  }
  if (l.q.to_ns) {
    qb_sql(&l.b, " AND t.start_ns < ");
    qb_int(&l.b, l.q.to_ns);
  }
  if (l.q.user_id.len) {
    qb_sql(&l.b, " AND t.user_id = ");
    qb_text(&l.b, l.q.user_id);
    key_in(&l.b, l.q.project_id, LT__SQ_KEY_USER, l.q.user_id, l.q.from_ns, l.q.to_ns);
  }
  qb_sql(&l.b, " GROUP BY t.session_id");
  if (l.q.cursor.len) {
    qb_sql(&l.b, " HAVING (min(t.start_ns), min(t.id)) < (");
    qb_int(&l.b, l.ckey);
    qb_sql(&l.b, ", ");
    qb_int(&l.b, l.cid);
    qb_sql(&l.b, ")");
  }
  qb_sql(&l.b, " ORDER BY first_start DESC, first_id DESC LIMIT ");
  qb_int(&l.b, l.q.limit + 1);
  rc = qb_prepare(&l.b, l.r->db, &l.stmt);
  if (rc == 0) rc = list_page(l.r, l.stmt, l.q.limit, 9, 8, l.tag, session_row, out);
  list_close(&l);
  return rc;
}

int lt__sq_session_get(lt_store_t *st, int64_t project_id, lt_str_t session_id, json_t **out) {
  lt__sq_t *s = LT__SQ(st);
  if (session_id.len == 0) return LT_ENOTFOUND;
  lt__sq_reader_t *r = lt__sq_reader_get(s);
  sqlite3_stmt *stmt = NULL;
  json_t *traces = json_array(), *res = NULL;
  int rc = traces ? 0 : LT_ENOMEM, n = 0;
  qb_t b;
  qb_init(&b);
  qb_sql(&b, "SELECT " LT__SQ_TRACE_COLS);
  traces_from(&b, project_id, true);
  qb_sql(&b, " AND t.session_id = ");
  qb_text(&b, session_id);
  key_in(&b, project_id, LT__SQ_KEY_SESSION, session_id, 0, 0);
  qb_sql(&b, " ORDER BY t.start_ns, t.id LIMIT ");
  qb_int(&b, LT__SQ_SESSION_MAX_TRACES);
  if (rc == 0) rc = qb_prepare(&b, r->db, &stmt);
  int src = rc ? SQLITE_ERROR : SQLITE_OK;
  while (rc == 0 && src == SQLITE_OK && (src = sqlite3_step(stmt)) == SQLITE_ROW) {
    src = SQLITE_OK;
    json_t *o = lt__sq_trace_row(stmt, &rc);
    if (o && json_array_append_new(traces, o) != 0) rc = LT_ENOMEM;
    n++;
  }
  if (rc == 0 && src != SQLITE_DONE && src != SQLITE_OK) rc = fail(r->db, src, "reading a session");
  if (rc == 0 && n == 0) rc = LT_ENOTFOUND;
  if (rc == 0 && !(res = json_object())) rc = LT_ENOMEM;
  if (rc == 0) {
    lt__sq_put(res, "session_id", lt__sq_jstr(session_id.ptr, session_id.len), &rc);
    lt__sq_put(res, "traces", traces, &rc);
    traces = NULL;
  }
  sqlite3_finalize(stmt);
  qb_free(&b);
  lt__sq_reader_put(s, r);
  json_decref(traces);
  if (rc) json_decref(res);
  else *out = res;
  return rc;
}
