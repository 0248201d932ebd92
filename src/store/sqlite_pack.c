/* Payload packing, on the thread that submits a batch (see the chunk notes
 * in sqlite_internal.h and docs/storage.md).
 *
 * The spans of a batch are grouped by trace. A trace with several spans in
 * the batch gets chunks: its spans' field lists back to back, at most
 * CHUNK_MAX bytes each, compressed as one frame; each span then
 * refers to its slice. A span alone in the batch is packed inline. The
 * results live in the batch's arena, so they are freed with it. */
#include "store/sqlite_internal.h"
#include "core/arena.h"
#include "core/err.h"
#include "core/mem.h"
#include "pipeline/batch.h"
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/random.h>

/* Raw bytes per chunk: big enough for the codec to find a trace's repeats, small
 * enough that reading one span decompresses little. */
#define CHUNK_MAX (128u << 10)

/* Per-thread compression state, made on first use. */
typedef struct {
  ZSTD_CCtx *zc;
  lt_buf_t raw, packed;
  uint32_t *slot;   /* trace hash table: span index + 1 of the trace's first span */
  uint32_t *next;   /* per span: index + 1 of the next span of its trace */
  size_t slots, used, cap_spans;
} tls_t;

static pthread_key_t tls_key;
static pthread_once_t tls_once = PTHREAD_ONCE_INIT;
static uint64_t hash_seed; /* random per process: batches cannot aim collisions */

static void tls_free(void *p) {
  tls_t *t = p;
  if (!t) return;
  ZSTD_freeCCtx(t->zc);
  lt_buf_free(&t->raw);
  lt_buf_free(&t->packed);
  lt_free(t->slot);
  lt_free(t->next);
  lt_free(t);
}

static void tls_make_key(void) {
  pthread_key_create(&tls_key, tls_free);
  if (getrandom(&hash_seed, sizeof hash_seed, 0) != sizeof hash_seed) hash_seed = (uint64_t)(uintptr_t)&hash_seed;
}

static tls_t *tls_get(void) {
  pthread_once(&tls_once, tls_make_key);
  tls_t *t = pthread_getspecific(tls_key);
  if (t) return t;
  if (!(t = lt_calloc(1, sizeof *t))) return NULL;
  lt_buf_init(&t->raw, SIZE_MAX / 2);
  lt_buf_init(&t->packed, SIZE_MAX / 2);
  if (!(t->zc = ZSTD_createCCtx()) || pthread_setspecific(tls_key, t) != 0) {
    tls_free(t);
    return NULL;
  }
  return t;
}

/* Copies the framed form of raw (compressed when that is smaller) into
 * the arena. */
static int frame_into(tls_t *t, lt_compression_t codec, lt_arena_t *a, const void **blob, size_t *len) {
  int rc = lt__sq_payload_pack(t->zc, codec, &t->raw, &t->packed);
  if (rc) return rc;
  void *dst = lt_arena_alloc(a, t->packed.len);
  if (!dst) return LT_ETOOBIG;
  memcpy(dst, t->packed.ptr, t->packed.len);
  *blob = dst;
  *len = t->packed.len;
  return 0;
}

static uint64_t trace_hash(const uint8_t id[16]) {
  uint64_t hi, lo;
  memcpy(&hi, id, 8);
  memcpy(&lo, id + 8, 8);
  uint64_t h = (lo ^ hash_seed) * 0x9E3779B97F4A7C15ull ^ (hi + hash_seed) * 0xC2B2AE3D27D4EB4Full;
  return h ^ h >> 29;
}

/* Chains the spans of each trace: t->slot holds, per trace, its latest
 * span (index + 1) and t->next[i] the previous span of i's trace. */
static int group_by_trace(tls_t *t, const lt_batch_t *b) {
  size_t n = b->n_spans, slots = 16;
  while (slots < 2 * n) slots *= 2;
  if (slots > t->slots) {
    uint32_t *s = lt_realloc(t->slot, slots * sizeof *s);
    if (!s) return LT_ENOMEM;
    t->slot = s;
    t->slots = slots;
  }
  if (n > t->cap_spans) {
    uint32_t *x = lt_realloc(t->next, n * sizeof *x);
    if (!x) return LT_ENOMEM;
    t->next = x;
    t->cap_spans = n;
  }
  t->used = slots;
  memset(t->slot, 0, slots * sizeof *t->slot);
  for (size_t i = 0; i < n; i++) {
    const uint8_t *id = b->spans[i].trace_id;
    size_t h = (size_t)(trace_hash(id) & (slots - 1));
    t->next[i] = 0;
    for (;;) {
      uint32_t s = t->slot[h];
      if (!s) {
        t->slot[h] = (uint32_t)i + 1;
        break;
      }
      if (memcmp(b->spans[s - 1].trace_id, id, 16) == 0) {
        t->next[i] = s;
        t->slot[h] = (uint32_t)i + 1;
        break;
      }
      h = (h + 1) & (slots - 1);
    }
  }
  return 0;
}

int lt__sq_prepack(lt_store_t *st, lt_batch_t *b) {
  if (b->packed || b->n_spans == 0) return 0;
  lt__sq_t *s = LT__SQ(st);
  tls_t *t = tls_get();
  if (!t) return LT_ENOMEM;
  size_t n = b->n_spans;
  lt__sq_packed_t *pk = lt_arena_alloc(b->arena, sizeof *pk);
  lt__sq_packed_span_t *ps = pk ? lt_arena_alloc(b->arena, n * sizeof *ps) : NULL;
  lt__sq_chunk_t *chunks = ps ? lt_arena_alloc(b->arena, n * sizeof *chunks) : NULL; /* <= 1 per span */
  uint32_t *order = chunks ? lt_arena_alloc(b->arena, n * sizeof *order) : NULL;
  if (!order) return LT_ETOOBIG;
  int rc = group_by_trace(t, b);
  if (rc) return rc;
  size_t nc = 0;
  for (size_t h = 0; h < t->used; h++) {
    if (!t->slot[h]) continue;
    /* The trace's spans come latest first: fill order[] from the back. */
    size_t k = 0;
    for (uint32_t i = t->slot[h]; i; i = t->next[i - 1]) k++;
    size_t q = k;
    for (uint32_t i = t->slot[h]; i; i = t->next[i - 1]) order[--q] = i - 1;
    if (k == 1) {
      lt__sq_packed_span_t *p = &ps[order[0]];
      *p = (lt__sq_packed_span_t){.chunk = -1};
      lt_buf_reset(&t->raw);
      if ((rc = lt__sq_payload_encode(&b->spans[order[0]], &t->raw))) return rc;
      if (t->raw.len && (rc = frame_into(t, s->compression, b->arena, &p->blob, &p->blob_len))) return rc;
      continue;
    }
    /* Several spans: chunks of about CHUNK_MAX raw bytes at most. */
    for (size_t j = 0; j < k;) {
      size_t first = j;
      lt_buf_reset(&t->raw);
      for (; j < k && (j == first || t->raw.len < CHUNK_MAX); j++) {
        size_t off = t->raw.len;
        if ((rc = lt__sq_payload_encode(&b->spans[order[j]], &t->raw))) return rc;
        ps[order[j]] = (lt__sq_packed_span_t){.chunk = (int32_t)nc, .off = (uint32_t)off,
                                              .len = (uint32_t)(t->raw.len - off)};
      }
      if (t->raw.len == 0) { /* every span of it is empty */
        for (size_t e = first; e < j; e++) ps[order[e]].chunk = -1;
        continue;
      }
      lt__sq_chunk_t *c = &chunks[nc++];
      *c = (lt__sq_chunk_t){0};
      if ((rc = frame_into(t, s->compression, b->arena, &c->blob, &c->len))) return rc;
    }
  }
  pk->chunks = chunks;
  pk->n_chunks = nc;
  pk->spans = ps;
  b->packed = pk;
  return 0;
}
