/* Writer thread with group commit. The queue is a singly linked FIFO of
 * batches under one mutex; the thread swaps out a group at a time so
 * submitters hold the lock only for a pointer append. Idle time goes to
 * lt_store_maintain (rollups, keys, retention).
 *
 * When the store defers syncing (lt_store_t.defer_sync), committed groups
 * go to a second thread, the syncer, which makes them durable with one
 * lt_store_sync for everything committed since its last one and only then
 * completes their batches. The writer meanwhile commits the next group:
 * the disk flush no longer stalls the one thread every write waits on. */
#include "pipeline/writer.h"
#include "core/err.h"
#include "core/log.h"
#include "core/share.h"
#include "core/mem.h"
#include <pthread.h>
#include <stdatomic.h>
#include <inttypes.h>
#include <stdbool.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

struct lt_writer {
  lt_store_t *store;
  lt_writer_config_t cfg;
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  lt_batch_t *head, *tail;
  lt_batch_t **group; /* the writer thread's scratch, 256 entries to start */
  size_t q_records, q_bytes;
  size_t q_waiting;   /* queued batches whose submitter waits for the commit */
  int64_t q_first_ns; /* CLOCK_MONOTONIC when the oldest queued batch arrived */
  bool stopping;
  int64_t last_waited_ns; /* CLOCK_MONOTONIC of the last submit someone waits on */
  lt_writer_stats_t st; /* guarded by mu */
  /* The syncer (only when the store defers syncing). */
  bool syncing;
  pthread_t sync_thread;
  pthread_cond_t sync_cv;    /* work for the syncer */
  lt_batch_t *s_head, *s_tail; /* committed, waiting for the sync */
  /* Handed to the syncer and not completed yet: they count against the
   * queue's caps, since they hold their memory until then. */
  size_t s_records, s_bytes;
  bool sync_stopping;
  /* The current full-disk episode (guarded by mu): see note_space. */
  int64_t full_since_ns, full_logged_ns, full_checked_ns;
  uint64_t full_refused_then; /* disk_full_refused when it was last logged */
  /* Maintenance short of space (writer thread only): see maintained. */
  int64_t maint_nospace_since;    /* slices failing for want of space since, or 0 */
  _Atomic int64_t maint_warned_s; /* the last such warning (lt_log_due) */
};

static int64_t now_ns(int clock) {
  struct timespec ts;
  clock_gettime(clock, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void lt_writer_prepare(lt_writer_t *w, lt_batch_t *b) {
  /* Packing here runs on the caller's thread, in parallel with the writer;
   * a failure only leaves the work to the writer. */
  if (!b->packed && w->store->ops->prepack) (void)w->store->ops->prepack(w->store, b);
}

/* Queues bs[0..n) together (one transaction), or returns LT_EFULL /
 * LT_ESHUTDOWN leaving them to the caller. Requests (submit) are packed
 * here on the caller's thread; offered batches (the proxy's one-span
 * calls, on loops that have better things to do) by the writer. */
static int enqueue(lt_writer_t *w, lt_batch_t *const *bs, size_t n, bool is_submit, bool expected) {
  size_t recs = 0, bytes = 0, waiting = 0;
  bool count_full = is_submit;
  for (size_t i = 0; i < n; i++) {
    if (is_submit) lt_writer_prepare(w, bs[i]);
    recs += lt_batch_count(bs[i]);
    bytes += lt_batch_bytes(bs[i]);
    waiting += bs[i]->done != NULL;
  }
  int rc = 0;
  pthread_mutex_lock(&w->mu);
  /* An expected request stops being expected here, under the lock that
   * queues it: the writer always sees it as coming or as queued, never
   * neither (which would let a maintenance slice start ahead of it), and
   * its own commit no longer counts it as more to come. */
  if (expected) lt_writer_expect(w, -1);
  if (w->stopping) {
    rc = LT_ESHUTDOWN;
  } else if (w->q_records + w->s_records > 0 &&
             (w->q_records + w->s_records + recs > w->cfg.max_queue_records ||
              w->q_bytes + w->s_bytes + bytes > w->cfg.max_queue_bytes)) {
    /* An empty queue always takes one request, so a single request larger
     * than the cap can still make progress instead of failing forever. */
    rc = LT_EFULL;
    if (count_full) w->st.rejected_full++;
  } else {
    bool was_empty = !w->head;
    for (size_t i = 0; i < n; i++) {
      lt_batch_t *b = bs[i];
      b->next = NULL;
      b->join_next = i + 1 < n;
      if (w->tail) w->tail->next = b;
      else w->head = b;
      w->tail = b;
    }
    w->q_records += recs;
    w->q_bytes += bytes;
    w->q_waiting += waiting;
    atomic_fetch_add_explicit(&w->store->queued, n, memory_order_relaxed);
    if (was_empty || waiting) {
      int64_t t = now_ns(CLOCK_MONOTONIC);
      if (was_empty) w->q_first_ns = t;
      if (waiting) w->last_waited_ns = t;
    }
    /* Batches nobody waits for only wake the writer when they start the
     * queue or fill a group: the writer lingers for more (see linger). */
    if (was_empty || waiting || !w->cfg.linger_ns || w->q_records >= w->cfg.max_group_records)
      pthread_cond_signal(&w->cv);
  }
  pthread_mutex_unlock(&w->mu);
  return rc;
}

int lt_writer_submit(lt_writer_t *w, lt_batch_t *b) { return lt_writer_submit_n(w, &b, 1); }

static int submit(lt_writer_t *w, lt_batch_t *const *bs, size_t n, bool expected) {
  int rc = enqueue(w, bs, n, true, expected);
  if (rc)
    for (size_t i = 0; i < n; i++) lt_batch_free(bs[i]);
  return rc;
}

int lt_writer_submit_n(lt_writer_t *w, lt_batch_t *const *bs, size_t n) { return submit(w, bs, n, false); }

int lt_writer_submit_expected(lt_writer_t *w, lt_batch_t *const *bs, size_t n) { return submit(w, bs, n, true); }

int lt_writer_offer(lt_writer_t *w, lt_batch_t *b) { return enqueue(w, &b, 1, false, false); }

void lt_writer_expect(lt_writer_t *w, int delta) {
  if (!w) return;
  /* Kept on the store, which reads it too (store.h, incoming). */
  atomic_fetch_add_explicit(&w->store->incoming, delta, memory_order_relaxed);
}

int lt_writer_ready(lt_writer_t *w) {
  pthread_mutex_lock(&w->mu);
  int ok = !w->stopping && w->q_records + w->s_records < w->cfg.max_queue_records &&
           w->q_bytes + w->s_bytes < w->cfg.max_queue_bytes;
  pthread_mutex_unlock(&w->mu);
  return ok;
}

void lt_writer_stats(lt_writer_t *w, lt_writer_stats_t *out) {
  pthread_mutex_lock(&w->mu);
  *out = w->st;
  out->queue_records = w->q_records;
  out->queue_bytes = w->q_bytes;
  pthread_mutex_unlock(&w->mu);
}

/* A full disk is one condition with a start and an end, not an error per
 * refused commit (at full ingest that was hundreds of log lines a second):
 * it is logged when it starts, once a minute while it lasts, and when a
 * commit succeeds again. Call with mu held, after a commit (rc 0) or a
 * commit or sync refused for want of space (LT_ENOSPACE). */
static void note_space(lt_writer_t *w, int rc) {
  int64_t now = now_ns(CLOCK_MONOTONIC);
  if (rc == LT_ENOSPACE) {
    w->st.disk_full_refused++;
    if (!w->st.disk_full) {
      w->st.disk_full = true;
      w->full_since_ns = w->full_logged_ns = w->full_checked_ns = now;
      w->full_refused_then = w->st.disk_full_refused;
      lt_error("writer: the disk holding the data directory is full: ingest requests get 503 and nothing "
               "more is stored until space is freed (acknowledged data is safe)");
    } else if (now - w->full_logged_ns >= 60 * 1000000000LL) {
      lt_warn("writer: the disk is still full: %" PRIu64 " commits refused in the last %" PRId64 " s",
              w->st.disk_full_refused - w->full_refused_then, (now - w->full_logged_ns) / 1000000000);
      w->full_logged_ns = now;
      w->full_refused_then = w->st.disk_full_refused;
    }
  } else if (rc == 0 && w->st.disk_full) {
    w->st.disk_full = false;
    lt_info("writer: the disk has space again: storing resumed after %" PRId64 " s",
            (now - w->full_since_ns) / 1000000000);
  }
}

/* Free space that ends a full-disk episode without a commit to prove it;
 * if it was not enough, the next commit starts a new one. */
#define FREE_TO_RESUME (64ull << 20)

/* While the disk is full, every 5 s: enough free space on the data
 * directory's file system ends the episode. Called with mu held. */
static void recheck_space(lt_writer_t *w, int64_t mono) {
  if (!w->st.disk_full || !w->cfg.data_dir || mono - w->full_checked_ns < 5000000000LL) return;
  w->full_checked_ns = mono;
  struct statvfs sv;
  if (statvfs(w->cfg.data_dir, &sv) != 0) return;
  uint64_t avail = (uint64_t)sv.f_bavail * sv.f_frsize;
  if (avail < FREE_TO_RESUME) return;
  w->st.disk_full = false;
  lt_info("writer: the disk has %" PRIu64 " MiB free again: accepting writes (it was full for %" PRId64 " s)",
          avail >> 20, (mono - w->full_since_ns) / 1000000000);
}

/* Completes the batches of a list linked by next (each is freed). */
static void complete(lt_batch_t *b, int rc) {
  while (b) {
    lt_batch_t *next = b->next;
    b->next = NULL;
    if (b->done) b->done(b, rc, b->done_ud);
    lt_batch_free(b);
    b = next;
  }
}

/* Hands a committed group to the syncer. Its backlog needs no cap of its
 * own: it counts against the queue's, so intake stops when it grows. */
static void to_syncer(lt_writer_t *w, lt_batch_t **group, size_t n, size_t recs, size_t bytes) {
  for (size_t i = 0; i + 1 < n; i++) group[i]->next = group[i + 1];
  group[n - 1]->next = NULL;
  pthread_mutex_lock(&w->mu);
  if (w->s_tail) w->s_tail->next = group[0];
  else w->s_head = group[0];
  w->s_tail = group[n - 1];
  w->s_records += recs;
  w->s_bytes += bytes;
  pthread_cond_broadcast(&w->sync_cv);
  pthread_mutex_unlock(&w->mu);
}

static void *syncer_main(void *arg) {
  lt_writer_t *w = arg;
  pthread_setname_np(pthread_self(), "lt-sync");
  pthread_mutex_lock(&w->mu);
  for (;;) {
    while (!w->s_head && !w->sync_stopping) pthread_cond_wait(&w->sync_cv, &w->mu);
    if (!w->s_head) break;
    lt_batch_t *list = w->s_head;
    w->s_head = w->s_tail = NULL;
    /* One syncer: what it completed before is subtracted already, so the
     * counts are exactly this list's. */
    size_t recs = w->s_records, bytes = w->s_bytes;
    pthread_mutex_unlock(&w->mu);
    int rc = lt_store_sync(w->store);
    if (rc && rc != LT_ENOSPACE) lt_error("writer: syncing committed batches failed: %s", lt_strerror(rc));
    complete(list, rc);
    pthread_mutex_lock(&w->mu);
    if (rc == LT_ENOSPACE) note_space(w, rc);
    /* Their memory is free only now, and so is their room in the queue. */
    w->s_records -= recs;
    w->s_bytes -= bytes;
    if (rc) w->st.failed_commits++;
  }
  pthread_mutex_unlock(&w->mu);
  return NULL;
}

/* Commits one group (recs records, bytes bytes, as the queue counted them)
 * and completes its batches, or hands them to the syncer. Called without
 * the lock. */
static void commit_group(lt_writer_t *w, lt_batch_t **group, size_t n, size_t recs, size_t bytes) {
  int64_t t0 = now_ns(CLOCK_MONOTONIC);
  int rc = lt_store_write(w->store, group, n);
  int64_t dt = now_ns(CLOCK_MONOTONIC) - t0;
  if (rc && rc != LT_ENOSPACE) lt_error("writer: storing %zu batches failed: %s", n, lt_strerror(rc));
  uint64_t ins = 0;
  for (size_t i = 0; i < n; i++) {
    ins += rc ? 0 : group[i]->n_inserted;
    if (rc == 0 && w->cfg.observe) w->cfg.observe(group[i], w->cfg.observe_ud);
  }
  pthread_mutex_lock(&w->mu);
  w->st.batches += n;
  w->st.records += recs;
  w->st.inserted_spans += ins;
  w->st.commits++;
  if (rc) w->st.failed_commits++;
  if (rc == 0 || rc == LT_ENOSPACE) note_space(w, rc);
  w->st.commit_ns_total += (uint64_t)dt;
  if ((uint64_t)dt > w->st.commit_ns_max) w->st.commit_ns_max = (uint64_t)dt;
  pthread_mutex_unlock(&w->mu);
  if (rc == 0 && w->syncing) {
    to_syncer(w, group, n, recs, bytes);
    return;
  }
  for (size_t i = 0; i < n; i++) group[i]->next = i + 1 < n ? group[i + 1] : NULL;
  complete(group[0], rc);
}

/* True when the writer should wait for more before committing: nobody
 * waits on what is queued (proxy spans, answered already), the group is
 * not full and the oldest batch is younger than the linger time. One
 * commit of hundreds of spans then replaces hundreds of one-span commits,
 * each of which rewrites the same index pages. Sets *until. */
static bool linger(lt_writer_t *w, struct timespec *until) {
  if (!w->cfg.linger_ns || w->stopping || w->q_waiting || w->q_records >= w->cfg.max_group_records) return false;
  int64_t deadline = w->q_first_ns + w->cfg.linger_ns;
  if (now_ns(CLOCK_MONOTONIC) >= deadline) return false;
  until->tv_sec = deadline / 1000000000;
  until->tv_nsec = deadline % 1000000000;
  return true;
}

/* Waits on the writer's condition until the monotonic time t_ns. */
static void wait_until(lt_writer_t *w, int64_t t_ns) {
  struct timespec ts = {.tv_sec = t_ns / 1000000000, .tv_nsec = t_ns % 1000000000};
  pthread_cond_timedwait(&w->cv, &w->mu, &ts);
}

/* While requests are arriving and the server's other work uses half the
 * cores or more, background work gets at most a quarter of the writer's
 * idle time (a slice, then three times its length off), so a backlog does
 * not take the CPU that decoding and mapping the next requests need. Below
 * that it gets all of it (measured when full-text indexing still ran here:
 * at 20,000 spans/s a quarter share fell behind for as long as the load
 * lasted; the whole share kept up). With no request for this long it runs
 * flat out. */
#define BUSY_NS (200 * 1000000LL)


/* Process CPU time (all threads). */
static int64_t cpu_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Reports a maintenance slice's failure (writer thread, without mu). Want
 * of space there says nothing about ingest (indexing may need pages that
 * commits do not), so it only warns (at most once a minute), and only as
 * lt__writer_maint_nospace_due decides. */
#define MAINT_NOSPACE_NS (5 * 1000000000LL)

bool lt__writer_maint_nospace_due(bool disk_full, int64_t now_ns, int64_t *since_ns) {
  if (disk_full) {
    *since_ns = 0;
    return false;
  }
  if (!*since_ns) *since_ns = now_ns;
  return now_ns - *since_ns >= MAINT_NOSPACE_NS;
}

static void maintained(lt_writer_t *w, int rc) {
  if (rc != LT_ENOSPACE) {
    w->maint_nospace_since = 0;
    if (rc) lt_warn("writer: maintenance failed: %s", lt_strerror(rc));
    return;
  }
  pthread_mutex_lock(&w->mu);
  bool full = w->st.disk_full;
  pthread_mutex_unlock(&w->mu);
  if (lt__writer_maint_nospace_due(full, now_ns(CLOCK_MONOTONIC), &w->maint_nospace_since) &&
      lt_log_due(&w->maint_warned_s, 60))
    lt_warn("writer: maintenance failed: %s", lt_strerror(rc));
}

static void *writer_main(void *arg) {
  lt_writer_t *w = arg;
  pthread_setname_np(pthread_self(), "lt-writer");
  size_t cap = 256;
  lt_batch_t **group = w->group; /* allocated by lt_writer_start */
  bool more_maintenance = true;
  int64_t last_maintain = 0, next_slice = 0;
  /* The background share (see BUSY_NS), judged once a second. */
  int ncpu = (int)sysconf(_SC_NPROCESSORS_ONLN), off = 3;
  int64_t win_start = now_ns(CLOCK_MONOTONIC), win_cpu = cpu_now_ns(), win_bg = 0;
  pthread_mutex_lock(&w->mu);
  for (;;) {
    while (!w->head && !w->stopping) {
      int64_t now = now_ns(CLOCK_REALTIME), mono = now_ns(CLOCK_MONOTONIC);
      recheck_space(w, mono);
      bool overdue = now - last_maintain > 1000000000LL;
      if (mono - win_start >= 1000000000LL) {
        int64_t cpu = cpu_now_ns();
        off = lt_bg_off(cpu - win_cpu, win_bg, mono - win_start, ncpu);
        win_start = mono;
        win_cpu = cpu;
        win_bg = 0;
      }
      if (atomic_load_explicit(&w->store->incoming, memory_order_relaxed) > 0 && !overdue) {
        /* A batch is on its way: a maintenance slice now would delay its
         * commit; look again shortly (its submit also wakes us). */
        wait_until(w, mono + 2000000);
        continue;
      }
      if (more_maintenance && !overdue && mono < next_slice && mono - w->last_waited_ns < BUSY_NS) {
        wait_until(w, next_slice);
        continue;
      }
      if (more_maintenance || overdue) {
        /* Idle: do a bounded slice of background work, then look again. */
        pthread_mutex_unlock(&w->mu);
        bool more = false;
        int rc = lt_store_maintain(w->store, now, &more);
        maintained(w, rc);
        more_maintenance = more && rc == 0;
        last_maintain = now;
        int64_t end = now_ns(CLOCK_MONOTONIC);
        win_bg += end - mono;
        next_slice = end + off * (end - mono);
        pthread_mutex_lock(&w->mu);
        continue;
      }
      struct timespec ts;
      clock_gettime(CLOCK_MONOTONIC, &ts);
      ts.tv_sec += 1;
      pthread_cond_timedwait(&w->cv, &w->mu, &ts);
    }
    if (!w->head && w->stopping) break;
    struct timespec until;
    if (linger(w, &until)) {
      pthread_cond_timedwait(&w->cv, &w->mu, &until);
      continue;
    }
    if (now_ns(CLOCK_REALTIME) - last_maintain > 1000000000LL) {
      /* Under sustained load the queue is never empty: still give background
       * work (rollups, keys, retention) one slice a second. */
      pthread_mutex_unlock(&w->mu);
      bool more = false;
      last_maintain = now_ns(CLOCK_REALTIME);
      int64_t t0 = now_ns(CLOCK_MONOTONIC);
      int rc = lt_store_maintain(w->store, last_maintain, &more);
      maintained(w, rc);
      win_bg += now_ns(CLOCK_MONOTONIC) - t0;
      pthread_mutex_lock(&w->mu);
    }
    size_t n = 0, recs = 0, bytes = 0;
    bool joined = false; /* the last batch taken must commit with the next */
    while (w->head && (n == 0 || joined || recs + lt_batch_count(w->head) <= w->cfg.max_group_records)) {
      if (n == cap && group) {
        lt_batch_t **g = lt_realloc(group, cap * 2 * sizeof *g);
        if (!g) break;
        group = g;
        cap *= 2;
      }
      if (!group) break;
      lt_batch_t *b = w->head;
      w->head = b->next;
      if (!w->head) w->tail = NULL;
      b->next = NULL;
      recs += lt_batch_count(b);
      bytes += lt_batch_bytes(b);
      if (b->done) w->q_waiting--;
      joined = b->join_next;
      group[n++] = b;
    }
    w->q_records -= recs;
    w->q_bytes -= bytes;
    w->q_first_ns = now_ns(CLOCK_MONOTONIC); /* what stays queued waited for this group */
    atomic_fetch_sub_explicit(&w->store->queued, n, memory_order_relaxed);
    pthread_mutex_unlock(&w->mu);
    if (n) commit_group(w, group, n, recs, bytes);
    more_maintenance = true;
    pthread_mutex_lock(&w->mu);
  }
  pthread_mutex_unlock(&w->mu);
  lt_free(group);
  return NULL;
}

int lt_writer_start(lt_store_t *s, const lt_writer_config_t *cfg, lt_writer_t **out) {
  lt_writer_t *w = lt_calloc(1, sizeof *w);
  if (!w) return LT_ENOMEM;
  w->store = s;
  w->cfg = *cfg;
  w->group = lt_malloc(256 * sizeof *w->group);
  if (!w->group) {
    lt_free(w);
    return LT_ENOMEM;
  }
  if (!w->cfg.max_group_records) w->cfg.max_group_records = 20000;
  pthread_mutex_init(&w->mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&w->cv, &ca);
  pthread_condattr_destroy(&ca);
  pthread_cond_init(&w->sync_cv, NULL);
  w->syncing = s->defer_sync;
  if (w->syncing && pthread_create(&w->sync_thread, NULL, syncer_main, w) != 0) {
    lt_free(w->group);
    lt_free(w);
    return LT_ENOMEM;
  }
  if (pthread_create(&w->thread, NULL, writer_main, w) != 0) {
    if (w->syncing) {
      pthread_mutex_lock(&w->mu);
      w->sync_stopping = true;
      pthread_cond_broadcast(&w->sync_cv);
      pthread_mutex_unlock(&w->mu);
      pthread_join(w->sync_thread, NULL);
    }
    lt_free(w->group);
    lt_free(w);
    return LT_ENOMEM;
  }
  *out = w;
  return 0;
}

void lt_writer_stop(lt_writer_t *w) {
  if (!w) return;
  pthread_mutex_lock(&w->mu);
  bool was = w->stopping;
  w->stopping = true;
  pthread_cond_signal(&w->cv);
  pthread_mutex_unlock(&w->mu);
  if (was) return;
  pthread_join(w->thread, NULL);
  if (!w->syncing) return;
  /* Everything committed is with the syncer now: let it finish. */
  pthread_mutex_lock(&w->mu);
  w->sync_stopping = true;
  pthread_cond_broadcast(&w->sync_cv);
  pthread_mutex_unlock(&w->mu);
  pthread_join(w->sync_thread, NULL);
}

void lt_writer_free(lt_writer_t *w) {
  if (!w) return;
  lt_writer_stop(w);
  pthread_mutex_destroy(&w->mu);
  pthread_cond_destroy(&w->cv);
  pthread_cond_destroy(&w->sync_cv);
  lt_free(w);
}
