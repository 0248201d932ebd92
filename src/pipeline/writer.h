/* The writer: one thread that owns the store's write side. Ingest threads
 * submit batches into a bounded queue; the writer takes everything queued
 * (up to a group limit), stores it in ONE transaction (group commit), then
 * completes every batch. That is how "200 means stored" stays fast: many
 * requests share one commit (and one fsync).
 * Ownership: lt_writer_submit takes the batch. On success the batch's done
 * callback is called exactly once, after its transaction committed and is
 * durable (or failed), and the writer frees the batch after done returns.
 * It runs on the writer thread, or on the writer's syncer thread when the
 * store defers syncing; the batches of one request (lt_writer_submit_n)
 * are completed on one thread, one after the other. On failure (queue full, shutting down) submit frees the
 * batch itself and never calls done. */
#ifndef LT_WRITER_H
#define LT_WRITER_H
#include <stddef.h>
#include <stdint.h>
#include "pipeline/batch.h"
#include "store/store.h"

typedef struct lt_writer lt_writer_t;

typedef struct {
  size_t max_queue_records;  /* spans+logs+points waiting; over it → LT_EFULL */
  size_t max_queue_bytes;    /* arena bytes waiting; over it → LT_EFULL */
  size_t max_group_records;  /* records per transaction */
  /* How long batches without a done callback (nobody waits for their
   * commit) may wait for company before the writer commits them; 0 commits
   * at once. A batch with a done callback, a full group or shutdown ends
   * the wait. */
  int64_t linger_ns;
  /* Called on the writer thread for every batch of a committed group,
   * before its done callback, with b->span_new filled: how metrics
   * (Prometheus counters) see each stored span exactly once. May be NULL.
   * Must not block. */
  void (*observe)(const lt_batch_t *b, void *ud);
  void *observe_ud;
  /* The data directory. While the disk is full, its free space is looked
   * at every few seconds, so the server becomes ready again with no
   * traffic to prove it (an orchestrator stops sending to a server that is
   * not ready). NULL: only a successful commit ends the state. */
  const char *data_dir;
} lt_writer_config_t;

typedef struct {
  uint64_t batches, records, inserted_spans, commits, failed_commits, rejected_full;
  uint64_t commit_ns_total, commit_ns_max;
  size_t queue_records, queue_bytes;
  /* The disk holding the data is full: the last commit (or sync) failed
   * for want of space and none has succeeded since. Requests get 503. */
  bool disk_full;
  uint64_t disk_full_refused; /* commits refused for want of space, ever */
} lt_writer_stats_t;

/* Starts the writer thread over store s (not owned). Returns 0 or LT_E*. */
int lt_writer_start(lt_store_t *s, const lt_writer_config_t *cfg, lt_writer_t **out);
/* Queues b (moved). Returns 0, LT_EFULL (queue at its cap) or LT_ESHUTDOWN. */
int lt_writer_submit(lt_writer_t *w, lt_batch_t *b);
/* Queues n batches of one request so they commit in one transaction
 * (all or none); on failure frees them all, like submit. */
int lt_writer_submit_n(lt_writer_t *w, lt_batch_t *const *bs, size_t n);
/* The same for a request announced with lt_writer_expect(w, +1): it stops
 * being expected as it is queued, or refused, in the same step. */
int lt_writer_submit_expected(lt_writer_t *w, lt_batch_t *const *bs, size_t n);
/* Does the store's preparation of b (lt_store_ops.prepack: payload
 * packing) now, on the calling thread; submit does it otherwise, and the
 * writer thread for offered batches. */
void lt_writer_prepare(lt_writer_t *w, lt_batch_t *b);
/* Like submit, but on LT_EFULL or LT_ESHUTDOWN the batch stays the
 * caller's, to offer again later (the proxy keeps answered calls' spans
 * this way instead of losing them to a moment of back-pressure); and the
 * writer, not the caller, packs it. */
int lt_writer_offer(lt_writer_t *w, lt_batch_t *b);
/* Tells the writer that delta (+1/-1) more requests are being decoded and
 * will submit soon: while any is, it holds off idle-time maintenance
 * (background slices) so their commit is not delayed, except for
 * one slice a second. Every +1 must be matched by a -1. */
void lt_writer_expect(lt_writer_t *w, int delta);
/* True when the queue is below its caps (used by /readyz). */
int lt_writer_ready(lt_writer_t *w);
void lt_writer_stats(lt_writer_t *w, lt_writer_stats_t *out);
/* Stops intake (later submits get LT_ESHUTDOWN), stores and completes
 * everything queued, and joins the thread. w stays valid until freed. */
void lt_writer_stop(lt_writer_t *w);
/* Stops (if not yet stopped) and frees w. NULL is a no-op. */
void lt_writer_free(lt_writer_t *w);

/* Internal, exposed for tests: whether a maintenance slice that failed for
 * want of space at now_ns is worth a warning. Not while the writer reports
 * the disk full (that episode's line says it all), and not at once: a disk
 * filling up usually fails a commit within moments, so only once slices
 * have failed for 5 s with no episode (indexing stalled while ingest goes
 * on). *since_ns (0 at first) keeps when the failures began. */
bool lt__writer_maint_nospace_due(bool disk_full, int64_t now_ns, int64_t *since_ns);

#endif
