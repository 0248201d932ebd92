/* Private to the SQLite backend (store/sqlite*.c): the store object, the
 * reader pool, the span payload codec and small helpers shared by the
 * schema, write, query and admin files. docs/storage.md explains the
 * schema and why the write path looks the way it does. */
#ifndef LT_SQLITE_INTERNAL_H
#define LT_SQLITE_INTERNAL_H
#include <pthread.h>
#include <stdatomic.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>
#include <zstd.h>
#include "core/buf.h"
#include "core/slice.h"
#include "store/store.h"

/* Statements cached on the writer connection (write and maintain only). */
enum {
  WS_BEGIN,
  WS_COMMIT,
  WS_ROLLBACK,
  WS_NEXT_TRACE_ID,
  WS_TRACE_FIND,
  WS_TRACE_INSERT,
  WS_TRACE_UPDATE,
  WS_MODEL_INSERT,
  WS_SPAN_INSERT,
  WS_LOG_INSERT,
  WS_POINT_INSERT,
  WS_META_GET,
  WS_META_SET,
  WS_META_ADD,
  WS_MAX_SPAN_ID,
  WS_PROJECT_IDS,
  WS_OLD_TRACES,
  WS_TRACE_SPANS,
  WS_SPAN_DELETE,
  WS_MODEL_DELETE,
  WS_TRACE_DELETE,
  WS_LOGS_EXPIRE,
  WS_POINTS_EXPIRE,
  WS_SCORE_INSERT, /* inline scores of new spans (sqlite_scores.c) */
  WS_SCORES_EXPIRE,
  WS_NEXT_CHUNK_ID,
  WS_CHUNK_INSERT,
  WS_CHUNKS_DELETE,
  WS_BLOCK_INSERT,
  WS_BLOCKS_EXPIRE,
  WS_MAX_TRACE_ID,
  WS_KEYS_INDEX,  /* trace_keys for the traces in an id range */
  WS_MODELS_INDEX, /* trace_models for the traces in an id range */
  WS_KEYS_ADD,    /* trace_keys for one trace, from its row */
  WS_KEYS_DELETE, /* one trace's trace_keys, as its row has them */
  WS_RUN_INSERT,  /* trace_runs: one trace's new spans of a transaction */
  WS_SPAN_IDS,    /* the span ids a trace has, through its runs */
  WS_RUNS_DELETE,
  WS__COUNT
};

/* Decodes stored payloads for one connection: inline ones, and ones that
 * live in a chunk, which it reads and keeps decompressed in a small cache
 * (the spans of a trace usually share one chunk). */
#define LT__SQ_CHUNK_CACHE 4
typedef struct {
  sqlite3 *db;
  sqlite3_stmt *get; /* prepared on first use */
  ZSTD_DCtx *dz;
  lt_buf_t scratch;  /* an inline payload, decompressed */
  struct {
    int64_t id;      /* 0: empty slot */
    lt_buf_t buf;
  } cache[LT__SQ_CHUNK_CACHE];
  unsigned next;     /* the slot to evict next */
} lt__sq_unpacker_t;

/* One pooled read connection with its payload decoder. */
typedef struct {
  sqlite3 *db;
  lt__sq_unpacker_t up;
} lt__sq_reader_t;

typedef struct lt__sq_rollup lt__sq_rollup_t;
typedef struct lt__sq_ckpt lt__sq_ckpt_t;
typedef struct lt__sq_idcache lt__sq_idcache_t;
typedef struct lt__sq_search lt__sq_search_t;

typedef struct {
  lt_store_t base; /* first: the store is handed out as &base */
  char *path;
  lt_durability_t durability;
  int64_t retention_ns;
  int64_t cache_kib;
  /* Writer side: touched only from the writer thread. */
  sqlite3 *wdb;
  sqlite3_stmt *ws[WS__COUNT];
  lt__sq_unpacker_t wup; /* the writer's payload decoder (maintenance) */
  int64_t next_chunk;     /* payload chunk ids handed out so far + 1 */
  lt__sq_ckpt_t *ckpt;    /* the checkpoint thread (sqlite_ckpt.c) */
  int64_t last_write_ns;  /* monotonic time of the last write (lt__sq_ckpt_idle) */
  int64_t wal_idle_ns, wal_rest_bytes; /* LT__SQ_WAL_IDLE_NS, _REST_BYTES (tests lower them) */
  int64_t keys_batch;     /* LT__SQ_KEYS_BATCH (tests lower it) */
  int64_t keys_last_ns;   /* monotonic time of the last keying slice */
  lt__sq_idcache_t *idcache; /* span ids of big recent traces (sqlite_write.c) */
  /* Span ids below this were handed out once (retention took the newest
   * spans): the next span gets floor + 1, never an id used before. 0: no
   * floor (meta span_floor). */
  int64_t span_floor;
  int64_t span_first_id; /* the id the write's first new span gets (0: SQLite's choice) */
  /* The full-text index (sqlite_search.c): its own file and thread. */
  char *search_path;
  lt__sq_search_t *search;
  int64_t search_part_spans; /* span ids per full-text partition (tests lower it) */
  atomic_bool space_short;   /* the last write failed for want of disk space */
  lt_compression_t compression;
  /* Durability full: the writer commits with synchronous=NORMAL and
   * lt__sq_sync fdatasyncs the WAL through a descriptor of its own. */
  pthread_mutex_t sync_mu;
  int wal_fd;
  lt__sq_rollup_t *rollup;
  /* Reader pool. */
  pthread_mutex_t mu;
  pthread_cond_t cv;
  lt__sq_reader_t *readers;
  int n_readers;
  int *free_idx;
  int n_free;
  /* Key lookups (auth-cache misses, which run on HTTP loop threads) get a
   * connection of their own, so slow queries holding every pooled reader
   * can never stall request handling. */
  pthread_mutex_t key_mu;
  sqlite3 *key_db;
} lt__sq_t;

#define LT__SQ(s) ((lt__sq_t *)(s))

/* Meta keys (table meta). */
#define LT__SQ_META_SPAN_FLOOR "span_floor"
/* Random per database (migration 10): which one a search file was built from. */
#define LT__SQ_META_INSTANCE "instance"
/* PRAGMA application_id of Lanterna's files ("LTNA"). */
#define LT__SQ_APPLICATION_ID 0x4C544E41
#define LT__SQ_META_KEYS_HWM "keys_hwm" /* traces up to this id are in trace_keys and trace_models */
/* trace_keys.kind (migration 8 and the writer's statements spell them 1 and 2). */
enum { LT__SQ_KEY_SESSION = 1, LT__SQ_KEY_USER = 2 };
#define LT__SQ_META_SPANS "n_spans"
#define LT__SQ_META_TRACES "n_traces"
#define LT__SQ_META_LOGS "n_logs"
#define LT__SQ_META_POINTS "n_points"

/* Traces keyed (trace_keys) per background slice. */
#define LT__SQ_KEYS_CHUNK 20000
/* Keying waits until this many traces are waiting (lookups read them
 * directly meanwhile), the writer has been idle for LT__SQ_KEYS_IDLE_NS,
 * or the last slice is LT__SQ_KEYS_DELAY_NS old: a slice writes each key
 * page it touches once, so small frequent slices rewrote the same pages
 * many times (docs/storage.md). */
#define LT__SQ_KEYS_BATCH 1024
#define LT__SQ_KEYS_IDLE_NS 1000000000LL
#define LT__SQ_KEYS_DELAY_NS 10000000000LL
/* Span ids per full-text partition (sqlite_search.c): retention drops a
 * partition once none of its spans is left. */
#define LT__SQ_SEARCH_PART_SPANS (1 << 20)
/* Rows deleted by retention per maintain call. */
#define LT__SQ_RETENTION_CHUNK 5000
/* trace_get returns at most this many spans (in start order). */
#define LT__SQ_TRACE_MAX_SPANS 10000
/* session_get returns at most this many traces (oldest first). */
#define LT__SQ_SESSION_MAX_TRACES 1000
/* A trace keeps at most this many distinct models and tags. */
#define LT__SQ_SET_MAX 64

/* ---- errors and statements (sqlite.c) ---------------------------------- */

/* Logs what failed (with SQLite's message) and maps the SQLite result code
 * to an LT_E* error: LT_ENOMEM for SQLITE_NOMEM, else LT_EDB. */
int lt__sq_fail(sqlite3 *db, int src, const char *what);
/* Runs SQL text with no parameters and no result rows. */
int lt__sq_exec(sqlite3 *db, const char *sql);
/* Binds a slice as TEXT (NULL when empty) with an explicit length; the
 * bytes must stay valid until the statement is reset. */
int lt__sq_bind_text(sqlite3_stmt *st, int i, lt_str_t s);
/* Binds a slice as TEXT, empty included (never NULL). */
int lt__sq_bind_text_nn(sqlite3_stmt *st, int i, lt_str_t s);
/* Binds v, or NULL when v is negative (an unknown count). */
int lt__sq_bind_known(sqlite3_stmt *st, int i, int64_t v);
/* Reads one integer meta value on db. */
int lt__sq_meta_get(sqlite3 *db, const char *key, int64_t *v);
/* The first column of the first row of sql (a row must come back). */
int lt__sq_int(sqlite3 *db, const char *sql, int64_t *v);

/* ---- operations, one file per group ------------------------------------- */

/* sqlite_write.c: the writer's statements, write and maintain. */
int lt__sq_prepare_writer(lt__sq_t *s);
int lt__sq_write(lt_store_t *st, lt_batch_t *const *batches, size_t n);
int lt__sq_maintain(lt_store_t *st, int64_t now_ns, bool *more);
/* sqlite_query.c */
int lt__sq_traces_list(lt_store_t *st, const lt_query_t *q, json_t **out);
int lt__sq_trace_get(lt_store_t *st, int64_t project_id, const uint8_t trace_id[16], json_t **out);
int lt__sq_spans_list(lt_store_t *st, const lt_query_t *q, json_t **out);
int lt__sq_sessions_list(lt_store_t *st, const lt_query_t *q, json_t **out);
int lt__sq_session_get(lt_store_t *st, int64_t project_id, lt_str_t session_id, json_t **out);
/* sqlite_admin.c */
int lt__sq_project_create(lt_store_t *st, const char *name, int64_t *id);
int lt__sq_project_find(lt_store_t *st, const char *name, int64_t *id);
int lt__sq_project_list(lt_store_t *st, json_t **out);
int lt__sq_key_create(lt_store_t *st, int64_t project_id, const char *public_key, const char *secret_hash,
                      int64_t *id);
int lt__sq_key_find(lt_store_t *st, const char *secret_hash, lt_key_info_t *out);
int lt__sq_key_list(lt_store_t *st, int64_t project_id, json_t **out);
int lt__sq_key_revoke(lt_store_t *st, const char *public_key);
int lt__sq_key_count(lt_store_t *st, int64_t *n);
int lt__sq_user_create(lt_store_t *st, const char *name, const char *password_hash, int64_t *id);
int lt__sq_user_find(lt_store_t *st, const char *name, lt_user_t *out);
int lt__sq_user_get(lt_store_t *st, int64_t id, lt_user_t *out);
int lt__sq_user_list(lt_store_t *st, json_t **out);
int lt__sq_user_count(lt_store_t *st, int64_t *n);
int lt__sq_session_create(lt_store_t *st, int64_t project_id, int64_t user_id, const char *public_key,
                          const char *secret_hash, int64_t expires_ns, int64_t *id);
int lt__sq_stats(lt_store_t *st, lt_store_stats_t *out);
/* List cursors (sqlite_query.c): hex of (version, tag, sort key, row id);
 * tag = list * 16 + sort * 2 + ascending, so a cursor only fits its list
 * and ordering. Decoding a cursor of another tag is LT_EINVAL. */
json_t *lt__sq_cursor_encode(int tag, int64_t key, int64_t id);
int lt__sq_cursor_decode(lt_str_t c, int tag, int64_t *key, int64_t *id);
#define LT__SQ_CUR_SCORES (4 * 16) /* newest first only */
/* sqlite_scores.c */
int lt__sq_score_add(lt_store_t *st, int64_t project_id, const lt_score_t *scores, size_t n,
                     lt_score_result_t *results);
int lt__sq_scores_list(lt_store_t *st, const lt_score_query_t *q, json_t **out);
int lt__sq_scores_summary(lt_store_t *st, int64_t project_id, int64_t from_ns, int64_t to_ns,
                          int64_t bucket_seconds, json_t **out);

/* ---- scores (sqlite_scores.c) ------------------------------------------- */

/* One score row; the API path and the writer (WS_SCORE_INSERT) share it.
 * A NULL idempotency key never conflicts. */
#define LT__SQ_SCORE_INSERT_SQL                                                                                \
  "INSERT INTO scores(project_id, trace_id, span_id, session_id, name, data_type, value, string_value,"       \
  " source, comment, time_ns, idempotency_key) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"     \
  " ON CONFLICT(project_id, idempotency_key) DO NOTHING"
/* Writer thread, inside the write transaction, for a span that was just
 * inserted: stores its inline scores (sp->scores). Malformed entries are
 * skipped; only a database failure is returned. */
int lt__sq_scores_insert_inline(lt__sq_t *s, int64_t project_id, const lt_span_t *sp);
/* Reads the scores of one trace on r (oldest first) and hands each to
 * place, which takes the object: has_span/span_id say whether it is on a
 * span (span_id as stored in spans.span_id). */
typedef int (*lt__sq_score_place_fn)(void *ctx, bool has_span, int64_t span_id, json_t *score);
int lt__sq_scores_of_trace(lt__sq_reader_t *r, int64_t project_id, const uint8_t trace_id[16],
                           lt__sq_score_place_fn place, void *ctx);

/* ---- reader pool (sqlite.c) -------------------------------------------- */

/* Takes a read connection, waiting while all are in use; never fails. */
lt__sq_reader_t *lt__sq_reader_get(lt__sq_t *s);
void lt__sq_reader_put(lt__sq_t *s, lt__sq_reader_t *r);
/* Opens a short-lived read-write connection for a rare admin write. */
int lt__sq_admin_open(lt__sq_t *s, sqlite3 **out);
/* Frees the writer's span-id cache (sqlite_write.c). */
void lt__sq_idcache_free(lt__sq_t *s);

/* The write-merging VFS (sqlite_vfs.c), registered on first call; NULL
 * when it could not be (connections then use SQLite's default). The
 * writer and admin connections open through it. */
const char *lt__sq_vfs_name(void);
typedef struct {
  uint64_t writes;  /* SQLite writes that went into a merged run */
  uint64_t flushes; /* merged runs written */
  uint64_t late;    /* runs still pending at a commit's publication: never expected */
} lt__sq_vfs_stats_t;
void lt__sq_vfs_stats(lt__sq_vfs_stats_t *out);

/* ---- checkpoints (sqlite_ckpt.c) ------------------------------------------ */

/* Moves WAL checkpoints from the writer's commits to a thread of their
 * own (after the writer connection is open). Stop before closing it. */
/* ---- the full-text index (sqlite_search.c) ------------------------------ */

/* <main path minus .db>.search.db, malloc'd (NULL: out of memory). */
char *lt__sq_search_path(const char *main_path);
/* Opens the index's file (making it if new) and its connections; the
 * thread starts with lt__sq_search_start. */
int lt__sq_search_open(lt__sq_t *s);
int lt__sq_search_start(lt__sq_t *s);
/* Stops the thread (after its current transaction) and closes. */
void lt__sq_search_close(lt__sq_t *s);
/* Indexes every stored span now (unless short of disk space, as the
 * thread would be), on the calling thread: tests, with search_by_hand. */
int lt__sq_search_catch_up(lt__sq_t *s);
/* A read connection on the main database, configured as the pool's. */
int lt__sq_reader_open(lt__sq_t *s, sqlite3 **out);

int lt__sq_ckpt_start(lt__sq_t *s);
void lt__sq_ckpt_stop(lt__sq_t *s);

/* Busy timeout of the writer and reader connections. */
#define LT__SQ_BUSY_TIMEOUT_MS 5000
/* The WAL keeps the size a burst grew it to (up to the writer's own
 * checkpoint at 256 MB): rewriting blocks it already has is cheaper than
 * truncating and growing it again. Once the writer has written nothing for
 * LT__SQ_WAL_IDLE_NS, a WAL larger than LT__SQ_WAL_REST_BYTES is given back. */
#define LT__SQ_WAL_IDLE_NS (10 * 1000000000LL)
#define LT__SQ_WAL_REST_BYTES (64LL << 20)
/* Writer thread (maintenance): truncates the WAL to nothing when the last
 * write is s->wal_idle_ns old and the WAL is larger than s->wal_rest_bytes.
 * Never waits: a reader on the WAL, or a checkpoint under way, leaves it
 * for a later call. True when it truncated. */
bool lt__sq_ckpt_idle(lt__sq_t *s, int64_t mono_ns);
/* Size of the file path + suffix, 0 when there is none. */
int64_t lt__sq_file_size(const char *path, const char *suffix);

/* ---- span payload (sqlite_payload.c) ----------------------------------- */

/* Fields of a span that live in the compressed payload blob rather than in
 * columns. The tag numbers are part of the on-disk format: never reuse
 * one. */
typedef enum {
  LT__P_STATUS_MESSAGE = 1,
  LT__P_ENVIRONMENT = 2,
  LT__P_RELEASE = 3,
  LT__P_SCOPE = 4,
  LT__P_PROVIDER = 5,
  LT__P_OPERATION = 6,
  LT__P_FINISH_REASON = 7,
  LT__P_PROMPT_NAME = 8,
  LT__P_PROMPT_VERSION = 9,
  LT__P_METADATA = 10,
  LT__P_INPUT = 11,
  LT__P_OUTPUT = 12,
  LT__P_INPUT_MESSAGES = 13,
  LT__P_OUTPUT_MESSAGES = 14,
  LT__P_DOCUMENTS = 15,
  LT__P_ATTRIBUTES = 16,
  LT__P_RESOURCE = 17,
  LT__P_EVENTS = 18,
  LT__P_LINKS = 19,
  LT__P_CACHE_READ_TOKENS = 20, /* numbers: 8 bytes little-endian */
  LT__P_CACHE_WRITE_TOKENS = 21,
  LT__P_REASONING_TOKENS = 22,
  LT__P_COST_INPUT = 23,
  LT__P_COST_OUTPUT = 24,
  LT__P_FEATURE = 25,
  LT__P_USAGE_ROLLUP = 26,      /* number: 1 when tokens summarise children */
  LT__P_SCORES = 27,            /* inline scores as carried by the span */
  LT__P_ELIDED = 28,            /* attributes stored as input/output (lt_span_t.elided) */
  LT__P__COUNT
} lt__p_field_t;

/* A decoded payload: slices into the buffer it was decoded from. Numbers
 * absent from the payload are -1. */
typedef struct {
  lt_str_t f[LT__P__COUNT];
  int64_t cache_read, cache_write, reasoning, cost_input, cost_output;
  bool usage_rollup;
} lt__sq_payload_t;

/* Appends the payload fields of sp (its field list) to raw. */
int lt__sq_payload_encode(const lt_span_t *sp, lt_buf_t *raw);
/* Frames raw for storage into out (reset first): compressed with codec
 * when that is smaller, else stored as is. zc is needed for zstd only. */
int lt__sq_payload_pack(ZSTD_CCtx *zc, lt_compression_t codec, const lt_buf_t *raw, lt_buf_t *out);
/* Frames a field list: a reference to bytes [off, off+len) of chunk id's
 * body, written into out (at least LT__SQ_REF_MAX bytes); returns its size. */
#define LT__SQ_REF_MAX 31
size_t lt__sq_payload_ref(int64_t id, uint32_t off, uint32_t len, uint8_t *out);
/* Decodes a stored blob; *p's slices point into blob or into u's buffers
 * (valid until the next decode with u). u may be NULL for an empty blob.
 * Returns 0 or LT_EDECODE / LT_ENOMEM / LT_EDB. */
int lt__sq_payload_decode(lt__sq_unpacker_t *u, const void *blob, size_t len, lt__sq_payload_t *p);

/* The text full-text search indexes for a span: its input (or, when it has
 * none, its input messages) and likewise its output. Inserting and deleting
 * index entries must use exactly the same text, so both go through here. */
void lt__sq_fts_text(const lt__sq_payload_t *p, lt_str_t *input, lt_str_t *output);

/* ---- payload chunks (sqlite_pack.c) ------------------------------------ */

/* The spans of one trace that arrive in one batch are packed together:
 * their field lists are concatenated and compressed as one chunk (a row of
 * payload_chunks), and each span's payload is a reference (chunk id,
 * offset, length) into it. The codec runs faster per byte and
 * compresses better on these 20-100 KB chunks as on single
 * 3-5 KB payloads (resources, prompts and retrieved documents repeat
 * across a trace's spans). A span alone in its batch keeps an inline
 * payload. Packing runs on the thread that submits the batch (an HTTP
 * loop), so the writer thread only binds and steps. */
typedef struct {
  const void *blob;  /* frame byte + body (compressed or raw field lists) */
  size_t len;
  int64_t id;        /* payload_chunks.id, given by the write that stores it */
  uint32_t n_new;    /* spans referring to it that this write stored */
} lt__sq_chunk_t;

typedef struct {
  int32_t chunk;       /* index into chunks, or -1: the payload is inline */
  uint32_t off, len;   /* the span's field list inside the chunk's body */
  const void *blob;    /* an inline payload (frame byte + body); NULL when empty */
  size_t blob_len;
} lt__sq_packed_span_t;

typedef struct {
  lt__sq_chunk_t *chunks;
  size_t n_chunks;
  lt__sq_packed_span_t *spans; /* one per span of the batch */
} lt__sq_packed_t;

/* Packs b's spans (idempotent: a packed batch is left alone) into b's
 * arena and sets b->packed. Safe on any thread. */
int lt__sq_prepack(lt_store_t *s, lt_batch_t *b);

int lt__sq_unpacker_init(lt__sq_unpacker_t *u, sqlite3 *db);
void lt__sq_unpacker_free(lt__sq_unpacker_t *u);
/* Drops cached chunks (a reader between uses: they may have been expired;
 * and what it holds stays small). */
void lt__sq_unpacker_reset(lt__sq_unpacker_t *u);

/* ---- JSON rows (sqlite_rows.c) ------------------------------------------ */

/* What an empty stored JSON field renders as. */
typedef enum { LT__SQ_EMPTY_NULL, LT__SQ_EMPTY_OBJECT, LT__SQ_EMPTY_ARRAY } lt__sq_empty_t;

/* Sets o[key] = v (taking v); a NULL v or a failed set sets *rc to
 * LT_ENOMEM, so a row is built in straight-line code and checked once. */
void lt__sq_put(json_t *o, const char *key, json_t *v, int *rc);
/* A JSON string from bytes that should be UTF-8 (invalid bytes → U+FFFD). */
json_t *lt__sq_jstr(const char *p, size_t n);
/* Column helpers: NULL columns become JSON null. */
json_t *lt__sq_jcol_str(sqlite3_stmt *st, int col);
json_t *lt__sq_jcol_known(sqlite3_stmt *st, int col);
json_t *lt__sq_jcol_cost(sqlite3_stmt *st, int col); /* nano-dollars → USD */
/* A stored JSON document; text that does not parse comes back as a string. */
json_t *lt__sq_jcol_doc(sqlite3_stmt *st, int col, lt__sq_empty_t empty);
json_t *lt__sq_jhex(const void *p, size_t n);

/* The trace list row: select LT__SQ_TRACE_COLS from traces t. */
#define LT__SQ_TRACE_COLS                                                                                        \
  "t.id, t.trace_id, t.name, t.start_ns, t.end_ns, t.status, t.error_count, t.span_count, t.user_id,"   \
  " t.session_id, t.models, t.input_tokens, t.output_tokens, t.total_tokens, t.cost_nusd, t.service,"   \
  " t.environment, t.tags"
#define LT__SQ_TRACE_NCOLS 18
json_t *lt__sq_trace_row(sqlite3_stmt *st, int *rc);
/* The span object: select LT__SQ_SPAN_COLS from spans s joined to traces t.
 * full: the trace view (tree fields, payload JSON fields, an empty logs
 * array); otherwise the list view (input/output cut to 1,000 chars). */
#define LT__SQ_SPAN_COLS                                                                                         \
  "s.id, t.trace_id, s.span_id, s.parent_id, s.name, s.kind, s.otel_kind, s.start_ns, s.end_ns,"        \
  " s.status, s.service, s.request_model, s.response_model, s.input_tokens, s.output_tokens,"           \
  " s.total_tokens, s.cost_nusd, s.cost_source, s.ttft_ns, s.user_id, s.session_id, s.tags, s.payload"
#define LT__SQ_SPAN_NCOLS 23
json_t *lt__sq_span_row(lt__sq_reader_t *r, sqlite3_stmt *st, bool full, int *rc);

/* ---- rollups, write side (sqlite_rollup.c) ----------------------------- */

/* Bucket widths (60, 3600, 86400 s), string dimensions (environment,
 * provider, model, name, feature; kind and status are integers), the cap
 * on dimension sets per project and on a dimension value's bytes. */
#define LT__SQ_ROLLUP_NRES 3
#define LT__SQ_ROLLUP_NDIMS_STR 5
#define LT__SQ_ROLLUP_MAX_DIMS 5000
#define LT__SQ_ROLLUP_MAX_VALUE 200
/* Minute rows are kept this long (or the span retention if shorter):
 * coarse ones 14 days, full ones (per name, feature, environment), which
 * are most of the rollup bytes, 2 days. */
#define LT__SQ_ROLLUP_MINUTE_KEEP_S (14 * 86400LL)
#define LT__SQ_ROLLUP_FINE_MINUTE_KEEP_S (2 * 86400LL)

/* The values a span adds to the four sketches, -1 when it adds none:
 * latency ms, TTFT ms, output tokens/s, total tokens. */
typedef struct {
  double v[4];
} lt__sq_rollup_values_t;
void lt__sq_rollup_values(const lt_span_t *sp, lt__sq_rollup_values_t *out);

/* Prepares the rollup statements on the writer connection. */
int lt__sq_rollup_open(lt__sq_t *s);
void lt__sq_rollup_close(lt__sq_t *s);
/* A flush may wait this long, or until this many accumulators, while the
 * writer has a backlog: under sustained load one flush a second replaces
 * one per commit (each read, merged and rewrote every touched row and its
 * sketches). */
#define LT__SQ_ROLLUP_DEFER_NS 1000000000LL
#define LT__SQ_ROLLUP_DEFER_ACCS 8192
/* Inside a write transaction, in this order: recover (reads back spans
 * the accumulators lack, after a restart or a rollback), add for each
 * newly stored span (may insert a dimension set), and flush (writes every
 * touched row and meta.rollup_hwm) when due says so — always when there is
 * no backlog. Then exactly one of commit (after COMMIT succeeded) or abort
 * (after a rollback). lower_hwm pulls the mark down after retention took
 * the newest spans, so reused ids are not skipped. */
int lt__sq_rollup_recover(lt__sq_t *s);
int lt__sq_rollup_add(lt__sq_t *s, int64_t project_id, int64_t span_id, const lt_span_t *sp);
bool lt__sq_rollup_due(lt__sq_t *s, bool backlog, int64_t now_mono_ns);
int lt__sq_rollup_flush(lt__sq_t *s, int64_t now_mono_ns);
int lt__sq_rollup_lower_hwm(lt__sq_t *s, int64_t max_span_id);
/* Flushes pending rollups in a transaction of its own (at close). */
void lt__sq_flush_rollups(lt__sq_t *s);
void lt__sq_rollup_commit(lt__sq_t *s);
void lt__sq_rollup_abort(lt__sq_t *s);
/* Runs the expiry for the retention policy at most once a minute (sooner
 * while a sweep leaves rows behind: *more). */
int lt__sq_rollup_maintain(lt__sq_t *s, int64_t now_ns, int64_t retention_ns, bool *more);

/* Runs a read query on a pooled reader with nparams integer parameters
 * and returns a JSON array of row(q) for every row (sqlite_admin.c). */
typedef json_t *(*lt__sq_row_fn)(sqlite3_stmt *q);
int lt__sq_read_list(lt__sq_t *s, const char *sql, const int64_t *params, int nparams, lt__sq_row_fn row,
                     json_t **out);

/* ---- metrics and prices (sqlite_metrics.c) ----------------------------- */

int lt__sq_metrics(lt_store_t *s, const lt_metrics_query_t *q, json_t **out);
int lt__sq_metrics_text(lt_store_t *s, const lt_metrics_query_t *q, lt_buf_t *out);
int lt__sq_models_unpriced(lt_store_t *s, int64_t project_id, int64_t from_ns, int64_t to_ns, json_t **out);
int lt__sq_prices_add(lt_store_t *s, int64_t project_id, const char *body, size_t len);
int lt__sq_prices_clear(lt_store_t *s, int64_t project_id);
int lt__sq_prices_list(lt_store_t *s, int64_t project_id, json_t **out);

/* ---- ids and small helpers (sqlite_payload.c) -------------------------- */

/* A span id's 8 bytes as a big-endian int64 (a smaller key than a blob). */
int64_t lt__sq_id8_to_int(const uint8_t id[8]);
void lt__sq_int_to_id8(int64_t v, uint8_t id[8]);

#endif
