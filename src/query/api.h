/* The query API (/api/v1/...) and health endpoints. Handlers parse and
 * validate parameters on the loop thread, run the store call on the worker
 * pool (database reads block), and reply back on the loop thread. Shapes
 * and errors are documented in docs/api.md. */
#ifndef LT_API_H
#define LT_API_H
#include <stdatomic.h>
#include "core/workq.h"
#include "net/http.h"
#include "pipeline/pricebook.h"
#include "pipeline/writer.h"
#include "store/store.h"

typedef struct {
  lt_store_t *store;
  lt_workq_t *workq;
  lt_writer_t *writer;
  lt_pricebook_t *prices;       /* prices in force (metrics_api.h) */
  struct lt_receiver *receiver; /* for its counters in stats; may be NULL */
  atomic_int shutting_down;     /* set once by the main thread at shutdown */
} lt_api_t;

void lt_api_traces(lt_req_t *r, void *api);   /* /api/v1/traces and /api/v1/traces/{id} */
void lt_api_spans(lt_req_t *r, void *api);    /* /api/v1/spans */
void lt_api_sessions(lt_req_t *r, void *api); /* /api/v1/sessions and /api/v1/sessions/{id} */
/* Server-wide counters (all projects): store sizes, writer throughput. */
void lt_api_stats(lt_req_t *r, void *api);
void lt_api_healthz(lt_req_t *r, void *api);
void lt_api_readyz(lt_req_t *r, void *api);

/* Defers r and runs fn(job) on the worker pool; fn later posts the reply
 * to the loop (lt_req_post). When the server is shutting down or the pool
 * is full, replies 503 itself and frees the job with free_fn instead. The
 * deferral comes before the shutdown check: shutdown sets the flag, then
 * waits for deferred requests to be answered, so either the flag is seen
 * here or shutdown waits for this reply — the pool is never used after it
 * stopped. */
void lt_api_submit(lt_api_t *api, lt_req_t *r, void (*fn)(void *job), void *job, void (*free_fn)(void *job));

/* Parses an RFC 3339 time ("2026-01-02T03:04:05.123Z", offsets allowed) or
 * an integer of nanoseconds. Returns 0 or LT_EINVAL. */
int lt_parse_time(const char *s, int64_t *ns);

#endif
