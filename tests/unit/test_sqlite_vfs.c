/* Unit tests for the write-merging VFS (store/sqlite_vfs.c), on real
 * SQLite files: a commit is in the file when another connection can see
 * it, also after spills and frame rewrites; a checkpoint's merged runs
 * reach the database file; a process killed right after its commits keeps
 * every one of them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "store/sqlite_internal.h"

#include "store_fixture.h"

typedef struct {
  char dir[FIXTURE_DIR_MAX];
  char db[FIXTURE_DIR_MAX + 8];
} dir_t;

static int setup(void **st) {
  dir_t *d = calloc(1, sizeof *d);
  if (!d || fixture_mkdir(d->dir)) return -1;
  snprintf(d->db, sizeof d->db, "%s/t.db", d->dir);
  *st = d;
  return 0;
}

static int teardown(void **st) {
  dir_t *d = *st;
  int rc = fixture_rmdir(d->dir);
  free(d);
  return rc;
}

/* A connection through the merger (vfs != NULL) or SQLite's default. */
static sqlite3 *open_db(const char *path, const char *vfs, int cache_pages) {
  sqlite3 *db = NULL;
  assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, vfs), SQLITE_OK);
  char sql[160];
  snprintf(sql, sizeof sql,
           "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA cache_size=%d;"
           "PRAGMA wal_autocheckpoint=0;", cache_pages);
  assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
  sqlite3_busy_timeout(db, 5000);
  return db;
}

static int64_t one_int(sqlite3 *db, const char *sql) {
  sqlite3_stmt *st = NULL;
  assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
  assert_int_equal(sqlite3_step(st), SQLITE_ROW);
  int64_t v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  return v;
}

static void assert_intact(sqlite3 *db) {
  sqlite3_stmt *st = NULL;
  assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
  assert_int_equal(sqlite3_step(st), SQLITE_ROW);
  assert_string_equal((const char *)sqlite3_column_text(st, 0), "ok");
  sqlite3_finalize(st);
}

static void exec(sqlite3 *db, const char *sql) { assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK); }

/* Rows of ~1 KB: a few hundred fill several merged runs. */
static void insert_rows(sqlite3 *db, int from, int n) {
  sqlite3_stmt *st = NULL;
  assert_int_equal(sqlite3_prepare_v2(db, "INSERT INTO t(id, body) VALUES(?1, randomblob(1000))", -1, &st, NULL),
                   SQLITE_OK);
  for (int i = from; i < from + n; i++) {
    sqlite3_bind_int(st, 1, i);
    assert_int_equal(sqlite3_step(st), SQLITE_DONE);
    sqlite3_reset(st);
  }
  sqlite3_finalize(st);
}

static void small_commits_are_seen_at_once(void **state) {
  dir_t *d = *state;
  const char *vfs = lt__sq_vfs_name();
  assert_non_null(vfs);
  sqlite3 *w = open_db(d->db, vfs, 2000), *r = open_db(d->db, NULL, 2000);
  exec(w, "CREATE TABLE t(id INTEGER PRIMARY KEY, body BLOB); CREATE TABLE u(x)");
  lt__sq_vfs_stats_t a, b;
  lt__sq_vfs_stats(&a);
  for (int i = 0; i < 40; i++) {
    exec(w, "BEGIN");
    insert_rows(w, i * 50, 50);
    exec(w, "COMMIT");
    /* Another connection, on the default VFS, reads the commit at once, */
    assert_int_equal(one_int(r, "SELECT count(*) FROM t"), (i + 1) * 50);
    /* and appends a commit of its own: the merger's next transaction
     * starts where that one ended, not where it last wrote. */
    exec(r, "INSERT INTO u VALUES(1)");
  }
  lt__sq_vfs_stats(&b);
  /* The frames were merged: far fewer writes reached the file. */
  assert_true(b.writes - a.writes >= 40 * 2 * 12);
  assert_true(b.flushes - a.flushes < (b.writes - a.writes) / 4);
  assert_int_equal(b.late, a.late);
  assert_int_equal(one_int(w, "SELECT count(*) FROM u"), 40);
  assert_intact(r);
  sqlite3_close(w);
  sqlite3_close(r);
}

/* A transaction larger than the page cache spills frames before its
 * commit, and changing a spilled page again rewrites its frame in place
 * and later the transaction's checksums: writes that are not appends. */
static void spills_and_rewrites_stay_consistent(void **state) {
  dir_t *d = *state;
  sqlite3 *w = open_db(d->db, lt__sq_vfs_name(), 10), *r = open_db(d->db, NULL, 2000);
  exec(w, "CREATE TABLE t(id INTEGER PRIMARY KEY, body BLOB)");
  lt__sq_vfs_stats_t a, b;
  lt__sq_vfs_stats(&a);
  exec(w, "BEGIN");
  insert_rows(w, 0, 3000);
  exec(w, "UPDATE t SET body = zeroblob(900) WHERE id < 600");
  insert_rows(w, 3000, 500);
  exec(w, "UPDATE t SET body = zeroblob(800) WHERE id % 7 = 0");
  exec(w, "COMMIT");
  lt__sq_vfs_stats(&b);
  assert_int_equal(b.late, a.late);
  assert_int_equal(one_int(r, "SELECT count(*) FROM t"), 3500);
  assert_int_equal(one_int(r, "SELECT count(*) FROM t WHERE length(body) = 800"), 500);
  assert_int_equal(one_int(r, "SELECT count(*) FROM t WHERE length(body) = 900"), 600 - 86);
  assert_intact(r);
  /* The writer reads its own committed data back too. */
  assert_int_equal(one_int(w, "SELECT sum(length(body)) FROM t"), one_int(r, "SELECT sum(length(body)) FROM t"));
  sqlite3_close(w);
  sqlite3_close(r);
}

static void checkpoints_reach_the_database_file(void **state) {
  dir_t *d = *state;
  const char *vfs = lt__sq_vfs_name();
  sqlite3 *w = open_db(d->db, vfs, 2000), *c = open_db(d->db, vfs, 100);
  exec(w, "CREATE TABLE t(id INTEGER PRIMARY KEY, body BLOB)");
  exec(w, "CREATE INDEX t_body ON t(body)");
  for (int i = 0; i < 10; i++) {
    exec(w, "BEGIN");
    insert_rows(w, i * 200, 200);
    exec(w, "COMMIT");
  }
  exec(w, "DELETE FROM t WHERE id % 3 = 0");
  lt__sq_vfs_stats_t a, b;
  lt__sq_vfs_stats(&a);
  int log = -1, done = -1;
  assert_int_equal(sqlite3_wal_checkpoint_v2(c, NULL, SQLITE_CHECKPOINT_TRUNCATE, &log, &done), SQLITE_OK);
  assert_int_equal(log, 0); /* truncated: every frame was copied */
  lt__sq_vfs_stats(&b);
  assert_true(b.writes - a.writes > 100);     /* the copy went through merged runs */
  assert_true(b.flushes - a.flushes < b.writes - a.writes);
  sqlite3_close(w);
  sqlite3_close(c);
  /* The database file alone (no WAL) holds everything. */
  struct stat sb;
  char wal[128];
  snprintf(wal, sizeof wal, "%s-wal", d->db);
  assert_true(stat(wal, &sb) != 0 || sb.st_size == 0);
  char copy[128], cmd[320];
  snprintf(copy, sizeof copy, "%s/copy.db", d->dir);
  snprintf(cmd, sizeof cmd, "cp %s %s", d->db, copy);
  assert_int_equal(system(cmd), 0);
  sqlite3 *r = open_db(copy, NULL, 2000);
  assert_int_equal(one_int(r, "SELECT count(*) FROM t"), 2000 - 667);
  assert_intact(r);
  sqlite3_close(r);
}

/* A child commits and reports each commit, then dies by SIGKILL without
 * closing anything: every commit it reported is in the files. */
static void a_killed_process_keeps_its_commits(void **state) {
  dir_t *d = *state;
  sqlite3 *setup_db = open_db(d->db, NULL, 2000);
  exec(setup_db, "CREATE TABLE t(id INTEGER PRIMARY KEY, body BLOB)");
  sqlite3_close(setup_db);
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    close(fds[0]);
    sqlite3 *w = open_db(d->db, lt__sq_vfs_name(), 2000);
    for (int i = 0;; i++) {
      if (sqlite3_exec(w, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) _exit(2);
      insert_rows(w, i * 20, 20);
      if (sqlite3_exec(w, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) _exit(2);
      int n = i + 1;
      if (write(fds[1], &n, sizeof n) != sizeof n) _exit(3);
      /* Half a commit more before the next report: killed mid-transaction. */
    }
  }
  close(fds[1]);
  int reported = 0, n;
  while (reported < 60 && read(fds[0], &n, sizeof n) == sizeof n) reported = n;
  kill(pid, SIGKILL);
  int status;
  waitpid(pid, &status, 0);
  while (read(fds[0], &n, sizeof n) == sizeof n) reported = n; /* reports written before the kill */
  close(fds[0]);
  assert_true(reported >= 60);
  sqlite3 *r = open_db(d->db, NULL, 2000);
  int64_t rows = one_int(r, "SELECT count(*) FROM t");
  assert_true(rows >= (int64_t)reported * 20);
  assert_int_equal(rows % 20, 0); /* never part of a transaction */
  assert_intact(r);
  sqlite3_close(r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(small_commits_are_seen_at_once, setup, teardown),
    cmocka_unit_test_setup_teardown(spills_and_rewrites_stay_consistent, setup, teardown),
    cmocka_unit_test_setup_teardown(checkpoints_reach_the_database_file, setup, teardown),
    cmocka_unit_test_setup_teardown(a_killed_process_keeps_its_commits, setup, teardown),
  };
  return cmocka_run_group_tests_name("sqlite_vfs", tests, NULL, NULL);
}
