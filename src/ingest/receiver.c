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
#include <stdio.h>
#include <string.h>
#include <strings.h>

typedef enum { SIG_TRACES, SIG_LOGS, SIG_METRICS } signal_t;

static const char *const kind_name[] = {"spans", "log_records", "data_points"};

/* Lives from submit to reply. */
typedef struct {
  lt_req_t *req;
  signal_t sig;
  bool json;
  int rc;
  int64_t rejected;
  char message[256];
  lt_pricebook_t *prices; /* NULL: spans are not priced */
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
  if (p->rc == 0) reply_export(r, p->json, p->sig, p->rejected, p->rejected ? p->message : NULL);
  else lt_reply_error(r, 503, "overloaded", "the data could not be stored; retry later");
  lt_free(p);
}

static void on_committed(lt_batch_t *b, int rc, void *ud) {
  pending_t *p = ud;
  p->rc = rc;
  lt_req_post(p->req, on_reply, p);
}

static void reject(pending_t *p, const char *what) {
  if (p->rejected++ == 0) snprintf(p->message, sizeof p->message, "%s", what);
}

/* ---- per-signal mapping ---------------------------------------------- */

static int map_spans(lt_batch_t *b, const lt_otlp_traces_t *t, pending_t *p, const lt_prices_t *prices) {
  for (size_t i = 0; i < t->n; i++) {
    const lt_otlp_resource_spans_t *rs = &t->items[i];
    lt_semconv_resource_t res;
    int rc = lt_semconv_resource(b->arena, &rs->resource, &res);
    if (rc) return rc;
    for (size_t j = 0; j < rs->n_scopes; j++) {
      const lt_otlp_scope_spans_t *ss = &rs->scopes[j];
      for (size_t k = 0; k < ss->n_spans; k++) {
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
        if (prices) lt_pricebook_apply(prices, s);
      }
    }
  }
  return 0;
}

static int map_traces(lt_batch_t *b, const lt_otlp_traces_t *t, pending_t *p) {
  lt_price_ref_t *ref = p->prices ? lt_pricebook_acquire(p->prices, b->project_id) : NULL;
  int rc = map_spans(b, t, p, ref ? lt_price_ref_table(ref) : NULL);
  if (ref) lt_pricebook_release(p->prices, ref);
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
        }
      }
    }
  }
  return 0;
}

/* Decodes into a scratch arena and maps into the batch's, then drops the
 * scratch: the decoded OTLP tree is dead once mapped, and a queued batch
 * then holds only canonical records (about half the memory). */
static int decode_and_map(lt_batch_t *b, signal_t sig, bool json, const char *body, size_t len, size_t cap,
                          pending_t *p) {
  lt_arena_t *tmp = lt_arena_create(cap);
  if (!tmp) return LT_ENOMEM;
  int rc;
  switch (sig) {
  case SIG_TRACES: {
    lt_otlp_traces_t t = {0};
    rc = json ? lt_decode_traces_json(tmp, body, len, &t) : lt_decode_traces_pb(tmp, body, len, &t);
    if (rc == 0) rc = map_traces(b, &t, p);
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
  else if (ce && *ce && strcasecmp(ce, "identity") != 0) {
    lt_reply_error(r, 415, "unsupported_media_type", "Content-Encoding must be gzip, deflate or identity");
    return;
  }

  lt_str_t body = lt_req_body(r);
  lt_buf_t plain;
  lt_buf_init(&plain, rcv->max_decompressed);
  const char *data = body.ptr;
  size_t len = body.len;
  if (len > rcv->max_decompressed) {
    lt_reply_error(r, 413, "payload_too_large", "the request body exceeds the size limit");
    return;
  }
  if (enc != LT_ENC_IDENTITY) {
    int rc = lt_inflate(enc, body.ptr, body.len, &plain);
    if (rc) {
      lt_buf_free(&plain);
      if (rc == LT_ETOOBIG) lt_reply_error(r, 413, "payload_too_large", "the decompressed body exceeds 64 MiB");
      else if (rc == LT_ENOMEM) lt_reply_error(r, 503, "overloaded", "out of memory; retry later");
      else lt_reply_error(r, 400, "bad_request", "the body could not be decompressed");
      return;
    }
    data = plain.ptr ? plain.ptr : "";
    len = plain.len;
  }

  pending_t *p = lt_calloc(1, sizeof *p);
  /* Decoded structures plus canonical records take a few times the wire
   * size; the cap keeps a hostile body from taking unbounded memory. */
  size_t cap = len * 8 + (1 << 20);
  lt_batch_t *b = p ? lt_batch_new(lt_req_project(r), cap) : NULL;
  if (!b) {
    lt_free(p);
    lt_buf_free(&plain);
    lt_reply_error(r, 503, "overloaded", "out of memory; retry later");
    return;
  }
  p->req = r;
  p->sig = sig;
  p->json = json;
  p->prices = rcv->prices;
  lt_writer_expect(rcv->writer, 1);
  int rc = decode_and_map(b, sig, json, data, len, cap, p);
  lt_buf_free(&plain);
  if (rc || lt_batch_count(b) == 0) lt_writer_expect(rcv->writer, -1);
  if (rc) {
    lt_batch_free(b);
    lt_free(p);
    if (rc == LT_EDECODE) lt_reply_error(r, 400, "bad_request", json ? "the body is not a valid OTLP/JSON request"
                                                                     : "the body is not a valid OTLP protobuf request");
    else if (rc == LT_ETOOBIG) lt_reply_error(r, 413, "payload_too_large", "the request holds too much data");
    else lt_reply_error(r, 503, "overloaded", "out of memory; retry later");
    return;
  }
  if (lt_batch_count(b) == 0) {
    int64_t rejected = p->rejected;
    reply_export(r, json, sig, rejected, rejected ? p->message : NULL);
    lt_batch_free(b);
    lt_free(p);
    return;
  }
  b->done = on_committed;
  b->done_ud = p;
  lt_req_defer(r);
  rc = lt_writer_submit(rcv->writer, b); /* takes b */
  lt_writer_expect(rcv->writer, -1);
  if (rc) {
    lt_free(p);
    lt_reply_error(r, 503, "overloaded",
                   rc == LT_ESHUTDOWN ? "the server is shutting down" : "the write queue is full; retry later");
  }
}

void lt_receiver_traces(lt_req_t *r, void *ud) { receive(r, ud, SIG_TRACES); }
void lt_receiver_logs(lt_req_t *r, void *ud) { receive(r, ud, SIG_LOGS); }
void lt_receiver_metrics(lt_req_t *r, void *ud) { receive(r, ud, SIG_METRICS); }
