/* zlib and zstd streaming decompression into a capped buffer, 64 KiB at a
 * time, so the cap is enforced before memory is spent. */
#include "core/inflate.h"
#include "core/err.h"
#include <zlib.h>
#include <zstd.h>

/* The OpenTelemetry Collector's otlphttp exporter can send zstd. A frame's
 * window is what the decoder must allocate: capped well below zstd's own
 * default limit (128 MiB), far above what an exporter's level needs. */
#define ZSTD_WINDOW_LOG_MAX 24

static int run_zstd(const void *in, size_t len, lt_buf_t *out) {
  ZSTD_DStream *ds = ZSTD_createDStream();
  if (!ds) return LT_ENOMEM;
  int rc = LT_EDECODE;
  if (ZSTD_isError(ZSTD_DCtx_setParameter(ds, ZSTD_d_windowLogMax, ZSTD_WINDOW_LOG_MAX))) goto out;
  ZSTD_inBuffer ib = {in, len, 0};
  unsigned char chunk[65536];
  size_t last = 1; /* 0 once a frame is complete */
  while (ib.pos < ib.size || last != 0) {
    ZSTD_outBuffer ob = {chunk, sizeof chunk, 0};
    size_t before = ib.pos;
    last = ZSTD_decompressStream(ds, &ob, &ib);
    if (ZSTD_isError(last)) goto out;
    if (ob.pos) {
      int br = lt_buf_append(out, chunk, ob.pos);
      if (br) { rc = br; goto out; }
    }
    /* No input taken and no output made: the data ends inside a frame. */
    if (ib.pos == before && ob.pos == 0) goto out;
  }
  rc = len ? 0 : LT_EDECODE;
out:
  ZSTD_freeDStream(ds);
  return rc;
}

static int run(int window_bits, const void *in, size_t len, lt_buf_t *out) {
  z_stream zs = {0};
  if (inflateInit2(&zs, window_bits) != Z_OK) return LT_ENOMEM;
  int rc = LT_EDECODE;
  zs.next_in = (Bytef *)in;
  zs.avail_in = (uInt)len;
  unsigned char chunk[65536];
  for (;;) {
    zs.next_out = chunk;
    zs.avail_out = sizeof chunk;
    int zr = inflate(&zs, Z_NO_FLUSH);
    size_t got = sizeof chunk - zs.avail_out;
    if (got) {
      int br = lt_buf_append(out, chunk, got);
      if (br) { rc = br; goto out; }
    }
    if (zr == Z_STREAM_END) {
      /* gzip allows several members back to back: continue with the next. */
      if (zs.avail_in > 0 && window_bits == 15 + 32) {
        if (inflateReset(&zs) != Z_OK) goto out;
        continue;
      }
      rc = 0;
      goto out;
    }
    if (zr != Z_OK && !(zr == Z_BUF_ERROR && got > 0)) goto out;
    if (zr == Z_BUF_ERROR || (zs.avail_in == 0 && got == 0)) goto out; /* truncated */
  }
out:
  inflateEnd(&zs);
  return rc;
}

int lt_inflate(lt_encoding_t enc, const void *in, size_t len, lt_buf_t *out) {
  if (len > 0xFFFFFFFFu) return LT_ETOOBIG;
  if (enc == LT_ENC_GZIP) return run(15 + 32, in, len, out);
  if (enc == LT_ENC_ZSTD) return run_zstd(in, len, out);
  if (enc == LT_ENC_DEFLATE) {
    const unsigned char *p = in;
    /* A zlib header: CMF/FLG with method 8 and a valid check. */
    if (len >= 2 && (p[0] & 0x0F) == 8 && ((p[0] << 8) | p[1]) % 31 == 0) return run(15, in, len, out);
    return run(-15, in, len, out);
  }
  return lt_buf_append(out, in, len);
}
