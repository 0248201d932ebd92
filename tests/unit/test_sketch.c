/* Unit tests for the log-bucket sketch: 1% accuracy against exact order
 * statistics on several distributions, exact merges, the bucket cap,
 * zeros, invalid input, and the binary encoding (round trip and rejection
 * of malformed bytes). Samples come from a fixed-seed splitmix64 so every
 * run sees the same data. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "core/buf.h"
#include "core/err.h"
#include "core/mem.h"
#include "pipeline/sketch.h"

#define N_SAMPLES 50000
/* The bound is exactly alpha in real arithmetic; allow for rounding in
 * log/exp near bucket edges. */
#define TOL (LT_SKETCH_ALPHA + 1e-9)

static const double QS[] = {0, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1};
#define NQ (sizeof QS / sizeof QS[0])

static uint64_t rng_state;

static uint64_t splitmix64(void) {
  uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* uniform in (0, 1) */
static double unif(void) {
  return ((double)(splitmix64() >> 11) + 0.5) / 9007199254740992.0;
}

static double normal(void) {
  return sqrt(-2 * log(unif())) * cos(2 * M_PI * unif());
}

typedef double (*gen_fn)(void);
static double gen_uniform(void) { return 1000 * unif(); }
static double gen_exponential(void) { return -50 * log(unif()); }
static double gen_lognormal(void) { return exp(3 + 2 * normal()); }
static double gen_pareto(void) { return 1.0 / pow(unif(), 1 / 1.2); }

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double exact_quantile(const double *sorted, size_t n, double q) {
  return sorted[(size_t)floor(q * (double)(n - 1))];
}

static void assert_close(double est, double exact) {
  if (exact == 0) {
    assert_true(est == 0);
    return;
  }
  double err = fabs(est - exact) / exact;
  if (err > TOL) fail_msg("estimate %.17g vs exact %.17g: rel err %g", est, exact, err);
}

static void assert_same_buckets(const lt_sketch_t *a, const lt_sketch_t *b) {
  assert_int_equal(a->count, b->count);
  assert_int_equal(a->zero_count, b->zero_count);
  assert_true(a->min == b->min);
  assert_true(a->max == b->max);
  if (a->count == a->zero_count) return;
  assert_int_equal(a->lo, b->lo);
  assert_int_equal(a->hi, b->hi);
  for (int32_t i = a->lo; i <= a->hi; i++)
    assert_int_equal(a->counts[i - a->base], b->counts[i - b->base]);
}

static void check_distribution(gen_fn gen, uint64_t seed) {
  double *v = lt_malloc(N_SAMPLES * sizeof *v);
  assert_non_null(v);
  lt_sketch_t s, half1, half2;
  lt_sketch_init(&s);
  lt_sketch_init(&half1);
  lt_sketch_init(&half2);
  rng_state = seed;
  for (size_t i = 0; i < N_SAMPLES; i++) {
    v[i] = gen();
    assert_int_equal(lt_sketch_add(&s, v[i]), 0);
    assert_int_equal(lt_sketch_add(i < N_SAMPLES / 2 ? &half1 : &half2, v[i]), 0);
  }
  qsort(v, N_SAMPLES, sizeof *v, cmp_double);
  assert_int_equal(lt_sketch_count(&s), N_SAMPLES);
  assert_true(lt_sketch_min(&s) == v[0]);
  assert_true(lt_sketch_max(&s) == v[N_SAMPLES - 1]);
  for (size_t k = 0; k < NQ; k++) {
    double est;
    assert_int_equal(lt_sketch_quantile(&s, QS[k], &est), 0);
    assert_close(est, exact_quantile(v, N_SAMPLES, QS[k]));
  }
  /* and every permille, for good measure */
  for (int k = 0; k <= 1000; k++) {
    double est, q = k / 1000.0;
    assert_int_equal(lt_sketch_quantile(&s, q, &est), 0);
    assert_close(est, exact_quantile(v, N_SAMPLES, q));
  }
  /* merging the halves is the sketch of the whole */
  assert_int_equal(lt_sketch_merge(&half1, &half2), 0);
  assert_same_buckets(&half1, &s);
  assert_true(fabs(lt_sketch_sum(&half1) - lt_sketch_sum(&s)) <= 1e-9 * lt_sketch_sum(&s));
  for (size_t k = 0; k < NQ; k++) {
    double a, b;
    assert_int_equal(lt_sketch_quantile(&s, QS[k], &a), 0);
    assert_int_equal(lt_sketch_quantile(&half1, QS[k], &b), 0);
    assert_true(a == b);
  }
  lt_sketch_reset(&s);
  lt_sketch_reset(&half1);
  lt_sketch_reset(&half2);
  lt_free(v);
}

static void accuracy_uniform(void **st) { check_distribution(gen_uniform, 1); }
static void accuracy_exponential(void **st) { check_distribution(gen_exponential, 2); }
static void accuracy_lognormal(void **st) { check_distribution(gen_lognormal, 3); }
static void accuracy_pareto(void **st) { check_distribution(gen_pareto, 4); }

/* A small sample where every rank matters, plus add_n == n adds. */
static void small_samples_and_add_n(void **st) {
  lt_sketch_t a, b;
  lt_sketch_init(&a);
  lt_sketch_init(&b);
  double one;
  assert_int_equal(lt_sketch_add(&a, 42.5), 0);
  for (size_t k = 0; k < NQ; k++) {
    assert_int_equal(lt_sketch_quantile(&a, QS[k], &one), 0);
    assert_true(one == 42.5);
  }
  lt_sketch_reset(&a);
  for (int i = 0; i < 7; i++) assert_int_equal(lt_sketch_add(&a, 3.25), 0);
  assert_int_equal(lt_sketch_add_n(&b, 3.25, 7), 0);
  assert_int_equal(lt_sketch_add_n(&b, 9.0, 0), 0); /* no-op */
  assert_same_buckets(&a, &b);
  assert_true(lt_sketch_sum(&b) == 3.25 * 7);
  /* self merge doubles */
  assert_int_equal(lt_sketch_merge(&b, &b), 0);
  assert_int_equal(lt_sketch_count(&b), 14);
  assert_int_equal(lt_sketch_add_n(&a, 3.25, 7), 0);
  assert_same_buckets(&a, &b);
  lt_sketch_reset(&a);
  lt_sketch_reset(&b);
}

static void zeros_are_exact(void **st) {
  lt_sketch_t s;
  lt_sketch_init(&s);
  assert_int_equal(lt_sketch_add(&s, 0.0), 0);
  assert_int_equal(lt_sketch_add(&s, -0.0), 0);
  assert_int_equal(lt_sketch_add(&s, 1e-12), 0); /* below the min: a zero */
  assert_int_equal(lt_sketch_add_n(&s, 0.0, 3), 0);
  assert_int_equal(s.zero_count, 6);
  assert_null(s.counts);
  double out;
  assert_int_equal(lt_sketch_quantile(&s, 0.5, &out), 0);
  assert_true(out == 0 && !signbit(out));
  assert_int_equal(lt_sketch_quantile(&s, 1, &out), 0);
  assert_true(out == 1e-12);
  for (int i = 0; i < 4; i++) assert_int_equal(lt_sketch_add(&s, 100), 0);
  /* 6 zeros then 4 x 100: ranks 0..5 are zero, 6..9 are 100 */
  assert_int_equal(lt_sketch_quantile(&s, 0.5, &out), 0);
  assert_true(out == 0);
  assert_int_equal(lt_sketch_quantile(&s, 0.7, &out), 0);
  assert_close(out, 100);
  assert_true(lt_sketch_min(&s) == 0 && !signbit(lt_sketch_min(&s)));
  lt_sketch_reset(&s);
}

static void invalid_inputs(void **st) {
  lt_sketch_t s, big;
  lt_sketch_init(&s);
  lt_sketch_init(&big);
  double out = 7;
  assert_int_equal(lt_sketch_quantile(&s, 0.5, &out), LT_ENOTFOUND);
  assert_true(out == 7);
  assert_int_equal(lt_sketch_add(&s, -1), LT_EINVAL);
  assert_int_equal(lt_sketch_add(&s, -1e-300), LT_EINVAL);
  assert_int_equal(lt_sketch_add(&s, NAN), LT_EINVAL);
  assert_int_equal(lt_sketch_add(&s, INFINITY), LT_EINVAL);
  assert_int_equal(lt_sketch_add(&s, -INFINITY), LT_EINVAL);
  assert_int_equal(lt_sketch_add_n(&s, NAN, 5), LT_EINVAL);
  assert_int_equal(lt_sketch_count(&s), 0);
  assert_true(lt_sketch_sum(&s) == 0 && lt_sketch_min(&s) == 0 && lt_sketch_max(&s) == 0);
  assert_int_equal(lt_sketch_add(&s, 1), 0);
  assert_int_equal(lt_sketch_quantile(&s, -0.01, &out), LT_EINVAL);
  assert_int_equal(lt_sketch_quantile(&s, 1.01, &out), LT_EINVAL);
  assert_int_equal(lt_sketch_quantile(&s, NAN, &out), LT_EINVAL);
  /* count overflow is refused and changes nothing */
  assert_int_equal(lt_sketch_add_n(&s, 2, UINT64_MAX), LT_ETOOBIG);
  assert_int_equal(lt_sketch_count(&s), 1);
  assert_int_equal(lt_sketch_add_n(&big, 5, UINT64_MAX), 0);
  assert_int_equal(lt_sketch_merge(&s, &big), LT_ETOOBIG);
  assert_int_equal(lt_sketch_count(&s), 1);
  assert_int_equal(lt_sketch_quantile(&big, 0.5, &out), 0);
  assert_true(out == 5);
  lt_sketch_reset(&s);
  lt_sketch_reset(&big);
}

/* Values over ~1e-9..1e308 need ~36500 buckets; the window keeps 4096 and
 * folds the rest into its lowest bucket, in any order of adds and merges. */
static void bucket_cap(void **st) {
  static const double vals[] = {1e-9, 1e-5, 0.5, 1, 3, 1e6, 1e12, 1e30, 1e100, 1e300, DBL_MAX};
  const size_t nv = sizeof vals / sizeof vals[0];
  lt_sketch_t fwd, rev, m1, m2;
  lt_sketch_init(&fwd);
  lt_sketch_init(&rev);
  lt_sketch_init(&m1);
  lt_sketch_init(&m2);
  for (size_t i = 0; i < nv; i++) {
    assert_int_equal(lt_sketch_add(&fwd, vals[i]), 0);
    assert_int_equal(lt_sketch_add(&rev, vals[nv - 1 - i]), 0);
    assert_int_equal(lt_sketch_add(i % 2 ? &m1 : &m2, vals[i]), 0);
    assert_true(fwd.alloc <= LT_SKETCH_MAX_BUCKETS);
    assert_true(fwd.hi - fwd.lo + 1 <= LT_SKETCH_MAX_BUCKETS);
  }
  assert_int_equal(fwd.hi, lt__sketch_index(DBL_MAX));
  assert_int_equal(fwd.lo, fwd.hi - LT_SKETCH_MAX_BUCKETS + 1);
  assert_true(rev.alloc <= LT_SKETCH_MAX_BUCKETS);
  assert_same_buckets(&fwd, &rev);
  assert_int_equal(lt_sketch_merge(&m1, &m2), 0);
  assert_same_buckets(&fwd, &m1);
  /* the 9 values below the window share its lowest bucket */
  assert_int_equal(fwd.counts[fwd.lo - fwd.base], 9);
  double out;
  assert_int_equal(lt_sketch_quantile(&fwd, 0, &out), 0);
  assert_true(out == 1e-9);
  assert_int_equal(lt_sketch_quantile(&fwd, 1, &out), 0);
  assert_true(out == DBL_MAX);
  assert_int_equal(lt_sketch_quantile(&fwd, 0.95, &out), 0);
  assert_close(out, 1e300);
  assert_int_equal(lt_sketch_quantile(&fwd, 0.5, &out), 0); /* collapsed */
  assert_true(out >= 1e-9 && out <= DBL_MAX);
  /* a realistic range, 1e-9 .. 1e12, fits without collapsing */
  lt_sketch_reset(&fwd);
  assert_int_equal(lt_sketch_add(&fwd, 1e-9), 0);
  assert_int_equal(lt_sketch_add(&fwd, 1e12), 0);
  assert_int_equal(fwd.lo, lt__sketch_index(1e-9));
  assert_int_equal(fwd.counts[fwd.lo - fwd.base], 1);
  lt_sketch_reset(&fwd);
  lt_sketch_reset(&rev);
  lt_sketch_reset(&m1);
  lt_sketch_reset(&m2);
}

static void encode_round_trip(void **st) {
  lt_sketch_t s, d;
  lt_buf_t b, b2;
  lt_sketch_init(&s);
  lt_sketch_init(&d);
  lt_buf_init(&b, 1u << 20);
  lt_buf_init(&b2, 1u << 20);
  /* empty, zeros only, then a mixed sample */
  for (int round = 0; round < 3; round++) {
    if (round == 1) assert_int_equal(lt_sketch_add_n(&s, 0, 5), 0);
    if (round == 2) {
      rng_state = 99;
      for (int i = 0; i < 10000; i++) assert_int_equal(lt_sketch_add(&s, gen_lognormal()), 0);
      assert_int_equal(lt_sketch_add_n(&s, 1e15, 1ull << 40), 0);
    }
    lt_buf_reset(&b);
    lt_buf_reset(&b2);
    assert_int_equal(lt_sketch_encode(&s, &b), 0);
    assert_int_equal(lt_sketch_decode(b.ptr, b.len, &d), 0);
    assert_same_buckets(&s, &d);
    assert_true(lt_sketch_sum(&s) == lt_sketch_sum(&d));
    assert_int_equal(lt_sketch_encode(&d, &b2), 0);
    assert_int_equal(b.len, b2.len);
    assert_memory_equal(b.ptr, b2.ptr, b.len);
    for (size_t k = 0; k < NQ && s.count; k++) {
      double x, y;
      assert_int_equal(lt_sketch_quantile(&s, QS[k], &x), 0);
      assert_int_equal(lt_sketch_quantile(&d, QS[k], &y), 0);
      assert_true(x == y);
    }
  }
  /* compact: header + lo + at most 3 bytes per bucket (counts < 2^21),
   * one byte for each empty bucket inside the range */
  assert_true(b.len <= 1 + 10 + 24 + 3 + 3 + 10 + 3 * (size_t)(s.hi - s.lo + 1));
  /* a decoded sketch keeps working */
  assert_int_equal(lt_sketch_add(&d, 1e-3), 0);
  assert_int_equal(lt_sketch_merge(&d, &s), 0);
  assert_int_equal(lt_sketch_count(&d), 2 * s.count + 1);
  /* an encode that hits the buffer cap leaves the buffer as it was */
  lt_buf_t small;
  lt_buf_init(&small, 40);
  assert_int_equal(lt_buf_append(&small, "x", 1), 0);
  assert_int_equal(lt_sketch_encode(&s, &small), LT_ETOOBIG);
  assert_int_equal(small.len, 1);
  lt_buf_free(&small);
  lt_sketch_reset(&s);
  lt_sketch_reset(&d);
  lt_buf_free(&b);
  lt_buf_free(&b2);
}

/* Decodes bytes that must be refused, and checks the target is untouched. */
static void expect_bad(const uint8_t *p, size_t n) {
  lt_sketch_t d;
  lt_sketch_init(&d);
  assert_int_equal(lt_sketch_add(&d, 12), 0);
  assert_int_equal(lt_sketch_decode(p, n, &d), LT_EDECODE);
  assert_int_equal(lt_sketch_count(&d), 1);
  assert_true(lt_sketch_max(&d) == 12);
  /* merging the bytes is refused the same way */
  assert_int_equal(lt_sketch_merge_encoded(&d, p, n), LT_EDECODE);
  assert_int_equal(lt_sketch_count(&d), 1);
  assert_true(lt_sketch_max(&d) == 12);
  lt_sketch_reset(&d);
}

static size_t put_f64(uint8_t *p, double v) {
  uint64_t bits;
  memcpy(&bits, &v, 8);
  for (int i = 0; i < 8; i++) p[i] = (uint8_t)(bits >> (8 * i));
  return 8;
}

/* version, zero count, min, max, sum, nb, [lo zigzag, counts] */
static size_t make_enc(uint8_t *p, uint8_t zc, double mn, double mx, double sum, uint8_t nb,
                       uint8_t lo_zz, const uint8_t *counts) {
  size_t n = 0;
  p[n++] = LT_SKETCH_VERSION;
  p[n++] = zc;
  n += put_f64(p + n, mn);
  n += put_f64(p + n, mx);
  n += put_f64(p + n, sum);
  p[n++] = nb;
  if (nb) {
    p[n++] = lo_zz;
    memcpy(p + n, counts, nb);
    n += nb;
  }
  return n;
}

static void decode_rejects_malformed(void **st) {
  lt_sketch_t s, d;
  lt_buf_t b;
  lt_sketch_init(&s);
  lt_sketch_init(&d);
  lt_buf_init(&b, 1u << 20);
  for (int i = 1; i <= 300; i++) assert_int_equal(lt_sketch_add(&s, i * 0.37), 0);
  assert_int_equal(lt_sketch_add(&s, 0), 0);
  assert_int_equal(lt_sketch_encode(&s, &b), 0);
  const uint8_t *enc = (const uint8_t *)b.ptr;
  /* every truncation */
  for (size_t n = 0; n < b.len; n++) expect_bad(enc, n);
  expect_bad(NULL, 0);
  /* a trailing byte */
  uint8_t *tmp = lt_malloc(b.len + 1);
  assert_non_null(tmp);
  memcpy(tmp, enc, b.len);
  tmp[b.len] = 0;
  expect_bad(tmp, b.len + 1);
  /* wrong version */
  memcpy(tmp, enc, b.len);
  tmp[0] = 2;
  expect_bad(tmp, b.len);
  lt_free(tmp);

  /* hand-made encodings around one valid form: one value 1.0 (bucket 0) */
  uint8_t e[64], one[1] = {1}, zero_end[2] = {1, 0};
  size_t n = make_enc(e, 0, 1.0, 1.0, 1.0, 1, 0, one);
  assert_int_equal(lt_sketch_decode(e, n, &d), 0);
  assert_int_equal(lt_sketch_count(&d), 1);
  expect_bad(e, make_enc(e, 0, NAN, 1.0, 1.0, 1, 0, one));
  expect_bad(e, make_enc(e, 0, -1.0, 1.0, 1.0, 1, 0, one));
  expect_bad(e, make_enc(e, 0, 1.0, INFINITY, 1.0, 1, 0, one));
  expect_bad(e, make_enc(e, 0, 2.0, 1.0, 1.0, 1, 0, one));      /* min > max */
  expect_bad(e, make_enc(e, 1, 1.0, 1.0, 1.0, 1, 0, one));      /* zeros but min > 0 */
  expect_bad(e, make_enc(e, 0, 0.0, 0.0, 0.0, 1, 0, one));      /* bucket but max == 0 */
  expect_bad(e, make_enc(e, 0, 1.0, 1.0, 1.0, 2, 0, zero_end)); /* empty end bucket */
  expect_bad(e, make_enc(e, 0, 1.0, 1.0, 1.0, 0, 0, NULL));     /* empty with min/max */
  n = make_enc(e, 0, 1.0, 1.0, 1.0, 1, 0, one);
  e[n - 1] = 0x80; /* count varint that never ends */
  expect_bad(e, n);
  /* overlong varint (0x81 0x00 == 1) is not canonical */
  n = make_enc(e, 0, 1.0, 1.0, 1.0, 1, 0, one);
  e[n - 1] = 0x81;
  e[n++] = 0x00;
  expect_bad(e, n);
  /* bucket count over the cap: 0x81 0x40 = 8193 */
  n = make_enc(e, 0, 1.0, 1.0, 1.0, 0, 0, NULL);
  e[n - 1] = 0x81;
  e[n++] = 0x40;
  e[n++] = 0;
  expect_bad(e, n);
  /* lo index far below 1e-9 (zigzag 0xff 0x7f = -8192) */
  n = make_enc(e, 0, 1.0, 1.0, 1.0, 1, 0xff, one);
  e[n - 2] = 0xff;
  e[n - 1] = 0x7f;
  e[n++] = 1;
  expect_bad(e, n);
  /* counts summing past 2^64 */
  n = make_enc(e, 0, 1.0, 1.0, 1.0, 0, 0, NULL);
  e[n - 1] = 2;
  e[n++] = 0;
  for (int k = 0; k < 2; k++) {
    for (int j = 0; j < 9; j++) e[n++] = 0xff;
    e[n++] = 0x01;
  }
  expect_bad(e, n);

  /* random garbage: refused, or if accepted, canonical */
  rng_state = 7;
  uint8_t g[96];
  lt_buf_t re;
  lt_buf_init(&re, 1u << 16);
  for (int t = 0; t < 20000; t++) {
    size_t gl = (size_t)(splitmix64() % sizeof g);
    for (size_t k = 0; k < gl; k++) g[k] = (uint8_t)splitmix64();
    if (t % 2 && gl > 0) g[0] = LT_SKETCH_VERSION;
    int rc = lt_sketch_decode(g, gl, &d);
    assert_true(rc == 0 || rc == LT_EDECODE);
    if (rc == 0) {
      lt_buf_reset(&re);
      assert_int_equal(lt_sketch_encode(&d, &re), 0);
      assert_int_equal(re.len, gl);
      assert_memory_equal(re.ptr, g, gl);
    }
  }
  lt_buf_free(&re);
  lt_sketch_reset(&s);
  lt_sketch_reset(&d);
  lt_buf_free(&b);
}

/* Merging encoded bytes gives exactly what decode + merge gives, into an
 * empty sketch and into one with buckets on both sides of the source's. */
static void merge_encoded_matches_merge(void **st) {
  (void)st;
  uint64_t seed = 7;
  for (int round = 0; round < 50; round++) {
    lt_sketch_t src, a, b, dec;
    lt_sketch_init(&src);
    lt_sketch_init(&a);
    lt_sketch_init(&b);
    lt_sketch_init(&dec);
    int n = 1 + round * 37;
    for (int i = 0; i < n; i++) {
      seed = seed * 6364136223846793005ull + 1442695040888963407ull;
      double v = (double)(seed >> 11) / 9007199254740992.0;
      assert_int_equal(lt_sketch_add(&src, round % 5 == 0 ? 0 : v * v * 1000 * (1 + round)), 0);
    }
    if (round % 2) { /* a target that already holds values below and above */
      lt_sketch_add(&a, 0.001);
      lt_sketch_add(&a, 1e6);
      lt_sketch_add(&b, 0.001);
      lt_sketch_add(&b, 1e6);
    }
    lt_buf_t enc;
    lt_buf_init(&enc, 1u << 20);
    assert_int_equal(lt_sketch_encode(&src, &enc), 0);
    assert_int_equal(lt_sketch_decode(enc.ptr, enc.len, &dec), 0);
    assert_int_equal(lt_sketch_merge(&a, &dec), 0);
    assert_int_equal(lt_sketch_merge_encoded(&b, enc.ptr, enc.len), 0);
    lt_buf_t ea, eb;
    lt_buf_init(&ea, 1u << 20);
    lt_buf_init(&eb, 1u << 20);
    assert_int_equal(lt_sketch_encode(&a, &ea), 0);
    assert_int_equal(lt_sketch_encode(&b, &eb), 0);
    assert_int_equal(ea.len, eb.len);
    assert_memory_equal(ea.ptr, eb.ptr, ea.len);
    lt_buf_free(&enc);
    lt_buf_free(&ea);
    lt_buf_free(&eb);
    lt_sketch_reset(&src);
    lt_sketch_reset(&a);
    lt_sketch_reset(&b);
    lt_sketch_reset(&dec);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(merge_encoded_matches_merge),
    cmocka_unit_test(accuracy_uniform),
    cmocka_unit_test(accuracy_exponential),
    cmocka_unit_test(accuracy_lognormal),
    cmocka_unit_test(accuracy_pareto),
    cmocka_unit_test(small_samples_and_add_n),
    cmocka_unit_test(zeros_are_exact),
    cmocka_unit_test(invalid_inputs),
    cmocka_unit_test(bucket_cap),
    cmocka_unit_test(encode_round_trip),
    cmocka_unit_test(decode_rejects_malformed),
  };
  return cmocka_run_group_tests_name("sketch", tests, NULL, NULL);
}
