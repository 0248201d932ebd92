/* Capped dynamic buffer and JSON string escaping. */
#include "core/buf.h"
#include "core/err.h"
#include "core/mem.h"
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void lt_buf_init(lt_buf_t *b, size_t cap) {
  b->ptr = NULL;
  b->len = b->alloc = 0;
  b->cap = cap;
}

void lt_buf_free(lt_buf_t *b) {
  lt_free(b->ptr);
  b->ptr = NULL;
  b->len = b->alloc = 0;
}

void lt_buf_reset(lt_buf_t *b) {
  b->len = 0;
  if (b->ptr) b->ptr[0] = '\0';
}

static int reserve(lt_buf_t *b, size_t n) {
  if (n > b->cap || b->len > b->cap - n) return LT_ETOOBIG;
  size_t need = b->len + n + 1;
  if (need <= b->alloc) return 0;
  size_t a = b->alloc ? b->alloc : 256;
  while (a < need) a *= 2;
  char *p = lt_realloc(b->ptr, a);
  if (!p) return LT_ENOMEM;
  b->ptr = p;
  b->alloc = a;
  return 0;
}

int lt_buf_append(lt_buf_t *b, const void *p, size_t n) {
  int rc = reserve(b, n);
  if (rc) return rc;
  if (n) memcpy(b->ptr + b->len, p, n);
  b->len += n;
  b->ptr[b->len] = '\0';
  return 0;
}

int lt_buf_puts(lt_buf_t *b, const char *s) { return lt_buf_append(b, s, strlen(s)); }

int lt_buf_printf(lt_buf_t *b, const char *fmt, ...) {
  /* Formatted once into the free room when it fits (nearly always), a
   * second time only after growing. */
  size_t room = b->alloc > b->len ? b->alloc - b->len : 0;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(room ? b->ptr + b->len : NULL, room, fmt, ap);
  va_end(ap);
  if (n < 0 || (size_t)n >= room || (size_t)n > b->cap || b->len > b->cap - (size_t)n) {
    if (room) b->ptr[b->len] = '\0'; /* undo what went past len */
    if (n < 0) return LT_EINVAL;
    int rc = reserve(b, (size_t)n);
    if (rc) return rc;
    va_start(ap, fmt);
    vsnprintf(b->ptr + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
  }
  b->len += (size_t)n;
  return 0;
}

int lt_buf_u64(lt_buf_t *b, uint64_t v) {
  char tmp[20], *p = tmp + sizeof tmp;
  do *--p = (char)('0' + v % 10);
  while (v /= 10);
  return lt_buf_append(b, p, (size_t)(tmp + sizeof tmp - p));
}

int lt_buf_i64(lt_buf_t *b, int64_t v) {
  if (v >= 0) return lt_buf_u64(b, (uint64_t)v);
  int rc = lt_buf_append(b, "-", 1);
  return rc ? rc : lt_buf_u64(b, 0 - (uint64_t)v); /* INT64_MIN too */
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when invalid. */
static size_t utf8_len(const unsigned char *s, size_t n) {
  unsigned c = s[0];
  size_t len;
  unsigned min;
  if (c < 0x80) return 1;
  if ((c & 0xE0) == 0xC0) { len = 2; min = 0x80; c &= 0x1F; }
  else if ((c & 0xF0) == 0xE0) { len = 3; min = 0x800; c &= 0x0F; }
  else if ((c & 0xF8) == 0xF0) { len = 4; min = 0x10000; c &= 0x07; }
  else return 0;
  if (n < len) return 0;
  for (size_t i = 1; i < len; i++) {
    if ((s[i] & 0xC0) != 0x80) return 0;
    c = (c << 6) | (s[i] & 0x3F);
  }
  if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return 0;
  return len;
}

/* Non-zero when any of the 8 bytes in v needs more than a copy: a control
 * character, '"', '\\' or a byte >= 0x80 (checked as UTF-8). The usual
 * test for a byte below k is exact as "any", which is all we ask. */
static inline uint64_t special8(uint64_t v) {
  const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
  uint64_t ctl = (v - 0x20 * ones) & ~v;
  uint64_t q = v ^ (0x22 * ones), bs = v ^ (0x5C * ones);
  q = (q - ones) & ~q;
  bs = (bs - ones) & ~bs;
  return (ctl | q | bs | v) & high;
}

int lt_buf_json_str(lt_buf_t *b, const char *s, size_t n) {
  static const char hexd[] = "0123456789abcdef";
  /* Worst case every byte becomes \u00XX or U+FFFD (3 bytes): reserve once. */
  int rc = reserve(b, n * 6 + 2);
  if (rc) return rc;
  char *o = b->ptr + b->len;
  *o++ = '"';
  const unsigned char *p = (const unsigned char *)s;
  size_t i = 0;
  while (i < n) {
    if (n - i >= 8) {
      uint64_t v, m;
      memcpy(&v, p + i, 8);
      m = special8(v);
      /* Stored whole even when a byte needs more: the reservation above
       * leaves room, and the bytes past the first special are rewritten. */
      memcpy(o, &v, 8);
      if (!m) {
        o += 8;
        i += 8;
        continue;
      }
#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
      /* The lowest flag is exact (borrows only run upwards from a flagged
       * byte): the bytes before it are plain. */
      size_t k = (size_t)__builtin_ctzll(m) >> 3;
      o += k;
      i += k;
#endif
    }
    unsigned char c = p[i];
    if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
      *o++ = (char)c;
      i++;
    } else if (c < 0x80) {
      *o++ = '\\';
      switch (c) {
      case '"': *o++ = '"'; break;
      case '\\': *o++ = '\\'; break;
      case '\n': *o++ = 'n'; break;
      case '\r': *o++ = 'r'; break;
      case '\t': *o++ = 't'; break;
      case '\b': *o++ = 'b'; break;
      case '\f': *o++ = 'f'; break;
      default:
        *o++ = 'u'; *o++ = '0'; *o++ = '0';
        *o++ = hexd[c >> 4]; *o++ = hexd[c & 15];
      }
      i++;
    } else {
      size_t l = utf8_len(p + i, n - i);
      if (l) {
        memcpy(o, p + i, l);
        o += l;
        i += l;
      } else {
        memcpy(o, "\xEF\xBF\xBD", 3);
        o += 3;
        i++;
      }
    }
  }
  *o++ = '"';
  b->len = (size_t)(o - b->ptr);
  b->ptr[b->len] = '\0';
  return 0;
}

void lt_hex_encode(char *out, const uint8_t *p, size_t n) {
  static const char hexd[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = hexd[p[i] >> 4];
    out[2 * i + 1] = hexd[p[i] & 15];
  }
  out[2 * n] = '\0';
}

int lt_buf_hex(lt_buf_t *b, const uint8_t *p, size_t n) {
  int rc = reserve(b, 2 * n);
  if (rc) return rc;
  lt_hex_encode(b->ptr + b->len, p, n);
  b->len += 2 * n;
  return 0;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

int lt_hex_decode(uint8_t *out, size_t n, const char *hex, size_t hexlen) {
  if (hexlen != 2 * n) return LT_EDECODE;
  for (size_t i = 0; i < n; i++) {
    int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return LT_EDECODE;
    out[i] = (uint8_t)(hi << 4 | lo);
  }
  return 0;
}

char *lt_buf_steal(lt_buf_t *b, size_t *len) {
  char *p = b->ptr;
  if (len) *len = b->len;
  b->ptr = NULL;
  b->len = b->alloc = 0;
  return p;
}
