/* The three OTLP/HTTP receivers share one path: parse the envelope
 * (content type, encoding, body), decode into the batch arena, map, submit,
 * reply on commit. Only the decode and map steps differ per signal. */
#include "ingest/receiver.h"
#include "core/err.h"
#include "core/inflate.h"
#include "core/log.h"
#include "core/mem.h"
#include "ingest/decode.h"
#include "model/semconv.h"
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

typedef enum { SIG_TRACES, SIG_LOGS, SIG_METRICS } signal_t;

static const char *const kind_name[] = {"spans", "log_records", "data_points"};

/* One request, from its handler to its reply. Its ingest work runs on an
 * ingest worker for large bodies (the loop goes back to its other
 * connections at once), inline on the loop for small ones; the reply
 * always goes through the loop's mailbox, since a worker may not touch
 * the request. */
typedef struct {
  lt_receiver_t *rcv;
  lt_req_t *req;
  signal_t sig;
  bool json;
  lt_encoding_t enc;
  int64_t project;
  void *body_owner;       /* lt_req_take_body's, or NULL: body is the request's */
  lt_str_t body;
  lt_pricebook_t *prices; /* NULL: spans are not priced */
  int rc;                 /* the commit's */
  int64_t rejected;
  char message[256];
  int64_t oldest_ns;      /* records that start before this are refused (retention) */
  int parts;              /* batches still to commit before the reply */
  int status;             /* an error reply instead: status, code, message */
  const char *code, *msg;
} pending_t;

static bool all_zero(const uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (p[i]) return false;
  return true;
}

static void reply_export(lt_req_t *r, bool json, signal_t sig, int64_t rejected, const char *msg) {
  lt_arena_t *a = lt_arena_create(1 << 16);
  lt_str_t body = LT_STR_NULL;
  int rc = a ? 0 : LT_ENOMEM;
  if (!rc) {
    rc = json ? lt_encode_export_response_json(a, kind_name[sig], rejected, msg, &body)
              : lt_encode_export_response_pb(a, kind_name[sig], rejected, msg, &body);
  }
  if (rc) lt_reply_error(r, 500, "internal", "could not encode the response");
  else lt_reply(r, 200, json ? "application/json" : "application/x-protobuf", body.ptr, body.len);
  lt_arena_destroy(a);
}

static void on_reply(lt_req_t *r, void *arg) {
  pending_t *p = arg;
  if (p->status) lt_reply_error(r, p->status, p->code, p->msg);
  else if (p->rc == 0) reply_export(r, p->json, p->sig, p->rejected, p->rejected ? p->message : NULL);
  else if (p->rc == LT_ENOSPACE)
    /* 503, not 507: exporters retry a 503, so nothing is lost once space is freed. */
    lt_reply_error(r, 503, "insufficient_storage",
                   "the server's disk is full: nothing from this request was stored; retry once space is freed");
  else lt_reply_error(r, 503, "overloaded", "the data could not be stored; retry later");
  lt_req_body_free(p->body_owner);
  lt_free(p);
}

/* The parts of a request commit in one transaction (lt_writer_submit_expected),
 * so they report the same rc, one after the other on one thread. */
static void on_committed(lt_batch_t *b, int rc, void *ud) {
  pending_t *p = ud;
  if (rc) p->rc = rc;
  if (--p->parts == 0) lt_req_post(p->req, on_reply, p);
}

static void reject(pending_t *p, const char *what) {
  if (p->rejected++ == 0) snprintf(p->message, sizeof p->message, "%s", what);
}

/* True (and counted as rejected) when a record starting at t_ns is already
 * older than the retention: the next retention pass would delete it. */
static bool too_old(pending_t *p, int64_t t_ns, const char *record) {
  if (t_ns >= p->oldest_ns) return false;
  char what[128];
  snprintf(what, sizeof what, "%s older than the server's retention period (--retention): not stored", record);
  reject(p, what);
  return true;
}

/* ---- per-signal mapping ---------------------------------------------- */

/* Maps the spans whose position in the request is in [lo, hi). */
static int map_spans(lt_batch_t *b, const lt_otlp_traces_t *t, pending_t *p, const lt_prices_t *prices, size_t lo,
                     size_t hi) {
  size_t pos = 0;
  for (size_t i = 0; i < t->n && pos < hi; i++) {
    const lt_otlp_resource_spans_t *rs = &t->items[i];
    size_t here = 0;
    for (size_t j = 0; j < rs->n_scopes; j++) here += rs->scopes[j].n_spans;
    if (pos + here <= lo) {
      pos += here;
      continue;
    }
    lt_semconv_resource_t res;
    int rc = lt_semconv_resource(b->arena, &rs->resource, &res);
    if (rc) return rc;
    for (size_t j = 0; j < rs->n_scopes; j++) {
      const lt_otlp_scope_spans_t *ss = &rs->scopes[j];
      for (size_t k = 0; k < ss->n_spans; k++, pos++) {
        if (pos < lo || pos >= hi) continue;
        const lt_otlp_span_t *in = &ss->spans[k];
        if (all_zero(in->trace_id, 16) || all_zero(in->span_id, 8)) {
          reject(p, "span with an invalid (all-zero or malformed) trace_id or span_id");
          continue;
        }
        lt_span_t *s = lt_batch_add_span(b);
        if (!s) return LT_ETOOBIG;
        rc = lt_semconv_span(b->arena, &res, &ss->scope, in, s);
        if (rc < 0) return rc;
        if (rc > 0) { /* a placeholder the mapper says to drop (LT_SEMCONV_DROP) */
          b->n_spans--;
          continue;
        }
        if (too_old(p, s->start_ns, "span")) {
          b->n_spans--;
          continue;
        }
        if (prices) lt_pricebook_apply(prices, s);
      }
    }
  }
  return 0;
}

static int map_range(lt_batch_t *b, const lt_otlp_traces_t *t, pending_t *p, size_t lo, size_t hi) {
  lt_price_ref_t *ref = p->prices ? lt_pricebook_acquire(p->prices, b->project_id) : NULL;
  int rc = map_spans(b, t, p, ref ? lt_price_ref_table(ref) : NULL, lo, hi);
  if (ref) lt_pricebook_release(p->prices, ref);
  return rc;
}

/* ---- splitting a large request over two threads ------------------------ */

/* Mapping and packing a 500-span request takes ~10 ms on one thread; with
 * the second half done on a helper thread (or by whichever of the two gets
 * to it first), a request's latency halves when the other core is free.
 * The half lives on the heap with two references, because whoever did not
 * run it may return before the other lets go. */
typedef struct {
  const lt_otlp_traces_t *t;
  size_t lo, hi;
  lt_batch_t *b;
  pending_t p;           /* its own counters, merged after */
  lt_writer_t *writer;
  int rc;
  atomic_int state;      /* 0 queued, 1 taken, 2 done */
  atomic_int refs;
  pthread_mutex_t mu;
  pthread_cond_t cv;
} half_t;

static void half_unref(half_t *h) {
  if (atomic_fetch_sub(&h->refs, 1) != 1) return;
  pthread_mutex_destroy(&h->mu);
  pthread_cond_destroy(&h->cv);
  lt_batch_free(h->b); /* NULL once submitted */
  lt_free(h);
}

static void half_run(half_t *h) {
  h->rc = map_range(h->b, h->t, &h->p, h->lo, h->hi);
  if (h->rc == 0) lt_writer_prepare(h->writer, h->b);
}

static void half_job(void *arg) {
  half_t *h = arg;
  int queued = 0;
  if (atomic_compare_exchange_strong(&h->state, &queued, 1)) {
    half_run(h);
    pthread_mutex_lock(&h->mu);
    atomic_store(&h->state, 2);
    pthread_cond_signal(&h->cv);
    pthread_mutex_unlock(&h->mu);
  }
  half_unref(h);
}

/* Maps [0, n) into b, the upper half on the pool when it is worth it.
 * On success *second is the other half's batch (or NULL). */
static int map_traces(lt_receiver_t *rcv, lt_batch_t *b, const lt_otlp_traces_t *t, pending_t *p, size_t cap,
                      lt_batch_t **second) {
  size_t n = 0;
  *second = NULL;
  for (size_t i = 0; i < t->n; i++)
    for (size_t j = 0; j < t->items[i].n_scopes; j++) n += t->items[i].scopes[j].n_spans;
  half_t *h = NULL;
  if (rcv->pool && n >= LT_RECEIVER_SPLIT_SPANS && (h = lt_calloc(1, sizeof *h))) {
    h->b = lt_batch_new(b->project_id, cap);
    if (!h->b) {
      lt_free(h);
      h = NULL;
    }
  }
  if (!h) return map_range(b, t, p, 0, n);
  h->t = t;
  h->lo = n / 2;
  h->hi = n;
  h->p.prices = p->prices;
  h->p.oldest_ns = p->oldest_ns;
  h->writer = rcv->writer;
  atomic_init(&h->state, 0);
  atomic_init(&h->refs, 2);
  pthread_mutex_init(&h->mu, NULL);
  pthread_cond_init(&h->cv, NULL);
  if (lt_workq_submit(rcv->pool, half_job, h) != 0) atomic_store(&h->refs, 1); /* runs here below */
  int rc = map_range(b, t, p, 0, n / 2);
  if (rc == 0) lt_writer_prepare(rcv->writer, b);
  int queued = 0;
  if (atomic_compare_exchange_strong(&h->state, &queued, 1)) {
    half_run(h); /* the helper had not started it: do it ourselves */
  } else {
    pthread_mutex_lock(&h->mu);
    while (atomic_load(&h->state) != 2) pthread_cond_wait(&h->cv, &h->mu);
    pthread_mutex_unlock(&h->mu);
  }
  if (rc == 0) rc = h->rc;
  if (rc == 0) {
    if (h->p.rejected && p->rejected == 0) memcpy(p->message, h->p.message, sizeof p->message);
    p->rejected += h->p.rejected;
    *second = h->b;
    h->b = NULL;
  }
  half_unref(h);
  return rc;
}

static int map_logs(lt_batch_t *b, const lt_otlp_logs_t *t, pending_t *p) {
  for (size_t i = 0; i < t->n; i++) {
    const lt_otlp_resource_logs_t *rl = &t->items[i];
    lt_semconv_resource_t res;
    int rc = lt_semconv_resource(b->arena, &rl->resource, &res);
    if (rc) return rc;
    for (size_t j = 0; j < rl->n_scopes; j++) {
      const lt_otlp_scope_logs_t *sl = &rl->scopes[j];
      for (size_t k = 0; k < sl->n_logs; k++) {
        lt_log_t *l = lt_batch_add_log(b);
        if (!l) return LT_ETOOBIG;
        rc = lt_semconv_log(b->arena, &res, &sl->scope, &sl->logs[k], l);
        if (rc) return rc;
        if (too_old(p, l->time_ns, "log record")) b->n_logs--;
      }
    }
  }
  return 0;
}

static int map_metrics(lt_batch_t *b, const lt_otlp_metrics_t *t, pending_t *p) {
  for (size_t i = 0; i < t->n; i++) {
    const lt_otlp_resource_metrics_t *rm = &t->items[i];
    lt_semconv_resource_t res;
    int rc = lt_semconv_resource(b->arena, &rm->resource, &res);
    if (rc) return rc;
    for (size_t j = 0; j < rm->n_scopes; j++) {
      const lt_otlp_scope_metrics_t *sm = &rm->scopes[j];
      for (size_t k = 0; k < sm->n_metrics; k++) {
        const lt_otlp_metric_t *m = &sm->metrics[k];
        if (!m->name.len) {
          reject(p, "metric without a name");
          continue;
        }
        for (size_t q = 0; q < m->n_points; q++) {
          lt_point_t *pt = lt_batch_add_point(b);
          if (!pt) return LT_ETOOBIG;
          rc = lt_semconv_point(b->arena, &res, &sm->scope, m, &m->points[q], pt);
          if (rc) return rc;
          if (too_old(p, pt->time_ns, "data point")) b->n_points--;
        }
      }
    }
  }
  return 0;
}

/* Decodes into a scratch arena and maps into the batch's, then drops the
 * scratch: the decoded OTLP tree is dead once mapped, and a queued batch
 * then holds only canonical records (about half the memory). */
static int decode_and_map(lt_receiver_t *rcv, lt_batch_t *b, signal_t sig, bool json, const char *body, size_t len,
                          size_t cap, pending_t *p, lt_batch_t **second) {
  lt_arena_t *tmp = lt_arena_create(cap);
  if (!tmp) return LT_ENOMEM;
  int rc;
  switch (sig) {
  case SIG_TRACES: {
    lt_otlp_traces_t t = {0};
    rc = json ? lt_decode_traces_json(tmp, body, len, &t) : lt_decode_traces_pb(tmp, body, len, &t);
    if (rc == 0) rc = map_traces(rcv, b, &t, p, cap, second);
    break;
  }
  case SIG_LOGS: {
    lt_otlp_logs_t t = {0};
    rc = json ? lt_decode_logs_json(tmp, body, len, &t) : lt_decode_logs_pb(tmp, body, len, &t);
    if (rc == 0) rc = map_logs(b, &t, p);
    break;
  }
  default: {
    lt_otlp_metrics_t t = {0};
    rc = json ? lt_decode_metrics_json(tmp, body, len, &t) : lt_decode_metrics_pb(tmp, body, len, &t);
    if (rc == 0) rc = map_metrics(b, &t, p);
    break;
  }
  }
  lt_arena_destroy(tmp);
  return rc;
}

/* ---- the shared handler ------------------------------------------------ */

static bool media_is(const char *ct, const char *type) {
  size_t n = strlen(type);
  return strncasecmp(ct, type, n) == 0 && (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

/* Answers p with an error (on its loop) instead of storing anything. */
static void answer_error(pending_t *p, int status, const char *code, const char *msg) {
  p->status = status;
  p->code = code;
  p->msg = msg;
  lt_req_post(p->req, on_reply, p);
}

/* The same, for a request the writer was told to expect. */
static void fail(pending_t *p, int status, const char *code, const char *msg) {
  lt_writer_expect(p->rcv->writer, -1);
  answer_error(p, status, code, msg);
}

static void ingest_run(pending_t *p) {
  lt_receiver_t *rcv = p->rcv;
  lt_buf_t plain;
  lt_buf_init(&plain, rcv->max_decompressed);
  const char *data = p->body.ptr;
  size_t len = p->body.len;
  if (p->enc != LT_ENC_IDENTITY) {
    int rc = lt_inflate(p->enc, p->body.ptr, p->body.len, &plain);
    if (rc) {
      lt_buf_free(&plain);
      if (rc == LT_ETOOBIG) fail(p, 413, "payload_too_large", "the decompressed body exceeds 64 MiB");
      else if (rc == LT_ENOMEM) fail(p, 503, "overloaded", "out of memory; retry later");
      else fail(p, 400, "bad_request", "the body could not be decompressed");
      return;
    }
    data = plain.ptr ? plain.ptr : "";
    len = plain.len;
  }
  /* Decoded structures plus canonical records take a few times the wire
   * size; the cap keeps a hostile body from taking unbounded memory. */
  size_t cap = len * 8 + (1 << 20);
  lt_batch_t *b = lt_batch_new(p->project, cap);
  if (!b) {
    lt_buf_free(&plain);
    fail(p, 503, "overloaded", "out of memory; retry later");
    return;
  }
  lt_batch_t *parts[2] = {b, NULL};
  int rc = decode_and_map(rcv, b, p->sig, p->json, data, len, cap, p, &parts[1]);
  lt_buf_free(&plain);
  /* Mapped records own copies of what they keep: the body can go now. */
  lt_req_body_free(p->body_owner);
  p->body_owner = NULL;
  /* A half that mapped to nothing (every span dropped) is not sent. */
  if (parts[1] && lt_batch_count(parts[1]) == 0) {
    lt_batch_free(parts[1]);
    parts[1] = NULL;
  }
  if (parts[1] && lt_batch_count(b) == 0) {
    lt_batch_free(b);
    parts[0] = b = parts[1];
    parts[1] = NULL;
  }
  if (rc) {
    lt_batch_free(parts[1]);
    lt_batch_free(b);
    if (rc == LT_EDECODE)
      fail(p, 400, "bad_request",
           p->json ? "the body is not a valid OTLP/JSON request" : "the body is not a valid OTLP protobuf request");
    else if (rc == LT_ETOOBIG) fail(p, 413, "payload_too_large", "the request holds too much data");
    else fail(p, 503, "overloaded", "out of memory; retry later");
    return;
  }
  if (lt_batch_count(b) == 0) {
    lt_writer_expect(rcv->writer, -1);
    lt_batch_free(b);
    lt_req_post(p->req, on_reply, p); /* the export reply */
    return;
  }
  size_t nparts = parts[1] ? 2 : 1;
  for (size_t i = 0; i < nparts; i++) {
    parts[i]->done = on_committed;
    parts[i]->done_ud = p;
  }
  p->parts = (int)nparts;
  /* Takes them (one transaction) and ends the expectation: its own commit
   * never counts it as more to come, so a lone client sees its spans in
   * the rollups at once (store.h). */
  rc = lt_writer_submit_expected(rcv->writer, parts, nparts);
  if (rc)
    answer_error(p, 503, "overloaded",
                 rc == LT_ESHUTDOWN ? "the server is shutting down" : "the write queue is full; retry later");
}

static void ingest_job(void *arg) { ingest_run(arg); }

static void receive(lt_req_t *r, lt_receiver_t *rcv, signal_t sig) {
  const char *ct = lt_req_header(r, "Content-Type");
  bool json;
  if (ct && (media_is(ct, "application/x-protobuf") || media_is(ct, "application/protobuf"))) json = false;
  else if (ct && media_is(ct, "application/json")) json = true;
  else {
    lt_reply_error(r, 415, "unsupported_media_type",
                   "Content-Type must be application/x-protobuf or application/json");
    return;
  }
  const char *ce = lt_req_header(r, "Content-Encoding");
  lt_encoding_t enc = LT_ENC_IDENTITY;
  if (ce && strcasecmp(ce, "gzip") == 0) enc = LT_ENC_GZIP;
  else if (ce && strcasecmp(ce, "deflate") == 0) enc = LT_ENC_DEFLATE;
  else if (ce && strcasecmp(ce, "zstd") == 0) enc = LT_ENC_ZSTD;
  else if (ce && *ce && strcasecmp(ce, "identity") != 0) {
    lt_reply_error(r, 415, "unsupported_media_type", "Content-Encoding must be gzip, deflate, zstd or identity");
    return;
  }
  lt_str_t body = lt_req_body(r);
  if (body.len > rcv->max_decompressed) {
    lt_reply_error(r, 413, "payload_too_large", "the request body exceeds the size limit");
    return;
  }
  pending_t *p = lt_calloc(1, sizeof *p);
  if (!p) {
    lt_reply_error(r, 503, "overloaded", "out of memory; retry later");
    return;
  }
  p->rcv = rcv;
  p->req = r;
  p->sig = sig;
  p->json = json;
  p->enc = enc;
  p->project = lt_req_project(r);
  p->body = body;
  p->prices = rcv->prices;
  p->oldest_ns = INT64_MIN;
  if (rcv->retention_ns > 0) {
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    p->oldest_ns = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec - rcv->retention_ns;
  }
  lt_req_defer(r);
  lt_writer_expect(rcv->writer, 1);
  if (rcv->pool && body.len >= LT_RECEIVER_ASYNC_BYTES && (p->body_owner = lt_req_take_body(r, &p->body))) {
    if (lt_workq_submit(rcv->pool, ingest_job, p) == 0) {
      atomic_fetch_add_explicit(&rcv->offloaded, 1, memory_order_relaxed);
      return;
    }
  }
  ingest_run(p); /* small, or the workers' queue is full: here */
}

void lt_receiver_traces(lt_req_t *r, void *ud) { receive(r, ud, SIG_TRACES); }
void lt_receiver_logs(lt_req_t *r, void *ud) { receive(r, ud, SIG_LOGS); }
void lt_receiver_metrics(lt_req_t *r, void *ud) { receive(r, ud, SIG_METRICS); }
