/* OTLP/protobuf decoder for logs and metrics. Traces are decoded off the
 * wire by otlp_pb_traces.c; the protobuf-c path for them stays here as
 * lt_decode_traces_pb_ref, the reference tests and fuzzing compare it with.
 *
 * protobuf-c unpacks the body with an allocator that takes every byte from
 * the request's arena and never frees (the arena dies whole), so the arena's
 * cap bounds what a hostile body can make us allocate, and a failure
 * anywhere leaks nothing. We then walk the unpacked tree into model/otlp.h
 * in the same arena. Strings are not copied: slices point at protobuf-c's
 * NUL-terminated copies. protobuf-c does not check UTF-8, so strings may
 * hold any bytes; whoever writes them out as JSON must escape
 * (lt_buf_json_str does). Bytes fields (ids, AnyValue bytes) are raw.
 *
 * protobuf-c recurses once per nested message and has no depth limit, and
 * AnyValue nests without bound, so before unpacking we walk the wire bytes
 * once to refuse bodies that nest messages deeper than MAX_MSG_DEPTH.
 *
 * Semantics follow the JSON decoder (ingest/otlp_json.c), so the two wire
 * formats of one request decode to the same structures: AnyValue nesting is
 * capped at MAX_VAL_DEPTH, a malformed id costs only its span or link, a
 * summary's sum is always present, an exponential histogram keeps only
 * count/sum/min/max. */
#include "ingest/decode.h"
#include "core/err.h"
#include <protobuf-c/protobuf-c.h>
#include <stdint.h>
#include <string.h>

#include "opentelemetry/proto/collector/logs/v1/logs_service.pb-c.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb-c.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"

/* Same cap as the JSON decoder: values nested deeper are LT_EDECODE. */
#define MAX_VAL_DEPTH 64
/* Messages nested deeper than this are refused before protobuf-c sees
 * them. A kvlist level costs three messages (AnyValue, KeyValueList,
 * KeyValue), and the deepest attribute list starts about eight messages
 * down, so MAX_VAL_DEPTH kvlists fit with room to spare, while the stack
 * protobuf-c uses (about 1 KiB a level) stays well under a thread's. */
#define MAX_MSG_DEPTH 256

typedef Opentelemetry__Proto__Common__V1__AnyValue pb_any_t;
typedef Opentelemetry__Proto__Common__V1__KeyValue pb_kv_t;
typedef Opentelemetry__Proto__Common__V1__InstrumentationScope pb_scope_t;
typedef Opentelemetry__Proto__Resource__V1__Resource pb_resource_t;
typedef Opentelemetry__Proto__Trace__V1__Span pb_span_t;
typedef Opentelemetry__Proto__Trace__V1__Span__Event pb_event_t;
typedef Opentelemetry__Proto__Trace__V1__Span__Link pb_link_t;
typedef Opentelemetry__Proto__Logs__V1__LogRecord pb_log_t;
typedef Opentelemetry__Proto__Metrics__V1__Metric pb_metric_t;
typedef Opentelemetry__Proto__Metrics__V1__NumberDataPoint pb_number_point_t;
typedef Opentelemetry__Proto__Metrics__V1__HistogramDataPoint pb_hist_point_t;
typedef Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint pb_exp_point_t;
typedef Opentelemetry__Proto__Metrics__V1__SummaryDataPoint pb_summary_point_t;

/* ---- unpacking --------------------------------------------------------- */

/* protobuf-c reports only "failed"; the allocator remembers whether it ran
 * out, so a body over the cap is LT_ETOOBIG and not malformed. */
typedef struct {
  lt_arena_t *arena;
  bool exhausted;
} pb_alloc_t;

static void *pb_alloc(void *data, size_t size) {
  pb_alloc_t *pa = data;
  void *p = lt_arena_alloc(pa->arena, size ? size : 1);
  if (!p) pa->exhausted = true;
  return p;
}

static void pb_free(void *data, void *p) {
  (void)data;
  (void)p;
}

static int read_varint(const uint8_t *p, size_t len, size_t *i, uint64_t *out) {
  uint64_t v = 0;
  for (unsigned shift = 0; shift < 70 && *i < len; shift += 7) {
    uint8_t b = p[(*i)++];
    if (shift < 64) v |= (uint64_t)(b & 0x7f) << shift;
    if (!(b & 0x80)) {
      *out = v;
      return 0;
    }
  }
  return LT_EDECODE;
}

/* Walks one message's fields, descending only into the fields protobuf-c
 * will unpack as sub-messages (unknown fields it keeps as raw bytes), and
 * fails past MAX_MSG_DEPTH. Recursion is bounded by that same limit. Other
 * malformations are left for protobuf-c to find, except those that stop
 * the walk (truncation, groups, which protobuf-c refuses too). */
static int check_nesting(const ProtobufCMessageDescriptor *desc, const uint8_t *p, size_t len, int depth) {
  size_t i = 0;
  if (depth > MAX_MSG_DEPTH) return LT_EDECODE;
  while (i < len) {
    uint64_t key, n;
    if (read_varint(p, len, &i, &key)) return LT_EDECODE;
    switch (key & 7) {
    case 0:
      if (read_varint(p, len, &i, &n)) return LT_EDECODE;
      break;
    case 1:
      if (len - i < 8) return LT_EDECODE;
      i += 8;
      break;
    case 5:
      if (len - i < 4) return LT_EDECODE;
      i += 4;
      break;
    case 2: {
      if (read_varint(p, len, &i, &n) || n > len - i) return LT_EDECODE;
      uint64_t num = key >> 3;
      const ProtobufCFieldDescriptor *f =
          num <= UINT32_MAX ? protobuf_c_message_descriptor_get_field(desc, (unsigned)num) : NULL;
      if (f && f->type == PROTOBUF_C_TYPE_MESSAGE) {
        int rc = check_nesting(f->descriptor, p + i, (size_t)n, depth + 1);
        if (rc) return rc;
      }
      i += (size_t)n;
      break;
    }
    default:
      return LT_EDECODE;
    }
  }
  return 0;
}

/* Unpacks body as a desc message into arena a. */
static int unpack(lt_arena_t *a, const ProtobufCMessageDescriptor *desc, const void *body, size_t len,
                  ProtobufCMessage **out) {
  static const uint8_t empty[1];
  const uint8_t *data = len ? body : empty;
  pb_alloc_t pa = {.arena = a, .exhausted = false};
  ProtobufCAllocator alloc = {.alloc = pb_alloc, .free = pb_free, .allocator_data = &pa};
  int rc = check_nesting(desc, data, len, 0);
  if (rc) return rc;
  *out = protobuf_c_message_unpack(desc, &alloc, len, data);
  if (!*out) return pa.exhausted ? LT_ETOOBIG : LT_EDECODE;
  return 0;
}

/* ---- small conversions ------------------------------------------------- */

/* protobuf-c gives strings as NUL-terminated copies without their length;
 * the strlen is over that copy, not over network bytes. A string with an
 * embedded NUL is therefore cut there. Empty is the null slice, as absent
 * fields are in the JSON decoder. */
static lt_str_t str_of(const char *s) {
  size_t n = s ? strlen(s) : 0;
  return n ? (lt_str_t){s, n} : LT_STR_NULL;
}

/* A zeroed array of n elements, or NULL for n == 0. */
static int alloc_array(lt_arena_t *a, size_t n, size_t size, void **out) {
  *out = NULL;
  if (n == 0) return 0;
  *out = lt_arena_calloc(a, n, size);
  return *out ? 0 : LT_ETOOBIG;
}

typedef enum { ID_ABSENT, ID_OK, ID_BAD } id_state_t;

/* An id must be exactly n bytes; empty is absent. out is written only for
 * ID_OK, so it stays zero otherwise. */
static id_state_t get_id(ProtobufCBinaryData b, uint8_t *out, size_t n) {
  if (b.len == 0) return ID_ABSENT;
  if (b.len != n) return ID_BAD;
  memcpy(out, b.data, n);
  return ID_OK;
}

static bool all_zero(const uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (p[i]) return false;
  return true;
}

/* ---- AnyValue and attributes ------------------------------------------- */

static int conv_kvs(lt_arena_t *a, pb_kv_t *const *kvs, size_t n, int depth, lt_kv_t **items, size_t *n_out);

static int conv_val(lt_arena_t *a, const pb_any_t *v, int depth, lt_val_t *out) {
  int rc = 0;
  out->type = LT_VAL_EMPTY;
  if (depth > MAX_VAL_DEPTH) return LT_EDECODE;
  if (!v) return 0;
  switch (v->value_case) {
  case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE:
    out->type = LT_VAL_STR;
    out->u.s = str_of(v->string_value);
    break;
  case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE:
    out->type = LT_VAL_BOOL;
    out->u.b = v->bool_value != 0;
    break;
  case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE:
    out->type = LT_VAL_INT;
    out->u.i = v->int_value;
    break;
  case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE:
    out->type = LT_VAL_DOUBLE;
    out->u.d = v->double_value;
    break;
  case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE:
    out->type = LT_VAL_BYTES;
    out->u.s = (lt_str_t){(const char *)v->bytes_value.data, v->bytes_value.len};
    if (out->u.s.len == 0) out->u.s.ptr = NULL;
    break;
  case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE: {
    size_t n = v->array_value ? v->array_value->n_values : 0;
    lt_val_t *items;
    if ((rc = alloc_array(a, n, sizeof *items, (void **)&items))) return rc;
    for (size_t i = 0; i < n; i++)
      if ((rc = conv_val(a, v->array_value->values[i], depth + 1, &items[i]))) return rc;
    out->type = LT_VAL_ARRAY;
    out->u.arr.items = items;
    out->u.arr.n = n;
    break;
  }
  case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE: {
    lt_kv_t *items = NULL;
    size_t n = 0;
    if (v->kvlist_value &&
        (rc = conv_kvs(a, v->kvlist_value->values, v->kvlist_value->n_values, depth + 1, &items, &n)))
      return rc;
    out->type = LT_VAL_KVLIST;
    out->u.kv.items = items;
    out->u.kv.n = n;
    break;
  }
  default: /* not set, or a member added after we were written */
    break;
  }
  return 0;
}

static int conv_kvs(lt_arena_t *a, pb_kv_t *const *kvs, size_t n, int depth, lt_kv_t **items, size_t *n_out) {
  lt_kv_t *out;
  int rc = alloc_array(a, n, sizeof *out, (void **)&out);
  for (size_t i = 0; rc == 0 && i < n; i++) {
    out[i].key = str_of(kvs[i]->key);
    rc = conv_val(a, kvs[i]->value, depth, &out[i].val);
  }
  if (rc == 0) {
    *items = out;
    *n_out = n;
  }
  return rc;
}

static int conv_attrs(lt_arena_t *a, pb_kv_t *const *kvs, size_t n, lt_attrs_t *out) {
  return conv_kvs(a, kvs, n, 1, &out->items, &out->n);
}

static int conv_resource(lt_arena_t *a, const pb_resource_t *r, lt_attrs_t *out) {
  return r ? conv_attrs(a, r->attributes, r->n_attributes, out) : 0;
}

static int conv_scope(lt_arena_t *a, const pb_scope_t *s, lt_otlp_scope_t *out) {
  if (!s) return 0;
  out->name = str_of(s->name);
  out->version = str_of(s->version);
  return conv_attrs(a, s->attributes, s->n_attributes, &out->attrs);
}

/* Allocates *items (n elements of size) and converts each of src[0..n). */
typedef int (*conv_fn)(lt_arena_t *a, const void *src, void *elem);

static int each(lt_arena_t *a, void *const *src, size_t n, size_t size, conv_fn fn, void **items, size_t *n_out) {
  unsigned char *out;
  int rc = alloc_array(a, n, size, (void **)&out);
  for (size_t i = 0; rc == 0 && i < n; i++) rc = fn(a, src[i], out + i * size);
  if (rc == 0) {
    *items = out;
    *n_out = n;
  }
  return rc;
}

/* ---- traces ------------------------------------------------------------ */

static int conv_event(lt_arena_t *a, const void *src, void *elem) {
  const pb_event_t *e = src;
  lt_otlp_event_t *ev = elem;
  ev->time_ns = e->time_unix_nano;
  ev->name = str_of(e->name);
  return conv_attrs(a, e->attributes, e->n_attributes, &ev->attrs);
}

static int conv_link(lt_arena_t *a, const void *src, void *elem) {
  const pb_link_t *k = src;
  lt_otlp_link_t *l = elem;
  /* A malformed id loses only the link target; the span is still good. */
  if (get_id(k->trace_id, l->trace_id, sizeof l->trace_id) == ID_BAD ||
      get_id(k->span_id, l->span_id, sizeof l->span_id) == ID_BAD) {
    memset(l->trace_id, 0, sizeof l->trace_id);
    memset(l->span_id, 0, sizeof l->span_id);
  }
  l->trace_state = str_of(k->trace_state);
  return conv_attrs(a, k->attributes, k->n_attributes, &l->attrs);
}

static int conv_span(lt_arena_t *a, const void *src, void *elem) {
  const pb_span_t *p = src;
  lt_otlp_span_t *s = elem;
  id_state_t tid = get_id(p->trace_id, s->trace_id, sizeof s->trace_id);
  id_state_t sid = get_id(p->span_id, s->span_id, sizeof s->span_id);
  id_state_t pid = get_id(p->parent_span_id, s->parent_span_id, sizeof s->parent_span_id);
  if (tid == ID_BAD || sid == ID_BAD || pid == ID_BAD) {
    /* One span with an id of the wrong length must not cost the whole
     * request: all its ids are left zero, which OTLP defines as invalid, so
     * the receiver rejects just this span and counts it in partial_success. */
    memset(s->trace_id, 0, sizeof s->trace_id);
    memset(s->span_id, 0, sizeof s->span_id);
    memset(s->parent_span_id, 0, sizeof s->parent_span_id);
  }
  s->has_parent = pid == ID_OK && tid != ID_BAD && sid != ID_BAD &&
                  !all_zero(s->parent_span_id, sizeof s->parent_span_id);
  s->trace_state = str_of(p->trace_state);
  s->name = str_of(p->name);
  s->kind = (int)p->kind;
  s->start_ns = p->start_time_unix_nano;
  s->end_ns = p->end_time_unix_nano;
  if (p->status) {
    s->status_code = (int)p->status->code;
    s->status_message = str_of(p->status->message);
  }
  int rc = conv_attrs(a, p->attributes, p->n_attributes, &s->attrs);
  if (rc == 0)
    rc = each(a, (void *const *)p->events, p->n_events, sizeof *s->events, conv_event, (void **)&s->events,
              &s->n_events);
  if (rc == 0)
    rc = each(a, (void *const *)p->links, p->n_links, sizeof *s->links, conv_link, (void **)&s->links,
              &s->n_links);
  return rc;
}

static int conv_scope_spans(lt_arena_t *a, const void *src, void *elem) {
  const Opentelemetry__Proto__Trace__V1__ScopeSpans *p = src;
  lt_otlp_scope_spans_t *ss = elem;
  int rc = conv_scope(a, p->scope, &ss->scope);
  if (rc == 0)
    rc = each(a, (void *const *)p->spans, p->n_spans, sizeof *ss->spans, conv_span, (void **)&ss->spans,
              &ss->n_spans);
  return rc;
}

static int conv_resource_spans(lt_arena_t *a, const void *src, void *elem) {
  const Opentelemetry__Proto__Trace__V1__ResourceSpans *p = src;
  lt_otlp_resource_spans_t *rs = elem;
  int rc = conv_resource(a, p->resource, &rs->resource);
  if (rc == 0)
    rc = each(a, (void *const *)p->scope_spans, p->n_scope_spans, sizeof *rs->scopes, conv_scope_spans,
              (void **)&rs->scopes, &rs->n_scopes);
  return rc;
}

/* Not used by the server (see the file comment). */
int lt_decode_traces_pb_ref(lt_arena_t *a, const void *body, size_t len, lt_otlp_traces_t *out) {
  ProtobufCMessage *m;
  lt_otlp_traces_t t = {0};
  int rc = unpack(a, &opentelemetry__proto__collector__trace__v1__export_trace_service_request__descriptor, body,
                  len, &m);
  if (rc) return rc;
  const Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest *req = (const void *)m;
  rc = each(a, (void *const *)req->resource_spans, req->n_resource_spans, sizeof *t.items, conv_resource_spans,
            (void **)&t.items, &t.n);
  if (rc == 0) *out = t;
  return rc;
}

/* ---- logs -------------------------------------------------------------- */

static int conv_log(lt_arena_t *a, const void *src, void *elem) {
  const pb_log_t *p = src;
  lt_otlp_log_t *l = elem;
  /* Log records need no ids; a malformed one is dropped, not the record. */
  l->has_trace = get_id(p->trace_id, l->trace_id, sizeof l->trace_id) == ID_OK &&
                 !all_zero(l->trace_id, sizeof l->trace_id);
  l->has_span = get_id(p->span_id, l->span_id, sizeof l->span_id) == ID_OK &&
                !all_zero(l->span_id, sizeof l->span_id);
  l->time_ns = p->time_unix_nano;
  l->observed_ns = p->observed_time_unix_nano;
  l->severity_number = (int)p->severity_number;
  l->severity_text = str_of(p->severity_text);
  l->flags = p->flags;
  l->event_name = str_of(p->event_name);
  int rc = conv_val(a, p->body, 1, &l->body);
  if (rc == 0) rc = conv_attrs(a, p->attributes, p->n_attributes, &l->attrs);
  return rc;
}

static int conv_scope_logs(lt_arena_t *a, const void *src, void *elem) {
  const Opentelemetry__Proto__Logs__V1__ScopeLogs *p = src;
  lt_otlp_scope_logs_t *sl = elem;
  int rc = conv_scope(a, p->scope, &sl->scope);
  if (rc == 0)
    rc = each(a, (void *const *)p->log_records, p->n_log_records, sizeof *sl->logs, conv_log, (void **)&sl->logs,
              &sl->n_logs);
  return rc;
}

static int conv_resource_logs(lt_arena_t *a, const void *src, void *elem) {
  const Opentelemetry__Proto__Logs__V1__ResourceLogs *p = src;
  lt_otlp_resource_logs_t *rl = elem;
  int rc = conv_resource(a, p->resource, &rl->resource);
  if (rc == 0)
    rc = each(a, (void *const *)p->scope_logs, p->n_scope_logs, sizeof *rl->scopes, conv_scope_logs,
              (void **)&rl->scopes, &rl->n_scopes);
  return rc;
}

int lt_decode_logs_pb(lt_arena_t *a, const void *body, size_t len, lt_otlp_logs_t *out) {
  ProtobufCMessage *m;
  lt_otlp_logs_t t = {0};
  int rc = unpack(a, &opentelemetry__proto__collector__logs__v1__export_logs_service_request__descriptor, body,
                  len, &m);
  if (rc) return rc;
  const Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceRequest *req = (const void *)m;
  rc = each(a, (void *const *)req->resource_logs, req->n_resource_logs, sizeof *t.items, conv_resource_logs,
            (void **)&t.items, &t.n);
  if (rc == 0) *out = t;
  return rc;
}

/* ---- metrics ----------------------------------------------------------- */

static int conv_number_point(lt_arena_t *a, const void *src, void *elem) {
  const pb_number_point_t *p = src;
  lt_otlp_point_t *o = elem;
  o->start_ns = p->start_time_unix_nano;
  o->time_ns = p->time_unix_nano;
  if (p->value_case == OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT) {
    o->value = (double)p->as_int;
    o->as_int = true;
  } else if (p->value_case == OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_DOUBLE) {
    o->value = p->as_double;
  }
  return conv_attrs(a, p->attributes, p->n_attributes, &o->attrs);
}

static int conv_hist_point(lt_arena_t *a, const void *src, void *elem) {
  const pb_hist_point_t *p = src;
  lt_otlp_point_t *o = elem;
  o->start_ns = p->start_time_unix_nano;
  o->time_ns = p->time_unix_nano;
  o->count = p->count;
  o->has_sum = p->sum_present_case == OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT__SUM_PRESENT_SUM;
  o->has_min = p->min_present_case == OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT__MIN_PRESENT_MIN;
  o->has_max = p->max_present_case == OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT__MAX_PRESENT_MAX;
  if (o->has_sum) o->sum = p->sum;
  if (o->has_min) o->min = p->min;
  if (o->has_max) o->max = p->max;
  /* Both arrays are already in the arena, in the element types we use. */
  o->n_buckets = p->n_bucket_counts;
  o->bucket_counts = o->n_buckets ? p->bucket_counts : NULL;
  o->n_bounds = p->n_explicit_bounds;
  o->explicit_bounds = o->n_bounds ? p->explicit_bounds : NULL;
  return conv_attrs(a, p->attributes, p->n_attributes, &o->attrs);
}

static int conv_exp_point(lt_arena_t *a, const void *src, void *elem) {
  const pb_exp_point_t *p = src;
  lt_otlp_point_t *o = elem;
  o->start_ns = p->start_time_unix_nano;
  o->time_ns = p->time_unix_nano;
  o->count = p->count;
  o->has_sum =
      p->sum_present_case == OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM_DATA_POINT__SUM_PRESENT_SUM;
  o->has_min =
      p->min_present_case == OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM_DATA_POINT__MIN_PRESENT_MIN;
  o->has_max =
      p->max_present_case == OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM_DATA_POINT__MAX_PRESENT_MAX;
  if (o->has_sum) o->sum = p->sum;
  if (o->has_min) o->min = p->min;
  if (o->has_max) o->max = p->max;
  return conv_attrs(a, p->attributes, p->n_attributes, &o->attrs);
}

/* A summary's sum is a plain double, so it is always there (0 when not
 * sent, its default). */
static int conv_summary_point(lt_arena_t *a, const void *src, void *elem) {
  const pb_summary_point_t *p = src;
  lt_otlp_point_t *o = elem;
  o->start_ns = p->start_time_unix_nano;
  o->time_ns = p->time_unix_nano;
  o->count = p->count;
  o->sum = p->sum;
  o->has_sum = true;
  return conv_attrs(a, p->attributes, p->n_attributes, &o->attrs);
}

static int conv_metric(lt_arena_t *a, const void *src, void *elem) {
  const pb_metric_t *p = src;
  lt_otlp_metric_t *m = elem;
  void *const *points = NULL;
  size_t n = 0;
  conv_fn fn = NULL;
  m->name = str_of(p->name);
  m->description = str_of(p->description);
  m->unit = str_of(p->unit);
  switch (p->data_case) {
  case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE:
    m->type = LT_METRIC_GAUGE;
    if (p->gauge) {
      points = (void *const *)p->gauge->data_points;
      n = p->gauge->n_data_points;
    }
    fn = conv_number_point;
    break;
  case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM:
    m->type = LT_METRIC_SUM;
    if (p->sum) {
      points = (void *const *)p->sum->data_points;
      n = p->sum->n_data_points;
      m->temporality = (int)p->sum->aggregation_temporality;
      m->monotonic = p->sum->is_monotonic != 0;
    }
    fn = conv_number_point;
    break;
  case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
    m->type = LT_METRIC_HISTOGRAM;
    if (p->histogram) {
      points = (void *const *)p->histogram->data_points;
      n = p->histogram->n_data_points;
      m->temporality = (int)p->histogram->aggregation_temporality;
    }
    fn = conv_hist_point;
    break;
  case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM:
    m->type = LT_METRIC_EXP_HISTOGRAM;
    if (p->exponential_histogram) {
      points = (void *const *)p->exponential_histogram->data_points;
      n = p->exponential_histogram->n_data_points;
      m->temporality = (int)p->exponential_histogram->aggregation_temporality;
    }
    fn = conv_exp_point;
    break;
  case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY:
    m->type = LT_METRIC_SUMMARY;
    if (p->summary) {
      points = (void *const *)p->summary->data_points;
      n = p->summary->n_data_points;
    }
    fn = conv_summary_point;
    break;
  default: /* no data: type stays 0, as in the JSON decoder */
    return 0;
  }
  return each(a, points, n, sizeof *m->points, fn, (void **)&m->points, &m->n_points);
}

static int conv_scope_metrics(lt_arena_t *a, const void *src, void *elem) {
  const Opentelemetry__Proto__Metrics__V1__ScopeMetrics *p = src;
  lt_otlp_scope_metrics_t *sm = elem;
  int rc = conv_scope(a, p->scope, &sm->scope);
  if (rc == 0)
    rc = each(a, (void *const *)p->metrics, p->n_metrics, sizeof *sm->metrics, conv_metric, (void **)&sm->metrics,
              &sm->n_metrics);
  return rc;
}

static int conv_resource_metrics(lt_arena_t *a, const void *src, void *elem) {
  const Opentelemetry__Proto__Metrics__V1__ResourceMetrics *p = src;
  lt_otlp_resource_metrics_t *rm = elem;
  int rc = conv_resource(a, p->resource, &rm->resource);
  if (rc == 0)
    rc = each(a, (void *const *)p->scope_metrics, p->n_scope_metrics, sizeof *rm->scopes, conv_scope_metrics,
              (void **)&rm->scopes, &rm->n_scopes);
  return rc;
}

int lt_decode_metrics_pb(lt_arena_t *a, const void *body, size_t len, lt_otlp_metrics_t *out) {
  ProtobufCMessage *m;
  lt_otlp_metrics_t t = {0};
  int rc = unpack(a, &opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__descriptor,
                  body, len, &m);
  if (rc) return rc;
  const Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest *req = (const void *)m;
  rc = each(a, (void *const *)req->resource_metrics, req->n_resource_metrics, sizeof *t.items,
            conv_resource_metrics, (void **)&t.items, &t.n);
  if (rc == 0) *out = t;
  return rc;
}

/* ---- response ---------------------------------------------------------- */

static int pack(lt_arena_t *a, const ProtobufCMessage *m, lt_str_t *out) {
  size_t n = protobuf_c_message_get_packed_size(m);
  uint8_t *buf = lt_arena_alloc(a, n ? n : 1); /* an empty body still gets a pointer */
  if (!buf) return LT_ENOMEM;
  protobuf_c_message_pack(m, buf);
  *out = (lt_str_t){(const char *)buf, n};
  return 0;
}

/* Full success is an empty message (partial_success unset, as OTLP asks);
 * a message with nothing rejected is a warning and still gets
 * partial_success. An unknown kind is a caller bug: LT_EINVAL. protobuf-c
 * only reads error_message, hence the casts. */
int lt_encode_export_response_pb(lt_arena_t *a, const char *kind, int64_t rejected, const char *message,
                                 lt_str_t *out) {
  bool partial = rejected != 0 || (message && message[0]);
  char *msg = message ? (char *)message : (char *)protobuf_c_empty_string;
  if (!kind) return LT_EINVAL;
  if (strcmp(kind, "spans") == 0) {
    Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceResponse r =
        OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_RESPONSE__INIT;
    Opentelemetry__Proto__Collector__Trace__V1__ExportTracePartialSuccess ps =
        OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_PARTIAL_SUCCESS__INIT;
    ps.rejected_spans = rejected;
    ps.error_message = msg;
    if (partial) r.partial_success = &ps;
    return pack(a, &r.base, out);
  }
  if (strcmp(kind, "log_records") == 0) {
    Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceResponse r =
        OPENTELEMETRY__PROTO__COLLECTOR__LOGS__V1__EXPORT_LOGS_SERVICE_RESPONSE__INIT;
    Opentelemetry__Proto__Collector__Logs__V1__ExportLogsPartialSuccess ps =
        OPENTELEMETRY__PROTO__COLLECTOR__LOGS__V1__EXPORT_LOGS_PARTIAL_SUCCESS__INIT;
    ps.rejected_log_records = rejected;
    ps.error_message = msg;
    if (partial) r.partial_success = &ps;
    return pack(a, &r.base, out);
  }
  if (strcmp(kind, "data_points") == 0) {
    Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceResponse r =
        OPENTELEMETRY__PROTO__COLLECTOR__METRICS__V1__EXPORT_METRICS_SERVICE_RESPONSE__INIT;
    Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsPartialSuccess ps =
        OPENTELEMETRY__PROTO__COLLECTOR__METRICS__V1__EXPORT_METRICS_PARTIAL_SUCCESS__INIT;
    ps.rejected_data_points = rejected;
    ps.error_message = msg;
    if (partial) r.partial_success = &ps;
    return pack(a, &r.base, out);
  }
  return LT_EINVAL;
}
