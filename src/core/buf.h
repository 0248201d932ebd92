/* lt_buf_t: a growable byte buffer with a hard cap set when it is made
 * (curl's dynbuf). Appending past the cap fails with LT_ETOOBIG and leaves
 * the buffer as it was. The buffer owns its bytes; lt_buf_free releases them. */
#ifndef LT_BUF_H
#define LT_BUF_H
#include <stddef.h>
#include <stdint.h>
#include "core/slice.h"

typedef struct {
  char *ptr;
  size_t len, alloc, cap;
} lt_buf_t;

void lt_buf_init(lt_buf_t *b, size_t cap);
void lt_buf_free(lt_buf_t *b);
void lt_buf_reset(lt_buf_t *b);
/* All return 0 or LT_ENOMEM / LT_ETOOBIG. The content stays NUL-terminated. */
int lt_buf_append(lt_buf_t *b, const void *p, size_t n);
int lt_buf_puts(lt_buf_t *b, const char *s);
int lt_buf_printf(lt_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Decimal, as printf's %llu and %lld would write them, without printf. */
int lt_buf_u64(lt_buf_t *b, uint64_t v);
int lt_buf_i64(lt_buf_t *b, int64_t v);
/* Appends s as a JSON string literal (with quotes), escaping as RFC 8259
 * requires; invalid UTF-8 bytes become U+FFFD so the output is always valid. */
int lt_buf_json_str(lt_buf_t *b, const char *s, size_t n);
/* Appends n bytes as lowercase hex. */
int lt_buf_hex(lt_buf_t *b, const uint8_t *p, size_t n);
/* Hands the bytes to the caller (who frees them with lt_free) and resets b. */
char *lt_buf_steal(lt_buf_t *b, size_t *len);

/* Hex helpers. lt_hex_decode returns 0 when hex is exactly 2*n hex digits. */
void lt_hex_encode(char *out, const uint8_t *p, size_t n); /* writes 2n chars + NUL */
int lt_hex_decode(uint8_t *out, size_t n, const char *hex, size_t hexlen);

#endif
