/* One trace from the SQLite store: its list row and every span in tree
 * order (depth first, children by start time, orphans after the tree),
 * each with the log records that belong to it. */
#include "store/sqlite_internal.h"
#include "core/err.h"
#include "core/mem.h"
#include <stdlib.h>
#include <string.h>

static int fail(sqlite3 *db, int src, const char *what) { return lt__sq_fail(db, src, what); }

typedef struct {
  int64_t span_id, parent_id;
  bool has_parent;
  json_t *obj;
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

/* GenAI content sent as log records was normalised into message arrays at
 * ingest (model/semconv.c). A span stored without messages of its own shows
 * its records' messages, in time order, so the result does not depend on
 * whether the span or its logs came first. */
static json_t *msgs_of(json_t **from_logs, int i, bool output) {
  json_t **arr = &from_logs[2 * i + (output ? 1 : 0)];
  if (!*arr) *arr = json_array();
  return *arr;
}

/* Appends the messages of one stored JSON array column to span i's. */
static int fold_log(json_t **from_logs, int i, bool output, sqlite3_stmt *st, int col) {
  if (sqlite3_column_type(st, col) == SQLITE_NULL) return 0;
  json_t *list = json_loadb((const char *)sqlite3_column_text(st, col), (size_t)sqlite3_column_bytes(st, col), 0, NULL);
  int rc = 0;
  if (json_is_array(list) && json_array_size(list)) {
    json_t *arr = msgs_of(from_logs, i, output);
    if (!arr || json_array_extend(arr, list) != 0) rc = LT_ENOMEM;
  }
  json_decref(list);
  return rc;
}

static int attach_logs(lt__sq_reader_t *r, int64_t project_id, const uint8_t trace_id[16], node_t *nodes,
                       const by_id_t *ids, int n) {
  sqlite3_stmt *st = NULL;
  json_t **from_logs = lt_calloc(2 * (size_t)n + 1, sizeof *from_logs);
  if (!from_logs) return LT_ENOMEM;
  int src = sqlite3_prepare_v2(r->db,
                               "SELECT span_id, time_ns, event_name, severity, body, attributes, input_messages, output_messages"
                               " FROM logs"
                               " WHERE project_id = ?1 AND trace_id = ?2 ORDER BY time_ns, id",
                               -1, &st, NULL);
  if (src == SQLITE_OK) src = sqlite3_bind_int64(st, 1, project_id);
  if (src == SQLITE_OK) src = sqlite3_bind_blob(st, 2, trace_id, 16, SQLITE_STATIC);
  int rc = 0;
  while (rc == 0 && src == SQLITE_OK && (src = sqlite3_step(st)) == SQLITE_ROW) {
    src = SQLITE_OK;
    if (sqlite3_column_type(st, 0) == SQLITE_NULL) continue;
    int i = find_span(ids, n, sqlite3_column_int64(st, 0));
    if (i < 0) continue;
    json_t *lg = json_object();
    if (!lg) {
      rc = LT_ENOMEM;
      break;
    }
    json_t *body = lt__sq_jcol_doc(st, 4, LT__SQ_EMPTY_NULL);
    lt__sq_put(lg, "time_ns", json_integer(sqlite3_column_int64(st, 1)), &rc);
    lt__sq_put(lg, "event_name", lt__sq_jcol_str(st, 2), &rc);
    lt__sq_put(lg, "severity_number", json_integer(sqlite3_column_int(st, 3)), &rc);
    json_t *attrs = lt__sq_jcol_doc(st, 5, LT__SQ_EMPTY_OBJECT);
    lt__sq_put(lg, "body", body, &rc);
    lt__sq_put(lg, "attributes", attrs, &rc);
    if (rc == 0) rc = fold_log(from_logs, i, false, st, 6);
    if (rc == 0) rc = fold_log(from_logs, i, true, st, 7);
    if (json_array_append_new(json_object_get(nodes[i].obj, "logs"), lg) != 0) rc = LT_ENOMEM;
  }
  if (rc == 0 && src != SQLITE_DONE && src != SQLITE_OK) rc = fail(r->db, src, "reading logs");
  sqlite3_finalize(st);
  for (int i = 0; i < n; i++)
    for (int side = 0; side < 2; side++) {
      json_t *msgs = from_logs[2 * i + side];
      const char *key = side ? "output_messages" : "input_messages";
      if (!msgs) continue;
      if (rc == 0 && json_array_size(msgs) && json_is_null(json_object_get(nodes[i].obj, key)))
        lt__sq_put(nodes[i].obj, key, msgs, &rc);
      else json_decref(msgs);
    }
  lt_free(from_logs);
  return rc;
}

/* Scores (sqlite_scores.c): each span lists its own; trace-level scores,
 * and those of spans not stored (yet), go to the top-level array. */
typedef struct {
  node_t *nodes;
  const by_id_t *ids;
  int n;
  json_t *top;
} score_dest_t;

static int place_score(void *ctx, bool has_span, int64_t span_id, json_t *score) {
  score_dest_t *d = ctx;
  int i = has_span ? find_span(d->ids, d->n, span_id) : -1;
  json_t *arr = i >= 0 ? json_object_get(d->nodes[i].obj, "scores") : d->top;
  return json_array_append_new(arr, score) ? LT_ENOMEM : 0;
}

static int attach_scores(lt__sq_reader_t *r, int64_t project_id, const uint8_t trace_id[16], node_t *nodes,
                         const by_id_t *ids, int n, json_t *top) {
  int rc = 0;
  for (int i = 0; i < n && rc == 0; i++) lt__sq_put(nodes[i].obj, "scores", json_array(), &rc);
  score_dest_t d = {nodes, ids, n, top};
  return rc ? rc : lt__sq_scores_of_trace(r, project_id, trace_id, place_score, &d);
}

int lt__sq_trace_get(lt_store_t *st, int64_t project_id, const uint8_t trace_id[16], json_t **out) {
  lt__sq_t *s = LT__SQ(st);
  lt__sq_reader_t *r = lt__sq_reader_get(s);
  sqlite3_stmt *tq = NULL, *sq = NULL;
  node_t *nodes = NULL;
  by_id_t *ids = NULL;
  int *kid_off = NULL, *kids = NULL, *stack = NULL;
  bool *seen = NULL;
  json_t *trace = NULL, *spans = NULL, *res = NULL, *scores = json_array();
  int n = 0, cap = 0, rc = scores ? lt__sq_exec(r->db, "BEGIN") : LT_ENOMEM;
  if (rc) goto out;

  int src = sqlite3_prepare_v2(r->db,
                               "SELECT " LT__SQ_TRACE_COLS " FROM traces t"
                               " WHERE t.project_id = ?1 AND t.trace_id = ?2",
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
  if (!(trace = lt__sq_trace_row(tq, &rc)) || rc) goto out;
  int64_t trace_ref = sqlite3_column_int64(tq, 0);

  src = sqlite3_prepare_v2(r->db,
                           "SELECT " LT__SQ_SPAN_COLS " FROM trace_runs r"
                           " JOIN spans s ON s.id BETWEEN r.first_id AND r.last_id"
                           " JOIN traces t ON t.id = s.trace_ref"
                           " WHERE r.trace_ref = ?1 AND s.trace_ref = ?1 ORDER BY s.start_ns, s.id LIMIT ?2",
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
    nd->obj = lt__sq_span_row(r, sq, true, &rc);
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
  if (rc == 0) rc = attach_scores(r, project_id, trace_id, nodes, ids, n, scores);
  if (rc) goto out;
  if (!(res = json_object())) {
    rc = LT_ENOMEM;
    goto out;
  }
  /* At most LT__SQ_TRACE_MAX_SPANS spans (the earliest): say when there
   * are more, so a client does not take the list for the whole trace. */
  bool truncated = n >= LT__SQ_TRACE_MAX_SPANS && json_integer_value(json_object_get(trace, "span_count")) > n;
  lt__sq_put(res, "trace", trace, &rc);
  trace = NULL;
  lt__sq_put(res, "spans", spans, &rc);
  spans = NULL;
  lt__sq_put(res, "scores", scores, &rc);
  scores = NULL;
  lt__sq_put(res, "truncated", json_boolean(truncated), &rc);
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
  json_decref(scores);
  if (rc) json_decref(res);
  else *out = res;
  return rc;
}
