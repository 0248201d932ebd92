/* The full-text index, in a database file of its own, written by a thread
 * of its own (docs/storage.md, "Full-text search").
 *
 * FTS5 writes a segment per transaction and then merges segments; in the
 * writer's short slices (30-60 spans each under load) the merging cost
 * 6.9 KB of WAL per span and up to tens of milliseconds per commit, and
 * every ingest commit waited behind it. Here the index is built in
 * transactions of up to BATCH_SPANS spans or BATCH_NS, on a SCHED_IDLE
 * thread (it runs when a core has nothing else to do, and takes a quarter
 * of its time at most while the server is busy), and it never takes the
 * main database's write lock.
 *
 * The index is split into partitions by span id (fts_<n>, each covering
 * LT__SQ_SEARCH_PART_SPANS ids; the ranges are in `parts`). Retention
 * never touches the index: a partition goes as a whole once no span in its
 * range is left,
 * and until then queries join each match to `spans`, so matches of
 * deleted spans are never returned. Span ids are never handed out twice
 * (the writer's floor, sqlite_write.c), so a match always means the span
 * that was indexed.
 *
 * Every reader connection attaches this file as `search`. */
#include "store/sqlite_internal.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/share.h"
#include <pthread.h>
#include <stdatomic.h>
#include <sched.h>
#include <sys/statvfs.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BATCH_SPANS 5000
#define BATCH_NS (50 * 1000000LL)
/* Spans read from the main database per statement: its read transaction
 * stays short (a long one would keep the WAL from starting over). */
#define READ_ROWS 256
/* With nothing to index, look again this often. */
#define POLL_NS (100 * 1000000LL)
/* Dead partitions are looked for this often. */
#define SWEEP_NS (10 * 1000000000LL)

#define SEARCH_VERSION 1

struct lt__sq_search {
  lt__sq_t *s;
  sqlite3 *db;   /* the search database; used under mu only */
  sqlite3 *main; /* a read connection on the main database */
  lt__sq_unpacker_t up;
  sqlite3_stmt *read, *top, *ins, *hwm_set, *part_set, *part_add, *alive;
  int64_t hwm;                  /* spans up to this id are indexed */
  int64_t part_id, part_first;  /* the partition being filled (0: none yet) */
  int64_t last_sweep_ns;
  lt_buf_t rows;                /* one read's payloads, copied (index_batch) */
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool started;
  atomic_bool stopping; /* read without mu: the thread holds mu while it has work */
};

static int64_t clock_ns(clockid_t clock) {
  struct timespec ts;
  clock_gettime(clock, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

char *lt__sq_search_path(const char *main_path) {
  size_t n = strlen(main_path);
  if (n > 3 && strcmp(main_path + n - 3, ".db") == 0) n -= 3;
  char *p = lt_malloc(n + 11);
  if (!p) return NULL;
  memcpy(p, main_path, n);
  memcpy(p + n, ".search.db", 11);
  return p;
}

static const char *const schema =
  "CREATE TABLE meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;"
  "CREATE TABLE parts(id INTEGER PRIMARY KEY, first_id INTEGER NOT NULL, last_id INTEGER NOT NULL);"
  /* Never written: queries are checked against it, so syntax errors are
   * told apart before any partition exists. */
  "CREATE VIRTUAL TABLE syntax USING fts5(input, output, content='');"
  "INSERT INTO meta(key, value) VALUES('hwm', 0);";

static int prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st) {
  int src = sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL);
  return src == SQLITE_OK ? 0 : lt__sq_fail(db, src, "preparing a search statement");
}

/* Empties the index (every partition, the mark). */
static int wipe(lt__sq_search_t *x) {
  int rc = lt__sq_exec(x->db, "BEGIN IMMEDIATE");
  for (int64_t id = 0; rc == 0;) {
    /* One at a time: a table cannot be dropped while a statement reads. */
    if ((rc = lt__sq_int(x->db, "SELECT coalesce(max(id), 0) FROM parts", &id)) || !id) break;
    char sql[96];
    snprintf(sql, sizeof sql, "DROP TABLE fts_%lld; DELETE FROM parts WHERE id = %lld;", (long long)id,
             (long long)id);
    rc = lt__sq_exec(x->db, sql);
  }
  if (rc == 0) rc = lt__sq_exec(x->db, "UPDATE meta SET value = 0 WHERE key = 'hwm'; COMMIT;");
  if (rc) (void)lt__sq_exec(x->db, "ROLLBACK");
  x->hwm = 0;
  return rc;
}

/* The index must have been built from this database, and not from a
 * later state of it (a file restored from an older copy): else it starts
 * over. The main database's instance is random, made by migration 10. */
static int check_origin(lt__sq_search_t *x) {
  int64_t mine = 0, theirs = 0, top = 0, floor = 0;
  int rc = lt__sq_meta_get(x->db, LT__SQ_META_INSTANCE, &mine);
  if (rc == 0) rc = lt__sq_meta_get(x->s->wdb, LT__SQ_META_INSTANCE, &theirs);
  if (rc == 0) rc = lt__sq_int(x->s->wdb, "SELECT coalesce(max(id), 0) FROM spans", &top);
  if (rc == 0) rc = lt__sq_meta_get(x->s->wdb, LT__SQ_META_SPAN_FLOOR, &floor);
  if (rc) return rc;
  if (floor > top) top = floor;
  if ((mine && mine != theirs) || x->hwm > top) {
    lt_info("search: %s was built from another copy of the database: indexing again from the start",
            x->s->search_path);
    if ((rc = wipe(x))) return rc;
  }
  if (mine != theirs) {
    char sql[96];
    snprintf(sql, sizeof sql, "INSERT OR REPLACE INTO meta(key, value) VALUES('" LT__SQ_META_INSTANCE "', %lld)",
             (long long)theirs);
    rc = lt__sq_exec(x->db, sql);
  }
  return rc;
}

/* Opens (making it if new) the search database next to the main one. */
static int open_db(lt__sq_search_t *x) {
  lt__sq_t *s = x->s;
  int src = sqlite3_open_v2(s->search_path, &x->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                            lt__sq_vfs_name());
  if (src != SQLITE_OK) {
    lt_error("sqlite: cannot open %s: %s", s->search_path, x->db ? sqlite3_errmsg(x->db) : sqlite3_errstr(src));
    return LT_EIO;
  }
  sqlite3_extended_result_codes(x->db, 1);
  sqlite3_busy_timeout(x->db, LT__SQ_BUSY_TIMEOUT_MS);
  /* Derived data: a power loss may take its last transactions (they are
   * indexed again), never its consistency (WAL, synchronous NORMAL). */
  int rc = lt__sq_exec(x->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA cache_size=-4096;"
                              "PRAGMA temp_store=MEMORY;");
  int64_t version = 0, app = 0;
  if (rc == 0) rc = lt__sq_int(x->db, "PRAGMA user_version", &version);
  if (rc == 0) rc = lt__sq_int(x->db, "PRAGMA application_id", &app);
  if (rc) return rc;
  if ((app != 0 && app != LT__SQ_APPLICATION_ID) || version > SEARCH_VERSION) {
    lt_error("sqlite: %s is not a search index this version of Lanterna can use; move it out of the way "
             "(it is rebuilt from the database)",
             s->search_path);
    return LT_EDB;
  }
  if (version == 0) {
    char bump[96];
    snprintf(bump, sizeof bump, "PRAGMA user_version=%d; PRAGMA application_id=%d;", SEARCH_VERSION,
             LT__SQ_APPLICATION_ID);
    if ((rc = lt__sq_exec(x->db, "BEGIN IMMEDIATE"))) return rc;
    rc = lt__sq_exec(x->db, schema);
    if (rc == 0) rc = lt__sq_exec(x->db, bump);
    if (rc == 0) rc = lt__sq_exec(x->db, "COMMIT");
    else (void)lt__sq_exec(x->db, "ROLLBACK");
    if (rc) return rc;
  }
  if ((rc = lt__sq_meta_get(x->db, "hwm", &x->hwm))) return rc;
  if ((rc = check_origin(x))) return rc;
  /* The newest partition is the one being filled. */
  sqlite3_stmt *st = NULL;
  src = sqlite3_prepare_v2(x->db, "SELECT id, first_id FROM parts ORDER BY id DESC LIMIT 1", -1, &st, NULL);
  if (src == SQLITE_OK && (src = sqlite3_step(st)) == SQLITE_ROW) {
    x->part_id = sqlite3_column_int64(st, 0);
    x->part_first = sqlite3_column_int64(st, 1);
    src = SQLITE_DONE;
  }
  sqlite3_finalize(st);
  if (src != SQLITE_DONE) return lt__sq_fail(x->db, src, "reading the search partitions");
  if ((rc = prepare(x->db, "UPDATE meta SET value = ?1 WHERE key = 'hwm'", &x->hwm_set))) return rc;
  if ((rc = prepare(x->db, "UPDATE parts SET last_id = ?2 WHERE id = ?1", &x->part_set))) return rc;
  if ((rc = prepare(x->db, "INSERT INTO parts(id, first_id, last_id) VALUES(?1, ?2, ?2)", &x->part_add))) return rc;
  if ((rc = lt__sq_reader_open(s, &x->main))) return rc;
  /* It reads each new span once, in order: a small cache, and no memory
   * map (mapped pages it touched would count in the server's RSS). */
  if ((rc = lt__sq_exec(x->main, "PRAGMA mmap_size=0; PRAGMA cache_size=-2048;"))) return rc;
  if ((rc = prepare(x->main, "SELECT id, payload FROM spans WHERE id > ?1 ORDER BY id LIMIT ?2", &x->read)))
    return rc;
  if ((rc = prepare(x->main, "SELECT EXISTS(SELECT 1 FROM spans WHERE id BETWEEN ?1 AND ?2)", &x->alive))) return rc;
  if ((rc = prepare(x->main, "SELECT coalesce(max(id), 0) FROM spans", &x->top))) return rc;
  return lt__sq_unpacker_init(&x->up, x->main);
}

static int run(sqlite3 *db, sqlite3_stmt *st, const char *what) {
  int src = sqlite3_step(st);
  sqlite3_reset(st);
  return src == SQLITE_DONE ? 0 : lt__sq_fail(db, src, what);
}

/* Starts partition id at span id first (in the open transaction). */
static int part_start(lt__sq_search_t *x, int64_t id, int64_t first) {
  char sql[512];
  snprintf(sql, sizeof sql,
           "CREATE VIRTUAL TABLE fts_%lld USING fts5(input, output, content='');"
           "INSERT INTO fts_%lld(fts_%lld, rank) VALUES('automerge', 16);"
           "INSERT INTO fts_%lld(fts_%lld, rank) VALUES('crisismerge', 64);",
           (long long)id, (long long)id, (long long)id, (long long)id, (long long)id);
  int rc = lt__sq_exec(x->db, sql);
  if (rc) return rc;
  sqlite3_bind_int64(x->part_add, 1, id);
  sqlite3_bind_int64(x->part_add, 2, first);
  if ((rc = run(x->db, x->part_add, "adding a search partition"))) return rc;
  sqlite3_finalize(x->ins);
  x->ins = NULL;
  snprintf(sql, sizeof sql, "INSERT INTO fts_%lld(rowid, input, output) VALUES(?1, ?2, ?3)", (long long)id);
  if ((rc = prepare(x->db, sql, &x->ins))) return rc;
  x->part_id = id;
  x->part_first = first;
  return 0;
}

/* Indexes one span into the partition its id belongs to. */
static int index_span(lt__sq_search_t *x, int64_t id, const void *blob, size_t len) {
  int rc;
  if (!x->part_id || id >= x->part_first + x->s->search_part_spans) {
    if (x->part_id) {
      sqlite3_bind_int64(x->part_set, 1, x->part_id);
      sqlite3_bind_int64(x->part_set, 2, x->hwm);
      if ((rc = run(x->db, x->part_set, "closing a search partition"))) return rc;
    }
    if ((rc = part_start(x, x->part_id + 1, id))) return rc;
  } else if (!x->ins) {
    char sql[128];
    snprintf(sql, sizeof sql, "INSERT INTO fts_%lld(rowid, input, output) VALUES(?1, ?2, ?3)", (long long)x->part_id);
    if ((rc = prepare(x->db, sql, &x->ins))) return rc;
  }
  lt__sq_payload_t p;
  lt_str_t in = LT_STR_NULL, out = LT_STR_NULL;
  /* A payload that does not decode (or whose chunk retention took
   * meanwhile) has no text; a failed read fails the batch, which is then
   * tried again. */
  rc = lt__sq_payload_decode(&x->up, blob, len, &p);
  if (rc == 0) lt__sq_fts_text(&p, &in, &out);
  else if (rc != LT_EDECODE) return rc;
  if (!in.len && !out.len) return 0;
  sqlite3_bind_int64(x->ins, 1, id);
  if ((rc = lt__sq_bind_text(x->ins, 2, in)) || (rc = lt__sq_bind_text(x->ins, 3, out))) return rc;
  return run(x->db, x->ins, "indexing a span");
}

/* One transaction of indexing; *n spans read. */
static int index_batch(lt__sq_search_t *x, int64_t *n) {
  *n = 0;
  /* Nothing new (the usual answer when idle): no transaction at all. */
  int tsrc = sqlite3_step(x->top);
  int64_t top = tsrc == SQLITE_ROW ? sqlite3_column_int64(x->top, 0) : 0;
  sqlite3_reset(x->top);
  if (tsrc != SQLITE_ROW) return lt__sq_fail(x->main, tsrc, "reading the newest span id");
  if (top <= x->hwm) return 0;
  int rc = lt__sq_exec(x->db, "BEGIN IMMEDIATE");
  if (rc) return rc;
  int64_t start = clock_ns(CLOCK_MONOTONIC), hwm0 = x->hwm, part0 = x->part_id, first0 = x->part_first;
  bool more = true;
  while (rc == 0 && more && *n < BATCH_SPANS && clock_ns(CLOCK_MONOTONIC) - start < BATCH_NS &&
         !atomic_load_explicit(&x->stopping, memory_order_relaxed)) {
    /* The rows are copied and the read ends before any indexing: this
     * thread can wait long for a core, and a read transaction held
     * meanwhile would keep the main WAL from being copied and restarted. */
    int64_t ids[READ_ROWS];
    size_t offs[READ_ROWS + 1];
    int rows = 0, src;
    lt_buf_reset(&x->rows);
    sqlite3_bind_int64(x->read, 1, x->hwm);
    sqlite3_bind_int(x->read, 2, READ_ROWS);
    while (rc == 0 && rows < READ_ROWS && (src = sqlite3_step(x->read)) == SQLITE_ROW) {
      ids[rows] = sqlite3_column_int64(x->read, 0);
      offs[rows] = x->rows.len;
      size_t bytes = (size_t)sqlite3_column_bytes(x->read, 1);
      if (bytes) rc = lt_buf_append(&x->rows, sqlite3_column_blob(x->read, 1), bytes);
      rows++;
    }
    if (rc == 0 && rows < READ_ROWS && src != SQLITE_DONE) rc = lt__sq_fail(x->main, src, "reading spans to index");
    sqlite3_reset(x->read);
    offs[rows] = x->rows.len;
    for (int i = 0; rc == 0 && i < rows; i++) {
      rc = index_span(x, ids[i], x->rows.ptr + offs[i], offs[i + 1] - offs[i]);
      x->hwm = ids[i];
    }
    lt__sq_unpacker_reset(&x->up);
    *n += rows;
    more = rows == READ_ROWS;
  }
  if (rc == 0 && x->hwm != hwm0) {
    sqlite3_bind_int64(x->part_set, 1, x->part_id);
    sqlite3_bind_int64(x->part_set, 2, x->hwm);
    rc = run(x->db, x->part_set, "recording a search partition");
    sqlite3_bind_int64(x->hwm_set, 1, x->hwm);
    if (rc == 0) rc = run(x->db, x->hwm_set, "recording the search mark");
  }
  if (rc == 0) rc = lt__sq_exec(x->db, "COMMIT");
  if (rc) {
    /* A COMMIT that failed for want of space has rolled back already. */
    if (!sqlite3_get_autocommit(x->db)) (void)lt__sq_exec(x->db, "ROLLBACK");
    x->hwm = hwm0;
    if (x->part_id != part0) {
      sqlite3_finalize(x->ins);
      x->ins = NULL;
    }
    x->part_id = part0;
    x->part_first = first0;
    *n = 0;
  }
  return rc;
}

/* Drops the partitions (but the one being filled) none of whose spans is
 * left. */
static int sweep(lt__sq_search_t *x) {
  int64_t ids[64], firsts[64], lasts[64];
  int n = 0;
  sqlite3_stmt *st = NULL;
  int src = sqlite3_prepare_v2(x->db, "SELECT id, first_id, last_id FROM parts WHERE id < ?1 ORDER BY id LIMIT 64",
                               -1, &st, NULL);
  if (src == SQLITE_OK) src = sqlite3_bind_int64(st, 1, x->part_id);
  while (src == SQLITE_OK && (src = sqlite3_step(st)) == SQLITE_ROW) {
    ids[n] = sqlite3_column_int64(st, 0);
    firsts[n] = sqlite3_column_int64(st, 1);
    lasts[n++] = sqlite3_column_int64(st, 2);
    src = n < 64 ? SQLITE_OK : SQLITE_DONE;
  }
  sqlite3_finalize(st);
  if (src != SQLITE_DONE) return lt__sq_fail(x->db, src, "listing search partitions");
  int rc = 0;
  for (int i = 0; rc == 0 && i < n; i++) {
    sqlite3_bind_int64(x->alive, 1, firsts[i]);
    sqlite3_bind_int64(x->alive, 2, lasts[i]);
    src = sqlite3_step(x->alive);
    bool alive = src != SQLITE_ROW || sqlite3_column_int(x->alive, 0);
    sqlite3_reset(x->alive);
    if (src != SQLITE_ROW) return lt__sq_fail(x->main, src, "checking a search partition");
    if (alive) continue;
    char sql[160];
    snprintf(sql, sizeof sql, "BEGIN IMMEDIATE; DROP TABLE fts_%lld; DELETE FROM parts WHERE id = %lld; COMMIT;",
             (long long)ids[i], (long long)ids[i]);
    if ((rc = lt__sq_exec(x->db, sql))) (void)lt__sq_exec(x->db, "ROLLBACK");
    else lt_info("search: dropped the index of span ids %lld-%lld (none of them is left)", (long long)firsts[i],
                 (long long)lasts[i]);
  }
  return rc;
}

/* Ingest comes before the index: the index waits while ingest writes find
 * the disk full, and while less than SPACE_RESERVE is free (it would take
 * space ingest needs, and the space it frees when a transaction of its own
 * fails would end a full-disk episode only for it to start again). */
#define SPACE_RESERVE (64ull << 20)

static bool short_of_space(lt__sq_search_t *x) {
  if (atomic_load_explicit(&x->s->space_short, memory_order_relaxed)) return true;
  struct statvfs sv;
  if (statvfs(x->s->search_path, &sv) != 0) return false;
  return (uint64_t)sv.f_bavail * sv.f_frsize < SPACE_RESERVE;
}

/* Indexes (a batch, or until nothing is left) unless short of space,
 * then drops dead partitions when due; under mu. */
static int catch_up(lt__sq_search_t *x, bool until_done) {
  int rc = 0;
  while (!short_of_space(x)) {
    int64_t n = 0;
    if ((rc = index_batch(x, &n))) return rc;
    if (n == 0 || !until_done) break;
  }
  int64_t now = clock_ns(CLOCK_MONOTONIC);
  if (until_done || now - x->last_sweep_ns >= SWEEP_NS) {
    x->last_sweep_ns = now;
    rc = sweep(x);
  }
  return rc;
}

static void *search_main(void *arg) {
  lt__sq_search_t *x = arg;
  pthread_setname_np(pthread_self(), "lt-search");
  /* Indexing is what a core does when it has nothing else to do: ingest,
   * queries and the writer always come first. It holds no lock that any
   * of them waits for (its own file; reads of the main one). */
  struct sched_param sp = {0};
  if (pthread_setschedparam(pthread_self(), SCHED_IDLE, &sp) != 0)
    lt_debug("search: SCHED_IDLE refused; indexing at normal priority");
  int failures = 0, off = 0, ncpu = (int)sysconf(_SC_NPROCESSORS_ONLN);
  int64_t win_start = clock_ns(CLOCK_MONOTONIC), win_cpu = clock_ns(CLOCK_PROCESS_CPUTIME_ID),
          win_mine = clock_ns(CLOCK_THREAD_CPUTIME_ID);
  pthread_mutex_lock(&x->mu);
  while (!atomic_load(&x->stopping)) {
    int64_t before = x->hwm, t0 = clock_ns(CLOCK_MONOTONIC);
    if (t0 - win_start >= 1000000000LL) {
      /* The writer's rule for its background slices (core/share.h). */
      int64_t cpu = clock_ns(CLOCK_PROCESS_CPUTIME_ID), mine = clock_ns(CLOCK_THREAD_CPUTIME_ID);
      off = lt_bg_off(cpu - win_cpu, mine - win_mine, t0 - win_start, ncpu);
      win_start = t0, win_cpu = cpu, win_mine = mine;
    }
    int rc = catch_up(x, false);
    if (rc) {
      if (failures++ % 60 == 0) lt_warn("search: indexing failed: %s (retrying)", lt_strerror(rc));
    } else {
      failures = 0;
    }
    int64_t wait = rc ? 1000000000LL : x->hwm == before ? POLL_NS : off * (clock_ns(CLOCK_MONOTONIC) - t0);
    if (wait > 0) {
      struct timespec ts;
      clock_gettime(CLOCK_MONOTONIC, &ts);
      int64_t t = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec + wait;
      ts.tv_sec = t / 1000000000;
      ts.tv_nsec = t % 1000000000;
      pthread_cond_timedwait(&x->cv, &x->mu, &ts);
    }
  }
  pthread_mutex_unlock(&x->mu);
  return NULL;
}

static void search_free(lt__sq_search_t *x) {
  sqlite3_finalize(x->read);
  sqlite3_finalize(x->top);
  sqlite3_finalize(x->alive);
  sqlite3_finalize(x->ins);
  sqlite3_finalize(x->hwm_set);
  sqlite3_finalize(x->part_set);
  sqlite3_finalize(x->part_add);
  lt__sq_unpacker_free(&x->up);
  lt_buf_free(&x->rows);
  sqlite3_close(x->main);
  sqlite3_close(x->db);
  pthread_mutex_destroy(&x->mu);
  pthread_cond_destroy(&x->cv);
  lt_free(x);
}

int lt__sq_search_open(lt__sq_t *s) {
  lt__sq_search_t *x = lt_calloc(1, sizeof *x);
  if (!x) return LT_ENOMEM;
  x->s = s;
  lt_buf_init(&x->rows, SIZE_MAX / 2);
  atomic_init(&x->stopping, false);
  pthread_mutex_init(&x->mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&x->cv, &ca);
  pthread_condattr_destroy(&ca);
  int rc = open_db(x);
  if (rc) {
    search_free(x);
    return rc;
  }
  s->search = x;
  return 0;
}

int lt__sq_search_start(lt__sq_t *s) {
  lt__sq_search_t *x = s->search;
  if (!x || x->started) return 0;
  if (pthread_create(&x->thread, NULL, search_main, x) != 0) return LT_ENOMEM;
  x->started = true;
  return 0;
}

void lt__sq_search_close(lt__sq_t *s) {
  lt__sq_search_t *x = s->search;
  if (!x) return;
  if (x->started) {
    /* Seen between reads and batches without the lock, which the thread
     * holds while it has work; then the signal ends a wait. */
    atomic_store(&x->stopping, true);
    pthread_mutex_lock(&x->mu);
    pthread_cond_signal(&x->cv);
    pthread_mutex_unlock(&x->mu);
    pthread_join(x->thread, NULL);
  }
  search_free(x);
  s->search = NULL;
}

int lt__sq_search_catch_up(lt__sq_t *s) {
  lt__sq_search_t *x = s->search;
  if (!x) return 0;
  pthread_mutex_lock(&x->mu);
  int rc = catch_up(x, true);
  pthread_mutex_unlock(&x->mu);
  return rc;
}
