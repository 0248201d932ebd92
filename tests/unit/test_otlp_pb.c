/* Unit tests for the OTLP/protobuf decoder and response encoder
 * (ingest/otlp_pb.c). Requests are built with the protobuf-c generated
 * structs and packed, so every field travels the real wire format; the
 * fixtures in tests/data/otlp_pb were written by the official OTLP library
 * (scripts/gen-pb-fixtures.py), which checks our field numbers from the
 * other side. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/arena.h"
#include "core/err.h"
#include "core/mem.h"
#include "ingest/decode.h"

#include "opentelemetry/proto/collector/logs/v1/logs_service.pb-c.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb-c.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"

typedef Opentelemetry__Proto__Common__V1__AnyValue any_t;
typedef Opentelemetry__Proto__Common__V1__ArrayValue array_t;
typedef Opentelemetry__Proto__Common__V1__KeyValueList kvlist_t;
typedef Opentelemetry__Proto__Common__V1__KeyValue kv_t;
typedef Opentelemetry__Proto__Common__V1__InstrumentationScope scope_t;
typedef Opentelemetry__Proto__Resource__V1__Resource resource_t;
typedef Opentelemetry__Proto__Trace__V1__Span span_t;
typedef Opentelemetry__Proto__Trace__V1__Span__Event event_t;
typedef Opentelemetry__Proto__Trace__V1__Span__Link link_t;
typedef Opentelemetry__Proto__Trace__V1__Status status_t;
typedef Opentelemetry__Proto__Trace__V1__ScopeSpans scope_spans_t;
typedef Opentelemetry__Proto__Trace__V1__ResourceSpans resource_spans_t;
typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest trace_req_t;
typedef Opentelemetry__Proto__Logs__V1__LogRecord log_t;
typedef Opentelemetry__Proto__Logs__V1__ScopeLogs scope_logs_t;
typedef Opentelemetry__Proto__Logs__V1__ResourceLogs resource_logs_t;
typedef Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceRequest logs_req_t;
typedef Opentelemetry__Proto__Metrics__V1__Metric metric_t;
typedef Opentelemetry__Proto__Metrics__V1__NumberDataPoint number_point_t;
typedef Opentelemetry__Proto__Metrics__V1__HistogramDataPoint hist_point_t;
typedef Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint exp_point_t;
typedef Opentelemetry__Proto__Metrics__V1__SummaryDataPoint summary_point_t;
typedef Opentelemetry__Proto__Metrics__V1__ScopeMetrics scope_metrics_t;
typedef Opentelemetry__Proto__Metrics__V1__ResourceMetrics resource_metrics_t;
typedef Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest metrics_req_t;

static const uint8_t TRACE_ID[16] = {0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6,
                                     0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36};
static const uint8_t SPAN_ID[8] = {0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7};
static const uint8_t PARENT_ID[8] = {0x53, 0x99, 0x5c, 0x3f, 0x42, 0xcd, 0x8a, 0xd8};
static const uint8_t ZERO_ID[16];

/* Everything a test builds lives in this arena, freed by the teardown. */
static lt_arena_t *scratch;

static int setup(void **st) {
  scratch = lt_arena_create(16u << 20);
  return scratch ? 0 : -1;
}

static int teardown(void **st) {
  lt_arena_destroy(scratch);
  scratch = NULL;
  return 0;
}

static void *mk(size_t n) {
  void *p = lt_arena_calloc(scratch, 1, n);
  assert_non_null(p);
  return p;
}

static void *dup_init(const void *init, size_t n) {
  void *p = mk(n);
  memcpy(p, init, n);
  return p;
}

/* A copy in the scratch arena of a generated struct's initializer. */
#define NEW(type, init) ((type *)dup_init(&(type)init, sizeof(type)))

static ProtobufCBinaryData bin(const uint8_t *p, size_t n) { return (ProtobufCBinaryData){n, (uint8_t *)p}; }

static any_t *v_str(const char *s) {
  any_t *v = NEW(any_t, OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT);
  v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
  v->string_value = (char *)s;
  return v;
}

static any_t *v_int(int64_t i) {
  any_t *v = NEW(any_t, OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT);
  v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
  v->int_value = i;
  return v;
}

static any_t *v_double(double d) {
  any_t *v = NEW(any_t, OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT);
  v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
  v->double_value = d;
  return v;
}

static any_t *v_bool(int b) {
  any_t *v = NEW(any_t, OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT);
  v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE;
  v->bool_value = b;
  return v;
}

static any_t *v_bytes(const void *p, size_t n) {
  any_t *v = NEW(any_t, OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT);
  v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE;
  v->bytes_value = bin(p, n);
  return v;
}

static any_t *v_empty(void) { return NEW(any_t, OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT); }

/* Items are NULL-terminated. */
static any_t *v_array(any_t *first, ...) {
  array_t *arr = NEW(array_t, OPENTELEMETRY__PROTO__COMMON__V1__ARRAY_VALUE__INIT);
  any_t **items = mk(16 * sizeof *items);
  va_list ap;
  va_start(ap, first);
  for (any_t *it = first; it; it = va_arg(ap, any_t *)) items[arr->n_values++] = it;
  va_end(ap);
  arr->values = items;
  any_t *v = NEW(any_t, OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT);
  v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE;
  v->array_value = arr;
  return v;
}

static kv_t *kv(const char *key, any_t *val) {
  kv_t *k = NEW(kv_t, OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE__INIT);
  k->key = (char *)key;
  k->value = val;
  return k;
}

/* A NULL-terminated list of kv_t * as (array, count). */
static kv_t **kvs(size_t *n, kv_t *first, ...) {
  kv_t **items = mk(16 * sizeof *items);
  va_list ap;
  *n = 0;
  va_start(ap, first);
  for (kv_t *it = first; it; it = va_arg(ap, kv_t *)) items[(*n)++] = it;
  va_end(ap);
  return items;
}

static any_t *v_kvlist(kv_t *first, ...) {
  kvlist_t *l = NEW(kvlist_t, OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE_LIST__INIT);
  kv_t **items = mk(16 * sizeof *items);
  va_list ap;
  va_start(ap, first);
  for (kv_t *it = first; it; it = va_arg(ap, kv_t *)) items[l->n_values++] = it;
  va_end(ap);
  l->values = items;
  any_t *v = NEW(any_t, OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT);
  v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE;
  v->kvlist_value = l;
  return v;
}

static lt_str_t pack(const ProtobufCMessage *m) {
  size_t n = protobuf_c_message_get_packed_size(m);
  uint8_t *buf = mk(n + 1);
  assert_int_equal(protobuf_c_message_pack(m, buf), n);
  return (lt_str_t){(const char *)buf, n};
}

/* One request holding one resource, one scope and the given spans. */
static lt_str_t pack_spans(span_t **spans, size_t n) {
  scope_spans_t *ss = NEW(scope_spans_t, OPENTELEMETRY__PROTO__TRACE__V1__SCOPE_SPANS__INIT);
  resource_spans_t *rs = NEW(resource_spans_t, OPENTELEMETRY__PROTO__TRACE__V1__RESOURCE_SPANS__INIT);
  trace_req_t req = OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_REQUEST__INIT;
  ss->spans = spans;
  ss->n_spans = n;
  rs->scope_spans = &ss;
  rs->n_scope_spans = 1;
  req.resource_spans = &rs;
  req.n_resource_spans = 1;
  return pack(&req.base);
}

static span_t *new_span(const char *name) {
  span_t *s = NEW(span_t, OPENTELEMETRY__PROTO__TRACE__V1__SPAN__INIT);
  s->name = (char *)name;
  s->trace_id = bin(TRACE_ID, 16);
  s->span_id = bin(SPAN_ID, 8);
  return s;
}

static void assert_str(lt_str_t s, const char *want) {
  assert_int_equal(s.len, strlen(want));
  if (s.len) assert_memory_equal(s.ptr, want, s.len);
}

static const lt_val_t *attr(const lt_attrs_t *a, const char *key) {
  const lt_val_t *v = lt_attrs_get(a, key);
  if (!v) fail_msg("attribute %s missing", key);
  return v;
}

static void assert_val_str(const lt_val_t *v, const char *want) {
  assert_int_equal(v->type, LT_VAL_STR);
  assert_str(v->u.s, want);
}

/* ---- traces ------------------------------------------------------------ */

static lt_str_t full_trace_request(void) {
  static const uint8_t blob[] = {0x00, 0xff, 0x10};
  static const uint8_t link_trace[16] = {0x0a, 0xf7, 0x65, 0x19, 0x16, 0xcd, 0x43, 0xdd,
                                         0x84, 0x48, 0xeb, 0x21, 0x1c, 0x80, 0x31, 0x9c};
  static const uint8_t link_span[8] = {0xb7, 0xad, 0x6b, 0x71, 0x69, 0x20, 0x33, 0x31};

  span_t *s = new_span("chat gpt-4o-mini");
  s->parent_span_id = bin(PARENT_ID, 8);
  s->trace_state = "vendor=lanterna";
  s->flags = 0x301;
  s->kind = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_CLIENT;
  s->start_time_unix_nano = 1732017600000000000ull;
  s->end_time_unix_nano = 1732017602500000000ull;
  s->attributes = kvs(&s->n_attributes, kv("gen_ai.request.model", v_str("gpt-4o-mini")),
                      kv("gen_ai.usage.input_tokens", v_int(412)), kv("gen_ai.request.temperature", v_double(0.2)),
                      kv("llm.is_streaming", v_bool(1)), kv("blob", v_bytes(blob, sizeof blob)),
                      kv("big.negative", v_int(INT64_MIN)), kv("nothing", v_empty()), kv("no.value", NULL), NULL);
  s->dropped_attributes_count = 3;

  event_t *ev = NEW(event_t, OPENTELEMETRY__PROTO__TRACE__V1__SPAN__EVENT__INIT);
  ev->time_unix_nano = 1732017600800000000ull;
  ev->name = "gen_ai.content.first_token";
  ev->attributes = kvs(&ev->n_attributes, kv("ttft", v_double(0.48)), NULL);
  event_t *ev2 = NEW(event_t, OPENTELEMETRY__PROTO__TRACE__V1__SPAN__EVENT__INIT);
  ev2->name = "exception";
  event_t **events = mk(2 * sizeof *events);
  events[0] = ev;
  events[1] = ev2;
  s->events = events;
  s->n_events = 2;

  link_t *ln = NEW(link_t, OPENTELEMETRY__PROTO__TRACE__V1__SPAN__LINK__INIT);
  ln->trace_id = bin(link_trace, 16);
  ln->span_id = bin(link_span, 8);
  ln->trace_state = "p=1";
  ln->attributes = kvs(&ln->n_attributes, kv("link.reason", v_str("prompt-cache")), NULL);
  s->links = &ln;
  s->n_links = 1;

  status_t *st = NEW(status_t, OPENTELEMETRY__PROTO__TRACE__V1__STATUS__INIT);
  st->code = OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR;
  st->message = "upstream timeout";
  s->status = st;

  span_t *root = new_span("RetrievalQA");
  root->span_id = bin(PARENT_ID, 8);

  scope_t *scope = NEW(scope_t, OPENTELEMETRY__PROTO__COMMON__V1__INSTRUMENTATION_SCOPE__INIT);
  scope->name = "openinference.instrumentation.langchain";
  scope->version = "0.1.28";
  scope->attributes = kvs(&scope->n_attributes, kv("scope.attr", v_str("x")), NULL);
  resource_t *res = NEW(resource_t, OPENTELEMETRY__PROTO__RESOURCE__V1__RESOURCE__INIT);
  res->attributes = kvs(&res->n_attributes, kv("service.name", v_str("support-bot")),
                        kv("service.version", v_str("2.4.1")), NULL);

  span_t **spans = mk(2 * sizeof *spans);
  spans[0] = s;
  spans[1] = root;
  scope_spans_t *ss = NEW(scope_spans_t, OPENTELEMETRY__PROTO__TRACE__V1__SCOPE_SPANS__INIT);
  ss->scope = scope;
  ss->spans = spans;
  ss->n_spans = 2;
  ss->schema_url = "https://opentelemetry.io/schemas/1.27.0";
  resource_spans_t *rs = NEW(resource_spans_t, OPENTELEMETRY__PROTO__TRACE__V1__RESOURCE_SPANS__INIT);
  rs->resource = res;
  rs->scope_spans = &ss;
  rs->n_scope_spans = 1;
  resource_spans_t *rs2 = NEW(resource_spans_t, OPENTELEMETRY__PROTO__TRACE__V1__RESOURCE_SPANS__INIT);
  resource_spans_t **rss = mk(2 * sizeof *rss);
  rss[0] = rs;
  rss[1] = rs2; /* no resource, no scopes */
  trace_req_t req = OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_REQUEST__INIT;
  req.resource_spans = rss;
  req.n_resource_spans = 2;
  return pack(&req.base);
}

static void traces_every_field(void **st) {
  lt_str_t body = full_trace_request();
  lt_arena_t *a = lt_arena_create(1u << 20);
  lt_otlp_traces_t t;
  memset(&t, 0xab, sizeof t);
  assert_int_equal(lt_decode_traces_pb(a, body.ptr, body.len, &t), 0);
  assert_int_equal(t.n, 2);
  assert_int_equal(t.items[1].resource.n, 0);
  assert_int_equal(t.items[1].n_scopes, 0);

  const lt_otlp_resource_spans_t *rs = &t.items[0];
  assert_int_equal(rs->resource.n, 2);
  assert_val_str(attr(&rs->resource, "service.name"), "support-bot");
  assert_val_str(attr(&rs->resource, "service.version"), "2.4.1");
  assert_int_equal(rs->n_scopes, 1);
  const lt_otlp_scope_spans_t *ss = &rs->scopes[0];
  assert_str(ss->scope.name, "openinference.instrumentation.langchain");
  assert_str(ss->scope.version, "0.1.28");
  assert_val_str(attr(&ss->scope.attrs, "scope.attr"), "x");
  assert_int_equal(ss->n_spans, 2);

  const lt_otlp_span_t *s = &ss->spans[0];
  assert_memory_equal(s->trace_id, TRACE_ID, 16);
  assert_memory_equal(s->span_id, SPAN_ID, 8);
  assert_memory_equal(s->parent_span_id, PARENT_ID, 8);
  assert_true(s->has_parent);
  assert_str(s->trace_state, "vendor=lanterna");
  assert_str(s->name, "chat gpt-4o-mini");
  assert_int_equal(s->kind, 3);
  assert_int_equal(s->start_ns, 1732017600000000000ull);
  assert_int_equal(s->end_ns, 1732017602500000000ull);
  assert_int_equal(s->status_code, 2);
  assert_str(s->status_message, "upstream timeout");

  assert_int_equal(s->attrs.n, 8);
  assert_val_str(attr(&s->attrs, "gen_ai.request.model"), "gpt-4o-mini");
  const lt_val_t *v = attr(&s->attrs, "gen_ai.usage.input_tokens");
  assert_int_equal(v->type, LT_VAL_INT);
  assert_int_equal(v->u.i, 412);
  v = attr(&s->attrs, "big.negative");
  assert_int_equal(v->type, LT_VAL_INT);
  assert_true(v->u.i == INT64_MIN);
  v = attr(&s->attrs, "gen_ai.request.temperature");
  assert_int_equal(v->type, LT_VAL_DOUBLE);
  assert_true(v->u.d == 0.2);
  v = attr(&s->attrs, "llm.is_streaming");
  assert_int_equal(v->type, LT_VAL_BOOL);
  assert_true(v->u.b);
  v = attr(&s->attrs, "blob");
  assert_int_equal(v->type, LT_VAL_BYTES);
  assert_int_equal(v->u.s.len, 3);
  assert_memory_equal(v->u.s.ptr, "\x00\xff\x10", 3);
  assert_int_equal(attr(&s->attrs, "nothing")->type, LT_VAL_EMPTY);
  assert_int_equal(attr(&s->attrs, "no.value")->type, LT_VAL_EMPTY);

  assert_int_equal(s->n_events, 2);
  assert_int_equal(s->events[0].time_ns, 1732017600800000000ull);
  assert_str(s->events[0].name, "gen_ai.content.first_token");
  assert_int_equal(s->events[0].attrs.n, 1);
  assert_true(attr(&s->events[0].attrs, "ttft")->u.d == 0.48);
  assert_str(s->events[1].name, "exception");
  assert_int_equal(s->events[1].time_ns, 0);
  assert_int_equal(s->events[1].attrs.n, 0);

  assert_int_equal(s->n_links, 1);
  assert_memory_equal(s->links[0].trace_id, "\x0a\xf7\x65\x19\x16\xcd\x43\xdd\x84\x48\xeb\x21\x1c\x80\x31\x9c", 16);
  assert_memory_equal(s->links[0].span_id, "\xb7\xad\x6b\x71\x69\x20\x33\x31", 8);
  assert_str(s->links[0].trace_state, "p=1");
  assert_val_str(attr(&s->links[0].attrs, "link.reason"), "prompt-cache");

  const lt_otlp_span_t *root = &ss->spans[1];
  assert_str(root->name, "RetrievalQA");
  assert_memory_equal(root->span_id, PARENT_ID, 8);
  assert_false(root->has_parent);
  assert_memory_equal(root->parent_span_id, ZERO_ID, 8);
  assert_int_equal(root->kind, 0);
  assert_int_equal(root->status_code, 0);
  assert_int_equal(root->status_message.len, 0);
  assert_int_equal(root->trace_state.len, 0);
  assert_int_equal(root->n_events, 0);
  assert_int_equal(root->n_links, 0);
  lt_arena_destroy(a);
}

static void traces_empty_body(void **st) {
  lt_arena_t *a = lt_arena_create(1024);
  lt_otlp_traces_t t;
  lt_otlp_logs_t l;
  lt_otlp_metrics_t m;
  assert_int_equal(lt_decode_traces_pb(a, NULL, 0, &t), 0);
  assert_int_equal(t.n, 0);
  assert_int_equal(lt_decode_logs_pb(a, "", 0, &l), 0);
  assert_int_equal(l.n, 0);
  assert_int_equal(lt_decode_metrics_pb(a, NULL, 0, &m), 0);
  assert_int_equal(m.n, 0);
  lt_arena_destroy(a);
}

static void nested_values(void **st) {
  static const uint8_t raw[] = {'a', 0, 'b'};
  span_t *s = new_span("nested");
  any_t *inner = v_array(v_str("deep"), v_bool(0), NULL);
  s->attributes =
      kvs(&s->n_attributes,
          kv("list", v_array(v_int(1), v_kvlist(kv("k", inner), kv("raw", v_bytes(raw, 3)), NULL), v_empty(),
                             v_array(NULL), NULL)),
          kv("map", v_kvlist(kv("a", v_kvlist(NULL)), kv("b", v_double(-1.5)), NULL)), NULL);
  lt_str_t body = pack_spans(&s, 1);
  lt_arena_t *a = lt_arena_create(1u << 20);
  lt_otlp_traces_t t;
  assert_int_equal(lt_decode_traces_pb(a, body.ptr, body.len, &t), 0);
  const lt_attrs_t *attrs = &t.items[0].scopes[0].spans[0].attrs;

  const lt_val_t *list = attr(attrs, "list");
  assert_int_equal(list->type, LT_VAL_ARRAY);
  assert_int_equal(list->u.arr.n, 4);
  assert_int_equal(list->u.arr.items[0].type, LT_VAL_INT);
  assert_int_equal(list->u.arr.items[0].u.i, 1);
  const lt_val_t *m = &list->u.arr.items[1];
  assert_int_equal(m->type, LT_VAL_KVLIST);
  assert_int_equal(m->u.kv.n, 2);
  assert_str(m->u.kv.items[0].key, "k");
  const lt_val_t *in = &m->u.kv.items[0].val;
  assert_int_equal(in->type, LT_VAL_ARRAY);
  assert_int_equal(in->u.arr.n, 2);
  assert_val_str(&in->u.arr.items[0], "deep");
  assert_int_equal(in->u.arr.items[1].type, LT_VAL_BOOL);
  assert_false(in->u.arr.items[1].u.b);
  assert_str(m->u.kv.items[1].key, "raw");
  assert_int_equal(m->u.kv.items[1].val.type, LT_VAL_BYTES);
  assert_int_equal(m->u.kv.items[1].val.u.s.len, 3); /* an embedded NUL survives in bytes */
  assert_memory_equal(m->u.kv.items[1].val.u.s.ptr, raw, 3);
  assert_int_equal(list->u.arr.items[2].type, LT_VAL_EMPTY);
  assert_int_equal(list->u.arr.items[3].type, LT_VAL_ARRAY);
  assert_int_equal(list->u.arr.items[3].u.arr.n, 0);

  const lt_val_t *map = attr(attrs, "map");
  assert_int_equal(map->type, LT_VAL_KVLIST);
  assert_int_equal(map->u.kv.n, 2);
  assert_int_equal(map->u.kv.items[0].val.type, LT_VAL_KVLIST);
  assert_int_equal(map->u.kv.items[0].val.u.kv.n, 0);
  assert_true(map->u.kv.items[1].val.u.d == -1.5);
  lt_arena_destroy(a);
}

/* A request with one resource attribute whose value is `levels` arrays
 * deep, as structs (protobuf-c packs it however deep). */
static lt_str_t deep_request(int levels) {
  any_t *v = v_str("leaf");
  for (int i = 1; i < levels; i++) v = v_array(v, NULL);
  span_t *s = new_span("deep");
  s->attributes = kvs(&s->n_attributes, kv("deep", v), NULL);
  return pack_spans(&s, 1);
}

static void value_depth_limit(void **st) {
  lt_arena_t *a = lt_arena_create(8u << 20);
  lt_otlp_traces_t t;
  lt_str_t ok = deep_request(64), deep = deep_request(65);
  assert_int_equal(lt_decode_traces_pb(a, ok.ptr, ok.len, &t), 0);
  const lt_val_t *v = attr(&t.items[0].scopes[0].spans[0].attrs, "deep");
  for (int i = 1; i < 64; i++) {
    assert_int_equal(v->type, LT_VAL_ARRAY);
    v = &v->u.arr.items[0];
  }
  assert_val_str(v, "leaf");
  assert_int_equal(lt_decode_traces_pb(a, deep.ptr, deep.len, &t), LT_EDECODE);
  lt_arena_destroy(a);
}

/* Prepends a length-delimited field header for a payload of n bytes. */
static size_t put_header(uint8_t *end, uint32_t field, size_t n) {
  uint8_t hdr[11];
  size_t h = 0;
  hdr[h++] = (uint8_t)(field << 3 | 2);
  do {
    hdr[h++] = (uint8_t)((n & 0x7f) | (n > 0x7f ? 0x80 : 0));
    n >>= 7;
  } while (n);
  memcpy(end - h, hdr, h);
  return h;
}

/* Messages nested far past anything protobuf-c could recurse through
 * safely must be refused before it tries (this would overflow the stack). */
static void message_depth_limit(void **st) {
  const int levels = 200000;
  size_t cap = (size_t)levels * 8 + 64, len = 0;
  uint8_t *buf = lt_malloc(cap), *end = buf + cap;
  assert_non_null(buf);
  for (int i = 0; i < levels; i++) {
    len += put_header(end - len, 1, len); /* ArrayValue.values */
    len += put_header(end - len, 5, len); /* AnyValue.array_value */
  }
  len += put_header(end - len, 2, len); /* KeyValue.value */
  len += put_header(end - len, 1, len); /* Resource.attributes */
  len += put_header(end - len, 1, len); /* ResourceSpans.resource */
  len += put_header(end - len, 1, len); /* request.resource_spans */
  lt_arena_t *a = lt_arena_create(64u << 20);
  lt_otlp_traces_t t;
  assert_int_equal(lt_decode_traces_pb(a, end - len, len, &t), LT_EDECODE);
  lt_arena_destroy(a);
  lt_free(buf);
}

static void wrong_length_ids(void **st) {
  static const uint8_t long_span[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  span_t *bad_trace = new_span("short trace id");
  bad_trace->trace_id = bin(TRACE_ID, 15);
  bad_trace->parent_span_id = bin(PARENT_ID, 8);
  bad_trace->attributes = kvs(&bad_trace->n_attributes, kv("still", v_str("here")), NULL);
  span_t *bad_span = new_span("long span id");
  bad_span->span_id = bin(long_span, 9);
  span_t *bad_parent = new_span("short parent");
  bad_parent->parent_span_id = bin(PARENT_ID, 7);
  span_t *zero_parent = new_span("zero parent");
  zero_parent->parent_span_id = bin(ZERO_ID, 8);
  span_t *no_ids = new_span("no ids");
  no_ids->trace_id = bin(NULL, 0);
  no_ids->span_id = bin(NULL, 0);
  span_t *bad_link = new_span("bad link");
  link_t *ln = NEW(link_t, OPENTELEMETRY__PROTO__TRACE__V1__SPAN__LINK__INIT);
  ln->trace_id = bin(TRACE_ID, 16);
  ln->span_id = bin(long_span, 9);
  ln->trace_state = "kept";
  bad_link->links = &ln;
  bad_link->n_links = 1;
  span_t *good = new_span("good");
  good->parent_span_id = bin(PARENT_ID, 8);

  span_t *spans[] = {bad_trace, bad_span, bad_parent, zero_parent, no_ids, bad_link, good};
  lt_str_t body = pack_spans(spans, 7);
  lt_arena_t *a = lt_arena_create(1u << 20);
  lt_otlp_traces_t t;
  assert_int_equal(lt_decode_traces_pb(a, body.ptr, body.len, &t), 0);
  const lt_otlp_span_t *s = t.items[0].scopes[0].spans;
  assert_int_equal(t.items[0].scopes[0].n_spans, 7);
  for (int i = 0; i < 3; i++) { /* any bad id zeroes all three */
    assert_memory_equal(s[i].trace_id, ZERO_ID, 16);
    assert_memory_equal(s[i].span_id, ZERO_ID, 8);
    assert_memory_equal(s[i].parent_span_id, ZERO_ID, 8);
    assert_false(s[i].has_parent);
  }
  assert_str(s[0].name, "short trace id"); /* the rest of the span is decoded */
  assert_val_str(attr(&s[0].attrs, "still"), "here");
  assert_memory_equal(s[3].trace_id, TRACE_ID, 16);
  assert_memory_equal(s[3].span_id, SPAN_ID, 8);
  assert_false(s[3].has_parent);
  assert_memory_equal(s[4].trace_id, ZERO_ID, 16);
  assert_memory_equal(s[4].span_id, ZERO_ID, 8);
  assert_memory_equal(s[5].trace_id, TRACE_ID, 16); /* a bad link id costs only the link target */
  assert_memory_equal(s[5].links[0].trace_id, ZERO_ID, 16);
  assert_memory_equal(s[5].links[0].span_id, ZERO_ID, 8);
  assert_str(s[5].links[0].trace_state, "kept");
  assert_true(s[6].has_parent);
  assert_memory_equal(s[6].parent_span_id, PARENT_ID, 8);
  lt_arena_destroy(a);
}

static void malformed_input(void **st) {
  static const struct {
    const char *bytes;
    size_t len;
  } bad[] = {
      {"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", 11}, /* endless varint */
      {"\x0a\x05\x0a", 3},                                 /* length past the end */
      {"\x0a\x80", 2},                                     /* truncated length */
      {"\x0b\x0c", 2},                                     /* a group: protobuf-c has none */
      {"\x0f", 1},                                         /* wire type 7 */
      {"{\"resourceSpans\":[]}", 20},                      /* JSON sent as protobuf */
      {"\x0a\x02\x0a\x02", 4},                             /* inner length past its parent */
      {"\x0a\x03\x12\x01\xff", 5},                         /* scope_spans (a message) with a bad body */
  };
  lt_arena_t *a = lt_arena_create(1u << 20);
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    lt_otlp_traces_t t;
    lt_otlp_logs_t l;
    lt_otlp_metrics_t m;
    assert_int_equal(lt_decode_traces_pb(a, bad[i].bytes, bad[i].len, &t), LT_EDECODE);
    assert_int_equal(lt_decode_logs_pb(a, bad[i].bytes, bad[i].len, &l), LT_EDECODE);
    assert_int_equal(lt_decode_metrics_pb(a, bad[i].bytes, bad[i].len, &m), LT_EDECODE);
  }
  lt_arena_destroy(a);
}

/* Every prefix of a valid body either decodes (it ended between fields)
 * or is LT_EDECODE; most are the latter. */
static void truncated_input(void **st) {
  lt_str_t body = full_trace_request();
  size_t refused = 0;
  for (size_t n = 1; n < body.len; n++) {
    lt_arena_t *a = lt_arena_create(1u << 20);
    lt_otlp_traces_t t;
    int rc = lt_decode_traces_pb(a, body.ptr, n, &t);
    if (rc != 0 && rc != LT_EDECODE) fail_msg("prefix %zu: %s", n, lt_errname(rc));
    refused += rc == LT_EDECODE;
    lt_arena_destroy(a);
  }
  assert_true(refused > body.len * 9 / 10);
}

/* Below the size the request needs, the answer is always LT_ETOOBIG,
 * whether unpacking or converting ran out, and never a crash or a
 * half-filled result. */
static void arena_cap(void **st) {
  lt_str_t body = full_trace_request();
  lt_arena_t *big = lt_arena_create(1u << 20);
  lt_otlp_traces_t t;
  assert_int_equal(lt_decode_traces_pb(big, body.ptr, body.len, &t), 0);
  size_t need = lt_arena_used(big);
  lt_arena_destroy(big);
  for (size_t cap = 0; cap < need; cap += 16) {
    lt_arena_t *a = lt_arena_create(cap);
    lt_otlp_traces_t out = {.n = 12345};
    assert_int_equal(lt_decode_traces_pb(a, body.ptr, body.len, &out), LT_ETOOBIG);
    assert_int_equal(out.n, 12345);
    lt_arena_destroy(a);
  }
  lt_arena_t *exact = lt_arena_create(need);
  assert_int_equal(lt_decode_traces_pb(exact, body.ptr, body.len, &t), 0);
  lt_arena_destroy(exact);
}

/* ---- logs -------------------------------------------------------------- */

static void logs_every_field(void **st) {
  log_t *r = NEW(log_t, OPENTELEMETRY__PROTO__LOGS__V1__LOG_RECORD__INIT);
  r->time_unix_nano = 1732017600400000000ull;
  r->observed_time_unix_nano = 1732017600401000000ull;
  r->severity_number = OPENTELEMETRY__PROTO__LOGS__V1__SEVERITY_NUMBER__SEVERITY_NUMBER_WARN;
  r->severity_text = "WARN";
  r->body = v_kvlist(kv("role", v_str("assistant")), kv("tokens", v_int(38)), NULL);
  r->attributes = kvs(&r->n_attributes, kv("gen_ai.system", v_str("openai")), NULL);
  r->flags = 1;
  r->trace_id = bin(TRACE_ID, 16);
  r->span_id = bin(SPAN_ID, 8);
  r->event_name = "gen_ai.choice";

  log_t *bare = NEW(log_t, OPENTELEMETRY__PROTO__LOGS__V1__LOG_RECORD__INIT);
  bare->body = v_str("plain text");
  log_t *bad_ids = NEW(log_t, OPENTELEMETRY__PROTO__LOGS__V1__LOG_RECORD__INIT);
  bad_ids->trace_id = bin(TRACE_ID, 12);
  bad_ids->span_id = bin(ZERO_ID, 8);
  bad_ids->severity_number = 99; /* out of the enum: passed through */
  log_t *span_only = NEW(log_t, OPENTELEMETRY__PROTO__LOGS__V1__LOG_RECORD__INIT);
  span_only->span_id = bin(SPAN_ID, 8);

  log_t *recs[] = {r, bare, bad_ids, span_only};
  scope_t *scope = NEW(scope_t, OPENTELEMETRY__PROTO__COMMON__V1__INSTRUMENTATION_SCOPE__INIT);
  scope->name = "app.logger";
  scope_logs_t *sl = NEW(scope_logs_t, OPENTELEMETRY__PROTO__LOGS__V1__SCOPE_LOGS__INIT);
  sl->scope = scope;
  sl->log_records = recs;
  sl->n_log_records = 4;
  resource_t *res = NEW(resource_t, OPENTELEMETRY__PROTO__RESOURCE__V1__RESOURCE__INIT);
  res->attributes = kvs(&res->n_attributes, kv("service.name", v_str("support-bot")), NULL);
  resource_logs_t *rl = NEW(resource_logs_t, OPENTELEMETRY__PROTO__LOGS__V1__RESOURCE_LOGS__INIT);
  rl->resource = res;
  rl->scope_logs = &sl;
  rl->n_scope_logs = 1;
  logs_req_t req = OPENTELEMETRY__PROTO__COLLECTOR__LOGS__V1__EXPORT_LOGS_SERVICE_REQUEST__INIT;
  req.resource_logs = &rl;
  req.n_resource_logs = 1;
  lt_str_t body = pack(&req.base);

  lt_arena_t *a = lt_arena_create(1u << 20);
  lt_otlp_logs_t l;
  assert_int_equal(lt_decode_logs_pb(a, body.ptr, body.len, &l), 0);
  assert_int_equal(l.n, 1);
  assert_val_str(attr(&l.items[0].resource, "service.name"), "support-bot");
  assert_int_equal(l.items[0].n_scopes, 1);
  assert_str(l.items[0].scopes[0].scope.name, "app.logger");
  assert_int_equal(l.items[0].scopes[0].n_logs, 4);
  const lt_otlp_log_t *g = l.items[0].scopes[0].logs;

  assert_int_equal(g[0].time_ns, 1732017600400000000ull);
  assert_int_equal(g[0].observed_ns, 1732017600401000000ull);
  assert_int_equal(g[0].severity_number, 13);
  assert_str(g[0].severity_text, "WARN");
  assert_int_equal(g[0].body.type, LT_VAL_KVLIST);
  assert_int_equal(g[0].body.u.kv.n, 2);
  assert_str(g[0].body.u.kv.items[0].key, "role");
  assert_val_str(&g[0].body.u.kv.items[0].val, "assistant");
  assert_int_equal(g[0].body.u.kv.items[1].val.u.i, 38);
  assert_val_str(attr(&g[0].attrs, "gen_ai.system"), "openai");
  assert_int_equal(g[0].flags, 1);
  assert_true(g[0].has_trace);
  assert_true(g[0].has_span);
  assert_memory_equal(g[0].trace_id, TRACE_ID, 16);
  assert_memory_equal(g[0].span_id, SPAN_ID, 8);
  assert_str(g[0].event_name, "gen_ai.choice");

  assert_val_str(&g[1].body, "plain text");
  assert_false(g[1].has_trace);
  assert_false(g[1].has_span);
  assert_int_equal(g[1].event_name.len, 0);
  assert_int_equal(g[1].severity_number, 0);

  assert_false(g[2].has_trace);
  assert_false(g[2].has_span);
  assert_memory_equal(g[2].trace_id, ZERO_ID, 16);
  assert_int_equal(g[2].severity_number, 99);
  assert_int_equal(g[2].body.type, LT_VAL_EMPTY);

  assert_false(g[3].has_trace);
  assert_true(g[3].has_span);
  assert_memory_equal(g[3].span_id, SPAN_ID, 8);
  lt_arena_destroy(a);
}

/* ---- metrics ----------------------------------------------------------- */

static metric_t *new_metric(const char *name) {
  metric_t *m = NEW(metric_t, OPENTELEMETRY__PROTO__METRICS__V1__METRIC__INIT);
  m->name = (char *)name;
  return m;
}

static number_point_t *int_point(int64_t v, uint64_t t) {
  number_point_t *p = NEW(number_point_t, OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__INIT);
  p->value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT;
  p->as_int = v;
  p->time_unix_nano = t;
  return p;
}

static number_point_t *double_point(double v, uint64_t t) {
  number_point_t *p = NEW(number_point_t, OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__INIT);
  p->value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_DOUBLE;
  p->as_double = v;
  p->time_unix_nano = t;
  return p;
}

static void metrics_every_kind(void **st) {
  static uint64_t counts[] = {0, 3, 5, 1};
  static double bounds[] = {0.1, 1.0, 10.0};

  metric_t *gi = new_metric("queue.depth");
  gi->description = "items waiting";
  gi->unit = "{item}";
  gi->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE;
  gi->gauge = NEW(Opentelemetry__Proto__Metrics__V1__Gauge, OPENTELEMETRY__PROTO__METRICS__V1__GAUGE__INIT);
  number_point_t **gpts = mk(2 * sizeof *gpts);
  gpts[0] = int_point(-7, 100);
  gpts[0]->start_time_unix_nano = 50;
  gpts[0]->attributes = kvs(&gpts[0]->n_attributes, kv("queue", v_str("ingest")), NULL);
  gpts[1] = double_point(0.125, 200);
  gi->gauge->data_points = gpts;
  gi->gauge->n_data_points = 2;

  metric_t *sum = new_metric("lanterna.requests");
  sum->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM;
  sum->sum = NEW(Opentelemetry__Proto__Metrics__V1__Sum, OPENTELEMETRY__PROTO__METRICS__V1__SUM__INIT);
  sum->sum->aggregation_temporality =
      OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_CUMULATIVE;
  sum->sum->is_monotonic = 1;
  number_point_t *sp = int_point(3, 300);
  sum->sum->data_points = &sp;
  sum->sum->n_data_points = 1;

  metric_t *hist = new_metric("gen_ai.client.token.usage");
  hist->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM;
  hist->histogram =
      NEW(Opentelemetry__Proto__Metrics__V1__Histogram, OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM__INIT);
  hist->histogram->aggregation_temporality =
      OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_DELTA;
  hist_point_t **hpts = mk(2 * sizeof *hpts);
  hpts[0] = NEW(hist_point_t, OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT__INIT);
  hpts[0]->start_time_unix_nano = 10;
  hpts[0]->time_unix_nano = 20;
  hpts[0]->count = 9;
  hpts[0]->sum_present_case = OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT__SUM_PRESENT_SUM;
  hpts[0]->sum = 0; /* present though zero: presence must survive */
  hpts[0]->min_present_case = OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT__MIN_PRESENT_MIN;
  hpts[0]->min = 0.05;
  hpts[0]->max_present_case = OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT__MAX_PRESENT_MAX;
  hpts[0]->max = 12.5;
  hpts[0]->bucket_counts = counts;
  hpts[0]->n_bucket_counts = 4;
  hpts[0]->explicit_bounds = bounds;
  hpts[0]->n_explicit_bounds = 3;
  hpts[0]->attributes = kvs(&hpts[0]->n_attributes, kv("gen_ai.token.type", v_str("input")), NULL);
  hpts[1] = NEW(hist_point_t, OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT__INIT);
  hpts[1]->count = 0;
  hist->histogram->data_points = hpts;
  hist->histogram->n_data_points = 2;

  metric_t *exp = new_metric("latency.exp");
  exp->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM;
  exp->exponential_histogram = NEW(Opentelemetry__Proto__Metrics__V1__ExponentialHistogram,
                                   OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM__INIT);
  exp->exponential_histogram->aggregation_temporality = 2;
  exp_point_t *ep = NEW(exp_point_t, OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM_DATA_POINT__INIT);
  ep->count = 38;
  ep->scale = -3;
  ep->sum_present_case = OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM_DATA_POINT__SUM_PRESENT_SUM;
  ep->sum = 0.95;
  ep->max_present_case = OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM_DATA_POINT__MAX_PRESENT_MAX;
  ep->max = 0.061;
  exp->exponential_histogram->data_points = &ep;
  exp->exponential_histogram->n_data_points = 1;

  metric_t *summ = new_metric("rpc.summary");
  summ->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY;
  summ->summary = NEW(Opentelemetry__Proto__Metrics__V1__Summary, OPENTELEMETRY__PROTO__METRICS__V1__SUMMARY__INIT);
  summary_point_t *smp = NEW(summary_point_t, OPENTELEMETRY__PROTO__METRICS__V1__SUMMARY_DATA_POINT__INIT);
  smp->count = 10;
  smp->sum = 1234.5;
  summ->summary->data_points = &smp;
  summ->summary->n_data_points = 1;

  metric_t *none = new_metric("no.data");

  metric_t *metrics[] = {gi, sum, hist, exp, summ, none};
  scope_metrics_t *sm = NEW(scope_metrics_t, OPENTELEMETRY__PROTO__METRICS__V1__SCOPE_METRICS__INIT);
  sm->metrics = metrics;
  sm->n_metrics = 6;
  resource_metrics_t *rm = NEW(resource_metrics_t, OPENTELEMETRY__PROTO__METRICS__V1__RESOURCE_METRICS__INIT);
  rm->scope_metrics = &sm;
  rm->n_scope_metrics = 1;
  metrics_req_t req = OPENTELEMETRY__PROTO__COLLECTOR__METRICS__V1__EXPORT_METRICS_SERVICE_REQUEST__INIT;
  req.resource_metrics = &rm;
  req.n_resource_metrics = 1;
  lt_str_t body = pack(&req.base);

  lt_arena_t *a = lt_arena_create(1u << 20);
  lt_otlp_metrics_t out;
  assert_int_equal(lt_decode_metrics_pb(a, body.ptr, body.len, &out), 0);
  assert_int_equal(out.n, 1);
  assert_int_equal(out.items[0].n_scopes, 1);
  assert_int_equal(out.items[0].scopes[0].n_metrics, 6);
  const lt_otlp_metric_t *m = out.items[0].scopes[0].metrics;

  assert_str(m[0].name, "queue.depth");
  assert_str(m[0].description, "items waiting");
  assert_str(m[0].unit, "{item}");
  assert_int_equal(m[0].type, LT_METRIC_GAUGE);
  assert_int_equal(m[0].n_points, 2);
  assert_true(m[0].points[0].as_int);
  assert_true(m[0].points[0].value == -7.0);
  assert_int_equal(m[0].points[0].start_ns, 50);
  assert_int_equal(m[0].points[0].time_ns, 100);
  assert_val_str(attr(&m[0].points[0].attrs, "queue"), "ingest");
  assert_false(m[0].points[1].as_int);
  assert_true(m[0].points[1].value == 0.125);
  assert_int_equal(m[0].points[1].time_ns, 200);

  assert_int_equal(m[1].type, LT_METRIC_SUM);
  assert_int_equal(m[1].temporality, 2);
  assert_true(m[1].monotonic);
  assert_int_equal(m[1].n_points, 1);
  assert_true(m[1].points[0].value == 3.0);

  assert_int_equal(m[2].type, LT_METRIC_HISTOGRAM);
  assert_int_equal(m[2].temporality, 1);
  assert_false(m[2].monotonic);
  assert_int_equal(m[2].n_points, 2);
  const lt_otlp_point_t *h = &m[2].points[0];
  assert_int_equal(h->start_ns, 10);
  assert_int_equal(h->time_ns, 20);
  assert_int_equal(h->count, 9);
  assert_true(h->has_sum);
  assert_true(h->sum == 0);
  assert_true(h->has_min);
  assert_true(h->min == 0.05);
  assert_true(h->has_max);
  assert_true(h->max == 12.5);
  assert_int_equal(h->n_buckets, 4);
  assert_memory_equal(h->bucket_counts, counts, sizeof counts);
  assert_int_equal(h->n_bounds, 3);
  assert_memory_equal(h->explicit_bounds, bounds, sizeof bounds);
  assert_val_str(attr(&h->attrs, "gen_ai.token.type"), "input");
  h = &m[2].points[1];
  assert_false(h->has_sum);
  assert_false(h->has_min);
  assert_false(h->has_max);
  assert_int_equal(h->n_buckets, 0);
  assert_null(h->bucket_counts);
  assert_int_equal(h->n_bounds, 0);

  assert_int_equal(m[3].type, LT_METRIC_EXP_HISTOGRAM);
  assert_int_equal(m[3].temporality, 2);
  assert_int_equal(m[3].points[0].count, 38);
  assert_true(m[3].points[0].has_sum);
  assert_true(m[3].points[0].sum == 0.95);
  assert_false(m[3].points[0].has_min);
  assert_true(m[3].points[0].has_max);
  assert_true(m[3].points[0].max == 0.061);

  assert_int_equal(m[4].type, LT_METRIC_SUMMARY);
  assert_int_equal(m[4].points[0].count, 10);
  assert_true(m[4].points[0].has_sum);
  assert_true(m[4].points[0].sum == 1234.5);

  assert_str(m[5].name, "no.data");
  assert_int_equal(m[5].type, 0);
  assert_int_equal(m[5].n_points, 0);
  lt_arena_destroy(a);
}

/* ---- response ---------------------------------------------------------- */

static void response_encoding(void **st) {
  lt_arena_t *a = lt_arena_create(1u << 16);
  lt_str_t out;

  static const char *const kinds[] = {"spans", "log_records", "data_points"};
  for (size_t i = 0; i < 3; i++) {
    assert_int_equal(lt_encode_export_response_pb(a, kinds[i], 0, NULL, &out), 0);
    assert_int_equal(out.len, 0);
    assert_non_null(out.ptr);
    assert_int_equal(lt_encode_export_response_pb(a, kinds[i], 0, "", &out), 0);
    assert_int_equal(out.len, 0);
    /* The three partial-success messages share one wire shape. */
    assert_int_equal(lt_encode_export_response_pb(a, kinds[i], 3, "bad", &out), 0);
    assert_int_equal(out.len, 9);
    assert_memory_equal(out.ptr, "\x0a\x07\x08\x03\x12\x03" "bad", 9);
  }

  assert_int_equal(lt_encode_export_response_pb(a, "spans", 2, "2 spans had invalid ids", &out), 0);
  Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceResponse *tr =
      opentelemetry__proto__collector__trace__v1__export_trace_service_response__unpack(
          NULL, out.len, (const uint8_t *)out.ptr);
  assert_non_null(tr);
  assert_non_null(tr->partial_success);
  assert_int_equal(tr->partial_success->rejected_spans, 2);
  assert_string_equal(tr->partial_success->error_message, "2 spans had invalid ids");
  opentelemetry__proto__collector__trace__v1__export_trace_service_response__free_unpacked(tr, NULL);

  assert_int_equal(lt_encode_export_response_pb(a, "log_records", 5000000000ll, NULL, &out), 0);
  Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceResponse *lr =
      opentelemetry__proto__collector__logs__v1__export_logs_service_response__unpack(
          NULL, out.len, (const uint8_t *)out.ptr);
  assert_non_null(lr);
  assert_non_null(lr->partial_success);
  assert_int_equal(lr->partial_success->rejected_log_records, 5000000000ll);
  assert_string_equal(lr->partial_success->error_message, "");
  opentelemetry__proto__collector__logs__v1__export_logs_service_response__free_unpacked(lr, NULL);

  /* A warning without rejections still carries partial_success. */
  assert_int_equal(lt_encode_export_response_pb(a, "data_points", 0, "clock skew", &out), 0);
  Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceResponse *mr =
      opentelemetry__proto__collector__metrics__v1__export_metrics_service_response__unpack(
          NULL, out.len, (const uint8_t *)out.ptr);
  assert_non_null(mr);
  assert_non_null(mr->partial_success);
  assert_int_equal(mr->partial_success->rejected_data_points, 0);
  assert_string_equal(mr->partial_success->error_message, "clock skew");
  opentelemetry__proto__collector__metrics__v1__export_metrics_service_response__free_unpacked(mr, NULL);

  assert_int_equal(lt_encode_export_response_pb(a, "widgets", 1, NULL, &out), LT_EINVAL);
  assert_int_equal(lt_encode_export_response_pb(a, NULL, 1, NULL, &out), LT_EINVAL);
  lt_arena_destroy(a);

  lt_arena_t *tiny = lt_arena_create(0);
  assert_int_equal(lt_encode_export_response_pb(tiny, "spans", 1, "x", &out), LT_ENOMEM);
  lt_arena_destroy(tiny);
}

/* ---- fixtures written by the official library -------------------------- */

static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) fail_msg("cannot open %s (run the tests from the repository root)", path);
  char *buf = lt_malloc(1u << 20);
  assert_non_null(buf);
  *len = fread(buf, 1, 1u << 20, f);
  fclose(f);
  return buf;
}

static void fixture_llm_trace(void **st) {
  size_t len;
  char *body = slurp("tests/data/otlp_pb/llm_trace.pb", &len);
  lt_arena_t *a = lt_arena_create(1u << 20);
  lt_otlp_traces_t t;
  assert_int_equal(lt_decode_traces_pb(a, body, len, &t), 0);
  assert_int_equal(t.n, 1);
  assert_val_str(attr(&t.items[0].resource, "service.name"), "support-bot");
  const lt_otlp_scope_spans_t *ss = &t.items[0].scopes[0];
  assert_str(ss->scope.name, "openinference.instrumentation.langchain");
  assert_int_equal(ss->n_spans, 3);
  const lt_otlp_span_t *chain = &ss->spans[0], *ret = &ss->spans[1], *llm = &ss->spans[2];
  assert_val_str(attr(&chain->attrs, "openinference.span.kind"), "CHAIN");
  assert_false(chain->has_parent);
  assert_int_equal(chain->status_code, 1);
  assert_val_str(attr(&ret->attrs, "openinference.span.kind"), "RETRIEVER");
  assert_true(ret->has_parent);
  assert_memory_equal(ret->parent_span_id, chain->span_id, 8);
  const lt_val_t *docs = attr(&ret->attrs, "retrieval.documents");
  assert_int_equal(docs->type, LT_VAL_ARRAY);
  assert_int_equal(docs->u.arr.n, 2);
  assert_int_equal(docs->u.arr.items[0].type, LT_VAL_KVLIST);
  assert_int_equal(ret->n_events, 1);
  assert_val_str(attr(&llm->attrs, "openinference.span.kind"), "LLM");
  assert_val_str(attr(&llm->attrs, "gen_ai.request.model"), "gpt-4o-mini");
  assert_int_equal(attr(&llm->attrs, "gen_ai.usage.input_tokens")->u.i, 412);
  assert_int_equal(attr(&llm->attrs, "gen_ai.usage.output_tokens")->u.i, 38);
  assert_true(attr(&llm->attrs, "gen_ai.request.temperature")->u.d == 0.2);
  assert_int_equal(llm->kind, 3);
  assert_str(llm->trace_state, "vendor=lanterna");
  assert_int_equal(llm->n_links, 1);
  assert_memory_equal(llm->trace_id, chain->trace_id, 16);
  lt_arena_destroy(a);
  lt_free(body);
}

static void same_val(const lt_val_t *x, const lt_val_t *y);

static void same_str(lt_str_t x, lt_str_t y) {
  assert_int_equal(x.len, y.len);
  if (x.len) assert_memory_equal(x.ptr, y.ptr, x.len);
}

static void same_attrs(const lt_attrs_t *x, const lt_attrs_t *y) {
  assert_int_equal(x->n, y->n);
  for (size_t i = 0; i < x->n; i++) {
    same_str(x->items[i].key, y->items[i].key);
    same_val(&x->items[i].val, &y->items[i].val);
  }
}

static void same_val(const lt_val_t *x, const lt_val_t *y) {
  assert_int_equal(x->type, y->type);
  switch (x->type) {
  case LT_VAL_STR:
  case LT_VAL_BYTES: same_str(x->u.s, y->u.s); break;
  case LT_VAL_BOOL: assert_int_equal(x->u.b, y->u.b); break;
  case LT_VAL_INT: assert_true(x->u.i == y->u.i); break;
  case LT_VAL_DOUBLE: assert_memory_equal(&x->u.d, &y->u.d, sizeof x->u.d); break;
  case LT_VAL_ARRAY:
    assert_int_equal(x->u.arr.n, y->u.arr.n);
    for (size_t i = 0; i < x->u.arr.n; i++) same_val(&x->u.arr.items[i], &y->u.arr.items[i]);
    break;
  case LT_VAL_KVLIST: {
    lt_attrs_t ax = {x->u.kv.items, x->u.kv.n}, ay = {y->u.kv.items, y->u.kv.n};
    same_attrs(&ax, &ay);
    break;
  }
  default: break;
  }
}

/* The same request as protobuf and as OTLP/JSON decodes to the same
 * structures: the two decoders agree. */
static void fixture_matches_json(void **st) {
  size_t pb_len, json_len;
  char *pb = slurp("tests/data/otlp_pb/llm_trace.pb", &pb_len);
  char *json = slurp("tests/data/otlp_pb/llm_trace.json", &json_len);
  lt_arena_t *a = lt_arena_create(4u << 20);
  lt_otlp_traces_t x, y;
  assert_int_equal(lt_decode_traces_pb(a, pb, pb_len, &x), 0);
  assert_int_equal(lt_decode_traces_json(a, json, json_len, &y), 0);
  assert_int_equal(x.n, y.n);
  for (size_t i = 0; i < x.n; i++) {
    same_attrs(&x.items[i].resource, &y.items[i].resource);
    assert_int_equal(x.items[i].n_scopes, y.items[i].n_scopes);
    for (size_t j = 0; j < x.items[i].n_scopes; j++) {
      const lt_otlp_scope_spans_t *sx = &x.items[i].scopes[j], *sy = &y.items[i].scopes[j];
      same_str(sx->scope.name, sy->scope.name);
      same_str(sx->scope.version, sy->scope.version);
      same_attrs(&sx->scope.attrs, &sy->scope.attrs);
      assert_int_equal(sx->n_spans, sy->n_spans);
      for (size_t k = 0; k < sx->n_spans; k++) {
        const lt_otlp_span_t *p = &sx->spans[k], *q = &sy->spans[k];
        assert_memory_equal(p->trace_id, q->trace_id, 16);
        assert_memory_equal(p->span_id, q->span_id, 8);
        assert_memory_equal(p->parent_span_id, q->parent_span_id, 8);
        assert_int_equal(p->has_parent, q->has_parent);
        same_str(p->trace_state, q->trace_state);
        same_str(p->name, q->name);
        assert_int_equal(p->kind, q->kind);
        assert_int_equal(p->start_ns, q->start_ns);
        assert_int_equal(p->end_ns, q->end_ns);
        same_attrs(&p->attrs, &q->attrs);
        assert_int_equal(p->n_events, q->n_events);
        for (size_t e = 0; e < p->n_events; e++) {
          assert_int_equal(p->events[e].time_ns, q->events[e].time_ns);
          same_str(p->events[e].name, q->events[e].name);
          same_attrs(&p->events[e].attrs, &q->events[e].attrs);
        }
        assert_int_equal(p->n_links, q->n_links);
        for (size_t l = 0; l < p->n_links; l++) {
          assert_memory_equal(p->links[l].trace_id, q->links[l].trace_id, 16);
          assert_memory_equal(p->links[l].span_id, q->links[l].span_id, 8);
          same_str(p->links[l].trace_state, q->links[l].trace_state);
          same_attrs(&p->links[l].attrs, &q->links[l].attrs);
        }
        assert_int_equal(p->status_code, q->status_code);
        same_str(p->status_message, q->status_message);
      }
    }
  }
  lt_arena_destroy(a);
  lt_free(pb);
  lt_free(json);
}

static void fixture_logs_and_metrics(void **st) {
  size_t len;
  char *body = slurp("tests/data/otlp_pb/genai_logs.pb", &len);
  lt_arena_t *a = lt_arena_create(1u << 20);
  lt_otlp_logs_t l;
  assert_int_equal(lt_decode_logs_pb(a, body, len, &l), 0);
  const lt_otlp_scope_logs_t *sl = &l.items[0].scopes[0];
  assert_int_equal(sl->n_logs, 4);
  assert_str(sl->logs[2].event_name, "gen_ai.choice");
  assert_int_equal(sl->logs[2].body.type, LT_VAL_KVLIST);
  assert_true(sl->logs[2].has_trace);
  assert_true(sl->logs[2].has_span);
  assert_int_equal(sl->logs[3].severity_number, 17);
  assert_false(sl->logs[3].has_trace);
  lt_free(body);

  body = slurp("tests/data/otlp_pb/genai_metrics.pb", &len);
  lt_otlp_metrics_t m;
  assert_int_equal(lt_decode_metrics_pb(a, body, len, &m), 0);
  const lt_otlp_scope_metrics_t *sm = &m.items[0].scopes[0];
  assert_int_equal(sm->n_metrics, 6);
  assert_str(sm->metrics[0].name, "gen_ai.client.token.usage");
  assert_int_equal(sm->metrics[0].type, LT_METRIC_HISTOGRAM);
  assert_int_equal(sm->metrics[0].n_points, 2);
  assert_int_equal(sm->metrics[0].points[0].n_buckets, 10);
  assert_int_equal(sm->metrics[0].points[0].n_bounds, 9);
  assert_true(sm->metrics[0].points[0].has_min);
  assert_true(sm->metrics[0].points[0].sum == 412);
  assert_int_equal(sm->metrics[2].type, LT_METRIC_SUM);
  assert_true(sm->metrics[2].monotonic);
  assert_int_equal(sm->metrics[3].type, LT_METRIC_GAUGE);
  assert_int_equal(sm->metrics[4].type, LT_METRIC_EXP_HISTOGRAM);
  assert_int_equal(sm->metrics[4].points[0].count, 38);
  assert_int_equal(sm->metrics[5].type, LT_METRIC_SUMMARY);
  lt_arena_destroy(a);
  lt_free(body);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(traces_every_field),
      cmocka_unit_test(traces_empty_body),
      cmocka_unit_test(nested_values),
      cmocka_unit_test(value_depth_limit),
      cmocka_unit_test(message_depth_limit),
      cmocka_unit_test(wrong_length_ids),
      cmocka_unit_test(malformed_input),
      cmocka_unit_test(truncated_input),
      cmocka_unit_test(arena_cap),
      cmocka_unit_test(logs_every_field),
      cmocka_unit_test(metrics_every_kind),
      cmocka_unit_test(response_encoding),
      cmocka_unit_test(fixture_llm_trace),
      cmocka_unit_test(fixture_matches_json),
      cmocka_unit_test(fixture_logs_and_metrics),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
