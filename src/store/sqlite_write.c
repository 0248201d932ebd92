/* The SQLite write path (writer thread only): write stores a group of
 * batches in one transaction; maintain does bounded background work
 * (rollups, session/user/model keys, retention).
 *
 * Per transaction, every distinct (project, trace_id) is looked up once in
 * the traces table (the only random-key index we touch) and given a row id.
 * Then trace by trace: the span ids the trace already has (read through
 * its runs, when it existed before) and those seen in this transaction
 * tell duplicates apart; the new spans go in under consecutive ids, one
 * trace_runs row records that range, and they are folded into an
 * in-memory summary of their trace, written once per trace at the end. */
#include "store/sqlite_internal.h"
#include "core/arena.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include <jansson.h>
#include <string.h>
#include <time.h>

static const char *const writer_sql[WS__COUNT] = {
  [WS_BEGIN] = "BEGIN IMMEDIATE",
  [WS_COMMIT] = "COMMIT",
  [WS_ROLLBACK] = "ROLLBACK",
  [WS_NEXT_TRACE_ID] = "SELECT coalesce(max(id), 0) + 1 FROM traces",
  [WS_TRACE_FIND] =
    "SELECT id, name, start_ns, end_ns, status, error_count, span_count, user_id, session_id, models,"
    " input_tokens, output_tokens, total_tokens, cost_nusd, service, environment, tags"
    " FROM traces WHERE project_id = ?1 AND trace_id = ?2",
  [WS_TRACE_INSERT] =
    "INSERT INTO traces(id, project_id, trace_id, name, start_ns, end_ns, status, error_count, span_count,"
    " user_id, session_id, models, input_tokens, output_tokens, total_tokens, cost_nusd, service,"
    " environment, tags) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,"
    " ?18, ?19)",
  /* Same parameter numbers as the insert (?2 and ?3 unused). */
  [WS_TRACE_UPDATE] =
    "UPDATE traces SET name = ?4, start_ns = ?5, end_ns = ?6, status = ?7, error_count = ?8,"
    " span_count = ?9, user_id = ?10, session_id = ?11, models = ?12, input_tokens = ?13,"
    " output_tokens = ?14, total_tokens = ?15, cost_nusd = ?16, service = ?17, environment = ?18,"
    " tags = ?19 WHERE id = ?1",
  [WS_MODEL_INSERT] = "INSERT OR IGNORE INTO trace_models(project_id, model, trace_ref) VALUES(?1, ?2, ?3)",
  [WS_SPAN_INSERT] =
    "INSERT INTO spans(trace_ref, span_id, parent_id, project_id, start_ns, end_ns, name, kind, otel_kind,"
    " status, service, request_model, response_model, input_tokens, output_tokens, total_tokens, cost_nusd,"
    " cost_source, ttft_ns, user_id, session_id, tags, payload, id) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9,"
    " ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24)",
  [WS_LOG_INSERT] =
    "INSERT INTO logs(project_id, trace_id, span_id, time_ns, severity, severity_text, event_name, body,"
    " attributes, resource, service, scope, input_messages, output_messages)"
    " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
  [WS_POINT_INSERT] =
    "INSERT INTO metric_points(project_id, name, type, temporality, unit, time_ns, start_ns, value, count,"
    " attributes, data, service, scope) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
  [WS_META_GET] = "SELECT value FROM meta WHERE key = ?1",
  [WS_META_SET] = "INSERT INTO meta(key, value) VALUES(?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
  [WS_META_ADD] = "UPDATE meta SET value = value + ?2 WHERE key = ?1",
  [WS_MAX_SPAN_ID] = "SELECT coalesce(max(id), 0) FROM spans",
  [WS_PROJECT_IDS] = "SELECT id FROM projects ORDER BY id",
  [WS_OLD_TRACES] =
    "SELECT id, models FROM traces WHERE project_id = ?1 AND start_ns < ?2 ORDER BY start_ns LIMIT ?3",
  [WS_TRACE_SPANS] =
    "SELECT s.id FROM trace_runs r JOIN spans s ON s.id BETWEEN r.first_id AND r.last_id"
    " WHERE r.trace_ref = ?1 AND s.trace_ref = ?1 ORDER BY r.first_id, s.id LIMIT ?2",
  [WS_SPAN_DELETE] = "DELETE FROM spans WHERE id = ?1",
  [WS_MODEL_DELETE] = "DELETE FROM trace_models WHERE project_id = ?1 AND model = ?2 AND trace_ref = ?3",
  [WS_TRACE_DELETE] = "DELETE FROM traces WHERE id = ?1",
  [WS_LOGS_EXPIRE] =
    "DELETE FROM logs WHERE id IN (SELECT id FROM logs WHERE time_ns < ?1 ORDER BY time_ns LIMIT ?2)",
  [WS_POINTS_EXPIRE] =
    "DELETE FROM metric_points WHERE id IN"
    " (SELECT id FROM metric_points WHERE time_ns < ?1 ORDER BY time_ns LIMIT ?2)",
  [WS_SCORE_INSERT] = LT__SQ_SCORE_INSERT_SQL,
  [WS_NEXT_CHUNK_ID] = "SELECT coalesce(max(id), 0) + 1 FROM payload_chunks",
  [WS_CHUNK_INSERT] = "INSERT INTO payload_chunks(id, trace_ref, body) VALUES(?1, ?2, ?3)",
  [WS_CHUNKS_DELETE] = "DELETE FROM payload_chunks WHERE trace_ref = ?1",
  /* REPLACE: a first id can come back once retention took the newest spans. */
  [WS_BLOCK_INSERT] =
    "INSERT OR REPLACE INTO span_blocks(first_id, last_id, min_start, max_start) VALUES(?1, ?2, ?3, ?4)",
  /* Blocks wholly below the oldest span left. */
  [WS_BLOCKS_EXPIRE] = "DELETE FROM span_blocks WHERE last_id < coalesce((SELECT min(id) FROM spans),"
                       " (SELECT max(last_id) + 1 FROM span_blocks))",
  [WS_SCORES_EXPIRE] =
    "DELETE FROM scores WHERE id IN (SELECT id FROM scores WHERE time_ns < ?1 ORDER BY time_ns LIMIT ?2)",
  [WS_MAX_TRACE_ID] = "SELECT coalesce(max(id), 0) FROM traces",
  /* Sorted: the slice lands in key order, each index page touched once. */
  [WS_KEYS_INDEX] =
    "INSERT OR IGNORE INTO trace_keys(project_id, kind, key, start_ns, trace_ref)"
    " SELECT project_id, 1, session_id, start_ns, id FROM traces"
    "  WHERE id > ?1 AND id <= ?2 AND session_id IS NOT NULL"
    " UNION ALL SELECT project_id, 2, user_id, start_ns, id FROM traces"
    "  WHERE id > ?1 AND id <= ?2 AND user_id IS NOT NULL"
    " ORDER BY 1, 2, 3, 4, 5",
  /* In trace order, unsorted: each model's rows go in at the right edge
   * of its range, so the pages written are those edges either way. */
  [WS_MODELS_INDEX] =
    "INSERT OR IGNORE INTO trace_models(project_id, model, trace_ref)"
    " SELECT t.project_id, j.value, t.id FROM traces t, json_each(t.models) j"
    "  WHERE t.id > ?1 AND t.id <= ?2 AND json_valid(t.models) AND j.type = 'text'",
  [WS_KEYS_ADD] =
    "INSERT OR IGNORE INTO trace_keys(project_id, kind, key, start_ns, trace_ref)"
    " SELECT project_id, 1, session_id, start_ns, id FROM traces WHERE id = ?1 AND session_id IS NOT NULL"
    " UNION ALL SELECT project_id, 2, user_id, start_ns, id FROM traces WHERE id = ?1 AND user_id IS NOT NULL",
  [WS_KEYS_DELETE] =
    "DELETE FROM trace_keys WHERE (project_id, kind, key, start_ns, trace_ref) IN"
    " (SELECT project_id, 1, session_id, start_ns, id FROM traces WHERE id = ?1 AND session_id IS NOT NULL"
    "  UNION ALL SELECT project_id, 2, user_id, start_ns, id FROM traces WHERE id = ?1 AND user_id IS NOT NULL)",
  /* REPLACE: as for span blocks, a first id can come back. */
  [WS_RUN_INSERT] = "INSERT OR REPLACE INTO trace_runs(trace_ref, first_id, last_id) VALUES(?1, ?2, ?3)",
  [WS_SPAN_IDS] =
    "SELECT s.span_id FROM trace_runs r JOIN spans s ON s.id BETWEEN r.first_id AND r.last_id"
    " WHERE r.trace_ref = ?1 AND s.trace_ref = ?1",
  [WS_RUNS_DELETE] = "DELETE FROM trace_runs WHERE trace_ref = ?1",
};

int lt__sq_prepare_writer(lt__sq_t *s) {
  for (int i = 0; i < WS__COUNT; i++) {
    int src = sqlite3_prepare_v3(s->wdb, writer_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &s->ws[i], NULL);
    if (src != SQLITE_OK) return lt__sq_fail(s->wdb, src, writer_sql[i]);
  }
  return 0;
}

/* Steps a cached statement that returns no row, then resets it. */
static int run(lt__sq_t *s, int which) {
  sqlite3_stmt *st = s->ws[which];
  int src = sqlite3_step(st);
  sqlite3_reset(st);
  return src == SQLITE_DONE || src == SQLITE_ROW ? 0 : lt__sq_fail(s->wdb, src, writer_sql[which]);
}

/* Binding only fails on misuse or out of memory; the step reports it. */
#define BIND(expr) (void)(expr)

static int meta_get(lt__sq_t *s, const char *key, int64_t *v);

/* What a failed write or maintenance slice tells its caller: out of memory
 * and a full disk as themselves (the writer reports a full disk as a state,
 * pipeline/writer.c), anything else as a database error. */
static int outward(int rc) { return rc == LT_ENOMEM || rc == LT_ENOSPACE ? rc : LT_EDB; }

/* ---- trace summaries ---------------------------------------------------- */

typedef struct str_node {
  lt_str_t s;
  bool fresh; /* added in this transaction */
  struct str_node *next;
} str_node_t;

typedef struct {
  int64_t project_id;
  uint8_t trace_id[16];
  int64_t id;
  bool created;  /* no row existed before this transaction */
  bool changed;  /* a new span was folded in */
  bool has_root; /* a span without parent has been seen: name is its name */
  lt_str_t name, user_id, session_id, service, environment;
  int64_t start_ns, end_ns, error_count, span_count;
  /* The row's values as read: a keyed trace (trace_keys) whose start,
   * user or session changes has its keys rewritten. */
  lt_str_t old_user, old_session;
  int64_t old_start;
  int status;
  int64_t tok_in, tok_out, tok_total; /* -1 = no span reported any */
  int64_t cost;
  bool has_cost;
  str_node_t *models, *tags;
  int n_models, n_tags;
  lt_str_t last_tags; /* the tags text merged last, to skip re-parsing it */
} agg_t;

typedef struct {
  lt_arena_t *arena; /* copies of strings read back from existing rows */
  agg_t *aggs;
  size_t n, cap;
  uint32_t *slots; /* open addressing: index + 1 into aggs, 0 = empty */
  size_t nslots;
  lt_buf_t models_json, tags_json;
  int64_t keys_hwm; /* -1 until read, when a trace that existed changes */
} wctx_t;

static uint32_t hash_key(int64_t project_id, const uint8_t id[16]) {
  uint64_t h;
  memcpy(&h, id + 8, 8); /* trace ids are random: their bytes hash well */
  h ^= (uint64_t)project_id * 0x9E3779B97F4A7C15ull;
  h ^= h >> 29;
  return (uint32_t)h;
}

static int map_grow(wctx_t *w) {
  size_t ns = w->nslots ? w->nslots * 2 : 1024;
  uint32_t *slots = lt_calloc(ns, sizeof *slots);
  if (!slots) return LT_ENOMEM;
  for (size_t i = 0; i < w->n; i++) {
    size_t j = hash_key(w->aggs[i].project_id, w->aggs[i].trace_id) & (ns - 1);
    while (slots[j]) j = (j + 1) & (ns - 1);
    slots[j] = (uint32_t)(i + 1);
  }
  lt_free(w->slots);
  w->slots = slots;
  w->nslots = ns;
  return 0;
}

/* Finds the summary of (project, trace_id), or adds an empty one and sets
 * *added. */
static int map_get(wctx_t *w, int64_t project_id, const uint8_t id[16], agg_t **out, bool *added) {
  *added = false;
  if ((w->n + 1) * 2 > w->nslots) {
    int rc = map_grow(w);
    if (rc) return rc;
  }
  size_t j = hash_key(project_id, id) & (w->nslots - 1);
  while (w->slots[j]) {
    agg_t *a = &w->aggs[w->slots[j] - 1];
    if (a->project_id == project_id && memcmp(a->trace_id, id, 16) == 0) {
      *out = a;
      return 0;
    }
    j = (j + 1) & (w->nslots - 1);
  }
  if (w->n == w->cap) {
    size_t nc = w->cap ? w->cap * 2 : 256;
    agg_t *p = lt_realloc(w->aggs, nc * sizeof *p);
    if (!p) return LT_ENOMEM;
    w->aggs = p;
    w->cap = nc;
  }
  agg_t *a = &w->aggs[w->n];
  memset(a, 0, sizeof *a);
  a->project_id = project_id;
  memcpy(a->trace_id, id, 16);
  a->tok_in = a->tok_out = a->tok_total = -1;
  w->slots[j] = (uint32_t)++w->n;
  *out = a;
  *added = true;
  return 0;
}

/* Adds s to a string set unless present or full; s must outlive the
 * transaction (batch arena or w->arena). */
static int set_add(wctx_t *w, str_node_t **set, int *n, lt_str_t s, bool fresh) {
  if (s.len == 0 || *n >= LT__SQ_SET_MAX) return 0;
  str_node_t **tail = set;
  for (; *tail; tail = &(*tail)->next)
    if (lt_str_eq((*tail)->s, s)) return 0;
  str_node_t *node = lt_arena_alloc(w->arena, sizeof *node);
  if (!node) return LT_ENOMEM;
  node->s = s;
  node->fresh = fresh;
  node->next = NULL;
  *tail = node;
  (*n)++;
  return 0;
}

/* Adds the strings of a JSON array to a set (copied into w->arena: they
 * die with the parsed tree). Anything but strings, and text that is not a
 * JSON array, is ignored. */
static int set_add_json(wctx_t *w, str_node_t **set, int *n, const char *text, size_t len, bool fresh) {
  json_t *arr = json_loadb(text, len, 0, NULL);
  if (!arr) return 0;
  int rc = 0;
  size_t i;
  json_t *v;
  json_array_foreach(arr, i, v) {
    if (!json_is_string(v)) continue;
    lt_str_t str = lt_arena_strdup(w->arena, json_string_value(v), json_string_length(v));
    if (!str.ptr) rc = LT_ENOMEM;
    if (rc == 0) rc = set_add(w, set, n, str, fresh);
    if (rc) break;
  }
  json_decref(arr);
  return rc;
}

static lt_str_t col_copy(wctx_t *w, sqlite3_stmt *st, int col, int *rc) {
  const char *p = (const char *)sqlite3_column_text(st, col);
  size_t n = (size_t)sqlite3_column_bytes(st, col);
  if (!p) return LT_STR_NULL;
  lt_str_t s = lt_arena_strdup(w->arena, p, n);
  if (!s.ptr) *rc = LT_ENOMEM;
  return s;
}

static int64_t col_known(sqlite3_stmt *st, int col) {
  return sqlite3_column_type(st, col) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, col);
}

/* Gives a trace seen for the first time in this transaction its row id:
 * the existing row's (whose summary is loaded to merge into) or the next
 * free one. */
static int resolve(lt__sq_t *s, wctx_t *w, agg_t *a, int64_t *next_id) {
  sqlite3_stmt *st = s->ws[WS_TRACE_FIND];
  BIND(sqlite3_bind_int64(st, 1, a->project_id));
  BIND(sqlite3_bind_blob(st, 2, a->trace_id, 16, SQLITE_STATIC));
  int src = sqlite3_step(st);
  int rc = 0;
  if (src == SQLITE_DONE) {
    a->id = (*next_id)++;
    a->created = true;
  } else if (src == SQLITE_ROW) {
    a->id = sqlite3_column_int64(st, 0);
    a->has_root = sqlite3_column_type(st, 1) != SQLITE_NULL;
    a->name = col_copy(w, st, 1, &rc);
    a->start_ns = sqlite3_column_int64(st, 2);
    a->end_ns = sqlite3_column_int64(st, 3);
    a->status = sqlite3_column_int(st, 4);
    a->error_count = sqlite3_column_int64(st, 5);
    a->span_count = sqlite3_column_int64(st, 6);
    a->user_id = a->old_user = col_copy(w, st, 7, &rc);
    a->session_id = a->old_session = col_copy(w, st, 8, &rc);
    a->old_start = a->start_ns;
    if (rc == 0 && sqlite3_column_type(st, 9) != SQLITE_NULL)
      rc = set_add_json(w, &a->models, &a->n_models, (const char *)sqlite3_column_text(st, 9),
                        (size_t)sqlite3_column_bytes(st, 9), false);
    a->tok_in = col_known(st, 10);
    a->tok_out = col_known(st, 11);
    a->tok_total = col_known(st, 12);
    a->has_cost = sqlite3_column_type(st, 13) != SQLITE_NULL;
    a->cost = sqlite3_column_int64(st, 13);
    a->service = col_copy(w, st, 14, &rc);
    a->environment = col_copy(w, st, 15, &rc);
    if (rc == 0 && sqlite3_column_type(st, 16) != SQLITE_NULL)
      rc = set_add_json(w, &a->tags, &a->n_tags, (const char *)sqlite3_column_text(st, 16),
                        (size_t)sqlite3_column_bytes(st, 16), false);
  } else {
    rc = lt__sq_fail(s->wdb, src, "looking up a trace");
  }
  sqlite3_reset(st);
  return rc;
}

static void add_known(int64_t *sum, int64_t v) {
  if (v < 0) return;
  *sum = (*sum < 0 ? 0 : *sum) + v;
}

/* Context strings: the root span's value wins; otherwise the first one
 * seen fills an empty field. */
static void take(lt_str_t *field, lt_str_t v, bool root_now) {
  if (v.len && (root_now || field->len == 0)) *field = v;
}

/* Folds a newly stored span into its trace's summary. */
static int fold(wctx_t *w, agg_t *a, const lt_span_t *sp) {
  if (a->span_count == 0) {
    a->start_ns = sp->start_ns;
    a->end_ns = sp->end_ns;
  } else {
    if (sp->start_ns < a->start_ns) a->start_ns = sp->start_ns;
    if (sp->end_ns > a->end_ns) a->end_ns = sp->end_ns;
  }
  a->span_count++;
  a->changed = true;
  if (sp->status == LT_STATUS_ERROR) a->error_count++;
  /* unset < ok < error: the trace shows the worst status reported. */
  if ((int)sp->status > a->status) a->status = (int)sp->status;
  /* A wrapper's tokens are its children's, already counted. */
  if (!sp->usage_rollup) {
    add_known(&a->tok_in, sp->tokens[LT_TOK_INPUT]);
    add_known(&a->tok_out, sp->tokens[LT_TOK_OUTPUT]);
    add_known(&a->tok_total, sp->tokens[LT_TOK_TOTAL]);
  }
  if (lt_span_has_cost(sp) && !sp->usage_rollup) {
    a->cost += sp->cost_total;
    a->has_cost = true;
  }
  bool root_now = !sp->has_parent && !a->has_root;
  if (root_now) {
    a->has_root = true;
    a->name = sp->name;
  }
  take(&a->user_id, sp->user_id, root_now);
  take(&a->session_id, sp->session_id, root_now);
  take(&a->service, sp->service, root_now);
  take(&a->environment, sp->environment, root_now);
  int rc = set_add(w, &a->models, &a->n_models, sp->request_model, true);
  if (rc == 0) rc = set_add(w, &a->models, &a->n_models, sp->response_model, true);
  if (rc == 0 && sp->tags.len && !lt_str_eq(sp->tags, a->last_tags)) {
    rc = set_add_json(w, &a->tags, &a->n_tags, sp->tags.ptr, sp->tags.len, true);
    a->last_tags = sp->tags;
  }
  return rc;
}

static int set_json(lt_buf_t *b, const str_node_t *n) {
  lt_buf_reset(b);
  if (!n) return 0;
  int rc = lt_buf_append(b, "[", 1);
  for (bool first = true; rc == 0 && n; n = n->next, first = false) {
    if (!first) rc = lt_buf_append(b, ",", 1);
    if (rc == 0) rc = lt_buf_json_str(b, n->s.ptr, n->s.len);
  }
  if (rc == 0) rc = lt_buf_append(b, "]", 1);
  return rc;
}

static bool any_fresh(const str_node_t *n) {
  for (; n; n = n->next)
    if (n->fresh) return true;
  return false;
}

/* Writes a changed summary: one INSERT or UPDATE per trace. Its keys and
 * (trace, model) rows are written in the background (keys_index), or here
 * when a trace already keyed changes them. */
static int store_trace(lt__sq_t *s, wctx_t *w, const agg_t *a) {
  int rc = set_json(&w->models_json, a->models);
  if (rc == 0) rc = set_json(&w->tags_json, a->tags);
  if (rc) return rc;
  int which = a->created ? WS_TRACE_INSERT : WS_TRACE_UPDATE;
  bool rekey = false, remodel = false;
  bool new_keys = a->start_ns != a->old_start || !lt_str_eq(a->user_id, a->old_user) ||
                  !lt_str_eq(a->session_id, a->old_session);
  if (!a->created && (new_keys || any_fresh(a->models))) {
    if (w->keys_hwm < 0 && (rc = meta_get(s, LT__SQ_META_KEYS_HWM, &w->keys_hwm))) return rc;
    rekey = new_keys && a->id <= w->keys_hwm;
    remodel = a->id <= w->keys_hwm;
  }
  if (rekey) {
    BIND(sqlite3_bind_int64(s->ws[WS_KEYS_DELETE], 1, a->id));
    if ((rc = run(s, WS_KEYS_DELETE))) return rc;
  }
  sqlite3_stmt *st = s->ws[which];
  BIND(sqlite3_bind_int64(st, 1, a->id));
  if (a->created) {
    BIND(sqlite3_bind_int64(st, 2, a->project_id));
    BIND(sqlite3_bind_blob(st, 3, a->trace_id, 16, SQLITE_STATIC));
  }
  if (a->has_root) BIND(lt__sq_bind_text_nn(st, 4, a->name));
  else BIND(sqlite3_bind_null(st, 4));
  BIND(sqlite3_bind_int64(st, 5, a->start_ns));
  BIND(sqlite3_bind_int64(st, 6, a->end_ns));
  BIND(sqlite3_bind_int(st, 7, a->status));
  BIND(sqlite3_bind_int64(st, 8, a->error_count));
  BIND(sqlite3_bind_int64(st, 9, a->span_count));
  BIND(lt__sq_bind_text(st, 10, a->user_id));
  BIND(lt__sq_bind_text(st, 11, a->session_id));
  BIND(lt__sq_bind_text(st, 12, (lt_str_t){w->models_json.ptr, w->models_json.len}));
  BIND(lt__sq_bind_known(st, 13, a->tok_in));
  BIND(lt__sq_bind_known(st, 14, a->tok_out));
  BIND(lt__sq_bind_known(st, 15, a->tok_total));
  if (a->has_cost) BIND(sqlite3_bind_int64(st, 16, a->cost));
  else BIND(sqlite3_bind_null(st, 16));
  BIND(lt__sq_bind_text(st, 17, a->service));
  BIND(lt__sq_bind_text(st, 18, a->environment));
  BIND(lt__sq_bind_text(st, 19, (lt_str_t){w->tags_json.ptr, w->tags_json.len}));
  if ((rc = run(s, which))) return rc;
  if (rekey) {
    BIND(sqlite3_bind_int64(s->ws[WS_KEYS_ADD], 1, a->id));
    if ((rc = run(s, WS_KEYS_ADD))) return rc;
  }
  sqlite3_stmt *m = s->ws[WS_MODEL_INSERT];
  for (const str_node_t *n = a->models; remodel && rc == 0 && n; n = n->next) {
    if (!n->fresh) continue;
    BIND(sqlite3_bind_int64(m, 1, a->project_id));
    BIND(lt__sq_bind_text_nn(m, 2, n->s));
    BIND(sqlite3_bind_int64(m, 3, a->id));
    rc = run(s, WS_MODEL_INSERT);
  }
  return rc;
}

/* ---- spans, logs, points ------------------------------------------------- */

/* Inserts the span whose packed payload is ps (a chunk it refers to gets
 * its id here, from *next_chunk) and sets *new_id to its row id. */
static int insert_span(lt__sq_t *s, int64_t project_id, const lt_span_t *sp, lt__sq_packed_t *pk,
                       const lt__sq_packed_span_t *ps, int64_t trace_ref, int64_t *next_chunk, int64_t *new_id) {
  const void *blob = ps->blob;
  size_t blob_len = ps->blob_len;
  uint8_t ref[LT__SQ_REF_MAX];
  lt__sq_chunk_t *c = ps->chunk >= 0 ? &pk->chunks[ps->chunk] : NULL;
  if (c) {
    if (!c->id) c->id = (*next_chunk)++;
    blob_len = lt__sq_payload_ref(c->id, ps->off, ps->len, ref);
    blob = ref;
  }
  sqlite3_stmt *st = s->ws[WS_SPAN_INSERT];
  BIND(sqlite3_bind_int64(st, 1, trace_ref));
  BIND(sqlite3_bind_int64(st, 2, lt__sq_id8_to_int(sp->span_id)));
  if (sp->has_parent) BIND(sqlite3_bind_int64(st, 3, lt__sq_id8_to_int(sp->parent_span_id)));
  else BIND(sqlite3_bind_null(st, 3));
  BIND(sqlite3_bind_int64(st, 4, project_id));
  BIND(sqlite3_bind_int64(st, 5, sp->start_ns));
  BIND(sqlite3_bind_int64(st, 6, sp->end_ns));
  BIND(lt__sq_bind_text_nn(st, 7, sp->name));
  BIND(sqlite3_bind_int(st, 8, (int)sp->kind));
  BIND(sqlite3_bind_int(st, 9, sp->otel_kind));
  BIND(sqlite3_bind_int(st, 10, (int)sp->status));
  BIND(lt__sq_bind_text(st, 11, sp->service));
  BIND(lt__sq_bind_text(st, 12, sp->request_model));
  BIND(lt__sq_bind_text(st, 13, sp->response_model));
  BIND(lt__sq_bind_known(st, 14, sp->tokens[LT_TOK_INPUT]));
  BIND(lt__sq_bind_known(st, 15, sp->tokens[LT_TOK_OUTPUT]));
  BIND(lt__sq_bind_known(st, 16, sp->tokens[LT_TOK_TOTAL]));
  if (lt_span_has_cost(sp)) BIND(sqlite3_bind_int64(st, 17, sp->cost_total));
  else BIND(sqlite3_bind_null(st, 17));
  BIND(sqlite3_bind_int(st, 18, (int)sp->cost_source));
  BIND(lt__sq_bind_known(st, 19, sp->ttft_ns));
  BIND(lt__sq_bind_text(st, 20, sp->user_id));
  BIND(lt__sq_bind_text(st, 21, sp->session_id));
  BIND(lt__sq_bind_text(st, 22, sp->tags));
  if (blob) BIND(sqlite3_bind_blob64(st, 23, blob, blob_len, SQLITE_STATIC));
  else BIND(sqlite3_bind_null(st, 23));
  /* NULL: the next rowid. Above a floor, the first span of the write is
   * put there and the rest follow it. */
  if (s->span_first_id) BIND(sqlite3_bind_int64(st, 24, s->span_first_id));
  else BIND(sqlite3_bind_null(st, 24));
  s->span_first_id = 0;
  int src = sqlite3_step(st);
  sqlite3_reset(st);
  if (src != SQLITE_DONE) return lt__sq_fail(s->wdb, src, "inserting a span");
  *new_id = sqlite3_last_insert_rowid(s->wdb);
  if (c && c->n_new++ == 0) {
    /* The first new span of the chunk stores it; a chunk whose spans were
     * all stored before (a retried request) is never written. */
    sqlite3_stmt *ci = s->ws[WS_CHUNK_INSERT];
    BIND(sqlite3_bind_int64(ci, 1, c->id));
    BIND(sqlite3_bind_int64(ci, 2, trace_ref));
    BIND(sqlite3_bind_blob64(ci, 3, c->blob, c->len, SQLITE_STATIC));
    return run(s, WS_CHUNK_INSERT);
  }
  return 0;
}

static int insert_log(lt__sq_t *s, int64_t project_id, const lt_log_t *lg) {
  sqlite3_stmt *st = s->ws[WS_LOG_INSERT];
  BIND(sqlite3_bind_int64(st, 1, project_id));
  if (lg->has_trace) BIND(sqlite3_bind_blob(st, 2, lg->trace_id, 16, SQLITE_STATIC));
  else BIND(sqlite3_bind_null(st, 2));
  if (lg->has_span) BIND(sqlite3_bind_int64(st, 3, lt__sq_id8_to_int(lg->span_id)));
  else BIND(sqlite3_bind_null(st, 3));
  BIND(sqlite3_bind_int64(st, 4, lg->time_ns));
  BIND(sqlite3_bind_int(st, 5, lg->severity_number));
  BIND(lt__sq_bind_text(st, 6, lg->severity_text));
  BIND(lt__sq_bind_text(st, 7, lg->event_name));
  BIND(lt__sq_bind_text(st, 8, lg->body));
  BIND(lt__sq_bind_text(st, 9, lg->attributes));
  BIND(lt__sq_bind_text(st, 10, lg->resource));
  BIND(lt__sq_bind_text(st, 11, lg->service));
  BIND(lt__sq_bind_text(st, 12, lg->scope));
  BIND(lt__sq_bind_text(st, 13, lg->input_messages));
  BIND(lt__sq_bind_text(st, 14, lg->output_messages));
  return run(s, WS_LOG_INSERT);
}

static int insert_point(lt__sq_t *s, int64_t project_id, const lt_point_t *pt) {
  sqlite3_stmt *st = s->ws[WS_POINT_INSERT];
  BIND(sqlite3_bind_int64(st, 1, project_id));
  BIND(lt__sq_bind_text_nn(st, 2, pt->name));
  BIND(sqlite3_bind_int(st, 3, pt->type));
  BIND(sqlite3_bind_int(st, 4, pt->temporality));
  BIND(lt__sq_bind_text(st, 5, pt->unit));
  BIND(sqlite3_bind_int64(st, 6, pt->time_ns));
  BIND(sqlite3_bind_int64(st, 7, pt->start_ns));
  BIND(sqlite3_bind_double(st, 8, pt->value));
  BIND(lt__sq_bind_known(st, 9, pt->count));
  BIND(lt__sq_bind_text(st, 10, pt->attributes));
  BIND(lt__sq_bind_text(st, 11, pt->data));
  BIND(lt__sq_bind_text(st, 12, pt->service));
  BIND(lt__sq_bind_text(st, 13, pt->scope));
  return run(s, WS_POINT_INSERT);
}

static int meta_add(lt__sq_t *s, const char *key, int64_t delta) {
  if (delta == 0) return 0;
  sqlite3_stmt *st = s->ws[WS_META_ADD];
  BIND(sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC));
  BIND(sqlite3_bind_int64(st, 2, delta));
  return run(s, WS_META_ADD);
}

static int meta_set(lt__sq_t *s, const char *key, int64_t v) {
  sqlite3_stmt *st = s->ws[WS_META_SET];
  BIND(sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC));
  BIND(sqlite3_bind_int64(st, 2, v));
  return run(s, WS_META_SET);
}

static int one_int(lt__sq_t *s, int which, int64_t *v) {
  sqlite3_stmt *st = s->ws[which];
  int src = sqlite3_step(st);
  if (src == SQLITE_ROW) *v = sqlite3_column_int64(st, 0);
  sqlite3_reset(st);
  return src == SQLITE_ROW ? 0 : lt__sq_fail(s->wdb, src, writer_sql[which]);
}

static int meta_get(lt__sq_t *s, const char *key, int64_t *v) {
  BIND(sqlite3_bind_text(s->ws[WS_META_GET], 1, key, -1, SQLITE_STATIC));
  return one_int(s, WS_META_GET, v);
}

static int64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Rolls back whatever the writer connection has open. */
static void rollback(lt__sq_t *s) {
  if (!sqlite3_get_autocommit(s->wdb)) {
    int src = sqlite3_step(s->ws[WS_ROLLBACK]);
    sqlite3_reset(s->ws[WS_ROLLBACK]);
    if (src != SQLITE_DONE) lt__sq_fail(s->wdb, src, "rolling back");
  }
}

/* The ids and start times of the spans one write stored (span_blocks). */
typedef struct {
  int64_t first_id, last_id, min_start, max_start;
} block_t;

static int block_insert(lt__sq_t *s, const block_t *b) {
  sqlite3_stmt *st = s->ws[WS_BLOCK_INSERT];
  BIND(sqlite3_bind_int64(st, 1, b->first_id));
  BIND(sqlite3_bind_int64(st, 2, b->last_id));
  BIND(sqlite3_bind_int64(st, 3, b->min_start));
  BIND(sqlite3_bind_int64(st, 4, b->max_start));
  return run(s, WS_BLOCK_INSERT);
}

/* ---- duplicates and runs ------------------------------------------------ */

/* The span ids one trace has (open addressing, reused trace after trace).
 * 0 marks an empty slot; span id 0, which OTLP calls invalid, is kept
 * aside. */
typedef struct {
  int64_t *slot;
  size_t cap, n, alloc;
  bool zero;
} idset_t;

static size_t id_slot(int64_t v, size_t cap) {
  uint64_t h = (uint64_t)v * 0x9E3779B97F4A7C15ull;
  return (size_t)(h ^ (h >> 32)) & (cap - 1);
}

/* Empties the set, sized for want ids without growing. */
static int idset_reset(idset_t *set, size_t want) {
  size_t cap = 16;
  while (cap < want * 2) cap *= 2;
  if (cap > set->alloc) {
    int64_t *p = lt_realloc(set->slot, cap * sizeof *p);
    if (!p) return LT_ENOMEM;
    set->slot = p;
    set->alloc = cap;
  }
  memset(set->slot, 0, cap * sizeof *set->slot);
  set->cap = cap;
  set->n = 0;
  set->zero = false;
  return 0;
}

/* Adds v; *had says it was there already. */
static int idset_add(idset_t *set, int64_t v, bool *had) {
  if (v == 0) {
    *had = set->zero;
    set->zero = true;
    return 0;
  }
  if ((set->n + 1) * 2 > set->cap) {
    size_t cap = set->cap * 2;
    int64_t *p = lt_calloc(cap, sizeof *p);
    if (!p) return LT_ENOMEM;
    for (size_t i = 0; i < set->cap; i++) {
      if (!set->slot[i]) continue;
      size_t j = id_slot(set->slot[i], cap);
      while (p[j]) j = (j + 1) & (cap - 1);
      p[j] = set->slot[i];
    }
    lt_free(set->slot);
    set->slot = p;
    set->cap = set->alloc = cap;
  }
  size_t j = id_slot(v, set->cap);
  for (; set->slot[j]; j = (j + 1) & (set->cap - 1)) {
    if (set->slot[j] == v) {
      *had = true;
      return 0;
    }
  }
  set->slot[j] = v;
  set->n++;
  *had = false;
  return 0;
}

/* Adds the span ids trace_ref already has to the set. */
static int load_span_ids(lt__sq_t *s, int64_t trace_ref, idset_t *set) {
  sqlite3_stmt *q = s->ws[WS_SPAN_IDS];
  BIND(sqlite3_bind_int64(q, 1, trace_ref));
  int rc = 0, src;
  bool had;
  while (rc == 0 && (src = sqlite3_step(q)) == SQLITE_ROW) rc = idset_add(set, sqlite3_column_int64(q, 0), &had);
  if (rc == 0 && src != SQLITE_DONE) rc = lt__sq_fail(s->wdb, src, "reading a trace's span ids");
  sqlite3_reset(q);
  return rc;
}

/* The span ids of the writer's few biggest recent traces, kept across
 * transactions: without them, every write to a trace that already has
 * many spans (an agent's long session under one trace id) reads all of
 * them back for the duplicate check. Smaller traces are read each time;
 * bigger ones too, so the cache stays within a few MB. An entry is dropped
 * whenever it might be wrong: a write that fails (its ids were added to
 * the set but rolled back) clears them all, and retention forgets the
 * traces it takes spans from. */
#define IDC_ENTRIES 4
#define IDC_MIN 1024
#define IDC_MAX 131072

struct lt__sq_idcache {
  struct {
    int64_t trace_ref; /* 0: empty */
    uint64_t used;
    idset_t ids;
  } e[IDC_ENTRIES];
  uint64_t clock;
};

static idset_t *idc_find(lt__sq_t *s, int64_t trace_ref) {
  lt__sq_idcache_t *c = s->idcache;
  for (int i = 0; c && i < IDC_ENTRIES; i++) {
    if (c->e[i].trace_ref == trace_ref) {
      c->e[i].used = ++c->clock;
      return &c->e[i].ids;
    }
  }
  return NULL;
}

/* Keeps *ids for trace_ref in the least recently used entry; *ids gets
 * that entry's old set (emptied later by idset_reset) to reuse. */
static void idc_keep(lt__sq_t *s, int64_t trace_ref, idset_t *ids) {
  if (!s->idcache && !(s->idcache = lt_calloc(1, sizeof *s->idcache))) return;
  lt__sq_idcache_t *c = s->idcache;
  int v = 0;
  for (int i = 1; i < IDC_ENTRIES; i++)
    if (c->e[i].used < c->e[v].used) v = i;
  for (int i = 0; i < IDC_ENTRIES; i++) /* never two entries for one trace */
    if (c->e[i].trace_ref == trace_ref) v = i;
  idset_t old = c->e[v].ids;
  c->e[v].ids = *ids;
  c->e[v].trace_ref = trace_ref;
  c->e[v].used = ++c->clock;
  *ids = old;
}

static void idc_forget(lt__sq_t *s, int64_t trace_ref) {
  lt__sq_idcache_t *c = s->idcache;
  for (int i = 0; c && i < IDC_ENTRIES; i++) {
    if (trace_ref < 0 || c->e[i].trace_ref == trace_ref) {
      lt_free(c->e[i].ids.slot);
      memset(&c->e[i], 0, sizeof c->e[i]);
    }
  }
}

void lt__sq_idcache_free(lt__sq_t *s) {
  idc_forget(s, -1);
  lt_free(s->idcache);
  s->idcache = NULL;
}

static int run_insert(lt__sq_t *s, int64_t trace_ref, int64_t first_id, int64_t last_id) {
  sqlite3_stmt *st = s->ws[WS_RUN_INSERT];
  BIND(sqlite3_bind_int64(st, 1, trace_ref));
  BIND(sqlite3_bind_int64(st, 2, first_id));
  BIND(sqlite3_bind_int64(st, 3, last_id));
  return run(s, WS_RUN_INSERT);
}

/* A span of the transaction: batches[b]->spans[k]. */
typedef struct {
  uint32_t b, k;
} span_at_t;

/* Gives every span's trace a summary (looked up or created) and returns
 * the spans grouped by trace, in arrival order within each: the spans of
 * w->aggs[j] are (*order)[(*start)[j]] up to (*order)[(*start)[j + 1]]. */
static int group_by_trace(lt__sq_t *s, wctx_t *w, lt_batch_t *const *batches, size_t n, int64_t *next_id,
                          span_at_t **order, uint32_t **start) {
  size_t total = 0;
  for (size_t i = 0; i < n; i++) total += batches[i]->n_spans;
  uint32_t *agg_of = lt_arena_alloc(w->arena, (total ? total : 1) * sizeof *agg_of);
  span_at_t *ord = lt_arena_alloc(w->arena, (total ? total : 1) * sizeof *ord);
  if (!agg_of || !ord) return LT_ENOMEM;
  size_t g = 0;
  for (size_t i = 0; i < n; i++) {
    const lt_batch_t *b = batches[i];
    for (size_t k = 0; k < b->n_spans; k++) {
      agg_t *a;
      bool added;
      int rc = map_get(w, b->project_id, b->spans[k].trace_id, &a, &added);
      if (rc == 0 && added) rc = resolve(s, w, a, next_id);
      if (rc) return rc;
      agg_of[g++] = (uint32_t)(a - w->aggs);
    }
  }
  uint32_t *st = lt_arena_alloc(w->arena, (w->n + 1) * sizeof *st);
  uint32_t *fill = lt_arena_alloc(w->arena, (w->n + 1) * sizeof *fill);
  if (!st || !fill) return LT_ENOMEM;
  memset(st, 0, (w->n + 1) * sizeof *st);
  for (size_t i = 0; i < total; i++) st[agg_of[i] + 1]++;
  for (size_t j = 0; j < w->n; j++) st[j + 1] += st[j];
  memcpy(fill, st, (w->n + 1) * sizeof *fill);
  g = 0;
  for (size_t i = 0; i < n; i++)
    for (size_t k = 0; k < batches[i]->n_spans; k++) ord[fill[agg_of[g++]]++] = (span_at_t){(uint32_t)i, (uint32_t)k};
  *order = ord;
  *start = st;
  return 0;
}

int lt__sq_write(lt_store_t *st, lt_batch_t *const *batches, size_t n) {
  lt__sq_t *s = LT__SQ(st);
  wctx_t w = {.keys_hwm = -1};
  idset_t ids = {0};
  block_t blk = {0};
  int64_t next_id = 0, new_spans = 0, new_traces = 0, logs = 0, points = 0;
  int rc = LT_ENOMEM;
  lt_buf_init(&w.models_json, SIZE_MAX / 2);
  lt_buf_init(&w.tags_json, SIZE_MAX / 2);
  int64_t next_chunk = 0;
  size_t records = 0;
  for (size_t i = 0; i < n; i++) {
    lt_batch_t *b = batches[i];
    b->n_inserted = 0;
    records += lt_batch_count(b);
    if (b->n_spans && !b->span_new && !(b->span_new = lt_calloc(b->n_spans, 1))) return LT_ENOMEM;
    if (b->span_new) memset(b->span_new, 0, b->n_spans);
    /* Normally packed on the submitting thread already (see prepack). */
    if ((rc = lt__sq_prepack(st, b))) return outward(rc);
    lt__sq_packed_t *pk = b->packed;
    for (size_t c = 0; pk && c < pk->n_chunks; c++) pk->chunks[c].id = pk->chunks[c].n_new = 0;
  }
  rc = LT_ENOMEM;
  if (records == 0) return 0;
  if (!(w.arena = lt_arena_create(SIZE_MAX / 2))) goto out;
  if ((rc = run(s, WS_BEGIN))) goto out;
  if ((rc = lt__sq_rollup_recover(s))) goto out;
  if ((rc = one_int(s, WS_NEXT_TRACE_ID, &next_id))) goto out;
  if ((rc = one_int(s, WS_NEXT_CHUNK_ID, &next_chunk))) goto out;
  s->span_first_id = 0;
  if (s->span_floor > 0) {
    int64_t top = 0;
    if ((rc = one_int(s, WS_MAX_SPAN_ID, &top))) goto out;
    if (top < s->span_floor) s->span_first_id = s->span_floor + 1;
    else s->span_floor = 0; /* ids are past it: SQLite's next rowid is right again */
  }
  /* Never hand out an id twice in a process, even one whose chunk was
   * expired or rolled back: decoders cache chunks by id. */
  if (next_chunk < s->next_chunk) next_chunk = s->next_chunk;

  span_at_t *order;
  uint32_t *start;
  if ((rc = group_by_trace(s, &w, batches, n, &next_id, &order, &start))) goto out;
  for (size_t j = 0; j < w.n; j++) {
    agg_t *a = &w.aggs[j];
    idset_t *cur = a->created ? NULL : idc_find(s, a->id);
    if (!cur) {
      cur = &ids;
      if ((rc = idset_reset(&ids, start[j + 1] - start[j]))) goto out;
      if (!a->created && (rc = load_span_ids(s, a->id, &ids))) goto out;
    }
    int64_t run_lo = 0, run_hi = 0;
    for (uint32_t o = start[j]; o < start[j + 1]; o++) {
      lt_batch_t *b = batches[order[o].b];
      size_t k = order[o].k;
      const lt_span_t *sp = &b->spans[k];
      bool had;
      if ((rc = idset_add(cur, lt__sq_id8_to_int(sp->span_id), &had))) goto out;
      if (had) continue; /* stored before, or earlier in this transaction */
      int64_t id = 0;
      lt__sq_packed_t *pk = b->packed;
      if ((rc = insert_span(s, b->project_id, sp, pk, &pk->spans[k], a->id, &next_chunk, &id)))
        goto out;
      if (!run_lo || id < run_lo) run_lo = id;
      if (id > run_hi) run_hi = id;
      if (!blk.first_id || id < blk.first_id) blk.first_id = id;
      if (id > blk.last_id) blk.last_id = id;
      if (!new_spans || sp->start_ns < blk.min_start) blk.min_start = sp->start_ns;
      if (!new_spans || sp->start_ns > blk.max_start) blk.max_start = sp->start_ns;
      b->span_new[k] = 1;
      b->n_inserted++;
      new_spans++;
      if ((rc = fold(&w, a, sp))) goto out;
      if ((rc = lt__sq_scores_insert_inline(s, b->project_id, sp))) goto out;
      if ((rc = lt__sq_rollup_add(s, b->project_id, id, sp))) goto out;
    }
    /* Nothing else inserts spans meanwhile: the range holds only these. */
    if (run_lo && (rc = run_insert(s, a->id, run_lo, run_hi))) goto out;
    if (cur->n > IDC_MAX) idc_forget(s, a->id);
    else if (cur == &ids && ids.n >= IDC_MIN) idc_keep(s, a->id, &ids);
  }
  for (size_t i = 0; i < w.n; i++) {
    const agg_t *a = &w.aggs[i];
    if (!a->changed) continue;
    if ((rc = store_trace(s, &w, a))) goto out;
    if (a->created) new_traces++;
  }
  for (size_t i = 0; i < n; i++) {
    lt_batch_t *b = batches[i];
    for (size_t k = 0; k < b->n_logs; k++, logs++)
      if ((rc = insert_log(s, b->project_id, &b->logs[k]))) goto out;
    for (size_t k = 0; k < b->n_points; k++, points++)
      if ((rc = insert_point(s, b->project_id, &b->points[k]))) goto out;
  }
  if (new_spans && (rc = block_insert(s, &blk))) goto out;
  if ((rc = meta_add(s, LT__SQ_META_SPANS, new_spans)) || (rc = meta_add(s, LT__SQ_META_TRACES, new_traces)) ||
      (rc = meta_add(s, LT__SQ_META_LOGS, logs)) || (rc = meta_add(s, LT__SQ_META_POINTS, points)))
    goto out;
  int64_t mono = mono_ns();
  bool backlog = atomic_load_explicit(&st->queued, memory_order_relaxed) > 0 ||
                 atomic_load_explicit(&st->incoming, memory_order_relaxed) > 0;
  if (lt__sq_rollup_due(s, backlog, mono) && (rc = lt__sq_rollup_flush(s, mono))) goto out;
  rc = run(s, WS_COMMIT);
  if (rc == 0) lt__sq_rollup_commit(s);
out:
  s->last_write_ns = mono_ns();
  if (next_chunk > s->next_chunk) s->next_chunk = next_chunk;
  if (rc) {
    rollback(s);
    lt__sq_rollup_abort(s);
    idc_forget(s, -1);
    for (size_t i = 0; i < n; i++) {
      batches[i]->n_inserted = 0;
      if (batches[i]->span_new) memset(batches[i]->span_new, 0, batches[i]->n_spans);
    }
    rc = outward(rc);
  }
  /* Ingest comes before the search index: while writes find the disk
   * full, the index waits (sqlite_search.c). */
  if (rc == 0 || rc == LT_ENOSPACE) atomic_store_explicit(&s->space_short, rc == LT_ENOSPACE, memory_order_relaxed);
  lt_arena_destroy(w.arena);
  lt_free(ids.slot);
  lt_free(w.aggs);
  lt_free(w.slots);
  lt_buf_free(&w.models_json);
  lt_buf_free(&w.tags_json);
  return rc;
}

/* ---- maintenance --------------------------------------------------------- */

typedef struct {
  int64_t id;
  lt_str_t models; /* JSON text, copied */
} old_trace_t;

/* Deletes up to *budget spans of one trace, lowest ids first (their
 * full-text entries stay until their partition goes: sqlite_search.c);
 * *done when none is left. Each round reads one span more than it deletes, so a budget that
 * ends on the trace's last span still reports it done and the trace goes
 * in the same slice: a trace kept without spans would keep runs over ids
 * that, if they were the newest, the next write hands out again. While
 * spans are left, the ids freed are below them and never handed out. */
static int expire_spans(lt__sq_t *s, int64_t trace_ref, int *budget, int64_t *deleted, bool *done) {
  int64_t ids[256];
  *done = false;
  while (*budget > 0) {
    int want = *budget < 256 ? *budget : 256, got = 0, rc = 0, src;
    bool left = false;
    sqlite3_stmt *q = s->ws[WS_TRACE_SPANS];
    BIND(sqlite3_bind_int64(q, 1, trace_ref));
    BIND(sqlite3_bind_int(q, 2, want + 1));
    while (rc == 0 && (src = sqlite3_step(q)) == SQLITE_ROW) {
      if (got == want) {
        left = true;
        break;
      }
      ids[got++] = sqlite3_column_int64(q, 0);
    }
    if (rc == 0 && !left && src != SQLITE_DONE) rc = lt__sq_fail(s->wdb, src, "reading spans to expire");
    sqlite3_reset(q);
    if (got) idc_forget(s, trace_ref); /* its ids would claim spans no longer there */
    for (int i = 0; rc == 0 && i < got; i++) {
      BIND(sqlite3_bind_int64(s->ws[WS_SPAN_DELETE], 1, ids[i]));
      rc = run(s, WS_SPAN_DELETE);
    }
    if (rc) return rc;
    *budget -= got;
    *deleted += got;
    if (!left) {
      *done = true;
      break;
    }
  }
  return 0;
}

/* Deletes whole traces that started before cutoff (their spans, model
 * rows and payload chunks with them), at most *budget rows. */
static int expire_traces(lt__sq_t *s, wctx_t *w, int64_t cutoff, int *budget, bool *more) {
  int64_t projects[64];
  int np = 0, rc = 0, src;
  int64_t spans = 0, traces = 0, after = 0;
  sqlite3_stmt *pq = s->ws[WS_PROJECT_IDS];
  for (;;) {
    /* Projects in pages of 64, resuming after the last one seen. */
    np = 0;
    while ((src = sqlite3_step(pq)) == SQLITE_ROW) {
      int64_t id = sqlite3_column_int64(pq, 0);
      if (id > after && np < 64) projects[np++] = id;
    }
    sqlite3_reset(pq);
    if (src != SQLITE_DONE) return lt__sq_fail(s->wdb, src, "listing projects");
    if (np == 0) break;
    after = projects[np - 1];
    for (int p = 0; p < np && *budget > 0; p++) {
      old_trace_t old[128];
      int n_old = 0;
      sqlite3_stmt *q = s->ws[WS_OLD_TRACES];
      BIND(sqlite3_bind_int64(q, 1, projects[p]));
      BIND(sqlite3_bind_int64(q, 2, cutoff));
      BIND(sqlite3_bind_int(q, 3, *budget < 128 ? *budget : 128));
      while (rc == 0 && (src = sqlite3_step(q)) == SQLITE_ROW) {
        old[n_old].id = sqlite3_column_int64(q, 0);
        old[n_old].models = col_copy(w, q, 1, &rc);
        n_old++;
      }
      if (rc == 0 && src != SQLITE_DONE) rc = lt__sq_fail(s->wdb, src, "finding expired traces");
      sqlite3_reset(q);
      for (int i = 0; rc == 0 && i < n_old; i++) {
        bool done;
        if ((rc = expire_spans(s, old[i].id, budget, &spans, &done))) break;
        if (!done) {
          *more = true;
          break;
        }
        str_node_t *models = NULL;
        int nm = 0;
        if (old[i].models.len)
          rc = set_add_json(w, &models, &nm, old[i].models.ptr, old[i].models.len, false);
        for (str_node_t *m = models; rc == 0 && m; m = m->next) {
          sqlite3_stmt *d = s->ws[WS_MODEL_DELETE];
          BIND(sqlite3_bind_int64(d, 1, projects[p]));
          BIND(lt__sq_bind_text_nn(d, 2, m->s));
          BIND(sqlite3_bind_int64(d, 3, old[i].id));
          rc = run(s, WS_MODEL_DELETE);
        }
        if (rc == 0) {
          /* The chunks go last, once every span of the trace is gone. */
          BIND(sqlite3_bind_int64(s->ws[WS_CHUNKS_DELETE], 1, old[i].id));
          rc = run(s, WS_CHUNKS_DELETE);
        }
        if (rc == 0) {
          BIND(sqlite3_bind_int64(s->ws[WS_KEYS_DELETE], 1, old[i].id));
          rc = run(s, WS_KEYS_DELETE);
        }
        if (rc == 0) {
          BIND(sqlite3_bind_int64(s->ws[WS_RUNS_DELETE], 1, old[i].id));
          rc = run(s, WS_RUNS_DELETE);
        }
        if (rc == 0) {
          BIND(sqlite3_bind_int64(s->ws[WS_TRACE_DELETE], 1, old[i].id));
          rc = run(s, WS_TRACE_DELETE);
        }
        traces++;
        (*budget)--;
      }
      if (rc) return rc;
      if (n_old == 128) *more = true;
    }
    if (*budget <= 0) {
      *more = true;
      break;
    }
  }
  if (rc == 0) rc = meta_add(s, LT__SQ_META_SPANS, -spans);
  if (rc == 0) rc = meta_add(s, LT__SQ_META_TRACES, -traces);
  return rc;
}

static int expire_rows(lt__sq_t *s, int which, const char *counter, int64_t cutoff, int *budget, bool *more) {
  if (*budget <= 0) return 0;
  sqlite3_stmt *st = s->ws[which];
  BIND(sqlite3_bind_int64(st, 1, cutoff));
  BIND(sqlite3_bind_int(st, 2, *budget));
  int rc = run(s, which);
  if (rc) return rc;
  int got = sqlite3_changes(s->wdb);
  if (got >= *budget) *more = true;
  *budget -= got;
  return counter ? meta_add(s, counter, -(int64_t)got) : 0;
}

/* At close: what deferred flushes left pending goes in now, so the next
 * start has nothing to read back. Failing is harmless: it would. */
void lt__sq_flush_rollups(lt__sq_t *s) {
  int64_t mono = mono_ns();
  if (!s->rollup || !lt__sq_rollup_due(s, false, mono)) return;
  int rc = run(s, WS_BEGIN);
  if (rc == 0) rc = lt__sq_rollup_recover(s);
  if (rc == 0) rc = lt__sq_rollup_flush(s, mono);
  if (rc == 0) rc = run(s, WS_COMMIT);
  if (rc == 0) {
    lt__sq_rollup_commit(s);
  } else {
    rollback(s);
    lt__sq_rollup_abort(s);
  }
}

/* Keys the traces above the mark (trace_keys, trace_models), up to
 * LT__SQ_KEYS_CHUNK of them in one insert each, once enough wait (see
 * LT__SQ_KEYS_BATCH). 10-20 ms for a batch under load. */
static int keys_index(lt__sq_t *s, bool *more) {
  int64_t hwm = 0, top = 0;
  int rc = meta_get(s, LT__SQ_META_KEYS_HWM, &hwm);
  if (rc == 0) rc = one_int(s, WS_MAX_TRACE_ID, &top);
  if (rc) return rc;
  /* Retention took the newest traces: new ids would start at or below
   * the mark and never be keyed. */
  if (top < hwm) return meta_set(s, LT__SQ_META_KEYS_HWM, top);
  if (top == hwm) return 0;
  int64_t mono = mono_ns();
  if (top - hwm < s->keys_batch && mono - s->last_write_ns < LT__SQ_KEYS_IDLE_NS &&
      mono - s->keys_last_ns < LT__SQ_KEYS_DELAY_NS)
    return 0;
  s->keys_last_ns = mono;
  int64_t hi = top - hwm > LT__SQ_KEYS_CHUNK ? hwm + LT__SQ_KEYS_CHUNK : top;
  static const int which[] = {WS_KEYS_INDEX, WS_MODELS_INDEX};
  for (size_t i = 0; i < sizeof which / sizeof which[0]; i++) {
    BIND(sqlite3_bind_int64(s->ws[which[i]], 1, hwm));
    BIND(sqlite3_bind_int64(s->ws[which[i]], 2, hi));
    if ((rc = run(s, which[i]))) return rc;
  }
  if (hi < top) *more = true;
  return meta_set(s, LT__SQ_META_KEYS_HWM, hi);
}

int lt__sq_maintain(lt_store_t *st, int64_t now_ns, bool *more) {
  lt__sq_t *s = LT__SQ(st);
  wctx_t w = {0};
  int64_t max_id = 0, top_id = 0, floor = s->span_floor;
  int rc = LT_ENOMEM;
  *more = false;
  if (!(w.arena = lt_arena_create(SIZE_MAX / 2))) goto out;
  if ((rc = run(s, WS_BEGIN))) goto out;
  /* Deferred rollups go first: retention may take the spans they count,
   * and under sustained load this slice comes once a second. */
  if ((rc = lt__sq_rollup_recover(s))) goto out;
  int64_t mono = mono_ns();
  if (lt__sq_rollup_due(s, false, mono) && (rc = lt__sq_rollup_flush(s, mono))) goto out;
  if (s->retention_ns > 0 && now_ns > s->retention_ns) {
    int64_t cutoff = now_ns - s->retention_ns;
    int budget = LT__SQ_RETENTION_CHUNK;
    if ((rc = one_int(s, WS_MAX_SPAN_ID, &top_id))) goto out;
    if ((rc = expire_traces(s, &w, cutoff, &budget, more))) goto out;
    if ((rc = expire_rows(s, WS_LOGS_EXPIRE, LT__SQ_META_LOGS, cutoff, &budget, more))) goto out;
    if ((rc = expire_rows(s, WS_POINTS_EXPIRE, LT__SQ_META_POINTS, cutoff, &budget, more))) goto out;
    /* Scores go by their own time: comments can hold user text. */
    if ((rc = expire_rows(s, WS_SCORES_EXPIRE, NULL, cutoff, &budget, more))) goto out;
    if ((rc = run(s, WS_BLOCKS_EXPIRE))) goto out;
    /* If the newest spans went, SQLite would hand their ids out again,
     * and the full-text index still holds them: new spans start above
     * the largest id ever stored instead (see insert_span). */
    if ((rc = one_int(s, WS_MAX_SPAN_ID, &max_id))) goto out;
    if (max_id < top_id && top_id > floor) {
      floor = top_id;
      if ((rc = meta_set(s, LT__SQ_META_SPAN_FLOOR, floor))) goto out;
    }
    if ((rc = lt__sq_rollup_lower_hwm(s, max_id))) goto out;
  }
  if ((rc = lt__sq_rollup_maintain(s, now_ns, s->retention_ns, more))) goto out;
  if ((rc = keys_index(s, more))) goto out;
  rc = run(s, WS_COMMIT);
  if (rc == 0) lt__sq_rollup_commit(s);
  if (rc == 0) s->span_floor = floor;
  if (rc == 0 && !*more) (void)lt__sq_ckpt_idle(s, mono_ns());
out:
  if (rc) {
    rollback(s);
    lt__sq_rollup_abort(s);
    *more = false;
    rc = outward(rc);
  }
  lt_arena_destroy(w.arena);
  return rc;
}
