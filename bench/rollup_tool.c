/* Rollup benchmark helper (driven by bench/rollup_bench.py).
 *
 *   rollup_tool seed DIR N      writes N spans over the last 30 days into a
 *                               fresh store in DIR through the store's real
 *                               write path (rollups included), as RAG
 *                               traces of 5 spans
 *   rollup_tool raw DIR FROM TO computes the dashboard answer (per model
 *                               and hour: latency and TTFT p50/p95/p99, cost)
 *                               exactly from the raw spans and prints it as
 *                               JSON with the time it took
 *
 * Seeding uses durability "process" (no fsync per commit): it builds a
 * data set, it is not the thing measured. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include "core/err.h"
#include "core/mem.h"
#include "pipeline/batch.h"
#include "pipeline/pricebook.h"
#include "store/store.h"

static int64_t now_ns(int clk) {
  struct timespec ts;
  clock_gettime(clk, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* xorshift64*: reproducible data without libc's rand state. */
static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint64_t next(void) {
  rng ^= rng >> 12;
  rng ^= rng << 25;
  rng ^= rng >> 27;
  return rng * 2685821657736338717ull;
}
static double unif(void) { return (double)(next() >> 11) / 9007199254740992.0; }
static double normal(void) {
  double u = unif(), v = unif();
  return sqrt(-2 * log(u + 1e-300)) * cos(2 * M_PI * v);
}
static double lognormal(double median, double sigma) { return median * exp(sigma * normal()); }

typedef struct {
  const char *model, *provider;
  double median_ms;
} model_t;

static const model_t models[] = {
  {"gpt-4o", "openai", 1800}, {"gpt-4o-mini", "openai", 900}, {"claude-sonnet-4-5", "anthropic", 2400},
  {"claude-3-5-haiku-20241022", "anthropic", 1100}, {"gemini-2.5-flash", "gcp.gemini", 800},
  {"o3-mini", "openai", 4200}, {"mistral-large-latest", "mistral_ai", 1500}, {"deepseek-chat", "deepseek", 2000},
};
#define NMODELS (sizeof models / sizeof models[0])
static const char *const features[] = {"search", "chat", "summarize", "support", "codegen"};
static const char *const roots[] = {"rag_pipeline", "agent_run", "answer_question"};
static const char *const tools[] = {"web_search", "sql_query", "calculator", "get_weather"};

static lt_str_t S(const char *s) { return lt_str_from(s); }

static void ids(uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; i += 8) {
    uint64_t v = next();
    memcpy(p + i, &v, n - i < 8 ? n - i : 8);
  }
}

static int seed(const char *dir, int64_t n) {
  lt_store_config_t cfg = {.data_dir = dir, .durability = LT_DURABILITY_PROCESS, .read_connections = 1,
                           .cache_bytes = 64u << 20};
  lt_store_t *s = NULL;
  mkdir(dir, 0700);
  int rc = lt_store_open(lt_store_backend("sqlite"), &cfg, &s);
  if (rc) return fprintf(stderr, "open: %s\n", lt_strerror(rc)), 1;
  lt_pricebook_t *pb = NULL;
  char err[256];
  if ((rc = lt_pricebook_new(NULL, 0, &pb, err, sizeof err))) return fprintf(stderr, "prices: %s\n", err), 1;
  lt_price_ref_t *ref = lt_pricebook_acquire(pb, 1);
  const lt_prices_t *prices = lt_price_ref_table(ref);

  int64_t end = now_ns(CLOCK_REALTIME), start = end - 30LL * 86400 * 1000000000;
  int64_t traces = n / 5, done = 0;
  int64_t t0 = now_ns(CLOCK_MONOTONIC), last = t0;
  lt_batch_t *b = NULL;
  for (int64_t t = 0; t < traces; t++) {
    if (!b && !(b = lt_batch_new(1, 64u << 20))) return 1;
    int64_t ts = start + (int64_t)((double)(end - start) * ((double)t + unif()) / (double)traces);
    uint8_t trace_id[16], root_id[8];
    ids(trace_id, 16);
    ids(root_id, 8);
    const char *feature = features[next() % 5];
    const char *env = unif() < 0.9 ? "production" : "staging";
    bool err_trace = unif() < 0.02;
    int64_t cursor = ts + 2000000;
    lt_span_t *sp[5];
    size_t base = b->n_spans;
    /* Add all five first: the span array may move while growing. */
    for (int k = 0; k < 5; k++)
      if (!lt_batch_add_span(b)) return 1;
    for (int k = 0; k < 5; k++) {
      lt_span_t *x = sp[k] = &b->spans[base + (size_t)k];
      memcpy(x->trace_id, trace_id, 16);
      if (k == 0) memcpy(x->span_id, root_id, 8);
      else {
        ids(x->span_id, 8);
        memcpy(x->parent_span_id, root_id, 8);
        x->has_parent = true;
      }
      x->environment = S(env);
      x->feature = S(feature);
      x->service = S("rag-app");
      x->status = LT_STATUS_OK;
    }
    /* retriever, two LLM calls, a tool, under a chain root */
    sp[1]->name = S("vector_search");
    sp[1]->kind = LT_KIND_RETRIEVER;
    sp[1]->start_ns = cursor;
    sp[1]->end_ns = cursor += (int64_t)(lognormal(60, 0.5) * 1e6);
    for (int k = 2; k <= 3; k++) {
      const model_t *m = &models[next() % NMODELS];
      lt_span_t *x = sp[k];
      x->name = S(k == 2 ? "chat" : "chat.completions");
      x->kind = LT_KIND_LLM;
      x->provider = S(m->provider);
      x->request_model = x->response_model = S(m->model);
      x->start_ns = cursor;
      double lat = lognormal(m->median_ms, 0.6);
      x->end_ns = cursor += (int64_t)(lat * 1e6);
      if (unif() < 0.6) x->ttft_ns = (int64_t)(lat * (0.1 + 0.25 * unif()) * 1e6);
      x->tokens[LT_TOK_INPUT] = (int64_t)lognormal(900, 0.7);
      x->tokens[LT_TOK_OUTPUT] = (int64_t)lognormal(180, 0.6);
      x->tokens[LT_TOK_TOTAL] = x->tokens[LT_TOK_INPUT] + x->tokens[LT_TOK_OUTPUT];
      if (unif() < 0.3) x->tokens[LT_TOK_CACHE_READ] = x->tokens[LT_TOK_INPUT] / 2;
      if (err_trace && k == 3) x->status = LT_STATUS_ERROR;
      lt_pricebook_apply(prices, x);
    }
    sp[4]->name = S(tools[next() % 4]);
    sp[4]->kind = LT_KIND_TOOL;
    sp[4]->start_ns = cursor;
    sp[4]->end_ns = cursor += (int64_t)(lognormal(120, 0.8) * 1e6);
    sp[0]->name = S(roots[next() % 3]);
    sp[0]->kind = LT_KIND_CHAIN;
    sp[0]->start_ns = ts;
    sp[0]->end_ns = cursor + 1000000;
    if (err_trace) sp[0]->status = LT_STATUS_ERROR;
    done += 5;
    if (b->n_spans >= 2000 || t == traces - 1) {
      if ((rc = lt_store_write(s, &b, 1))) return fprintf(stderr, "write: %s\n", lt_strerror(rc)), 1;
      lt_batch_free(b);
      b = NULL;
      int64_t now = now_ns(CLOCK_MONOTONIC);
      if (now - last > 5000000000LL || t == traces - 1) {
        double secs = (double)(now - t0) / 1e9;
        fprintf(stderr, "seed: %lld / %lld spans (%.0f spans/s)\n", (long long)done, (long long)n,
                (double)done / secs);
        last = now;
      }
    }
  }
  bool more = true;
  while (more) lt_store_maintain(s, end, &more); /* full-text index, so the store is as a server leaves it */
  lt_pricebook_release(pb, ref);
  lt_pricebook_free(pb);
  lt_store_close(s);
  printf("{\"spans\": %lld, \"seconds\": %.1f}\n", (long long)done, (double)(now_ns(CLOCK_MONOTONIC) - t0) / 1e9);
  return 0;
}

/* ---- exact answer from raw spans ------------------------------------------ */

typedef struct {
  double *v;
  size_t n, cap;
} vec_t;

static void push(vec_t *x, double v) {
  if (x->n == x->cap) {
    x->cap = x->cap ? x->cap * 2 : 64;
    x->v = realloc(x->v, x->cap * sizeof *x->v);
  }
  x->v[x->n++] = v;
}

static int dcmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* The value at rank floor(q * (n - 1)), the sketch's definition. */
static json_t *quant(vec_t *x, double q) {
  if (!x->n) return json_null();
  return json_real(x->v[(size_t)floor(q * (double)(x->n - 1))]);
}

typedef struct {
  char model[64];
  int64_t hour;
  vec_t lat, ttft;
  int64_t cost, priced;
} cell_t;

static int raw(const char *dir, int64_t from, int64_t to) {
  char path[2048];
  snprintf(path, sizeof path, "%s/lanterna.db", dir);
  sqlite3 *db;
  if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) return fprintf(stderr, "open\n"), 1;
  int64_t t0 = now_ns(CLOCK_MONOTONIC);
  sqlite3_stmt *st;
  sqlite3_prepare_v2(db,
      "SELECT coalesce(response_model, request_model, ''), start_ns, end_ns, ttft_ns, cost_nusd, cost_source"
      " FROM spans WHERE project_id = 1 AND start_ns >= ?1 AND start_ns < ?2 AND kind = 1", -1, &st, NULL);
  sqlite3_bind_int64(st, 1, from);
  sqlite3_bind_int64(st, 2, to);
  size_t cap = 1 << 16, ncells = 0;
  cell_t *cells = calloc(cap, sizeof *cells); /* open addressing on (model, hour) */
  int64_t rows = 0;
  while (sqlite3_step(st) == SQLITE_ROW) {
    rows++;
    const char *model = (const char *)sqlite3_column_text(st, 0);
    int64_t start = sqlite3_column_int64(st, 1), end = sqlite3_column_int64(st, 2);
    int64_t hour = start / 3600000000000LL * 3600;
    uint64_t h = (uint64_t)hour * 0x9E3779B97F4A7C15ull;
    for (const char *p = model; *p; p++) h = (h ^ (uint8_t)*p) * 0x100000001b3ull;
    size_t j = h & (cap - 1);
    while (cells[j].model[0] && (cells[j].hour != hour || strcmp(cells[j].model, model))) j = (j + 1) & (cap - 1);
    cell_t *c = &cells[j];
    if (!c->model[0]) {
      snprintf(c->model, sizeof c->model, "%s", *model ? model : "?");
      c->hour = hour;
      if (++ncells * 2 > cap) return fprintf(stderr, "too many cells\n"), 1;
    }
    push(&c->lat, (double)(end - start) / 1e6);
    if (sqlite3_column_type(st, 3) != SQLITE_NULL) push(&c->ttft, (double)sqlite3_column_int64(st, 3) / 1e6);
    int src = sqlite3_column_int(st, 5);
    if (src == 1 || src == 2) {
      c->cost += sqlite3_column_int64(st, 4);
      c->priced++;
    }
  }
  sqlite3_finalize(st);
  json_t *out = json_array();
  for (size_t j = 0; j < cap; j++) {
    cell_t *c = &cells[j];
    if (!c->model[0]) continue;
    qsort(c->lat.v, c->lat.n, sizeof(double), dcmp);
    if (c->ttft.n) qsort(c->ttft.v, c->ttft.n, sizeof(double), dcmp);
    json_array_append_new(out, json_pack("{s:s,s:I,s:I,s:o,s:o,s:o,s:o,s:o,s:o,s:o}", "model", c->model, "hour",
        (json_int_t)c->hour, "count", (json_int_t)c->lat.n, "latency_p50_ms", quant(&c->lat, 0.5),
        "latency_p95_ms", quant(&c->lat, 0.95), "latency_p99_ms", quant(&c->lat, 0.99), "ttft_p50_ms",
        quant(&c->ttft, 0.5), "ttft_p95_ms", quant(&c->ttft, 0.95), "ttft_p99_ms", quant(&c->ttft, 0.99),
        "cost_usd", c->priced ? json_real((double)c->cost / 1e9) : json_null()));
    free(c->lat.v);
    free(c->ttft.v);
  }
  double secs = (double)(now_ns(CLOCK_MONOTONIC) - t0) / 1e9;
  json_t *res = json_pack("{s:f,s:I,s:o}", "seconds", secs, "rows", (json_int_t)rows, "cells", out);
  char *text = json_dumps(res, JSON_COMPACT);
  puts(text);
  lt_free(text);
  json_decref(res);
  free(cells);
  sqlite3_close(db);
  return 0;
}

int main(int argc, char **argv) {
  json_set_alloc_funcs(lt_malloc, lt_free); /* as the server: the store frees what jansson allocates */
  if (argc == 4 && !strcmp(argv[1], "seed")) return seed(argv[2], atoll(argv[3]));
  if (argc == 5 && !strcmp(argv[1], "raw")) return raw(argv[2], atoll(argv[3]), atoll(argv[4]));
  fprintf(stderr, "usage: rollup_tool seed DIR N | raw DIR FROM_NS TO_NS\n");
  return 2;
}
