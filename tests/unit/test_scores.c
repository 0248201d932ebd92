/* Unit tests for scores in the SQLite store: adding (single, batch, all or
 * nothing, idempotency keys), listing with every filter and cursors,
 * inline scores written with their span (and only for new spans), scores
 * in the trace detail, the score filters of the trace and span lists,
 * the summary for the metrics API, project isolation and reopening. Each
 * test gets a fresh store in a temp directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/err.h"
#include "store/store.h"

#define T0 1767323045000000000LL /* 2026-01-02T03:04:05Z */
#define MS 1000000LL
#define SEC 1000000000LL

#include "store_fixture.h"

static int open_store(fixture_t *f) { return fixture_reopen(f, 0); }
#define setup fixture_setup
#define teardown fixture_teardown

/* ---- helpers ------------------------------------------------------------- */

static void tid_of(uint8_t out[16], int trace) {
  memset(out, 0, 16);
  out[0] = 0xab;
  out[15] = (uint8_t)trace;
}

static void sid_of(uint8_t out[8], int trace, int span) {
  memset(out, 0, 8);
  out[0] = 0x80; /* high bit set: the stored integer is negative */
  out[5] = (uint8_t)trace;
  out[7] = (uint8_t)span;
}

static lt_score_t numeric(int trace, const char *name, double v, int64_t t) {
  lt_score_t sc = {0};
  sc.has_trace = true;
  tid_of(sc.trace_id, trace);
  sc.name = lt_str_from(name);
  sc.data_type = LT_SCORE_NUMERIC;
  sc.value = v;
  sc.time_ns = t;
  return sc;
}

static lt_score_t on_span(lt_score_t sc, int trace, int span) {
  sc.has_span = true;
  sid_of(sc.span_id, trace, span);
  return sc;
}

static int64_t add1(fixture_t *f, int64_t project, lt_score_t sc, bool *dup) {
  lt_score_result_t res;
  assert_int_equal(lt_store_score_add(f->store, project, &sc, 1, &res), 0);
  if (dup) *dup = res.duplicate;
  return res.id;
}

static json_t *list(fixture_t *f, const lt_score_query_t *q) {
  json_t *out = NULL;
  assert_int_equal(lt_store_scores_list(f->store, q, &out), 0);
  return out;
}

/* The ids of a list's rows, newest first, as "5,3,1". */
static const char *ids(json_t *res) {
  static char buf[1024];
  buf[0] = 0;
  size_t i;
  json_t *row;
  json_array_foreach(json_object_get(res, "data"), i, row)
    sprintf(buf + strlen(buf), "%s%lld", i ? "," : "", (long long)json_integer_value(json_object_get(row, "id")));
  return buf;
}

static const char *str(json_t *o, const char *key) {
  json_t *v = json_object_get(o, key);
  return json_is_string(v) ? json_string_value(v) : "(not a string)";
}

/* Writes one trace: root span 1 and child span 2, the child with inline
 * scores when given. Returns the number of spans inserted. */
static size_t write_trace(fixture_t *f, int64_t project, int trace, const char *inline_scores) {
  lt_batch_t *b = lt_batch_new(project, 1 << 20);
  for (int k = 1; k <= 2; k++) {
    lt_span_t *s = lt_batch_add_span(b);
    assert_non_null(s);
    tid_of(s->trace_id, trace);
    sid_of(s->span_id, trace, k);
    if (k == 2) {
      s->has_parent = true;
      sid_of(s->parent_span_id, trace, 1);
      if (inline_scores) s->scores = lt_arena_strdup(b->arena, inline_scores, strlen(inline_scores));
    }
    s->name = lt_str_from(k == 1 ? "root" : "child");
    s->start_ns = T0 + trace * SEC + k * MS;
    s->end_ns = s->start_ns + 100 * MS;
    s->otel_kind = 1;
  }
  assert_int_equal(lt_store_write(f->store, &b, 1), 0);
  size_t n = b->n_inserted;
  lt_batch_free(b);
  return n;
}

static json_t *trace_detail(fixture_t *f, int64_t project, int trace) {
  uint8_t tid[16];
  tid_of(tid, trace);
  json_t *out = NULL;
  assert_int_equal(f->store->ops->trace_get(f->store, project, tid, &out), 0);
  return out;
}

static size_t count_traces(fixture_t *f, lt_query_t *q) {
  json_t *out = NULL;
  assert_int_equal(f->store->ops->traces_list(f->store, q, &out), 0);
  size_t n = json_array_size(json_object_get(out, "data"));
  json_decref(out);
  return n;
}

/* ---- tests --------------------------------------------------------------- */

static void add_and_list_each_type(void **st) {
  fixture_t *f = *st;
  lt_score_t n = numeric(1, "accuracy", 0.75, T0);
  n.comment = LT_STR("close enough");
  lt_score_t b = numeric(1, "correct", 1, T0 + 1);
  b.data_type = LT_SCORE_BOOLEAN;
  b.source = LT_SCORE_HUMAN;
  lt_score_t c = {0};
  c.session_id = LT_STR("sess-1");
  c.name = LT_STR("tone");
  c.data_type = LT_SCORE_CATEGORICAL;
  c.string_value = LT_STR("polite");
  c.source = LT_SCORE_EVALUATOR;
  c.time_ns = T0 + 2;
  int64_t i1 = add1(f, 1, n, NULL), i2 = add1(f, 1, b, NULL), i3 = add1(f, 1, c, NULL);
  assert_true(i1 > 0 && i2 > i1 && i3 > i2);

  lt_score_query_t q;
  lt_score_query_init(&q, 1);
  json_t *res = list(f, &q);
  json_t *rows = json_object_get(res, "data");
  assert_int_equal(json_array_size(rows), 3);
  json_t *r = json_array_get(rows, 0); /* newest first */
  assert_string_equal(str(r, "name"), "tone");
  assert_string_equal(str(r, "data_type"), "categorical");
  assert_string_equal(str(r, "string_value"), "polite");
  assert_string_equal(str(r, "session_id"), "sess-1");
  assert_string_equal(str(r, "source"), "evaluator");
  assert_true(json_is_null(json_object_get(r, "value")));
  assert_true(json_is_null(json_object_get(r, "trace_id")));
  r = json_array_get(rows, 1);
  assert_string_equal(str(r, "data_type"), "boolean");
  assert_true(json_real_value(json_object_get(r, "value")) == 1.0);
  assert_string_equal(str(r, "source"), "human");
  r = json_array_get(rows, 2);
  assert_string_equal(str(r, "name"), "accuracy");
  assert_string_equal(str(r, "trace_id"), "ab00000000000000000000000000" "0001");
  assert_true(json_is_null(json_object_get(r, "span_id")));
  assert_true(json_real_value(json_object_get(r, "value")) == 0.75);
  assert_string_equal(str(r, "comment"), "close enough");
  assert_string_equal(str(r, "source"), "api");
  assert_string_equal(str(r, "time"), "2026-01-02T03:04:05.000Z");
  assert_int_equal(json_integer_value(json_object_get(r, "time_ns")), T0);
  assert_true(json_is_null(json_object_get(res, "next_cursor")));
  json_decref(res);
}

static void time_defaults_to_now(void **st) {
  fixture_t *f = *st;
  add1(f, 1, numeric(1, "a", 1, 0), NULL);
  lt_score_query_t q;
  lt_score_query_init(&q, 1);
  json_t *res = list(f, &q);
  int64_t t = json_integer_value(json_object_get(json_array_get(json_object_get(res, "data"), 0), "time_ns"));
  assert_true(t > T0); /* written after 2026-01-02 */
  json_decref(res);
}

static void invalid_scores_are_rejected(void **st) {
  fixture_t *f = *st;
  lt_score_result_t res[2];
  lt_score_t bad[] = {numeric(1, "", 1, T0), numeric(1, "a", NAN, T0), numeric(1, "a", 2, T0), numeric(1, "a", 1, T0)};
  bad[2].data_type = LT_SCORE_BOOLEAN;                        /* boolean must be 0 or 1 */
  bad[3].session_id = LT_STR("s");                            /* two targets */
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    assert_int_equal(lt_store_score_add(f->store, 1, &bad[i], 1, res), LT_EINVAL);
  lt_score_t cat = numeric(1, "label", 0, T0);
  cat.data_type = LT_SCORE_CATEGORICAL; /* without a label */
  assert_int_equal(lt_store_score_add(f->store, 1, &cat, 1, res), LT_EINVAL);
  lt_score_t span_only = {0};
  span_only.has_span = true;
  span_only.name = LT_STR("x");
  assert_int_equal(lt_store_score_add(f->store, 1, &span_only, 1, res), LT_EINVAL);
  /* A bad item anywhere stores nothing of the batch. */
  lt_score_t batch[2] = {numeric(1, "ok", 1, T0), numeric(1, "", 1, T0)};
  assert_int_equal(lt_store_score_add(f->store, 1, batch, 2, res), LT_EINVAL);
  lt_score_query_t q;
  lt_score_query_init(&q, 1);
  json_t *out = list(f, &q);
  assert_string_equal(ids(out), "");
  json_decref(out);
}

static void batch_and_idempotency(void **st) {
  fixture_t *f = *st;
  lt_score_t batch[3] = {numeric(1, "a", 1, T0), numeric(1, "b", 2, T0), numeric(1, "c", 3, T0)};
  batch[0].idempotency_key = LT_STR("k-a");
  batch[2].idempotency_key = LT_STR("k-a"); /* repeats item 0 inside the batch */
  lt_score_result_t res[3];
  assert_int_equal(lt_store_score_add(f->store, 1, batch, 3, res), 0);
  assert_false(res[0].duplicate);
  assert_false(res[1].duplicate);
  assert_true(res[2].duplicate);
  assert_int_equal(res[2].id, res[0].id);
  /* Again later: the existing id, nothing inserted. */
  bool dup = false;
  lt_score_t again = numeric(1, "a", 42, T0);
  again.idempotency_key = LT_STR("k-a");
  assert_int_equal(add1(f, 1, again, &dup), res[0].id);
  assert_true(dup);
  /* The same key in another project is another score. */
  int64_t p2 = 0;
  assert_int_equal(f->store->ops->project_create(f->store, "other", &p2), 0);
  assert_int_not_equal(add1(f, p2, again, &dup), res[0].id);
  assert_false(dup);

  lt_score_query_t q;
  lt_score_query_init(&q, 1);
  json_t *out = list(f, &q);
  assert_int_equal(json_array_size(json_object_get(out, "data")), 2);
  json_decref(out);
}

static void list_filters_and_cursor(void **st) {
  fixture_t *f = *st;
  for (int i = 0; i < 10; i++) {
    lt_score_t sc = numeric(1 + i % 2, i < 5 ? "acc" : "rel", i, T0 + i * SEC);
    if (i == 9) sc = on_span(sc, 2, 7);
    if (i == 8) sc.source = LT_SCORE_EVALUATOR;
    add1(f, 1, sc, NULL);
  }
  lt_score_query_t q;
  lt_score_query_init(&q, 1);
  q.name = LT_STR("acc");
  json_t *out = list(f, &q);
  assert_string_equal(ids(out), "5,4,3,2,1");
  json_decref(out);

  lt_score_query_init(&q, 1);
  q.has_trace = true;
  tid_of(q.trace_id, 2);
  out = list(f, &q);
  assert_string_equal(ids(out), "10,8,6,4,2");
  json_decref(out);

  q.has_span = true;
  sid_of(q.span_id, 2, 7);
  out = list(f, &q);
  assert_string_equal(ids(out), "10");
  json_decref(out);

  lt_score_query_init(&q, 1);
  q.source = LT_SCORE_EVALUATOR;
  out = list(f, &q);
  assert_string_equal(ids(out), "9");
  json_decref(out);

  lt_score_query_init(&q, 1);
  q.has_min = q.has_max = true;
  q.min_value = 2.5;
  q.max_value = 6;
  q.from_ns = T0 + 3 * SEC;
  q.to_ns = T0 + 6 * SEC; /* exclusive: drops value 6 */
  out = list(f, &q);
  assert_string_equal(ids(out), "6,5,4");
  json_decref(out);

  lt_score_query_init(&q, 1);
  q.data_type = LT_SCORE_CATEGORICAL;
  out = list(f, &q);
  assert_string_equal(ids(out), "");
  json_decref(out);

  /* Pages of 4 cover every row once, newest first. */
  lt_score_query_init(&q, 1);
  q.limit = 4;
  char seen[256] = "", cursor[128] = "";
  for (int page = 0; page < 5; page++) {
    q.cursor = lt_str_from(cursor);
    out = list(f, &q);
    sprintf(seen + strlen(seen), "%s%s", page ? "|" : "", ids(out));
    json_t *next = json_object_get(out, "next_cursor");
    if (json_is_null(next)) {
      json_decref(out);
      break;
    }
    snprintf(cursor, sizeof cursor, "%s", json_string_value(next));
    json_decref(out);
  }
  assert_string_equal(seen, "10,9,8,7|6,5,4,3|2,1");

  /* A cursor of another list does not fit. */
  lt_score_query_init(&q, 1);
  q.cursor = LT_STR("zz");
  json_t *bad = NULL;
  assert_int_equal(lt_store_scores_list(f->store, &q, &bad), LT_EINVAL);
}

static void inline_scores_are_stored_with_new_spans_only(void **st) {
  fixture_t *f = *st;
  const char *inl = "[{\"name\":\"faithfulness\",\"value\":0.8,\"comment\":\"ok\"},"
                    "{\"name\":\"toxic\",\"value\":false,\"source\":\"human\"},"
                    "{\"name\":\"label\",\"string_value\":\"relevant\"},"
                    "{\"name\":\"\",\"value\":1},"            /* no name: skipped */
                    "{\"name\":\"x\",\"value\":[1]},"        /* not a value: skipped */
                    "{\"name\":\"y\",\"value\":1,\"source\":\"robot\"},"
                    "42]";
  assert_int_equal(write_trace(f, 1, 3, inl), 2);
  /* The retry stores no span, so no score twice. */
  assert_int_equal(write_trace(f, 1, 3, inl), 0);
  /* Text that is not JSON never fails the write. */
  assert_int_equal(write_trace(f, 1, 4, "{not json"), 2);

  lt_score_query_t q;
  lt_score_query_init(&q, 1);
  json_t *out = list(f, &q);
  json_t *rows = json_object_get(out, "data");
  assert_int_equal(json_array_size(rows), 3);
  size_t i;
  json_t *r;
  json_array_foreach(rows, i, r) {
    assert_string_equal(str(r, "span_id"), "8000000000030002");
    assert_int_equal(json_integer_value(json_object_get(r, "time_ns")), T0 + 3 * SEC + 2 * MS + 100 * MS);
    const char *name = str(r, "name");
    if (!strcmp(name, "faithfulness")) {
      assert_string_equal(str(r, "source"), "evaluator");
      assert_string_equal(str(r, "data_type"), "numeric");
      assert_string_equal(str(r, "comment"), "ok");
    } else if (!strcmp(name, "toxic")) {
      assert_string_equal(str(r, "source"), "human");
      assert_string_equal(str(r, "data_type"), "boolean");
      assert_true(json_real_value(json_object_get(r, "value")) == 0.0);
    } else {
      assert_string_equal(name, "label");
      assert_string_equal(str(r, "data_type"), "categorical");
      assert_string_equal(str(r, "string_value"), "relevant");
    }
  }
  json_decref(out);
}

static void trace_detail_shows_scores(void **st) {
  fixture_t *f = *st;
  write_trace(f, 1, 5, "[{\"name\":\"inline\",\"value\":1}]");
  add1(f, 1, numeric(5, "trace-level", 0.5, T0), NULL);
  add1(f, 1, on_span(numeric(5, "on-root", 2, T0 + 1), 5, 1), NULL);
  add1(f, 1, on_span(numeric(5, "on-missing-span", 3, T0 + 2), 5, 9), NULL);
  add1(f, 1, numeric(6, "other trace", 1, T0), NULL);
  json_t *d = trace_detail(f, 1, 5);
  json_t *top = json_object_get(d, "scores");
  assert_int_equal(json_array_size(top), 2);
  assert_string_equal(str(json_array_get(top, 0), "name"), "trace-level");
  assert_string_equal(str(json_array_get(top, 1), "name"), "on-missing-span");
  json_t *spans = json_object_get(d, "spans");
  assert_int_equal(json_array_size(spans), 2);
  json_t *root = json_array_get(spans, 0), *child = json_array_get(spans, 1);
  assert_string_equal(str(root, "name"), "root");
  assert_int_equal(json_array_size(json_object_get(root, "scores")), 1);
  assert_string_equal(str(json_array_get(json_object_get(root, "scores"), 0), "name"), "on-root");
  assert_int_equal(json_array_size(json_object_get(child, "scores")), 1);
  assert_string_equal(str(json_array_get(json_object_get(child, "scores"), 0), "name"), "inline");
  json_decref(d);
  /* A trace without scores has empty arrays. */
  write_trace(f, 1, 7, NULL);
  d = trace_detail(f, 1, 7);
  assert_int_equal(json_array_size(json_object_get(d, "scores")), 0);
  assert_true(json_is_array(json_object_get(json_array_get(json_object_get(d, "spans"), 0), "scores")));
  json_decref(d);
}

static void list_filters_by_score_and_feedback(void **st) {
  fixture_t *f = *st;
  for (int t = 1; t <= 4; t++) write_trace(f, 1, t, NULL);
  add1(f, 1, numeric(1, "acc", 0.2, T0), NULL);
  add1(f, 1, on_span(numeric(2, "acc", 0.9, T0), 2, 2), NULL); /* on a span: counts for its trace */
  add1(f, 1, numeric(3, LT_SCORE_FEEDBACK, 1, T0), NULL);
  add1(f, 1, numeric(4, LT_SCORE_FEEDBACK, -1, T0), NULL);
  lt_query_t q;
  lt_query_init(&q, 1);
  q.score_name = LT_STR("acc");
  assert_int_equal(count_traces(f, &q), 2);
  q.has_score_min = true;
  q.score_min = 0.5;
  assert_int_equal(count_traces(f, &q), 1);
  q.has_score_max = true;
  q.score_max = 0.8;
  assert_int_equal(count_traces(f, &q), 0);
  lt_query_init(&q, 1);
  q.feedback = 1;
  assert_int_equal(count_traces(f, &q), 1);
  q.feedback = -1;
  assert_int_equal(count_traces(f, &q), 1);
  /* Span search: only the span that carries the score. */
  lt_query_init(&q, 1);
  q.score_name = LT_STR("acc");
  json_t *out = NULL;
  assert_int_equal(f->store->ops->spans_list(f->store, &q, &out), 0);
  json_t *rows = json_object_get(out, "data");
  assert_int_equal(json_array_size(rows), 1);
  assert_string_equal(str(json_array_get(rows, 0), "span_id"), "8000000000020002");
  json_decref(out);
}

static void summary_shape(void **st) {
  fixture_t *f = *st;
  add1(f, 1, numeric(1, "acc", 0.5, T0), NULL);
  add1(f, 1, numeric(1, "acc", 1.0, T0 + 30 * SEC), NULL);
  add1(f, 1, numeric(2, "acc", 0.0, T0 + 90 * SEC), NULL);
  lt_score_t c = numeric(1, "tone", 0, T0);
  c.data_type = LT_SCORE_CATEGORICAL;
  c.string_value = LT_STR("polite");
  add1(f, 1, c, NULL);
  add1(f, 1, c, NULL);
  c.string_value = LT_STR("rude");
  add1(f, 1, c, NULL);
  add1(f, 1, numeric(1, LT_SCORE_FEEDBACK, 1, T0), NULL);
  add1(f, 1, numeric(2, LT_SCORE_FEEDBACK, -1, T0), NULL);
  add1(f, 1, numeric(2, LT_SCORE_FEEDBACK, 1, T0), NULL);
  add1(f, 1, numeric(1, "late", 1, T0 + 3600 * SEC), NULL); /* outside the window */

  json_t *out = NULL;
  /* Buckets of 60 s from T0 (…:04:05 is 5 s into its minute). */
  assert_int_equal(lt_store_scores_summary(f->store, 1, T0, T0 + 600 * SEC, 60, &out), 0);
  json_t *scores = json_object_get(out, "scores");
  assert_int_equal(json_array_size(scores), 3); /* by name: acc, tone, user_feedback */
  json_t *acc = json_array_get(scores, 0), *tone = json_array_get(scores, 1), *fb = json_array_get(scores, 2);
  assert_string_equal(str(acc, "name"), "acc");
  assert_int_equal(json_integer_value(json_object_get(acc, "count")), 3);
  assert_int_equal(json_integer_value(json_object_get(acc, "value_count")), 3);
  assert_true(fabs(json_real_value(json_object_get(acc, "avg")) - 0.5) < 1e-9);
  assert_true(json_real_value(json_object_get(acc, "min")) == 0.0);
  assert_true(json_real_value(json_object_get(acc, "max")) == 1.0);
  json_t *buckets = json_object_get(acc, "buckets");
  assert_int_equal(json_array_size(buckets), 2);
  json_t *b0 = json_array_get(buckets, 0);
  assert_int_equal(json_integer_value(json_object_get(b0, "start_ns")), T0 - 5 * SEC);
  assert_int_equal(json_integer_value(json_object_get(b0, "count")), 2);
  assert_true(fabs(json_real_value(json_object_get(b0, "avg")) - 0.75) < 1e-9);
  assert_string_equal(str(tone, "name"), "tone");
  assert_true(json_is_null(json_object_get(tone, "avg")));
  assert_int_equal(json_integer_value(json_object_get(json_object_get(tone, "labels"), "polite")), 2);
  assert_int_equal(json_integer_value(json_object_get(json_object_get(tone, "labels"), "rude")), 1);
  assert_string_equal(json_string_value(json_array_get(json_object_get(tone, "data_types"), 0)), "categorical");
  assert_string_equal(str(fb, "name"), LT_SCORE_FEEDBACK);
  json_t *feedback = json_object_get(out, "feedback");
  assert_int_equal(json_integer_value(json_object_get(feedback, "up")), 2);
  assert_int_equal(json_integer_value(json_object_get(feedback, "down")), 1);
  assert_int_equal(json_integer_value(json_object_get(feedback, "traces")), 2);
  json_decref(out);

  /* No buckets asked for; an open window sees everything. */
  assert_int_equal(lt_store_scores_summary(f->store, 1, 0, 0, 0, &out), 0);
  assert_int_equal(json_array_size(json_object_get(out, "scores")), 4);
  assert_int_equal(json_array_size(json_object_get(json_array_get(json_object_get(out, "scores"), 0), "buckets")), 0);
  json_decref(out);
  assert_int_equal(lt_store_scores_summary(f->store, 1, 0, 0, -1, &out), LT_EINVAL);
  /* An empty project: no names, zero feedback. */
  assert_int_equal(lt_store_scores_summary(f->store, 99, 0, 0, 60, &out), 0);
  assert_int_equal(json_array_size(json_object_get(out, "scores")), 0);
  assert_int_equal(json_integer_value(json_object_get(json_object_get(out, "feedback"), "up")), 0);
  json_decref(out);
}

static void projects_are_isolated_and_scores_persist(void **st) {
  fixture_t *f = *st;
  int64_t p2 = 0;
  assert_int_equal(f->store->ops->project_create(f->store, "acme", &p2), 0);
  write_trace(f, 1, 1, NULL);
  write_trace(f, p2, 1, NULL); /* the same trace id in another project */
  add1(f, 1, numeric(1, "mine", 1, T0), NULL);
  add1(f, p2, numeric(1, "theirs", 1, T0), NULL);

  lt_store_close(f->store);
  f->store = NULL;
  assert_int_equal(open_store(f), 0);

  lt_score_query_t q;
  lt_score_query_init(&q, p2);
  json_t *out = list(f, &q);
  assert_int_equal(json_array_size(json_object_get(out, "data")), 1);
  assert_string_equal(str(json_array_get(json_object_get(out, "data"), 0), "name"), "theirs");
  json_decref(out);
  json_t *d = trace_detail(f, 1, 1);
  assert_int_equal(json_array_size(json_object_get(d, "scores")), 1);
  assert_string_equal(str(json_array_get(json_object_get(d, "scores"), 0), "name"), "mine");
  json_decref(d);
  lt_query_t tq;
  lt_query_init(&tq, p2);
  tq.score_name = LT_STR("mine");
  assert_int_equal(count_traces(f, &tq), 0);
  tq.score_name = LT_STR("theirs");
  assert_int_equal(count_traces(f, &tq), 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(add_and_list_each_type, setup, teardown),
    cmocka_unit_test_setup_teardown(time_defaults_to_now, setup, teardown),
    cmocka_unit_test_setup_teardown(invalid_scores_are_rejected, setup, teardown),
    cmocka_unit_test_setup_teardown(batch_and_idempotency, setup, teardown),
    cmocka_unit_test_setup_teardown(list_filters_and_cursor, setup, teardown),
    cmocka_unit_test_setup_teardown(inline_scores_are_stored_with_new_spans_only, setup, teardown),
    cmocka_unit_test_setup_teardown(trace_detail_shows_scores, setup, teardown),
    cmocka_unit_test_setup_teardown(list_filters_by_score_and_feedback, setup, teardown),
    cmocka_unit_test_setup_teardown(summary_shape, setup, teardown),
    cmocka_unit_test_setup_teardown(projects_are_isolated_and_scores_persist, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
