/* lt_batch_t: what one ingest request becomes, and the unit that moves
 * through the pipeline to the writer. A batch owns its arena, and every
 * record's bytes live in it. Ownership rule: a batch passed to the next
 * stage is moved; the callee frees it (lt_batch_free) on success and on
 * failure. */
#ifndef LT_BATCH_H
#define LT_BATCH_H
#include <stddef.h>
#include <stdint.h>
#include "core/arena.h"
#include "model/span.h"

typedef struct lt_batch lt_batch_t;

/* Called once per batch on the writer thread after its transaction ended:
 * rc 0 means committed (durable per the configured policy), else an LT_E*
 * error and nothing of the batch is stored. Must not block. */
typedef void (*lt_batch_done_cb)(lt_batch_t *b, int rc, void *ud);

struct lt_batch {
  lt_arena_t *arena;
  int64_t project_id;
  lt_span_t *spans;
  size_t n_spans, cap_spans;
  lt_log_t *logs;
  size_t n_logs, cap_logs;
  lt_point_t *points;
  size_t n_points, cap_points;
  /* Filled by the store: how many spans were new (not duplicates), and
   * per span whether it was (1) or was already stored (0). span_new is
   * freed with the batch; NULL until the batch was written. */
  size_t n_inserted;
  uint8_t *span_new;
  lt_batch_done_cb done;
  void *done_ud;
  /* The store's own form of the records (payloads packed and compressed
   * by lt_store_ops.prepack on the submitting thread), in the arena; NULL
   * until then, and the store packs at write time. */
  void *packed;
  bool join_next; /* the writer commits it in the same transaction as the next */
  struct lt_batch *next; /* queue link, owned by whichever queue holds it */
};

/* Creates an empty batch whose arena may grow to arena_cap bytes.
 * Returns NULL when out of memory. */
lt_batch_t *lt_batch_new(int64_t project_id, size_t arena_cap);
/* Frees the batch and its arena. NULL is a no-op. */
void lt_batch_free(lt_batch_t *b);
/* Append a zero-initialised record (spans via lt_span_init) and return it,
 * or NULL when the arena cap is hit. */
lt_span_t *lt_batch_add_span(lt_batch_t *b);
lt_log_t *lt_batch_add_log(lt_batch_t *b);
lt_point_t *lt_batch_add_point(lt_batch_t *b);
/* Memory the batch holds: its arena plus its record arrays. Queue caps
 * count this, so no part of a queued batch escapes the limit. */
static inline size_t lt_batch_bytes(const lt_batch_t *b) {
  return lt_arena_used(b->arena) + b->cap_spans * sizeof(lt_span_t) + b->cap_logs * sizeof(lt_log_t) +
         b->cap_points * sizeof(lt_point_t);
}
/* Total records (spans + logs + points). */
static inline size_t lt_batch_count(const lt_batch_t *b) {
  return b->n_spans + b->n_logs + b->n_points;
}

#endif
