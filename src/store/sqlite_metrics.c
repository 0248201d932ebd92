/* Metrics queries (GET /api/v1/metrics) and price overrides in the SQLite
 * store. Rollup dimensions (model, provider, name, kind, status,
 * environment, feature) are answered from the rollups table at the
 * interval's resolution; user, session and tag from the traces table (they
 * are unbounded, so they are not rollup dimensions). See docs/rollups.md.
 *
 * A rollup query is two scans of the primary-key range (project,
 * resolution, buckets): the first sums counts per dimension set to choose
 * the largest groups, the second decodes sketches only for the kept
 * figures and merges them per (group, bucket). Groups past max_groups fold
 * into "(other)". */
#include "store/sqlite_internal.h"
#include "core/err.h"
#include "core/mem.h"
#include "pipeline/sketch.h"
#include <stdio.h>
#include <string.h>
#include <time.h>

/* Points per series; past it the caller must pick a coarser interval. */
#define MAX_POINTS 2000
#define OTHER "(other)"

enum { SUM_IN, SUM_OUT, SUM_CR, SUM_CW, SUM_RS, SUM_TOTAL, SUM__N };
enum { SK_LAT, SK_TTFT, SK_TPS, SK_TOK, SK__N };

typedef struct {
  int64_t n, errors, sums[SUM__N], cost, priced, unpriced, roots;
  bool has_sums[SUM__N];
  lt_sketch_t sk[SK__N];
} macc_t;

typedef struct {
  char *name;       /* NULL: the whole project (no grouping) */
  macc_t total;
  macc_t *points;   /* nb of them */
} series_t;

typedef struct {
  const lt_metrics_query_t *q;
  int64_t nb;       /* buckets in the range */
  series_t *series;
  size_t nseries;
  int other;        /* index of the "(other)" series, -1 until needed */
  unsigned want_sk; /* bit per SK_* */
} mctx_t;

static void macc_init(macc_t *m) {
  memset(m, 0, sizeof *m);
  for (int k = 0; k < SK__N; k++) lt_sketch_init(&m->sk[k]);
}

static void macc_reset(macc_t *m) {
  for (int k = 0; k < SK__N; k++) lt_sketch_reset(&m->sk[k]);
}

static int macc_merge(macc_t *d, const macc_t *s) {
  d->n += s->n;
  d->errors += s->errors;
  for (int k = 0; k < SUM__N; k++) {
    d->sums[k] += s->sums[k];
    d->has_sums[k] |= s->has_sums[k];
  }
  d->cost += s->cost;
  d->priced += s->priced;
  d->unpriced += s->unpriced;
  d->roots += s->roots;
  for (int k = 0; k < SK__N; k++) {
    int rc = lt_sketch_merge(&d->sk[k], &s->sk[k]);
    if (rc == LT_ENOMEM) return rc;
  }
  return 0;
}

static bool want(const lt_metrics_query_t *q, lt_metric_field_t f) { return q->fields & (1u << f); }

/* The sketches the asked figures need, as a bit mask of SK_*. */
static unsigned wanted_sketches(const lt_metrics_query_t *q) {
  static const struct {
    lt_metric_field_t f;
    int sk;
  } t[] = {{LT_MF_LAT_P50, SK_LAT}, {LT_MF_LAT_P90, SK_LAT}, {LT_MF_LAT_P95, SK_LAT}, {LT_MF_LAT_P99, SK_LAT},
           {LT_MF_TTFT_P50, SK_TTFT}, {LT_MF_TTFT_P95, SK_TTFT}, {LT_MF_TTFT_P99, SK_TTFT},
           {LT_MF_TPS_P50, SK_TPS}, {LT_MF_TPR_P50, SK_TOK},
           {LT_MF_TPR, SK_TOK} /* its denominator is the sketch's count */};
  unsigned m = 0;
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
    if (want(q, t[i].f)) m |= 1u << t[i].sk;
  return m;
}

/* ---- rendering ----------------------------------------------------------
 * Written straight into a buffer rather than through a JSON tree: a month
 * of hourly points for ten models is ~60,000 figures, and building and
 * printing a tree of them cost more than the query itself. Milliseconds
 * are printed with three decimals and money exactly, from integers. */

typedef struct {
  lt_buf_t *b;
  int rc;
} out_t;

static void raw(out_t *o, const char *s) {
  if (o->rc == 0) o->rc = lt_buf_append(o->b, s, strlen(s));
}

static void key(out_t *o, const char *k, bool *first) {
  if (!*first) raw(o, ",");
  *first = false;
  if (o->rc == 0) o->rc = lt_buf_json_str(o->b, k, strlen(k));
  raw(o, ":");
}

static void num_i(out_t *o, int64_t v) {
  char t[24];
  snprintf(t, sizeof t, "%lld", (long long)v);
  raw(o, t);
}

/* v rounded to 3 decimals, printed without printf's float path. */
static void num_ms(out_t *o, double v) {
  if (!(v >= 0 && v < 9e15)) { /* not expected from sketches: fall back */
    char t[40];
    snprintf(t, sizeof t, "%.17g", v);
    raw(o, t);
    return;
  }
  int64_t m = (int64_t)(v * 1000 + 0.5);
  char t[32];
  int n = snprintf(t, sizeof t, "%lld.%03lld", (long long)(m / 1000), (long long)(m % 1000));
  while (n > 0 && t[n - 1] == '0') t[--n] = '\0'; /* 12.500 → 12.5, 3.000 → 3. */
  if (n > 0 && t[n - 1] == '.') t[--n] = '\0';
  raw(o, t);
}

static void num_g(out_t *o, double v) {
  char t[40];
  snprintf(t, sizeof t, "%.12g", v);
  raw(o, t);
}

/* Nano-dollars as exact USD. */
static void usd(out_t *o, int64_t nusd) {
  char t[40];
  uint64_t a = nusd < 0 ? (uint64_t)0 - (uint64_t)nusd : (uint64_t)nusd;
  int n = snprintf(t, sizeof t, "%s%llu.%09llu", nusd < 0 ? "-" : "", (unsigned long long)(a / 1000000000u),
                   (unsigned long long)(a % 1000000000u));
  while (n > 0 && t[n - 1] == '0') t[--n] = '\0';
  if (n > 0 && t[n - 1] == '.') t[--n] = '\0';
  raw(o, t);
}

static void quant(out_t *o, const lt_sketch_t *s, double q) {
  double v;
  if (lt_sketch_quantile(s, q, &v)) raw(o, "null");
  else num_ms(o, v);
}

static void ratio(out_t *o, double num, int64_t den) {
  if (den > 0) num_g(o, num / (double)den);
  else raw(o, "null");
}

/* The asked figures of m as members of an object already open. */
static void figures(out_t *o, const lt_metrics_query_t *q, const macc_t *m, bool *first) {
  /* Requests with a token count (the tokens sketch's count): the
   * denominator of tokens per request, so spans without tokens, like
   * tools, do not dilute it; none → null. */
  int64_t tok_requests = (int64_t)lt_sketch_count(&m->sk[SK_TOK]);
  for (int f = 0; f < LT_MF__COUNT; f++) {
    if (!want(q, (lt_metric_field_t)f)) continue;
    key(o, lt_metric_field_names[f], first);
    switch ((lt_metric_field_t)f) {
    case LT_MF_COUNT: num_i(o, m->n); break;
    case LT_MF_TRACES: num_i(o, m->roots); break;
    case LT_MF_ERRORS: num_i(o, m->errors); break;
    case LT_MF_ERROR_RATE: ratio(o, (double)m->errors, m->n); break;
    case LT_MF_LAT_P50: quant(o, &m->sk[SK_LAT], 0.50); break;
    case LT_MF_LAT_P90: quant(o, &m->sk[SK_LAT], 0.90); break;
    case LT_MF_LAT_P95: quant(o, &m->sk[SK_LAT], 0.95); break;
    case LT_MF_LAT_P99: quant(o, &m->sk[SK_LAT], 0.99); break;
    case LT_MF_TTFT_P50: quant(o, &m->sk[SK_TTFT], 0.50); break;
    case LT_MF_TTFT_P95: quant(o, &m->sk[SK_TTFT], 0.95); break;
    case LT_MF_TTFT_P99: quant(o, &m->sk[SK_TTFT], 0.99); break;
    case LT_MF_TPS_P50: quant(o, &m->sk[SK_TPS], 0.50); break;
    case LT_MF_INPUT: num_i(o, m->sums[SUM_IN]); break;
    case LT_MF_OUTPUT: num_i(o, m->sums[SUM_OUT]); break;
    case LT_MF_CACHE_READ: num_i(o, m->sums[SUM_CR]); break;
    case LT_MF_CACHE_WRITE: num_i(o, m->sums[SUM_CW]); break;
    case LT_MF_REASONING: num_i(o, m->sums[SUM_RS]); break;
    case LT_MF_TOTAL: num_i(o, m->sums[SUM_TOTAL]); break;
    case LT_MF_TPR: ratio(o, (double)m->sums[SUM_TOTAL], tok_requests); break;
    case LT_MF_TPR_P50: quant(o, &m->sk[SK_TOK], 0.50); break;
    /* Cost is null, never $0, when nothing in the bucket had a price. */
    case LT_MF_COST: if (m->priced) usd(o, m->cost); else raw(o, "null"); break;
    case LT_MF_CPR: if (m->priced) usd(o, m->cost / m->priced); else raw(o, "null"); break;
    case LT_MF_UNPRICED: num_i(o, m->unpriced); break;
    default: raw(o, "null"); break;
    }
  }
}

static void time_s(out_t *o, int64_t sec) {
  time_t t = (time_t)sec;
  struct tm tm;
  gmtime_r(&t, &tm);
  char b[40];
  strftime(b, sizeof b, "\"%Y-%m-%dT%H:%M:%SZ\"", &tm);
  raw(o, b);
}

static const char *interval_name(int64_t s) { return s == 60 ? "1m" : s == 3600 ? "1h" : "1d"; }

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Daily burn, projected to 30 days, over the part of the range that has
 * happened since its first bucket with data: a project two days old read
 * over 30 days must not show a fifteenth of its real rate. At least an
 * hour (or the whole range when shorter), so a first call a minute ago is
 * not multiplied by 1,440. */
static void burn(out_t *o, const lt_metrics_query_t *q, const macc_t *t, int64_t data_from_ns) {
  int64_t end = q->to_ns < now_ns() ? q->to_ns : now_ns();
  int64_t start = data_from_ns > q->from_ns ? data_from_ns : q->from_ns;
  const int64_t hour = 3600000000000LL;
  if (end - start < hour) start = end - hour > q->from_ns ? end - hour : q->from_ns;
  double days = (double)(end - start) / 86400e9;
  bool first = true, ok = days > 0, money = ok && t->priced;
  raw(o, "{");
  key(o, "since", &first);
  if (ok) time_s(o, start / 1000000000); else raw(o, "null");
  key(o, "days", &first);
  num_g(o, ok ? days : 0);
  key(o, "tokens_per_day", &first);
  if (ok) num_g(o, (double)t->sums[SUM_TOTAL] / days); else raw(o, "null");
  key(o, "projected_tokens_30d", &first);
  if (ok) num_g(o, (double)t->sums[SUM_TOTAL] / days * 30); else raw(o, "null");
  key(o, "cost_per_day_usd", &first);
  if (money) num_g(o, (double)t->cost / 1e9 / days); else raw(o, "null");
  key(o, "projected_cost_30d_usd", &first);
  if (money) num_g(o, (double)t->cost / 1e9 / days * 30); else raw(o, "null");
  raw(o, "}");
}

static const char *group_name(lt_group_t g) {
  static const char *const names[] = {NULL, "model", "provider", "name", "kind", "status", "environment",
                                      "feature", "user", "session", "tag"};
  return g >= 0 && (size_t)g < sizeof names / sizeof names[0] ? names[g] : NULL;
}

static int render(mctx_t *c, const char *source, lt_buf_t *b) {
  const lt_metrics_query_t *q = c->q;
  out_t o = {b, 0};
  macc_t all;
  macc_init(&all);
  int64_t from_s = q->from_ns / 1000000000, first_k = c->nb; /* the first bucket with data */
  for (size_t i = 0; o.rc == 0 && i < c->nseries; i++) {
    series_t *s = &c->series[i];
    for (int64_t k = 0; o.rc == 0 && k < c->nb; k++) {
      o.rc = macc_merge(&s->total, &s->points[k]);
      if (s->points[k].n > 0 && k < first_k) first_k = k;
    }
    if (o.rc == 0) o.rc = macc_merge(&all, &s->total);
  }
  bool first = true;
  raw(&o, "{");
  key(&o, "from", &first);
  time_s(&o, from_s);
  key(&o, "to", &first);
  time_s(&o, q->to_ns / 1000000000);
  key(&o, "interval", &first);
  raw(&o, "\"");
  raw(&o, interval_name(q->interval_s));
  raw(&o, "\"");
  key(&o, "group_by", &first);
  if (group_name(q->group_by)) {
    raw(&o, "\"");
    raw(&o, group_name(q->group_by));
    raw(&o, "\"");
  } else {
    raw(&o, "null");
  }
  key(&o, "source", &first);
  raw(&o, "\"");
  raw(&o, source);
  raw(&o, "\"");
  key(&o, "totals", &first);
  bool f2 = true;
  raw(&o, "{");
  figures(&o, q, &all, &f2);
  raw(&o, "}");
  key(&o, "burn", &first);
  burn(&o, q, &all, first_k < c->nb ? (from_s + first_k * q->interval_s) * 1000000000 : q->from_ns);
  key(&o, "series", &first);
  raw(&o, "[");
  bool first_series = true;
  for (size_t i = 0; o.rc == 0 && i < c->nseries; i++) {
    series_t *s = &c->series[i];
    if (s->total.n == 0 && s->name) continue; /* a kept group with nothing left after filters */
    if (!first_series) raw(&o, ",");
    first_series = false;
    bool fs = true;
    raw(&o, "{");
    key(&o, "group", &fs);
    if (s->name) {
      if (o.rc == 0) o.rc = lt_buf_json_str(b, s->name, strlen(s->name));
    } else {
      raw(&o, "null");
    }
    key(&o, "totals", &fs);
    bool ft = true;
    raw(&o, "{");
    figures(&o, q, &s->total, &ft);
    raw(&o, "}");
    key(&o, "points", &fs);
    raw(&o, "[");
    for (int64_t k = 0; o.rc == 0 && k < c->nb; k++) {
      bool fp = true;
      raw(&o, k ? ",{" : "{");
      key(&o, "time", &fp);
      time_s(&o, from_s + k * q->interval_s);
      figures(&o, q, &s->points[k], &fp);
      raw(&o, "}");
    }
    raw(&o, "]}");
  }
  raw(&o, "]}");
  macc_reset(&all);
  return o.rc;
}

/* ---- series bookkeeping --------------------------------------------------- */

static int series_add(mctx_t *c, const char *name, size_t len, bool whole) {
  series_t *ns = lt_realloc(c->series, (c->nseries + 1) * sizeof *ns);
  if (!ns) return LT_ENOMEM;
  c->series = ns;
  series_t *s = &ns[c->nseries];
  memset(s, 0, sizeof *s);
  macc_init(&s->total);
  if (!(s->points = lt_malloc((size_t)c->nb * sizeof *s->points))) return LT_ENOMEM;
  for (int64_t b = 0; b < c->nb; b++) macc_init(&s->points[b]);
  if (!whole) {
    if (!(s->name = lt_malloc(len + 1))) {
      lt_free(s->points);
      return LT_ENOMEM;
    }
    memcpy(s->name, name, len);
    s->name[len] = '\0';
  }
  c->nseries++;
  return 0;
}

static void series_free(mctx_t *c) {
  for (size_t i = 0; i < c->nseries; i++) {
    series_t *s = &c->series[i];
    for (int64_t b = 0; b < c->nb; b++) macc_reset(&s->points[b]);
    macc_reset(&s->total);
    lt_free(s->points);
    lt_free(s->name);
  }
  lt_free(c->series);
}

/* The series a group value belongs to: a kept group, or "(other)". */
static int series_of(mctx_t *c, const char *name, size_t len, int *idx) {
  if (c->q->group_by == LT_GROUP_NONE) {
    *idx = 0;
    return 0;
  }
  for (size_t i = 0; i < c->nseries; i++) {
    const char *n = c->series[i].name;
    if ((int)i != c->other && strlen(n) == len && memcmp(n, name, len) == 0) {
      *idx = (int)i;
      return 0;
    }
  }
  if (c->other < 0) {
    int rc = series_add(c, OTHER, sizeof OTHER - 1, false);
    if (rc) return rc;
    c->other = (int)c->nseries - 1;
  }
  *idx = c->other;
  return 0;
}

/* ---- rollups ----------------------------------------------------------- */

/* A dimension set of the project that passes the filters, with its group
 * value and (after the first scan) its series. */
typedef struct {
  int64_t id;
  char *group;
  int64_t count;
  int series;
} dim_t;

typedef struct {
  dim_t *v;
  size_t n;
  int64_t min_id, max_id;
  int32_t *index; /* id - min_id → position in v, or -1 */
} dims_t;

static void dims_free(dims_t *d) {
  for (size_t i = 0; i < d->n; i++) lt_free(d->v[i].group);
  lt_free(d->v);
  lt_free(d->index);
}

static bool col_is(sqlite3_stmt *st, int col, lt_str_t want_s) {
  if (!want_s.len) return true;
  size_t n = (size_t)sqlite3_column_bytes(st, col);
  return n == want_s.len && memcmp(sqlite3_column_text(st, col), want_s.ptr, n) == 0;
}

/* Whether the coarse dimension sets (provider, model, kind) can
 * answer q: they hold the same figures in a small fraction of the rows. */
static bool coarse_enough(const lt_metrics_query_t *q) {
  switch (q->group_by) {
  case LT_GROUP_NONE: case LT_GROUP_MODEL: case LT_GROUP_PROVIDER: case LT_GROUP_KIND: break;
  default: return false;
  }
  return !q->environment.len && !q->name.len && !q->feature.len && q->status < 0;
}

static int load_dims(lt__sq_reader_t *r, const lt_metrics_query_t *q, dims_t *d) {
  sqlite3_stmt *st = NULL;
  int src = sqlite3_prepare_v2(r->db,
      "SELECT id, environment, provider, model, name, kind, status, feature FROM rollup_dims"
      " WHERE project_id = ?1 AND coarse = ?2 ORDER BY id", -1, &st, NULL);
  if (src != SQLITE_OK) return lt__sq_fail(r->db, src, "reading rollup dimensions");
  sqlite3_bind_int64(st, 1, q->project_id);
  sqlite3_bind_int(st, 2, coarse_enough(q));
  int rc = 0;
  size_t cap = 0;
  d->min_id = INT64_MAX;
  d->max_id = INT64_MIN;
  while (rc == 0 && (src = sqlite3_step(st)) == SQLITE_ROW) {
    int kind = sqlite3_column_int(st, 5), status = sqlite3_column_int(st, 6);
    if (!col_is(st, 1, q->environment) || !col_is(st, 2, q->provider) || !col_is(st, 3, q->model) ||
        !col_is(st, 4, q->name) || !col_is(st, 7, q->feature) || (q->kind >= 0 && kind != q->kind) ||
        (q->status >= 0 && status != q->status))
      continue;
    const char *g = "";
    switch (q->group_by) {
    case LT_GROUP_MODEL: g = (const char *)sqlite3_column_text(st, 3); break;
    case LT_GROUP_PROVIDER: g = (const char *)sqlite3_column_text(st, 2); break;
    case LT_GROUP_NAME: g = (const char *)sqlite3_column_text(st, 4); break;
    case LT_GROUP_KIND: g = lt_kind_name((lt_kind_t)kind); break;
    case LT_GROUP_STATUS: g = lt_status_name((lt_status_t)status); break;
    case LT_GROUP_ENVIRONMENT: g = (const char *)sqlite3_column_text(st, 1); break;
    case LT_GROUP_FEATURE: g = (const char *)sqlite3_column_text(st, 7); break;
    default: break;
    }
    if (d->n == cap) {
      cap = cap ? cap * 2 : 64;
      dim_t *nv = lt_realloc(d->v, cap * sizeof *nv);
      if (!nv) {
        rc = LT_ENOMEM;
        break;
      }
      d->v = nv;
    }
    dim_t *x = &d->v[d->n];
    x->id = sqlite3_column_int64(st, 0);
    x->count = 0;
    x->series = -1;
    if (!(x->group = lt_strdup(g ? g : ""))) {
      rc = LT_ENOMEM;
      break;
    }
    d->n++;
    if (x->id < d->min_id) d->min_id = x->id;
    if (x->id > d->max_id) d->max_id = x->id;
  }
  if (rc == 0 && src != SQLITE_DONE && src != SQLITE_ROW) rc = lt__sq_fail(r->db, src, "reading rollup dimensions");
  sqlite3_finalize(st);
  if (rc || d->n == 0) return rc;
  size_t span = (size_t)(d->max_id - d->min_id + 1);
  if (!(d->index = lt_malloc(span * sizeof *d->index))) return LT_ENOMEM;
  for (size_t i = 0; i < span; i++) d->index[i] = -1;
  for (size_t i = 0; i < d->n; i++) d->index[d->v[i].id - d->min_id] = (int32_t)i;
  return 0;
}

static dim_t *dim_of(dims_t *d, int64_t id) {
  if (d->n == 0 || id < d->min_id || id > d->max_id) return NULL;
  int32_t i = d->index[id - d->min_id];
  return i < 0 ? NULL : &d->v[i];
}

static void bind_range(sqlite3_stmt *st, const lt_metrics_query_t *q) {
  sqlite3_bind_int64(st, 1, q->project_id);
  sqlite3_bind_int64(st, 2, q->interval_s);
  sqlite3_bind_int64(st, 3, q->from_ns / 1000000000);
  sqlite3_bind_int64(st, 4, q->to_ns / 1000000000);
  sqlite3_bind_int(st, 5, coarse_enough(q));
}

typedef struct {
  const char *name;
  int64_t count;
} gcount_t;

static int gcount_cmp(const void *a, const void *b) {
  const gcount_t *x = a, *y = b;
  if (x->count != y->count) return x->count > y->count ? -1 : 1;
  return strcmp(x->name, y->name);
}

/* Scan 1: counts per dimension set, then the largest groups become series. */
static int choose_groups(lt__sq_reader_t *r, mctx_t *c, dims_t *d) {
  const lt_metrics_query_t *q = c->q;
  if (q->group_by == LT_GROUP_NONE) {
    for (size_t i = 0; i < d->n; i++) d->v[i].series = 0;
    return series_add(c, NULL, 0, true);
  }
  sqlite3_stmt *st = NULL;
  int src = sqlite3_prepare_v2(r->db,
      "SELECT dim, sum(n) FROM rollups WHERE project_id = ?1 AND coarse = ?5 AND res = ?2 AND bucket >= ?3 AND bucket < ?4"
      " GROUP BY dim", -1, &st, NULL);
  if (src != SQLITE_OK) return lt__sq_fail(r->db, src, "counting rollups");
  bind_range(st, q);
  while ((src = sqlite3_step(st)) == SQLITE_ROW) {
    dim_t *x = dim_of(d, sqlite3_column_int64(st, 0));
    if (x) x->count += sqlite3_column_int64(st, 1);
  }
  sqlite3_finalize(st);
  if (src != SQLITE_DONE) return lt__sq_fail(r->db, src, "counting rollups");
  /* Sum per group value (several dimension sets share a model). */
  gcount_t *g = lt_calloc(d->n ? d->n : 1, sizeof *g);
  if (!g) return LT_ENOMEM;
  size_t ng = 0;
  for (size_t i = 0; i < d->n; i++) {
    if (!d->v[i].count) continue;
    size_t j = 0;
    while (j < ng && strcmp(g[j].name, d->v[i].group)) j++;
    if (j == ng) g[ng++] = (gcount_t){d->v[i].group, 0};
    g[j].count += d->v[i].count;
  }
  qsort(g, ng, sizeof *g, gcount_cmp);
  int rc = 0;
  size_t keep = ng < (size_t)q->max_groups ? ng : (size_t)q->max_groups;
  for (size_t j = 0; rc == 0 && j < keep; j++) {
    rc = series_add(c, g[j].name, strlen(g[j].name), false);
    /* A kept group that is itself "(other)" (the cardinality fold) is
     * where the groups past the limit go too: one "(other)" series. */
    if (rc == 0 && !strcmp(g[j].name, OTHER)) c->other = (int)c->nseries - 1;
  }
  lt_free(g);
  for (size_t i = 0; rc == 0 && i < d->n; i++) {
    if (!d->v[i].count) continue;
    int idx;
    rc = series_of(c, d->v[i].group, strlen(d->v[i].group), &idx);
    d->v[i].series = idx;
  }
  return rc;
}

/* Scan 2: every row of the range into its (series, bucket). */
static int scan_rollups(lt__sq_reader_t *r, mctx_t *c, dims_t *d) {
  const lt_metrics_query_t *q = c->q;
  sqlite3_stmt *st = NULL;
  const char *sql =
      c->want_sk
          ? "SELECT bucket, dim, n, errors, tok_in, tok_out, tok_cache_read, tok_cache_write, tok_reasoning,"
            " tok_total, cost_nusd, priced, unpriced, roots, lat, ttft, tps, tokens FROM rollups"
            " WHERE project_id = ?1 AND coarse = ?5 AND res = ?2 AND bucket >= ?3 AND bucket < ?4"
          : "SELECT bucket, dim, n, errors, tok_in, tok_out, tok_cache_read, tok_cache_write, tok_reasoning,"
            " tok_total, cost_nusd, priced, unpriced, roots FROM rollups"
            " WHERE project_id = ?1 AND coarse = ?5 AND res = ?2 AND bucket >= ?3 AND bucket < ?4";
  int src = sqlite3_prepare_v2(r->db, sql, -1, &st, NULL);
  if (src != SQLITE_OK) return lt__sq_fail(r->db, src, "reading rollups");
  bind_range(st, q);
  int rc = 0;
  int64_t from_s = q->from_ns / 1000000000;
  while (rc == 0 && (src = sqlite3_step(st)) == SQLITE_ROW) {
    dim_t *x = dim_of(d, sqlite3_column_int64(st, 1));
    if (!x || x->series < 0) continue;
    int64_t b = (sqlite3_column_int64(st, 0) - from_s) / q->interval_s;
    if (b < 0 || b >= c->nb) continue;
    macc_t *m = &c->series[x->series].points[b];
    m->n += sqlite3_column_int64(st, 2);
    m->errors += sqlite3_column_int64(st, 3);
    for (int k = 0; k < SUM__N; k++) {
      m->sums[k] += sqlite3_column_int64(st, 4 + k);
      m->has_sums[k] = true;
    }
    m->cost += sqlite3_column_int64(st, 10);
    m->priced += sqlite3_column_int64(st, 11);
    m->unpriced += sqlite3_column_int64(st, 12);
    m->roots += sqlite3_column_int64(st, 13);
    for (int k = 0; c->want_sk && rc == 0 && k < SK__N; k++) {
      if (!(c->want_sk & (1u << k)) || sqlite3_column_type(st, 14 + k) == SQLITE_NULL) continue;
      /* A damaged sketch is left out rather than failing the query. */
      if (lt_sketch_merge_encoded(&m->sk[k], sqlite3_column_blob(st, 14 + k),
                                  (size_t)sqlite3_column_bytes(st, 14 + k)) == LT_ENOMEM)
        rc = LT_ENOMEM;
    }
  }
  if (rc == 0 && src != SQLITE_DONE) rc = lt__sq_fail(r->db, src, "reading rollups");
  sqlite3_finalize(st);
  return rc;
}

/* ---- traces (user, session, tag) -------------------------------------- */

static int scan_traces(lt__sq_reader_t *r, mctx_t *c) {
  const lt_metrics_query_t *q = c->q;
  const char *col = q->group_by == LT_GROUP_USER ? "t.user_id" : q->group_by == LT_GROUP_SESSION ? "t.session_id" : "j.value";
  const char *from = q->group_by == LT_GROUP_TAG ? "traces t, json_each(t.tags) j" : "traces t";
  const char *extra = q->group_by == LT_GROUP_TAG ? " AND t.tags IS NOT NULL AND j.type = 'text'" : "";
  char top[768], rows[768];
  /* Only fixed fragments are pasted; every value is a bound parameter. */
  snprintf(top, sizeof top,
           "SELECT %s, count(*) FROM %s WHERE t.project_id = ?1 AND t.start_ns >= ?2 AND t.start_ns < ?3"
           " AND %s IS NOT NULL%s GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT ?4", col, from, col, extra);
  snprintf(rows, sizeof rows,
           "SELECT %s, t.start_ns, t.end_ns, t.status, t.input_tokens, t.output_tokens, t.total_tokens,"
           " t.cost_nusd FROM %s WHERE t.project_id = ?1 AND t.start_ns >= ?2 AND t.start_ns < ?3"
           " AND %s IS NOT NULL%s", col, from, col, extra);
  sqlite3_stmt *st = NULL;
  int src = sqlite3_prepare_v2(r->db, top, -1, &st, NULL);
  if (src != SQLITE_OK) return lt__sq_fail(r->db, src, "grouping traces");
  sqlite3_bind_int64(st, 1, q->project_id);
  sqlite3_bind_int64(st, 2, q->from_ns);
  sqlite3_bind_int64(st, 3, q->to_ns);
  sqlite3_bind_int(st, 4, q->max_groups);
  int rc = 0;
  while (rc == 0 && (src = sqlite3_step(st)) == SQLITE_ROW)
    rc = series_add(c, (const char *)sqlite3_column_text(st, 0), (size_t)sqlite3_column_bytes(st, 0), false);
  if (rc == 0 && src != SQLITE_DONE) rc = lt__sq_fail(r->db, src, "grouping traces");
  sqlite3_finalize(st);
  if (rc) return rc;
  st = NULL;
  if ((src = sqlite3_prepare_v2(r->db, rows, -1, &st, NULL)) != SQLITE_OK)
    return lt__sq_fail(r->db, src, "reading traces");
  sqlite3_bind_int64(st, 1, q->project_id);
  sqlite3_bind_int64(st, 2, q->from_ns);
  sqlite3_bind_int64(st, 3, q->to_ns);
  while (rc == 0 && (src = sqlite3_step(st)) == SQLITE_ROW) {
    int idx;
    if ((rc = series_of(c, (const char *)sqlite3_column_text(st, 0), (size_t)sqlite3_column_bytes(st, 0), &idx)))
      break;
    int64_t start = sqlite3_column_int64(st, 1), end = sqlite3_column_int64(st, 2);
    int64_t b = (start - q->from_ns) / (q->interval_s * 1000000000LL);
    if (b < 0 || b >= c->nb) continue;
    macc_t *m = &c->series[idx].points[b];
    m->n++;
    m->roots++;
    if (sqlite3_column_int(st, 3) == LT_STATUS_ERROR) m->errors++;
    static const int cols[] = {4, 5, -1, -1, -1, 6};
    for (int k = 0; k < SUM__N; k++) {
      if (cols[k] < 0 || sqlite3_column_type(st, cols[k]) == SQLITE_NULL) continue;
      m->sums[k] += sqlite3_column_int64(st, cols[k]);
      m->has_sums[k] = true;
    }
    if (sqlite3_column_type(st, 7) != SQLITE_NULL) {
      m->cost += sqlite3_column_int64(st, 7);
      m->priced++;
    }
    if (c->want_sk && end >= start && lt_sketch_add(&m->sk[SK_LAT], (double)(end - start) / 1e6) == LT_ENOMEM)
      rc = LT_ENOMEM;
    if (rc == 0 && c->want_sk && sqlite3_column_type(st, 6) != SQLITE_NULL &&
        lt_sketch_add(&m->sk[SK_TOK], (double)sqlite3_column_int64(st, 6)) == LT_ENOMEM)
      rc = LT_ENOMEM;
  }
  if (rc == 0 && src != SQLITE_DONE) rc = lt__sq_fail(r->db, src, "reading traces");
  sqlite3_finalize(st);
  return rc;
}

int lt__sq_metrics_text(lt_store_t *store, const lt_metrics_query_t *q, lt_buf_t *out) {
  if (q->interval_s != 60 && q->interval_s != 3600 && q->interval_s != 86400) return LT_EINVAL;
  int64_t step = q->interval_s * 1000000000LL;
  if (q->from_ns % step || q->to_ns % step || q->to_ns <= q->from_ns) return LT_EINVAL;
  mctx_t c = {.q = q, .nb = (q->to_ns - q->from_ns) / step, .other = -1, .want_sk = wanted_sketches(q)};
  if (c.nb > MAX_POINTS) return LT_ETOOBIG;
  lt__sq_t *s = LT__SQ(store);
  lt__sq_reader_t *r = lt__sq_reader_get(s);
  int rc;
  bool traces = q->group_by == LT_GROUP_USER || q->group_by == LT_GROUP_SESSION || q->group_by == LT_GROUP_TAG;
  /* A consistent view across the scans. */
  lt__sq_exec(r->db, "BEGIN");
  if (traces) {
    rc = scan_traces(r, &c);
  } else {
    dims_t d = {0};
    rc = load_dims(r, q, &d);
    if (rc == 0) rc = choose_groups(r, &c, &d);
    if (rc == 0) rc = scan_rollups(r, &c, &d);
    dims_free(&d);
  }
  lt__sq_exec(r->db, "COMMIT");
  lt__sq_reader_put(s, r);
  if (rc == 0) rc = render(&c, traces ? "traces" : "rollups", out);
  series_free(&c);
  return rc;
}

int lt__sq_metrics(lt_store_t *store, const lt_metrics_query_t *q, json_t **out) {
  lt_buf_t b;
  lt_buf_init(&b, 1u << 30);
  int rc = lt__sq_metrics_text(store, q, &b);
  if (rc == 0) {
    *out = json_loadb(b.ptr, b.len, 0, NULL);
    if (!*out) rc = LT_ENOMEM;
  }
  lt_buf_free(&b);
  return rc;
}

/* ---- unpriced models ------------------------------------------------------ */

static int put(json_t *o, const char *k, json_t *v) {
  if (!v) return LT_ENOMEM;
  return json_object_set_new(o, k, v) ? LT_ENOMEM : 0;
}

static json_t *jtime_s(int64_t sec) {
  time_t t = (time_t)sec;
  struct tm tm;
  gmtime_r(&t, &tm);
  char b[32];
  strftime(b, sizeof b, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return json_string(b);
}

static json_t *unpriced_row(sqlite3_stmt *st) {
  const char *prov = (const char *)sqlite3_column_text(st, 0), *model = (const char *)sqlite3_column_text(st, 1);
  json_t *o = json_object();
  int rc = o ? 0 : LT_ENOMEM;
  if (rc == 0) rc = put(o, "provider", prov && *prov ? json_string(prov) : json_null());
  if (rc == 0) rc = put(o, "model", model && *model ? json_string(model) : json_null());
  if (rc == 0) rc = put(o, "spans", json_integer(sqlite3_column_int64(st, 2)));
  if (rc == 0) rc = put(o, "input_tokens", json_integer(sqlite3_column_int64(st, 3)));
  if (rc == 0) rc = put(o, "output_tokens", json_integer(sqlite3_column_int64(st, 4)));
  if (rc == 0) rc = put(o, "first_day", jtime_s(sqlite3_column_int64(st, 5)));
  if (rc == 0) rc = put(o, "last_day", jtime_s(sqlite3_column_int64(st, 6)));
  if (rc) {
    json_decref(o);
    return NULL;
  }
  return o;
}

int lt__sq_models_unpriced(lt_store_t *store, int64_t project_id, int64_t from_ns, int64_t to_ns, json_t **out) {
  /* Day buckets: the range is widened to whole days. */
  const int64_t params[3] = {project_id, (from_ns / 1000000000) / 86400 * 86400, to_ns / 1000000000};
  return lt__sq_read_list(LT__SQ(store),
      "SELECT d.provider, d.model, sum(r.unpriced), sum(r.tok_in), sum(r.tok_out), min(r.bucket), max(r.bucket)"
      " FROM rollups r JOIN rollup_dims d ON d.id = r.dim"
      " WHERE r.project_id = ?1 AND r.coarse = 1 AND r.res = 86400 AND r.bucket >= ?2 AND r.bucket < ?3"
      " AND r.unpriced > 0"
      " GROUP BY d.provider, d.model ORDER BY 3 DESC, 2 LIMIT 1000", params, 3, unpriced_row, out);
}

/* ---- price overrides ------------------------------------------------------ */

static int admin_run(lt__sq_t *s, const char *sql, int64_t project_id, const char *text, size_t len) {
  sqlite3 *db = NULL;
  sqlite3_stmt *st = NULL;
  int rc = lt__sq_admin_open(s, &db);
  if (rc) return rc;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  int src = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
  if (src == SQLITE_OK) src = sqlite3_bind_int64(st, 1, project_id);
  if (src == SQLITE_OK && text) src = sqlite3_bind_text64(st, 2, text, len, SQLITE_STATIC, SQLITE_UTF8);
  if (src == SQLITE_OK && text) src = sqlite3_bind_int64(st, 3, (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec);
  if (src == SQLITE_OK) src = sqlite3_step(st);
  if (src != SQLITE_DONE) rc = lt__sq_fail(db, src, sql);
  sqlite3_finalize(st);
  sqlite3_close(db);
  return rc;
}

int lt__sq_prices_add(lt_store_t *store, int64_t project_id, const char *body, size_t len) {
  return admin_run(LT__SQ(store), "INSERT INTO price_overrides(project_id, body, created_ns) VALUES(?1, ?2, ?3)",
                   project_id, body, len);
}

int lt__sq_prices_clear(lt_store_t *store, int64_t project_id) {
  return admin_run(LT__SQ(store), "DELETE FROM price_overrides WHERE project_id = ?1", project_id, NULL, 0);
}

static json_t *override_row(sqlite3_stmt *st) {
  json_t *o = json_object();
  int rc = o ? 0 : LT_ENOMEM;
  if (rc == 0) rc = put(o, "project_id", json_integer(sqlite3_column_int64(st, 0)));
  if (rc == 0)
    rc = put(o, "body", json_stringn((const char *)sqlite3_column_text(st, 1), (size_t)sqlite3_column_bytes(st, 1)));
  if (rc == 0) rc = put(o, "created_ns", json_integer(sqlite3_column_int64(st, 2)));
  if (rc) {
    json_decref(o);
    return NULL;
  }
  return o;
}

int lt__sq_prices_list(lt_store_t *store, int64_t project_id, json_t **out) {
  return lt__sq_read_list(LT__SQ(store),
      "SELECT project_id, body, created_ns FROM price_overrides WHERE ?1 < 0 OR project_id = ?1"
      " ORDER BY project_id, id", &project_id, 1, override_row, out);
}
