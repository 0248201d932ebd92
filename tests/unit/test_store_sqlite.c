/* Unit tests for the SQLite store: schema and reopen, the write path
 * (idempotency, trace summaries), every list filter, cursors, the trace
 * tree, sessions, projects and keys, isolation between projects, full-text
 * search and retention. Each test gets a fresh store in a temp directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "core/err.h"
#include "store/store.h"
#include "store/sqlite_internal.h"
#include <time.h>

#define T0 1767323045000000000LL /* 2026-01-02T03:04:05Z */
#define MS 1000000LL
#define SEC 1000000000LL

#include "store_fixture.h"

static int open_store(fixture_t *f, int64_t retention_ns) { return fixture_reopen(f, retention_ns); }
#define setup fixture_setup
#define teardown fixture_teardown

/* ---- building batches ---------------------------------------------------- */

static lt_str_t S(lt_batch_t *b, const char *s) { return lt_arena_strdup(b->arena, s, strlen(s)); }

static void tid_of(uint8_t out[16], int trace) {
  memset(out, 0, 16);
  out[0] = 0xab;
  out[14] = (uint8_t)(trace >> 8);
  out[15] = (uint8_t)trace;
}

static void sid_of(uint8_t out[8], int trace, int span) {
  memset(out, 0, 8);
  out[0] = 0x80; /* high bit set: the int64 form is negative */
  out[5] = (uint8_t)trace;
  out[6] = (uint8_t)(span >> 8);
  out[7] = (uint8_t)span;
}

/* Adds a span; parent 0 = root. Strings are copied into the batch. */
static lt_span_t *add(lt_batch_t *b, int trace, int span, int parent, const char *name, int64_t start,
                      int64_t end) {
  lt_span_t *s = lt_batch_add_span(b);
  assert_non_null(s);
  tid_of(s->trace_id, trace);
  sid_of(s->span_id, trace, span);
  if (parent) {
    s->has_parent = true;
    sid_of(s->parent_span_id, trace, parent);
  }
  s->name = S(b, name);
  s->start_ns = start;
  s->end_ns = end;
  s->otel_kind = 1;
  return s;
}

static lt_span_t *add_llm(lt_batch_t *b, int trace, int span, int parent, const char *model, int64_t start,
                          int64_t end, int64_t in, int64_t out, int64_t cost_nusd) {
  lt_span_t *s = add(b, trace, span, parent, "chat", start, end);
  s->kind = LT_KIND_LLM;
  s->otel_kind = 3;
  s->request_model = S(b, model);
  s->provider = S(b, "openai");
  s->tokens[LT_TOK_INPUT] = in;
  s->tokens[LT_TOK_OUTPUT] = out;
  s->tokens[LT_TOK_TOTAL] = in + out;
  if (cost_nusd >= 0) {
    s->cost_source = LT_COST_REPORTED;
    s->cost_total = cost_nusd;
  }
  return s;
}

static void write1(fixture_t *f, lt_batch_t *b, size_t expect_inserted) {
  assert_int_equal(lt_store_write(f->store, &b, 1), 0);
  assert_int_equal(b->n_inserted, expect_inserted);
  lt_batch_free(b);
}

/* Runs maintenance until it reports nothing more to do (keying every
 * trace it finds: keys_batch_waits_for_traces tests the batching). */
static void maintain_all(fixture_t *f, int64_t now) {
  LT__SQ(f->store)->keys_batch = 1;
  bool more = true;
  for (int i = 0; more && i < 1000; i++) assert_int_equal(lt_store_maintain(f->store, now, &more), 0);
  assert_false(more);
  assert_int_equal(lt__sq_search_catch_up(LT__SQ(f->store)), 0);
}

/* A 3-span tree (root r, children a then b, a's child a1 is not here) plus
 * an orphan whose parent never arrives; logs for child a. */
static lt_batch_t *tree_batch(int trace) {
  lt_batch_t *b = lt_batch_new(1, 1 << 20);
  int64_t t = T0 + trace * SEC;
  lt_span_t *r = add(b, trace, 1, 0, "agent-run", t, t + 900 * MS);
  r->kind = LT_KIND_AGENT;
  r->status = LT_STATUS_OK;
  r->user_id = S(b, "alice");
  r->session_id = S(b, "sess-1");
  r->service = S(b, "svc");
  r->environment = S(b, "prod");
  r->tags = S(b, "[\"prod\",\"beta\"]");
  r->input = S(b, "What is the capital of France?");
  r->output = S(b, "Paris is the capital.");
  r->metadata = S(b, "{\"k\":1}");
  r->attributes = S(b, "{\"input.value\":\"What is the capital of France?\"}");
  /* b starts before a in the batch order, but after it in time. */
  lt_span_t *cb = add_llm(b, trace, 3, 1, "gpt-4o", t + 500 * MS, t + 800 * MS, 10, 5, 2000);
  cb->status = LT_STATUS_ERROR;
  cb->status_message = S(b, "rate limited");
  cb->response_model = S(b, "gpt-4o-2024-08-06");
  lt_span_t *ca = add_llm(b, trace, 2, 1, "gpt-4o-mini", t + 100 * MS, t + 400 * MS, 100, 20, 3000);
  ca->input_messages = S(b, "[{\"role\":\"user\",\"content\":\"hello there\"}]");
  ca->tokens[LT_TOK_CACHE_READ] = 7;
  ca->ttft_ns = 50 * MS;
  lt_span_t *o = add(b, trace, 9, 8, "orphan", t + 50 * MS, t + 60 * MS);
  o->kind = LT_KIND_TOOL;
  for (int i = 0; i < 2; i++) {
    lt_log_t *lg = lt_batch_add_log(b);
    tid_of(lg->trace_id, trace);
    sid_of(lg->span_id, trace, 2);
    lg->has_trace = lg->has_span = true;
    lg->time_ns = t + (i ? 300 : 150) * MS;
    lg->severity_number = 9;
    lg->event_name = S(b, i ? "gen_ai.choice" : "gen_ai.user.message");
    lg->body = S(b, i ? "{\"content\":\"hi back\"}" : "{\"content\":\"hello there\"}");
    lg->attributes = S(b, "{\"gen_ai.system\":\"openai\"}");
    /* as model/semconv.c normalises them at ingest */
    if (i) lg->output_messages = S(b, "[{\"role\":\"assistant\",\"content\":\"hi back\"}]");
    else lg->input_messages = S(b, "[{\"role\":\"user\",\"content\":\"hello there\"}]");
  }
  return b;
}

static json_t *traces(fixture_t *f, lt_query_t *q) {
  json_t *out = NULL;
  assert_int_equal(f->store->ops->traces_list(f->store, q, &out), 0);
  return out;
}

static json_t *spans(fixture_t *f, lt_query_t *q) {
  json_t *out = NULL;
  assert_int_equal(f->store->ops->spans_list(f->store, q, &out), 0);
  return out;
}

/* Rows a trace list (or span list) with q = text finds, from from_ns on. */
static size_t found(fixture_t *f, bool span_list, const char *text, int64_t from_ns) {
  lt_query_t q;
  lt_query_init(&q, 1);
  q.q = lt_str_from(text);
  q.from_ns = from_ns;
  q.limit = 500;
  json_t *res = span_list ? spans(f, &q) : traces(f, &q);
  size_t n = json_array_size(json_object_get(res, "data"));
  json_decref(res);
  return n;
}

/* The names of the rows of a list result, joined by ',' (for compact asserts). */
static char *names(json_t *res, const char *field) {
  static char buf[4096];
  buf[0] = 0;
  size_t i;
  json_t *row;
  json_array_foreach(json_object_get(res, "data"), i, row) {
    if (i) strcat(buf, ",");
    json_t *v = json_object_get(row, field);
    if (json_is_string(v)) strcat(buf, json_string_value(v));
    else if (json_is_integer(v)) sprintf(buf + strlen(buf), "%lld", (long long)json_integer_value(v));
    else strcat(buf, "?");
  }
  return buf;
}

/* ---- tests --------------------------------------------------------------- */

static void opens_migrates_and_reopens(void **st) {
  fixture_t *f = *st;
  int64_t id = 0;
  assert_int_equal(f->store->ops->project_find(f->store, "default", &id), 0);
  assert_int_equal(id, 1);
  write1(f, tree_batch(1), 4);
  lt_store_close(f->store);
  f->store = NULL;
  assert_int_equal(open_store(f, 0), 0);
  lt_store_stats_t ss;
  assert_int_equal(f->store->ops->stats(f->store, &ss), 0);
  assert_int_equal(ss.spans, 4);
  assert_int_equal(ss.traces, 1);
  assert_int_equal(ss.logs, 2);
  assert_true(ss.db_bytes > 0);
  assert_int_equal(ss.fts_lag, 4);
  /* The schema version is recorded in the file. */
  char path[128];
  snprintf(path, sizeof path, "%s/lanterna.db", f->dir);
  sqlite3 *db;
  assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
  sqlite3_stmt *q;
  assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &q, NULL), SQLITE_OK);
  assert_int_equal(sqlite3_step(q), SQLITE_ROW);
  assert_true(sqlite3_column_int(q, 0) >= 1);
  sqlite3_finalize(q);
  sqlite3_close(db);
}

static void trace_summary(void **st) {
  fixture_t *f = *st;
  write1(f, tree_batch(1), 4);
  lt_query_t q;
  lt_query_init(&q, 1);
  json_t *res = traces(f, &q);
  json_t *rows = json_object_get(res, "data");
  assert_int_equal(json_array_size(rows), 1);
  json_t *r = json_array_get(rows, 0);
  assert_string_equal(json_string_value(json_object_get(r, "trace_id")), "ab00000000000000000000000000" "0001");
  assert_string_equal(json_string_value(json_object_get(r, "name")), "agent-run");
  assert_int_equal(json_integer_value(json_object_get(r, "start_ns")), T0 + SEC);
  assert_int_equal(json_integer_value(json_object_get(r, "end_ns")), T0 + SEC + 900 * MS);
  assert_true(json_real_value(json_object_get(r, "duration_ms")) == 900.0);
  assert_string_equal(json_string_value(json_object_get(r, "start_time")), "2026-01-02T03:04:06.000Z");
  assert_string_equal(json_string_value(json_object_get(r, "status")), "error");
  assert_int_equal(json_integer_value(json_object_get(r, "error_count")), 1);
  assert_int_equal(json_integer_value(json_object_get(r, "span_count")), 4);
  assert_string_equal(json_string_value(json_object_get(r, "user_id")), "alice");
  assert_string_equal(json_string_value(json_object_get(r, "session_id")), "sess-1");
  assert_string_equal(json_string_value(json_object_get(r, "service")), "svc");
  assert_string_equal(json_string_value(json_object_get(r, "environment")), "prod");
  char *models = json_dumps(json_object_get(r, "models"), JSON_COMPACT);
  assert_string_equal(models, "[\"gpt-4o\",\"gpt-4o-2024-08-06\",\"gpt-4o-mini\"]");
  free(models);
  char *tags = json_dumps(json_object_get(r, "tags"), JSON_COMPACT);
  assert_string_equal(tags, "[\"prod\",\"beta\"]");
  free(tags);
  assert_int_equal(json_integer_value(json_object_get(r, "input_tokens")), 110);
  assert_int_equal(json_integer_value(json_object_get(r, "output_tokens")), 25);
  assert_int_equal(json_integer_value(json_object_get(r, "total_tokens")), 135);
  assert_true(json_real_value(json_object_get(r, "cost_usd")) > 4.99e-6 &&
              json_real_value(json_object_get(r, "cost_usd")) < 5.01e-6);
  assert_true(json_is_null(json_object_get(res, "next_cursor")));
  json_decref(res);
}

static void unknown_cost_and_tokens_are_null(void **st) {
  fixture_t *f = *st;
  lt_batch_t *b = lt_batch_new(1, 1 << 20);
  add(b, 5, 1, 0, "plain", T0, T0 + MS);
  write1(f, b, 1);
  lt_query_t q;
  lt_query_init(&q, 1);
  json_t *res = traces(f, &q);
  json_t *r = json_array_get(json_object_get(res, "data"), 0);
  assert_true(json_is_null(json_object_get(r, "cost_usd")));
  assert_true(json_is_null(json_object_get(r, "input_tokens")));
  assert_true(json_is_null(json_object_get(r, "user_id")));
  assert_string_equal(json_string_value(json_object_get(r, "status")), "unset");
  assert_int_equal(json_array_size(json_object_get(r, "models")), 0);
  json_decref(res);
}

static void rewrite_is_idempotent(void **st) {
  fixture_t *f = *st;
  write1(f, tree_batch(1), 4);
  lt_query_t q;
  lt_query_init(&q, 1);
  json_t *before = traces(f, &q);
  write1(f, tree_batch(1), 0);
  /* The same spans twice in one group: stored once. */
  lt_batch_t *g[2] = {tree_batch(2), tree_batch(2)};
  assert_int_equal(lt_store_write(f->store, g, 2), 0);
  assert_int_equal(g[0]->n_inserted + g[1]->n_inserted, 4);
  lt_batch_free(g[0]);
  lt_batch_free(g[1]);
  json_t *after = traces(f, &q);
  /* Trace 1 (now the second row) is unchanged. */
  assert_true(json_equal(json_array_get(json_object_get(before, "data"), 0),
                         json_array_get(json_object_get(after, "data"), 1)));
  lt_store_stats_t ss;
  assert_int_equal(f->store->ops->stats(f->store, &ss), 0);
  assert_int_equal(ss.spans, 8);
  assert_int_equal(ss.traces, 2);
  json_decref(before);
  json_decref(after);
}

static void late_root_and_new_spans_update_the_summary(void **st) {
  fixture_t *f = *st;
  lt_batch_t *b = lt_batch_new(1, 1 << 20);
  lt_span_t *c = add_llm(b, 7, 2, 1, "m1", T0 + 10 * MS, T0 + 20 * MS, 1, 1, -1);
  c->service = S(b, "child-svc");
  write1(f, b, 1);
  b = lt_batch_new(1, 1 << 20);
  lt_span_t *r = add(b, 7, 1, 0, "late-root", T0, T0 + 30 * MS);
  r->service = S(b, "root-svc");
  add_llm(b, 7, 2, 1, "m1", T0 + 10 * MS, T0 + 20 * MS, 1, 1, -1); /* retry: skipped */
  add_llm(b, 7, 3, 1, "m2", T0 + 21 * MS, T0 + 25 * MS, 2, 2, 5);
  write1(f, b, 2);
  lt_query_t q;
  lt_query_init(&q, 1);
  json_t *res = traces(f, &q);
  json_t *row = json_array_get(json_object_get(res, "data"), 0);
  assert_string_equal(json_string_value(json_object_get(row, "name")), "late-root");
  assert_string_equal(json_string_value(json_object_get(row, "service")), "root-svc");
  assert_int_equal(json_integer_value(json_object_get(row, "span_count")), 3);
  assert_int_equal(json_integer_value(json_object_get(row, "start_ns")), T0);
  assert_int_equal(json_integer_value(json_object_get(row, "input_tokens")), 3);
  assert_int_equal(json_array_size(json_object_get(row, "models")), 2);
  assert_true(json_real_value(json_object_get(row, "cost_usd")) > 0);
  json_decref(res);
}

static int64_t count_rows(fixture_t *f, const char *sql);
static void reopen_undone(fixture_t *f, const char *undo, const char *sql);
static sqlite3 *open_ro(fixture_t *f, const char *sql, sqlite3_stmt **q);

/* The span names of one trace as trace_get and the span list with a trace
 * filter read them, sorted, joined by ','. */
static char *trace_span_names(fixture_t *f, int trace, bool list) {
  static char buf[512];
  uint8_t tid[16];
  tid_of(tid, trace);
  json_t *res = NULL, *arr;
  if (list) {
    lt_query_t q;
    lt_query_init(&q, 1);
    q.has_trace_id = true;
    memcpy(q.trace_id, tid, 16);
    q.ascending = true;
    assert_int_equal(f->store->ops->spans_list(f->store, &q, &res), 0);
    arr = json_object_get(res, "data");
  } else {
    assert_int_equal(f->store->ops->trace_get(f->store, 1, tid, &res), 0);
    arr = json_object_get(res, "spans");
  }
  const char *n[16];
  size_t cnt = json_array_size(arr);
  assert_true(cnt <= 16);
  for (size_t i = 0; i < cnt; i++) n[i] = json_string_value(json_object_get(json_array_get(arr, i), "name"));
  for (size_t i = 1; i < cnt; i++) /* insertion sort: a few names */
    for (size_t j = i; j > 0 && strcmp(n[j - 1], n[j]) > 0; j--) {
      const char *t = n[j];
      n[j] = n[j - 1];
      n[j - 1] = t;
    }
  buf[0] = 0;
  for (size_t i = 0; i < cnt; i++) {
    if (i) strcat(buf, ",");
    strcat(buf, n[i]);
  }
  json_decref(res);
  return buf;
}

/* Spans of several traces arrive interleaved over two writes, with
 * duplicates of earlier spans and within one group: each trace's new spans
 * of a write get one run of consecutive ids holding only them, and every
 * read by trace sees exactly its spans. */
static void interleaved_traces_get_one_run_per_write(void **st) {
  fixture_t *f = *st;
  lt_batch_t *b = lt_batch_new(1, 1 << 20);
  for (int sp = 1; sp <= 2; sp++)
    for (int t = 1; t <= 3; t++) {
      char name[32];
      snprintf(name, sizeof name, "t%ds%d", t, sp);
      add(b, t, sp, sp == 1 ? 0 : 1, name, T0 + t * SEC + sp * MS, T0 + t * SEC + sp * MS + 1);
    }
  write1(f, b, 6);
  lt_batch_t *g[2] = {lt_batch_new(1, 1 << 20), lt_batch_new(1, 1 << 20)};
  add(g[0], 2, 3, 1, "t2s3", T0 + 2 * SEC + 3 * MS, T0 + 2 * SEC + 4 * MS);
  add(g[0], 1, 1, 0, "t1s1-again", T0 + SEC, T0 + SEC + 1); /* stored before */
  add(g[0], 4, 1, 0, "t4s1", T0 + 4 * SEC, T0 + 4 * SEC + 1);
  add(g[1], 1, 3, 1, "t1s3", T0 + SEC + 3 * MS, T0 + SEC + 4 * MS);
  add(g[1], 2, 3, 1, "t2s3-again", T0 + 2 * SEC + 3 * MS, T0 + 2 * SEC + 4 * MS); /* in this group */
  add(g[1], 3, 2, 1, "t3s2-again", T0 + 3 * SEC, T0 + 3 * SEC + 1);
  assert_int_equal(lt_store_write(f->store, g, 2), 0);
  assert_int_equal(g[0]->n_inserted, 2);
  assert_int_equal(g[1]->n_inserted, 1);
  assert_int_equal(g[0]->span_new[1] + g[1]->span_new[1] + g[1]->span_new[2], 0);
  lt_batch_free(g[0]);
  lt_batch_free(g[1]);
  assert_int_equal(count_rows(f, "SELECT count(*) FROM spans"), 9);
  assert_int_equal(count_rows(f, "SELECT count(*) FROM trace_runs"), 6);
  assert_int_equal(count_rows(f, "SELECT sum(last_id - first_id + 1) FROM trace_runs"), 9);
  assert_int_equal(count_rows(f, "SELECT count(*) FROM trace_runs r JOIN spans s"
                                 " ON s.id BETWEEN r.first_id AND r.last_id WHERE s.trace_ref != r.trace_ref"),
                   0);
  for (int list = 0; list < 2; list++) {
    assert_string_equal(trace_span_names(f, 1, list), "t1s1,t1s2,t1s3");
    assert_string_equal(trace_span_names(f, 2, list), "t2s1,t2s2,t2s3");
    assert_string_equal(trace_span_names(f, 3, list), "t3s1,t3s2");
    assert_string_equal(trace_span_names(f, 4, list), "t4s1");
  }
  lt_query_t q;
  lt_query_init(&q, 1);
  json_t *res = traces(f, &q);
  assert_string_equal(names(res, "span_count"), "1,2,3,3");
  json_decref(res);
}

static lt_batch_t *span_range(int trace, int from, int to, int64_t at) {
  lt_batch_t *b = lt_batch_new(1, 4 << 20);
  for (int sp = from; sp <= to; sp++) add(b, trace, sp, sp == 1 ? 0 : 1, "step", at + sp, at + sp + 1);
  return b;
}

static int64_t wal_bytes(fixture_t *f) {
  char path[128];
  struct stat sb;
  snprintf(path, sizeof path, "%s/lanterna.db-wal", f->dir);
  return stat(path, &sb) == 0 ? (int64_t)sb.st_size : -1;
}

static int64_t mono_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * SEC + ts.tv_nsec;
}

/* The WAL keeps the size load grew it to; the writer's maintenance gives
 * the space back once it has been idle long enough, never waiting for a
 * reader that still reads the WAL, and with every span still there. */
static void an_idle_writer_truncates_the_wal(void **st) {
  fixture_t *f = *st;
  lt__sq_t *s = LT__SQ(f->store);
  write1(f, span_range(9, 1, 3000, T0), 3000);
  maintain_all(f, T0); /* the defaults: 10 s idle, 64 MB */
  int64_t grown = wal_bytes(f);
  assert_true(grown > 64 << 10);
  /* The last write is recent. */
  s->wal_idle_ns = 3600 * SEC;
  s->wal_rest_bytes = 0;
  maintain_all(f, T0);
  assert_int_equal(wal_bytes(f), grown);
  /* Idle, but the WAL is no larger than what may stay. */
  s->wal_idle_ns = 0;
  s->wal_rest_bytes = grown;
  maintain_all(f, T0);
  assert_int_equal(wal_bytes(f), grown);
  /* A reader inside a read transaction: maintenance returns at once. */
  s->wal_rest_bytes = 0;
  sqlite3_stmt *q;
  sqlite3 *rd = open_ro(f, "SELECT count(*) FROM spans", &q);
  assert_int_equal(sqlite3_exec(rd, "BEGIN", NULL, NULL, NULL), SQLITE_OK);
  assert_int_equal(sqlite3_step(q), SQLITE_ROW);
  int64_t t0 = mono_now();
  maintain_all(f, T0);
  assert_true(mono_now() - t0 < 1000 * MS); /* not the 5 s busy timeout */
  assert_int_equal(wal_bytes(f), grown);
  sqlite3_finalize(q);
  assert_int_equal(sqlite3_exec(rd, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
  sqlite3_close(rd);
  maintain_all(f, T0);
  assert_int_equal(wal_bytes(f), 0);
  assert_int_equal(count_rows(f, "SELECT count(*) FROM spans"), 3000);
  /* The writer goes on as before. */
  write1(f, span_range(9, 3001, 3010, T0), 10);
  assert_true(wal_bytes(f) > 0);
  assert_int_equal(count_rows(f, "SELECT count(*) FROM spans"), 3010);
}

static int64_t fts_lag(fixture_t *f) {
  lt_store_stats_t ss;
  assert_int_equal(f->store->ops->stats(f->store, &ss), 0);
  return ss.fts_lag;
}

/* A trace with many spans keeps its span ids in the writer between
 * writes (no read-back for the duplicate check). The kept ids must follow
 * the database: a write that fails adds none of its ids, retention takes
 * them away. */
static void kept_span_ids_follow_the_database(void **st) {
  fixture_t *f = *st;
  lt_store_close(f->store);
  assert_int_equal(open_store(f, 3600 * SEC), 0);
  write1(f, span_range(7, 1, 1100, T0), 1100); /* kept from here on */
  write1(f, span_range(7, 1095, 1102, T0), 2); /* 1095-1100 stored before */
  /* Kept, not read back: a span taken out behind the writer's back (by
   * another connection; Lanterna itself never does) still counts as
   * stored for the trace. */
  char path[128];
  snprintf(path, sizeof path, "%s/lanterna.db", f->dir);
  sqlite3 *db;
  assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
  assert_int_equal(sqlite3_exec(db, "DELETE FROM spans WHERE id = (SELECT max(id) FROM spans)", NULL, NULL, NULL),
                   SQLITE_OK);
  write1(f, span_range(7, 1102, 1102, T0), 0);
  /* A write that fails after its spans went in: a trigger refuses the
   * trace's next run. Its ids must not stay known (and the failure drops
   * every kept set, so the span deleted above is stored again). */
  assert_int_equal(sqlite3_exec(db, "CREATE TRIGGER refuse BEFORE INSERT ON trace_runs BEGIN"
                                    " SELECT RAISE(ABORT, 'refused'); END", NULL, NULL, NULL), SQLITE_OK);
  lt_batch_t *refused = span_range(7, 1103, 1104, T0);
  assert_int_equal(lt_store_write(f->store, &refused, 1), LT_EDB);
  assert_int_equal(refused->n_inserted, 0);
  lt_batch_free(refused);
  assert_int_equal(sqlite3_exec(db, "DROP TRIGGER refuse", NULL, NULL, NULL), SQLITE_OK);
  sqlite3_close(db);
  write1(f, span_range(7, 1101, 1104, T0), 3);
  assert_int_equal(count_rows(f, "SELECT count(*) FROM spans"), 1104);
  /* Retention takes a trace in slices of at most 5,000 spans: between two
   * slices the trace is still there without its first spans, and those
   * sent again are stored again. */
  write1(f, span_range(8, 1, 5200, T0 - 1000 * SEC), 5200);
  bool more = false;
  assert_int_equal(lt_store_maintain(f->store, T0 + 7200 * SEC, &more), 0);
  assert_true(more);
  assert_int_equal(count_rows(f, "SELECT count(*) FROM spans"), 1104 + 200);
  write1(f, span_range(8, 1, 10, T0 - 1000 * SEC), 10);
  /* Then it takes everything (all of it is old); the same spans sent again
   * make a new trace and are all stored. */
  maintain_all(f, T0 + 7200 * SEC);
  assert_int_equal(count_rows(f, "SELECT count(*) FROM spans"), 0);
  write1(f, span_range(7, 1, 1104, T0 + 7000 * SEC), 1104);
  write1(f, span_range(7, 1100, 1105, T0 + 7000 * SEC), 1);
  assert_int_equal(count_rows(f, "SELECT count(DISTINCT span_id) FROM spans"), 1105);
  assert_int_equal(count_rows(f, "SELECT count(*) FROM spans"), 1105);
}

/* Retention takes an old trace in slices of at most 5,000 spans. A slice
 * whose budget ends exactly on a trace's last span must take the trace
 * (and its runs) too: kept without spans, its runs would cover ids that,
 * being the newest, the next write hands out again, and the trace view
 * would show those spans twice. */
static void retention_ending_on_a_traces_last_span_takes_the_trace(void **st) {
  fixture_t *f = *st;
  lt_store_close(f->store);
  assert_int_equal(open_store(f, 3600 * SEC), 0);
  write1(f, span_range(1, 1, 2, T0 + 7000 * SEC), 2); /* recent: ids 1-2 */
  write1(f, span_range(3, 1, 2, T0), 2);               /* old, first: ids 3-4 */
  write1(f, span_range(2, 1, 4997, T0 + SEC), 4997);   /* old: ids 5-5001; trace 3 (2 spans + its row)
                                                        * and these use the slice's budget of 5,000 */
  bool more = false;
  assert_int_equal(lt_store_maintain(f->store, T0 + 7200 * SEC, &more), 0);
  assert_int_equal(count_rows(f, "SELECT count(*) FROM spans"), 2);
  assert_int_equal(count_rows(f, "SELECT count(*) FROM traces"), 1);
  assert_int_equal(count_rows(f, "SELECT count(*) FROM trace_runs"), 1);
  lt_batch_t *b = lt_batch_new(1, 1 << 20);
  for (int sp = 1; sp <= 3; sp++) {
    char name[32];
    snprintf(name, sizeof name, "t2s%d", sp);
    add(b, 2, sp, 0, name, T0 + 7100 * SEC + sp, T0 + 7100 * SEC + sp + 1);
  }
  write1(f, b, 3); /* ids 3-5 */
  assert_string_equal(trace_span_names(f, 2, false), "t2s1,t2s2,t2s3");
  assert_string_equal(trace_span_names(f, 2, true), "t2s1,t2s2,t2s3");
  assert_int_equal(count_rows(f, "SELECT count(*) FROM trace_runs r JOIN trace_runs o ON o.trace_ref = r.trace_ref"
                                 " AND o.first_id > r.first_id AND o.first_id <= r.last_id"),
                   0);
}

static void trace_tree_logs_and_404(void **st) {
  fixture_t *f = *st;
  /* a's child arrives in a later write. */
  write1(f, tree_batch(1), 4);
  lt_batch_t *b = lt_batch_new(1, 1 << 20);
  add(b, 1, 4, 2, "a-child", T0 + SEC + 200 * MS, T0 + SEC + 300 * MS);
  write1(f, b, 1);
  uint8_t tid[16];
  tid_of(tid, 1);
  json_t *out = NULL;
  assert_int_equal(f->store->ops->trace_get(f->store, 1, tid, &out), 0);
  json_t *spans = json_object_get(out, "spans");
  assert_int_equal(json_array_size(spans), 5);
  const char *want[] = {"agent-run", "chat", "a-child", "chat", "orphan"};
  const int depth[] = {0, 1, 2, 1, 0};
  for (int i = 0; i < 5; i++) {
    json_t *s = json_array_get(spans, (size_t)i);
    assert_string_equal(json_string_value(json_object_get(s, "name")), want[i]);
    assert_int_equal(json_integer_value(json_object_get(s, "depth")), depth[i]);
    assert_int_equal(json_is_true(json_object_get(s, "orphan")), i == 4);
  }
  json_t *root = json_array_get(spans, 0), *a = json_array_get(spans, 1), *bb = json_array_get(spans, 3);
  assert_true(json_is_null(json_object_get(root, "parent_span_id")));
  assert_string_equal(json_string_value(json_object_get(a, "span_id")), "8000000000010002");
  assert_string_equal(json_string_value(json_object_get(a, "parent_span_id")), "8000000000010001");
  assert_string_equal(json_string_value(json_object_get(root, "input")), "What is the capital of France?");
  assert_string_equal(json_string_value(json_object_get(root, "kind")), "AGENT");
  assert_int_equal(json_integer_value(json_object_get(json_object_get(root, "metadata"), "k")), 1);
  assert_string_equal(json_string_value(json_object_get(json_object_get(root, "attributes"), "input.value")),
                      "What is the capital of France?");
  assert_string_equal(json_string_value(json_object_get(bb, "status_message")), "rate limited");
  assert_string_equal(json_string_value(json_object_get(bb, "cost_source")), "reported");
  assert_true(json_is_null(json_object_get(root, "cost_usd")));
  assert_string_equal(json_string_value(json_object_get(root, "cost_source")), "unknown");
  assert_int_equal(json_integer_value(json_object_get(a, "cache_read_tokens")), 7);
  assert_true(json_is_null(json_object_get(a, "reasoning_tokens")));
  assert_true(json_real_value(json_object_get(a, "ttft_ms")) == 50.0);
  assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(a, "input_messages"), 0),
                                                        "content")),
                      "hello there");
  /* Logs attach to their span in time order; others have none. */
  json_t *logs = json_object_get(a, "logs");
  assert_int_equal(json_array_size(logs), 2);
  assert_string_equal(json_string_value(json_object_get(json_array_get(logs, 0), "event_name")),
                      "gen_ai.user.message");
  assert_string_equal(json_string_value(json_object_get(json_object_get(json_array_get(logs, 1), "body"), "content")),
                      "hi back");
  assert_int_equal(json_integer_value(json_object_get(json_array_get(logs, 0), "severity_number")), 9);
  assert_int_equal(json_array_size(json_object_get(root, "logs")), 0);
  /* a has input messages of its own; its output messages come from the
   * gen_ai.choice log record. */
  assert_int_equal(json_array_size(json_object_get(a, "input_messages")), 1);
  json_t *om = json_array_get(json_object_get(a, "output_messages"), 0);
  assert_string_equal(json_string_value(json_object_get(om, "role")), "assistant");
  assert_string_equal(json_string_value(json_object_get(om, "content")), "hi back");
  assert_true(json_is_null(json_object_get(root, "output_messages")));
  assert_int_equal(json_integer_value(json_object_get(json_object_get(out, "trace"), "span_count")), 5);
  json_decref(out);
  tid_of(tid, 2);
  assert_int_equal(f->store->ops->trace_get(f->store, 1, tid, &out), LT_ENOTFOUND);
}

static void operation_details_log_fills_messages(void **st) {
  fixture_t *f = *st;
  lt_batch_t *b = lt_batch_new(1, 1 << 20);
  add_llm(b, 4, 1, 0, "gpt-4o-mini", T0, T0 + MS, 1, 1, -1);
  lt_log_t *lg = lt_batch_add_log(b);
  tid_of(lg->trace_id, 4);
  sid_of(lg->span_id, 4, 1);
  lg->has_trace = lg->has_span = true;
  lg->time_ns = T0 + 1;
  lg->event_name = S(b, "gen_ai.client.inference.operation.details");
  /* The messages as model/semconv.c normalises this record at ingest; the
   * store keeps them and folds them into the span, in time order. */
  lg->input_messages = S(b, "[{\"role\":\"system\",\"content\":\"Be brief.\"},"
                            "{\"role\":\"user\",\"content\":\"Capital of France?\"}]");
  lg->output_messages = S(b, "[{\"role\":\"assistant\",\"content\":\"Paris.\",\"tool_calls\":"
                             "[{\"id\":\"c1\",\"name\":\"lookup\",\"arguments\":\"{\\\"q\\\":1}\"}]}]");
  write1(f, b, 1);
  uint8_t tid[16];
  tid_of(tid, 4);
  json_t *res = NULL;
  assert_int_equal(f->store->ops->trace_get(f->store, 1, tid, &res), 0);
  json_t *sp = json_array_get(json_object_get(res, "spans"), 0);
  char *in = json_dumps(json_object_get(sp, "input_messages"), JSON_COMPACT);
  char *out = json_dumps(json_object_get(sp, "output_messages"), JSON_COMPACT);
  assert_string_equal(in, "[{\"role\":\"system\",\"content\":\"Be brief.\"},"
                          "{\"role\":\"user\",\"content\":\"Capital of France?\"}]");
  assert_string_equal(out, "[{\"role\":\"assistant\",\"content\":\"Paris.\",\"tool_calls\":"
                           "[{\"id\":\"c1\",\"name\":\"lookup\",\"arguments\":\"{\\\"q\\\":1}\"}]}]");
  free(in);
  free(out);
  json_decref(res);
}

static void logs_before_spans_attach(void **st) {
  fixture_t *f = *st;
  lt_batch_t *b = tree_batch(3);
  lt_batch_t *logs = lt_batch_new(1, 1 << 20);
  for (size_t i = 0; i < b->n_logs; i++) {
    lt_log_t *lg = lt_batch_add_log(logs);
    *lg = b->logs[i];
    lg->event_name = S(logs, "early");
    lg->body = S(logs, "\"plain\"");
    lg->attributes = LT_STR_NULL;
  }
  b->n_logs = 0;
  assert_int_equal(lt_store_write(f->store, &logs, 1), 0);
  lt_batch_free(logs);
  write1(f, b, 4);
  uint8_t tid[16];
  tid_of(tid, 3);
  json_t *out = NULL;
  assert_int_equal(f->store->ops->trace_get(f->store, 1, tid, &out), 0);
  json_t *a = json_array_get(json_object_get(out, "spans"), 1);
  json_t *lg = json_array_get(json_object_get(a, "logs"), 0);
  assert_string_equal(json_string_value(json_object_get(lg, "event_name")), "early");
  assert_string_equal(json_string_value(json_object_get(lg, "body")), "plain");
  assert_int_equal(json_object_size(json_object_get(lg, "attributes")), 0);
  json_decref(out);
}

/* Four traces with distinct attributes (like the API's filter table). */
static void seed_filters(fixture_t *f) {
  struct {
    const char *name, *user, *session, *model, *tags;
    lt_status_t status;
    int64_t dur_ms, cost;
    const char *input;
  } t[] = {
    {"support-chat", "alice", "sess-A", "gpt-4o-mini", "[\"prod\"]", LT_STATUS_OK, 50, 2000000, "reset my password"},
    {"support-chat", "bob", "sess-A", "claude-3-5-sonnet", "[\"prod\",\"escalated\"]", LT_STATUS_ERROR, 1500,
     50000000, "my invoice is wrong"},
    {"summarize", "alice", NULL, "gpt-4o", "[\"batch\"]", LT_STATUS_OK, 800, -1, "quarterly report about zebras"},
    {"summarize", "carol", "sess-B", "gpt-4o-mini", NULL, LT_STATUS_UNSET, 10, 100000, "summarize this tweet"},
  };
  lt_batch_t *b = lt_batch_new(1, 1 << 20);
  for (int i = 0; i < 4; i++) {
    int64_t start = T0 + (i + 1) * SEC;
    lt_span_t *r = add(b, 100 + i, 1, 0, t[i].name, start, start + t[i].dur_ms * MS);
    r->kind = LT_KIND_CHAIN;
    r->status = t[i].status;
    r->user_id = S(b, t[i].user);
    if (t[i].session) r->session_id = S(b, t[i].session);
    if (t[i].tags) r->tags = S(b, t[i].tags);
    r->input = S(b, t[i].input);
    lt_span_t *l = add_llm(b, 100 + i, 2, 1, t[i].model, start + MS, start + t[i].dur_ms * MS / 2, 10, 5, t[i].cost);
    l->status = t[i].status;
  }
  write1(f, b, 8);
  maintain_all(f, T0 + 100 * SEC);
}

static char *list_names(fixture_t *f, lt_query_t *q) {
  json_t *res = traces(f, q);
  static char out[4096];
  snprintf(out, sizeof out, "%s", names(res, "user_id"));
  json_decref(res);
  return out;
}

static void traces_list_filters(void **st) {
  fixture_t *f = *st;
  seed_filters(f);
  lt_query_t q;
#define CHECK(setup, expect)         \
  do {                               \
    lt_query_init(&q, 1);            \
    setup;                           \
    assert_string_equal(list_names(f, &q), expect); \
  } while (0)
  CHECK((void)0, "carol,alice,bob,alice");
  CHECK(q.ascending = true, "alice,bob,alice,carol");
  CHECK(q.name = LT_STR("support-chat"), "bob,alice");
  CHECK(q.name = LT_STR("nope"), "");
  CHECK(q.user_id = LT_STR("alice"), "alice,alice");
  CHECK(q.session_id = LT_STR("sess-A"), "bob,alice");
  CHECK(q.model = LT_STR("gpt-4o-mini"), "carol,alice");
  CHECK(q.model = LT_STR("gpt-4o"), "alice");
  CHECK(q.status = LT_STATUS_ERROR, "bob");
  CHECK(q.status = LT_STATUS_UNSET, "carol");
  CHECK(q.tag = LT_STR("prod"), "bob,alice");
  CHECK(q.tag = LT_STR("escalated"), "bob");
  CHECK(q.min_duration_ns = 500 * MS, "alice,bob");
  CHECK((q.user_id = LT_STR("alice"), q.name = LT_STR("summarize")), "alice");
  CHECK((q.from_ns = T0 + 2 * SEC, q.to_ns = T0 + 4 * SEC), "alice,bob");
  CHECK((q.from_ns = T0 + 3 * SEC, q.to_ns = T0 + 3 * SEC + 1), "alice");
  CHECK(q.q = LT_STR("zebras"), "alice");
  CHECK(q.q = LT_STR("invoice OR password"), "bob,alice");
  CHECK(q.q = LT_STR("quokka"), "");
  CHECK(q.sort = LT_SORT_DURATION, "bob,alice,alice,carol");
  CHECK((q.sort = LT_SORT_DURATION, q.ascending = true), "carol,alice,alice,bob");
  /* Unknown cost sorts below every known one. */
  CHECK(q.sort = LT_SORT_COST, "bob,alice,carol,alice");
  CHECK((q.sort = LT_SORT_COST, q.ascending = true), "alice,carol,alice,bob");
#undef CHECK
}

/* Typed text that is not FTS5 syntax is searched as its words; FTS5
 * syntax still works; a blank q is no filter. */
static void search_text_that_is_not_fts5_is_words(void **st) {
  fixture_t *f = *st;
  seed_filters(f);
  struct {
    const char *q;
    int traces; /* how many of the four match */
  } cases[] = {
      {"\"unbalanced", 0}, {"AND", 0}, {"nocolumn: x", 0}, {"a NEAR(", 0}, {"*", 0},
      {"invoice\"", 1},              /* a stray quote */
      {"-zebras", 1},                 /* a leading minus */
      {"reset my:password", 1},       /* a colon */
      {"my invoice", 1},              /* valid FTS5: both words */
      {"password OR zebras", 2},      /* valid FTS5: either */
      {"   ", 4},                     /* blank: every trace */
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    lt_query_t q;
    lt_query_init(&q, 1);
    q.q = lt_str_from(cases[i].q);
    json_t *t = NULL, *sp = NULL;
    assert_int_equal(f->store->ops->traces_list(f->store, &q, &t), 0);
    assert_int_equal(f->store->ops->spans_list(f->store, &q, &sp), 0);
    if ((int)json_array_size(json_object_get(t, "data")) != cases[i].traces)
      fail_msg("q=%s: %zu traces, want %d", cases[i].q, json_array_size(json_object_get(t, "data")), cases[i].traces);
    json_decref(t);
    json_decref(sp);
  }
}

static void bad_cursors_are_einval(void **st) {
  fixture_t *f = *st;
  seed_filters(f);
  lt_query_t q;
  json_t *out = NULL;
  const char *cursors[] = {"not-a-cursor", "eyJ4IjoxfQ", "0102", "zz0000000000000000000000000000000000"};
  for (size_t i = 0; i < sizeof cursors / sizeof cursors[0]; i++) {
    lt_query_init(&q, 1);
    q.cursor = lt_str_from(cursors[i]);
    assert_int_equal(f->store->ops->traces_list(f->store, &q, &out), LT_EINVAL);
    assert_int_equal(f->store->ops->spans_list(f->store, &q, &out), LT_EINVAL);
    assert_int_equal(f->store->ops->sessions_list(f->store, &q, &out), LT_EINVAL);
  }
  /* A cursor from one ordering is refused by another. */
  lt_query_init(&q, 1);
  q.limit = 1;
  json_t *page = traces(f, &q);
  const char *c = json_string_value(json_object_get(page, "next_cursor"));
  assert_non_null(c);
  lt_query_init(&q, 1);
  q.cursor = lt_str_from(c);
  q.sort = LT_SORT_COST;
  assert_int_equal(f->store->ops->traces_list(f->store, &q, &out), LT_EINVAL);
  json_decref(page);
}

/* Follows next_cursor to the end; checks every id shows up exactly once and
 * the sort order holds across pages. */
static void paginate(fixture_t *f, lt_sort_t sort, bool asc, int limit, int total, bool spans) {
  lt_query_t q;
  lt_query_init(&q, 1);
  q.sort = sort;
  q.ascending = asc;
  q.limit = limit;
  char seen[200] = {0};
  char cursor[128] = "";
  int count = 0, pages = 0;
  double last = asc ? -1e30 : 1e30;
  for (;;) {
    json_t *res = NULL;
    q.cursor = lt_str_from(cursor);
    int rc = spans ? f->store->ops->spans_list(f->store, &q, &res) : f->store->ops->traces_list(f->store, &q, &res);
    assert_int_equal(rc, 0);
    pages++;
    size_t i;
    json_t *row;
    json_array_foreach(json_object_get(res, "data"), i, row) {
      const char *id = json_string_value(json_object_get(row, spans ? "span_id" : "trace_id"));
      int n = (int)strtol(id + strlen(id) - 2, NULL, 16);
      assert_true(n >= 0 && n < 200);
      assert_int_equal(seen[n], 0);
      seen[n] = 1;
      count++;
      double v = sort == LT_SORT_DURATION ? json_real_value(json_object_get(row, "duration_ms"))
                                          : (double)json_integer_value(json_object_get(row, "start_ns"));
      assert_true(asc ? v >= last : v <= last);
      last = v;
    }
    json_t *next = json_object_get(res, "next_cursor");
    if (json_is_null(next)) {
      json_decref(res);
      break;
    }
    snprintf(cursor, sizeof cursor, "%s", json_string_value(next));
    json_decref(res);
    assert_true(pages < 100);
  }
  assert_int_equal(count, total);
  assert_int_equal(pages, (total + limit - 1) / limit);
}

static void cursor_pagination(void **st) {
  fixture_t *f = *st;
  lt_batch_t *b = lt_batch_new(1, 1 << 20);
  /* 45 one-span traces; durations repeat every 7 (ties), two equal starts. */
  for (int i = 0; i < 45; i++) {
    int64_t start = T0 + (i == 44 ? 43 : i) * MS;
    add(b, i, i, 0, "page", start, start + (i % 7) * MS);
  }
  write1(f, b, 45);
  paginate(f, LT_SORT_START, false, 10, 45, false);
  paginate(f, LT_SORT_START, true, 10, 45, false);
  paginate(f, LT_SORT_DURATION, false, 7, 45, false);
  paginate(f, LT_SORT_DURATION, true, 45, 45, false);
  paginate(f, LT_SORT_COST, false, 4, 45, false);
  paginate(f, LT_SORT_START, false, 10, 45, true);
  paginate(f, LT_SORT_DURATION, true, 8, 45, true);
}

static void spans_list_filters(void **st) {
  fixture_t *f = *st;
  seed_filters(f);
  write1(f, tree_batch(1), 4);
  lt_query_t q;
  json_t *res = NULL;
  lt_query_init(&q, 1);
  q.kind = LT_KIND_LLM;
  q.from_ns = T0 + 2 * SEC;
  assert_int_equal(f->store->ops->spans_list(f->store, &q, &res), 0);
  assert_int_equal(json_array_size(json_object_get(res, "data")), 3);
  json_t *row = json_array_get(json_object_get(res, "data"), 0);
  assert_string_equal(json_string_value(json_object_get(row, "kind")), "LLM");
  assert_null(json_object_get(row, "attributes"));
  assert_null(json_object_get(row, "logs"));
  assert_null(json_object_get(row, "input_messages"));
  assert_non_null(json_object_get(row, "input"));
  json_decref(res);

  lt_query_init(&q, 1);
  q.has_trace_id = true;
  tid_of(q.trace_id, 1);
  assert_int_equal(f->store->ops->spans_list(f->store, &q, &res), 0);
  assert_int_equal(json_array_size(json_object_get(res, "data")), 4);
  json_decref(res);

  lt_query_init(&q, 1);
  q.model = LT_STR("gpt-4o-2024-08-06");
  assert_int_equal(f->store->ops->spans_list(f->store, &q, &res), 0);
  assert_string_equal(names(res, "status"), "error");
  json_decref(res);

  lt_query_init(&q, 1);
  q.status = LT_STATUS_ERROR;
  q.kind = LT_KIND_CHAIN;
  assert_int_equal(f->store->ops->spans_list(f->store, &q, &res), 0);
  assert_string_equal(names(res, "user_id"), "bob");
  json_decref(res);

  lt_query_init(&q, 1);
  q.q = LT_STR("zebras");
  assert_int_equal(f->store->ops->spans_list(f->store, &q, &res), 0);
  assert_string_equal(names(res, "name"), "summarize");
  json_decref(res);

  lt_query_init(&q, 1);
  q.tag = LT_STR("beta");
  assert_int_equal(f->store->ops->spans_list(f->store, &q, &res), 0);
  assert_string_equal(names(res, "name"), "agent-run");
  json_decref(res);
}

/* A list with q says whether the project has spans the full-text index
 * does not hold yet; another project's backlog does not count. Lists
 * without q say nothing. */
static bool search_complete(fixture_t *f, int64_t project, bool spans) {
  lt_query_t q;
  lt_query_init(&q, project);
  q.q = LT_STR("walrus");
  json_t *res = NULL;
  if (spans) assert_int_equal(f->store->ops->spans_list(f->store, &q, &res), 0);
  else assert_int_equal(f->store->ops->traces_list(f->store, &q, &res), 0);
  json_t *c = json_object_get(res, "search_complete");
  assert_true(json_is_boolean(c));
  bool v = json_is_true(c);
  json_decref(res);
  return v;
}

static void lists_say_when_search_is_behind(void **st) {
  fixture_t *f = *st;
  lt_batch_t *b = lt_batch_new(1, 1 << 20);
  add(b, 1, 1, 0, "a", T0, T0 + MS)->input = S(b, "a walrus");
  write1(f, b, 1);
  assert_false(search_complete(f, 1, false));
  assert_false(search_complete(f, 1, true));
  maintain_all(f, T0);
  assert_true(search_complete(f, 1, false));
  assert_true(search_complete(f, 1, true));
  b = lt_batch_new(2, 1 << 20);
  add(b, 2, 1, 0, "b", T0, T0 + MS)->input = S(b, "another walrus");
  write1(f, b, 1);
  assert_true(search_complete(f, 1, true));
  assert_false(search_complete(f, 2, true));
  lt_query_t q;
  lt_query_init(&q, 1);
  json_t *res = traces(f, &q);
  assert_null(json_object_get(res, "search_complete"));
  json_decref(res);
}

static void span_list_cuts_long_text(void **st) {
  fixture_t *f = *st;
  lt_batch_t *b = lt_batch_new(1, 1 << 20);
  lt_span_t *s = add(b, 9, 1, 0, "long", T0, T0 + MS);
  char text[3001];
  /* Two-byte characters: the cut must not split one. */
  for (int i = 0; i < 1500; i++) memcpy(text + 2 * i, "\xc3\xa9", 2);
  text[3000] = 0;
  s->input = S(b, text);
  write1(f, b, 1);
  lt_query_t q;
  lt_query_init(&q, 1);
  json_t *res = NULL;
  assert_int_equal(f->store->ops->spans_list(f->store, &q, &res), 0);
  const char *in = json_string_value(json_object_get(json_array_get(json_object_get(res, "data"), 0), "input"));
  assert_int_equal(strlen(in), 2000);
  json_decref(res);
  uint8_t tid[16];
  tid_of(tid, 9);
  assert_int_equal(f->store->ops->trace_get(f->store, 1, tid, &res), 0);
  in = json_string_value(json_object_get(json_array_get(json_object_get(res, "spans"), 0), "input"));
  assert_int_equal(strlen(in), 3000);
  json_decref(res);
}

static void sessions(void **st) {
  fixture_t *f = *st;
  seed_filters(f);
  lt_query_t q;
  lt_query_init(&q, 1);
  json_t *res = NULL;
  assert_int_equal(f->store->ops->sessions_list(f->store, &q, &res), 0);
  assert_string_equal(names(res, "session_id"), "sess-B,sess-A");
  json_t *a = json_array_get(json_object_get(res, "data"), 1);
  assert_int_equal(json_integer_value(json_object_get(a, "trace_count")), 2);
  assert_int_equal(json_integer_value(json_object_get(a, "first_start_ns")), T0 + SEC);
  assert_int_equal(json_integer_value(json_object_get(a, "last_end_ns")), T0 + 2 * SEC + 1500 * MS);
  assert_int_equal(json_integer_value(json_object_get(a, "total_tokens")), 30);
  assert_int_equal(json_integer_value(json_object_get(a, "error_count")), 2);
  assert_true(json_real_value(json_object_get(a, "cost_usd")) > 0.05199 &&
              json_real_value(json_object_get(a, "cost_usd")) < 0.05201);
  json_decref(res);

  lt_query_init(&q, 1);
  q.user_id = LT_STR("carol");
  assert_int_equal(f->store->ops->sessions_list(f->store, &q, &res), 0);
  assert_string_equal(names(res, "session_id"), "sess-B");
  json_decref(res);

  /* One per page, following the cursor. */
  lt_query_init(&q, 1);
  q.limit = 1;
  assert_int_equal(f->store->ops->sessions_list(f->store, &q, &res), 0);
  assert_string_equal(names(res, "session_id"), "sess-B");
  char cur[128];
  snprintf(cur, sizeof cur, "%s", json_string_value(json_object_get(res, "next_cursor")));
  json_decref(res);
  q.cursor = lt_str_from(cur);
  assert_int_equal(f->store->ops->sessions_list(f->store, &q, &res), 0);
  assert_string_equal(names(res, "session_id"), "sess-A");
  assert_true(json_is_null(json_object_get(res, "next_cursor")));
  json_decref(res);

  assert_int_equal(f->store->ops->session_get(f->store, 1, LT_STR("sess-A"), &res), 0);
  assert_string_equal(json_string_value(json_object_get(res, "session_id")), "sess-A");
  json_t *tr = json_object_get(res, "traces");
  assert_int_equal(json_array_size(tr), 2);
  assert_string_equal(json_string_value(json_object_get(json_array_get(tr, 0), "user_id")), "alice");
  assert_string_equal(json_string_value(json_object_get(json_array_get(tr, 1), "status")), "error");
  json_decref(res);
  assert_int_equal(f->store->ops->session_get(f->store, 1, LT_STR("no-such"), &res), LT_ENOTFOUND);
  assert_int_equal(f->store->ops->session_get(f->store, 2, LT_STR("sess-A"), &res), LT_ENOTFOUND);
}

static void projects_and_keys(void **st) {
  fixture_t *f = *st;
  const lt_store_ops_t *o = f->store->ops;
  int64_t acme = 0, id = 0, n = -1;
  assert_int_equal(o->project_create(f->store, "acme", &acme), 0);
  assert_true(acme > 1);
  assert_int_equal(o->project_create(f->store, "acme", &id), LT_EEXISTS);
  assert_int_equal(o->project_find(f->store, "acme", &id), 0);
  assert_int_equal(id, acme);
  assert_int_equal(o->project_find(f->store, "nope", &id), LT_ENOTFOUND);
  json_t *list = NULL;
  assert_int_equal(o->project_list(f->store, &list), 0);
  assert_int_equal(json_array_size(list), 2);
  assert_string_equal(json_string_value(json_object_get(json_array_get(list, 1), "name")), "acme");
  json_decref(list);

  assert_int_equal(o->key_count(f->store, &n), 0);
  assert_int_equal(n, 0);
  assert_int_equal(o->key_create(f->store, acme, "pk-lt-1", "hash1", &id), 0);
  assert_int_equal(o->key_create(f->store, 1, "pk-lt-2", "hash2", &id), 0);
  assert_int_equal(o->key_create(f->store, 1, "pk-lt-2", "hash3", &id), LT_EEXISTS);
  assert_int_equal(o->key_create(f->store, 999, "pk-lt-4", "hash4", &id), LT_ENOTFOUND);
  assert_int_equal(o->key_count(f->store, &n), 0);
  assert_int_equal(n, 2);
  lt_key_info_t k;
  assert_int_equal(o->key_find(f->store, "hash1", &k), 0);
  assert_int_equal(k.project_id, acme);
  assert_string_equal(k.public_key, "pk-lt-1");
  assert_string_equal(k.project_name, "acme");
  assert_int_equal(k.revoked_ns, 0);
  assert_true(k.created_ns > 0);
  assert_int_equal(o->key_find(f->store, "nohash", &k), LT_ENOTFOUND);

  assert_int_equal(o->key_list(f->store, acme, &list), 0);
  assert_int_equal(json_array_size(list), 1);
  json_t *row = json_array_get(list, 0);
  assert_string_equal(json_string_value(json_object_get(row, "public_key")), "pk-lt-1");
  assert_string_equal(json_string_value(json_object_get(row, "project")), "acme");
  assert_true(json_is_null(json_object_get(row, "revoked_ns")));
  json_decref(list);
  assert_int_equal(o->key_list(f->store, 0, &list), 0);
  assert_int_equal(json_array_size(list), 2);
  json_decref(list);

  assert_int_equal(o->key_revoke(f->store, "pk-lt-1"), 0);
  assert_int_equal(o->key_revoke(f->store, "pk-lt-nope"), LT_ENOTFOUND);
  assert_int_equal(o->key_find(f->store, "hash1", &k), 0);
  assert_true(k.revoked_ns > 0);
  assert_int_equal(o->key_count(f->store, &n), 0);
  assert_int_equal(n, 1);
  assert_int_equal(o->key_list(f->store, acme, &list), 0);
  assert_true(json_is_integer(json_object_get(json_array_get(list, 0), "revoked_ns")));
  json_decref(list);
}

static void projects_are_isolated(void **st) {
  fixture_t *f = *st;
  int64_t b_id;
  assert_int_equal(f->store->ops->project_create(f->store, "b", &b_id), 0);
  write1(f, tree_batch(1), 4);
  /* The same trace and span ids in project B are B's own. */
  lt_batch_t *bb = lt_batch_new(b_id, 1 << 20);
  add(bb, 1, 1, 0, "b-root", T0, T0 + MS);
  write1(f, bb, 1);
  maintain_all(f, T0);
  uint8_t tid[16];
  tid_of(tid, 1);
  json_t *res = NULL;
  assert_int_equal(f->store->ops->trace_get(f->store, b_id, tid, &res), 0);
  assert_int_equal(json_array_size(json_object_get(res, "spans")), 1);
  json_decref(res);
  lt_query_t q;
  lt_query_init(&q, b_id);
  res = traces(f, &q);
  assert_string_equal(names(res, "name"), "b-root");
  json_decref(res);
  q.q = LT_STR("France");
  res = traces(f, &q);
  assert_int_equal(json_array_size(json_object_get(res, "data")), 0);
  json_decref(res);
  assert_int_equal(f->store->ops->spans_list(f->store, &q, &res), 0);
  assert_int_equal(json_array_size(json_object_get(res, "data")), 0);
  json_decref(res);
  lt_query_init(&q, b_id);
  q.model = LT_STR("gpt-4o");
  res = traces(f, &q);
  assert_int_equal(json_array_size(json_object_get(res, "data")), 0);
  json_decref(res);
  lt_query_init(&q, b_id);
  assert_int_equal(f->store->ops->sessions_list(f->store, &q, &res), 0);
  assert_int_equal(json_array_size(json_object_get(res, "data")), 0);
  json_decref(res);
  /* Project A still sees its own. */
  lt_query_init(&q, 1);
  q.q = LT_STR("France");
  res = traces(f, &q);
  assert_string_equal(names(res, "name"), "agent-run");
  json_decref(res);
}

/* The store's file, read-only, with sql prepared on it. */
static sqlite3 *open_ro(fixture_t *f, const char *sql, sqlite3_stmt **q) {
  char path[128];
  snprintf(path, sizeof path, "%s/lanterna.db", f->dir);
  sqlite3 *db;
  assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
  /* The full-text index, as the store's readers see it. */
  char attach[192];
  snprintf(attach, sizeof attach, "ATTACH '%s/lanterna.search.db' AS search", f->dir);
  assert_int_equal(sqlite3_exec(db, attach, NULL, NULL, NULL), SQLITE_OK);
  if (sqlite3_prepare_v2(db, sql, -1, q, NULL) != SQLITE_OK) fail_msg("%s: %s", sql, sqlite3_errmsg(db));
  return db;
}

static int64_t count_rows(fixture_t *f, const char *sql) {
  sqlite3_stmt *q;
  sqlite3 *db = open_ro(f, sql, &q);
  assert_int_equal(sqlite3_step(q), SQLITE_ROW);
  int64_t n = sqlite3_column_int64(q, 0);
  sqlite3_finalize(q);
  sqlite3_close(db);
  return n;
}

/* FTS5's own check of every full-text partition. */
static void fts_integrity(fixture_t *f) {
  char path[128];
  snprintf(path, sizeof path, "%s/lanterna.search.db", f->dir);
  sqlite3 *db;
  assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
  sqlite3_stmt *st;
  assert_int_equal(sqlite3_prepare_v2(db, "SELECT id FROM parts", -1, &st, NULL), SQLITE_OK);
  int parts = 0;
  while (sqlite3_step(st) == SQLITE_ROW) {
    char sql[128];
    long long id = sqlite3_column_int64(st, 0);
    snprintf(sql, sizeof sql, "INSERT INTO fts_%lld(fts_%lld) VALUES('integrity-check')", id, id);
    char *err = NULL;
    int src = sqlite3_exec(db, sql, NULL, NULL, &err);
    if (src != SQLITE_OK) fprintf(stderr, "integrity-check: %s\n", err ? err : "?");
    assert_int_equal(src, SQLITE_OK);
    sqlite3_free(err);
    parts++;
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  assert_true(parts > 0);
}

/* Spans that are stored and match term in the full-text index (entries of
 * deleted spans stay until their partition goes). */
static int64_t live_matches(fixture_t *f, const char *term) {
  char sql[256];
  snprintf(sql, sizeof sql, "SELECT count(*) FROM spans WHERE id IN (SELECT rowid FROM search.fts_1 WHERE fts_1 MATCH '%s')",
           term);
  return count_rows(f, sql);
}

static void retention_deletes_old_rows(void **st) {
  fixture_t *f = *st;
  lt_store_close(f->store);
  assert_int_equal(open_store(f, 3600 * SEC), 0);
  int64_t now = T0 + 7200 * SEC;
  /* 30 old traces (with text, logs, points) and 2 recent ones. */
  for (int i = 0; i < 30; i++) {
    lt_batch_t *b = tree_batch(10 + i);
    lt_point_t *p = lt_batch_add_point(b);
    p->name = S(b, "m");
    p->time_ns = T0;
    p->value = 1;
    write1(f, b, 4);
  }
  maintain_all(f, T0); /* index everything while it is still young */
  lt_batch_t *b = tree_batch(1);
  for (int i = 0; i < 4; i++) b->spans[i].start_ns += 7000 * SEC, b->spans[i].end_ns += 7000 * SEC;
  for (int i = 0; i < 2; i++) b->logs[i].time_ns += 7000 * SEC;
  write1(f, b, 4);
  b = lt_batch_new(1, 1 << 20);
  lt_span_t *s = add(b, 2, 1, 0, "fresh", now - 10 * SEC, now);
  s->input = S(b, "France fresh");
  write1(f, b, 1);
  /* An old score and a recent one: retention deletes by the score's time. */
  lt_score_t sc[2];
  memset(sc, 0, sizeof sc);
  for (int i = 0; i < 2; i++) {
    sc[i].has_trace = true;
    tid_of(sc[i].trace_id, 10 + i);
    sc[i].name = LT_STR("quality");
    sc[i].data_type = LT_SCORE_NUMERIC;
    sc[i].value = 0.5;
    sc[i].source = LT_SCORE_API;
    sc[i].time_ns = i == 0 ? T0 : now - SEC;
  }
  lt_score_result_t sres[2];
  assert_int_equal(f->store->ops->score_add(f->store, 1, sc, 2, sres), 0);
  lt_store_stats_t ss;
  assert_int_equal(f->store->ops->stats(f->store, &ss), 0);
  assert_int_equal(ss.spans, 125);
  assert_int_equal(ss.points, 30);
  assert_int_equal(ss.fts_lag, 5);

  maintain_all(f, now);
  assert_int_equal(f->store->ops->stats(f->store, &ss), 0);
  assert_int_equal(ss.spans, 5);
  assert_int_equal(ss.traces, 2);
  assert_int_equal(ss.logs, 2);
  assert_int_equal(ss.points, 0);
  assert_int_equal(ss.fts_lag, 0);
  assert_int_equal(count_rows(f, "SELECT count(*) FROM spans"), 5);
  assert_int_equal(count_rows(f, "SELECT count(*) FROM trace_models"), 3);
  /* The chunks of the expired traces went with them (trace 1: one chunk;
   * trace 2's lone span is inline). */
  assert_int_equal(count_rows(f, "SELECT count(*) FROM payload_chunks"), 1);
  assert_int_equal(count_rows(f, "SELECT count(*) FROM trace_runs"), 2);
  assert_int_equal(count_rows(f, "SELECT count(*) FROM scores"), 1);
  assert_int_equal(live_matches(f, "France"), 2);
  fts_integrity(f);
  uint8_t tid[16];
  tid_of(tid, 10);
  json_t *res = NULL;
  assert_int_equal(f->store->ops->trace_get(f->store, 1, tid, &res), LT_ENOTFOUND);
  lt_query_t q;
  lt_query_init(&q, 1);
  q.q = LT_STR("France");
  res = traces(f, &q);
  assert_int_equal(json_array_size(json_object_get(res, "data")), 2);
  json_decref(res);

  /* Everything expires: new spans must still be indexed afterwards. */
  maintain_all(f, now + 10000 * SEC);
  assert_int_equal(count_rows(f, "SELECT count(*) FROM spans"), 0);
  assert_int_equal(count_rows(f, "SELECT count(*) FROM trace_runs"), 0);
  b = lt_batch_new(1, 1 << 20);
  s = add(b, 3, 1, 0, "after", now + 10000 * SEC, now + 10000 * SEC + 1);
  s->input = S(b, "France again");
  write1(f, b, 1);
  maintain_all(f, now + 10000 * SEC);
  assert_int_equal(live_matches(f, "France"), 1);
  fts_integrity(f);
}

/* Without search_by_hand the index has a thread of its own: spans become
 * searchable with nobody asking. */
static void search_thread_indexes_on_its_own(void **st) {
  fixture_t *f = *st;
  lt_store_close(f->store);
  lt_store_config_t sc = {.data_dir = f->dir, .durability = LT_DURABILITY_PROCESS, .read_connections = 2,
                          .cache_bytes = 4u << 20};
  assert_int_equal(lt_store_open(&lt_store_sqlite_ops, &sc, &f->store), 0);
  for (int t = 1; t <= 3; t++) write1(f, tree_batch(t), 4);
  int64_t lag = -1;
  for (int i = 0; i < 2000 && lag != 0; i++) { /* up to 20 s on a loaded machine */
    lag = fts_lag(f);
    if (lag) usleep(10000);
  }
  assert_int_equal(lag, 0);
  assert_int_equal(found(f, false, "France", 0), 3);
}

static int64_t search_tables(fixture_t *f) {
  return count_rows(f, "SELECT count(*) FROM search.sqlite_master WHERE type = 'table' AND name GLOB 'fts_*'"
                       " AND name NOT GLOB 'fts_*_*'");
}

/* The index is split by span id; a partition goes once retention has taken
 * every span in it, never while one is left, and never the one being
 * filled. Lists with q read every partition. */
static void search_partitions_go_with_their_spans(void **st) {
  fixture_t *f = *st;
  lt_store_close(f->store);
  assert_int_equal(open_store(f, 3600 * SEC), 0);
  LT__SQ(f->store)->search_part_spans = 8;
  int64_t now = T0 + 7200 * SEC;
  /* Traces 1-4 old (span ids 1-16: partitions of 8), 5 recent. */
  for (int t = 1; t <= 5; t++) {
    lt_batch_t *b = tree_batch(t);
    if (t == 5)
      for (int i = 0; i < 4; i++) b->spans[i].start_ns += 7000 * SEC, b->spans[i].end_ns += 7000 * SEC;
    write1(f, b, 4);
  }
  assert_int_equal(lt__sq_search_catch_up(LT__SQ(f->store)), 0);
  assert_int_equal(search_tables(f), 3);
  assert_int_equal(found(f, false, "France", 0), 5);
  assert_int_equal(found(f, true, "France", 0), 5);
  /* Retention takes traces 1-4: the two full partitions go; the third,
   * being filled, stays with trace 5. */
  maintain_all(f, now);
  assert_int_equal(count_rows(f, "SELECT count(*) FROM spans"), 4);
  assert_int_equal(search_tables(f), 1);
  assert_int_equal(count_rows(f, "SELECT min(id) FROM search.parts"), 3);
  fts_integrity(f);
  assert_int_equal(found(f, false, "France", 0), 1);
}

/* More partitions than one compound SELECT may hold (SQLite: 500 terms):
 * the union is grouped; a start bound leaves out the partitions that
 * cannot hold a span starting in the range. */
static void search_reads_many_partitions(void **st) {
  fixture_t *f = *st;
  LT__SQ(f->store)->search_part_spans = 1;
  for (int t = 1; t <= 130; t++) write1(f, tree_batch(t), 4); /* 520 spans, one partition each */
  assert_int_equal(lt__sq_search_catch_up(LT__SQ(f->store)), 0);
  assert_int_equal(search_tables(f), 520);
  assert_int_equal(found(f, false, "France", 0), 130);
  assert_int_equal(found(f, true, "France", 0), 130);
  assert_int_equal(found(f, false, "France", T0 + 100 * SEC), 31); /* traces 100-130 */
}

/* Once retention has taken the newest spans, new spans get ids above every
 * id handed out before (even across a restart): the index still holds the
 * old ids, and must not lend their text to new spans. */
static void span_ids_are_never_handed_out_twice(void **st) {
  fixture_t *f = *st;
  lt_store_close(f->store);
  assert_int_equal(open_store(f, 3600 * SEC), 0);
  int64_t now = T0 + 7200 * SEC;
  write1(f, tree_batch(1), 4); /* ids 1-4, "France" */
  maintain_all(f, T0);
  maintain_all(f, now); /* all expired */
  assert_int_equal(count_rows(f, "SELECT count(*) FROM spans"), 0);
  lt_store_close(f->store);
  assert_int_equal(open_store(f, 3600 * SEC), 0);
  lt_batch_t *b = lt_batch_new(1, 1 << 20);
  lt_span_t *sp = add(b, 2, 1, 0, "after", now, now + 1);
  sp->input = S(b, "Paris");
  add(b, 2, 2, 1, "after-child", now, now + 1);
  write1(f, b, 2);
  assert_int_equal(count_rows(f, "SELECT min(id) FROM spans"), 5);
  assert_int_equal(count_rows(f, "SELECT max(id) FROM spans"), 6);
  assert_int_equal(found(f, true, "France", 0), 0);
  maintain_all(f, now);
  assert_int_equal(found(f, true, "Paris", 0), 1);
  /* Past the floor, SQLite's own choice is right again. */
  write1(f, tree_batch(3), 4);
  assert_int_equal(count_rows(f, "SELECT max(id) FROM spans"), 10);
}

/* Ingest comes before the index: after a write found the disk full the
 * index takes no space (here: catching up does nothing) until a write
 * succeeds again. */
static void search_waits_while_writes_find_the_disk_full(void **st) {
  fixture_t *f = *st;
  write1(f, tree_batch(1), 4);
  atomic_store(&LT__SQ(f->store)->space_short, true); /* as a write refused for want of space sets it */
  assert_int_equal(lt__sq_search_catch_up(LT__SQ(f->store)), 0);
  assert_int_equal(fts_lag(f), 4);
  write1(f, tree_batch(2), 4); /* a write that succeeds ends it */
  assert_false(atomic_load(&LT__SQ(f->store)->space_short));
  assert_int_equal(lt__sq_search_catch_up(LT__SQ(f->store)), 0);
  assert_int_equal(fts_lag(f), 0);
}

/* A search file is only kept with the database it was built from: one
 * from another database, or from a later state of this one (a database
 * restored from an older copy), is emptied and built again. */
static void search_file_follows_its_database(void **st) {
  fixture_t *f = *st;
  for (int t = 1; t <= 3; t++) write1(f, tree_batch(t), 4);
  maintain_all(f, T0);
  assert_int_equal(fts_lag(f), 0);
  /* Another database's search file. */
  reopen_undone(f, "UPDATE meta SET value = value + 1 WHERE key = 'instance';", "");
  assert_int_equal(fts_lag(f), 12);
  maintain_all(f, T0);
  assert_int_equal(fts_lag(f), 0);
  /* The database as it was before trace 3 (an older copy). */
  reopen_undone(f, "DELETE FROM spans WHERE id > 8;", "");
  assert_int_equal(fts_lag(f), 8);
  maintain_all(f, T0);
  write1(f, tree_batch(4), 4); /* ids 9-12 again */
  maintain_all(f, T0);
  assert_int_equal(found(f, true, "France", 0), 3);
  fts_integrity(f);
}

static void write_failure_stores_nothing(void **st) {
  fixture_t *f = *st;
  /* Hold the write lock from another connection: the write must fail
   * (after the busy timeout) and leave nothing behind. */
  char path[128];
  snprintf(path, sizeof path, "%s/lanterna.db", f->dir);
  sqlite3 *db;
  assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
  assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
  lt_batch_t *b = tree_batch(1);
  assert_int_equal(lt_store_write(f->store, &b, 1), LT_EDB);
  assert_int_equal(b->n_inserted, 0);
  sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
  sqlite3_close(db);
  lt_store_stats_t ss;
  assert_int_equal(f->store->ops->stats(f->store, &ss), 0);
  assert_int_equal(ss.spans, 0);
  assert_int_equal(lt_store_write(f->store, &b, 1), 0);
  assert_int_equal(b->n_inserted, 4);
  lt_batch_free(b);
}

static void big_group_packs_into_chunks(void **st) {
  fixture_t *f = *st;
  /* 12 traces of 100 spans with ~1.7 KB of text each: every trace is cut
   * into two chunks of at most 128 KB raw, and every payload must read
   * back intact. */
  lt_batch_t *g[3];
  char text[2048];
  for (int i = 0; i < 3; i++) {
    g[i] = lt_batch_new(1, 16 << 20);
    for (int k = 0; k < 400; k++) {
      int n = i * 400 + k;
      lt_span_t *s = add(g[i], 50 + n / 100, n % 100 + 1, 0, "bulk", T0 + n, T0 + n + 1);
      static const char lorem[] =
          "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore et "
          "dolore magna aliqua ut enim ad minim veniam quis nostrud exercitation ullamco laboris nisi ut aliquip "
          "ex ea commodo consequat duis aute irure dolor in reprehenderit in voluptate velit esse cillum dolore "
          "eu fugiat nulla pariatur excepteur sint occaecat cupidatat non proident sunt in culpa qui officia ";
      snprintf(text, sizeof text, "span %d says: %s%s%s%s", n, lorem, lorem, lorem, lorem); /* ~1.7 KB */
      s->input = S(g[i], text);
    }
  }
  assert_int_equal(lt_store_write(f->store, g, 3), 0);
  assert_int_equal(g[0]->n_inserted + g[1]->n_inserted + g[2]->n_inserted, 1200);
  assert_int_equal(count_rows(f, "SELECT count(*) FROM payload_chunks"), 24);
  assert_int_equal(count_rows(f, "SELECT count(*) FROM spans WHERE length(payload) > 12"), 0);
  /* Written again (a retried request): nothing new, no new chunk. */
  assert_int_equal(lt_store_write(f->store, g, 3), 0);
  assert_int_equal(g[0]->n_inserted + g[1]->n_inserted + g[2]->n_inserted, 0);
  assert_int_equal(count_rows(f, "SELECT count(*) FROM payload_chunks"), 24);
  for (int i = 0; i < 3; i++) lt_batch_free(g[i]);
  lt_query_t q;
  lt_query_init(&q, 1);
  q.limit = 1000;
  q.ascending = true;
  json_t *res = NULL;
  assert_int_equal(f->store->ops->spans_list(f->store, &q, &res), 0);
  size_t i;
  json_t *row;
  json_array_foreach(json_object_get(res, "data"), i, row) {
    char want[32];
    snprintf(want, sizeof want, "span %d says: lorem", (int)i);
    assert_memory_equal(json_string_value(json_object_get(row, "input")), want, strlen(want));
  }
  assert_int_equal(i, 1000);
  json_decref(res);
}

/* Each codec (lz4 by default, zstd, none) frames its chunks and inline
 * payloads with its own byte, and a store reads back what any of them
 * wrote: data written before a codec change stays readable. */
static void every_codec_reads_back(void **st) {
  fixture_t *f = *st;
  static const lt_compression_t codecs[] = {LT_COMPRESS_ZSTD, LT_COMPRESS_NONE, LT_COMPRESS_LZ4};
  static const int frames[] = {1, 0, 3};
  char text[1024];
  for (int c = 0; c < 3; c++) {
    lt_store_close(f->store);
    lt_store_config_t sc = {.data_dir = f->dir, .durability = LT_DURABILITY_FULL, .compression = codecs[c],
                            .read_connections = 2, .cache_bytes = 4u << 20, .search_by_hand = true};
    assert_int_equal(lt_store_open(&lt_store_sqlite_ops, &sc, &f->store), 0);
    assert_true(f->store->defer_sync); /* durability full: the writer's commits are synced apart */
    lt_batch_t *b = lt_batch_new(1, 1 << 20);
    for (int i = 0; i < 4; i++) { /* three spans of one trace (a chunk), one alone (inline) */
      lt_span_t *sp = add(b, 700 + c * 2 + (i == 3), i + 1, 0, "codec", T0 + i, T0 + i + 1);
      snprintf(text, sizeof text, "codec %d span %d: %0600d", c, i, i);
      sp->input = S(b, text);
    }
    write1(f, b, 4);
    assert_int_equal(lt_store_sync(f->store), 0);
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM payload_chunks WHERE substr(body, 1, 1) = x'%02x'", frames[c]);
    assert_int_equal(count_rows(f, sql), 1);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM spans WHERE name = 'codec' AND substr(payload, 1, 1) = x'%02x'",
             frames[c]);
    assert_int_equal(count_rows(f, sql), 1);
  }
  /* All twelve, written under three codecs, read back by the last store. */
  lt_query_t q;
  lt_query_init(&q, 1);
  q.name = (lt_str_t){"codec", 5};
  q.limit = 100;
  json_t *res = NULL;
  assert_int_equal(f->store->ops->spans_list(f->store, &q, &res), 0);
  size_t i;
  json_t *row;
  int seen = 0;
  json_array_foreach(json_object_get(res, "data"), i, row) {
    const char *in = json_string_value(json_object_get(row, "input"));
    assert_non_null(in);
    int c, k;
    assert_int_equal(sscanf(in, "codec %d span %d:", &c, &k), 2);
    snprintf(text, sizeof text, "codec %d span %d: %0600d", c, k, k);
    assert_string_equal(in, text);
    seen |= 1 << (c * 4 + k);
  }
  assert_int_equal(seen, 0xfff);
  json_decref(res);
}

/* Span lists find their rows through span_blocks (schema 5) instead of a
 * start-time index. Against a plain ORDER BY over the table,
 * every page must match: starts that run against arrival order (late and
 * early arrivals, many ties), time ranges, a filter, both directions,
 * cursors across pages; then spans written in time order, as live traffic
 * comes, whose pages come from the newest blocks alone. */
static int collect_names(fixture_t *f, const char *sql, char names[][16], int cap) {
  sqlite3_stmt *q;
  sqlite3 *db = open_ro(f, sql, &q);
  int n = 0;
  while (sqlite3_step(q) == SQLITE_ROW && n < cap) snprintf(names[n++], 16, "%s", sqlite3_column_text(q, 0));
  sqlite3_finalize(q);
  sqlite3_close(db);
  return n;
}

static void span_pages_match(fixture_t *f, lt_query_t q, const char *where, char (*want)[16], char (*got)[16]) {
  char sql[512];
  snprintf(sql, sizeof sql, "SELECT name FROM spans WHERE project_id = 1%s ORDER BY start_ns %s, id %s", where,
           q.ascending ? "ASC" : "DESC", q.ascending ? "ASC" : "DESC");
  int nwant = collect_names(f, sql, want, 24000);
  int ngot = 0, pages = 0;
  char cur[256] = "";
  for (;;) {
    q.cursor = lt_str_from(cur);
    json_t *res = NULL;
    assert_int_equal(f->store->ops->spans_list(f->store, &q, &res), 0);
    size_t i;
    json_t *row;
    json_array_foreach(json_object_get(res, "data"), i, row) {
      assert_true(ngot < 24000);
      snprintf(got[ngot++], 16, "%s", json_string_value(json_object_get(row, "name")));
    }
    pages++;
    const char *next = json_string_value(json_object_get(res, "next_cursor"));
    if (next) snprintf(cur, sizeof cur, "%s", next);
    json_decref(res);
    if (!next || pages >= 6) break; /* the first pages, and the cursor's way through them */
  }
  int n = ngot < nwant ? ngot : nwant;
  assert_true(n > 0);
  if (ngot < 6 * q.limit) assert_int_equal(ngot, nwant); /* all of it fitted */
  for (int i = 0; i < n; i++) {
    if (strcmp(want[i], got[i])) fail_msg("%s, row %d: want %s, got %s", where, i, want[i], got[i]);
  }
}

static void span_list_window_matches_a_full_sort(void **st) {
  fixture_t *f = *st;
  char name[16];
  for (int w = 0; w < 1100; w++) { /* more blocks than a page may read: some lists read the whole table */
    lt_batch_t *b = lt_batch_new(1, 1 << 20);
    for (int i = 0; i < 20; i++) {
      int n = w * 20 + i;
      int64_t t = T0 + (int64_t)n * MS;
      if (n % 7 == 0) t -= 5000 * MS * (n % 5); /* arrived late */
      if (n % 11 == 0) t += 3000 * MS;          /* ahead of the others */
      if (n % 13 == 0) t = T0 + 12000 * MS;     /* ties */
      if (n == 777) t = T0 + 30000 * MS;        /* the newest start, in an old block */
      snprintf(name, sizeof name, "n%d", n);
      lt_span_t *sp = add(b, 9000 + n / 10, n % 10 + 1, 0, name, t, t + MS);
      sp->status = n % 3 ? LT_STATUS_OK : LT_STATUS_ERROR;
      sp->input = S(b, n % 4 == 0 ? "alpha text" : n == 777 || n == 3 || n == 21001 ? "rare text" : "beta text");
    }
    write1(f, b, 20);
  }
  assert_int_equal(count_rows(f, "SELECT count(*) FROM span_blocks"), 1100);
  maintain_all(f, T0);
  static char want[24000][16], got[24000][16];
  lt_query_t q;
  lt_query_init(&q, 1);
  q.limit = 50;
  span_pages_match(f, q, "", want, got);
  assert_string_equal(got[0], "n777");
  q.ascending = true;
  span_pages_match(f, q, "", want, got);
  q.ascending = false;
  q.status = LT_STATUS_ERROR;
  span_pages_match(f, q, " AND status = 2", want, got);
  q.status = -1;
  /* Full text: the matches are read per block, bounded by its ids. */
  q.q = LT_STR("alpha");
  span_pages_match(f, q, " AND id IN (SELECT rowid FROM search.fts_1 WHERE fts_1 MATCH 'alpha')", want, got);
  q.ascending = true;
  span_pages_match(f, q, " AND id IN (SELECT rowid FROM search.fts_1 WHERE fts_1 MATCH 'alpha')", want, got);
  q.ascending = false;
  q.q = LT_STR("rare");
  span_pages_match(f, q, " AND id IN (SELECT rowid FROM search.fts_1 WHERE fts_1 MATCH 'rare')", want, got);
  assert_string_equal(got[0], "n777");
  q.q = LT_STR_NULL;
  /* Trace lists with q and a start bound read only the newer blocks'
   * matches; they must still find every trace a plain query finds. */
  int64_t froms[] = {T0, T0 + 10 * MS, T0 + 3000 * MS, T0 + 12000 * MS, T0 + 21500 * MS};
  const char *terms[] = {"rare", "alpha"};
  for (size_t k = 0; k < sizeof froms / sizeof froms[0]; k++) {
    for (int t = 0; t < 2; t++) {
      char sql[512];
      snprintf(sql, sizeof sql,
               "SELECT substr(lower(hex(trace_id)), 18) FROM traces WHERE project_id = 1 AND start_ns >= %lld AND id IN"
               " (SELECT trace_ref FROM spans WHERE id IN (SELECT rowid FROM search.fts_1 WHERE fts_1 MATCH '%s'))"
               " ORDER BY start_ns DESC, id DESC",
               (long long)froms[k], terms[t]);
      int nwant = collect_names(f, sql, want, 24000);
      lt_query_t tq;
      lt_query_init(&tq, 1);
      tq.q = lt_str_from(terms[t]);
      tq.from_ns = froms[k];
      tq.limit = 1000;
      json_t *res = traces(f, &tq);
      json_t *data = json_object_get(res, "data");
      assert_int_equal((int)json_array_size(data), nwant < 1000 ? nwant : 1000);
      for (size_t i = 0; i < json_array_size(data); i++) {
        /* The ids differ in their last bytes (tid_of): compare those. */
        const char *id = json_string_value(json_object_get(json_array_get(data, i), "trace_id"));
        assert_int_equal(strlen(id), 32);
        if (strcmp(id + 17, want[i])) fail_msg("q=%s from %zu, trace %zu: want ...%s, got %s", terms[t], k, i, want[i], id);
      }
      json_decref(res);
    }
  }
  char where[160];
  q.from_ns = T0 + 4000 * MS;
  q.to_ns = T0 + 9000 * MS;
  snprintf(where, sizeof where, " AND start_ns >= %lld AND start_ns < %lld", (long long)q.from_ns,
           (long long)q.to_ns);
  span_pages_match(f, q, where, want, got);
  q.ascending = true;
  span_pages_match(f, q, where, want, got);
  q.limit = 1000;
  span_pages_match(f, q, where, want, got);
  q.limit = 50;
  q.q = LT_STR("alpha");
  char fwhere[256];
  snprintf(fwhere, sizeof fwhere, "%s AND id IN (SELECT rowid FROM search.fts_1 WHERE fts_1 MATCH 'alpha')", where);
  span_pages_match(f, q, fwhere, want, got);
  q.ascending = false;
  span_pages_match(f, q, fwhere, want, got);
  q.q = LT_STR_NULL;
  /* Then 12 writes in time order, as live traffic comes: the newest pages
   * come from a window of the newest ids. */
  for (int w = 24; w < 36; w++) {
    lt_batch_t *b = lt_batch_new(1, 32 << 20);
    for (int i = 0; i < 1000; i++) {
      int n = w * 1000 + i;
      int64_t t = T0 + 40000 * MS + (int64_t)n * MS;
      snprintf(name, sizeof name, "n%d", n);
      add(b, 9000 + n / 10, n % 10 + 1, 0, name, t, t + MS);
    }
    write1(f, b, 1000);
  }
  lt_query_init(&q, 1);
  q.limit = 100;
  span_pages_match(f, q, "", want, got);
  assert_string_equal(got[0], "n35999");
  q.from_ns = T0 + 60000 * MS;
  snprintf(where, sizeof where, " AND start_ns >= %lld", (long long)q.from_ns);
  span_pages_match(f, q, where, want, got);
  /* Ties: a write of 60 spans at one instant and one just after it, then
   * a write of 30 spans at that instant. The page's last row ties with the
   * second block's latest start, and ties sort by id, which puts the
   * second block's rows first: it must be read although nothing in it is
   * newer than the page's last row. */
  int64_t tie = T0 + 100000 * MS;
  for (int w = 0; w < 2; w++) {
    lt_batch_t *b = lt_batch_new(1, 1 << 20);
    int count = w ? 30 : 61;
    for (int i = 0; i < count; i++) {
      int n = 36000 + w * 100 + i;
      int64_t t = !w && i == 0 ? tie + 5 * MS : tie;
      snprintf(name, sizeof name, "n%d", n);
      add(b, 9000 + n / 10, n % 10 + 1, 0, name, t, t + 1);
    }
    write1(f, b, (size_t)count);
  }
  lt_query_init(&q, 1);
  q.limit = 50;
  span_pages_match(f, q, "", want, got);
  assert_string_equal(got[0], "n36000");
  assert_string_equal(got[1], "n36129");
}

/* Migration 10 undone: the full-text index inside the database, as
 * migrations 1 and 7 made it. */
#define BEFORE_10                                                                                              \
  "CREATE VIRTUAL TABLE span_fts USING fts5(input, output, content='');"                                       \
  "INSERT INTO span_fts(span_fts, rank) VALUES('automerge', 16);"                                              \
  "INSERT INTO span_fts(span_fts, rank) VALUES('crisismerge', 64);"                                            \
  "INSERT INTO meta(key, value) VALUES('fts_hwm', 0); DELETE FROM meta WHERE key = 'instance';"

/* Migration 9 undone: no trace runs, and spans with their unique key. */
#define BEFORE_9                                                                                               \
  BEFORE_10                                                                                                    \
  "DROP TABLE trace_runs;"                                                                                     \
  "CREATE TABLE spans_v8(id INTEGER PRIMARY KEY, trace_ref INTEGER NOT NULL, span_id INTEGER NOT NULL,"        \
  " parent_id INTEGER, project_id INTEGER NOT NULL, start_ns INTEGER NOT NULL, end_ns INTEGER NOT NULL,"       \
  " name TEXT NOT NULL, kind INTEGER NOT NULL, otel_kind INTEGER NOT NULL, status INTEGER NOT NULL,"            \
  " service TEXT, request_model TEXT, response_model TEXT, input_tokens INTEGER, output_tokens INTEGER,"       \
  " total_tokens INTEGER, cost_nusd INTEGER, cost_source INTEGER NOT NULL, ttft_ns INTEGER, user_id TEXT,"     \
  " session_id TEXT, tags TEXT, payload BLOB, UNIQUE(trace_ref, span_id));"                                    \
  "INSERT INTO spans_v8 SELECT * FROM spans; DROP TABLE spans; ALTER TABLE spans_v8 RENAME TO spans;"

/* Closes the store, turns its file back into an older schema's with sql,
 * and opens it again (migrating it). */
/* Migrations 9 and 8 undone: what every older schema looks like. */
#define BEFORE_8                                                                                         \
  BEFORE_9                                                                                               \
  "DROP TABLE trace_keys; DELETE FROM meta WHERE key = 'keys_hwm';"                                      \
  "CREATE INDEX traces_session ON traces(project_id, session_id, start_ns) WHERE session_id IS NOT NULL;" \
  "CREATE INDEX traces_user ON traces(project_id, user_id, start_ns) WHERE user_id IS NOT NULL;"

static void reopen_undone(fixture_t *f, const char *undo, const char *sql) {
  lt_store_close(f->store);
  f->store = NULL;
  char path[128];
  snprintf(path, sizeof path, "%s/lanterna.db", f->dir);
  sqlite3 *db;
  assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
  assert_int_equal(sqlite3_exec(db, undo, NULL, NULL, NULL), SQLITE_OK);
  assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
  sqlite3_close(db);
  assert_int_equal(fixture_reopen(f, 0), 0);
}

static void reopen_as_older(fixture_t *f, const char *sql) { reopen_undone(f, BEFORE_8, sql); }

/* A schema-4 file (a start-time index, no span blocks) opened by this
 * build: migration 5 backfills blocks for the spans already there and
 * drops the index, and the lists read them. */
static void migration_5_backfills_span_blocks(void **st) {
  fixture_t *f = *st;
  lt_batch_t *b = lt_batch_new(1, 32 << 20);
  char name[16];
  for (int n = 0; n < 9000; n++) {
    snprintf(name, sizeof name, "m%d", n);
    add(b, 20000 + n / 9, n % 9 + 1, 0, name, T0 + (int64_t)n * MS, T0 + (int64_t)n * MS + 1);
  }
  write1(f, b, 9000);
  reopen_as_older(f, "DROP TABLE span_blocks; CREATE INDEX spans_start ON spans(project_id, start_ns);"
                     "PRAGMA user_version=4;");
  assert_int_equal(count_rows(f, "SELECT count(*) FROM sqlite_master WHERE name = 'spans_start'"), 0);
  assert_int_equal(count_rows(f, "SELECT count(*) FROM span_blocks"), 3); /* ids 1-4095, 4096-8191, 8192-9000 */
  assert_int_equal(count_rows(f, "SELECT min(first_id) + max(last_id) FROM span_blocks"), 9001);
  lt_query_t q;
  lt_query_init(&q, 1);
  q.limit = 3;
  q.from_ns = T0 + 4500 * MS;
  q.to_ns = T0 + 4503 * MS;
  json_t *res = NULL;
  assert_int_equal(f->store->ops->spans_list(f->store, &q, &res), 0);
  json_t *data = json_object_get(res, "data");
  assert_int_equal(json_array_size(data), 3);
  assert_string_equal(json_string_value(json_object_get(json_array_get(data, 0), "name")), "m4502");
  assert_string_equal(json_string_value(json_object_get(json_array_get(data, 2), "name")), "m4500");
  json_decref(res);
}

/* table holds exactly the rows the query derived gives, no more. */
static void assert_rows_are(fixture_t *f, const char *table, const char *derived) {
  char sql[1024];
  snprintf(sql, sizeof sql, "SELECT count(*) FROM (SELECT * FROM (%s) EXCEPT SELECT * FROM %s)", derived, table);
  assert_int_equal(count_rows(f, sql), 0);
  snprintf(sql, sizeof sql, "SELECT count(*) FROM (SELECT * FROM %s EXCEPT SELECT * FROM (%s))", table, derived);
  assert_int_equal(count_rows(f, sql), 0);
}

/* trace_keys holds exactly the keys the traces up to the mark have. */
static void assert_keys_match(fixture_t *f) {
  assert_rows_are(f, "trace_keys",
                  "SELECT project_id, 1, session_id, start_ns, id FROM traces WHERE session_id IS NOT NULL"
                  "  AND id <= (SELECT value FROM meta WHERE key = 'keys_hwm')"
                  " UNION ALL SELECT project_id, 2, user_id, start_ns, id FROM traces WHERE user_id IS NOT NULL"
                  "  AND id <= (SELECT value FROM meta WHERE key = 'keys_hwm')");
}

/* trace_models holds exactly the models of the traces up to the mark. */
static void assert_models_match(fixture_t *f) {
  assert_rows_are(f, "trace_models",
                  "SELECT t.project_id, j.value, t.id FROM traces t, json_each(t.models) j"
                  " WHERE t.id <= (SELECT value FROM meta WHERE key = 'keys_hwm')");
}

static const char *session_users(fixture_t *f, const char *session) {
  static char out[256];
  json_t *res = NULL;
  int rc = f->store->ops->session_get(f->store, 1, lt_str_from(session), &res);
  if (rc == LT_ENOTFOUND) return "-";
  assert_int_equal(rc, 0);
  json_t *wrap = json_pack("{sO}", "data", json_object_get(res, "traces"));
  snprintf(out, sizeof out, "%s", names(wrap, "user_id"));
  json_decref(wrap);
  json_decref(res);
  return out;
}

/* Session and user lookups read trace_keys for keyed traces and the
 * traces above the mark directly: before and after the background keys
 * them, after an update moves a keyed trace's start, user and session,
 * within a time range, and after retention. */
static void session_and_user_lookups_follow_the_keys(void **st) {
  fixture_t *f = *st;
  lt_query_t q;
  /* Four traces, one span each: users u0..u3, sessions s0, s0, s1, none. */
  lt_batch_t *b = lt_batch_new(1, 1 << 20);
  const char *sess[] = {"s0", "s0", "s1", NULL};
  for (int i = 0; i < 4; i++) {
    char u[16];
    snprintf(u, sizeof u, "u%d", i);
    /* Trace 300's root comes later. */
    lt_span_t *r = add(b, 300 + i, 1, i == 0 ? 9 : 0, "turn", T0 + i * SEC, T0 + i * SEC + MS);
    r->user_id = S(b, u);
    if (sess[i]) r->session_id = S(b, sess[i]);
  }
  write1(f, b, 4);
  for (int keyed = 0; keyed < 2; keyed++) {
    if (keyed) maintain_all(f, T0);
    assert_int_equal(count_rows(f, "SELECT value FROM meta WHERE key = 'keys_hwm'"), keyed ? 4 : 0);
    lt_store_stats_t ss;
    assert_int_equal(f->store->ops->stats(f->store, &ss), 0);
    assert_int_equal(ss.keys_lag, keyed ? 0 : 4);
    assert_string_equal(session_users(f, "s0"), "u0,u1");
    assert_string_equal(session_users(f, "s1"), "u2");
    lt_query_init(&q, 1);
    q.user_id = LT_STR("u3");
    assert_string_equal(list_names(f, &q), "u3");
    lt_query_init(&q, 1);
    q.session_id = LT_STR("s0");
    q.from_ns = T0 + SEC / 2;
    assert_string_equal(list_names(f, &q), "u1");
  }
  assert_int_equal(count_rows(f, "SELECT count(*) FROM trace_keys"), 7);
  assert_keys_match(f);
  /* Trace 300 (keyed) gets its root, which starts earlier and has
   * another user and session: its keys move with it. */
  b = lt_batch_new(1, 1 << 20);
  lt_span_t *r = add(b, 300, 9, 0, "turn", T0 - 10 * SEC, T0 + 2 * MS);
  r->user_id = S(b, "v0");
  r->session_id = S(b, "s9");
  add(b, 300, 1, 9, "turn", T0, T0 + MS); /* sent again: ignored */
  lt_batch_t *bb = b;
  assert_int_equal(lt_store_write(f->store, &bb, 1), 0);
  lt_batch_free(b);
  assert_keys_match(f);
  assert_string_equal(session_users(f, "s0"), "u1");
  assert_string_equal(session_users(f, "s9"), "v0");
  lt_query_init(&q, 1);
  q.user_id = LT_STR("v0");
  q.to_ns = T0 - 5 * SEC;
  assert_string_equal(list_names(f, &q), "v0");
  lt_query_init(&q, 1);
  q.user_id = LT_STR("u0");
  assert_string_equal(list_names(f, &q), "");
  /* The sessions list by user reads the keys too. */
  json_t *res = NULL;
  lt_query_init(&q, 1);
  q.user_id = LT_STR("u2");
  assert_int_equal(f->store->ops->sessions_list(f->store, &q, &res), 0);
  assert_string_equal(names(res, "session_id"), "s1");
  json_decref(res);
  /* Retention takes every trace but the newest (T0 + 3 s): their keys go. */
  lt_store_close(f->store);
  f->store = NULL;
  assert_int_equal(fixture_reopen(f, 10 * SEC), 0);
  maintain_all(f, T0 + 12 * SEC + SEC / 2);
  assert_int_equal(count_rows(f, "SELECT count(*) FROM traces"), 1);
  assert_int_equal(count_rows(f, "SELECT count(*) FROM trace_keys"), 1);
  assert_keys_match(f);
  assert_string_equal(session_users(f, "s0"), "-");
  /* All gone: the mark comes down, so new traces (ids from 1 again) are
   * keyed too. */
  maintain_all(f, T0 + 20 * SEC);
  assert_int_equal(count_rows(f, "SELECT count(*) FROM traces"), 0);
  maintain_all(f, T0 + 20 * SEC);
  assert_int_equal(count_rows(f, "SELECT value FROM meta WHERE key = 'keys_hwm'"), 0);
  b = lt_batch_new(1, 1 << 20);
  r = add(b, 400, 1, 0, "turn", T0 + 30 * SEC, T0 + 30 * SEC + MS);
  r->session_id = S(b, "s-new");
  r->user_id = S(b, "w");
  write1(f, b, 1);
  maintain_all(f, T0 + 31 * SEC);
  assert_int_equal(count_rows(f, "SELECT count(*) FROM trace_keys WHERE key = 's-new'"), 1);
  assert_string_equal(session_users(f, "s-new"), "w");
}

/* A schema-7 file (session and user indexes on traces) opened by this
 * build: migration 8 keys every trace and drops the indexes. */
static void migration_8_keys_existing_traces(void **st) {
  fixture_t *f = *st;
  seed_filters(f);
  reopen_as_older(f, "PRAGMA user_version=7;");
  assert_int_equal(count_rows(f, "SELECT count(*) FROM sqlite_master WHERE name IN ('traces_session', 'traces_user')"), 0);
  assert_int_equal(count_rows(f, "SELECT value FROM meta WHERE key = 'keys_hwm'"), 4);
  assert_int_equal(count_rows(f, "SELECT count(*) FROM trace_keys"), 7);
  assert_keys_match(f);
  assert_string_equal(session_users(f, "sess-A"), "alice,bob");
}

/* Keying waits for LT__SQ_KEYS_BATCH traces, an idle writer or a slice
 * that is old enough; until then lookups read the waiting traces. */
static void keys_batch_waits_for_traces(void **st) {
  fixture_t *f = *st;
  lt__sq_t *s = LT__SQ(f->store);
  bool more;
  int n = 0;
#define ONE_MORE()                                                                   \
  do {                                                                               \
    lt_batch_t *b_ = lt_batch_new(1, 1 << 20);                                       \
    lt_span_t *r_ = add(b_, 600 + n, 1, 0, "turn", T0 + n * SEC, T0 + n * SEC + MS); \
    r_->session_id = S(b_, "s-batch");                                               \
    n++;                                                                             \
    write1(f, b_, 1);                                                                \
  } while (0)
#define HWM() count_rows(f, "SELECT value FROM meta WHERE key = 'keys_hwm'")
  s->keys_batch = 3;
  s->keys_last_ns = mono_now();
  ONE_MORE();
  ONE_MORE();
  assert_int_equal(lt_store_maintain(f->store, T0, &more), 0);
  assert_int_equal(HWM(), 0);
  assert_string_equal(session_users(f, "s-batch"), "?,?"); /* two traces, no users */
  ONE_MORE(); /* three waiting: a batch */
  assert_int_equal(lt_store_maintain(f->store, T0, &more), 0);
  assert_int_equal(HWM(), 3);
  ONE_MORE();
  assert_int_equal(lt_store_maintain(f->store, T0, &more), 0);
  assert_int_equal(HWM(), 3);
  s->last_write_ns = mono_now() - LT__SQ_KEYS_IDLE_NS; /* the writer went idle */
  assert_int_equal(lt_store_maintain(f->store, T0, &more), 0);
  assert_int_equal(HWM(), 4);
  ONE_MORE();
  assert_int_equal(lt_store_maintain(f->store, T0, &more), 0);
  assert_int_equal(HWM(), 4);
  s->keys_last_ns = mono_now() - LT__SQ_KEYS_DELAY_NS; /* the last slice is old */
  assert_int_equal(lt_store_maintain(f->store, T0, &more), 0);
  assert_int_equal(HWM(), 5);
  assert_string_equal(session_users(f, "s-batch"), "?,?,?,?,?");
  assert_keys_match(f);
#undef HWM
#undef ONE_MORE
}

/* The model filter reads trace_models for keyed traces and the traces'
 * model lists above the mark: before and after keying, after a keyed
 * trace gains a model and moves its start, within a time range, with a
 * user lookup, and after retention. */
static void model_lookups_follow_the_keys(void **st) {
  fixture_t *f = *st;
  /* Traces 500..502, users u0..u2: models m-a; m-a and m-b; none. */
  lt_batch_t *b = lt_batch_new(1, 1 << 20);
  for (int i = 0; i < 3; i++) {
    char u[16];
    snprintf(u, sizeof u, "u%d", i);
    lt_span_t *r = add(b, 500 + i, 1, 0, "turn", T0 + i * SEC, T0 + i * SEC + 10 * MS);
    r->user_id = S(b, u);
  }
  add_llm(b, 500, 2, 1, "m-a", T0 + MS, T0 + 2 * MS, 1, 1, -1);
  add_llm(b, 501, 2, 1, "m-a", T0 + SEC + MS, T0 + SEC + 2 * MS, 1, 1, -1)->response_model = S(b, "m-b");
  write1(f, b, 5);
  lt_query_t q;
  for (int keyed = 0; keyed < 2; keyed++) {
    if (keyed) maintain_all(f, T0);
    assert_int_equal(count_rows(f, "SELECT count(*) FROM trace_models"), keyed ? 3 : 0);
    assert_models_match(f);
    lt_query_init(&q, 1);
    q.model = LT_STR("m-a");
    assert_string_equal(list_names(f, &q), "u1,u0");
    q.model = LT_STR("m-b");
    assert_string_equal(list_names(f, &q), "u1");
    q.model = LT_STR("m-c");
    assert_string_equal(list_names(f, &q), "");
    q.model = LT_STR("m-a");
    q.from_ns = T0 + SEC / 2;
    assert_string_equal(list_names(f, &q), "u1");
  }
  /* Keyed trace 502 gets a model, and trace 500 an earlier span: the new
   * model's row comes in the same write. */
  b = lt_batch_new(1, 1 << 20);
  add_llm(b, 502, 2, 1, "m-c", T0 + 2 * SEC + MS, T0 + 2 * SEC + 2 * MS, 1, 1, -1);
  add_llm(b, 500, 3, 1, "m-a", T0 - 5 * SEC, T0, 1, 1, -1);
  write1(f, b, 2);
  assert_models_match(f);
  assert_keys_match(f);
  lt_query_init(&q, 1);
  q.model = LT_STR("m-c");
  assert_string_equal(list_names(f, &q), "u2");
  q.model = LT_STR("m-a");
  q.to_ns = T0 - 4 * SEC;
  assert_string_equal(list_names(f, &q), "u0");
  lt_query_init(&q, 1);
  q.model = LT_STR("m-b");
  q.user_id = LT_STR("u1");
  assert_string_equal(list_names(f, &q), "u1");
  /* A new trace with a model, not keyed yet, is found all the same. */
  b = lt_batch_new(1, 1 << 20);
  add(b, 503, 1, 0, "turn", T0 + 3 * SEC, T0 + 3 * SEC + MS)->user_id = S(b, "u3");
  add_llm(b, 503, 2, 1, "m-b", T0 + 3 * SEC, T0 + 3 * SEC + MS, 1, 1, -1);
  write1(f, b, 2);
  assert_models_match(f);
  lt_query_init(&q, 1);
  q.model = LT_STR("m-b");
  assert_string_equal(list_names(f, &q), "u3,u1");
  /* Retention takes traces 500 and 501 (started before T0 + 1.5 s): their
   * model rows go with them. */
  lt_store_close(f->store);
  f->store = NULL;
  assert_int_equal(fixture_reopen(f, 10 * SEC), 0);
  maintain_all(f, T0 + 11 * SEC + SEC / 2);
  assert_int_equal(count_rows(f, "SELECT count(*) FROM traces"), 2);
  assert_models_match(f);
  assert_int_equal(count_rows(f, "SELECT count(*) FROM trace_models"), 2);
  lt_query_init(&q, 1);
  q.model = LT_STR("m-a");
  assert_string_equal(list_names(f, &q), "");
  q.model = LT_STR("m-b");
  assert_string_equal(list_names(f, &q), "u3");
}

/* A schema-8 file (spans with a unique key, no runs) opened by this build:
 * migration 9 gives every trace runs of its consecutive span ids and
 * rebuilds spans without the key; reads, retries and new spans of old
 * traces then work as on a new file. */
static void migration_9_gives_existing_spans_runs(void **st) {
  fixture_t *f = *st;
  /* Interleaved: trace 1 gets ids 1, 3, 5; trace 2 ids 2, 4; then trace 1
   * id 6 in a second write. */
  lt_batch_t *b = lt_batch_new(1, 1 << 20);
  add(b, 1, 1, 0, "t1s1", T0, T0 + 10);
  add(b, 2, 1, 0, "t2s1", T0, T0 + 10);
  add(b, 1, 2, 1, "t1s2", T0 + 1, T0 + 9);
  add(b, 2, 2, 1, "t2s2", T0 + 1, T0 + 9);
  add(b, 1, 3, 1, "t1s3", T0 + 2, T0 + 8);
  write1(f, b, 5);
  b = lt_batch_new(1, 1 << 20);
  add(b, 1, 4, 1, "t1s4", T0 + 3, T0 + 7);
  write1(f, b, 1);
  /* The old layout, with the ids interleaved as an older build stored them. */
  reopen_undone(f, BEFORE_9, "UPDATE spans SET id = id + 100; UPDATE spans SET id = CASE name"
                     " WHEN 't1s1' THEN 1 WHEN 't2s1' THEN 2 WHEN 't1s2' THEN 3 WHEN 't2s2' THEN 4"
                     " WHEN 't1s3' THEN 5 ELSE 6 END; PRAGMA user_version=8;");
  assert_int_equal(count_rows(f, "SELECT count(*) FROM sqlite_master WHERE tbl_name = 'spans' AND type = 'index'"), 0);
  /* Runs: trace 1 {1}, {3}, {5, 6}; trace 2 {2}, {4}. */
  assert_int_equal(count_rows(f, "SELECT count(*) FROM trace_runs"), 5);
  assert_int_equal(count_rows(f, "SELECT count(*) FROM trace_runs WHERE first_id = 5 AND last_id = 6"), 1);
  for (int list = 0; list < 2; list++) {
    assert_string_equal(trace_span_names(f, 1, list), "t1s1,t1s2,t1s3,t1s4");
    assert_string_equal(trace_span_names(f, 2, list), "t2s1,t2s2");
  }
  b = lt_batch_new(1, 1 << 20);
  add(b, 2, 2, 1, "t2s2-again", T0 + 1, T0 + 9);
  add(b, 2, 3, 1, "t2s3", T0 + 2, T0 + 8);
  add(b, 1, 3, 1, "t1s3-again", T0 + 2, T0 + 8);
  write1(f, b, 1);
  assert_string_equal(trace_span_names(f, 2, false), "t2s1,t2s2,t2s3");
  assert_int_equal(count_rows(f, "SELECT count(*) FROM spans"), 7);
}

/* Full-text partitions get the merge levels migration 7 once gave the
 * single index (docs/storage.md). */
static void search_partitions_merge_as_before(void **st) {
  fixture_t *f = *st;
  write1(f, tree_batch(1), 4);
  maintain_all(f, T0);
  assert_int_equal(count_rows(f, "SELECT v FROM search.fts_1_config WHERE k = 'automerge'"), 16);
  assert_int_equal(count_rows(f, "SELECT v FROM search.fts_1_config WHERE k = 'crisismerge'"), 64);
}

/* Migration 10: a file with the index inside loses it, and every span is
 * indexed again in the index's own file. */
static void migration_10_moves_the_index_out(void **st) {
  fixture_t *f = *st;
  write1(f, tree_batch(1), 4);
  reopen_undone(f, BEFORE_10, "INSERT INTO span_fts(rowid, input) VALUES(1, 'France'); PRAGMA user_version=9;");
  assert_int_equal(count_rows(f, "SELECT count(*) FROM sqlite_master WHERE name = 'span_fts'"), 0);
  assert_int_equal(count_rows(f, "SELECT count(*) FROM meta WHERE key = 'fts_hwm'"), 0);
  lt_store_stats_t ss;
  assert_int_equal(f->store->ops->stats(f->store, &ss), 0);
  assert_int_equal(ss.fts_lag, 4);
  maintain_all(f, T0);
  assert_int_equal(f->store->ops->stats(f->store, &ss), 0);
  assert_int_equal(ss.fts_lag, 0);
  assert_int_equal(found(f, false, "France", 0), 1);
}

/* Spans of a trace spread over two batches of one write and a later
 * write: each batch's share is its own chunk; a span alone in its batch is
 * inline; trace_get reads every field back, and attributes stored once
 * (lt_span_t.elided) come back in place. */
static void chunks_across_batches_and_elided_attributes(void **st) {
  fixture_t *f = *st;
  char big[600];
  memset(big, 'q', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  lt_batch_t *g[2];
  for (int i = 0; i < 2; i++) {
    g[i] = lt_batch_new(1, 1 << 20);
    for (int k = 0; k < 3; k++) {
      lt_span_t *sp = add(g[i], 7, i * 3 + k + 1, i || k ? 1 : 0, "step", T0 + k, T0 + k + 1);
      char in[700];
      snprintf(in, sizeof in, "input %d %s", i * 3 + k, big);
      sp->input = S(g[i], in);
      sp->output = S(g[i], "short output");
      sp->input_messages = S(g[i], "[{\"role\":\"user\",\"content\":\"hello there, a message long enough to be elided from the attributes\"}]");
      char attrs[1600];
      snprintf(attrs, sizeof attrs, "{\"a\":1,\"z\":\"last\"}");
      sp->attributes = S(g[i], attrs);
      snprintf(attrs, sizeof attrs,
               "{\"input.value\":\"/input\",\"llm.input_messages.0.message.content\":\"/input_messages/0/content\"}");
      sp->elided = S(g[i], attrs);
    }
  }
  assert_int_equal(lt_store_write(f->store, g, 2), 0);
  assert_int_equal(count_rows(f, "SELECT count(*) FROM payload_chunks"), 2);
  for (int i = 0; i < 2; i++) lt_batch_free(g[i]);
  lt_batch_t *b = lt_batch_new(1, 1 << 20);
  add(b, 7, 9, 1, "late", T0 + 10, T0 + 11)->input = S(b, "late input");
  write1(f, b, 1);
  assert_int_equal(count_rows(f, "SELECT count(*) FROM payload_chunks"), 2);

  uint8_t tid[16];
  tid_of(tid, 7);
  json_t *res = NULL;
  assert_int_equal(f->store->ops->trace_get(f->store, 1, tid, &res), 0);
  json_t *spans = json_object_get(res, "spans");
  assert_int_equal(json_array_size(spans), 7);
  size_t i;
  json_t *sp;
  int seen = 0;
  json_array_foreach(spans, i, sp) {
    const char *in = json_string_value(json_object_get(sp, "input"));
    assert_non_null(in);
    if (strcmp(json_string_value(json_object_get(sp, "name")), "late") == 0) {
      assert_string_equal(in, "late input");
      continue;
    }
    seen++;
    assert_int_equal(strlen(in), strlen("input 0 ") + sizeof big - 1);
    assert_string_equal(json_string_value(json_object_get(sp, "output")), "short output");
    json_t *a = json_object_get(sp, "attributes");
    assert_int_equal(json_integer_value(json_object_get(a, "a")), 1);
    assert_string_equal(json_string_value(json_object_get(a, "input.value")), in);
    assert_string_equal(json_string_value(json_object_get(a, "llm.input_messages.0.message.content")),
                        "hello there, a message long enough to be elided from the attributes");
    assert_int_equal(json_object_size(a), 4);
  }
  assert_int_equal(seen, 6);
  json_decref(res);
  /* Full-text indexing reads chunked payloads too. */
  maintain_all(f, T0);
  assert_int_equal(live_matches(f, "late"), 1);
  assert_int_equal(live_matches(f, "qqqq*"), 6);
  fts_integrity(f);
}

static long long file_bytes(fixture_t *f, const char *suffix) {
  char path[160];
  snprintf(path, sizeof path, "%s/lanterna.db%s", f->dir, suffix);
  struct stat sb;
  return stat(path, &sb) == 0 ? (long long)sb.st_size : -1;
}

/* The writer's commits only append to the WAL; copying it into the
 * database is the checkpoint thread's job (sqlite_ckpt.c), started past
 * 4,000 pages (64 MB), long before the writer would do it itself. */
static void checkpoints_run_off_the_writer(void **st) {
  fixture_t *f = *st;
  uint64_t x = 88172645463325252ull;
  /* ~125 MB of random letters (~75 MB compressed): past the thread's
   * threshold, below the writer's own. */
  for (int k = 0; k < 64; k++) {
    lt_batch_t *b = lt_batch_new(1, 64 << 20);
    for (int i = 0; i < 32; i++) {
      lt_span_t *sp = add(b, 3000 + k, i + 1, 0, "bulk", T0 + i, T0 + i + 1);
      char *t = lt_arena_alloc(b->arena, 62 * 1024);
      assert_non_null(t);
      for (size_t j = 0; j < 62 * 1024; j++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        t[j] = (char)('a' + x % 26);
      }
      sp->input = (lt_str_t){t, 62 * 1024};
    }
    write1(f, b, 32);
  }
  long long db = 0;
  for (int i = 0; i < 200 && (db = file_bytes(f, "")) < (40LL << 20); i++) usleep(50 * 1000);
  assert_true(db >= (40LL << 20));
}

typedef struct {
  fixture_t *f;
  atomic_int stop;
  int queries, failures;
} reader_arg_t;

static void *reader_main(void *p) {
  reader_arg_t *a = p;
  while (!atomic_load(&a->stop)) {
    lt_query_t q;
    lt_query_init(&q, 1);
    json_t *res = NULL;
    if (a->f->store->ops->traces_list(a->f->store, &q, &res) != 0) a->failures++;
    json_decref(res);
    res = NULL;
    uint8_t tid[16];
    tid_of(tid, 1);
    int rc = a->f->store->ops->trace_get(a->f->store, 1, tid, &res);
    if (rc != 0 && rc != LT_ENOTFOUND) a->failures++;
    json_decref(res);
    a->queries++;
  }
  return NULL;
}

static void readers_run_while_writing(void **st) {
  fixture_t *f = *st;
  reader_arg_t args[3];
  for (int i = 0; i < 3; i++) {
    args[i].f = f;
    atomic_init(&args[i].stop, 0);
    args[i].queries = args[i].failures = 0;
  }
  pthread_t th[3];
  for (int i = 0; i < 3; i++) assert_int_equal(pthread_create(&th[i], NULL, reader_main, &args[i]), 0);
  for (int i = 1; i <= 40; i++) {
    write1(f, tree_batch(i), 4);
    bool more;
    assert_int_equal(lt_store_maintain(f->store, T0, &more), 0);
  }
  for (int i = 0; i < 3; i++) {
    atomic_store(&args[i].stop, 1);
    pthread_join(th[i], NULL);
    assert_int_equal(args[i].failures, 0);
    assert_true(args[i].queries > 0);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(opens_migrates_and_reopens, setup, teardown),
    cmocka_unit_test_setup_teardown(trace_summary, setup, teardown),
    cmocka_unit_test_setup_teardown(unknown_cost_and_tokens_are_null, setup, teardown),
    cmocka_unit_test_setup_teardown(rewrite_is_idempotent, setup, teardown),
    cmocka_unit_test_setup_teardown(interleaved_traces_get_one_run_per_write, setup, teardown),
    cmocka_unit_test_setup_teardown(retention_ending_on_a_traces_last_span_takes_the_trace, setup, teardown),
    cmocka_unit_test_setup_teardown(an_idle_writer_truncates_the_wal, setup, teardown),
    cmocka_unit_test_setup_teardown(kept_span_ids_follow_the_database, setup, teardown),
    cmocka_unit_test_setup_teardown(late_root_and_new_spans_update_the_summary, setup, teardown),
    cmocka_unit_test_setup_teardown(trace_tree_logs_and_404, setup, teardown),
    cmocka_unit_test_setup_teardown(logs_before_spans_attach, setup, teardown),
    cmocka_unit_test_setup_teardown(operation_details_log_fills_messages, setup, teardown),
    cmocka_unit_test_setup_teardown(traces_list_filters, setup, teardown),
    cmocka_unit_test_setup_teardown(search_text_that_is_not_fts5_is_words, setup, teardown),
      cmocka_unit_test_setup_teardown(bad_cursors_are_einval, setup, teardown),
    cmocka_unit_test_setup_teardown(cursor_pagination, setup, teardown),
    cmocka_unit_test_setup_teardown(spans_list_filters, setup, teardown),
    cmocka_unit_test_setup_teardown(span_list_cuts_long_text, setup, teardown),
    cmocka_unit_test_setup_teardown(sessions, setup, teardown),
    cmocka_unit_test_setup_teardown(projects_and_keys, setup, teardown),
    cmocka_unit_test_setup_teardown(projects_are_isolated, setup, teardown),
    cmocka_unit_test_setup_teardown(retention_deletes_old_rows, setup, teardown),
    cmocka_unit_test_setup_teardown(search_thread_indexes_on_its_own, setup, teardown),
    cmocka_unit_test_setup_teardown(search_partitions_go_with_their_spans, setup, teardown),
    cmocka_unit_test_setup_teardown(search_reads_many_partitions, setup, teardown),
    cmocka_unit_test_setup_teardown(span_ids_are_never_handed_out_twice, setup, teardown),
    cmocka_unit_test_setup_teardown(search_file_follows_its_database, setup, teardown),
    cmocka_unit_test_setup_teardown(search_waits_while_writes_find_the_disk_full, setup, teardown),
    cmocka_unit_test_setup_teardown(write_failure_stores_nothing, setup, teardown),
    cmocka_unit_test_setup_teardown(big_group_packs_into_chunks, setup, teardown),
    cmocka_unit_test_setup_teardown(every_codec_reads_back, setup, teardown),
    cmocka_unit_test_setup_teardown(span_list_window_matches_a_full_sort, setup, teardown),
    cmocka_unit_test_setup_teardown(migration_5_backfills_span_blocks, setup, teardown),
    cmocka_unit_test_setup_teardown(search_partitions_merge_as_before, setup, teardown),
    cmocka_unit_test_setup_teardown(migration_10_moves_the_index_out, setup, teardown),
    cmocka_unit_test_setup_teardown(session_and_user_lookups_follow_the_keys, setup, teardown),
    cmocka_unit_test_setup_teardown(migration_8_keys_existing_traces, setup, teardown),
    cmocka_unit_test_setup_teardown(keys_batch_waits_for_traces, setup, teardown),
    cmocka_unit_test_setup_teardown(model_lookups_follow_the_keys, setup, teardown),
    cmocka_unit_test_setup_teardown(migration_9_gives_existing_spans_runs, setup, teardown),
    cmocka_unit_test_setup_teardown(lists_say_when_search_is_behind, setup, teardown),
    cmocka_unit_test_setup_teardown(chunks_across_batches_and_elided_attributes, setup, teardown),
    cmocka_unit_test_setup_teardown(checkpoints_run_off_the_writer, setup, teardown),
    cmocka_unit_test_setup_teardown(readers_run_while_writing, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
