/* JSON rendering of OTLP values and jansson trees (see json_out.h), and the
 * two public renderers of model/semconv.h, lt_attrs_json and lt_val_json. */
#include "model/json_out.h"
#include "core/err.h"
#include "model/semconv.h"
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* Each rendered field is bounded by the arena it lands in; this cap only
 * stops a runaway buffer before the arena would. */
#define RENDER_CAP ((size_t)1 << 30)

int lt__json_double(lt_buf_t *b, double d) {
  if (!isfinite(d)) return lt_buf_puts(b, "null"); /* JSON has no NaN or Inf */
  /* Whole numbers (0.0, 1.0, token counts sent as doubles) without printf:
   * below 2^53 every integer is exact, and %.15g would print it in full. */
  if (fabs(d) < 1e15 && d == (double)(int64_t)d && !(d == 0 && signbit(d))) {
    int rc = lt_buf_i64(b, (int64_t)d);
    return rc ? rc : lt_buf_append(b, ".0", 2);
  }
  char tmp[40];
  /* Short decimals (scores, temperatures, prices: 0.873, 0.7, 12.5)
   * without printf: d is n / 10^k for a whole n of at most 15 digits. The
   * quotient is correctly rounded, so that decimal reads back as d, and
   * it is what %.15g prints (d lies within half an ulp of it, far inside
   * %.15g's rounding step); %g keeps fixed notation in [1e-4, 1e15). */
  double a = fabs(d);
  if (a >= 1e-4 && a < 1e15) {
    static const double p10[] = {1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9};
    for (int k = 0; k < 9; k++) {
      double m = a * p10[k];
      if (m >= 1e15) break;
      double n = nearbyint(m);
      if (n / p10[k] != a) continue;
      int64_t whole = (int64_t)n, scale = (int64_t)p10[k], f = whole % scale;
      char frac[16];
      int len = k + 1;
      for (int i = len - 1; i >= 0; i--, f /= 10) frac[i] = (char)('0' + f % 10);
      /* The smallest k ends in a nonzero digit: no trailing zeros to drop. */
      int rc = d < 0 ? lt_buf_append(b, "-", 1) : 0;
      if (rc == 0) rc = lt_buf_i64(b, whole / scale);
      if (rc == 0) rc = lt_buf_append(b, ".", 1);
      return rc ? rc : lt_buf_append(b, frac, (size_t)len);
    }
  }
  /* The shortest of 15..17 significant digits that reads back exactly. */
  for (int prec = 15; prec <= 17; prec++) {
    snprintf(tmp, sizeof tmp, "%.*g", prec, d);
    if (strtod(tmp, NULL) == d) break;
  }
  /* Keep doubles recognisable as such: 3.0 stays "3.0", not "3". */
  if (!strpbrk(tmp, ".eE")) strcat(tmp, ".0");
  return lt_buf_puts(b, tmp);
}

int lt__json_base64(lt_buf_t *b, const void *p, size_t n) {
  static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const unsigned char *s = p;
  char out[4];
  int rc = lt_buf_append(b, "\"", 1);
  for (size_t i = 0; rc == 0 && i < n; i += 3) {
    unsigned v = (unsigned)s[i] << 16;
    if (i + 1 < n) v |= (unsigned)s[i + 1] << 8;
    if (i + 2 < n) v |= s[i + 2];
    out[0] = tbl[(v >> 18) & 63];
    out[1] = tbl[(v >> 12) & 63];
    out[2] = i + 1 < n ? tbl[(v >> 6) & 63] : '=';
    out[3] = i + 2 < n ? tbl[v & 63] : '=';
    rc = lt_buf_append(b, out, 4);
  }
  if (rc == 0) rc = lt_buf_append(b, "\"", 1);
  return rc;
}

static int put_val(lt_buf_t *b, const lt_val_t *v, int depth);

static int put_kvs(lt_buf_t *b, const lt_kv_t *kv, size_t n, int depth) {
  int rc = lt_buf_append(b, "{", 1);
  for (size_t i = 0; rc == 0 && i < n; i++) {
    if (i) rc = lt_buf_append(b, ",", 1);
    if (rc == 0) rc = lt_buf_json_str(b, kv[i].key.ptr, kv[i].key.len);
    if (rc == 0) rc = lt_buf_append(b, ":", 1);
    if (rc == 0) rc = put_val(b, &kv[i].val, depth + 1);
  }
  if (rc == 0) rc = lt_buf_append(b, "}", 1);
  return rc;
}

static int put_val(lt_buf_t *b, const lt_val_t *v, int depth) {
  if (depth > LT_JSON_MAX_DEPTH) return lt_buf_puts(b, "null");
  switch (v->type) {
  case LT_VAL_STR: return lt_buf_json_str(b, v->u.s.ptr, v->u.s.len);
  case LT_VAL_BOOL: return lt_buf_puts(b, v->u.b ? "true" : "false");
  case LT_VAL_INT: return lt_buf_i64(b, v->u.i);
  case LT_VAL_DOUBLE: return lt__json_double(b, v->u.d);
  case LT_VAL_BYTES: return lt__json_base64(b, v->u.s.ptr, v->u.s.len);
  case LT_VAL_ARRAY: {
    int rc = lt_buf_append(b, "[", 1);
    for (size_t i = 0; rc == 0 && i < v->u.arr.n; i++) {
      if (i) rc = lt_buf_append(b, ",", 1);
      if (rc == 0) rc = put_val(b, &v->u.arr.items[i], depth + 1);
    }
    if (rc == 0) rc = lt_buf_append(b, "]", 1);
    return rc;
  }
  case LT_VAL_KVLIST: return put_kvs(b, v->u.kv.items, v->u.kv.n, depth);
  default: return lt_buf_puts(b, "null");
  }
}

int lt__json_val(lt_buf_t *b, const lt_val_t *v) { return put_val(b, v, 0); }

int lt__json_attrs(lt_buf_t *b, const lt_attrs_t *attrs) {
  return put_kvs(b, attrs->items, attrs->n, 0);
}

static int put_tree(lt_buf_t *b, const json_t *j, int depth, int max_depth) {
  if (!j || depth > max_depth) return lt_buf_puts(b, "null");
  switch (json_typeof(j)) {
  case JSON_STRING: return lt_buf_json_str(b, json_string_value(j), json_string_length(j));
  case JSON_INTEGER: return lt_buf_printf(b, "%" JSON_INTEGER_FORMAT, json_integer_value(j));
  case JSON_REAL: return lt__json_double(b, json_real_value(j));
  case JSON_TRUE: return lt_buf_puts(b, "true");
  case JSON_FALSE: return lt_buf_puts(b, "false");
  case JSON_ARRAY: {
    int rc = lt_buf_append(b, "[", 1);
    for (size_t i = 0; rc == 0 && i < json_array_size(j); i++) {
      if (i) rc = lt_buf_append(b, ",", 1);
      if (rc == 0) rc = put_tree(b, json_array_get(j, i), depth + 1, max_depth);
    }
    if (rc == 0) rc = lt_buf_append(b, "]", 1);
    return rc;
  }
  case JSON_OBJECT: {
    int rc = lt_buf_append(b, "{", 1);
    const char *key;
    size_t klen;
    json_t *v;
    bool first = true;
    /* jansson keeps keys in insertion order, so output follows the source */
    json_object_keylen_foreach((json_t *)j, key, klen, v) {
      if (rc) break;
      if (!first) rc = lt_buf_append(b, ",", 1);
      first = false;
      if (rc == 0) rc = lt_buf_json_str(b, key, klen);
      if (rc == 0) rc = lt_buf_append(b, ":", 1);
      if (rc == 0) rc = put_tree(b, v, depth + 1, max_depth);
    }
    if (rc == 0) rc = lt_buf_append(b, "}", 1);
    return rc;
  }
  default: return lt_buf_puts(b, "null");
  }
}

int lt__json_tree(lt_buf_t *b, const json_t *j) { return put_tree(b, j, 0, LT_JSON_MAX_DEPTH); }

char *lt_json_dumps(const json_t *j) {
  lt_buf_t b;
  lt_buf_init(&b, RENDER_CAP);
  /* Stored JSON is at most LT_JSON_MAX_DEPTH deep; an answer nests it a few
   * levels down, so the answer's own limit sits above that. */
  if (put_tree(&b, j, 0, LT_JSON_MAX_DEPTH + 16)) {
    lt_buf_free(&b);
    return NULL;
  }
  return lt_buf_steal(&b, NULL);
}

static json_t *val_tree(const lt_val_t *v, int depth) {
  if (depth > LT_JSON_MAX_DEPTH) return json_null();
  switch (v->type) {
  case LT_VAL_STR: return json_stringn_nocheck(v->u.s.ptr ? v->u.s.ptr : "", v->u.s.len);
  case LT_VAL_BOOL: return json_boolean(v->u.b);
  case LT_VAL_INT: return json_integer(v->u.i);
  case LT_VAL_DOUBLE: return isfinite(v->u.d) ? json_real(v->u.d) : json_null(); /* jansson refuses NaN/Inf */
  case LT_VAL_BYTES: {
    lt_buf_t b;
    lt_buf_init(&b, RENDER_CAP);
    json_t *s = NULL;
    /* rendered as a JSON string literal; strip the quotes */
    if (lt__json_base64(&b, v->u.s.ptr, v->u.s.len) == 0) s = json_stringn_nocheck(b.ptr + 1, b.len - 2);
    lt_buf_free(&b);
    return s;
  }
  case LT_VAL_ARRAY: {
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < v->u.arr.n; i++) {
      json_t *e = val_tree(&v->u.arr.items[i], depth + 1);
      if (!e || json_array_append_new(arr, e)) {
        json_decref(arr);
        arr = NULL;
      }
    }
    return arr;
  }
  case LT_VAL_KVLIST: {
    json_t *obj = json_object();
    for (size_t i = 0; obj && i < v->u.kv.n; i++) {
      const lt_kv_t *kv = &v->u.kv.items[i];
      json_t *e = val_tree(&kv->val, depth + 1);
      if (!e || json_object_setn_new_nocheck(obj, kv->key.ptr ? kv->key.ptr : "", kv->key.len, e)) {
        json_decref(obj);
        obj = NULL;
      }
    }
    return obj;
  }
  default: return json_null();
  }
}

json_t *lt__val_tree(const lt_val_t *v) { return val_tree(v, 0); }

json_t *lt__json_parse(const char *s, size_t n) {
  if (!s || !n) return NULL;
  json_error_t err;
  return json_loadb(s, n, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
}

int lt__buf_to_arena(lt_arena_t *a, const lt_buf_t *b, lt_str_t *out) {
  *out = LT_STR_NULL;
  if (!b->len) return 0;
  lt_str_t s = lt_arena_strdup(a, b->ptr, b->len);
  if (!s.ptr) return LT_ETOOBIG;
  *out = s;
  return 0;
}

/* ---- public renderers (model/semconv.h) --------------------------------- */

static int render(lt_arena_t *a, lt_str_t *out, const lt_attrs_t *attrs, const lt_val_t *v) {
  lt_buf_t b;
  lt_buf_init(&b, RENDER_CAP);
  int rc = attrs ? lt__json_attrs(&b, attrs) : lt__json_val(&b, v);
  if (rc == 0) rc = lt__buf_to_arena(a, &b, out);
  lt_buf_free(&b);
  return rc;
}

int lt_attrs_json(lt_arena_t *a, const lt_attrs_t *attrs, lt_str_t *out) {
  *out = LT_STR_NULL;
  if (!attrs || !attrs->n) return 0;
  return render(a, out, attrs, NULL);
}

int lt_val_json(lt_arena_t *a, const lt_val_t *v, lt_str_t *out) {
  *out = LT_STR_NULL;
  if (!v || v->type == LT_VAL_EMPTY) return 0;
  return render(a, out, NULL, v);
}
