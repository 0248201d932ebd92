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
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "core/buf.h"
#include "core/slice.h"
#include "pipeline/batch.h"

typedef struct lt_store lt_store_t;

typedef enum {
  LT_DURABILITY_FULL = 0,    /* fsync the WAL at every commit: survives power loss */
  LT_DURABILITY_PROCESS = 1  /* survives a process crash (kill -9), not power loss */
} lt_durability_t;

/* How span payloads are compressed on ingest (reads understand every one). */
typedef enum {
  LT_COMPRESS_LZ4 = 0, /* fastest: about twice zstd-1's speed, ~40% more bytes */
  LT_COMPRESS_ZSTD = 1, /* zstd level 1: smallest */
  LT_COMPRESS_NONE = 2
} lt_compression_t;

typedef struct {
  const char *data_dir;        /* SQLite: directory holding lanterna.db */
  lt_durability_t durability;
  lt_compression_t compression;
  int64_t retention_ns;        /* 0 = keep forever */
  int read_connections;        /* pool size for readers, >= 1 */
  size_t cache_bytes;          /* page cache per connection */
  /* Tests: no full-text indexing thread; the index is built only when the
   * test asks (SQLite: lt__sq_search_catch_up), so what is indexed when
   * is up to the test. */
  bool search_by_hand;
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
  /* Scores (appended): traces (spans, for the span search) that have a
   * score named score_name with a value in [score_min, score_max] (each
   * bound only when its has_ flag is set); feedback 1/-1: a thumbs up /
   * down user_feedback score, 0 = no filter. Trace filters match scores on
   * the trace or on any of its spans. */
  lt_str_t score_name;
  bool has_score_min, has_score_max;
  double score_min, score_max;
  int feedback;
} lt_query_t;

/* Initialises q with no filters, sort by start descending, limit 50. */
void lt_query_init(lt_query_t *q, int64_t project_id);

/* Metrics over rollups (docs/rollups.md) or, for user/session/tag, over
 * the traces table. */
typedef enum {
  LT_GROUP_NONE = 0, LT_GROUP_MODEL, LT_GROUP_PROVIDER, LT_GROUP_NAME, LT_GROUP_KIND, LT_GROUP_STATUS,
  LT_GROUP_ENVIRONMENT, LT_GROUP_FEATURE, LT_GROUP_USER, LT_GROUP_SESSION, LT_GROUP_TAG
} lt_group_t;

/* The figures a metrics answer can hold (the `metrics=` names). */
#define LT_METRIC_FIELDS(X)                                                                             \
  X(COUNT, "count") X(TRACES, "traces") X(ERRORS, "errors") X(ERROR_RATE, "error_rate")                  \
  X(LAT_P50, "latency_p50_ms") X(LAT_P90, "latency_p90_ms") X(LAT_P95, "latency_p95_ms")                   \
  X(LAT_P99, "latency_p99_ms") X(TTFT_P50, "ttft_p50_ms") X(TTFT_P95, "ttft_p95_ms")                       \
  X(TTFT_P99, "ttft_p99_ms") X(TPS_P50, "tps_p50") X(INPUT, "input_tokens") X(OUTPUT, "output_tokens")   \
  X(CACHE_READ, "cache_read_tokens") X(CACHE_WRITE, "cache_write_tokens")                                \
  X(REASONING, "reasoning_tokens") X(TOTAL, "total_tokens") X(TPR, "tokens_per_request")                 \
  X(TPR_P50, "tokens_per_request_p50") X(COST, "cost_usd") X(CPR, "cost_per_request")                    \
  X(UNPRICED, "unpriced_spans")
typedef enum {
#define LT_MF_ENUM_(e, name) LT_MF_##e,
  LT_METRIC_FIELDS(LT_MF_ENUM_)
#undef LT_MF_ENUM_
  LT_MF__COUNT
} lt_metric_field_t;
extern const char *const lt_metric_field_names[LT_MF__COUNT];
#define LT_MF_ALL ((1u << LT_MF__COUNT) - 1)

typedef struct {
  int64_t project_id;
  int64_t from_ns, to_ns;        /* [from, to), aligned to the interval by the caller */
  int64_t interval_s;            /* 60, 3600 or 86400 */
  lt_group_t group_by;
  int max_groups;                /* largest groups kept; the rest fold into "(other)" */
  /* Filters; empty / -1 = none. Only rollup dimensions. */
  lt_str_t model, provider, name, environment, feature;
  int kind, status;
  uint32_t fields;               /* bit (1 << lt_metric_field_t) per figure wanted */
} lt_metrics_query_t;

typedef struct {
  int64_t id, project_id;
  char public_key[64];
  char project_name[128];
  int64_t created_ns, revoked_ns; /* revoked_ns 0 = active */
  /* Browser sessions are keys too (docs/api.md, Authentication): user_id
   * is the logged-in user (0 for a project API key), expires_ns when the
   * key stops working (0 = never). */
  int64_t user_id, expires_ns;
} lt_key_info_t;

/* An admin account (lanterna users create). password_hash is the encoded
 * scrypt string of net/password.h, never the password. */
#define LT_USER_NAME_MAX 100
typedef struct {
  int64_t id;
  char name[LT_USER_NAME_MAX + 1];
  char password_hash[256];
  int64_t created_ns;
} lt_user_t;

typedef struct {
  int64_t spans, traces, logs, points;
  int64_t db_bytes;
  int64_t fts_lag;               /* spans not yet in the full-text index */
  int64_t rollup_lag;            /* spans not yet counted in the rollup rows (docs/rollups.md) */
  int64_t keys_lag;              /* traces not yet in trace_keys (docs/storage.md); lookups read them directly */
} lt_store_stats_t;

/* ---- scores (evaluations and user feedback) ------------------------------ */

typedef enum { LT_SCORE_NUMERIC = 0, LT_SCORE_BOOLEAN, LT_SCORE_CATEGORICAL } lt_score_type_t;
typedef enum { LT_SCORE_API = 0, LT_SCORE_HUMAN, LT_SCORE_EVALUATOR } lt_score_source_t;

/* The name user feedback (thumbs up 1 / down -1) is stored under. */
#define LT_SCORE_FEEDBACK "user_feedback"
/* Limits the API enforces (in characters). */
#define LT_SCORE_NAME_MAX 200
#define LT_SCORE_LABEL_MAX 200
#define LT_SCORE_COMMENT_MAX 10000
#define LT_SCORE_KEY_MAX 200
#define LT_SCORE_SESSION_MAX 1000
#define LT_SCORE_BATCH_MAX 1000

/* One score to store. The target is a trace (optionally one of its spans)
 * or a session, never both; the trace need not be stored yet. Numeric and
 * boolean scores have value (boolean 0 or 1), categorical ones a non-empty
 * string_value. Empty slices are absent. */
typedef struct {
  bool has_trace, has_span;
  uint8_t trace_id[16], span_id[8];
  lt_str_t session_id;
  lt_str_t name;
  lt_score_type_t data_type;
  double value;
  lt_str_t string_value;
  lt_score_source_t source;
  lt_str_t comment;
  lt_str_t idempotency_key;  /* per project; a repeat is not stored again */
  int64_t time_ns;           /* 0 = now */
} lt_score_t;

/* What storing one score did: its row id, and whether an earlier score
 * with the same idempotency key already had it (nothing was inserted). */
typedef struct {
  int64_t id;
  bool duplicate;
} lt_score_result_t;

/* Filters for scores_list; empty slices and has_ flags false = no filter. */
typedef struct {
  int64_t project_id;
  bool has_trace, has_span;
  uint8_t trace_id[16], span_id[8];
  lt_str_t session_id, name;
  int source;                    /* lt_score_source_t or -1 */
  int data_type;                 /* lt_score_type_t or -1 */
  int64_t from_ns, to_ns;        /* score time [from, to); 0 = open */
  bool has_min, has_max;
  double min_value, max_value;
  int limit;                     /* 1..1000 */
  lt_str_t cursor;
} lt_score_query_t;

/* No filters, newest first, limit 50. */
static inline void lt_score_query_init(lt_score_query_t *q, int64_t project_id) {
  memset(q, 0, sizeof *q);
  q->project_id = project_id;
  q->source = -1;
  q->data_type = -1;
  q->limit = 50;
}
/* The names the API and the database use. */
static inline const char *lt_score_type_name(lt_score_type_t t) {
  return t == LT_SCORE_BOOLEAN ? "boolean" : t == LT_SCORE_CATEGORICAL ? "categorical" : "numeric";
}
static inline const char *lt_score_source_name(lt_score_source_t s) {
  return s == LT_SCORE_HUMAN ? "human" : s == LT_SCORE_EVALUATOR ? "evaluator" : "api";
}

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
  /* Scores (appended). */
  int (*score_add)(lt_store_t *s, int64_t project_id, const lt_score_t *scores, size_t n,
                   lt_score_result_t *results);
  int (*scores_list)(lt_store_t *s, const lt_score_query_t *q, json_t **out);
  int (*scores_summary)(lt_store_t *s, int64_t project_id, int64_t from_ns, int64_t to_ns,
                        int64_t bucket_seconds, json_t **out);
  /* Metrics and prices (appended). metrics: see lt_metrics_query_t and
   * docs/api.md for the shape. Price overrides are price-file JSON texts
   * per project, oldest first: prices_list gives [{project_id, body,
   * created_ns}] grouped by project
   * (project_id < 0: every project). models_unpriced: models whose spans
   * arrived with tokens but no price, from the day rollups. */
  int (*metrics)(lt_store_t *s, const lt_metrics_query_t *q, json_t **out);
  /* The same answer as JSON text appended to out (what the API serves:
   * no tree is built for tens of thousands of figures). */
  int (*metrics_text)(lt_store_t *s, const lt_metrics_query_t *q, lt_buf_t *out);
  int (*prices_add)(lt_store_t *s, int64_t project_id, const char *body, size_t len);
  int (*prices_clear)(lt_store_t *s, int64_t project_id);
  int (*prices_list)(lt_store_t *s, int64_t project_id, json_t **out);
  int (*models_unpriced)(lt_store_t *s, int64_t project_id, int64_t from_ns, int64_t to_ns, json_t **out);
  /* Users and browser sessions (appended). A session is an api_keys row
   * with user_id set: key_list and key_count leave sessions out.
   * user_create: LT_EEXISTS for a taken name. user_find (by name) and
   * user_get (by id): LT_ENOTFOUND. user_list: [{id,name,created_ns}]
   * (never the hashes). session_create stores a key of project_id for
   * user_id that stops working at expires_ns (and deletes sessions that
   * have expired or were revoked); LT_ENOTFOUND when the project or the
   * user does not exist. */
  int (*user_create)(lt_store_t *s, const char *name, const char *password_hash, int64_t *id);
  int (*user_find)(lt_store_t *s, const char *name, lt_user_t *out);
  int (*user_get)(lt_store_t *s, int64_t id, lt_user_t *out);
  int (*user_list)(lt_store_t *s, json_t **out);
  int (*user_count)(lt_store_t *s, int64_t *n);
  int (*session_create)(lt_store_t *s, int64_t project_id, int64_t user_id, const char *public_key,
                        const char *secret_hash, int64_t expires_ns, int64_t *id);
  /* Optional (appended): prepares a batch for write on the calling thread
   * (any thread, before the batch is queued), so the writer thread, which
   * the whole store waits on, does less. Sets b->packed; a batch it was
   * not called on (or that it failed on) is prepared by write itself. */
  int (*prepack)(lt_store_t *s, lt_batch_t *b);
  /* Optional (appended): makes every write committed so far durable. Set
   * when the backend's writes commit without waiting for the disk (see
   * lt_store_t.defer_sync); callable from any one thread at a time,
   * concurrently with write. Returns 0 or LT_EIO. */
  int (*sync)(lt_store_t *s);
} lt_store_ops_t;

struct lt_store {
  const lt_store_ops_t *ops;
  /* True when write returns once committed but not yet on disk: whoever
   * acknowledges writes calls ops->sync first (the writer does it on a
   * thread of its own, so the next transaction overlaps the disk flush). */
  bool defer_sync;
  /* Writes queued behind the one in progress, kept by whoever queues
   * them (the writer), and requests still being decoded that will write
   * (kept by the writer too, lt_writer_expect). While some wait, write may
   * leave derived data (rollups) to a later write, for about a second;
   * the write that finds none queued or coming as it commits brings it up
   * to date. So a lone client that waits for its write sees it in the
   * rollups at once; under concurrent load they trail by up to about a
   * second. */
  atomic_size_t queued;
  atomic_int incoming;
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
 * Returns 0 once committed (durable only after lt_store_sync when the store
 * defers syncing), else an LT_E* error and nothing is stored. */
static inline int lt_store_write(lt_store_t *s, lt_batch_t *const *b, size_t n) { return s->ops->write(s, b, n); }
/* Does a bounded slice of background work (retention deletes, rollups,
 * keys); sets *more when more is pending. */
static inline int lt_store_maintain(lt_store_t *s, int64_t now, bool *more) { return s->ops->maintain(s, now, more); }
/* Makes what write committed durable; 0 at once when nothing is deferred. */
static inline int lt_store_sync(lt_store_t *s) { return s->defer_sync && s->ops->sync ? s->ops->sync(s) : 0; }

/* Stores n scores of one project in one transaction, all or nothing, and
 * fills results[0..n-1]. A score whose (project, idempotency_key) is
 * already stored (earlier, or earlier in the same call) is not inserted:
 * its result carries the existing id and duplicate = true. Returns 0,
 * LT_EINVAL (a score breaks the rules of lt_score_t), LT_EFULL (the
 * database stayed locked; retry) or LT_EDB/LT_ENOMEM. */
static inline int lt_store_score_add(lt_store_t *s, int64_t project_id, const lt_score_t *sc, size_t n,
                                     lt_score_result_t *res) {
  return s->ops->score_add(s, project_id, sc, n, res);
}
/* {"data":[score...],"next_cursor":...}, newest first (score time, then
 * id). A score is {"id","trace_id","span_id","session_id","name",
 * "data_type","value","string_value","source","comment","time","time_ns",
 * "idempotency_key"} (absent values null). LT_EINVAL for a bad cursor. */
static inline int lt_store_scores_list(lt_store_t *s, const lt_score_query_t *q, json_t **out) {
  return s->ops->scores_list(s, q, out);
}
/* Aggregates a project's scores whose time is in [from_ns, to_ns) (0 =
 * open) for the metrics API. bucket_seconds > 0 adds per-bucket figures
 * (buckets start at multiples of it since the epoch; only buckets holding
 * scores are listed, oldest first, at most LT_SCORE_SUMMARY_MAX_BUCKETS per
 * name); 0 leaves "buckets" empty; negative is LT_EINVAL. Shape:
 *
 *   {"from_ns":…,"to_ns":…,"bucket_seconds":…,
 *    "scores":[                          (by name, at most 200 names)
 *      {"name":"accuracy","count":12,    (every score of that name)
 *       "data_types":["numeric"],        (the types seen under the name)
 *       "value_count":10,                (numeric and boolean scores)
 *       "avg":0.73,"min":0.1,"max":1,    (over those; null when none)
 *       "labels":{"good":2},             (categorical: label → count,
 *                                         the 100 most frequent)
 *       "buckets":[{"start_ns":…,"count":3,"value_count":3,"avg":0.5}]}],
 *    "feedback":{"up":3,"down":1,"traces":4}}
 *
 * "feedback" counts user_feedback scores with a positive (up) and a
 * negative (down) value, and the distinct traces that got any; the
 * feedback rate is traces / traces in the window, which the caller knows. */
#define LT_SCORE_SUMMARY_MAX_BUCKETS 2000
static inline int lt_store_scores_summary(lt_store_t *s, int64_t project_id, int64_t from_ns, int64_t to_ns,
                                          int64_t bucket_seconds, json_t **out) {
  return s->ops->scores_summary(s, project_id, from_ns, to_ns, bucket_seconds, out);
}

#endif
