/* WAL checkpoints on a thread of their own.
 *
 * SQLite's automatic checkpoint runs inside the commit that crosses the
 * threshold, on the writer thread: copying 64 MB of pages into the
 * database (and, with durability full, syncing it) then holds up that
 * commit and every request waiting on it. Here the writer's WAL hook only
 * notes the WAL's size and wakes this thread, which runs a PASSIVE
 * checkpoint on its own connection while the writer goes on appending
 * (WAL mode lets one checkpoint run beside one writer).
 *
 * The WAL starts over from its beginning only at a write that finds every
 * frame copied, and under steady load this thread never catches up between
 * two commits. So the writer checkpoints itself once the WAL reaches
 * HARD_PAGES: it copies what this thread has not yet (the frames of its
 * current pass), and its next commit restarts the WAL. HARD_PAGES sets how
 * often the writer pays that (10-70 ms at full ingest). */
#include "store/sqlite_internal.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include <time.h>

/* Wake the checkpointer at this many WAL pages (16 MB of 4 KiB pages:
 * pages that several commits rewrite are copied once per 16 MB). 16,000
 * measured 3-5% fewer spans/s at full ingest, with a higher p99. */
#define CKPT_PAGES 4000
/* 256 MB of WAL. At 64 MB the writer checkpointed itself 2-3 times a
 * second at full ingest (~0.4 s in every 20 s) and about once a second at
 * half that rate; at 256 MB, 0.04-0.07 s in every 20 s, and the half-rate
 * p99 went from 35-37 to 32-36 ms (its max from 51-68 to 40-60 ms). The
 * cost: the WAL's disk space while load lasts (lt__sq_ckpt_idle gives it
 * back) and a longer recovery after a crash (SQLite reads the whole WAL
 * when it opens: 0.26 s for 254 MB from a cold page cache, 0.17 s for
 * 64 MB). */
#define HARD_PAGES (16 * CKPT_PAGES)

struct lt__sq_ckpt {
  sqlite3 *db;
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool wanted, stopping, started;
};

static int wal_hook(void *ud, sqlite3 *db, const char *name, int pages) {
  lt__sq_ckpt_t *c = ud;
  if (pages >= HARD_PAGES) {
    int src = sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    if ((src & 0xff) == SQLITE_FULL) (void)lt__sq_fail(db, src, "checkpoint"); /* logged once a minute */
    else if (src != SQLITE_OK && src != SQLITE_BUSY) lt_warn("sqlite: checkpoint on the writer: %s", sqlite3_errstr(src));
  } else if (pages >= CKPT_PAGES) {
    pthread_mutex_lock(&c->mu);
    if (!c->wanted) {
      c->wanted = true;
      pthread_cond_signal(&c->cv);
    }
    pthread_mutex_unlock(&c->mu);
  }
  return SQLITE_OK;
}

static void *ckpt_main(void *arg) {
  lt__sq_ckpt_t *c = arg;
  pthread_setname_np(pthread_self(), "lt-checkpoint");
  pthread_mutex_lock(&c->mu);
  for (;;) {
    while (!c->wanted && !c->stopping) pthread_cond_wait(&c->cv, &c->mu);
    if (c->stopping) break;
    c->wanted = false;
    pthread_mutex_unlock(&c->mu);
    int log = 0, done = 0;
    int src = sqlite3_wal_checkpoint_v2(c->db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &done);
    if ((src & 0xff) == SQLITE_FULL) (void)lt__sq_fail(c->db, src, "checkpoint"); /* logged once a minute */
    else if (src != SQLITE_OK && src != SQLITE_BUSY) lt_warn("sqlite: checkpoint: %s", sqlite3_errmsg(c->db));
    pthread_mutex_lock(&c->mu);
  }
  pthread_mutex_unlock(&c->mu);
  return NULL;
}

int lt__sq_ckpt_start(lt__sq_t *s) {
  lt__sq_ckpt_t *c = lt_calloc(1, sizeof *c);
  if (!c) return LT_ENOMEM;
  pthread_mutex_init(&c->mu, NULL);
  pthread_cond_init(&c->cv, NULL);
  s->ckpt = c;
  int rc = lt__sq_admin_open(s, &c->db);
  if (rc) return rc;
  if (pthread_create(&c->thread, NULL, ckpt_main, c) != 0) {
    /* No thread: leave checkpoints to SQLite, on the writer. */
    lt_warn("sqlite: could not start the checkpoint thread; checkpointing on the writer");
    return 0;
  }
  c->started = true;
  sqlite3_wal_hook(s->wdb, wal_hook, c);
  return 0;
}

void lt__sq_ckpt_stop(lt__sq_t *s) {
  lt__sq_ckpt_t *c = s->ckpt;
  if (!c) return;
  if (c->started) {
    sqlite3_wal_hook(s->wdb, NULL, NULL);
    pthread_mutex_lock(&c->mu);
    c->stopping = true;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
    pthread_join(c->thread, NULL);
  }
  sqlite3_close(c->db);
  pthread_mutex_destroy(&c->mu);
  pthread_cond_destroy(&c->cv);
  lt_free(c);
  s->ckpt = NULL;
}

bool lt__sq_ckpt_idle(lt__sq_t *s, int64_t mono_ns) {
  if (mono_ns - s->last_write_ns < s->wal_idle_ns) return false;
  int64_t size = lt__sq_file_size(s->path, "-wal");
  if (size <= s->wal_rest_bytes) return false;
  /* With no busy handler, a TRUNCATE checkpoint that meets a reader or
   * another checkpoint stops where it is, as a PASSIVE one would. */
  sqlite3_busy_timeout(s->wdb, 0);
  int src = sqlite3_wal_checkpoint_v2(s->wdb, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
  sqlite3_busy_timeout(s->wdb, LT__SQ_BUSY_TIMEOUT_MS);
  if (src == SQLITE_OK) {
    lt_debug("sqlite: idle for %lld s, WAL truncated (was %lld MB)", (long long)((mono_ns - s->last_write_ns) / 1000000000),
             (long long)(size >> 20));
    return true;
  }
  if (src != SQLITE_BUSY) lt_warn("sqlite: truncating the WAL: %s", sqlite3_errmsg(s->wdb));
  return false;
}
