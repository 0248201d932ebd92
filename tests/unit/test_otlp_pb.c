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

/* Set while comparing with the reference decoder, whose strings were cut at
 * an embedded NUL (decode.h) and whose empty strings and arrays are NULL, as
 * ours must be. Unset, x and y must simply hold the same bytes. */
static bool vs_ref;

static void same_null(const void *x, size_t nx, const void *y, size_t ny) {
  if (!vs_ref) return;
  assert_true((x == NULL) == (nx == 0));
  assert_true((y == NULL) == (ny == 0));
}

static void same_val(const lt_val_t *x, const lt_val_t *y);

static void same_str(lt_str_t x, lt_str_t y) {
  size_t n = x.len;
  const char *nul = vs_ref && n ? memchr(x.ptr, '\0', n) : NULL;
  if (nul) n = (size_t)(nul - x.ptr);
  assert_int_equal(n, y.len);
  if (n) assert_memory_equal(x.ptr, y.ptr, n);
  same_null(x.ptr, x.len, y.ptr, y.len);
}

static void same_bytes(lt_str_t x, lt_str_t y) {
  assert_int_equal(x.len, y.len);
  if (x.len) assert_memory_equal(x.ptr, y.ptr, x.len);
  same_null(x.ptr, x.len, y.ptr, y.len);
}

static void same_n(const void *x, size_t nx, const void *y, size_t ny) {
  assert_int_equal(nx, ny);
  same_null(x, nx, y, ny);
}

static void same_attrs(const lt_attrs_t *x, const lt_attrs_t *y) {
  same_n(x->items, x->n, y->items, y->n);
  for (size_t i = 0; i < x->n; i++) {
    same_str(x->items[i].key, y->items[i].key);
    same_val(&x->items[i].val, &y->items[i].val);
  }
}

static void same_val(const lt_val_t *x, const lt_val_t *y) {
  assert_int_equal(x->type, y->type);
  switch (x->type) {
  case LT_VAL_STR: same_str(x->u.s, y->u.s); break;
  case LT_VAL_BYTES: same_bytes(x->u.s, y->u.s); break;
  case LT_VAL_BOOL: assert_int_equal(x->u.b, y->u.b); break;
  case LT_VAL_INT: assert_true(x->u.i == y->u.i); break;
  case LT_VAL_DOUBLE: assert_memory_equal(&x->u.d, &y->u.d, sizeof x->u.d); break;
  case LT_VAL_ARRAY:
    same_n(x->u.arr.items, x->u.arr.n, y->u.arr.items, y->u.arr.n);
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

/* Every field of two decoded requests, field by field. */
static void same_traces(const lt_otlp_traces_t *x, const lt_otlp_traces_t *y) {
  same_n(x->items, x->n, y->items, y->n);
  for (size_t i = 0; i < x->n; i++) {
    same_attrs(&x->items[i].resource, &y->items[i].resource);
    same_n(x->items[i].scopes, x->items[i].n_scopes, y->items[i].scopes, y->items[i].n_scopes);
    for (size_t j = 0; j < x->items[i].n_scopes; j++) {
      const lt_otlp_scope_spans_t *sx = &x->items[i].scopes[j], *sy = &y->items[i].scopes[j];
      same_str(sx->scope.name, sy->scope.name);
      same_str(sx->scope.version, sy->scope.version);
      same_attrs(&sx->scope.attrs, &sy->scope.attrs);
      same_n(sx->spans, sx->n_spans, sy->spans, sy->n_spans);
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
        same_n(p->events, p->n_events, q->events, q->n_events);
        for (size_t e = 0; e < p->n_events; e++) {
          assert_int_equal(p->events[e].time_ns, q->events[e].time_ns);
          same_str(p->events[e].name, q->events[e].name);
          same_attrs(&p->events[e].attrs, &q->events[e].attrs);
        }
        same_n(p->links, p->n_links, q->links, q->n_links);
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
  same_traces(&x, &y);
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

/* ---- the wire decoder against the protobuf-c reference ----------------- */

/* lt_decode_traces_pb reads the wire itself; lt_decode_traces_pb_ref is the
 * protobuf-c decoder it replaced. They must agree on every body: the same
 * result code and, on success, the same structures (strings compared cut
 * at a NUL, see decode.h). Bodies here are written with a small wire
 * builder, so they can hold what protobuf-c's packer never writes: repeated
 * singular fields, unknown fields, wrong wire types. */

/* Decodes with both, the new decoder into a, and checks they agree. */
static int decode_both(lt_arena_t *a, const void *body, size_t len, lt_otlp_traces_t *out) {
  lt_arena_t *ra = lt_arena_create(256u << 20);
  lt_otlp_traces_t x = {0}, y = {0};
  int rx = lt_decode_traces_pb(a, body, len, &x);
  int ry = lt_decode_traces_pb_ref(ra, body, len, &y);
  if (rx != ry) fail_msg("new decoder %s, reference %s", lt_errname(rx), lt_errname(ry));
  if (rx == 0) {
    vs_ref = true;
    same_traces(&x, &y);
    vs_ref = false;
  }
  lt_arena_destroy(ra);
  if (out) *out = x;
  return rx;
}

/* A protobuf message being written, in the scratch arena. */
typedef struct {
  uint8_t *p;
  size_t n, cap;
} wire_t;

static wire_t *w_new(void) { return mk(sizeof(wire_t)); }

static wire_t *w_raw(wire_t *w, const void *p, size_t n) {
  if (w->n + n > w->cap) {
    w->cap = (w->n + n) * 2 + 64;
    uint8_t *np = mk(w->cap);
    if (w->n) memcpy(np, w->p, w->n);
    w->p = np;
  }
  if (n) memcpy(w->p + w->n, p, n);
  w->n += n;
  return w;
}

static void w_uvarint(wire_t *w, uint64_t v) {
  uint8_t b[10];
  size_t n = 0;
  do {
    b[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
    v >>= 7;
  } while (v);
  w_raw(w, b, n);
}

static wire_t *w_varint(wire_t *w, uint32_t field, uint64_t v) {
  w_uvarint(w, (uint64_t)field << 3 | 0);
  w_uvarint(w, v);
  return w;
}

static wire_t *w_fixed(wire_t *w, uint32_t field, uint64_t v, unsigned size) {
  uint8_t b[8];
  for (unsigned i = 0; i < size; i++) b[i] = (uint8_t)(v >> (8 * i));
  w_uvarint(w, (uint64_t)field << 3 | (size == 8 ? 1 : 5));
  return w_raw(w, b, size);
}

static wire_t *w_bytes(wire_t *w, uint32_t field, const void *p, size_t n) {
  w_uvarint(w, (uint64_t)field << 3 | 2);
  w_uvarint(w, n);
  return w_raw(w, p, n);
}

static wire_t *w_str(wire_t *w, uint32_t field, const char *s) { return w_bytes(w, field, s, strlen(s)); }
static wire_t *w_msg(wire_t *w, uint32_t field, const wire_t *m) { return w_bytes(w, field, m->p, m->n); }

static wire_t *any_str(const char *s) { return w_str(w_new(), 1, s); }
static wire_t *any_int(int64_t i) { return w_varint(w_new(), 3, (uint64_t)i); }
static wire_t *kv_of(const char *key, const wire_t *val) { return w_msg(w_str(w_new(), 1, key), 2, val); }

/* A request holding one span (given as its fields) in one scope. */
static wire_t *req_of_span(const wire_t *span) {
  wire_t *ss = w_msg(w_new(), 2, span), *rs = w_msg(w_new(), 2, ss);
  return w_msg(w_new(), 1, rs);
}

/* A span with good ids and the given attribute (KeyValue), if any. */
static wire_t *span_with(const wire_t *attr) {
  wire_t *s = w_bytes(w_bytes(w_new(), 1, TRACE_ID, 16), 2, SPAN_ID, 8);
  return attr ? w_msg(s, 9, attr) : s;
}

static const lt_otlp_span_t *first_span(const lt_otlp_traces_t *t) {
  assert_true(t->n >= 1 && t->items[0].n_scopes >= 1 && t->items[0].scopes[0].n_spans >= 1);
  return &t->items[0].scopes[0].spans[0];
}

/* Decodes a request of one span with one attribute "k" = val (an AnyValue,
 * or several sent as KeyValue.value one after another). */
static int decode_value(const wire_t *const *vals, size_t n, lt_otlp_traces_t *t) {
  wire_t *kv = w_str(w_new(), 1, "k");
  for (size_t i = 0; i < n; i++) w_msg(kv, 2, vals[i]);
  wire_t *req = req_of_span(span_with(kv));
  return decode_both(scratch, req->p, req->n, t);
}

static const lt_val_t *value_k(const lt_otlp_traces_t *t) { return attr(&first_span(t)->attrs, "k"); }

/* Appends one unknown field of each wire type, and one whose key is field 0
 * written in two bytes (protobuf-c takes that as unknown too). */
static wire_t *w_unknowns(wire_t *w) {
  static const uint8_t zero_tag[] = {0x80, 0x00, 0x2a};
  w_varint(w, 99, 12345);
  w_fixed(w, 100, 0x1122334455667788ull, 8);
  w_str(w, 101, "ignored");
  w_fixed(w, 102, 7, 4);
  w_varint(w, 536870911, 1); /* the largest field number */
  return w_raw(w, zero_tag, sizeof zero_tag);
}

/* Every message of a request, with or without unknown fields in each. */
static wire_t *request_everywhere(bool unknowns) {
#define U(w) (unknowns ? w_unknowns(w) : (w))
  wire_t *arr = U(w_msg(w_msg(w_new(), 1, U(any_int(1))), 1, U(any_str("two"))));
  wire_t *kvl = U(w_msg(w_new(), 1, U(kv_of("inner", U(any_str("v"))))));
  wire_t *span = U(span_with(U(kv_of("arr", U(w_msg(w_new(), 5, arr))))));
  w_msg(span, 9, U(kv_of("map", U(w_msg(w_new(), 6, kvl)))));
  w_str(span, 5, "name");
  w_msg(span, 11, U(w_msg(w_str(w_fixed(w_new(), 1, 5, 8), 2, "ev"), 3, U(kv_of("e", U(any_int(2)))))));
  w_msg(span, 13, U(w_msg(w_bytes(w_bytes(w_new(), 1, TRACE_ID, 16), 2, PARENT_ID, 8), 4, U(kv_of("l", U(any_int(3)))))));
  w_msg(span, 15, U(w_varint(w_str(w_new(), 2, "bad"), 3, 2)));
  wire_t *scope = U(w_msg(w_str(w_str(w_new(), 1, "lib"), 2, "1.0"), 3, U(kv_of("s", U(any_int(4))))));
  wire_t *ss = U(w_msg(w_msg(w_new(), 1, scope), 2, span));
  wire_t *res = U(w_msg(w_new(), 1, U(kv_of("service.name", U(any_str("svc"))))));
  wire_t *rs = U(w_msg(w_msg(w_new(), 1, res), 2, ss));
  return U(w_msg(w_new(), 1, rs));
#undef U
}

static void unknown_fields_skipped(void **st) {
  wire_t *with = request_everywhere(true), *without = request_everywhere(false);
  lt_otlp_traces_t x, y;
  assert_int_equal(decode_both(scratch, with->p, with->n, &x), 0);
  assert_int_equal(decode_both(scratch, without->p, without->n, &y), 0);
  same_traces(&x, &y);
  const lt_otlp_span_t *s = first_span(&x);
  assert_str(s->name, "name");
  assert_int_equal(s->attrs.n, 2);
  assert_int_equal(attr(&s->attrs, "arr")->u.arr.n, 2);
  assert_int_equal(s->n_events, 1);
  assert_int_equal(s->n_links, 1);
  assert_int_equal(s->status_code, 2);
  assert_val_str(attr(&x.items[0].resource, "service.name"), "svc");
}

/* A singular message sent twice is merged: repeated fields append, a string
 * keeps the last one sent. protobuf-c's quirks are kept (otlp_pb_traces.c). */
static void repeated_singular_merged(void **st) {
  lt_otlp_traces_t t;
  /* Resource and scope twice */
  wire_t *scope1 = w_msg(w_str(w_str(w_new(), 1, "lib"), 2, "1.0"), 3, kv_of("s1", any_int(1)));
  wire_t *scope2 = w_msg(w_str(w_new(), 2, "2.0"), 3, kv_of("s2", any_int(2)));
  wire_t *ss = w_msg(w_msg(w_msg(w_new(), 1, scope1), 2, span_with(NULL)), 1, scope2);
  wire_t *res1 = w_msg(w_new(), 1, kv_of("r1", any_int(1)));
  wire_t *res2 = w_msg(w_msg(w_new(), 1, kv_of("r2", any_int(2))), 1, kv_of("r3", any_int(3)));
  wire_t *rs = w_msg(w_msg(w_msg(w_new(), 1, res1), 2, ss), 1, res2);
  wire_t *req = w_msg(w_new(), 1, rs);
  assert_int_equal(decode_both(scratch, req->p, req->n, &t), 0);
  const lt_attrs_t *res = &t.items[0].resource;
  assert_int_equal(res->n, 3);
  assert_str(res->items[0].key, "r1");
  assert_str(res->items[2].key, "r3");
  const lt_otlp_scope_t *sc = &t.items[0].scopes[0].scope;
  assert_str(sc->name, "lib"); /* not sent again: kept */
  assert_str(sc->version, "2.0");
  assert_int_equal(sc->attrs.n, 2);
  assert_str(sc->attrs.items[1].key, "s2");

  /* Status twice: the message is the last one sent, the code the last
   * Status's (0 when it sent none, as protobuf-c has it) */
  wire_t *span = w_msg(w_msg(span_with(NULL), 15, w_varint(w_str(w_new(), 2, "m"), 3, 2)), 15, w_varint(w_new(), 3, 1));
  req = req_of_span(span);
  assert_int_equal(decode_both(scratch, req->p, req->n, &t), 0);
  assert_str(first_span(&t)->status_message, "m");
  assert_int_equal(first_span(&t)->status_code, 1);
  span = w_msg(w_msg(span_with(NULL), 15, w_varint(w_str(w_new(), 2, "m"), 3, 2)), 15, w_new());
  req = req_of_span(span);
  assert_int_equal(decode_both(scratch, req->p, req->n, &t), 0);
  assert_str(first_span(&t)->status_message, "m");
  assert_int_equal(first_span(&t)->status_code, 0);

  /* Scalars and strings: the last one wins; a last empty id is absent */
  span = w_varint(w_varint(w_str(w_str(span_with(NULL), 5, "first"), 5, "second"), 6, 2), 6, 4);
  w_fixed(w_fixed(span, 7, 10, 8), 7, 20, 8);
  w_bytes(w_bytes(span, 4, PARENT_ID, 8), 4, "", 0);
  req = req_of_span(span);
  assert_int_equal(decode_both(scratch, req->p, req->n, &t), 0);
  assert_str(first_span(&t)->name, "second");
  assert_int_equal(first_span(&t)->kind, 4);
  assert_int_equal(first_span(&t)->start_ns, 20);
  assert_false(first_span(&t)->has_parent);

  /* KeyValue.value twice: the last AnyValue with a member set wins */
  wire_t *empty = w_new(), *i5 = any_int(5), *s = any_str("s");
  assert_int_equal(decode_value((const wire_t *[]){i5, s}, 2, &t), 0);
  assert_val_str(value_k(&t), "s");
  assert_int_equal(decode_value((const wire_t *[]){i5, empty}, 2, &t), 0);
  assert_int_equal(value_k(&t)->type, LT_VAL_INT);
  assert_int_equal(value_k(&t)->u.i, 5);
  wire_t *arr = w_msg(w_new(), 5, w_msg(w_new(), 1, any_int(1)));
  assert_int_equal(decode_value((const wire_t *[]){arr, empty, empty}, 3, &t), 0);
  assert_int_equal(value_k(&t)->type, LT_VAL_ARRAY);
  assert_int_equal(value_k(&t)->u.arr.n, 1);
  wire_t *bx = w_bytes(w_new(), 7, "x", 1), *b0 = w_bytes(w_new(), 7, "", 0);
  assert_int_equal(decode_value((const wire_t *[]){bx, empty}, 2, &t), 0);
  assert_int_equal(value_k(&t)->type, LT_VAL_BYTES);
  /* protobuf-c loses a string or empty bytes merged with a memberless
   * AnyValue, and refuses two memberless ones in a row */
  assert_int_equal(decode_value((const wire_t *[]){s, empty}, 2, &t), 0);
  assert_int_equal(value_k(&t)->type, LT_VAL_EMPTY);
  assert_int_equal(decode_value((const wire_t *[]){b0, empty}, 2, &t), 0);
  assert_int_equal(value_k(&t)->type, LT_VAL_EMPTY);
  assert_int_equal(decode_value((const wire_t *[]){empty, empty}, 2, &t), LT_EDECODE);
  assert_int_equal(decode_value((const wire_t *[]){s, empty, empty}, 3, &t), LT_EDECODE);
  assert_int_equal(decode_value((const wire_t *[]){empty, s, empty}, 3, &t), 0);
}

/* Within one AnyValue the last member set wins; array_value twice is
 * replaced, not merged. */
static void oneof_last_member_wins(void **st) {
  lt_otlp_traces_t t;
  /* 8, the first number past bytes_value, is unknown */
  assert_int_equal(decode_value((const wire_t *[]){w_bytes(w_new(), 8, "xy", 2)}, 1, &t), 0);
  assert_int_equal(value_k(&t)->type, LT_VAL_EMPTY);
  wire_t *v = w_varint(any_str("a"), 3, 5);
  assert_int_equal(decode_value((const wire_t *[]){v}, 1, &t), 0);
  assert_int_equal(value_k(&t)->type, LT_VAL_INT);
  assert_int_equal(value_k(&t)->u.i, 5);
  v = w_str(any_int(5), 1, "a");
  assert_int_equal(decode_value((const wire_t *[]){v}, 1, &t), 0);
  assert_val_str(value_k(&t), "a");
  wire_t *two = w_msg(w_msg(w_new(), 1, any_int(1)), 1, any_int(2));
  v = w_msg(w_msg(w_new(), 5, two), 5, w_msg(w_new(), 1, any_str("only")));
  assert_int_equal(decode_value((const wire_t *[]){v}, 1, &t), 0);
  assert_int_equal(value_k(&t)->u.arr.n, 1);
  assert_val_str(&value_k(&t)->u.arr.items[0], "only");
  v = w_varint(w_msg(w_new(), 6, w_msg(w_new(), 1, kv_of("x", any_int(1)))), 2, 1);
  assert_int_equal(decode_value((const wire_t *[]){v}, 1, &t), 0);
  assert_int_equal(value_k(&t)->type, LT_VAL_BOOL);
  assert_true(value_k(&t)->u.b);
  v = w_fixed(w_msg(w_new(), 6, w_new()), 4, 0x4000000000000000ull, 8);
  assert_int_equal(decode_value((const wire_t *[]){v}, 1, &t), 0);
  assert_int_equal(value_k(&t)->type, LT_VAL_DOUBLE);
  assert_true(value_k(&t)->u.d == 2.0);
}

/* A known field of the wrong wire type fails the request, at any level;
 * bool_value is the exception protobuf-c makes (any wire type). */
static void wrong_wire_type(void **st) {
  lt_otlp_traces_t t;
  wire_t *bad[] = {
      w_fixed(w_new(), 1, 0, 4),                                           /* resource_spans */
      w_msg(w_new(), 1, w_varint(w_new(), 3, 1)),                          /* schema_url */
      w_msg(w_new(), 1, w_msg(w_new(), 1, w_fixed(w_new(), 2, 0, 4))),     /* Resource.dropped_... */
      req_of_span(w_varint(span_with(NULL), 5, 1)),                        /* name */
      req_of_span(w_fixed(span_with(NULL), 6, 1, 4)),                      /* kind */
      req_of_span(w_varint(span_with(NULL), 7, 1)),                        /* start time (fixed64) */
      req_of_span(w_fixed(span_with(NULL), 16, 1, 8)),                     /* flags (fixed32) */
      req_of_span(w_fixed(span_with(NULL), 10, 1, 4)),                     /* dropped_attributes_count */
      req_of_span(w_varint(span_with(NULL), 1, 1)),                        /* trace_id */
      req_of_span(w_varint(span_with(NULL), 11, 1)),                       /* events */
      req_of_span(w_msg(span_with(NULL), 15, w_fixed(w_new(), 3, 1, 4))),  /* Status.code */
      req_of_span(w_msg(span_with(NULL), 13, w_varint(w_new(), 6, 1))),   /* Link.flags */
      req_of_span(w_msg(span_with(NULL), 11, w_varint(w_new(), 1, 1))),   /* Event.time */
      req_of_span(span_with(w_varint(w_new(), 1, 1))),                     /* KeyValue.key */
      req_of_span(span_with(w_msg(w_new(), 2, w_fixed(w_new(), 3, 1, 8)))), /* int_value */
      req_of_span(span_with(w_msg(w_new(), 2, w_varint(w_new(), 4, 1)))), /* double_value */
      w_msg(w_new(), 1, w_msg(w_new(), 2, w_varint(w_new(), 3, 1))),      /* ScopeSpans.schema_url */
      w_msg(w_new(), 1, w_msg(w_new(), 2, w_fixed(w_new(), 2, 0x0108022a, 4))), /* ScopeSpans.spans: bytes 2a 02 08 01 would parse as a Span */
      req_of_span(span_with(w_fixed(w_str(w_new(), 1, "k"), 2, 0x05180518, 4))), /* KeyValue.value: 18 05 18 05 would parse */
      req_of_span(w_msg(span_with(NULL), 11, w_varint(w_new(), 2, 1))),   /* Event.name */
      req_of_span(w_msg(span_with(NULL), 11, w_fixed(w_new(), 4, 1, 4))),  /* Event.dropped_attributes_count */
      req_of_span(w_msg(span_with(NULL), 13, w_varint(w_new(), 1, 1))),   /* Link.trace_id */
      req_of_span(w_msg(span_with(NULL), 13, w_varint(w_new(), 3, 1))),   /* Link.trace_state */
      req_of_span(w_msg(span_with(NULL), 13, w_fixed(w_new(), 5, 1, 4))),  /* Link.dropped_attributes_count */
      req_of_span(w_msg(span_with(NULL), 15, w_varint(w_new(), 2, 1)))};  /* Status.message */
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    if (decode_both(scratch, bad[i]->p, bad[i]->n, &t) != LT_EDECODE) fail_msg("case %zu decoded", i);
  }
  /* bool_value as fixed64, fixed32 and bytes */
  wire_t *b1 = w_fixed(w_new(), 2, 0x100, 8), *b0 = w_fixed(w_new(), 2, 0x80, 4);
  wire_t *b2 = w_bytes(w_new(), 2, "", 0), *b3 = w_bytes(w_new(), 2, "\0", 1);
  assert_int_equal(decode_value((const wire_t *[]){b1}, 1, &t), 0);
  assert_true(value_k(&t)->u.b);
  assert_int_equal(decode_value((const wire_t *[]){b0}, 1, &t), 0);
  assert_int_equal(value_k(&t)->type, LT_VAL_BOOL);
  assert_false(value_k(&t)->u.b); /* 0x80 has no low 7 bits set */
  assert_int_equal(decode_value((const wire_t *[]){b2}, 1, &t), 0);
  assert_false(value_k(&t)->u.b);
  assert_int_equal(decode_value((const wire_t *[]){b3}, 1, &t), 0);
  assert_true(value_k(&t)->u.b);
}

/* Wire-level edges, each as protobuf-c has it. */
static void wire_edges(void **st) {
  static const struct {
    const char *bytes;
    size_t len;
    int rc;
  } cases[] = {
      {"\x02\x00", 2, LT_EDECODE},                                    /* field 0 in a 1-byte key */
      {"\x82\x00\x00", 3, 0},                                         /* field 0 in 2 bytes: unknown */
      {"\xf8\xff\xff\xff\x7f\x00", 6, 0},                             /* a 5-byte key */
      {"\xf8\xff\xff\xff\xff\x00\x00", 7, LT_EDECODE},                /* a 6-byte key */
      {"\x0a\x80\x80\x80\x80\x00", 6, 0},                             /* a 5-byte length of 0 */
      {"\x0a\x80\x80\x80\x80\x80\x00", 7, LT_EDECODE},                /* a 6-byte length */
      {"\x0a\xff\xff\xff\xff\x0f", 6, LT_EDECODE},                    /* length past the end */
      {"\xa0\x06\xff\xff\xff\xff\xff\xff\xff\xff\xff\x7f", 12, 0},    /* 10-byte varint */
      {"\xa0\x06\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 13, LT_EDECODE}, /* 11 bytes */
      {"\xa1\x06\x00\x00\x00\x00\x00\x00\x00", 9, LT_EDECODE},        /* fixed64 cut short */
      {"\xa5\x06\x00\x00\x00", 5, LT_EDECODE},                        /* fixed32 cut short */
      {"\xa3\x06\xa4\x06", 4, LT_EDECODE},                            /* an (empty) group */
      {"\xa6\x06", 2, LT_EDECODE},                                    /* wire type 6 */
      {"\x0a\x00\x0a\x00", 4, 0},                                     /* two empty ResourceSpans */
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    lt_otlp_traces_t t;
    int rc = decode_both(scratch, cases[i].bytes, cases[i].len, &t);
    if (rc != cases[i].rc) fail_msg("case %zu: %s", i, lt_errname(rc));
  }
  /* kind is an int32 enum: a negative one sent as 10 bytes, or 5 bytes
   * with bits past 32, keeps the low 32 bits */
  lt_otlp_traces_t t;
  wire_t *req = req_of_span(w_varint(span_with(NULL), 6, (uint64_t)-3));
  assert_int_equal(decode_both(scratch, req->p, req->n, &t), 0);
  assert_int_equal(first_span(&t)->kind, -3);
  req = req_of_span(w_varint(span_with(NULL), 6, 0x7f0000002ull));
  assert_int_equal(decode_both(scratch, req->p, req->n, &t), 0);
  assert_int_equal(first_span(&t)->kind, (int32_t)0xf0000002u);
}

/* Every prefix of a body: both decoders agree on each. */
static void truncated_both(void **st) {
  wire_t *req = request_everywhere(true);
  for (size_t n = 0; n <= req->n; n++) decode_both(scratch, req->p, n, NULL);
}

/* A chain of ArrayValues ending levels deep, as an AnyValue. The last is
 * empty, or holds one empty AnyValue when item is set. */
static wire_t *array_chain(int levels, bool item) {
  wire_t *arr = item ? w_msg(w_new(), 1, w_new()) : w_new();
  for (int i = 1; i < levels; i++) arr = w_msg(w_new(), 1, w_msg(w_new(), 5, arr));
  return w_msg(w_new(), 5, arr);
}

/* v wrapped in n ArrayValues, then replaced by a string, so only message
 * depth counts. */
static wire_t *wrapped(wire_t *v, int n) {
  for (int i = 0; i < n; i++) v = w_msg(w_new(), 5, w_msg(w_new(), 1, v));
  return w_str(v, 1, "x");
}

/* A request whose one resource attribute has the AnyValue v, at message
 * depth 4 (a span attribute's is at 5). */
static wire_t *req_of_resource_value(const wire_t *v) {
  return w_msg(w_new(), 1, w_msg(w_new(), 1, w_msg(w_new(), 1, kv_of("k", v))));
}

static void depth_limits(void **st) {
  lt_otlp_traces_t t;
  /* kvlists count like arrays: 64 deep is fine, 65 is not */
  for (int levels = 64; levels <= 65; levels++) {
    wire_t *v = any_str("leaf");
    for (int i = 1; i < levels; i++) v = w_msg(w_new(), 6, w_msg(w_new(), 1, kv_of("k", v)));
    assert_int_equal(decode_value((const wire_t *[]){v}, 1, &t), levels == 64 ? 0 : LT_EDECODE);
  }
  /* a slot past the limit counts even without a value in it */
  assert_int_equal(decode_value((const wire_t *[]){array_chain(64, true)}, 1, &t), LT_EDECODE);
  assert_int_equal(decode_value((const wire_t *[]){array_chain(64, false)}, 1, &t), 0);
  /* a value too deep that a later member or KeyValue.value replaces is
   * never looked at (the reference checked the final tree) */
  wire_t *deep = array_chain(80, true);
  assert_int_equal(decode_value((const wire_t *[]){w_str(w_msg(w_new(), 5, w_new()), 1, "x")}, 1, &t), 0);
  wire_t *replaced = w_raw(w_new(), deep->p, deep->n);
  w_str(replaced, 1, "x");
  assert_int_equal(decode_value((const wire_t *[]){replaced}, 1, &t), 0);
  assert_val_str(value_k(&t), "x");
  assert_int_equal(decode_value((const wire_t *[]){deep, any_int(1)}, 2, &t), 0);
  assert_int_equal(decode_value((const wire_t *[]){deep, w_new()}, 2, &t), LT_EDECODE);
  /* messages: the attribute's AnyValue is at depth 5 (request 0, resource
   * spans 1, scope spans 2, span 3, key value 4), so 126 ArrayValues end at
   * depth 256, the deepest allowed, even inside a value that is replaced */
  for (int extra = 0; extra <= 1; extra++) {
    wire_t *v = array_chain(126, extra);
    w_str(v, 1, "x");
    assert_int_equal(decode_value((const wire_t *[]){v}, 1, &t), extra ? LT_EDECODE : 0);
  }
  /* each value message checks its own depth: an AnyValue at 256 is fine; an
   * empty ArrayValue or KeyValueList, or a key-only KeyValue, at 257 is not */
  wire_t *r = req_of_resource_value(wrapped(w_new(), 126));
  assert_int_equal(decode_both(scratch, r->p, r->n, NULL), 0);
  r = req_of_resource_value(wrapped(w_msg(w_new(), 5, w_new()), 126));
  assert_int_equal(decode_both(scratch, r->p, r->n, NULL), LT_EDECODE);
  r = req_of_resource_value(wrapped(w_msg(w_new(), 6, w_new()), 126));
  assert_int_equal(decode_both(scratch, r->p, r->n, NULL), LT_EDECODE);
  wire_t *key_only = w_msg(w_new(), 6, w_msg(w_new(), 1, w_str(w_new(), 1, "k")));
  assert_int_equal(decode_value((const wire_t *[]){wrapped(key_only, 125)}, 1, &t), LT_EDECODE);
  /* an empty KeyValueList at value depth 64 is fine, as an empty array is */
  wire_t *kvl = w_msg(w_new(), 6, w_new());
  for (int i = 1; i < 64; i++) kvl = w_msg(w_new(), 6, w_msg(w_new(), 1, kv_of("k", kvl)));
  assert_int_equal(decode_value((const wire_t *[]){kvl}, 1, &t), 0);
}

static void ids_both(void **st) {
  lt_otlp_traces_t t;
  wire_t *ln = w_str(w_bytes(w_bytes(w_new(), 1, TRACE_ID, 15), 2, SPAN_ID, 8), 3, "kept");
  wire_t *span = w_msg(span_with(NULL), 13, ln);
  w_bytes(w_bytes(span, 2, "short", 5), 2, PARENT_ID, 8); /* a bad id, then a good one: good */
  wire_t *req = req_of_span(span);
  assert_int_equal(decode_both(scratch, req->p, req->n, &t), 0);
  const lt_otlp_span_t *s = first_span(&t);
  assert_memory_equal(s->span_id, PARENT_ID, 8);
  assert_memory_equal(s->trace_id, TRACE_ID, 16);
  assert_memory_equal(s->links[0].trace_id, ZERO_ID, 16);
  assert_memory_equal(s->links[0].span_id, ZERO_ID, 8);
  assert_str(s->links[0].trace_state, "kept");
  span = w_bytes(span_with(NULL), 1, "", 0); /* trace id sent empty last: absent */
  w_bytes(span, 4, TRACE_ID, 9);            /* a bad parent zeroes all */
  req = req_of_span(span);
  assert_int_equal(decode_both(scratch, req->p, req->n, &t), 0);
  s = first_span(&t);
  assert_memory_equal(s->trace_id, ZERO_ID, 16);
  assert_memory_equal(s->span_id, ZERO_ID, 8);
  assert_false(s->has_parent);
}

/* The one deliberate difference: a string keeps an embedded NUL (the
 * reference cut it there). Strings are views of the body, not copies. */
static void embedded_nul(void **st) {
  static const char key[] = "k\0z", val[] = "a\0b", name[] = "\0lead";
  wire_t *kv = w_msg(w_bytes(w_new(), 1, key, 3), 2, w_bytes(w_new(), 1, val, 3));
  wire_t *req = req_of_span(w_bytes(span_with(kv), 5, name, 5));
  lt_otlp_traces_t t;
  assert_int_equal(decode_both(scratch, req->p, req->n, &t), 0);
  const lt_otlp_span_t *s = first_span(&t);
  assert_int_equal(s->name.len, 5);
  assert_memory_equal(s->name.ptr, name, 5);
  assert_int_equal(s->attrs.items[0].key.len, 3);
  assert_memory_equal(s->attrs.items[0].val.u.s.ptr, val, 3);
  const char *lo = (const char *)req->p, *hi = lo + req->n;
  assert_true(s->name.ptr >= lo && s->name.ptr + s->name.len <= hi);
  assert_true(s->attrs.items[0].val.u.s.ptr >= lo && s->attrs.items[0].val.u.s.ptr + 3 <= hi);

  lt_arena_t *a = lt_arena_create(1u << 20);
  assert_int_equal(lt_decode_traces_pb_ref(a, req->p, req->n, &t), 0);
  s = first_span(&t);
  assert_null(s->name.ptr); /* cut to nothing */
  assert_str(s->attrs.items[0].key, "k");
  assert_val_str(&s->attrs.items[0].val, "a");
  lt_arena_destroy(a);
}

static void empty_bodies_both(void **st) {
  lt_otlp_traces_t t;
  assert_int_equal(decode_both(scratch, NULL, 0, &t), 0);
  assert_int_equal(t.n, 0);
  assert_null(t.items);
  wire_t *only_unknown = w_unknowns(w_new());
  assert_int_equal(decode_both(scratch, only_unknown->p, only_unknown->n, &t), 0);
  assert_int_equal(t.n, 0);
  wire_t *empties = w_msg(w_msg(w_new(), 1, w_msg(w_new(), 2, w_msg(w_new(), 2, w_new()))), 1, w_new());
  assert_int_equal(decode_both(scratch, empties->p, empties->n, &t), 0);
  assert_int_equal(t.n, 2);
  assert_null(first_span(&t)->attrs.items);
  assert_null(first_span(&t)->name.ptr);
}

/* ---- generated requests -------------------------------------------------- */

/* Random requests from the schema, with what exporters never send mixed in
 * (repeated singular fields, several oneof members, unknown fields, bad ids,
 * wrong wire types, deep values, NULs in strings), some then damaged. */
static uint64_t rng;

static uint64_t rnd64(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

static uint32_t rnd(uint32_t n) { return (uint32_t)(rnd64() % n); }

static void g_str(wire_t *w, uint32_t field) {
  static const lt_str_t pool[] = {LT_STR(""),         LT_STR("a"),         LT_STR("gen_ai.request.model"),
                                  LT_STR("gpt-4o-mini"), LT_STR("x\0y"),   LT_STR("\0lead"),
                                  LT_STR("caf\xc3\xa9"), LT_STR("\xff\xfe"), LT_STR("service.name")};
  lt_str_t s = pool[rnd(sizeof pool / sizeof pool[0])];
  w_bytes(w, field, s.ptr, s.len);
}

static void g_unknown(wire_t *w) {
  uint32_t field = rnd(8) ? 17 + rnd(40) : 1000 + rnd(1u << 20);
  switch (rnd(4)) {
  case 0: w_varint(w, field, rnd64() >> rnd(64)); break;
  case 1: w_fixed(w, field, rnd64(), 8); break;
  case 2: g_str(w, field); break;
  default: w_fixed(w, field, rnd64(), 4); break;
  }
}

/* A field of one of the given numbers with a random wire type (right or
 * wrong). */
static void g_any_type(wire_t *w, uint32_t field) {
  switch (rnd(4)) {
  case 0: w_varint(w, field, rnd(3)); break;
  case 1: w_fixed(w, field, rnd64(), 8); break;
  case 2: g_str(w, field); break;
  default: w_fixed(w, field, rnd64(), 4); break;
  }
}

static wire_t *g_value(int depth);

static wire_t *g_kv(int depth) {
  wire_t *m = w_new();
  if (rnd(20)) g_str(m, 1);
  for (uint32_t i = 0, n = rnd(10) ? 1 : rnd(4); i < n; i++) w_msg(m, 2, g_value(depth));
  if (!rnd(10)) g_unknown(m);
  return m;
}

static wire_t *g_value(int depth) {
  wire_t *m = w_new();
  if (!rnd(150)) return array_chain(58 + (int)rnd(10), rnd(2)); /* around the depth limit */
  for (uint32_t i = 0, n = rnd(8) ? 1 : rnd(4); i < n; i++) {
    switch (rnd(depth < 4 ? 9 : 6)) {
    case 0: g_str(m, 1); break;
    case 1: rnd(8) ? w_varint(m, 2, rnd(3)) : g_any_type(m, 2); break;
    case 2: w_varint(m, 3, rnd64() >> rnd(64)); break;
    case 3: w_fixed(m, 4, rnd64(), 8); break;
    case 4: w_bytes(m, 7, "\0\x01\xff", rnd(4)); break;
    case 5: if (!rnd(30)) g_any_type(m, 1 + rnd(7)); break;
    case 6:
    case 7: {
      wire_t *arr = w_new();
      for (uint32_t j = 0, k = rnd(4); j < k; j++) w_msg(arr, 1, g_value(depth + 1));
      w_msg(m, 5, arr);
      break;
    }
    default: {
      wire_t *kvl = w_new();
      for (uint32_t j = 0, k = rnd(4); j < k; j++) w_msg(kvl, 1, g_kv(depth + 1));
      w_msg(m, 6, kvl);
      break;
    }
    }
  }
  if (!rnd(10)) g_unknown(m);
  return m;
}

static void g_attrs(wire_t *w, uint32_t field, uint32_t max) {
  for (uint32_t i = 0, n = rnd(max + 1); i < n; i++) w_msg(w, field, g_kv(1));
}

/* An id usually of the right length, sometimes empty or wrong. */
static void g_id(wire_t *w, uint32_t field, size_t n) {
  static const uint8_t bytes[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17}, zeros[32];
  size_t len = rnd(6) ? n : rnd(2) ? 0 : n + rnd(3) - 1;
  w_bytes(w, field, rnd(8) ? bytes + rnd(2) : zeros, len);
}

/* Fields picked at random, in random order, some more than once. */
static wire_t *g_span(void) {
  wire_t *m = w_new();
  if (rnd(10)) g_id(m, 1, 16);
  if (rnd(10)) g_id(m, 2, 8);
  for (uint32_t i = 0, n = 3 + rnd(14); i < n; i++) {
    switch (rnd(18)) {
    case 0: g_id(m, 1 + rnd(2), rnd(2) ? 16 : 8); break;
    case 1: g_id(m, 4, 8); break;
    case 2: g_str(m, 3); break;
    case 3: g_str(m, 5); break;
    case 4: w_varint(m, 6, rnd(4) ? rnd(6) : rnd64()); break;
    case 5: w_fixed(m, 7 + rnd(2), rnd64(), 8); break;
    case 6:
    case 7: g_attrs(m, 9, 4); break;
    case 8: w_varint(m, 10 + 2 * rnd(3), rnd(5)); break;
    case 9: {
      wire_t *ev = w_new();
      w_fixed(ev, 1, rnd64(), 8);
      if (rnd(4)) g_str(ev, 2);
      g_attrs(ev, 3, 2);
      if (!rnd(8)) w_varint(ev, 4, 1);
      w_msg(m, 11, ev);
      break;
    }
    case 10: {
      wire_t *ln = w_new();
      g_id(ln, 1, 16);
      g_id(ln, 2, 8);
      if (rnd(2)) g_str(ln, 3);
      g_attrs(ln, 4, 2);
      if (!rnd(8)) w_varint(ln, 5, 1);
      if (!rnd(8)) w_fixed(ln, 6, 1, 4);
      w_msg(m, 13, ln);
      break;
    }
    case 11:
    case 12: {
      wire_t *st = w_new();
      if (rnd(2)) g_str(st, 2);
      if (rnd(3)) w_varint(st, 3, rnd(8) ? rnd(3) : rnd64());
      if (!rnd(10)) w_varint(st, 1, 1); /* reserved: unknown */
      w_msg(m, 15, st);
      break;
    }
    case 13: w_fixed(m, 16, rnd64(), 4); break;
    case 14: g_unknown(m); break;
    case 15: if (!rnd(20)) g_any_type(m, 1 + rnd(16)); break;
    default: break;
    }
  }
  return m;
}

static wire_t *g_scope(void) {
  wire_t *m = w_new();
  for (uint32_t i = 0, n = rnd(6); i < n; i++) {
    switch (rnd(6)) {
    case 0: g_str(m, 1); break;
    case 1: g_str(m, 2); break;
    case 2: g_attrs(m, 3, 3); break;
    case 3: w_varint(m, 4, 2); break;
    case 4: g_unknown(m); break;
    default: if (!rnd(20)) g_any_type(m, 1 + rnd(4)); break;
    }
  }
  return m;
}

static wire_t *g_request(void) {
  wire_t *req = w_new();
  for (uint32_t i = 0, n = rnd(4); i < n; i++) {
    wire_t *rs = w_new();
    for (uint32_t j = 0, k = rnd(6); j < k; j++) {
      switch (rnd(6)) {
      case 0: {
        wire_t *res = w_new();
        g_attrs(res, 1, 4);
        if (!rnd(5)) w_varint(res, 2, 1);
        if (!rnd(5)) g_str(res, 3); /* entity_refs in newer protos; unknown here */
        w_msg(rs, 1, res);
        break;
      }
      case 1:
      case 2: {
        wire_t *ss = w_new();
        for (uint32_t l = 0, q = rnd(6); l < q; l++) {
          switch (rnd(5)) {
          case 0: w_msg(ss, 1, g_scope()); break;
          case 1:
          case 2: w_msg(ss, 2, g_span()); break;
          case 3: g_str(ss, 3); break;
          default: g_unknown(ss); break;
          }
        }
        w_msg(rs, 2, ss);
        break;
      }
      case 3: g_str(rs, 3); break;
      case 4: g_unknown(rs); break;
      default: if (!rnd(10)) g_any_type(rs, 1 + rnd(3)); break;
      }
    }
    w_msg(req, 1, rs);
  }
  if (!rnd(10)) g_unknown(req);
  return req;
}

static void generated_requests(void **st) {
  lt_arena_t *saved = scratch;
  int ok = 0, refused = 0;
  rng = 0x9e3779b97f4a7c15ull;
  for (int i = 0; i < 3000; i++) {
    scratch = lt_arena_create(64u << 20);
    assert_non_null(scratch);
    wire_t *req = g_request();
    switch (rnd(10)) { /* damage some */
    case 0:
      if (req->n) req->n = rnd((uint32_t)req->n);
      break;
    case 1:
      if (req->n) req->p[rnd((uint32_t)req->n)] ^= (uint8_t)(1u << rnd(8));
      break;
    default: break;
    }
    lt_arena_t *a = lt_arena_create(64u << 20);
    int rc = decode_both(a, req->p, req->n, NULL);
    ok += rc == 0;
    refused += rc != 0;
    lt_arena_destroy(a);
    lt_arena_destroy(scratch);
  }
  scratch = saved;
  /* the mix exercises both outcomes */
  assert_true(ok > 1000);
  assert_true(refused > 200);
}

/* The benchmark's payloads (bench/gen_payloads.py), when present. */
static void bench_payloads(void **st) {
  static const char dir[] = "bench/results/payloads-s42-n100";
  size_t files = 0, spans = 0;
  for (int i = 0;; i++) {
    char path[128];
    snprintf(path, sizeof path, "%s/req-%05d.pb", dir, i);
    FILE *f = fopen(path, "rb");
    if (!f) break;
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long len = ftell(f);
    assert_true(len >= 0);
    rewind(f);
    char *body = lt_malloc((size_t)len + 1);
    assert_non_null(body);
    assert_int_equal(fread(body, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    lt_arena_t *a = lt_arena_create((size_t)len * 8 + (1u << 20));
    lt_otlp_traces_t t;
    assert_int_equal(decode_both(a, body, (size_t)len, &t), 0);
    for (size_t r = 0; r < t.n; r++)
      for (size_t s = 0; s < t.items[r].n_scopes; s++) spans += t.items[r].scopes[s].n_spans;
    lt_arena_destroy(a);
    lt_free(body);
    files++;
  }
  if (files == 0) return; /* not generated here: nothing to compare */
  assert_true(spans > 0);
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
      cmocka_unit_test(unknown_fields_skipped),
      cmocka_unit_test(repeated_singular_merged),
      cmocka_unit_test(oneof_last_member_wins),
      cmocka_unit_test(wrong_wire_type),
      cmocka_unit_test(wire_edges),
      cmocka_unit_test(truncated_both),
      cmocka_unit_test(depth_limits),
      cmocka_unit_test(ids_both),
      cmocka_unit_test(embedded_nul),
      cmocka_unit_test(empty_bodies_both),
      cmocka_unit_test(generated_requests),
      cmocka_unit_test(bench_payloads),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
