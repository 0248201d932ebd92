/* Projects, API keys, users and browser sessions in the SQLite store. Reads use the reader pool;
 * the rare writes (create, revoke) open a short-lived connection of their
 * own that waits for the writer's lock, so they work both inside the
 * server and from the command line next to a running server. */
#include "store/sqlite_internal.h"
#include "core/err.h"
#include <stdio.h>
#include <string.h>
#include <time.h>

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Runs one admin write: sql with text/int parameters given by the caller's
 * bind callback. Sets *changes and *rowid. */
typedef int (*bind_fn)(sqlite3_stmt *st, const void *arg);

static int admin_write(lt__sq_t *s, const char *sql, bind_fn bind, const void *arg, int *changes,
                       int64_t *rowid) {
  sqlite3 *db = NULL;
  sqlite3_stmt *st = NULL;
  int rc = lt__sq_admin_open(s, &db);
  if (rc) return rc;
  int src = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
  if (src == SQLITE_OK) src = bind(st, arg);
  if (src == SQLITE_OK) src = sqlite3_step(st);
  if (src == SQLITE_DONE) {
    if (changes) *changes = sqlite3_changes(db);
    if (rowid) *rowid = sqlite3_last_insert_rowid(db);
  } else if (src == SQLITE_CONSTRAINT_UNIQUE || src == SQLITE_CONSTRAINT_PRIMARYKEY) {
    rc = LT_EEXISTS;
  } else {
    rc = lt__sq_fail(db, src, sql);
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return rc;
}

/* ---- projects ------------------------------------------------------------ */

static int bind_project(sqlite3_stmt *st, const void *arg) {
  int src = sqlite3_bind_text(st, 1, arg, -1, SQLITE_STATIC);
  if (src == SQLITE_OK) src = sqlite3_bind_int64(st, 2, now_ns());
  return src;
}

int lt__sq_project_create(lt_store_t *st, const char *name, int64_t *id) {
  if (!name || !*name) return LT_EINVAL;
  int64_t rowid = 0;
  int rc = admin_write(LT__SQ(st), "INSERT INTO projects(name, created_ns) VALUES(?1, ?2)", bind_project, name,
                       NULL, &rowid);
  if (rc == 0 && id) *id = rowid;
  return rc;
}

int lt__sq_project_find(lt_store_t *st, const char *name, int64_t *id) {
  lt__sq_t *s = LT__SQ(st);
  lt__sq_reader_t *r = lt__sq_reader_get(s);
  sqlite3_stmt *q = NULL;
  int rc = 0;
  int src = sqlite3_prepare_v2(r->db, "SELECT id FROM projects WHERE name = ?1", -1, &q, NULL);
  if (src == SQLITE_OK) src = sqlite3_bind_text(q, 1, name ? name : "", -1, SQLITE_STATIC);
  if (src == SQLITE_OK) src = sqlite3_step(q);
  if (src == SQLITE_ROW) *id = sqlite3_column_int64(q, 0);
  else if (src == SQLITE_DONE) rc = LT_ENOTFOUND;
  else rc = lt__sq_fail(r->db, src, "finding a project");
  sqlite3_finalize(q);
  lt__sq_reader_put(s, r);
  return rc;
}

int lt__sq_read_list(lt__sq_t *s, const char *sql, const int64_t *params, int nparams, lt__sq_row_fn row,
                     json_t **out) {
  lt__sq_reader_t *r = lt__sq_reader_get(s);
  sqlite3_stmt *q = NULL;
  json_t *arr = json_array();
  int rc = arr ? 0 : LT_ENOMEM;
  int src = sqlite3_prepare_v2(r->db, sql, -1, &q, NULL);
  for (int i = 0; src == SQLITE_OK && i < nparams; i++) src = sqlite3_bind_int64(q, i + 1, params[i]);
  while (rc == 0 && src == SQLITE_OK && (src = sqlite3_step(q)) == SQLITE_ROW) {
    src = SQLITE_OK;
    json_t *o = row(q);
    if (!o || json_array_append_new(arr, o) != 0) rc = LT_ENOMEM;
  }
  if (rc == 0 && src != SQLITE_DONE && src != SQLITE_OK) rc = lt__sq_fail(r->db, src, "listing");
  sqlite3_finalize(q);
  lt__sq_reader_put(s, r);
  if (rc) json_decref(arr);
  else *out = arr;
  return rc;
}

static int read_list(lt__sq_t *s, const char *sql, int64_t param, bool bind_param, lt__sq_row_fn row, json_t **out) {
  return lt__sq_read_list(s, sql, &param, bind_param ? 1 : 0, row, out);
}

static json_t *project_row(sqlite3_stmt *q) {
  return json_pack("{s:I,s:s,s:I}", "id", (json_int_t)sqlite3_column_int64(q, 0), "name",
                   (const char *)sqlite3_column_text(q, 1), "created_ns", (json_int_t)sqlite3_column_int64(q, 2));
}

int lt__sq_project_list(lt_store_t *st, json_t **out) {
  return read_list(LT__SQ(st), "SELECT id, name, created_ns FROM projects ORDER BY id", 0, false, project_row, out);
}

/* ---- keys ---------------------------------------------------------------- */

typedef struct {
  int64_t project_id;
  const char *public_key, *secret_hash;
} key_args_t;

static int bind_key(sqlite3_stmt *st, const void *arg) {
  const key_args_t *k = arg;
  int src = sqlite3_bind_int64(st, 1, k->project_id);
  if (src == SQLITE_OK) src = sqlite3_bind_text(st, 2, k->public_key, -1, SQLITE_STATIC);
  if (src == SQLITE_OK) src = sqlite3_bind_text(st, 3, k->secret_hash, -1, SQLITE_STATIC);
  if (src == SQLITE_OK) src = sqlite3_bind_int64(st, 4, now_ns());
  return src;
}

int lt__sq_key_create(lt_store_t *st, int64_t project_id, const char *public_key, const char *secret_hash,
                      int64_t *id) {
  if (!public_key || !*public_key || !secret_hash || !*secret_hash) return LT_EINVAL;
  key_args_t k = {project_id, public_key, secret_hash};
  int changes = 0;
  int64_t rowid = 0;
  /* Inserts nothing when the project does not exist. */
  int rc = admin_write(LT__SQ(st),
                       "INSERT INTO api_keys(project_id, public_key, secret_hash, created_ns)"
                       " SELECT ?1, ?2, ?3, ?4 WHERE EXISTS (SELECT 1 FROM projects WHERE id = ?1)",
                       bind_key, &k, &changes, &rowid);
  if (rc == 0 && changes == 0) rc = LT_ENOTFOUND;
  if (rc == 0 && id) *id = rowid;
  return rc;
}

static void copy_text(char *dst, size_t cap, sqlite3_stmt *q, int col) {
  const char *p = (const char *)sqlite3_column_text(q, col);
  snprintf(dst, cap, "%s", p ? p : "");
}

int lt__sq_key_find(lt_store_t *st, const char *secret_hash, lt_key_info_t *out) {
  lt__sq_t *s = LT__SQ(st);
  pthread_mutex_lock(&s->key_mu);
  sqlite3 *db = s->key_db;
  sqlite3_stmt *q = NULL;
  int rc = 0;
  int src = sqlite3_prepare_v2(db,
                               "SELECT k.id, k.project_id, k.public_key, p.name, k.created_ns,"
                               " coalesce(k.revoked_ns, 0), coalesce(k.user_id, 0), coalesce(k.expires_ns, 0)"
                               " FROM api_keys k JOIN projects p ON p.id = k.project_id"
                               " WHERE k.secret_hash = ?1",
                               -1, &q, NULL);
  if (src == SQLITE_OK) src = sqlite3_bind_text(q, 1, secret_hash ? secret_hash : "", -1, SQLITE_STATIC);
  if (src == SQLITE_OK) src = sqlite3_step(q);
  if (src == SQLITE_ROW) {
    memset(out, 0, sizeof *out);
    out->id = sqlite3_column_int64(q, 0);
    out->project_id = sqlite3_column_int64(q, 1);
    copy_text(out->public_key, sizeof out->public_key, q, 2);
    copy_text(out->project_name, sizeof out->project_name, q, 3);
    out->created_ns = sqlite3_column_int64(q, 4);
    out->revoked_ns = sqlite3_column_int64(q, 5);
    out->user_id = sqlite3_column_int64(q, 6);
    out->expires_ns = sqlite3_column_int64(q, 7);
  } else if (src == SQLITE_DONE) {
    rc = LT_ENOTFOUND;
  } else {
    rc = lt__sq_fail(db, src, "finding a key");
  }
  sqlite3_finalize(q);
  pthread_mutex_unlock(&s->key_mu);
  return rc;
}

static json_t *key_row(sqlite3_stmt *q) {
  json_t *o = json_pack("{s:I,s:s,s:s,s:I}", "id", (json_int_t)sqlite3_column_int64(q, 0), "public_key",
                        (const char *)sqlite3_column_text(q, 1), "project", (const char *)sqlite3_column_text(q, 2),
                        "created_ns", (json_int_t)sqlite3_column_int64(q, 3));
  if (o && json_object_set_new(o, "revoked_ns",
                               sqlite3_column_type(q, 4) == SQLITE_NULL ? json_null()
                                                                        : json_integer(sqlite3_column_int64(q, 4)))) {
    json_decref(o);
    o = NULL;
  }
  return o;
}

/* Sessions (rows with a user_id) are not listed: they are browser logins,
 * not keys anyone handed out. */
int lt__sq_key_list(lt_store_t *st, int64_t project_id, json_t **out) {
  if (project_id > 0)
    return read_list(LT__SQ(st),
                     "SELECT k.id, k.public_key, p.name, k.created_ns, k.revoked_ns FROM api_keys k"
                     " JOIN projects p ON p.id = k.project_id WHERE k.project_id = ?1 AND k.user_id IS NULL"
                     " ORDER BY k.id",
                     project_id, true, key_row, out);
  return read_list(LT__SQ(st),
                   "SELECT k.id, k.public_key, p.name, k.created_ns, k.revoked_ns FROM api_keys k"
                   " JOIN projects p ON p.id = k.project_id WHERE k.user_id IS NULL ORDER BY k.id",
                   0, false, key_row, out);
}

static int bind_revoke(sqlite3_stmt *st, const void *arg) {
  int src = sqlite3_bind_text(st, 1, arg, -1, SQLITE_STATIC);
  if (src == SQLITE_OK) src = sqlite3_bind_int64(st, 2, now_ns());
  return src;
}

int lt__sq_key_revoke(lt_store_t *st, const char *public_key) {
  if (!public_key || !*public_key) return LT_ENOTFOUND;
  int changes = 0;
  /* Revoking twice keeps the first time and still succeeds. */
  int rc = admin_write(LT__SQ(st),
                       "UPDATE api_keys SET revoked_ns = coalesce(revoked_ns, ?2) WHERE public_key = ?1",
                       bind_revoke, public_key, &changes, NULL);
  if (rc == 0 && changes == 0) rc = LT_ENOTFOUND;
  return rc;
}

int lt__sq_key_count(lt_store_t *st, int64_t *n) {
  lt__sq_t *s = LT__SQ(st);
  lt__sq_reader_t *r = lt__sq_reader_get(s);
  sqlite3_stmt *q = NULL;
  int rc = 0;
  int src = sqlite3_prepare_v2(r->db, "SELECT count(*) FROM api_keys WHERE revoked_ns IS NULL AND user_id IS NULL", -1, &q, NULL);
  if (src == SQLITE_OK) src = sqlite3_step(q);
  if (src == SQLITE_ROW) *n = sqlite3_column_int64(q, 0);
  else rc = lt__sq_fail(r->db, src, "counting keys");
  sqlite3_finalize(q);
  lt__sq_reader_put(s, r);
  return rc;
}

/* ---- users and sessions ---------------------------------------------------- */

typedef struct {
  const char *name, *hash;
} user_args_t;

static int bind_user(sqlite3_stmt *st, const void *arg) {
  const user_args_t *u = arg;
  int src = sqlite3_bind_text(st, 1, u->name, -1, SQLITE_STATIC);
  if (src == SQLITE_OK) src = sqlite3_bind_text(st, 2, u->hash, -1, SQLITE_STATIC);
  if (src == SQLITE_OK) src = sqlite3_bind_int64(st, 3, now_ns());
  return src;
}

int lt__sq_user_create(lt_store_t *st, const char *name, const char *password_hash, int64_t *id) {
  if (!name || !*name || strlen(name) > LT_USER_NAME_MAX || !password_hash || !*password_hash ||
      strlen(password_hash) >= sizeof ((lt_user_t *)0)->password_hash)
    return LT_EINVAL;
  user_args_t u = {name, password_hash};
  int64_t rowid = 0;
  int rc = admin_write(LT__SQ(st), "INSERT INTO users(name, password_hash, created_ns) VALUES(?1, ?2, ?3)",
                       bind_user, &u, NULL, &rowid);
  if (rc == 0 && id) *id = rowid;
  return rc;
}

/* One user row by name (name non-NULL) or by id. */
static int user_read(lt__sq_t *s, const char *name, int64_t id, lt_user_t *out) {
  lt__sq_reader_t *r = lt__sq_reader_get(s);
  sqlite3_stmt *q = NULL;
  int rc = 0;
  int src = sqlite3_prepare_v2(r->db,
                               name ? "SELECT id, name, password_hash, created_ns FROM users WHERE name = ?1"
                                    : "SELECT id, name, password_hash, created_ns FROM users WHERE id = ?1",
                               -1, &q, NULL);
  if (src == SQLITE_OK) src = name ? sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC) : sqlite3_bind_int64(q, 1, id);
  if (src == SQLITE_OK) src = sqlite3_step(q);
  if (src == SQLITE_ROW) {
    memset(out, 0, sizeof *out);
    out->id = sqlite3_column_int64(q, 0);
    copy_text(out->name, sizeof out->name, q, 1);
    copy_text(out->password_hash, sizeof out->password_hash, q, 2);
    out->created_ns = sqlite3_column_int64(q, 3);
  } else if (src == SQLITE_DONE) {
    rc = LT_ENOTFOUND;
  } else {
    rc = lt__sq_fail(r->db, src, "finding a user");
  }
  sqlite3_finalize(q);
  lt__sq_reader_put(s, r);
  return rc;
}

int lt__sq_user_find(lt_store_t *st, const char *name, lt_user_t *out) {
  if (!name || !*name) return LT_ENOTFOUND;
  return user_read(LT__SQ(st), name, 0, out);
}

int lt__sq_user_get(lt_store_t *st, int64_t id, lt_user_t *out) { return user_read(LT__SQ(st), NULL, id, out); }

int lt__sq_user_list(lt_store_t *st, json_t **out) {
  return read_list(LT__SQ(st), "SELECT id, name, created_ns FROM users ORDER BY id", 0, false, project_row, out);
}

int lt__sq_user_count(lt_store_t *st, int64_t *n) {
  lt__sq_t *s = LT__SQ(st);
  lt__sq_reader_t *r = lt__sq_reader_get(s);
  sqlite3_stmt *q = NULL;
  int rc = 0;
  int src = sqlite3_prepare_v2(r->db, "SELECT count(*) FROM users", -1, &q, NULL);
  if (src == SQLITE_OK) src = sqlite3_step(q);
  if (src == SQLITE_ROW) *n = sqlite3_column_int64(q, 0);
  else rc = lt__sq_fail(r->db, src, "counting users");
  sqlite3_finalize(q);
  lt__sq_reader_put(s, r);
  return rc;
}

typedef struct {
  int64_t project_id, user_id, expires_ns;
  const char *public_key, *secret_hash;
} session_args_t;

static int bind_session(sqlite3_stmt *st, const void *arg) {
  const session_args_t *a = arg;
  int src = sqlite3_bind_int64(st, 1, a->project_id);
  if (src == SQLITE_OK) src = sqlite3_bind_text(st, 2, a->public_key, -1, SQLITE_STATIC);
  if (src == SQLITE_OK) src = sqlite3_bind_text(st, 3, a->secret_hash, -1, SQLITE_STATIC);
  if (src == SQLITE_OK) src = sqlite3_bind_int64(st, 4, now_ns());
  if (src == SQLITE_OK) src = sqlite3_bind_int64(st, 5, a->user_id);
  if (src == SQLITE_OK) src = sqlite3_bind_int64(st, 6, a->expires_ns);
  return src;
}

static int bind_now(sqlite3_stmt *st, const void *arg) {
  (void)arg;
  return sqlite3_bind_int64(st, 1, now_ns());
}

int lt__sq_session_create(lt_store_t *st, int64_t project_id, int64_t user_id, const char *public_key,
                          const char *secret_hash, int64_t expires_ns, int64_t *id) {
  if (!public_key || !*public_key || !secret_hash || !*secret_hash || user_id <= 0 || expires_ns <= 0)
    return LT_EINVAL;
  lt__sq_t *s = LT__SQ(st);
  /* Sessions that can no longer be used are kept no longer than the next
   * login; a failure here only leaves rows behind. */
  admin_write(s, "DELETE FROM api_keys WHERE user_id IS NOT NULL AND (expires_ns <= ?1 OR revoked_ns IS NOT NULL)",
              bind_now, NULL, NULL, NULL);
  session_args_t a = {project_id, user_id, expires_ns, public_key, secret_hash};
  int changes = 0;
  int64_t rowid = 0;
  int rc = admin_write(s,
                       "INSERT INTO api_keys(project_id, public_key, secret_hash, created_ns, user_id, expires_ns)"
                       " SELECT ?1, ?2, ?3, ?4, ?5, ?6 WHERE EXISTS (SELECT 1 FROM projects WHERE id = ?1)"
                       " AND EXISTS (SELECT 1 FROM users WHERE id = ?5)",
                       bind_session, &a, &changes, &rowid);
  if (rc == 0 && changes == 0) rc = LT_ENOTFOUND;
  if (rc == 0 && id) *id = rowid;
  return rc;
}
