/* DDSketch-style log-bucket histogram. A value v >= LT_SKETCH_MIN_VALUE
 * goes to bucket i = ceil(log_gamma(v)), gamma = (1+a)/(1-a), i.e. the
 * range (gamma^(i-1), gamma^i]; the bucket stands for 2*gamma^i/(gamma+1),
 * which is within a relative a of every value in that range. Smaller
 * values are counted as zeros. Counts live in one dense array over a
 * window of bucket indexes that grows on demand with slack on the side it
 * grew; the window never exceeds LT_SKETCH_MAX_BUCKETS, and when the
 * highest index forces it up, every bucket below the window folds into the
 * lowest kept one. Since that rule only depends on the highest index ever
 * seen, any order of adds and merges gives the same buckets. */
#include "pipeline/sketch.h"
#include <float.h>
#include <math.h>
#include <string.h>
#include "core/err.h"
#include "core/mem.h"

#define GAMMA ((1.0 + LT_SKETCH_ALPHA) / (1.0 - LT_SKETCH_ALPHA))
/* ln(gamma) for alpha = 0.01, written out so the hot path needs one log. */
#define LN_GAMMA 0.020000666706669435
#define MIN_ALLOC 64u

void lt_sketch_init(lt_sketch_t *s) {
  memset(s, 0, sizeof *s);
}

void lt_sketch_reset(lt_sketch_t *s) {
  lt_free(s->counts);
  lt_sketch_init(s);
}

int32_t lt__sketch_index(double v) {
  return (int32_t)ceil(log(v) / LN_GAMMA);
}

double lt__sketch_value(int32_t idx) {
  /* Overflows to inf only for the topmost buckets; callers clamp to max. */
  return exp((double)idx * LN_GAMMA) * (2.0 / (GAMMA + 1.0));
}

static int has_buckets(const lt_sketch_t *s) {
  return s->count > s->zero_count;
}

/* Makes the window cover [a, b] together with the current buckets, folding
 * everything below (new highest - cap + 1) into that index, and sets lo/hi
 * to the new range. The caller then adds counts at max(index, s->lo), so
 * lo and hi are non-empty again. Fails only on allocation, leaving s as it
 * was, which is what makes add and merge all-or-nothing. */
static int fit(lt_sketch_t *s, int32_t a, int32_t b) {
  int32_t nlo = a, nhi = b;
  if (has_buckets(s)) {
    if (s->lo < nlo) nlo = s->lo;
    if (s->hi > nhi) nhi = s->hi;
  }
  int32_t floor_idx = nhi - (LT_SKETCH_MAX_BUCKETS - 1);
  if (nlo < floor_idx) nlo = floor_idx;
  /* The current array is never larger than the cap, so a range that fits
   * in it needs no folding. */
  if (s->counts && nlo >= s->base && nhi < s->base + (int32_t)s->alloc) {
    s->lo = nlo;
    s->hi = nhi;
    return 0;
  }
  uint32_t span = (uint32_t)(nhi - nlo) + 1;
  uint32_t nalloc = s->alloc * 2;
  if (nalloc < MIN_ALLOC) nalloc = MIN_ALLOC;
  if (nalloc < span) nalloc = span;
  if (nalloc > LT_SKETCH_MAX_BUCKETS) nalloc = LT_SKETCH_MAX_BUCKETS;
  int32_t nbase;
  if (!has_buckets(s))
    nbase = nlo - (int32_t)((nalloc - span) / 2);
  else if (nhi > s->hi)
    nbase = nlo; /* grew upwards: leave the slack above */
  else
    nbase = nhi - (int32_t)nalloc + 1;
  uint64_t *nc = lt_calloc(nalloc, sizeof *nc);
  if (!nc) return LT_ENOMEM;
  if (has_buckets(s)) {
    for (int32_t i = s->lo; i <= s->hi; i++) {
      int32_t j = i < nlo ? nlo : i;
      nc[j - nbase] += s->counts[i - s->base];
    }
  }
  lt_free(s->counts);
  s->counts = nc;
  s->base = nbase;
  s->alloc = nalloc;
  s->lo = nlo;
  s->hi = nhi;
  return 0;
}

int lt_sketch_add_n(lt_sketch_t *s, double v, uint64_t n) {
  if (!(v >= 0) || isinf(v)) return LT_EINVAL; /* NaN fails v >= 0 */
  if (n == 0) return 0;
  if (s->count > UINT64_MAX - n) return LT_ETOOBIG;
  if (v == 0) v = 0; /* -0.0 becomes +0.0 so min/max encode canonically */
  if (v < LT_SKETCH_MIN_VALUE) {
    s->zero_count += n;
  } else {
    int32_t idx = lt__sketch_index(v);
    int rc = fit(s, idx, idx);
    if (rc != 0) return rc;
    if (idx < s->lo) idx = s->lo;
    s->counts[idx - s->base] += n;
  }
  if (s->count == 0) {
    s->min = s->max = v;
  } else {
    if (v < s->min) s->min = v;
    if (v > s->max) s->max = v;
  }
  s->count += n;
  s->sum += v * (double)n;
  return 0;
}

int lt_sketch_add(lt_sketch_t *s, double v) {
  return lt_sketch_add_n(s, v, 1);
}

int lt_sketch_merge(lt_sketch_t *dst, const lt_sketch_t *src) {
  if (src->count == 0) return 0;
  if (dst->count > UINT64_MAX - src->count) return LT_ETOOBIG;
  if (dst == src) {
    if (has_buckets(dst))
      for (int32_t i = dst->lo; i <= dst->hi; i++) dst->counts[i - dst->base] *= 2;
    dst->zero_count *= 2;
    dst->count *= 2;
    dst->sum *= 2;
    return 0;
  }
  if (has_buckets(src)) {
    int rc = fit(dst, src->lo, src->hi);
    if (rc != 0) return rc;
    for (int32_t i = src->lo; i <= src->hi; i++) {
      uint64_t c = src->counts[i - src->base];
      if (c == 0) continue;
      int32_t j = i < dst->lo ? dst->lo : i;
      dst->counts[j - dst->base] += c;
    }
  }
  if (dst->count == 0) {
    dst->min = src->min;
    dst->max = src->max;
  } else {
    if (src->min < dst->min) dst->min = src->min;
    if (src->max > dst->max) dst->max = src->max;
  }
  dst->zero_count += src->zero_count;
  dst->count += src->count;
  dst->sum += src->sum;
  return 0;
}

int lt_sketch_quantile(const lt_sketch_t *s, double q, double *out) {
  if (!(q >= 0 && q <= 1)) return LT_EINVAL;
  if (s->count == 0) return LT_ENOTFOUND;
  uint64_t last = s->count - 1;
  double r = q * (double)last;
  uint64_t rank = r >= (double)last ? last : (uint64_t)r;
  /* The extremes are known exactly; no need to estimate them. */
  if (rank == 0) {
    *out = s->min;
    return 0;
  }
  if (rank == last) {
    *out = s->max;
    return 0;
  }
  double est = 0;
  uint64_t cum = s->zero_count;
  if (rank >= cum) {
    for (int32_t i = s->lo; i <= s->hi; i++) {
      cum += s->counts[i - s->base];
      if (cum > rank) {
        est = lt__sketch_value(i);
        break;
      }
    }
  }
  /* The true value lies in [min, max], so clamping can only help; it also
   * tames collapsed low buckets and the overflowing top ones. */
  if (est < s->min) est = s->min;
  if (est > s->max) est = s->max;
  *out = est;
  return 0;
}

uint64_t lt_sketch_count(const lt_sketch_t *s) { return s->count; }
double lt_sketch_sum(const lt_sketch_t *s) { return s->count ? s->sum : 0; }
double lt_sketch_min(const lt_sketch_t *s) { return s->count ? s->min : 0; }
double lt_sketch_max(const lt_sketch_t *s) { return s->count ? s->max : 0; }

/* ---- encoding ---------------------------------------------------------- */

static int put_varint(lt_buf_t *out, uint64_t v) {
  uint8_t tmp[10];
  size_t n = 0;
  while (v >= 0x80) {
    tmp[n++] = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  tmp[n++] = (uint8_t)v;
  return lt_buf_append(out, tmp, n);
}

static int put_f64(lt_buf_t *out, double d) {
  uint64_t bits;
  uint8_t tmp[8];
  memcpy(&bits, &d, sizeof bits);
  for (int i = 0; i < 8; i++) tmp[i] = (uint8_t)(bits >> (8 * i));
  return lt_buf_append(out, tmp, sizeof tmp);
}

int lt_sketch_encode(const lt_sketch_t *s, lt_buf_t *out) {
  size_t start = out->len;
  uint8_t version = LT_SKETCH_VERSION;
  int empty = s->count == 0;
  uint32_t nb = has_buckets(s) ? (uint32_t)(s->hi - s->lo) + 1 : 0;
  int rc = lt_buf_append(out, &version, 1);
  if (rc == 0) rc = put_varint(out, s->zero_count);
  if (rc == 0) rc = put_f64(out, empty ? 0.0 : s->min);
  if (rc == 0) rc = put_f64(out, empty ? 0.0 : s->max);
  if (rc == 0) rc = put_f64(out, empty ? 0.0 : s->sum);
  if (rc == 0) rc = put_varint(out, nb);
  if (rc == 0 && nb > 0) {
    /* zigzag, so small negative offsets stay one or two bytes */
    uint64_t zz = ((uint64_t)(int64_t)s->lo << 1) ^ (uint64_t)((int64_t)s->lo >> 63);
    rc = put_varint(out, zz);
    for (int32_t i = s->lo; rc == 0 && i <= s->hi; i++)
      rc = put_varint(out, s->counts[i - s->base]);
  }
  if (rc != 0) {
    /* leave out as it was: drop a partial encoding */
    out->len = start;
    if (out->ptr) out->ptr[start] = '\0';
  }
  return rc;
}

typedef struct {
  const uint8_t *p;
  size_t len, off;
} cursor_t;

/* Reads a canonical LEB128 varint: at most 10 bytes, no overflow, no
 * redundant trailing zero groups (so decode-then-encode is the identity). */
static inline int get_varint(cursor_t *c, uint64_t *out) {
  /* Most counts fit one byte: the fast path. */
  if (c->off < c->len && c->p[c->off] < 0x80) {
    *out = c->p[c->off++];
    return 0;
  }
  uint64_t v = 0;
  for (int shift = 0; shift < 70; shift += 7) {
    if (c->off >= c->len) return LT_EDECODE;
    uint8_t b = c->p[c->off++];
    if (shift == 63 && b > 1) return LT_EDECODE;
    v |= (uint64_t)(b & 0x7f) << shift;
    if (!(b & 0x80)) {
      if (b == 0 && shift > 0) return LT_EDECODE;
      *out = v;
      return 0;
    }
  }
  return LT_EDECODE;
}

static int get_f64(cursor_t *c, double *out) {
  if (c->len - c->off < 8) return LT_EDECODE;
  uint64_t bits = 0;
  for (int i = 0; i < 8; i++) bits |= (uint64_t)c->p[c->off + (size_t)i] << (8 * i);
  c->off += 8;
  memcpy(out, &bits, sizeof *out);
  /* Sketches hold no negative values, no NaN and no -0.0. */
  if (isnan(*out) || signbit(*out)) return LT_EDECODE;
  return 0;
}

int lt_sketch_decode(const void *p, size_t len, lt_sketch_t *s) {
  cursor_t c = {p, len, 0};
  lt_sketch_t t;
  uint64_t zc = 0, nb = 0, zz = 0, total;
  int rc = LT_EDECODE;
  lt_sketch_init(&t);
  if (len < 1 || c.p[0] != LT_SKETCH_VERSION) goto out;
  c.off = 1;
  if (get_varint(&c, &zc) != 0) goto out;
  if (get_f64(&c, &t.min) != 0 || get_f64(&c, &t.max) != 0 || get_f64(&c, &t.sum) != 0)
    goto out;
  if (isinf(t.min) || isinf(t.max)) goto out; /* sum may overflow to inf */
  if (get_varint(&c, &nb) != 0 || nb > LT_SKETCH_MAX_BUCKETS) goto out;
  total = zc;
  if (nb > 0) {
    if (get_varint(&c, &zz) != 0) goto out;
    int64_t lo = (int64_t)(zz >> 1) ^ -(int64_t)(zz & 1);
    if (lo < lt__sketch_index(LT_SKETCH_MIN_VALUE) ||
        lo + (int64_t)nb - 1 > lt__sketch_index(DBL_MAX))
      goto out;
    /* every count takes at least a byte: cheap check before allocating */
    if (len - c.off < nb) goto out;
    t.alloc = nb < MIN_ALLOC ? MIN_ALLOC : (uint32_t)nb;
    t.counts = lt_calloc(t.alloc, sizeof *t.counts);
    if (!t.counts) {
      rc = LT_ENOMEM;
      goto out;
    }
    t.base = t.lo = (int32_t)lo;
    t.hi = (int32_t)(lo + (int64_t)nb - 1);
    for (uint64_t i = 0; i < nb; i++) {
      uint64_t n;
      if (get_varint(&c, &n) != 0) goto out;
      /* the ends are the lowest and highest non-empty buckets */
      if (n == 0 && (i == 0 || i == nb - 1)) goto out;
      if (total > UINT64_MAX - n) goto out;
      total += n;
      t.counts[i] = n;
    }
  }
  if (c.off != len) goto out;
  t.zero_count = zc;
  t.count = total;
  if (total == 0) {
    if (t.min != 0 || t.max != 0 || t.sum != 0) goto out;
  } else {
    /* the exact min/max must agree with where the counts are */
    if (t.min > t.max) goto out;
    if ((zc > 0) != (t.min < LT_SKETCH_MIN_VALUE)) goto out;
    if ((nb > 0) != (t.max >= LT_SKETCH_MIN_VALUE)) goto out;
  }
  lt_free(s->counts);
  *s = t;
  lt_sketch_init(&t);
  rc = 0;
out:
  lt_sketch_reset(&t);
  return rc;
}

/* Decodes an encoding's header and counts into hdr and counts[0..nb)
 * (the caller's buffer of LT_SKETCH_MAX_BUCKETS), with every rule of
 * lt_sketch_decode, but without allocating. */
static int peek(const void *p, size_t len, lt_sketch_t *hdr, uint64_t *counts, uint64_t *nb, int64_t *lo) {
  uint64_t zc = 0, zz = 0, total;
  cursor_t c = {p, len, 0};
  lt_sketch_init(hdr);
  if (len < 1 || c.p[0] != LT_SKETCH_VERSION) return LT_EDECODE;
  c.off = 1;
  if (get_varint(&c, &zc) || get_f64(&c, &hdr->min) || get_f64(&c, &hdr->max) || get_f64(&c, &hdr->sum))
    return LT_EDECODE;
  if (isinf(hdr->min) || isinf(hdr->max)) return LT_EDECODE;
  if (get_varint(&c, nb) || *nb > LT_SKETCH_MAX_BUCKETS) return LT_EDECODE;
  total = zc;
  *lo = 0;
  if (*nb > 0) {
    if (get_varint(&c, &zz)) return LT_EDECODE;
    *lo = (int64_t)(zz >> 1) ^ -(int64_t)(zz & 1);
    if (*lo < lt__sketch_index(LT_SKETCH_MIN_VALUE) || *lo + (int64_t)*nb - 1 > lt__sketch_index(DBL_MAX))
      return LT_EDECODE;
    for (uint64_t i = 0; i < *nb; i++) {
      uint64_t n;
      if (get_varint(&c, &n)) return LT_EDECODE;
      if (n == 0 && (i == 0 || i == *nb - 1)) return LT_EDECODE;
      if (total > UINT64_MAX - n) return LT_EDECODE;
      total += n;
      counts[i] = n;
    }
  }
  if (c.off != len) return LT_EDECODE;
  hdr->zero_count = zc;
  hdr->count = total;
  if (total == 0) {
    if (hdr->min != 0 || hdr->max != 0 || hdr->sum != 0) return LT_EDECODE;
  } else {
    if (hdr->min > hdr->max) return LT_EDECODE;
    if ((zc > 0) != (hdr->min < LT_SKETCH_MIN_VALUE)) return LT_EDECODE;
    if ((*nb > 0) != (hdr->max >= LT_SKETCH_MIN_VALUE)) return LT_EDECODE;
  }
  return 0;
}

int lt_sketch_merge_encoded(lt_sketch_t *dst, const void *p, size_t len) {
  uint64_t counts[LT_SKETCH_MAX_BUCKETS]; /* 32 KiB: no allocation per merge */
  lt_sketch_t hdr;
  uint64_t nb;
  int64_t lo;
  int rc = peek(p, len, &hdr, counts, &nb, &lo);
  if (rc) return rc;
  if (hdr.count == 0) return 0;
  if (dst->count > UINT64_MAX - hdr.count) return LT_ETOOBIG;
  if (nb > 0) {
    int32_t hi = (int32_t)(lo + (int64_t)nb - 1);
    if ((rc = fit(dst, (int32_t)lo, hi))) return rc;
    for (uint64_t i = 0; i < nb; i++) {
      if (!counts[i]) continue;
      int32_t k = (int32_t)(lo + (int64_t)i);
      int32_t j = k < dst->lo ? dst->lo : k; /* folded low buckets, as merge does */
      dst->counts[j - dst->base] += counts[i];
    }
  }
  if (dst->count == 0) {
    dst->min = hdr.min;
    dst->max = hdr.max;
  } else {
    if (hdr.min < dst->min) dst->min = hdr.min;
    if (hdr.max > dst->max) dst->max = hdr.max;
  }
  dst->zero_count += hdr.zero_count;
  dst->count += hdr.count;
  dst->sum += hdr.sum;
  return 0;
}
