/* Parallel payload packing for the write path. Compressing a span's
 * payload costs about as much CPU as SQLite spends storing it, and only the
 * writer thread can talk to SQLite; so while it inserts, helper threads
 * encode and compress the payloads of the spans further down the group.
 *
 * The spans of one write call are cut into chunks. Helpers and the writer
 * claim chunks from one atomic counter, so the writer never idles: when
 * the chunk it needs next is not ready it packs whatever is still
 * unclaimed, and only waits when everything is claimed. Each worker packs
 * into its own arena, so finished payloads never move. */
#include "store/sqlite_internal.h"
#include "core/arena.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include <stdatomic.h>
#include <string.h>

#define CHUNK 32
/* Below this many spans the writer packs alone: waking helpers costs more. */
#define MIN_PARALLEL_SPANS (4 * CHUNK)

typedef struct {
  ZSTD_CCtx *zc;
  lt_buf_t raw, packed;
  lt_arena_t *arena;
} worker_t;

typedef struct {
  const void *ptr;
  size_t len;
} blob_t;

struct lt__sq_packer {
  int level;
  int n_helpers;
  pthread_t *threads;
  worker_t *workers; /* [0] is the writer's, [1..] the helpers' */
  pthread_mutex_t mu;
  pthread_cond_t work_cv, done_cv;
  bool stopping;
  /* The current job (set by begin, cleared by end). */
  unsigned gen;
  bool active;
  int in_job;               /* helpers currently working on it */
  const lt_span_t **spans;  /* flattened over the batches */
  size_t n_spans, n_chunks, cap_spans;
  blob_t *out;
  atomic_size_t next_chunk;
  atomic_uchar *done;
  atomic_int rc;            /* first packing error */
};

static int worker_init(worker_t *w) {
  memset(w, 0, sizeof *w);
  lt_buf_init(&w->raw, SIZE_MAX / 2);
  lt_buf_init(&w->packed, SIZE_MAX / 2);
  w->zc = ZSTD_createCCtx();
  return w->zc ? 0 : LT_ENOMEM;
}

static void worker_free(worker_t *w) {
  ZSTD_freeCCtx(w->zc);
  lt_buf_free(&w->raw);
  lt_buf_free(&w->packed);
  lt_arena_destroy(w->arena);
  w->arena = NULL;
}

/* Packs one chunk with worker w; results go to p->out. */
static int pack_chunk(lt__sq_packer_t *p, worker_t *w, size_t c) {
  size_t end = (c + 1) * CHUNK < p->n_spans ? (c + 1) * CHUNK : p->n_spans;
  int rc = 0;
  if (!w->arena && !(w->arena = lt_arena_create(SIZE_MAX / 2))) return LT_ENOMEM;
  for (size_t i = c * CHUNK; rc == 0 && i < end; i++) {
    rc = lt__sq_payload_encode(p->spans[i], &w->raw);
    if (rc == 0) rc = lt__sq_payload_pack(w->zc, p->level, &w->raw, &w->packed);
    if (rc) break;
    /* A frame byte alone means an empty payload: stored as NULL. */
    if (w->packed.len <= 1) {
      p->out[i] = (blob_t){NULL, 0};
      continue;
    }
    void *dst = lt_arena_alloc(w->arena, w->packed.len);
    if (!dst) rc = LT_ENOMEM;
    else {
      memcpy(dst, w->packed.ptr, w->packed.len);
      p->out[i] = (blob_t){dst, w->packed.len};
    }
  }
  return rc;
}

/* Marks chunk c finished (with its result) and wakes a waiting writer. */
static void finish_chunk(lt__sq_packer_t *p, size_t c, int rc) {
  pthread_mutex_lock(&p->mu);
  if (rc) {
    int none = 0;
    atomic_compare_exchange_strong(&p->rc, &none, rc);
  }
  atomic_store_explicit(&p->done[c], 1, memory_order_release);
  pthread_cond_broadcast(&p->done_cv);
  pthread_mutex_unlock(&p->mu);
}

typedef struct {
  lt__sq_packer_t *p;
  int index;
} helper_arg_t;

static void *helper_main(void *arg) {
  lt__sq_packer_t *p = ((helper_arg_t *)arg)->p;
  worker_t *w = &p->workers[((helper_arg_t *)arg)->index];
  lt_free(arg);
  pthread_setname_np(pthread_self(), "lt-pack");
  unsigned seen = 0;
  pthread_mutex_lock(&p->mu);
  for (;;) {
    while (!p->stopping && (!p->active || p->gen == seen)) pthread_cond_wait(&p->work_cv, &p->mu);
    if (p->stopping) break;
    seen = p->gen;
    p->in_job++;
    pthread_mutex_unlock(&p->mu);
    size_t c;
    while ((c = atomic_fetch_add(&p->next_chunk, 1)) < p->n_chunks) finish_chunk(p, c, pack_chunk(p, w, c));
    pthread_mutex_lock(&p->mu);
    p->in_job--;
    pthread_cond_broadcast(&p->done_cv);
  }
  pthread_mutex_unlock(&p->mu);
  return NULL;
}

void lt__sq_packer_stop(lt__sq_packer_t *p) {
  if (!p) return;
  pthread_mutex_lock(&p->mu);
  p->stopping = true;
  pthread_cond_broadcast(&p->work_cv);
  pthread_mutex_unlock(&p->mu);
  for (int i = 0; i < p->n_helpers; i++) pthread_join(p->threads[i], NULL);
  for (int i = 0; p->workers && i <= p->n_helpers; i++) worker_free(&p->workers[i]);
  pthread_mutex_destroy(&p->mu);
  pthread_cond_destroy(&p->work_cv);
  pthread_cond_destroy(&p->done_cv);
  lt_free(p->threads);
  lt_free(p->workers);
  lt_free(p->spans);
  lt_free(p->out);
  lt_free(p->done);
  lt_free(p);
}

int lt__sq_packer_start(int helpers, int level, lt__sq_packer_t **out) {
  lt__sq_packer_t *p = lt_calloc(1, sizeof *p);
  if (!p) return LT_ENOMEM;
  p->level = level;
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->work_cv, NULL);
  pthread_cond_init(&p->done_cv, NULL);
  int rc = LT_ENOMEM;
  p->workers = lt_calloc((size_t)helpers + 1, sizeof *p->workers);
  p->threads = lt_calloc((size_t)helpers + 1, sizeof *p->threads);
  if (!p->workers || !p->threads) goto out;
  for (int i = 0; i <= helpers; i++)
    if ((rc = worker_init(&p->workers[i]))) goto out;
  for (int i = 0; i < helpers; i++) {
    helper_arg_t *a = lt_malloc(sizeof *a);
    if (!a) {
      rc = LT_ENOMEM;
      goto out;
    }
    *a = (helper_arg_t){p, i + 1};
    if (pthread_create(&p->threads[i], NULL, helper_main, a) != 0) {
      lt_free(a);
      lt_warn("sqlite: could not start a payload packing thread; packing on the writer alone");
      break;
    }
    p->n_helpers++;
  }
  *out = p;
  return 0;
out:
  /* Workers past a failed init are zeroed: freeing them is harmless. */
  p->n_helpers = 0;
  lt__sq_packer_stop(p);
  return rc;
}

int lt__sq_pack_begin(lt__sq_packer_t *p, lt_batch_t *const *batches, size_t n) {
  size_t total = 0;
  for (size_t i = 0; i < n; i++) total += batches[i]->n_spans;
  if (total > p->cap_spans) {
    size_t cap = total;
    const lt_span_t **spans = lt_realloc(p->spans, cap * sizeof *spans);
    if (spans) p->spans = spans;
    blob_t *o = lt_realloc(p->out, cap * sizeof *o);
    if (o) p->out = o;
    atomic_uchar *d = lt_realloc(p->done, (cap / CHUNK + 1) * sizeof *d);
    if (d) p->done = d;
    if (!spans || !o || !d) return LT_ENOMEM;
    p->cap_spans = cap;
  }
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    for (size_t j = 0; j < batches[i]->n_spans; j++) p->spans[k++] = &batches[i]->spans[j];
  p->n_spans = total;
  p->n_chunks = (total + CHUNK - 1) / CHUNK;
  for (size_t c = 0; c < p->n_chunks; c++) atomic_init(&p->done[c], 0);
  atomic_store(&p->next_chunk, 0);
  atomic_store(&p->rc, 0);
  if (p->n_helpers > 0 && total >= MIN_PARALLEL_SPANS) {
    pthread_mutex_lock(&p->mu);
    p->gen++;
    p->active = true;
    pthread_cond_broadcast(&p->work_cv);
    pthread_mutex_unlock(&p->mu);
  }
  return 0;
}

int lt__sq_pack_get(lt__sq_packer_t *p, size_t i, const void **blob, size_t *len) {
  size_t c = i / CHUNK;
  while (!atomic_load_explicit(&p->done[c], memory_order_acquire)) {
    size_t k = atomic_fetch_add(&p->next_chunk, 1);
    if (k < p->n_chunks) {
      finish_chunk(p, k, pack_chunk(p, &p->workers[0], k));
      continue;
    }
    /* Everything is claimed: a helper holds chunk c. */
    pthread_mutex_lock(&p->mu);
    while (!atomic_load_explicit(&p->done[c], memory_order_acquire)) pthread_cond_wait(&p->done_cv, &p->mu);
    pthread_mutex_unlock(&p->mu);
  }
  int rc = atomic_load(&p->rc);
  if (rc) return rc;
  *blob = p->out[i].ptr;
  *len = p->out[i].len;
  return 0;
}

void lt__sq_pack_end(lt__sq_packer_t *p) {
  pthread_mutex_lock(&p->mu);
  p->active = false;
  /* Stop helpers from claiming more, then wait until none is inside. */
  atomic_store(&p->next_chunk, p->n_chunks);
  while (p->in_job > 0) pthread_cond_wait(&p->done_cv, &p->mu);
  pthread_mutex_unlock(&p->mu);
  for (int i = 0; i <= p->n_helpers; i++) {
    lt_arena_destroy(p->workers[i].arena);
    p->workers[i].arena = NULL;
  }
  p->n_spans = p->n_chunks = 0;
}
