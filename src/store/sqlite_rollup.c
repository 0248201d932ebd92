/* Rollups, write side (writer thread only; docs/rollups.md). While a write
 * transaction is open, lt__sq_rollup_add folds each new span into an
 * accumulator per (project, resolution, bucket, dimension set);
 * lt__sq_rollup_flush merges the accumulators into their rows. Dimension
 * sets get ids from rollup_dims through a cache that outlives
 * transactions; ids learnt in a transaction that rolls back are forgotten
 * (lt__sq_rollup_abort).
 *
 * Under a backlog the flush is deferred (lt__sq_rollup_due): accumulators
 * then carry spans of committed transactions into later ones, for at most
 * LT__SQ_ROLLUP_DEFER_NS. meta.rollup_hwm, written with every flush, is the
 * largest span id the rollup rows hold; spans above it that the
 * accumulators may have lost (a crash, a rolled-back flush) are read back
 * from the spans table by lt__sq_rollup_recover. */
#include "store/sqlite_internal.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "pipeline/sketch.h"
#include <string.h>
#include <time.h>

enum {
  RS_DIM_FIND, RS_DIM_INSERT, RS_DIM_COUNT, RS_ROW_GET, RS_ROW_PUT, RS_EXPIRE, RS_PROJECTS,
  RS_HWM_GET, RS_HWM_SET, RS_RECOVER, RS__COUNT
};

static const char *const rollup_sql[RS__COUNT] = {
  [RS_DIM_FIND] =
    "SELECT id FROM rollup_dims WHERE project_id = ?1 AND environment = ?2 AND provider = ?3 AND model = ?4"
    " AND name = ?5 AND kind = ?6 AND status = ?7 AND feature = ?8 AND coarse = ?9",
  [RS_DIM_INSERT] =
    "INSERT INTO rollup_dims(project_id, environment, provider, model, name, kind, status, feature, coarse)"
    " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
  [RS_DIM_COUNT] = "SELECT count(*) FROM rollup_dims WHERE project_id = ?1",
  [RS_ROW_GET] =
    "SELECT n, errors, tok_in, tok_out, tok_cache_read, tok_cache_write, tok_reasoning, tok_total, cost_nusd,"
    " priced, unpriced, lat, ttft, tps, tokens, roots FROM rollups"
    " WHERE project_id = ?1 AND coarse = ?20 AND res = ?2 AND bucket = ?3 AND dim = ?4",
  [RS_ROW_PUT] =
    "INSERT OR REPLACE INTO rollups(project_id, res, bucket, dim, n, errors, tok_in, tok_out, tok_cache_read,"
    " tok_cache_write, tok_reasoning, tok_total, cost_nusd, priced, unpriced, lat, ttft, tps, tokens, coarse,"
    " roots) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21)",
  /* One key range at a time, so the primary key does the work. */
  [RS_EXPIRE] =
    "DELETE FROM rollups WHERE (project_id, coarse, res, bucket, dim) IN"
    " (SELECT project_id, coarse, res, bucket, dim FROM rollups"
    "  WHERE project_id = ?1 AND coarse = ?2 AND res = ?3 AND bucket < ?4 LIMIT ?5)",
  [RS_PROJECTS] = "SELECT id FROM projects ORDER BY id",
  [RS_HWM_GET] = "SELECT value FROM meta WHERE key = 'rollup_hwm'",
  [RS_HWM_SET] = "INSERT INTO meta(key, value) VALUES('rollup_hwm', ?1)"
                 " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
  /* What lt__sq_rollup_add reads of a span, as insert_span stored it. */
  [RS_RECOVER] =
    "SELECT id, project_id, start_ns, end_ns, name, kind, status, request_model, response_model, input_tokens,"
    " output_tokens, total_tokens, cost_nusd, cost_source, ttft_ns, parent_id IS NOT NULL, payload"
    " FROM spans WHERE id > ?1 ORDER BY id",
};

static const int64_t resolutions[LT__SQ_ROLLUP_NRES] = {60, 3600, 86400};

enum { SUM_TOK_IN, SUM_TOK_OUT, SUM_CACHE_READ, SUM_CACHE_WRITE, SUM_REASONING, SUM_TOTAL, SUM__COUNT };
enum { SK_LAT, SK_TTFT, SK_TPS, SK_TOKENS, SK__COUNT };

typedef struct {
  int64_t project_id, res, bucket, dim;
  int coarse;
  int64_t n, errors, sums[SUM__COUNT], cost, priced, unpriced, roots;
  lt_sketch_t sk[SK__COUNT];
} acc_t;

/* A cached dimension set. The strings are one heap block owned by the node. */
typedef struct dim_node {
  int64_t project_id, id;
  int kind, status; /* status + 3 * coarse: one int keeps the compare cheap */
  lt_str_t v[LT__SQ_ROLLUP_NDIMS_STR];
  bool fresh; /* inserted by the open transaction */
  uint64_t hash;
  struct dim_node *next;
} dim_node_t;

typedef struct {
  int64_t project_id, count;
} proj_count_t;

struct lt__sq_rollup {
  sqlite3_stmt *st[RS__COUNT];
  /* Recovery is said at most once a minute: while the disk is full, every
   * maintenance slice rolls back and recovers the same spans again. */
  _Atomic int64_t recover_logged_s;
  /* dimension cache: chained hash table */
  dim_node_t **buckets;
  size_t nbuckets, ndims;
  proj_count_t *counts; /* dimension sets per project, loaded on first use */
  size_t ncounts, capcounts;
  bool counts_dirty;    /* a rolled-back transaction may have bumped counts */
  /* accumulators of the open transaction */
  acc_t *accs;
  size_t nacc, capacc;
  uint32_t *slots;
  size_t nslots;
  lt_buf_t enc[SK__COUNT];
  int64_t next_expire_ns;
  /* deferred flushes (see the top of the file) */
  int64_t pending_max_id; /* largest span id in the accumulators, 0: none */
  int64_t hwm;            /* meta.rollup_hwm as committed */
  int64_t written_hwm;    /* what the open transaction's flush wrote, -1: none */
  int64_t flush_ns;       /* monotonic time of the last flush */
  bool recover;           /* accumulators may miss spans above hwm */
};

/* ---- small helpers ------------------------------------------------------ */

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
  const uint8_t *b = p;
  for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
  return h;
}

static uint64_t dim_hash(int64_t project_id, const lt_str_t *v, int kind, int status) {
  uint64_t h = fnv(0xcbf29ce484222325ull, &project_id, sizeof project_id);
  for (int i = 0; i < LT__SQ_ROLLUP_NDIMS_STR; i++) {
    h = fnv(h, v[i].ptr ? v[i].ptr : "", v[i].len);
    h = fnv(h, "\x1f", 1);
  }
  h = fnv(h, &kind, sizeof kind);
  return fnv(h, &status, sizeof status);
}

/* Cuts s to at most max bytes without splitting a UTF-8 sequence. */
static lt_str_t cut(lt_str_t s, size_t max) {
  if (s.len <= max) return s;
  size_t n = max;
  while (n > 0 && ((unsigned char)s.ptr[n] & 0xC0) == 0x80) n--;
  return (lt_str_t){s.ptr, n};
}

static int run_stmt(sqlite3 *db, sqlite3_stmt *st) {
  int src = sqlite3_step(st);
  sqlite3_reset(st);
  return src == SQLITE_DONE || src == SQLITE_ROW ? 0 : lt__sq_fail(db, src, sqlite3_sql(st));
}

/* ---- lifecycle ---------------------------------------------------------- */

int lt__sq_rollup_open(lt__sq_t *s) {
  lt__sq_rollup_t *r = lt_calloc(1, sizeof *r);
  if (!r) return LT_ENOMEM;
  s->rollup = r;
  for (int i = 0; i < SK__COUNT; i++) lt_buf_init(&r->enc[i], 1u << 20);
  for (int i = 0; i < RS__COUNT; i++) {
    int src = sqlite3_prepare_v3(s->wdb, rollup_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &r->st[i], NULL);
    if (src != SQLITE_OK) return lt__sq_fail(s->wdb, src, rollup_sql[i]);
  }
  sqlite3_stmt *g = r->st[RS_HWM_GET];
  int src = sqlite3_step(g);
  if (src == SQLITE_ROW) r->hwm = sqlite3_column_int64(g, 0);
  sqlite3_reset(g);
  if (src != SQLITE_ROW && src != SQLITE_DONE) return lt__sq_fail(s->wdb, src, "reading rollup_hwm");
  /* The last run may have stopped with a deferred flush pending. */
  r->recover = true;
  r->written_hwm = -1;
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  r->flush_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
  return 0;
}

static void accs_clear(lt__sq_rollup_t *r) {
  for (size_t i = 0; i < r->nacc; i++)
    for (int k = 0; k < SK__COUNT; k++) lt_sketch_reset(&r->accs[i].sk[k]);
  r->nacc = 0;
  if (r->slots) memset(r->slots, 0, r->nslots * sizeof *r->slots);
}

static void dims_clear(lt__sq_rollup_t *r) {
  for (size_t b = 0; b < r->nbuckets; b++) {
    for (dim_node_t *n = r->buckets[b], *next; n; n = next) {
      next = n->next;
      lt_free(n);
    }
  }
  lt_free(r->buckets);
  r->buckets = NULL;
  r->nbuckets = r->ndims = 0;
}

void lt__sq_rollup_close(lt__sq_t *s) {
  lt__sq_rollup_t *r = s->rollup;
  if (!r) return;
  accs_clear(r);
  dims_clear(r);
  for (int i = 0; i < RS__COUNT; i++) sqlite3_finalize(r->st[i]);
  for (int i = 0; i < SK__COUNT; i++) lt_buf_free(&r->enc[i]);
  lt_free(r->accs);
  lt_free(r->slots);
  lt_free(r->counts);
  lt_free(r);
  s->rollup = NULL;
}

/* ---- dimension ids ------------------------------------------------------ */

static dim_node_t *dim_lookup(lt__sq_rollup_t *r, int64_t project_id, const lt_str_t *v, int kind, int status,
                              uint64_t h) {
  if (!r->nbuckets) return NULL;
  for (dim_node_t *n = r->buckets[h & (r->nbuckets - 1)]; n; n = n->next) {
    if (n->hash != h || n->project_id != project_id || n->kind != kind || n->status != status) continue;
    bool same = true;
    for (int i = 0; same && i < LT__SQ_ROLLUP_NDIMS_STR; i++) same = lt_str_eq(n->v[i], v[i]);
    if (same) return n;
  }
  return NULL;
}

static int dim_remember(lt__sq_rollup_t *r, int64_t project_id, const lt_str_t *v, int kind, int status,
                        uint64_t h, int64_t id, bool fresh) {
  if ((r->ndims + 1) * 2 > r->nbuckets) {
    size_t nb = r->nbuckets ? r->nbuckets * 2 : 1024;
    dim_node_t **b = lt_calloc(nb, sizeof *b);
    if (!b) return LT_ENOMEM;
    for (size_t i = 0; i < r->nbuckets; i++) {
      for (dim_node_t *n = r->buckets[i], *next; n; n = next) {
        next = n->next;
        n->next = b[n->hash & (nb - 1)];
        b[n->hash & (nb - 1)] = n;
      }
    }
    lt_free(r->buckets);
    r->buckets = b;
    r->nbuckets = nb;
  }
  size_t total = 0;
  for (int i = 0; i < LT__SQ_ROLLUP_NDIMS_STR; i++) total += v[i].len;
  dim_node_t *n = lt_malloc(sizeof *n + total + 1);
  if (!n) return LT_ENOMEM;
  char *p = (char *)(n + 1);
  for (int i = 0; i < LT__SQ_ROLLUP_NDIMS_STR; i++) {
    if (v[i].len) memcpy(p, v[i].ptr, v[i].len);
    n->v[i] = (lt_str_t){p, v[i].len};
    p += v[i].len;
  }
  n->project_id = project_id;
  n->id = id;
  n->kind = kind;
  n->status = status;
  n->fresh = fresh;
  n->hash = h;
  n->next = r->buckets[h & (r->nbuckets - 1)];
  r->buckets[h & (r->nbuckets - 1)] = n;
  r->ndims++;
  return 0;
}

static int project_count(lt__sq_t *s, int64_t project_id, proj_count_t **out) {
  lt__sq_rollup_t *r = s->rollup;
  for (size_t i = 0; i < r->ncounts; i++) {
    if (r->counts[i].project_id == project_id) {
      *out = &r->counts[i];
      return 0;
    }
  }
  if (r->ncounts == r->capcounts) {
    size_t nc = r->capcounts ? r->capcounts * 2 : 8;
    proj_count_t *p = lt_realloc(r->counts, nc * sizeof *p);
    if (!p) return LT_ENOMEM;
    r->counts = p;
    r->capcounts = nc;
  }
  sqlite3_stmt *st = r->st[RS_DIM_COUNT];
  sqlite3_bind_int64(st, 1, project_id);
  int src = sqlite3_step(st);
  int64_t n = src == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
  sqlite3_reset(st);
  if (src != SQLITE_ROW) return lt__sq_fail(s->wdb, src, "counting rollup dimensions");
  r->counts[r->ncounts] = (proj_count_t){project_id, n};
  *out = &r->counts[r->ncounts++];
  return 0;
}

/* status carries the coarse flag: status + 3 * coarse (see dim_node_t). */
static void bind_dims(sqlite3_stmt *st, int64_t project_id, const lt_str_t *v, int kind, int status) {
  sqlite3_bind_int64(st, 1, project_id);
  for (int i = 0; i < 3; i++) lt__sq_bind_text_nn(st, 2 + i, v[i]); /* environment, provider, model */
  lt__sq_bind_text_nn(st, 5, v[3]);                                     /* name */
  sqlite3_bind_int(st, 6, kind);
  sqlite3_bind_int(st, 7, status % 3);
  lt__sq_bind_text_nn(st, 8, v[4]);                                     /* feature */
  sqlite3_bind_int(st, 9, status / 3);
}

/* Finds or creates the id of a dimension set (no cap applied). *found is
 * false when the set does not exist and create is false. */
static int dim_id_exact(lt__sq_t *s, int64_t project_id, const lt_str_t *v, int kind, int status, bool create,
                        int64_t *id, bool *found) {
  lt__sq_rollup_t *r = s->rollup;
  uint64_t h = dim_hash(project_id, v, kind, status);
  dim_node_t *n = dim_lookup(r, project_id, v, kind, status, h);
  *found = true;
  if (n) {
    *id = n->id;
    return 0;
  }
  sqlite3_stmt *st = r->st[RS_DIM_FIND];
  bind_dims(st, project_id, v, kind, status);
  int src = sqlite3_step(st);
  if (src == SQLITE_ROW) *id = sqlite3_column_int64(st, 0);
  sqlite3_reset(st);
  if (src == SQLITE_ROW) return dim_remember(r, project_id, v, kind, status, h, *id, false);
  if (src != SQLITE_DONE) return lt__sq_fail(s->wdb, src, "finding a rollup dimension");
  if (!create) {
    *found = false;
    return 0;
  }
  proj_count_t *pc;
  int rc = project_count(s, project_id, &pc);
  if (rc) return rc;
  st = r->st[RS_DIM_INSERT];
  bind_dims(st, project_id, v, kind, status);
  if ((rc = run_stmt(s->wdb, st))) return rc;
  *id = sqlite3_last_insert_rowid(s->wdb);
  pc->count++;
  r->counts_dirty = true;
  return dim_remember(r, project_id, v, kind, status, h, *id, true);
}

static const lt_str_t other = {"(other)", 7};

/* The id for a span's dimensions, folding name and feature (then model)
 * into "(other)" once the project holds LT__SQ_ROLLUP_MAX_DIMS sets.
 * status is status + 3 * coarse. */
static int dim_id(lt__sq_t *s, int64_t project_id, lt_str_t *v, int kind, int status, int64_t *id) {
  bool found;
  int rc = dim_id_exact(s, project_id, v, kind, status, false, id, &found);
  if (rc || found) return rc;
  proj_count_t *pc;
  if ((rc = project_count(s, project_id, &pc))) return rc;
  if (pc->count >= LT__SQ_ROLLUP_MAX_DIMS) {
    if (status < 3) {
      v[3] = other;
      v[4] = other;
      if ((rc = dim_id_exact(s, project_id, v, kind, status, false, id, &found)) || found) return rc;
    }
    v[2] = other;
  }
  return dim_id_exact(s, project_id, v, kind, status, true, id, &found);
}

/* ---- accumulation ------------------------------------------------------- */

static uint32_t acc_hash(int64_t project_id, int64_t res, int64_t bucket, int64_t dim) {
  uint64_t h = (uint64_t)dim * 0x9E3779B97F4A7C15ull ^ (uint64_t)bucket * 0xC2B2AE3D27D4EB4Full ^
               (uint64_t)res * 0x165667B19E3779F9ull ^ (uint64_t)project_id;
  h ^= h >> 31;
  return (uint32_t)h;
}

static int acc_get(lt__sq_rollup_t *r, int64_t project_id, int64_t res, int64_t bucket, int64_t dim, acc_t **out) {
  if ((r->nacc + 1) * 2 > r->nslots) {
    size_t ns = r->nslots ? r->nslots * 2 : 256;
    uint32_t *slots = lt_calloc(ns, sizeof *slots);
    if (!slots) return LT_ENOMEM;
    for (size_t i = 0; i < r->nacc; i++) {
      acc_t *a = &r->accs[i];
      size_t j = acc_hash(a->project_id, a->res, a->bucket, a->dim) & (ns - 1);
      while (slots[j]) j = (j + 1) & (ns - 1);
      slots[j] = (uint32_t)(i + 1);
    }
    lt_free(r->slots);
    r->slots = slots;
    r->nslots = ns;
  }
  size_t j = acc_hash(project_id, res, bucket, dim) & (r->nslots - 1);
  while (r->slots[j]) {
    acc_t *a = &r->accs[r->slots[j] - 1];
    if (a->dim == dim && a->bucket == bucket && a->res == res && a->project_id == project_id) {
      *out = a;
      return 0;
    }
    j = (j + 1) & (r->nslots - 1);
  }
  if (r->nacc == r->capacc) {
    size_t nc = r->capacc ? r->capacc * 2 : 64;
    acc_t *p = lt_realloc(r->accs, nc * sizeof *p);
    if (!p) return LT_ENOMEM;
    r->accs = p;
    r->capacc = nc;
  }
  acc_t *a = &r->accs[r->nacc];
  memset(a, 0, sizeof *a);
  a->project_id = project_id;
  a->res = res;
  a->bucket = bucket;
  a->dim = dim;
  for (int k = 0; k < SK__COUNT; k++) lt_sketch_init(&a->sk[k]);
  r->slots[j] = (uint32_t)++r->nacc;
  *out = a;
  return 0;
}

static int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

void lt__sq_rollup_values(const lt_span_t *sp, lt__sq_rollup_values_t *out) {
  for (int i = 0; i < 4; i++) out->v[i] = -1;
  int64_t dur = sp->end_ns - sp->start_ns;
  if (dur >= 0) out->v[0] = (double)dur / 1e6;
  if (sp->ttft_ns >= 0) out->v[1] = (double)sp->ttft_ns / 1e6;
  if (sp->usage_rollup) return;
  int64_t outp = sp->tokens[LT_TOK_OUTPUT];
  int64_t gen = sp->ttft_ns >= 0 && sp->ttft_ns < dur ? dur - sp->ttft_ns : dur;
  if (outp > 0 && gen > 0) out->v[2] = (double)outp * 1e9 / (double)gen;
  int64_t total = sp->tokens[LT_TOK_TOTAL];
  if (total < 0 && sp->tokens[LT_TOK_INPUT] >= 0 && outp >= 0) total = sp->tokens[LT_TOK_INPUT] + outp;
  if (total >= 0) out->v[3] = (double)total;
}

int lt__sq_rollup_add(lt__sq_t *s, int64_t project_id, int64_t span_id, const lt_span_t *sp) {
  lt__sq_rollup_t *r = s->rollup;
  if (span_id > r->pending_max_id) r->pending_max_id = span_id;
  lt_str_t model = sp->response_model.len ? sp->response_model : sp->request_model;
  lt_str_t v[LT__SQ_ROLLUP_NDIMS_STR] = {
    cut(sp->environment, LT__SQ_ROLLUP_MAX_VALUE), cut(sp->provider, LT__SQ_ROLLUP_MAX_VALUE),
    cut(model, LT__SQ_ROLLUP_MAX_VALUE), cut(sp->name, LT__SQ_ROLLUP_MAX_VALUE),
    cut(sp->feature, LT__SQ_ROLLUP_MAX_VALUE)};
  /* Every span counts into its full dimension set and into the coarse
   * one (environment, name, feature and status left out: errors are a
   * column, and the status split would double the rows a model-level
   * dashboard reads). */
  int64_t dims[2];
  lt_str_t cv[LT__SQ_ROLLUP_NDIMS_STR] = {LT_STR_NULL, v[1], v[2], LT_STR_NULL, LT_STR_NULL};
  int rc = dim_id(s, project_id, v, (int)sp->kind, (int)sp->status, &dims[0]);
  if (rc) return rc;
  if ((rc = dim_id(s, project_id, cv, (int)sp->kind, LT_STATUS_UNSET + 3, &dims[1]))) return rc;
  lt__sq_rollup_values_t vals;
  lt__sq_rollup_values(sp, &vals);
  int64_t sec = floor_div(sp->start_ns, 1000000000);
  bool counted = !sp->usage_rollup;
  bool has_tokens = sp->tokens[LT_TOK_INPUT] >= 0 || sp->tokens[LT_TOK_OUTPUT] >= 0;
  /* Only the finest resolution here; flush folds each of its buckets into
   * the coarser ones, once per bucket instead of once per span. */
  int64_t res = resolutions[0];
  for (int i = 0; i < 2; i++) {
    acc_t *a;
    if ((rc = acc_get(r, project_id, res, floor_div(sec, res) * res, dims[i], &a))) return rc;
    a->coarse = i;
    a->n++;
    if (!sp->has_parent) a->roots++;
    if (sp->status == LT_STATUS_ERROR) a->errors++;
    if (counted) {
      static const int tok_of[SUM__COUNT] = {LT_TOK_INPUT, LT_TOK_OUTPUT, LT_TOK_CACHE_READ,
                                             LT_TOK_CACHE_WRITE, LT_TOK_REASONING, LT_TOK_TOTAL};
      for (int k = 0; k < SUM__COUNT; k++)
        if (sp->tokens[tok_of[k]] >= 0) a->sums[k] += sp->tokens[tok_of[k]];
      if (lt_span_has_cost(sp)) {
        a->cost += sp->cost_total;
        a->priced++;
      } else if (sp->cost_source == LT_COST_UNKNOWN && has_tokens) {
        a->unpriced++;
      }
    }
    for (int k = 0; k < SK__COUNT; k++) {
      /* A value the sketch refuses (NaN, negative) is skipped; only
       * running out of memory fails the write. */
      if (vals.v[k] >= 0 && lt_sketch_add(&a->sk[k], vals.v[k]) == LT_ENOMEM) return LT_ENOMEM;
    }
  }
  return 0;
}

/* Adds the finest buckets into their coarser ones (made as needed). */
static int fold_coarser(lt__sq_rollup_t *r) {
  size_t n = r->nacc; /* the coarser accumulators are appended past it */
  for (size_t i = 0; i < n; i++) {
    if (r->accs[i].res != resolutions[0]) continue;
    for (int k = 1; k < LT__SQ_ROLLUP_NRES; k++) {
      int64_t res = resolutions[k];
      acc_t *to;
      int rc = acc_get(r, r->accs[i].project_id, res, floor_div(r->accs[i].bucket, res) * res, r->accs[i].dim, &to);
      if (rc) return rc;
      const acc_t *from = &r->accs[i]; /* acc_get may have moved the array */
      to->coarse = from->coarse;
      to->n += from->n;
      to->roots += from->roots;
      to->errors += from->errors;
      for (int j = 0; j < SUM__COUNT; j++) to->sums[j] += from->sums[j];
      to->cost += from->cost;
      to->priced += from->priced;
      to->unpriced += from->unpriced;
      for (int j = 0; j < SK__COUNT; j++)
        if ((rc = lt_sketch_merge(&to->sk[j], &from->sk[j]))) return rc;
    }
  }
  return 0;
}

/* ---- flush -------------------------------------------------------------- */

static int merge_col(sqlite3_stmt *st, int col, lt_sketch_t *into) {
  if (sqlite3_column_type(st, col) == SQLITE_NULL) return 0;
  int rc = lt_sketch_merge_encoded(into, sqlite3_column_blob(st, col), (size_t)sqlite3_column_bytes(st, col));
  /* A damaged stored sketch is replaced rather than failing every commit. */
  return rc == LT_EDECODE || rc == LT_ETOOBIG ? 0 : rc;
}

static int flush_one(lt__sq_t *s, acc_t *a) {
  lt__sq_rollup_t *r = s->rollup;
  sqlite3_stmt *g = r->st[RS_ROW_GET];
  sqlite3_bind_int64(g, 1, a->project_id);
  sqlite3_bind_int64(g, 2, a->res);
  sqlite3_bind_int64(g, 3, a->bucket);
  sqlite3_bind_int64(g, 4, a->dim);
  sqlite3_bind_int(g, 20, a->coarse);
  int src = sqlite3_step(g), rc = 0;
  if (src == SQLITE_ROW) {
    a->n += sqlite3_column_int64(g, 0);
    a->errors += sqlite3_column_int64(g, 1);
    for (int k = 0; k < SUM__COUNT; k++) a->sums[k] += sqlite3_column_int64(g, 2 + k);
    a->cost += sqlite3_column_int64(g, 8);
    a->priced += sqlite3_column_int64(g, 9);
    a->unpriced += sqlite3_column_int64(g, 10);
    a->roots += sqlite3_column_int64(g, 15);
    for (int k = 0; rc == 0 && k < SK__COUNT; k++) rc = merge_col(g, 11 + k, &a->sk[k]);
  } else if (src != SQLITE_DONE) {
    rc = lt__sq_fail(s->wdb, src, "reading a rollup");
  }
  sqlite3_reset(g);
  if (rc) return rc;
  sqlite3_stmt *p = r->st[RS_ROW_PUT];
  sqlite3_bind_int64(p, 1, a->project_id);
  sqlite3_bind_int64(p, 2, a->res);
  sqlite3_bind_int64(p, 3, a->bucket);
  sqlite3_bind_int64(p, 4, a->dim);
  sqlite3_bind_int64(p, 5, a->n);
  sqlite3_bind_int64(p, 6, a->errors);
  for (int k = 0; k < SUM__COUNT; k++) sqlite3_bind_int64(p, 7 + k, a->sums[k]);
  sqlite3_bind_int64(p, 13, a->cost);
  sqlite3_bind_int64(p, 14, a->priced);
  sqlite3_bind_int64(p, 15, a->unpriced);
  sqlite3_bind_int64(p, 21, a->roots);
  sqlite3_bind_int(p, 20, a->coarse);
  for (int k = 0; k < SK__COUNT; k++) {
    lt_buf_t *e = &r->enc[k];
    lt_buf_reset(e);
    if (lt_sketch_count(&a->sk[k]) == 0) {
      sqlite3_bind_null(p, 16 + k);
      continue;
    }
    if ((rc = lt_sketch_encode(&a->sk[k], e))) {
      sqlite3_reset(p);
      return rc;
    }
    sqlite3_bind_blob64(p, 16 + k, e->ptr, e->len, SQLITE_STATIC);
  }
  return run_stmt(s->wdb, p);
}

bool lt__sq_rollup_due(lt__sq_t *s, bool backlog, int64_t now_mono_ns) {
  lt__sq_rollup_t *r = s->rollup;
  if (!r->nacc) return false;
  return !backlog || now_mono_ns - r->flush_ns >= LT__SQ_ROLLUP_DEFER_NS || r->nacc >= LT__SQ_ROLLUP_DEFER_ACCS;
}

int lt__sq_rollup_flush(lt__sq_t *s, int64_t now_mono_ns) {
  lt__sq_rollup_t *r = s->rollup;
  int rc = fold_coarser(r);
  for (size_t i = 0; rc == 0 && i < r->nacc; i++) rc = flush_one(s, &r->accs[i]);
  accs_clear(r);
  r->flush_ns = now_mono_ns;
  if (rc == 0 && r->pending_max_id > 0) {
    sqlite3_stmt *st = r->st[RS_HWM_SET];
    sqlite3_bind_int64(st, 1, r->pending_max_id);
    if ((rc = run_stmt(s->wdb, st)) == 0) r->written_hwm = r->pending_max_id;
  }
  r->pending_max_id = 0;
  return rc;
}

int lt__sq_rollup_lower_hwm(lt__sq_t *s, int64_t max_span_id) {
  lt__sq_rollup_t *r = s->rollup;
  int64_t cur = r->written_hwm >= 0 ? r->written_hwm : r->hwm;
  if (max_span_id >= cur) return 0;
  sqlite3_stmt *st = r->st[RS_HWM_SET];
  sqlite3_bind_int64(st, 1, max_span_id);
  int rc = run_stmt(s->wdb, st);
  if (rc == 0) r->written_hwm = max_span_id;
  return rc;
}

/* Reads back the spans stored above the mark into fresh accumulators:
 * they hold exactly the spans the rollup rows lack. */
int lt__sq_rollup_recover(lt__sq_t *s) {
  lt__sq_rollup_t *r = s->rollup;
  if (!r->recover) return 0;
  accs_clear(r);
  r->pending_max_id = 0;
  sqlite3_stmt *st = r->st[RS_RECOVER];
  sqlite3_bind_int64(st, 1, r->hwm);
  int src = SQLITE_DONE, rc = 0;
  int64_t n = 0, damaged = 0;
  while (rc == 0 && (src = sqlite3_step(st)) == SQLITE_ROW) {
    lt_span_t sp;
    memset(&sp, 0, sizeof sp);
    for (int k = 0; k < LT_TOK__COUNT; k++) sp.tokens[k] = -1;
    int64_t id = sqlite3_column_int64(st, 0), project_id = sqlite3_column_int64(st, 1);
    sp.start_ns = sqlite3_column_int64(st, 2);
    sp.end_ns = sqlite3_column_int64(st, 3);
    sp.name = (lt_str_t){(const char *)sqlite3_column_text(st, 4), (size_t)sqlite3_column_bytes(st, 4)};
    sp.kind = (lt_kind_t)sqlite3_column_int(st, 5);
    sp.status = (lt_status_t)sqlite3_column_int(st, 6);
    sp.request_model = (lt_str_t){(const char *)sqlite3_column_text(st, 7), (size_t)sqlite3_column_bytes(st, 7)};
    sp.response_model = (lt_str_t){(const char *)sqlite3_column_text(st, 8), (size_t)sqlite3_column_bytes(st, 8)};
    static const int tok_col[3][2] = {{LT_TOK_INPUT, 9}, {LT_TOK_OUTPUT, 10}, {LT_TOK_TOTAL, 11}};
    for (int k = 0; k < 3; k++)
      if (sqlite3_column_type(st, tok_col[k][1]) != SQLITE_NULL)
        sp.tokens[tok_col[k][0]] = sqlite3_column_int64(st, tok_col[k][1]);
    sp.cost_total = sqlite3_column_int64(st, 12);
    sp.cost_source = (lt_cost_source_t)sqlite3_column_int(st, 13);
    sp.ttft_ns = sqlite3_column_type(st, 14) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 14);
    sp.has_parent = sqlite3_column_int(st, 15) != 0;
    lt__sq_payload_t p;
    rc = lt__sq_payload_decode(&s->wup, sqlite3_column_blob(st, 16), (size_t)sqlite3_column_bytes(st, 16), &p);
    if (rc && rc != LT_ENOMEM) {
      /* A payload that cannot be read (damaged, its chunk unreadable) must
       * not stop every later write: the span counts without its payload's
       * dimensions. */
      if (!damaged++) lt_warn("rollups: span %lld: payload unreadable (%s); counted without it", (long long)id,
                              lt_strerror(rc));
      memset(&p, 0, sizeof p);
      p.cache_read = p.cache_write = p.reasoning = -1;
      rc = 0;
    }
    if (rc) break;
    sp.environment = p.f[LT__P_ENVIRONMENT];
    sp.provider = p.f[LT__P_PROVIDER];
    sp.feature = p.f[LT__P_FEATURE];
    sp.tokens[LT_TOK_CACHE_READ] = p.cache_read;
    sp.tokens[LT_TOK_CACHE_WRITE] = p.cache_write;
    sp.tokens[LT_TOK_REASONING] = p.reasoning;
    sp.usage_rollup = p.usage_rollup;
    rc = lt__sq_rollup_add(s, project_id, id, &sp);
    n++;
  }
  sqlite3_reset(st);
  if (rc == 0 && src != SQLITE_DONE) rc = lt__sq_fail(s->wdb, src, "reading spans back into rollups");
  if (rc == 0) {
    r->recover = false;
    if (n && lt_log_due(&r->recover_logged_s, 60))
      lt_info("rollups: %lld span(s) stored after the last rollup flush were added back", (long long)n);
    else if (n)
      lt_debug("rollups: %lld span(s) stored after the last rollup flush were added back", (long long)n);
  }
  return rc;
}

void lt__sq_rollup_commit(lt__sq_t *s) {
  lt__sq_rollup_t *r = s->rollup;
  for (size_t b = 0; b < r->nbuckets; b++)
    for (dim_node_t *n = r->buckets[b]; n; n = n->next) n->fresh = false;
  r->counts_dirty = false;
  if (r->written_hwm >= 0) r->hwm = r->written_hwm;
  r->written_hwm = -1;
}

void lt__sq_rollup_abort(lt__sq_t *s) {
  lt__sq_rollup_t *r = s->rollup;
  /* Spans of earlier, committed transactions may have been in them: the
   * next transaction reads back whatever lies above the mark. */
  accs_clear(r);
  r->pending_max_id = 0;
  r->written_hwm = -1;
  r->recover = true;
  /* Unlink the ids this transaction created: they no longer exist. */
  for (size_t b = 0; b < r->nbuckets; b++) {
    dim_node_t **pp = &r->buckets[b];
    while (*pp) {
      dim_node_t *n = *pp;
      if (n->fresh) {
        *pp = n->next;
        lt_free(n);
        r->ndims--;
      } else {
        pp = &n->next;
      }
    }
  }
  if (r->counts_dirty) r->ncounts = 0; /* reload from the table */
  r->counts_dirty = false;
}

int lt__sq_rollup_maintain(lt__sq_t *s, int64_t now_ns, int64_t retention_ns, bool *more) {
  lt__sq_rollup_t *r = s->rollup;
  /* Old buckets only appear as time passes: a minute between sweeps is
   * plenty, and spares the work on every maintenance tick. */
  if (now_ns < r->next_expire_ns) return 0;
  int64_t now_s = now_ns / 1000000000;
  int64_t keep = retention_ns > 0 ? retention_ns / 1000000000 : 0;
#define KEEP(k) (keep > 0 && keep < (k) ? keep : (k))
  const struct {
    int coarse;
    int64_t res, cutoff;
  } jobs[] = {
    {0, 60, now_s - KEEP(LT__SQ_ROLLUP_FINE_MINUTE_KEEP_S)},
    {1, 60, now_s - KEEP(LT__SQ_ROLLUP_MINUTE_KEEP_S)},
    {0, 3600, keep ? now_s - keep : 0}, {1, 3600, keep ? now_s - keep : 0},
    {0, 86400, keep ? now_s - keep : 0}, {1, 86400, keep ? now_s - keep : 0},
  };
#undef KEEP
  int64_t projects[64];
  int np = 0, rc = 0;
  sqlite3_stmt *p = r->st[RS_PROJECTS];
  while (np < 64 && sqlite3_step(p) == SQLITE_ROW) projects[np++] = sqlite3_column_int64(p, 0);
  sqlite3_reset(p);
  int budget = LT__SQ_RETENTION_CHUNK;
  for (int i = 0; rc == 0 && i < np && budget > 0; i++) {
    for (size_t k = 0; rc == 0 && k < sizeof jobs / sizeof jobs[0] && budget > 0; k++) {
      if (jobs[k].cutoff <= 0) continue;
      sqlite3_stmt *st = r->st[RS_EXPIRE];
      sqlite3_bind_int64(st, 1, projects[i]);
      sqlite3_bind_int(st, 2, jobs[k].coarse);
      sqlite3_bind_int64(st, 3, jobs[k].res);
      sqlite3_bind_int64(st, 4, jobs[k].cutoff);
      sqlite3_bind_int(st, 5, budget);
      if ((rc = run_stmt(s->wdb, st))) break;
      budget -= sqlite3_changes(s->wdb);
    }
  }
  if (rc) return rc;
  /* A spent budget means rows may be left: sweep again on the next tick.
   * (Projects past the first 64 wait until the first ones are clean.) */
  if (budget <= 0) *more = true;
  else r->next_expire_ns = now_ns + 60 * 1000000000LL;
  return 0;
}
