/* Batches: a record array per kind (heap, doubling) plus the arena that
 * holds every byte the records point to. */
#include "pipeline/batch.h"
#include "core/mem.h"
#include <string.h>

/* A hard cap on records per batch, whatever the arena allows. */
#define MAX_RECORDS (1u << 20)

lt_batch_t *lt_batch_new(int64_t project_id, size_t arena_cap) {
  lt_batch_t *b = lt_calloc(1, sizeof *b);
  if (!b) return NULL;
  b->arena = lt_arena_create(arena_cap);
  if (!b->arena) {
    lt_free(b);
    return NULL;
  }
  b->project_id = project_id;
  return b;
}

void lt_batch_free(lt_batch_t *b) {
  if (!b) return;
  lt_arena_destroy(b->arena);
  lt_free(b->spans);
  lt_free(b->span_new);
  lt_free(b->logs);
  lt_free(b->points);
  lt_free(b);
}

/* Grows *arr (elements of size sz) so one more fits; returns the new slot. */
static void *grow(void **arr, size_t *n, size_t *cap, size_t sz) {
  if (*n >= MAX_RECORDS) return NULL;
  if (*n == *cap) {
    size_t nc = *cap ? *cap * 2 : 64;
    void *p = lt_realloc(*arr, nc * sz);
    if (!p) return NULL;
    *arr = p;
    *cap = nc;
  }
  void *slot = (char *)*arr + (*n)++ * sz;
  memset(slot, 0, sz);
  return slot;
}

lt_span_t *lt_batch_add_span(lt_batch_t *b) {
  lt_span_t *s = grow((void **)&b->spans, &b->n_spans, &b->cap_spans, sizeof *s);
  if (s) lt_span_init(s);
  return s;
}

lt_log_t *lt_batch_add_log(lt_batch_t *b) {
  return grow((void **)&b->logs, &b->n_logs, &b->cap_logs, sizeof(lt_log_t));
}

lt_point_t *lt_batch_add_point(lt_batch_t *b) {
  lt_point_t *p = grow((void **)&b->points, &b->n_points, &b->cap_points, sizeof *p);
  if (p) p->count = -1;
  return p;
}
