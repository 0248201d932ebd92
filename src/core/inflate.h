/* Bounded decompression of HTTP bodies (Content-Encoding gzip, deflate,
 * zstd). */
#ifndef LT_INFLATE_H
#define LT_INFLATE_H
#include <stddef.h>
#include "core/buf.h"

typedef enum { LT_ENC_IDENTITY = 0, LT_ENC_GZIP, LT_ENC_DEFLATE, LT_ENC_ZSTD } lt_encoding_t;

/* Decompresses in[0..len) into out (which must be initialised; its cap is
 * the decompressed-size limit). "deflate" accepts both the zlib wrapper
 * (RFC 1950, what the standard says) and raw deflate (what some clients
 * send). "zstd" accepts frames back to back, with windows up to 16 MiB
 * (a frame asking for more memory than that is refused as corrupt).
 * Returns 0, LT_EDECODE for corrupt data, LT_ETOOBIG when the output
 * would exceed out's cap (a decompression bomb stops there), LT_ENOMEM. */
int lt_inflate(lt_encoding_t enc, const void *in, size_t len, lt_buf_t *out);

#endif
