/* Price tables in force, per project, reference counted (pricebook.h). */
#include "pipeline/pricebook.h"
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include "core/buf.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"

/* Compiled in from data/prices.json (scripts/embed.sh). */
extern const char lt_builtin_prices[];
extern const size_t lt_builtin_prices_len;

struct lt_price_ref {
  lt_prices_t *t;
  int refs; /* under the book's lock */
};

typedef struct {
  int64_t project_id;
  lt_price_ref_t *ref;
} project_t;

struct lt_pricebook {
  pthread_mutex_t mu;
  lt_price_ref_t *global; /* the shipped table plus --prices files */
  project_t *projects;
  size_t n, cap;
};

static const char empty_table[] = "{\"version\":1,\"models\":[]}";

static lt_price_ref_t *ref_new(lt_prices_t *t) {
  lt_price_ref_t *r = lt_malloc(sizeof *r);
  if (!r) return NULL;
  r->t = t;
  r->refs = 1;
  return r;
}

/* Drops one reference; the caller holds the lock. */
static void ref_drop(lt_price_ref_t *r) {
  if (r && --r->refs == 0) {
    lt_prices_free(r->t);
    lt_free(r);
  }
}

static int read_file(const char *path, char **out, size_t *len, char *err, size_t errlen) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    snprintf(err, errlen, "%s: cannot open the price file", path);
    return LT_ECONFIG;
  }
  lt_buf_t b;
  lt_buf_init(&b, 64u << 20);
  char chunk[65536];
  size_t got;
  int rc = 0;
  while (rc == 0 && (got = fread(chunk, 1, sizeof chunk, f)) > 0) rc = lt_buf_append(&b, chunk, got);
  bool bad = ferror(f);
  fclose(f);
  if (rc || bad) {
    lt_buf_free(&b);
    snprintf(err, errlen, "%s: %s", path, rc == LT_ETOOBIG ? "price file larger than 64 MiB" : "cannot read");
    return rc == LT_ENOMEM ? LT_ENOMEM : LT_ECONFIG;
  }
  *out = b.ptr; /* the buffer's bytes, now the caller's */
  *len = b.len;
  return 0;
}

int lt_pricebook_check(const char *json, size_t len, char *err, size_t errlen) {
  lt_prices_t *t = NULL;
  int rc = lt_prices_load(json, len, "body", &t, err, errlen);
  lt_prices_free(t);
  return rc;
}

int lt_pricebook_new(const char *const *files, size_t n, lt_pricebook_t **out, char *err, size_t errlen) {
  *out = NULL;
  lt_prices_t *base = NULL;
  int rc = lt_prices_load(lt_builtin_prices, lt_builtin_prices_len, "built-in prices.json", &base, err, errlen);
  for (size_t i = 0; rc == 0 && i < n; i++) {
    char *text = NULL;
    size_t len = 0;
    lt_prices_t *over = NULL;
    if ((rc = read_file(files[i], &text, &len, err, errlen))) break;
    rc = lt_prices_load(text, len, files[i], &over, err, errlen);
    lt_free(text);
    if (rc == 0) rc = lt_prices_merge(base, over);
    lt_prices_free(over);
  }
  lt_pricebook_t *pb = NULL;
  if (rc == 0 && !(pb = lt_calloc(1, sizeof *pb))) rc = LT_ENOMEM;
  if (rc == 0 && !(pb->global = ref_new(base))) rc = LT_ENOMEM;
  if (rc) {
    if (pb) lt_free(pb);
    lt_prices_free(base);
    return rc;
  }
  pthread_mutex_init(&pb->mu, NULL);
  *out = pb;
  return 0;
}

void lt_pricebook_free(lt_pricebook_t *pb) {
  if (!pb) return;
  for (size_t i = 0; i < pb->n; i++) ref_drop(pb->projects[i].ref);
  ref_drop(pb->global);
  lt_free(pb->projects);
  pthread_mutex_destroy(&pb->mu);
  lt_free(pb);
}

/* A copy of the global table with the layers merged on top. */
static int build(const lt_prices_t *global, const char *const *layers, const size_t *lens, size_t n,
                 lt_prices_t **out, char *err, size_t errlen) {
  lt_prices_t *t = NULL;
  int rc = lt_prices_load(empty_table, sizeof empty_table - 1, "empty", &t, err, errlen);
  if (rc == 0) rc = lt_prices_merge(t, global);
  for (size_t i = 0; rc == 0 && i < n; i++) {
    lt_prices_t *over = NULL;
    char origin[48];
    snprintf(origin, sizeof origin, "override %zu", i + 1);
    rc = lt_prices_load(layers[i], lens[i], origin, &over, err, errlen);
    if (rc == 0) rc = lt_prices_merge(t, over);
    lt_prices_free(over);
  }
  if (rc) {
    lt_prices_free(t);
    return rc;
  }
  *out = t;
  return 0;
}

static project_t *find(lt_pricebook_t *pb, int64_t project_id) {
  for (size_t i = 0; i < pb->n; i++)
    if (pb->projects[i].project_id == project_id) return &pb->projects[i];
  return NULL;
}

int lt_pricebook_set_project(lt_pricebook_t *pb, int64_t project_id, const char *const *layers,
                             const size_t *lens, size_t n, char *err, size_t errlen) {
  lt_price_ref_t *nref = NULL;
  if (n > 0) {
    /* The global table never changes after start-up: no lock to read it. */
    lt_prices_t *t = NULL;
    int rc = build(pb->global->t, layers, lens, n, &t, err, errlen);
    if (rc) return rc;
    if (!(nref = ref_new(t))) {
      lt_prices_free(t);
      return LT_ENOMEM;
    }
  }
  pthread_mutex_lock(&pb->mu);
  project_t *p = find(pb, project_id);
  int rc = 0;
  if (p) {
    ref_drop(p->ref);
    if (nref) p->ref = nref;
    else *p = pb->projects[--pb->n];
  } else if (nref) {
    if (pb->n == pb->cap) {
      size_t nc = pb->cap ? pb->cap * 2 : 8;
      project_t *np = lt_realloc(pb->projects, nc * sizeof *np);
      if (!np) rc = LT_ENOMEM;
      else {
        pb->projects = np;
        pb->cap = nc;
      }
    }
    if (rc == 0) pb->projects[pb->n++] = (project_t){project_id, nref};
    else ref_drop(nref);
  }
  pthread_mutex_unlock(&pb->mu);
  return rc;
}

lt_price_ref_t *lt_pricebook_acquire(lt_pricebook_t *pb, int64_t project_id) {
  pthread_mutex_lock(&pb->mu);
  project_t *p = find(pb, project_id);
  lt_price_ref_t *r = p ? p->ref : pb->global;
  r->refs++;
  pthread_mutex_unlock(&pb->mu);
  return r;
}

const lt_prices_t *lt_price_ref_table(const lt_price_ref_t *ref) { return ref->t; }

void lt_pricebook_release(lt_pricebook_t *pb, lt_price_ref_t *ref) {
  if (!ref) return;
  pthread_mutex_lock(&pb->mu);
  ref_drop(ref);
  pthread_mutex_unlock(&pb->mu);
}

bool lt_pricebook_apply(const lt_prices_t *t, lt_span_t *sp) {
  if (sp->usage_rollup) {
    /* Its children carry the cost; a reported one would be counted twice. */
    sp->cost_source = LT_COST_NONE;
    return false;
  }
  return lt_prices_cost(t, sp);
}
