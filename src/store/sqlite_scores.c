/* Scores in the SQLite store: evaluations and user feedback attached to a
 * trace, a span or a session (table scores, migration 2).
 *
 * Writes from the API are rare and small, so they take a short-lived admin
 * connection (as project and key writes do) instead of queueing behind
 * span ingest: the caller gets the row id, or learns that its idempotency
 * key was already used, synchronously. Scores carried inline by spans are
 * written by the writer thread in the span's own transaction. Reads use the
 * reader pool. docs/storage.md explains the choice. */
#include "store/sqlite_internal.h"
#include "core/err.h"
#include "core/log.h"
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* A trace's detail shows at most this many scores. */
#define TRACE_MAX_SCORES 10000
/* scores_summary: names listed, labels per name, largest bucket width. */
#define SUMMARY_MAX_NAMES 200
#define SUMMARY_MAX_LABELS 100
#define SUMMARY_MAX_BUCKET_S 1000000000LL

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Characters (not bytes) of UTF-8 text. */
static size_t utf8_chars(lt_str_t s) {
  size_t n = 0;
  for (size_t i = 0; i < s.len; i++)
    if (((unsigned char)s.ptr[i] & 0xC0) != 0x80) n++;
  return n;
}

/* The invariants of lt_score_t; the API has already said which rule a
 * request broke, so this only guards the table. */
static bool score_ok(const lt_score_t *sc) {
  if (!sc->name.len || utf8_chars(sc->name) > LT_SCORE_NAME_MAX) return false;
  if (sc->has_trace == (sc->session_id.len > 0) || (sc->has_span && !sc->has_trace)) return false;
  if ((unsigned)sc->source > LT_SCORE_EVALUATOR) return false;
  if (utf8_chars(sc->comment) > LT_SCORE_COMMENT_MAX || utf8_chars(sc->idempotency_key) > LT_SCORE_KEY_MAX)
    return false;
  if (utf8_chars(sc->session_id) > LT_SCORE_SESSION_MAX) return false;
  switch (sc->data_type) {
  case LT_SCORE_NUMERIC: return isfinite(sc->value) && !sc->string_value.len;
  case LT_SCORE_BOOLEAN: return (sc->value == 0 || sc->value == 1) && !sc->string_value.len;
  case LT_SCORE_CATEGORICAL: return sc->string_value.len && utf8_chars(sc->string_value) <= LT_SCORE_LABEL_MAX;
  }
  return false;
}

/* Binds LT__SQ_SCORE_INSERT_SQL's parameters. */
static int bind_score(sqlite3_stmt *st, int64_t project_id, const lt_score_t *sc, int64_t now) {
  int src = sqlite3_bind_int64(st, 1, project_id);
  if (src == SQLITE_OK)
    src = sc->has_trace ? sqlite3_bind_blob(st, 2, sc->trace_id, 16, SQLITE_STATIC) : sqlite3_bind_null(st, 2);
  if (src == SQLITE_OK)
    src = sc->has_span ? sqlite3_bind_int64(st, 3, lt__sq_id8_to_int(sc->span_id)) : sqlite3_bind_null(st, 3);
  if (src == SQLITE_OK) src = lt__sq_bind_text(st, 4, sc->session_id);
  if (src == SQLITE_OK) src = lt__sq_bind_text_nn(st, 5, sc->name);
  if (src == SQLITE_OK) src = sqlite3_bind_text(st, 6, lt_score_type_name(sc->data_type), -1, SQLITE_STATIC);
  if (src == SQLITE_OK)
    src = sc->data_type == LT_SCORE_CATEGORICAL ? sqlite3_bind_null(st, 7) : sqlite3_bind_double(st, 7, sc->value);
  if (src == SQLITE_OK) src = lt__sq_bind_text(st, 8, sc->string_value);
  if (src == SQLITE_OK) src = sqlite3_bind_text(st, 9, lt_score_source_name(sc->source), -1, SQLITE_STATIC);
  if (src == SQLITE_OK) src = lt__sq_bind_text(st, 10, sc->comment);
  if (src == SQLITE_OK) src = sqlite3_bind_int64(st, 11, sc->time_ns ? sc->time_ns : now);
  if (src == SQLITE_OK) src = lt__sq_bind_text(st, 12, sc->idempotency_key);
  return src;
}

/* ---- API writes ----------------------------------------------------------- */

/* A lock still held by another connection after the busy timeout is a
 * retry-later condition, not a broken database. */
static int write_fail(sqlite3 *db, int src, const char *what) {
  int rc = lt__sq_fail(db, src, what);
  return (src & 0xff) == SQLITE_BUSY || (src & 0xff) == SQLITE_LOCKED ? LT_EFULL : rc;
}

int lt__sq_score_add(lt_store_t *st, int64_t project_id, const lt_score_t *scores, size_t n,
                     lt_score_result_t *results) {
  if (n == 0) return 0;
  for (size_t i = 0; i < n; i++)
    if (!score_ok(&scores[i])) return LT_EINVAL;
  sqlite3 *db = NULL;
  sqlite3_stmt *ins = NULL, *find = NULL;
  int rc = lt__sq_admin_open(LT__SQ(st), &db);
  if (rc) return rc;
  /* IMMEDIATE: takes the write lock up front, through the busy handler. A
   * deferred transaction upgrading from read to write could fail at once
   * with SQLITE_BUSY_SNAPSHOT when the writer committed meanwhile. */
  int src = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
  if (src != SQLITE_OK) {
    rc = write_fail(db, src, "starting a score transaction");
    goto out;
  }
  src = sqlite3_prepare_v2(db, LT__SQ_SCORE_INSERT_SQL, -1, &ins, NULL);
  if (src == SQLITE_OK)
    src = sqlite3_prepare_v2(db, "SELECT id FROM scores WHERE project_id = ?1 AND idempotency_key = ?2", -1, &find,
                             NULL);
  if (src != SQLITE_OK) {
    rc = lt__sq_fail(db, src, "preparing score statements");
    goto out;
  }
  int64_t now = now_ns();
  for (size_t i = 0; i < n && rc == 0; i++) {
    const lt_score_t *sc = &scores[i];
    src = bind_score(ins, project_id, sc, now);
    if (src == SQLITE_OK) src = sqlite3_step(ins);
    sqlite3_reset(ins);
    if (src != SQLITE_DONE) {
      rc = write_fail(db, src, "inserting a score");
      break;
    }
    results[i].duplicate = sqlite3_changes(db) == 0;
    results[i].id = sqlite3_last_insert_rowid(db);
    if (!results[i].duplicate) continue;
    /* Only an idempotency key can make the insert a no-op. */
    src = sqlite3_bind_int64(find, 1, project_id);
    if (src == SQLITE_OK) src = lt__sq_bind_text_nn(find, 2, sc->idempotency_key);
    if (src == SQLITE_OK) src = sqlite3_step(find);
    if (src == SQLITE_ROW) results[i].id = sqlite3_column_int64(find, 0);
    else rc = lt__sq_fail(db, src == SQLITE_DONE ? SQLITE_INTERNAL : src, "finding a duplicate score");
    sqlite3_reset(find);
  }
  if (rc == 0) {
    src = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    if (src != SQLITE_OK) rc = write_fail(db, src, "committing scores");
  }
out:
  sqlite3_finalize(ins);
  sqlite3_finalize(find);
  if (db && !sqlite3_get_autocommit(db)) sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
  sqlite3_close(db);
  if (rc)
    for (size_t i = 0; i < n; i++) results[i] = (lt_score_result_t){0};
  return rc;
}

/* ---- inline scores (writer thread) ------------------------------------------ */

static lt_str_t jstr(json_t *v) {
  return json_is_string(v) ? (lt_str_t){json_string_value(v), json_string_length(v)} : LT_STR_NULL;
}

/* Turns one inline entry {name, value?, string_value?, comment?, source?,
 * data_type?} into a score on the span; false when it is malformed. */
static bool inline_score(json_t *e, const lt_span_t *sp, lt_score_t *sc) {
  memset(sc, 0, sizeof *sc);
  if (!json_is_object(e)) return false;
  json_t *value = json_object_get(e, "value"), *label = json_object_get(e, "string_value");
  json_t *type = json_object_get(e, "data_type"), *source = json_object_get(e, "source");
  sc->has_trace = sc->has_span = true;
  memcpy(sc->trace_id, sp->trace_id, 16);
  memcpy(sc->span_id, sp->span_id, 8);
  sc->name = jstr(json_object_get(e, "name"));
  sc->comment = jstr(json_object_get(e, "comment"));
  sc->string_value = jstr(label);
  sc->time_ns = sp->end_ns > 0 ? sp->end_ns : sp->start_ns;
  sc->source = LT_SCORE_EVALUATOR;
  if (source) {
    lt_str_t s = jstr(source);
    if (lt_str_eq_lit(s, "api")) sc->source = LT_SCORE_API;
    else if (lt_str_eq_lit(s, "human")) sc->source = LT_SCORE_HUMAN;
    else if (!lt_str_eq_lit(s, "evaluator")) return false;
  }
  /* The declared type wins; otherwise the value's JSON type decides. */
  int declared = -1;
  if (type) {
    lt_str_t t = jstr(type);
    for (int k = LT_SCORE_NUMERIC; k <= LT_SCORE_CATEGORICAL; k++)
      if (lt_str_eq_lit(t, lt_score_type_name((lt_score_type_t)k))) declared = k;
    if (declared < 0) return false;
  }
  if (declared == LT_SCORE_CATEGORICAL || (declared < 0 && !json_is_number(value) && !json_is_boolean(value))) {
    sc->data_type = LT_SCORE_CATEGORICAL;
    if (!sc->string_value.len) sc->string_value = jstr(value);
    return score_ok(sc);
  }
  if (json_is_boolean(value)) sc->value = json_is_true(value) ? 1 : 0;
  else if (json_is_number(value)) sc->value = json_number_value(value);
  else return false;
  sc->data_type = declared == LT_SCORE_BOOLEAN || (declared < 0 && json_is_boolean(value)) ? LT_SCORE_BOOLEAN
                                                                                           : LT_SCORE_NUMERIC;
  /* A label next to a number is dropped: one score has one kind of value. */
  sc->string_value = LT_STR_NULL;
  return score_ok(sc);
}

int lt__sq_scores_insert_inline(lt__sq_t *s, int64_t project_id, const lt_span_t *sp) {
  if (!sp->scores.len) return 0;
  json_t *arr = json_loadb(sp->scores.ptr, sp->scores.len, 0, NULL);
  if (!json_is_array(arr)) {
    json_decref(arr);
    return 0;
  }
  sqlite3_stmt *st = s->ws[WS_SCORE_INSERT];
  int rc = 0, skipped = 0;
  size_t i;
  json_t *e;
  json_array_foreach(arr, i, e) {
    lt_score_t sc;
    if (!inline_score(e, sp, &sc)) {
      skipped++;
      continue;
    }
    int src = bind_score(st, project_id, &sc, 0);
    if (src == SQLITE_OK) src = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (src != SQLITE_DONE) {
      rc = lt__sq_fail(s->wdb, src, "inserting an inline score");
      break;
    }
  }
  if (skipped) lt_debug("sqlite: skipped %d malformed inline score(s) of a span", skipped);
  json_decref(arr);
  return rc;
}

/* ---- rows ------------------------------------------------------------------ */

#define SCORE_COLS                                                                                      \
  "id, trace_id, span_id, session_id, name, data_type, value, string_value, source, comment, time_ns,"  \
  " idempotency_key"
enum { C_ID, C_TRACE, C_SPAN, C_SESSION, C_NAME, C_TYPE, C_VALUE, C_LABEL, C_SOURCE, C_COMMENT, C_TIME, C_KEY };

/* RFC 3339 in UTC with milliseconds, as the other rows show times. */
static json_t *jtime(int64_t ns) {
  time_t t = (time_t)(ns / 1000000000);
  int ms = (int)(ns % 1000000000 / 1000000);
  struct tm tm;
  char out[64];
  if (ns < 0 || !gmtime_r(&t, &tm)) return json_null();
  size_t k = strftime(out, sizeof out, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(out + k, sizeof out - k, ".%03dZ", ms);
  return json_string(out);
}

static json_t *score_row(sqlite3_stmt *st, int *rc) {
  json_t *o = json_object();
  if (!o) {
    *rc = LT_ENOMEM;
    return NULL;
  }
  int64_t t = sqlite3_column_int64(st, C_TIME);
  lt__sq_put(o, "id", json_integer(sqlite3_column_int64(st, C_ID)), rc);
  lt__sq_put(o, "trace_id",
             sqlite3_column_type(st, C_TRACE) == SQLITE_NULL
               ? json_null()
               : lt__sq_jhex(sqlite3_column_blob(st, C_TRACE), (size_t)sqlite3_column_bytes(st, C_TRACE)),
             rc);
  json_t *span = json_null();
  if (sqlite3_column_type(st, C_SPAN) != SQLITE_NULL) {
    uint8_t id[8];
    lt__sq_int_to_id8(sqlite3_column_int64(st, C_SPAN), id);
    span = lt__sq_jhex(id, 8);
  }
  lt__sq_put(o, "span_id", span, rc);
  lt__sq_put(o, "session_id", lt__sq_jcol_str(st, C_SESSION), rc);
  lt__sq_put(o, "name", lt__sq_jcol_str(st, C_NAME), rc);
  lt__sq_put(o, "data_type", lt__sq_jcol_str(st, C_TYPE), rc);
  lt__sq_put(o, "value",
             sqlite3_column_type(st, C_VALUE) == SQLITE_NULL ? json_null()
                                                              : json_real(sqlite3_column_double(st, C_VALUE)),
             rc);
  lt__sq_put(o, "string_value", lt__sq_jcol_str(st, C_LABEL), rc);
  lt__sq_put(o, "source", lt__sq_jcol_str(st, C_SOURCE), rc);
  lt__sq_put(o, "comment", lt__sq_jcol_str(st, C_COMMENT), rc);
  lt__sq_put(o, "time", jtime(t), rc);
  lt__sq_put(o, "time_ns", json_integer(t), rc);
  lt__sq_put(o, "idempotency_key", lt__sq_jcol_str(st, C_KEY), rc);
  if (*rc) {
    json_decref(o);
    return NULL;
  }
  return o;
}

/* ---- one trace's scores (trace detail) ------------------------------------- */

int lt__sq_scores_of_trace(lt__sq_reader_t *r, int64_t project_id, const uint8_t trace_id[16],
                           lt__sq_score_place_fn place, void *ctx) {
  sqlite3_stmt *st = NULL;
  int rc = 0;
  int src = sqlite3_prepare_v2(r->db,
                               "SELECT " SCORE_COLS " FROM scores WHERE project_id = ?1 AND trace_id = ?2"
                               " ORDER BY time_ns, id LIMIT ?3",
                               -1, &st, NULL);
  if (src == SQLITE_OK) src = sqlite3_bind_int64(st, 1, project_id);
  if (src == SQLITE_OK) src = sqlite3_bind_blob(st, 2, trace_id, 16, SQLITE_STATIC);
  if (src == SQLITE_OK) src = sqlite3_bind_int(st, 3, TRACE_MAX_SCORES);
  while (rc == 0 && src == SQLITE_OK && (src = sqlite3_step(st)) == SQLITE_ROW) {
    src = SQLITE_OK;
    bool has_span = sqlite3_column_type(st, C_SPAN) != SQLITE_NULL;
    int64_t span_id = sqlite3_column_int64(st, C_SPAN);
    json_t *o = score_row(st, &rc);
    if (o) rc = place(ctx, has_span, span_id, o);
  }
  if (rc == 0 && src != SQLITE_DONE && src != SQLITE_OK) rc = lt__sq_fail(r->db, src, "reading a trace's scores");
  sqlite3_finalize(st);
  return rc;
}

/* ---- list -------------------------------------------------------------------- */

static int clamp_limit(int limit) { return limit < 1 ? 1 : limit > 1000 ? 1000 : limit; }

int lt__sq_scores_list(lt_store_t *st, const lt_score_query_t *q, json_t **out) {
  lt__sq_t *s = LT__SQ(st);
  int64_t ckey = 0, cid = 0;
  int limit = clamp_limit(q->limit);
  if (q->cursor.len && lt__sq_cursor_decode(q->cursor, LT__SQ_CUR_SCORES, &ckey, &cid)) return LT_EINVAL;
  if ((q->source >= 0 && q->source > LT_SCORE_EVALUATOR) || (q->data_type >= 0 && q->data_type > LT_SCORE_CATEGORICAL))
    return LT_EINVAL;
  /* Fixed fragments, each with its own numbered parameter; only the ones
   * present are appended and bound. */
  lt_buf_t sql;
  lt_buf_init(&sql, 4096);
  int rc = lt_buf_puts(&sql, "SELECT " SCORE_COLS " FROM scores WHERE project_id = ?1");
  if (rc == 0 && q->has_trace) rc = lt_buf_puts(&sql, " AND trace_id = ?2");
  if (rc == 0 && q->has_span) rc = lt_buf_puts(&sql, " AND span_id = ?3");
  if (rc == 0 && q->session_id.len) rc = lt_buf_puts(&sql, " AND session_id = ?4");
  if (rc == 0 && q->name.len) rc = lt_buf_puts(&sql, " AND name = ?5");
  if (rc == 0 && q->source >= 0) rc = lt_buf_puts(&sql, " AND source = ?6");
  if (rc == 0 && q->data_type >= 0) rc = lt_buf_puts(&sql, " AND data_type = ?7");
  if (rc == 0 && q->from_ns) rc = lt_buf_puts(&sql, " AND time_ns >= ?8");
  if (rc == 0 && q->to_ns) rc = lt_buf_puts(&sql, " AND time_ns < ?9");
  if (rc == 0 && q->has_min) rc = lt_buf_puts(&sql, " AND value >= ?10");
  if (rc == 0 && q->has_max) rc = lt_buf_puts(&sql, " AND value <= ?11");
  if (rc == 0 && q->cursor.len) rc = lt_buf_puts(&sql, " AND (time_ns, id) < (?12, ?13)");
  if (rc == 0) rc = lt_buf_puts(&sql, " ORDER BY time_ns DESC, id DESC LIMIT ?14");
  if (rc) {
    lt_buf_free(&sql);
    return rc;
  }
  lt__sq_reader_t *r = lt__sq_reader_get(s);
  sqlite3_stmt *stmt = NULL;
  json_t *data = json_array(), *res = NULL;
  int src = sqlite3_prepare_v2(r->db, sql.ptr, (int)sql.len, &stmt, NULL);
  if (src == SQLITE_OK) src = sqlite3_bind_int64(stmt, 1, q->project_id);
  if (src == SQLITE_OK && q->has_trace) src = sqlite3_bind_blob(stmt, 2, q->trace_id, 16, SQLITE_STATIC);
  if (src == SQLITE_OK && q->has_span) src = sqlite3_bind_int64(stmt, 3, lt__sq_id8_to_int(q->span_id));
  if (src == SQLITE_OK && q->session_id.len) src = lt__sq_bind_text_nn(stmt, 4, q->session_id);
  if (src == SQLITE_OK && q->name.len) src = lt__sq_bind_text_nn(stmt, 5, q->name);
  if (src == SQLITE_OK && q->source >= 0)
    src = sqlite3_bind_text(stmt, 6, lt_score_source_name((lt_score_source_t)q->source), -1, SQLITE_STATIC);
  if (src == SQLITE_OK && q->data_type >= 0)
    src = sqlite3_bind_text(stmt, 7, lt_score_type_name((lt_score_type_t)q->data_type), -1, SQLITE_STATIC);
  if (src == SQLITE_OK && q->from_ns) src = sqlite3_bind_int64(stmt, 8, q->from_ns);
  if (src == SQLITE_OK && q->to_ns) src = sqlite3_bind_int64(stmt, 9, q->to_ns);
  if (src == SQLITE_OK && q->has_min) src = sqlite3_bind_double(stmt, 10, q->min_value);
  if (src == SQLITE_OK && q->has_max) src = sqlite3_bind_double(stmt, 11, q->max_value);
  if (src == SQLITE_OK && q->cursor.len) src = sqlite3_bind_int64(stmt, 12, ckey);
  if (src == SQLITE_OK && q->cursor.len) src = sqlite3_bind_int64(stmt, 13, cid);
  if (src == SQLITE_OK) src = sqlite3_bind_int(stmt, 14, limit + 1);
  if (!data) rc = LT_ENOMEM;
  int n = 0;
  int64_t last_time = 0, last_id = 0;
  bool more = false;
  while (rc == 0 && src == SQLITE_OK && (src = sqlite3_step(stmt)) == SQLITE_ROW) {
    src = SQLITE_OK;
    if (n == limit) {
      more = true;
      break;
    }
    json_t *o = score_row(stmt, &rc);
    if (o && json_array_append_new(data, o) != 0) rc = LT_ENOMEM;
    last_time = sqlite3_column_int64(stmt, C_TIME);
    last_id = sqlite3_column_int64(stmt, C_ID);
    n++;
  }
  if (rc == 0 && !more && src != SQLITE_DONE && src != SQLITE_OK) rc = lt__sq_fail(r->db, src, "listing scores");
  sqlite3_finalize(stmt);
  lt__sq_reader_put(s, r);
  lt_buf_free(&sql);
  if (rc == 0 && !(res = json_object())) rc = LT_ENOMEM;
  if (rc == 0) {
    lt__sq_put(res, "data", data, &rc);
    data = NULL;
    lt__sq_put(res, "next_cursor", more ? lt__sq_cursor_encode(LT__SQ_CUR_SCORES, last_time, last_id) : json_null(),
               &rc);
  }
  json_decref(data);
  if (rc) json_decref(res);
  else *out = res;
  return rc;
}

/* ---- summary ----------------------------------------------------------------- */

/* Every summary query reads the same window: project ?1, time [?2, ?3). */
#define WINDOW " FROM scores WHERE project_id = ?1 AND time_ns >= ?2 AND time_ns < ?3"

static int prepare_window(sqlite3 *db, const char *sql, int64_t project_id, int64_t from, int64_t to,
                          sqlite3_stmt **st) {
  int src = sqlite3_prepare_v2(db, sql, -1, st, NULL);
  if (src == SQLITE_OK) src = sqlite3_bind_int64(*st, 1, project_id);
  if (src == SQLITE_OK) src = sqlite3_bind_int64(*st, 2, from);
  if (src == SQLITE_OK) src = sqlite3_bind_int64(*st, 3, to);
  return src;
}

static json_t *jreal_or_null(sqlite3_stmt *st, int col) {
  return sqlite3_column_type(st, col) == SQLITE_NULL ? json_null() : json_real(sqlite3_column_double(st, col));
}

/* The entry of the name in column 0, NULL when the name is not listed. */
static json_t *entry_of(json_t *by_name, sqlite3_stmt *st) {
  return json_object_getn(by_name, (const char *)sqlite3_column_text(st, 0), (size_t)sqlite3_column_bytes(st, 0));
}

/* Per name: totals, data types, value statistics. */
static int summary_names(sqlite3 *db, sqlite3_stmt *st, json_t *list, json_t *by_name) {
  int rc = 0, src;
  while (rc == 0 && (src = sqlite3_step(st)) == SQLITE_ROW) {
    json_t *e = json_object(), *types = json_array();
    if (!e || !types) {
      json_decref(e);
      json_decref(types);
      return LT_ENOMEM;
    }
    static const char *const names[] = {"numeric", "boolean", "categorical"};
    for (int k = 0; k < 3; k++)
      if (sqlite3_column_int(st, 3 + k) && json_array_append_new(types, json_string(names[k]))) rc = LT_ENOMEM;
    lt__sq_put(e, "name", lt__sq_jcol_str(st, 0), &rc);
    lt__sq_put(e, "count", json_integer(sqlite3_column_int64(st, 1)), &rc);
    lt__sq_put(e, "data_types", types, &rc);
    lt__sq_put(e, "value_count", json_integer(sqlite3_column_int64(st, 2)), &rc);
    lt__sq_put(e, "avg", jreal_or_null(st, 6), &rc);
    lt__sq_put(e, "min", jreal_or_null(st, 7), &rc);
    lt__sq_put(e, "max", jreal_or_null(st, 8), &rc);
    lt__sq_put(e, "labels", json_object(), &rc);
    lt__sq_put(e, "buckets", json_array(), &rc);
    if (rc == 0 && json_object_setn(by_name, (const char *)sqlite3_column_text(st, 0),
                                    (size_t)sqlite3_column_bytes(st, 0), e) != 0)
      rc = LT_ENOMEM;
    if (rc == 0 && json_array_append_new(list, e) != 0) rc = LT_ENOMEM;
    else if (rc) json_decref(e);
  }
  if (rc == 0 && src != SQLITE_DONE) rc = lt__sq_fail(db, src, "summarising scores");
  return rc;
}

/* Categorical labels, most frequent first (rows ordered by name, count). */
static int summary_labels(sqlite3 *db, sqlite3_stmt *st, json_t *by_name) {
  int rc = 0, src;
  while (rc == 0 && (src = sqlite3_step(st)) == SQLITE_ROW) {
    json_t *e = entry_of(by_name, st);
    json_t *labels = e ? json_object_get(e, "labels") : NULL;
    if (!labels || sqlite3_column_type(st, 1) == SQLITE_NULL || json_object_size(labels) >= SUMMARY_MAX_LABELS) continue;
    if (json_object_setn_new(labels, (const char *)sqlite3_column_text(st, 1), (size_t)sqlite3_column_bytes(st, 1),
                             json_integer(sqlite3_column_int64(st, 2))) != 0)
      rc = LT_ENOMEM;
  }
  if (rc == 0 && src != SQLITE_DONE) rc = lt__sq_fail(db, src, "summarising score labels");
  return rc;
}

/* Time buckets, oldest first (rows ordered by name, bucket). */
static int summary_buckets(sqlite3 *db, sqlite3_stmt *st, json_t *by_name) {
  int rc = 0, src;
  while (rc == 0 && (src = sqlite3_step(st)) == SQLITE_ROW) {
    json_t *e = entry_of(by_name, st);
    json_t *buckets = e ? json_object_get(e, "buckets") : NULL;
    if (!buckets) continue;
    if (json_array_size(buckets) >= LT_SCORE_SUMMARY_MAX_BUCKETS) {
      lt__sq_put(e, "buckets_truncated", json_true(), &rc);
      continue;
    }
    json_t *b = json_object();
    if (!b) return LT_ENOMEM;
    lt__sq_put(b, "start_ns", json_integer(sqlite3_column_int64(st, 1)), &rc);
    lt__sq_put(b, "count", json_integer(sqlite3_column_int64(st, 2)), &rc);
    lt__sq_put(b, "value_count", json_integer(sqlite3_column_int64(st, 3)), &rc);
    lt__sq_put(b, "avg", jreal_or_null(st, 4), &rc);
    if (rc == 0 && json_array_append_new(buckets, b) != 0) rc = LT_ENOMEM;
    else if (rc) json_decref(b);
  }
  if (rc == 0 && src != SQLITE_DONE) rc = lt__sq_fail(db, src, "summarising score buckets");
  return rc;
}

int lt__sq_scores_summary(lt_store_t *st, int64_t project_id, int64_t from_ns, int64_t to_ns,
                          int64_t bucket_seconds, json_t **out) {
  lt__sq_t *s = LT__SQ(st);
  if (bucket_seconds < 0 || bucket_seconds > SUMMARY_MAX_BUCKET_S) return LT_EINVAL;
  int64_t from = from_ns > 0 ? from_ns : 0, to = to_ns > 0 ? to_ns : INT64_MAX;
  lt__sq_reader_t *r = lt__sq_reader_get(s);
  sqlite3_stmt *names = NULL, *labels = NULL, *buckets = NULL, *fb = NULL;
  json_t *res = json_object(), *list = json_array(), *by_name = json_object(), *feedback = NULL;
  int rc = res && list && by_name ? 0 : LT_ENOMEM;
  /* One snapshot for the four queries, so their numbers agree. */
  if (rc == 0) rc = lt__sq_exec(r->db, "BEGIN");
  int src = SQLITE_OK;
  if (rc == 0)
    src = prepare_window(r->db,
                         "SELECT name, count(*), count(value), max(data_type = 'numeric'),"
                         " max(data_type = 'boolean'), max(data_type = 'categorical'), avg(value), min(value),"
                         " max(value)" WINDOW " GROUP BY name ORDER BY name LIMIT ?4",
                         project_id, from, to, &names);
  if (rc == 0 && src == SQLITE_OK) src = sqlite3_bind_int(names, 4, SUMMARY_MAX_NAMES);
  if (rc == 0 && src == SQLITE_OK)
    src = prepare_window(r->db,
                         "SELECT name, string_value, count(*) AS n" WINDOW " AND data_type = 'categorical'"
                         " GROUP BY name, string_value ORDER BY name, n DESC, string_value",
                         project_id, from, to, &labels);
  if (rc == 0 && src == SQLITE_OK)
    src = prepare_window(r->db,
                         "SELECT coalesce(sum(value > 0), 0), coalesce(sum(value < 0), 0), count(DISTINCT trace_id)"
                         WINDOW " AND name = '" LT_SCORE_FEEDBACK "'",
                         project_id, from, to, &fb);
  if (rc == 0 && src == SQLITE_OK && bucket_seconds > 0) {
    src = prepare_window(r->db,
                         "SELECT name, time_ns - time_ns % ?4 AS b, count(*), count(value), avg(value)" WINDOW
                         " GROUP BY name, b ORDER BY name, b",
                         project_id, from, to, &buckets);
    if (src == SQLITE_OK) src = sqlite3_bind_int64(buckets, 4, bucket_seconds * 1000000000LL);
  }
  if (rc == 0 && src != SQLITE_OK) rc = lt__sq_fail(r->db, src, "preparing the score summary");
  if (rc == 0) rc = summary_names(r->db, names, list, by_name);
  if (rc == 0) rc = summary_labels(r->db, labels, by_name);
  if (rc == 0 && buckets) rc = summary_buckets(r->db, buckets, by_name);
  if (rc == 0) {
    src = sqlite3_step(fb);
    if (src == SQLITE_ROW)
      feedback = json_pack("{s:I,s:I,s:I}", "up", (json_int_t)sqlite3_column_int64(fb, 0), "down",
                           (json_int_t)sqlite3_column_int64(fb, 1), "traces", (json_int_t)sqlite3_column_int64(fb, 2));
    if (src != SQLITE_ROW) rc = lt__sq_fail(r->db, src, "summarising feedback");
    else if (!feedback) rc = LT_ENOMEM;
  }
  if (rc == 0) {
    lt__sq_put(res, "from_ns", json_integer(from), &rc);
    lt__sq_put(res, "to_ns", to == INT64_MAX ? json_null() : json_integer(to), &rc);
    lt__sq_put(res, "bucket_seconds", json_integer(bucket_seconds), &rc);
    lt__sq_put(res, "scores", list, &rc);
    list = NULL;
    lt__sq_put(res, "feedback", feedback, &rc);
    feedback = NULL;
  }
  sqlite3_finalize(names);
  sqlite3_finalize(labels);
  sqlite3_finalize(buckets);
  sqlite3_finalize(fb);
  if (!sqlite3_get_autocommit(r->db)) sqlite3_exec(r->db, "COMMIT", NULL, NULL, NULL);
  lt__sq_reader_put(s, r);
  json_decref(list);
  json_decref(by_name);
  json_decref(feedback);
  if (rc) json_decref(res);
  else *out = res;
  return rc;
}
