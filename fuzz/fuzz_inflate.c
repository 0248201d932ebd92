/* libFuzzer target for the request-body decompressors (core/inflate.c):
 * the first byte picks gzip, deflate or zstd, the rest is the body. Corrupt
 * input must give LT_EDECODE, output past the cap LT_ETOOBIG, never a crash
 * or more memory than the cap. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include "core/buf.h"
#include "core/err.h"
#include "core/inflate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0) return 0;
  static const lt_encoding_t encs[] = {LT_ENC_GZIP, LT_ENC_DEFLATE, LT_ENC_ZSTD};
  lt_encoding_t enc = encs[data[0] % 3];
  lt_buf_t out;
  lt_buf_init(&out, 1u << 20);
  int rc = lt_inflate(enc, data + 1, size - 1, &out);
  if (rc != 0 && rc != LT_EDECODE && rc != LT_ETOOBIG && rc != LT_ENOMEM) abort();
  if (out.len > (1u << 20)) abort();
  lt_buf_free(&out);
  return 0;
}
