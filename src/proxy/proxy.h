/* The logging proxy: /proxy/<upstream>/<path> forwarded to the upstream
 * with streaming untouched, each call traced as one span through the
 * writer. See docs/proxy.md. */
#ifndef LT_PROXY_H
#define LT_PROXY_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "net/http.h"
#include "pipeline/pricebook.h"
#include "pipeline/writer.h"

typedef struct lt_proxy lt_proxy_t;

typedef struct {
  lt_writer_t *writer;
  lt_pricebook_t *prices;
  int (*auth)(void *ud, const char *authz, int64_t *project_id); /* lt_auth_check */
  void *auth_ud;
  size_t capture_bytes;       /* response copy kept for the trace */
  bool stream_usage;          /* ask OpenAI streams for usage (and strip it) */
  long connect_timeout_ms;
  long timeout_ms;            /* whole upstream call; 0 = none */
  long first_byte_timeout_ms; /* request sent → response headers; 0 = none */
  long idle_timeout_ms;       /* between body bytes; 0 = none */
  int retries;                /* extra attempts on 429/5xx/unreachable, before any byte reached the client */
  size_t cache_bytes;         /* response cache size; 0 = no cache */
  const char *ca_file;        /* CA bundle for upstream TLS; NULL = system store */
} lt_proxy_config_t;

typedef struct {
  uint64_t calls, errors, upstream_failures, client_aborts, spans_submitted, spans_lost;
  uint64_t cache_hits, limited, retries, fallbacks;
} lt_proxy_stats_t;

int lt_proxy_new(const lt_proxy_config_t *cfg, lt_proxy_t **out);
void lt_proxy_free(lt_proxy_t *p);
/* Adds or replaces an upstream from "NAME=BASE_URL". Returns 0 or
 * LT_ECONFIG with a message in err. */
int lt_proxy_add_upstream(lt_proxy_t *p, const char *spec, char *err, size_t errlen);
/* "NAME=SECONDS": every call to that upstream is cacheable for that long
 * (a request can still opt out with Cache-Control: no-store). */
int lt_proxy_cache_upstream(lt_proxy_t *p, const char *spec, char *err, size_t errlen);
/* "NAME=OTHER" or "NAME=OTHER:MODEL": when calls to NAME fail after their
 * retries, send them to OTHER (with that model). */
int lt_proxy_add_fallback(lt_proxy_t *p, const char *spec, char *err, size_t errlen);
/* A rate limit or budget rule (see limits.h for the syntax). */
int lt_proxy_add_limit(lt_proxy_t *p, const char *spec, char *err, size_t errlen);
void lt_proxy_stats(lt_proxy_t *p, lt_proxy_stats_t *out);

/* The route handler (prefix /proxy/), and the per-loop teardown to give
 * lt_http_config_t.loop_exit. */
void lt_proxy_handle(lt_req_t *r, void *proxy);
void lt_proxy_loop_exit(void *slot);

#endif
