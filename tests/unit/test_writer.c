/* Unit tests for the writer: group commit over the real SQLite store,
 * completion callbacks, queue caps, draining on stop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "core/err.h"
#include "pipeline/writer.h"
#include "core/share.h"
#include "store/store.h"

typedef struct {
  pthread_mutex_t mu;
  int done, failed;
  size_t inserted;
} tally_t;

static void on_done(lt_batch_t *b, int rc, void *ud) {
  tally_t *t = ud;
  pthread_mutex_lock(&t->mu);
  t->done++;
  if (rc) t->failed++;
  t->inserted += b->n_inserted;
  pthread_mutex_unlock(&t->mu);
}

static lt_batch_t *make_batch(int trace, int nspans, tally_t *t) {
  lt_batch_t *b = lt_batch_new(1, 1 << 20);
  for (int i = 0; i < nspans; i++) {
    lt_span_t *s = lt_batch_add_span(b);
    s->trace_id[0] = 1;
    s->trace_id[12] = (uint8_t)(trace >> 8);
    s->trace_id[15] = (uint8_t)trace;
    s->span_id[6] = (uint8_t)(i >> 8);
    s->span_id[7] = (uint8_t)(i + 1);
    s->name = lt_arena_strdup(b->arena, "step", 4);
    s->start_ns = 1767323045000000000LL + trace * 1000000LL + i;
    s->end_ns = s->start_ns + 1000;
  }
  b->done = on_done;
  b->done_ud = t;
  return b;
}

#include "store_fixture.h"
#define setup fixture_setup
#define teardown fixture_teardown

/* A writer with room for every test's batches, committing 50 records at
 * most per group. */
static lt_writer_t *start_writer(fixture_t *f) {
  lt_writer_t *w;
  lt_writer_config_t wc = {.max_queue_records = 100000, .max_queue_bytes = 64u << 20, .max_group_records = 50};
  assert_int_equal(lt_writer_start(f->store, &wc, &w), 0);
  return w;
}

static void stores_and_completes_every_batch(void **st) {
  fixture_t *f = *st;
  tally_t t = {PTHREAD_MUTEX_INITIALIZER, 0, 0, 0};
  lt_writer_t *w = start_writer(f);
  for (int i = 0; i < 40; i++) assert_int_equal(lt_writer_submit(w, make_batch(i, 10, &t)), 0);
  /* A retry of batch 0 inserts nothing new but still completes. */
  assert_int_equal(lt_writer_submit(w, make_batch(0, 10, &t)), 0);
  lt_writer_stop(w); /* drains */
  assert_int_equal(t.done, 41);
  assert_int_equal(t.failed, 0);
  assert_int_equal(t.inserted, 400);
  lt_writer_stats_t ws;
  lt_writer_stats(w, &ws);
  assert_int_equal(ws.batches, 41);
  assert_int_equal(ws.inserted_spans, 400);
  assert_true(ws.commits >= 8); /* groups of at most 50 records */
  assert_int_equal(lt_writer_submit(w, make_batch(99, 1, &t)), LT_ESHUTDOWN);
  assert_int_equal(t.done, 41); /* a refused batch is never completed */
  lt_writer_free(w);
  lt_store_stats_t ss;
  assert_int_equal(f->store->ops->stats(f->store, &ss), 0);
  assert_int_equal(ss.spans, 400);
  assert_int_equal(ss.traces, 40);
}

static void full_queue_refuses(void **st) {
  fixture_t *f = *st;
  tally_t t = {PTHREAD_MUTEX_INITIALIZER, 0, 0, 0};
  lt_writer_t *w;
  /* A tiny cap: the first batch is always taken, later ones may not be. */
  lt_writer_config_t wc = {.max_queue_records = 5, .max_queue_bytes = 64u << 20, .max_group_records = 1000};
  assert_int_equal(lt_writer_start(f->store, &wc, &w), 0);
  int full = 0, ok = 0;
  lt_batch_t *pre[200];
  for (int i = 0; i < 200; i++) pre[i] = make_batch(1000 + i, 4, &t);
  /* Submitting back to back takes far less than one commit. */
  for (int i = 0; i < 200; i++) {
    int rc = lt_writer_submit(w, pre[i]);
    if (rc == LT_EFULL) full++;
    else if (rc == 0) ok++;
  }
  lt_writer_free(w);
  assert_int_equal(ok + full, 200);
  assert_int_equal(t.done, ok);
  assert_true(full > 0);
}

/* The batches of one request commit together even past the group limit;
 * a refused request frees all of them and completes none. */
static void submit_n_commits_together(void **st) {
  fixture_t *f = *st;
  tally_t t = {PTHREAD_MUTEX_INITIALIZER, 0, 0, 0};
  lt_writer_t *w = start_writer(f);
  for (int r = 0; r < 5; r++) {
    lt_batch_t *parts[3] = {make_batch(500 + 3 * r, 40, &t), make_batch(501 + 3 * r, 40, &t),
                            make_batch(502 + 3 * r, 40, &t)};
    assert_int_equal(lt_writer_submit_n(w, parts, 3), 0);
  }
  lt_writer_stop(w);
  lt_writer_stats_t ws;
  lt_writer_stats(w, &ws);
  assert_int_equal(t.done, 15);
  assert_int_equal(t.inserted, 600);
  /* 120 records per request over a limit of 50: one commit per request
   * at most (requests may still share one). */
  assert_true(ws.commits <= 5);
  lt_batch_t *late[2] = {make_batch(900, 1, &t), make_batch(901, 1, &t)};
  assert_int_equal(lt_writer_submit_n(w, late, 2), LT_ESHUTDOWN);
  assert_int_equal(t.done, 15);
  lt_writer_free(w);
}

/* A request announced with lt_writer_expect stops counting as coming
 * (store->incoming) in the step that queues it, and also when it is
 * refused. */
static void expected_requests_stop_counting_when_queued(void **st) {
  fixture_t *f = *st;
  tally_t t = {PTHREAD_MUTEX_INITIALIZER, 0, 0, 0};
  lt_writer_t *w = start_writer(f);
  for (int r = 0; r < 3; r++) lt_writer_expect(w, 1);
  assert_int_equal(atomic_load(&f->store->incoming), 3);
  for (int r = 0; r < 2; r++) {
    lt_batch_t *parts[2] = {make_batch(700 + 2 * r, 5, &t), make_batch(701 + 2 * r, 5, &t)};
    assert_int_equal(lt_writer_submit_expected(w, parts, 2), 0);
    assert_int_equal(atomic_load(&f->store->incoming), 2 - r);
  }
  lt_writer_stop(w);
  assert_int_equal(t.done, 4);
  lt_batch_t *late[1] = {make_batch(900, 1, &t)};
  assert_int_equal(lt_writer_submit_expected(w, late, 1), LT_ESHUTDOWN);
  assert_int_equal(atomic_load(&f->store->incoming), 0);
  assert_int_equal(t.done, 4);
  lt_writer_free(w);
}

static int64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static size_t stored_spans(fixture_t *f) {
  lt_store_stats_t ss;
  assert_int_equal(f->store->ops->stats(f->store, &ss), 0);
  return (size_t)ss.spans;
}

/* Batches nobody waits for (done == NULL) wait up to linger_ns for
 * company and go in one commit; a batch with a waiter, and stop, end the
 * wait at once. */
static void lingers_for_unwaited_batches(void **st) {
  fixture_t *f = *st;
  tally_t t = {PTHREAD_MUTEX_INITIALIZER, 0, 0, 0};
  lt_writer_t *w;
  lt_writer_config_t wc = {.max_queue_records = 100000, .max_queue_bytes = 64u << 20, .max_group_records = 1000,
                           .linger_ns = 300 * 1000000LL};
  assert_int_equal(lt_writer_start(f->store, &wc, &w), 0);
  int64_t t0 = mono_ms();
  for (int i = 0; i < 20; i++) {
    lt_batch_t *b = make_batch(2000 + i, 1, &t);
    b->done = NULL;
    assert_int_equal(lt_writer_offer(w, b), 0);
  }
  /* Well inside the linger time nothing is committed yet... */
  usleep(100 * 1000);
  if (mono_ms() - t0 < 250) assert_int_equal(stored_spans(f), 0);
  /* ...and all 20 go in one commit once it has passed. */
  for (int i = 0; i < 100 && stored_spans(f) < 20; i++) usleep(20 * 1000);
  assert_int_equal(stored_spans(f), 20);
  lt_writer_stats_t ws;
  lt_writer_stats(w, &ws);
  assert_int_equal(ws.commits, 1);
  /* A waited-for batch takes the lingering ones along at once. */
  for (int i = 0; i < 5; i++) {
    lt_batch_t *b = make_batch(3000 + i, 1, &t);
    b->done = NULL;
    assert_int_equal(lt_writer_offer(w, b), 0);
  }
  t0 = mono_ms();
  assert_int_equal(lt_writer_submit(w, make_batch(3999, 1, &t)), 0);
  for (int i = 0; i < 500; i++) {
    pthread_mutex_lock(&t.mu);
    int d = t.done;
    pthread_mutex_unlock(&t.mu);
    if (d) break;
    usleep(1000);
  }
  assert_int_equal(t.done, 1);
  assert_true(mono_ms() - t0 < 250);
  assert_int_equal(stored_spans(f), 26);
  /* Stop stores what lingers. */
  lt_batch_t *b = make_batch(4000, 3, &t);
  b->done = NULL;
  assert_int_equal(lt_writer_offer(w, b), 0);
  lt_writer_free(w);
  assert_int_equal(stored_spans(f), 29);
}

/* ---- deferred sync: the syncer completes a batch only after a sync that
 * began after its commit. The store's write and sync are wrapped to number
 * commits and record which ones each finished sync covers. */

typedef struct {
  int commit;      /* set by the wrapped write */
  int covered;     /* commits the last finished sync covered, seen at done */
  int rc, calls;
} watched_t;

static const lt_store_ops_t *real_ops;
static lt_store_ops_t watched_ops;
static atomic_int n_commits, n_covered, n_syncs, sync_fails;

static int watched_write(lt_store_t *s, lt_batch_t *const *b, size_t n) {
  int rc = real_ops->write(s, b, n);
  if (rc == 0) {
    int c = atomic_fetch_add(&n_commits, 1) + 1;
    for (size_t i = 0; i < n; i++) ((watched_t *)b[i]->done_ud)->commit = c;
  }
  return rc;
}

static atomic_int sync_held, sync_entered;

static int watched_sync(lt_store_t *s) {
  atomic_fetch_add(&sync_entered, 1);
  int upto = atomic_load(&n_commits);
  usleep(3000); /* a slow disk: the writer commits more meanwhile */
  while (atomic_load(&sync_held)) usleep(1000);
  atomic_fetch_add(&n_syncs, 1);
  if (atomic_load(&sync_fails)) return LT_EIO;
  int rc = real_ops->sync(s);
  if (rc == 0) atomic_store(&n_covered, upto);
  return rc;
}

static void on_watched(lt_batch_t *b, int rc, void *ud) {
  (void)b;
  watched_t *x = ud;
  x->covered = atomic_load(&n_covered);
  x->rc = rc;
  x->calls++;
}

static lt_batch_t *watched_batch(int trace, watched_t *x) {
  lt_batch_t *b = make_batch(trace, 5, NULL);
  b->done = on_watched;
  b->done_ud = x;
  return b;
}

/* Puts the wrapped write and sync over f's store, which then defers its
 * syncs as with durability full; the counters start from zero. */
static void watch_store(fixture_t *f) {
  real_ops = f->store->ops;
  watched_ops = *real_ops;
  watched_ops.write = watched_write;
  watched_ops.sync = watched_sync;
  f->store->ops = &watched_ops;
  f->store->defer_sync = true;
  atomic_store(&n_commits, 0), atomic_store(&n_covered, 0), atomic_store(&n_syncs, 0);
  atomic_store(&sync_fails, 0), atomic_store(&sync_held, 0), atomic_store(&sync_entered, 0);
}

static void completes_only_after_sync(void **st) {
  fixture_t *f = *st;
  watch_store(f);
  lt_writer_t *w;
  lt_writer_config_t wc = {.max_queue_records = 100000, .max_queue_bytes = 64u << 20, .max_group_records = 10};
  assert_int_equal(lt_writer_start(f->store, &wc, &w), 0);
  enum { N = 60 };
  static watched_t x[N];
  memset(x, 0, sizeof x);
  for (int i = 0; i < N; i++) {
    assert_int_equal(lt_writer_submit(w, watched_batch(6000 + i, &x[i])), 0);
    if (i % 10 == 9) usleep(1000);
  }
  lt_writer_stop(w); /* drains the writer, then the syncer */
  for (int i = 0; i < N; i++) {
    assert_int_equal(x[i].calls, 1);
    assert_int_equal(x[i].rc, 0);
    assert_true(x[i].commit >= 1);
    assert_true(x[i].commit <= x[i].covered); /* durable before acknowledged */
  }
  /* Groups of at most 2 batches: many commits; one sync covers several. */
  assert_true(atomic_load(&n_commits) >= N / 2);
  assert_true(atomic_load(&n_syncs) < atomic_load(&n_commits));
  lt_writer_free(w);
  assert_int_equal(stored_spans(f), N * 5);

  /* A failed sync fails the batches it was to make durable (their spans
   * are committed, so the client's retry inserts nothing twice). */
  atomic_store(&sync_fails, 1);
  assert_int_equal(lt_writer_start(f->store, &wc, &w), 0);
  static watched_t y[3];
  memset(y, 0, sizeof y);
  for (int i = 0; i < 3; i++) assert_int_equal(lt_writer_submit(w, watched_batch(7000 + i, &y[i])), 0);
  lt_writer_free(w);
  for (int i = 0; i < 3; i++) {
    assert_int_equal(y[i].calls, 1);
    assert_int_equal(y[i].rc, LT_EIO);
  }
  f->store->ops = real_ops;
}

/* Batches committed but not yet synced still hold their memory, so they
 * count against the queue's caps: with the disk stalled, the queue fills
 * and refuses, and takes again once the sync is through. */
static void sync_backlog_counts_against_the_queue(void **st) {
  fixture_t *f = *st;
  watch_store(f);
  atomic_store(&sync_held, 1);
  lt_writer_t *w;
  lt_writer_config_t wc = {.max_queue_records = 8, .max_queue_bytes = 64u << 20, .max_group_records = 100};
  assert_int_equal(lt_writer_start(f->store, &wc, &w), 0);
  static watched_t x[3];
  memset(x, 0, sizeof x);
  assert_int_equal(lt_writer_submit(w, watched_batch(8000, &x[0])), 0);
  for (int i = 0; i < 2000 && atomic_load(&sync_entered) < 1; i++) usleep(1000);
  assert_int_equal(atomic_load(&n_commits), 1); /* committed, in the held sync */
  assert_int_equal(lt_writer_submit(w, watched_batch(8001, &x[1])), LT_EFULL);
  atomic_store(&sync_held, 0);
  for (int i = 0; i < 2000 && !x[0].calls; i++) usleep(1000);
  assert_int_equal(x[0].calls, 1);
  for (int i = 0; i < 2000 && !lt_writer_ready(w); i++) usleep(1000);
  assert_int_equal(lt_writer_submit(w, watched_batch(8002, &x[2])), 0);
  lt_writer_free(w);
  assert_int_equal(x[2].calls, 1);
  assert_int_equal(x[2].rc, 0);
  f->store->ops = real_ops;
}

/* Background work (full-text indexing) gets all the writer's idle time
 * while the rest of the server uses under half the cores, a quarter of it
 * otherwise; its own slices do not count as the server's load. */
static void background_share_follows_the_load(void **st) {
  (void)st;
  const int64_t S = 1000000000;
  assert_int_equal(lt_bg_off(S / 2, 0, S, 2), 0);          /* a quarter of 2 cores */
  assert_int_equal(lt_bg_off(S, 0, S, 2), 3);              /* half */
  assert_int_equal(lt_bg_off(S * 17 / 10, 0, S, 2), 3);    /* the maximum rate */
  assert_int_equal(lt_bg_off(S * 15 / 10, S, S, 2), 0);    /* mostly its own slices */
  assert_int_equal(lt_bg_off(S * 15 / 10, S / 4, S, 2), 3);
  assert_int_equal(lt_bg_off(S * 3, 0, S, 8), 0);          /* more cores, more room */
  assert_int_equal(lt_bg_off(S, 0, 0, 2), 3);              /* no window yet */
  assert_int_equal(lt_bg_off(0, 0, S, 0), 3);
}

/* A maintenance slice short of space warns only when no full-disk episode
 * explains it and the failures have lasted 5 s: the first ones of a disk
 * filling up come just before the commit that starts the episode. */
static void maintenance_space_warning_waits(void **st) {
  (void)st;
  const int64_t S = 1000000000;
  int64_t since = 0;
  assert_false(lt__writer_maint_nospace_due(false, 100 * S, &since)); /* the first failure */
  assert_true(since == 100 * S);
  assert_false(lt__writer_maint_nospace_due(false, 104 * S, &since));
  assert_false(lt__writer_maint_nospace_due(true, 104 * S + 1, &since)); /* the episode began */
  assert_true(since == 0);
  assert_false(lt__writer_maint_nospace_due(true, 200 * S, &since));
  assert_false(lt__writer_maint_nospace_due(false, 300 * S, &since)); /* ended; failing again */
  assert_true(lt__writer_maint_nospace_due(false, 305 * S, &since));   /* 5 s, no episode */
  assert_true(lt__writer_maint_nospace_due(false, 400 * S, &since));
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(maintenance_space_warning_waits),
    cmocka_unit_test_setup_teardown(stores_and_completes_every_batch, setup, teardown),
    cmocka_unit_test(background_share_follows_the_load),
    cmocka_unit_test_setup_teardown(full_queue_refuses, setup, teardown),
    cmocka_unit_test_setup_teardown(lingers_for_unwaited_batches, setup, teardown),
    cmocka_unit_test_setup_teardown(submit_n_commits_together, setup, teardown),
    cmocka_unit_test_setup_teardown(expected_requests_stop_counting_when_queued, setup, teardown),
    cmocka_unit_test_setup_teardown(completes_only_after_sync, setup, teardown),
    cmocka_unit_test_setup_teardown(sync_backlog_counts_against_the_queue, setup, teardown),
  };
  return cmocka_run_group_tests_name("writer", tests, NULL, NULL);
}
