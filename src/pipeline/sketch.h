/* lt_sketch_t: a DDSketch-style log-bucket histogram for non-negative
 * values (latency ms, tokens, tokens/s). Every quantile answer is within 1%
 * relative error of the exact order statistic, two sketches merge exactly
 * (merging equals sketching the union), and memory is bounded by a cap on
 * the number of buckets. See docs/sketch.md for the math and the encoding.
 * Ownership: the caller owns the struct; lt_sketch_init prepares it and
 * lt_sketch_reset frees what it holds. Not thread-safe. */
#ifndef LT_SKETCH_H
#define LT_SKETCH_H
#include <stddef.h>
#include <stdint.h>
#include "core/buf.h"

#define LT_SKETCH_ALPHA 0.01
/* Values below this (and exact zeros) are counted as zeros. */
#define LT_SKETCH_MIN_VALUE 1e-9
/* Hard cap on dense buckets: 1e-9..1e12 needs ~2420 at 1%. Past it the
 * lowest buckets are collapsed into the lowest kept one. */
#define LT_SKETCH_MAX_BUCKETS 4096
#define LT_SKETCH_VERSION 1

typedef struct {
  uint64_t *counts;   /* counts[k] is bucket index base + k */
  int32_t base;       /* bucket index of counts[0] */
  uint32_t alloc;     /* slots in counts, <= LT_SKETCH_MAX_BUCKETS */
  int32_t lo, hi;     /* lowest and highest non-empty bucket (if any) */
  uint64_t zero_count;
  uint64_t count;     /* all values, zeros included */
  double sum, min, max;
} lt_sketch_t;

/* Prepares an empty sketch; allocates nothing. */
void lt_sketch_init(lt_sketch_t *s);
/* Frees the buckets and leaves s empty (as after lt_sketch_init). */
void lt_sketch_reset(lt_sketch_t *s);

/* Adds v once / n times. Returns 0, LT_EINVAL for negative, NaN or
 * infinite v (nothing counted), LT_ETOOBIG if the total count would
 * overflow, LT_ENOMEM. On failure s is unchanged. n == 0 is a no-op. */
int lt_sketch_add(lt_sketch_t *s, double v);
int lt_sketch_add_n(lt_sketch_t *s, double v, uint64_t n);

/* Adds every value of src to dst (dst == src doubles it). Returns 0,
 * LT_ETOOBIG on count overflow or LT_ENOMEM; on failure dst is unchanged. */
int lt_sketch_merge(lt_sketch_t *dst, const lt_sketch_t *src);

/* Sets *out to the estimate of the value at rank floor(q*(count-1)).
 * Returns 0, LT_EINVAL if q is not in [0,1], LT_ENOTFOUND when empty.
 * q = 0 and q = 1 give the exact min and max. */
int lt_sketch_quantile(const lt_sketch_t *s, double q, double *out);

/* Exact count, sum, min and max; sum/min/max are 0 when empty. */
uint64_t lt_sketch_count(const lt_sketch_t *s);
double lt_sketch_sum(const lt_sketch_t *s);
double lt_sketch_min(const lt_sketch_t *s);
double lt_sketch_max(const lt_sketch_t *s);

/* Appends the versioned binary encoding of s to out. Returns 0 or the
 * lt_buf_append error (LT_ENOMEM / LT_ETOOBIG). */
int lt_sketch_encode(const lt_sketch_t *s, lt_buf_t *out);
/* Replaces the content of s (which must be initialized) with the sketch
 * encoded in p[0..len). Returns 0, LT_EDECODE on any malformed input
 * (s unchanged) or LT_ENOMEM. */
int lt_sketch_decode(const void *p, size_t len, lt_sketch_t *s);

/* Adds the sketch encoded in p[0..len) to dst without building it first
 * (no allocation when dst already spans its buckets): the same result as
 * decode then lt_sketch_merge. Returns 0, LT_EDECODE (dst unchanged),
 * LT_ETOOBIG or LT_ENOMEM. */
int lt_sketch_merge_encoded(lt_sketch_t *dst, const void *p, size_t len);

/* Internals exposed for tests: the bucket index of v > 0 and the value a
 * bucket stands for. */
int32_t lt__sketch_index(double v);
double lt__sketch_value(int32_t idx);

#endif
