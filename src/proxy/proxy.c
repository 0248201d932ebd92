/* The logging proxy (proxy.h, docs/proxy.md). A call lives from the
 * handler to the end of the upstream transfer: the request is deferred,
 * the upstream's headers and body are relayed to the client as they come
 * (paced by the client's output buffer), and when the transfer ends the
 * call becomes one span for the writer. All of it runs on the loop thread
 * that received the request. */
#include "proxy/proxy.h"
#include <ctype.h>
#include <errno.h>
#include <event2/event.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include "core/buf.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include <openssl/evp.h>
#include "proxy/cache.h"
#include "proxy/limits.h"
#include "proxy/llm_api.h"
#include "proxy/sse.h"
#include "proxy/upstream.h"

#define MAX_UPSTREAMS 64
#define MAX_FWD_HEADERS 96
/* Client output buffer levels that pause and resume the upstream read. */
#define OUT_HIGH (256u << 10)
#define OUT_LOW (64u << 10)
/* One SSE event larger than this is passed through unparsed. */
#define MAX_SSE_EVENT (1u << 20)
#define SPAN_ARENA (64u << 20)
/* The span's JSON is written here first; a loop keeps its buffer unless a
 * call made it bigger than this. */
#define SCRATCH_CAP (64u << 20)
#define SCRATCH_KEEP (1u << 20)
#define MAX_PROPS 64
/* Calls kept per loop for reuse, and how big a buffer of one may stay. */
#define CALL_POOL 64
#define CALL_KEEP (16u << 10)
/* Request bodies up to this size have their trees in the loop's shared
 * arena (see epoch_t); larger ones get an arena of their own. */
#define EPOCH_BODY (16u << 10)
#define EPOCH_BYTES (64u << 10)
#define EPOCH_CAP (256u << 20)
/* A loop's spans of one turn go to the writer as one batch, up to this
 * many (or this much text). */
#define GROUP_SPANS 256
#define GROUP_BYTES (4u << 20)
/* A span the writer could not take (queue full) is offered again this
 * often, for this long, before it is counted lost. */
#define RETRY_MS 200
#define RETRY_FOR_NS (120LL * 1000000000)

/* Default cache lifetime when a request opts in without saying, and the
 * longest allowed. */
#define CACHE_TTL_DEFAULT_S 3600
#define CACHE_TTL_MAX_S (30LL * 86400)
#define RETRY_BASE_MS 250
#define RETRY_MAX_WAIT_S 30

typedef struct {
  char name[64];
  char base[1024];
  bool anthropic;
  char provider[64];
  int64_t cache_ttl_s;      /* > 0: cache every call */
  int fallback;             /* index of the fallback upstream, or -1 */
  char fallback_model[128]; /* model to ask the fallback for, or empty */
} upstream_t;

struct lt_proxy {
  lt_proxy_config_t cfg;
  upstream_t ups[MAX_UPSTREAMS];
  int n;
  lt_pcache_t *cache;
  lt_limits_t *limits;
  atomic_ullong calls, errors, upstream_failures, client_aborts, submitted, lost;
  atomic_ullong hits, limited, retries, fallbacks;
};

/* Per loop thread: its transfers and the spans waiting for queue room. */
typedef struct pending_span {
  lt_batch_t *b;
  int64_t since_ns;
  struct pending_span *next;
} pending_span_t;

/* The arena that calls started on a loop put their request and response
 * trees in, shared until it holds EPOCH_BYTES; it goes when the last of
 * its calls ends. One arena block serves many calls instead of each call
 * allocating (and freeing) one. */
typedef struct {
  lt_arena_t *a;
  unsigned refs;
} epoch_t;

struct call;

typedef struct {
  lt_proxy_t *px;
  lt_up_loop_t *up;
  struct event *retry;
  pending_span_t *waiting;
  lt_buf_t scratch;     /* the span's JSON, reused call after call */
  struct call *out_head; /* calls with gathered events to send (gather_flush) */
  epoch_t *epoch;       /* where new calls' trees go */
  struct call *free_calls;
  size_t n_free_calls;
  lt_batch_t *group;    /* spans of calls that ended this loop turn */
  struct event *flush;  /* submits the group at the end of the turn */
} ploop_t;

/* What a call keeps when it is reused: buffers with their memory, the SSE
 * scanner, the timer event. */
typedef struct {
  lt_buf_t capture;     /* the response body, capped */
  lt_buf_t scratch;     /* an event rewritten for the client */
  lt_buf_t out;         /* events received in one delivery, not sent yet */
  lt_buf_t prop_text;   /* Lanterna-Property-* keys and values */
  lt_buf_t hdr_text;    /* forwarded request header lines */
  lt_buf_t url;
  lt_sse_t sse;
  struct event *timer;  /* first-byte / idle timeout, then retry backoff */
} call_keep_t;

typedef struct call {
  call_keep_t k;        /* first: everything after it is cleared on reuse */
  struct call *next_free;
  epoch_t *epoch;
  lt_proxy_t *px;
  ploop_t *pl;
  lt_req_t *req;
  lt_up_xfer_t *xfer;
  const upstream_t *up;
  int64_t project_id;
  int64_t t0_real, t0_mono, t_sent, t_headers, t_end; /* monotonic but t0_real */
  const char *body;     /* what goes upstream: the llm copy, or body_owned */
  char *body_owned;     /* a rewritten body */
  size_t body_len;
  int attempt;          /* retries used on the current upstream */
  int retries_total;    /* retries over all upstreams, for the span */
  int64_t t_first_sent; /* when the first attempt left */
  bool retrying;        /* this response is retryable: swallow it */
  int64_t retry_after_ms;
  bool fell_back;
  /* cache */
  bool cache_opt, no_store;
  char cache_seed[128], cache_ignore[256];
  bool cacheable, cache_hit;
  uint8_t cache_key[32];
  int64_t cache_ttl_s;   /* the lifetime chosen (cache_lookup) */
  int64_t cache_max_age, cache_ttl_hdr; /* from Cache-Control / Lanterna-Cache-Ttl */
  char ctype[128];
  /* limits */
  const char *cred;     /* the caller's credential header (the request's bytes) */
  char cred_fp[33];     /* its fingerprint, when needed */
  int local_status;     /* a reply Lanterna made itself (429), else 0 */
  char local_body[1024];
  char *hdr[MAX_FWD_HEADERS];   /* forwarded lines, in k.hdr_text */
  const char *fwd_name[MAX_FWD_HEADERS], *fwd_value[MAX_FWD_HEADERS]; /* the request's, in the handler */
  size_t n_hdr;
  char method[16], path[1024];
  lt_llm_call_t llm;
  bool sse_on, started, client_gone, in_upstream_cb, truncated;
  struct call *out_prev, *out_next; /* in pl->out_head while k.out holds events */
  bool out_listed;
  const char *bad_header; /* a Lanterna header we cannot accept: 400 */
  char bad_text[192];     /* its message, when it names the header as sent */
  int status;
  char err[256];
  /* context from request headers */
  char user[256], session[256], feature[256], prompt_name[256], prompt_version[64];
  /* Lanterna-Property-*: NUL-terminated keys and values in k.prop_text,
   * at these offsets (in header order: a later one wins) */
  size_t prop_key[MAX_PROPS], prop_val[MAX_PROPS], n_props;
  bool omit_req, omit_resp;
  uint8_t trace_id[16], span_id[8], parent_id[8];
  bool has_parent;
} call_t;

static int64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t real_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void random_bytes(uint8_t *p, size_t n) {
  /* Ids need to be unique, not secret: a per-thread xorshift seeded from
   * the clock and the thread is plenty and never blocks. */
  static _Thread_local uint64_t s;
  if (!s) s = (uint64_t)real_ns() ^ (uint64_t)(uintptr_t)&s ^ 0x9E3779B97F4A7C15ull;
  for (size_t i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    p[i] = (uint8_t)(s >> 24);
  }
}

/* ---- configuration ------------------------------------------------------ */

static void set_upstream(upstream_t *u, const char *name, const char *base) {
  snprintf(u->name, sizeof u->name, "%s", name);
  snprintf(u->base, sizeof u->base, "%s", base);
  size_t n = strlen(u->base);
  while (n && u->base[n - 1] == '/') u->base[--n] = '\0';
  u->anthropic = strstr(u->base, "anthropic.com") != NULL || !strcmp(name, "anthropic");
  /* The provider as gen_ai.provider.name spells it, for pricing. */
  const char *prov = u->anthropic ? "anthropic" : !strcmp(name, "openai") || strstr(u->base, "openai.com") ? "openai" : name;
  if (strstr(u->base, "openai.azure.com")) prov = "azure.ai.openai";
  snprintf(u->provider, sizeof u->provider, "%s", prov);
  u->fallback = -1;
}

int lt_proxy_new(const lt_proxy_config_t *cfg, lt_proxy_t **out) {
  lt_proxy_t *p = lt_calloc(1, sizeof *p);
  if (!p) return LT_ENOMEM;
  p->cfg = *cfg;
  if (!p->cfg.capture_bytes) p->cfg.capture_bytes = 1u << 20;
  if (!(p->limits = lt_limits_new()) || (cfg->cache_bytes && !(p->cache = lt_pcache_new(cfg->cache_bytes)))) {
    lt_proxy_free(p);
    return LT_ENOMEM;
  }
  set_upstream(&p->ups[p->n++], "openai", "https://api.openai.com");
  set_upstream(&p->ups[p->n++], "anthropic", "https://api.anthropic.com");
  *out = p;
  return 0;
}

void lt_proxy_free(lt_proxy_t *p) {
  if (!p) return;
  lt_pcache_free(p->cache);
  lt_limits_free(p->limits);
  lt_free(p);
}

static int find_upstream(lt_proxy_t *p, const char *name, size_t n) {
  for (int i = 0; i < p->n; i++)
    if (strlen(p->ups[i].name) == n && !strncmp(p->ups[i].name, name, n)) return i;
  return -1;
}

int lt_proxy_cache_upstream(lt_proxy_t *p, const char *spec, char *err, size_t errlen) {
  const char *eq = strchr(spec, '=');
  int i = eq ? find_upstream(p, spec, (size_t)(eq - spec)) : -1;
  char *end = NULL;
  long long ttl = eq ? strtoll(eq + 1, &end, 10) : 0;
  if (i < 0 || !end || *end || ttl <= 0 || ttl > CACHE_TTL_MAX_S) {
    snprintf(err, errlen, "--cache-upstream: expected NAME=SECONDS for a configured upstream (1 to %lld s), got '%s'",
             (long long)CACHE_TTL_MAX_S, spec);
    return LT_ECONFIG;
  }
  if (!p->cache) {
    snprintf(err, errlen, "--cache-upstream: the cache is off (--proxy-cache-size 0)");
    return LT_ECONFIG;
  }
  p->ups[i].cache_ttl_s = ttl;
  return 0;
}

int lt_proxy_add_fallback(lt_proxy_t *p, const char *spec, char *err, size_t errlen) {
  const char *eq = strchr(spec, '=');
  int from = eq ? find_upstream(p, spec, (size_t)(eq - spec)) : -1;
  const char *to = eq ? eq + 1 : "";
  const char *colon = strchr(to, ':');
  int target = find_upstream(p, to, colon ? (size_t)(colon - to) : strlen(to));
  if (from < 0 || target < 0 || from == target || (colon && strlen(colon + 1) >= sizeof p->ups[0].fallback_model)) {
    snprintf(err, errlen, "--fallback: expected NAME=OTHER or NAME=OTHER:MODEL for two configured upstreams, got '%s'",
             spec);
    return LT_ECONFIG;
  }
  p->ups[from].fallback = target;
  snprintf(p->ups[from].fallback_model, sizeof p->ups[from].fallback_model, "%s", colon ? colon + 1 : "");
  return 0;
}

int lt_proxy_add_limit(lt_proxy_t *p, const char *spec, char *err, size_t errlen) {
  return lt_limits_add(p->limits, spec, err, errlen);
}

int lt_proxy_add_upstream(lt_proxy_t *p, const char *spec, char *err, size_t errlen) {
  const char *eq = strchr(spec, '=');
  size_t nl = eq ? (size_t)(eq - spec) : 0;
  if (!eq || nl == 0 || nl >= sizeof p->ups[0].name) {
    snprintf(err, errlen, "--upstream: expected NAME=BASE_URL (for example groq=https://api.groq.com/openai), got '%s'", spec);
    return LT_ECONFIG;
  }
  for (size_t i = 0; i < nl; i++) {
    if (!isalnum((unsigned char)spec[i]) && spec[i] != '-' && spec[i] != '_' && spec[i] != '.') {
      snprintf(err, errlen, "--upstream: the name '%.*s' may hold only letters, digits, '-', '_' and '.'", (int)nl, spec);
      return LT_ECONFIG;
    }
  }
  const char *url = eq + 1;
  if (strncmp(url, "http://", 7) && strncmp(url, "https://", 8)) {
    snprintf(err, errlen, "--upstream %.*s: the base URL must start with http:// or https://, got '%s'", (int)nl, spec, url);
    return LT_ECONFIG;
  }
  if (strlen(url) >= sizeof p->ups[0].base) {
    snprintf(err, errlen, "--upstream %.*s: base URL too long", (int)nl, spec);
    return LT_ECONFIG;
  }
  char name[64];
  memcpy(name, spec, nl);
  name[nl] = '\0';
  for (int i = 0; i < p->n; i++) {
    if (!strcmp(p->ups[i].name, name)) {
      set_upstream(&p->ups[i], name, url);
      return 0;
    }
  }
  if (p->n == MAX_UPSTREAMS) {
    snprintf(err, errlen, "--upstream: at most %d upstreams", MAX_UPSTREAMS);
    return LT_ECONFIG;
  }
  set_upstream(&p->ups[p->n++], name, url);
  return 0;
}

void lt_proxy_stats(lt_proxy_t *p, lt_proxy_stats_t *o) {
  o->calls = atomic_load(&p->calls);
  o->errors = atomic_load(&p->errors);
  o->upstream_failures = atomic_load(&p->upstream_failures);
  o->client_aborts = atomic_load(&p->client_aborts);
  o->spans_submitted = atomic_load(&p->submitted);
  o->spans_lost = atomic_load(&p->lost);
  o->cache_hits = atomic_load(&p->hits);
  o->limited = atomic_load(&p->limited);
  o->retries = atomic_load(&p->retries);
  o->fallbacks = atomic_load(&p->fallbacks);
}

/* ---- span submission ---------------------------------------------------- */

static void retry_cb(evutil_socket_t fd, short what, void *arg) {
  ploop_t *pl = arg;
  (void)fd;
  (void)what;
  int64_t now = mono_ns();
  while (pl->waiting) {
    pending_span_t *w = pl->waiting;
    size_t n = w->b->n_spans;
    int rc = lt_writer_offer(pl->px->cfg.writer, w->b);
    if (rc == LT_EFULL && now - w->since_ns < RETRY_FOR_NS) break; /* still full: keep order, try later */
    if (rc == 0) {
      atomic_fetch_add(&pl->px->submitted, n);
    } else {
      lt_batch_free(w->b);
      atomic_fetch_add(&pl->px->lost, n);
      lt_error("proxy: a span could not be stored (%s)", lt_strerror(rc));
    }
    pl->waiting = w->next;
    lt_free(w);
  }
  if (pl->waiting) {
    struct timeval tv = {0, RETRY_MS * 1000};
    evtimer_add(pl->retry, &tv);
  }
}

/* Hands the batch to the writer; when its queue is full, keeps it and
 * offers it again shortly (in order): an answered call is never left
 * untraced because ingest was busy for a moment. */
static void submit(ploop_t *pl, lt_batch_t *b) {
  size_t n = b->n_spans;
  if (!pl->waiting) {
    int rc = lt_writer_offer(pl->px->cfg.writer, b);
    if (rc == 0) {
      atomic_fetch_add(&pl->px->submitted, n);
      return;
    }
    if (rc != LT_EFULL) {
      lt_batch_free(b);
      atomic_fetch_add(&pl->px->lost, n);
      lt_warn("proxy: %zu span(s) could not be stored (%s)", n, lt_strerror(rc));
      return;
    }
  }
  pending_span_t *w = lt_calloc(1, sizeof *w);
  if (!w) {
    lt_batch_free(b);
    atomic_fetch_add(&pl->px->lost, n);
    return;
  }
  w->b = b;
  w->since_ns = mono_ns();
  pending_span_t **tail = &pl->waiting;
  while (*tail) tail = &(*tail)->next;
  *tail = w;
  if (!evtimer_pending(pl->retry, NULL)) {
    struct timeval tv = {0, RETRY_MS * 1000};
    evtimer_add(pl->retry, &tv);
  }
}

/* The spans of calls that ended during this loop turn go to the writer
 * together: one batch (one arena, one record array, one queue entry)
 * instead of one per call. */
static void send_group(ploop_t *pl) {
  lt_batch_t *b = pl->group;
  pl->group = NULL;
  if (b && b->n_spans) submit(pl, b);
  else lt_batch_free(b);
}

static void flush_cb(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  send_group(arg);
}

/* The batch a span of this project joins: the loop turn's group, or a new
 * one (submitted at the end of the turn). */
static lt_batch_t *group_for(ploop_t *pl, int64_t project_id) {
  lt_batch_t *b = pl->group;
  if (b && (b->project_id != project_id || b->n_spans >= GROUP_SPANS || lt_arena_used(b->arena) > GROUP_BYTES)) {
    send_group(pl);
    b = NULL;
  }
  if (!b && (b = lt_batch_new(project_id, SPAN_ARENA))) {
    pl->group = b;
    event_active(pl->flush, EV_TIMEOUT, 0);
  }
  return b;
}

static void keep_free(call_keep_t *k);
static void epoch_free(epoch_t *e);
static void gather_flush(void *arg);

void lt_proxy_loop_exit(void *slot) {
  ploop_t *pl = slot;
  lt_up_loop_free(pl->up);
  /* The writer may still take them (it stops after the loops). */
  while (pl->waiting) {
    pending_span_t *w = pl->waiting;
    pl->waiting = w->next;
    if (lt_writer_submit(pl->px->cfg.writer, w->b) == 0) atomic_fetch_add(&pl->px->submitted, 1);
    else atomic_fetch_add(&pl->px->lost, 1); /* submit freed it */
    lt_free(w);
  }
  if (pl->group && pl->group->n_spans) {
    size_t n = pl->group->n_spans;
    if (lt_writer_submit(pl->px->cfg.writer, pl->group) == 0) atomic_fetch_add(&pl->px->submitted, n);
    else atomic_fetch_add(&pl->px->lost, n);
  } else {
    lt_batch_free(pl->group);
  }
  if (pl->retry) event_free(pl->retry);
  if (pl->flush) event_free(pl->flush);
  lt_buf_free(&pl->scratch);
  while (pl->free_calls) {
    call_t *c = pl->free_calls;
    pl->free_calls = c->next_free;
    keep_free(&c->k);
    lt_free(c);
  }
  /* Calls still holding it would have been abandoned with the loop. */
  if (pl->epoch && !pl->epoch->refs) epoch_free(pl->epoch);
  lt_free(pl);
}

static ploop_t *loop_state(lt_proxy_t *px, lt_req_t *r) {
  void **slot = lt_req_loop_slot(r);
  if (*slot) return *slot;
  ploop_t *pl = lt_calloc(1, sizeof *pl);
  if (!pl) return NULL;
  pl->px = px;
  lt_buf_init(&pl->scratch, SCRATCH_CAP);
  pl->up = lt_up_loop_new(lt_req_event_base(r));
  if (pl->up) lt_up_loop_after(pl->up, gather_flush, pl);
  pl->retry = evtimer_new(lt_req_event_base(r), retry_cb, pl);
  pl->flush = event_new(lt_req_event_base(r), -1, 0, flush_cb, pl);
  if (!pl->up || !pl->retry || !pl->flush) {
    lt_up_loop_free(pl->up);
    if (pl->retry) event_free(pl->retry);
    if (pl->flush) event_free(pl->flush);
    lt_free(pl);
    return NULL;
  }
  *slot = pl;
  return pl;
}

/* ---- the span ----------------------------------------------------------- */

static lt_str_t adup(lt_arena_t *a, const char *s, int *rc) { return lt_llm_arena_str(a, s, s ? strlen(s) : 0, rc); }

/* The caller's properties as the span's metadata takes them. */
static size_t props_view(const call_t *c, lt_llm_prop_t *out) {
  for (size_t i = 0; i < c->n_props; i++)
    out[i] = (lt_llm_prop_t){c->k.prop_text.ptr + c->prop_key[i], c->k.prop_text.ptr + c->prop_val[i]};
  return c->n_props;
}

static const char *prop_of(void *ud, const char *name) {
  call_t *c = ud;
  char key[64];
  size_t k = 0;
  for (; name[k] && k < sizeof key - 1; k++) key[k] = (char)tolower((unsigned char)name[k]);
  key[k] = '\0';
  for (size_t i = c->n_props; i-- > 0;) /* the last one wins */
    if (!strcmp(c->k.prop_text.ptr + c->prop_key[i], key)) return c->k.prop_text.ptr + c->prop_val[i];
  return NULL;
}

static lt_limit_subject_t limit_subject(call_t *c) {
  return (lt_limit_subject_t){.key = c->cred_fp, .user = c->user, .property = prop_of, .ud = c};
}

/* Lanterna's own time ends when the first attempt leaves (retry waits
 * are the upstream's doing), or at the answer for calls it answers itself. */
static int64_t overhead_end(const call_t *c) { return c->t_first_sent ? c->t_first_sent : c->t_sent; }

/* Integers and times as JSON numbers, without printf (this runs per call). */
static int put_uint(lt_buf_t *b, uint64_t v) {
  char t[24], *p = t + sizeof t;
  do *--p = (char)('0' + v % 10);
  while ((v /= 10));
  return lt_buf_append(b, p, (size_t)(t + sizeof t - p));
}

static int put_ms(lt_buf_t *b, int64_t ns) {
  if (ns < 0) ns = 0;
  char frac[7];
  uint64_t f = (uint64_t)ns % 1000000;
  for (int i = 5; i >= 0; i--, f /= 10) frac[i] = (char)('0' + f % 10);
  frac[6] = '.';
  int rc = put_uint(b, (uint64_t)ns / 1000000);
  if (!rc) rc = lt_buf_append(b, frac + 6, 1);
  return rc ? rc : lt_buf_append(b, frac, 6);
}

/* What the proxy itself knows, as the span's attributes. saved: what a
 * cache hit saved (nano-USD), or -1. */
static lt_str_t attributes(const call_t *c, lt_buf_t *b, lt_arena_t *a, int64_t saved, int *rc) {
  size_t mark = b->len;
  int64_t upstream_ns = c->cache_hit || c->local_status || !c->t_first_sent ? 0 : c->t_end - c->t_first_sent;
  int r = lt_buf_puts(b, "{\"lanterna.proxy.upstream\":");
  if (!r) r = lt_buf_json_str(b, c->up->name, strlen(c->up->name));
  if (!r) r = lt_buf_puts(b, ",\"http.request.method\":");
  if (!r) r = lt_buf_json_str(b, c->method, strlen(c->method));
  if (!r) r = lt_buf_puts(b, ",\"url.path\":");
  if (!r) r = lt_buf_json_str(b, c->path, strlen(c->path));
  if (!r) r = lt_buf_puts(b, ",\"http.response.status_code\":");
  if (!r) r = put_uint(b, (uint64_t)(c->status > 0 ? c->status : 0));
  if (!r) r = lt_buf_puts(b, ",\"lanterna.proxy.upstream_ms\":");
  if (!r) r = put_ms(b, upstream_ns);
  if (!r) r = lt_buf_puts(b, ",\"lanterna.proxy.overhead_ms\":");
  if (!r) r = put_ms(b, overhead_end(c) - c->t0_mono);
  if (!r) r = lt_buf_puts(b, c->truncated ? ",\"lanterna.proxy.truncated\":true" : ",\"lanterna.proxy.truncated\":false");
  if (!r) r = lt_buf_puts(b, c->cache_hit ? ",\"lanterna.proxy.cache\":\"HIT\""
                             : c->cacheable ? ",\"lanterna.proxy.cache\":\"MISS\"" : ",\"lanterna.proxy.cache\":\"OFF\"");
  if (!r && c->llm.response_id[0]) {
    r = lt_buf_puts(b, ",\"gen_ai.response.id\":");
    if (!r) r = lt_buf_json_str(b, c->llm.response_id, strlen(c->llm.response_id));
  }
  if (!r && c->llm.usage_added) r = lt_buf_puts(b, ",\"lanterna.proxy.stream_usage_added\":true");
  if (!r && c->retries_total) {
    r = lt_buf_puts(b, ",\"lanterna.proxy.retries\":");
    if (!r) r = put_uint(b, (uint64_t)c->retries_total);
  }
  if (!r && c->fell_back) r = lt_buf_puts(b, ",\"lanterna.proxy.fallback\":true");
  if (!r && c->local_status == 429) r = lt_buf_puts(b, ",\"lanterna.proxy.rate_limited\":true");
  if (!r && saved >= 0) r = lt_buf_printf(b, ",\"lanterna.proxy.cache_saved_usd\":%.17g", (double)saved / 1e9);
  if (!r) r = lt_buf_puts(b, "}");
  lt_str_t out = r ? LT_STR_NULL : lt_llm_arena_str(a, b->ptr + mark, b->len - mark, rc);
  if (r) *rc = LT_ENOMEM;
  b->len = mark;
  return out;
}

/* Writes the call's span into arena a; 0 or LT_ENOMEM. */
static int fill_span(call_t *c, lt_arena_t *a, lt_span_t *sp) {
  lt_proxy_t *px = c->px;
  int rc = 0;
  lt_span_init(sp);
  memcpy(sp->trace_id, c->trace_id, 16);
  memcpy(sp->span_id, c->span_id, 8);
  if (c->has_parent) {
    memcpy(sp->parent_span_id, c->parent_id, 8);
    sp->has_parent = true;
  }
  sp->otel_kind = 3; /* CLIENT */
  sp->start_ns = c->t0_real;
  sp->end_ns = c->t0_real + (c->t_end - c->t0_mono);
  sp->kind = LT_KIND_UNKNOWN;
  /* TTFT counts from when the request left for the upstream (monotonic
   * clock, like the events' times). */
  lt_llm_prop_t props[MAX_PROPS];
  lt_buf_t *scratch = &c->pl->scratch;
  lt_llm_fill_opts_t fo = {.start_ns = c->t_sent, .omit_request = c->omit_req, .omit_response = c->omit_resp,
                           .scratch = scratch, .props = props, .n_props = props_view(c, props)};
  rc = lt_llm_fill_ex(&c->llm, a, &fo, sp);
  sp->provider = adup(a, c->up->provider, &rc);
  sp->service = adup(a, "lanterna-proxy", &rc);
  sp->scope = adup(a, "lanterna.proxy", &rc);
  sp->user_id = adup(a, c->user, &rc);
  sp->session_id = adup(a, c->session, &rc);
  sp->feature = adup(a, c->feature, &rc);
  sp->prompt_name = adup(a, c->prompt_name, &rc);
  sp->prompt_version = adup(a, c->prompt_version, &rc);
  /* "<operation> <model>" for LLM calls, else "<upstream> <method> <path>" */
  size_t mark = scratch->len;
  int w;
  if (sp->kind == LT_KIND_LLM || sp->kind == LT_KIND_EMBEDDING) {
    w = lt_buf_append(scratch, sp->operation.ptr ? sp->operation.ptr : "", sp->operation.len);
    if (!w) w = lt_buf_append(scratch, " ", 1);
    if (!w) w = lt_buf_puts(scratch, c->llm.model);
  } else {
    w = lt_buf_puts(scratch, c->up->name);
    if (!w) w = lt_buf_append(scratch, " ", 1);
    if (!w) w = lt_buf_puts(scratch, c->method);
    if (!w) w = lt_buf_append(scratch, " ", 1);
    if (!w) w = lt_buf_append(scratch, c->path, strnlen(c->path, 300));
  }
  sp->name = w ? LT_STR_NULL : lt_llm_arena_str(a, scratch->ptr + mark, scratch->len - mark, &rc);
  scratch->len = mark;
  bool ok = !c->err[0] && c->status >= 200 && c->status < 400;
  sp->status = ok ? LT_STATUS_OK : LT_STATUS_ERROR;
  if (!ok) {
    char msg[320];
    if (c->err[0]) snprintf(msg, sizeof msg, "%s", c->err);
    else snprintf(msg, sizeof msg, "upstream answered HTTP %d", c->status);
    sp->status_message = adup(a, msg, &rc);
  }
  lt_price_ref_t *ref = lt_pricebook_acquire(px->cfg.prices, c->project_id);
  lt_pricebook_apply(lt_price_ref_table(ref), sp);
  lt_pricebook_release(px->cfg.prices, ref);
  int64_t saved = -1;
  if (c->cache_hit) {
    /* Nothing was bought: the call cost $0, and saved what it would have. */
    if (lt_span_has_cost(sp)) saved = sp->cost_total;
    sp->cost_input = sp->cost_output = sp->cost_total = 0;
    sp->cost_source = LT_COST_COMPUTED;
    sp->ttft_ns = -1; /* not the model's: keep TTFT figures about models */
  }
  sp->attributes = attributes(c, scratch, a, saved, &rc);
  if (scratch->alloc > SCRATCH_KEEP) lt_buf_free(scratch); /* one big call does not pin its memory */
  return rc;
}

/* The call's span joins the loop turn's batch (a fresh one if the span
 * does not fit in the current). */
static void finish_span(call_t *c) {
  lt_proxy_t *px = c->px;
  ploop_t *pl = c->pl;
  lt_span_t span;
  lt_batch_t *b = group_for(pl, c->project_id);
  int rc = b ? fill_span(c, b->arena, &span) : LT_ENOMEM;
  if (rc && b && b->n_spans) { /* the group's arena is full: start another */
    send_group(pl);
    b = group_for(pl, c->project_id);
    rc = b ? fill_span(c, b->arena, &span) : LT_ENOMEM;
  }
  lt_span_t *sp = rc ? NULL : lt_batch_add_span(b);
  if (!sp) {
    atomic_fetch_add(&px->lost, 1);
    return;
  }
  *sp = span;
  if (!c->cache_hit && !c->local_status) {
    lt_limit_subject_t subj = limit_subject(c);
    lt_limits_charge(px->limits, &subj, mono_ns(), sp->tokens[LT_TOK_TOTAL],
                     lt_span_has_cost(sp) ? sp->cost_total : -1);
  }
}

/* ---- call states -------------------------------------------------------- */

static void epoch_free(epoch_t *e) {
  lt_arena_destroy(e->a);
  lt_free(e);
}

/* The shared arena for a new call's trees (a reference on it), or NULL. */
static epoch_t *epoch_acquire(ploop_t *pl) {
  epoch_t *e = pl->epoch;
  if (e && lt_arena_used(e->a) > EPOCH_BYTES) {
    pl->epoch = NULL; /* full: goes when its last call ends */
    if (!e->refs) epoch_free(e);
    e = NULL;
  }
  if (!e) {
    if (!(e = lt_malloc(sizeof *e))) return NULL;
    if (!(e->a = lt_arena_create(EPOCH_CAP))) {
      lt_free(e);
      return NULL;
    }
    e->refs = 0;
    pl->epoch = e;
  }
  e->refs++;
  return e;
}

static void epoch_release(ploop_t *pl, epoch_t *e) {
  if (e && --e->refs == 0 && e != pl->epoch) epoch_free(e);
}

static void keep_free(call_keep_t *k) {
  lt_buf_free(&k->capture);
  lt_buf_free(&k->scratch);
  lt_buf_free(&k->out);
  lt_buf_free(&k->prop_text);
  lt_buf_free(&k->hdr_text);
  lt_buf_free(&k->url);
  lt_sse_free(&k->sse);
  if (k->timer) event_free(k->timer);
}

/* A cleared call state, from the loop's pool when it has one. */
static call_t *call_new(ploop_t *pl) {
  call_t *c = pl->free_calls;
  if (c) {
    pl->free_calls = c->next_free;
    pl->n_free_calls--;
    memset(&c->next_free, 0, sizeof *c - offsetof(call_t, next_free));
    return c;
  }
  if (!(c = lt_calloc(1, sizeof *c))) return NULL;
  lt_buf_init(&c->k.capture, pl->px->cfg.capture_bytes + 1);
  lt_buf_init(&c->k.scratch, MAX_SSE_EVENT + 1);
  lt_buf_init(&c->k.out, SCRATCH_CAP);
  lt_buf_init(&c->k.prop_text, 1u << 20);
  lt_buf_init(&c->k.hdr_text, 1u << 20);
  lt_buf_init(&c->k.url, 1u << 16);
  lt_sse_init(&c->k.sse, MAX_SSE_EVENT);
  return c;
}

static void trim(lt_buf_t *b) {
  if (b->alloc > CALL_KEEP) lt_buf_free(b);
  lt_buf_reset(b);
}

/* The call is done with: back to the pool, its buffers emptied. */
static void out_drop(call_t *c);

static void call_free(call_t *c) {
  ploop_t *pl = c->pl;
  out_drop(c);
  if (c->k.timer) evtimer_del(c->k.timer);
  lt_llm_free(&c->llm);
  epoch_release(pl, c->epoch);
  lt_free(c->body_owned);
  if (pl->n_free_calls >= CALL_POOL) {
    keep_free(&c->k);
    lt_free(c);
    return;
  }
  trim(&c->k.capture);
  trim(&c->k.scratch);
  trim(&c->k.out);
  trim(&c->k.prop_text);
  trim(&c->k.hdr_text);
  trim(&c->k.url);
  lt_sse_reset(&c->k.sse, CALL_KEEP);
  c->next_free = pl->free_calls;
  pl->free_calls = c;
  pl->n_free_calls++;
}

/* The call's timer, now calling cb. */
static bool set_timer(call_t *c, event_callback_fn cb) {
  if (!c->k.timer) return (c->k.timer = evtimer_new(lt_req_event_base(c->req), cb, c)) != NULL;
  evtimer_del(c->k.timer);
  return event_assign(c->k.timer, lt_req_event_base(c->req), -1, 0, cb, c) == 0;
}

/* Names the call's span in the reply, so a caller can look it up. */
static void set_id_headers(call_t *c) {
  char ids[40];
  lt_hex_encode(ids, c->span_id, 8);
  lt_req_set_header(c->req, "Lanterna-Request-Id", ids);
  lt_hex_encode(ids, c->trace_id, 16);
  lt_req_set_header(c->req, "Lanterna-Trace-Id", ids);
}

/* An error Lanterna answers itself (unreachable upstream, timeout, rate
 * limit), in the upstream's own error shape so its SDK reports it well. */
static void reply_failure(call_t *c) {
  int status = c->local_status ? c->local_status : strstr(c->err, "timed out") ? 504 : 502;
  const char *msg = c->local_status ? c->local_body : c->err[0] ? c->err : "no response from the upstream";
  char text[800];
  snprintf(text, sizeof text, "%s%s%s", c->local_status ? "" : "upstream '", c->local_status ? "" : c->up->name,
           c->local_status ? "" : "': ");
  size_t off = strlen(text);
  snprintf(text + off, sizeof text - off, "%.600s", msg);
  lt_buf_t b;
  lt_buf_init(&b, 8 * sizeof text);
  int rc;
  if (c->up->anthropic) {
    rc = lt_buf_printf(&b, "{\"type\":\"error\",\"error\":{\"type\":\"%s\",\"message\":",
                       status == 429 ? "rate_limit_error" : status == 504 ? "timeout_error" : "api_error");
    if (!rc) rc = lt_buf_json_str(&b, text, strlen(text));
    if (!rc) rc = lt_buf_puts(&b, "}}");
  } else {
    rc = lt_buf_puts(&b, "{\"error\":{\"message\":");
    if (!rc) rc = lt_buf_json_str(&b, text, strlen(text));
    if (!rc)
      rc = lt_buf_printf(&b, ",\"type\":\"%s\",\"code\":\"%s\"}}", status == 429 ? "rate_limit_error" : "upstream_error",
                         status == 429 ? "lanterna_rate_limit" : status == 504 ? "lanterna_upstream_timeout"
                                                                              : "lanterna_upstream_unreachable");
  }
  if (status == 429 && !c->local_status) lt_req_set_header(c->req, "Retry-After", "1");
  set_id_headers(c);
  lt_reply(c->req, status, "application/json", rc ? "{}" : b.ptr, rc ? 2 : b.len);
  lt_buf_free(&b);
}

/* ---- gathering ----------------------------------------------------------
 * The upstream client hands over one read of a streamed response in many
 * on_body calls (one per chunk of the upstream's chunked body, so often
 * one per event). Sending each at once cost a system call and a packet per
 * event; they are gathered in the call's k.out instead and sent as one
 * chunk when the client is done with that read (gather_flush, through
 * lt_up_loop_after), which is still before the loop does anything else. */

static void out_unlink(call_t *c) {
  if (!c->out_listed) return;
  if (c->out_prev) c->out_prev->out_next = c->out_next;
  else c->pl->out_head = c->out_next;
  if (c->out_next) c->out_next->out_prev = c->out_prev;
  c->out_prev = c->out_next = NULL;
  c->out_listed = false;
}

/* Forgets what was gathered (the client is gone, or the call ends). */
static void out_drop(call_t *c) {
  out_unlink(c);
  lt_buf_reset(&c->k.out);
}

/* Sends what was gathered. */
static void out_send(call_t *c) {
  out_unlink(c);
  if (c->k.out.len && c->req && !c->client_gone) lt_reply_chunk(c->req, c->k.out.ptr, c->k.out.len);
  lt_buf_reset(&c->k.out);
}

/* Keeps n bytes for the client until the end of this delivery; false when
 * the buffer will not take them. */
static bool out_gather(call_t *c, const char *p, size_t n) {
  if (lt_buf_append(&c->k.out, p, n)) return false;
  if (!c->out_listed) {
    c->out_listed = true;
    c->out_prev = NULL;
    c->out_next = c->pl->out_head;
    if (c->out_next) c->out_next->out_prev = c;
    c->pl->out_head = c;
  }
  return true;
}

static void gather_flush(void *arg) {
  ploop_t *pl = arg;
  while (pl->out_head) out_send(pl->out_head);
}

/* The call is over: trace it, end the reply, free it. */
static void complete(call_t *c) {
  c->t_end = mono_ns();
  if (c->sse_on) lt_sse_finish(&c->k.sse, NULL, NULL); /* nothing left to forward by now */
  if (!c->sse_on && c->k.capture.len) lt_llm_response(&c->llm, c->k.capture.ptr, c->k.capture.len);
  if (!c->err[0] && c->llm.stream_error[0])
    snprintf(c->err, sizeof c->err, "the upstream reported an error in the stream: %.200s", c->llm.stream_error);
  if (c->err[0] || c->status >= 400) atomic_fetch_add(&c->px->errors, 1);
  if (c->k.timer) evtimer_del(c->k.timer);
  finish_span(c);
  /* A complete, successful answer is cached for the next identical call. */
  if (c->cacheable && !c->cache_hit && c->px->cache && !c->err[0] && c->status == 200 && !c->truncated &&
      !c->client_gone)
    lt_pcache_put(c->px->cache, c->cache_key, real_ns() + c->cache_ttl_s * 1000000000LL, c->status,
                  c->ctype[0] ? c->ctype : NULL, c->k.capture.ptr ? c->k.capture.ptr : "", c->k.capture.len);
  out_send(c); /* what the last delivery brought, before the end */
  if (c->req) {
    if (!c->started && !c->client_gone) reply_failure(c);
    else lt_reply_end(c->req);
    c->req = NULL;
  }
  call_free(c);
}

/* ---- relaying ----------------------------------------------------------- */

/* A header name of length n against a literal: lengths first, so most
 * comparisons end there (headers are matched on every call). */
#define IS(name, n, lit) ((n) == sizeof(lit) - 1 && !strncasecmp((name), (lit), sizeof(lit) - 1))

static bool hop_by_hop(const char *name, size_t n) {
  return IS(name, n, "connection") || IS(name, n, "keep-alive") || IS(name, n, "transfer-encoding") ||
         IS(name, n, "te") || IS(name, n, "trailer") || IS(name, n, "upgrade") || IS(name, n, "proxy-authenticate") ||
         IS(name, n, "proxy-authorization") || IS(name, n, "content-length") || IS(name, n, "host") ||
         IS(name, n, "accept-encoding");
}

static bool retryable(int status) { return status == 429 || status == 500 || status == 502 || status == 503 || status == 504 || status == 529; }

/* Arms the call's timer (timeouts while a transfer runs). */
static void arm(call_t *c, long ms) {
  if (!c->k.timer || ms <= 0) return;
  struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
  evtimer_add(c->k.timer, &tv);
}

static void on_headers(void *ud, int status, char **lines, size_t n) {
  call_t *c = ud;
  c->status = status;
  c->t_headers = mono_ns();
  if (!c->req || c->client_gone) return;
  bool can_retry = c->attempt < c->px->cfg.retries || (c->up->fallback >= 0 && !c->fell_back);
  c->retrying = retryable(status) && can_retry;
  if (c->retrying) {
    c->retry_after_ms = 0;
    for (size_t i = 0; i < n; i++)
      if (!strncasecmp(lines[i], "retry-after:", 12)) c->retry_after_ms = atol(lines[i] + 12) * 1000;
    return; /* nothing of this response reaches the client */
  }
  arm(c, c->px->cfg.idle_timeout_ms);
  for (size_t i = 0; i < n; i++) {
    char *colon = strchr(lines[i], ':');
    if (!colon) continue;
    *colon = '\0';
    size_t nl = (size_t)(colon - lines[i]);
    const char *v = colon + 1;
    while (*v == ' ' || *v == '\t') v++;
    if (IS(lines[i], nl, "content-type")) {
      size_t vl = strnlen(v, sizeof c->ctype - 1);
      memcpy(c->ctype, v, vl);
      c->ctype[vl] = '\0';
      if (!strncasecmp(v, "text/event-stream", 17)) c->sse_on = true; /* the scanner is ready (call_new) */
    }
    if (!hop_by_hop(lines[i], nl)) lt_req_set_header(c->req, lines[i], v);
    *colon = ':';
  }
  set_id_headers(c);
  /* milliseconds with three decimals */
  char overhead[32], *o = overhead + sizeof overhead;
  int64_t ns = overhead_end(c) - c->t0_mono;
  uint64_t us = ns > 0 ? (uint64_t)(ns + 500) / 1000 : 0, ms = us / 1000, frac = us % 1000;
  *--o = '\0';
  for (int i = 0; i < 3; i++, frac /= 10) *--o = (char)('0' + frac % 10);
  *--o = '.';
  do *--o = (char)('0' + ms % 10);
  while (ms /= 10);
  lt_req_set_header(c->req, "Lanterna-Overhead-Ms", o);
  lt_req_set_header(c->req, "Lanterna-Cache", c->cache_hit ? "HIT" : c->cacheable ? "MISS" : "OFF");
  lt_reply_start(c->req, status);
  c->started = true;
}

static void capture(call_t *c, const char *p, size_t n) {
  size_t room = c->px->cfg.capture_bytes > c->k.capture.len ? c->px->cfg.capture_bytes - c->k.capture.len : 0;
  if (n > room) {
    c->truncated = true;
    n = room;
  }
  if (n) lt_buf_append(&c->k.capture, p, n);
}

static int on_event(void *ud, const lt_sse_event_t *ev) {
  call_t *c = ud;
  bool drop = false;
  const char *out;
  size_t n;
  lt_llm_event(&c->llm, ev, mono_ns(), &drop, &c->k.scratch, &out, &n);
  if (drop || !c->req || c->client_gone) return 0;
  /* Events of one delivery are sent together (see gathering); outside a
   * delivery, or when the buffer is full, what was gathered goes first. */
  if (c->in_upstream_cb && out_gather(c, out, n)) return 0;
  out_send(c);
  lt_reply_chunk(c->req, out, n);
  return 0;
}

/* Body bytes: relayed (SSE event by event), copied for the trace. */
static void relay(call_t *c, const char *p, size_t n) {
  c->in_upstream_cb = true;
  capture(c, p, n);
  if (c->sse_on) lt_sse_feed(&c->k.sse, p, n, on_event, c);
  else lt_reply_chunk(c->req, p, n);
  c->in_upstream_cb = false;
}

static size_t on_body(void *ud, const char *p, size_t n) {
  call_t *c = ud;
  if (c->client_gone || !c->req) return 0; /* fails the transfer: nobody to send it to */
  if (c->retrying) return n;                /* a failed attempt's body: dropped */
  /* Backpressure: leave the bytes with the upstream while the client has
   * not taken the last ones. */
  if (lt_reply_queued(c->req) > OUT_HIGH) return LT_UP_PAUSE;
  arm(c, c->px->cfg.idle_timeout_ms);
  relay(c, p, n);
  return n;
}

static void start_attempt(call_t *c);

static void on_retry_timer(evutil_socket_t fd, short what, void *arg);

/* Waits, then tries again: the same upstream while retries last, then the
 * fallback (once). */
static void schedule_retry(call_t *c) {
  lt_proxy_t *px = c->px;
  /* 250 ms before the first retry, doubling after. */
  int64_t wait = RETRY_BASE_MS << (c->attempt > 4 ? 4 : c->attempt);
  if (c->attempt < px->cfg.retries) {
    c->attempt++;
    c->retries_total++;
    atomic_fetch_add(&px->retries, 1);
  } else {
    const upstream_t *fb = &px->ups[c->up->fallback];
    const char *model = c->up->fallback_model;
    c->fell_back = true;
    atomic_fetch_add(&px->fallbacks, 1);
    c->up = fb;
    c->attempt = 0;
    /* The same path on the other base URL, with its model if one is set. */
    lt_buf_reset(&c->k.url);
    if (lt_buf_puts(&c->k.url, fb->base) || lt_buf_puts(&c->k.url, c->path)) {
      snprintf(c->err, sizeof c->err, "out of memory preparing the fallback");
      complete(c);
      return;
    }
    /* Ask the fallback for its own model when one is configured (the
     * rest of the body stays as it was). */
    lt_buf_t nb;
    lt_buf_init(&nb, c->body_len + 2 * sizeof fb->fallback_model);
    if (model[0] && c->body && lt_llm_set_model(c->body, c->body_len, model, &nb) == 0) {
      lt_free(c->body_owned);
      c->body = c->body_owned = lt_buf_steal(&nb, &c->body_len);
    }
    lt_buf_free(&nb);
  }
  if (c->retry_after_ms > 0 && c->retry_after_ms <= RETRY_MAX_WAIT_S * 1000) wait = c->retry_after_ms;
  if (c->fell_back && c->attempt == 0) wait = 0;
  if (!set_timer(c, on_retry_timer)) {
    snprintf(c->err, sizeof c->err, "out of memory scheduling a retry");
    complete(c);
    return;
  }
  struct timeval tv = {(long)(wait / 1000), (long)(wait % 1000) * 1000};
  evtimer_add(c->k.timer, &tv);
}

static void on_done(void *ud, bool ok, const char *err) {
  call_t *c = ud;
  c->xfer = NULL;
  if (c->k.timer) evtimer_del(c->k.timer);
  bool can_retry = !c->started && !c->client_gone && c->req &&
                   (c->attempt < c->px->cfg.retries || (c->up->fallback >= 0 && !c->fell_back));
  if (can_retry && (c->retrying || !ok)) {
    c->retrying = false;
    if (!ok) atomic_fetch_add(&c->px->upstream_failures, 1);
    schedule_retry(c);
    return;
  }
  if (c->sse_on && c->req && !c->client_gone) lt_sse_finish(&c->k.sse, on_event, c);
  if (!ok && !c->client_gone) {
    snprintf(c->err, sizeof c->err, "%s", err ? err : "upstream transfer failed");
    atomic_fetch_add(&c->px->upstream_failures, 1);
  }
  complete(c);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg) {
  call_t *c = arg;
  (void)fd;
  (void)what;
  if (!c->xfer) return;
  lt_up_abort(c->xfer);
  c->xfer = NULL;
  snprintf(c->err, sizeof c->err, c->t_headers ? "the upstream timed out: no data for %ld ms"
                                               : "the upstream timed out: no response within %ld ms",
           c->t_headers ? c->px->cfg.idle_timeout_ms : c->px->cfg.first_byte_timeout_ms);
  atomic_fetch_add(&c->px->upstream_failures, 1);
  if (c->sse_on && c->req && !c->client_gone) lt_sse_finish(&c->k.sse, on_event, c);
  complete(c);
}

static void on_drain(void *arg) {
  call_t *c = arg;
  if (c->xfer && c->req && lt_reply_queued(c->req) < OUT_LOW) lt_up_pause(c->xfer, false);
}

static void on_client_close(void *arg) {
  call_t *c = arg;
  c->client_gone = true;
  out_drop(c);
  /* A client may hang up as soon as it has read the stream's closing
   * event, before the upstream (and so we) ended the transfer: the call
   * was whole. */
  if (!(c->llm.stream && c->llm.saw_end)) {
    atomic_fetch_add(&c->px->client_aborts, 1);
    snprintf(c->err, sizeof c->err, "the client closed the connection before the response ended");
  }
  /* Stop the upstream now; what was received is traced. (Inside an
   * upstream callback, on_body's next call fails the transfer instead.) */
  if (c->xfer && !c->in_upstream_cb) {
    lt_up_abort(c->xfer);
    c->xfer = NULL;
    complete(c);
  } else if (!c->xfer && c->k.timer && evtimer_pending(c->k.timer, NULL)) {
    complete(c); /* waiting to retry: nobody to retry for */
  }
}

static void start_attempt(call_t *c) {
  static const lt_up_cbs_t cbs = {on_headers, on_body, on_done};
  lt_up_req_t ur = {.url = c->k.url.ptr, .method = c->method, .headers = c->hdr, .n_headers = c->n_hdr,
                    .body = c->body, .body_len = c->body_len,
                    .connect_timeout_ms = c->px->cfg.connect_timeout_ms, .timeout_ms = c->px->cfg.timeout_ms,
                    .ca_file = c->px->cfg.ca_file};
  c->t_headers = 0;
  c->status = 0;
  if (set_timer(c, on_timeout)) arm(c, c->px->cfg.first_byte_timeout_ms);
  c->t_sent = mono_ns();
  if (!c->t_first_sent) c->t_first_sent = c->t_sent;
  int rc = lt_up_start(c->pl->up, &ur, &cbs, c, &c->xfer);
  if (rc) {
    snprintf(c->err, sizeof c->err, "could not start the upstream request (%s)", lt_strerror(rc));
    complete(c);
    return;
  }
}

static void on_retry_timer(evutil_socket_t fd, short what, void *arg) {
  call_t *c = arg;
  (void)fd;
  (void)what;
  if (c->client_gone || !c->req) {
    complete(c);
    return;
  }
  start_attempt(c);
}

/* ---- the handler --------------------------------------------------------- */

typedef struct {
  call_t *c;
  int rc;
} hdr_ctx_t;

static bool parse_hex(const char *s, size_t n, uint8_t *out) {
  return strlen(s) == 2 * n && lt_hex_decode(out, n, s, 2 * n) == 0;
}

static bool all_zero(const uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (p[i]) return false;
  return true;
}

/* A yes/no header: true/false, 1/0, yes/no in any case. Anything else is
 * refused with a 400 rather than read as "no": a misspelt opt-in (cache,
 * omit) would otherwise pass unnoticed. */
static bool parse_bool(const char *v, bool *out) {
  if (!strcasecmp(v, "true") || !strcmp(v, "1") || !strcasecmp(v, "yes")) return *out = true, true;
  if (!strcasecmp(v, "false") || !strcmp(v, "0") || !strcasecmp(v, "no")) return *out = false, true;
  return false;
}

/* Whole seconds, 0 to 10 years. */
static bool parse_secs(const char *v, int64_t *out) {
  char *end;
  errno = 0;
  long long x = strtoll(v, &end, 10);
  if (end == v || *end || errno || x < 0 || x > 10LL * 365 * 86400) return false;
  *out = x;
  return true;
}

static void keep(char *dst, size_t cap, const char *v) { snprintf(dst, cap, "%s", v); }

/* Refuses the call with a 400 naming the header as sent, its value and what
 * it must be. */
static void bad_value(call_t *c, const char *name, const char *value, const char *must) {
  snprintf(c->bad_text, sizeof c->bad_text, "%.64s must be %s, not '%.64s'", name, must, value);
  c->bad_header = c->bad_text;
}

/* Lanterna-* / Helicone-* headers set the call's context and are not
 * forwarded; everything else but hop-by-hop headers is. */
static int take_header(void *ud, const char *name, const char *value) {
  hdr_ctx_t *h = ud;
  call_t *c = h->c;
  size_t n = strlen(name);
  const char *rest = NULL;
  if (n > 9 && (!strncasecmp(name, "lanterna-", 9) || !strncasecmp(name, "helicone-", 9))) rest = name + 9;
  if (rest) {
    if (!strcasecmp(rest, "user-id")) keep(c->user, sizeof c->user, value);
    else if (!strcasecmp(rest, "session-id")) keep(c->session, sizeof c->session, value);
    else if (!strcasecmp(rest, "prompt-name") || !strcasecmp(rest, "prompt-id")) keep(c->prompt_name, sizeof c->prompt_name, value);
    else if (!strcasecmp(rest, "prompt-version")) keep(c->prompt_version, sizeof c->prompt_version, value);
    else if (!strcasecmp(rest, "omit-request")) {
      if (!parse_bool(value, &c->omit_req)) bad_value(c, name, value, "true or false");
    } else if (!strcasecmp(rest, "omit-response")) {
      if (!parse_bool(value, &c->omit_resp)) bad_value(c, name, value, "true or false");
    } else if (!strcasecmp(rest, "cache-enabled")) {
      if (!parse_bool(value, &c->cache_opt)) bad_value(c, name, value, "true or false");
    } else if (!strcasecmp(rest, "cache-seed")) keep(c->cache_seed, sizeof c->cache_seed, value);
    else if (!strcasecmp(rest, "cache-ignore-keys")) keep(c->cache_ignore, sizeof c->cache_ignore, value);
    else if (!strcasecmp(rest, "cache-ttl")) {
      if (!parse_secs(value, &c->cache_ttl_hdr)) bad_value(c, name, value, "a whole number of seconds");
    }
    else if (!strcasecmp(rest, "trace-id")) {
      uint8_t t[16];
      if (parse_hex(value, 16, t) && !all_zero(t, 16)) memcpy(c->trace_id, t, 16);
      else c->bad_header = "Lanterna-Trace-Id must be 32 hexadecimal characters, not all zero";
    } else if (!strncasecmp(rest, "property-", 9) && rest[9]) {
      char key[128];
      size_t k = 0;
      for (const char *p = rest + 9; *p && k < sizeof key - 1; p++) key[k++] = (char)tolower((unsigned char)*p);
      key[k] = '\0';
      if (c->n_props < MAX_PROPS) {
        size_t ko = c->k.prop_text.len, vo = ko + k + 1;
        if (lt_buf_append(&c->k.prop_text, key, k + 1) || lt_buf_append(&c->k.prop_text, value, strlen(value) + 1)) {
          h->rc = LT_ENOMEM;
          return 1;
        }
        c->prop_key[c->n_props] = ko;
        c->prop_val[c->n_props++] = vo;
      }
      if (!strcmp(key, "feature")) keep(c->feature, sizeof c->feature, value);
    }
    return 0;
  }
  if (IS(name, n, "cache-control")) {
    /* Standard request directives: max-age sets the lifetime, no-store
     * keeps the call out of the cache. */
    const char *ma = strcasestr(value, "max-age=");
    if (ma) c->cache_max_age = atoll(ma + 8);
    if (strcasestr(value, "no-store")) c->no_store = true;
  }
  if (IS(name, n, "authorization") || IS(name, n, "x-api-key") || IS(name, n, "api-key"))
    c->cred = value; /* fingerprinted only when a cache key or a limit needs it */
  if (IS(name, n, "traceparent")) {
    /* 00-<32 hex trace>-<16 hex parent>-<2 hex flags> */
    uint8_t t[16], s[8];
    if (strlen(value) == 55 && value[2] == '-' && value[35] == '-' && value[52] == '-' &&
        lt_hex_decode(t, 16, value + 3, 32) == 0 && lt_hex_decode(s, 8, value + 36, 16) == 0 && !all_zero(t, 16) &&
        !all_zero(s, 8)) {
      memcpy(c->trace_id, t, 16);
      memcpy(c->parent_id, s, 8);
      c->has_parent = true;
    }
  }
  if (hop_by_hop(name, n)) return 0;
  if (c->n_hdr == MAX_FWD_HEADERS) return 0;
  c->fwd_name[c->n_hdr] = name;
  c->fwd_value[c->n_hdr++] = value;
  return 0;
}

/* The forwarded headers as "Name: value" lines, all in one buffer. */
static int header_lines(call_t *c) {
  size_t off[MAX_FWD_HEADERS];
  lt_buf_t *b = &c->k.hdr_text;
  for (size_t i = 0; i < c->n_hdr; i++) {
    off[i] = b->len;
    if (lt_buf_puts(b, c->fwd_name[i]) || lt_buf_append(b, ": ", 2) || lt_buf_puts(b, c->fwd_value[i]) ||
        lt_buf_append(b, "", 1))
      return LT_ENOMEM;
  }
  for (size_t i = 0; i < c->n_hdr; i++) c->hdr[i] = b->ptr + off[i]; /* the buffer has stopped moving */
  return 0;
}

static void reply_unknown_upstream(lt_proxy_t *px, lt_req_t *r, const char *name) {
  char msg[2048];
  size_t off = (size_t)snprintf(msg, sizeof msg, "no upstream named '%.64s'; configured: ", name);
  for (int i = 0; i < px->n && off < sizeof msg - 80; i++)
    off += (size_t)snprintf(msg + off, sizeof msg - off, "%s%s", i ? ", " : "", px->ups[i].name);
  snprintf(msg + off, sizeof msg - off, " (add one with --upstream NAME=BASE_URL)");
  lt_reply_error(r, 404, "unknown_upstream", msg);
}

/* Rate limits and budgets: a refused call is answered 429 at once (and
 * traced); an admitted one carries RateLimit-* headers of its tightest
 * rule. Returns true when the call is over. */
static bool admit(call_t *c) {
  lt_limit_verdict_t v;
  lt_limit_subject_t subj = limit_subject(c);
  lt_limits_admit(c->px->limits, &subj, mono_ns(), &v);
  if (!v.any) return false;
  char t[64];
  snprintf(t, sizeof t, "%.0f", v.limit);
  lt_req_set_header(c->req, "RateLimit-Limit", t);
  snprintf(t, sizeof t, "%.0f", v.remaining);
  lt_req_set_header(c->req, "RateLimit-Remaining", t);
  snprintf(t, sizeof t, "%lld", (long long)v.reset_s);
  lt_req_set_header(c->req, "RateLimit-Reset", t);
  if (!v.refused) return false;
  atomic_fetch_add(&c->px->limited, 1);
  lt_req_set_header(c->req, "Retry-After", t);
  c->local_status = 429;
  c->status = 429;
  snprintf(c->local_body, sizeof c->local_body, "rate limit reached: %s (limit %s %.10g); retry in %lld s", v.rule,
           v.what, v.limit, (long long)v.reset_s);
  snprintf(c->err, sizeof c->err, "refused by Lanterna's rate limit: %s", v.rule);
  complete(c);
  return true;
}

/* The cache key: everything that makes two calls the same call. */
static void cache_key(call_t *c) {
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  if (!md) return;
  EVP_DigestInit_ex(md, EVP_sha256(), NULL);
  const char *parts[] = {c->up->name, c->method, c->path, c->cred_fp, c->cache_seed};
  for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) EVP_DigestUpdate(md, parts[i], strlen(parts[i]) + 1);
  /* The body canonically: keys sorted, ignored keys removed; a body that
   * is not JSON counts byte for byte. */
  json_t *j = c->body_len ? json_loadb(c->body, c->body_len, 0, NULL) : NULL;
  char *canon = NULL;
  if (json_is_object(j)) {
    if (c->llm.usage_added) json_object_del(json_object_get(j, "stream_options"), "include_usage");
    char ign[256];
    snprintf(ign, sizeof ign, "%s", c->cache_ignore);
    for (char *save = NULL, *k = strtok_r(ign, ", ", &save); k; k = strtok_r(NULL, ", ", &save)) json_object_del(j, k);
    canon = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
  }
  json_decref(j);
  if (canon) EVP_DigestUpdate(md, canon, strlen(canon));
  else if (c->body_len) EVP_DigestUpdate(md, c->body, c->body_len);
  lt_free(canon);
  unsigned n = 0;
  EVP_DigestFinal_ex(md, c->cache_key, &n);
  EVP_MD_CTX_free(md);
}

/* Serves the call from the cache when it opted in and a fresh entry
 * exists; a stream is replayed event by event like a live one. Returns
 * true when the call is over. */
static bool cache_lookup(call_t *c) {
  lt_proxy_t *px = c->px;
  bool opted = c->cache_opt || c->up->cache_ttl_s > 0;
  if (!px->cache || !opted || c->no_store || (strcmp(c->method, "POST") && strcmp(c->method, "GET"))) return false;
  /* Cache-Control: max-age wins, then Lanterna-Cache-Ttl, then the
   * upstream's setting, then the default. */
  c->cache_ttl_s = c->cache_max_age > 0 ? c->cache_max_age
                   : c->cache_ttl_hdr > 0 ? c->cache_ttl_hdr
                   : c->up->cache_ttl_s > 0 ? c->up->cache_ttl_s : CACHE_TTL_DEFAULT_S;
  if (c->cache_ttl_s > CACHE_TTL_MAX_S) c->cache_ttl_s = CACHE_TTL_MAX_S;
  c->cacheable = true;
  cache_key(c);
  lt_pcache_hit_t hit;
  if (!lt_pcache_get(px->cache, c->cache_key, real_ns(), &hit)) return false;
  atomic_fetch_add(&px->hits, 1);
  c->cache_hit = true;
  char line[160];
  snprintf(line, sizeof line, "Content-Type: %s", hit.content_type ? hit.content_type : "application/json");
  char *lines[1] = {line};
  on_headers(c, hit.status, lines, 1);
  if (c->started) relay(c, hit.body, hit.len);
  lt_pcache_hit_free(&hit);
  if (c->sse_on && !c->client_gone) lt_sse_finish(&c->k.sse, on_event, c);
  complete(c);
  return true;
}

void lt_proxy_handle(lt_req_t *r, void *ud) {
  lt_proxy_t *px = ud;
  int64_t t0 = mono_ns();
  /* /proxy/<name>/<rest> */
  const char *path = lt_req_path(r).ptr + strlen("/proxy/");
  const char *slash = strchr(path, '/');
  size_t nl = slash ? (size_t)(slash - path) : strlen(path);
  char name[64];
  if (nl == 0 || nl >= sizeof name) {
    reply_unknown_upstream(px, r, "");
    return;
  }
  memcpy(name, path, nl);
  name[nl] = '\0';
  const upstream_t *up = NULL;
  for (int i = 0; i < px->n; i++)
    if (!strcmp(px->ups[i].name, name)) up = &px->ups[i];
  if (!up) {
    reply_unknown_upstream(px, r, name);
    return;
  }
  /* Authorization belongs to the upstream; Lanterna's own key, when the
   * server needs one, comes in Lanterna-Api-Key. */
  int64_t project = 0;
  const char *lkey = lt_req_header(r, "Lanterna-Api-Key");
  char authz[300];
  if (lkey) snprintf(authz, sizeof authz, "Bearer %s", lkey);
  if (px->cfg.auth(px->cfg.auth_ud, lkey ? authz : NULL, &project) != 0) {
    lt_reply_error(r, 401, "unauthorized",
                   lkey ? "the Lanterna-Api-Key is not valid (revoked or unknown)"
                        : "this server needs a Lanterna key for the proxy: send it in Lanterna-Api-Key "
                          "(Authorization goes to the upstream)");
    return;
  }
  ploop_t *pl = loop_state(px, r);
  call_t *c = pl ? call_new(pl) : NULL;
  if (!c) {
    lt_reply_error(r, 503, "overloaded", "out of memory");
    return;
  }
  atomic_fetch_add(&px->calls, 1);
  c->px = px;
  c->pl = pl;
  c->req = r;
  c->up = up;
  c->project_id = project;
  c->t0_mono = t0;
  c->t0_real = real_ns();
  random_bytes(c->trace_id, 16);
  random_bytes(c->span_id, 8);
  static const char *const names[] = {"GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH"};
  for (int i = 0; i < 7; i++)
    if (lt_req_method(r) == 1 << i) memcpy(c->method, names[i], strlen(names[i]) + 1);
  const char *rest = slash ? slash : "/";
  size_t rl = strnlen(rest, sizeof c->path - 1);
  memcpy(c->path, rest, rl);
  c->path[rl] = '\0';
  lt_llm_init(&c->llm, lt_llm_api_of(rest, up->anthropic));

  hdr_ctx_t h = {c, 0};
  lt_req_each_header(r, take_header, &h);
  if (c->bad_header) {
    lt_reply_error(r, 400, "bad_request", c->bad_header);
    call_free(c);
    return;
  }
  /* The body is copied: the upstream transfer may outlive the client's
   * request object. */
  lt_str_t body = lt_req_body(r);
  char *nb = NULL;
  size_t nbl = 0;
  int rc = h.rc;
  if (rc == 0) rc = header_lines(c);
  /* Small bodies' trees share the loop's arena; big ones get their own. */
  if (rc == 0 && body.len <= EPOCH_BODY) {
    if (!(c->epoch = epoch_acquire(pl))) rc = LT_ENOMEM;
    else lt_llm_use_arena(&c->llm, c->epoch->a);
  }
  if (rc == 0) rc = lt_llm_request(&c->llm, body.ptr, body.len, px->cfg.stream_usage, &nb, &nbl);
  if (rc == 0 && nb) {
    c->body = c->body_owned = nb;
    c->body_len = nbl;
  } else if (rc == 0) {
    c->body = c->llm.body.ptr; /* the call's own copy */
    c->body_len = c->llm.body.len;
  }
  const char *q = lt_req_raw_query(r);
  if (rc == 0 && (lt_buf_puts(&c->k.url, up->base) || lt_buf_puts(&c->k.url, rest) ||
                  (q && (lt_buf_append(&c->k.url, "?", 1) || lt_buf_puts(&c->k.url, q)))))
    rc = LT_ENOMEM;
  if (rc) {
    call_free(c);
    lt_reply_error(r, 503, "overloaded", "out of memory");
    return;
  }
  lt_req_defer(r);
  lt_req_on_close(r, on_client_close, c);
  lt_req_on_drain(r, on_drain, c);
  c->t_sent = mono_ns();
  /* Only a fingerprint of the caller's credential is ever kept (for cache
   * keys and per-key limits), and only computed when one is in play. */
  if (c->cred && (lt_limits_count(px->limits) || (px->cache && (c->cache_opt || up->cache_ttl_s > 0)))) {
    uint8_t d[32];
    unsigned dl = 0;
    EVP_Digest(c->cred, strlen(c->cred), d, &dl, EVP_sha256(), NULL);
    lt_hex_encode(c->cred_fp, d, 16);
  }
  c->cred = NULL; /* the request's bytes: not kept past the handler */
  if (admit(c)) return;
  if (cache_lookup(c)) return;
  start_attempt(c);
}
