/* The SQLite backend: opening (connection settings, versioned migrations),
 * the reader pool, shared helpers and the operations table. The write path
 * lives in sqlite_write.c, queries in sqlite_query.c, projects and keys in
 * sqlite_admin.c; docs/storage.md explains the schema.
 *
 * Connections: one writer (used only by the writer thread, through write
 * and maintain), read_connections readers checked out under a mutex by
 * every query, and a short-lived connection per admin write. WAL lets the
 * readers run while the writer commits. */
#include "store/sqlite_internal.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Marks the file as Lanterna's so we never migrate someone else's database. */
#define APPLICATION_ID LT__SQ_APPLICATION_ID
/* 4 KiB pages. With payloads in chunk rows, what a commit writes is
 * mostly index pages dirtied at random keys (trace ids, sessions, users),
 * where every touched page is written whole: 4 KiB pages measured 2-5%
 * more spans/s than 16 KiB and 17% less disk (16 KiB had won when each
 * span row carried its own multi-KB payload). Only a new file takes it. */
#define PAGE_SIZE_TEXT "4096"
#define ADMIN_BUSY_TIMEOUT_MS 10000
/* For connections other than the writer (whose checkpoints run on their
 * own thread, sqlite_ckpt.c): checkpoint every this many pages. */
#define WAL_AUTOCHECKPOINT_PAGES 4000
/* A WAL restart truncates a WAL that grew past this. It is above the size
 * the writer's own checkpoint holds the WAL to (sqlite_ckpt.c), so under
 * load the WAL keeps its blocks; an idle writer gives them back
 * (lt__sq_ckpt_idle). Truncating at 64 MB cut 1-11 MB off the WAL about
 * twice a second at full ingest, 0.2-11 ms inside the writer's commit. */
#define WAL_SIZE_LIMIT (512LL << 20)
#define READER_MMAP_BYTES (256LL << 20)
#define MAX_READERS 64

/* The spans table's columns: migration 9 rebuilds the table with the same
 * ones as migration 1 and copies its rows with SELECT *. */
#define SPAN_COLUMNS \
  "  id INTEGER PRIMARY KEY," \
  "  trace_ref INTEGER NOT NULL," \
  "  span_id INTEGER NOT NULL," \
  "  parent_id INTEGER," \
  "  project_id INTEGER NOT NULL," \
  "  start_ns INTEGER NOT NULL," \
  "  end_ns INTEGER NOT NULL," \
  "  name TEXT NOT NULL," \
  "  kind INTEGER NOT NULL," \
  "  otel_kind INTEGER NOT NULL," \
  "  status INTEGER NOT NULL," \
  "  service TEXT," \
  "  request_model TEXT," \
  "  response_model TEXT," \
  "  input_tokens INTEGER," \
  "  output_tokens INTEGER," \
  "  total_tokens INTEGER," \
  "  cost_nusd INTEGER," \
  "  cost_source INTEGER NOT NULL," \
  "  ttft_ns INTEGER," \
  "  user_id TEXT," \
  "  session_id TEXT," \
  "  tags TEXT," \
  "  payload BLOB"

/* Migration n takes user_version n to n+1. Append only; never edit one
 * that has shipped. */
static const char *const migrations[] = {
  /* 1: the initial schema. */
  "CREATE TABLE projects("
  "  id INTEGER PRIMARY KEY,"
  "  name TEXT NOT NULL UNIQUE,"
  "  created_ns INTEGER NOT NULL);"
  "INSERT INTO projects(id, name, created_ns)"
  "  VALUES(1, 'default', CAST(strftime('%s','now') AS INTEGER) * 1000000000);"
  "CREATE TABLE api_keys("
  "  id INTEGER PRIMARY KEY,"
  "  project_id INTEGER NOT NULL,"
  "  public_key TEXT NOT NULL UNIQUE,"
  "  secret_hash TEXT NOT NULL UNIQUE,"
  "  created_ns INTEGER NOT NULL,"
  "  revoked_ns INTEGER);"
  /* One row per trace: the only random-key index of the write path. */
  "CREATE TABLE traces("
  "  id INTEGER PRIMARY KEY,"
  "  project_id INTEGER NOT NULL,"
  "  trace_id BLOB NOT NULL,"
  "  name TEXT,"
  "  start_ns INTEGER NOT NULL,"
  "  end_ns INTEGER NOT NULL,"
  "  status INTEGER NOT NULL,"
  "  error_count INTEGER NOT NULL,"
  "  span_count INTEGER NOT NULL,"
  "  user_id TEXT,"
  "  session_id TEXT,"
  "  models TEXT,"
  "  input_tokens INTEGER,"
  "  output_tokens INTEGER,"
  "  total_tokens INTEGER,"
  "  cost_nusd INTEGER,"
  "  service TEXT,"
  "  environment TEXT,"
  "  tags TEXT,"
  "  UNIQUE(project_id, trace_id));"
  "CREATE INDEX traces_start ON traces(project_id, start_ns);"
  "CREATE INDEX traces_session ON traces(project_id, session_id, start_ns) WHERE session_id IS NOT NULL;"
  "CREATE INDEX traces_user ON traces(project_id, user_id, start_ns) WHERE user_id IS NOT NULL;"
  "CREATE TABLE trace_models("
  "  project_id INTEGER NOT NULL,"
  "  model TEXT NOT NULL,"
  "  trace_ref INTEGER NOT NULL,"
  "  PRIMARY KEY(project_id, model, trace_ref)) WITHOUT ROWID;"
  /* Spans: thin columns for filters, everything large in payload. The
   * unique key is (trace row, span id): trace rows are numbered in arrival
   * order, so inserts land at the right edge of the index. */
  "CREATE TABLE spans(" SPAN_COLUMNS ","
  "  UNIQUE(trace_ref, span_id));"
  "CREATE INDEX spans_start ON spans(project_id, start_ns);"
  /* Contentless: the text lives (compressed) in spans.payload only. */
  "CREATE VIRTUAL TABLE span_fts USING fts5(input, output, content='');"
  "CREATE TABLE logs("
  "  id INTEGER PRIMARY KEY,"
  "  project_id INTEGER NOT NULL,"
  "  trace_id BLOB,"
  "  span_id INTEGER,"
  "  time_ns INTEGER NOT NULL,"
  "  severity INTEGER NOT NULL,"
  "  severity_text TEXT,"
  "  event_name TEXT,"
  "  body TEXT,"
  "  attributes TEXT,"
  "  resource TEXT,"
  "  service TEXT,"
  "  scope TEXT,"
  "  input_messages TEXT,"   /* normalised at ingest (model/semconv.c) */
  "  output_messages TEXT);"
  "CREATE INDEX logs_trace ON logs(project_id, trace_id) WHERE trace_id IS NOT NULL;"
  "CREATE INDEX logs_time ON logs(time_ns);"
  "CREATE TABLE metric_points("
  "  id INTEGER PRIMARY KEY,"
  "  project_id INTEGER NOT NULL,"
  "  name TEXT NOT NULL,"
  "  type INTEGER NOT NULL,"
  "  temporality INTEGER NOT NULL,"
  "  unit TEXT,"
  "  time_ns INTEGER NOT NULL,"
  "  start_ns INTEGER NOT NULL,"
  "  value REAL,"
  "  count INTEGER,"
  "  attributes TEXT,"
  "  data TEXT,"
  "  service TEXT,"
  "  scope TEXT);"
  "CREATE INDEX points_time ON metric_points(time_ns);"
  "CREATE TABLE meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;"
  "INSERT INTO meta(key, value) VALUES('fts_hwm', 0), ('n_spans', 0), ('n_traces', 0),"
  "  ('n_logs', 0), ('n_points', 0);",
  /* 2: rollups (docs/rollups.md), scores, per-project price overrides. */
  /* Dimension values are '' rather than NULL so the UNIQUE key works. */
  "CREATE TABLE rollup_dims("
  "  id INTEGER PRIMARY KEY,"
  "  project_id INTEGER NOT NULL,"
  "  environment TEXT NOT NULL,"
  "  provider TEXT NOT NULL,"
  "  model TEXT NOT NULL,"
  "  name TEXT NOT NULL,"
  "  kind INTEGER NOT NULL,"
  "  status INTEGER NOT NULL,"
  "  feature TEXT NOT NULL,"
  /* 1: a coarse set (provider, model, kind, status only) that every span
   * also counts into, so model-level dashboards read few rows. */
  "  coarse INTEGER NOT NULL,"
  "  UNIQUE(project_id, coarse, environment, provider, model, name, kind, status, feature));"
  /* res: bucket width in seconds (60, 3600, 86400); bucket: its start,
   * Unix seconds. Sums skip wrapper spans (usage_rollup); sketches are
   * pipeline/sketch.h encodings, NULL when empty. */
  "CREATE TABLE rollups("
  "  project_id INTEGER NOT NULL,"
  "  coarse INTEGER NOT NULL,"  /* as rollup_dims.coarse: keeps coarse rows one key range */
  "  res INTEGER NOT NULL,"
  "  bucket INTEGER NOT NULL,"
  "  dim INTEGER NOT NULL,"
  "  n INTEGER NOT NULL,"
  "  errors INTEGER NOT NULL,"
  "  tok_in INTEGER NOT NULL,"
  "  tok_out INTEGER NOT NULL,"
  "  tok_cache_read INTEGER NOT NULL,"
  "  tok_cache_write INTEGER NOT NULL,"
  "  tok_reasoning INTEGER NOT NULL,"
  "  tok_total INTEGER NOT NULL,"
  "  cost_nusd INTEGER NOT NULL,"
  "  priced INTEGER NOT NULL,"
  "  unpriced INTEGER NOT NULL,"
  "  roots INTEGER NOT NULL,"   /* spans without a parent: traces started */
  "  lat BLOB, ttft BLOB, tps BLOB, tokens BLOB,"
  "  PRIMARY KEY(project_id, coarse, res, bucket, dim)) WITHOUT ROWID;"
  "CREATE TABLE scores("
  "  id INTEGER PRIMARY KEY,"
  "  project_id INTEGER NOT NULL,"
  "  trace_id BLOB,"            /* 16 bytes; NULL for a session score */
  "  span_id INTEGER,"          /* as spans.span_id; NULL: on the trace */
  "  session_id TEXT,"
  "  name TEXT NOT NULL,"
  "  data_type TEXT NOT NULL CHECK(data_type IN ('numeric', 'boolean', 'categorical')),"
  "  value REAL,"               /* numeric, or boolean as 0/1 */
  "  string_value TEXT,"        /* categorical label */
  "  source TEXT NOT NULL CHECK(source IN ('api', 'human', 'evaluator')),"
  "  comment TEXT,"
  "  time_ns INTEGER NOT NULL,"
  "  idempotency_key TEXT,"
  "  UNIQUE(project_id, idempotency_key));"
  "CREATE INDEX scores_trace ON scores(project_id, trace_id) WHERE trace_id IS NOT NULL;"
  "CREATE INDEX scores_session ON scores(project_id, session_id) WHERE session_id IS NOT NULL;"
  "CREATE INDEX scores_name_time ON scores(project_id, name, time_ns);"
  "CREATE INDEX scores_time ON scores(time_ns);"  /* retention */
  "CREATE TABLE price_overrides("
  "  id INTEGER PRIMARY KEY,"
  "  project_id INTEGER NOT NULL,"
  "  created_ns INTEGER NOT NULL,"
  "  body TEXT NOT NULL);"
  /* Spans stored before this migration are folded into rollups in the
   * background, up to this span id. */
  "INSERT INTO meta(key, value) SELECT 'rollup_backfill_to', coalesce(max(id), 0) FROM spans;"
  "INSERT INTO meta(key, value) VALUES('rollup_backfill_hwm', 0);",
  /* 3: admin users; browser sessions are API keys of a user that expire. */
  "CREATE TABLE users("
  "  id INTEGER PRIMARY KEY,"
  "  name TEXT NOT NULL UNIQUE,"
  "  password_hash TEXT NOT NULL,"
  "  created_ns INTEGER NOT NULL);"
  "ALTER TABLE api_keys ADD COLUMN user_id INTEGER;"
  "ALTER TABLE api_keys ADD COLUMN expires_ns INTEGER;",
  /* 4: payload chunks: the payloads of a trace's spans that arrive
   * together, compressed as one (sqlite_pack.c); a chunk belongs to one
   * trace and goes when the trace does. */
  "CREATE TABLE payload_chunks("
  "  id INTEGER PRIMARY KEY,"
  "  trace_ref INTEGER NOT NULL,"
  "  body BLOB NOT NULL);"
  "CREATE INDEX payload_chunks_trace ON payload_chunks(trace_ref);",
  /* 5: span blocks instead of a start-time index on spans: one row per
   * write transaction with the id range it stored and its start times'
   * range (sqlite_query.c uses them to bound span lists by time). The
   * index took every span at a random place in the window that
   * concurrent requests cover, and was a third of what commits wrote. */
  "CREATE TABLE span_blocks("
  "  first_id INTEGER PRIMARY KEY,"
  "  last_id INTEGER NOT NULL,"
  "  min_start INTEGER NOT NULL,"
  "  max_start INTEGER NOT NULL);"
  "CREATE INDEX span_blocks_max ON span_blocks(max_start);"
  "CREATE INDEX span_blocks_min ON span_blocks(min_start);"
  "INSERT INTO span_blocks SELECT min(id), max(id), min(start_ns), max(start_ns) FROM spans GROUP BY id >> 12;"
  "DROP INDEX spans_start;",
  /* 6: the largest span id the rollup rows hold (sqlite_rollup.c): a
   * flush may now wait behind later commits. Every span stored so far was
   * rolled up in its own transaction. */
  "INSERT OR IGNORE INTO meta(key, value) SELECT 'rollup_hwm', coalesce(max(id), 0) FROM spans;",
  /* 7: full-text merges. The index is built in short slices (see
   * sqlite_write.c), each a small segment; FTS5's defaults merge every 4
   * segments of a level and force a merge at 16, so most of the work went
   * into rewriting segments. 16 and 64 index the benchmark's text ~45%
   * faster with the same query times (docs/storage.md). */
  "INSERT INTO span_fts(span_fts, rank) VALUES('automerge', 16);"
  "INSERT INTO span_fts(span_fts, rank) VALUES('crisismerge', 64);",
  /* 8: session and user lookups through trace_keys, written in sorted
   * slices in the background (sqlite_write.c) instead of two indexes on
   * traces that every new trace updated at a random place: together they
   * were 28% of the pages the WAL took at full ingest. Traces above
   * keys_hwm are not keyed yet; lookups read them directly. */
  "CREATE TABLE trace_keys("
  "  project_id INTEGER NOT NULL,"
  "  kind INTEGER NOT NULL,"  /* 1: session_id, 2: user_id */
  "  key TEXT NOT NULL,"
  "  start_ns INTEGER NOT NULL,"
  "  trace_ref INTEGER NOT NULL,"
  "  PRIMARY KEY(project_id, kind, key, start_ns, trace_ref)) WITHOUT ROWID;"
  "INSERT INTO trace_keys SELECT project_id, 1, session_id, start_ns, id FROM traces WHERE session_id IS NOT NULL;"
  "INSERT INTO trace_keys SELECT project_id, 2, user_id, start_ns, id FROM traces WHERE user_id IS NOT NULL;"
  "INSERT INTO meta(key, value) SELECT 'keys_hwm', coalesce(max(id), 0) FROM traces;"
  "DROP INDEX traces_session;"
  "DROP INDEX traces_user;",
  /* 9: trace runs instead of the spans' unique index (trace_ref, span_id).
   * The writer stores each transaction's new spans of a trace under
   * consecutive ids and records that range once; a trace's spans are read
   * through its runs, and duplicates are found by reading them too
   * (sqlite_write.c). The index took one entry per span, the runs take
   * about one per trace; without it spans/s rose ~5% (docs/storage.md).
   * Existing spans get runs of their consecutive ids; the table is
   * rebuilt, since a table's UNIQUE constraint cannot be dropped. */
  "CREATE TABLE trace_runs("
  "  trace_ref INTEGER NOT NULL,"
  "  first_id INTEGER NOT NULL,"
  "  last_id INTEGER NOT NULL,"
  "  PRIMARY KEY(trace_ref, first_id)) WITHOUT ROWID;"
  "INSERT INTO trace_runs SELECT trace_ref, min(id), max(id) FROM"
  "  (SELECT id, trace_ref, id - row_number() OVER (PARTITION BY trace_ref ORDER BY id) AS run FROM spans)"
  "  GROUP BY trace_ref, run;"
  "CREATE TABLE spans_v9(" SPAN_COLUMNS ");"
  "INSERT INTO spans_v9 SELECT * FROM spans;"
  "DROP TABLE spans;"
  "ALTER TABLE spans_v9 RENAME TO spans;",
  /* 10: the full-text index moves to a file and thread of its own
   * (sqlite_search.c), which indexes every stored span again from the
   * start. The old table goes with its high-water mark. */
  "DROP TABLE span_fts;"
  "DELETE FROM meta WHERE key = 'fts_hwm';"
  /* Which database a search file was built from: a file restored from a
   * copy is not indexed by another copy's search file. */
  "INSERT OR IGNORE INTO meta(key, value) VALUES('instance', abs(random() / 2) + 1);",
};
#define N_MIGRATIONS ((int)(sizeof migrations / sizeof migrations[0]))

/* ---- helpers ------------------------------------------------------------- */

int lt__sq_fail(sqlite3 *db, int src, const char *what) {
  if ((src & 0xff) == SQLITE_FULL) {
    /* Every statement fails while the disk is full; the writer reports the
     * episode (pipeline/writer.c), so here once a minute is enough. */
    static _Atomic int64_t logged_s;
    if (lt_log_due(&logged_s, 60))
      lt_warn("sqlite: %s: the disk is full (further ones not logged for a minute)", what);
    return LT_ENOSPACE;
  }
  lt_error("sqlite: %s: %s (%d)", what, db ? sqlite3_errmsg(db) : sqlite3_errstr(src), src);
  return (src & 0xff) == SQLITE_NOMEM ? LT_ENOMEM : LT_EDB;
}

int lt__sq_exec(sqlite3 *db, const char *sql) {
  int src = sqlite3_exec(db, sql, NULL, NULL, NULL);
  return src == SQLITE_OK ? 0 : lt__sq_fail(db, src, "exec");
}

int lt__sq_bind_text(sqlite3_stmt *st, int i, lt_str_t s) {
  if (s.len == 0) return sqlite3_bind_null(st, i);
  return sqlite3_bind_text64(st, i, s.ptr, s.len, SQLITE_STATIC, SQLITE_UTF8);
}

int lt__sq_bind_text_nn(sqlite3_stmt *st, int i, lt_str_t s) {
  return sqlite3_bind_text64(st, i, s.len ? s.ptr : "", s.len, SQLITE_STATIC, SQLITE_UTF8);
}

int lt__sq_bind_known(sqlite3_stmt *st, int i, int64_t v) {
  return v < 0 ? sqlite3_bind_null(st, i) : sqlite3_bind_int64(st, i, v);
}

int lt__sq_meta_get(sqlite3 *db, const char *key, int64_t *v) {
  sqlite3_stmt *st = NULL;
  int src = sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key = ?1", -1, &st, NULL);
  if (src == SQLITE_OK) src = sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
  if (src == SQLITE_OK) src = sqlite3_step(st);
  int rc = 0;
  if (src == SQLITE_ROW) *v = sqlite3_column_int64(st, 0);
  else if (src == SQLITE_DONE) *v = 0;
  else rc = lt__sq_fail(db, src, "reading meta");
  sqlite3_finalize(st);
  return rc;
}

int lt__sq_int(sqlite3 *db, const char *sql, int64_t *v) {
  sqlite3_stmt *st = NULL;
  int src = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
  if (src == SQLITE_OK) src = sqlite3_step(st);
  int rc = 0;
  if (src == SQLITE_ROW) *v = sqlite3_column_int64(st, 0);
  else rc = lt__sq_fail(db, src, sql);
  sqlite3_finalize(st);
  return rc;
}

typedef enum { ROLE_WRITER, ROLE_READER, ROLE_ADMIN } role_t;

/* Per-connection settings; journal_mode (persistent in the file) is set
 * once by the writer before migrating. */
static int configure(lt__sq_t *s, sqlite3 *db, role_t role) {
  char sql[512];
  /* The writer's commits are synced by lt__sq_sync (see sqlite_internal.h). */
  const char *sync = s->durability == LT_DURABILITY_FULL && role != ROLE_WRITER ? "FULL" : "NORMAL";
  sqlite3_busy_timeout(db, role == ROLE_ADMIN ? ADMIN_BUSY_TIMEOUT_MS : LT__SQ_BUSY_TIMEOUT_MS);
  int n;
  if (role == ROLE_READER)
    n = snprintf(sql, sizeof sql,
                 "PRAGMA foreign_keys=OFF; PRAGMA cache_size=-%lld; PRAGMA temp_store=MEMORY;"
                 "PRAGMA mmap_size=%lld; PRAGMA query_only=1;",
                 (long long)s->cache_kib, (long long)READER_MMAP_BYTES);
  else
    n = snprintf(sql, sizeof sql,
                 "PRAGMA foreign_keys=OFF; PRAGMA synchronous=%s; PRAGMA cache_size=-%lld;"
                 "PRAGMA temp_store=MEMORY; PRAGMA wal_autocheckpoint=%d; PRAGMA journal_size_limit=%lld;",
                 sync, (long long)(role == ROLE_WRITER ? s->cache_kib : 2048), WAL_AUTOCHECKPOINT_PAGES,
                 (long long)WAL_SIZE_LIMIT);
  if (n < 0 || (size_t)n >= sizeof sql) return LT_EINVAL;
  return lt__sq_exec(db, sql);
}

static int open_conn(lt__sq_t *s, role_t role, sqlite3 **out) {
  sqlite3 *db = NULL;
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (role == ROLE_WRITER ? SQLITE_OPEN_CREATE : 0);
  /* Readers never write: they open through the default VFS. */
  const char *vfs = role == ROLE_READER ? NULL : lt__sq_vfs_name();
  int src = sqlite3_open_v2(s->path, &db, flags, vfs);
  if (src != SQLITE_OK) {
    lt_error("sqlite: cannot open %s: %s", s->path, db ? sqlite3_errmsg(db) : sqlite3_errstr(src));
    sqlite3_close(db);
    return (src & 0xff) == SQLITE_CANTOPEN ? LT_EIO : LT_EDB;
  }
  sqlite3_extended_result_codes(db, 1);
  int rc = configure(s, db, role);
  if (rc) {
    sqlite3_close(db);
    return rc;
  }
  *out = db;
  return 0;
}

/* Brings the schema to the newest version, each step in one transaction
 * with its version bump. */
static int migrate(sqlite3 *db) {
  int64_t version = 0, app = 0;
  int rc = lt__sq_int(db, "PRAGMA user_version", &version);
  if (rc == 0) rc = lt__sq_int(db, "PRAGMA application_id", &app);
  if (rc) return rc;
  if (app != 0 && app != APPLICATION_ID) {
    lt_error("sqlite: the database file belongs to another application (application_id %lld)", (long long)app);
    return LT_ECONFIG;
  }
  if (version > N_MIGRATIONS) {
    lt_error("sqlite: the database has schema version %lld, newer than this build knows (%d); "
             "run a newer Lanterna", (long long)version, N_MIGRATIONS);
    return LT_ECONFIG;
  }
  while (rc == 0 && version < N_MIGRATIONS) {
    /* Re-read under the write lock: another process may have migrated. */
    rc = lt__sq_exec(db, "BEGIN IMMEDIATE");
    if (rc == 0) rc = lt__sq_int(db, "PRAGMA user_version", &version);
    if (rc == 0 && version < N_MIGRATIONS) {
      char bump[96];
      snprintf(bump, sizeof bump, "PRAGMA user_version=%d; PRAGMA application_id=%d;", (int)version + 1,
               APPLICATION_ID);
      rc = lt__sq_exec(db, migrations[version]);
      if (rc == 0) rc = lt__sq_exec(db, bump);
      if (rc == 0) lt_info("sqlite: migrated the schema to version %d", (int)version + 1);
    }
    if (rc == 0) rc = lt__sq_exec(db, "COMMIT");
    if (rc) sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    version++;
  }
  return rc;
}

/* ---- reader pool --------------------------------------------------------- */

lt__sq_reader_t *lt__sq_reader_get(lt__sq_t *s) {
  pthread_mutex_lock(&s->mu);
  while (s->n_free == 0) pthread_cond_wait(&s->cv, &s->mu);
  lt__sq_reader_t *r = &s->readers[s->free_idx[--s->n_free]];
  pthread_mutex_unlock(&s->mu);
  return r;
}

void lt__sq_reader_put(lt__sq_t *s, lt__sq_reader_t *r) {
  /* A reader that failed mid-transaction must not keep its snapshot. */
  if (!sqlite3_get_autocommit(r->db)) sqlite3_exec(r->db, "ROLLBACK", NULL, NULL, NULL);
  lt__sq_unpacker_reset(&r->up);
  pthread_mutex_lock(&s->mu);
  s->free_idx[s->n_free++] = (int)(r - s->readers);
  pthread_cond_signal(&s->cv);
  pthread_mutex_unlock(&s->mu);
}

int lt__sq_admin_open(lt__sq_t *s, sqlite3 **out) { return open_conn(s, ROLE_ADMIN, out); }

int lt__sq_reader_open(lt__sq_t *s, sqlite3 **out) { return open_conn(s, ROLE_READER, out); }

/* Pool readers see the full-text index as `search` (queries join it to
 * spans). */
static int attach_search(lt__sq_t *s, sqlite3 *db) {
  char *sql = sqlite3_mprintf("ATTACH %Q AS search", s->search_path);
  if (!sql) return LT_ENOMEM;
  int rc = lt__sq_exec(db, sql);
  sqlite3_free(sql);
  return rc;
}

/* ---- open / close -------------------------------------------------------- */

static void sq_close(lt_store_t *st) {
  lt__sq_t *s = LT__SQ(st);
  if (!s) return;
  lt__sq_search_close(s);
  if (s->ws[WS_COMMIT]) lt__sq_flush_rollups(s);
  for (int i = 0; i < WS__COUNT; i++) sqlite3_finalize(s->ws[i]);
  lt__sq_rollup_close(s);
  lt__sq_idcache_free(s);
  for (int i = 0; s->readers && i < s->n_readers; i++) {
    lt__sq_unpacker_free(&s->readers[i].up);
    sqlite3_close(s->readers[i].db);
  }
  sqlite3_close(s->key_db);
  lt__sq_unpacker_free(&s->wup);
  lt__sq_ckpt_stop(s); /* its connection goes first: the writer's close checkpoints */
  sqlite3_close(s->wdb);
  if (s->wal_fd >= 0) close(s->wal_fd);
  pthread_mutex_destroy(&s->sync_mu);
  lt_free(s->readers);
  lt_free(s->free_idx);
  lt_free(s->path);
  lt_free(s->search_path);
  pthread_mutex_destroy(&s->mu);
  pthread_mutex_destroy(&s->key_mu);
  pthread_cond_destroy(&s->cv);
  lt_free(s);
}

/* False when path exists, is not empty and does not start like an SQLite
 * file: what a store that will not open is worth telling apart. */
static bool is_sqlite_file(const char *path) {
  char head[16] = {0};
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return true;
  ssize_t n = read(fd, head, sizeof head);
  close(fd);
  return n <= 0 || (n == (ssize_t)sizeof head && memcmp(head, "SQLite format 3", 16) == 0);
}

static int sq_open(const lt_store_config_t *cfg, lt_store_t **out) {
  if (!cfg->data_dir || !*cfg->data_dir) {
    lt_error("sqlite: no data directory configured");
    return LT_ECONFIG;
  }
  if (cfg->read_connections < 1 || cfg->read_connections > MAX_READERS) {
    lt_error("sqlite: read connections must be between 1 and %d (got %d)", MAX_READERS, cfg->read_connections);
    return LT_ECONFIG;
  }
  if (!sqlite3_compileoption_used("ENABLE_FTS5")) {
    lt_error("sqlite: this SQLite library lacks FTS5, which full-text search needs");
    return LT_ECONFIG;
  }
  int rc = LT_ENOMEM;
  lt__sq_t *s = lt_calloc(1, sizeof *s);
  if (!s) return LT_ENOMEM;
  pthread_mutex_init(&s->mu, NULL);
  pthread_mutex_init(&s->key_mu, NULL);
  pthread_mutex_init(&s->sync_mu, NULL);
  pthread_cond_init(&s->cv, NULL);
  s->wal_fd = -1;
  s->base.ops = &lt_store_sqlite_ops;
  s->base.defer_sync = cfg->durability == LT_DURABILITY_FULL;
  s->durability = cfg->durability;
  s->retention_ns = cfg->retention_ns > 0 ? cfg->retention_ns : 0;
  s->cache_kib = cfg->cache_bytes >= 1024 ? (int64_t)(cfg->cache_bytes / 1024) : 2048;
  s->wal_idle_ns = LT__SQ_WAL_IDLE_NS;
  s->wal_rest_bytes = LT__SQ_WAL_REST_BYTES;
  s->keys_batch = LT__SQ_KEYS_BATCH;
  s->search_part_spans = LT__SQ_SEARCH_PART_SPANS;
  s->compression = cfg->compression;
  size_t dl = strlen(cfg->data_dir);
  s->path = lt_malloc(dl + sizeof "/lanterna.db");
  s->readers = lt_calloc((size_t)cfg->read_connections, sizeof *s->readers);
  s->free_idx = lt_calloc((size_t)cfg->read_connections, sizeof *s->free_idx);
  if (!s->path || !s->readers || !s->free_idx) goto out;
  memcpy(s->path, cfg->data_dir, dl);
  memcpy(s->path + dl, "/lanterna.db", sizeof "/lanterna.db");

  if ((rc = open_conn(s, ROLE_WRITER, &s->wdb))) goto out;
  /* Only takes effect on a new, empty file (see PAGE_SIZE). */
  if ((rc = lt__sq_exec(s->wdb, "PRAGMA page_size=" PAGE_SIZE_TEXT))) goto out;
  char mode[16] = "";
  sqlite3_stmt *jm = NULL;
  int src = sqlite3_prepare_v2(s->wdb, "PRAGMA journal_mode=WAL", -1, &jm, NULL);
  if (src == SQLITE_OK && (src = sqlite3_step(jm)) == SQLITE_ROW)
    snprintf(mode, sizeof mode, "%s", (const char *)sqlite3_column_text(jm, 0));
  sqlite3_finalize(jm);
  if (strcmp(mode, "wal") != 0) {
    rc = lt__sq_fail(s->wdb, src == SQLITE_ROW ? SQLITE_ERROR : src, "switching to WAL mode");
    goto out;
  }
  if ((rc = migrate(s->wdb))) goto out;
  {
    char cs[64];
    snprintf(cs, sizeof cs, "PRAGMA main.cache_size=-%lld", (long long)s->cache_kib);
    if ((rc = lt__sq_exec(s->wdb, cs))) goto out;
  }
  if ((rc = lt__sq_prepare_writer(s))) goto out;
  if ((rc = lt__sq_rollup_open(s))) goto out;
  if ((rc = lt__sq_ckpt_start(s))) goto out;
  if ((rc = lt__sq_unpacker_init(&s->wup, s->wdb))) goto out;
  if ((rc = lt__sq_meta_get(s->wdb, LT__SQ_META_SPAN_FLOOR, &s->span_floor))) goto out;
  if (!(s->search_path = lt__sq_search_path(s->path))) {
    rc = LT_ENOMEM;
    goto out;
  }
  if ((rc = lt__sq_search_open(s))) goto out;
  for (int i = 0; i < cfg->read_connections; i++) {
    lt__sq_reader_t *r = &s->readers[i];
    if ((rc = open_conn(s, ROLE_READER, &r->db))) goto out;
    s->n_readers++;
    if ((rc = attach_search(s, r->db))) goto out;
    if ((rc = lt__sq_unpacker_init(&r->up, r->db))) goto out;
    s->free_idx[s->n_free++] = i;
  }
  if ((rc = open_conn(s, ROLE_READER, &s->key_db))) goto out;
  if (!cfg->search_by_hand && (rc = lt__sq_search_start(s))) goto out;
  *out = &s->base;
  s = NULL;
  rc = 0;
out:
  if (s && rc == LT_EDB && !is_sqlite_file(s->path))
    lt_error("'%s' is not a Lanterna database, or it is damaged: move it (with any -wal and -shm files next "
             "to it) out of the way, or restore a copy, then start again",
             s->path);
  if (s) sq_close(&s->base);
  return rc;
}

/* ---- stats --------------------------------------------------------------- */

int64_t lt__sq_file_size(const char *path, const char *suffix) {
  char p[4096];
  struct stat sb;
  if (snprintf(p, sizeof p, "%s%s", path, suffix) >= (int)sizeof p) return 0;
  return stat(p, &sb) == 0 ? (int64_t)sb.st_size : 0;
}

int lt__sq_stats(lt_store_t *st, lt_store_stats_t *out) {
  lt__sq_t *s = LT__SQ(st);
  memset(out, 0, sizeof *out);
  lt__sq_reader_t *r = lt__sq_reader_get(s);
  sqlite3_stmt *q = NULL;
  int rc = 0;
  int src = sqlite3_prepare_v2(r->db,
                               "SELECT (SELECT value FROM meta WHERE key='n_spans'),"
                               " (SELECT value FROM meta WHERE key='n_traces'),"
                               " (SELECT value FROM meta WHERE key='n_logs'),"
                               " (SELECT value FROM meta WHERE key='n_points'),"
                               /* Span ids above the mark, from the rowid b-tree's edge: a
                                * count(*) would read (and, through the reader's mmap, map)
                                * every waiting span. Ids above the mark have no gaps (but
                                * for the jump to a floor, sqlite_write.c, counted until
                                * the next indexing batch). */
                               " max(0, coalesce((SELECT max(id) FROM spans), 0) -"
                               " coalesce((SELECT value FROM search.meta WHERE key='hwm'), 0)),"
                               " max(0, coalesce((SELECT max(id) FROM spans), 0) -"
                               " coalesce((SELECT value FROM meta WHERE key='rollup_hwm'), 0)),"
                               " max(0, coalesce((SELECT max(id) FROM traces), 0) -"
                               " coalesce((SELECT value FROM meta WHERE key='" LT__SQ_META_KEYS_HWM "'), 0))",
                               -1, &q, NULL);
  if (src == SQLITE_OK) src = sqlite3_step(q);
  if (src == SQLITE_ROW) {
    out->spans = sqlite3_column_int64(q, 0);
    out->traces = sqlite3_column_int64(q, 1);
    out->logs = sqlite3_column_int64(q, 2);
    out->points = sqlite3_column_int64(q, 3);
    out->fts_lag = sqlite3_column_int64(q, 4);
    out->rollup_lag = sqlite3_column_int64(q, 5);
    out->keys_lag = sqlite3_column_int64(q, 6);
  } else {
    rc = lt__sq_fail(r->db, src, "reading stats");
  }
  sqlite3_finalize(q);
  lt__sq_reader_put(s, r);
  out->db_bytes = lt__sq_file_size(s->path, "") + lt__sq_file_size(s->path, "-wal") +
                 lt__sq_file_size(s->search_path, "") + lt__sq_file_size(s->search_path, "-wal");
  return rc;
}

/* ---- deferred sync --------------------------------------------------------- */

/* fdatasync flushes the file, whichever descriptor wrote it, so syncing a
 * descriptor of our own makes every commit the writer connection made
 * before the call durable: what synchronous=FULL would have done at each
 * commit, but off the writer thread and once for several commits. The
 * descriptor is reopened if the WAL file was ever replaced. */
static int sq_sync(lt_store_t *st) {
  lt__sq_t *s = LT__SQ(st);
  char wal[4096];
  if (snprintf(wal, sizeof wal, "%s-wal", s->path) >= (int)sizeof wal) return LT_EIO;
  int rc = 0;
  pthread_mutex_lock(&s->sync_mu);
  struct stat path_st, fd_st;
  if (stat(wal, &path_st) != 0) {
    rc = LT_EIO; /* a write was committed, so its WAL exists */
  } else {
    if (s->wal_fd >= 0 && (fstat(s->wal_fd, &fd_st) != 0 || fd_st.st_ino != path_st.st_ino ||
                           fd_st.st_dev != path_st.st_dev)) {
      close(s->wal_fd);
      s->wal_fd = -1;
    }
    if (s->wal_fd < 0) s->wal_fd = open(wal, O_RDONLY | O_CLOEXEC);
    if (s->wal_fd < 0 || fdatasync(s->wal_fd) != 0) rc = errno == ENOSPC ? LT_ENOSPACE : LT_EIO;
  }
  if (rc == LT_EIO) lt_error("sqlite: cannot sync %s: %s", wal, strerror(errno));
  pthread_mutex_unlock(&s->sync_mu);
  return rc;
}

const lt_store_ops_t lt_store_sqlite_ops = {
  .name = "sqlite",
  .open = sq_open,
  .close = sq_close,
  .write = lt__sq_write,
  .maintain = lt__sq_maintain,
  .traces_list = lt__sq_traces_list,
  .trace_get = lt__sq_trace_get,
  .spans_list = lt__sq_spans_list,
  .sessions_list = lt__sq_sessions_list,
  .session_get = lt__sq_session_get,
  .project_create = lt__sq_project_create,
  .project_find = lt__sq_project_find,
  .project_list = lt__sq_project_list,
  .key_create = lt__sq_key_create,
  .key_find = lt__sq_key_find,
  .key_list = lt__sq_key_list,
  .key_revoke = lt__sq_key_revoke,
  .key_count = lt__sq_key_count,
  .stats = lt__sq_stats,
  .score_add = lt__sq_score_add,
  .scores_list = lt__sq_scores_list,
  .scores_summary = lt__sq_scores_summary,
  .metrics = lt__sq_metrics,
  .metrics_text = lt__sq_metrics_text,
  .prices_add = lt__sq_prices_add,
  .prices_clear = lt__sq_prices_clear,
  .prices_list = lt__sq_prices_list,
  .models_unpriced = lt__sq_models_unpriced,
  .user_create = lt__sq_user_create,
  .user_find = lt__sq_user_find,
  .user_get = lt__sq_user_get,
  .user_list = lt__sq_user_list,
  .user_count = lt__sq_user_count,
  .session_create = lt__sq_session_create,
  .prepack = lt__sq_prepack,
  .sync = sq_sync,
};
