/* OTLP/JSON decoder: jansson parses the body into a tree, we walk it into
 * the arena structures of model/otlp.h, copying every string we keep, then
 * free the tree. The encoding is protobuf's JSON mapping with OTLP's
 * deviations: trace and span ids are hex, enums are integers. We accept a
 * little more than OTLP asks, as protobuf's own JSON parsers do: the
 * original snake_case field names as well as lowerCamelCase, enum names as
 * strings, and 64-bit integers as numbers or decimal strings. null means the
 * field is absent; unknown fields are ignored. A field of the wrong JSON
 * type fails the whole request (LT_EDECODE), except a malformed id, which
 * costs only the span that carries it (see decode_span). */
#include "ingest/decode.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/mem.h"
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* AnyValue nesting we follow (jansson's own parser stops at 2048 levels,
 * but nothing legitimate comes near this and recursion here costs stack). */
#define MAX_VAL_DEPTH 64

/* ---- field access ------------------------------------------------------ */

/* The value of a field under either spelling, or NULL when it is absent or
 * null (protobuf's JSON mapping reads null as the default value). */
static json_t *field(const json_t *obj, const char *camel, const char *snake) {
  json_t *v = json_object_get(obj, camel);
  if (!v && snake) v = json_object_get(obj, snake);
  return json_is_null(v) ? NULL : v;
}

/* *arr and *n describe the array field, or NULL and 0 when absent.
 * A present field that is not an array is LT_EDECODE. */
static int get_array(const json_t *obj, const char *camel, const char *snake, json_t **arr, size_t *n) {
  json_t *v = field(obj, camel, snake);
  *arr = NULL;
  *n = 0;
  if (!v) return 0;
  if (!json_is_array(v)) return LT_EDECODE;
  *arr = v;
  *n = json_array_size(v);
  return 0;
}

/* *out is the object field, or NULL when absent. */
static int get_object(const json_t *obj, const char *camel, const char *snake, json_t **out) {
  json_t *v = field(obj, camel, snake);
  *out = NULL;
  if (!v) return 0;
  if (!json_is_object(v)) return LT_EDECODE;
  *out = v;
  return 0;
}

/* A zeroed array of n elements in the arena, or NULL for n == 0 (which is
 * not an error: callers test n before the pointer). */
static int alloc_array(lt_arena_t *a, size_t n, size_t size, void **out) {
  *out = NULL;
  if (n == 0) return 0;
  *out = lt_arena_calloc(a, n, size);
  return *out ? 0 : LT_ETOOBIG;
}

/* Copies a string field into the arena; absent leaves *out untouched. */
static int get_str(lt_arena_t *a, const json_t *obj, const char *camel, const char *snake, lt_str_t *out) {
  json_t *v = field(obj, camel, snake);
  if (!v) return 0;
  if (!json_is_string(v)) return LT_EDECODE;
  lt_str_t s = lt_arena_strdup(a, json_string_value(v), json_string_length(v));
  if (!s.ptr) return LT_ETOOBIG;
  *out = s;
  return 0;
}

static int get_bool(const json_t *obj, const char *camel, const char *snake, bool *out) {
  json_t *v = field(obj, camel, snake);
  if (!v) return 0;
  if (!json_is_boolean(v)) return LT_EDECODE;
  *out = json_is_true(v);
  return 0;
}

/* ---- numbers ----------------------------------------------------------- */

static int parse_u64_str(const char *s, size_t n, uint64_t *out) {
  if (n == 0 || n > 20) return LT_EDECODE;
  uint64_t v = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9') return LT_EDECODE;
    unsigned d = (unsigned)(s[i] - '0');
    if (v > (UINT64_MAX - d) / 10) return LT_EDECODE;
    v = v * 10 + d;
  }
  *out = v;
  return 0;
}

static int parse_i64_str(const char *s, size_t n, int64_t *out) {
  bool neg = n > 0 && s[0] == '-';
  uint64_t u;
  int rc = parse_u64_str(s + neg, n - neg, &u);
  if (rc) return rc;
  if (u > (uint64_t)INT64_MAX + neg) return LT_EDECODE;
  /* -(2^63) has no positive int64; negate in unsigned arithmetic. */
  *out = neg ? (int64_t)(0 - u) : (int64_t)u;
  return 0;
}

/* Protobuf's JSON mapping writes 64-bit integers as strings, but readers
 * must take numbers too, including integral reals such as 1e9. jansson
 * refuses integer literals beyond int64 outright, so an unsigned value past
 * 2^63 arrives only as a string or a real. */
static int json_u64(const json_t *v, uint64_t *out) {
  if (json_is_integer(v)) {
    json_int_t i = json_integer_value(v);
    if (i < 0) return LT_EDECODE;
    *out = (uint64_t)i;
    return 0;
  }
  if (json_is_real(v)) {
    double d = json_real_value(v);
    if (!(d >= 0 && d < 0x1p64)) return LT_EDECODE;
    uint64_t u = (uint64_t)d;
    if ((double)u != d) return LT_EDECODE;
    *out = u;
    return 0;
  }
  if (json_is_string(v)) return parse_u64_str(json_string_value(v), json_string_length(v), out);
  return LT_EDECODE;
}

static int json_i64(const json_t *v, int64_t *out) {
  if (json_is_integer(v)) {
    *out = json_integer_value(v);
    return 0;
  }
  if (json_is_real(v)) {
    double d = json_real_value(v);
    if (!(d >= -0x1p63 && d < 0x1p63)) return LT_EDECODE;
    int64_t i = (int64_t)d;
    if ((double)i != d) return LT_EDECODE;
    *out = i;
    return 0;
  }
  if (json_is_string(v)) return parse_i64_str(json_string_value(v), json_string_length(v), out);
  return LT_EDECODE;
}

/* Doubles are JSON numbers, or strings: "NaN", "Infinity", "-Infinity"
 * (JSON has no literal for them) or a decimal number. */
static int json_double(const json_t *v, double *out) {
  if (json_is_real(v)) {
    *out = json_real_value(v);
    return 0;
  }
  if (json_is_integer(v)) {
    *out = (double)json_integer_value(v);
    return 0;
  }
  if (!json_is_string(v)) return LT_EDECODE;
  const char *s = json_string_value(v);
  size_t n = json_string_length(v);
  lt_str_t str = {s, n};
  if (lt_str_eq_lit(str, "NaN")) *out = NAN;
  else if (lt_str_eq_lit(str, "Infinity")) *out = INFINITY;
  else if (lt_str_eq_lit(str, "-Infinity")) *out = -INFINITY;
  else {
    /* strtod alone would also take hex floats, "inf" and leading spaces. */
    char buf[64];
    if (n == 0 || n >= sizeof buf) return LT_EDECODE;
    for (size_t i = 0; i < n; i++) {
      char c = s[i];
      if (!((c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E'))
        return LT_EDECODE;
      buf[i] = c;
    }
    buf[n] = '\0';
    char *end;
    double d = strtod(buf, &end);
    if (end != buf + n) return LT_EDECODE;
    *out = d;
  }
  return 0;
}

static int get_u64(const json_t *obj, const char *camel, const char *snake, uint64_t *out) {
  json_t *v = field(obj, camel, snake);
  return v ? json_u64(v, out) : 0;
}

static int get_u32(const json_t *obj, const char *camel, const char *snake, uint32_t *out) {
  json_t *v = field(obj, camel, snake);
  uint64_t u;
  if (!v) return 0;
  int rc = json_u64(v, &u);
  if (rc) return rc;
  if (u > UINT32_MAX) return LT_EDECODE;
  *out = (uint32_t)u;
  return 0;
}

/* *present says whether the field was there (optional doubles: sum, min). */
static int get_double(const json_t *obj, const char *camel, const char *snake, double *out, bool *present) {
  json_t *v = field(obj, camel, snake);
  if (present) *present = v != NULL;
  return v ? json_double(v, out) : 0;
}

/* An enum: an integer in int32 range (a decimal string too, as some
 * exporters quote every number), or one of names[] (names[i] has value i).
 * An unknown name reads as 0, the unspecified value, the same way an
 * unknown field is ignored. */
static int get_enum(const json_t *obj, const char *camel, const char *snake, const char *const *names,
                    size_t n_names, int *out) {
  json_t *v = field(obj, camel, snake);
  int64_t i;
  if (!v) return 0;
  if (json_is_string(v)) {
    lt_str_t s = {json_string_value(v), json_string_length(v)};
    for (size_t k = 0; k < n_names; k++) {
      if (lt_str_eq_lit(s, names[k])) {
        *out = (int)k;
        return 0;
      }
    }
    if (parse_i64_str(s.ptr, s.len, &i) != 0) {
      *out = 0;
      return 0;
    }
  } else {
    int rc = json_i64(v, &i);
    if (rc) return rc;
  }
  if (i < INT32_MIN || i > INT32_MAX) return LT_EDECODE;
  *out = (int)i;
  return 0;
}

static const char *const span_kind_names[] = {
    "SPAN_KIND_UNSPECIFIED", "SPAN_KIND_INTERNAL", "SPAN_KIND_SERVER",
    "SPAN_KIND_CLIENT",      "SPAN_KIND_PRODUCER", "SPAN_KIND_CONSUMER",
};
static const char *const status_code_names[] = {
    "STATUS_CODE_UNSET", "STATUS_CODE_OK", "STATUS_CODE_ERROR",
};
static const char *const temporality_names[] = {
    "AGGREGATION_TEMPORALITY_UNSPECIFIED", "AGGREGATION_TEMPORALITY_DELTA",
    "AGGREGATION_TEMPORALITY_CUMULATIVE",
};
static const char *const severity_names[] = {
    "SEVERITY_NUMBER_UNSPECIFIED",
    "SEVERITY_NUMBER_TRACE", "SEVERITY_NUMBER_TRACE2", "SEVERITY_NUMBER_TRACE3", "SEVERITY_NUMBER_TRACE4",
    "SEVERITY_NUMBER_DEBUG", "SEVERITY_NUMBER_DEBUG2", "SEVERITY_NUMBER_DEBUG3", "SEVERITY_NUMBER_DEBUG4",
    "SEVERITY_NUMBER_INFO",  "SEVERITY_NUMBER_INFO2",  "SEVERITY_NUMBER_INFO3",  "SEVERITY_NUMBER_INFO4",
    "SEVERITY_NUMBER_WARN",  "SEVERITY_NUMBER_WARN2",  "SEVERITY_NUMBER_WARN3",  "SEVERITY_NUMBER_WARN4",
    "SEVERITY_NUMBER_ERROR", "SEVERITY_NUMBER_ERROR2", "SEVERITY_NUMBER_ERROR3", "SEVERITY_NUMBER_ERROR4",
    "SEVERITY_NUMBER_FATAL", "SEVERITY_NUMBER_FATAL2", "SEVERITY_NUMBER_FATAL3", "SEVERITY_NUMBER_FATAL4",
};
#define NAMES(t) (t), sizeof(t) / sizeof((t)[0])

/* ---- ids and bytes ----------------------------------------------------- */

typedef enum { ID_ABSENT, ID_OK, ID_BAD } id_state_t;

/* Reads a hex id of exactly n bytes. An empty string is absent (that is
 * how exporters write "no parent"); anything else that is not 2n hex
 * digits, a non-string included, is ID_BAD and out is left zeroed. */
static id_state_t get_id(const json_t *obj, const char *camel, const char *snake, uint8_t *out, size_t n) {
  json_t *v = field(obj, camel, snake);
  if (!v) return ID_ABSENT;
  if (!json_is_string(v)) return ID_BAD;
  size_t len = json_string_length(v);
  if (len == 0) return ID_ABSENT;
  if (lt_hex_decode(out, n, json_string_value(v), len) != 0) {
    memset(out, 0, n);
    return ID_BAD;
  }
  return ID_OK;
}

static bool all_zero(const uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (p[i]) return false;
  return true;
}

static int b64val(unsigned char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+' || c == '-') return 62;
  if (c == '/' || c == '_') return 63;
  return -1;
}

/* bytesValue is base64 (RFC 4648); like protobuf's JSON readers we take
 * the standard and the URL-safe alphabet, padded or not. */
static int b64_decode(lt_arena_t *a, const char *s, size_t n, lt_str_t *out) {
  size_t end = n;
  if (n % 4 == 0 && n > 0 && s[n - 1] == '=') end -= s[n - 2] == '=' ? 2 : 1;
  if (end % 4 == 1) return LT_EDECODE;
  size_t outlen = end / 4 * 3 + (end % 4 ? end % 4 - 1 : 0);
  char *d = lt_arena_alloc(a, outlen + 1);
  if (!d) return LT_ETOOBIG;
  uint32_t acc = 0;
  int bits = 0;
  size_t j = 0;
  for (size_t i = 0; i < end; i++) {
    int v = b64val((unsigned char)s[i]);
    if (v < 0) return LT_EDECODE;
    acc = (acc << 6 | (uint32_t)v) & 0xFFFFFF;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      d[j++] = (char)(acc >> bits & 0xFF);
    }
  }
  d[j] = '\0';
  *out = (lt_str_t){d, j};
  return 0;
}

/* ---- AnyValue and attributes ------------------------------------------- */

static int decode_kvs(lt_arena_t *a, const json_t *arr, int depth, lt_kv_t **items, size_t *n);

/* v is an AnyValue object. An empty object (or one with only unknown
 * fields) is an empty value, as in protobuf. */
static int decode_val(lt_arena_t *a, const json_t *v, int depth, lt_val_t *out) {
  json_t *f;
  int rc = 0;
  out->type = LT_VAL_EMPTY;
  if (depth > MAX_VAL_DEPTH || !json_is_object(v)) return LT_EDECODE;
  if ((f = field(v, "stringValue", "string_value"))) {
    if (!json_is_string(f)) return LT_EDECODE;
    out->u.s = lt_arena_strdup(a, json_string_value(f), json_string_length(f));
    if (!out->u.s.ptr) return LT_ETOOBIG;
    out->type = LT_VAL_STR;
  } else if ((f = field(v, "boolValue", "bool_value"))) {
    if (!json_is_boolean(f)) return LT_EDECODE;
    out->u.b = json_is_true(f);
    out->type = LT_VAL_BOOL;
  } else if ((f = field(v, "intValue", "int_value"))) {
    if ((rc = json_i64(f, &out->u.i))) return rc;
    out->type = LT_VAL_INT;
  } else if ((f = field(v, "doubleValue", "double_value"))) {
    if ((rc = json_double(f, &out->u.d))) return rc;
    out->type = LT_VAL_DOUBLE;
  } else if ((f = field(v, "bytesValue", "bytes_value"))) {
    if (!json_is_string(f)) return LT_EDECODE;
    if ((rc = b64_decode(a, json_string_value(f), json_string_length(f), &out->u.s))) return rc;
    out->type = LT_VAL_BYTES;
  } else if ((f = field(v, "arrayValue", "array_value"))) {
    json_t *vals;
    size_t n;
    lt_val_t *items;
    if (!json_is_object(f)) return LT_EDECODE;
    if ((rc = get_array(f, "values", NULL, &vals, &n))) return rc;
    if ((rc = alloc_array(a, n, sizeof *items, (void **)&items))) return rc;
    for (size_t i = 0; i < n; i++) {
      json_t *item = json_array_get(vals, i);
      /* null inside the list stands for an empty AnyValue. */
      if (json_is_null(item)) continue;
      if ((rc = decode_val(a, item, depth + 1, &items[i]))) return rc;
    }
    out->u.arr.items = items;
    out->u.arr.n = n;
    out->type = LT_VAL_ARRAY;
  } else if ((f = field(v, "kvlistValue", "kvlist_value"))) {
    json_t *vals;
    if (!json_is_object(f)) return LT_EDECODE;
    if ((rc = get_array(f, "values", NULL, &vals, &out->u.kv.n))) return rc;
    if ((rc = decode_kvs(a, vals, depth + 1, &out->u.kv.items, &out->u.kv.n))) return rc;
    out->type = LT_VAL_KVLIST;
  }
  return 0;
}

/* arr is a JSON array of KeyValue (or NULL for none). */
static int decode_kvs(lt_arena_t *a, const json_t *arr, int depth, lt_kv_t **items, size_t *n) {
  size_t count = json_array_size(arr); /* 0 for NULL */
  lt_kv_t *kvs;
  int rc = alloc_array(a, count, sizeof *kvs, (void **)&kvs);
  if (rc) return rc;
  for (size_t i = 0; i < count; i++) {
    json_t *kv = json_array_get(arr, i), *val;
    if (!json_is_object(kv)) return LT_EDECODE;
    if ((rc = get_str(a, kv, "key", NULL, &kvs[i].key))) return rc;
    val = field(kv, "value", NULL);
    if (val && (rc = decode_val(a, val, depth, &kvs[i].val))) return rc;
  }
  *items = kvs;
  *n = count;
  return 0;
}

static int get_attrs(lt_arena_t *a, const json_t *obj, lt_attrs_t *out) {
  json_t *arr;
  size_t n;
  int rc = get_array(obj, "attributes", NULL, &arr, &n);
  if (rc == 0) rc = decode_kvs(a, arr, 1, &out->items, &out->n);
  return rc;
}

/* Resource: only its attributes matter to us. */
static int get_resource(lt_arena_t *a, const json_t *obj, lt_attrs_t *out) {
  json_t *res;
  int rc = get_object(obj, "resource", NULL, &res);
  if (rc == 0 && res) rc = get_attrs(a, res, out);
  return rc;
}

static int get_scope(lt_arena_t *a, const json_t *obj, lt_otlp_scope_t *out) {
  json_t *sc;
  int rc = get_object(obj, "scope", NULL, &sc);
  if (rc || !sc) return rc;
  rc = get_str(a, sc, "name", NULL, &out->name);
  if (rc == 0) rc = get_str(a, sc, "version", NULL, &out->version);
  if (rc == 0) rc = get_attrs(a, sc, &out->attrs);
  return rc;
}

/* ---- parsing the body -------------------------------------------------- */

/* Parses body into a tree whose root must be an object. */
static int load(const void *body, size_t len, json_t **root) {
  json_error_t err;
  /* JSON_ALLOW_NUL: "\u0000" is valid JSON and every string we keep is a
   * slice, so there is no reason to refuse it. */
  /* The parse tree lives outside the request arena (jansson allocates it),
   * so bound it by the body size: a crafted body like [0,0,0,...] would
   * otherwise take ~20x its size. (Effective when jansson allocates through
   * lt_malloc, as the server sets up.) */
  lt_mem_budget_begin(len * 8 + (1u << 20));
  json_t *r = json_loadb(body, len, JSON_ALLOW_NUL, &err);
  bool over = lt_mem_budget_end();
  *root = NULL;
  if (!r && over) return LT_ETOOBIG;
  if (!r) return json_error_code(&err) == json_error_out_of_memory ? LT_ENOMEM : LT_EDECODE;
  if (!json_is_object(r)) {
    json_decref(r);
    return LT_EDECODE;
  }
  *root = r;
  return 0;
}

/* Walks a list field of obj: allocates *items (n elements of size) and
 * calls fn on each element, which must be an object. */
typedef int (*elem_fn)(lt_arena_t *a, const json_t *obj, void *elem);

static int each(lt_arena_t *a, const json_t *obj, const char *camel, const char *snake, size_t size,
                elem_fn fn, void **items, size_t *n) {
  json_t *arr;
  size_t count;
  unsigned char *out = NULL;
  int rc = get_array(obj, camel, snake, &arr, &count);
  if (rc == 0) rc = alloc_array(a, count, size, (void **)&out);
  for (size_t i = 0; rc == 0 && i < count; i++) {
    json_t *e = json_array_get(arr, i);
    rc = json_is_object(e) ? fn(a, e, out + i * size) : LT_EDECODE;
  }
  if (rc == 0) {
    *items = out;
    *n = count;
  }
  return rc;
}

/* ---- traces ------------------------------------------------------------ */

static int decode_event(lt_arena_t *a, const json_t *obj, void *elem) {
  lt_otlp_event_t *ev = elem;
  int rc = get_u64(obj, "timeUnixNano", "time_unix_nano", &ev->time_ns);
  if (rc == 0) rc = get_str(a, obj, "name", NULL, &ev->name);
  if (rc == 0) rc = get_attrs(a, obj, &ev->attrs);
  return rc;
}

static int decode_link(lt_arena_t *a, const json_t *obj, void *elem) {
  lt_otlp_link_t *l = elem;
  /* A malformed id in a link only loses the link target (left zero); the
   * span itself is still good. */
  if (get_id(obj, "traceId", "trace_id", l->trace_id, sizeof l->trace_id) == ID_BAD ||
      get_id(obj, "spanId", "span_id", l->span_id, sizeof l->span_id) == ID_BAD) {
    memset(l->trace_id, 0, sizeof l->trace_id);
    memset(l->span_id, 0, sizeof l->span_id);
  }
  int rc = get_str(a, obj, "traceState", "trace_state", &l->trace_state);
  if (rc == 0) rc = get_attrs(a, obj, &l->attrs);
  return rc;
}

static int decode_span(lt_arena_t *a, const json_t *obj, void *elem) {
  lt_otlp_span_t *s = elem;
  json_t *status;
  id_state_t tid = get_id(obj, "traceId", "trace_id", s->trace_id, sizeof s->trace_id);
  id_state_t sid = get_id(obj, "spanId", "span_id", s->span_id, sizeof s->span_id);
  id_state_t pid = get_id(obj, "parentSpanId", "parent_span_id", s->parent_span_id, sizeof s->parent_span_id);
  if (tid == ID_BAD || sid == ID_BAD || pid == ID_BAD) {
    /* One span with a bad id must not cost the whole request: zero all its
     * ids so the receiver rejects just this span through partial_success
     * (a zero trace or span id is invalid in OTLP). */
    memset(s->trace_id, 0, sizeof s->trace_id);
    memset(s->span_id, 0, sizeof s->span_id);
    memset(s->parent_span_id, 0, sizeof s->parent_span_id);
  }
  s->has_parent = pid == ID_OK && tid != ID_BAD && sid != ID_BAD &&
                  !all_zero(s->parent_span_id, sizeof s->parent_span_id);

  int rc = get_str(a, obj, "traceState", "trace_state", &s->trace_state);
  if (rc == 0) rc = get_str(a, obj, "name", NULL, &s->name);
  if (rc == 0) rc = get_enum(obj, "kind", NULL, NAMES(span_kind_names), &s->kind);
  if (rc == 0) rc = get_u64(obj, "startTimeUnixNano", "start_time_unix_nano", &s->start_ns);
  if (rc == 0) rc = get_u64(obj, "endTimeUnixNano", "end_time_unix_nano", &s->end_ns);
  if (rc == 0) rc = get_attrs(a, obj, &s->attrs);
  if (rc == 0)
    rc = each(a, obj, "events", NULL, sizeof *s->events, decode_event, (void **)&s->events, &s->n_events);
  if (rc == 0)
    rc = each(a, obj, "links", NULL, sizeof *s->links, decode_link, (void **)&s->links, &s->n_links);
  if (rc == 0) rc = get_object(obj, "status", NULL, &status);
  if (rc == 0 && status) {
    rc = get_enum(status, "code", NULL, NAMES(status_code_names), &s->status_code);
    if (rc == 0) rc = get_str(a, status, "message", NULL, &s->status_message);
  }
  return rc;
}

static int decode_scope_spans(lt_arena_t *a, const json_t *obj, void *elem) {
  lt_otlp_scope_spans_t *ss = elem;
  int rc = get_scope(a, obj, &ss->scope);
  if (rc == 0) rc = each(a, obj, "spans", NULL, sizeof *ss->spans, decode_span, (void **)&ss->spans, &ss->n_spans);
  return rc;
}

static int decode_resource_spans(lt_arena_t *a, const json_t *obj, void *elem) {
  lt_otlp_resource_spans_t *rs = elem;
  int rc = get_resource(a, obj, &rs->resource);
  if (rc == 0)
    rc = each(a, obj, "scopeSpans", "scope_spans", sizeof *rs->scopes, decode_scope_spans, (void **)&rs->scopes,
              &rs->n_scopes);
  return rc;
}

int lt_decode_traces_json(lt_arena_t *a, const void *body, size_t len, lt_otlp_traces_t *out) {
  json_t *root = NULL;
  lt_otlp_traces_t t = {0};
  int rc = load(body, len, &root);
  if (rc) goto out;
  rc = each(a, root, "resourceSpans", "resource_spans", sizeof *t.items, decode_resource_spans, (void **)&t.items,
            &t.n);
  if (rc == 0) *out = t;
out:
  json_decref(root);
  return rc;
}

/* ---- logs -------------------------------------------------------------- */

static int decode_log(lt_arena_t *a, const json_t *obj, void *elem) {
  lt_otlp_log_t *l = elem;
  json_t *body;
  /* Log records need no ids; a malformed one is dropped, not the record. */
  l->has_trace = get_id(obj, "traceId", "trace_id", l->trace_id, sizeof l->trace_id) == ID_OK &&
                 !all_zero(l->trace_id, sizeof l->trace_id);
  l->has_span = get_id(obj, "spanId", "span_id", l->span_id, sizeof l->span_id) == ID_OK &&
                !all_zero(l->span_id, sizeof l->span_id);

  int rc = get_u64(obj, "timeUnixNano", "time_unix_nano", &l->time_ns);
  if (rc == 0) rc = get_u64(obj, "observedTimeUnixNano", "observed_time_unix_nano", &l->observed_ns);
  if (rc == 0) rc = get_enum(obj, "severityNumber", "severity_number", NAMES(severity_names), &l->severity_number);
  if (rc == 0) rc = get_str(a, obj, "severityText", "severity_text", &l->severity_text);
  if (rc == 0 && (body = field(obj, "body", NULL))) rc = decode_val(a, body, 1, &l->body);
  if (rc == 0) rc = get_attrs(a, obj, &l->attrs);
  if (rc == 0) rc = get_u32(obj, "flags", NULL, &l->flags);
  if (rc == 0) rc = get_str(a, obj, "eventName", "event_name", &l->event_name);
  return rc;
}

static int decode_scope_logs(lt_arena_t *a, const json_t *obj, void *elem) {
  lt_otlp_scope_logs_t *sl = elem;
  int rc = get_scope(a, obj, &sl->scope);
  if (rc == 0)
    rc = each(a, obj, "logRecords", "log_records", sizeof *sl->logs, decode_log, (void **)&sl->logs, &sl->n_logs);
  return rc;
}

static int decode_resource_logs(lt_arena_t *a, const json_t *obj, void *elem) {
  lt_otlp_resource_logs_t *rl = elem;
  int rc = get_resource(a, obj, &rl->resource);
  if (rc == 0)
    rc = each(a, obj, "scopeLogs", "scope_logs", sizeof *rl->scopes, decode_scope_logs, (void **)&rl->scopes,
              &rl->n_scopes);
  return rc;
}

int lt_decode_logs_json(lt_arena_t *a, const void *body, size_t len, lt_otlp_logs_t *out) {
  json_t *root = NULL;
  lt_otlp_logs_t t = {0};
  int rc = load(body, len, &root);
  if (rc) goto out;
  rc = each(a, root, "resourceLogs", "resource_logs", sizeof *t.items, decode_resource_logs, (void **)&t.items, &t.n);
  if (rc == 0) *out = t;
out:
  json_decref(root);
  return rc;
}

/* ---- metrics ----------------------------------------------------------- */

/* Fields every data point type shares. */
static int decode_point_common(lt_arena_t *a, const json_t *obj, lt_otlp_point_t *p) {
  int rc = get_attrs(a, obj, &p->attrs);
  if (rc == 0) rc = get_u64(obj, "startTimeUnixNano", "start_time_unix_nano", &p->start_ns);
  if (rc == 0) rc = get_u64(obj, "timeUnixNano", "time_unix_nano", &p->time_ns);
  return rc;
}

/* NumberDataPoint (gauge and sum): asInt or asDouble. */
static int decode_number_point(lt_arena_t *a, const json_t *obj, void *elem) {
  lt_otlp_point_t *p = elem;
  json_t *v;
  int rc = decode_point_common(a, obj, p);
  if (rc) return rc;
  if ((v = field(obj, "asInt", "as_int"))) {
    int64_t i;
    if ((rc = json_i64(v, &i))) return rc;
    p->value = (double)i;
    p->as_int = true;
  } else if ((v = field(obj, "asDouble", "as_double"))) {
    rc = json_double(v, &p->value);
  }
  return rc;
}

static int decode_histogram_point(lt_arena_t *a, const json_t *obj, void *elem) {
  lt_otlp_point_t *p = elem;
  json_t *arr;
  size_t n;
  int rc = decode_point_common(a, obj, p);
  if (rc == 0) rc = get_u64(obj, "count", NULL, &p->count);
  if (rc == 0) rc = get_double(obj, "sum", NULL, &p->sum, &p->has_sum);
  if (rc == 0) rc = get_double(obj, "min", NULL, &p->min, &p->has_min);
  if (rc == 0) rc = get_double(obj, "max", NULL, &p->max, &p->has_max);
  if (rc == 0) rc = get_array(obj, "bucketCounts", "bucket_counts", &arr, &n);
  if (rc == 0) rc = alloc_array(a, n, sizeof *p->bucket_counts, (void **)&p->bucket_counts);
  for (size_t i = 0; rc == 0 && i < n; i++) rc = json_u64(json_array_get(arr, i), &p->bucket_counts[i]);
  p->n_buckets = n;
  if (rc == 0) rc = get_array(obj, "explicitBounds", "explicit_bounds", &arr, &n);
  if (rc == 0) rc = alloc_array(a, n, sizeof *p->explicit_bounds, (void **)&p->explicit_bounds);
  for (size_t i = 0; rc == 0 && i < n; i++) rc = json_double(json_array_get(arr, i), &p->explicit_bounds[i]);
  p->n_bounds = n;
  return rc;
}

/* ExponentialHistogramDataPoint: only count, sum, min and max are kept. */
static int decode_exp_histogram_point(lt_arena_t *a, const json_t *obj, void *elem) {
  lt_otlp_point_t *p = elem;
  int rc = decode_point_common(a, obj, p);
  if (rc == 0) rc = get_u64(obj, "count", NULL, &p->count);
  if (rc == 0) rc = get_double(obj, "sum", NULL, &p->sum, &p->has_sum);
  if (rc == 0) rc = get_double(obj, "min", NULL, &p->min, &p->has_min);
  if (rc == 0) rc = get_double(obj, "max", NULL, &p->max, &p->has_max);
  return rc;
}

/* SummaryDataPoint: count and sum; its sum is not optional in the proto,
 * so it is always there (0 when the field is omitted, its default). */
static int decode_summary_point(lt_arena_t *a, const json_t *obj, void *elem) {
  lt_otlp_point_t *p = elem;
  int rc = decode_point_common(a, obj, p);
  if (rc == 0) rc = get_u64(obj, "count", NULL, &p->count);
  if (rc == 0) rc = get_double(obj, "sum", NULL, &p->sum, NULL);
  p->has_sum = true;
  return rc;
}

/* The data of a metric is a oneof; the first known member present wins. */
static const struct {
  const char *camel, *snake;
  lt_metric_type_t type;
  elem_fn point;
} metric_kinds[] = {
    {"gauge", NULL, LT_METRIC_GAUGE, decode_number_point},
    {"sum", NULL, LT_METRIC_SUM, decode_number_point},
    {"histogram", NULL, LT_METRIC_HISTOGRAM, decode_histogram_point},
    {"exponentialHistogram", "exponential_histogram", LT_METRIC_EXP_HISTOGRAM, decode_exp_histogram_point},
    {"summary", NULL, LT_METRIC_SUMMARY, decode_summary_point},
};

static int decode_metric(lt_arena_t *a, const json_t *obj, void *elem) {
  lt_otlp_metric_t *m = elem;
  int rc = get_str(a, obj, "name", NULL, &m->name);
  if (rc == 0) rc = get_str(a, obj, "description", NULL, &m->description);
  if (rc == 0) rc = get_str(a, obj, "unit", NULL, &m->unit);
  for (size_t i = 0; rc == 0 && i < sizeof metric_kinds / sizeof metric_kinds[0]; i++) {
    json_t *data;
    rc = get_object(obj, metric_kinds[i].camel, metric_kinds[i].snake, &data);
    if (rc || !data) continue;
    m->type = metric_kinds[i].type;
    rc = get_enum(data, "aggregationTemporality", "aggregation_temporality", NAMES(temporality_names),
                  &m->temporality);
    if (rc == 0) rc = get_bool(data, "isMonotonic", "is_monotonic", &m->monotonic);
    if (rc == 0)
      rc = each(a, data, "dataPoints", "data_points", sizeof *m->points, metric_kinds[i].point,
                (void **)&m->points, &m->n_points);
    break;
  }
  return rc;
}

static int decode_scope_metrics(lt_arena_t *a, const json_t *obj, void *elem) {
  lt_otlp_scope_metrics_t *sm = elem;
  int rc = get_scope(a, obj, &sm->scope);
  if (rc == 0)
    rc = each(a, obj, "metrics", NULL, sizeof *sm->metrics, decode_metric, (void **)&sm->metrics, &sm->n_metrics);
  return rc;
}

static int decode_resource_metrics(lt_arena_t *a, const json_t *obj, void *elem) {
  lt_otlp_resource_metrics_t *rm = elem;
  int rc = get_resource(a, obj, &rm->resource);
  if (rc == 0)
    rc = each(a, obj, "scopeMetrics", "scope_metrics", sizeof *rm->scopes, decode_scope_metrics,
              (void **)&rm->scopes, &rm->n_scopes);
  return rc;
}

int lt_decode_metrics_json(lt_arena_t *a, const void *body, size_t len, lt_otlp_metrics_t *out) {
  json_t *root = NULL;
  lt_otlp_metrics_t t = {0};
  int rc = load(body, len, &root);
  if (rc) goto out;
  rc = each(a, root, "resourceMetrics", "resource_metrics", sizeof *t.items, decode_resource_metrics,
            (void **)&t.items, &t.n);
  if (rc == 0) *out = t;
out:
  json_decref(root);
  return rc;
}

/* ---- response ---------------------------------------------------------- */

/* Full success is "{}" (partial_success left unset, as OTLP requires). A
 * message with zero rejected is a warning and still gets partialSuccess.
 * The count is an int64, so the JSON mapping writes it as a string.
 * An unknown kind is a caller bug: LT_EINVAL. */
int lt_encode_export_response_json(lt_arena_t *a, const char *kind, int64_t rejected, const char *message,
                                   lt_str_t *out) {
  static const struct { const char *kind, *json; } fields[] = {
      {"spans", "rejectedSpans"},
      {"log_records", "rejectedLogRecords"},
      {"data_points", "rejectedDataPoints"},
  };
  const char *name = NULL;
  size_t msg_len = message ? strlen(message) : 0;
  lt_buf_t b;
  int rc = LT_EINVAL;
  lt_buf_init(&b, 256 + 6 * msg_len); /* worst case: every byte escaped */
  for (size_t i = 0; kind && i < sizeof fields / sizeof fields[0]; i++)
    if (strcmp(kind, fields[i].kind) == 0) name = fields[i].json;
  if (!name) goto out;
  if (rejected == 0 && msg_len == 0) {
    rc = lt_buf_puts(&b, "{}");
  } else {
    rc = lt_buf_printf(&b, "{\"partialSuccess\":{\"%s\":\"%lld\"", name, (long long)rejected);
    if (rc == 0 && msg_len) rc = lt_buf_puts(&b, ",\"errorMessage\":");
    if (rc == 0 && msg_len) rc = lt_buf_json_str(&b, message, msg_len);
    if (rc == 0) rc = lt_buf_puts(&b, "}}");
  }
  if (rc) {
    rc = LT_ENOMEM;
    goto out;
  }
  *out = lt_arena_strdup(a, b.ptr, b.len);
  if (!out->ptr) rc = LT_ENOMEM;
out:
  lt_buf_free(&b);
  return rc;
}
