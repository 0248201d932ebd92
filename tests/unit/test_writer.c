/* Unit tests for the writer: group commit over the real SQLite store,
 * completion callbacks, queue caps, draining on stop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "core/err.h"
#include "pipeline/writer.h"
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

static void stores_and_completes_every_batch(void **st) {
  fixture_t *f = *st;
  tally_t t = {PTHREAD_MUTEX_INITIALIZER, 0, 0, 0};
  lt_writer_t *w;
  lt_writer_config_t wc = {.max_queue_records = 100000, .max_queue_bytes = 64u << 20, .max_group_records = 50};
  assert_int_equal(lt_writer_start(f->store, &wc, &w), 0);
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
  lt_writer_t *w;
  lt_writer_config_t wc = {.max_queue_records = 100000, .max_queue_bytes = 64u << 20, .max_group_records = 50};
  assert_int_equal(lt_writer_start(f->store, &wc, &w), 0);
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

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(stores_and_completes_every_batch, setup, teardown),
    cmocka_unit_test_setup_teardown(full_queue_refuses, setup, teardown),
    cmocka_unit_test_setup_teardown(lingers_for_unwaited_batches, setup, teardown),
    cmocka_unit_test_setup_teardown(submit_n_commits_together, setup, teardown),
  };
  return cmocka_run_group_tests_name("writer", tests, NULL, NULL);
}
