/* Attribute access for the mapping: a sorted index of one span's attributes
 * (exact lookups and flattened-list discovery by binary search), the value
 * conversions the mapping tables name, and the per-span warning list. */
#include "model/semconv_int.h"
#include "core/err.h"
#include "core/mem.h"
#include "model/json_out.h"
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

/* Rendering cap for one field; the arena cap is the real limit. */
#define SCRATCH_CAP ((size_t)1 << 30)

/* ---- index ---------------------------------------------------------------- */

static int cmp_key(lt_str_t a, const char *b, size_t blen) {
  size_t n = a.len < blen ? a.len : blen;
  int r = n ? memcmp(a.ptr, b, n) : 0;
  if (r) return r;
  return a.len < blen ? -1 : a.len > blen;
}

static int cmp_kv(const void *x, const void *y) {
  const lt_kv_t *a = *(const lt_kv_t *const *)x, *b = *(const lt_kv_t *const *)y;
  int r = cmp_key(a->key, b->key.ptr, b->key.len);
  /* equal keys (invalid OTLP, but possible) keep their order: first wins */
  if (r == 0) r = a < b ? -1 : a > b;
  return r;
}

/* Eight bytes at a time: the mapping looks up ~100 keys per span. The
 * per-process seed keeps a sender from aiming many keys at one slot. */
static uint64_t hash_seed;
static pthread_once_t seed_once = PTHREAD_ONCE_INIT;

static void seed_init(void) {
  if (getrandom(&hash_seed, sizeof hash_seed, 0) != sizeof hash_seed) hash_seed = (uint64_t)(uintptr_t)&hash_seed;
}

static uint64_t key_hash(const char *k, size_t n) {
  uint64_t h = hash_seed ^ (n * 0x9E3779B97F4A7C15ull);
  for (; n >= 8; k += 8, n -= 8) {
    uint64_t w;
    memcpy(&w, k, 8);
    h = (h ^ w) * 0xff51afd7ed558ccdull;
    h ^= h >> 32;
  }
  if (n) {
    uint64_t w = 0;
    memcpy(&w, k, n);
    h = (h ^ w) * 0xc4ceb9fe1a85ec53ull;
  }
  return h ^ h >> 29;
}

static unsigned key_filt(const char *k, size_t n) {
  return n ? (unsigned)(n * 0x9Eu + (uint8_t)k[n - 1] * 3u + (uint8_t)k[n >> 1]) & 511u : 0;
}

static bool key_eq(lt_str_t a, const char *b, size_t n) { return a.len == n && (n == 0 || memcmp(a.ptr, b, n) == 0); }

/* Fills the hash over the sorted kv; equal keys keep the first. */
static int hash_init(lt__aidx_t *ix) {
  pthread_once(&seed_once, seed_init);
  size_t slots = sizeof ix->slot_small / sizeof ix->slot_small[0];
  ix->slot = ix->slot_small;
  if (ix->n * 2 > slots) {
    while (slots < ix->n * 2) slots *= 2;
    ix->slot = lt_calloc(slots, sizeof *ix->slot);
    if (!ix->slot) return LT_ENOMEM;
    ix->slot_heap = true;
  } else {
    memset(ix->slot_small, 0, sizeof ix->slot_small);
  }
  ix->mask = slots - 1;
  memset(ix->filt, 0, sizeof ix->filt);
  for (size_t i = 0; i < ix->n; i++) {
    lt_str_t k = ix->kv[i]->key;
    unsigned f = key_filt(k.ptr, k.len);
    ix->filt[f >> 6] |= 1ull << (f & 63);
    size_t h = (size_t)key_hash(k.ptr, k.len) & ix->mask;
    while (ix->slot[h] && !key_eq(ix->kv[ix->slot[h] - 1]->key, k.ptr, k.len)) h = (h + 1) & ix->mask;
    if (!ix->slot[h]) ix->slot[h] = (uint32_t)i + 1;
  }
  return 0;
}

int lt__sc_init(lt__sc_t *c, lt_arena_t *a, const lt_attrs_t *attrs) {
  memset(c, 0, sizeof *c);
  c->a = a;
  lt_buf_init(&c->buf, SCRATCH_CAP);
  lt__aidx_t *ix = &c->ix;
  size_t n = attrs ? attrs->n : 0;
  ix->kv = ix->small;
  if (n > sizeof ix->small / sizeof ix->small[0]) {
    ix->kv = lt_malloc(n * sizeof *ix->kv);
    if (!ix->kv) return LT_ENOMEM;
    ix->heap = true;
  }
  for (size_t i = 0; i < n; i++) ix->kv[i] = &attrs->items[i];
  ix->n = n;
  if (n > 32) {
    qsort(ix->kv, n, sizeof *ix->kv, cmp_kv);
  } else {
    /* Spans carry 5-30 attributes: insertion sort beats qsort's merge
     * sort and its calls through a pointer (1.5% of ingest CPU). */
    for (size_t i = 1; i < n; i++) {
      const lt_kv_t *v = ix->kv[i];
      size_t j = i;
      for (; j > 0 && cmp_kv(&ix->kv[j - 1], &v) > 0; j--) ix->kv[j] = ix->kv[j - 1];
      ix->kv[j] = v;
    }
  }
  return hash_init(ix);
}

void lt__sc_free(lt__sc_t *c) {
  for (size_t i = 0; i < c->n_json; i++) json_decref(c->json[i].tree);
  lt_free(c->json);
  c->json = NULL;
  c->n_json = c->cap_json = 0;
  lt_buf_free(&c->elided);
  if (c->ix.heap) lt_free(c->ix.kv);
  if (c->ix.slot_heap) lt_free(c->ix.slot);
  c->ix.kv = NULL;
  c->ix.slot = NULL;
  c->ix.heap = c->ix.slot_heap = false;
  lt_buf_free(&c->buf);
}

/* First position whose key is >= key (compared on at most plen bytes when
 * prefix is set, so a run of keys under a prefix compares equal). */
static size_t lower(const lt__aidx_t *ix, const char *key, size_t klen, bool prefix) {
  size_t lo = 0, hi = ix->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    lt_str_t k = ix->kv[mid]->key;
    if (prefix && k.len > klen) k.len = klen;
    if (cmp_key(k, key, klen) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

const lt_val_t *lt__idx_get(const lt__aidx_t *ix, const char *key, size_t klen) {
  if (!ix->n || !ix->slot) return NULL;
  unsigned f = key_filt(key, klen);
  if (!(ix->filt[f >> 6] >> (f & 63) & 1)) return NULL;
  for (size_t h = (size_t)key_hash(key, klen) & ix->mask; ix->slot[h]; h = (h + 1) & ix->mask) {
    const lt_kv_t *kv = ix->kv[ix->slot[h] - 1];
    if (key_eq(kv->key, key, klen)) return &kv->val;
  }
  return NULL;
}

const lt_val_t *lt__idx_get2(const lt__aidx_t *ix, const char *a, const char *b) {
  char key[LT_SC_MAX_KEY];
  size_t na = strlen(a), nb = strlen(b);
  if (na + nb >= sizeof key) return NULL; /* too long to be a key we keep */
  memcpy(key, a, na);
  memcpy(key + na, b, nb);
  return lt__idx_get(ix, key, na + nb);
}

void lt__idx_prefix(const lt__aidx_t *ix, const char *prefix, size_t plen, size_t *first, size_t *end) {
  size_t i = lower(ix, prefix, plen, true);
  *first = i;
  while (i < ix->n && ix->kv[i]->key.len >= plen && memcmp(ix->kv[i]->key.ptr, prefix, plen) == 0) i++;
  *end = i;
}

static json_t *parse_val(const lt_val_t *v, bool *bad) {
  *bad = false;
  if (v->type == LT_VAL_ARRAY || v->type == LT_VAL_KVLIST) return lt__val_tree(v);
  if (v->type != LT_VAL_STR) return NULL;
  size_t i = 0;
  while (i < v->u.s.len && strchr(" \t\r\n", v->u.s.ptr[i])) i++;
  if (i == v->u.s.len || (v->u.s.ptr[i] != '[' && v->u.s.ptr[i] != '{')) return NULL;
  json_t *t = lt__json_parse(v->u.s.ptr, v->u.s.len);
  if (!t) *bad = true;
  return t;
}

const json_t *lt__sc_json(lt__sc_t *c, const lt_val_t *v, bool *bad) {
  *bad = false;
  if (!v) return NULL;
  for (size_t i = 0; i < c->n_json; i++) {
    if (c->json[i].v == v) {
      *bad = c->json[i].bad;
      return c->json[i].tree;
    }
  }
  if (c->n_json == c->cap_json) {
    size_t cap = c->cap_json ? c->cap_json * 2 : 8;
    lt__sc_json_t *p = lt_realloc(c->json, cap * sizeof *p);
    if (!p) return NULL; /* out of memory reads as "not JSON": the field stays empty */
    c->json = p;
    c->cap_json = cap;
  }
  json_t *t = parse_val(v, bad);
  c->json[c->n_json++] = (lt__sc_json_t){v, t, *bad};
  return t;
}

int lt__idx_list(const lt__aidx_t *ix, const char *prefix, uint8_t bits[LT_SC_BITS_LEN], bool *over) {
  size_t plen = strlen(prefix);
  int end = 0;
  memset(bits, 0, LT_SC_BITS_LEN);
  for (size_t i = lower(ix, prefix, plen, true); i < ix->n; i++) {
    lt_str_t k = ix->kv[i]->key;
    if (k.len < plen || memcmp(k.ptr, prefix, plen) != 0) break;
    /* the index: decimal digits, no leading zero, then '.' */
    size_t p = plen;
    long idx = 0;
    while (p < k.len && k.ptr[p] >= '0' && k.ptr[p] <= '9' && idx <= LT_SC_MAX_INDEX) {
      idx = idx * 10 + (k.ptr[p] - '0');
      p++;
    }
    if (p == plen || (k.ptr[plen] == '0' && p > plen + 1)) continue;
    if (idx > LT_SC_MAX_INDEX) {
      *over = true;
      continue;
    }
    if (p >= k.len || k.ptr[p] != '.') continue;
    bits[idx >> 3] |= (uint8_t)(1u << (idx & 7));
    if (idx >= end) end = (int)idx + 1;
  }
  return end;
}

/* ---- warnings --------------------------------------------------------------- */

int lt__sc_warn(lt__sc_t *c, const char *key, size_t klen, const char *why) {
  if (c->n_warn == LT_SC_MAX_WARN) {
    c->n_warn_dropped++;
    return 0;
  }
  char msg[320];
  int n = snprintf(msg, sizeof msg, "%.*s: %s", (int)(klen > 200 ? 200 : klen), key, why);
  if (n < 0) return 0;
  if ((size_t)n >= sizeof msg) n = (int)sizeof msg - 1;
  lt_str_t s = lt_arena_strdup(c->a, msg, (size_t)n);
  if (!s.ptr) return LT_ETOOBIG;
  c->warn[c->n_warn++] = s;
  return 0;
}

/* ---- conversions -------------------------------------------------------------- */

static int dup(lt__sc_t *c, const char *p, size_t n, lt_str_t *out) {
  *out = LT_STR_NULL;
  if (!n) return LT__CV_OK;
  *out = lt_arena_strdup(c->a, p, n);
  return out->ptr ? LT__CV_OK : LT_ETOOBIG;
}

int lt__cv_text(lt__sc_t *c, const lt_val_t *v, lt_str_t *out, const char **why) {
  char tmp[48];
  int n;
  *out = LT_STR_NULL;
  switch (v->type) {
  case LT_VAL_STR: return dup(c, v->u.s.ptr, v->u.s.len, out);
  /* identifiers sent as numbers (user.id = 42) are still identifiers */
  case LT_VAL_INT: n = snprintf(tmp, sizeof tmp, "%" PRId64, v->u.i); break;
  case LT_VAL_BOOL: n = snprintf(tmp, sizeof tmp, "%s", v->u.b ? "true" : "false"); break;
  case LT_VAL_DOUBLE: {
    lt_buf_reset(&c->buf);
    int rc = lt__json_double(&c->buf, v->u.d);
    return rc ? rc : dup(c, c->buf.ptr, c->buf.len, out);
  }
  default:
    *why = "not a string";
    return LT__CV_BAD;
  }
  return dup(c, tmp, (size_t)n, out);
}

int lt__cv_payload(lt__sc_t *c, const lt_val_t *v, lt_str_t *out, const char **why) {
  *out = LT_STR_NULL;
  if (v->type == LT_VAL_STR) return dup(c, v->u.s.ptr, v->u.s.len, out);
  if (v->type == LT_VAL_EMPTY) {
    *why = "empty value";
    return LT__CV_BAD;
  }
  /* structured payloads (gen_ai.tool.call.arguments as a map) become JSON text */
  lt_buf_reset(&c->buf);
  int rc = lt__json_val(&c->buf, v);
  return rc ? rc : dup(c, c->buf.ptr, c->buf.len, out);
}

/* Parses a whole slice as a decimal integer (optional sign). */
static bool parse_i64(lt_str_t s, int64_t *out) {
  size_t i = 0;
  bool neg = false;
  if (i < s.len && (s.ptr[i] == '-' || s.ptr[i] == '+')) neg = s.ptr[i++] == '-';
  if (i == s.len || s.len - i > 18) return false; /* 18 digits cannot overflow */
  int64_t v = 0;
  for (; i < s.len; i++) {
    if (s.ptr[i] < '0' || s.ptr[i] > '9') return false;
    v = v * 10 + (s.ptr[i] - '0');
  }
  *out = neg ? -v : v;
  return true;
}

int lt__cv_int(const lt_val_t *v, int64_t *out, const char **why) {
  switch (v->type) {
  case LT_VAL_INT: *out = v->u.i; return LT__CV_OK;
  case LT_VAL_DOUBLE:
    /* some SDKs (JavaScript) send every number as a double */
    if (isfinite(v->u.d) && v->u.d == floor(v->u.d) && fabs(v->u.d) < 9e15) {
      *out = (int64_t)v->u.d;
      return LT__CV_OK;
    }
    *why = "not an integer";
    return LT__CV_BAD;
  case LT_VAL_STR:
    /* a decimal string is accepted: stringly-typed SDKs exist */
    if (parse_i64(v->u.s, out)) return LT__CV_OK;
    *why = "not an integer";
    return LT__CV_BAD;
  default:
    *why = "not an integer";
    return LT__CV_BAD;
  }
}

int lt__cv_double(const lt_val_t *v, double *out, const char **why) {
  switch (v->type) {
  case LT_VAL_DOUBLE: *out = v->u.d; break;
  case LT_VAL_INT: *out = (double)v->u.i; break;
  case LT_VAL_STR: {
    char tmp[64];
    char *end;
    if (v->u.s.len == 0 || v->u.s.len >= sizeof tmp) goto bad;
    memcpy(tmp, v->u.s.ptr, v->u.s.len);
    tmp[v->u.s.len] = '\0';
    *out = strtod(tmp, &end);
    if (end != tmp + v->u.s.len) goto bad;
    break;
  }
  default: goto bad;
  }
  if (!isfinite(*out)) goto bad;
  return LT__CV_OK;
bad:
  *why = "not a number";
  return LT__CV_BAD;
}
