/* The storage interface. Every backend (store/sqlite.c now, ClickHouse
 * later) implements lt_store_ops_t; the rest of the server calls only the
 * lt_store_* functions below and never sees SQL. Query results come back as
 * jansson objects in the shapes documented in docs/api.md, so the JSON the
 * API serves is the same whatever the backend.
 *
 * Threads: lt_store_write and lt_store_maintain are called only from the
 * single writer thread. Every other function is safe to call from any
 * thread concurrently (backends keep a pool of read connections).
 * Ownership: lt_store_write does not take the batches (the writer frees
 * them after completing them); *out JSON objects belong to the caller. */
#ifndef LT_STORE_H
#define LT_STORE_H
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "core/slice.h"
#include "pipeline/batch.h"

typedef struct lt_store lt_store_t;

typedef enum {
  LT_DURABILITY_FULL = 0,    /* fsync the WAL at every commit: survives power loss */
  LT_DURABILITY_PROCESS = 1  /* survives a process crash (kill -9), not power loss */
} lt_durability_t;

typedef struct {
  const char *data_dir;        /* SQLite: directory holding lanterna.db */
  lt_durability_t durability;
  int64_t retention_ns;        /* 0 = keep forever */
  int read_connections;        /* pool size for readers, >= 1 */
  size_t cache_bytes;          /* page cache per connection */
} lt_store_config_t;

typedef enum { LT_SORT_START = 0, LT_SORT_DURATION, LT_SORT_COST } lt_sort_t;

/* Filters for trace, span and session listing. Empty slices and -1 mean
 * "no filter". Slices are not NUL-terminated. */
typedef struct {
  int64_t project_id;
  int64_t from_ns, to_ns;        /* start time range [from, to); 0 = open */
  lt_str_t name, user_id, session_id, model, tag, q;
  int status;                    /* lt_status_t or -1 */
  int kind;                      /* lt_kind_t or -1 (spans only) */
  int64_t min_duration_ns;       /* -1 = none */
  lt_sort_t sort;
  bool ascending;
  int limit;                     /* 1..1000 */
  lt_str_t cursor;               /* opaque, from a previous page's next_cursor */
  bool has_trace_id;             /* spans only: restrict to this trace */
  uint8_t trace_id[16];
} lt_query_t;

/* Initialises q with no filters, sort by start descending, limit 50. */
void lt_query_init(lt_query_t *q, int64_t project_id);

typedef struct {
  int64_t id, project_id;
  char public_key[64];
  char project_name[128];
  int64_t created_ns, revoked_ns; /* revoked_ns 0 = active */
} lt_key_info_t;

typedef struct {
  int64_t spans, traces, logs, points;
  int64_t db_bytes;
  int64_t fts_lag;               /* spans not yet in the full-text index */
} lt_store_stats_t;

typedef struct lt_store_ops {
  const char *name;
  int (*open)(const lt_store_config_t *cfg, lt_store_t **out);
  void (*close)(lt_store_t *s);
  int (*write)(lt_store_t *s, lt_batch_t *const *batches, size_t n);
  int (*maintain)(lt_store_t *s, int64_t now_ns, bool *more);
  int (*traces_list)(lt_store_t *s, const lt_query_t *q, json_t **out);
  int (*trace_get)(lt_store_t *s, int64_t project_id, const uint8_t trace_id[16], json_t **out);
  int (*spans_list)(lt_store_t *s, const lt_query_t *q, json_t **out);
  int (*sessions_list)(lt_store_t *s, const lt_query_t *q, json_t **out);
  int (*session_get)(lt_store_t *s, int64_t project_id, lt_str_t session_id, json_t **out);
  int (*project_create)(lt_store_t *s, const char *name, int64_t *id);
  int (*project_find)(lt_store_t *s, const char *name, int64_t *id);
  int (*project_list)(lt_store_t *s, json_t **out);
  int (*key_create)(lt_store_t *s, int64_t project_id, const char *public_key,
                    const char *secret_hash, int64_t *id);
  int (*key_find)(lt_store_t *s, const char *secret_hash, lt_key_info_t *out);
  int (*key_list)(lt_store_t *s, int64_t project_id, json_t **out);
  int (*key_revoke)(lt_store_t *s, const char *public_key);
  int (*key_count)(lt_store_t *s, int64_t *n); /* active keys, all projects */
  int (*stats)(lt_store_t *s, lt_store_stats_t *out);
} lt_store_ops_t;

struct lt_store {
  const lt_store_ops_t *ops;
};

extern const lt_store_ops_t lt_store_sqlite_ops;

/* Finds a backend by name ("sqlite"); NULL when there is none. */
const lt_store_ops_t *lt_store_backend(const char *name);

/* Opens the backend; returns 0 or an LT_E* error (LT_ECONFIG/LT_EIO/LT_EDB)
 * after logging what went wrong. */
static inline int lt_store_open(const lt_store_ops_t *ops, const lt_store_config_t *cfg, lt_store_t **out) {
  return ops->open(cfg, out);
}
static inline void lt_store_close(lt_store_t *s) { if (s) s->ops->close(s); }

/* Stores the spans, logs and points of n batches in one transaction (all or
 * nothing) and sets each batch's n_inserted. Spans already stored under the
 * same (project, trace_id, span_id) are skipped, so retries are idempotent.
 * Returns 0 once committed, else an LT_E* error and nothing is stored. */
static inline int lt_store_write(lt_store_t *s, lt_batch_t *const *b, size_t n) { return s->ops->write(s, b, n); }
/* Does a bounded slice of background work (retention deletes, full-text
 * indexing); sets *more when more is pending. */
static inline int lt_store_maintain(lt_store_t *s, int64_t now, bool *more) { return s->ops->maintain(s, now, more); }

#endif
