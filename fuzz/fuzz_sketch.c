/* libFuzzer target for the sketch decoder. Whatever decodes must answer
 * quantiles inside [min, max], re-encode to exactly the input bytes (the
 * format is canonical), and merge with itself and with another sketch;
 * lt_sketch_merge_encoded must accept exactly what decodes and give the
 * same result as decode + merge. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "core/buf.h"
#include "core/err.h"
#include "pipeline/sketch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const double qs[] = {0, 0.01, 0.25, 0.5, 0.9, 0.99, 0.999, 1};
  lt_sketch_t s, other;
  lt_buf_t out;
  lt_sketch_init(&s);
  lt_sketch_init(&other);
  lt_buf_init(&out, 1u << 20);
  int rc = lt_sketch_decode(data, size, &s);
  {
    lt_sketch_t m;
    lt_sketch_init(&m);
    lt_sketch_add(&m, 2.0);
    int mrc = lt_sketch_merge_encoded(&m, data, size);
    if ((mrc == LT_EDECODE) != (rc == LT_EDECODE)) abort();
    if (mrc == 0 && lt_sketch_count(&m) != lt_sketch_count(&s) + 1) abort();
    lt_sketch_reset(&m);
  }
  if (rc != 0) {
    if (rc != LT_EDECODE && rc != LT_ENOMEM) abort();
    goto out;
  }
  for (size_t i = 0; i < sizeof qs / sizeof qs[0]; i++) {
    double v;
    if (lt_sketch_quantile(&s, qs[i], &v) == 0 &&
        (v < lt_sketch_min(&s) || v > lt_sketch_max(&s)))
      abort();
  }
  if (lt_sketch_encode(&s, &out) != 0) abort();
  if (out.len != size || memcmp(out.ptr, data, size) != 0) abort();
  lt_sketch_add(&other, 3.5);
  lt_sketch_add(&other, 0);
  lt_sketch_add(&other, 1e200);
  if (lt_sketch_merge(&other, &s) == 0) {
    double v;
    if (lt_sketch_count(&other) != lt_sketch_count(&s) + 3) abort();
    lt_sketch_quantile(&other, 0.5, &v);
  }
  lt_sketch_merge(&s, &s);
  lt_sketch_add(&s, 1e-3);
  lt_buf_reset(&out);
  lt_sketch_encode(&s, &out);
out:
  lt_buf_free(&out);
  lt_sketch_reset(&s);
  lt_sketch_reset(&other);
  return 0;
}
