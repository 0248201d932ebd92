/* Unit tests for rollups (docs/rollups.md) through the store's metrics
 * operation: counts, errors, token and cost sums per model and per bucket
 * at every resolution; duplicates counted once; wrapper spans counted in
 * count and latency only; unknown cost is null and counted as unpriced;
 * projects isolated; bucket edges and pre-1970 times; the "(other)"
 * folding past the dimension cap; and a failed write (a failing SQL
 * statement, or any single failed allocation) leaves no rollup behind and
 * no stale dimension id in the writer's cache. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <spawn.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "core/err.h"
#include "core/mem.h"
#include "store/store.h"

#define MS 1000000LL
#define SEC 1000000000LL
#define MIN (60 * SEC)
#define HOUR (3600 * SEC)
#define DAY (86400 * SEC)
#define DAY0 (1767312000LL * SEC) /* 2026-01-02T00:00:00Z */
#define H0 (DAY0 + 3 * HOUR)      /* 2026-01-02T03:00:00Z */
/* Latency percentiles come from a sketch with 1% relative error and are
 * rendered rounded to 0.001. */
#define REL 0.01

#include "store_fixture.h"

#define fixture_new fixture_init
#define fixture_free fixture_fini
#define setup fixture_setup
#define teardown fixture_teardown

/* ---- building spans -------------------------------------------------------- */

static lt_str_t S(lt_batch_t *b, const char *s) { return lt_arena_strdup(b->arena, s, strlen(s)); }

static void ids_of(lt_span_t *s, int trace, int span) {
  memset(s->trace_id, 0, 16);
  memset(s->span_id, 0, 8);
  s->trace_id[0] = 0xcd;
  s->trace_id[13] = (uint8_t)(trace >> 16);
  s->trace_id[14] = (uint8_t)(trace >> 8);
  s->trace_id[15] = (uint8_t)trace;
  s->span_id[0] = 0x11;
  s->span_id[5] = (uint8_t)(span >> 16);
  s->span_id[6] = (uint8_t)(span >> 8);
  s->span_id[7] = (uint8_t)span;
}

/* A plain span (no model, no tokens): a tool call, say. */
static lt_span_t *add_plain(lt_batch_t *b, int trace, int span, const char *name, int64_t start, int64_t dur) {
  lt_span_t *s = lt_batch_add_span(b);
  assert_non_null(s);
  ids_of(s, trace, span);
  s->name = S(b, name);
  s->start_ns = start;
  s->end_ns = start + dur;
  s->otel_kind = 1;
  s->kind = LT_KIND_TOOL;
  return s;
}

/* An LLM span. cost_nusd < 0: no cost (UNKNOWN); else a reported cost. */
static lt_span_t *add_llm(lt_batch_t *b, int trace, int span, const char *provider, const char *model,
                          int64_t start, int64_t dur, int64_t in, int64_t out, int64_t cost_nusd) {
  lt_span_t *s = add_plain(b, trace, span, "chat", start, dur);
  s->kind = LT_KIND_LLM;
  s->otel_kind = 3;
  s->provider = S(b, provider);
  s->request_model = S(b, model);
  s->tokens[LT_TOK_INPUT] = in;
  s->tokens[LT_TOK_OUTPUT] = out;
  if (in >= 0 && out >= 0) s->tokens[LT_TOK_TOTAL] = in + out;
  if (cost_nusd >= 0) {
    s->cost_source = LT_COST_REPORTED;
    s->cost_total = cost_nusd;
  }
  return s;
}

static void write_ok(fixture_t *f, lt_batch_t *b, size_t expect_inserted) {
  assert_int_equal(lt_store_write(f->store, &b, 1), 0);
  assert_int_equal(b->n_inserted, expect_inserted);
  lt_batch_free(b);
}

/* ---- querying ---------------------------------------------------------------- */

static void mq_init(lt_metrics_query_t *q, int64_t project, int64_t from, int64_t to, int64_t interval_s) {
  memset(q, 0, sizeof *q);
  q->project_id = project;
  q->from_ns = from;
  q->to_ns = to;
  q->interval_s = interval_s;
  q->group_by = LT_GROUP_NONE;
  q->max_groups = 10;
  q->kind = q->status = -1;
  q->fields = LT_MF_ALL;
}

static json_t *run(fixture_t *f, const lt_metrics_query_t *q) {
  json_t *out = NULL;
  int rc = f->store->ops->metrics(f->store, q, &out);
  if (rc) fail_msg("metrics query failed: %s", lt_strerror(rc));
  assert_non_null(out);
  return out;
}

static json_t *run_simple(fixture_t *f, int64_t project, int64_t from, int64_t to, int64_t interval_s,
                          lt_group_t g) {
  lt_metrics_query_t q;
  mq_init(&q, project, from, to, interval_s);
  q.group_by = g;
  return run(f, &q);
}

static json_t *field(json_t *o, const char *k) {
  json_t *v = json_object_get(o, k);
  if (!v) fail_msg("figure '%s' missing", k);
  return v;
}

static int64_t ival(json_t *o, const char *k) {
  json_t *v = field(o, k);
  if (!json_is_integer(v)) fail_msg("figure '%s' is not an integer", k);
  return (int64_t)json_integer_value(v);
}

static double dval(json_t *o, const char *k) {
  json_t *v = field(o, k);
  if (!json_is_number(v)) fail_msg("figure '%s' is not a number (null?)", k);
  return json_number_value(v);
}

static void assert_null_fig(json_t *o, const char *k) {
  if (!json_is_null(field(o, k))) fail_msg("figure '%s' should be null", k);
}

static void assert_close(double got, double want, double rel, const char *what) {
  double tol = fabs(want) * rel + 1e-9;
  if (fabs(got - want) > tol) fail_msg("%s: got %.12g, want %.12g (tolerance %.3g)", what, got, want, tol);
}

/* The cost in nano-dollars, from the USD figure. */
static int64_t cost_nusd(json_t *o) { return llround(dval(o, "cost_usd") * 1e9); }

static json_t *totals(json_t *res) { return field(res, "totals"); }

/* The series of a group value; fails when absent or listed twice. */
static json_t *series(json_t *res, const char *group) {
  json_t *found = NULL, *s;
  size_t i;
  json_array_foreach(field(res, "series"), i, s) {
    json_t *g = json_object_get(s, "group");
    if (json_is_string(g) && !strcmp(json_string_value(g), group)) {
      if (found) fail_msg("group '%s' is listed twice", group);
      found = s;
    }
  }
  if (!found) fail_msg("no series for group '%s'", group);
  return found;
}

static bool has_series(json_t *res, const char *group) {
  json_t *s;
  size_t i;
  json_array_foreach(field(res, "series"), i, s) {
    json_t *g = json_object_get(s, "group");
    if (json_is_string(g) && !strcmp(json_string_value(g), group)) return true;
  }
  return false;
}

/* How many series carry a group value, and their count summed. */
static int groups_named(json_t *res, const char *group) {
  int n = 0;
  json_t *s;
  size_t i;
  json_array_foreach(field(res, "series"), i, s) {
    json_t *g = json_object_get(s, "group");
    if (json_is_string(g) && !strcmp(json_string_value(g), group)) n++;
  }
  return n;
}

static int64_t count_of_groups(json_t *res, const char *group) {
  int64_t n = 0;
  json_t *s;
  size_t i;
  json_array_foreach(field(res, "series"), i, s) {
    json_t *g = json_object_get(s, "group");
    if (json_is_string(g) && !strcmp(json_string_value(g), group)) n += ival(field(s, "totals"), "count");
  }
  return n;
}

static json_t *point(json_t *series_obj, size_t i) {
  json_t *p = json_array_get(field(series_obj, "points"), i);
  if (!p) fail_msg("no point %zu", i);
  return p;
}

static int64_t series_count_sum(json_t *res) {
  int64_t n = 0;
  json_t *s;
  size_t i;
  json_array_foreach(field(res, "series"), i, s) n += ival(field(s, "totals"), "count");
  return n;
}

/* ---- tests ------------------------------------------------------------------------- */

/* Three hours of spans of two models, reported costs, a few errors. */
static lt_batch_t *three_hours(void) {
  lt_batch_t *b = lt_batch_new(1, 1 << 20);
  /* hour 0: model-a, 100/200/300 ms, tokens (10,5) (20,10) (30,15) */
  lt_span_t *s = add_llm(b, 1, 1, "openai", "model-a", H0 + 5 * MIN, 100 * MS, 10, 5, 1000);
  s->ttft_ns = 50 * MS;
  s->status = LT_STATUS_OK;
  s = add_llm(b, 2, 1, "openai", "model-a", H0 + 10 * MIN, 200 * MS, 20, 10, 2000);
  s->status = LT_STATUS_ERROR;
  s->ttft_ns = 80 * MS;
  s = add_llm(b, 3, 1, "openai", "model-a", H0 + 10 * MIN + 30 * SEC, 300 * MS, 30, 15, 3000);
  s->status = LT_STATUS_OK;
  /* hour 1: model-b (anthropic), a response model taking precedence */
  s = add_llm(b, 4, 1, "anthropic", "model-b-alias", H0 + HOUR + 59 * MIN, 1000 * MS, 100, 50, 10000);
  s->response_model = S(b, "model-b");
  s->status = LT_STATUS_ERROR;
  s = add_llm(b, 5, 1, "anthropic", "model-b", H0 + HOUR, 2000 * MS, 200, 100, 10000);
  /* hour 2: model-a again, and a tool call without tokens or cost */
  add_llm(b, 6, 1, "openai", "model-a", H0 + 2 * HOUR + 1, 40 * MS, 1, 1, 7);
  add_plain(b, 6, 2, "lookup", H0 + 2 * HOUR + 2 * SEC, 20 * MS);
  return b;
}

static void counts_tokens_and_cost_per_model_and_hour(void **st) {
  fixture_t *f = *st;
  write_ok(f, three_hours(), 7);

  json_t *res = run_simple(f, 1, H0, H0 + 3 * HOUR, 3600, LT_GROUP_NONE);
  assert_string_equal(json_string_value(field(res, "interval")), "1h");
  assert_string_equal(json_string_value(field(res, "source")), "rollups");
  json_t *t = totals(res);
  assert_int_equal(ival(t, "count"), 7);
  assert_int_equal(ival(t, "errors"), 2);
  assert_close(dval(t, "error_rate"), 2.0 / 7, 1e-12, "error_rate");
  assert_int_equal(ival(t, "input_tokens"), 10 + 20 + 30 + 100 + 200 + 1);
  assert_int_equal(ival(t, "output_tokens"), 5 + 10 + 15 + 50 + 100 + 1);
  assert_int_equal(ival(t, "total_tokens"), 361 + 181);
  assert_int_equal(ival(t, "cache_read_tokens"), 0);
  assert_int_equal(ival(t, "reasoning_tokens"), 0);
  assert_int_equal(cost_nusd(t), 1000 + 2000 + 3000 + 10000 + 10000 + 7);
  /* mean over the 6 priced spans; the tool span has no cost */
  assert_close(dval(t, "cost_per_request"), 26007e-9 / 6, 1e-9, "cost_per_request");
  /* mean over the 6 spans that reported tokens, not the 7 spans */
  assert_close(dval(t, "tokens_per_request"), 542.0 / 6, 1e-9, "tokens_per_request");
  assert_int_equal(ival(t, "unpriced_spans"), 0);
  /* latencies 20, 40, 100, 200, 300, 1000, 2000 ms */
  assert_close(dval(t, "latency_p50_ms"), 200, REL, "latency_p50_ms");
  assert_close(dval(t, "latency_p90_ms"), 1000, REL, "latency_p90_ms");
  assert_close(dval(t, "latency_p99_ms"), 1000, REL, "latency_p99_ms");
  /* TTFT 50 and 80 ms: rank floor(0.5 * 1) = 0 */
  assert_close(dval(t, "ttft_p50_ms"), 50, REL, "ttft_p50_ms");
  assert_close(dval(t, "ttft_p99_ms"), 50, REL, "ttft_p99_ms");

  json_t *pts = field(json_array_get(field(res, "series"), 0), "points");
  assert_int_equal(json_array_size(field(res, "series")), 1);
  assert_true(json_is_null(field(json_array_get(field(res, "series"), 0), "group")));
  assert_int_equal(json_array_size(pts), 3);
  int64_t want_n[3] = {3, 2, 2}, want_err[3] = {1, 1, 0}, want_in[3] = {60, 300, 1};
  const char *want_time[3] = {"2026-01-02T03:00:00Z", "2026-01-02T04:00:00Z", "2026-01-02T05:00:00Z"};
  for (size_t i = 0; i < 3; i++) {
    json_t *p = json_array_get(pts, i);
    assert_string_equal(json_string_value(field(p, "time")), want_time[i]);
    assert_int_equal(ival(p, "count"), want_n[i]);
    assert_int_equal(ival(p, "errors"), want_err[i]);
    assert_int_equal(ival(p, "input_tokens"), want_in[i]);
  }
  /* hour 0: TPS = 5 / 0.05 s = 100, 10 / 0.12 s = 83.3, 15 / 0.3 s = 50 */
  assert_close(dval(json_array_get(pts, 0), "tps_p50"), 10 / 0.12, REL, "tps_p50");
  assert_close(dval(json_array_get(pts, 0), "latency_p50_ms"), 200, REL, "hour 0 latency_p50_ms");
  assert_int_equal(cost_nusd(json_array_get(pts, 0)), 6000);
  assert_close(dval(json_array_get(pts, 0), "tokens_per_request_p50"), 30, REL, "tokens_per_request_p50");
  /* hour 2: the tool span adds latency but no TTFT */
  assert_null_fig(json_array_get(pts, 1), "ttft_p50_ms");
  assert_close(dval(json_array_get(pts, 2), "latency_p50_ms"), 20, REL, "hour 2 latency_p50_ms");
  json_decref(res);

  /* by model: the response model wins over the request model */
  res = run_simple(f, 1, H0, H0 + 3 * HOUR, 3600, LT_GROUP_MODEL);
  assert_string_equal(json_string_value(field(res, "group_by")), "model");
  json_t *a = field(series(res, "model-a"), "totals"), *bm = field(series(res, "model-b"), "totals");
  assert_false(has_series(res, "model-b-alias"));
  assert_int_equal(ival(a, "count"), 4);
  assert_int_equal(ival(a, "errors"), 1);
  assert_int_equal(cost_nusd(a), 6007);
  assert_int_equal(ival(a, "total_tokens"), 90 + 2);
  assert_int_equal(ival(bm, "count"), 2);
  assert_int_equal(ival(bm, "errors"), 1);
  assert_int_equal(cost_nusd(bm), 20000);
  assert_int_equal(ival(bm, "input_tokens"), 300);
  assert_int_equal(ival(point(series(res, "model-b"), 1), "count"), 2);
  assert_int_equal(ival(point(series(res, "model-b"), 0), "count"), 0);
  assert_null_fig(point(series(res, "model-b"), 0), "cost_usd");
  /* the tool span has no model: an empty group */
  assert_int_equal(ival(field(series(res, ""), "totals"), "count"), 1);
  /* largest group first */
  assert_string_equal(json_string_value(field(json_array_get(field(res, "series"), 0), "group")), "model-a");
  json_decref(res);

  /* by provider, kind, status, name */
  res = run_simple(f, 1, H0, H0 + 3 * HOUR, 3600, LT_GROUP_PROVIDER);
  assert_int_equal(ival(field(series(res, "openai"), "totals"), "count"), 4);
  assert_int_equal(ival(field(series(res, "anthropic"), "totals"), "count"), 2);
  json_decref(res);
  res = run_simple(f, 1, H0, H0 + 3 * HOUR, 3600, LT_GROUP_KIND);
  assert_int_equal(ival(field(series(res, "LLM"), "totals"), "count"), 6);
  assert_int_equal(ival(field(series(res, "TOOL"), "totals"), "count"), 1);
  json_decref(res);
  res = run_simple(f, 1, H0, H0 + 3 * HOUR, 3600, LT_GROUP_STATUS);
  assert_int_equal(ival(field(series(res, "error"), "totals"), "count"), 2);
  assert_int_equal(ival(field(series(res, "ok"), "totals"), "count"), 2);
  assert_int_equal(ival(field(series(res, "unset"), "totals"), "count"), 3);
  json_decref(res);
  res = run_simple(f, 1, H0, H0 + 3 * HOUR, 3600, LT_GROUP_NAME);
  assert_int_equal(ival(field(series(res, "chat"), "totals"), "count"), 6);
  assert_int_equal(ival(field(series(res, "lookup"), "totals"), "count"), 1);
  json_decref(res);

  /* filters */
  lt_metrics_query_t q;
  mq_init(&q, 1, H0, H0 + 3 * HOUR, 3600);
  q.model = LT_STR("model-a");
  res = run(f, &q);
  assert_int_equal(ival(totals(res), "count"), 4);
  json_decref(res);
  mq_init(&q, 1, H0, H0 + 3 * HOUR, 3600);
  q.status = LT_STATUS_ERROR;
  res = run(f, &q);
  assert_int_equal(ival(totals(res), "count"), 2);
  assert_close(dval(totals(res), "error_rate"), 1, 1e-12, "error_rate of errors");
  json_decref(res);
  mq_init(&q, 1, H0, H0 + 3 * HOUR, 3600);
  q.kind = LT_KIND_LLM;
  q.provider = LT_STR("openai");
  res = run(f, &q);
  assert_int_equal(ival(totals(res), "count"), 3 + 1);
  json_decref(res);
  mq_init(&q, 1, H0, H0 + 3 * HOUR, 3600);
  q.model = LT_STR("no-such-model");
  res = run(f, &q);
  assert_int_equal(ival(totals(res), "count"), 0);
  assert_null_fig(totals(res), "cost_usd");
  assert_null_fig(totals(res), "latency_p50_ms");
  assert_null_fig(totals(res), "error_rate");
  json_decref(res);

  /* a range covering hour 1 only */
  res = run_simple(f, 1, H0 + HOUR, H0 + 2 * HOUR, 3600, LT_GROUP_NONE);
  assert_int_equal(ival(totals(res), "count"), 2);
  json_decref(res);

  /* minutes: the same totals, each span in its minute */
  res = run_simple(f, 1, H0, H0 + 3 * HOUR, 60, LT_GROUP_NONE);
  assert_int_equal(ival(totals(res), "count"), 7);
  assert_int_equal(cost_nusd(totals(res)), 26007);
  pts = field(json_array_get(field(res, "series"), 0), "points");
  assert_int_equal(json_array_size(pts), 180);
  assert_int_equal(ival(json_array_get(pts, 5), "count"), 1);
  assert_int_equal(ival(json_array_get(pts, 10), "count"), 2); /* 03:10:00 and 03:10:30 */
  assert_int_equal(ival(json_array_get(pts, 60), "count"), 1);
  assert_int_equal(ival(json_array_get(pts, 119), "count"), 1);
  assert_int_equal(ival(json_array_get(pts, 120), "count"), 2);
  assert_int_equal(ival(json_array_get(pts, 0), "count"), 0);
  json_decref(res);

  /* days: one bucket holding everything */
  res = run_simple(f, 1, DAY0, DAY0 + DAY, 86400, LT_GROUP_NONE);
  assert_int_equal(json_array_size(field(json_array_get(field(res, "series"), 0), "points")), 1);
  assert_int_equal(ival(totals(res), "count"), 7);
  assert_int_equal(ival(totals(res), "errors"), 2);
  assert_int_equal(ival(totals(res), "total_tokens"), 542);
  assert_int_equal(cost_nusd(totals(res)), 26007);
  assert_close(dval(totals(res), "latency_p50_ms"), 200, REL, "day latency_p50_ms");
  json_decref(res);
}

static void figure_selection(void **st) {
  fixture_t *f = *st;
  write_ok(f, three_hours(), 7);
  lt_metrics_query_t q;
  mq_init(&q, 1, H0, H0 + 3 * HOUR, 3600);
  q.fields = (1u << LT_MF_COUNT) | (1u << LT_MF_COST);
  json_t *res = run(f, &q);
  json_t *t = totals(res);
  assert_int_equal(json_object_size(t), 2);
  assert_int_equal(ival(t, "count"), 7);
  assert_int_equal(cost_nusd(t), 26007);
  assert_int_equal(json_object_size(point(json_array_get(field(res, "series"), 0), 0)), 3); /* + time */
  json_decref(res);
  /* Figures that need no sketch give the same answers as with every figure. */
  mq_init(&q, 1, H0, H0 + 3 * HOUR, 3600);
  q.fields = (1u << LT_MF_TPR) | (1u << LT_MF_CPR) | (1u << LT_MF_TOTAL);
  res = run(f, &q);
  assert_close(dval(totals(res), "tokens_per_request"), 542.0 / 6, 1e-9, "tokens_per_request alone");
  assert_close(dval(totals(res), "cost_per_request"), 26007e-9 / 6, 1e-9, "cost_per_request alone");
  json_decref(res);

  /* A span with a reported cost and no token counts (a priced tool call,
   * say) is a priced request but reports no tokens: tokens per request is
   * still the mean over the 6 spans that reported tokens, whichever
   * figures are asked for. */
  lt_batch_t *b = lt_batch_new(1, 1 << 20);
  lt_span_t *s = add_llm(b, 30, 1, "openai", "model-a", H0 + 2 * HOUR + MIN, 10 * MS, -1, -1, 993);
  s->kind = LT_KIND_TOOL;
  write_ok(f, b, 1);
  mq_init(&q, 1, H0, H0 + 3 * HOUR, 3600);
  res = run(f, &q);
  assert_close(dval(totals(res), "tokens_per_request"), 542.0 / 6, 1e-9, "tokens_per_request, all figures");
  assert_close(dval(totals(res), "cost_per_request"), 27000e-9 / 7, 1e-9, "cost_per_request, all figures");
  json_decref(res);
  mq_init(&q, 1, H0, H0 + 3 * HOUR, 3600);
  q.fields = (1u << LT_MF_TPR) | (1u << LT_MF_TOTAL);
  res = run(f, &q);
  assert_close(dval(totals(res), "tokens_per_request"), 542.0 / 6, 1e-9, "tokens_per_request alone");
  json_decref(res);
  /* The tool spans reported no tokens: they have no mean (null, not 0). */
  mq_init(&q, 1, H0, H0 + 3 * HOUR, 3600);
  q.group_by = LT_GROUP_KIND;
  res = run(f, &q);
  json_t *tool = field(series(res, "TOOL"), "totals");
  assert_int_equal(ival(tool, "count"), 2);
  assert_int_equal(cost_nusd(tool), 993);
  assert_null_fig(tool, "tokens_per_request");
  assert_null_fig(tool, "tokens_per_request_p50");
  json_decref(res);
}

static void bad_queries_are_refused(void **st) {
  fixture_t *f = *st;
  lt_metrics_query_t q;
  json_t *out = NULL;
  mq_init(&q, 1, H0, H0 + HOUR, 120);
  assert_int_equal(f->store->ops->metrics(f->store, &q, &out), LT_EINVAL);
  mq_init(&q, 1, H0 + 1, H0 + HOUR, 3600); /* not aligned */
  assert_int_equal(f->store->ops->metrics(f->store, &q, &out), LT_EINVAL);
  mq_init(&q, 1, H0, H0, 3600); /* empty */
  assert_int_equal(f->store->ops->metrics(f->store, &q, &out), LT_EINVAL);
  mq_init(&q, 1, H0 + HOUR, H0, 3600);
  assert_int_equal(f->store->ops->metrics(f->store, &q, &out), LT_EINVAL);
  mq_init(&q, 1, H0, H0 + 2001 * MIN, 60);
  assert_int_equal(f->store->ops->metrics(f->store, &q, &out), LT_ETOOBIG);
  assert_null(out);
  mq_init(&q, 1, H0, H0 + 2000 * MIN, 60); /* exactly the limit */
  out = run(f, &q);
  assert_int_equal(json_array_size(field(json_array_get(field(out, "series"), 0), "points")), 2000);
  json_decref(out);
}

static void duplicates_are_counted_once(void **st) {
  fixture_t *f = *st;
  write_ok(f, three_hours(), 7);
  /* the same spans again: nothing new */
  write_ok(f, three_hours(), 0);
  /* a batch repeating one span inside itself, plus one new span */
  lt_batch_t *b = lt_batch_new(1, 1 << 20);
  add_llm(b, 40, 1, "openai", "model-a", H0 + 30 * MIN, 500 * MS, 1000, 1000, 5);
  add_llm(b, 40, 1, "openai", "model-a", H0 + 30 * MIN, 500 * MS, 1000, 1000, 5);
  add_llm(b, 1, 1, "openai", "model-a", H0 + 5 * MIN, 100 * MS, 10, 5, 1000); /* stored already */
  write_ok(f, b, 1);
  /* two batches in one write, each with the other's span */
  lt_batch_t *g[2] = {lt_batch_new(1, 1 << 20), lt_batch_new(1, 1 << 20)};
  add_llm(g[0], 41, 1, "openai", "model-a", H0 + 31 * MIN, 500 * MS, 1, 1, 1);
  add_llm(g[1], 41, 1, "openai", "model-a", H0 + 31 * MIN, 500 * MS, 1, 1, 1);
  assert_int_equal(lt_store_write(f->store, g, 2), 0);
  assert_int_equal(g[0]->n_inserted + g[1]->n_inserted, 1);
  lt_batch_free(g[0]);
  lt_batch_free(g[1]);

  static const int64_t ivs[] = {60, 3600, 86400};
  for (size_t i = 0; i < 3; i++) {
    int64_t iv = ivs[i], from = iv == 86400 ? DAY0 : H0;
    json_t *res = run_simple(f, 1, from, from + (iv == 86400 ? DAY : 3 * HOUR), iv, LT_GROUP_NONE);
    json_t *t = totals(res);
    assert_int_equal(ival(t, "count"), 9);
    assert_int_equal(ival(t, "input_tokens"), 361 + 1000 + 1);
    assert_int_equal(ival(t, "errors"), 2);
    assert_int_equal(cost_nusd(t), 26007 + 5 + 1);
    json_decref(res);
  }
}

static void wrapper_spans_count_but_add_no_tokens_or_cost(void **st) {
  fixture_t *f = *st;
  lt_batch_t *b = lt_batch_new(1, 1 << 20);
  /* an agent whose tokens sum its child's */
  lt_span_t *w = add_plain(b, 1, 1, "agent", H0, 5000 * MS);
  w->kind = LT_KIND_AGENT;
  w->usage_rollup = true;
  w->tokens[LT_TOK_INPUT] = 1000;
  w->tokens[LT_TOK_OUTPUT] = 500;
  w->tokens[LT_TOK_TOTAL] = 1500;
  w->tokens[LT_TOK_CACHE_READ] = 100;
  w->cost_source = LT_COST_NONE;
  w->status = LT_STATUS_ERROR;
  lt_span_t *c = add_llm(b, 1, 2, "openai", "model-a", H0 + 100 * MS, 4000 * MS, 1000, 500, 12345);
  c->has_parent = true;
  memcpy(c->parent_span_id, w->span_id, 8);
  c->tokens[LT_TOK_CACHE_READ] = 100;
  /* a wrapper that carries a cost anyway and one with an unknown cost:
   * neither is summed nor counted as unpriced */
  lt_span_t *w2 = add_plain(b, 2, 1, "workflow", H0 + 10 * SEC, 3000 * MS);
  w2->kind = LT_KIND_CHAIN;
  w2->usage_rollup = true;
  w2->tokens[LT_TOK_INPUT] = 7;
  w2->tokens[LT_TOK_OUTPUT] = 7;
  w2->tokens[LT_TOK_TOTAL] = 14;
  w2->cost_source = LT_COST_REPORTED;
  w2->cost_total = 999999;
  lt_span_t *w3 = add_plain(b, 3, 1, "workflow", H0 + 20 * SEC, 3000 * MS);
  w3->kind = LT_KIND_CHAIN;
  w3->usage_rollup = true;
  w3->tokens[LT_TOK_INPUT] = 9;
  w3->tokens[LT_TOK_OUTPUT] = 9;
  w3->cost_source = LT_COST_UNKNOWN;
  write_ok(f, b, 4);

  json_t *res = run_simple(f, 1, H0, H0 + HOUR, 3600, LT_GROUP_NONE);
  json_t *t = totals(res);
  assert_int_equal(ival(t, "count"), 4);
  assert_int_equal(ival(t, "errors"), 1);
  assert_int_equal(ival(t, "input_tokens"), 1000);
  assert_int_equal(ival(t, "output_tokens"), 500);
  assert_int_equal(ival(t, "total_tokens"), 1500);
  assert_int_equal(ival(t, "cache_read_tokens"), 100);
  assert_int_equal(cost_nusd(t), 12345);
  assert_int_equal(ival(t, "unpriced_spans"), 0);
  assert_close(dval(t, "cost_per_request"), 12345e-9, 1e-9, "cost_per_request");
  assert_close(dval(t, "tokens_per_request"), 1500, 1e-9, "tokens_per_request");
  assert_close(dval(t, "tokens_per_request_p50"), 1500, REL, "tokens_per_request_p50");
  /* latency holds all four: 3000, 3000, 4000, 5000 */
  assert_close(dval(t, "latency_p50_ms"), 3000, REL, "latency_p50_ms");
  assert_close(dval(t, "latency_p90_ms"), 4000, REL, "latency_p90_ms");
  /* TPS only from the child: 500 / 4 s */
  assert_close(dval(t, "tps_p50"), 125, REL, "tps_p50");
  json_decref(res);

  res = run_simple(f, 1, H0, H0 + HOUR, 3600, LT_GROUP_KIND);
  json_t *agent = field(series(res, "AGENT"), "totals");
  assert_int_equal(ival(agent, "count"), 1);
  assert_int_equal(ival(agent, "total_tokens"), 0);
  assert_null_fig(agent, "cost_usd");
  assert_null_fig(agent, "tps_p50");
  assert_close(dval(agent, "latency_p50_ms"), 5000, REL, "agent latency");
  json_t *chain = field(series(res, "CHAIN"), "totals");
  assert_int_equal(ival(chain, "count"), 2);
  assert_null_fig(chain, "cost_usd");
  assert_int_equal(ival(chain, "unpriced_spans"), 0);
  json_decref(res);
}

static void unknown_cost_is_null_and_unpriced(void **st) {
  fixture_t *f = *st;
  lt_batch_t *b = lt_batch_new(1, 1 << 20);
  add_llm(b, 1, 1, "openai", "my-finetune", H0, 100 * MS, 100, 10, -1);
  add_llm(b, 2, 1, "openai", "my-finetune", H0 + MIN, 100 * MS, 200, -1, -1); /* output unknown */
  add_llm(b, 3, 1, "openai", "my-finetune", H0 + HOUR, 100 * MS, 50, 5, -1);
  add_llm(b, 4, 1, "openai", "priced-model", H0 + HOUR, 100 * MS, 50, 5, 500);
  add_llm(b, 5, 1, "openai", "no-tokens", H0 + HOUR, 100 * MS, -1, -1, -1); /* nothing to price */
  add_plain(b, 6, 1, "tool", H0 + HOUR, 100 * MS);
  write_ok(f, b, 6);

  json_t *res = run_simple(f, 1, H0, H0 + 2 * HOUR, 3600, LT_GROUP_NONE);
  json_t *t = totals(res);
  assert_int_equal(ival(t, "count"), 6);
  assert_int_equal(ival(t, "unpriced_spans"), 3);
  assert_int_equal(cost_nusd(t), 500);
  assert_close(dval(t, "cost_per_request"), 500e-9, 1e-9, "cost_per_request");
  assert_int_equal(ival(t, "input_tokens"), 400);
  assert_int_equal(ival(t, "output_tokens"), 20);
  json_t *pts = field(json_array_get(field(res, "series"), 0), "points");
  /* hour 0 had only unpriced spans: null, never 0 */
  assert_null_fig(json_array_get(pts, 0), "cost_usd");
  assert_null_fig(json_array_get(pts, 0), "cost_per_request");
  assert_int_equal(ival(json_array_get(pts, 0), "unpriced_spans"), 2);
  assert_int_equal(cost_nusd(json_array_get(pts, 1)), 500);
  assert_int_equal(ival(json_array_get(pts, 1), "unpriced_spans"), 1);
  json_decref(res);

  res = run_simple(f, 1, H0, H0 + 2 * HOUR, 3600, LT_GROUP_MODEL);
  json_t *ft = field(series(res, "my-finetune"), "totals");
  assert_null_fig(ft, "cost_usd");
  assert_int_equal(ival(ft, "unpriced_spans"), 3);
  assert_null_fig(field(series(res, "no-tokens"), "totals"), "cost_usd");
  assert_int_equal(ival(field(series(res, "no-tokens"), "totals"), "unpriced_spans"), 0);
  json_decref(res);

  /* the unpriced-models list, from the day rollups */
  json_t *arr = NULL;
  assert_int_equal(f->store->ops->models_unpriced(f->store, 1, DAY0, DAY0 + DAY, &arr), 0);
  assert_int_equal(json_array_size(arr), 1);
  json_t *row = json_array_get(arr, 0);
  assert_string_equal(json_string_value(field(row, "model")), "my-finetune");
  assert_string_equal(json_string_value(field(row, "provider")), "openai");
  assert_int_equal(ival(row, "spans"), 3);
  assert_int_equal(ival(row, "input_tokens"), 350);
  assert_int_equal(ival(row, "output_tokens"), 15);
  assert_string_equal(json_string_value(field(row, "first_day")), "2026-01-02T00:00:00Z");
  json_decref(arr);
}

static void projects_are_isolated(void **st) {
  fixture_t *f = *st;
  int64_t pb = 0;
  assert_int_equal(f->store->ops->project_create(f->store, "other-project", &pb), 0);
  assert_true(pb != 1);
  write_ok(f, three_hours(), 7);
  /* the same dimension values (and the same ids) in the other project */
  lt_batch_t *b = lt_batch_new(pb, 1 << 20);
  add_llm(b, 1, 1, "openai", "model-a", H0 + 5 * MIN, 100 * MS, 1, 2, 3);
  add_llm(b, 9, 1, "openai", "model-z", H0 + 5 * MIN, 100 * MS, 1, 2, -1);
  write_ok(f, b, 2);

  json_t *res = run_simple(f, pb, H0, H0 + 3 * HOUR, 3600, LT_GROUP_MODEL);
  assert_int_equal(ival(totals(res), "count"), 2);
  assert_int_equal(ival(totals(res), "input_tokens"), 2);
  assert_int_equal(cost_nusd(totals(res)), 3);
  assert_int_equal(ival(totals(res), "unpriced_spans"), 1);
  assert_int_equal(ival(field(series(res, "model-a"), "totals"), "count"), 1);
  assert_false(has_series(res, "model-b"));
  json_decref(res);

  res = run_simple(f, 1, H0, H0 + 3 * HOUR, 3600, LT_GROUP_MODEL);
  assert_int_equal(ival(totals(res), "count"), 7);
  assert_int_equal(cost_nusd(totals(res)), 26007);
  assert_int_equal(ival(totals(res), "unpriced_spans"), 0);
  assert_int_equal(ival(field(series(res, "model-a"), "totals"), "count"), 4);
  assert_false(has_series(res, "model-z"));
  json_decref(res);

  /* a project with nothing */
  int64_t pc = 0;
  assert_int_equal(f->store->ops->project_create(f->store, "empty-project", &pc), 0);
  res = run_simple(f, pc, H0, H0 + 3 * HOUR, 3600, LT_GROUP_MODEL);
  assert_int_equal(ival(totals(res), "count"), 0);
  assert_int_equal(json_array_size(field(res, "series")), 0);
  json_decref(res);
  res = run_simple(f, pc, H0, H0 + 3 * HOUR, 3600, LT_GROUP_NONE);
  assert_int_equal(ival(totals(res), "count"), 0);
  assert_null_fig(totals(res), "cost_usd");
  json_decref(res);
  json_t *arr = NULL;
  assert_int_equal(f->store->ops->models_unpriced(f->store, pc, DAY0, DAY0 + DAY, &arr), 0);
  assert_int_equal(json_array_size(arr), 0);
  json_decref(arr);
  /* project b's unpriced model is b's alone */
  assert_int_equal(f->store->ops->models_unpriced(f->store, 1, DAY0, DAY0 + DAY, &arr), 0);
  assert_int_equal(json_array_size(arr), 0);
  json_decref(arr);
  assert_int_equal(f->store->ops->models_unpriced(f->store, pb, DAY0, DAY0 + DAY, &arr), 0);
  assert_int_equal(json_array_size(arr), 1);
  json_decref(arr);
}

static void bucket_boundaries(void **st) {
  fixture_t *f = *st;
  lt_batch_t *b = lt_batch_new(1, 1 << 20);
  add_plain(b, 1, 1, "edge", H0 + HOUR - 1, 10 * MS);      /* last ns of hour 0 */
  add_plain(b, 2, 1, "edge", H0 + HOUR, 10 * MS);          /* first ns of hour 1 */
  add_plain(b, 3, 1, "edge", H0 + HOUR + MIN - 1, 10 * MS); /* still minute 60 */
  add_plain(b, 4, 1, "edge", DAY0 + DAY, 10 * MS);         /* next day, exactly */
  write_ok(f, b, 4);
  json_t *res = run_simple(f, 1, H0, H0 + 2 * HOUR, 3600, LT_GROUP_NONE);
  json_t *pts = field(json_array_get(field(res, "series"), 0), "points");
  assert_int_equal(ival(json_array_get(pts, 0), "count"), 1);
  assert_int_equal(ival(json_array_get(pts, 1), "count"), 2);
  json_decref(res);
  res = run_simple(f, 1, H0 + 59 * MIN, H0 + 62 * MIN, 60, LT_GROUP_NONE);
  pts = field(json_array_get(field(res, "series"), 0), "points");
  assert_int_equal(ival(json_array_get(pts, 0), "count"), 1);
  assert_int_equal(ival(json_array_get(pts, 1), "count"), 2);
  assert_int_equal(ival(json_array_get(pts, 2), "count"), 0);
  json_decref(res);
  res = run_simple(f, 1, DAY0, DAY0 + 2 * DAY, 86400, LT_GROUP_NONE);
  pts = field(json_array_get(field(res, "series"), 0), "points");
  assert_int_equal(ival(json_array_get(pts, 0), "count"), 3);
  assert_int_equal(ival(json_array_get(pts, 1), "count"), 1);
  assert_string_equal(json_string_value(field(json_array_get(pts, 1), "time")), "2026-01-03T00:00:00Z");
  json_decref(res);
  /* the range [from, to) excludes a span starting exactly at `to` */
  res = run_simple(f, 1, H0, H0 + HOUR, 3600, LT_GROUP_NONE);
  assert_int_equal(ival(totals(res), "count"), 1);
  json_decref(res);
}

static void epoch_and_negative_times(void **st) {
  fixture_t *f = *st;
  lt_batch_t *b = lt_batch_new(1, 1 << 20);
  add_plain(b, 1, 1, "old", -1, 10 * MS);            /* 1969-12-31T23:59:59.999999999Z */
  add_plain(b, 2, 1, "old", 0, 20 * MS);             /* the epoch */
  add_plain(b, 3, 1, "old", -DAY - 1, 30 * MS);      /* 1969-12-30T23:59:59.999999999Z */
  add_plain(b, 4, 1, "old", -HOUR, 40 * MS);         /* 1969-12-31T23:00:00Z exactly */
  lt_span_t *s = add_plain(b, 5, 1, "old", 5 * SEC, 0); /* zero duration */
  s = add_plain(b, 6, 1, "backwards", 7 * SEC, 0);
  s->end_ns = s->start_ns - SEC; /* ends before it starts: no latency */
  s = add_llm(b, 7, 1, "openai", "m", 9 * SEC, 10 * MS, 5, 5, 1);
  s->ttft_ns = 20 * MS; /* longer than the span */
  write_ok(f, b, 7);

  json_t *res = run_simple(f, 1, -2 * DAY, 2 * DAY, 86400, LT_GROUP_NONE);
  json_t *pts = field(json_array_get(field(res, "series"), 0), "points");
  assert_int_equal(json_array_size(pts), 4);
  assert_string_equal(json_string_value(field(json_array_get(pts, 0), "time")), "1969-12-30T00:00:00Z");
  assert_string_equal(json_string_value(field(json_array_get(pts, 2), "time")), "1970-01-01T00:00:00Z");
  assert_int_equal(ival(json_array_get(pts, 0), "count"), 1);
  assert_int_equal(ival(json_array_get(pts, 1), "count"), 2);
  assert_int_equal(ival(json_array_get(pts, 2), "count"), 4);
  assert_int_equal(ival(json_array_get(pts, 3), "count"), 0);
  assert_int_equal(ival(totals(res), "count"), 7);
  json_decref(res);

  res = run_simple(f, 1, -HOUR, HOUR, 3600, LT_GROUP_NONE);
  pts = field(json_array_get(field(res, "series"), 0), "points");
  assert_string_equal(json_string_value(field(json_array_get(pts, 0), "time")), "1969-12-31T23:00:00Z");
  assert_int_equal(ival(json_array_get(pts, 0), "count"), 2);
  assert_int_equal(ival(json_array_get(pts, 1), "count"), 4);
  json_decref(res);
  res = run_simple(f, 1, -MIN, MIN, 60, LT_GROUP_NONE);
  pts = field(json_array_get(field(res, "series"), 0), "points");
  assert_int_equal(ival(json_array_get(pts, 0), "count"), 1);
  assert_int_equal(ival(json_array_get(pts, 1), "count"), 4);
  /* latencies of the epoch minute: 20, 0 and 10 ms (the backwards span has none) */
  assert_close(dval(json_array_get(pts, 1), "latency_p99_ms"), 10, REL, "epoch minute latency");
  json_decref(res);
}

static void folds_into_other_past_the_dimension_cap(void **st) {
  fixture_t *f = *st;
  enum { N = 5100 };
  lt_batch_t *b = lt_batch_new(1, 16 << 20);
  char name[32];
  for (int i = 0; i < N; i++) {
    snprintf(name, sizeof name, "name-%04d", i);
    lt_span_t *s = add_llm(b, 100 + i, 1, "openai", "model-a", H0 + (i % 60) * MIN, (10 + i % 90) * MS, 1, 2, 3);
    s->name = S(b, name);
  }
  write_ok(f, b, N);

  /* the store keeps no more than the cap, plus the folded set */
  char path[128];
  snprintf(path, sizeof path, "%s/lanterna.db", f->dir);
  sqlite3 *db;
  sqlite3_stmt *stmt;
  assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
  assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM rollup_dims WHERE project_id = 1", -1, &stmt, NULL),
                   SQLITE_OK);
  assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
  int64_t ndims = sqlite3_column_int64(stmt, 0);
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  /* (the folded sets and the per-model summary sets come on top) */
  assert_true(ndims >= 4990 && ndims <= 5010);

  /* a further span under a name known before the cap keeps its name */
  b = lt_batch_new(1, 1 << 20);
  lt_span_t *s = add_llm(b, 99, 1, "openai", "model-a", H0, 10 * MS, 1, 2, 3);
  s->name = S(b, "name-0007");
  /* and a new one folds */
  s = add_llm(b, 98, 1, "openai", "model-a", H0, 10 * MS, 1, 2, 3);
  s->name = S(b, "brand-new-name");
  write_ok(f, b, 2);

  json_t *res = run_simple(f, 1, H0, H0 + HOUR, 3600, LT_GROUP_NONE);
  assert_int_equal(ival(totals(res), "count"), N + 2);
  assert_int_equal(ival(totals(res), "input_tokens"), N + 2);
  assert_int_equal(cost_nusd(totals(res)), 3 * (N + 2));
  json_decref(res);

  lt_metrics_query_t q;

  /* grouped by model the totals still add up */
  res = run_simple(f, 1, H0, H0 + HOUR, 3600, LT_GROUP_MODEL);
  assert_int_equal(series_count_sum(res), N + 2);
  assert_int_equal(cost_nusd(totals(res)), 3 * (N + 2));
  json_decref(res);

  /* the name filter still finds a kept name; a folded name is only "(other)" */
  mq_init(&q, 1, H0, H0 + HOUR, 3600);
  q.name = LT_STR("name-0007");
  res = run(f, &q);
  assert_int_equal(ival(totals(res), "count"), 2);
  json_decref(res);
  mq_init(&q, 1, H0, H0 + HOUR, 3600);
  q.name = LT_STR("name-5099");
  res = run(f, &q);
  assert_int_equal(ival(totals(res), "count"), 0);
  json_decref(res);
  mq_init(&q, 1, H0, H0 + HOUR, 3600);
  q.name = LT_STR("(other)");
  res = run(f, &q);
  assert_true(ival(totals(res), "count") >= N - 5000 + 1 && ival(totals(res), "count") <= N - 4990 + 1);
  json_decref(res);

  /* another project is not affected by this one's cap */
  int64_t pb = 0;
  assert_int_equal(f->store->ops->project_create(f->store, "b", &pb), 0);
  b = lt_batch_new(pb, 1 << 20);
  s = add_llm(b, 1, 1, "openai", "model-a", H0, 10 * MS, 1, 2, 3);
  s->name = S(b, "name-5099");
  write_ok(f, b, 1);
  mq_init(&q, pb, H0, H0 + HOUR, 3600);
  q.group_by = LT_GROUP_NAME;
  res = run(f, &q);
  assert_int_equal(ival(field(series(res, "name-5099"), "totals"), "count"), 1);
  assert_false(has_series(res, "(other)"));
  json_decref(res);

  /* by name, 100 groups kept: last, as it fails while two series are both "(other)" */
  mq_init(&q, 1, H0, H0 + HOUR, 3600);
  q.group_by = LT_GROUP_NAME;
  q.max_groups = 100;
  res = run(f, &q);
  assert_int_equal(ival(totals(res), "count"), N + 2);
  assert_int_equal(series_count_sum(res), N + 2);
  assert_int_equal(ival(field(series(res, "name-0007"), "totals"), "count"), 2);
  assert_false(has_series(res, "brand-new-name"));
  /* the folded "(other)" name (some 100 spans) is the largest group; the
   * names past the limit of 100 are "(other)" too */
  assert_true(groups_named(res, "(other)") >= 1);
  assert_true(count_of_groups(res, "(other)") >= N + 2 - 2 - 98);
  /* ... in one series: a stored "(other)" label and the groups past the
   * limit are the same thing to the reader */
  assert_int_equal(groups_named(res, "(other)"), 1);
  assert_true(json_array_size(field(res, "series")) <= 101);
  json_decref(res);
}

/* A limit on groups folds the smallest into "(other)"; with a rollup that
 * already holds an "(other)" name, there is still one "(other)" series. */
static void limit_groups_other_series(void **st) {
  fixture_t *f = *st;
  lt_batch_t *b = lt_batch_new(1, 1 << 20);
  int k = 0;
  const char *models[] = {"m1", "m2", "m3", "m4", "(other)"};
  int counts[] = {5, 4, 3, 2, 1};
  for (int m = 0; m < 5; m++)
    for (int i = 0; i < counts[m]; i++, k++)
      add_llm(b, 1 + k, 1, "openai", models[m], H0 + k * SEC, 10 * MS, 1, 1, 1);
  write_ok(f, b, 15);
  lt_metrics_query_t q;
  mq_init(&q, 1, H0, H0 + HOUR, 3600);
  q.group_by = LT_GROUP_MODEL;
  q.max_groups = 2;
  json_t *res = run(f, &q);
  assert_int_equal(json_array_size(field(res, "series")), 3);
  assert_int_equal(ival(field(series(res, "m1"), "totals"), "count"), 5);
  assert_int_equal(ival(field(series(res, "m2"), "totals"), "count"), 4);
  assert_int_equal(ival(field(series(res, "(other)"), "totals"), "count"), 3 + 2 + 1);
  assert_int_equal(ival(totals(res), "count"), 15);
  json_decref(res);
  q.max_groups = 5;
  res = run(f, &q);
  assert_int_equal(json_array_size(field(res, "series")), 5);
  assert_int_equal(ival(field(series(res, "(other)"), "totals"), "count"), 1);
  json_decref(res);
  q.max_groups = 4;
  res = run(f, &q);
  assert_int_equal(ival(field(series(res, "(other)"), "totals"), "count"), 1);
  assert_int_equal(series_count_sum(res), 15);
  json_decref(res);
  q.max_groups = 3; /* m1 m2 m3 kept; m4 and the stored "(other)" fold together */
  res = run(f, &q);
  assert_int_equal(ival(field(series(res, "(other)"), "totals"), "count"), 2 + 1);
  assert_int_equal(series_count_sum(res), 15);
  json_decref(res);

  /* A stored "(other)" label (folded past the dimension cap) big enough to
   * be among the kept groups, and groups past the limit: one "(other)". */
  b = lt_batch_new(1, 1 << 20);
  for (int i = 0; i < 10; i++, k++) add_llm(b, 1 + k, 1, "openai", "(other)", H0 + k * SEC, 10 * MS, 1, 1, 1);
  write_ok(f, b, 10);
  q.max_groups = 2; /* (other) 11, m1 5 kept; m2 m3 m4 past the limit */
  res = run(f, &q);
  assert_int_equal(series_count_sum(res), 25);
  assert_int_equal(ival(field(series(res, "m1"), "totals"), "count"), 5);
  assert_int_equal(count_of_groups(res, "(other)"), 11 + 4 + 3 + 2);
  assert_int_equal(groups_named(res, "(other)"), 1);
  json_decref(res);
}

/* ---- failed writes --------------------------------------------------------------------- */

static void exec_sql(fixture_t *f, const char *sql) {
  char path[128];
  snprintf(path, sizeof path, "%s/lanterna.db", f->dir);
  sqlite3 *db;
  assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
  sqlite3_busy_timeout(db, 5000);
  char *err = NULL;
  if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) fail_msg("%s: %s", sql, err ? err : "?");
  sqlite3_close(db);
}

static int64_t count_rows(fixture_t *f, const char *sql) {
  char path[128];
  snprintf(path, sizeof path, "%s/lanterna.db", f->dir);
  sqlite3 *db;
  sqlite3_stmt *st;
  assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
  assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
  assert_int_equal(sqlite3_step(st), SQLITE_ROW);
  int64_t n = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  sqlite3_close(db);
  return n;
}

/* A write that fails after its spans were folded (at the rollup merge, or
 * at a span insert) stores no rollup, and the dimension ids it created are
 * not reused for other dimension sets afterwards. */
static void check_failed_write(fixture_t *f, const char *trigger) {
  write_ok(f, three_hours(), 7); /* known dimension sets */
  exec_sql(f, trigger);
  lt_batch_t *b = lt_batch_new(1, 1 << 20);
  add_llm(b, 50, 1, "openai", "fresh-x", H0 + 20 * MIN, 100 * MS, 11, 11, 11);
  add_llm(b, 51, 1, "openai", "model-a", H0 + 21 * MIN, 100 * MS, 13, 13, 13);
  add_llm(b, 52, 1, "openai", "fresh-y", H0 + 22 * MIN, 100 * MS, 17, 17, 17);
  lt_span_t *p = add_llm(b, 53, 1, "openai", "model-a", H0 + 2 * HOUR + 5 * MIN, 100 * MS, 19, 19, 19);
  p->name = S(b, "poison");
  assert_int_not_equal(lt_store_write(f->store, &b, 1), 0);
  assert_int_equal(b->n_inserted, 0);
  lt_batch_free(b);
  exec_sql(f, "DROP TRIGGER poison");

  json_t *res = run_simple(f, 1, H0, H0 + 3 * HOUR, 3600, LT_GROUP_MODEL);
  assert_int_equal(ival(totals(res), "count"), 7);
  assert_int_equal(ival(totals(res), "input_tokens"), 361);
  assert_int_equal(cost_nusd(totals(res)), 26007);
  assert_false(has_series(res, "fresh-x"));
  json_decref(res);
  static const int64_t ivs[] = {60, 3600, 86400};
  for (size_t i = 0; i < 3; i++) {
    int64_t iv = ivs[i], from = iv == 86400 ? DAY0 : H0;
    res = run_simple(f, 1, from, from + (iv == 86400 ? DAY : 3 * HOUR), iv, LT_GROUP_NONE);
    assert_int_equal(ival(totals(res), "count"), 7);
    json_decref(res);
  }
  assert_int_equal(count_rows(f, "SELECT count(*) FROM rollup_dims WHERE model LIKE 'fresh-%'"), 0);
  assert_int_equal(count_rows(f, "SELECT count(*) FROM spans"), 7);

  /* New dimension sets now, in another order: fresh-z may get the id
   * fresh-x had in the failed transaction. */
  b = lt_batch_new(1, 1 << 20);
  add_llm(b, 60, 1, "openai", "fresh-z", H0 + 20 * MIN, 100 * MS, 1, 1, 1);
  add_llm(b, 61, 1, "openai", "fresh-w", H0 + 20 * MIN, 100 * MS, 1, 1, 1);
  write_ok(f, b, 2);
  /* the failed batch again, without the trigger */
  b = lt_batch_new(1, 1 << 20);
  add_llm(b, 50, 1, "openai", "fresh-x", H0 + 20 * MIN, 100 * MS, 11, 11, 11);
  add_llm(b, 51, 1, "openai", "model-a", H0 + 21 * MIN, 100 * MS, 13, 13, 13);
  add_llm(b, 52, 1, "openai", "fresh-y", H0 + 22 * MIN, 100 * MS, 17, 17, 17);
  p = add_llm(b, 53, 1, "openai", "model-a", H0 + 2 * HOUR + 5 * MIN, 100 * MS, 19, 19, 19);
  p->name = S(b, "poison");
  write_ok(f, b, 4);

  res = run_simple(f, 1, H0, H0 + 3 * HOUR, 3600, LT_GROUP_MODEL);
  assert_int_equal(ival(totals(res), "count"), 13);
  assert_int_equal(ival(totals(res), "input_tokens"), 361 + 2 + 11 + 13 + 17 + 19);
  assert_int_equal(ival(field(series(res, "fresh-x"), "totals"), "count"), 1);
  assert_int_equal(ival(field(series(res, "fresh-y"), "totals"), "count"), 1);
  assert_int_equal(ival(field(series(res, "fresh-z"), "totals"), "count"), 1);
  assert_int_equal(ival(field(series(res, "fresh-w"), "totals"), "count"), 1);
  assert_int_equal(ival(field(series(res, "fresh-x"), "totals"), "input_tokens"), 11);
  assert_int_equal(ival(field(series(res, "fresh-z"), "totals"), "input_tokens"), 1);
  assert_int_equal(ival(field(series(res, "model-a"), "totals"), "count"), 6);
  assert_int_equal(series_count_sum(res), 13);
  json_decref(res);
  res = run_simple(f, 1, H0, H0 + 3 * HOUR, 60, LT_GROUP_MODEL);
  assert_int_equal(ival(field(series(res, "fresh-x"), "totals"), "count"), 1);
  assert_int_equal(ival(point(series(res, "fresh-x"), 20), "count"), 1);
  json_decref(res);
}

static void failed_write_at_rollup_merge_leaves_nothing(void **st) {
  /* the poison span is the only one in hour 2 of that write */
  check_failed_write(*st, "CREATE TRIGGER poison BEFORE INSERT ON rollups WHEN NEW.res = 3600 AND NEW.bucket = "
                          "1767330000 AND NEW.tok_in >= 19 BEGIN SELECT RAISE(ABORT, 'poisoned'); END");
}

static void failed_write_at_span_insert_leaves_nothing(void **st) {
  /* fails at the last span, after the others were folded into accumulators */
  check_failed_write(*st, "CREATE TRIGGER poison BEFORE INSERT ON spans WHEN NEW.name = 'poison'"
                          " BEGIN SELECT RAISE(ABORT, 'poisoned'); END");
}

/* ---- deferred flushes --------------------------------------------------------------------- */

/* Spans that exercise every input of a rollup, including those read back
 * from the payload (environment, provider, feature, cache and reasoning
 * tokens, wrapper spans). */
static lt_batch_t *varied(int base) {
  lt_batch_t *b = three_hours();
  for (size_t i = 0; i < b->n_spans; i++) ids_of(&b->spans[i], base + (int)i, 1);
  lt_span_t *w = add_llm(b, base + 50, 1, "openai", "model-c", H0 + 30 * MIN, 900 * MS, 500, 100, 40);
  w->usage_rollup = true;
  w->environment = S(b, "staging");
  lt_span_t *c = add_llm(b, base + 50, 2, "openai", "model-c", H0 + 30 * MIN + SEC, 800 * MS, 500, 100, 40);
  c->has_parent = true;
  memcpy(c->parent_span_id, w->span_id, 8);
  c->environment = S(b, "staging");
  c->feature = S(b, "search");
  c->tokens[LT_TOK_CACHE_READ] = 64;
  c->tokens[LT_TOK_REASONING] = 9;
  c->ttft_ns = 120 * MS;
  return b;
}

/* Every grouping at every resolution, as one string. */
static char *all_queries(fixture_t *f) {
  static const lt_group_t groups[] = {LT_GROUP_NONE, LT_GROUP_MODEL, LT_GROUP_PROVIDER, LT_GROUP_NAME,
                                      LT_GROUP_KIND, LT_GROUP_STATUS, LT_GROUP_ENVIRONMENT, LT_GROUP_FEATURE};
  static const int64_t ivs[] = {60, 3600, 86400};
  json_t *all = json_array();
  for (size_t g = 0; g < sizeof groups / sizeof groups[0]; g++)
    for (size_t i = 0; i < 3; i++) {
      int64_t from = ivs[i] == 86400 ? DAY0 : H0, to = from + (ivs[i] == 86400 ? DAY : 3 * HOUR);
      json_array_append_new(all, run_simple(f, 1, from, to, ivs[i], groups[g]));
    }
  char *out = json_dumps(all, JSON_SORT_KEYS | JSON_COMPACT);
  json_decref(all);
  return out;
}

/* While writes are queued behind it, a write leaves its rollups to a later
 * one; the write that finds none queued brings them all up to date. A
 * store closed with rollups pending (as a crash would leave it) reads the
 * spans above rollup_hwm back in on its next write or maintenance slice.
 * Either way the rollups end exactly as if every write had flushed. */
static void deferred_flush_and_recovery(void **st) {
  fixture_t *f = *st, ref = {0};
  assert_int_equal(fixture_init(&ref), 0);
  write_ok(&ref, varied(0), 9);
  write_ok(&ref, varied(100), 9);
  write_ok(&ref, varied(200), 9);
  char *want = all_queries(&ref);
  assert_int_equal(fixture_fini(&ref), 0);

  /* queued writes: nothing flushed yet */
  atomic_store(&f->store->queued, 1);
  write_ok(f, varied(0), 9);
  assert_int_equal(count_rows(f, "SELECT count(*) FROM rollups"), 0);
  assert_int_equal(count_rows(f, "SELECT value FROM meta WHERE key = 'rollup_hwm'"), 0);
  lt_store_stats_t ss;
  assert_int_equal(f->store->ops->stats(f->store, &ss), 0);
  assert_int_equal(ss.rollup_lag, 9);
  /* the last of a burst flushes everything */
  atomic_store(&f->store->queued, 0);
  write_ok(f, varied(100), 9);
  assert_int_equal(count_rows(f, "SELECT value FROM meta WHERE key = 'rollup_hwm'"),
                   count_rows(f, "SELECT max(id) FROM spans"));
  assert_int_equal(f->store->ops->stats(f->store, &ss), 0);
  assert_int_equal(ss.rollup_lag, 0);
  /* pending when the process dies: a child writes with the flush
   * deferred and exits without closing; the rest is read back after */
  lt_store_close(f->store);
  f->store = NULL;
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    if (fixture_reopen(f, 0)) _exit(2);
    atomic_store(&f->store->queued, 1);
    lt_batch_t *b = varied(200);
    int rc = lt_store_write(f->store, &b, 1);
    _exit(rc == 0 && b->n_inserted == 9 ? 0 : 1);
  }
  int status = 0;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  assert_int_equal(fixture_reopen(f, 0), 0);
  json_t *res = run_simple(f, 1, H0, H0 + 3 * HOUR, 3600, LT_GROUP_NONE);
  assert_int_equal(ival(totals(res), "count"), 18); /* the third write is not in yet */
  json_decref(res);
  bool more = false;
  assert_int_equal(lt_store_maintain(f->store, H0 + 3 * HOUR, &more), 0);
  char *got = all_queries(f);
  assert_string_equal(got, want);
  free(got);

  /* and nothing is counted twice by a later write or restart */
  lt_store_close(f->store);
  f->store = NULL;
  assert_int_equal(fixture_reopen(f, 0), 0);
  lt_batch_t *b = varied(0); /* duplicates: stored already */
  write_ok(f, b, 0);
  got = all_queries(f);
  assert_string_equal(got, want);
  free(got);
  free(want);

  /* a clean close flushes what is pending: nothing to read back */
  atomic_store(&f->store->queued, 1);
  write_ok(f, varied(300), 9);
  assert_true(count_rows(f, "SELECT value FROM meta WHERE key = 'rollup_hwm'") <
              count_rows(f, "SELECT max(id) FROM spans"));
  lt_store_close(f->store);
  f->store = NULL;
  assert_int_equal(count_rows(f, "SELECT value FROM meta WHERE key = 'rollup_hwm'"),
                   count_rows(f, "SELECT max(id) FROM spans"));
  assert_int_equal(fixture_reopen(f, 0), 0);
}

/* A write that fails while earlier writes' rollups are still pending
 * loses those accumulators with its own; the next write reads the earlier
 * spans back, so the rollups end as if the failed write had never been. */
static void failed_write_with_deferred_rollups(void **st) {
  fixture_t *f = *st, ref = {0};
  assert_int_equal(fixture_init(&ref), 0);
  write_ok(&ref, varied(0), 9);
  write_ok(&ref, varied(200), 9);
  char *want = all_queries(&ref);
  assert_int_equal(fixture_fini(&ref), 0);

  atomic_store(&f->store->queued, 1);
  write_ok(f, varied(0), 9); /* deferred */
  exec_sql(f, "CREATE TRIGGER poison BEFORE INSERT ON spans WHEN NEW.name = 'poison'"
              " BEGIN SELECT RAISE(ABORT, 'poisoned'); END");
  lt_batch_t *b = varied(100);
  b->spans[b->n_spans - 1].name = S(b, "poison");
  assert_int_not_equal(lt_store_write(f->store, &b, 1), 0);
  lt_batch_free(b);
  exec_sql(f, "DROP TRIGGER poison");
  atomic_store(&f->store->queued, 0);
  write_ok(f, varied(200), 9);
  char *got = all_queries(f);
  assert_string_equal(got, want);
  free(got);
  free(want);
}

/* ---- every allocation of a write failing, one at a time ----------------------------------- */

/* Child mode: one store, a first write that must succeed, then a second
 * write during which (with LT_FAIL_ALLOC set) one allocation fails. The
 * second write either stores everything or nothing, and the store is
 * right after it and after a retry. Writes the allocation counts around
 * the second write to `out`. Returns the process exit code. */
static lt_batch_t *child_first(void) {
  lt_batch_t *b = lt_batch_new(1, 1 << 20);
  add_llm(b, 1, 1, "openai", "model-a", H0, 100 * MS, 10, 10, 100)->ttft_ns = 10 * MS;
  add_llm(b, 2, 1, "openai", "model-b", H0 + HOUR, 200 * MS, 20, 20, -1);
  return b;
}

static lt_batch_t *child_second(void) {
  lt_batch_t *b = lt_batch_new(1, 1 << 20);
  add_llm(b, 1, 2, "openai", "model-a", H0 + MIN, 300 * MS, 30, 30, 300)->ttft_ns = 20 * MS;
  add_llm(b, 3, 1, "openai", "model-c", H0 + 2 * HOUR, 400 * MS, 40, 40, 400);
  lt_span_t *w = add_plain(b, 3, 2, "agent", H0 + 2 * HOUR, 500 * MS);
  w->kind = LT_KIND_AGENT;
  w->usage_rollup = true;
  w->tokens[LT_TOK_INPUT] = 40;
  w->cost_source = LT_COST_NONE;
  add_llm(b, 4, 1, "anthropic", "model-d", H0 + 2 * HOUR + MIN, 600 * MS, 50, 50, -1)->status = LT_STATUS_ERROR;
  return b;
}

/* Exit code of a child whose write failed and whose store was right. */
#define CHILD_RECOVERED 10
#define CHILD_FAIL(...) do { fprintf(stderr, "child: " __VA_ARGS__); fputc('\n', stderr); code = 1; goto out; } while (0)

/* Totals after the first write only (full = false) or after both. */
static int child_check(lt_store_t *s, bool full, const char **why) {
  lt_metrics_query_t q;
  mq_init(&q, 1, H0, H0 + 3 * HOUR, 3600);
  q.group_by = LT_GROUP_MODEL;
  json_t *res = NULL;
  if (s->ops->metrics(s, &q, &res)) {
    *why = "metrics query failed";
    return 1;
  }
  json_t *t = json_object_get(res, "totals");
  int64_t n = json_integer_value(json_object_get(t, "count"));
  int64_t in = json_integer_value(json_object_get(t, "input_tokens"));
  int64_t err = json_integer_value(json_object_get(t, "errors"));
  int64_t unpriced = json_integer_value(json_object_get(t, "unpriced_spans"));
  int64_t cost = llround(json_number_value(json_object_get(t, "cost_usd")) * 1e9);
  int64_t sum = 0;
  size_t i;
  json_t *se;
  json_array_foreach(json_object_get(res, "series"), i, se)
    sum += json_integer_value(json_object_get(json_object_get(se, "totals"), "count"));
  json_decref(res);
  int bad = 0;
  if (full) bad = n != 6 || in != 10 + 20 + 30 + 40 + 50 || err != 1 || unpriced != 2 || cost != 800 || sum != 6;
  else bad = n != 2 || in != 30 || err != 0 || unpriced != 1 || cost != 100 || sum != 2;
  if (bad) *why = full ? "totals after both writes are wrong" : "the failed write left something behind";
  /* the minute and day resolutions agree */
  static const int64_t ivs[] = {60, 86400};
  for (size_t k = 0; !bad && k < 2; k++) {
    int64_t iv = ivs[k], from = iv == 86400 ? DAY0 : H0, to = iv == 86400 ? DAY0 + DAY : H0 + 3 * HOUR;
    mq_init(&q, 1, from, to, iv);
    if (s->ops->metrics(s, &q, &res)) {
      *why = "metrics query failed";
      return 1;
    }
    int64_t m = json_integer_value(json_object_get(json_object_get(res, "totals"), "count"));
    json_decref(res);
    if (m != (full ? 6 : 2)) {
      *why = "minute or day rollups disagree";
      bad = 1;
    }
  }
  return bad;
}

static int child_main(const char *out_path) {
  int code = 0;
  fixture_t f = {0};
  const char *why = NULL;
  if (fixture_new(&f)) {
    fprintf(stderr, "child: cannot open a store\n");
    return 2;
  }
  lt_batch_t *b = child_first();
  if (lt_store_write(f.store, &b, 1) || b->n_inserted != 2) CHILD_FAIL("first write failed");
  lt_batch_free(b);
  b = child_second();
  unsigned long a0 = lt_mem_allocs();
  int rc = lt_store_write(f.store, &b, 1);
  unsigned long a1 = lt_mem_allocs();
  size_t inserted = b->n_inserted;
  lt_batch_free(b);
  b = NULL;
  if (out_path) {
    FILE *o = fopen(out_path, "w");
    if (o) {
      fprintf(o, "%lu %lu\n", a0, a1);
      fclose(o);
    }
  }
  if (rc == 0 && inserted != 4) CHILD_FAIL("second write stored %zu of 4 spans", inserted);
  if (rc != 0) {
    if (inserted != 0) CHILD_FAIL("failed write reports %zu inserted", inserted);
    if (child_check(f.store, false, &why)) CHILD_FAIL("after the failed write (rc %d): %s", rc, why);
    b = child_second();
    if (lt_store_write(f.store, &b, 1) || b->n_inserted != 4) CHILD_FAIL("retry failed");
    lt_batch_free(b);
    b = NULL;
    code = CHILD_RECOVERED;
  }
  if (child_check(f.store, true, &why)) CHILD_FAIL("after the write (rc %d): %s", rc, why);
  /* A write of new dimension sets after the failure gets ids of its own. */
  b = lt_batch_new(1, 1 << 20);
  add_llm(b, 9, 1, "openai", "model-e", H0 + 2 * HOUR, 10 * MS, 1, 1, 1);
  if (lt_store_write(f.store, &b, 1) || b->n_inserted != 1) CHILD_FAIL("a later write failed");
  lt_batch_free(b);
  b = NULL;
  {
    lt_metrics_query_t q;
    mq_init(&q, 1, H0, H0 + 3 * HOUR, 3600);
    q.group_by = LT_GROUP_MODEL;
    json_t *res = NULL;
    if (f.store->ops->metrics(f.store, &q, &res)) CHILD_FAIL("metrics query failed");
    json_t *se;
    size_t i;
    int64_t c = -1, e = -1;
    json_array_foreach(json_object_get(res, "series"), i, se) {
      const char *g = json_string_value(json_object_get(se, "group"));
      int64_t n = json_integer_value(json_object_get(json_object_get(se, "totals"), "count"));
      if (g && !strcmp(g, "model-c")) c = n;
      if (g && !strcmp(g, "model-e")) e = n;
    }
    json_decref(res);
    if (c != 1 || e != 1) CHILD_FAIL("model-c %lld, model-e %lld: a dimension id was reused", (long long)c, (long long)e);
  }
out:
  lt_batch_free(b);
  fixture_free(&f);
  return code;
}

extern char **environ;

/* Runs this binary in child mode with LT_FAIL_ALLOC=fail_at (0: count
 * allocations, fail none). */
static int spawn_child(unsigned long fail_at, const char *out_path) {
  char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) return -1;
  self[n] = '\0';
  size_t ne = 0;
  while (environ[ne]) ne++;
  char **envp = calloc(ne + 2, sizeof *envp);
  size_t k = 0;
  for (size_t i = 0; i < ne; i++)
    if (strncmp(environ[i], "LT_FAIL_ALLOC=", 14)) envp[k++] = environ[i];
  char var[64];
  snprintf(var, sizeof var, "LT_FAIL_ALLOC=%lu", fail_at);
  envp[k++] = var; /* 0 fails nothing but still counts */
  envp[k] = NULL;
  char *argv[] = {self, "--rollup-alloc-child", (char *)(out_path ? out_path : "-"), NULL};
  pid_t pid;
  int rc = posix_spawn(&pid, self, NULL, NULL, argv, envp);
  free(envp);
  if (rc) return -1;
  int status;
  if (waitpid(pid, &status, 0) < 0) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void any_failed_allocation_leaves_no_rollup(void **st) {
  (void)st;
  char out_path[64];
  snprintf(out_path, sizeof out_path, "/tmp/lt-rollup-allocs-%d", (int)getpid());
  assert_int_equal(spawn_child(0, out_path), 0);
  FILE *o = fopen(out_path, "r");
  assert_non_null(o);
  unsigned long a0 = 0, a1 = 0;
  assert_int_equal(fscanf(o, "%lu %lu", &a0, &a1), 2);
  fclose(o);
  remove(out_path);
  assert_true(a1 > a0);
  /* Every allocation the second write makes, failed in turn (at most a
   * few hundred runs; past that, an even sample). */
  unsigned long span = a1 - a0, step = span > 400 ? span / 400 + 1 : 1;
  int runs = 0, failed_writes = 0;
  for (unsigned long n = a0 + 1; n <= a1; n += step, runs++) {
    int rc = spawn_child(n, NULL);
    if (rc == CHILD_RECOVERED) failed_writes++;
    else if (rc != 0) fail_msg("with allocation %lu failing (of %lu..%lu) the child exited %d", n, a0 + 1, a1, rc);
  }
  print_message("%d allocations failed in turn, %d of them failed the write\n", runs, failed_writes);
  /* the failures did reach the write path */
  assert_true(runs > 0);
  assert_true(failed_writes > 0);
}

int main(int argc, char **argv) {
  if (argc >= 3 && !strcmp(argv[1], "--rollup-alloc-child"))
    return child_main(strcmp(argv[2], "-") ? argv[2] : NULL);
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(counts_tokens_and_cost_per_model_and_hour, setup, teardown),
    cmocka_unit_test_setup_teardown(figure_selection, setup, teardown),
    cmocka_unit_test_setup_teardown(bad_queries_are_refused, setup, teardown),
    cmocka_unit_test_setup_teardown(duplicates_are_counted_once, setup, teardown),
    cmocka_unit_test_setup_teardown(wrapper_spans_count_but_add_no_tokens_or_cost, setup, teardown),
    cmocka_unit_test_setup_teardown(unknown_cost_is_null_and_unpriced, setup, teardown),
    cmocka_unit_test_setup_teardown(projects_are_isolated, setup, teardown),
    cmocka_unit_test_setup_teardown(bucket_boundaries, setup, teardown),
    cmocka_unit_test_setup_teardown(epoch_and_negative_times, setup, teardown),
    cmocka_unit_test_setup_teardown(folds_into_other_past_the_dimension_cap, setup, teardown),
    cmocka_unit_test_setup_teardown(limit_groups_other_series, setup, teardown),
    cmocka_unit_test_setup_teardown(failed_write_at_rollup_merge_leaves_nothing, setup, teardown),
    cmocka_unit_test_setup_teardown(failed_write_at_span_insert_leaves_nothing, setup, teardown),
    cmocka_unit_test_setup_teardown(deferred_flush_and_recovery, setup, teardown),
    cmocka_unit_test_setup_teardown(failed_write_with_deferred_rollups, setup, teardown),
    cmocka_unit_test(any_failed_allocation_leaves_no_rollup),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
