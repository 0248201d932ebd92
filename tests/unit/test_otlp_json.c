/* Unit tests for the OTLP/JSON decoder and the JSON export response:
 * realistic LLM traces, every AnyValue type, the lenient spellings (snake
 * case, enum names, 64-bit strings), per-span id failures, logs, metrics,
 * malformed input, arena exhaustion, and the committed fixtures. */
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
#include "core/buf.h"
#include "core/err.h"
#include "core/mem.h"
#include "ingest/decode.h"

#define ARENA_CAP (16u << 20)

static int traces(lt_arena_t *a, const char *json, lt_otlp_traces_t *t) {
  memset(t, 0, sizeof *t);
  return lt_decode_traces_json(a, json, strlen(json), t);
}

static int logs(lt_arena_t *a, const char *json, lt_otlp_logs_t *t) {
  memset(t, 0, sizeof *t);
  return lt_decode_logs_json(a, json, strlen(json), t);
}

static int metrics(lt_arena_t *a, const char *json, lt_otlp_metrics_t *t) {
  memset(t, 0, sizeof *t);
  return lt_decode_metrics_json(a, json, strlen(json), t);
}

static void assert_hex(const uint8_t *id, size_t n, const char *hex) {
  uint8_t want[16];
  assert_true(n <= sizeof want);
  assert_int_equal(lt_hex_decode(want, n, hex, strlen(hex)), 0);
  assert_memory_equal(id, want, n);
}

static bool zero(const uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (p[i]) return false;
  return true;
}

static void assert_str(lt_str_t s, const char *want) {
  assert_non_null(s.ptr);
  assert_int_equal(s.len, strlen(want));
  assert_memory_equal(s.ptr, want, s.len);
}

static const lt_val_t *attr(const lt_attrs_t *attrs, const char *key) {
  const lt_val_t *v = lt_attrs_get(attrs, key);
  if (!v) fail_msg("attribute %s is missing", key);
  return v;
}

static void assert_attr_str(const lt_attrs_t *attrs, const char *key, const char *want) {
  const lt_val_t *v = attr(attrs, key);
  assert_int_equal(v->type, LT_VAL_STR);
  assert_str(v->u.s, want);
}

static void assert_attr_int(const lt_attrs_t *attrs, const char *key, int64_t want) {
  const lt_val_t *v = attr(attrs, key);
  assert_int_equal(v->type, LT_VAL_INT);
  assert_true(v->u.i == want);
}

/* ---- traces ---------------------------------------------------------- */

static const char *const llm_trace =
    "{\"resourceSpans\":[{"
    "  \"resource\":{\"attributes\":["
    "    {\"key\":\"service.name\",\"value\":{\"stringValue\":\"support-bot\"}},"
    "    {\"key\":\"deployment.environment.name\",\"value\":{\"stringValue\":\"staging\"}}],"
    "    \"droppedAttributesCount\":0},"
    "  \"scopeSpans\":[{"
    "    \"scope\":{\"name\":\"opentelemetry.instrumentation.openai_v2\",\"version\":\"2.0b0\"},"
    "    \"spans\":["
    "      {\"traceId\":\"4bf92f3577b34da6a3ce929d0e0e4736\",\"spanId\":\"00f067aa0ba902b7\","
    "       \"parentSpanId\":\"\",\"name\":\"invoke_agent support\",\"kind\":1,"
    "       \"startTimeUnixNano\":\"1732017600000000000\",\"endTimeUnixNano\":\"1732017603000000000\","
    "       \"attributes\":[{\"key\":\"gen_ai.operation.name\",\"value\":{\"stringValue\":\"invoke_agent\"}}],"
    "       \"status\":{\"code\":1}},"
    "      {\"traceId\":\"4BF92F3577B34DA6A3CE929D0E0E4736\",\"spanId\":\"B7AD6B7169203331\","
    "       \"parentSpanId\":\"00f067aa0ba902b7\",\"traceState\":\"vendor=1\",\"name\":\"chat gpt-4o-mini\","
    "       \"kind\":3,\"startTimeUnixNano\":1732017600105000000,\"endTimeUnixNano\":\"1732017601922000000\","
    "       \"attributes\":["
    "         {\"key\":\"gen_ai.operation.name\",\"value\":{\"stringValue\":\"chat\"}},"
    "         {\"key\":\"gen_ai.request.model\",\"value\":{\"stringValue\":\"gpt-4o-mini\"}},"
    "         {\"key\":\"gen_ai.request.temperature\",\"value\":{\"doubleValue\":0.2}},"
    "         {\"key\":\"gen_ai.usage.input_tokens\",\"value\":{\"intValue\":\"412\"}},"
    "         {\"key\":\"gen_ai.usage.output_tokens\",\"value\":{\"intValue\":38}},"
    "         {\"key\":\"gen_ai.response.finish_reasons\",\"value\":{\"arrayValue\":{\"values\":"
    "            [{\"stringValue\":\"stop\"}]}}}],"
    "       \"droppedAttributesCount\":0,"
    "       \"events\":["
    "         {\"timeUnixNano\":\"1732017600511000000\",\"name\":\"gen_ai.content.first_chunk\"},"
    "         {\"timeUnixNano\":\"1732017601900000000\",\"name\":\"gen_ai.choice\",\"attributes\":["
    "           {\"key\":\"index\",\"value\":{\"intValue\":\"0\"}}],\"droppedAttributesCount\":0}],"
    "       \"droppedEventsCount\":0,"
    "       \"links\":[{\"traceId\":\"0af7651916cd43dd8448eb211c80319c\",\"spanId\":\"b9c7c989f97918e1\","
    "         \"traceState\":\"k=v\",\"attributes\":[{\"key\":\"link.reason\",\"value\":{\"stringValue\":\"retry\"}}],"
    "         \"flags\":256}],"
    "       \"flags\":257,"
    "       \"status\":{\"code\":2,\"message\":\"upstream returned 500\"},"
    "       \"someFutureField\":{\"nested\":[1,2,3]}}"
    "    ],\"schemaUrl\":\"https://opentelemetry.io/schemas/1.27.0\"}]}]}";

static void traces_realistic(void **st) {
  lt_arena_t *a = lt_arena_create(ARENA_CAP);
  lt_otlp_traces_t t;
  assert_int_equal(traces(a, llm_trace, &t), 0);
  assert_int_equal(t.n, 1);
  const lt_otlp_resource_spans_t *rs = &t.items[0];
  assert_int_equal(rs->resource.n, 2);
  assert_attr_str(&rs->resource, "service.name", "support-bot");
  assert_int_equal(rs->n_scopes, 1);
  const lt_otlp_scope_spans_t *ss = &rs->scopes[0];
  assert_str(ss->scope.name, "opentelemetry.instrumentation.openai_v2");
  assert_str(ss->scope.version, "2.0b0");
  assert_int_equal(ss->n_spans, 2);

  const lt_otlp_span_t *root = &ss->spans[0];
  assert_hex(root->trace_id, 16, "4bf92f3577b34da6a3ce929d0e0e4736");
  assert_hex(root->span_id, 8, "00f067aa0ba902b7");
  assert_false(root->has_parent); /* empty parentSpanId */
  assert_int_equal(root->kind, 1);
  assert_true(root->start_ns == 1732017600000000000ull);
  assert_true(root->end_ns == 1732017603000000000ull);
  assert_int_equal(root->status_code, 1);
  assert_int_equal(root->n_events, 0);
  assert_null(root->events);

  const lt_otlp_span_t *llm = &ss->spans[1];
  assert_hex(llm->trace_id, 16, "4bf92f3577b34da6a3ce929d0e0e4736"); /* upper case hex */
  assert_hex(llm->span_id, 8, "b7ad6b7169203331");
  assert_true(llm->has_parent);
  assert_hex(llm->parent_span_id, 8, "00f067aa0ba902b7");
  assert_str(llm->trace_state, "vendor=1");
  assert_str(llm->name, "chat gpt-4o-mini");
  assert_int_equal(llm->kind, 3);
  assert_true(llm->start_ns == 1732017600105000000ull);
  assert_true(llm->end_ns == 1732017601922000000ull);
  assert_int_equal(llm->attrs.n, 6);
  assert_attr_str(&llm->attrs, "gen_ai.request.model", "gpt-4o-mini");
  assert_attr_int(&llm->attrs, "gen_ai.usage.input_tokens", 412);
  assert_attr_int(&llm->attrs, "gen_ai.usage.output_tokens", 38);
  const lt_val_t *temp = attr(&llm->attrs, "gen_ai.request.temperature");
  assert_int_equal(temp->type, LT_VAL_DOUBLE);
  assert_true(temp->u.d == 0.2);
  const lt_val_t *fr = attr(&llm->attrs, "gen_ai.response.finish_reasons");
  assert_int_equal(fr->type, LT_VAL_ARRAY);
  assert_int_equal(fr->u.arr.n, 1);
  assert_str(fr->u.arr.items[0].u.s, "stop");

  assert_int_equal(llm->n_events, 2);
  assert_str(llm->events[0].name, "gen_ai.content.first_chunk");
  assert_true(llm->events[0].time_ns == 1732017600511000000ull);
  assert_int_equal(llm->events[0].attrs.n, 0);
  assert_str(llm->events[1].name, "gen_ai.choice");
  assert_attr_int(&llm->events[1].attrs, "index", 0);

  assert_int_equal(llm->n_links, 1);
  assert_hex(llm->links[0].trace_id, 16, "0af7651916cd43dd8448eb211c80319c");
  assert_hex(llm->links[0].span_id, 8, "b9c7c989f97918e1");
  assert_str(llm->links[0].trace_state, "k=v");
  assert_attr_str(&llm->links[0].attrs, "link.reason", "retry");

  assert_int_equal(llm->status_code, 2);
  assert_str(llm->status_message, "upstream returned 500");
  lt_arena_destroy(a);
}

static void traces_empty_requests(void **st) {
  lt_arena_t *a = lt_arena_create(ARENA_CAP);
  lt_otlp_traces_t t;
  assert_int_equal(traces(a, "{}", &t), 0);
  assert_int_equal(t.n, 0);
  assert_int_equal(traces(a, "{\"resourceSpans\":null}", &t), 0);
  assert_int_equal(t.n, 0);
  assert_int_equal(traces(a, "{\"resourceSpans\":[{}]}", &t), 0);
  assert_int_equal(t.n, 1);
  assert_int_equal(t.items[0].n_scopes, 0);
  assert_int_equal(traces(a, "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{}]}]}]}", &t), 0);
  const lt_otlp_span_t *s = &t.items[0].scopes[0].spans[0];
  assert_true(zero(s->trace_id, 16) && zero(s->span_id, 8));
  assert_null(s->name.ptr);
  lt_arena_destroy(a);
}

/* Every AnyValue type, nested, in both number spellings. */
static void anyvalue_every_type(void **st) {
  const char *json =
      "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{"
      "\"traceId\":\"5b8efff798038103d269b633813fc60c\",\"spanId\":\"eee19b7ec3c1b174\","
      "\"attributes\":["
      "{\"key\":\"s\",\"value\":{\"stringValue\":\"h\\u00e9llo \\\"w\\\"\"}},"
      "{\"key\":\"nul\",\"value\":{\"stringValue\":\"a\\u0000b\"}},"
      "{\"key\":\"b\",\"value\":{\"boolValue\":true}},"
      "{\"key\":\"f\",\"value\":{\"boolValue\":false}},"
      "{\"key\":\"i\",\"value\":{\"intValue\":-42}},"
      "{\"key\":\"istr\",\"value\":{\"intValue\":\"-9223372036854775808\"}},"
      "{\"key\":\"imax\",\"value\":{\"intValue\":\"9223372036854775807\"}},"
      "{\"key\":\"ireal\",\"value\":{\"intValue\":1e3}},"
      "{\"key\":\"d\",\"value\":{\"doubleValue\":637.704}},"
      "{\"key\":\"dint\",\"value\":{\"doubleValue\":7}},"
      "{\"key\":\"dstr\",\"value\":{\"doubleValue\":\"1.5e3\"}},"
      "{\"key\":\"nan\",\"value\":{\"doubleValue\":\"NaN\"}},"
      "{\"key\":\"inf\",\"value\":{\"doubleValue\":\"-Infinity\"}},"
      "{\"key\":\"bytes\",\"value\":{\"bytesValue\":\"AAEC/w==\"}},"
      "{\"key\":\"bytesurl\",\"value\":{\"bytesValue\":\"AAEC_w\"}},"
      "{\"key\":\"bytesempty\",\"value\":{\"bytesValue\":\"\"}},"
      "{\"key\":\"empty\",\"value\":{}},"
      "{\"key\":\"novalue\"},"
      "{\"key\":\"nullvalue\",\"value\":null},"
      "{\"key\":\"arr\",\"value\":{\"arrayValue\":{\"values\":["
      "  {\"stringValue\":\"x\"},{\"intValue\":\"1\"},null,"
      "  {\"arrayValue\":{\"values\":[{\"boolValue\":true}]}},"
      "  {\"kvlistValue\":{\"values\":[{\"key\":\"k\",\"value\":{\"doubleValue\":1.5}}]}}]}}},"
      "{\"key\":\"emptyarr\",\"value\":{\"arrayValue\":{}}},"
      "{\"key\":\"kv\",\"value\":{\"kvlistValue\":{\"values\":["
      "  {\"key\":\"inner\",\"value\":{\"kvlistValue\":{\"values\":["
      "    {\"key\":\"deep\",\"value\":{\"stringValue\":\"yes\"}}]}}},"
      "  {\"key\":\"list\",\"value\":{\"arrayValue\":{\"values\":[{\"intValue\":5}]}}}]}}}"
      "]}]}]}]}";
  lt_arena_t *a = lt_arena_create(ARENA_CAP);
  lt_otlp_traces_t t;
  assert_int_equal(traces(a, json, &t), 0);
  const lt_attrs_t *at = &t.items[0].scopes[0].spans[0].attrs;
  assert_attr_str(at, "s", "h\xc3\xa9llo \"w\"");
  const lt_val_t *v = attr(at, "nul");
  assert_int_equal(v->u.s.len, 3);
  assert_memory_equal(v->u.s.ptr, "a\0b", 3);
  v = attr(at, "b");
  assert_int_equal(v->type, LT_VAL_BOOL);
  assert_true(v->u.b);
  v = attr(at, "f");
  assert_int_equal(v->type, LT_VAL_BOOL);
  assert_false(v->u.b);
  assert_attr_int(at, "i", -42);
  assert_attr_int(at, "istr", INT64_MIN);
  assert_attr_int(at, "imax", INT64_MAX);
  assert_attr_int(at, "ireal", 1000);
  v = attr(at, "d");
  assert_int_equal(v->type, LT_VAL_DOUBLE);
  assert_true(v->u.d == 637.704);
  v = attr(at, "dint");
  assert_int_equal(v->type, LT_VAL_DOUBLE);
  assert_true(v->u.d == 7.0);
  assert_true(attr(at, "dstr")->u.d == 1500.0);
  assert_true(isnan(attr(at, "nan")->u.d));
  assert_true(isinf(attr(at, "inf")->u.d) && attr(at, "inf")->u.d < 0);
  v = attr(at, "bytes");
  assert_int_equal(v->type, LT_VAL_BYTES);
  assert_int_equal(v->u.s.len, 4);
  assert_memory_equal(v->u.s.ptr, "\x00\x01\x02\xff", 4);
  v = attr(at, "bytesurl");
  assert_int_equal(v->u.s.len, 4);
  assert_memory_equal(v->u.s.ptr, "\x00\x01\x02\xff", 4);
  v = attr(at, "bytesempty");
  assert_int_equal(v->type, LT_VAL_BYTES);
  assert_int_equal(v->u.s.len, 0);
  assert_int_equal(attr(at, "empty")->type, LT_VAL_EMPTY);
  assert_int_equal(attr(at, "novalue")->type, LT_VAL_EMPTY);
  assert_int_equal(attr(at, "nullvalue")->type, LT_VAL_EMPTY);

  v = attr(at, "arr");
  assert_int_equal(v->type, LT_VAL_ARRAY);
  assert_int_equal(v->u.arr.n, 5);
  assert_str(v->u.arr.items[0].u.s, "x");
  assert_int_equal(v->u.arr.items[1].type, LT_VAL_INT);
  assert_int_equal(v->u.arr.items[1].u.i, 1);
  assert_int_equal(v->u.arr.items[2].type, LT_VAL_EMPTY);
  assert_int_equal(v->u.arr.items[3].type, LT_VAL_ARRAY);
  assert_true(v->u.arr.items[3].u.arr.items[0].u.b);
  assert_int_equal(v->u.arr.items[4].type, LT_VAL_KVLIST);
  assert_str(v->u.arr.items[4].u.kv.items[0].key, "k");
  assert_true(v->u.arr.items[4].u.kv.items[0].val.u.d == 1.5);
  v = attr(at, "emptyarr");
  assert_int_equal(v->type, LT_VAL_ARRAY);
  assert_int_equal(v->u.arr.n, 0);

  v = attr(at, "kv");
  assert_int_equal(v->type, LT_VAL_KVLIST);
  assert_int_equal(v->u.kv.n, 2);
  lt_attrs_t inner_list = {v->u.kv.items, v->u.kv.n};
  const lt_val_t *inner = attr(&inner_list, "inner");
  assert_int_equal(inner->type, LT_VAL_KVLIST);
  lt_attrs_t deep = {inner->u.kv.items, inner->u.kv.n};
  assert_attr_str(&deep, "deep", "yes");
  const lt_val_t *list = attr(&inner_list, "list");
  assert_int_equal(list->u.arr.items[0].u.i, 5);
  lt_arena_destroy(a);
}

/* The protobuf JSON mapping's other spellings: snake_case names and enum
 * names as strings. */
static void snake_case_and_enum_names(void **st) {
  const char *json =
      "{\"resource_spans\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\","
      "\"value\":{\"string_value\":\"svc\"}}]},"
      "\"scope_spans\":[{\"scope\":{\"name\":\"lib\"},\"spans\":["
      "{\"trace_id\":\"5b8efff798038103d269b633813fc60c\",\"span_id\":\"eee19b7ec3c1b174\","
      "\"parent_span_id\":\"eee19b7ec3c1b173\",\"trace_state\":\"a=b\",\"name\":\"n\","
      "\"kind\":\"SPAN_KIND_CLIENT\",\"start_time_unix_nano\":\"10\",\"end_time_unix_nano\":20,"
      "\"attributes\":[{\"key\":\"i\",\"value\":{\"int_value\":\"7\"}},"
      "{\"key\":\"d\",\"value\":{\"double_value\":2.5}},{\"key\":\"b\",\"value\":{\"bool_value\":true}},"
      "{\"key\":\"y\",\"value\":{\"bytes_value\":\"aGk=\"}},"
      "{\"key\":\"a\",\"value\":{\"array_value\":{\"values\":[{\"int_value\":1}]}}},"
      "{\"key\":\"k\",\"value\":{\"kvlist_value\":{\"values\":[{\"key\":\"x\",\"value\":{}}]}}}],"
      "\"events\":[{\"time_unix_nano\":\"5\",\"name\":\"e\"}],"
      "\"links\":[{\"trace_id\":\"0af7651916cd43dd8448eb211c80319c\",\"span_id\":\"b9c7c989f97918e1\"}],"
      "\"status\":{\"code\":\"STATUS_CODE_ERROR\",\"message\":\"m\"}},"
      "{\"traceId\":\"5b8efff798038103d269b633813fc60c\",\"spanId\":\"eee19b7ec3c1b175\","
      "\"kind\":\"SPAN_KIND_MADE_UP\",\"status\":{\"code\":\"STATUS_CODE_OK\"}},"
      "{\"kind\":\"4\",\"status\":{\"code\":\"2\"}}"
      "]}]}]}";
  lt_arena_t *a = lt_arena_create(ARENA_CAP);
  lt_otlp_traces_t t;
  assert_int_equal(traces(a, json, &t), 0);
  assert_int_equal(t.n, 1);
  assert_attr_str(&t.items[0].resource, "service.name", "svc");
  const lt_otlp_span_t *s = &t.items[0].scopes[0].spans[0];
  assert_hex(s->trace_id, 16, "5b8efff798038103d269b633813fc60c");
  assert_hex(s->span_id, 8, "eee19b7ec3c1b174");
  assert_true(s->has_parent);
  assert_hex(s->parent_span_id, 8, "eee19b7ec3c1b173");
  assert_str(s->trace_state, "a=b");
  assert_int_equal(s->kind, 3);
  assert_true(s->start_ns == 10 && s->end_ns == 20);
  assert_attr_int(&s->attrs, "i", 7);
  assert_true(attr(&s->attrs, "d")->u.d == 2.5);
  assert_true(attr(&s->attrs, "b")->u.b);
  assert_str(attr(&s->attrs, "y")->u.s, "hi");
  assert_int_equal(attr(&s->attrs, "a")->u.arr.items[0].u.i, 1);
  assert_int_equal(attr(&s->attrs, "k")->type, LT_VAL_KVLIST);
  assert_int_equal(s->n_events, 1);
  assert_true(s->events[0].time_ns == 5);
  assert_hex(s->links[0].trace_id, 16, "0af7651916cd43dd8448eb211c80319c");
  assert_int_equal(s->status_code, 2);
  assert_str(s->status_message, "m");
  const lt_otlp_span_t *s2 = &t.items[0].scopes[0].spans[1];
  assert_int_equal(s2->kind, 0); /* unknown name reads as unspecified */
  assert_int_equal(s2->status_code, 1);
  const lt_otlp_span_t *s3 = &t.items[0].scopes[0].spans[2];
  assert_int_equal(s3->kind, 4); /* quoted number */
  assert_int_equal(s3->status_code, 2);
  lt_arena_destroy(a);
}

static void sixty_four_bit_extremes(void **st) {
  lt_arena_t *a = lt_arena_create(ARENA_CAP);
  lt_otlp_traces_t t;
  assert_int_equal(traces(a, "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{"
                             "\"startTimeUnixNano\":\"18446744073709551615\",\"endTimeUnixNano\":1.7e18}]}]}]}",
                          &t),
                   0);
  assert_true(t.items[0].scopes[0].spans[0].start_ns == UINT64_MAX);
  assert_true(t.items[0].scopes[0].spans[0].end_ns == 1700000000000000000ull);
  static const char *const bad[] = {
      "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"startTimeUnixNano\":\"18446744073709551616\"}]}]}]}",
      "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"startTimeUnixNano\":-1}]}]}]}",
      "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"startTimeUnixNano\":\"-1\"}]}]}]}",
      "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"startTimeUnixNano\":1.5}]}]}]}",
      "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"startTimeUnixNano\":\"\"}]}]}]}",
      "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"startTimeUnixNano\":\" 1\"}]}]}]}",
      "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"startTimeUnixNano\":true}]}]}]}",
      "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"attributes\":[{\"key\":\"k\","
      "\"value\":{\"intValue\":\"9223372036854775808\"}}]}]}]}]}",
      "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"attributes\":[{\"key\":\"k\","
      "\"value\":{\"intValue\":\"12x\"}}]}]}]}]}",
      "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"kind\":4294967298}]}]}]}",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    if (traces(a, bad[i], &t) != LT_EDECODE) fail_msg("accepted: %s", bad[i]);
  }
  lt_arena_destroy(a);
}

/* A malformed id fails its own span only: all its ids are zeroed so the
 * receiver rejects that span through partial_success. */
static void bad_ids_zero_the_span(void **st) {
  const char *json =
      "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":["
      "{\"traceId\":\"not-hex-not-hex-not-hex-not-hex!\",\"spanId\":\"eee19b7ec3c1b174\",\"name\":\"badtrace\"},"
      "{\"traceId\":\"5b8efff798038103d269b633813fc60c\",\"spanId\":\"eee19b7ec3c1b1\",\"name\":\"shortspan\"},"
      "{\"traceId\":\"5b8efff798038103d269b633813fc60c\",\"spanId\":\"eee19b7ec3c1b174\","
      " \"parentSpanId\":\"zzz\",\"name\":\"badparent\"},"
      "{\"traceId\":12345,\"spanId\":\"eee19b7ec3c1b174\",\"name\":\"numeric\"},"
      "{\"traceId\":\"W46P95gDgQPSabYzgT/GDA==\",\"spanId\":\"7uGbfsPBsXQ=\",\"name\":\"base64\"},"
      "{\"traceId\":\"5b8efff798038103d269b633813fc60c\",\"spanId\":\"eee19b7ec3c1b174\","
      " \"parentSpanId\":\"0000000000000000\",\"name\":\"zeroparent\","
      " \"links\":[{\"traceId\":\"xyz\",\"spanId\":\"b9c7c989f97918e1\"}]}"
      "]}]}]}";
  lt_arena_t *a = lt_arena_create(ARENA_CAP);
  lt_otlp_traces_t t;
  assert_int_equal(traces(a, json, &t), 0);
  const lt_otlp_scope_spans_t *ss = &t.items[0].scopes[0];
  assert_int_equal(ss->n_spans, 6);
  for (size_t i = 0; i < 5; i++) {
    const lt_otlp_span_t *s = &ss->spans[i];
    assert_true(zero(s->trace_id, 16));
    assert_true(zero(s->span_id, 8));
    assert_true(zero(s->parent_span_id, 8));
    assert_false(s->has_parent);
    assert_non_null(s->name.ptr); /* the rest of the span still decodes */
  }
  const lt_otlp_span_t *ok = &ss->spans[5];
  assert_hex(ok->trace_id, 16, "5b8efff798038103d269b633813fc60c");
  assert_hex(ok->span_id, 8, "eee19b7ec3c1b174");
  assert_false(ok->has_parent); /* all-zero parent means a root span */
  assert_int_equal(ok->n_links, 1);
  assert_true(zero(ok->links[0].trace_id, 16) && zero(ok->links[0].span_id, 8));
  lt_arena_destroy(a);
}

/* ---- logs -------------------------------------------------------------- */

static void logs_records(void **st) {
  const char *json =
      "{\"resourceLogs\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\","
      "\"value\":{\"stringValue\":\"support-bot\"}}]},"
      "\"scopeLogs\":[{\"scope\":{\"name\":\"opentelemetry.instrumentation.openai_v2\"},\"logRecords\":["
      "{\"timeUnixNano\":\"1732017600105000000\",\"observedTimeUnixNano\":1732017600106000000,"
      " \"severityNumber\":9,\"severityText\":\"INFO\",\"flags\":1,"
      " \"traceId\":\"5B8EFFF798038103D269B633813FC60C\",\"spanId\":\"EEE19B7EC3C1B174\","
      " \"eventName\":\"gen_ai.user.message\","
      " \"body\":{\"kvlistValue\":{\"values\":[{\"key\":\"content\",\"value\":{\"stringValue\":\"hi\"}}]}},"
      " \"attributes\":[{\"key\":\"gen_ai.system\",\"value\":{\"stringValue\":\"openai\"}}]},"
      "{\"time_unix_nano\":\"7\",\"severity_number\":\"SEVERITY_NUMBER_ERROR2\",\"severity_text\":\"E\","
      " \"event_name\":\"x\",\"body\":{\"stringValue\":\"plain text\"},\"trace_id\":\"\",\"span_id\":\"bad\"},"
      "{\"severityNumber\":\"SEVERITY_NUMBER_FATAL4\",\"traceId\":\"00000000000000000000000000000000\"}"
      "]}]}]}";
  lt_arena_t *a = lt_arena_create(ARENA_CAP);
  lt_otlp_logs_t t;
  assert_int_equal(logs(a, json, &t), 0);
  assert_int_equal(t.n, 1);
  assert_attr_str(&t.items[0].resource, "service.name", "support-bot");
  const lt_otlp_scope_logs_t *sl = &t.items[0].scopes[0];
  assert_str(sl->scope.name, "opentelemetry.instrumentation.openai_v2");
  assert_int_equal(sl->n_logs, 3);
  const lt_otlp_log_t *l = &sl->logs[0];
  assert_true(l->time_ns == 1732017600105000000ull);
  assert_true(l->observed_ns == 1732017600106000000ull);
  assert_int_equal(l->severity_number, 9);
  assert_str(l->severity_text, "INFO");
  assert_int_equal(l->flags, 1);
  assert_true(l->has_trace && l->has_span);
  assert_hex(l->trace_id, 16, "5b8efff798038103d269b633813fc60c");
  assert_hex(l->span_id, 8, "eee19b7ec3c1b174");
  assert_str(l->event_name, "gen_ai.user.message");
  assert_int_equal(l->body.type, LT_VAL_KVLIST);
  assert_str(l->body.u.kv.items[0].key, "content");
  assert_str(l->body.u.kv.items[0].val.u.s, "hi");
  assert_attr_str(&l->attrs, "gen_ai.system", "openai");

  l = &sl->logs[1];
  assert_true(l->time_ns == 7);
  assert_int_equal(l->severity_number, 18);
  assert_str(l->severity_text, "E");
  assert_str(l->event_name, "x");
  assert_int_equal(l->body.type, LT_VAL_STR);
  assert_str(l->body.u.s, "plain text");
  assert_false(l->has_trace); /* empty */
  assert_false(l->has_span);  /* malformed: dropped, the record is kept */
  assert_true(zero(l->span_id, 8));

  l = &sl->logs[2];
  assert_int_equal(l->severity_number, 24);
  assert_false(l->has_trace); /* all zero */
  assert_int_equal(l->body.type, LT_VAL_EMPTY);
  lt_arena_destroy(a);
}

/* ---- metrics ----------------------------------------------------------- */

static void metrics_all_types(void **st) {
  const char *json =
      "{\"resourceMetrics\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\","
      "\"value\":{\"stringValue\":\"gateway\"}}]},\"scopeMetrics\":[{\"scope\":{\"name\":\"m\",\"version\":\"1\"},"
      "\"metrics\":["
      "{\"name\":\"queue.depth\",\"unit\":\"1\",\"description\":\"items waiting\",\"gauge\":{\"dataPoints\":["
      "  {\"asDouble\":10.5,\"timeUnixNano\":\"1544712660300000000\","
      "   \"attributes\":[{\"key\":\"q\",\"value\":{\"stringValue\":\"a\"}}]},"
      "  {\"asInt\":\"3\",\"timeUnixNano\":1544712660300000000}]}},"
      "{\"name\":\"requests\",\"sum\":{\"aggregationTemporality\":2,\"isMonotonic\":true,\"dataPoints\":["
      "  {\"asInt\":\"1234\",\"startTimeUnixNano\":\"1544712600000000000\",\"timeUnixNano\":\"1544712660300000000\"}]}},"
      "{\"name\":\"gen_ai.client.token.usage\",\"unit\":\"{token}\",\"histogram\":{"
      "  \"aggregationTemporality\":\"AGGREGATION_TEMPORALITY_DELTA\",\"dataPoints\":["
      "  {\"startTimeUnixNano\":\"1\",\"timeUnixNano\":\"2\",\"count\":\"6\",\"sum\":1100,"
      "   \"bucketCounts\":[\"1\",2,\"3\"],\"explicitBounds\":[16,256.5],\"min\":3,\"max\":\"512\","
      "   \"attributes\":[{\"key\":\"gen_ai.token.type\",\"value\":{\"stringValue\":\"input\"}}]},"
      "  {\"count\":0}]}},"
      "{\"name\":\"latency\",\"exponential_histogram\":{\"aggregation_temporality\":2,\"data_points\":["
      "  {\"count\":\"4\",\"sum\":2.5,\"scale\":3,\"zeroCount\":\"1\",\"positive\":{\"offset\":1,"
      "   \"bucketCounts\":[\"1\",\"2\"]},\"min\":0.1,\"max\":1.2}]}},"
      "{\"name\":\"rpc.duration\",\"summary\":{\"dataPoints\":["
      "  {\"count\":\"10\",\"sum\":4.25,\"quantileValues\":[{\"quantile\":0.5,\"value\":0.4}]}]}},"
      "{\"name\":\"nodata\",\"metadata\":[]}"
      "]}]}]}";
  lt_arena_t *a = lt_arena_create(ARENA_CAP);
  lt_otlp_metrics_t t;
  assert_int_equal(metrics(a, json, &t), 0);
  assert_int_equal(t.n, 1);
  const lt_otlp_scope_metrics_t *sm = &t.items[0].scopes[0];
  assert_str(sm->scope.version, "1");
  assert_int_equal(sm->n_metrics, 6);

  const lt_otlp_metric_t *g = &sm->metrics[0];
  assert_str(g->name, "queue.depth");
  assert_str(g->unit, "1");
  assert_str(g->description, "items waiting");
  assert_int_equal(g->type, LT_METRIC_GAUGE);
  assert_int_equal(g->n_points, 2);
  assert_true(g->points[0].value == 10.5);
  assert_false(g->points[0].as_int);
  assert_true(g->points[0].time_ns == 1544712660300000000ull);
  assert_attr_str(&g->points[0].attrs, "q", "a");
  assert_true(g->points[1].value == 3.0);
  assert_true(g->points[1].as_int);

  const lt_otlp_metric_t *s = &sm->metrics[1];
  assert_int_equal(s->type, LT_METRIC_SUM);
  assert_int_equal(s->temporality, 2);
  assert_true(s->monotonic);
  assert_true(s->points[0].as_int);
  assert_true(s->points[0].value == 1234.0);
  assert_true(s->points[0].start_ns == 1544712600000000000ull);

  const lt_otlp_metric_t *h = &sm->metrics[2];
  assert_int_equal(h->type, LT_METRIC_HISTOGRAM);
  assert_int_equal(h->temporality, 1);
  assert_false(h->monotonic);
  assert_int_equal(h->n_points, 2);
  const lt_otlp_point_t *p = &h->points[0];
  assert_true(p->start_ns == 1 && p->time_ns == 2);
  assert_int_equal(p->count, 6);
  assert_true(p->has_sum && p->sum == 1100.0);
  assert_true(p->has_min && p->min == 3.0);
  assert_true(p->has_max && p->max == 512.0);
  assert_int_equal(p->n_buckets, 3);
  assert_int_equal(p->bucket_counts[0], 1);
  assert_int_equal(p->bucket_counts[1], 2);
  assert_int_equal(p->bucket_counts[2], 3);
  assert_int_equal(p->n_bounds, 2);
  assert_true(p->explicit_bounds[0] == 16.0 && p->explicit_bounds[1] == 256.5);
  assert_attr_str(&p->attrs, "gen_ai.token.type", "input");
  p = &h->points[1];
  assert_false(p->has_sum || p->has_min || p->has_max);
  assert_int_equal(p->n_buckets, 0);

  const lt_otlp_metric_t *e = &sm->metrics[3];
  assert_int_equal(e->type, LT_METRIC_EXP_HISTOGRAM);
  assert_int_equal(e->temporality, 2);
  assert_int_equal(e->points[0].count, 4);
  assert_true(e->points[0].has_sum && e->points[0].sum == 2.5);
  assert_true(e->points[0].has_max && e->points[0].max == 1.2);

  const lt_otlp_metric_t *su = &sm->metrics[4];
  assert_int_equal(su->type, LT_METRIC_SUMMARY);
  assert_int_equal(su->points[0].count, 10);
  assert_true(su->points[0].has_sum && su->points[0].sum == 4.25);

  assert_int_equal(sm->metrics[5].type, 0);
  assert_int_equal(sm->metrics[5].n_points, 0);
  lt_arena_destroy(a);
}

/* ---- malformed input --------------------------------------------------- */

static void malformed_is_edecode(void **st) {
  static const char *const bad_traces[] = {
      "",
      "nope",
      "{",
      "[]",
      "\"resourceSpans\"",
      "42",
      "{\"resourceSpans\":[]} trailing",
      "{\"resourceSpans\":{}}",
      "{\"resourceSpans\":\"x\"}",
      "{\"resourceSpans\":[1]}",
      "{\"resourceSpans\":[{\"resource\":[]}]}",
      "{\"resourceSpans\":[{\"resource\":{\"attributes\":{}}}]}",
      "{\"resourceSpans\":[{\"scopeSpans\":{}}]}",
      "{\"resourceSpans\":[{\"scopeSpans\":[{\"scope\":\"lib\"}]}]}",
      "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[[]]}]}]}",
      "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"name\":5}]}]}]}",
      "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"events\":[1]}]}]}]}",
      "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"links\":{}}]}]}]}",
      "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"status\":2}]}]}]}",
      "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"attributes\":[\"k\"]}]}]}]}",
      "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"attributes\":[{\"key\":1}]}]}]}]}",
      "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"attributes\":[{\"key\":\"k\",\"value\":\"v\"}]}]}]}]}",
      "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"attributes\":[{\"key\":\"k\","
      "\"value\":{\"stringValue\":1}}]}]}]}]}",
      "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"attributes\":[{\"key\":\"k\","
      "\"value\":{\"boolValue\":\"true\"}}]}]}]}]}",
      "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"attributes\":[{\"key\":\"k\","
      "\"value\":{\"doubleValue\":\"0x1p3\"}}]}]}]}]}",
      "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"attributes\":[{\"key\":\"k\","
      "\"value\":{\"bytesValue\":\"not base64!\"}}]}]}]}]}",
      "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"attributes\":[{\"key\":\"k\","
      "\"value\":{\"bytesValue\":\"QUJDR\"}}]}]}]}]}",
      "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"attributes\":[{\"key\":\"k\","
      "\"value\":{\"arrayValue\":[]}}]}]}]}]}",
      "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"attributes\":[{\"key\":\"k\","
      "\"value\":{\"arrayValue\":{\"values\":[1]}}}]}]}]}]}",
      "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"attributes\":[{\"key\":\"k\","
      "\"value\":{\"kvlistValue\":{\"values\":{}}}}]}]}]}]}",
      "{\"resourceSpans\":[\xff]}",
  };
  lt_arena_t *a = lt_arena_create(ARENA_CAP);
  lt_otlp_traces_t t;
  for (size_t i = 0; i < sizeof bad_traces / sizeof bad_traces[0]; i++) {
    memset(&t, 0xab, sizeof t);
    int rc = lt_decode_traces_json(a, bad_traces[i], strlen(bad_traces[i]), &t);
    if (rc != LT_EDECODE) fail_msg("input %zu gave %d: %s", i, rc, bad_traces[i]);
  }
  /* Not NUL-terminated: the decoder must stop at len. */
  assert_int_equal(lt_decode_traces_json(a, "{}xxxx", 2, &t), 0);

  lt_otlp_logs_t l;
  assert_int_equal(logs(a, "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":{}}]}]}", &l), LT_EDECODE);
  assert_int_equal(logs(a, "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"body\":\"x\"}]}]}]}", &l),
                   LT_EDECODE);
  assert_int_equal(logs(a, "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"flags\":4294967296}]}]}]}", &l),
                   LT_EDECODE);
  assert_int_equal(logs(a, "[", &l), LT_EDECODE);
  lt_otlp_metrics_t m;
  assert_int_equal(metrics(a, "{\"resourceMetrics\":[{\"scopeMetrics\":[{\"metrics\":[{\"gauge\":[]}]}]}]}", &m),
                   LT_EDECODE);
  assert_int_equal(metrics(a, "{\"resourceMetrics\":[{\"scopeMetrics\":[{\"metrics\":[{\"sum\":"
                              "{\"isMonotonic\":1}}]}]}]}",
                           &m),
                   LT_EDECODE);
  assert_int_equal(metrics(a, "{\"resourceMetrics\":[{\"scopeMetrics\":[{\"metrics\":[{\"histogram\":"
                              "{\"dataPoints\":[{\"bucketCounts\":[\"x\"]}]}}]}]}]}",
                           &m),
                   LT_EDECODE);
  assert_int_equal(metrics(a, "{\"resourceMetrics\":[{\"scopeMetrics\":[{\"metrics\":[{\"histogram\":"
                              "{\"dataPoints\":[{\"explicitBounds\":[null]}]}}]}]}]}",
                           &m),
                   LT_EDECODE);
  assert_int_equal(metrics(a, "{\"resourceMetrics\":7}", &m), LT_EDECODE);
  lt_arena_destroy(a);
}

/* Builds an attribute whose value nests `levels` AnyValues deep. */
static char *nested_request(int levels, bool kvlist) {
  lt_buf_t b;
  lt_buf_init(&b, 1 << 20);
  lt_buf_puts(&b, "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"attributes\":[{\"key\":\"k\",\"value\":");
  for (int i = 1; i < levels; i++)
    lt_buf_puts(&b, kvlist ? "{\"kvlistValue\":{\"values\":[{\"key\":\"k\",\"value\":" : "{\"arrayValue\":{\"values\":[");
  lt_buf_puts(&b, "{\"intValue\":1}");
  for (int i = 1; i < levels; i++) lt_buf_puts(&b, kvlist ? "}]}}" : "]}}");
  lt_buf_puts(&b, "}]}]}]}]}");
  return lt_buf_steal(&b, NULL);
}

static void nesting_is_capped(void **st) {
  lt_arena_t *a = lt_arena_create(ARENA_CAP);
  lt_otlp_traces_t t;
  for (int kv = 0; kv < 2; kv++) {
    char *ok = nested_request(64, kv), *deep = nested_request(65, kv), *huge = nested_request(5000, kv);
    assert_int_equal(traces(a, ok, &t), 0);
    const lt_val_t *v = &t.items[0].scopes[0].spans[0].attrs.items[0].val;
    for (int i = 1; i < 64; i++) v = kv ? &v->u.kv.items[0].val : &v->u.arr.items[0];
    assert_int_equal(v->type, LT_VAL_INT);
    assert_int_equal(traces(a, deep, &t), LT_EDECODE);
    assert_int_equal(traces(a, huge, &t), LT_EDECODE);
    lt_free(ok);
    lt_free(deep);
    lt_free(huge);
  }
  lt_arena_destroy(a);
}

/* ---- limits ------------------------------------------------------------ */

static void arena_too_small_is_etoobig(void **st) {
  lt_otlp_traces_t t;
  lt_arena_t *a = lt_arena_create(64);
  assert_int_equal(traces(a, llm_trace, &t), LT_ETOOBIG);
  lt_arena_destroy(a);
  /* Every cap short of what the request needs fails cleanly; enough succeeds. */
  a = lt_arena_create(ARENA_CAP);
  assert_int_equal(traces(a, llm_trace, &t), 0);
  size_t need = lt_arena_used(a);
  lt_arena_destroy(a);
  for (size_t cap = 0; cap < need; cap += 16) {
    a = lt_arena_create(cap);
    assert_int_equal(traces(a, llm_trace, &t), LT_ETOOBIG);
    lt_arena_destroy(a);
  }
  a = lt_arena_create(need);
  assert_int_equal(traces(a, llm_trace, &t), 0);
  lt_arena_destroy(a);

  lt_otlp_logs_t l;
  a = lt_arena_create(16);
  assert_int_equal(logs(a, "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"body\":"
                           "{\"stringValue\":\"a long enough log line\"}}]}]}]}",
                        &l),
                   LT_ETOOBIG);
  lt_arena_destroy(a);
  lt_otlp_metrics_t m;
  a = lt_arena_create(200);
  assert_int_equal(metrics(a, "{\"resourceMetrics\":[{\"scopeMetrics\":[{\"metrics\":[{\"histogram\":"
                              "{\"dataPoints\":[{\"bucketCounts\":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,"
                              "19,20,21,22,23,24,25,26,27,28,29,30]}]}}]}]}]}",
                           &m),
                   LT_ETOOBIG);
  lt_arena_destroy(a);
}

/* ---- response ---------------------------------------------------------- */

static void assert_response(const char *kind, int64_t rejected, const char *msg, const char *want) {
  lt_arena_t *a = lt_arena_create(1 << 16);
  lt_str_t out = LT_STR_NULL;
  assert_int_equal(lt_encode_export_response_json(a, kind, rejected, msg, &out), 0);
  assert_str(out, want);
  lt_arena_destroy(a);
}

static void response_encoding(void **st) {
  assert_response("spans", 0, NULL, "{}");
  assert_response("spans", 0, "", "{}");
  assert_response("spans", 2, "span with an invalid trace_id",
                  "{\"partialSuccess\":{\"rejectedSpans\":\"2\",\"errorMessage\":\"span with an invalid trace_id\"}}");
  assert_response("log_records", 1, "bad \"record\"\n",
                  "{\"partialSuccess\":{\"rejectedLogRecords\":\"1\",\"errorMessage\":\"bad \\\"record\\\"\\n\"}}");
  assert_response("data_points", 9223372036854775807LL, NULL,
                  "{\"partialSuccess\":{\"rejectedDataPoints\":\"9223372036854775807\"}}");
  assert_response("spans", 0, "deprecated attribute names seen",
                  "{\"partialSuccess\":{\"rejectedSpans\":\"0\",\"errorMessage\":\"deprecated attribute names seen\"}}");

  lt_arena_t *a = lt_arena_create(1 << 16);
  lt_str_t out = LT_STR_NULL;
  assert_int_equal(lt_encode_export_response_json(a, "profiles", 1, "x", &out), LT_EINVAL);
  lt_arena_destroy(a);
  a = lt_arena_create(8);
  assert_int_equal(lt_encode_export_response_json(a, "spans", 1, "message", &out), LT_ENOMEM);
  lt_arena_destroy(a);
}

/* ---- committed fixtures ------------------------------------------------ */

static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  lt_buf_t b;
  lt_buf_init(&b, 16u << 20);
  char chunk[4096];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) assert_int_equal(lt_buf_append(&b, chunk, n), 0);
  fclose(f);
  return lt_buf_steal(&b, len);
}

static void fixtures_decode(void **st) {
  size_t len;
  char *json = slurp("tests/data/otlp_json/genai_trace.json", &len);
  if (!json) skip(); /* run from elsewhere than the repository root */
  lt_arena_t *a = lt_arena_create(ARENA_CAP);
  lt_otlp_traces_t t = {0};
  assert_int_equal(lt_decode_traces_json(a, json, len, &t), 0);
  assert_int_equal(t.items[0].scopes[0].n_spans, 4);
  const lt_otlp_span_t *chat = &t.items[0].scopes[0].spans[1];
  assert_true(chat->has_parent);
  assert_attr_str(&chat->attrs, "gen_ai.request.model", "gpt-4o-mini");
  assert_attr_int(&chat->attrs, "gen_ai.usage.input_tokens", 412);
  lt_free(json);

  json = slurp("tests/data/otlp_json/openinference_trace.json", &len);
  assert_non_null(json);
  memset(&t, 0, sizeof t);
  assert_int_equal(lt_decode_traces_json(a, json, len, &t), 0);
  assert_int_equal(t.items[0].scopes[0].n_spans, 3);
  const lt_otlp_span_t *llm = &t.items[0].scopes[0].spans[2];
  assert_attr_str(&llm->attrs, "openinference.span.kind", "LLM");
  assert_attr_str(&llm->attrs, "llm.model_name", "claude-3-5-sonnet-20241022");
  assert_attr_int(&llm->attrs, "llm.token_count.prompt", 1180);
  assert_attr_str(&llm->attrs, "llm.input_messages.0.message.role", "system");
  lt_free(json);

  json = slurp("tests/data/otlp_json/genai_events_logs.json", &len);
  assert_non_null(json);
  lt_otlp_logs_t l = {0};
  assert_int_equal(lt_decode_logs_json(a, json, len, &l), 0);
  assert_int_equal(l.items[0].scopes[0].n_logs, 3);
  assert_str(l.items[0].scopes[0].logs[1].event_name, "gen_ai.choice");
  assert_true(l.items[0].scopes[0].logs[1].has_span);
  lt_free(json);
  lt_arena_destroy(a);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(traces_realistic),
      cmocka_unit_test(traces_empty_requests),
      cmocka_unit_test(anyvalue_every_type),
      cmocka_unit_test(snake_case_and_enum_names),
      cmocka_unit_test(sixty_four_bit_extremes),
      cmocka_unit_test(bad_ids_zero_the_span),
      cmocka_unit_test(logs_records),
      cmocka_unit_test(metrics_all_types),
      cmocka_unit_test(malformed_is_edecode),
      cmocka_unit_test(nesting_is_capped),
      cmocka_unit_test(arena_too_small_is_etoobig),
      cmocka_unit_test(response_encoding),
      cmocka_unit_test(fixtures_decode),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
