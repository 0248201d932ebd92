/* Prometheus metrics: an in-process registry fed by the writer's observe
 * hook and rendered in the text exposition format (version 0.0.4) at
 * GET /metrics. docs/metrics.md lists every metric.
 *
 * GenAI metrics (token usage, operation duration, time to first token,
 * cost, span counts) are kept per label set (project, provider, model,
 * operation, status). Label values come from clients, so the number of
 * label sets is capped: past the cap, model and operation fold into
 * "__other__" and the folding is counted.
 *
 * Threads: lt_prom_observe_batch runs on the writer thread; rendering runs
 * on any thread. One mutex guards the registry; rendering holds it only to
 * copy the counters, so a scrape never stalls the writer for long. */
#ifndef LT_PROM_H
#define LT_PROM_H
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "core/buf.h"
#include "pipeline/batch.h"
#include "pipeline/writer.h"
#include "proxy/proxy.h"
#include "query/api.h"
#include "store/store.h"

/* Distinct GenAI label sets before folding starts. Each family carries at
 * most this many (times the four token types for token usage), plus the
 * folded sets. */
#define LT_PROM_MAX_SERIES 2000
/* Label values longer than this are cut (at a UTF-8 character boundary). */
#define LT_PROM_LABEL_MAX 128
/* The value folded labels take. */
#define LT_PROM_OTHER "__other__"

typedef struct lt_prom lt_prom_t;

/* A registry capping GenAI label sets at max_series (0: LT_PROM_MAX_SERIES).
 * Returns NULL when out of memory. */
lt_prom_t *lt_prom_new(size_t max_series);
/* NULL is a no-op. Call after the writer and every renderer have stopped. */
void lt_prom_free(lt_prom_t *p);

/* The writer's observe hook (lt_writer_config_t.observe, ud = the
 * registry): counts the batch's records, and feeds each newly stored LLM or
 * EMBEDDING span, except wrapper spans, into the GenAI metrics. */
void lt_prom_observe_batch(const lt_batch_t *b, void *prom);

typedef struct {
  const char *version;            /* lanterna_build_info; NULL: omitted */
  const lt_writer_stats_t *writer; /* NULL: writer metrics omitted */
  const lt_store_stats_t *store;   /* NULL: store metrics omitted */
  const lt_proxy_stats_t *proxy;   /* NULL: proxy metrics omitted */
  /* [{"id":…,"name":…}, …] (store project_list) for the project label;
   * NULL or a missing id: the label is the id in decimal. */
  const json_t *projects;
  int64_t only_project;           /* > 0: GenAI series of this project only */
} lt_prom_render_opts_t;

/* Appends the exposition to out. Returns 0 or LT_ENOMEM / LT_ETOOBIG. */
int lt_prom_render(lt_prom_t *p, const lt_prom_render_opts_t *o, lt_buf_t *out);

/* Appends v as an exposition label value: at most LT_PROM_LABEL_MAX bytes
 * of it, invalid UTF-8 replaced by U+FFFD, then `\`, `"` and newline
 * escaped. Quotes are not added. */
int lt_prom_label_value(lt_buf_t *out, lt_str_t v);

/* GET /metrics. ud is an lt_prom_route_t. The registry is read and the
 * store stats are fetched on the worker pool; the reply goes out on the
 * loop thread. Scope: a caller with an API key sees its own project's
 * GenAI series; an anonymous caller sees every project while no API key
 * exists, and only the default project once one does (as every other
 * route). Server health metrics are server-wide, as in /api/v1/stats. */
typedef struct {
  lt_prom_t *prom;
  lt_api_t *api;        /* store, worker pool, writer and shutdown flag */
  const char *version;
  lt_proxy_t *proxy;    /* NULL: no proxy metrics */
} lt_prom_route_t;
void lt_prom_handle(lt_req_t *r, void *route);

#define LT_PROM_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

#endif
