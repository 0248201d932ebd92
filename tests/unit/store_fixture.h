/* The store fixture the cmocka suites share: a fresh SQLite store in its
 * own temporary directory per test, removed afterwards. A suite includes
 * this, uses fixture_t, and passes fixture_setup / fixture_teardown to
 * cmocka_unit_test_setup_teardown; fixture_reopen reopens the store (after
 * closing it) with another retention. */
#ifndef LT_TEST_STORE_FIXTURE_H
#define LT_TEST_STORE_FIXTURE_H
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include "store/store.h"

/* Room for a $TMPDIR of ~80 characters; suites build file paths from the
 * directory in 128-byte buffers. */
#define FIXTURE_DIR_MAX 96

typedef struct {
  char dir[FIXTURE_DIR_MAX];
  lt_store_t *store;
} fixture_t;

static inline int fixture_reopen(fixture_t *f, int64_t retention_ns) {
  lt_store_config_t sc = {.data_dir = f->dir, .durability = LT_DURABILITY_PROCESS, .retention_ns = retention_ns,
                          .read_connections = 2, .cache_bytes = 4u << 20, .search_by_hand = true};
  return lt_store_open(&lt_store_sqlite_ops, &sc, &f->store);
}

/* Makes a new directory in $TMPDIR (else /tmp), named by mkdtemp, into
 * dir[FIXTURE_DIR_MAX]; -1 on failure. */
static inline int fixture_mkdir(char dir[FIXTURE_DIR_MAX]) {
  const char *tmp = getenv("TMPDIR");
  if (!tmp || !*tmp) tmp = "/tmp";
  if (snprintf(dir, FIXTURE_DIR_MAX, "%s/lt-test-XXXXXX", tmp) >= FIXTURE_DIR_MAX) return -1;
  return mkdtemp(dir) ? 0 : -1;
}

static inline int fixture_rm_one(const char *path, const struct stat *sb, int type, struct FTW *ftw) {
  (void)sb, (void)type, (void)ftw;
  return remove(path);
}

/* Removes a directory made by fixture_mkdir, with what is in it (children
 * first, no shell). */
static inline int fixture_rmdir(const char *dir) {
  return nftw(dir, fixture_rm_one, 16, FTW_DEPTH | FTW_PHYS) == 0 ? 0 : -1;
}

/* A store in a new temporary directory; fixture_fini removes both. */
static inline int fixture_init(fixture_t *f) {
  return fixture_mkdir(f->dir) || fixture_reopen(f, 0) ? -1 : 0;
}

static inline int fixture_fini(fixture_t *f) {
  lt_store_close(f->store);
  f->store = NULL;
  return fixture_rmdir(f->dir);
}

static inline int fixture_setup(void **st) {
  fixture_t *f = calloc(1, sizeof *f);
  if (!f || fixture_init(f)) return -1;
  *st = f;
  return 0;
}

static inline int fixture_teardown(void **st) {
  fixture_t *f = *st;
  int rc = fixture_fini(f);
  free(f);
  return rc;
}

#endif
